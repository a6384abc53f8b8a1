import { GuildstoreError } from '../errors/index.ts'

/**
 * The rate limiter's store (Redis) failed: down, unreachable, timed out, or it
 * refused the script. This is not "limited": the check could not be made.
 * The original error is kept as `cause`.
 *
 * @example
 * ```ts
 * try {
 *   const { allowed } = await loginLimiter.consume(ip)
 *   if (!allowed) return reply(429)
 * } catch (err) {
 *   if (err instanceof RateLimiterStoreError) return reply(503)
 *   throw err
 * }
 * ```
 */
export class RateLimiterStoreError extends GuildstoreError {
  override readonly code = 'RATE_LIMITER_STORE'
  /** The limiter's category. */
  readonly category: string

  constructor(message: string, options: { category: string; cause?: unknown }) {
    super(message, { cause: options.cause })
    this.category = options.category
  }
}
