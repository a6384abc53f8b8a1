import { countHostMigrations } from '../../migrations/history-table.ts'
import type { MigrationInfo } from '../../migrations/migration-info.ts'
import { migrationStatus } from '../../migrations/migration-status.ts'
import { ExitCode } from '../exit-code.ts'
import type { CliIo, Reporter } from '../io.ts'
import {
  databaseUrl,
  type GlobalOptions,
  hostDirectory,
  schemaOption,
  withPool,
} from '../options.ts'

function statusTable(migrations: MigrationInfo[]): string {
  if (migrations.length === 0) return 'no migrations\n'
  const rows = [
    ['SET', 'VERSION', 'FILE', 'STATE', 'APPLIED AT', 'DURATION'],
    ...migrations.map((m) => [
      m.set,
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

/**
 * `guildstore status`: lists both sets' migrations; exit 0 when all are applied, 3 with
 * pending ones, 4 when an applied file changed or is missing.
 *
 * @throws the status errors (mapped to exit codes by `main`).
 * @example
 * ```ts
 * const code = await statusCommand({ json: true }, io, reporter(io))
 * ```
 */
export async function statusCommand(
  options: GlobalOptions,
  io: CliIo,
  report: Reporter,
): Promise<ExitCode> {
  const url = databaseUrl(options, io)
  const schema = schemaOption(options)
  const host = hostDirectory(options, io)
  const { migrations, unchecked } = await withPool(url, async (pool) => ({
    migrations: await migrationStatus(pool, {
      schema,
      ...(host ? { hostDirectory: host } : {}),
    }),
    unchecked: host ? 0 : await countHostMigrations(pool, schema).catch(() => 0),
  }))
  if (unchecked > 0) {
    report.log(
      `${unchecked} host migration${unchecked > 1 ? 's are' : ' is'} recorded but no host directory was given: run from the project root or pass --dir`,
    )
  }
  if (options.json) report.json({ migrations })
  else report.out(statusTable(migrations))
  const broken = migrations.filter((m) => m.state === 'changed' || m.state === 'missing')
  for (const m of broken) {
    report.log(
      `${m.set === 'host' ? 'host ' : ''}${m.file} is ${m.state === 'changed' ? 'changed since it was applied' : 'missing'}`,
    )
  }
  if (broken.length > 0) return ExitCode.Changed
  const pending = migrations.filter((m) => m.state === 'pending')
  if (pending.length > 0) {
    report.log(`${pending.length} pending migration${pending.length > 1 ? 's' : ''}`)
    return ExitCode.Pending
  }
  return ExitCode.Success
}
