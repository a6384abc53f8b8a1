import { Kysely, type KyselyConfig, type KyselyPlugin, type LogEvent } from 'kysely'
import type pg from 'pg'
import type { DB } from '../../codegen/db.ts'
import { type GuildstoreError, InvalidInputError, mapDatabaseError } from '../errors/index.ts'
import { Execution, GuildstoreDialect } from './execution.ts'
import type { ReplicaSettings } from './replica-router.ts'
import { ReplicaRouter } from './replica-router.ts'

/** One executed query, as the {@link CreateDbOptions.log} hook sees it. */
export interface QueryLogEntry {
  level: 'query' | 'error'
  /** The SQL text, with `$1`… placeholders. */
  sql: string
  /** The bound values; only present with `logParameters: true`. */
  parameters?: readonly unknown[] | undefined
  durationMs: number
  /** The mapped error, for `level: 'error'`. Its message carries no values. */
  error?: GuildstoreError | undefined
}

/** Options of {@link createDb}. */
export interface CreateDbOptions {
  /** Called after every query with its SQL and duration (and the error, when it failed). */
  log?: ((entry: QueryLogEntry) => void) | undefined
  /** Include bound values in log entries. Off by default: values can be secrets. */
  logParameters?: boolean | undefined
  /**
   * Run guildstore's own queries as named prepared statements (parsed once per
   * connection, named `gs.<label>`, e.g. `gs.messages.list_before`). Default
   * `true`; turn off behind a pooler in transaction mode that does not support
   * them (e.g. PgBouncer before 1.21): every query is then sent unnamed.
   */
  preparedStatements?: boolean | undefined
  /** Extra Kysely plugins. Plugins that rename columns break guildstore's row types. */
  plugins?: KyselyPlugin[] | undefined
  /**
   * Pools of streaming replicas of `pool`'s server. Reads of the repository API
   * outside a transaction go to a replica; writes, every transaction and every
   * read inside one go to the primary. Read-your-writes: after a write through
   * this instance, its reads wait (up to `readYourWritesTimeoutMs`) for a
   * replica to replay past the write's WAL position, else run on the primary;
   * see `consistencyToken` / `withConsistencyToken` to carry this to another
   * process. A replica that is down, not a standby, or lagging beyond
   * `replicaMaxLagMs` is skipped; a read a replica fails runs again on the
   * primary, and so does a read a replica does not answer within
   * `replicaReadTimeoutMs` (a hung or stopped server).
   * `db.destroy()` ends them with the primary pool.
   */
  replicas?: pg.Pool[] | undefined
  /** With `replicas`: skip a replica whose replay is further behind than this (ms). Default 1000. */
  replicaMaxLagMs?: number | undefined
  /** With `replicas`: how long a read after a write waits for a replica to replay it before using the primary (ms). Default 250; `0` never waits. */
  readYourWritesTimeoutMs?: number | undefined
  /** With `replicas`: how often replicas' health and replay position are checked (ms). Default 200. */
  replicaCheckIntervalMs?: number | undefined
  /**
   * With `replicas`: the longest a read may take on a replica, taking its
   * connection included (ms). Past it the read runs on the primary, the
   * replica's connection is destroyed and the replica is skipped until a
   * health check (bounded the same way) answers again. Default 2000.
   */
  replicaReadTimeoutMs?: number | undefined
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
 * The instance `createDb` returns: a Kysely whose `destroy()` always ends the
 * pools it was given. Kysely destroys only a driver it has used, and calls of
 * the repository API go straight to the pool, so without this a service that
 * only called them would keep its connections open after `destroy()`.
 */
class GuildstoreKysely<T> extends Kysely<T> {
  readonly #execution: Execution

  constructor(execution: Execution, config: KyselyConfig) {
    super(config)
    this.#execution = execution
  }

  override async destroy(): Promise<void> {
    await super.destroy()
    await this.#execution.close()
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
  const replicas = options.replicas ?? []
  if (!Array.isArray(replicas) || replicas.some((r) => !r || typeof r.query !== 'function')) {
    throw new InvalidInputError('replicas must be an array of pg.Pool', { field: 'replicas' })
  }
  const router =
    replicas.length > 0
      ? new ReplicaRouter(pool, replicas, {
          maxLagMs: options.replicaMaxLagMs,
          readYourWritesTimeoutMs: options.readYourWritesTimeoutMs,
          checkIntervalMs: options.replicaCheckIntervalMs,
          readTimeoutMs: options.replicaReadTimeoutMs,
        } as Partial<ReplicaSettings>)
      : undefined
  const execution = new Execution(
    pool,
    { preparedStatements, direct: !log && plugins.length === 0 },
    router ? { router } : undefined,
  )
  const db = new GuildstoreKysely<DB>(execution, {
    dialect: new GuildstoreDialect(execution),
    plugins,
    ...(log ? { log: logHook(log, logParameters) } : {}),
  })
  execution.attach(db)
  execution.spawn = (child) => {
    const session = new Kysely<DB>({
      dialect: new GuildstoreDialect(child),
      plugins,
      ...(log ? { log: logHook(log, logParameters) } : {}),
    })
    child.attach(session)
    return session
  }
  return db
}
