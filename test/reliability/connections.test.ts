/**
 * Connection faults on the shared server, confined to this file's own database
 * and pools (each pool has its own application_name, so a kill only hits it):
 * backends terminated while idle, while busy and mid-transaction; pool
 * exhaustion; statement timeouts.
 */
import { randomBytes } from 'node:crypto'
import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { DB } from '../../codegen/db.ts'
import {
  DatabaseUnavailableError,
  GuildstoreError,
  UnknownOutcomeError,
} from '../../src/errors/index.ts'
import { newId } from '../../src/ids/new-id.ts'
import { createPool } from '../../src/pool/create-pool.ts'
import { createDb } from '../../src/sql/create-db.ts'
import { inTransaction, mapErrors } from '../../src/sql/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { testDatabaseUrl } from '../support/env.ts'
import { until, waitForLockWaiters } from '../support/race.ts'
import { sleep, waitFor, watchProcessCrashes } from './support/ports.ts'

const t = useTestDatabase()

let admin: pg.Client
const opened: Kysely<DB>[] = []
let faults = 0

beforeAll(async () => {
  admin = new pg.Client({ connectionString: testDatabaseUrl(), application_name: 'gs-rel-admin' })
  await admin.connect()
})
afterAll(async () => {
  await Promise.all(opened.map((db) => db.destroy().catch(() => {})))
  await admin?.end()
  // A figure for the report: faults injected in this file, all survived.
  console.info(`[reliability] connections: ${faults} backend kills/timeouts injected and survived`)
})

/** A pool + Kysely on this file's database with an application_name of its own. */
function ownDb(options: Parameters<typeof createPool>[0] = {}) {
  const applicationName = `gs-rel-${randomBytes(4).toString('hex')}`
  const idleErrors: Error[] = []
  const pool = createPool({
    connectionString: t.url,
    application_name: applicationName,
    max: 3,
    onIdleError: (error) => idleErrors.push(error),
    ...options,
  })
  const db = createDb(pool)
  opened.push(db)
  return { pool, db, applicationName, idleErrors }
}

/** Terminates every backend of `applicationName` in this file's database; returns how many. */
async function terminate(applicationName: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n
       FROM pg_stat_activity
      WHERE application_name = $1 AND datname = $2 AND pid <> pg_backend_pid()`,
    [applicationName, t.name],
  )
  const n = rows[0]?.n ?? 0
  faults += n
  return n
}

async function backends(applicationName: string, state?: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE application_name = $1 AND datname = $2 AND ($3::text IS NULL OR state = $3)`,
    [applicationName, t.name, state ?? null],
  )
  return rows[0]?.n ?? 0
}

const selectOne = (db: Kysely<DB>) =>
  mapErrors(sql<{ one: number }>`select 1 as one`.execute(db)).then((r) => r.rows[0]?.one)

let crashes: ReturnType<typeof watchProcessCrashes>
afterEach(() => {
  crashes?.stop()
})

describe('backends terminated by the server', () => {
  it('idle connections killed: the pool drops them, reports them, and the next calls succeed', async () => {
    crashes = watchProcessCrashes()
    const { pool, db, applicationName, idleErrors } = ownDb({ max: 3 })
    // Open three connections and leave them idle in the pool.
    await Promise.all([1, 2, 3].map(() => mapErrors(sql`select pg_sleep(0.05)`.execute(db))))
    expect(pool.idleCount).toBe(3)
    expect(await terminate(applicationName)).toBe(3)
    await waitFor(() => pool.totalCount === 0, 30_000)
    expect(idleErrors.length).toBe(3)
    // The pool makes new connections by itself: no new pool, no manual reset.
    for (let i = 0; i < 5; i++) expect(await selectOne(db)).toBe(1)
    expect(await backends(applicationName)).toBeGreaterThan(0)
    expect(crashes.errors).toEqual([])
  })

  it('a query in flight when its backend is killed fails with DatabaseUnavailableError; the pool recovers', async () => {
    crashes = watchProcessCrashes()
    const { db, applicationName } = ownDb({ max: 2 })
    // A statement far longer than the test may take: finishing means the kill failed.
    const inFlight = mapErrors(sql`select pg_sleep(600)`.execute(db)).then(
      () => undefined,
      (error: unknown) => error,
    )
    await waitFor(async () => (await backends(applicationName, 'active')) === 1, 30_000)
    expect(await terminate(applicationName)).toBe(1)
    const error = await inFlight
    expect(error).toBeInstanceOf(DatabaseUnavailableError)
    expect((error as DatabaseUnavailableError).retryable).toBe(true)
    // The socket's end arrives after the query failed: give it time to surface.
    await sleep(100)
    for (let i = 0; i < 5; i++) expect(await selectOne(db)).toBe(1)
    expect(crashes.errors).toEqual([])
  })

  it('a connection killed mid-transaction (between statements) fails the transaction typed, leaves no partial write, never crashes', async () => {
    crashes = watchProcessCrashes()
    const { db, applicationName } = ownDb({ max: 2 })
    const id = newId()
    const username = `rel_${randomBytes(5).toString('hex')}`
    const outcome = await inTransaction(db, async (trx) => {
      await trx.insertInto('users').values({ id, username }).execute()
      // The host does some async work between two statements; the backend dies meanwhile.
      expect(await terminate(applicationName)).toBe(1)
      await sleep(200)
      await trx
        .insertInto('users')
        .values({ username: `${username}_2` })
        .execute()
      return 'committed'
    }).then(
      (value) => value,
      (error: unknown) => error,
    )
    expect(outcome).toBeInstanceOf(DatabaseUnavailableError)
    await sleep(100)
    expect(crashes.errors).toEqual([])
    const rows = await t.db.selectFrom('users').select('id').where('id', '=', id).execute()
    expect(rows).toEqual([])
    expect(await selectOne(db)).toBe(1)
  })

  it('repeated kills under a concurrent query load: each kill hits the 4 queries in flight, every failure typed, every call after a kill round succeeds', async () => {
    crashes = watchProcessCrashes()
    const { db, applicationName } = ownDb({ max: 4 })
    const rounds = 8
    const key = 7_357_001
    let failures = 0
    let successes = 0
    const errors: unknown[] = []
    for (let round = 0; round < rounds; round++) {
      // A barrier holds an advisory lock the load's queries queue on: when the
      // kill comes, all 4 of the pool's connections are provably mid-query.
      const barrier = await t.pool.connect()
      let roundFailures = 0
      try {
        await barrier.query('begin')
        await barrier.query('select pg_advisory_xact_lock($1)', [key])
        const load = Array.from({ length: 12 }, () =>
          mapErrors(sql`select pg_advisory_xact_lock_shared(${key})`.execute(db)).then(
            () => {
              successes++
            },
            (error: unknown) => {
              failures++
              roundFailures++
              errors.push(error)
            },
          ),
        )
        expect(await waitForLockWaiters(barrier, 4)).toBe(4)
        expect(await terminate(applicationName)).toBe(4)
        // The 4 killed queries fail; the 8 queued ones go on new connections.
        await until(() => roundFailures >= 4, 'the killed queries to fail')
        await barrier.query('commit')
        await Promise.all(load)
      } finally {
        barrier.release()
      }
      expect(roundFailures).toBeGreaterThanOrEqual(4)
      // After every round the same pool serves again.
      expect(await selectOne(db)).toBe(1)
    }
    expect(successes + failures).toBe(rounds * 12)
    expect(failures).toBeGreaterThanOrEqual(rounds * 4)
    expect(successes).toBeGreaterThan(0)
    // A killed autocommit statement that is not a plain read (this one takes
    // a lock) may have done its work before the kill: UnknownOutcomeError; a
    // read, or one that never ran, is a retryable DatabaseUnavailableError.
    for (const error of errors) {
      expect(
        error instanceof DatabaseUnavailableError || error instanceof UnknownOutcomeError,
        String(error),
      ).toBe(true)
    }
    expect(crashes.errors).toEqual([])
  })
})

describe('pool exhaustion', () => {
  it('acquiring past connectionTimeoutMillis fails with DatabaseUnavailableError instead of hanging', async () => {
    const { db } = ownDb({ max: 1, connectionTimeoutMillis: 300 })
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let acquired!: () => void
    const isAcquired = new Promise<void>((resolve) => {
      acquired = resolve
    })
    const holder = db.transaction().execute(async (trx) => {
      await sql`select 1`.execute(trx)
      acquired()
      await held
    })
    await isAcquired
    const started = Date.now()
    const error = await selectOne(db).then(
      () => undefined,
      (e: unknown) => e,
    )
    const waited = Date.now() - started
    expect(error).toBeInstanceOf(DatabaseUnavailableError)
    expect((error as Error).message).toMatch(/timed out acquiring/)
    expect(waited).toBeGreaterThanOrEqual(250)
    // "Instead of hanging": bounded, with room for a loaded machine's timers.
    expect(waited).toBeLessThan(20_000)
    faults++
    release()
    await holder
    expect(await selectOne(db)).toBe(1)
  })

  it('many waiters on an exhausted pool all fail typed, none hang, and the pool serves afterwards', async () => {
    const { db } = ownDb({ max: 1, connectionTimeoutMillis: 300 })
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let acquired!: () => void
    const isAcquired = new Promise<void>((resolve) => {
      acquired = resolve
    })
    const holder = mapErrors(sql`select pg_sleep(0.01)`.execute(db)).then(() =>
      db.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx)
        acquired()
        await held
      }),
    )
    // The only connection is held (not "probably held after 100 ms"): every waiter
    // below must time out, however slow the machine.
    await isAcquired
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => selectOne(db)))
    for (const r of results) {
      expect(r.status).toBe('rejected')
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(DatabaseUnavailableError)
    }
    faults += results.length
    release()
    await holder
    expect(await selectOne(db)).toBe(1)
  })
})

describe('statement timeout', () => {
  it('statement_timeout cancels a slow statement: DatabaseUnavailableError with sqlState 57014', async () => {
    const { db } = ownDb({ statement_timeout: 100 })
    const started = Date.now()
    // 57014 itself says it was cancelled; the sleep is far longer than any slow machine.
    const error = await mapErrors(sql`select pg_sleep(60)`.execute(db)).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(Date.now() - started).toBeLessThan(30_000)
    expect(error).toBeInstanceOf(DatabaseUnavailableError)
    expect(error).toBeInstanceOf(GuildstoreError)
    expect((error as DatabaseUnavailableError).sqlState).toBe('57014')
    faults++
    // The connection is still good after a cancelled statement.
    expect(await selectOne(db)).toBe(1)
  })

  it('a statement timeout inside a transaction rolls the whole transaction back', async () => {
    const { db } = ownDb({ statement_timeout: 100 })
    const id = newId()
    const error = await inTransaction(db, async (trx) => {
      await trx
        .insertInto('users')
        .values({ id, username: `rel_${randomBytes(5).toString('hex')}` })
        .execute()
      await sql`select pg_sleep(60)`.execute(trx)
    }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(DatabaseUnavailableError)
    expect((error as DatabaseUnavailableError).sqlState).toBe('57014')
    faults++
    expect(await t.db.selectFrom('users').select('id').where('id', '=', id).execute()).toEqual([])
  })
})
