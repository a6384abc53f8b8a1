/**
 * Base class of every error guildstore throws on purpose.
 *
 * Catch it to handle all of them; test `instanceof` a subclass for one kind.
 * The driver error that caused it, if any, is kept as `cause`. Messages never
 * contain parameter values, so they are safe to log.
 *
 * @example
 * ```ts
 * try {
 *   await createUser(db, { username: 'ada' })
 * } catch (err) {
 *   if (err instanceof UniqueViolationError) return reply(409)
 *   throw err
 * }
 * ```
 */
export class GuildstoreError extends Error {
  /** A stable, machine-readable name of the error kind. */
  readonly code: string = 'GUILDSTORE_ERROR'

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}
