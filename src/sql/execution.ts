/**
 * The execution seam: how every guildstore query reaches the wire. All of its
 * state lives in the {@link Execution} a {@link GuildstoreDialect} carries, so
 * it belongs to the `Kysely` instance `createDb` made (reachable through
 * `db.getExecutor().adapter`), never to a module-level registry.
 *
 * Two paths, one decision point ({@link sendStatement}):
 * - direct: a prepared query on the top-level instance (no transaction, no
 *   plugin, no log hook) runs as `pool.query(config)` — the cheapest path;
 * - executor: everything else goes through Kysely's executor to
 *   {@link GuildstoreConnection.executeQuery}, which sends a prepared query's
 *   SQL by its statement name and any other SQL unnamed.
 *
 * Both build the pg query config with {@link Execution.queryConfig}: named
 * when `preparedStatements` is on and the query is a prepared one, unnamed
 * otherwise. Every prepared statement carries its {@link StatementKind}, so a
 * router (e.g. reads to a replica pool) hooks in here.
 */
import {
  CompiledQuery,
  createQueryId,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresDriver,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryCompiler,
  type QueryExecutor,
  type QueryResult,
  type RootOperationNode,
} from 'kysely'
import type pg from 'pg'
import type { DB } from '../../codegen/db.ts'
import type { StatementKind } from './statement-kind.ts'

/** A statement of a prepared query, as the seam sends it. */
export interface Statement {
  /** The SQL text, `$1`… placeholders in it. */
  readonly sql: string
  /** The prepared statement's name (`gs.` and the query's label). */
  readonly name: string
  /** Whether it only reads. */
  readonly kind: StatementKind
  /** The operation-node tree it was compiled from. */
  readonly query: RootOperationNode
}

/** A compiled query that carries the prepared statement it comes from. */
interface StatementQuery extends CompiledQuery {
  readonly statement?: Statement
}

/** Commands whose row count Kysely reports as `numAffectedRows`. */
const AFFECTING = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE'])

/** What decides how one `createDb` instance sends its queries. */
export interface ExecutionSettings {
  /** Send prepared queries as named statements (off behind a transaction-mode pooler). */
  readonly preparedStatements: boolean
  /** May prepared queries on the top-level instance skip Kysely's executor (no log hook, no plugins)? */
  readonly direct: boolean
}

/** The execution state of one `createDb` instance: its pool and settings. */
export class Execution {
  /** The top-level instance's executor, set by {@link Execution.attach}. */
  #root: QueryExecutor | undefined

  /** The caller's pool. */
  readonly pool: pg.Pool
  /** How queries are sent. */
  readonly settings: ExecutionSettings

  constructor(pool: pg.Pool, settings: ExecutionSettings) {
    this.pool = pool
    this.settings = settings
  }

  /** Binds the top-level instance: only its own executor may take the direct path. */
  attach(db: Kysely<DB>): void {
    this.#root = db.getExecutor()
  }

  /** Whether a prepared query on an instance with this executor runs straight on the pool. */
  isDirect(executor: QueryExecutor): boolean {
    return this.settings.direct && executor === this.#root
  }

  /** The pg query config of a SQL text: by name for a prepared statement when enabled. */
  queryConfig(sql: string, values: readonly unknown[], statement?: Statement): pg.QueryConfig {
    return statement && this.settings.preparedStatements
      ? { name: statement.name, text: sql, values: values as unknown[] }
      : { text: sql, values: values as unknown[] }
  }
}

/** Kysely's `QueryResult` of a pg result. */
function toQueryResult<R>(r: pg.QueryResult): QueryResult<R> {
  return {
    rows: (r.rows ?? []) as R[],
    numAffectedRows: AFFECTING.has(r.command) ? BigInt(r.rowCount ?? 0) : undefined,
  }
}

/**
 * Sends one prepared statement with its values: THE place every prepared
 * query goes through. On an instance `createDb` made, the top-level executor
 * takes the direct path; anything else (a transaction, a connection, plugins,
 * a log hook, a Kysely instance guildstore did not make) goes through the
 * instance's executor, which keeps its transaction, plugins and logging.
 */
export async function sendStatement<R>(
  db: Kysely<DB>,
  statement: Statement,
  values: readonly unknown[],
): Promise<QueryResult<R>> {
  const executor = db.getExecutor()
  const adapter = executor.adapter
  if (adapter instanceof GuildstoreAdapter && adapter.execution.isDirect(executor)) {
    const execution = adapter.execution
    return toQueryResult<R>(
      await execution.pool.query(execution.queryConfig(statement.sql, values, statement)),
    )
  }
  const query: StatementQuery = {
    sql: statement.sql,
    parameters: values,
    query: statement.query,
    queryId: createQueryId(),
    statement,
  }
  return db.executeQuery<R>(query)
}

/** The adapter of a {@link GuildstoreDialect}: PostgreSQL's, carrying the {@link Execution}. */
export class GuildstoreAdapter extends PostgresAdapter {
  /** The execution state of the instance. */
  readonly execution: Execution

  constructor(execution: Execution) {
    super()
    this.execution = execution
  }
}

/** One pooled client, as Kysely's executor uses it. */
class GuildstoreConnection implements DatabaseConnection {
  #discarded = false
  #inFlight = false
  #pid: number | undefined

  readonly client: pg.PoolClient
  readonly execution: Execution

  constructor(client: pg.PoolClient, execution: Execution) {
    this.client = client
    this.execution = execution
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    if (this.#discarded) throw new Error('the connection has been discarded')
    this.#inFlight = true
    try {
      const statement = (compiled as StatementQuery).statement
      const r = await this.client.query(
        this.execution.queryConfig(compiled.sql, compiled.parameters, statement),
      )
      // The transaction driver reads COMMIT's tag (ROLLBACK after an aborted transaction).
      if (r.command === 'COMMIT' || r.command === 'ROLLBACK') {
        return { rows: [{ command: r.command }] as R[] }
      }
      return toQueryResult<R>(r)
    } finally {
      this.#inFlight = false
    }
  }

  // biome-ignore lint/correctness/useYield: streaming is not configured; it fails as Kysely's PostgresDialect without `cursor` does
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not supported by guildstore connections')
  }

  /** Learns the backend pid, so that an aborted query can be cancelled (called by Kysely before a query with a signal). */
  async collectSessionInfo(): Promise<void> {
    if (this.#pid !== undefined) return
    const { rows } = await this.client.query<{ pid: number }>('select pg_backend_pid() as pid')
    this.#pid = Number(rows[0]?.pid)
  }

  async cancelQuery(control: (fn: (c: DatabaseConnection) => Promise<void>) => Promise<void>) {
    await this.#control(control, 'pg_cancel_backend')
  }

  async killSession(control: (fn: (c: DatabaseConnection) => Promise<void>) => Promise<void>) {
    await this.#control(control, 'pg_terminate_backend')
  }

  async #control(
    control: (fn: (c: DatabaseConnection) => Promise<void>) => Promise<void>,
    fn: 'pg_cancel_backend' | 'pg_terminate_backend',
  ): Promise<void> {
    const pid = this.#pid
    if (pid === undefined || !this.#inFlight) return
    await control(async (c) => {
      if (this.#inFlight) await c.executeQuery(CompiledQuery.raw(`select ${fn}($1)`, [pid]))
    })
  }

  /** Marks the client broken (a failed ROLLBACK): the pool destroys it on release. */
  discard(): void {
    this.#discarded = true
  }

  release(): void {
    this.client.release(this.#discarded)
  }
}

/**
 * Kysely's PostgreSQL driver (transactions, savepoints) on guildstore
 * connections: the pool is the caller's, a connection sends prepared queries
 * by name.
 */
class GuildstoreDriver extends PostgresDriver implements Driver {
  #destroyed = false

  readonly execution: Execution

  constructor(execution: Execution) {
    super({ pool: execution.pool })
    this.execution = execution
  }

  override async init(): Promise<void> {}

  override async acquireConnection(): Promise<DatabaseConnection> {
    const client = await this.execution.pool.connect()
    return new GuildstoreConnection(client, this.execution)
  }

  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await connection.executeQuery(CompiledQuery.raw('rollback'))
    } catch (error) {
      ;(connection as GuildstoreConnection).discard()
      throw error
    }
  }

  override async releaseConnection(connection: DatabaseConnection): Promise<void> {
    ;(connection as GuildstoreConnection).release()
  }

  override async destroy(): Promise<void> {
    if (this.#destroyed) return
    this.#destroyed = true
    await this.execution.pool.end()
  }
}

/**
 * guildstore's Kysely dialect: PostgreSQL's adapter, compiler and
 * introspector, with a driver and adapter that carry the instance's
 * {@link Execution}.
 */
export class GuildstoreDialect implements Dialect {
  /** The execution state the adapter and driver share. */
  readonly execution: Execution

  constructor(execution: Execution) {
    this.execution = execution
  }

  createAdapter(): DialectAdapter {
    return new GuildstoreAdapter(this.execution)
  }

  createDriver(): Driver {
    return new GuildstoreDriver(this.execution)
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new PostgresIntrospector(db)
  }

  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler()
  }
}
