import { ConflictError, InvalidInputError } from '../errors/index.ts'
import { guard, type RedisClient } from './client.ts'
import { decodeEnvelope, encodeEnvelope, MalformedPayloadError } from './codec.ts'
import { keysFor } from './keys.ts'
import { type NamespaceOptions, resolveNamespace } from './namespace.ts'
import { assertKeyPart, assertTtlSeconds } from './validate.ts'

/**
 * Saves the data of a pending OIDC login under its `state` for `ttlSeconds`
 * (default 600). Key: `[<namespace>:]oidc:state:<state>`. Dates and bigints in
 * `data` come back as such from {@link consumeOidcState}.
 *
 * @throws {InvalidInputError} When `state` is empty, longer than 512 characters or
 * has a NUL byte, `data` is `undefined` or holds an invalid Date, or `ttlSeconds` is not a positive integer.
 * @throws {RedisUnavailableError} When Redis fails or the call times out.
 * @throws {ConflictError} When a state with that value is already pending (`reason: 'oidc_state_exists'`).
 * @example
 * ```ts
 * const state = newId()
 * await saveOidcState(redis, state, { nonce, codeVerifier, returnTo: '/app' })
 * ```
 */
export async function saveOidcState<T>(
  redis: RedisClient,
  state: string,
  data: T,
  ttlSeconds = 600,
  options?: NamespaceOptions,
): Promise<void> {
  assertKeyPart(state, 'state')
  assertTtlSeconds(ttlSeconds)
  if (data === undefined)
    throw new InvalidInputError('data must not be undefined', { field: 'data' })
  const key = keysFor(resolveNamespace(redis, options)).oidcState(state)
  const payload = encodeEnvelope('data', data)
  const reply = await guard(redis, 'saveOidcState', () =>
    redis.set(key, payload, 'EX', ttlSeconds, 'NX'),
  )
  if (reply !== 'OK') {
    throw new ConflictError('an OIDC state with this value is already pending', {
      reason: 'oidc_state_exists',
    })
  }
}

/**
 * Takes the data saved under `state`, once: the read deletes it atomically
 * (GETDEL, Redis ≥ 6.2), so of two concurrent callers exactly one gets it.
 *
 * @returns The data, or `undefined` when unknown, expired, already used or unreadable.
 * @throws {InvalidInputError} When `state` is malformed.
 * @throws {RedisUnavailableError} When Redis fails or the call times out (the state may be gone).
 * @example
 * ```ts
 * const pending = await consumeOidcState<{ nonce: string }>(redis, req.query.state)
 * if (!pending) return reply(400)
 * ```
 */
export async function consumeOidcState<T = unknown>(
  redis: RedisClient,
  state: string,
  options?: NamespaceOptions,
): Promise<T | undefined> {
  assertKeyPart(state, 'state')
  const key = keysFor(resolveNamespace(redis, options)).oidcState(state)
  const raw = await guard(redis, 'consumeOidcState', () => redis.getdel(key))
  if (raw === null) return undefined
  try {
    return decodeEnvelope(raw, 'data') as T
  } catch (error) {
    if (error instanceof MalformedPayloadError) return undefined
    throw error
  }
}
