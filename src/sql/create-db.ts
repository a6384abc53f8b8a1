import { Kysely, type KyselyPlugin, type LogEvent } from 'kysely'
import type pg from 'pg'
import type { DB } from '../../codegen/db.ts'
import { type GuildstoreError, mapDatabaseError } from '../errors/index.ts'
import { Execution, GuildstoreDialect } from './execution.ts'

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
   * connection, named `gs.<label>`, e.g. `gs.messages.list_before`). Default
   * `true`; turn off behind a pooler in transaction mode that does not support
   * them (e.g. PgBouncer before 1.21): every query is then sent unnamed.
   */
  preparedStatements?: boolean
  /** Extra Kysely plugins. Plugins that rename columns break guildstore's row types. */
  plugins?: KyselyPlugin[]
}

/** Kysely's log event as a {@link QueryLogEntry}; a failing hook never fails the query. */
function logHook(log: (entry: QueryLogEntry) => void, logParameters: boolean) {
  return (event: LogEvent) => {
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
  }
}

/**
 * Creates the typed Kysely instance every repository function takes first.
 *
 * Queries run on `pool` (see {@link createPool}); guildstore's own queries run
 * as named prepared statements (`gs.<label>`). The instance carries all of
 * its execution state (see `src/sql/execution.ts`): prepared queries on it run
 * straight on the pool unless a log hook or plugins are set, and in a
 * transaction they run on the transaction's connection. `db.destroy()` ends
 * the pool.
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
  const execution = new Execution(pool, {
    preparedStatements,
    direct: !log && plugins.length === 0,
  })
  const db = new Kysely<DB>({
    dialect: new GuildstoreDialect(execution),
    plugins,
    ...(log ? { log: logHook(log, logParameters) } : {}),
  })
  execution.attach(db)
  return db
}
