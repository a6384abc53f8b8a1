/**
 * Positions in commit order under concurrency (issue 23, item 8; migration
 * 0025): 16 writers in one guild (one channel each) against a model reader
 * polling `after`. Every committed event is seen exactly once and in order: a
 * position the reader has passed is never later filled by a slower commit.
 * Then the horizon against one writer held in flight (committing, rolling
 * back, rolling back a savepoint), each interleaving proved from `pg_locks`
 * and the positions themselves.
 */
import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import {
  type DB,
  type GuildstoreEvent,
  listEvents,
  Permissions,
  sendMessage,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeGuild,
  makeGuildWithMember,
  makeMember,
  makeUser,
} from '../support/factories.ts'
import { fulfilled, raceAtBarrier } from '../support/race.ts'

const WRITERS = 16
const t = useTestDatabase({ max: WRITERS + 4 })

/** The key every writer registers under next: the in-flight key of the sequence's last value + 1. */
const NEXT_INFLIGHT_KEY = `select pg_advisory_xact_lock(guildstore_event_inflight_key(
  coalesce(pg_sequence_last_value('guildstore_event_positions'), 0) + 1))`

describe('commit order: 16 writers against a polling reader', () => {
  it('every committed event is seen exactly once, in position order; writers provably overlapped', async () => {
    const owner = await makeUser(t.db)
    const reader = await makeUser(t.db)
    const guild = await makeGuild(t.db, owner.id)
    await makeMember(t.db, guild.id, reader.id)
    const channels = await Promise.all(
      Array.from({ length: WRITERS }, () => makeChannel(t.db, guild.id)),
    )
    let token = (await listEvents(t.db, { user_id: reader.id })).next
    const seen: GuildstoreEvent[] = []
    let stop = false
    let polls = 0
    const poll = async () => {
      const page = await listEvents(t.db, { user_id: reader.id, after: token, limit: 50 })
      seen.push(...page.events)
      token = page.next
      polls++
    }
    const polling = (async () => {
      while (!stop) await poll()
    })()

    const committed: string[] = []
    const send = (i: number, round: number) => async () => {
      const m = await sendMessage(t.db, {
        channel_id: (channels[i] as { id: string }).id,
        author_id: owner.id,
        content: `r${round}w${i}`,
      })
      committed.push(m.id)
      return m
    }
    // Barrier rounds: the next in-flight key held exclusively, so all 16
    // writers wait at their registration together (each holding its channel's
    // row), then take their positions and commit at once.
    let waitersSeen = 0
    for (let round = 0; round < 10; round++) {
      const race = await raceAtBarrier(
        t.pool,
        NEXT_INFLIGHT_KEY,
        Array.from({ length: WRITERS }, (_, i) => send(i, round)),
      )
      fulfilled(race.results)
      waitersSeen = Math.max(waitersSeen, race.waiters)
    }
    // Free-running: 16 writers × 25 messages each.
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, i) => {
        for (let k = 0; k < 25; k++) await send(i, 100 + k)()
      }),
    )
    stop = true
    await polling
    await poll()
    await poll()

    expect(waitersSeen).toBeGreaterThanOrEqual(WRITERS)
    expect(polls).toBeGreaterThan(10)
    const ids = seen.map((e) => (e.data as { message_id: string }).message_id)
    expect(new Set(ids).size).toBe(ids.length) // 0 duplicates
    expect(new Set(ids)).toEqual(new Set(committed)) // 0 lost
    expect(ids).toHaveLength(WRITERS * 35)
    const positions = seen.map((e) => BigInt(e.position))
    for (let i = 1; i < positions.length; i++) {
      expect(positions[i] as bigint).toBeGreaterThan(positions[i - 1] as bigint)
    }
  }, 180_000)
})

/** A transaction held open on its own connection until `commit()` or `rollback()`. */
function openTransaction(db: Kysely<DB>) {
  let ready!: (trx: Kysely<DB>) => void
  const opened = new Promise<Kysely<DB>>((r) => {
    ready = r
  })
  let finish!: (commit: boolean) => void
  const decided = new Promise<boolean>((r) => {
    finish = r
  })
  const rolledBack = new Error('rolled back on purpose')
  const done = db
    .transaction()
    .execute(async (trx) => {
      ready(trx)
      if (!(await decided)) throw rolledBack
    })
    .catch((error: unknown) => {
      if (error !== rolledBack) throw error
    })
  return {
    opened,
    commit: async () => {
      finish(true)
      await done
    },
    rollback: async () => {
      finish(false)
      await done
    },
  }
}

/** The feed's in-flight positions registered by backend `pid` (its advisory locks in the reserved range). */
async function inflight(pid: number): Promise<bigint[]> {
  const { rows } = await sql<{ position: string }>`select
      (((l.classid::bigint - 1735589888) << 32) | l.objid::bigint)::text as position
    from pg_locks l
    where l.locktype = 'advisory' and l.objsubid = 1 and l.pid = ${pid}
      and l.classid between 1735589888 and 1735655423
      and l.database = (select oid from pg_database where datname = current_database())`.execute(
    t.db,
  )
  return rows.map((r) => BigInt(r.position))
}

const positionOf = async (db: Kysely<DB>, messageId: string) => {
  const { rows } = await sql<{ position: string }>`select position::text as position
    from guildstore_events where type = 'message_created' and data ->> 'message_id' = ${messageId}`.execute(
    db,
  )
  return BigInt((rows[0] as { position: string }).position)
}

/** Every event `user_id` may read after `after`, page by page, and the final token. */
async function drain(user_id: string, after: string) {
  const events: GuildstoreEvent[] = []
  let token = after
  for (;;) {
    const page = await listEvents(t.db, { user_id, after: token, limit: 3 })
    events.push(...page.events)
    if (page.next === token) return { events, token }
    token = page.next
  }
}

const contents = (events: GuildstoreEvent[]) =>
  events.map((e) => (e.data as { message?: { content: string } | null }).message?.content)

describe('the horizon holds back for a writer in flight', () => {
  const BASE =
    Permissions.VIEW_CHANNEL | Permissions.SEND_MESSAGES | Permissions.READ_MESSAGE_HISTORY

  async function scene() {
    const w = await makeGuildWithMember(t.db, BASE)
    const other = await makeChannel(t.db, w.guild.id)
    const token = (await listEvents(t.db, { user_id: w.user.id })).next
    const send = (db: Kysely<DB>, channel_id: string, content: string) =>
      sendMessage(db, { channel_id, author_id: w.owner.id, content })
    return { ...w, other, token, send }
  }

  /**
   * A sends `content` in its open transaction (registered in flight at or
   * below its position, proved from pg_locks), then B commits a higher
   * position in the other channel, and a reader from the scene's token reads
   * neither.
   */
  async function aInFlightBCommitted(
    s: Awaited<ReturnType<typeof scene>>,
    trxA: Kysely<DB>,
    content: string,
  ) {
    const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trxA)).rows[0]
      ?.pid as number
    const mA = await s.send(trxA, s.channel.id, content)
    const pA = await positionOf(trxA, mA.id)
    const locks = await inflight(pid)
    expect(locks).toHaveLength(1)
    expect(locks[0] as bigint).toBeLessThanOrEqual(pA)
    const mB = await s.send(t.db, s.other.id, 'B')
    const pB = await positionOf(t.db, mB.id)
    expect(pB).toBeGreaterThan(pA) // B committed a higher position while A was in flight
    const held = await drain(s.user.id, s.token)
    expect(held.events).toEqual([]) // not B, not A
    expect(await inflight(pid)).toEqual(locks) // A was still in flight for that read
    return { pid, pB, held }
  }

  it.each(['commits', 'rolls back'] as const)(
    'A takes a position and waits, B commits a higher one: B is not read until A %s',
    async (outcome) => {
      const s = await scene()
      const a = openTransaction(t.db)
      const trxA = await a.opened
      let settled = false
      try {
        const { pid: pidA, held } = await aInFlightBCommitted(s, trxA, 'A')

        if (outcome === 'commits') await a.commit()
        else await a.rollback()
        settled = true
        expect(await inflight(pidA)).toEqual([])
        const after = await drain(s.user.id, held.token)
        expect(contents(after.events)).toEqual(outcome === 'commits' ? ['A', 'B'] : ['B'])
        const again = await drain(s.user.id, after.token)
        expect(again.events).toEqual([])
        // Following the tokens from the start gives the same, once each.
        expect(contents((await drain(s.user.id, s.token)).events)).toEqual(contents(after.events))
      } finally {
        if (!settled) await a.rollback()
      }
    },
  )

  it('A takes a position inside a savepoint and rolls the savepoint back: its lock goes with it, its next position registers again', async () => {
    const s = await scene()
    const a = openTransaction(t.db)
    const trxA = await a.opened
    let settled = false
    try {
      await sql`savepoint s1`.execute(trxA)
      // Held back by the savepoint's registration.
      const { pid: pidA, pB, held } = await aInFlightBCommitted(s, trxA, 'A in the savepoint')

      await sql`rollback to savepoint s1`.execute(trxA)
      // The lock went with the savepoint: B is readable while A is still open.
      expect(await inflight(pidA)).toEqual([])
      const mid = await drain(s.user.id, held.token)
      expect(contents(mid.events)).toEqual(['B'])

      // A's next position registers again (its setting was rolled back too),
      // above B: a reader past B must still get it.
      const kept = await s.send(trxA, s.channel.id, 'A after the savepoint')
      const pKept = await positionOf(trxA, kept.id)
      const second = await inflight(pidA)
      expect(second).toHaveLength(1)
      expect(second[0] as bigint).toBeGreaterThan(pB)
      expect(second[0] as bigint).toBeLessThanOrEqual(pKept)
      expect((await drain(s.user.id, mid.token)).events).toEqual([])

      await a.commit()
      settled = true
      const last = await drain(s.user.id, mid.token)
      expect(contents(last.events)).toEqual(['A after the savepoint'])
      expect(contents((await drain(s.user.id, s.token)).events)).toEqual([
        'B',
        'A after the savepoint',
      ])
    } finally {
      if (!settled) await a.rollback()
    }
  })

  it("a transaction's own events are not read back before it commits (its own lock counts)", async () => {
    const s = await scene()
    await t.db.transaction().execute(async (trx) => {
      await s.send(trx, s.channel.id, 'own')
      const page = await listEvents(trx, { user_id: s.user.id, after: s.token })
      expect(page.events).toEqual([])
    })
    expect(contents((await drain(s.user.id, s.token)).events)).toEqual(['own'])
  })
})
