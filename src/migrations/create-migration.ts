import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { readMigrationFiles } from './migration-files.ts'

/** Longest name part `createMigration` accepts, after slugging. */
export const MAX_MIGRATION_NAME_LENGTH = 80

/**
 * Turns a free-form name into the `[a-z0-9_]` name part of a migration file:
 * lowercased, accents dropped, every other run of characters made one `_`.
 *
 * @example
 * ```ts
 * slugMigrationName('Add Foo-Bar!') // 'add_foo_bar'
 * ```
 */
export function slugMigrationName(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
}

const TEMPLATE = (file: string) => `-- ${file}
-- Runs in one transaction with its history row. To run a single statement outside a
-- transaction (CREATE INDEX CONCURRENTLY), make the first line: -- guildstore:no-transaction

`

/**
 * Writes the next numbered, empty migration file (`0002_add_foo.sql`) into `directory`,
 * creating the directory when needed. The number is one more than the highest present.
 *
 * @throws InvalidInputError when the name slugs to nothing or is longer than {@link MAX_MIGRATION_NAME_LENGTH}; nothing is written.
 * @throws MigrationFileError when the directory holds invalid migration files.
 * @example
 * ```ts
 * const { file, version } = await createMigration('./migrations', 'add foo')
 * // file: '/…/migrations/0002_add_foo.sql', version: 2
 * ```
 */
export async function createMigration(
  directory: string,
  name: string,
): Promise<{ file: string; version: number }> {
  const slug = typeof name === 'string' ? slugMigrationName(name) : ''
  if (slug.length === 0) {
    throw new InvalidInputError('migration name must contain letters or digits', { field: 'name' })
  }
  if (slug.length > MAX_MIGRATION_NAME_LENGTH) {
    throw new InvalidInputError(
      `migration name must be at most ${MAX_MIGRATION_NAME_LENGTH} characters`,
      { field: 'name' },
    )
  }
  await mkdir(directory, { recursive: true })
  const files = await readMigrationFiles(directory)
  const version = (files.at(-1)?.version ?? 0) + 1
  const fileName = `${String(version).padStart(4, '0')}_${slug}.sql`
  const file = join(directory, fileName)
  await writeFile(file, TEMPLATE(fileName), { flag: 'wx' })
  return { file, version }
}
