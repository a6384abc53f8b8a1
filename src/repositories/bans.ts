import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import type { DB, GuildBans } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import type { ActingAs } from '../errors/permission-denied-error.ts'
import { Permissions } from '../permissions/permissions.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { prepareQuery } from '../sql/index.ts'
import {
  assertDate,
  assertIdKey,
  assertObject,
  assertOptionalText,
  assertOptionalUuid,
  assertUuid,
  defineFields,
  pageLimit,
  text,
} from '../validation/index.ts'
import { administer } from './administer.ts'
import { assertActingAs, auditChanges, deleteMember, lockMembership } from './internal.ts'

/** The columns every ban-returning function selects. */
export const banColumns = columnList<GuildBans>()([
  'guild_id',
  'user_id',
  'reason',
  'banned_by',
  'expires_at',
  'created_at',
])

/** A guild ban. It stands while `expires_at` is `null` or in the future. */
export type Ban = Projection<GuildBans, typeof banColumns>

/** Rules of the `guild_bans` columns (the CHECKs of the schema). */
export const banFields = defineFields('guild_bans', { reason: text(1, 512) })

/** Default page size of {@link listBans}. */
export const BAN_PAGE_DEFAULT = 50
/** Largest page size of {@link listBans}. */
export const BAN_PAGE_MAX = 100

/** Below every UUID: the keyset start of a first page. */
const MIN_UUID = '00000000-0000-0000-0000-000000000000'

/** The ban fields an audit entry records. */
const BAN_FIELDS = ['reason', 'expires_at'] as const

// The exclusive side of the join/ban lock (migration 0004's trigger on
// guild_members takes the shared side): a join either committed before this,
// or waits and then sees the ban.
const lockBanKey = prepareQuery(
  'guild_bans.lock_key',
  (db, p: { guild_id: string; user_id: string }) =>
    db.selectNoFrom(
      sql<string>`pg_advisory_xact_lock(hashtext('guildstore_guild_bans'),
      guildstore_ban_lock_key(${p.guild_id}::uuid, ${p.user_id}::uuid))::text`.as('locked'),
    ),
)

const selectGuildOwner = prepareQuery('guild_bans.guild_owner', (db, p: { guild_id: string }) =>
  db.selectFrom('guilds').select('owner_id').where('id', '=', p.guild_id).forShare(),
)

const standing = sql<boolean>`(expires_at is null or expires_at > now())`

const selectStandingBan = prepareQuery(
  'guild_bans.standing',
  (db, p: { guild_id: string; user_id: string }) =>
    db
      .selectFrom('guild_bans')
      .select(banColumns)
      .where('guild_id', '=', p.guild_id)
      .where('user_id', '=', p.user_id)
      .where(standing),
)

const upsertBan = prepareQuery(
  'guild_bans.upsert',
  (
    db,
    p: {
      guild_id: string
      user_id: string
      reason: string | null
      banned_by: string | null
      expires_at: Date | null
    },
  ) =>
    db
      .insertInto('guild_bans')
      .values({
        guild_id: p.guild_id,
        user_id: p.user_id,
        reason: p.reason,
        banned_by: p.banned_by,
        expires_at: p.expires_at,
      })
      .onConflict((oc) =>
        oc.columns(['guild_id', 'user_id']).doUpdateSet({
          reason: sql`excluded.reason`,
          banned_by: sql`excluded.banned_by`,
          expires_at: sql`excluded.expires_at`,
          created_at: sql`now()`,
        }),
      )
      .returning(banColumns),
)

const deleteBan = prepareQuery(
  'guild_bans.delete',
  (db, p: { guild_id: string; user_id: string }) =>
    db
      .deleteFrom('guild_bans')
      .where('guild_id', '=', p.guild_id)
      .where('user_id', '=', p.user_id)
      .returning([
        ...banColumns,
        sql<boolean>`(expires_at is null or expires_at > now())`.as('standing'),
      ]),
)

const selectBansPage = prepareQuery(
  'guild_bans.list_page',
  (db, p: { guild_id: string; after: string; limit: number }) =>
    db
      .selectFrom('guild_bans')
      .select(banColumns)
      .where('guild_id', '=', p.guild_id)
      .where('user_id', '>', p.after)
      .where(standing)
      .orderBy('user_id')
      .limit(p.limit),
)

/** Input of {@link banMember}. */
export interface BanMemberInput {
  guild_id: string
  user_id: string
  /** When the ban lapses by itself (in the future); none: until unbanned. */
  expires_at?: Date | null | undefined
  /** Why (1 to 512 characters); default: the actor's `reason`. */
  reason?: string | null | undefined
}

/** Identifies one ban. */
export interface BanKey {
  guild_id: string
  user_id: string
}

function assertBanKey(input: unknown): asserts input is BanKey {
  assertIdKey(input, ['guild_id', 'user_id'])
}

/**
 * Bans a user from a guild (a member or not): in one transaction, the ban is
 * stored (replacing a previous one), the membership goes with the member's role
 * assignments, channel overwrites and private-channel memberships, and the
 * audit entry (`member_ban`) is written. While the ban stands (no `expires_at`,
 * or until it), `addGuildMember` and `useInvite` refuse the user with
 * `ConflictError` (`reason: 'banned'`); a join racing with the ban either
 * happened before it (and is undone by it) or is refused.
 *
 * With `as`, the actor needs `BAN_MEMBERS` and a member's highest role must be
 * below the actor's (the owner is above everyone).
 *
 * @throws {InvalidInputError} when an id is not a UUID, `expires_at` is not a
 *   future Date or `reason` is not 1–512 characters.
 * @throws {NotFoundError} when the guild does not exist (`entity: 'guild'`).
 * @throws {ConflictError} when the user is the guild's owner (`reason: 'owner'`).
 * @throws {ForeignKeyViolationError} when the user does not exist.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await banMember(db, { guild_id, user_id, expires_at: new Date(Date.now() + 86_400_000) },
 *   { actor_id: modId, reason: 'spam' })
 * ```
 */
export async function banMember(
  db: Kysely<DB>,
  input: BanMemberInput,
  as?: ActingAs,
): Promise<Ban> {
  assertBanKey(input)
  if (input.expires_at != null) {
    assertDate(input.expires_at, 'expires_at')
    if (input.expires_at.getTime() <= Date.now()) {
      throw new InvalidInputError('expires_at must be in the future', { field: 'expires_at' })
    }
  }
  assertOptionalText(input.reason, 'reason', banFields.reason)
  assertActingAs(as)
  const { guild_id, user_id } = input
  return administer(db, as, {
    retryDeadlocks: true,
    lock: async (trx) => {
      await lockBanKey.execute(trx, { guild_id, user_id })
      await lockMembership(trx, { guild_id, user_id })
      return true
    },
    rule: () => ({ guild_id, permission: Permissions.BAN_MEMBERS, target_user_id: user_id }),
    apply: async (trx) => {
      const guild = await selectGuildOwner.executeTakeFirst(trx, { guild_id })
      if (!guild) throw new NotFoundError('guild not found', { entity: 'guild' })
      if (guild.owner_id === user_id.toLowerCase()) {
        throw new ConflictError("the guild's owner cannot be banned", { reason: 'owner' })
      }
      const before = await selectStandingBan.executeTakeFirst(trx, { guild_id, user_id })
      const ban = await upsertBan.executeTakeFirstOrThrow(trx, {
        guild_id,
        user_id,
        reason: input.reason ?? as?.reason ?? null,
        banned_by: as?.actor_id ?? null,
        expires_at: input.expires_at ?? null,
      })
      await deleteMember.execute(trx, { guild_id, user_id })
      return { ban, before }
    },
    audit: ({ ban, before }) => ({
      guild_id,
      action: 'member_ban',
      target_id: ban.user_id,
      changes: auditChanges(before, ban, BAN_FIELDS),
      reason: ban.reason,
    }),
  }).then((r) => r.ban)
}

/**
 * Lifts a user's ban in a guild (with its audit entry `member_unban`, in the
 * same transaction). With `as`, the actor needs `BAN_MEMBERS`.
 *
 * @returns `false` when no ban stood (a lapsed one is removed all the same).
 * @throws {InvalidInputError} when an id is not a UUID.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await unbanMember(db, { guild_id, user_id }, { actor_id: modId })
 * ```
 */
export async function unbanMember(db: Kysely<DB>, input: BanKey, as?: ActingAs): Promise<boolean> {
  assertBanKey(input)
  assertActingAs(as)
  const { guild_id, user_id } = input
  return administer(db, as, {
    rule: () => ({ guild_id, permission: Permissions.BAN_MEMBERS }),
    apply: (trx) => deleteBan.executeTakeFirst(trx, { guild_id, user_id }),
    audit: (row) =>
      row?.standing
        ? {
            guild_id,
            action: 'member_unban',
            target_id: row.user_id,
            changes: auditChanges(row, null, BAN_FIELDS),
          }
        : null,
  }).then((row) => row?.standing === true)
}

/**
 * Finds the ban of a user in a guild, if one stands (a lapsed ban is none).
 *
 * @throws {InvalidInputError} when an id is not a UUID.
 * @example
 * ```ts
 * const ban = await findBan(db, { guild_id, user_id })
 * ```
 */
export async function findBan(db: Kysely<DB>, input: BanKey): Promise<Ban | undefined> {
  assertBanKey(input)
  return selectStandingBan.executeTakeFirst(db, {
    guild_id: input.guild_id,
    user_id: input.user_id,
  })
}

/** Options of {@link listBans}. */
export interface ListBansOptions {
  /** The previous page's last `user_id`: this page starts after it. */
  after?: string | null | undefined
  /** Page size, 1 to 100; default 50. */
  limit?: number | undefined
}

/**
 * Lists a guild's standing bans by `user_id` (a keyset on the primary key).
 *
 * @throws {InvalidInputError} when an id is not a UUID or `limit` is not an integer 1–100.
 * @example
 * ```ts
 * const page = await listBans(db, guild_id, { limit: 100 })
 * const next = await listBans(db, guild_id, { after: page.at(-1)?.user_id, limit: 100 })
 * ```
 */
export async function listBans(
  db: Kysely<DB>,
  guild_id: string,
  options: ListBansOptions = {},
): Promise<Ban[]> {
  assertUuid(guild_id, 'guild_id')
  assertObject(options, 'options')
  assertOptionalUuid(options.after, 'after')
  const limit = pageLimit(options.limit, BAN_PAGE_DEFAULT, BAN_PAGE_MAX)
  return selectBansPage.execute(db, { guild_id, after: options.after ?? MIN_UUID, limit })
}
