import type pg from 'pg'
import { quoteSchema } from '../pool/create-pool.ts'

/** The two migration sets one history table tracks: guildstore's shipped files and the host's own. */
export type MigrationSet = 'guildstore' | 'host'

/** The history table's name, in the schema guildstore is installed in. */
export const HISTORY_TABLE_NAME = 'guildstore_migrations'

/** The qualified history table of `schema`, e.g. `"chat".guildstore_migrations`. */
export const historyTable = (schema: string): string =>
  `${quoteSchema(schema)}.${HISTORY_TABLE_NAME}`

/** One row of the history table. */
export interface HistoryRow {
  set: MigrationSet
  version: number
  name: string
  checksum: string
  appliedAt: Date
  durationMs: number
}

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>

/** A migration of guildstore's own set, as the 0.1.0 history upgrade recognizes it. */
export interface KnownMigration {
  version: number
  name: string
}

/**
 * How a 0.1.0 history row (one table, no set) is assigned a set: a row whose version
 * and name are those of a file of guildstore's set is guildstore's; any other row was
 * a host file that 0.1.0 wrote into the installed package (`guildstore new`) or read
 * from `--dir`, so it belongs to the host's set.
 */
export const legacySetOf = (
  row: { version: number; name: string },
  guildstore: readonly KnownMigration[],
): MigrationSet =>
  guildstore.some((m) => m.version === row.version && m.name === row.name) ? 'guildstore' : 'host'

/** Whether the history table of `schema` is missing, of 0.1.0's shape (no set), or current. */
async function historyShape(db: Queryable, schema: string): Promise<'none' | 'legacy' | 'current'> {
  const { rows } = await db.query<{ exists: boolean; has_set: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AS exists,
            EXISTS (SELECT 1 FROM pg_attribute
                     WHERE attrelid = to_regclass($1) AND attname = 'set_name' AND NOT attisdropped) AS has_set`,
    [historyTable(schema)],
  )
  if (!rows[0]?.exists) return 'none'
  return rows[0].has_set ? 'current' : 'legacy'
}

/**
 * Creates the schema and the history table when missing, and upgrades a 0.1.0 table
 * (no `set_name` column, primary key `version`) in place: every row gets its set by
 * {@link legacySetOf} and the key becomes `(set_name, version)`. Call it while holding
 * the migration lock, inside a transaction.
 *
 * @throws the driver error when a statement fails (e.g. no `CREATE` right on the database).
 * @example
 * ```ts
 * await ensureHistoryTable(client, 'public', guildstoreFiles)
 * ```
 */
export async function ensureHistoryTable(
  db: Queryable,
  schema: string,
  guildstore: readonly KnownMigration[],
): Promise<void> {
  const exists = await db.query<{ exists: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS exists',
    [schema],
  )
  if (!exists.rows[0]?.exists) await db.query(`CREATE SCHEMA IF NOT EXISTS ${quoteSchema(schema)}`)
  const table = historyTable(schema)
  const shape = await historyShape(db, schema)
  if (shape === 'none') {
    await db.query(`CREATE TABLE ${table} (
  set_name text NOT NULL CONSTRAINT guildstore_migrations_set_name CHECK (set_name IN ('guildstore', 'host')),
  version integer NOT NULL,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  duration_ms integer NOT NULL,
  CONSTRAINT guildstore_migrations_pkey PRIMARY KEY (set_name, version)
)`)
    return
  }
  if (shape === 'current') return
  // A 0.1.0 history: add the set, assign each row, re-key on (set_name, version).
  await db.query(`ALTER TABLE ${table} ADD COLUMN set_name text NOT NULL DEFAULT 'host'`)
  const versions = guildstore.map((m) => m.version)
  const names = guildstore.map((m) => m.name)
  await db.query(
    `UPDATE ${table} h SET set_name = 'guildstore'
       FROM unnest($1::int[], $2::text[]) AS g(version, name)
      WHERE h.version = g.version AND h.name = g.name`,
    [versions, names],
  )
  const pkey = await db.query<{ conname: string }>(
    `SELECT conname FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'p'`,
    [table],
  )
  const dropKey = pkey.rows[0]
    ? `DROP CONSTRAINT "${pkey.rows[0].conname.replaceAll('"', '""')}", `
    : ''
  await db.query(
    `ALTER TABLE ${table} ${dropKey}ALTER COLUMN set_name DROP DEFAULT,
       ADD CONSTRAINT guildstore_migrations_set_name CHECK (set_name IN ('guildstore', 'host')),
       ADD CONSTRAINT guildstore_migrations_pkey PRIMARY KEY (set_name, version)`,
  )
}

/**
 * Reads the history of `schema`, by set then version; an empty list when the table
 * does not exist. A 0.1.0 table (no set column) is read as {@link ensureHistoryTable}
 * would upgrade it, without changing it.
 *
 * @throws the driver error when the query fails.
 * @example
 * ```ts
 * const rows = await readHistory(pool, 'public', guildstoreFiles)
 * ```
 */
export async function readHistory(
  db: Queryable,
  schema: string,
  guildstore: readonly KnownMigration[],
): Promise<HistoryRow[]> {
  const shape = await historyShape(db, schema)
  if (shape === 'none') return []
  const legacy = shape === 'legacy'
  const result = await db.query<{
    set_name: string | null
    version: number
    name: string
    checksum: string
    applied_at: Date | string
    duration_ms: number | string
  }>(
    `SELECT ${legacy ? 'NULL::text AS set_name' : 'set_name'}, version, name, checksum, applied_at, duration_ms
       FROM ${historyTable(schema)} ORDER BY version`,
  )
  return result.rows.map((row) => ({
    set:
      row.set_name === 'guildstore' || row.set_name === 'host'
        ? row.set_name
        : legacySetOf({ version: Number(row.version), name: row.name }, guildstore),
    version: Number(row.version),
    name: row.name,
    checksum: row.checksum,
    appliedAt: row.applied_at instanceof Date ? row.applied_at : new Date(row.applied_at),
    durationMs: Number(row.duration_ms),
  }))
}

/**
 * Records one applied migration of `set`; returns the stored `applied_at`.
 *
 * @throws the driver error when the insert fails.
 * @example
 * ```ts
 * await recordMigration(client, 'public', { set: 'guildstore', version: 1, name: 'init', checksum, durationMs: 12 })
 * ```
 */
export async function recordMigration(
  db: Queryable,
  schema: string,
  row: { set: MigrationSet; version: number; name: string; checksum: string; durationMs: number },
): Promise<Date> {
  const result = await db.query<{ applied_at: Date | string }>(
    `INSERT INTO ${historyTable(schema)} (set_name, version, name, checksum, duration_ms)
     VALUES ($1, $2, $3, $4, $5) RETURNING applied_at`,
    [row.set, row.version, row.name, row.checksum, row.durationMs],
  )
  const appliedAt = result.rows[0]!.applied_at
  return appliedAt instanceof Date ? appliedAt : new Date(appliedAt)
}

/**
 * Whether `set`/`version` is recorded: the re-check each file's transaction makes
 * under the lock, so a file is never applied twice.
 *
 * @throws the driver error when the query fails.
 * @example
 * ```ts
 * if (await isRecorded(client, 'public', 'host', 3)) return
 * ```
 */
export async function isRecorded(
  db: Queryable,
  schema: string,
  set: MigrationSet,
  version: number,
): Promise<boolean> {
  const { rows } = await db.query<{ recorded: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${historyTable(schema)} WHERE set_name = $1 AND version = $2) AS recorded`,
    [set, version],
  )
  return rows[0]?.recorded === true
}

/**
 * How many host migrations the history of `schema` records (0 when there is no history,
 * or a 0.1.0 one): lets the CLI warn when it runs without the host's directory.
 *
 * @throws the driver error when the query fails.
 * @example
 * ```ts
 * if ((await countHostMigrations(pool, 'public')) > 0) console.warn('pass --dir')
 * ```
 */
export async function countHostMigrations(db: Queryable, schema: string): Promise<number> {
  if ((await historyShape(db, schema)) !== 'current') return 0
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${historyTable(schema)} WHERE set_name = 'host'`,
  )
  return rows[0]?.n ?? 0
}
