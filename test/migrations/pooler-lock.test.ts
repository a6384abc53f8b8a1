/**
 * The migration lock behind a transaction-mode pooler (PgBouncer, `pool_mode =
 * transaction`): concurrent runners apply each file once and leave no lock behind, and a
 * runner killed while it holds the lock does not leave the lock on a pooled server
 * connection. (0.1.0's session-level lock failed both: duplicate-object errors from
 * concurrent runners, and a lock left held on a server connection.) The full PgBouncer
 * suite is test/pooler/.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { runMigrations } from '../../src/index.ts'
import { MIGRATION_LOCK_KEY } from '../../src/migrations/index.ts'
import { testDatabaseUrl } from '../support/env.ts'
import { type OwnPgBouncer, startPgBouncer } from '../support/pgbouncer.ts'
import { until as untilTrue } from '../support/race.ts'
import {
  createFreshDatabase,
  emptyDir,
  type FreshDatabase,
  fixtureDir,
} from './fixtures/database.ts'

const bin = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url))
let bouncer: OwnPgBouncer

beforeAll(async () => {
  const upstream = new URL(testDatabaseUrl())
  bouncer = await startPgBouncer(
    { host: upstream.hostname, port: Number(upstream.port || 5432) },
    { poolSize: 3 },
  )
}, 60_000)
afterAll(async () => {
  await bouncer?.destroy()
})

const advisoryLocks = (db: FreshDatabase, extra = '') =>
  db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_locks
      WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) ${extra}`,
  )

async function until(check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  for (const started = Date.now(); Date.now() - started < ms; ) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error('condition not reached')
}

describe('the migration lock through PgBouncer in transaction mode', () => {
  let db: FreshDatabase
  beforeEach(async () => {
    db = await createFreshDatabase()
  })
  afterEach(async () => {
    await bouncer.admin(`KILL ${db.name}`).catch(() => {})
    await db.drop()
  })

  it('six runners held at the run lock together (3 server connections) apply every file of both sets once and leave no lock', async () => {
    // The pooler-proof way to install into a schema (docs/host-database.md): the server's
    // own search_path, so guildstore's no-transaction file (0003), whose session SET may
    // reach another server connection, finds its tables too. (Host files run with the
    // connection's search_path, so the fixture's tables land in chat as well.)
    await db.query(`ALTER DATABASE "${db.name}" SET search_path = chat, public`)
    const pools = Array.from({ length: 6 }, () => {
      const p = new pg.Pool({ connectionString: bouncer.urlOf(db.name), max: 2 })
      p.on('error', () => {})
      return p
    })
    // Runners poll the run lock with a try-lock (no lock waiter to count): a
    // holder on a direct connection keeps it until every runner has logged
    // that it waits, then lets them go together.
    const waiting = 'waiting for the migration lock held by another runner'
    const logs = pools.map(() => [] as string[])
    const holder = new pg.Client({ connectionString: db.url })
    await holder.connect()
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY])
      const pending = Promise.allSettled(
        pools.map((p, i) =>
          runMigrations(p, {
            schema: 'chat',
            hostDirectory: fixtureDir('basic'),
            logger: { info: (msg) => logs[i]!.push(msg) },
          }),
        ),
      )
      await untilTrue(() => logs.every((l) => l.includes(waiting)), 'six waiting runners', 60_000)
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY])
      const results = (await pending).map((r) => {
        if (r.status === 'rejected') throw r.reason
        return r.value
      })
      expect(logs.filter((l) => l.includes(waiting))).toHaveLength(6)
      const applied = results.flatMap((r) => r.applied.map((m) => `${m.set}/${m.file}`))
      expect(new Set(applied).size).toBe(applied.length)
      expect(applied.filter((f) => f.startsWith('host/')).sort()).toEqual([
        'host/0001_create_widgets.sql',
        'host/0002_add_widget_color.sql',
        'host/0010_widgets_label_index.sql',
      ])
      expect(
        await db.query(
          'SELECT count(*)::int AS n FROM chat.guildstore_migrations GROUP BY set_name, version HAVING count(*) > 1',
        ),
      ).toEqual([])
      expect(await db.query('SELECT count(*)::int AS n FROM chat.run_log')).toEqual([{ n: 2 }])
      expect(await advisoryLocks(db)).toEqual([{ n: 0 }])
    } finally {
      await holder.end().catch(() => {})
      await Promise.all(pools.map((p) => p.end()))
    }
  }, 120_000)

  it('a runner killed while holding the lock leaves no lock on the pooled server connections; the next run completes', async () => {
    const host = await emptyDir()
    const barrier = new pg.Client({ connectionString: db.url })
    await barrier.connect()
    try {
      await barrier.query('SELECT pg_advisory_lock(424242)')
      await writeFile(
        join(host.dir, '0001_barrier.sql'),
        'SELECT pg_advisory_xact_lock(424242);\nCREATE TABLE after_barrier (id int);\n',
      )
      const child = spawn(
        process.execPath,
        [bin, 'migrate', '--database-url', bouncer.urlOf(db.name), '--dir', host.dir],
        { stdio: 'ignore' },
      )
      const exited = once(child, 'exit')
      // The runner holds the run lock and waits at the barrier inside the host file.
      await until(
        async () => (await advisoryLocks(db, 'AND NOT granted AND objid = 424242'))[0]!.n === 1,
      )
      child.kill('SIGKILL')
      await exited
      // PgBouncer ends the dead client's server-side transactions: the run lock goes at once
      // (a session lock would have stayed on the server connection for the next client).
      await until(
        async () =>
          (
            await advisoryLocks(
              db,
              `AND granted AND objid = ${BigInt('7454980672444396655') & 0xffffffffn}`,
            )
          )[0]!.n === 0,
      )
      const next = new pg.Pool({ connectionString: bouncer.urlOf(db.name), max: 2 })
      next.on('error', () => {})
      try {
        const rerun = runMigrations(next, { hostDirectory: host.dir })
        // The dead runner's file is still blocked in its own transaction: the rerun waits
        // for it (per-file lock), then applies the file itself, once.
        await until(
          async () => (await advisoryLocks(db, 'AND NOT granted AND objid <> 424242'))[0]!.n >= 1,
        )
        await barrier.query('SELECT pg_advisory_unlock(424242)')
        const { applied } = await rerun
        expect(applied.filter((m) => m.set === 'host').map((m) => m.file)).toEqual([
          '0001_barrier.sql',
        ])
        expect(
          await db.query("SELECT to_regclass('public.after_barrier') IS NOT NULL AS ok"),
        ).toEqual([{ ok: true }])
      } finally {
        await next.end()
      }
      expect(await advisoryLocks(db)).toEqual([{ n: 0 }])
    } finally {
      await barrier.end().catch(() => {})
      await host.remove()
    }
  }, 120_000)
})
