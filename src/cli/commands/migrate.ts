import { countHostMigrations } from '../../migrations/history-table.ts'
import { runMigrations } from '../../migrations/run-migrations.ts'
import { ExitCode } from '../exit-code.ts'
import type { CliIo, Reporter } from '../io.ts'
import {
  databaseUrl,
  type GlobalOptions,
  hostDirectory,
  schemaOption,
  withPool,
} from '../options.ts'
import { redactUrl } from '../redact-url.ts'

/**
 * `guildstore migrate`: applies guildstore's pending migrations, then the host's
 * (`--dir`, `./migrations` by default), into `--schema`, under one lock.
 *
 * @throws the runner's errors (mapped to exit codes by `main`).
 * @example
 * ```ts
 * const code = await migrateCommand({ schema: 'chat' }, io, reporter(io))
 * ```
 */
export async function migrateCommand(
  options: GlobalOptions,
  io: CliIo,
  report: Reporter,
): Promise<ExitCode> {
  const url = databaseUrl(options, io)
  const schema = schemaOption(options)
  const host = hostDirectory(options, io)
  report.log(
    `migrating ${redactUrl(url)} (schema ${schema}${host ? `, host migrations in ${host}` : ''})`,
  )
  const { applied, unchecked } = await withPool(url, async (pool) => ({
    ...(await runMigrations(pool, {
      schema,
      ...(host ? { hostDirectory: host } : {}),
      logger: { info: (message) => report.log(message) },
    })),
    unchecked: host ? 0 : await countHostMigrations(pool, schema).catch(() => 0),
  }))
  if (unchecked > 0) {
    report.log(
      `${unchecked} host migration${unchecked > 1 ? 's are' : ' is'} recorded but no host directory was given: run from the project root or pass --dir`,
    )
  }
  if (options.json) {
    report.json({
      applied: applied.map((m) => ({
        set: m.set,
        version: m.version,
        name: m.name,
        durationMs: m.durationMs,
      })),
    })
  } else {
    report.out(
      applied.length === 0
        ? 'database is up to date\n'
        : `applied ${applied.length} migration${applied.length > 1 ? 's' : ''}\n`,
    )
  }
  return ExitCode.Success
}
