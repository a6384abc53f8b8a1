import { mapDatabaseError } from '../errors/map-database-error.ts'

/**
 * Awaits a Kysely query and maps a driver error to guildstore's error tree.
 *
 * @example
 * ```ts
 * const rows = await mapErrors(db.selectFrom('users').select(userColumns).execute())
 * ```
 */
export async function mapErrors<T>(query: Promise<T>): Promise<T> {
  try {
    return await query
  } catch (error) {
    throw mapDatabaseError(error)
  }
}
