import type pg from 'pg'

/** The history table, always in the `public` schema. */
export const HISTORY_TABLE = 'public.guildstore_migrations'

/** One row of the history table. */
export interface HistoryRow {
  version: number
  name: string
  checksum: string
  appliedAt: Date
  durationMs: number
}

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>

/**
 * Creates the history table when it does not exist. Call it while holding the migration lock.
 *
 * @throws the driver error when the statement fails.
 * @example
 * ```ts
 * await ensureHistoryTable(client)
 * ```
 */
export async function ensureHistoryTable(db: Queryable): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS ${HISTORY_TABLE} (
  version integer PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  duration_ms integer NOT NULL
)`)
}

/**
 * Reads the history, oldest version first; an empty list when the table does not exist.
 *
 * @throws the driver error when the query fails.
 * @example
 * ```ts
 * const rows = await readHistory(pool)
 * ```
 */
export async function readHistory(db: Queryable): Promise<HistoryRow[]> {
  const exists = await db.query<{ exists: boolean }>(
    'SELECT to_regclass($1) IS NOT NULL AS exists',
    [HISTORY_TABLE],
  )
  if (!exists.rows[0]?.exists) return []
  const result = await db.query<{
    version: number
    name: string
    checksum: string
    applied_at: Date | string
    duration_ms: number | string
  }>(
    `SELECT version, name, checksum, applied_at, duration_ms FROM ${HISTORY_TABLE} ORDER BY version`,
  )
  return result.rows.map((row) => ({
    version: Number(row.version),
    name: row.name,
    checksum: row.checksum,
    appliedAt: row.applied_at instanceof Date ? row.applied_at : new Date(row.applied_at),
    durationMs: Number(row.duration_ms),
  }))
}

/**
 * Records one applied migration; returns the stored `applied_at`.
 *
 * @throws the driver error when the insert fails.
 * @example
 * ```ts
 * await recordMigration(client, { version: 1, name: 'init', checksum, durationMs: 12 })
 * ```
 */
export async function recordMigration(
  db: Queryable,
  row: { version: number; name: string; checksum: string; durationMs: number },
): Promise<Date> {
  const result = await db.query<{ applied_at: Date | string }>(
    `INSERT INTO ${HISTORY_TABLE} (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4) RETURNING applied_at`,
    [row.version, row.name, row.checksum, row.durationMs],
  )
  const appliedAt = result.rows[0]!.applied_at
  return appliedAt instanceof Date ? appliedAt : new Date(appliedAt)
}
