/**
 * The permission and channel-access rules, written once as SQL fragments.
 *
 * `computePermissions`, `canAccessChannel`, `listVisibleChannels`,
 * `searchMessages` and the actor checks of administrative functions all build
 * their queries from these fragments, so they can never disagree about what a
 * user may see or do. Internal: not re-exported.
 *
 * The rules (Discord's order, see docs/permissions.md):
 * - a user who is not a member of the guild has no permissions;
 * - the guild base is the OR of the default (@everyone) role's and the
 *   member's assigned roles' permissions; the owner, and a member whose base
 *   has `ADMINISTRATOR`, has `Permissions.ALL` in every channel of the guild
 *   (overwrites and privacy ignored);
 * - in a channel, from the base: the `@everyone` overwrite (deny, then allow);
 *   then the overwrites of all the member's roles together (OR of their denies
 *   removed, then OR of their allows added); then the member's own overwrite
 *   (deny, then allow); `ADMINISTRATOR` in an overwrite is ignored (only the
 *   guild base grants it); then a private channel (0.1.0's `is_private`) gives 0
 *   to a member who is not in its `channel_members`; a thread (migration
 *   0021) takes all of this from its parent, then a private thread gives 0 to
 *   a member who is neither its member nor holds `MANAGE_THREADS`, and
 *   `SEND_MESSAGES` there is `SEND_MESSAGES_IN_THREADS` (in a locked thread
 *   only with `MANAGE_THREADS`); finally, when
 *   `VIEW_CHANNEL` is not left, the member has no permission at all there (0);
 * - a member timed out (`communication_disabled_until` in the future) keeps
 *   only `VIEW_CHANNEL` and `READ_MESSAGE_HISTORY`, in the guild and in every
 *   channel (the owner and administrators are exempt);
 * - a user may access a guild channel when their permissions in it include
 *   `VIEW_CHANNEL`, and a DM channel when they are one of its `dm_participants`.
 *
 * Interface for other modules (kept stable): {@link accessibleChannelIdsSql}
 * (ids of the channels a user may access, narrowed by a scope), and, for a
 * query over one member and channel, `from ${memberContextSql} join channels c
 * on … ${channelMembershipJoinSql}` with {@link channelPermissionsSql} /
 * {@link guildPermissionsSql} in its select list or where clause.
 */
import { type RawBuilder, sql } from 'kysely'
import { Permissions } from './permissions.ts'

const ADMINISTRATOR = sql.raw(`${Permissions.ADMINISTRATOR}`)
const VIEW_CHANNEL = sql.raw(`${Permissions.VIEW_CHANNEL}`)
const ALL = sql.raw(`${Permissions.ALL}::int8`)

/**
 * The FROM clause of "a member and their guild-level role permissions":
 * `guild_members gm`, `guilds g`, and `rp.permissions` (the OR of the default
 * role and every role assigned to `gm`, as `int8`). Rows exist only for members.
 */
export const memberContextSql: RawBuilder<unknown> = sql`guild_members gm
  join guilds g on g.id = gm.guild_id
  cross join lateral (
    select coalesce(bit_or(r.permissions), 0::int8) as permissions
    from roles r
    where r.guild_id = gm.guild_id
      and (r.is_default or exists (
        select from member_roles mr
        where mr.guild_id = gm.guild_id and mr.user_id = gm.user_id and mr.role_id = r.id
      ))
  ) rp`

/** Whether the member of {@link memberContextSql} is the owner or an administrator. */
export const isOwnerOrAdminSql: RawBuilder<boolean> = sql<boolean>`(g.owner_id = gm.user_id or (rp.permissions & ${ADMINISTRATOR}) <> 0)`

/**
 * Whether the member of {@link memberContextSql} is timed out now
 * (`guild_members.communication_disabled_until` in the future, migration 0011).
 */
const timedOutSql = sql`gm.communication_disabled_until > statement_timestamp()`

/** What a timed-out member keeps (Discord's rule): viewing and reading history. */
const TIMED_OUT_KEEPS = sql.raw(
  `${Permissions.VIEW_CHANNEL | Permissions.READ_MESSAGE_HISTORY}::int8`,
)

/**
 * A member's guild-level permissions (`int8`), over {@link memberContextSql}:
 * `ALL` for the owner and administrators; a timed-out member keeps only
 * `VIEW_CHANNEL` and `READ_MESSAGE_HISTORY`.
 */
export const guildPermissionsSql: RawBuilder<bigint> = sql<bigint>`(case
  when ${isOwnerOrAdminSql} then ${ALL}
  when ${timedOutSql} then rp.permissions & ${TIMED_OUT_KEEPS}
  else rp.permissions
end)`

const MANAGE_THREADS = sql.raw(`${Permissions.MANAGE_THREADS}::int8`)
const SEND_MESSAGES = sql.raw(`${Permissions.SEND_MESSAGES}::int8`)
const SEND_MESSAGES_IN_THREADS = sql.raw(`${Permissions.SEND_MESSAGES_IN_THREADS}::int8`)

/**
 * The joins channel permissions need, after `join channels c`: for a thread
 * (migration 0021), its parent as `tp` (NULL for any other channel); the
 * member's own `channel_members` row of the channel whose permissions apply
 * (the thread's parent, else `c`) as `cm`, and of the thread itself as `tm`
 * (NULL when there is none); the ORs of the overwrites of that channel that
 * apply to the member as `ow` (six `int8` columns: `everyone_deny`,
 * `everyone_allow`, `roles_deny`, `roles_allow`, `member_deny`,
 * `member_allow`), and `cp.permissions`, the member's permissions in `c` after
 * the overwrites, the private-channel layer and the thread layer (before the
 * VIEW_CHANNEL rule and the owner/admin rule, which
 * {@link channelPermissionsSql} applies), without `ADMINISTRATOR`: only the
 * guild base grants it (an overwrite's `ADMINISTRATOR` grants nothing, as in
 * Discord), and a base that has it never reaches `cp` (owner/admin rule).
 *
 * The thread layer (docs/permissions.md "Threads"): a private thread gives 0
 * to a member who is neither one of its members nor holds `MANAGE_THREADS`;
 * in a thread, `SEND_MESSAGES` is what `SEND_MESSAGES_IN_THREADS` grants (so
 * every send and stored permission needs no other case), and in a locked
 * thread only with `MANAGE_THREADS`.
 *
 * Joins, not correlated `exists`, so the planner carries `gm.user_id = $user`
 * into them and probes primary keys / the overwrite key of the channel. `op`
 * (the overwritten permissions) is kept a subquery (`offset 0`): flattened,
 * its expression would be copied into every reference the thread layer and
 * {@link channelPermissionsSql} make, and evaluated that many times per row.
 */
export const channelMembershipJoinSql: RawBuilder<unknown> = sql`left join channels tp
  on tp.id = c.parent_id and c.auto_archive_minutes is not null
  left join channel_members cm
  on cm.channel_id = coalesce(tp.id, c.id) and cm.user_id = gm.user_id
  left join channel_members tm
  on tm.channel_id = c.id and tm.user_id = gm.user_id and c.auto_archive_minutes is not null
  cross join lateral (
    select
      coalesce(bit_or(o.deny) filter (where o.role_id is not null and r.is_default), 0::int8) as everyone_deny,
      coalesce(bit_or(o.allow) filter (where o.role_id is not null and r.is_default), 0::int8) as everyone_allow,
      coalesce(bit_or(o.deny) filter (where o.role_id is not null and not r.is_default), 0::int8) as roles_deny,
      coalesce(bit_or(o.allow) filter (where o.role_id is not null and not r.is_default), 0::int8) as roles_allow,
      coalesce(bit_or(o.deny) filter (where o.user_id is not null), 0::int8) as member_deny,
      coalesce(bit_or(o.allow) filter (where o.user_id is not null), 0::int8) as member_allow
    from channel_overwrites o
    left join roles r on r.id = o.role_id
    where o.channel_id = coalesce(tp.id, c.id)
      and (o.user_id = gm.user_id
        or r.is_default
        or exists (
          select from member_roles omr
          where omr.guild_id = gm.guild_id and omr.user_id = gm.user_id and omr.role_id = o.role_id
        ))
  ) ow
  cross join lateral (
    select case
      when coalesce(tp.is_private, c.is_private) and cm.user_id is null then 0::int8
      else ((((((rp.permissions & ~ow.everyone_deny) | ow.everyone_allow)
        & ~ow.roles_deny) | ow.roles_allow)
        & ~ow.member_deny) | ow.member_allow) & ~${ADMINISTRATOR}::int8
    end as permissions
    offset 0
  ) op
  cross join lateral (
    select case
      when c.auto_archive_minutes is null then op.permissions
      when c.type = 'private_thread' and tm.user_id is null
        and (op.permissions & ${MANAGE_THREADS}) = 0 then 0::int8
      else (op.permissions & ~${SEND_MESSAGES})
        | case when (op.permissions & ${SEND_MESSAGES_IN_THREADS}) <> 0
            and (not c.locked or (op.permissions & ${MANAGE_THREADS}) <> 0)
          then ${SEND_MESSAGES} else 0::int8 end
    end as permissions
  ) cp`

/**
 * A member's permissions (`int8`) in channel `c` (a channel of their guild),
 * over {@link memberContextSql} joined with `channels c` and
 * {@link channelMembershipJoinSql}: `Permissions.ALL` for the owner and
 * administrators; else the overwritten permissions, or 0 when they lack
 * `VIEW_CHANNEL`; of those, only `VIEW_CHANNEL` and `READ_MESSAGE_HISTORY`
 * while the member is timed out.
 */
export const channelPermissionsSql: RawBuilder<bigint> = sql<bigint>`(case
  when ${isOwnerOrAdminSql} then ${ALL}
  when (cp.permissions & ${VIEW_CHANNEL}) = 0 then 0::int8
  when ${timedOutSql} then cp.permissions & ${TIMED_OUT_KEEPS}
  else cp.permissions
end)`

/** How {@link accessibleChannelIdsSql} narrows the set (each a bound value or SQL expression). */
export interface AccessScope {
  /** The user whose access is computed. */
  userId: unknown
  /** Only this channel. */
  channelId?: unknown
  /** Only channels of this guild (so no DM channels). */
  guildId?: unknown
  /** Only channels in this `uuid[]` (a caller's list: intersected, never trusted). */
  channelIds?: unknown
  /**
   * When true, `guildId` and `channelIds` may be NULL at run time, meaning "no
   * narrowing" (for one static query that serves every call shape).
   */
  nullable?: boolean
  /**
   * Leave threads out (migration 0021): a guild's channel list, whose cost
   * then does not grow with the guild's archived threads.
   */
  withoutThreads?: boolean
}

/**
 * `select c.id …`: the ids of the channels a user may access, narrowed by
 * `scope`. Guild channels are found through the user's memberships (index
 * `guild_members_user_id_idx` / the primary key), DM channels through
 * `dm_participants_user_id_idx`, so the cost depends on the user's guilds,
 * not on the number of channels in the database.
 *
 * @example
 * ```ts
 * db.selectFrom('channels').select('id').where(sql`id in (${accessibleChannelIdsSql({ userId })})`)
 * ```
 */
export function accessibleChannelIdsSql(scope: AccessScope): RawBuilder<{ id: string }> {
  const { userId, channelId, guildId, channelIds, nullable = false, withoutThreads = false } = scope
  const guildCond =
    guildId === undefined
      ? sql``
      : nullable
        ? sql` and (${guildId}::uuid is null or gm.guild_id = ${guildId}::uuid)`
        : sql` and gm.guild_id = ${guildId}::uuid`
  const idsCond = (column: RawBuilder<unknown>) =>
    channelIds === undefined
      ? sql``
      : nullable
        ? sql` and (${channelIds}::uuid[] is null or ${column} = any(${channelIds}::uuid[]))`
        : sql` and ${column} = any(${channelIds}::uuid[])`
  const channelCond = (column: RawBuilder<unknown>) =>
    channelId === undefined ? sql`` : sql` and ${column} = ${channelId}::uuid`

  const guildChannels = sql`select c.id
    from ${memberContextSql}
    join channels c on c.guild_id = gm.guild_id
    ${channelMembershipJoinSql}
    where gm.user_id = ${userId}::uuid${guildCond}${channelCond(sql`c.id`)}${idsCond(sql`c.id`)}${
      withoutThreads ? sql` and c.auto_archive_minutes is null` : sql``
    }
      and (${channelPermissionsSql} & ${VIEW_CHANNEL}) <> 0`

  // A guild-narrowed scope never includes DM channels.
  if (guildId !== undefined && !nullable) return sql`${guildChannels}`
  const dmGuildCond = guildId === undefined ? sql`` : sql` and ${guildId}::uuid is null`
  const dmChannels = sql`select dp.channel_id as id
    from dm_participants dp
    where dp.user_id = ${userId}::uuid${dmGuildCond}${channelCond(sql`dp.channel_id`)}${idsCond(sql`dp.channel_id`)}`
  return sql`${guildChannels} union all ${dmChannels}`
}
