import pg from 'pg'

const INT8_OID = 20

/** The connection error of a checked-out client: its query reports it; see {@link createPool}. */
const ignoreCheckedOutClientError = (): void => {}

/** Options of {@link createPool}: every `pg.PoolConfig` field, plus an idle-error hook. */
export interface PoolOptions extends pg.PoolConfig {
  /**
   * Called when an idle pooled connection fails (server restart, network cut,
   * `pg_terminate_backend`). The pool drops that connection and makes a new one
   * when next needed; the host process never crashes on it. Default: ignore.
   */
  onIdleError?: (error: Error) => void
}

/** Type parsers of guildstore's pools: pg's defaults, except int8 → `bigint`. Never touches pg's global parsers. */
export const guildstoreTypeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => BigInt(value)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
}

/**
 * Creates the `pg` pool guildstore runs on.
 *
 * Defaults (each overridable): `connectionString` from `DATABASE_URL`, `max` 20,
 * `connectionTimeoutMillis` 30 000 (acquiring past that fails instead of hanging),
 * `idleTimeoutMillis` 600 000, `application_name` `guildstore`. `int8` columns are
 * parsed to `bigint` on this pool only. An idle connection's error never crashes
 * the process.
 *
 * @example
 * ```ts
 * const pool = createPool({ connectionString: 'postgres://app@db/chat', max: 10, statement_timeout: 5_000 })
 * const db = createDb(pool)
 * ```
 */
export function createPool(options: PoolOptions = {}): pg.Pool {
  const { onIdleError, ...config } = options
  const pool = new pg.Pool({
    connectionString: process.env.DATABASE_URL,
    max: 20,
    connectionTimeoutMillis: 30_000,
    idleTimeoutMillis: 600_000,
    application_name: 'guildstore',
    ...config,
    types: config.types ?? guildstoreTypeParsers,
  })
  pool.on('error', (error) => {
    onIdleError?.(error)
  })
  // pg-pool listens for errors of idle clients only. A checked-out client (mid-query
  // or mid-transaction) whose connection dies emits 'error' with no listener, which
  // would crash the host. The failure still reaches the pending (or next) query as a
  // rejection (mapped to DatabaseUnavailableError) and the pool discards the client.
  pool.on('connect', (client) => {
    client.on('error', ignoreCheckedOutClientError)
  })
  return pool
}
