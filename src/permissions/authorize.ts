/**
 * The actor check of administrative functions called with an {@link ActingAs}.
 * Internal: not re-exported.
 *
 * Two statements, inside the change's own transaction, before the write:
 *
 * 1. lock (FOR SHARE) every row the actor's permission and the hierarchy are
 *    made of: the guild (owner), the default role and the actor's and target's
 *    roles, their role assignments, their memberships, and, for a channel-level
 *    permission, the channel (overwrite writes lock it FOR NO KEY UPDATE) and the
 *    actor's channel membership. A revocation (updateRole, unassignRole, kick,
 *    ownership transfer, a new deny overwrite) must update or delete one of
 *    these rows: it either waits until the action commits, or the action waits
 *    for it and then reads its result;
 * 2. compute the permission with the one access rule (`access-sql.ts`) and the
 *    highest role positions, with a snapshot taken after the locks.
 *
 * So a permission revoked concurrently never lets the action through.
 */
import { type Kysely, sql } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { PermissionDeniedError } from '../errors/permission-denied-error.ts'
import { prepareQuery } from '../sql/index.ts'
import {
  channelMembershipJoinSql,
  channelPermissionsSql,
  guildPermissionsSql,
  memberContextSql,
} from './access-sql.ts'
import { Permissions } from './permissions.ts'

interface LockParams {
  guild_id: string
  actor_id: string
  target_id: string | null
  role_ids: string[]
  channel_id: string | null
}

// Lock order: guild, roles, role assignments, memberships, channel, channel
// membership (the order deletions cascade in), so two checks never deadlock.
const lockContext = prepareQuery('authorize.lock_context', (db, p: LockParams) =>
  db.selectNoFrom([
    sql<string>`(select count(*) from (
      select 1 from guilds where id = ${p.guild_id}::uuid for share) x)`.as('guild'),
    sql<string>`(select count(*) from (
      select 1 from roles r
      where r.guild_id = ${p.guild_id}::uuid
        and (r.is_default
          or r.id = any(${p.role_ids}::uuid[])
          or r.id in (
            select mr.role_id from member_roles mr
            where mr.guild_id = ${p.guild_id}::uuid
              and (mr.user_id = ${p.actor_id}::uuid or mr.user_id = ${p.target_id}::uuid)))
      for share) x)`.as('roles'),
    sql<string>`(select count(*) from (
      select 1 from member_roles
      where guild_id = ${p.guild_id}::uuid
        and (user_id = ${p.actor_id}::uuid or user_id = ${p.target_id}::uuid)
      for share) x)`.as('assignments'),
    sql<string>`(select count(*) from (
      select 1 from guild_members
      where guild_id = ${p.guild_id}::uuid
        and (user_id = ${p.actor_id}::uuid or user_id = ${p.target_id}::uuid)
      for share) x)`.as('members'),
    sql<string>`(select count(*) from (
      select 1 from channels where id = ${p.channel_id}::uuid for share) x)`.as('channel'),
    sql<string>`(select count(*) from (
      select 1 from channel_members
      where channel_id = ${p.channel_id}::uuid and user_id = ${p.actor_id}::uuid
      for share) x)`.as('channel_member'),
  ]),
)

interface ContextParams {
  guild_id: string
  actor_id: string
  target_id: string | null
  role_ids: string[]
}

/** The highest position among a member's roles, the default role included (NULL: not a member). */
function topPositionSql(guildId: unknown, userId: unknown) {
  return sql<number | null>`(select max(r.position)
    from guild_members m
    join roles r on r.guild_id = m.guild_id
    where m.guild_id = ${guildId}::uuid and m.user_id = ${userId}::uuid
      and (r.is_default or exists (
        select from member_roles mr
        where mr.guild_id = m.guild_id and mr.user_id = m.user_id and mr.role_id = r.id)))`
}

function contextColumns(p: ContextParams) {
  return [
    sql<string | null>`(select owner_id from guilds where id = ${p.guild_id}::uuid)`.as('owner_id'),
    topPositionSql(p.guild_id, p.actor_id).as('actor_top'),
    topPositionSql(p.guild_id, p.target_id).as('target_top'),
    // The default role is below everyone: managing it is never a hierarchy matter.
    sql<number | null>`(select max(position) from roles
      where guild_id = ${p.guild_id}::uuid and id = any(${p.role_ids}::uuid[])
        and not is_default)`.as('roles_top'),
  ] as const
}

const guildContext = prepareQuery('authorize.guild_context', (db, p: ContextParams) =>
  db.selectNoFrom([
    ...contextColumns(p),
    sql<bigint | null>`(select ${guildPermissionsSql} from ${memberContextSql}
      where gm.guild_id = ${p.guild_id}::uuid and gm.user_id = ${p.actor_id}::uuid)`.as(
      'permissions',
    ),
  ]),
)

const channelContext = prepareQuery(
  'authorize.channel_context',
  (db, p: ContextParams & { channel_id: string }) =>
    db.selectNoFrom([
      ...contextColumns(p),
      sql<bigint | null>`(select ${channelPermissionsSql} from ${memberContextSql}
      join channels c on c.id = ${p.channel_id}::uuid and c.guild_id = gm.guild_id
      ${channelMembershipJoinSql}
      where gm.guild_id = ${p.guild_id}::uuid and gm.user_id = ${p.actor_id}::uuid)`.as(
        'permissions',
      ),
    ]),
)

/** What an actor must hold for one administrative change. */
export interface AuthorizeRule {
  guild_id: string
  actor_id: string
  /** The flag(s) needed (all of them); `0n`: membership is enough. */
  permission: bigint
  /** Compute the permission in this channel (overwrites apply). */
  channel_id?: string | undefined
  /**
   * A member acted upon: their highest role must be below the actor's (the
   * owner: never). Not checked when it is the actor themself.
   */
  target_user_id?: string | undefined
  /** Roles acted upon: each must be below the actor's highest role. */
  role_ids?: readonly string[] | undefined
  /** Role positions being set: each must be below the actor's highest role. */
  positions?: readonly number[] | undefined
  /** Permission bits being granted: the actor must hold them (administrators hold all). */
  grants?: bigint | undefined
  /** Only the owner may do this (`reason: 'not_owner'`). */
  owner_only?: boolean | undefined
}

/** What the check learned, for the caller's own rules. */
export interface AuthorizeResult {
  /** The actor's permissions (in the channel when one was given). */
  permissions: bigint
  /** Whether the actor owns the guild. */
  is_owner: boolean
}

function deny(reason: string, message: string, permission?: bigint): PermissionDeniedError {
  return new PermissionDeniedError(message, {
    reason,
    ...(permission === undefined ? {} : { permission }),
  })
}

/**
 * Checks, inside `trx` (a transaction), that `rule.actor_id` may make the
 * change: locks the rows the answer depends on, then computes it with the one
 * access rule. Call it before the write, in the same transaction.
 *
 * @throws {PermissionDeniedError} `'not_member'` (the actor is not a member of
 *   the guild), `'not_owner'`, `'missing_permission'` (with `permission`: the
 *   missing flags) or `'hierarchy'`.
 * @example
 * ```ts
 * await inTransaction(db, async (trx) => {
 *   await authorize(trx, { guild_id, actor_id, permission: Permissions.KICK_MEMBERS, target_user_id })
 *   // … the write, the audit entry
 * })
 * ```
 */
export async function authorize(trx: Kysely<DB>, rule: AuthorizeRule): Promise<AuthorizeResult> {
  const role_ids = [...(rule.role_ids ?? [])]
  const self = rule.target_user_id?.toLowerCase() === rule.actor_id.toLowerCase()
  const target_id = rule.target_user_id === undefined || self ? null : rule.target_user_id
  await lockContext.execute(trx, {
    guild_id: rule.guild_id,
    actor_id: rule.actor_id,
    target_id,
    role_ids,
    channel_id: rule.channel_id ?? null,
  })
  const params = { guild_id: rule.guild_id, actor_id: rule.actor_id, target_id, role_ids }
  const row =
    rule.channel_id === undefined
      ? await guildContext.executeTakeFirst(trx, params)
      : await channelContext.executeTakeFirst(trx, { ...params, channel_id: rule.channel_id })
  if (!row || row.actor_top == null) {
    throw deny('not_member', 'the actor is not a member of the guild')
  }
  const isOwner = row.owner_id === rule.actor_id.toLowerCase()
  const permissions = row.permissions == null ? 0n : BigInt(row.permissions)
  if (isOwner) return { permissions: Permissions.ALL, is_owner: true }
  if (rule.owner_only) throw deny('not_owner', 'only the owner of the guild may do this')
  if ((permissions & Permissions.ADMINISTRATOR) === 0n) {
    const missing = rule.permission & ~permissions
    if (missing !== 0n) {
      throw deny('missing_permission', 'the actor lacks a required permission', missing)
    }
    const ungrantable = (rule.grants ?? 0n) & ~permissions
    if (ungrantable !== 0n) {
      throw deny(
        'missing_permission',
        'the actor cannot grant a permission they do not hold',
        ungrantable,
      )
    }
  }
  const top = row.actor_top
  if (target_id !== null) {
    const targetIsOwner = row.owner_id === target_id.toLowerCase()
    if (targetIsOwner || (row.target_top != null && row.target_top >= top)) {
      throw deny('hierarchy', "the target member's highest role is at or above the actor's")
    }
  }
  if (row.roles_top != null && row.roles_top >= top) {
    throw deny('hierarchy', "the role is at or above the actor's highest role")
  }
  if (rule.positions?.some((position) => position >= top)) {
    throw deny('hierarchy', "a role cannot be placed at or above the actor's highest role")
  }
  return { permissions, is_owner: false }
}
