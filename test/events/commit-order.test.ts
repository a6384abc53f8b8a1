/**
 * Positions in commit order under concurrency (issue 23, item 8): 16 writers
 * in one guild (one channel each) against a model reader polling `after`.
 * Every committed event is seen exactly once and in order: a position the
 * reader has passed is never later filled by a slower commit.
 */
import { describe, expect, it } from 'vitest'
import { type GuildstoreEvent, listEvents, sendMessage } from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuild, makeMember, makeUser } from '../support/factories.ts'
import { fulfilled, raceAtBarrier } from '../support/race.ts'

const WRITERS = 16
const t = useTestDatabase({ max: WRITERS + 4 })

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
    // Barrier rounds: the feed's lock held exclusively, so all 16 writers reach
    // their commit-time stamp and wait there together, then commit at once.
    let waitersSeen = 0
    for (let round = 0; round < 10; round++) {
      const race = await raceAtBarrier(
        t.pool,
        'select pg_advisory_xact_lock(guildstore_event_lock_key())',
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
