import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../src/errors/invalid-input-error.ts'
import {
  createMigration,
  readMigrationFiles,
  slugMigrationName,
} from '../../src/migrations/index.ts'
import { emptyDir } from './fixtures/database.ts'

describe('createMigration', () => {
  it('writes 0001 in an empty directory, then the next numbers', async () => {
    const tmp = await emptyDir()
    try {
      const first = await createMigration(tmp.dir, 'create users')
      expect(first).toEqual({ file: join(tmp.dir, '0001_create_users.sql'), version: 1 })
      await writeFile(join(tmp.dir, '0007_seven.sql'), 'SELECT 7;')
      const next = await createMigration(tmp.dir, 'Add Foo')
      expect(next).toEqual({ file: join(tmp.dir, '0008_add_foo.sql'), version: 8 })
      // the written file is a valid, empty migration
      const files = await readMigrationFiles(tmp.dir)
      expect(files.map((f) => f.file)).toEqual([
        '0001_create_users.sql',
        '0007_seven.sql',
        '0008_add_foo.sql',
      ])
      expect(files[2]!.noTransaction).toBe(false)
      expect(await readFile(next.file, 'utf8')).toMatch(/^-- 0008_add_foo\.sql\n/)
    } finally {
      await tmp.remove()
    }
  })

  it('creates the directory when it does not exist', async () => {
    const tmp = await emptyDir()
    try {
      const created = await createMigration(join(tmp.dir, 'nested', 'migrations'), 'init')
      expect(created.version).toBe(1)
      expect(await readdir(join(tmp.dir, 'nested', 'migrations'))).toEqual(['0001_init.sql'])
    } finally {
      await tmp.remove()
    }
  })

  it.each([
    ['Add Foo-Bar!', 'add_foo_bar'],
    ['  __add__foo__  ', 'add_foo'],
    ['Créer café', 'creer_cafe'],
    ['v2 index', 'v2_index'],
  ])('slugs %j to %j', (name, slug) => {
    expect(slugMigrationName(name)).toBe(slug)
  })

  it.each([[''], ['   '], ['!!!'], ['日本語'], ['x'.repeat(81)]])(
    'refuses the name %j and writes nothing',
    async (name) => {
      const tmp = await emptyDir()
      try {
        const error = await createMigration(tmp.dir, name).catch((e: unknown) => e)
        expect(error).toBeInstanceOf(InvalidInputError)
        expect((error as InvalidInputError).field).toBe('name')
        expect(await readdir(tmp.dir)).toEqual([])
      } finally {
        await tmp.remove()
      }
    },
  )
})
