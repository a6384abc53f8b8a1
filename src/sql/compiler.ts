import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
} from 'kysely'
import type { DB } from '../../codegen/db.ts'

let compiler: Kysely<DB> | undefined

/**
 * A Kysely instance that only compiles (PostgreSQL dialect, no driver): the
 * builder of prepared and dynamic queries' SQL. Made on first use.
 *
 * @example
 * ```ts
 * compilerDb().selectFrom('users').select('id').compile().sql // select "id" from "users"
 * ```
 */
export function compilerDb(): Kysely<DB> {
  compiler ??= new Kysely<DB>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new PostgresIntrospector(db),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  })
  return compiler
}
