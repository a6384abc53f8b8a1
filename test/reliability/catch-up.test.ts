/**
 * Gap-free catch-up (issue 14): readers poll `listChannelMessages(…, { after })`
 * while many writers post through four pools standing for four app servers
 * whose clocks are skewed by seconds (injected: each server's ids are minted
 * with its own clock), some inside transactions that stay open a while after
 * their INSERT. Every reader must end up with every message exactly once, each
 * page strictly after its cursor. The test also proves the race it guards
 * against actually ran: ids disagree with commit order, and messages arrived
 * after a cursor whose id was newer than theirs (what 0.1.0's id cursor lost).
 */
import { type Kysely, sql } from 'kysely'
import { afterAll, describe, expect, it, vi } from 'vitest'
import {
  createDb,
  createMessage,
  createPool,
  type DB,
  listChannelMessages,
  type Message,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuild, makeUser } from '../support/factories.ts'
import { skew } from '../support/skewed-clock.ts'

// Each app server mints ids with its own (skewed) clock: the skew of the
// current async context, in ms.
vi.mock('../../src/ids/new-id.ts', async () => {
  const { skewedId } = await import('../support/skewed-clock.ts')
  return { newId: skewedId }
})

const t = useTestDatabase({ max: 4 })

const SERVERS = [0, -3000, 2500, -1200] // clock skew of each app server, ms
const WRITERS_PER_SERVER = 4
const MESSAGES_PER_WRITER = 160 // 4 × 4 × 160 = 2560 messages
const READERS_PER_CHANNEL = 2

const pools: ReturnType<typeof createPool>[] = []
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()))
})

describe('catch-up with listChannelMessages({ after })', () => {
  it('misses and duplicates nothing under concurrent writers, several pools and skewed clocks', async () => {
    const author = await makeUser(t.db)
    const guild = await makeGuild(t.db, author.id)
    const channels = [await makeChannel(t.db, guild.id), await makeChannel(t.db, guild.id)]
    const servers: Kysely<DB>[] = SERVERS.map(() => {
      const pool = createPool({ connectionString: t.url, max: WRITERS_PER_SERVER + 2 })
      pools.push(pool)
      return createDb(pool)
    })

    // ---- readers ----------------------------------------------------------
    let writersActive = 0
    let writing = true
    interface Reader {
      channel: string
      seen: Message[]
      polls: number
      pagesDuringWrites: number
      /** Messages delivered after a cursor whose id was greater than theirs. */
      behindCursor: number
      errors: string[]
    }
    const readers: Reader[] = channels.flatMap((c) =>
      Array.from({ length: READERS_PER_CHANNEL }, () => ({
        channel: c.id,
        seen: [],
        polls: 0,
        pagesDuringWrites: 0,
        behindCursor: 0,
        errors: [],
      })),
    )
    const readLoop = async (r: Reader, k: number) => {
      const db = servers[k % servers.length] as Kysely<DB>
      let cursor: Message | undefined
      let emptyAfterWrites = 0
      // After the writers stop, one empty poll is the end: everything is committed.
      while (emptyAfterWrites < 1) {
        const stillWriting = writing
        const page = await listChannelMessages(db, r.channel, {
          ...(cursor ? { after: cursor.id } : {}),
          limit: 100,
        })
        r.polls++
        if (page.length === 0) {
          if (!stillWriting) emptyAfterWrites++
          await new Promise((resolve) => setTimeout(resolve, 2))
          continue
        }
        if (writersActive > 0) r.pagesDuringWrites++
        // newest first; everything strictly after the cursor, ascending seq
        const ascending = [...page].reverse()
        for (let i = 0; i < ascending.length; i++) {
          const m = ascending[i] as Message
          if (cursor && m.seq <= cursor.seq) r.errors.push(`seq ${m.seq} not after ${cursor.seq}`)
          if (i > 0 && m.seq <= (ascending[i - 1] as Message).seq) r.errors.push('page not ordered')
          if (cursor && m.id < cursor.id) r.behindCursor++
        }
        r.seen.push(...ascending)
        cursor = page[0]
      }
    }

    // ---- writers ----------------------------------------------------------
    const totalWriters = SERVERS.length * WRITERS_PER_SERVER
    let atHalf = 0
    let releaseHalf: () => void = () => {}
    const half = new Promise<void>((resolve) => {
      releaseHalf = resolve
    })
    const pollsAt = () => readers.map((r) => r.polls)
    const writeLoop = async (server: number, w: number) => {
      const db = servers[server] as Kysely<DB>
      let n = 0
      const post = async (i: number) => {
        const channel_id = (channels[(w + i) % channels.length] as { id: string }).id
        const content = `s${server} w${w} #${i}`
        if (i % 4 === 0) {
          // Held open after the INSERT: commits later than messages that started after it.
          await db.transaction().execute(async (trx) => {
            await createMessage(trx, { channel_id, author_id: author.id, content })
            await sql`select pg_sleep(${(i % 7) / 1000})`.execute(trx)
          })
        } else {
          await createMessage(db, { channel_id, author_id: author.id, content })
        }
        n++
      }
      await skew.run(SERVERS[server] as number, async () => {
        for (let i = 0; i < MESSAGES_PER_WRITER / 2; i++) await post(i)
        // Barrier: every writer halfway, and every reader polled twice since.
        if (++atHalf === totalWriters) {
          const start = pollsAt()
          while (pollsAt().some((p, k) => p < (start[k] as number) + 2)) {
            await new Promise((resolve) => setTimeout(resolve, 5))
          }
          releaseHalf()
        }
        await half
        for (let i = MESSAGES_PER_WRITER / 2; i < MESSAGES_PER_WRITER; i++) await post(i)
      })
      return n
    }

    const reading = readers.map((r, k) => readLoop(r, k))
    writersActive = totalWriters
    const written = await Promise.all(
      SERVERS.flatMap((_, s) =>
        Array.from({ length: WRITERS_PER_SERVER }, async (_, w) => {
          try {
            return await writeLoop(s, s * WRITERS_PER_SERVER + w)
          } finally {
            writersActive--
          }
        }),
      ),
    )
    writing = false
    await Promise.all(reading)

    // ---- what was committed -----------------------------------------------
    const total = written.reduce((a, b) => a + b, 0)
    expect(total).toBe(SERVERS.length * WRITERS_PER_SERVER * MESSAGES_PER_WRITER)
    const committed = await t.db
      .selectFrom('messages')
      .select(['id', 'channel_id', 'seq'])
      .where(
        'channel_id',
        'in',
        channels.map((c) => c.id),
      )
      .orderBy('channel_id')
      .orderBy('seq')
      .execute()
    expect(committed).toHaveLength(total)

    let inversions = 0
    for (const c of channels) {
      const rows = committed.filter((m) => m.channel_id === c.id)
      // positions 1…n, no gap, no duplicate
      expect(rows.map((m) => m.seq)).toEqual(rows.map((_, i) => BigInt(i + 1)))
      for (let i = 1; i < rows.length; i++) {
        if ((rows[i] as { id: string }).id < (rows[i - 1] as { id: string }).id) inversions++
      }
    }

    for (const r of readers) {
      expect(r.errors).toEqual([])
      const expected = committed.filter((m) => m.channel_id === r.channel).map((m) => m.id)
      const got = r.seen.map((m) => m.id)
      const missed = expected.filter((id) => !new Set(got).has(id))
      const duplicated = got.length - new Set(got).size
      expect({ missed: missed.length, duplicated }).toEqual({ missed: 0, duplicated: 0 })
      expect(got).toEqual(expected)
      // the reader really ran while the writers did
      expect(r.pagesDuringWrites).toBeGreaterThan(1)
    }
    // The race ran: ids (skewed clocks, held transactions) disagree with commit
    // order, and readers received messages whose id was below their cursor —
    // each of which an id cursor (0.1.0) would have skipped for good.
    expect(inversions).toBeGreaterThan(0)
    expect(readers.reduce((a, r) => a + r.behindCursor, 0)).toBeGreaterThan(0)
    if (process.env.GUILDSTORE_TEST_VERBOSE) {
      console.error({
        total,
        inversions,
        readers: readers.map((r) => ({
          polls: r.polls,
          pagesDuringWrites: r.pagesDuringWrites,
          behindCursor: r.behindCursor,
        })),
      })
    }

    // Paging back from the newest with `before`, and `between`, agree with commit order.
    for (const c of channels) {
      const expected = committed
        .filter((m) => m.channel_id === c.id)
        .map((m) => m.id)
        .reverse()
      const back: string[] = []
      let before: string | undefined
      for (;;) {
        const page = await listChannelMessages(t.db, c.id, {
          ...(before ? { before } : {}),
          limit: 100,
        })
        if (page.length === 0) break
        back.push(...page.map((m) => m.id))
        before = page.at(-1)?.id
      }
      expect(back).toEqual(expected)
      const between = await listChannelMessages(t.db, c.id, {
        after: expected[600] as string,
        before: expected[500] as string,
        limit: 100,
      })
      expect(between.map((m) => m.id)).toEqual(expected.slice(501, 600))
    }
  }, 240_000)
})
