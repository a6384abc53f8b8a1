import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import type { DB, GuildInvites } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import type { ActingAs } from '../errors/permission-denied-error.ts'
import { Permissions } from '../permissions/permissions.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { inTransaction, prepareQuery } from '../sql/index.ts'
import {
  assertDate,
  assertInRange,
  assertObject,
  assertUuid,
  defineFields,
  integer,
  pattern,
} from '../validation/index.ts'
import { administer } from './administer.ts'
import { assertActingAs, auditChanges } from './internal.ts'
import { type GuildMember, guildMemberColumns } from './members.ts'

/** The columns every invite-returning function selects. */
export const inviteColumns = columnList<GuildInvites>()([
  'id',
  'code',
  'guild_id',
  'inviter_id',
  'max_uses',
  'uses',
  'expires_at',
  'revoked_at',
  'created_at',
])

/** A guild invite: `code` lets anyone holding it join; `uses` never exceeds `max_uses`. */
export type Invite = Projection<GuildInvites, typeof inviteColumns>

/** Rules of the `guild_invites` columns (the CHECKs of the schema). */
export const inviteFields = defineFields('guild_invites', {
  code: pattern(/^[A-Za-z0-9_-]{8,64}$/),
  max_uses: integer(1),
  uses: integer(0),
})

/** The invite fields an audit entry records (never the code: it grants entry). */
const INVITE_FIELDS = ['inviter_id', 'max_uses', 'expires_at', 'revoked_at'] as const

const insertInvite = prepareQuery(
  'guild_invites.insert',
  (
    db,
    p: {
      code: string
      guild_id: string
      inviter_id: string
      max_uses: number | null
      expires_at: Date | null
    },
  ) =>
    db
      .insertInto('guild_invites')
      .values({
        code: p.code,
        guild_id: p.guild_id,
        inviter_id: p.inviter_id,
        max_uses: p.max_uses,
        expires_at: p.expires_at,
      })
      .returning(inviteColumns),
)

const selectInviteByCode = prepareQuery('guild_invites.by_code', (db, p: { code: string }) =>
  db
    .selectFrom('guild_invites')
    .select([
      ...inviteColumns,
      sql<boolean>`(expires_at is not null and expires_at <= now())`.as('expired'),
    ])
    .where('code', '=', p.code),
)

// FOR UPDATE: the uses of one invite are counted one join at a time.
const lockInviteByCode = prepareQuery('guild_invites.lock_by_code', (db, p: { code: string }) =>
  db
    .selectFrom('guild_invites')
    .select([
      ...inviteColumns,
      sql<boolean>`(expires_at is not null and expires_at <= now())`.as('expired'),
    ])
    .where('code', '=', p.code)
    .forUpdate(),
)

const selectMember = prepareQuery(
  'guild_invites.member',
  (db, p: { guild_id: string; user_id: string }) =>
    db
      .selectFrom('guild_members')
      .select(guildMemberColumns)
      .where('guild_id', '=', p.guild_id)
      .where('user_id', '=', p.user_id),
)

// A concurrent join of the same user waits on the key and then does nothing.
const insertMemberIfAbsent = prepareQuery(
  'guild_invites.join',
  (db, p: { guild_id: string; user_id: string }) =>
    db
      .insertInto('guild_members')
      .values({ guild_id: p.guild_id, user_id: p.user_id })
      .onConflict((oc) => oc.columns(['guild_id', 'user_id']).doNothing())
      .returning(guildMemberColumns),
)

// Conditional, so uses can never pass max_uses even without the row lock.
const consumeUse = prepareQuery('guild_invites.consume_use', (db, p: { id: string }) =>
  db
    .updateTable('guild_invites')
    .set({ uses: sql`uses + 1` })
    .where('id', '=', p.id)
    .where('revoked_at', 'is', null)
    .where(sql<boolean>`(expires_at is null or expires_at > now())`)
    .where(sql<boolean>`(max_uses is null or uses < max_uses)`)
    .returning('uses'),
)

const revokeInviteById = prepareQuery('guild_invites.revoke', (db, p: { id: string }) =>
  db
    .updateTable('guild_invites')
    .set({ revoked_at: sql`now()` })
    .where('id', '=', p.id)
    .where('revoked_at', 'is', null)
    .returning(inviteColumns),
)

const selectGuildInvites = prepareQuery(
  'guild_invites.list_of_guild',
  (db, p: { guild_id: string }) =>
    db
      .selectFrom('guild_invites')
      .select(inviteColumns)
      .where('guild_id', '=', p.guild_id)
      .orderBy('id'),
)

function assertCode(value: unknown): asserts value is string {
  if (typeof value !== 'string' || !inviteFields.code.pattern.test(value)) {
    throw new InvalidInputError('code must be 8 to 64 characters of A-Z a-z 0-9 _ -', {
      field: 'code',
    })
  }
}

/** A new invite code: 128 bits from the operating system's CSPRNG, base64url (22 characters). */
function newInviteCode(): string {
  return randomBytes(16).toString('base64url')
}

/** Input of {@link createInvite}. */
export interface CreateInviteInput {
  guild_id: string
  /** Who invites (a user). */
  inviter_id: string
  /** How many joins it allows, 1 to 2^31-1; none: unlimited. */
  max_uses?: number | null | undefined
  /** When it stops working (in the future); none: never. */
  expires_at?: Date | null | undefined
}

/**
 * Creates an invite to a guild with an unguessable code (128 bits from a
 * CSPRNG), an optional use limit and expiry; writes the audit entry
 * (`invite_create`, without the code) in the same transaction. With `as`, the
 * actor needs `CREATE_INSTANT_INVITE`.
 *
 * @throws {InvalidInputError} when an id is not a UUID, `max_uses` is not an
 *   integer 1–2^31-1 or `expires_at` not a future Date.
 * @throws {ForeignKeyViolationError} when the guild or the inviter does not exist.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * const invite = await createInvite(db, { guild_id, inviter_id: user.id, max_uses: 10 })
 * const link = `https://chat.example/invite/${invite.code}`
 * ```
 */
export async function createInvite(
  db: Kysely<DB>,
  input: CreateInviteInput,
  as?: ActingAs,
): Promise<Invite> {
  assertObject(input, 'input')
  assertUuid(input.guild_id, 'guild_id')
  assertUuid(input.inviter_id, 'inviter_id')
  if (input.max_uses != null) assertInRange(input.max_uses, 'max_uses', inviteFields.max_uses)
  if (input.expires_at != null) {
    assertDate(input.expires_at, 'expires_at')
    if (input.expires_at.getTime() <= Date.now()) {
      throw new InvalidInputError('expires_at must be in the future', { field: 'expires_at' })
    }
  }
  assertActingAs(as)
  const { guild_id, inviter_id } = input
  return administer(db, as, {
    rule: () => ({ guild_id, permission: Permissions.CREATE_INSTANT_INVITE }),
    apply: (trx) =>
      insertInvite.executeTakeFirstOrThrow(trx, {
        code: newInviteCode(),
        guild_id,
        inviter_id,
        max_uses: input.max_uses ?? null,
        expires_at: input.expires_at ?? null,
      }),
    audit: (invite) => ({
      guild_id,
      action: 'invite_create',
      target_id: invite.id,
      changes: auditChanges(null, invite, INVITE_FIELDS),
    }),
  })
}

/** Input of {@link useInvite}. */
export interface UseInviteInput {
  /** The invite's code. */
  code: string
  /** Who joins. */
  user_id: string
}

function refusal(invite: { revoked_at: Date | null; expired: boolean }): ConflictError {
  if (invite.revoked_at !== null) {
    return new ConflictError('the invite was revoked', { reason: 'revoked' })
  }
  if (invite.expired) return new ConflictError('the invite has expired', { reason: 'expired' })
  return new ConflictError('the invite has no uses left', { reason: 'exhausted' })
}

/**
 * Joins a guild with an invite. Race-free: the invite's row is locked while
 * one join is counted, and the count is a conditional update, so with
 * `max_uses` N exactly N users join however many try at once. A user who is
 * already a member gets their membership back (`joined: false`) and consumes
 * no use.
 *
 * @throws {InvalidInputError} when `code` is not an invite code or `user_id` not a UUID.
 * @throws {NotFoundError} when no invite has that code (`entity: 'invite'`).
 * @throws {ConflictError} `reason: 'revoked' | 'expired' | 'exhausted'`, or
 *   `'banned'` while a ban of the user stands in the guild. Nothing is written.
 * @example
 * ```ts
 * const { member, joined } = await useInvite(db, { code, user_id })
 * ```
 */
export async function useInvite(
  db: Kysely<DB>,
  input: UseInviteInput,
): Promise<{ member: GuildMember; joined: boolean }> {
  assertObject(input, 'input')
  assertCode(input.code)
  assertUuid(input.user_id, 'user_id')
  const { code, user_id } = input
  return inTransaction(db, async (trx) => {
    const found = await selectInviteByCode.executeTakeFirst(trx, { code })
    if (!found) throw new NotFoundError('invite not found', { entity: 'invite' })
    const existing = await selectMember.executeTakeFirst(trx, {
      guild_id: found.guild_id,
      user_id,
    })
    if (existing) return { member: existing, joined: false }
    const invite = await lockInviteByCode.executeTakeFirst(trx, { code })
    if (!invite) throw new NotFoundError('invite not found', { entity: 'invite' })
    const usable =
      invite.revoked_at === null &&
      !invite.expired &&
      (invite.max_uses === null || invite.uses < invite.max_uses)
    if (!usable) throw refusal(invite)
    // The ban trigger refuses a banned user here (ConflictError 'banned').
    const member = await insertMemberIfAbsent.executeTakeFirst(trx, {
      guild_id: invite.guild_id,
      user_id,
    })
    if (!member) {
      // Joined concurrently by another path: no use consumed.
      const now = await selectMember.executeTakeFirst(trx, { guild_id: invite.guild_id, user_id })
      if (now) return { member: now, joined: false }
      throw new NotFoundError('membership vanished', { entity: 'guild_member' })
    }
    const used = await consumeUse.executeTakeFirst(trx, { id: invite.id })
    // Unreachable while the row lock is held; kept as the last line of defence.
    if (!used) throw refusal(invite)
    return { member, joined: true }
  })
}

/**
 * Revokes an invite (it stops working at once), with its audit entry
 * (`invite_revoke`) in the same transaction. With `as`, the actor needs
 * `MANAGE_GUILD`, unless they created the invite (then membership suffices).
 *
 * @returns `false` when no invite has that code or it was already revoked.
 * @throws {InvalidInputError} when `code` is not an invite code.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await revokeInvite(db, { code }, { actor_id: modId })
 * ```
 */
export async function revokeInvite(
  db: Kysely<DB>,
  input: { code: string },
  as?: ActingAs,
): Promise<boolean> {
  assertObject(input, 'input')
  assertCode(input.code)
  assertActingAs(as)
  return administer(db, as, {
    lock: (trx) => lockInviteByCode.executeTakeFirst(trx, { code: input.code }),
    missing: () => undefined,
    rule: (invite) => ({
      guild_id: invite.guild_id,
      // The inviter may revoke their own invite; anyone else needs MANAGE_GUILD.
      permission: invite.inviter_id === as?.actor_id.toLowerCase() ? 0n : Permissions.MANAGE_GUILD,
    }),
    apply: (trx, invite) => revokeInviteById.executeTakeFirst(trx, { id: invite.id }),
    audit: (revoked, invite) =>
      revoked
        ? {
            guild_id: invite.guild_id,
            action: 'invite_revoke',
            target_id: invite.id,
            changes: auditChanges(invite, revoked, INVITE_FIELDS),
          }
        : null,
  }).then((revoked) => revoked !== undefined)
}

/**
 * Lists a guild's invites (revoked, expired and used-up ones included), oldest first.
 *
 * @throws {InvalidInputError} when `guild_id` is not a UUID.
 * @example
 * ```ts
 * const invites = await listGuildInvites(db, guild_id)
 * ```
 */
export async function listGuildInvites(db: Kysely<DB>, guild_id: string): Promise<Invite[]> {
  assertUuid(guild_id, 'guild_id')
  return selectGuildInvites.execute(db, { guild_id })
}
