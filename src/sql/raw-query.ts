import type { Compilable, Kysely, RawBuilder } from 'kysely'
import type { DB } from '../../codegen/db.ts'

/**
 * A raw SQL statement as a {@link Compilable}, for {@link prepareQuery}: lets a
 * hand-written statement (data-modifying CTEs Kysely cannot build, lateral
 * joins) be a labelled prepared query like any other.
 *
 * @example
 * ```ts
 * const q = prepareQuery('dms.list', (db, p: { user_id: string }) =>
 *   rawQuery(db, sql<Row>`select … where me.user_id = ${p.user_id}::uuid`))
 * ```
 */
export function rawQuery<O>(db: Kysely<DB>, query: RawBuilder<O>): Compilable<O> {
  return { compile: () => query.compile(db) }
}
