import { appendFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { GuildstoreError } from '../../src/errors/guildstore-error.ts'
import {
  MigrationChecksumError,
  MigrationFailedError,
  MigrationFileError,
  MigrationMissingError,
  migrationStatus,
  runMigrations,
} from '../../src/migrations/index.ts'
import {
  copyFixture,
  createFreshDatabase,
  type FreshDatabase,
  fixtureDir,
} from './fixtures/database.ts'

const historyTableExists = async (db: FreshDatabase) =>
  (
    await db.query<{ t: string | null }>("SELECT to_regclass('public.guildstore_migrations') AS t")
  )[0]!.t !== null

describe('runMigrations', () => {
  let db: FreshDatabase
  beforeEach(async () => {
    db = await createFreshDatabase()
  })
  afterEach(async () => {
    await db.drop()
  })

  it('applies every file of a fresh database in order, with history and logs', async () => {
    const lines: { msg: string; meta?: object }[] = []
    const { applied } = await runMigrations(db.pool(), {
      directory: fixtureDir('basic'),
      logger: { info: (msg, meta) => lines.push({ msg, ...(meta ? { meta } : {}) }) },
    })
    expect(applied.map((m) => m.file)).toEqual([
      '0001_create_widgets.sql',
      '0002_add_widget_color.sql',
      '0010_widgets_label_index.sql',
    ])
    expect(applied.every((m) => m.state === 'applied' && m.appliedAt instanceof Date)).toBe(true)
    expect(applied.every((m) => typeof m.durationMs === 'number' && m.durationMs >= 0)).toBe(true)

    const history = await db.query(
      'SELECT version, name, checksum, duration_ms FROM public.guildstore_migrations ORDER BY version',
    )
    expect(history.map((r) => [r.version, r.name])).toEqual([
      [1, 'create_widgets'],
      [2, 'add_widget_color'],
      [10, 'widgets_label_index'],
    ])
    expect(history.map((r) => r.checksum)).toEqual(applied.map((m) => m.checksum))
    expect(history[0]!.checksum).toMatch(/^[0-9a-f]{64}$/)
    expect(await db.query('SELECT file FROM run_log ORDER BY file')).toEqual([
      { file: '0001' },
      { file: '0002' },
    ])
    // the multi-statement file ran whole, dollar-quoted body included
    expect(await db.query("SELECT widget_count() AS n, 'x' AS x")).toEqual([{ n: '0', x: 'x' }])
    expect(lines.map((l) => l.msg)).toEqual(
      applied.map((m) => `applied ${m.file} (${m.durationMs} ms)`),
    )
    expect(lines[0]!.meta).toMatchObject({ version: 1, name: 'create_widgets' })
  })

  it('is a no-op when run again', async () => {
    const pool = db.pool()
    await runMigrations(pool, { directory: fixtureDir('basic') })
    const again = await runMigrations(pool, { directory: fixtureDir('basic') })
    expect(again.applied).toEqual([])
    expect(await db.query('SELECT count(*)::int AS n FROM run_log')).toEqual([{ n: 2 }])
    expect(await db.query('SELECT count(*)::int AS n FROM public.guildstore_migrations')).toEqual([
      { n: 3 },
    ])
  })

  it('runs a no-transaction file outside a transaction (CREATE INDEX CONCURRENTLY)', async () => {
    await runMigrations(db.pool(), { directory: fixtureDir('basic') })
    const index = await db.query(
      `SELECT i.indisvalid AS valid FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'widgets_label_idx'`,
    )
    expect(index).toEqual([{ valid: true }])
  })

  it('fails CREATE INDEX CONCURRENTLY without the directive (it runs in a transaction)', async () => {
    const error = await runMigrations(db.pool(), {
      directory: fixtureDir('concurrent-in-transaction'),
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MigrationFailedError)
    expect((error as MigrationFailedError).file).toBe('0002_index_without_directive.sql')
    expect((error as MigrationFailedError).sqlState).toBe('25001')
    expect(await db.query('SELECT version FROM public.guildstore_migrations')).toEqual([
      { version: 1 },
    ])
  })

  it('rolls a failing migration back completely, records nothing, keeps earlier ones', async () => {
    const error = await runMigrations(db.pool(), { directory: fixtureDir('failing') }).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(MigrationFailedError)
    expect(error).toBeInstanceOf(GuildstoreError)
    const failed = error as MigrationFailedError
    expect(failed.code).toBe('MIGRATION_FAILED')
    expect(failed.file).toBe('0002_breaks.sql')
    expect(failed.sqlState).toBe('42P01')
    expect(failed.line).toBe(2)
    expect(failed.column).toBe(13)
    expect(failed.message).toContain('0002_breaks.sql')
    expect(failed.message).toContain('line 2')
    expect((failed.cause as { code?: string }).code).toBe('42P01')

    expect(await db.query('SELECT version FROM public.guildstore_migrations')).toEqual([
      { version: 1 },
    ])
    const tables = await db.query(
      `SELECT relname FROM pg_class WHERE relname IN ('gadgets', 'sprockets', 'never_reached') ORDER BY relname`,
    )
    expect(tables).toEqual([{ relname: 'gadgets' }])
  })

  it('refuses to run when an applied file was edited, naming it, and applies nothing', async () => {
    const fixture = await copyFixture('basic')
    try {
      const pool = db.pool()
      await runMigrations(pool, { directory: fixture.dir })
      await appendFile(join(fixture.dir, '0002_add_widget_color.sql'), '\n-- edited\n')
      await writeFile(join(fixture.dir, '0011_later.sql'), 'CREATE TABLE later (id int);\n')

      const error = await runMigrations(pool, { directory: fixture.dir }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(MigrationChecksumError)
      expect((error as MigrationChecksumError).files).toEqual(['0002_add_widget_color.sql'])
      expect((error as Error).message).toContain('0002_add_widget_color.sql')
      expect(await db.query("SELECT to_regclass('later') AS t")).toEqual([{ t: null }])

      const status = await migrationStatus(pool, { directory: fixture.dir })
      expect(status.map((m) => [m.file, m.state])).toEqual([
        ['0001_create_widgets.sql', 'applied'],
        ['0002_add_widget_color.sql', 'changed'],
        ['0010_widgets_label_index.sql', 'applied'],
        ['0011_later.sql', 'pending'],
      ])
      expect(status[1]!.recordedChecksum).toMatch(/^[0-9a-f]{64}$/)
      expect(status[1]!.recordedChecksum).not.toBe(status[1]!.checksum)
    } finally {
      await fixture.remove()
    }
  })

  it('refuses to run when an applied file is missing, naming it, and applies nothing', async () => {
    const fixture = await copyFixture('basic')
    try {
      const pool = db.pool()
      await runMigrations(pool, { directory: fixture.dir })
      await rm(join(fixture.dir, '0001_create_widgets.sql'))
      await writeFile(join(fixture.dir, '0011_later.sql'), 'CREATE TABLE later (id int);\n')

      const error = await runMigrations(pool, { directory: fixture.dir }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(MigrationMissingError)
      expect((error as MigrationMissingError).files).toEqual(['0001_create_widgets.sql'])
      expect(await db.query("SELECT to_regclass('later') AS t")).toEqual([{ t: null }])

      const status = await migrationStatus(pool, { directory: fixture.dir })
      expect(status[0]).toMatchObject({
        version: 1,
        file: '0001_create_widgets.sql',
        name: 'create_widgets',
        state: 'missing',
      })
      expect(status[0]!.appliedAt).toBeInstanceOf(Date)
    } finally {
      await fixture.remove()
    }
  })

  it('refuses a no-transaction file with two statements before touching the database', async () => {
    const error = await runMigrations(db.pool(), {
      directory: fixtureDir('multi-no-transaction'),
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MigrationFileError)
    expect((error as MigrationFileError).files).toEqual(['0001_two_indexes.sql'])
    expect((error as Error).message).toContain('exactly one statement')
    expect(await historyTableExists(db)).toBe(false)
  })

  it('refuses badly named files and duplicate numbers, naming them, writing nothing', async () => {
    const bad = await runMigrations(db.pool(), { directory: fixtureDir('bad-name') }).catch(
      (e: unknown) => e,
    )
    expect(bad).toBeInstanceOf(MigrationFileError)
    expect((bad as MigrationFileError).files).toEqual(['add-things.sql'])
    expect((bad as Error).message).toContain('add-things.sql')

    const dup = await runMigrations(db.pool(), { directory: fixtureDir('duplicate') }).catch(
      (e: unknown) => e,
    )
    expect(dup).toBeInstanceOf(MigrationFileError)
    expect((dup as MigrationFileError).files).toEqual(['0001_first.sql', '0001_second.sql'])
    expect(await historyTableExists(db)).toBe(false)
    expect(await db.query("SELECT to_regclass('fine') AS t")).toEqual([{ t: null }])
  })
})

describe('migrationStatus', () => {
  let db: FreshDatabase
  beforeEach(async () => {
    db = await createFreshDatabase()
  })
  afterEach(async () => {
    await db.drop()
  })

  it('lists everything as pending on a fresh database without creating anything', async () => {
    const status = await migrationStatus(db.pool(), { directory: fixtureDir('basic') })
    expect(status.map((m) => [m.version, m.name, m.state])).toEqual([
      [1, 'create_widgets', 'pending'],
      [2, 'add_widget_color', 'pending'],
      [10, 'widgets_label_index', 'pending'],
    ])
    expect(status[0]!.appliedAt).toBeUndefined()
    expect(await historyTableExists(db)).toBe(false)
  })

  it('reports applied migrations with their time and duration', async () => {
    const pool = db.pool()
    const before = new Date(Date.now() - 60_000)
    await runMigrations(pool, { directory: fixtureDir('failing') }).catch(() => {})
    const status = await migrationStatus(pool, { directory: fixtureDir('failing') })
    expect(status.map((m) => m.state)).toEqual(['applied', 'pending', 'pending'])
    expect(status[0]!.appliedAt!.getTime()).toBeGreaterThan(before.getTime())
    expect(status[0]!.durationMs).toBeGreaterThanOrEqual(0)
  })
})
