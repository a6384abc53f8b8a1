import { type Kysely, sql } from 'kysely'
import type { DB, GuildMembers } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import type { ActingAs } from '../errors/permission-denied-error.ts'
import { MIN_UUID } from '../ids/uuid-bounds.ts'
import { isOwnerOrAdminSql, memberContextSql } from '../permissions/access-sql.ts'
import { Permissions } from '../permissions/permissions.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { prepareQuery, rawQuery } from '../sql/index.ts'
import {
  assertDate,
  assertIdKey,
  assertObject,
  assertOptionalUuid,
  assertUuid,
  defineFields,
  pageLimit,
  text,
} from '../validation/index.ts'
import { administer } from './administer.ts'
import { setEventReason } from './events.ts'
import { assertActingAs, deleteMember, lockMembership } from './internal.ts'

/** The columns every membership-returning function selects. */
export const guildMemberColumns = columnList<GuildMembers>()([
  'guild_id',
  'user_id',
  'nickname',
  'joined_at',
  'communication_disabled_until',
])

/** A user's membership of a guild. */
export type GuildMember = Projection<GuildMembers, typeof guildMemberColumns>

/** Length rules of the `guild_members` columns (the CHECKs of the schema). */
export const guildMemberFields = defineFields('guild_members', { nickname: text(1, 64) })

/** Default page size of {@link listGuildMembers}. */
export const MEMBER_PAGE_DEFAULT = 50
/** Largest page size of {@link listGuildMembers}. */
export const MEMBER_PAGE_MAX = 100

// ON CONFLICT DO UPDATE (a no-op update) rather than DO NOTHING: a concurrent
// insert of the same member makes this one wait and then return the committed
// row, so every call gets the row back (DO NOTHING would return nothing, and a
// follow-up SELECT in the same statement could not see the other's row).
const upsertMember = prepareQuery(
  'guild_members.upsert',
  (db, p: { guild_id: string; user_id: string }) =>
    db
      .insertInto('guild_members')
      .values({ guild_id: p.guild_id, user_id: p.user_id })
      .onConflict((oc) =>
        oc.columns(['guild_id', 'user_id']).doUpdateSet({ guild_id: sql`excluded.guild_id` }),
      )
      .returning(guildMemberColumns),
)

const selectMember = prepareQuery(
  'guild_members.by_key',
  (db, p: { guild_id: string; user_id: string }) =>
    db
      .selectFrom('guild_members')
      .select(guildMemberColumns)
      .where('guild_id', '=', p.guild_id)
      .where('user_id', '=', p.user_id),
)

const memberExists = prepareQuery(
  'guild_members.exists',
  (db, p: { guild_id: string; user_id: string }) =>
    db.selectNoFrom((eb) =>
      eb
        .exists(
          eb
            .selectFrom('guild_members')
            .select(sql`1`.as('one'))
            .where('guild_id', '=', p.guild_id)
            .where('user_id', '=', p.user_id),
        )
        .as('exists'),
    ),
)

// Keyset page on the primary key (guild_id, user_id).
const selectMembersPage = prepareQuery(
  'guild_members.list_page',
  (db, p: { guild_id: string; after: string; limit: number }) =>
    db
      .selectFrom('guild_members')
      .select(guildMemberColumns)
      .where('guild_id', '=', p.guild_id)
      .where('user_id', '>', p.after)
      .orderBy('user_id')
      .limit(p.limit),
)

/** Identifies one membership. */
export interface GuildMemberKey {
  guild_id: string
  user_id: string
}

/** The fields of a {@link GuildMemberKey}, in validation order. */
const MEMBER_KEY = ['guild_id', 'user_id'] as const

/**
 * Adds a user to a guild; idempotent and race-free: when the user already is a
 * member (or becomes one concurrently) the existing row is returned unchanged.
 *
 * @throws {InvalidInputError} when an id is not a UUID.
 * @throws {ForeignKeyViolationError} when the guild or the user does not exist.
 * @throws {ConflictError} while a ban of the user stands in the guild (`reason: 'banned'`).
 * @example
 * ```ts
 * const member = await addGuildMember(db, { guild_id, user_id })
 * // insert into guild_members … on conflict (guild_id, user_id) do update set guild_id = excluded.guild_id returning …
 * ```
 */
export async function addGuildMember(db: Kysely<DB>, input: GuildMemberKey): Promise<GuildMember> {
  assertIdKey(input, MEMBER_KEY)
  return upsertMember.executeTakeFirstOrThrow(db, {
    guild_id: input.guild_id,
    user_id: input.user_id,
  })
}

/**
 * Removes a member from a guild, with their role assignments (cascade) and
 * their memberships of the guild's private channels. The owner cannot be
 * removed: transfer the ownership first.
 *
 * @returns `false` when the user was not a member (or the guild does not exist).
 * @throws {InvalidInputError} when an id is not a UUID.
 * @throws {ConflictError} when the user is the guild's owner (`reason: 'owner'`).
 * With `as` it is a kick: the actor needs `KICK_MEMBERS` and the member's
 * highest role must be below the actor's (the owner is above everyone),
 * checked with the delete in one transaction, which also writes the audit
 * entry (`member_kick`; a trusted call: `member_remove`). Channel overwrites of
 * the member go with the membership.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await removeGuildMember(db, { guild_id, user_id })
 * ```
 */
export async function removeGuildMember(
  db: Kysely<DB>,
  input: GuildMemberKey,
  as?: ActingAs,
): Promise<boolean> {
  assertIdKey(input, MEMBER_KEY)
  assertActingAs(as)
  const { guild_id, user_id } = input
  return administer(db, as, {
    retryDeadlocks: true,
    lock: async (trx) => {
      await lockMembership(trx, { guild_id, user_id })
      return true
    },
    rule: () => ({ guild_id, permission: Permissions.KICK_MEMBERS, target_user_id: user_id }),
    apply: async (trx) => {
      // An actor's removal is a kick: member_removed says so (migration 0019).
      if (as) await setEventReason.execute(trx, { reason: 'kick' })
      const row = await deleteMember.executeTakeFirst(trx, { guild_id, user_id })
      if (row?.owner_id === user_id.toLowerCase()) {
        throw new ConflictError("the guild's owner cannot be removed", { reason: 'owner' })
      }
      return row?.deleted === true
    },
    audit: (removed) =>
      removed
        ? {
            guild_id,
            action: as ? 'member_kick' : 'member_remove',
            target_id: user_id,
            changes: {},
          }
        : null,
  })
}

/**
 * Finds one membership.
 *
 * @throws {InvalidInputError} when an id is not a UUID.
 * @example
 * ```ts
 * const member = await findGuildMember(db, { guild_id, user_id })
 * ```
 */
export async function findGuildMember(
  db: Kysely<DB>,
  input: GuildMemberKey,
): Promise<GuildMember | undefined> {
  assertIdKey(input, MEMBER_KEY)
  return selectMember.executeTakeFirst(db, { guild_id: input.guild_id, user_id: input.user_id })
}

/**
 * Whether a user is a member of a guild.
 *
 * @throws {InvalidInputError} when an id is not a UUID.
 * @example
 * ```ts
 * if (!(await isGuildMember(db, { guild_id, user_id }))) deny()
 * ```
 */
export async function isGuildMember(db: Kysely<DB>, input: GuildMemberKey): Promise<boolean> {
  assertIdKey(input, MEMBER_KEY)
  const row = await memberExists.executeTakeFirst(db, {
    guild_id: input.guild_id,
    user_id: input.user_id,
  })
  return row?.exists === true
}

/** Options of {@link listGuildMembers}. */
export interface ListGuildMembersOptions {
  /** The previous page's last `user_id`: this page starts after it. */
  after?: string | null | undefined
  /** Page size, 1 to 100; default 50. */
  limit?: number | undefined
}

/**
 * Lists a guild's members in pages, ordered by `user_id` (a keyset on the
 * primary key: the cost of a page does not grow with its depth).
 *
 * @throws {InvalidInputError} when an id is not a UUID or `limit` is not an integer 1–100.
 * @example
 * ```ts
 * const page1 = await listGuildMembers(db, guild_id, { limit: 100 })
 * const page2 = await listGuildMembers(db, guild_id, { after: page1.at(-1)?.user_id, limit: 100 })
 * ```
 */
export async function listGuildMembers(
  db: Kysely<DB>,
  guild_id: string,
  options: ListGuildMembersOptions = {},
): Promise<GuildMember[]> {
  assertUuid(guild_id, 'guild_id')
  assertObject(options, 'options')
  assertOptionalUuid(options.after, 'after')
  const limit = pageLimit(options.limit, MEMBER_PAGE_DEFAULT, MEMBER_PAGE_MAX)
  return selectMembersPage.execute(db, { guild_id, after: options.after ?? MIN_UUID, limit })
}

/** The longest timeout: 28 days (Discord's limit). */
export const TIMEOUT_MAX_MS = 28 * 24 * 60 * 60 * 1000

/** Input of {@link timeoutMember}. */
export interface TimeoutMemberInput {
  guild_id: string
  user_id: string
  /** When the timeout ends: in the future, at most 28 days away. `null` lifts it. */
  until: Date | null
}

const setTimeout_ = prepareQuery(
  'guild_members.set_timeout',
  (db, p: { guild_id: string; user_id: string; until: Date | null }) =>
    db
      .updateTable('guild_members')
      .set({ communication_disabled_until: p.until })
      .where('guild_id', '=', p.guild_id)
      .where('user_id', '=', p.user_id)
      .returning(guildMemberColumns),
)

// The target's exemption (Discord's rule: the owner and ADMINISTRATOR holders
// cannot be timed out) by the one access rule, read with the membership locked.
const selectExemption = prepareQuery(
  'guild_members.timeout_target',
  (db, p: { guild_id: string; user_id: string }) =>
    rawQuery(
      db,
      sql<{ communication_disabled_until: Date | null; exempt: boolean }>`select
  gm.communication_disabled_until, ${isOwnerOrAdminSql} as exempt
from ${memberContextSql}
where gm.guild_id = ${p.guild_id}::uuid and gm.user_id = ${p.user_id}::uuid
for no key update of gm`,
    ),
)

/**
 * Times a member out until `until` (Discord's "time out"), or lifts a timeout
 * with `until: null`. While timed out the member keeps only `VIEW_CHANNEL` and
 * `READ_MESSAGE_HISTORY` in the guild and every channel: sends, reactions and
 * every other action are refused. The timeout ends by time alone, with no write
 * (migration 0011; docs/permissions.md, "Timeouts"). Starting or extending a
 * timeout takes effect at once for stored permissions too.
 *
 * @returns the membership with its `communication_disabled_until`.
 * @throws {InvalidInputError} when an id is not a UUID, or `until` is not a
 *   date in the future at most 28 days away (or `null`).
 * @throws {NotFoundError} (entity `'guild_member'`) when the user is not a member.
 * @throws {ConflictError} (reason `'exempt'`) for the owner or an `ADMINISTRATOR` holder.
 * With `as`: `MODERATE_MEMBERS`, and the member's highest role below the
 * actor's; the audit entry (`member_timeout`, with the old and new end) is
 * written in the same transaction.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await timeoutMember(db, { guild_id, user_id, until: new Date(Date.now() + 3_600_000) }, { actor_id: mod })
 * await timeoutMember(db, { guild_id, user_id, until: null }) // lift it
 * ```
 */
export async function timeoutMember(
  db: Kysely<DB>,
  input: TimeoutMemberInput,
  as?: ActingAs,
): Promise<GuildMember> {
  assertIdKey(input, MEMBER_KEY)
  const until = input.until
  if (until !== null) {
    assertDate(until, 'until')
    const ms = until.getTime() - Date.now()
    if (ms <= 0 || ms > TIMEOUT_MAX_MS) {
      throw new InvalidInputError('until must be in the future and at most 28 days away', {
        field: 'until',
      })
    }
  }
  assertActingAs(as)
  const { guild_id, user_id } = input
  return administer(db, as, {
    retryDeadlocks: true,
    lock: (trx) => selectExemption.executeTakeFirst(trx, { guild_id, user_id }),
    missing: () => {
      throw new NotFoundError('the user is not a member of this guild', { entity: 'guild_member' })
    },
    rule: () => ({ guild_id, permission: Permissions.MODERATE_MEMBERS, target_user_id: user_id }),
    apply: (trx, target) => {
      if (target.exempt && until !== null) {
        throw new ConflictError('the owner and administrators cannot be timed out', {
          reason: 'exempt',
        })
      }
      return setTimeout_.executeTakeFirstOrThrow(trx, { guild_id, user_id, until })
    },
    audit: (_row, target) => ({
      guild_id,
      action: 'member_timeout',
      target_id: user_id,
      changes: {
        communication_disabled_until: {
          before: target.communication_disabled_until?.toISOString() ?? null,
          after: until?.toISOString() ?? null,
        },
      },
    }),
  })
}
