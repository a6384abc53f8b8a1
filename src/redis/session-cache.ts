import { InvalidInputError } from '../errors/index.ts'
import { guard, type RedisClient } from './client.ts'
import { decodeEnvelope, encodeEnvelope, MalformedPayloadError } from './codec.ts'
import { bindScript, type ScriptDefinition } from './define-script.ts'
import { keysFor } from './keys.ts'
import { type NamespaceOptions, resolveNamespace } from './namespace.ts'
import { assertKeyPart, assertTtlSeconds } from './validate.ts'

/** Deletes KEYS[1] only while it still holds ARGV[1] (so a fresh value written meanwhile survives). */
const DELETE_IF_EQUAL: ScriptDefinition = {
  name: 'guildstoreDeleteIfEqual',
  lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
  numberOfKeys: 1,
}

/**
 * Caches a user's session data for `ttlSeconds`, replacing what was there.
 * Key: `[<namespace>:]session:<user_id>`. Stored as versioned JSON; Dates and
 * bigints come back as such. The data is never logged nor put in an error.
 *
 * @throws {InvalidInputError} When `user_id` is empty, longer than 512 characters or
 * has a NUL byte, `data` is `undefined` or holds an invalid Date, or `ttlSeconds` is not a positive integer.
 * @throws {RedisUnavailableError} When Redis fails or the call times out.
 * @example
 * ```ts
 * await cacheSession(redis, user.id, { user, roles, expires_at }, 300)
 * ```
 */
export async function cacheSession<T>(
  redis: RedisClient,
  user_id: string,
  data: T,
  ttlSeconds: number,
  options?: NamespaceOptions,
): Promise<void> {
  assertKeyPart(user_id, 'user_id')
  assertTtlSeconds(ttlSeconds)
  if (data === undefined)
    throw new InvalidInputError('data must not be undefined', { field: 'data' })
  const key = keysFor(resolveNamespace(redis, options)).session(user_id)
  const payload = encodeEnvelope('data', data)
  await guard(redis, 'cacheSession', () => redis.set(key, payload, 'EX', ttlSeconds))
}

/**
 * Reads a user's cached session data.
 *
 * @returns The data, or `undefined` when none is cached. A value that cannot be
 * read (corrupt JSON, another writer's format) is deleted and reads as `undefined`.
 * @throws {InvalidInputError} When `user_id` is malformed.
 * @throws {RedisUnavailableError} When Redis fails or the call times out.
 * @example
 * ```ts
 * const cached = await getCachedSession<SessionData>(redis, userId)
 * ```
 */
export async function getCachedSession<T = unknown>(
  redis: RedisClient,
  user_id: string,
  options?: NamespaceOptions,
): Promise<T | undefined> {
  assertKeyPart(user_id, 'user_id')
  const key = keysFor(resolveNamespace(redis, options)).session(user_id)
  const raw = await guard(redis, 'getCachedSession', () => redis.get(key))
  if (raw === null) return undefined
  try {
    return decodeEnvelope(raw, 'data') as T
  } catch (error) {
    if (!(error instanceof MalformedPayloadError)) throw error
    await guard(redis, 'getCachedSession', () => bindScript(redis, DELETE_IF_EQUAL)(key, raw))
    return undefined
  }
}

/**
 * Drops a user's cached session data (e.g. on logout or a permission change).
 *
 * @returns Whether something was cached.
 * @throws {InvalidInputError} When `user_id` is malformed.
 * @throws {RedisUnavailableError} When Redis fails or the call times out.
 * @example
 * ```ts
 * await invalidateCachedSession(redis, userId)
 * ```
 */
export async function invalidateCachedSession(
  redis: RedisClient,
  user_id: string,
  options?: NamespaceOptions,
): Promise<boolean> {
  assertKeyPart(user_id, 'user_id')
  const key = keysFor(resolveNamespace(redis, options)).session(user_id)
  return (await guard(redis, 'invalidateCachedSession', () => redis.del(key))) > 0
}
