import { GuildstoreError } from './guildstore-error.ts'

/**
 * A rate rule refused the call for now: the channel's slowmode
 * (`rate_limit_per_user`) counts the author's previous message. Retry after
 * `retry_after_ms`.
 *
 * @example
 * ```ts
 * try {
 *   await sendMessage(db, { channel_id, author_id, content })
 * } catch (e) {
 *   if (e instanceof RateLimitedError) return reply(429, { retry_after: e.retry_after_ms / 1000 })
 *   throw e
 * }
 * ```
 */
export class RateLimitedError extends GuildstoreError {
  override readonly code = 'RATE_LIMITED'
  /** Milliseconds until the same call can succeed (at least 1). */
  readonly retry_after_ms: number

  constructor(message: string, options: { retry_after_ms: number; cause?: unknown }) {
    super(message, options)
    this.retry_after_ms = options.retry_after_ms
  }
}
