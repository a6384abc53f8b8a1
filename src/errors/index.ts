export { ConflictError } from './conflict-error.ts'
export {
  CheckViolationError,
  type ConstraintDetails,
  ConstraintViolationError,
  ForeignKeyViolationError,
  UniqueViolationError,
} from './constraint-errors.ts'
export { DatabaseUnavailableError, QueryError } from './database-error.ts'
export { GuildstoreError } from './guildstore-error.ts'
export { InvalidInputError } from './invalid-input-error.ts'
export { mapDatabaseError } from './map-database-error.ts'
export { NotFoundError } from './not-found-error.ts'
export { ConnectionLostError, UnknownOutcomeError } from './outcome-errors.ts'
export { type ActingAs, PermissionDeniedError } from './permission-denied-error.ts'
export { RateLimitedError } from './rate-limited-error.ts'
export { ResyncRequiredError } from './resync-required-error.ts'
