import { type Kysely, sql } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { prepareQuery } from '../sql/index.ts'
import { assertObject, assertOptionalUuid, assertUuid } from '../validation/index.ts'
import {
  channelMembershipJoinSql,
  channelPermissionsSql,
  guildPermissionsSql,
  memberContextSql,
} from './access-sql.ts'

/** Guild-level permissions: one row, 0 when the user is not a member. */
const guildPermissions = prepareQuery(
  'permissions.in_guild',
  (db, p: { guild_id: string; user_id: string }) =>
    db.selectNoFrom(
      sql<bigint>`coalesce((
      select ${guildPermissionsSql}
      from ${memberContextSql}
      where gm.guild_id = ${p.guild_id}::uuid and gm.user_id = ${p.user_id}::uuid
    ), 0::int8)`.as('permissions'),
    ),
)

/** Channel-level permissions: 0 when not a member or the channel is not one of the guild's. */
const channelPermissions = prepareQuery(
  'permissions.in_channel',
  (db, p: { guild_id: string; user_id: string; channel_id: string }) =>
    db.selectNoFrom(
      sql<bigint>`coalesce((
        select ${channelPermissionsSql}
        from ${memberContextSql}
        join channels c on c.id = ${p.channel_id}::uuid and c.guild_id = gm.guild_id
        ${channelMembershipJoinSql}
        where gm.guild_id = ${p.guild_id}::uuid and gm.user_id = ${p.user_id}::uuid
      ), 0::int8)`.as('permissions'),
    ),
)

/** Input of {@link computePermissions}. */
export interface ComputePermissionsInput {
  guild_id: string
  user_id: string
  /** Compute the permissions in this channel (private channels, other guilds). */
  channel_id?: string | null | undefined
}

/**
 * Computes a user's effective permissions in a guild, or in one of its channels,
 * in one round trip (one prepared query, `bit_or` over the roles).
 *
 * Not a member: `0n`. The owner, or a member with a role (the default role
 * included) that has `ADMINISTRATOR`: `Permissions.ALL`. Else the OR of the
 * default role and every assigned role. With `channel_id`: `0n` when the
 * channel does not exist or belongs to another guild; in a private channel,
 * `0n` unless the user is one of its `channel_members` (owner/admin aside).
 *
 * @throws {InvalidInputError} when an id is not a UUID.
 * @example
 * ```ts
 * const perms = await computePermissions(db, { guild_id, user_id, channel_id })
 * if (!hasPermission(perms, Permissions.SEND_MESSAGES)) throw new Forbidden()
 * // select coalesce((select case when g.owner_id = gm.user_id or (rp.permissions & 8) <> 0 then … end
 * //   from guild_members gm join guilds g … cross join lateral (select bit_or(r.permissions) …) rp
 * //   join channels c on c.id = $1 and c.guild_id = gm.guild_id where gm.guild_id = $2 and gm.user_id = $3), 0)
 * ```
 */
export async function computePermissions(
  db: Kysely<DB>,
  input: ComputePermissionsInput,
): Promise<bigint> {
  assertObject(input, 'input')
  const { guild_id, user_id, channel_id } = input
  assertUuid(guild_id, 'guild_id')
  assertUuid(user_id, 'user_id')
  assertOptionalUuid(channel_id, 'channel_id')
  const row =
    channel_id == null
      ? await guildPermissions.executeTakeFirst(db, { guild_id, user_id })
      : await channelPermissions.executeTakeFirst(db, { guild_id, user_id, channel_id })
  // int8 arrives as bigint on guildstore's pools; BigInt() also accepts pg's default string.
  return row ? BigInt(row.permissions) : 0n
}
