import type { RedisClient } from './client.ts'
import { assertNamespace } from './validate.ts'

/**
 * The option name under which {@link createRedis} stores the namespace in the
 * ioredis options, so `redis.duplicate()` (e.g. a subscriber connection) keeps it.
 */
export const NAMESPACE_OPTION = 'guildstoreNamespace'

/** Per-call options of the Redis helpers that build keys or channel names. */
export interface NamespaceOptions {
  /**
   * Overrides the client's namespace (from `createRedis({ namespace })`) for
   * this call. Every key and channel name becomes `<namespace>:<name>`.
   */
  namespace?: string | undefined
}

/**
 * The namespace a client was created with by `createRedis({ namespace })`, or
 * `undefined`. Duplicates of that client (`redis.duplicate()`) carry it too.
 *
 * @example
 * ```ts
 * const redis = createRedis({ namespace: 'chat' })
 * redisNamespace(redis) // 'chat'
 * redisNamespace(redis.duplicate()) // 'chat'
 * ```
 */
export function redisNamespace(redis: RedisClient): string | undefined {
  const value = (redis.options as Record<string, unknown> | undefined)?.[NAMESPACE_OPTION]
  return typeof value === 'string' ? value : undefined
}

/**
 * The namespace a call uses: the per-call one, else the client's, else none.
 *
 * @throws {InvalidInputError} When the per-call namespace is malformed.
 */
export function resolveNamespace(
  redis: RedisClient,
  options?: NamespaceOptions,
): string | undefined {
  const explicit = options?.namespace
  if (explicit !== undefined) {
    assertNamespace(explicit)
    return explicit
  }
  return redisNamespace(redis)
}
