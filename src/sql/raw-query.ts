import type { Compilable, Kysely, RawBuilder } from 'kysely'
import type { DB } from '../../codegen/db.ts'

/**
 * A raw SQL statement as a {@link Compilable}, for `prepareQuery`.
 *
 * @example
 * ```ts
 * const q = prepareQuery((db, p: { id: string }) => rawQuery(db, sql<{ n: number }>`select 1 as n where ${p.id}::uuid is not null`))
 * ```
 */
export const rawQuery = <O>(db: Kysely<DB>, query: RawBuilder<O>): Compilable<O> => ({
  compile: () => query.compile(db),
})
