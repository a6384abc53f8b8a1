import pg from 'pg'
import { InvalidInputError } from '../errors/invalid-input-error.ts'

const INT8_OID = 20

/** The connection error of a checked-out client: its query reports it; see {@link createPool}. */
const ignoreCheckedOutClientError = (): void => {}

/** Options of {@link createPool}: every `pg.PoolConfig` field, plus an idle-error hook and the schema. */
export interface PoolOptions extends pg.PoolConfig {
  /**
   * Called when an idle pooled connection fails (server restart, network cut,
   * `pg_terminate_backend`). The pool drops that connection and makes a new one
   * when next needed; the host process never crashes on it. Default: ignore.
   */
  onIdleError?: ((error: Error) => void) | undefined
  /**
   * The PostgreSQL schema guildstore's tables, types and functions live in (see
   * `docs/host-database.md`). Every connection of the pool starts with
   * `search_path` set to it, so guildstore's unqualified statements resolve there.
   * A lowercase identifier: `[a-z_][a-z0-9_]*`, at most 63 characters, not `pg_…`.
   * Default: the server's own `search_path` (`public` for a 0.1.0 database).
   */
  schema?: string | undefined
}

/** Type parsers of guildstore's pools: pg's defaults, except int8 → `bigint`. Never touches pg's global parsers. */
export const guildstoreTypeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => BigInt(value)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * Checks a schema name for guildstore (`createPool({ schema })`, `runMigrations`, `--schema`)
 * and returns it: a lowercase SQL identifier of at most 63 characters, not starting
 * with `pg_` (reserved by PostgreSQL) and not `information_schema`.
 *
 * @throws InvalidInputError for anything else; nothing is sent to the server.
 * @example
 * ```ts
 * assertSchemaName('chat') // 'chat'
 * ```
 */
export function assertSchemaName(schema: unknown): string {
  if (
    typeof schema !== 'string' ||
    !SCHEMA_NAME.test(schema) ||
    schema.startsWith('pg_') ||
    schema === 'information_schema'
  ) {
    throw new InvalidInputError(
      'schema must be a lowercase identifier ([a-z_][a-z0-9_]*, at most 63 characters, not pg_…)',
      { field: 'schema' },
    )
  }
  return schema
}

/**
 * A validated schema name as a quoted SQL identifier, e.g. `"chat"`.
 *
 * @throws InvalidInputError when the name is not valid (see {@link assertSchemaName}).
 * @example
 * ```ts
 * quoteSchema('chat') // '"chat"'
 * ```
 */
export const quoteSchema = (schema: string): string => `"${assertSchemaName(schema)}"`

const poolSchemas = new WeakMap<pg.Pool, string>()

/**
 * The schema a pool was made for with `createPool({ schema })`, else `undefined`.
 * The migration functions use it as their default schema.
 *
 * @example
 * ```ts
 * poolSchema(createPool({ schema: 'chat' })) // 'chat'
 * ```
 */
export const poolSchema = (pool: pg.Pool): string | undefined => poolSchemas.get(pool)

/** Whether libpq-style settings would let `pg` find a server and user without a URL. */
function hasConnectionSettings(config: pg.PoolConfig): boolean {
  if (config.connectionString) return true
  if (config.host || config.user || config.database || config.port) return true
  const env = process.env
  return Boolean(env.DATABASE_URL || env.PGHOST || env.PGUSER || env.PGDATABASE)
}

/**
 * Creates the `pg` pool guildstore runs on.
 *
 * Defaults (each overridable): `connectionString` from `DATABASE_URL`, `max` 20,
 * `connectionTimeoutMillis` 30 000 (acquiring past that fails instead of hanging),
 * `idleTimeoutMillis` 600 000, `application_name` `guildstore`. `int8` columns are
 * parsed to `bigint` on this pool only. An idle connection's error never crashes
 * the process. With `schema`, every connection starts with `search_path` set to it
 * (as a startup option, so it also holds for named prepared statements).
 *
 * @throws InvalidInputError when no database is given at all (no `connectionString`,
 *   no `DATABASE_URL`, no host/user/database fields nor `PGHOST`/`PGUSER`/`PGDATABASE`),
 *   or when `schema` is not a valid schema name.
 * @example
 * ```ts
 * const pool = createPool({ connectionString: 'postgres://app@db/chat', max: 10, schema: 'chat' })
 * const db = createDb(pool)
 * ```
 */
export function createPool(options: PoolOptions = {}): pg.Pool {
  const { onIdleError, schema, ...config } = options
  if (!hasConnectionSettings(config)) {
    throw new InvalidInputError(
      'createPool needs a database: pass { connectionString } or set DATABASE_URL (postgres://user:password@host:5432/db)',
      { field: 'connectionString' },
    )
  }
  const searchPath = schema === undefined ? undefined : `-c search_path=${quoteSchema(schema)}`
  const pool = new pg.Pool({
    connectionString: process.env.DATABASE_URL,
    max: 20,
    connectionTimeoutMillis: 30_000,
    idleTimeoutMillis: 600_000,
    application_name: 'guildstore',
    ...config,
    ...(searchPath ? { options: [config.options, searchPath].filter(Boolean).join(' ') } : {}),
    types: config.types ?? guildstoreTypeParsers,
  })
  if (schema !== undefined) poolSchemas.set(pool, schema)
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
