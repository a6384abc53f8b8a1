/**
 * No change to what a concurrent reader sees (issue 23, item 3): a reader
 * pages a channel by position (catch-up with `after`) while a large
 * importMessages and concurrent sendMessage calls into the same channel run.
 * The import holds the channel's counter row from its first row to its
 * commit, as a send does, so: the reader sees nothing of the import until it
 * commits, then every position in order, with no gap and no reorder; the
 * sends wait on the channel row (observed as lock waiters while the import's
 * transaction is held open) and land after the import.
 */
import { sql } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  createMessage,
  type ImportMessageInput,
  importMessages,
  listChannelMessages,
  type Message,
  sendMessage,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuild, makeUser } from '../support/factories.ts'
import { waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase({ max: 10 })

const EXISTING = 100
const IMPORTED = 30_000
const SENDERS = 4

let owner: string
let guild: string

beforeAll(async () => {
  owner = (await makeUser(t.db)).id
  guild = (await makeGuild(t.db, owner)).id
})

describe('a reader paging a channel during a large import and concurrent sends', () => {
  it('sees no gap and no reorder; the sends wait for the import and land after it', async () => {
    const channel = (await makeChannel(t.db, guild)).id
    for (let i = 0; i < EXISTING; i++) {
      await createMessage(t.db, { channel_id: channel, author_id: owner, content: `old ${i}` })
    }
    const total = EXISTING + IMPORTED + SENDERS

    // The reader: catch-up by `after`, oldest first; records every position in the order seen.
    const seen: bigint[] = []
    let cursor: string | undefined
    let polls = 0
    let stop = false
    const problems: string[] = []
    const reader = (async () => {
      while (!stop && seen.length < total) {
        const page: Message[] = cursor
          ? (await listChannelMessages(t.db, channel, { after: cursor, limit: 100 })).reverse()
          : (await listChannelMessages(t.db, channel, { limit: 100 })).reverse()
        polls++
        for (const m of page) {
          const expected = BigInt(seen.length + 1)
          if (m.seq !== expected && problems.length < 5) {
            problems.push(`position ${m.seq} seen where ${expected} was next`)
          }
          seen.push(m.seq)
        }
        const last = page.at(-1)
        if (last) cursor = last.id
      }
    })()

    const base = Date.parse('2015-06-01T00:00:00Z')
    const rows: ImportMessageInput[] = Array.from({ length: IMPORTED }, (_, i) => ({
      channel_id: channel,
      author_id: owner,
      content: `imported ${i}`,
      // out of order on purpose: positions follow created_at, not the array
      created_at: new Date(base + ((i * 7919) % IMPORTED) * 1000),
    }))

    let pollsWhileHeld = 0
    let seenWhileHeld = -1
    let waiters = 0
    let sends: Promise<Message>[] = []
    await t.db.transaction().execute(async (trx) => {
      const done = await importMessages(trx, rows)
      expect(done.imported).toBe(IMPORTED)
      // The import holds the channel row: sends started now wait on it.
      sends = Array.from({ length: SENDERS }, (_, i) =>
        sendMessage(t.db, { channel_id: channel, author_id: owner, content: `live ${i}` }),
      )
      waiters = await waitForLockWaiters(t.pool, SENDERS, 60_000)
      const before = polls
      // let the reader poll a few times against the uncommitted import
      const deadline = Date.now() + 30_000
      while (polls < before + 5 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10))
      pollsWhileHeld = polls - before
      seenWhileHeld = seen.length
    })
    const sent = await Promise.all(sends)
    const deadline = Date.now() + 120_000
    while (seen.length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    stop = true
    await reader

    // the race ran: the sends queued on the import's lock while the reader polled
    expect(waiters).toBeGreaterThanOrEqual(SENDERS)
    expect(pollsWhileHeld).toBeGreaterThanOrEqual(5)
    expect(seenWhileHeld).toBe(EXISTING)
    // the reader: every position exactly once, in order
    expect(problems).toEqual([])
    expect(seen.length).toBe(total)
    // the sends landed after the import
    expect(sent.map((m) => m.seq).sort((a, b) => Number(a - b))).toEqual(
      Array.from({ length: SENDERS }, (_, i) => BigInt(EXISTING + IMPORTED + 1 + i)),
    )
    // imported positions follow created_at
    const order = await sql<{ bad: number }>`select count(*)::int as bad from (
      select created_at, lag(created_at) over (order by seq) as prev from messages
      where channel_id = ${channel} and content like 'imported %') s where prev > created_at`.execute(
      t.db,
    )
    expect(order.rows[0]?.bad).toBe(0)
  }, 240_000)
})
