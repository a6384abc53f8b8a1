import { GuildstoreError } from './guildstore-error.ts'

/**
 * A state rule refused the operation: a block between two users, removing a
 * guild's owner, deleting the default role, transferring a guild to a non-member.
 */
export class ConflictError extends GuildstoreError {
  override readonly code = 'CONFLICT'
  /** A stable name of the rule that refused, e.g. `'blocked'`, `'owner'`. */
  readonly reason: string | undefined

  constructor(message: string, options?: { reason?: string | undefined; cause?: unknown }) {
    super(message, options)
    this.reason = options?.reason
  }
}
