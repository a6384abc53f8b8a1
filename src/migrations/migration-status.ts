import type pg from 'pg'
import { mapDatabaseError } from '../errors/map-database-error.ts'
import { compareHistory } from './compare-history.ts'
import { readHistory } from './history-table.ts'
import type { MigrationInfo } from './migration-info.ts'
import { loadMigrationSets, type MigrationSetOptions } from './migration-sets.ts'

/** Options of {@link migrationStatus}: the schema and the sets, as for {@link runMigrations}. */
export interface MigrationStatusOptions extends MigrationSetOptions {}

/**
 * Lists every migration of both sets — guildstore's own first, then the host's —
 * files and history joined by version: `applied`, `pending`, `changed` (the file's
 * checksum differs from the recorded one) or `missing` (recorded as applied, file
 * gone). Read-only: it creates nothing and takes no lock, so a role with only read
 * rights on the history table can run it.
 *
 * @throws InvalidInputError for an invalid schema name.
 * @throws MigrationFileError for badly named, duplicate or invalid files.
 * @throws DatabaseUnavailableError when the database cannot be reached.
 * @example
 * ```ts
 * const pending = (await migrationStatus(pool, { hostDirectory: './migrations' }))
 *   .filter((m) => m.state === 'pending')
 * ```
 */
export async function migrationStatus(
  pool: pg.Pool,
  options: MigrationStatusOptions = {},
): Promise<MigrationInfo[]> {
  const { schema, sets } = await loadMigrationSets(pool, options)
  try {
    const history = await readHistory(pool, schema, sets[0]!.files)
    return sets.flatMap((s) => compareHistory(s.set, s.files, history))
  } catch (err) {
    throw mapDatabaseError(err)
  }
}
