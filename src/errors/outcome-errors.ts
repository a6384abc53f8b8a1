import { DatabaseUnavailableError } from './database-error.ts'
import { GuildstoreError } from './guildstore-error.ts'

/**
 * The connection to PostgreSQL broke (the server was killed, restarted, failed
 * over, or the backend was terminated) before the operation could commit: its
 * transaction was rolled back by the server, nothing of it was written, and
 * the same call may simply be tried again (`retryable` is `true`). A
 * {@link DatabaseUnavailableError}, so code that handles those keeps working.
 *
 * Thrown for a lost connection outside a `COMMIT` and outside a write that
 * runs without a transaction; a connection lost there is an
 * {@link UnknownOutcomeError} instead.
 *
 * @example
 * ```ts
 * for (let attempt = 1; ; attempt++) {
 *   try {
 *     return await updateUser(db, id, patch)
 *   } catch (err) {
 *     if (err instanceof ConnectionLostError && attempt < 3) continue
 *     throw err
 *   }
 * }
 * ```
 */
export class ConnectionLostError extends DatabaseUnavailableError {
  override readonly code = 'CONNECTION_LOST'
}

/**
 * The connection was lost while PostgreSQL was committing the operation (during
 * `COMMIT`, or during a write that runs as its own transaction): it may have
 * committed or not, and nothing on this side can tell. `retryable` is `false`:
 * repeating the call may write twice. Retry only a call that is idempotent —
 * `sendMessage` / `createMessage` with a `nonce` return the original message
 * when the first attempt did commit — or read back first to find out.
 *
 * @example
 * ```ts
 * const input = { channel_id, author_id, content, nonce: clientNonce }
 * try {
 *   return await sendMessage(db, input)
 * } catch (err) {
 *   if (err instanceof UnknownOutcomeError) return await sendMessage(db, input) // same nonce: never twice
 *   throw err
 * }
 * ```
 */
export class UnknownOutcomeError extends GuildstoreError {
  override readonly code = 'UNKNOWN_OUTCOME'
  /** Always `false`: the first attempt may have committed. */
  readonly retryable = false
  /** The SQLSTATE or Node error code behind it, when there is one. */
  readonly sqlState: string | undefined

  constructor(message: string, options: { sqlState?: string | undefined; cause?: unknown } = {}) {
    super(message, { cause: options.cause })
    this.sqlState = options.sqlState
  }
}
