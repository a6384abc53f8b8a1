import type { Kysely } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { mapDatabaseError } from '../errors/map-database-error.ts'

/**
 * Runs `fn` atomically: inside the caller's transaction when `db` is one
 * (`db.isTransaction`), else in a new transaction. Inside `fn`, use only `trx`:
 * a query on the outer `db` would run outside the transaction.
 *
 * @example
 * ```ts
 * return inTransaction(db, async (trx) => {
 *   const guild = await insertGuild.executeTakeFirst(trx, { … })
 *   await insertMember.execute(trx, { … })
 *   return guild
 * })
 * ```
 */
export async function inTransaction<T>(
  db: Kysely<DB>,
  fn: (trx: Kysely<DB>) => Promise<T>,
): Promise<T> {
  try {
    return db.isTransaction ? await fn(db) : await db.transaction().execute(fn)
  } catch (error) {
    throw mapDatabaseError(error)
  }
}
