/**
 * Users: accounts, username/email lookups under the identity rule, profile
 * updates and the secret columns (`password_hash`, `mfa_secret`), which only
 * {@link findUserCredentials} reads.
 *
 * The identity rule (docs/identity.md): two usernames, or two emails, are the
 * same when `guildstore_identity_key()` (migration 0002: NFKC, default-ignorable
 * characters removed, full Unicode case folding) gives the same key. Uniqueness
 * (the unique indexes on the key) and every lookup here call that one SQL
 * function; nothing re-implements it in JavaScript.
 */
import { type Kysely, sql } from 'kysely'
import type { DB, UserStatus, Users } from '../../codegen/db.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { newId } from '../ids/new-id.ts'
import { MIN_UUID } from '../ids/uuid-bounds.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { dynamicQuery, mapErrors, prepareQuery } from '../sql/index.ts'
import {
  assertObject,
  assertOneOf,
  assertOptionalText,
  assertText,
  assertUuid,
  assertUuidArray,
  defineFields,
  text,
} from '../validation/index.ts'

/**
 * The columns every user-returning function selects: never `password_hash`
 * or `mfa_secret` (a secret here is a compile-time error).
 */
export const userColumns = columnList<Users>()([
  'id',
  'username',
  'email',
  'display_name',
  'avatar_url',
  'status',
  'created_at',
  'updated_at',
])

/** A user as every user-returning function returns it: never `password_hash` or `mfa_secret`. */
export type User = Projection<Users, typeof userColumns>

/** What {@link findUserCredentials} returns: the only read of the secret columns. */
export interface UserCredentials {
  id: string
  password_hash: string | null
  mfa_secret: string | null
}

/** Length rules of the `users` columns (the CHECKs of the schema). */
export const userFields = defineFields('users', {
  username: text(2, 32),
  email: text(3, 320),
  password_hash: text(1, 1024),
  mfa_secret: text(1, 1024),
  display_name: text(1, 64),
  avatar_url: text(1, 2048),
})

/** The values of the `user_status` enum. */
export const USER_STATUSES = [
  'online',
  'away',
  'busy',
  'offline',
] as const satisfies readonly UserStatus[]

/** At most this many ids per {@link findUsersByIds} call. */
export const MAX_USER_IDS = 10_000

const USERNAME = userFields.username
const EMAIL = userFields.email
const DISPLAY_NAME = userFields.display_name
const AVATAR_URL = userFields.avatar_url

// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/**
 * Username rule: 2–32 characters, no control characters, no leading/trailing
 * whitespace, no `@` (also not a character NFKC turns into `@`, like `＠`): a
 * login containing `@` is an email, so no username can pose as one. The
 * database enforces the `@` rule too (CHECK `users_username_no_at`).
 */
function assertUsername(value: unknown): asserts value is string {
  assertText(value, 'username', USERNAME)
  if (value.normalize('NFKC').includes('@')) {
    throw new InvalidInputError('username must not contain "@"', { field: 'username' })
  }
  if (CONTROL.test(value)) {
    throw new InvalidInputError('username must not contain control characters', {
      field: 'username',
    })
  }
  if (value.trim() !== value) {
    throw new InvalidInputError('username must not start or end with whitespace', {
      field: 'username',
    })
  }
}

/** Email rule (the schema's CHECK): at most 320 characters with an `@` neither first nor last; no leading/trailing whitespace. */
function assertEmail(value: unknown): asserts value is string {
  assertText(value, 'email', EMAIL)
  const at = value.indexOf('@', 1)
  if (at < 1 || at >= value.length - 1) {
    throw new InvalidInputError('email must contain an @ that is neither first nor last', {
      field: 'email',
    })
  }
  if (value.trim() !== value) {
    throw new InvalidInputError('email must not start or end with whitespace', { field: 'email' })
  }
}

/** Input of {@link createUser}. */
export interface CreateUserInput {
  /** 2–32 characters, no `@`; unique under the identity rule (NFKC + case folding). */
  username: string
  /** At most 320 characters with an `@`; unique under the identity rule. */
  email?: string | null | undefined
  /** The password hash (e.g. argon2id PHC string), 1–1024 characters. */
  password_hash?: string | null | undefined
  /** 1–64 characters. */
  display_name?: string | null | undefined
  /** Default `'offline'`. */
  status?: UserStatus | undefined
}

/** Patch of {@link updateUser}: `undefined` leaves a field, `null` clears it. */
export interface UpdateUserPatch {
  display_name?: string | null | undefined
  email?: string | null | undefined
  avatar_url?: string | null | undefined
}

const insertUser = prepareQuery(
  'users.insert',
  (
    db,
    p: {
      id: string
      username: string
      email: string | null
      password_hash: string | null
      display_name: string | null
      status: UserStatus
    },
  ) =>
    db
      .insertInto('users')
      .values({
        id: p.id,
        username: p.username,
        email: p.email,
        password_hash: p.password_hash,
        display_name: p.display_name,
        status: p.status,
      })
      .returning(userColumns),
)

const selectUserById = prepareQuery('users.by_id', (db, p: { id: string }) =>
  db.selectFrom('users').select(userColumns).where('id', '=', p.id),
)

// Every lookup compares identity keys: the same function as the unique indexes
// users_username_identity_key / users_email_identity_key, which serve these.
const selectUserByUsername = prepareQuery('users.by_username', (db, p: { username: string }) =>
  db
    .selectFrom('users')
    .select(userColumns)
    .where(
      sql<boolean>`guildstore_identity_key(username) = guildstore_identity_key(${p.username}::text)`,
    ),
)

const selectUserByEmail = prepareQuery('users.by_email', (db, p: { email: string }) =>
  db
    .selectFrom('users')
    .select(userColumns)
    .where(
      sql<boolean>`guildstore_identity_key(email) = guildstore_identity_key(${p.email}::text)`,
    ),
)

const selectUsersByIds = prepareQuery('users.by_ids', (db, p: { ids: readonly string[] }) =>
  db.selectFrom('users').select(userColumns).where(sql<boolean>`id = any(${p.ids}::uuid[])`),
)

const selectCredentials = prepareQuery('users.credentials', (db, p: { login: string }) =>
  db
    .selectFrom('users')
    .select(['id', 'password_hash', 'mfa_secret'])
    // No username key contains '@' (CHECK users_username_no_at) and every email
    // does, so a login matches a username or an email, never both: at most one row.
    .where(
      sql<boolean>`guildstore_identity_key(username) = guildstore_identity_key(${p.login}::text) or guildstore_identity_key(email) = guildstore_identity_key(${p.login}::text)`,
    )
    .limit(1),
)

const updateStatus = prepareQuery(
  'users.update_status',
  (db, p: { id: string; status: UserStatus }) =>
    db
      .updateTable('users')
      .set({ status: p.status, updated_at: sql`now()` })
      .where('id', '=', p.id)
      .returning(userColumns),
)

const updatePassword = prepareQuery(
  'users.update_password',
  (db, p: { id: string; password_hash: string }) =>
    db
      .updateTable('users')
      .set({ password_hash: p.password_hash, updated_at: sql`now()` })
      .where('id', '=', p.id),
)

const updateMfaSecret = prepareQuery(
  'users.update_mfa_secret',
  (db, p: { id: string; mfa_secret: string | null }) =>
    db
      .updateTable('users')
      .set({ mfa_secret: p.mfa_secret, updated_at: sql`now()` })
      .where('id', '=', p.id),
)

/** The columns {@link updateUser} may set. */
type ProfileSet = {
  display_name?: string | null
  email?: string | null
  avatar_url?: string | null
}

// Sets only the patched columns: one shape per combination, sent unnamed.
const updateProfile = dynamicQuery(
  'users.update_profile',
  (db, id: string, set: ProfileSet) =>
    db
      .updateTable('users')
      .set({ ...set, updated_at: sql`now()` })
      .where('id', '=', id)
      .returning(userColumns),
  [[MIN_UUID, { display_name: '', email: '', avatar_url: '' }]],
)

const deleteUserById = prepareQuery('users.delete', (db, p: { id: string }) =>
  db.deleteFrom('users').where('id', '=', p.id),
)

/**
 * Creates a user with a new UUIDv7 id.
 *
 * Username: 2–32 characters, no control characters, no leading/trailing
 * whitespace, no `@`. Email: at most 320 characters with an `@` neither first
 * nor last. Both are unique under the identity rule (NFKC + full case folding:
 * `'STRAßE'` is taken by `'strasse'`, NFD `'José'` by NFC `'José'`).
 *
 * @throws {InvalidInputError} when a field breaks its rule (nothing is written).
 * @throws {UniqueViolationError} when the username or email is taken under the
 *   identity rule (`columns` is `['username']` or `['email']`).
 * @example
 * ```ts
 * const user = await createUser(db, { username: 'ada', email: 'ada@example.com', password_hash })
 * // insert into "users" (…) values ($1, …) returning "id", "username", …
 * ```
 */
export async function createUser(db: Kysely<DB>, input: CreateUserInput): Promise<User> {
  assertObject(input, 'input')
  assertUsername(input.username)
  if (input.email !== undefined && input.email !== null) assertEmail(input.email)
  assertOptionalText(input.password_hash, 'password_hash', userFields.password_hash)
  assertOptionalText(input.display_name, 'display_name', DISPLAY_NAME)
  const status = input.status === undefined ? 'offline' : input.status
  assertOneOf(status, 'status', USER_STATUSES)
  return insertUser.executeTakeFirstOrThrow(db, {
    id: newId(),
    username: input.username,
    email: input.email ?? null,
    password_hash: input.password_hash ?? null,
    display_name: input.display_name ?? null,
    status,
  })
}

/**
 * Finds a user by id.
 *
 * @throws {InvalidInputError} when `id` is not a UUID.
 * @example
 * ```ts
 * const user = await findUserById(db, id) // select … from "users" where "id" = $1
 * ```
 */
export async function findUserById(db: Kysely<DB>, id: string): Promise<User | undefined> {
  assertUuid(id, 'id')
  return selectUserById.executeTakeFirst(db, { id })
}

/**
 * Finds a user by username under the identity rule (NFKC + full case folding;
 * uses the unique index on `guildstore_identity_key(username)`).
 *
 * @throws {InvalidInputError} when `username` is not a string of 2–32
 *   characters without NUL or lone surrogates.
 * @example
 * ```ts
 * const user = await findUserByUsername(db, 'Ada') // finds 'ada'
 * // select … from "users" where guildstore_identity_key(username) = guildstore_identity_key($1::text)
 * ```
 */
export async function findUserByUsername(
  db: Kysely<DB>,
  username: string,
): Promise<User | undefined> {
  assertText(username, 'username', USERNAME)
  return selectUserByUsername.executeTakeFirst(db, { username })
}

/**
 * Finds a user by email under the identity rule (NFKC + full case folding; uses
 * the unique index on `guildstore_identity_key(email)`).
 *
 * @throws {InvalidInputError} when `email` is not a string of 3–320 characters
 *   without NUL or lone surrogates.
 * @example
 * ```ts
 * const user = await findUserByEmail(db, 'Ada@Example.com')
 * // select … from "users" where guildstore_identity_key(email) = guildstore_identity_key($1::text)
 * ```
 */
export async function findUserByEmail(db: Kysely<DB>, email: string): Promise<User | undefined> {
  assertText(email, 'email', EMAIL)
  return selectUserByEmail.executeTakeFirst(db, { email })
}

/**
 * Finds the users with the given ids in one query, in no particular order.
 * Unknown ids are left out; a duplicated id gives its user once.
 *
 * @throws {InvalidInputError} when `ids` is not an array of UUIDs or holds more
 *   than {@link MAX_USER_IDS} (10 000) entries.
 * @example
 * ```ts
 * const authors = await findUsersByIds(db, messages.map((m) => m.author_id))
 * // select … from "users" where id = any($1::uuid[])
 * ```
 */
export async function findUsersByIds(db: Kysely<DB>, ids: readonly string[]): Promise<User[]> {
  assertUuidArray(ids, 'ids', MAX_USER_IDS)
  if (ids.length === 0) return []
  return selectUsersByIds.execute(db, { ids })
}

/**
 * Reads a user's secrets for a login: a login containing `@` is matched against
 * the emails, any other against the usernames (no username contains `@`), both
 * under the identity rule. The only function that reads `password_hash` and
 * `mfa_secret`.
 *
 * @throws {InvalidInputError} when `usernameOrEmail` is not a string of 1–320
 *   characters without NUL or lone surrogates.
 * @example
 * ```ts
 * const creds = await findUserCredentials(db, form.login)
 * if (!creds?.password_hash || !(await argon2.verify(creds.password_hash, form.password))) return deny()
 * ```
 */
export async function findUserCredentials(
  db: Kysely<DB>,
  usernameOrEmail: string,
): Promise<UserCredentials | undefined> {
  assertText(usernameOrEmail, 'usernameOrEmail', { min: 1, max: EMAIL.max })
  return selectCredentials.executeTakeFirst(db, { login: usernameOrEmail })
}

/**
 * Updates a user's profile fields and `updated_at`. `undefined` leaves a field
 * as it is, `null` clears it; an empty patch returns the current row unchanged.
 *
 * @throws {InvalidInputError} when `id` is not a UUID or a field breaks its rule.
 * @throws {UniqueViolationError} when the new email is taken under the identity rule.
 * @example
 * ```ts
 * const user = await updateUser(db, id, { display_name: 'Ada L.', avatar_url: null })
 * // update "users" set "display_name" = $1, "avatar_url" = $2, "updated_at" = now() where "id" = $3 returning …
 * ```
 */
export async function updateUser(
  db: Kysely<DB>,
  id: string,
  patch: UpdateUserPatch,
): Promise<User | undefined> {
  assertUuid(id, 'id')
  assertObject(patch, 'patch')
  assertOptionalText(patch.display_name, 'display_name', DISPLAY_NAME)
  if (patch.email !== undefined && patch.email !== null) assertEmail(patch.email)
  assertOptionalText(patch.avatar_url, 'avatar_url', AVATAR_URL)
  const set: ProfileSet = {}
  if (patch.display_name !== undefined) set.display_name = patch.display_name
  if (patch.email !== undefined) set.email = patch.email
  if (patch.avatar_url !== undefined) set.avatar_url = patch.avatar_url
  if (Object.keys(set).length === 0) return selectUserById.executeTakeFirst(db, { id })
  return mapErrors(updateProfile(db, id, set).executeTakeFirst())
}

/**
 * Sets a user's presence status (and `updated_at`).
 *
 * @throws {InvalidInputError} when `id` is not a UUID or `status` is not one of
 *   `'online' | 'away' | 'busy' | 'offline'`.
 * @example
 * ```ts
 * await updateUserStatus(db, id, 'away')
 * // update "users" set "status" = $1, "updated_at" = now() where "id" = $2 returning …
 * ```
 */
export async function updateUserStatus(
  db: Kysely<DB>,
  id: string,
  status: UserStatus,
): Promise<User | undefined> {
  assertUuid(id, 'id')
  assertOneOf(status, 'status', USER_STATUSES)
  return updateStatus.executeTakeFirst(db, { id, status })
}

/**
 * Replaces a user's password hash. Returns whether the user exists.
 *
 * @throws {InvalidInputError} when `id` is not a UUID or `password_hash` is not
 *   1–1024 characters (the error never contains the value).
 * @example
 * ```ts
 * const ok = await setUserPassword(db, id, await argon2.hash(newPassword))
 * ```
 */
export async function setUserPassword(
  db: Kysely<DB>,
  id: string,
  password_hash: string,
): Promise<boolean> {
  assertUuid(id, 'id')
  assertText(password_hash, 'password_hash', userFields.password_hash)
  return (await updatePassword.executeAffected(db, { id, password_hash })) > 0
}

/**
 * Sets (or with `null` clears) a user's MFA secret. Returns whether the user exists.
 *
 * @throws {InvalidInputError} when `id` is not a UUID or `secret` is neither
 *   `null` nor 1–1024 characters (the error never contains the value).
 * @example
 * ```ts
 * await setUserMfaSecret(db, id, encryptedTotpSecret)
 * await setUserMfaSecret(db, id, null) // MFA off
 * ```
 */
export async function setUserMfaSecret(
  db: Kysely<DB>,
  id: string,
  secret: string | null,
): Promise<boolean> {
  assertUuid(id, 'id')
  if (secret !== null) assertText(secret, 'mfa_secret', userFields.mfa_secret)
  return (await updateMfaSecret.executeAffected(db, { id, mfa_secret: secret })) > 0
}

/**
 * Deletes a user. Foreign keys cascade to everything the user owns: sessions,
 * friendships, memberships, owned guilds, messages, DMs. Returns whether a row
 * was deleted.
 *
 * @throws {InvalidInputError} when `id` is not a UUID.
 * @example
 * ```ts
 * await deleteUser(db, id) // delete from "users" where "id" = $1
 * ```
 */
export async function deleteUser(db: Kysely<DB>, id: string): Promise<boolean> {
  assertUuid(id, 'id')
  return (await deleteUserById.executeAffected(db, { id })) > 0
}
