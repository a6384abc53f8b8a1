import { GuildstoreError } from './guildstore-error.ts'

/** Details PostgreSQL reports for a constraint violation, without any values. */
export interface ConstraintDetails {
  /** The constraint's name, e.g. `users_username_key`. */
  constraint?: string | undefined
  /** The table the constraint belongs to. */
  table?: string | undefined
  /** The constrained columns, when they can be told. */
  columns?: readonly string[] | undefined
  cause?: unknown
}

/** Base of the errors a database constraint raises. */
export abstract class ConstraintViolationError extends GuildstoreError {
  readonly constraint: string | undefined
  readonly table: string | undefined
  readonly columns: readonly string[]

  constructor(message: string, details: ConstraintDetails = {}) {
    super(message, { cause: details.cause })
    this.constraint = details.constraint
    this.table = details.table
    this.columns = details.columns ?? []
  }
}

/** A unique constraint refused a duplicate (SQLSTATE 23505). */
export class UniqueViolationError extends ConstraintViolationError {
  override readonly code = 'UNIQUE_VIOLATION'
}

/** A foreign key refused a row that points at nothing, or a delete that would orphan rows (SQLSTATE 23503). */
export class ForeignKeyViolationError extends ConstraintViolationError {
  override readonly code = 'FOREIGN_KEY_VIOLATION'
}

/** A CHECK or NOT NULL constraint refused a row (SQLSTATE 23514, 23502). Also an {@link InvalidInputError} would fit; this keeps the constraint name. */
export class CheckViolationError extends ConstraintViolationError {
  override readonly code = 'CHECK_VIOLATION'
}
