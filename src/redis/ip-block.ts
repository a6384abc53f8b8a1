import { guard, type RedisClient } from './client.ts'
import { keysFor } from './keys.ts'
import { type NamespaceOptions, resolveNamespace } from './namespace.ts'
import { assertKeyPart, assertTtlSeconds } from './validate.ts'

/**
 * Blocks an IP address for `ttlSeconds` (a later call replaces the TTL).
 * Key: `[<namespace>:]ratelimit:block:<ip>`. The address is used as given:
 * normalise it first (e.g. `::ffff:203.0.113.7` vs `203.0.113.7`).
 *
 * @throws {InvalidInputError} When `ip` is empty, too long or has a NUL byte, or
 * `ttlSeconds` is not an integer from 1 to 2 147 483 647.
 * @throws {RedisUnavailableError} When Redis fails or the call times out.
 * @example
 * ```ts
 * await blockIp(redis, '203.0.113.7', 15 * 60)
 * ```
 */
export async function blockIp(
  redis: RedisClient,
  ip: string,
  ttlSeconds: number,
  options?: NamespaceOptions,
): Promise<void> {
  assertKeyPart(ip, 'ip', 128)
  assertTtlSeconds(ttlSeconds)
  const key = keysFor(resolveNamespace(redis, options)).rateLimitBlock(ip)
  await guard(redis, 'blockIp', () => redis.set(key, '1', 'EX', ttlSeconds))
}

/**
 * Lifts a block on an IP address.
 *
 * @returns Whether a block was there.
 * @throws {InvalidInputError} When `ip` is malformed.
 * @throws {RedisUnavailableError} When Redis fails or the call times out.
 * @example
 * ```ts
 * await unblockIp(redis, '203.0.113.7')
 * ```
 */
export async function unblockIp(
  redis: RedisClient,
  ip: string,
  options?: NamespaceOptions,
): Promise<boolean> {
  assertKeyPart(ip, 'ip', 128)
  const key = keysFor(resolveNamespace(redis, options)).rateLimitBlock(ip)
  return (await guard(redis, 'unblockIp', () => redis.del(key))) > 0
}

/**
 * Whether an IP address is blocked right now (a block ends when its TTL does).
 *
 * @throws {InvalidInputError} When `ip` is malformed.
 * @throws {RedisUnavailableError} When Redis fails or the call times out.
 * @example
 * ```ts
 * if (await isIpBlocked(redis, ip)) return reply(403)
 * ```
 */
export async function isIpBlocked(
  redis: RedisClient,
  ip: string,
  options?: NamespaceOptions,
): Promise<boolean> {
  assertKeyPart(ip, 'ip', 128)
  const key = keysFor(resolveNamespace(redis, options)).rateLimitBlock(ip)
  return (await guard(redis, 'isIpBlocked', () => redis.exists(key))) === 1
}
