import { createHash } from 'node:crypto'
import type { Dirent } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { countStatements } from './count-statements.ts'
import { MigrationFileError } from './migration-errors.ts'

/** A migration file read from disk. */
export interface MigrationFile {
  version: number
  /** The name part, e.g. `add_foo` of `0002_add_foo.sql`. */
  name: string
  /** The file name, e.g. `0002_add_foo.sql`. */
  file: string
  /** Absolute path. */
  path: string
  /** SHA-256 hex of the file's bytes. */
  checksum: string
  /** The file's text (UTF-8, without a byte-order mark). */
  sql: string
  /** Whether the first line is `-- guildstore:no-transaction`. */
  noTransaction: boolean
}

/** `NNNN_name.sql`: four or more digits, an underscore, lowercase letters, digits and underscores. */
export const MIGRATION_FILE_PATTERN = /^(\d{4,})_([a-z0-9][a-z0-9_]*)\.sql$/
/** The largest version a history row can hold (PostgreSQL `integer`). */
export const MAX_MIGRATION_VERSION = 2_147_483_647
const DIRECTIVE = /^--\s*guildstore:no-transaction\s*$/i
const DIRECTIVE_ANYWHERE = /^\s*--\s*guildstore:no-transaction\b/im

/**
 * Reads and validates the `.sql` files of a migrations directory, sorted by number.
 * Files not ending in `.sql` are ignored.
 *
 * @throws MigrationFileError for a `.sql` file not named `NNNN_name.sql`, a number above
 *   {@link MAX_MIGRATION_VERSION}, two files with one number, a file that cannot be read
 *   (a dangling symlink, a directory), a misplaced directive, or a no-transaction file with
 *   more than one statement. Nothing has run when it is thrown.
 * @example
 * ```ts
 * const files = await readMigrationFiles('./migrations')
 * files.map((f) => f.file) // ['0001_init.sql', '0002_add_foo.sql']
 * ```
 */
export async function readMigrationFiles(directory: string): Promise<MigrationFile[]> {
  let entries: Dirent[]
  try {
    entries = await readdir(directory, { withFileTypes: true })
  } catch (err) {
    throw new MigrationFileError(`cannot read the migrations directory ${directory}`, {
      files: [],
      cause: err,
    })
  }
  const sqlNames = entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && e.name.toLowerCase().endsWith('.sql'))
    .map((e) => e.name)
  const badNames = sqlNames.filter((name) => !MIGRATION_FILE_PATTERN.test(name)).sort()
  if (badNames.length > 0) {
    throw new MigrationFileError(
      `migration file name${badNames.length > 1 ? 's' : ''} not of the form NNNN_name.sql (name in [a-z0-9_]): ${badNames.join(', ')}`,
      { files: badNames },
    )
  }
  const tooLarge = sqlNames
    .filter((name) => Number(MIGRATION_FILE_PATTERN.exec(name)![1]) > MAX_MIGRATION_VERSION)
    .sort()
  if (tooLarge.length > 0) {
    throw new MigrationFileError(
      `migration number${tooLarge.length > 1 ? 's' : ''} above ${MAX_MIGRATION_VERSION}: ${tooLarge.join(', ')}`,
      { files: tooLarge },
    )
  }
  const byVersion = new Map<number, string[]>()
  for (const name of sqlNames) {
    const version = Number(MIGRATION_FILE_PATTERN.exec(name)![1])
    byVersion.set(version, [...(byVersion.get(version) ?? []), name])
  }
  const duplicates = [...byVersion.values()]
    .filter((names) => names.length > 1)
    .flat()
    .sort()
  if (duplicates.length > 0) {
    throw new MigrationFileError(`duplicate migration numbers: ${duplicates.join(', ')}`, {
      files: duplicates,
    })
  }

  const files: MigrationFile[] = []
  for (const file of sqlNames) {
    const [, digits, name] = MIGRATION_FILE_PATTERN.exec(file)!
    const path = join(directory, file)
    let bytes: Buffer
    try {
      if (!(await stat(path)).isFile()) throw new Error('not a regular file')
      bytes = await readFile(path)
    } catch (err) {
      throw new MigrationFileError(
        `${file}: cannot read the migration file (${(err as { code?: string }).code ?? (err as Error).message}; a dangling symlink or not a file?)`,
        { files: [file], cause: err },
      )
    }
    const sql = bytes.toString('utf8').replace(/^\uFEFF/, '')
    const [firstLine = '', ...rest] = sql.split(/\r?\n/)
    const noTransaction = DIRECTIVE.test(firstLine.trim())
    if (DIRECTIVE_ANYWHERE.test(rest.join('\n'))) {
      throw new MigrationFileError(
        `${file}: the -- guildstore:no-transaction directive must be the first line`,
        { files: [file] },
      )
    }
    if (noTransaction) {
      const statements = countStatements(sql)
      if (statements !== 1) {
        throw new MigrationFileError(
          `${file}: a -- guildstore:no-transaction migration must hold exactly one statement (found ${statements}); split it into several files`,
          { files: [file] },
        )
      }
    }
    files.push({
      version: Number(digits),
      name: name!,
      file,
      path,
      checksum: createHash('sha256').update(bytes).digest('hex'),
      sql,
      noTransaction,
    })
  }
  return files.sort((a, b) => a.version - b.version)
}
