import { ConflictError } from './conflict-error.ts'
import {
  CheckViolationError,
  ForeignKeyViolationError,
  UniqueViolationError,
} from './constraint-errors.ts'
import { DatabaseUnavailableError, QueryError } from './database-error.ts'
import { GuildstoreError } from './guildstore-error.ts'
import { InvalidInputError } from './invalid-input-error.ts'
import { ConnectionLostError, UnknownOutcomeError } from './outcome-errors.ts'

/** The fields of a `pg` `DatabaseError` that the mapping reads. */
interface PgErrorLike {
  code?: string
  message?: string
  constraint?: string
  table?: string
  column?: string
  detail?: string
}

const CONDITION_NAMES: Record<string, string> = {
  '22001': 'string_data_right_truncation',
  '22003': 'numeric_value_out_of_range',
  '22007': 'invalid_datetime_format',
  '22008': 'datetime_field_overflow',
  '22021': 'character_not_in_repertoire',
  '22P02': 'invalid_text_representation',
  '22P05': 'untranslatable_character',
  '22023': 'invalid_parameter_value',
  '2201B': 'invalid_regular_expression',
}

/** pg error messages (without a code) that mean the server or the network went away. */
const CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
  'Cannot use a pool after calling end',
  'Connection closed',
  'terminating connection',
]
/**
 * Of those, the ones that mean an established connection broke (rather than
 * none could be had): {@link ConnectionLostError}. `connection timeout` is
 * pg's own connect timeout, so it is left out.
 */
const LOST_MESSAGES =
  /Connection terminated(?! due to connection timeout)|Client has encountered a connection error|Client was closed and is not queryable|Connection closed|terminating connection/
/** pg refusing a query on a client already known broken: the query was never sent. */
const NOT_SENT = /is not queryable/

/** The fields of a Node socket / DNS error that say where it was going. */
interface NetErrorLike {
  address?: unknown
  port?: unknown
  hostname?: unknown
  errors?: unknown
}

/**
 * Where a connection error was going, as `host:port` (or the host name alone
 * for a DNS failure): Node's socket errors carry `address`/`port`, DNS errors
 * `hostname`, and an `AggregateError` of several addresses tried carries them
 * in `errors`. Host names and ports are not secrets; nothing else is read.
 */
function connectionTarget(err: NetErrorLike): string | undefined {
  const one = (e: NetErrorLike): string | undefined => {
    const host =
      typeof e.address === 'string' && e.address !== ''
        ? e.address
        : typeof e.hostname === 'string' && e.hostname !== ''
          ? e.hostname
          : undefined
    if (!host) return undefined
    const shown = host.includes(':') ? `[${host}]` : host
    return typeof e.port === 'number' || typeof e.port === 'string' ? `${shown}:${e.port}` : shown
  }
  const direct = one(err)
  if (direct) return direct
  if (Array.isArray(err.errors)) {
    const all = [
      ...new Set(err.errors.map((e) => (e && typeof e === 'object' ? one(e) : undefined))),
    ].filter((t): t is string => t !== undefined)
    if (all.length > 0) return all.join(', ')
  }
  return undefined
}

/** Columns of a key as PostgreSQL prints it in `detail`: `Key (guildstore_identity_key(username))=(…)`. */
function keyColumns(detail: string | undefined): string[] | undefined {
  const match = detail && /^Key \((.*?)\)=\(/.exec(detail)
  if (!match?.[1]) return undefined
  return match[1].split(/,\s*/).map((part) =>
    part
      .replace(/::[a-z ]+/g, '')
      .replace(/^([a-z_][a-z0-9_]*\.)?(lower|upper|least|greatest|guildstore_identity_key)\(/, '')
      .replace(/[()]/g, '')
      .trim(),
  )
}

/**
 * Removes values from a driver error before it is kept as `cause`: PostgreSQL's
 * `detail` of a constraint violation and the quoted input in class-22 messages
 * carry the offending values, which may be secrets.
 */
function redact(err: PgErrorLike & object): void {
  try {
    if (typeof err.detail === 'string') {
      err.detail = err.detail.replace(/=\(.*\)/s, '=(redacted)').replace(/"[^"]*"/g, '"…"')
    }
    if (err.code?.startsWith('22') && typeof err.message === 'string') {
      err.message = err.message.replace(/: ".*"$/s, ': [redacted]').replace(/: .*$/s, '')
    }
  } catch {
    // Frozen or exotic error objects are left as they are.
  }
}

/** Builds the guildstore error of one SQLSTATE (or Node error code). */
type ErrorRule = (err: PgErrorLike & Error, code: string) => GuildstoreError

function invalidInput(err: PgErrorLike & Error, code: string): GuildstoreError {
  redact(err)
  const condition = CONDITION_NAMES[code] ?? 'data_exception'
  return new InvalidInputError(
    `invalid input${err.column ? ` for ${err.column}` : ''} (${code} ${condition})`,
    { ...(err.column ? { field: err.column } : {}), cause: err },
  )
}

/** A rule for an integrity violation (class 23): reads the key columns, then redacts. */
function integrity(
  make: (
    err: PgErrorLike & Error,
    code: string,
    where: string,
    columns: string[] | undefined,
  ) => GuildstoreError,
): ErrorRule {
  return (err, code) => {
    const columns = keyColumns(err.detail) ?? (err.column ? [err.column] : undefined)
    redact(err)
    return make(err, code, err.constraint ? ` "${err.constraint}"` : '', columns)
  }
}

const details = (err: PgErrorLike & Error, columns: string[] | undefined) => ({
  constraint: err.constraint,
  table: err.table,
  columns,
  cause: err,
})

const uniqueViolation = integrity(
  (err, _code, where, columns) =>
    new UniqueViolationError(
      `duplicate value violates unique constraint${where}${columns ? ` on (${columns.join(', ')})` : ''}`,
      details(err, columns),
    ),
)
const foreignKeyViolation = integrity(
  (err, _code, where, columns) =>
    new ForeignKeyViolationError(
      `foreign key constraint${where} refused the change`,
      details(err, columns),
    ),
)
const checkViolation = integrity(
  (err, code, where, columns) =>
    new CheckViolationError(
      code === '23502'
        ? `null value in column "${err.column ?? '?'}" is not allowed`
        : `check constraint${where} refused the row`,
      details(err, columns),
    ),
)
const otherIntegrityViolation = integrity(
  (err, code, where) =>
    new ConflictError(`integrity constraint${where} refused the change (${code})`, {
      reason: 'integrity',
      cause: err,
    }),
)

/** `database unavailable (ECONNREFUSED 127.0.0.1:5432)`: the cause and, when known, where. */
function databaseUnavailableMessage(code: string | undefined, err: PgErrorLike & Error): string {
  const target = connectionTarget(err as NetErrorLike)
  const what = code ?? err.message ?? 'unknown'
  return `database unavailable (${what}${target ? ` ${target}` : ''})`
}

/** 23G01: raised by the `guild_members` trigger of migration 0004 while a ban stands. */
const bannedMember: ErrorRule = (err) =>
  new ConflictError('the user is banned from this guild', { reason: 'banned', cause: err })

/** A rule for a lost or refusing server: {@link DatabaseUnavailableError}, with `message` or a generic one. */
function unavailable(message?: string): ErrorRule {
  return (err, code) => unavailableError(err, code, message)
}

function unavailableError(
  err: PgErrorLike & Error,
  code: string | undefined,
  message?: string,
): DatabaseUnavailableError {
  return new DatabaseUnavailableError(
    message ??
      (err.message?.includes('timeout exceeded when trying to connect')
        ? 'timed out acquiring a database connection from the pool'
        : databaseUnavailableMessage(code, err)),
    { sqlState: code, cause: err },
  )
}

/** A rule for an established connection that broke: {@link ConnectionLostError} (retryable). */
const lost: ErrorRule = (err, code) => lostError(err, code)

function lostError(err: PgErrorLike & Error, code: string | undefined): ConnectionLostError {
  return new ConnectionLostError(
    `connection lost (${code ?? err.message ?? 'unknown'}); nothing was committed, retry the call`,
    { sqlState: code, cause: err },
  )
}

/** 25006 on a guildstore write: the server is a standby (a failover is under way, or the pool points at a replica). */
const readOnlyServer: ErrorRule = (err, code) =>
  new DatabaseUnavailableError(
    'the server is read-only (a standby: failover in progress?); nothing was written, retry the call',
    { sqlState: code, retryable: true, cause: err },
  )

const aborted = (code: string) =>
  unavailable(`transaction aborted by a concurrent one (${code}); retry it`)

/**
 * SQLSTATE (and Node error code) → guildstore error: an exact code first,
 * then its two-character class. Anything else with a SQLSTATE is a {@link QueryError}.
 */
const BY_CODE: Readonly<Record<string, ErrorRule>> = {
  '23505': uniqueViolation,
  '23503': foreignKeyViolation,
  '23514': checkViolation,
  '23502': checkViolation,
  '23P01': checkViolation,
  '23G01': bannedMember, // guildstore: a standing ban (constraint guild_members_not_banned)
  '57P01': lost, // admin_shutdown (pg_terminate_backend, smart/fast shutdown)
  '57P02': lost, // crash_shutdown (another backend crashed, immediate shutdown)
  '57P03': unavailable(), // cannot_connect_now
  '53300': unavailable(), // too_many_connections
  '57014': unavailable('statement cancelled (statement_timeout or cancel request)'),
  '40001': aborted('40001'), // serialization_failure
  '40P01': aborted('40P01'), // deadlock_detected
  '55P03': unavailable(), // lock_not_available
  '25P03': unavailable(), // idle_in_transaction_session_timeout
  '25006': readOnlyServer, // read_only_sql_transaction: a standby
  '08006': lost, // connection_failure
  ECONNREFUSED: unavailable(),
  ECONNRESET: lost,
  EPIPE: lost,
  ETIMEDOUT: unavailable(),
  ENOTFOUND: unavailable(),
  EHOSTUNREACH: unavailable(),
  EAI_AGAIN: unavailable(),
}
const BY_CLASS: Readonly<Record<string, ErrorRule>> = {
  '22': invalidInput, // data_exception
  '23': otherIntegrityViolation, // integrity_constraint_violation
  '08': unavailable(), // connection_exception
}

/**
 * Maps anything a query threw to guildstore's error tree. The one place where
 * SQLSTATE codes are read (the tables `BY_CODE` and `BY_CLASS`): class 22 →
 * {@link InvalidInputError}, 23505 → {@link UniqueViolationError}, 23503 →
 * {@link ForeignKeyViolationError}, 23514/23502 → {@link CheckViolationError},
 * a broken connection (57P01, 57P02, 08006, ECONNRESET, EPIPE, pg's
 * "Connection terminated") → {@link ConnectionLostError}; refused
 * connections, timeouts, serialization failures, a read-only server (25006) →
 * {@link DatabaseUnavailableError}; any other SQLSTATE → {@link QueryError}.
 * A {@link GuildstoreError} passes through. Values (constraint details, quoted
 * input) are redacted from the kept `cause`.
 *
 * @example
 * ```ts
 * try { await pool.query(sql, values) } catch (err) { throw mapDatabaseError(err) }
 * ```
 */
export function mapDatabaseError(error: unknown): GuildstoreError {
  if (error instanceof GuildstoreError) return error
  if (typeof error !== 'object' || error === null) {
    return new QueryError('unknown database error', { cause: error })
  }
  const err = error as PgErrorLike & Error
  const code = typeof err.code === 'string' ? err.code : undefined
  const isSqlState = code !== undefined && /^[0-9A-Z]{5}$/.test(code)
  if (code !== undefined) {
    const rule =
      (Object.hasOwn(BY_CODE, code) ? BY_CODE[code] : undefined) ??
      (isSqlState && Object.hasOwn(BY_CLASS, code.slice(0, 2))
        ? BY_CLASS[code.slice(0, 2)]
        : undefined)
    if (rule) return rule(err, code)
  }
  if (!isSqlState && typeof err.message === 'string' && LOST_MESSAGES.test(err.message)) {
    return lostError(err, code)
  }
  if (!isSqlState && CONNECTION_MESSAGES.some((m) => err.message?.includes(m))) {
    return unavailableError(err, code)
  }
  if (isSqlState) {
    return new QueryError(`${err.message ?? 'query failed'} (${code})`, {
      sqlState: code,
      cause: err,
    })
  }
  return new QueryError(err.message ?? 'query failed', { cause: err })
}

/**
 * Maps the error of a statement whose commit may already have happened — a
 * `COMMIT`, or a write that runs as its own transaction (autocommit): a
 * connection that broke after it was sent is an {@link UnknownOutcomeError}
 * (PostgreSQL may have committed it; e.g. a backend terminated while waiting
 * for a synchronous standby has committed locally). Anything else maps as
 * {@link mapDatabaseError} does.
 *
 * @example
 * ```ts
 * try { await client.query('COMMIT') } catch (err) { throw mapCommitError(err) }
 * ```
 */
export function mapCommitError(error: unknown): GuildstoreError {
  const mapped = mapDatabaseError(error)
  if (!(mapped instanceof ConnectionLostError)) return mapped
  const cause = mapped.cause as { message?: unknown } | undefined
  if (typeof cause?.message === 'string' && NOT_SENT.test(cause.message)) return mapped
  return new UnknownOutcomeError(
    `connection lost while the write was committing (${mapped.sqlState ?? 'connection closed'}): it may or may not have committed`,
    { sqlState: mapped.sqlState, cause: mapped.cause },
  )
}
