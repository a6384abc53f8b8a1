import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Command, CommanderError } from 'commander'
import pg from 'pg'
import { GuildstoreError } from '../errors/guildstore-error.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { createMigration } from '../migrations/create-migration.ts'
import { defaultMigrationsDirectory, findPackageRoot } from '../migrations/default-directory.ts'
import {
  MigrationChecksumError,
  MigrationFailedError,
  MigrationMissingError,
} from '../migrations/migration-errors.ts'
import type { MigrationInfo } from '../migrations/migration-info.ts'
import { migrationStatus } from '../migrations/migration-status.ts'
import { runMigrations } from '../migrations/run-migrations.ts'
import { ExitCode } from './exit-code.ts'
import { redactUrl, secretScrubber } from './redact-url.ts'

/** A stream the CLI writes text to (`process.stdout`, or a string sink in tests). */
export interface CliOutput {
  write(chunk: string): unknown
}

/** What {@link main} reads and writes instead of touching `process`. */
export interface CliIo {
  /** Results: the status table, `--json` documents. */
  stdout: CliOutput
  /** Logs, warnings and human-readable errors. */
  stderr: CliOutput
  /** Environment, for `DATABASE_URL`. */
  env: Record<string, string | undefined>
}

interface GlobalOptions {
  databaseUrl?: string
  dir?: string
  json?: boolean
}

/** A bad command line found after commander parsed it. */
class UsageError extends GuildstoreError {
  override readonly code = 'USAGE_ERROR'
}

function packageVersion(): string {
  try {
    const manifest = readFileSync(join(findPackageRoot(import.meta.url), 'package.json'), 'utf8')
    return (JSON.parse(manifest) as { version?: string }).version ?? '0.0.0'
  } catch {
    return '0.0.0'
  }
}

function databaseUrl(options: GlobalOptions, io: CliIo): string {
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

async function withPool<T>(url: string, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
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

function statusTable(migrations: MigrationInfo[]): string {
  if (migrations.length === 0) return 'no migrations\n'
  const rows = [
    ['VERSION', 'FILE', 'STATE', 'APPLIED AT', 'DURATION'],
    ...migrations.map((m) => [
      String(m.version).padStart(4, '0'),
      m.file,
      m.state,
      m.appliedAt?.toISOString() ?? '',
      m.durationMs === undefined ? '' : `${m.durationMs} ms`,
    ]),
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows
    .map(
      (r) =>
        `${r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('')
}

function exitCodeOf(error: unknown): ExitCode {
  if (error instanceof MigrationChecksumError || error instanceof MigrationMissingError) {
    return ExitCode.Changed
  }
  if (error instanceof UsageError || error instanceof InvalidInputError) return ExitCode.Usage
  return ExitCode.Error
}

function errorDocument(error: unknown): { code: string; message: string; files?: string[] } {
  if (error instanceof MigrationFailedError) {
    return { code: error.code, message: error.message, files: [error.file] }
  }
  if (error instanceof GuildstoreError) {
    const files = (error as { files?: readonly string[] }).files
    return {
      code: error.code,
      message: error.message,
      ...(files && files.length > 0 ? { files: [...files] } : {}),
    }
  }
  return {
    code: 'INTERNAL_ERROR',
    message: error instanceof Error ? error.message : String(error),
  }
}

/**
 * Runs the `guildstore` CLI (`migrate`, `status`, `new <name>`) on `argv` (without the
 * node and script paths) and resolves to its exit code; it never calls `process.exit`
 * and writes only to `io.stdout` / `io.stderr`.
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2), {
 *   stdout: process.stdout, stderr: process.stderr, env: process.env,
 * })
 * ```
 */
export async function main(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  let scrub = secretScrubber(undefined)
  const out = (text: string) => io.stdout.write(scrub(text))
  const err = (text: string) => io.stderr.write(scrub(text))
  const json = argv.includes('--json')
  const log = (text: string) => err(`guildstore: ${text}\n`)
  let code: ExitCode = ExitCode.Success

  const program = new Command('guildstore')
    .description('PostgreSQL migrations of guildstore')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--database-url <url>', 'PostgreSQL URL (default: $DATABASE_URL)')
    .option('--dir <path>', "migrations directory (default: the package's migrations/)")
    .option('--json', 'machine-readable output on stdout (logs stay on stderr)')
    .helpOption('-h, --help', 'show help')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => out(s),
      writeErr: (s) => err(s),
      outputError: (s, write) => write(s),
    })
    .showHelpAfterError('(run guildstore --help for usage)')

  const setup = (command: Command) => {
    const options = command.optsWithGlobals<GlobalOptions>()
    const directory = options.dir ? resolve(options.dir) : defaultMigrationsDirectory()
    return { options, directory }
  }

  program
    .command('migrate')
    .description('apply the pending migrations')
    .action(async (_opts: unknown, command: Command) => {
      const { options, directory } = setup(command)
      const url = databaseUrl(options, io)
      scrub = secretScrubber(url)
      log(`migrating ${redactUrl(url)} from ${directory}`)
      const { applied } = await withPool(url, (pool) =>
        runMigrations(pool, { directory, logger: { info: (message) => log(message) } }),
      )
      if (options.json) {
        const document = {
          applied: applied.map((m) => ({
            version: m.version,
            name: m.name,
            durationMs: m.durationMs,
          })),
        }
        out(`${JSON.stringify(document)}\n`)
      } else {
        out(
          applied.length === 0
            ? 'database is up to date\n'
            : `applied ${applied.length} migration${applied.length > 1 ? 's' : ''}\n`,
        )
      }
      code = ExitCode.Success
    })

  program
    .command('status')
    .description('list applied, pending, changed and missing migrations')
    .action(async (_opts: unknown, command: Command) => {
      const { options, directory } = setup(command)
      const url = databaseUrl(options, io)
      scrub = secretScrubber(url)
      const migrations = await withPool(url, (pool) => migrationStatus(pool, { directory }))
      if (options.json) out(`${JSON.stringify({ migrations })}\n`)
      else out(statusTable(migrations))
      const broken = migrations.filter((m) => m.state === 'changed' || m.state === 'missing')
      const pending = migrations.filter((m) => m.state === 'pending')
      for (const m of broken) {
        log(`${m.file} is ${m.state === 'changed' ? 'changed since it was applied' : 'missing'}`)
      }
      if (broken.length > 0) code = ExitCode.Changed
      else if (pending.length > 0) {
        log(`${pending.length} pending migration${pending.length > 1 ? 's' : ''}`)
        code = ExitCode.Pending
      } else code = ExitCode.Success
    })

  program
    .command('new')
    .description('write the next numbered migration file')
    .argument('<name...>', 'what the migration does, e.g. "add foo"')
    .action(async (words: string[], _opts: unknown, command: Command) => {
      const { options, directory } = setup(command)
      const created = await createMigration(directory, words.join(' '))
      if (options.json) out(`${JSON.stringify(created)}\n`)
      else out(`${created.file}\n`)
      log(`created ${created.file}`)
      code = ExitCode.Success
    })

  try {
    if (argv.length === 0) {
      program.outputHelp({ error: true })
      return ExitCode.Usage
    }
    await program.parseAsync([...argv], { from: 'user' })
    return code
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') {
        return ExitCode.Success
      }
      if (json) {
        const message = error.message.replace(/^error: /, '')
        out(`${JSON.stringify({ error: { code: 'USAGE_ERROR', message } })}\n`)
      }
      return ExitCode.Usage
    }
    const document = errorDocument(error)
    if (json) out(`${JSON.stringify({ error: document })}\n`)
    err(`guildstore: error: ${document.message}\n`)
    if (error instanceof MigrationChecksumError) {
      log('restore the applied files as they were and put changes in a new migration')
    }
    return exitCodeOf(error)
  }
}
