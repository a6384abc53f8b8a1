import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  MIGRATION_LOCK_KEY,
  MigrationLockTimeoutError,
  runMigrations,
} from '../../src/migrations/index.ts'
import { until } from '../support/race.ts'
import { createFreshDatabase, type FreshDatabase, fixtureDir } from './fixtures/database.ts'

const WAITING = 'waiting for the migration lock held by another runner'

describe('concurrent runners', () => {
  let db: FreshDatabase
  beforeEach(async () => {
    db = await createFreshDatabase()
  })
  afterEach(async () => {
    await db.drop()
  })

  it('six runners held at the migration lock together on a fresh database apply each file exactly once', async () => {
    const pools = Array.from({ length: 6 }, () => db.pool())
    // Runners poll the lock with a try-lock (no lock waiter to count): a holder
    // keeps it until every runner has logged that it waits, then lets them go.
    const holder = await db.pool().connect()
    const logs = pools.map(() => [] as string[])
    let results: Awaited<ReturnType<typeof runMigrations>>[]
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY])
      const pending = Promise.allSettled(
        pools.map((pool, i) =>
          runMigrations(pool, {
            directory: fixtureDir('basic'),
            logger: { info: (msg) => logs[i]!.push(msg) },
          }),
        ),
      )
      await until(() => logs.every((l) => l.includes(WAITING)), 'six waiting runners')
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY])
      results = (await pending).map((r) => {
        if (r.status === 'rejected') throw r.reason
        return r.value
      })
    } finally {
      holder.release(true)
    }
    expect(logs.map((l) => l[0])).toEqual(Array(6).fill(WAITING))
    const appliedFiles = results.flatMap((r) => r.applied.map((m) => m.file)).sort()
    expect(appliedFiles).toEqual([
      '0001_create_widgets.sql',
      '0002_add_widget_color.sql',
      '0010_widgets_label_index.sql',
    ])
    expect(
      await db.query(
        'SELECT version, count(*)::int AS n FROM public.guildstore_migrations GROUP BY version ORDER BY version',
      ),
    ).toEqual([
      { version: 1, n: 1 },
      { version: 2, n: 1 },
      { version: 10, n: 1 },
    ])
    // side effects ran once each
    expect(
      await db.query('SELECT file, count(*)::int AS n FROM run_log GROUP BY file ORDER BY file'),
    ).toEqual([
      { file: '0001', n: 1 },
      { file: '0002', n: 1 },
    ])
    // and the lock is free again
    expect(
      await db.query(
        `SELECT count(*)::int AS n FROM pg_locks
         WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      ),
    ).toEqual([{ n: 0 }])
  })

  it('waits for a held lock, gives up after lockTimeoutMs and applies nothing', async () => {
    const holder = await db.pool().connect()
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY])
      const lines: string[] = []
      const started = Date.now()
      const error = await runMigrations(db.pool(), {
        directory: fixtureDir('basic'),
        lockTimeoutMs: 300,
        logger: { info: (msg) => lines.push(msg) },
      }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(MigrationLockTimeoutError)
      expect(Date.now() - started).toBeGreaterThanOrEqual(290)
      expect(lines).toEqual(['waiting for the migration lock held by another runner'])
      expect(await db.query("SELECT to_regclass('public.guildstore_migrations') AS t")).toEqual([
        { t: null },
      ])

      // once released, a waiting runner proceeds
      const waitingLines: string[] = []
      const waiting = runMigrations(db.pool(), {
        directory: fixtureDir('basic'),
        logger: { info: (msg) => waitingLines.push(msg) },
      })
      // It found the lock held (it logs so), and applied nothing while it waited.
      await until(() => waitingLines.includes(WAITING), 'the runner to wait')
      expect(waitingLines).toEqual([WAITING])
      expect(await db.query("SELECT to_regclass('public.guildstore_migrations') AS t")).toEqual([
        { t: null },
      ])
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY])
      expect((await waiting).applied).toHaveLength(3)
    } finally {
      holder.release(true)
    }
  })
})
