import type pg from 'pg'
import { mapDatabaseError } from '../errors/map-database-error.ts'
import { quoteSchema } from '../pool/create-pool.ts'
import { compareHistory } from './compare-history.ts'
import {
  ensureHistoryTable,
  isRecorded,
  type MigrationSet,
  readHistory,
  recordMigration,
} from './history-table.ts'
import {
  MigrationChecksumError,
  MigrationFailedError,
  MigrationMissingError,
} from './migration-errors.ts'
import type { MigrationFile } from './migration-files.ts'
import type { MigrationInfo, MigrationLogger } from './migration-info.ts'
import {
  acquireMigrationLock,
  acquireSessionMigrationLock,
  MIGRATION_FILE_LOCK_KEY,
  type MigrationLock,
} from './migration-lock.ts'
import { loadMigrationSets, type MigrationSetOptions } from './migration-sets.ts'

/** Options of {@link runMigrations}. */
export interface RunMigrationsOptions extends MigrationSetOptions {
  /** Gets one `info` line per applied file (with its duration). Nothing is logged without it. */
  logger?: MigrationLogger | undefined
  /** How long to wait for another runner's lock, in ms; `0` or absent waits as long as it takes. */
  lockTimeoutMs?: number | undefined
  /**
   * `false` skips the run-level lock (a transaction held open on a second connection):
   * only for a database nothing else migrates meanwhile and that runs every client on
   * one backend, such as an embedded PGlite, where that open transaction would block
   * the run itself. Default `true`.
   */
  lock?: boolean | undefined
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

interface Step {
  schema: string
  set: MigrationSet
  file: MigrationFile
}

/**
 * Applies one file with its history row. guildstore's files run with `search_path` set to
 * the schema; the host's with the connection's own. Returns `undefined` when another
 * runner recorded it first (checked under the per-file lock, in the file's transaction).
 */
async function applyOne(
  client: pg.PoolClient,
  { schema, set, file }: Step,
): Promise<{ appliedAt: Date; durationMs: number } | undefined> {
  const searchPath = `${quoteSchema(schema)}`
  const started = performance.now()
  if (file.noTransaction) {
    // One statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY): it runs
    // alone, on this session, right after the session's search_path is set.
    if (await isRecorded(client, schema, set, file.version)) return undefined
    if (set === 'guildstore') await client.query(`SET search_path = ${searchPath}`)
    try {
      await client.query(file.sql)
    } catch (err) {
      throw failure(file, err)
    } finally {
      if (set === 'guildstore') await client.query('RESET search_path').catch(() => {})
    }
    const durationMs = Math.round(performance.now() - started)
    const appliedAt = await recordMigration(client, schema, { set, ...file, durationMs })
    return { appliedAt, durationMs }
  }
  try {
    await client.query('BEGIN')
    // Waits for a file still running in a dead runner's transaction, then re-checks.
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_FILE_LOCK_KEY])
    if (await isRecorded(client, schema, set, file.version)) {
      await client.query('ROLLBACK')
      return undefined
    }
    if (set === 'guildstore') await client.query(`SET LOCAL search_path = ${searchPath}`)
    // No parameters: sent as one simple query, so a file may hold many statements.
    await client.query(file.sql)
    const durationMs = Math.round(performance.now() - started)
    const appliedAt = await recordMigration(client, schema, { set, ...file, durationMs })
    await client.query('COMMIT')
    return { appliedAt, durationMs }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw failure(file, err)
  }
}

/**
 * Pins `search_path` of guildstore's functions (`guildstore_…` in the schema) to the
 * schema, so a trigger such as `guildstore_delete_dm_channel` finds guildstore's
 * `channels` whatever the calling session's `search_path` is (a host's own connection
 * deleting a user, a cascade). Only functions without a pinned `search_path` are touched,
 * and not `LANGUAGE sql` ones: a SET clause stops their inlining and costs per call
 * (`guildstore_uuidv7()`, the id default, went from ~14 to ~38 µs); guildstore's SQL
 * functions use only `pg_catalog` or qualify their names.
 */
async function pinFunctionSearchPath(client: pg.PoolClient, schema: string): Promise<void> {
  const { rows } = await client.query<{ statement: string }>(
    `SELECT format('ALTER FUNCTION %I.%I(%s) SET search_path = %I',
                   n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), n.nspname) AS statement
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = $1 AND p.proname LIKE 'guildstore\\_%' AND p.prokind IN ('f', 'p')
        AND p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'sql')
        AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')`,
    [schema],
  )
  for (const { statement } of rows) await client.query(statement)
}

/**
 * Applies every pending migration of both sets in one run, under one lock: guildstore's
 * own files first (with `search_path` set to the schema, so they install there
 * unchanged), then the host's (`hostDirectory`, with the connection's own `search_path`;
 * they reference guildstore's tables as `<schema>.users`). Each file runs in its own
 * transaction with its history row (a `-- guildstore:no-transaction` file runs alone,
 * outside one). Concurrent runners wait for each other on a transaction-level advisory
 * lock that cannot outlive a runner, even through a transaction-mode pooler, so each
 * file is applied exactly once (a pool of `max: 1` has no connection to spare for it
 * and holds a session-level lock instead: use it on direct connections only). Before anything runs, every applied file of both sets
 * must still exist with its recorded checksum; a 0.1.0 history is upgraded in place.
 *
 * @throws InvalidInputError for an invalid schema name.
 * @throws MigrationFileError for badly named, duplicate or invalid files (before connecting).
 * @throws MigrationChecksumError when an applied file was edited; nothing is applied.
 * @throws MigrationMissingError when an applied file is gone; nothing is applied.
 * @throws MigrationFailedError when a file fails: it is rolled back and not recorded, earlier ones stay.
 * @throws MigrationLockTimeoutError when `lockTimeoutMs` passes while another runner holds the lock.
 * @throws DatabaseUnavailableError when the database cannot be reached.
 * @example
 * ```ts
 * const { applied } = await runMigrations(pool, { schema: 'chat', hostDirectory: './migrations', logger: console })
 * console.log(`${applied.length} migrations applied`)
 * ```
 */
export async function runMigrations(
  pool: pg.Pool,
  options: RunMigrationsOptions = {},
): Promise<{ applied: MigrationInfo[] }> {
  const { schema, sets } = await loadMigrationSets(pool, options)
  // A pool of one connection cannot spare one for the lock: it gets the session lock
  // (unless `lock: false` skips the run-level lock altogether).
  const single = (pool.options.max ?? 10) <= 1
  let lock: MigrationLock | undefined =
    options.lock === false || single ? undefined : await acquireMigrationLock(pool, options)
  let client: pg.PoolClient
  try {
    client = await pool.connect()
  } catch (err) {
    await lock?.release()
    throw mapDatabaseError(err)
  }
  // The client stays checked out for the whole run, where the pool does not listen
  // for its errors: a connection lost between two queries would be an unhandled
  // 'error' event. The next query fails instead, and the client is never reused.
  client.on('error', () => {})
  let broken: Error | undefined
  try {
    if (single && options.lock !== false) lock = await acquireSessionMigrationLock(client, options)
    const guildstoreFiles = sets[0]!.files
    await client.query('BEGIN')
    try {
      await ensureHistoryTable(client, schema, guildstoreFiles)
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    }
    const history = await readHistory(client, schema, guildstoreFiles)
    const status = sets.flatMap((s) => compareHistory(s.set, s.files, history))
    const changed = status.filter((m) => m.state === 'changed').map((m) => m.file)
    if (changed.length > 0) throw new MigrationChecksumError(changed)
    const missing = status.filter((m) => m.state === 'missing').map((m) => m.file)
    if (missing.length > 0) throw new MigrationMissingError(missing)

    const pending = new Set(
      status.filter((m) => m.state === 'pending').map((m) => `${m.set}/${m.version}`),
    )
    const applied: MigrationInfo[] = []
    for (const { set, files } of sets) {
      for (const file of files) {
        if (!pending.has(`${set}/${file.version}`)) continue
        const done = await applyOne(client, { schema, set, file })
        if (!done) continue
        const { appliedAt, durationMs } = done
        options.logger?.info(
          `applied ${set === 'host' ? 'host ' : ''}${file.file} (${durationMs} ms)`,
          { set, version: file.version, name: file.name, file: file.file, durationMs },
        )
        applied.push({
          set,
          version: file.version,
          name: file.name,
          file: file.file,
          checksum: file.checksum,
          state: 'applied',
          appliedAt,
          durationMs,
        })
      }
      if (set === 'guildstore') {
        await client.query('BEGIN')
        try {
          await pinFunctionSearchPath(client, schema)
          await client.query('COMMIT')
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {})
          throw err
        }
      }
    }
    return { applied }
  } catch (err) {
    broken = err instanceof Error ? err : undefined
    throw mapDatabaseError(err)
  } finally {
    await lock?.release()
    // The migrations may have changed session settings: never hand this connection back.
    client.release(broken ?? true)
  }
}
