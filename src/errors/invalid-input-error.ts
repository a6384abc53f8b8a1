import { GuildstoreError } from './guildstore-error.ts'

/**
 * Input was refused: by validation before any query ran, or by PostgreSQL as
 * malformed (SQLSTATE 22P02, 22001, 22021, 22003 and the rest of class 22).
 *
 * `field` names the offending input field when it is known. The message names
 * the field and the rule, never the value.
 */
export class InvalidInputError extends GuildstoreError {
  override readonly code = 'INVALID_INPUT'
  /** The input field that was refused, when known. */
  readonly field: string | undefined

  constructor(message: string, options?: { field?: string | undefined; cause?: unknown }) {
    super(message, options)
    this.field = options?.field
  }
}
