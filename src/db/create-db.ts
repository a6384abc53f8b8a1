import { Kysely, type KyselyPlugin, type LogEvent, PostgresDialect } from 'kysely'
import type pg from 'pg'
import type { DB } from '../../codegen/db.ts'
import { type GuildstoreError, mapDatabaseError } from '../errors/index.ts'
import { statementName } from '../sql/statement-names.ts'

/** One executed query, as the {@link CreateDbOptions.log} hook sees it. */
export interface QueryLogEntry {
  level: 'query' | 'error'
  /** The SQL text, with `$1`… placeholders. */
  sql: string
  /** The bound values; only present with `logParameters: true`. */
  parameters?: readonly unknown[]
  durationMs: number
  /** The mapped error, for `level: 'error'`. Its message carries no values. */
  error?: GuildstoreError
}

/** Options of {@link createDb}. */
export interface CreateDbOptions {
  /** Called after every query with its SQL and duration (and the error, when it failed). */
  log?: (entry: QueryLogEntry) => void
  /** Include bound values in log entries. Off by default: values can be secrets. */
  logParameters?: boolean
  /**
   * Run guildstore's own queries as named prepared statements (parsed once per
   * connection). Default `true`; turn off behind a pooler in transaction mode
   * that does not support them (e.g. PgBouncer before 1.21).
   */
  preparedStatements?: boolean
  /** Extra Kysely plugins. Plugins that rename columns break guildstore's row types. */
  plugins?: KyselyPlugin[]
}

type QueryFn = (config: unknown, values?: unknown[]) => Promise<unknown>

/**
 * Pools whose Kysely instance (made by {@link createDb}, no plugins, no log hook)
 * may run prepared queries straight on the pool: see `prepareQuery`.
 */
const directPools = new WeakMap<Kysely<DB>, pg.Pool>()

/** The pool a top-level {@link createDb} instance may run prepared statements on directly, if any. */
export function directPool(db: Kysely<DB>): pg.Pool | undefined {
  return directPools.get(db)
}

/**
 * Wraps a pool so that a query whose SQL text is a registered prepared
 * statement runs by name; every other query passes through unchanged. The
 * wrappers are plain objects made once per pooled client (the Kysely driver
 * uses only `connect`/`end`/`options`/`Client` of the pool and
 * `query`/`release`/`processID` of a client), not Proxies: no trap and no
 * `bind` per property access on the hot path.
 */
function withNamedStatements(pool: pg.Pool): pg.Pool {
  const wrapped = new WeakMap<pg.PoolClient, pg.PoolClient>()
  const wrap = (client: pg.PoolClient): pg.PoolClient => {
    let w = wrapped.get(client)
    if (!w) {
      const query = client.query.bind(client) as unknown as QueryFn
      w = {
        query: (sql: unknown, values?: unknown[]) => {
          const name = typeof sql === 'string' ? statementName(sql) : undefined
          return name ? query({ name, text: sql, values }) : query(sql, values)
        },
        release: (err?: Error | boolean) => client.release(err),
        get processID() {
          return (client as unknown as { processID: number }).processID
        },
      } as unknown as pg.PoolClient
      wrapped.set(client, w)
    }
    return w
  }
  return {
    connect: async () => wrap(await pool.connect()),
    end: () => pool.end(),
    get options() {
      return pool.options
    },
    Client: (pool as unknown as { Client: unknown }).Client,
  } as unknown as pg.Pool
}

/**
 * Creates the typed Kysely instance every repository function takes first.
 *
 * Queries run on `pool` (see {@link createPool}); guildstore's own static
 * queries run as named prepared statements. `db.destroy()` ends the pool.
 *
 * @example
 * ```ts
 * const db = createDb(createPool(), {
 *   log: (e) => logger.debug({ sql: e.sql, ms: e.durationMs }, e.level),
 * })
 * const user = await findUserByUsername(db, 'ada')
 * ```
 */
export function createDb(pool: pg.Pool, options: CreateDbOptions = {}): Kysely<DB> {
  const { log, logParameters = false, preparedStatements = true, plugins = [] } = options
  const db = new Kysely<DB>({
    dialect: new PostgresDialect({
      pool: preparedStatements ? withNamedStatements(pool) : pool,
    }),
    plugins,
    ...(log
      ? {
          log(event: LogEvent) {
            try {
              const entry: QueryLogEntry = {
                level: event.level,
                sql: event.query.sql,
                durationMs: event.queryDurationMillis,
              }
              if (logParameters) entry.parameters = event.query.parameters
              if (event.level === 'error') entry.error = mapDatabaseError(event.error)
              log(entry)
            } catch {
              // A failing log hook never fails (or changes the error of) the query.
            }
          },
        }
      : {}),
  })
  if (preparedStatements && !log && plugins.length === 0) directPools.set(db, pool)
  return db
}
