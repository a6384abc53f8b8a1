/**
 * SQL fragments for checks made on behalf of a user inside the statement that
 * acts (authorized sends and reads, `as?` of pins and reactions). Built from
 * the shared rule of `access-sql.ts`, so they agree with `computePermissions`.
 * Internal: not re-exported.
 */
import { type RawBuilder, sql } from 'kysely'
import { channelMembershipJoinSql, channelPermissionsSql, memberContextSql } from './access-sql.ts'

/**
 * `(select perms …)`: the user's permissions (`int8`) in a guild channel,
 * NULL when they are not a member of its guild or it is not a guild channel
 * (a DM, or no such channel). The same value `computePermissions` returns for
 * that channel, where it returns `0n` for the NULL cases.
 */
export function memberChannelPermissionsSql(
  userId: unknown,
  channelId: unknown,
): RawBuilder<bigint | null> {
  return sql<bigint | null>`(select ${channelPermissionsSql}
    from ${memberContextSql}
    join channels c on c.id = ${channelId} and c.guild_id = gm.guild_id
    ${channelMembershipJoinSql}
    where gm.user_id = ${userId}::uuid)`
}

/** `bool`: whether `perms` (an `int8` expression, may be NULL) holds every bit of `flag`. */
export function hasFlagSql(perms: RawBuilder<unknown>, flag: bigint): RawBuilder<boolean> {
  const f = sql.raw(`${flag}::int8`)
  return sql<boolean>`coalesce((${perms} & ${f}) = ${f}, false)`
}
