import type pg from 'pg'
import { mapDatabaseError } from '../errors/map-database-error.ts'
import { compareHistory } from './compare-history.ts'
import { defaultMigrationsDirectory } from './default-directory.ts'
import { readHistory } from './history-table.ts'
import { readMigrationFiles } from './migration-files.ts'
import type { MigrationInfo } from './migration-info.ts'

/** Options of {@link migrationStatus}. */
export interface MigrationStatusOptions {
  /** The migrations directory; defaults to the package's own `migrations/`. */
  directory?: string
}

/**
 * Lists every migration, files and history joined by version: `applied`, `pending`,
 * `changed` (the file's checksum differs from the recorded one) or `missing`
 * (recorded as applied, file gone). Read-only: it creates nothing and takes no lock.
 *
 * @throws MigrationFileError for badly named, duplicate or invalid files.
 * @throws DatabaseUnavailableError when the database cannot be reached.
 * @example
 * ```ts
 * const pending = (await migrationStatus(pool)).filter((m) => m.state === 'pending')
 * ```
 */
export async function migrationStatus(
  pool: pg.Pool,
  options: MigrationStatusOptions = {},
): Promise<MigrationInfo[]> {
  const files = await readMigrationFiles(options.directory ?? defaultMigrationsDirectory())
  try {
    return compareHistory(files, await readHistory(pool))
  } catch (err) {
    throw mapDatabaseError(err)
  }
}
