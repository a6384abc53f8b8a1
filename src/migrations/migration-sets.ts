import { realpathSync } from 'node:fs'
import { resolve } from 'node:path'
import type pg from 'pg'
import { assertSchemaName, poolSchema } from '../pool/create-pool.ts'
import { defaultMigrationsDirectory } from './default-directory.ts'
import type { MigrationSet } from './history-table.ts'
import { MigrationFileError } from './migration-errors.ts'
import { type MigrationFile, readMigrationFiles } from './migration-files.ts'

/** Options shared by {@link migrationStatus} and {@link runMigrations} (the CLI's `--schema` and `--dir`). */
export interface MigrationSetOptions {
  /**
   * The schema guildstore is installed in: its tables, types, functions and the history
   * table `guildstore_migrations`. Created when missing. Default: the pool's
   * (`createPool({ schema })`), else `public` (where 0.1.0 installed).
   */
  schema?: string | undefined
  /**
   * The host's own migrations directory (the CLI's `--dir`, `./migrations` there),
   * applied after guildstore's, tracked as a set of its own. Default: none.
   */
  hostDirectory?: string | undefined
  /**
   * guildstore's own set; defaults to the package's `migrations/`. Only for tests of
   * the runner itself: a host puts its files in `hostDirectory`.
   */
  directory?: string | undefined
}

/** One set's files, read and validated. */
export interface LoadedSet {
  set: MigrationSet
  directory: string
  files: MigrationFile[]
}

const real = (path: string): string => {
  try {
    return realpathSync(path)
  } catch {
    return resolve(path)
  }
}

/**
 * Resolves the schema and reads both sets' files (guildstore's first), before any
 * connection is made.
 *
 * @throws InvalidInputError for an invalid schema name.
 * @throws MigrationFileError for invalid files, or a host directory that is guildstore's own.
 * @example
 * ```ts
 * const { schema, sets } = await loadMigrationSets(pool, { hostDirectory: './migrations' })
 * ```
 */
export async function loadMigrationSets(
  pool: pg.Pool,
  options: MigrationSetOptions,
): Promise<{ schema: string; sets: LoadedSet[] }> {
  const schema = assertSchemaName(options.schema ?? poolSchema(pool) ?? 'public')
  const guildstoreDir = resolve(options.directory ?? defaultMigrationsDirectory())
  const sets: LoadedSet[] = [
    { set: 'guildstore', directory: guildstoreDir, files: await readMigrationFiles(guildstoreDir) },
  ]
  if (options.hostDirectory !== undefined) {
    const hostDir = resolve(options.hostDirectory)
    if (real(hostDir) === real(guildstoreDir)) {
      throw new MigrationFileError(
        `the host migrations directory ${hostDir} is guildstore's own set; put the host's files in a directory of the project (./migrations)`,
        { files: [] },
      )
    }
    sets.push({ set: 'host', directory: hostDir, files: await readMigrationFiles(hostDir) })
  }
  return { schema, sets }
}
