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
 * otherwise. A named one runs through {@link queryOn}: pg's `Query` that
 * asks for the row description once per connection (src/sql/wire-query.ts). Every prepared statement carries its {@link StatementKind}, so a
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
import { mapCommitError, mapDatabaseError } from '../errors/map-database-error.ts'
import { ConnectionLostError, UnknownOutcomeError } from '../errors/outcome-errors.ts'
import type { Queryable, ReplicaRouter } from './replica-router.ts'
import { type StatementKind, statementKind } from './statement-kind.ts'
import { canRunNamed, runNamed, submitNamed } from './wire-query.ts'

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
  /** Sent unnamed (planned per call with its actual values), though compiled once. */
  readonly unnamed?: boolean
  /**
   * A read that must see the primary's latest commits, never a replica's replay:
   * the change feed's horizon and pages (a page read on a lagging replica would
   * skip events committed below the horizon, and the token would pass them).
   */
  readonly primary?: boolean
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
  /**
   * Run named statements through src/sql/wire-query.ts (pg's `Query` without
   * the per-call Describe); `false`: pg's `Query` as is. Default: on.
   */
  readonly wirePath?: boolean
}

/**
 * The WAL position reads through one instance must see: its last write's (or
 * a consistency token's). Only used with replicas.
 */
export class ConsistencyFloor {
  /** The highest primary WAL position written (or handed in and verified) so far. */
  lsn: bigint | undefined
  /**
   * A position handed in with a consistency token and not yet checked against
   * the primary: it joins {@link lsn} only once known to exist there (clamped
   * to the primary's position when beyond it, e.g. a forged token).
   */
  claimed: bigint | undefined
  /** Until when (ms epoch) every read goes to the primary: a write whose position could not be read. */
  primaryUntil = 0

  constructor(lsn?: bigint, claimed?: bigint) {
    this.lsn = lsn
    this.claimed = claimed
  }

  /** Raises the floor to `lsn` (never lowers it). */
  advance(lsn: bigint): void {
    if (this.lsn === undefined || lsn > this.lsn) this.lsn = lsn
  }

  /** The token to hand out: the floor, or the claim while it is unchecked (it only echoes what was handed in). */
  get token(): bigint | undefined {
    if (this.claimed === undefined) return this.lsn
    return this.lsn === undefined || this.claimed > this.lsn ? this.claimed : this.lsn
  }
}

/** The lower of two WAL positions. */
const lower = (a: bigint, b: bigint): bigint => (a < b ? a : b)

/** The execution state of one `createDb` instance: its pool and settings. */
export class Execution {
  /** The top-level instance's executor, set by {@link Execution.attach}. */
  #root: QueryExecutor | undefined

  /** The caller's pool. */
  readonly pool: pg.Pool
  /** How queries are sent. */
  readonly settings: ExecutionSettings

  /** Routes reads to replicas, when `createDb` got some; shared by the instances made from one `createDb`. */
  readonly router: ReplicaRouter | undefined
  /** What this instance's reads must see (read-your-writes), with replicas. */
  readonly floor: ConsistencyFloor
  /** Whether `destroy()` ends the pools (the `createDb` instance) or not (a session from `withConsistencyToken`). */
  readonly ownsPools: boolean
  /** Makes another instance with the same pools and settings on a given execution (set by `createDb`). */
  spawn: ((execution: Execution) => Kysely<DB>) | undefined

  constructor(
    pool: pg.Pool,
    settings: ExecutionSettings,
    replicas?: { router: ReplicaRouter; floor?: ConsistencyFloor; ownsPools?: boolean },
  ) {
    this.pool = pool
    this.settings = settings
    this.router = replicas?.router
    this.floor = replicas?.floor ?? new ConsistencyFloor()
    this.ownsPools = replicas?.ownsPools ?? true
  }

  #closing: Promise<void> | undefined

  /**
   * Ends the pools this instance owns (the primary and the replicas), once:
   * called by the driver's `destroy()` and by the `createDb` instance's own
   * `destroy()`, which must end them even when every query took the direct
   * path (Kysely only destroys a driver it has used).
   */
  close(): Promise<void> {
    if (!this.ownsPools) return Promise.resolve()
    this.#closing ??= (async () => {
      const router = this.router
      router?.close()
      await Promise.all([this.pool.end(), ...(router?.pools ?? []).map((p) => p.end())])
    })()
    return this.#closing
  }

  /**
   * The floor a read must respect now: `undefined` for none, `'primary'` while
   * a write's position is unknown. A consistency token not yet checked is
   * checked first: a position the router has seen on the primary is taken as
   * is; one beyond it is compared with the primary's current position (one
   * round trip) and clamped to it, so a forged or foreign token can neither
   * hold reads back nor raise the tokens this instance hands out.
   */
  async readFloor(): Promise<bigint | undefined | 'primary'> {
    const router = this.router
    const claimed = this.floor.claimed
    if (router && claimed !== undefined) {
      if (claimed <= router.highestKnown) {
        this.floor.advance(claimed)
        this.floor.claimed = undefined
      } else {
        try {
          const now = await router.currentLsn(router.primary)
          this.floor.advance(lower(claimed, now))
          this.floor.claimed = undefined
        } catch {
          return 'primary' // the primary's position is unknown: the primary serves this read
        }
      }
    }
    if (this.floor.primaryUntil > Date.now()) return 'primary'
    return this.floor.lsn
  }

  /**
   * After a write (or a commit) on the primary: raise the floor to the
   * primary's WAL insert position, which also settles an unchecked token
   * (any real one is at or below it).
   */
  async noteWrite(queryable: Queryable): Promise<void> {
    const router = this.router
    if (!router) return
    try {
      const lsn = await router.currentLsn(queryable)
      const claimed = this.floor.claimed
      this.floor.claimed = undefined
      if (claimed !== undefined) this.floor.advance(lower(claimed, lsn))
      this.floor.advance(lsn)
    } catch {
      // position unknown: read from the primary until a replica must have caught up
      this.floor.primaryUntil =
        Date.now() + router.settings.maxLagMs + router.settings.readYourWritesTimeoutMs
    }
  }

  /** Runs a read on a replica that has everything this instance must see, else on the primary. */
  async routeRead<T>(run: (queryable: Queryable) => Promise<T>): Promise<T> {
    const router = this.router
    const floor = await this.readFloor()
    if (!router || floor === 'primary') return run(this.pool)
    return router.read(floor, run)
  }

  /** Binds the top-level instance: only its own executor may take the direct path. */
  attach(db: Kysely<DB>): void {
    this.#root = db.getExecutor()
  }

  /** Whether a prepared query on an instance with this executor runs straight on the pool. */
  isDirect(executor: QueryExecutor): boolean {
    return this.settings.direct && executor === this.#root
  }

  /** The pg query config of a SQL text: by name for a prepared statement (not `unnamed`) when enabled. */
  queryConfig(sql: string, values: readonly unknown[], statement?: Statement): pg.QueryConfig {
    return statement && !statement.unnamed && this.settings.preparedStatements
      ? { name: statement.name, text: sql, values: values as unknown[] }
      : { text: sql, values: values as unknown[] }
  }
}

/** What guildstore reads of a pg result (pg's, or src/sql/wire-query.ts's). */
interface PgResult {
  readonly command: string
  readonly rowCount: number | null
  readonly rows: unknown[]
}

/**
 * Runs a query config on a client: a named statement through
 * src/sql/wire-query.ts (no per-call row description) when the client
 * allows it, an unnamed one as `client.query(text, values)` (pg ≥ 8.23 copies
 * a config object property by property, a string it does not), a named one
 * otherwise as `client.query(config)`.
 */
function queryOn(
  client: pg.ClientBase,
  config: pg.QueryConfig,
  settings: ExecutionSettings,
): Promise<PgResult> {
  if (!config.name) return client.query(config.text, config.values)
  return settings.wirePath !== false && canRunNamed(client)
    ? runNamed(client, config.name, config.text, config.values ?? [])
    : client.query(config)
}

/**
 * `pool.query(config)`, with a named statement through src/sql/wire-query.ts:
 * pg-pool's own `query` (callbacks, not promises, until the end) with that
 * query in place of pg's plain `Query` (`pool.query(submittable)` never
 * releases its client). The client is released as pg-pool releases it
 * (destroyed after any error), and a connection error while it is checked
 * out fails the call instead of reaching the host as an unhandled `'error'`.
 */
function queryPool(
  pool: pg.Pool,
  config: pg.QueryConfig,
  settings: ExecutionSettings,
): Promise<PgResult> {
  const name = config.name
  // unnamed (the search): text and values, which pg does not copy as it copies a config object
  if (!name) return pool.query(config.text, config.values)
  if (settings.wirePath === false) return pool.query(config)
  return new Promise<PgResult>((resolve, reject) => {
    pool.connect((connectError, client) => {
      if (connectError || !client) {
        reject(connectError)
        return
      }
      if (!canRunNamed(client)) {
        client.query(config).then(
          (result) => {
            client.release()
            resolve(result)
          },
          (error: Error) => {
            client.release(error)
            reject(error)
          },
        )
        return
      }
      let released = false
      const onError = (error: Error) => {
        if (released) return
        released = true
        client.release(error)
        reject(error)
      }
      client.once('error', onError)
      submitNamed(client, name, config.text, config.values ?? [], (error, result) => {
        client.removeListener('error', onError)
        if (released) return
        released = true
        if (error) {
          client.release(error)
          // as pg-pool's promise does: a stack that leads back to the caller
          Error.captureStackTrace(error)
          reject(error)
        } else {
          client.release()
          resolve(result as PgResult)
        }
      })
    })
  })
}

/** Kysely's `QueryResult` of a pg result. */
function toQueryResult<R>(r: PgResult): QueryResult<R> {
  return {
    rows: (r.rows ?? []) as R[],
    numAffectedRows: AFFECTING.has(r.command) ? BigInt(r.rowCount ?? 0) : undefined,
  }
}

/**
 * Runs a write that is its own transaction (autocommit) on a client of
 * `pool`: a connection lost after it was sent is an `UnknownOutcomeError`
 * (it may have committed), one that could not be had at all maps as usual.
 */
async function runWrite(
  pool: pg.Pool,
  config: pg.QueryConfig,
  settings: ExecutionSettings,
): Promise<PgResult> {
  const client = await pool.connect()
  let result: PgResult
  try {
    result = await queryOn(client, config, settings)
  } catch (error) {
    client.release(error instanceof Error ? error : true)
    throw mapCommitError(error)
  }
  client.release()
  return result
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
    const config = execution.queryConfig(statement.sql, values, statement)
    if (statement.kind === 'read') {
      if (!execution.router || statement.primary) {
        return toQueryResult<R>(await queryPool(execution.pool, config, execution.settings))
      }
      return toQueryResult<R>(await execution.routeRead((q) => q.query(config)))
    }
    const result = await runWrite(execution.pool, config, execution.settings)
    await execution.noteWrite(execution.pool)
    return toQueryResult<R>(result)
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
  /** Inside a transaction (set by the driver): a lost connection before COMMIT rolled it back. */
  inTransaction = false
  /** A COMMIT lost its connection: the outcome is unknown and the rollback is skipped. */
  commitLost = false

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
      let r: PgResult
      try {
        r = await queryOn(
          this.client,
          this.execution.queryConfig(compiled.sql, compiled.parameters, statement),
          this.execution.settings,
        )
      } catch (error) {
        // COMMIT, or a write that commits by itself: a lost connection leaves its outcome unknown
        // (only that case is typed here: any other error goes on as the driver
        // gave it, as for every query a host runs through Kysely)
        if (isCommit(compiled) || (!this.inTransaction && !isRead(compiled))) {
          const mapped = mapCommitError(error)
          if (mapped instanceof UnknownOutcomeError) throw mapped
        }
        throw error
      }
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

/** Whether a compiled query may run on a replica: a read-only prepared statement, or a SELECT that neither writes nor locks. */
function isReplicaRead(compiled: CompiledQuery): boolean {
  const statement = (compiled as StatementQuery).statement
  if (statement) return statement.kind === 'read' && statement.primary !== true
  // Raw SQL from outside guildstore (SET, advisory locks, functions…) stays on the primary.
  return compiled.query.kind === 'SelectQueryNode' && statementKind(compiled.query) === 'read'
}

/** Whether a query only reads, by the same rule as replica routing for any SQL (writing keywords in raw SQL make it a write). */
function isRead(compiled: CompiledQuery): boolean {
  const statement = (compiled as StatementQuery).statement
  return (statement?.kind ?? statementKind(compiled.query)) === 'read'
}

const isCommit = (compiled: CompiledQuery): boolean => /^\s*commit\b/i.test(compiled.sql)

/**
 * A connection of an instance with replicas: a read outside a transaction
 * runs on a replica client (taken per read, within the router's time bound),
 * anything else on a primary connection; once it has written or begun a
 * transaction, every query of it stays on the primary. Writes outside a
 * transaction, and commits, raise the instance's read-your-writes floor.
 */
class RoutingConnection implements DatabaseConnection {
  #primary: GuildstoreConnection | undefined
  #pinned = false
  #inTransaction = false

  readonly execution: Execution
  readonly router: ReplicaRouter

  constructor(execution: Execution, router: ReplicaRouter) {
    this.execution = execution
    this.router = router
  }

  /** Every query from now on runs on the primary, inside a transaction. */
  async beginTransaction(): Promise<void> {
    this.#pinned = true
    this.#inTransaction = true
    ;(await this.primary()).inTransaction = true
  }

  /** The transaction ended: raise the floor after a commit. */
  async endTransaction(committed: boolean): Promise<void> {
    this.#inTransaction = false
    if (this.#primary) this.#primary.inTransaction = false
    if (committed && this.#primary) await this.execution.noteWrite(this.#primary.client)
  }

  /** Whether a COMMIT on this connection lost its connection. */
  get commitLost(): boolean {
    return this.#primary?.commitLost ?? false
  }

  /** The primary connection, taken when first needed. */
  async primary(): Promise<GuildstoreConnection> {
    if (!this.#primary) {
      this.#primary = new GuildstoreConnection(await this.execution.pool.connect(), this.execution)
    }
    return this.#primary
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    if (!this.#pinned && isReplicaRead(compiled)) {
      const onPrimary = async () => (await this.primary()).executeQuery<R>(compiled)
      const floor = await this.execution.readFloor()
      if (floor === 'primary') return onPrimary()
      const config = this.execution.queryConfig(
        compiled.sql,
        compiled.parameters,
        (compiled as StatementQuery).statement,
      )
      return this.router.read(
        floor,
        async (q) => toQueryResult<R>(await q.query(config)),
        onPrimary,
      )
    }
    this.#pinned = true
    const primary = await this.primary()
    const result = await primary.executeQuery<R>(compiled)
    if (!this.#inTransaction) await this.execution.noteWrite(primary.client)
    return result
  }

  // biome-ignore lint/correctness/useYield: streaming is not configured; it fails as Kysely's PostgresDialect without `cursor` does
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not supported by guildstore connections')
  }

  discard(): void {
    this.#primary?.discard()
  }

  release(): void {
    this.#primary?.release()
    this.#primary = undefined
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
    const router = this.execution.router
    // With replicas the connection is taken when the first query says where it goes.
    if (router) return new RoutingConnection(this.execution, router)
    const client = await this.execution.pool.connect()
    return new GuildstoreConnection(client, this.execution)
  }

  override async beginTransaction(
    connection: DatabaseConnection,
    settings: Parameters<PostgresDriver['beginTransaction']>[1],
  ): Promise<void> {
    if (connection instanceof RoutingConnection) await connection.beginTransaction()
    else if (connection instanceof GuildstoreConnection) connection.inTransaction = true
    await super.beginTransaction(connection, settings)
  }

  override async commitTransaction(connection: DatabaseConnection): Promise<void> {
    let committed = false
    try {
      await super.commitTransaction(connection)
      committed = true
    } catch (error) {
      if (error instanceof UnknownOutcomeError) {
        // Kysely rolls back after a failed commit: on this broken connection that
        // would fail too and hide the outcome; the rollback is skipped instead.
        const target =
          connection instanceof RoutingConnection ? await connection.primary() : connection
        if (target instanceof GuildstoreConnection) target.commitLost = true
      }
      throw error
    } finally {
      if (connection instanceof GuildstoreConnection) connection.inTransaction = false
      if (connection instanceof RoutingConnection) await connection.endTransaction(committed)
    }
  }

  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const plain = connection as GuildstoreConnection | RoutingConnection
    if (plain.commitLost) {
      plain.discard()
      if (connection instanceof GuildstoreConnection) connection.inTransaction = false
      return
    }
    try {
      await connection.executeQuery(CompiledQuery.raw('rollback'))
    } catch (error) {
      plain.discard()
      // The connection is gone, and its transaction with it: the error that made
      // Kysely roll back (rethrown by it) is the one the caller must see.
      if (mapDatabaseError(error) instanceof ConnectionLostError) return
      throw error
    } finally {
      if (connection instanceof GuildstoreConnection) connection.inTransaction = false
      if (connection instanceof RoutingConnection) await connection.endTransaction(false)
    }
  }

  override async releaseConnection(connection: DatabaseConnection): Promise<void> {
    ;(connection as GuildstoreConnection | RoutingConnection).release()
  }

  override async destroy(): Promise<void> {
    if (this.#destroyed) return
    this.#destroyed = true
    await this.execution.close()
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

/**
 * Runs `fn` with the pg client under a transaction made by a `createDb`
 * instance (for what only the raw client can do, such as `COPY … FROM
 * STDIN`), or returns `undefined` when `trx` runs on a connection guildstore
 * did not make (a host's own Kysely dialect).
 *
 * @example
 * ```ts
 * await inTransaction(db, (trx) => withPgClient(trx, (client) => client.query(copyFrom(…))))
 * ```
 */
export async function withPgClient<T>(
  trx: Kysely<DB>,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<{ result: T } | undefined> {
  return trx
    .getExecutor()
    .provideConnection(async (connection) =>
      connection instanceof GuildstoreConnection
        ? { result: await fn(connection.client) }
        : undefined,
    )
}
