import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Command, CommanderError } from 'commander'
import { GuildstoreError } from '../errors/guildstore-error.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { findPackageRoot } from '../migrations/default-directory.ts'
import {
  MigrationChecksumError,
  MigrationFailedError,
  MigrationMissingError,
} from '../migrations/migration-errors.ts'
import { migrateCommand } from './commands/migrate.ts'
import { newCommand } from './commands/new.ts'
import { statusCommand } from './commands/status.ts'
import { ExitCode } from './exit-code.ts'
import { type CliIo, type Reporter, reporter } from './io.ts'
import { type GlobalOptions, UsageError } from './options.ts'

export type { CliIo, CliOutput } from './io.ts'

function packageVersion(): string {
  try {
    const manifest = readFileSync(join(findPackageRoot(import.meta.url), 'package.json'), 'utf8')
    return (JSON.parse(manifest) as { version?: string }).version ?? '0.0.0'
  } catch {
    return '0.0.0'
  }
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

function reportFailure(error: unknown, json: boolean, report: Reporter): ExitCode {
  const document = errorDocument(error)
  if (json) report.json({ error: document })
  report.err(`guildstore: error: ${document.message}\n`)
  if (error instanceof MigrationChecksumError) {
    report.log('restore the applied files as they were and put changes in a new migration')
  }
  return exitCodeOf(error)
}

/** The command commander picked, run after parsing. */
type Dispatch = () => Promise<ExitCode>

function program(io: CliIo, report: Reporter, choose: (run: Dispatch) => void): Command {
  const root = new Command('guildstore')
    .description('PostgreSQL migrations of guildstore and of the host project')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--database-url <url>', 'PostgreSQL URL (default: $DATABASE_URL)')
    .option('--schema <name>', "the schema guildstore's tables live in (default: public)")
    .option(
      '--dir <path>',
      "the host project's migrations directory (default: ./migrations); never the package's",
    )
    .option('--json', 'machine-readable output on stdout (logs stay on stderr)')
    .helpOption('-h, --help', 'show help')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => report.out(s),
      writeErr: (s) => report.err(s),
      outputError: (s, write) => write(s),
    })
    .showHelpAfterError('(run guildstore --help for usage)')
  const options = (command: Command) => command.optsWithGlobals<GlobalOptions>()
  root
    .command('migrate')
    .description("apply guildstore's pending migrations, then the host's")
    .action((_opts: unknown, command: Command) =>
      choose(() => migrateCommand(options(command), io, report)),
    )
  root
    .command('status')
    .description('list applied, pending, changed and missing migrations of both sets')
    .action((_opts: unknown, command: Command) =>
      choose(() => statusCommand(options(command), io, report)),
    )
  root
    .command('new')
    .description('write the next numbered migration file into ./migrations (or --dir)')
    .argument('<name...>', 'what the migration does, e.g. "add foo"')
    .action((words: string[], _opts: unknown, command: Command) =>
      choose(() => newCommand(words, options(command), io, report)),
    )
  return root
}

/**
 * Runs the `guildstore` CLI (`migrate`, `status`, `new <name>`) on `argv` (without the
 * node and script paths) and resolves to its exit code; it never calls `process.exit`
 * and writes only to `io.stdout` / `io.stderr`. It parses the command line and
 * dispatches to one command module, each returning its exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2), {
 *   stdout: process.stdout, stderr: process.stderr, env: process.env,
 * })
 * ```
 */
export async function main(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  const report = reporter(io)
  const json = argv.includes('--json')
  let dispatch: Dispatch | undefined
  const cli = program(io, report, (run) => {
    dispatch = run
  })
  try {
    if (argv.length === 0) {
      cli.outputHelp({ error: true })
      return ExitCode.Usage
    }
    cli.parse([...argv], { from: 'user' })
  } catch (error) {
    if (!(error instanceof CommanderError)) return reportFailure(error, json, report)
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') {
      return ExitCode.Success
    }
    if (json) {
      report.json({
        error: { code: 'USAGE_ERROR', message: error.message.replace(/^error: /, '') },
      })
    }
    return ExitCode.Usage
  }
  if (!dispatch) return ExitCode.Usage
  try {
    return await dispatch()
  } catch (error) {
    return reportFailure(error, json, report)
  }
}
