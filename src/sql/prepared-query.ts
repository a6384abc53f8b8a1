import type { Compilable, Kysely } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { mapDatabaseError } from '../errors/map-database-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import { compilerDb } from './compiler.ts'
import { type Statement, sendStatement } from './execution.ts'
import { registerQuery } from './registry.ts'
import { type StatementKind, statementKind } from './statement-kind.ts'

const MARK = '\u0000guildstore:param:'

/** Prefix of every statement name (with a label of at most 60 characters, within PostgreSQL's 63-byte names). */
const NAME_PREFIX = 'gs.'

type Slot = { key: string } | { value: unknown }

/** The row type a compilable query returns. */
export type RowOf<Q> = Q extends Compilable<infer O> ? O : never

/**
 * A labelled query whose SQL is built once (on first use) and runs as a named
 * prepared statement `gs.<label>` (when the executor comes from {@link createDb}).
 */
export interface PreparedQuery<P, R> {
  /** The stable label, `entity.action` (e.g. `messages.list_before`). */
  readonly label: string
  /** The prepared statement's name: `gs.` and the label (not sent when declared `unnamed`). */
  readonly name: string
  /** The SQL text, `$1`… placeholders in it (compiles the query on first read). */
  readonly sql: string
  /** Whether the statement only reads (`'read'`) or writes or locks (`'write'`). */
  readonly kind: StatementKind
  /** Runs the query and returns all rows. */
  execute(db: Kysely<DB>, params: P): Promise<R[]>
  /** Runs the query and returns the first row, or `undefined`. */
  executeTakeFirst(db: Kysely<DB>, params: P): Promise<R | undefined>
  /**
   * Runs a statement that always returns a row (an INSERT … RETURNING, an
   * aggregate) and returns it.
   *
   * @throws {NotFoundError} when it returned none after all (`entity` is the
   *   label's first part).
   */
  executeTakeFirstOrThrow(db: Kysely<DB>, params: P): Promise<R>
  /** Runs the query and returns the number of rows it inserted, updated or deleted. */
  executeAffected(db: Kysely<DB>, params: P): Promise<number>
}

interface Compiled {
  statement: Statement
  slots: Slot[]
}

/**
 * Declares a labelled prepared query: `build` runs once, on the query's first
 * use (or when the snapshot generator reads the registry), and the typed
 * function object binds new values into its SQL on every call. No query
 * building, compiling or plugin transformation happens per call; with a
 * {@link createDb} executor the SQL runs as the named prepared statement
 * `gs.<label>` (readable in `pg_stat_activity`, logs and `pg_prepared_statements`),
 * parsed once per connection.
 *
 * `label` is `entity.action` in lowercase (`messages.list_before`), unique in
 * the process (a duplicate throws at import) and at most 60 characters.
 *
 * Every field of `params` stands for one bound parameter; use it only where
 * Kysely takes a value (`where('id', '=', p.id)`, `limit(p.limit)`,
 * `` sql`= any(${p.ids})` ``), never as an identifier. Values written directly
 * into the builder stay constant.
 *
 * With `{ unnamed: true }` the SQL is still built once, but sent unnamed, so
 * PostgreSQL plans it per call with its actual values (a search whose best
 * plan depends on its terms); its snapshot reads "dynamic, sent unnamed".
 * With `{ primary: true }` a read never goes to a replica (the change feed's
 * horizon and pages, which must see the primary's latest commits).
 *
 * @throws {Error} when the label is malformed or already declared.
 * @example
 * ```ts
 * const byId = prepareQuery('users.by_id', (db, p: { id: string }) =>
 *   db.selectFrom('users').select(['id', 'username']).where('id', '=', p.id))
 * const user = await byId.executeTakeFirst(db, { id })
 * // prepared as "gs.users.by_id": select "id", "username" from "users" where "id" = $1
 * ```
 */
export function prepareQuery<P extends object, Q extends Compilable<unknown>>(
  label: string,
  build: (db: Kysely<DB>, params: P) => Q,
  options: { unnamed?: boolean; primary?: boolean } = {},
): PreparedQuery<P, RowOf<Q>> {
  const name = `${NAME_PREFIX}${label}`
  const unnamed = options.unnamed === true
  const primary = options.primary === true
  let compiled: Compiled | undefined

  const compile = (): Compiled => {
    const placeholders = new Proxy(
      {},
      { get: (_target, key) => (typeof key === 'string' ? `${MARK}${key}` : undefined) },
    ) as P
    const c = build(compilerDb(), placeholders).compile()
    compiled = {
      statement: {
        sql: c.sql,
        name,
        kind: statementKind(c.query),
        query: c.query,
        ...(unnamed ? { unnamed } : {}),
        ...(primary ? { primary } : {}),
      },
      slots: c.parameters.map((value) =>
        typeof value === 'string' && value.startsWith(MARK)
          ? { key: value.slice(MARK.length) }
          : { value },
      ),
    }
    return compiled
  }

  const run = async (db: Kysely<DB>, params: P) => {
    const { statement, slots } = compiled ?? compile()
    const values = new Array<unknown>(slots.length)
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i] as Slot
      values[i] = 'key' in slot ? (params as Record<string, unknown>)[slot.key] : slot.value
    }
    try {
      return await sendStatement<RowOf<Q>>(db, statement, values)
    } catch (error) {
      throw mapDatabaseError(error)
    }
  }

  const query: PreparedQuery<P, RowOf<Q>> = {
    label,
    name,
    get sql() {
      return (compiled ?? compile()).statement.sql
    },
    get kind() {
      return (compiled ?? compile()).statement.kind
    },
    async execute(db, params) {
      return (await run(db, params)).rows
    },
    async executeTakeFirst(db, params) {
      return (await run(db, params)).rows[0]
    },
    async executeTakeFirstOrThrow(db, params) {
      const row = (await run(db, params)).rows[0]
      if (row === undefined) {
        throw new NotFoundError(`${label} returned no row`, { entity: label.split('.')[0] })
      }
      return row
    },
    async executeAffected(db, params) {
      return Number((await run(db, params)).numAffectedRows ?? 0n)
    },
  }
  registerQuery({
    label,
    name: unnamed ? undefined : name,
    get kind() {
      return query.kind
    },
    get statements() {
      return [query.sql]
    },
  })
  return query
}
