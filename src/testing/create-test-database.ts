import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Kysely } from 'kysely'
import pg from 'pg'
import type { DB } from '../../codegen/db.ts'
import { GuildstoreError } from '../errors/guildstore-error.ts'
import { defaultMigrationsDirectory, runMigrations } from '../migrations/index.ts'
import { assertSchemaName, createPool, type PoolOptions } from '../pool/create-pool.ts'
import { createDb } from '../sql/create-db.ts'

/** Options of {@link createTestDatabase}. */
export interface TestDatabaseOptions {
  /**
   * URL of the PostgreSQL server (any database on it); the user must be
   * allowed to CREATE DATABASE. Default: `TEST_DATABASE_URL`, else `DATABASE_URL`.
   */
  url?: string | undefined
  /** SQL files applied in order to the new database after it is cloned. */
  fixtures?: string[] | undefined
  /** Migrations to build the template from. Default: guildstore's own. */
  migrationsDirectory?: string | undefined
  /**
   * The schema guildstore is installed in (as `createPool({ schema })` and
   * `runMigrations({ schema })`); the returned pool and `db` use it. Default: `public`.
   */
  schema?: string | undefined
  /** The host's own migrations, applied after guildstore's into the template (`hostDirectory` of `runMigrations`). */
  hostMigrationsDirectory?: string | undefined
  /** Options of the new database's pool (see `createPool`). Default `max` 5. */
  pool?: PoolOptions | undefined
}

/** A fresh, migrated database of one's own. */
export interface TestDatabase {
  db: Kysely<DB>
  pool: pg.Pool
  /** The new database's URL. */
  url: string
  /** The new database's name. */
  name: string
  /** Closes the pool and drops the database. */
  drop(): Promise<void>
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`

function withDatabase(url: string, database: string): string {
  const u = new URL(url)
  u.pathname = `/${encodeURIComponent(database)}`
  return u.toString()
}

function serverUrl(url: string | undefined): string {
  const resolved = url ?? process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL
  if (!resolved) {
    throw new GuildstoreError(
      'createTestDatabase needs a PostgreSQL server: pass { url } or set TEST_DATABASE_URL (or DATABASE_URL)',
    )
  }
  return resolved
}

async function withAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'guildstore-testing' })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** A digest of the migration files and the schema, so a changed migration gets a new template. */
async function migrationsDigest(layout: TemplateLayout): Promise<string> {
  const hash = createHash('sha256')
  hash.update(`schema:${layout.schema ?? ''}\u0000`)
  for (const directory of [layout.directory, layout.hostDirectory]) {
    hash.update('\u0000set\u0000')
    if (directory === undefined) continue
    const files = (await readdir(directory)).filter((f) => f.endsWith('.sql')).sort()
    for (const file of files) {
      hash.update(file)
      hash.update(await readFile(join(directory, file)))
    }
  }
  return hash.digest('hex').slice(0, 16)
}

/** What a template is built from. */
interface TemplateLayout {
  directory: string
  hostDirectory: string | undefined
  schema: string | undefined
}

const TEMPLATE_READY = 'guildstore template: migrated'
const templates = new Map<string, Promise<string>>()

/**
 * Makes sure a migrated template database exists on the server and returns
 * its name, `guildstore_tpl_<digest of the migration files and schema>`. Concurrent
 * callers (several test processes) wait for each other on an advisory lock; a
 * template left half-made by a crash is rebuilt.
 *
 * @example
 * ```ts
 * const template = await ensureTemplateDatabase({ url: process.env.TEST_DATABASE_URL })
 * ```
 */
export function ensureTemplateDatabase(
  options: {
    url?: string | undefined
    migrationsDirectory?: string | undefined
    schema?: string | undefined
    hostMigrationsDirectory?: string | undefined
  } = {},
): Promise<string> {
  const url = serverUrl(options.url)
  if (options.schema !== undefined) assertSchemaName(options.schema)
  const layout: TemplateLayout = {
    directory: options.migrationsDirectory ?? defaultMigrationsDirectory(),
    hostDirectory: options.hostMigrationsDirectory,
    schema: options.schema,
  }
  const key = JSON.stringify([url, layout.directory, layout.hostDirectory, layout.schema])
  let pending = templates.get(key)
  if (!pending) {
    pending = buildTemplate(url, layout)
    pending.catch(() => templates.delete(key))
    templates.set(key, pending)
  }
  return pending
}

async function buildTemplate(url: string, layout: TemplateLayout): Promise<string> {
  const name = `guildstore_tpl_${await migrationsDigest(layout)}`
  await withAdmin(url, async (admin) => {
    await admin.query('SELECT pg_advisory_lock(hashtext($1))', [name])
    try {
      const { rows } = await admin.query<{ ready: boolean }>(
        'SELECT shobj_description(oid, $2) = $3 AS ready FROM pg_database WHERE datname = $1',
        [name, 'pg_database', TEMPLATE_READY],
      )
      if (rows[0]?.ready) return
      if (rows.length > 0) await admin.query(`DROP DATABASE ${quoteIdent(name)} WITH (FORCE)`)
      await admin.query(`CREATE DATABASE ${quoteIdent(name)}`)
      const pool = new pg.Pool({ connectionString: withDatabase(url, name), max: 1 })
      pool.on('error', () => {}) // an idle connection's error must not crash the host
      try {
        await runMigrations(pool, {
          directory: layout.directory,
          ...(layout.schema ? { schema: layout.schema } : {}),
          ...(layout.hostDirectory ? { hostDirectory: layout.hostDirectory } : {}),
        })
      } finally {
        await pool.end()
      }
      await admin.query(
        `COMMENT ON DATABASE ${quoteIdent(name)} IS ${pg.escapeLiteral(TEMPLATE_READY)}`,
      )
    } finally {
      await admin.query('SELECT pg_advisory_unlock(hashtext($1))', [name])
    }
  })
  return name
}

/**
 * Creates a fresh, migrated database of one's own, cloned from a template
 * (`CREATE DATABASE … TEMPLATE …`, like `sqlx::test`), with optional SQL
 * fixtures applied in order. Clones take milliseconds, so every test file (or
 * test) can have its own and nothing needs cleaning up between tests.
 *
 * With `schema`, guildstore is installed in that schema and the returned pool and `db`
 * use it (`createPool({ schema })`); `hostMigrationsDirectory` adds the host's own
 * migrations to the template.
 *
 * @throws {GuildstoreError} when no server URL is given or set.
 * @throws {InvalidInputError} for an invalid schema name.
 * @example
 * ```ts
 * import { createTestDatabase } from 'guildstore/testing'
 *
 * const t = await createTestDatabase({ fixtures: ['test/fixtures/users.sql'] })
 * try {
 *   await createUser(t.db, { username: 'ada' })
 * } finally {
 *   await t.drop()
 * }
 * ```
 */
export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const url = serverUrl(options.url)
  const template = await ensureTemplateDatabase({
    url,
    ...(options.migrationsDirectory ? { migrationsDirectory: options.migrationsDirectory } : {}),
    ...(options.schema !== undefined ? { schema: options.schema } : {}),
    ...(options.hostMigrationsDirectory
      ? { hostMigrationsDirectory: options.hostMigrationsDirectory }
      : {}),
  })
  const name = `guildstore_test_${randomBytes(8).toString('hex')}`
  await withAdmin(url, (admin) =>
    admin.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(template)}`),
  )
  const dbUrl = withDatabase(url, name)
  const pool = createPool({
    max: 5,
    // A field given as `undefined` is absent: it keeps the default above.
    ...Object.fromEntries(Object.entries(options.pool ?? {}).filter(([, v]) => v !== undefined)),
    connectionString: dbUrl,
    ...(options.schema !== undefined ? { schema: options.schema } : {}),
  })
  const db = createDb(pool)
  const drop = async () => {
    await db.destroy()
    await withAdmin(url, (admin) =>
      admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`),
    )
  }
  try {
    for (const file of options.fixtures ?? []) {
      await pool.query(await readFile(file, 'utf8'))
    }
  } catch (error) {
    await drop()
    throw error
  }
  return { db, pool, url: dbUrl, name, drop }
}
