/**
 * A faster result path on `pg` for guildstore's named prepared statements
 * (issue 28): {@link DescribedQuery}, pg's own `Query` with one step changed.
 *
 * Per call, pg's `Query` sends Bind, Describe(portal), Execute, Sync (corked
 * into one `writev` since pg 8.23), so the server answers every call with a
 * RowDescription that pg parses and turns into a fresh parser list and row
 * template (`Result.addFields`). A statement's result columns cannot change
 * while it stays prepared on a connection (PostgreSQL refuses the call with
 * `cached plan must not change result type` instead), so the description is
 * asked for once per connection and statement, kept in {@link descriptions},
 * and later calls send Bind, Execute, Sync, with the result's columns and row
 * template set from the cache. Everything else is pg's `Query`: Parse and
 * pg's `parsedStatements` bookkeeping, value serialization, row decoding
 * (`Result.parseRow`), errors, callbacks, `query_timeout`. Type parsers are
 * still looked up per call through the client's types, so
 * `guildstoreTypeParsers`, a pool's `types` and a later global
 * `pg.types.setTypeParser` apply exactly as before.
 *
 * It relies on pg internals (see {@link queryFits}), checked once at import:
 * on a pg without them (pg 8.13 and 8.14 lack the `pg.utils` export, a
 * future pg may rename a field) every call is pg's plain `Query`, Describe
 * included. `scripts/peer-matrix.ts` reruns the tests on the oldest pg of the
 * peer range.
 */
import pg from 'pg'

/** A result column as pg-protocol parses it from a RowDescription. */
export interface Field {
  readonly name: string
  readonly dataTypeID: number
  readonly format: string
}

/** What pg's `Connection` offers a query (the subset used here). */
interface WireConnection {
  readonly parsedStatements: Record<string, string>
  bind(config: {
    portal: string
    statement: string
    values: unknown[]
    binary: boolean | undefined
  }): void
}

/** The internals of pg's `Query` and `Result` this subclass reads and sets. */
interface PgQuery {
  name: string | undefined
  readonly text: string | undefined
  readonly values: unknown[] | undefined
  readonly portal: string
  readonly binary: boolean | undefined
  readonly rows: number | undefined
  callback: ((error: Error | null, result?: unknown) => void) | undefined
  _accumulateRows: boolean
  _canceledDueToError: unknown
  _result: {
    fields: readonly Field[]
    _parsers: unknown[] | undefined
    _prebuiltEmptyResultObject: object | null
    _types: { getTypeParser(oid: number, format: string): unknown } | undefined
  }
  listeners(event: string): unknown[]
  prepare(connection: WireConnection): void
  _getRows(connection: WireConnection, rows: number | undefined): void
  handleError(error: Error, connection?: WireConnection): void
  handleReadyForQuery(connection: WireConnection): void
}

/** The result description of one statement on one connection. */
interface Description {
  /** The statement's SQL (a name reused for other SQL is never trusted). */
  readonly text: string
  readonly fields: readonly Field[]
  /** pg's row template (every column `null`), cloned for each row. */
  readonly template: object | null
}

/** Per pg `Connection`: statement name → its result description. */
const descriptions = new WeakMap<WireConnection, Map<string, Description>>()

/** The parts of the `pg` module {@link queryFits} checks. */
interface PgModuleLike {
  readonly Query?: unknown
  readonly utils?: { readonly prepareValue?: unknown } | undefined
}

/**
 * Whether a `pg` module has what {@link DescribedQuery} relies on: pg's own
 * parameter serializer `pg.utils.prepareValue` (exported since pg 8.15), a
 * `Query` whose prototype has `prepare`, `_getRows`, `handleReadyForQuery` and
 * `handleError`, and whose instances carry a `_result` with `fields`,
 * `_parsers`, `_types` and `_prebuiltEmptyResultObject`. Anything else (pg
 * 8.13 and 8.14, a future pg that renamed them, pg-native) takes pg's plain
 * `Query`: correct, with a Describe per call. Never throws.
 *
 * @example
 * ```ts
 * queryFits(pg) // true on pg 8.15+, false on 8.13
 * ```
 */
export function queryFits(pgModule: PgModuleLike): boolean {
  try {
    if (typeof pgModule.utils?.prepareValue !== 'function') return false
    const Query = pgModule.Query as
      | (new (config: {
          text: string
        }) => { _result?: object })
      | undefined
    if (typeof Query !== 'function') return false
    const proto = Query.prototype as unknown as Record<string, unknown>
    const methods = ['prepare', '_getRows', 'handleReadyForQuery', 'handleError']
    if (!methods.every((method) => typeof proto[method] === 'function')) return false
    const result = new Query({ text: 'select 1' })._result
    return (
      typeof result === 'object' &&
      result !== null &&
      ['fields', '_parsers', '_types', '_prebuiltEmptyResultObject'].every((key) => key in result)
    )
  } catch {
    return false
  }
}

/** Whether the installed pg fits (see {@link queryFits}); checked once, at import. */
const PG_QUERY_FITS = queryFits(pg as unknown as PgModuleLike)

/** pg's own parameter serializer (what its `Query` binds values with), when {@link PG_QUERY_FITS}. */
const prepareValue: (value: unknown) => unknown = PG_QUERY_FITS
  ? (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils.prepareValue
  : (value) => value

const PgQueryClass = pg.Query as unknown as new (
  text: string,
  values: unknown[],
  callback: (error: Error | null, result?: unknown) => void,
) => PgQuery

/** pg's `Query` for a named statement, without the per-call Describe once the description is known (see the module's notes). */
class DescribedQuery extends PgQueryClass {
  /**
   * pg's `Query` made from the text (not a config object: since pg 8.23 a
   * config object is copied property by property, `cloneQueryConfig`), then named.
   */
  constructor(
    name: string,
    text: string,
    values: unknown[],
    callback: (error: Error | null, result?: unknown) => void,
  ) {
    super(text, values, callback)
    this.name = name
  }

  /** The connection it was sent on (set when it is written). */
  #connection: WireConnection | undefined
  /** Sent with the cached description (no Describe). */
  #cached = false
  /** Failed (pg reports some failures before ReadyForQuery, e.g. a value it could not bind). */
  #failed = false

  override prepare(connection: WireConnection): void {
    this.#connection = connection
    const { name, text } = this
    const cached = name ? descriptions.get(connection)?.get(name) : undefined
    // Trusted only while pg knows the statement parsed with this text on this connection.
    if (
      !PG_QUERY_FITS ||
      !cached ||
      !name ||
      cached.text !== text ||
      connection.parsedStatements[name] !== text ||
      this.rows
    ) {
      super.prepare(connection)
      return
    }
    let values: unknown[]
    try {
      values = (this.values ?? []).map((value) => prepareValue(value))
    } catch {
      // a value that cannot be sent: pg's own path reports it as it always has
      super.prepare(connection)
      return
    }
    this.#cached = true
    const result = this._result
    const types = result._types ?? (pg.types as unknown as NonNullable<typeof result._types>)
    result.fields = cached.fields
    result._parsers = cached.fields.map((f) =>
      types.getTypeParser(f.dataTypeID, f.format || 'text'),
    )
    result._prebuiltEmptyResultObject = cached.template
    this._accumulateRows = this.callback !== undefined || this.listeners('row').length === 0
    connection.bind({ portal: this.portal, statement: name, values, binary: this.binary })
    this._getRows(connection, undefined)
  }

  override handleReadyForQuery(connection: WireConnection): void {
    const name = this.name
    if (
      PG_QUERY_FITS &&
      !this.#cached &&
      !this.#failed &&
      name &&
      this.text &&
      !this.rows &&
      !this._canceledDueToError
    ) {
      // described by this call: a RowDescription, or none for a statement without rows
      let known = descriptions.get(connection)
      if (!known) {
        known = new Map()
        descriptions.set(connection, known)
      }
      const result = this._result
      known.set(name, {
        text: this.text,
        fields: result.fields,
        template: result._prebuiltEmptyResultObject,
      })
    }
    super.handleReadyForQuery(connection)
  }

  override handleError(error: Error, connection?: WireConnection): void {
    // Whatever failed, the next call on this connection describes afresh
    // (`cached plan must not change result type`, a DEALLOCATE behind pg's back…).
    this.#failed = true
    const target = connection ?? this.#connection
    if (target && this.name) descriptions.get(target)?.delete(this.name)
    super.handleError(error, connection)
  }
}

/** The pg result of a named statement: what guildstore and pg's callers read. */
export interface WireResult {
  command: string
  rowCount: number | null
  oid: number | null
  rows: Record<string, unknown>[]
  fields: readonly Field[]
}

/**
 * Whether a client can run {@link submitNamed}: a pg `Client` with its wire
 * connection, not in pipeline mode (queries written ahead of the answers), on
 * a pg whose `Query` has the internals the route relies on.
 *
 * @example
 * ```ts
 * const r = canRunNamed(client) ? await runNamed(client, name, text, values) : await client.query({ name, text, values })
 * ```
 */
export function canRunNamed(client: unknown): boolean {
  const c = client as { connection?: { bind?: unknown }; pipeline?: boolean }
  return PG_QUERY_FITS && typeof c.connection?.bind === 'function' && !c.pipeline
}

/**
 * Whether this process's pg skips the per-call Describe of named statements
 * (see {@link queryFits}); when `false`, {@link runNamed} and
 * {@link submitNamed} run pg's plain `Query` (a Describe per call).
 */
export const SKIPS_DESCRIBE: boolean = PG_QUERY_FITS

/**
 * Runs a named prepared statement on a pg client through {@link DescribedQuery},
 * callback style (as pg-pool's `query` runs pg's): `done` is called once, with
 * pg's error or pg's result.
 *
 * @example
 * ```ts
 * submitNamed(client, 'gs.history', 'select … where channel_id = $1', [id], (error, r) => …)
 * ```
 */
export function submitNamed(
  client: pg.ClientBase,
  name: string,
  text: string,
  values: readonly unknown[],
  done: (error: Error | null, result?: WireResult) => void,
): void {
  const query = new DescribedQuery(name, text, values as unknown[], (error, result) =>
    done(error ?? null, result as WireResult | undefined),
  )
  ;(client as unknown as { query(query: unknown): unknown }).query(query)
}

/**
 * {@link submitNamed} as a promise: the same rows, `command` and `rowCount`
 * as `client.query({ name, text, values })`, and the same errors.
 *
 * @example
 * ```ts
 * const r = await runNamed(client, 'gs.history', 'select … where channel_id = $1', [id])
 * ```
 */
export function runNamed(
  client: pg.ClientBase,
  name: string,
  text: string,
  values: readonly unknown[],
): Promise<WireResult> {
  return new Promise<WireResult>((resolve, reject) => {
    submitNamed(client, name, text, values, (error, result) => {
      if (error) {
        // as pg's own promise does: a stack that leads back here, not to the socket
        Error.captureStackTrace(error)
        reject(error)
      } else resolve(result as WireResult)
    })
  })
}
