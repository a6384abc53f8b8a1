/**
 * A faster result path on `pg` for guildstore's named prepared statements
 * (issue 28): a pg "submittable" (the interface pg-cursor and pg-query-stream
 * use) that pg's `Client` runs in its query queue like any query.
 *
 * Per call, pg's own `Query` sends Bind, Describe(portal), Execute, Sync, so
 * the server answers every call with a RowDescription that pg parses, and
 * then rebuilds the result's per-column parser list and row template from it.
 * A statement's result columns cannot change while it stays prepared on a
 * connection (PostgreSQL refuses with `cached plan must not change result
 * type` instead), so {@link WireQuery} asks for the description once per
 * connection and statement and keeps it (the columns and a row template) in
 * {@link descriptions}; later calls send Bind, Execute, Sync (corked: one
 * write). Type parsers are still looked up per call through the client's own
 * `getTypeParser`, so guildstore's parsers, a pool's `types`, and a later
 * global `pg.types.setTypeParser` apply exactly as with pg's `Query`.
 *
 * pg's bookkeeping stays its own: Parse is sent only when pg's
 * `parsedStatements` / `submittedNamedStatements` lack the statement, and
 * marked in `submittedNamedStatements` as pg does, so pg's `ParseComplete`
 * and error handling keep them right and pg's own named queries on the same
 * client still work. Errors are pg's objects (`DatabaseError`, connection
 * errors), delivered as pg's `Query` delivers them.
 */
import pg from 'pg'

/** pg's own parameter serializer (`pg.utils`, what its `Query` binds values with). */
const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils
  .prepareValue

/** A result column as pg-protocol parses it from a RowDescription. */
export interface Field {
  readonly name: string
  readonly dataTypeID: number
  readonly format: string
}

/** What pg's `Connection` offers a submittable (the subset used here). */
interface WireConnection {
  readonly parsedStatements: Record<string, string>
  readonly submittedNamedStatements: Record<string, string>
  readonly stream: { cork?: () => void; uncork?: () => void }
  parse(query: { text: string; name: string; types?: unknown }): void
  bind(config: { portal: string; statement: string; values: unknown[]; binary: boolean }): void
  describe(msg: { type: 'P' | 'S'; name: string }): void
  execute(config: { portal: string; rows?: number }): void
  sync(): void
  sendCopyFail(message: string): void
}

/** What pg's `Client` offers (the subset used here; `getTypeParser` is public). */
interface WireClient {
  readonly connection?: WireConnection
  readonly pipeline?: boolean
  readonly binary?: boolean
  getTypeParser(oid: number, format: string): (value: string) => unknown
  query(query: unknown): unknown
}

/** The result description of one statement on one connection. */
interface Description {
  /** The statement's SQL (a name reused for other SQL is never trusted). */
  readonly text: string
  readonly fields: readonly Field[]
  /** Every column name set to `null`: what pg starts each row from. */
  readonly template: Record<string, null>
}

/** Per pg `Connection`: statement name → its result description. */
const descriptions = new WeakMap<WireConnection, Map<string, Description>>()

function describe(fields: readonly Field[], text: string): Description {
  const template = Object.create(null) as Record<string, null>
  for (const field of fields) template[field.name] = null
  return { text, fields, template: { ...template } }
}

/** The command tag's parts, parsed as pg's `Result.addCommandComplete` does. */
const COMMAND_TAG = /^([A-Za-z]+)(?: (\d+))?(?: (\d+))?/

/** The pg result of a {@link WireQuery}: the fields guildstore and pg's callers read. */
export interface WireResult {
  command: string
  rowCount: number | null
  oid: number | null
  rows: Record<string, unknown>[]
  fields: readonly Field[]
}

type Callback = (error: Error | null, result?: WireResult) => void

/** One call of a named prepared statement, run as a pg submittable (see the module's notes). */
class WireQuery {
  /** Read by pg's `Client`: ParseComplete marks `name` parsed with `text`; an error forgets a submitted one. */
  readonly name: string
  readonly text: string
  readonly values: readonly unknown[]
  /** Set by pg's `Client` when it wraps it (query_timeout); called once. */
  callback: Callback | undefined

  readonly #client: WireClient
  #connection: WireConnection | undefined
  #description: Description | undefined
  /** Whether this call sent Describe (a RowDescription, or none for a statement without rows, answers it). */
  #described = false
  #parsers: ((value: string) => unknown)[] | undefined
  #rows: Record<string, unknown>[] = []
  #command = ''
  #rowCount: number | null = null
  #oid: number | null = null
  /** A row parser threw: reported at ReadyForQuery, as pg does. */
  #rowError: unknown
  #done = false

  constructor(client: WireClient, name: string, text: string, values: readonly unknown[]) {
    this.#client = client
    this.name = name
    this.text = text
    this.values = values
  }

  /** Writes the call: Parse when needed, Bind, Describe when this connection has no description, Execute, Sync. */
  submit(connection: WireConnection): Error | null {
    const { name, text } = this
    const previous = connection.parsedStatements[name] ?? connection.submittedNamedStatements[name]
    if (previous !== undefined && previous !== text) {
      return new Error(
        `Prepared statements must be unique - '${name}' was used for a different statement`,
      )
    }
    // Mapped before anything is written: a value that cannot be sent fails the call alone.
    let values: unknown[]
    try {
      values = this.values.map((value) => prepareValue(value))
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error))
    }
    this.#connection = connection
    let known = descriptions.get(connection)
    if (!known) {
      known = new Map()
      descriptions.set(connection, known)
    }
    const cached = known.get(name)
    // Trusted only while pg knows the statement parsed with this text on this connection.
    if (cached && cached.text === text && connection.parsedStatements[name] === text) {
      this.#description = cached
    } else {
      known.delete(name)
      this.#described = true
    }
    const stream = connection.stream
    stream.cork?.()
    try {
      if (previous === undefined) {
        connection.parse({ text, name })
        connection.submittedNamedStatements[name] = text
      }
      connection.bind({ portal: '', statement: name, values, binary: false })
      if (this.#described) connection.describe({ type: 'P', name: '' })
      connection.execute({ portal: '' })
      connection.sync()
    } finally {
      stream.uncork?.()
    }
    return null
  }

  handleRowDescription(msg: { fields: Field[] }): void {
    const description = describe(msg.fields, this.text)
    this.#description = description
    descriptions.get(this.#connection as WireConnection)?.set(this.name, description)
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    if (this.#rowError !== undefined) return
    const description = this.#description
    if (!description) {
      this.#rowError = new Error(`no row description for prepared statement '${this.name}'`)
      return
    }
    const fields = description.fields
    try {
      let parsers = this.#parsers
      if (!parsers) {
        const client = this.#client
        parsers = fields.map((f) => client.getTypeParser(f.dataTypeID, f.format || 'text'))
        this.#parsers = parsers
      }
      const raw = msg.fields
      const row: Record<string, unknown> = { ...description.template }
      for (let i = 0, n = raw.length; i < n; i++) {
        const value = raw[i]
        const field = fields[i] as Field
        if (value === null || value === undefined) row[field.name] = null
        else {
          const v = field.format === 'binary' ? Buffer.from(value) : value
          row[field.name] = (parsers[i] as (value: unknown) => unknown)(v)
        }
      }
      this.#rows.push(row)
    } catch (error) {
      this.#rowError = error
    }
  }

  handleCommandComplete(msg: { text?: string; command?: string }): void {
    const match = COMMAND_TAG.exec(msg.text ?? msg.command ?? '')
    if (!match) return
    this.#command = match[1] as string
    if (match[3]) {
      this.#oid = Number.parseInt(match[2] as string, 10)
      this.#rowCount = Number.parseInt(match[3], 10)
    } else if (match[2]) {
      this.#rowCount = Number.parseInt(match[2], 10)
    }
  }

  handleEmptyQuery(): void {}

  handlePortalSuspended(connection: WireConnection): void {
    connection.execute({ portal: '' })
    connection.sync()
  }

  handleCopyInResponse(connection: WireConnection): void {
    connection.sendCopyFail('No source stream defined')
  }

  handleCopyData(): void {}

  handleError(error: Error): void {
    // Whatever failed, the next call on this connection describes afresh
    // (`cached plan must not change result type`, a DEALLOCATE behind pg's back…).
    if (this.#connection) descriptions.get(this.#connection)?.delete(this.name)
    this.#finish(error)
  }

  handleReadyForQuery(): void {
    if (this.#rowError !== undefined) {
      const error = this.#rowError
      this.#rowError = undefined
      this.handleError(error instanceof Error ? error : new Error(String(error)))
      return
    }
    let description = this.#description
    if (!description && this.#described && this.#connection) {
      // Described and no RowDescription came (NoData): a statement without rows.
      description = describe([], this.text)
      descriptions.get(this.#connection)?.set(this.name, description)
    }
    this.#finish(null, {
      command: this.#command,
      rowCount: this.#rowCount,
      oid: this.#oid,
      rows: this.#rows,
      fields: description?.fields ?? [],
    })
  }

  #finish(error: Error | null, result?: WireResult): void {
    if (this.#done) return
    this.#done = true
    this.callback?.(error, result)
  }
}

/**
 * Whether a client can run {@link runNamed}: a pg `Client` (with its wire
 * connection) that is neither in pipeline mode (which refuses submittables)
 * nor asking for binary results.
 *
 * @example
 * ```ts
 * const r = canRunNamed(client) ? await runNamed(client, name, text, values) : await client.query({ name, text, values })
 * ```
 */
export function canRunNamed(client: unknown): boolean {
  const c = client as WireClient
  return (
    typeof c.getTypeParser === 'function' &&
    c.connection !== undefined &&
    typeof c.connection.bind === 'function' &&
    !c.pipeline &&
    !c.binary
  )
}

/**
 * Runs a named prepared statement on a pg client through {@link WireQuery},
 * callback style (as pg-pool's `query` runs pg's): `done` is called once, with
 * pg's error or the result (the same rows, `command` and `rowCount` as
 * `client.query({ name, text, values })`).
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
  const query = new WireQuery(client as unknown as WireClient, name, text, values)
  query.callback = (error, result) => {
    // as pg's own promise does: a stack that leads back here, not to the socket
    if (error) Error.captureStackTrace(error)
    done(error, result)
  }
  ;(client as unknown as WireClient).query(query)
}

/**
 * {@link submitNamed} as a promise.
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
    submitNamed(client, name, text, values, (error, result) =>
      error ? reject(error) : resolve(result as WireResult),
    )
  })
}
