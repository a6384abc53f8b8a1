/**
 * `runMigrations(pool, { lock: false })`: for a database that runs every client
 * on one backend (the example's embedded PGlite), where the run-level lock's
 * open transaction on a second connection would block the run itself.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPool, MigrationLockTimeoutError, runMigrations } from '../../src/index.ts'
import { MIGRATION_LOCK_KEY } from '../../src/migrations/migration-lock.ts'
import { createEmptyDatabase, type EmptyDatabase } from '../package/support.ts'

describe('runMigrations lock option', () => {
  let database: EmptyDatabase
  beforeAll(async () => {
    database = await createEmptyDatabase()
  })
  afterAll(async () => {
    await database?.drop()
  })

  it('with the run-level lock held elsewhere: the default waits (times out), lock: false applies', async () => {
    const holder = new pg.Client({ connectionString: database.url })
    await holder.connect()
    const pool = createPool({ connectionString: database.url, max: 1 })
    try {
      await holder.query('BEGIN')
      const { rows } = await holder.query(
        `SELECT pg_try_advisory_xact_lock(${MIGRATION_LOCK_KEY}::bigint) AS locked`,
      )
      expect(rows[0].locked).toBe(true)

      await expect(runMigrations(pool, { lockTimeoutMs: 300 })).rejects.toBeInstanceOf(
        MigrationLockTimeoutError,
      )
      const { rows: before } = await holder.query("SELECT to_regclass('users') AS t")
      expect(before[0].t).toBeNull()

      const { applied } = await runMigrations(pool, { lock: false })
      expect(applied.length).toBeGreaterThan(0)
      const { rows: after } = await holder.query("SELECT to_regclass('users') AS t")
      expect(after[0].t).toBe('users')
      expect((await runMigrations(pool, { lock: false })).applied).toEqual([])
    } finally {
      await holder.query('ROLLBACK').catch(() => {})
      await holder.end()
      await pool.end()
    }
  }, 120_000)
})
