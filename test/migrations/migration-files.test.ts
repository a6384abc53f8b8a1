import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { countStatements } from '../../src/migrations/count-statements.ts'
import { findPackageRoot } from '../../src/migrations/default-directory.ts'
import {
  defaultMigrationsDirectory,
  MigrationFileError,
  readMigrationFiles,
} from '../../src/migrations/index.ts'
import { emptyDir, fixtureDir } from './fixtures/database.ts'

const packageRoot = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '')

describe('readMigrationFiles', () => {
  it('reads .sql files sorted by number, with checksums and the directive', async () => {
    const files = await readMigrationFiles(fixtureDir('basic'))
    expect(files.map((f) => [f.version, f.name, f.noTransaction])).toEqual([
      [1, 'create_widgets', false],
      [2, 'add_widget_color', false],
      [10, 'widgets_label_index', true],
    ])
    expect(new Set(files.map((f) => f.checksum)).size).toBe(3)
  })

  it('sorts by number, not by text', async () => {
    const tmp = await emptyDir()
    try {
      await writeFile(join(tmp.dir, '10000_big.sql'), 'SELECT 1;')
      await writeFile(join(tmp.dir, '0999_small.sql'), 'SELECT 1;')
      const files = await readMigrationFiles(tmp.dir)
      expect(files.map((f) => f.version)).toEqual([999, 10000])
    } finally {
      await tmp.remove()
    }
  })

  it.each([
    ['0001-dash.sql'],
    ['1_short.sql'],
    ['0001_Upper.sql'],
    ['0001_.sql'],
    ['init.sql'],
    ['0001_init.SQL'],
  ])('refuses the file name %s, naming it', async (bad) => {
    const tmp = await emptyDir()
    try {
      await writeFile(join(tmp.dir, '0002_ok.sql'), 'SELECT 1;')
      await writeFile(join(tmp.dir, bad), 'SELECT 1;')
      const error = await readMigrationFiles(tmp.dir).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(MigrationFileError)
      expect((error as MigrationFileError).files).toEqual([bad])
      expect((error as Error).message).toContain(bad)
    } finally {
      await tmp.remove()
    }
  })

  it('refuses duplicate numbers, naming both files', async () => {
    const error = await readMigrationFiles(fixtureDir('duplicate')).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MigrationFileError)
    expect((error as Error).message).toContain('0001_first.sql, 0001_second.sql')
  })

  it('refuses the directive anywhere but the first line', async () => {
    const tmp = await emptyDir()
    try {
      await writeFile(
        join(tmp.dir, '0001_late.sql'),
        '-- an index\n-- guildstore:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);\n',
      )
      const error = await readMigrationFiles(tmp.dir).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(MigrationFileError)
      expect((error as Error).message).toContain('first line')
    } finally {
      await tmp.remove()
    }
  })

  it('refuses a directory that does not exist', async () => {
    const error = await readMigrationFiles('/nonexistent/gs-migrations').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MigrationFileError)
  })
})

describe('countStatements', () => {
  it.each([
    ['SELECT 1', 1],
    ['SELECT 1;', 1],
    ['SELECT 1; SELECT 2;', 2],
    ['  ;; -- only a comment; really\n', 0],
    ["SELECT 'a;b', E'it\\'s;', 'x''y;'", 1],
    ['SELECT "semi;colon" FROM t', 1],
    ['CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; SELECT 2; $body$ LANGUAGE sql', 1],
    ['DO $$ BEGIN PERFORM 1; END $$; SELECT 2', 2],
    ['/* a; /* nested; */ still; */ SELECT 1', 1],
    ['-- guildstore:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);\n', 1],
  ])('%j has %i statement(s)', (sql, expected) => {
    expect(countStatements(sql)).toBe(expected)
  })
})

describe('default migrations directory', () => {
  it("is the package's migrations/ folder", () => {
    expect(defaultMigrationsDirectory()).toBe(join(packageRoot, 'migrations'))
  })

  it('is found from the compiled location (dist/src/migrations) too', () => {
    expect(findPackageRoot(join(packageRoot, 'dist/src/migrations/run-migrations.js'))).toBe(
      packageRoot,
    )
    expect(findPackageRoot(new URL('../../src/migrations/x.ts', import.meta.url))).toBe(packageRoot)
  })

  it('holds only valid migration files', async () => {
    const names = (await readdir(defaultMigrationsDirectory())).filter((n) => n.endsWith('.sql'))
    const files = await readMigrationFiles(defaultMigrationsDirectory())
    expect(files.map((f) => f.file)).toEqual([...names].sort())
  })
})
