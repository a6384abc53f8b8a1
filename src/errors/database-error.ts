import { GuildstoreError } from './guildstore-error.ts'

/**
 * The database could not be reached or gave up: connection refused or lost,
 * pool acquisition timed out, server shutting down, statement timeout,
 * serialization failure. `retryable` says whether the same call may succeed
 * when tried again.
 */
export class DatabaseUnavailableError extends GuildstoreError {
  override readonly code: string = 'DATABASE_UNAVAILABLE'
  /** The SQLSTATE or Node error code behind it, when there is one. */
  readonly sqlState: string | undefined
  readonly retryable: boolean

  constructor(
    message: string,
    options: {
      sqlState?: string | undefined
      retryable?: boolean | undefined
      cause?: unknown
    } = {},
  ) {
    super(message, { cause: options.cause })
    this.sqlState = options.sqlState
    this.retryable = options.retryable ?? true
  }
}

/** Any other error PostgreSQL raised, with its SQLSTATE. The message is PostgreSQL's primary message, which carries no parameter values. */
export class QueryError extends GuildstoreError {
  override readonly code = 'QUERY_ERROR'
  readonly sqlState: string | undefined

  constructor(message: string, options: { sqlState?: string | undefined; cause?: unknown } = {}) {
    super(message, { cause: options.cause })
    this.sqlState = options.sqlState
  }
}
