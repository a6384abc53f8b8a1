import {
  type Compilable,
  createQueryId,
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type RootOperationNode,
} from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { directPool } from '../db/create-db.ts'
import { mapDatabaseError } from '../errors/map-database-error.ts'
import { registerStatement } from './statement-names.ts'

/** A Kysely that only compiles: the query builder of prepared queries. */
const compiler = new Kysely<DB>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
})

const MARK = '\u0000guildstore:param:'

/** Commands whose row count Kysely reports as `numAffectedRows`. */
const AFFECTING = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE'])

type Slot = { key: string } | { value: unknown }

/** The row type a compilable query returns. */
export type RowOf<Q> = Q extends Compilable<infer O> ? O : never

/**
 * A query whose SQL was built once, at module load, and runs as a named
 * prepared statement (when the executor comes from {@link createDb}).
 */
export interface PreparedQuery<P, R> {
  /** The SQL text, `$1`… placeholders in it. */
  readonly sql: string
  /** The prepared statement's name. */
  readonly name: string
  /** Runs the query and returns all rows. */
  execute(db: Kysely<DB>, params: P): Promise<R[]>
  /** Runs the query and returns the first row, or `undefined`. */
  executeTakeFirst(db: Kysely<DB>, params: P): Promise<R | undefined>
  /** Runs the query and returns the number of rows it inserted, updated or deleted. */
  executeAffected(db: Kysely<DB>, params: P): Promise<number>
}

/**
 * Builds a query's SQL once and returns a typed function object that binds
 * new values into it on every call. No query building, compiling or plugin
 * transformation happens per call; with a {@link createDb} executor the SQL runs
 * as a named prepared statement, parsed once per connection.
 *
 * Every field of `params` stands for one bound parameter; use it only where
 * Kysely takes a value (`where('id', '=', p.id)`, `limit(p.limit)`,
 * `` sql`= any(${p.ids})` ``), never as an identifier. Values written directly
 * into the builder stay constant.
 *
 * @example
 * ```ts
 * const byId = prepareQuery((db, p: { id: string }) =>
 *   db.selectFrom('users').select(['id', 'username']).where('id', '=', p.id))
 * const user = await byId.executeTakeFirst(db, { id })
 * // select "id", "username" from "users" where "id" = $1
 * ```
 */
export function prepareQuery<P extends object, Q extends Compilable<unknown>>(
  build: (db: Kysely<DB>, params: P) => Q,
): PreparedQuery<P, RowOf<Q>> {
  const placeholders = new Proxy(
    {},
    { get: (_target, key) => (typeof key === 'string' ? `${MARK}${key}` : undefined) },
  ) as P
  const compiled = build(compiler, placeholders).compile()
  const slots: Slot[] = compiled.parameters.map((value) =>
    typeof value === 'string' && value.startsWith(MARK)
      ? { key: value.slice(MARK.length) }
      : { value },
  )
  const sql = compiled.sql
  const query: RootOperationNode = compiled.query
  const name = registerStatement(sql)

  const run = async (db: Kysely<DB>, params: P) => {
    const values = new Array<unknown>(slots.length)
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i] as Slot
      values[i] = 'key' in slot ? (params as Record<string, unknown>)[slot.key] : slot.value
    }
    // Fast path: a top-level createDb instance (no transaction, no plugins, no
    // log hook) runs the named statement on its pool directly, skipping Kysely's
    // executor (connection provider, acquire/release, result transform): the
    // same SQL, the same connection handling as pool.query.
    const pool = db.isTransaction ? undefined : directPool(db)
    if (pool) {
      try {
        const r = await pool.query({ name, text: sql, values })
        return {
          rows: r.rows as RowOf<Q>[],
          numAffectedRows: AFFECTING.has(r.command) ? BigInt(r.rowCount ?? 0) : undefined,
        }
      } catch (error) {
        throw mapDatabaseError(error)
      }
    }
    try {
      return await db.executeQuery<RowOf<Q>>({
        sql,
        parameters: values,
        query,
        queryId: createQueryId(),
      })
    } catch (error) {
      throw mapDatabaseError(error)
    }
  }

  return {
    sql,
    name,
    async execute(db, params) {
      return (await run(db, params)).rows
    },
    async executeTakeFirst(db, params) {
      return (await run(db, params)).rows[0]
    },
    async executeAffected(db, params) {
      return Number((await run(db, params)).numAffectedRows ?? 0n)
    },
  }
}
