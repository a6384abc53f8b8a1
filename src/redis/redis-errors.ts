import { GuildstoreError, InvalidInputError } from '../errors/index.ts'

/**
 * A Redis helper (IP blocks, OIDC state, session cache, pub/sub) could not do
 * its work: Redis is down or unreachable, a cluster shard is failing over
 * (`CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN`), the call timed out, or Redis
 * refused the command. `retryable` says whether the same call may succeed when
 * tried again (false for refusals such as `NOAUTH`, `NOPERM`, `WRONGTYPE`).
 * The rate limiter has its own {@link RateLimiterStoreError}.
 *
 * The message names the helper, the server (`host:port`, or `cluster`) and
 * the error code, never a key, a value or a password. A call that timed out
 * may still reach Redis later. The ioredis error is kept as `cause`.
 *
 * @example
 * ```ts
 * try {
 *   cached = await getCachedSession(redis, userId)
 * } catch (err) {
 *   if (err instanceof RedisUnavailableError && err.retryable) cached = undefined // read through to PostgreSQL
 *   else throw err
 * }
 * ```
 */
export class RedisUnavailableError extends GuildstoreError {
  override readonly code = 'REDIS_UNAVAILABLE'
  /** The helper that failed, e.g. `'cacheSession'`. */
  readonly operation: string
  /** The ioredis / Redis error code behind it, e.g. `'ECONNREFUSED'`, `'CLUSTERDOWN'`, `'TIMEOUT'`. */
  readonly reason: string
  /** Whether the same call may succeed when tried again. */
  readonly retryable: boolean

  constructor(
    message: string,
    options: { operation: string; reason: string; retryable: boolean; cause?: unknown },
  ) {
    super(message, { cause: options.cause })
    this.operation = options.operation
    this.reason = options.reason
    this.retryable = options.retryable
  }
}

/**
 * A pub/sub payload is larger than the allowed size (`maxPayloadBytes` of
 * `createRedis` or of the call; default {@link DEFAULT_MAX_PAYLOAD_BYTES}). It
 * was refused before anything was sent: one oversized message would make Redis
 * drop every subscriber connection that receives it (its pub/sub output buffer
 * limit), losing the events behind it.
 *
 * @example
 * ```ts
 * try {
 *   await publishGlobal(redis, event)
 * } catch (err) {
 *   if (err instanceof PayloadTooLargeError) log.warn({ bytes: err.bytes, limit: err.limit })
 * }
 * ```
 */
export class PayloadTooLargeError extends InvalidInputError {
  /** The encoded payload's size in bytes. */
  readonly bytes: number
  /** The limit in bytes. */
  readonly limit: number

  constructor(bytes: number, limit: number) {
    super(`event payload is ${bytes} bytes, over the limit of ${limit} bytes`, { field: 'event' })
    this.bytes = bytes
    this.limit = limit
  }
}

/** Default largest pub/sub payload: 1 MiB (Redis drops a subscriber at 8 MB buffered for 60 s, or 32 MB at once). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
