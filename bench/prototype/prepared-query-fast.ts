/**
 * PROTOTYPE (bench only) of a fast path for src/sql/prepared-query.ts: when the
 * executor is a top-level guildstore `createDb` instance (not a transaction, no
 * plugins), run the prepared statement straight on the pool
 * (`pool.query({ name, text, values })`) instead of through Kysely's executor
 * (connection provider, acquire/release wrappers, result transform).
 */
import type { Kysely } from 'kysely'
import type pg from 'pg'
import type { DB } from '../../codegen/db.ts'
import { createDb } from '../../src/db/create-db.ts'
import { mapDatabaseError } from '../../src/errors/map-database-error.ts'

/** createDb registers its pool here (only when it has no plugins). */
export const directPools = new WeakMap<Kysely<DB>, pg.Pool>()

export function createDbWithFastPath(pool: pg.Pool): Kysely<DB> {
  const db = createDb(pool)
  directPools.set(db, pool)
  return db
}

/** What PreparedQuery's `run` would do first. */
export async function runPrepared(
  db: Kysely<DB>,
  name: string,
  sql: string,
  values: unknown[],
): Promise<{ rows: unknown[]; numAffectedRows?: bigint }> {
  const pool = db.isTransaction ? undefined : directPools.get(db)
  if (!pool) throw new Error('prototype: slow path not reproduced here')
  try {
    const r = await pool.query({ name, text: sql, values })
    return r.rowCount == null
      ? { rows: r.rows }
      : { rows: r.rows, numAffectedRows: BigInt(r.rowCount) }
  } catch (error) {
    throw mapDatabaseError(error)
  }
}
