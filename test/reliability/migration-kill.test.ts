/**
 * A migration runner killed with SIGKILL in the middle of a migration: the
 * next run waits for the dead runner's lock, completes the work, and nothing
 * half-applied is ever recorded. Also: a runner whose connection is killed
 * while it waits for the lock fails typed instead of crashing the process.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ExitCode } from '../../src/cli/exit-code.ts'
import { DatabaseUnavailableError } from '../../src/errors/index.ts'
import {
  MIGRATION_FILE_LOCK_KEY,
  MIGRATION_LOCK_KEY,
  runMigrations,
} from '../../src/migrations/index.ts'
import { testDatabaseUrl } from '../support/env.ts'
import { until } from '../support/race.ts'
import { sleep, waitFor, watchProcessCrashes } from './support/ports.ts'

const bin = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url))
const fixture = fileURLToPath(new URL('./fixtures/slow-migration', import.meta.url))
const execFileAsync = promisify(execFile)

let admin: pg.Client
let dbClient: pg.Client
let name = ''
let url = ''
const children: ChildProcess[] = []

beforeAll(async () => {
  admin = new pg.Client({ connectionString: testDatabaseUrl(), application_name: 'gs-rel-admin' })
  await admin.connect()
  name = `gs_rel_mig_${randomBytes(6).toString('hex')}`
  await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`)
  const u = new URL(testDatabaseUrl())
  u.pathname = `/${name}`
  url = u.toString()
  dbClient = new pg.Client({ connectionString: url, application_name: 'gs-rel-check' })
  await dbClient.connect()
})

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  await dbClient?.end().catch(() => {})
  if (name) {
    await admin
      .query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(name)} WITH (FORCE)`)
      .catch(() => {})
  }
  await admin?.end()
}, 120_000)

const q = async <R extends pg.QueryResultRow>(text: string, values?: unknown[]) =>
  (await dbClient.query<R>(text, values)).rows

const history = async () =>
  (
    await q<{ exists: boolean }>(
      `SELECT to_regclass('public.guildstore_migrations') IS NOT NULL AS exists`,
    )
  )[0]?.exists
    ? (
        await q<{ version: number }>(
          "SELECT version FROM public.guildstore_migrations WHERE set_name = 'host' ORDER BY version",
        )
      ).map((r) => r.version)
    : []

const tableExists = async (table: string) =>
  (await q<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [table]))[0]?.exists

const cliBackends = async (filter = '') =>
  (
    await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'guildstore-cli' ${filter}`,
      [name],
    )
  ).rows

describe('a migration runner killed with SIGKILL mid-migration', () => {
  it('leaves nothing half-applied recorded; the next run waits for the dead lock holder and completes', async () => {
    const child = spawn(
      process.execPath,
      [bin, 'migrate', '--database-url', url, '--dir', fixture, '--json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    children.push(child)
    const exited = once(child, 'exit')
    // Wait until the runner sits inside 0002's pg_sleep.
    await waitFor(
      async () =>
        (await cliBackends(`AND state = 'active' AND query LIKE '%pg_sleep(20)%'`)).length === 1,
      20_000,
      25,
    )
    child.kill('SIGKILL')
    const [code, signal] = await exited
    expect(code).toBeNull()
    expect(signal).toBe('SIGKILL')

    // Only the completed file is recorded; the killed file's work is invisible.
    expect(await history()).toEqual([1])
    expect(await tableExists('public.rel_alpha')).toBe(true)
    expect(await tableExists('public.rel_beta')).toBe(false)
    expect(await tableExists('public.rel_gamma')).toBe(false)
    expect(await tableExists('public.rel_delta')).toBe(false)
    expect((await q<{ n: number }>('SELECT count(*)::int AS n FROM rel_alpha'))[0]?.n).toBe(0)
    // The dead runner's backend lingers (still sleeping) and still holds its file's lock
    // (the run lock went with its transaction's connection).
    const lingering = await cliBackends(`AND state = 'active'`)
    expect(lingering.length).toBe(1)
    const lockHeld = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
        WHERE l.locktype = 'advisory' AND d.datname = $1 AND l.granted
          AND (l.classid::bigint << 32 | l.objid::bigint) = $2::bigint`,
      [name, MIGRATION_FILE_LOCK_KEY],
    )
    expect(lockHeld.rows[0]?.n).toBe(1)

    // status: the killed file is pending, not applied.
    const status = await execFileAsync(
      process.execPath,
      [bin, 'status', '--database-url', url, '--dir', fixture, '--json'],
      { timeout: 60_000 },
    ).catch((e: { code: number; stdout: string }) => e)
    expect('code' in status ? status.code : 0).toBe(ExitCode.Pending)
    expect(
      JSON.parse(status.stdout)
        .migrations.filter((m: { set: string }) => m.set === 'host')
        .map((m: { version: number; state: string }) => m.state),
    ).toEqual(['applied', 'pending', 'pending'])

    // The next run waits for the dead holder's file lock (not fail): it is
    // seen queued on that lock, having applied nothing, while the lingering
    // backend holds it; once that backend is gone it applies 0002 and 0003.
    const running = execFileAsync(
      process.execPath,
      [bin, 'migrate', '--database-url', url, '--dir', fixture, '--json'],
      { timeout: 90_000 },
    )
    let settled = false
    running
      .finally(() => {
        settled = true
      })
      .catch(() => {}) // the rejection itself surfaces at `await running`
    const fileLockWaiters = async () =>
      (
        await admin.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
            WHERE l.locktype = 'advisory' AND d.datname = $1 AND NOT l.granted
              AND (l.classid::bigint << 32 | l.objid::bigint) = $2::bigint`,
          [name, MIGRATION_FILE_LOCK_KEY],
        )
      ).rows[0]!.n
    await until(
      async () => (await fileLockWaiters()) === 1,
      'the rerun to wait for the file lock',
      60_000,
    )
    expect(settled).toBe(false)
    expect(await history()).toEqual([1])
    expect(await cliBackends(`AND state = 'active' AND query LIKE '%pg_sleep(20)%'`)).toEqual(
      lingering,
    )
    await admin.query('SELECT pg_terminate_backend($1)', [lingering[0]!.pid])
    const rerun = await running
    expect(
      JSON.parse(rerun.stdout)
        .applied.filter((m: { set: string }) => m.set === 'host')
        .map((m: { version: number }) => m.version),
    ).toEqual([2, 3])
    expect(await history()).toEqual([1, 2, 3])
    for (const table of ['rel_beta', 'rel_gamma', 'rel_delta']) {
      expect(await tableExists(`public.${table}`)).toBe(true)
    }
    // 0002's insert happened exactly once.
    expect((await q<{ n: number }>('SELECT count(*)::int AS n FROM rel_alpha'))[0]?.n).toBe(1)
    // And a third run is a no-op.
    const third = await execFileAsync(
      process.execPath,
      [bin, 'migrate', '--database-url', url, '--dir', fixture, '--json'],
      { timeout: 60_000 },
    )
    expect(JSON.parse(third.stdout).applied).toEqual([])
  }, 180_000)

  it('a runner whose connection is killed while it waits for the lock fails typed and never crashes the host', async () => {
    const crashes = watchProcessCrashes()
    const holder = new pg.Client({ connectionString: url, application_name: 'gs-rel-holder' })
    await holder.connect()
    // The pool a host would pass: plain pg.Pool with an idle-error handler, like the CLI's.
    const pool = new pg.Pool({ connectionString: url, max: 1, application_name: 'gs-rel-waiter' })
    pool.on('error', () => {})
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY])
      const lines: string[] = []
      const outcome = runMigrations(pool, {
        directory: fixture,
        logger: { info: (msg) => lines.push(msg) },
      }).then(
        () => undefined,
        (error: unknown) => error,
      )
      // The runner found the lock held (it says so) and polls on: kill its backend now.
      await until(
        () => lines.includes('waiting for the migration lock held by another runner'),
        'the runner to wait for the lock',
      )
      const waiter = await admin.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'gs-rel-waiter'`,
        [name],
      )
      expect(waiter.rows).toHaveLength(1)
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'gs-rel-waiter'`,
        [name],
      )
      const error = await outcome
      await sleep(100)
      expect(crashes.errors).toEqual([])
      expect(error).toBeInstanceOf(DatabaseUnavailableError)
    } finally {
      crashes.stop()
      await holder.end().catch(() => {})
      await pool.end().catch(() => {})
    }
  }, 120_000)
})
