import { createMigration } from '../../migrations/create-migration.ts'
import { ExitCode } from '../exit-code.ts'
import type { CliIo, Reporter } from '../io.ts'
import { type GlobalOptions, newMigrationDirectory } from '../options.ts'

/**
 * `guildstore new <name…>`: writes the next numbered file into the host's `./migrations`
 * (or `--dir`), never into the installed package.
 *
 * @throws InvalidInputError for a name that slugs to nothing; UsageError for a directory under `node_modules`.
 * @example
 * ```ts
 * const code = await newCommand(['add', 'banners'], {}, io, reporter(io))
 * ```
 */
export async function newCommand(
  words: readonly string[],
  options: GlobalOptions,
  io: CliIo,
  report: Reporter,
): Promise<ExitCode> {
  const directory = newMigrationDirectory(options, io)
  const created = await createMigration(directory, words.join(' '))
  if (options.json) report.json(created)
  else report.out(`${created.file}\n`)
  report.log(`created ${created.file}`)
  return ExitCode.Success
}
