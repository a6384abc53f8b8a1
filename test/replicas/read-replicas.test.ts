/**
 * Read replicas on a real streaming replica of a private cluster started by
 * this file (initdb, pg_basebackup -R -X stream, a second port): reads of the
 * repository API go to the replica, writes and transactions to the primary;
 * after a write through a db its reads never see older data (replay paused:
 * they wait, then fall back to the primary); a token carries that to another
 * db; a replica lagging beyond the bound or down is skipped, and its errors
 * never reach the caller.
 */
import type { Kysely } from 'kysely'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  consistencyToken,
  createDb,
  createPool,
  createUser,
  type DB,
  findUserById,
  findUserByUsername,
  InvalidInputError,
  listEvents,
  newId,
  PermissionDeniedError,
  Permissions,
  readChannelMessages,
  replicaStats,
  runMigrations,
  updateRole,
  updateUser,
  withConsistencyToken,
} from '../../src/index.ts'
import { makeGuildWithMember, makeMessage } from '../support/factories.ts'
import { waitFor } from '../support/local-servers.ts'
import { type ReplicatedPair, startReplicatedPair } from '../support/private-replica.ts'

let pair: ReplicatedPair
let primaryPool: pg.Pool
let replicaPool: pg.Pool
/** Writes that do not go through any db under test ("another service"). */
let outside: Kysely<DB>
const dbs: Kysely<DB>[] = []
const { VIEW_CHANNEL, READ_MESSAGE_HISTORY } = Permissions

const pauseReplay = () => pair.query(pair.replica, 'SELECT pg_wal_replay_pause()')
const resumeReplay = () => pair.query(pair.replica, 'SELECT pg_wal_replay_resume()')

/** A db with the replica; it shares the pools (destroying it would end them). */
function replicated(options: { maxLagMs?: number; readYourWritesTimeoutMs?: number } = {}) {
  const db = createDb(primaryPool, {
    replicas: [replicaPool],
    replicaMaxLagMs: options.maxLagMs ?? 60_000,
    readYourWritesTimeoutMs: options.readYourWritesTimeoutMs ?? 300,
    replicaCheckIntervalMs: 50,
  })
  dbs.push(db)
  return db
}

const username = () => `r_${newId().replaceAll('-', '').slice(-12)}`

beforeAll(async () => {
  pair = await startReplicatedPair()
  primaryPool = createPool({ connectionString: pair.primary.urlOf('postgres'), max: 8 })
  replicaPool = createPool({
    connectionString: pair.replica.urlOf('postgres'),
    max: 8,
    connectionTimeoutMillis: 2000,
  })
  await runMigrations(primaryPool)
  outside = createDb(createPool({ connectionString: pair.primary.urlOf('postgres'), max: 2 }))
  await pair.waitCaughtUp()
}, 120_000)

afterAll(async () => {
  await resumeReplay().catch(() => {})
  await outside?.destroy()
  await primaryPool?.end()
  await replicaPool?.end().catch(() => {})
  await pair?.destroy()
})

describe('read replicas', () => {
  it('reads go to the replica (a write made elsewhere is not there while replay is paused)', async () => {
    const db = replicated()
    expect(await findUserByUsername(db, 'nobody')).toBeUndefined() // warms the router
    await pauseReplay()
    try {
      const elsewhere = await createUser(outside, { username: username() })
      const before = replicaStats(db)!.replicaReads
      // not written through `db`: the replica (replay paused) does not have it yet
      expect(await findUserById(db, elsewhere.id)).toBeUndefined()
      expect(replicaStats(db)!.replicaReads).toBe(before + 1)
      // the primary has it: a transaction reads from the primary
      const inTrx = await db.transaction().execute((trx) => findUserById(trx, elsewhere.id))
      expect(inTrx?.id).toBe(elsewhere.id)
    } finally {
      await resumeReplay()
    }
  })

  it('read-your-writes: after its own write a db never reads older data; it waits, then falls back', async () => {
    const db = replicated({ readYourWritesTimeoutMs: 200 })
    await findUserByUsername(db, 'nobody')
    await pauseReplay()
    let created: { id: string; username: string }
    try {
      created = await createUser(db, { username: username() })
      const stats = replicaStats(db)!
      const fellBack = stats.primaryReads.notReplayed
      // replay is paused: the replica cannot have it, so the read goes to the primary
      expect((await findUserById(db, created.id))?.id).toBe(created.id)
      expect(replicaStats(db)!.primaryReads.notReplayed).toBe(fellBack + 1)
      const updated = await updateUser(db, created.id, { display_name: 'after' })
      expect(updated?.display_name).toBe('after')
      expect((await findUserById(db, created.id))?.display_name).toBe('after')
    } finally {
      await resumeReplay()
    }
    // replay resumed: once the replica has caught up it serves the reads again
    await pair.waitCaughtUp()
    const before = replicaStats(db)!.replicaReads
    expect((await findUserById(db, created.id))?.display_name).toBe('after')
    expect(replicaStats(db)!.replicaReads).toBe(before + 1)
  })

  it('a token carries read-your-writes to another db (another process)', async () => {
    const writer = replicated()
    const reader = replicated({ readYourWritesTimeoutMs: 100 })
    await findUserByUsername(reader, 'nobody')
    expect(consistencyToken(reader)).toBeUndefined()
    await pauseReplay()
    try {
      const user = await createUser(writer, { username: username() })
      const token = consistencyToken(writer)
      expect(token).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
      // without the token the other db may read the (stale) replica
      expect(await findUserById(reader, user.id)).toBeUndefined()
      // with it, never older than the write
      const session = withConsistencyToken(reader, token)
      expect((await findUserById(session, user.id))?.id).toBe(user.id)
      expect(consistencyToken(session)).toBe(token)
      // a bad token is refused before any query
      for (const bad of ['', 'x', '0/', '1/2/3', 'G/1', 42]) {
        expect(() => withConsistencyToken(reader, bad as string)).toThrow(InvalidInputError)
      }
      // no token: the same as the db itself
      expect(consistencyToken(withConsistencyToken(reader, undefined))).toBeUndefined()
    } finally {
      await resumeReplay()
    }
  })

  it('the same through Kysely’s executor (a log hook) and for writes in a transaction', async () => {
    const logged: string[] = []
    const db = createDb(primaryPool, {
      replicas: [replicaPool],
      replicaMaxLagMs: 60_000,
      readYourWritesTimeoutMs: 100,
      replicaCheckIntervalMs: 50,
      log: (entry) => logged.push(entry.sql),
    })
    dbs.push(db)
    await findUserByUsername(db, 'nobody')
    await pauseReplay()
    try {
      const elsewhere = await createUser(outside, { username: username() })
      // a query builder read and a repository read both go to the (stale) replica
      const viaBuilder = await db
        .selectFrom('users')
        .select('id')
        .where('id', '=', elsewhere.id)
        .executeTakeFirst()
      expect(viaBuilder).toBeUndefined()
      expect(await findUserById(db, elsewhere.id)).toBeUndefined()
      expect(logged.length).toBeGreaterThan(0) // really the executor path
      // a write committed in a transaction raises the floor: later reads see it
      const mine = await db
        .transaction()
        .execute((trx) => createUser(trx, { username: username() }))
      expect((await findUserById(db, mine.id))?.id).toBe(mine.id)
      expect(
        (await db.selectFrom('users').select('id').where('id', '=', mine.id).executeTakeFirst())
          ?.id,
      ).toBe(mine.id)
      // and a plain write through the executor path too
      const updated = await updateUser(db, elsewhere.id, { display_name: 'executor' })
      expect(updated?.display_name).toBe('executor')
      expect((await findUserById(db, elsewhere.id))?.display_name).toBe('executor')
    } finally {
      await resumeReplay()
    }
  })

  it('readChannelMessages: stored permissions are read on the replica; a miss runs the full rule on the primary', async () => {
    // The world is written by another service and replicated first.
    const w = await makeGuildWithMember(outside, VIEW_CHANNEL | READ_MESSAGE_HISTORY)
    const message = await makeMessage(outside, w.channel.id, w.owner.id)
    await pair.waitCaughtUp()
    const db = replicated({ readYourWritesTimeoutMs: 2000 })
    const read = () => readChannelMessages(db, { user_id: w.user.id, channel_id: w.channel.id })
    const stats = () => structuredClone(replicaStats(db)!)
    const first = stats()
    // Nothing stored yet: the cached statement (a read) runs on the replica and
    // misses; the full rule, which stores, is a write and runs on the primary.
    expect((await read()).map((m) => m.id)).toEqual([message.id])
    expect(stats().replicaReads).toBe(first.replicaReads + 1)
    const stored = await outside
      .selectFrom('channel_permission_cache')
      .select('permissions')
      .where('channel_id', '=', w.channel.id)
      .where('user_id', '=', w.user.id)
      .executeTakeFirst()
    expect(stored?.permissions).toBe(VIEW_CHANNEL | READ_MESSAGE_HISTORY)
    // Once replayed (the db waits for its own write), the replica alone answers.
    const second = stats()
    expect((await read()).map((m) => m.id)).toEqual([message.id])
    expect(stats().replicaReads).toBe(second.replicaReads + 1)
    expect(stats().primaryReads).toEqual(second.primaryReads)
    // A revocation replicated to the replica: its stored value no longer
    // decides there, and the full rule on the primary refuses.
    await updateRole(outside, w.guild.defaultRole.id, { permissions: VIEW_CHANNEL })
    await pair.waitCaughtUp()
    await expect(read()).rejects.toBeInstanceOf(PermissionDeniedError)
  })

  it('the change feed reads on the primary: with replay paused, listEvents returns a commit the replica has not replayed', async () => {
    const w = await makeGuildWithMember(outside, VIEW_CHANNEL | READ_MESSAGE_HISTORY)
    await pair.waitCaughtUp()
    const db = replicated()
    expect(await findUserByUsername(db, 'nobody')).toBeUndefined() // warms the router
    const start = await listEvents(db, { user_id: w.user.id })
    await pauseReplay()
    try {
      const message = await makeMessage(outside, w.channel.id, w.owner.id)
      const replicaReads = replicaStats(db)!.replicaReads
      // the replica has not replayed it: on the replica the horizon and page would miss it
      expect(await findUserById(db, w.owner.id)).toBeDefined()
      expect(replicaStats(db)!.replicaReads).toBe(replicaReads + 1) // the replica serves plain reads
      const page = await listEvents(db, { user_id: w.user.id, after: start.next })
      const created = page.events.filter((e) => e.type === 'message_created')
      expect(created.map((e) => (e.data as { message_id: string }).message_id)).toEqual([
        message.id,
      ])
      expect(replicaStats(db)!.replicaReads).toBe(replicaReads + 1) // none of the feed's reads went there
    } finally {
      await resumeReplay()
    }
  })

  it('a replica lagging beyond the bound is skipped', async () => {
    const db = replicated({ maxLagMs: 300 })
    await findUserByUsername(db, 'nobody')
    await pauseReplay()
    try {
      const elsewhere = await createUser(outside, { username: username() })
      // keep the primary's WAL moving so the lag grows past the bound
      await waitFor(
        async () => {
          await createUser(outside, { username: username() })
          return Math.min(...snapshotLag(db)) > 300
        },
        10_000,
        50,
      )
      const lagging = replicaStats(db)!.primaryReads.lagging
      expect((await findUserById(db, elsewhere.id))?.id).toBe(elsewhere.id)
      expect(replicaStats(db)!.primaryReads.lagging).toBe(lagging + 1)
    } finally {
      await resumeReplay()
    }
  })

  it('a stopped replica is skipped: reads continue on the primary, then return to it when it is back', async () => {
    const db = replicated()
    const user = await createUser(outside, { username: username() })
    await pair.waitCaughtUp()
    expect((await findUserById(db, user.id))?.id).toBe(user.id)
    await pair.replica.stop('immediate')
    try {
      for (let i = 0; i < 20; i++) {
        expect((await findUserById(db, user.id))?.id).toBe(user.id)
      }
      const stats = replicaStats(db)!
      expect(stats.primaryReads.down + stats.primaryReads.error).toBeGreaterThan(0)
    } finally {
      await pair.replica.start()
    }
    await waitFor(
      async () => {
        const before = replicaStats(db)!.replicaReads
        expect((await findUserById(db, user.id))?.id).toBe(user.id)
        return replicaStats(db)!.replicaReads > before
      },
      30_000,
      100,
    )
  }, 90_000)
})

describe('replica options', () => {
  it('malformed replicas or bounds are InvalidInputError before any query', () => {
    for (const replicas of ['x', [null], [{}], 42]) {
      expect(() => createDb(primaryPool, { replicas: replicas as never })).toThrow(
        InvalidInputError,
      )
    }
    for (const bad of [-1, 1.5, Number.NaN, '10', 10_000_000]) {
      for (const field of [
        'replicaMaxLagMs',
        'readYourWritesTimeoutMs',
        'replicaCheckIntervalMs',
      ]) {
        expect(() => createDb(primaryPool, { replicas: [replicaPool], [field]: bad })).toThrow(
          InvalidInputError,
        )
      }
    }
    // without replicas nothing changes and there is no token or stats
    const plain = createDb(primaryPool)
    expect(replicaStats(plain)).toBeUndefined()
    expect(consistencyToken(plain)).toBeUndefined()
    expect(withConsistencyToken(plain, '0/1')).toBe(plain)
  })
})

function snapshotLag(db: Kysely<DB>): number[] {
  const stats = replicaStats(db)!
  return stats.replicas.map((r) => r.lagMs)
}
