import type pg from 'pg'
import { mapDatabaseError } from '../errors/map-database-error.ts'
import { compareHistory } from './compare-history.ts'
import { defaultMigrationsDirectory } from './default-directory.ts'
import { ensureHistoryTable, readHistory, recordMigration } from './history-table.ts'
import {
  MigrationChecksumError,
  MigrationFailedError,
  MigrationMissingError,
} from './migration-errors.ts'
import { type MigrationFile, readMigrationFiles } from './migration-files.ts'
import type { MigrationInfo, MigrationLogger } from './migration-info.ts'
import { acquireMigrationLock, releaseMigrationLock } from './migration-lock.ts'

/** Options of {@link runMigrations}. */
export interface RunMigrationsOptions {
  /** The migrations directory; defaults to the package's own `migrations/`. */
  directory?: string
  /** Gets one `info` line per applied file (with its duration). Nothing is logged without it. */
  logger?: MigrationLogger
  /** How long to wait for another runner's lock, in ms; `0` or absent waits as long as it takes. */
  lockTimeoutMs?: number
}

/** Line and column (1-based) of a 1-based character position in `text`. */
function lineAndColumn(text: string, position: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, position - 1))
  const lines = before.split('\n')
  return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 }
}

function failure(file: MigrationFile, error: unknown): MigrationFailedError {
  const mapped = mapDatabaseError(error)
  const raw = error as { code?: unknown; position?: unknown }
  const sqlState =
    typeof raw?.code === 'string' && /^[0-9A-Z]{5}$/.test(raw.code) ? raw.code : undefined
  const position = raw?.position === undefined ? undefined : Number(raw.position)
  const where =
    position !== undefined && Number.isFinite(position) && position > 0
      ? { position, ...lineAndColumn(file.sql, position) }
      : undefined
  const at = where ? ` at line ${where.line}, column ${where.column}` : ''
  const state = sqlState && !mapped.message.includes(sqlState) ? ` (SQLSTATE ${sqlState})` : ''
  return new MigrationFailedError(
    `migration ${file.file} failed${at}: ${mapped.message}${state}; it was rolled back`,
    { file: file.file, sqlState, ...where, cause: error },
  )
}

async function applyOne(
  client: pg.PoolClient,
  file: MigrationFile,
): Promise<{ appliedAt: Date; durationMs: number }> {
  const started = performance.now()
  if (file.noTransaction) {
    try {
      await client.query(file.sql)
    } catch (err) {
      throw failure(file, err)
    }
    const durationMs = Math.round(performance.now() - started)
    const appliedAt = await recordMigration(client, { ...file, durationMs })
    return { appliedAt, durationMs }
  }
  try {
    await client.query('BEGIN')
    // No parameters: sent as one simple query, so a file may hold many statements.
    await client.query(file.sql)
    const durationMs = Math.round(performance.now() - started)
    const appliedAt = await recordMigration(client, { ...file, durationMs })
    await client.query('COMMIT')
    return { appliedAt, durationMs }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw failure(file, err)
  }
}

/**
 * Applies every pending migration, in order, each in its own transaction with its
 * history row (a `-- guildstore:no-transaction` file runs alone, outside one).
 * Concurrent runners wait for each other on a session-level advisory lock, so each
 * file is applied exactly once. Before anything runs, every applied file must still
 * exist with its recorded checksum.
 *
 * @throws MigrationFileError for badly named, duplicate or invalid files (before connecting).
 * @throws MigrationChecksumError when an applied file was edited; nothing is applied.
 * @throws MigrationMissingError when an applied file is gone; nothing is applied.
 * @throws MigrationFailedError when a file fails: it is rolled back and not recorded, earlier ones stay.
 * @throws MigrationLockTimeoutError when `lockTimeoutMs` passes while another runner holds the lock.
 * @throws DatabaseUnavailableError when the database cannot be reached.
 * @example
 * ```ts
 * const { applied } = await runMigrations(pool, { logger: console })
 * console.log(`${applied.length} migrations applied`)
 * ```
 */
export async function runMigrations(
  pool: pg.Pool,
  options: RunMigrationsOptions = {},
): Promise<{ applied: MigrationInfo[] }> {
  const files = await readMigrationFiles(options.directory ?? defaultMigrationsDirectory())
  let client: pg.PoolClient
  try {
    client = await pool.connect()
  } catch (err) {
    throw mapDatabaseError(err)
  }
  // The client stays checked out for the whole run, where the pool does not listen
  // for its errors: a connection lost between two queries (e.g. while polling the
  // lock) would be an unhandled 'error' event. The next query fails instead, and the
  // client is never reused (released with an error below).
  client.on('error', () => {})
  let locked = false
  let broken: Error | undefined
  try {
    await acquireMigrationLock(client, options)
    locked = true
    await ensureHistoryTable(client)
    const status = compareHistory(files, await readHistory(client))
    const changed = status.filter((m) => m.state === 'changed').map((m) => m.file)
    if (changed.length > 0) throw new MigrationChecksumError(changed)
    const missing = status.filter((m) => m.state === 'missing').map((m) => m.file)
    if (missing.length > 0) throw new MigrationMissingError(missing)

    const pending = new Set(status.filter((m) => m.state === 'pending').map((m) => m.version))
    const applied: MigrationInfo[] = []
    for (const file of files) {
      if (!pending.has(file.version)) continue
      const { appliedAt, durationMs } = await applyOne(client, file)
      options.logger?.info(`applied ${file.file} (${durationMs} ms)`, {
        version: file.version,
        name: file.name,
        file: file.file,
        durationMs,
      })
      applied.push({
        version: file.version,
        name: file.name,
        file: file.file,
        checksum: file.checksum,
        state: 'applied',
        appliedAt,
        durationMs,
      })
    }
    return { applied }
  } catch (err) {
    broken = err instanceof Error ? err : undefined
    throw mapDatabaseError(err)
  } finally {
    if (locked) {
      await releaseMigrationLock(client).catch((err: Error) => {
        broken ??= err
      })
    }
    // The migrations may have changed session settings: never hand this connection back.
    client.release(broken ?? true)
  }
}
