/**
 * The pin cap as a guild setting (issue 25, item 5; migration 0013):
 * `updateGuild(db, id, { max_pins_per_channel })`, 1 to 250 (default 50),
 * exact under a race held at the counter row, lowering it keeps existing pins.
 */
import { describe, expect, it } from 'vitest'
import {
  ConflictError,
  InvalidInputError,
  listAuditLog,
  MAX_PINS_CAP,
  MAX_PINS_PER_CHANNEL,
  pinMessage,
  updateGuild,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuild, makeMessage, makeUser } from '../support/factories.ts'
import { waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase({ max: 24 })

async function channelWith(n: number) {
  const owner = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  const channel = await makeChannel(t.db, guild.id)
  const list = []
  for (let i = 0; i < n; i++) list.push(await makeMessage(t.db, channel.id, owner.id))
  return { owner, guild, channel, list }
}

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  )

describe('max_pins_per_channel', () => {
  it('defaults to 50; a guild sets 1 to 250; lowering keeps the pins there are', async () => {
    const s = await channelWith(6)
    expect(s.guild.max_pins_per_channel).toBe(MAX_PINS_PER_CHANNEL)
    const updated = await updateGuild(t.db, s.guild.id, { max_pins_per_channel: 3 })
    expect(updated?.max_pins_per_channel).toBe(3)
    for (const m of s.list.slice(0, 3)) await pinMessage(t.db, { message_id: m.id })
    const e = await refusal(pinMessage(t.db, { message_id: s.list[3]!.id }))
    expect(e).toBeInstanceOf(ConflictError)
    expect((e as ConflictError).reason).toBe('pin_limit')
    // Lowered below the count: the three stay, a new one is refused.
    await updateGuild(t.db, s.guild.id, { max_pins_per_channel: 1 })
    expect(await refusal(pinMessage(t.db, { message_id: s.list[4]!.id }))).toBeInstanceOf(
      ConflictError,
    )
    const pinned = await t.db
      .selectFrom('message_pins')
      .select('message_id')
      .where('channel_id', '=', s.channel.id)
      .execute()
    expect(pinned).toHaveLength(3)
    const log = await listAuditLog(t.db, s.guild.id, { action: 'guild_update' })
    expect(log[0]?.changes).toEqual({ max_pins_per_channel: { before: 3, after: 1 } })
  })

  it(`allows up to ${MAX_PINS_CAP} pins when set so`, { timeout: 120_000 }, async () => {
    const s = await channelWith(MAX_PINS_CAP + 1)
    await updateGuild(t.db, s.guild.id, { max_pins_per_channel: MAX_PINS_CAP })
    for (const m of s.list.slice(0, MAX_PINS_CAP)) await pinMessage(t.db, { message_id: m.id })
    expect(
      await refusal(pinMessage(t.db, { message_id: s.list[MAX_PINS_CAP]!.id })),
    ).toBeInstanceOf(ConflictError)
  })

  it('refuses a cap outside 1 to 250', async () => {
    const s = await channelWith(0)
    for (const bad of [0, MAX_PINS_CAP + 1, 2.5, -3, '9' as unknown as number]) {
      expect(
        await refusal(updateGuild(t.db, s.guild.id, { max_pins_per_channel: bad })),
      ).toBeInstanceOf(InvalidInputError)
    }
  })

  it('holds a cap of 5 under a 30-way race held at the counter row', async () => {
    const s = await channelWith(30)
    await updateGuild(t.db, s.guild.id, { max_pins_per_channel: 5 })
    // Create the counter row, then hold its lock: every pin queues on it.
    await pinMessage(t.db, { message_id: s.list[0]!.id })
    await t.db.deleteFrom('message_pins').where('channel_id', '=', s.channel.id).execute()
    const barrier = await t.pool.connect()
    let results: PromiseSettledResult<boolean>[]
    try {
      await barrier.query('begin')
      await barrier.query('select 1 from channel_pin_counts where channel_id = $1 for update', [
        s.channel.id,
      ])
      const pending = Promise.allSettled(s.list.map((m) => pinMessage(t.db, { message_id: m.id })))
      expect(await waitForLockWaiters(barrier, 20)).toBeGreaterThanOrEqual(20)
      await barrier.query('commit')
      results = await pending
    } finally {
      barrier.release()
    }
    expect(results.filter((r) => r.status === 'fulfilled' && r.value)).toHaveLength(5)
    const refused = results.filter(
      (r) =>
        r.status === 'rejected' &&
        r.reason instanceof ConflictError &&
        r.reason.reason === 'pin_limit',
    )
    expect(refused).toHaveLength(25)
  })
})
