import { readdir } from 'node:fs/promises'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  defaultMigrationsDirectory,
  migrationStatus,
  runMigrations,
} from '../../src/migrations/index.ts'
import { createFreshDatabase, type FreshDatabase } from './fixtures/database.ts'

describe("the package's own migrations/", () => {
  let db: FreshDatabase
  beforeEach(async () => {
    db = await createFreshDatabase()
  })
  afterEach(async () => {
    await db.drop()
  })

  it('apply cleanly to a fresh database (default directory), then are up to date', async () => {
    const files = (await readdir(defaultMigrationsDirectory())).filter((n) => n.endsWith('.sql'))
    const pool = db.pool()
    const { applied } = await runMigrations(pool)
    expect(applied.map((m) => m.file)).toEqual([...files].sort())
    expect((await runMigrations(pool)).applied).toEqual([])
    const status = await migrationStatus(pool)
    expect(status.map((m) => m.state)).toEqual(files.map(() => 'applied'))
    expect(await db.query('SELECT count(*)::int AS n FROM public.guildstore_migrations')).toEqual([
      { n: files.length },
    ])
  })
})
