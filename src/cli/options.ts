import { existsSync, realpathSync } from 'node:fs'
import { dirname, resolve, sep } from 'node:path'
import pg from 'pg'
import { GuildstoreError } from '../errors/guildstore-error.ts'
import { defaultMigrationsDirectory } from '../migrations/default-directory.ts'
import { assertSchemaName } from '../pool/create-pool.ts'
import type { CliIo } from './io.ts'

/** The options every command accepts (parsed by commander). */
export interface GlobalOptions {
  databaseUrl?: string
  dir?: string
  schema?: string
  json?: boolean
}

/** A bad command line found after commander parsed it. */
export class UsageError extends GuildstoreError {
  override readonly code = 'USAGE_ERROR'
}

/**
 * The database URL from `--database-url` or `DATABASE_URL`, checked to be a postgres URL.
 *
 * @throws UsageError when there is none or it is not a postgres URL (the URL itself is never echoed).
 * @example
 * ```ts
 * databaseUrl({ databaseUrl: 'postgres://app@db/chat' }, io)
 * ```
 */
export function databaseUrl(options: GlobalOptions, io: CliIo): string {
  const url = options.databaseUrl ?? io.env.DATABASE_URL
  if (!url) {
    throw new UsageError('no database: pass --database-url <url> or set DATABASE_URL')
  }
  let protocol: string
  try {
    protocol = new URL(url).protocol
  } catch {
    throw new UsageError('the database URL is not a valid URL (postgres://user:password@host/db)')
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:') {
    throw new UsageError('the database URL must start with postgres:// or postgresql://')
  }
  return url
}

/**
 * The schema from `--schema` (default `public`).
 *
 * @throws UsageError for an invalid schema name.
 * @example
 * ```ts
 * schemaOption({ schema: 'chat' }) // 'chat'
 * ```
 */
export function schemaOption(options: GlobalOptions): string {
  try {
    return assertSchemaName(options.schema ?? 'public')
  } catch (error) {
    throw new UsageError(`--schema: ${(error as Error).message}`)
  }
}

const realOrResolved = (path: string): string => {
  try {
    return realpathSync(path)
  } catch {
    return resolve(path)
  }
}

/**
 * The host's migrations directory: `--dir` (resolved from the working directory), else
 * `./migrations` when it exists and is not guildstore's own set (as in guildstore's own
 * repository), else none.
 *
 * @example
 * ```ts
 * hostDirectory({ dir: 'db/migrations' }, io) // '/app/db/migrations'
 * ```
 */
export function hostDirectory(options: GlobalOptions, io: CliIo): string | undefined {
  const cwd = io.cwd ?? process.cwd()
  if (options.dir) return resolve(cwd, options.dir)
  const candidate = resolve(cwd, 'migrations')
  if (!existsSync(candidate)) return undefined
  if (realOrResolved(candidate) === realOrResolved(defaultMigrationsDirectory())) return undefined
  return candidate
}

/**
 * The directory `new` writes into: `--dir`, else `./migrations`, never inside an installed
 * package (a path under `node_modules/`).
 *
 * @throws UsageError when the directory is inside `node_modules`.
 * @example
 * ```ts
 * newMigrationDirectory({}, io) // '/app/migrations'
 * ```
 */
export function newMigrationDirectory(options: GlobalOptions, io: CliIo): string {
  const cwd = io.cwd ?? process.cwd()
  const target = resolve(cwd, options.dir ?? 'migrations')
  let existing = target
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing)
  const real = realOrResolved(existing) + target.slice(existing.length)
  if (`${real}${sep}`.includes(`${sep}node_modules${sep}`)) {
    throw new UsageError(
      `refusing to write a migration into an installed package (${target}): run it in your project, or pass --dir ./migrations`,
    )
  }
  return target
}

/**
 * Runs `fn` with a small pool on `url`, ended afterwards.
 *
 * @example
 * ```ts
 * await withPool(url, (pool) => migrationStatus(pool))
 * ```
 */
export async function withPool<T>(url: string, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({
    connectionString: url,
    max: 2,
    connectionTimeoutMillis: 10_000,
    application_name: 'guildstore-cli',
  })
  pool.on('error', () => {
    // An idle client's error (server restart) must not crash the CLI; the next query reports it.
  })
  try {
    return await fn(pool)
  } finally {
    await pool.end().catch(() => {})
  }
}
