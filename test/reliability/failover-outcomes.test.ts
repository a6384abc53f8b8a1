/**
 * Outcomes a caller can act on when the server dies (issue 26), on a
 * PostgreSQL server of this file's own that the tests kill:
 * - a connection lost before the commit is a `ConnectionLostError`
 *   (`retryable: true`) and nothing of the call was written;
 * - a connection lost while the write commits — `COMMIT` of a transaction, or
 *   a write that is its own transaction — is an `UnknownOutcomeError`
 *   (`retryable: false`). To catch a commit in flight deterministically, the
 *   server waits for a synchronous standby that does not exist
 *   (`synchronous_standby_names`): the commit record is flushed locally, then
 *   the backend waits; killing it then shows why the outcome is unknown — the
 *   write did commit.
 * - a call while the server is down fails before anything is sent:
 *   `DatabaseUnavailableError`, retryable, never an unknown outcome.
 */
import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mapCommitError } from '../../src/errors/map-database-error.ts'
import {
  ConnectionLostError,
  createDb,
  createPool,
  createUser,
  DatabaseUnavailableError,
  type DB,
  findUserByUsername,
  mapDatabaseError,
  newId,
  Permissions,
  runMigrations,
  sendMessage,
  UnknownOutcomeError,
} from '../../src/index.ts'
import { makeGuildWithMember } from '../support/factories.ts'
import { sleep, waitFor } from './support/ports.ts'
import { createPrivatePostgres, type PrivatePostgres } from './support/private-postgres.ts'

let server: PrivatePostgres
const opened: Kysely<DB>[] = []

async function admin<R extends pg.QueryResultRow>(text: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString: server.url })
  // The server is cut off on purpose in this file: a connection lost between
  // queries emits 'error', which must not become an uncaught exception.
  client.on('error', () => {})
  await client.connect()
  try {
    return (await client.query<R>(text, values)).rows
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * Waits until the postmaster has reaped a killed backend. Only then does it
 * start its crash restart, so a `serving()` check before that could succeed
 * and the next call meet "the database system is in recovery mode".
 */
async function reaped(pid: number): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      process.kill(pid, 0)
    } catch {
      return
    }
    if (Date.now() > deadline) throw new Error(`backend ${pid} was not reaped within 30 s`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Commits wait for a synchronous standby that never comes: each hangs after its local flush. */
async function holdCommits(on: boolean) {
  await admin(
    on
      ? "ALTER SYSTEM SET synchronous_standby_names = 'nobody'"
      : 'ALTER SYSTEM RESET synchronous_standby_names',
  )
  await admin('SELECT pg_reload_conf()')
}

/** The pid of the backend of `app` waiting for the synchronous standby. */
async function waitingCommit(app: string): Promise<number> {
  let pid = 0
  await waitFor(async () => {
    const rows = await admin<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'SyncRep'",
      [app],
    )
    pid = rows[0]?.pid ?? 0
    return pid > 0
  }, 20_000)
  return pid
}

/** Waits until the server accepts connections again (after a crash restart). */
const serving = () =>
  waitFor(
    async () =>
      admin('SELECT 1').then(
        () => true,
        () => false,
      ),
    30_000,
    50,
  )

function dbFor(app: string, options: { log?: boolean } = {}) {
  const db = createDb(
    createPool({ connectionString: server.url, max: 2, application_name: app }),
    options.log ? { log: () => {} } : {},
  )
  opened.push(db)
  return db
}

const username = () => `o_${newId().replaceAll('-', '').slice(-12)}`
const exists = async (name: string) =>
  (await admin('SELECT 1 FROM users WHERE username = $1', [name])).length === 1

beforeAll(async () => {
  server = await createPrivatePostgres()
  await server.start()
  const pool = new pg.Pool({ connectionString: server.url, max: 1 })
  pool.on('error', () => {})
  try {
    await runMigrations(pool)
  } finally {
    await pool.end()
  }
}, 240_000)

afterAll(async () => {
  for (const db of opened) await db.destroy().catch(() => {})
  await server?.destroy()
}, 90_000)

describe('outcomes of a lost connection', () => {
  it('a write cut off while committing is UnknownOutcomeError (direct path, executor path, COMMIT of a transaction) — and it did commit', async () => {
    const cases: Array<[string, (name: string) => Promise<unknown>]> = [
      [
        'autocommit write, direct path',
        (name) => createUser(dbFor('gs-o-direct'), { username: name }),
      ],
      [
        'autocommit write, executor path',
        (name) => createUser(dbFor('gs-o-executor', { log: true }), { username: name }),
      ],
      [
        'COMMIT of a transaction',
        (name) =>
          dbFor('gs-o-trx')
            .transaction()
            .execute(async (trx) => {
              await createUser(trx, { username: `${name}_x` })
              return createUser(trx, { username: name })
            }),
      ],
    ]
    const apps = ['gs-o-direct', 'gs-o-executor', 'gs-o-trx']
    for (const [i, [label, call]] of cases.entries()) {
      const name = username()
      await holdCommits(true)
      try {
        const outcome = call(name).then(
          () => 'acknowledged',
          (error: unknown) => error,
        )
        const pid = await waitingCommit(apps[i] as string)
        process.kill(pid, 'SIGKILL') // the backend dies: the server restarts every session
        const error = await outcome
        await reaped(pid)
        expect(error, label).toBeInstanceOf(UnknownOutcomeError)
        expect((error as UnknownOutcomeError).retryable).toBe(false)
        expect((error as Error).message).not.toContain(name)
      } finally {
        await serving()
        await holdCommits(false)
      }
      // The commit record was flushed before the wait: the "failed" write is there.
      expect(await exists(name), label).toBe(true)
    }
  }, 120_000)

  it('an UnknownOutcomeError of a send with a nonce is safe to retry: the retry returns the message that did commit, once', async () => {
    const db = dbFor('gs-o-nonce')
    const w = await makeGuildWithMember(
      db,
      Permissions.VIEW_CHANNEL | Permissions.SEND_MESSAGES | Permissions.READ_MESSAGE_HISTORY,
    )
    const input = {
      channel_id: w.channel.id,
      author_id: w.user.id,
      content: 'exactly once',
      nonce: `k${newId().slice(-12)}`,
    }
    await holdCommits(true)
    let error: unknown
    try {
      const outcome = sendMessage(db, input).then(
        () => 'acknowledged',
        (e: unknown) => e,
      )
      const pid = await waitingCommit('gs-o-nonce')
      process.kill(pid, 'SIGKILL')
      error = await outcome
      await reaped(pid)
    } finally {
      await serving()
      await holdCommits(false)
    }
    expect(error).toBeInstanceOf(UnknownOutcomeError)
    const retried = await sendMessage(db, input)
    const retriedAgain = await sendMessage(db, input)
    expect(retriedAgain).toEqual(retried)
    const rows = await admin<{ id: string }>('SELECT id FROM messages WHERE nonce = $1', [
      input.nonce,
    ])
    expect(rows.map((r) => r.id)).toEqual([retried.id])
  }, 120_000)

  it('a connection lost before the commit is ConnectionLostError (retryable) and nothing was written; a call while the server is down is DatabaseUnavailableError', async () => {
    const db = dbFor('gs-o-lost')
    const name = username()
    const outcome = db
      .transaction()
      .execute(async (trx) => {
        await createUser(trx, { username: name })
        await server.stop('immediate') // killed between two statements of the transaction
        await createUser(trx, { username: `${name}_2` })
        return 'committed'
      })
      .then(
        (value) => value,
        (error: unknown) => error,
      )
    const error = await outcome
    expect(error).toBeInstanceOf(ConnectionLostError)
    expect(error).toBeInstanceOf(DatabaseUnavailableError)
    expect((error as ConnectionLostError).retryable).toBe(true)
    expect((error as ConnectionLostError).code).toBe('CONNECTION_LOST')
    // down: nothing is sent, so even a write is plainly retryable
    const down = await createUser(db, { username: username() }).catch((e: unknown) => e)
    expect(down).toBeInstanceOf(DatabaseUnavailableError)
    expect(down).not.toBeInstanceOf(UnknownOutcomeError)
    expect((down as DatabaseUnavailableError).retryable).toBe(true)
    await server.start()
    await sleep(50)
    expect(await exists(name)).toBe(false)
    // a read in flight when the server is killed: retryable
    const inFlight = sql`select pg_sleep(30)`.execute(db).then(
      () => 'finished',
      (e: unknown) => mapDatabaseError(e),
    )
    await waitFor(
      async () =>
        (
          await admin(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'gs-o-lost' AND state = 'active'",
          )
        ).length === 1,
      20_000,
    )
    await server.stop('immediate')
    const lost = await inFlight
    expect(lost).toBeInstanceOf(ConnectionLostError)
    expect((lost as ConnectionLostError).retryable).toBe(true)
    await server.start()
    // the same db serves again, and the retried call succeeds
    expect((await createUser(db, { username: name })).username).toBe(name)
    expect((await findUserByUsername(db, name))?.username).toBe(name)
  }, 120_000)
})

describe('the mapping of lost connections', () => {
  it('a broken connection is ConnectionLostError; during a commit UnknownOutcomeError, unless pg never sent it', () => {
    const terminated = new Error('Connection terminated unexpectedly')
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
    const admin = Object.assign(new Error('terminating connection due to administrator command'), {
      code: '57P01',
    })
    for (const error of [terminated, reset, admin]) {
      const mapped = mapDatabaseError(error)
      expect(mapped).toBeInstanceOf(ConnectionLostError)
      expect((mapped as ConnectionLostError).retryable).toBe(true)
      expect(mapCommitError(error)).toBeInstanceOf(UnknownOutcomeError)
    }
    // never sent: the client was already known broken
    const closed = new Error('Client was closed and is not queryable')
    expect(mapCommitError(closed)).toBeInstanceOf(ConnectionLostError)
    // nothing was sent at all: not a lost connection
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
      code: 'ECONNREFUSED',
    })
    expect(mapCommitError(refused)).toBeInstanceOf(DatabaseUnavailableError)
    expect(mapCommitError(refused)).not.toBeInstanceOf(ConnectionLostError)
    // a server error at COMMIT is known not committed: mapped as usual
    const serialization = Object.assign(new Error('could not serialize access'), { code: '40001' })
    expect(mapCommitError(serialization)).toBeInstanceOf(DatabaseUnavailableError)
    // a standby refusing a write: retryable
    const readOnly = Object.assign(new Error('cannot execute INSERT in a read-only transaction'), {
      code: '25006',
    })
    expect(mapDatabaseError(readOnly)).toMatchObject({ retryable: true, sqlState: '25006' })
  })
})
