/**
 * The permission and channel-access rules, written once as SQL fragments.
 *
 * `computePermissions`, `canAccessChannel`, `listVisibleChannels` and
 * `searchMessages` all build their queries from these fragments, so they can
 * never disagree about what a user may see. Internal: not re-exported.
 *
 * The rules:
 * - a user who is not a member of the guild has no permissions;
 * - the owner, and a member any of whose roles (the default role included) has
 *   `ADMINISTRATOR`, has `Permissions.ALL`, in every channel of the guild;
 * - else the member has the OR of the default role's and their assigned roles'
 *   permissions; in a private channel, 0 unless they are in `channel_members`;
 * - a user may access a guild channel when their permissions in it include
 *   `VIEW_CHANNEL`, and a DM channel when they are one of its `dm_participants`.
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
const isOwnerOrAdminSql = sql`(g.owner_id = gm.user_id or (rp.permissions & ${ADMINISTRATOR}) <> 0)`

/** A member's guild-level permissions (`int8`), over {@link memberContextSql}. */
export const guildPermissionsSql: RawBuilder<bigint> = sql<bigint>`(case
  when ${isOwnerOrAdminSql} then ${ALL}
  else rp.permissions
end)`

/**
 * Joins the member's own `channel_members` row of channel `c` as `cm` (NULL
 * when there is none). A join, not a correlated `exists`, so the planner
 * carries `gm.user_id = $user` into it and probes the primary key instead of
 * hashing the whole `channel_members` table.
 */
export const channelMembershipJoinSql: RawBuilder<unknown> = sql`left join channel_members cm
  on cm.channel_id = c.id and cm.user_id = gm.user_id`

/**
 * A member's permissions (`int8`) in channel `c` (a channel of their guild),
 * over {@link memberContextSql} joined with `channels c` and
 * {@link channelMembershipJoinSql}.
 */
export const channelPermissionsSql: RawBuilder<bigint> = sql<bigint>`(case
  when ${isOwnerOrAdminSql} then ${ALL}
  when c.is_private and cm.user_id is null then 0::int8
  else rp.permissions
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
  const { userId, channelId, guildId, channelIds, nullable = false } = scope
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
    where gm.user_id = ${userId}::uuid${guildCond}${channelCond(sql`c.id`)}${idsCond(sql`c.id`)}
      and (${channelPermissionsSql} & ${VIEW_CHANNEL}) <> 0`

  // A guild-narrowed scope never includes DM channels.
  if (guildId !== undefined && !nullable) return sql`${guildChannels}`
  const dmGuildCond = guildId === undefined ? sql`` : sql` and ${guildId}::uuid is null`
  const dmChannels = sql`select dp.channel_id as id
    from dm_participants dp
    where dp.user_id = ${userId}::uuid${dmGuildCond}${channelCond(sql`dp.channel_id`)}${idsCond(sql`dp.channel_id`)}`
  return sql`${guildChannels} union all ${dmChannels}`
}
