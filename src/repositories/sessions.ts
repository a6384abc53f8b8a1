/**
 * Sessions: refresh tokens, stored only as the SHA-256 hex of the token
 * (see `hashToken`). A returned {@link Session} never carries `token_hash`:
 * the caller already holds it.
 */
import { isIP } from 'node:net'
import { type Kysely, sql } from 'kysely'
import type { DB, Sessions } from '../../codegen/db.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { newId } from '../ids/new-id.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { prepareQuery } from '../sql/index.ts'
import {
  assertDate,
  assertObject,
  assertOptionalText,
  assertText,
  assertUuid,
  defineFields,
  pattern,
  text,
} from '../validation/index.ts'

/** The columns every session-returning function selects: never `token_hash`. */
export const sessionColumns = columnList<Sessions>()([
  'id',
  'user_id',
  'expires_at',
  'ip_address',
  'user_agent',
  'created_at',
])

/** A session (refresh token). `token_hash` is left out: the caller already holds it. */
export type Session = Projection<Sessions, typeof sessionColumns>

/** Length rules of the `sessions` columns (the CHECKs of the schema). */
export const sessionFields = defineFields('sessions', {
  token_hash: pattern(/^[0-9a-f]{64}$/),
  user_agent: text(0, 1024),
})

/** A token hash: 64 lowercase hex digits, what `hashToken` returns. */
function assertTokenHash(value: unknown): asserts value is string {
  if (typeof value !== 'string' || !sessionFields.token_hash.pattern.test(value)) {
    throw new InvalidInputError('token_hash must be 64 lowercase hex digits (a SHA-256)', {
      field: 'token_hash',
    })
  }
}

/** An IPv4 or IPv6 address (as `node:net` `isIP` accepts it). */
function assertIpAddress(value: unknown): asserts value is string {
  assertText(value, 'ip_address', { min: 2, max: 64 })
  if (isIP(value) === 0) {
    throw new InvalidInputError('ip_address must be an IPv4 or IPv6 address', {
      field: 'ip_address',
    })
  }
}

/** Input of {@link createSession}. */
export interface CreateSessionInput {
  user_id: string
  /** SHA-256 hex of the refresh token (`hashToken(token)`): 64 lowercase hex digits, unique. */
  token_hash: string
  expires_at: Date
  /** The client's IPv4 or IPv6 address. */
  ip_address?: string | null | undefined
  /** At most 1024 characters. */
  user_agent?: string | null | undefined
}

const insertSession = prepareQuery(
  'sessions.insert',
  (
    db,
    p: {
      id: string
      user_id: string
      token_hash: string
      expires_at: Date
      ip_address: string | null
      user_agent: string | null
    },
  ) =>
    db
      .insertInto('sessions')
      .values({
        id: p.id,
        user_id: p.user_id,
        token_hash: p.token_hash,
        expires_at: p.expires_at,
        ip_address: p.ip_address,
        user_agent: p.user_agent,
      })
      .returning(sessionColumns),
)

const selectLiveSession = prepareQuery(
  'sessions.live_by_token_hash',
  (db, p: { token_hash: string }) =>
    db
      .selectFrom('sessions')
      .select(sessionColumns)
      .where('token_hash', '=', p.token_hash)
      .where('expires_at', '>', sql<Date>`now()`),
)

const deleteSessionById = prepareQuery('sessions.delete', (db, p: { id: string }) =>
  db.deleteFrom('sessions').where('id', '=', p.id),
)

const deleteSessionsOfUser = prepareQuery('sessions.delete_of_user', (db, p: { user_id: string }) =>
  db.deleteFrom('sessions').where('user_id', '=', p.user_id),
)

const deleteExpired = prepareQuery('sessions.delete_expired', (db) =>
  db.deleteFrom('sessions').where('expires_at', '<=', sql<Date>`now()`),
)

/**
 * Creates a session (a refresh token) with a new UUIDv7 id.
 *
 * @throws {InvalidInputError} when `user_id` is not a UUID, `token_hash` is not
 *   64 lowercase hex digits, `expires_at` is not a valid `Date`, `ip_address` is
 *   not an IP address or `user_agent` is longer than 1024 characters (nothing
 *   is written; the error never contains the token hash).
 * @throws {ForeignKeyViolationError} when the user does not exist.
 * @throws {UniqueViolationError} when a session with this token hash exists.
 * @example
 * ```ts
 * const token = randomBytes(32).toString('base64url')
 * const session = await createSession(db, {
 *   user_id, token_hash: hashToken(token), expires_at: new Date(Date.now() + 30 * 86_400_000),
 *   ip_address: req.ip, user_agent: req.headers['user-agent'],
 * })
 * ```
 */
export async function createSession(db: Kysely<DB>, input: CreateSessionInput): Promise<Session> {
  assertObject(input, 'input')
  assertUuid(input.user_id, 'user_id')
  assertTokenHash(input.token_hash)
  assertDate(input.expires_at, 'expires_at')
  if (input.ip_address !== undefined && input.ip_address !== null) {
    assertIpAddress(input.ip_address)
  }
  assertOptionalText(input.user_agent, 'user_agent', sessionFields.user_agent)
  return insertSession.executeTakeFirstOrThrow(db, {
    id: newId(),
    user_id: input.user_id,
    token_hash: input.token_hash,
    expires_at: input.expires_at,
    ip_address: input.ip_address ?? null,
    user_agent: input.user_agent ?? null,
  })
}

/**
 * Finds the unexpired session (`expires_at > now()`) with this token hash.
 *
 * @throws {InvalidInputError} when `token_hash` is not 64 lowercase hex digits.
 * @example
 * ```ts
 * const session = await findSessionByTokenHash(db, hashToken(cookieToken))
 * // select … from "sessions" where "token_hash" = $1 and "expires_at" > now()
 * ```
 */
export async function findSessionByTokenHash(
  db: Kysely<DB>,
  token_hash: string,
): Promise<Session | undefined> {
  assertTokenHash(token_hash)
  return selectLiveSession.executeTakeFirst(db, { token_hash })
}

/**
 * Deletes one session (a logout). Returns whether it existed.
 *
 * @throws {InvalidInputError} when `id` is not a UUID.
 * @example
 * ```ts
 * await deleteSession(db, session.id)
 * ```
 */
export async function deleteSession(db: Kysely<DB>, id: string): Promise<boolean> {
  assertUuid(id, 'id')
  return (await deleteSessionById.executeAffected(db, { id })) > 0
}

/**
 * Deletes every session of a user (log out everywhere). Returns how many.
 *
 * @throws {InvalidInputError} when `user_id` is not a UUID.
 * @example
 * ```ts
 * const n = await deleteUserSessions(db, user.id)
 * ```
 */
export async function deleteUserSessions(db: Kysely<DB>, user_id: string): Promise<number> {
  assertUuid(user_id, 'user_id')
  return deleteSessionsOfUser.executeAffected(db, { user_id })
}

/**
 * Deletes every expired session (`expires_at <= now()`, using the index on
 * `expires_at`). Returns how many. Run it periodically.
 *
 * @example
 * ```ts
 * setInterval(() => deleteExpiredSessions(db).catch(log), 3_600_000)
 * // delete from "sessions" where "expires_at" <= now()
 * ```
 */
export async function deleteExpiredSessions(db: Kysely<DB>): Promise<number> {
  return deleteExpired.executeAffected(db, {})
}
