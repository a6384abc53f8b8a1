import { beforeAll, describe, expect, it } from 'vitest'
import {
  ConflictError,
  deleteMessage,
  listAuditLog,
  listPinnedMessages,
  MAX_PINS_PER_CHANNEL,
  NotFoundError,
  PermissionDeniedError,
  Permissions,
  pinMessage,
  purgeDeletedMessages,
  unpinMessage,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeDm,
  makeGuild,
  makeMember,
  makeMessage,
  makeRole,
  makeUser,
  unknownId,
} from '../support/factories.ts'
import { lockTables, raceAtBarrier, waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase({ max: 24 })

let owner: { id: string }
let guild: { id: string }

beforeAll(async () => {
  owner = await makeUser(t.db)
  guild = await makeGuild(t.db, owner.id)
})

async function messages(channelId: string, n: number) {
  const out = []
  for (let i = 0; i < n; i++) out.push(await makeMessage(t.db, channelId, owner.id))
  return out
}

async function pinCount(channelId: string) {
  const row = await t.db
    .selectFrom('channel_pin_counts')
    .select('pin_count')
    .where('channel_id', '=', channelId)
    .executeTakeFirst()
  const actual = await t.db
    .selectFrom('message_pins')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('channel_id', '=', channelId)
    .executeTakeFirstOrThrow()
  expect(row?.pin_count ?? 0).toBe(Number(actual.n))
  return Number(actual.n)
}

describe('pinMessage / unpinMessage / listPinnedMessages', () => {
  it('pins idempotently, lists newest pin first, unpins', async () => {
    const channel = await makeChannel(t.db, guild.id)
    const [a, b, c] = await messages(channel.id, 3)
    expect(await pinMessage(t.db, { message_id: b!.id })).toBe(true)
    expect(await pinMessage(t.db, { message_id: a!.id })).toBe(true)
    expect(await pinMessage(t.db, { message_id: c!.id })).toBe(true)
    expect(await pinMessage(t.db, { message_id: a!.id })).toBe(false)
    expect((await listPinnedMessages(t.db, channel.id)).map((m) => m.id)).toEqual([
      c!.id,
      a!.id,
      b!.id,
    ])
    expect(await unpinMessage(t.db, { message_id: a!.id })).toBe(true)
    expect(await unpinMessage(t.db, { message_id: a!.id })).toBe(false)
    expect(await unpinMessage(t.db, { message_id: unknownId() })).toBe(false)
    expect((await listPinnedMessages(t.db, channel.id)).map((m) => m.id)).toEqual([c!.id, b!.id])
    expect(await pinCount(channel.id)).toBe(2)
  })

  it('a deleted message leaves the pin list and frees its slot; a purge too', async () => {
    const channel = await makeChannel(t.db, guild.id)
    const [a, b] = await messages(channel.id, 2)
    await pinMessage(t.db, { message_id: a!.id })
    await pinMessage(t.db, { message_id: b!.id })
    expect(await deleteMessage(t.db, a!.id)).toBe(true)
    expect((await listPinnedMessages(t.db, channel.id)).map((m) => m.id)).toEqual([b!.id])
    expect(await pinCount(channel.id)).toBe(1)
    await expect(pinMessage(t.db, { message_id: a!.id })).rejects.toBeInstanceOf(NotFoundError)
    await t.db
      .updateTable('messages')
      .set({ deleted_at: new Date(Date.now() - 60_000) })
      .where('id', '=', b!.id)
      .execute()
    await purgeDeletedMessages(t.db, { older_than: new Date() })
    expect(await listPinnedMessages(t.db, channel.id)).toEqual([])
    expect(await pinCount(channel.id)).toBe(0)
  })

  it('refuses the 51st pin with ConflictError pin_limit, writing nothing', async () => {
    const channel = await makeChannel(t.db, guild.id)
    const list = await messages(channel.id, MAX_PINS_PER_CHANNEL + 1)
    for (const m of list.slice(0, MAX_PINS_PER_CHANNEL))
      await pinMessage(t.db, { message_id: m.id })
    const before = await countRows(t.db)
    const err = await pinMessage(t.db, { message_id: list.at(-1)!.id }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as ConflictError).reason).toBe('pin_limit')
    expect(await countRows(t.db)).toEqual(before)
    // Re-pinning a pinned message at the cap is still a no-op, not an error.
    expect(await pinMessage(t.db, { message_id: list[0]!.id })).toBe(false)
    expect((await listPinnedMessages(t.db, channel.id)).length).toBe(MAX_PINS_PER_CHANNEL)
  })

  it('holds the cap under a 100-way race held at a barrier', async () => {
    const channel = await makeChannel(t.db, guild.id)
    const list = await messages(channel.id, 100)
    // Create the counter row, then hold its lock: every pin queues on it.
    await pinMessage(t.db, { message_id: list[0]!.id })
    await unpinMessage(t.db, { message_id: list[0]!.id })
    const barrier = await t.pool.connect()
    let results: PromiseSettledResult<boolean>[]
    try {
      await barrier.query('begin')
      await barrier.query('select 1 from channel_pin_counts where channel_id = $1 for update', [
        channel.id,
      ])
      const pending = Promise.allSettled(list.map((m) => pinMessage(t.db, { message_id: m.id })))
      expect(await waitForLockWaiters(barrier, 20)).toBeGreaterThanOrEqual(20)
      await barrier.query('commit')
      results = await pending
    } catch (error) {
      await barrier.query('rollback')
      throw error
    } finally {
      barrier.release()
    }
    const ok = results.filter((r) => r.status === 'fulfilled' && r.value === true)
    const refused = results.filter(
      (r) =>
        r.status === 'rejected' &&
        r.reason instanceof ConflictError &&
        r.reason.reason === 'pin_limit',
    )
    expect(ok.length).toBe(MAX_PINS_PER_CHANNEL)
    expect(refused.length).toBe(100 - MAX_PINS_PER_CHANNEL)
    expect(await pinCount(channel.id)).toBe(MAX_PINS_PER_CHANNEL)
  })

  // 100 writers queue on one counter row: correctness, not speed; a busy
  // 2-core box needs more than the default 30 s.
  it('holds the cap over 100-way rounds on fresh channels, 23 held at a barrier before the counter row exists', async () => {
    for (let round = 0; round < 3; round++) {
      const channel = await makeChannel(t.db, guild.id)
      const list = await messages(channel.id, 100)
      // No counter row yet: the first 23 pins (the pool of 24 less the
      // barrier) wait at the table lock to create or lock it, the rest queue
      // for a connection and follow.
      const { results, waiters } = await raceAtBarrier(
        t.pool,
        lockTables('channel_pin_counts'),
        list.map((m) => () => pinMessage(t.db, { message_id: m.id })),
        23,
      )
      expect(waiters).toBe(23)
      expect(results.filter((r) => r.status === 'fulfilled').length).toBe(MAX_PINS_PER_CHANNEL)
      expect(await pinCount(channel.id)).toBe(MAX_PINS_PER_CHANNEL)
    }
  }, 180_000)

  it('a delete racing a pin never leaves a deleted message pinned', async () => {
    const channel = await makeChannel(t.db, guild.id)
    for (let round = 0; round < 2; round++) {
      const [m] = await messages(channel.id, 1)
      // The pin commits while the delete waits for the message row.
      const pin = await t.pool.connect()
      try {
        await pin.query('begin')
        await pin.query(
          'insert into message_pins (message_id, channel_id) select id, channel_id from messages where id = $1 for share',
          [m!.id],
        )
        const deleting = deleteMessage(t.db, m!.id)
        await waitForLockWaiters(pin, 1)
        await pin.query('commit')
        expect(await deleting).toBe(true)
      } finally {
        pin.release()
      }
      expect(await listPinnedMessages(t.db, channel.id)).toEqual([])
      expect(await pinCount(channel.id)).toBe(0)
    }
    // The delete commits while the pin waits: the pin finds no live message.
    const [m] = await messages(channel.id, 1)
    const del = await t.pool.connect()
    try {
      await del.query('begin')
      await del.query('update messages set deleted_at = now() where id = $1', [m!.id])
      const pinning = pinMessage(t.db, { message_id: m!.id }).catch((e: unknown) => e)
      await waitForLockWaiters(del, 1)
      await del.query('commit')
      expect(await pinning).toBeInstanceOf(NotFoundError)
    } finally {
      del.release()
    }
    expect(await pinCount(channel.id)).toBe(0)
  })

  it('as an actor: MANAGE_MESSAGES in a guild channel, a participant in a DM', async () => {
    const channel = await makeChannel(t.db, guild.id)
    const [m] = await messages(channel.id, 1)
    const member = await makeUser(t.db)
    const mod = await makeUser(t.db)
    await makeMember(t.db, guild.id, member.id)
    await makeMember(t.db, guild.id, mod.id)
    const role = await makeRole(t.db, guild.id, { permissions: Permissions.MANAGE_MESSAGES })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: guild.id, user_id: mod.id, role_id: role.id })
      .execute()
    const before = await countRows(t.db)
    await expect(
      pinMessage(t.db, { message_id: m!.id }, { actor_id: member.id }),
    ).rejects.toBeInstanceOf(PermissionDeniedError)
    expect(await countRows(t.db)).toEqual(before)
    expect(await pinMessage(t.db, { message_id: m!.id }, { actor_id: mod.id })).toBe(true)
    const pinnedBy = await t.db
      .selectFrom('message_pins')
      .select('pinned_by')
      .where('message_id', '=', m!.id)
      .executeTakeFirstOrThrow()
    expect(pinnedBy.pinned_by).toBe(mod.id)
    await expect(
      unpinMessage(t.db, { message_id: m!.id }, { actor_id: member.id }),
    ).rejects.toBeInstanceOf(PermissionDeniedError)
    expect(await pinCount(channel.id)).toBe(1)
    expect(await unpinMessage(t.db, { message_id: m!.id }, { actor_id: owner.id })).toBe(true)

    const a = await makeUser(t.db)
    const b = await makeUser(t.db)
    const dm = await makeDm(t.db, a.id, b.id)
    const dmMessage = await makeMessage(t.db, dm.id, a.id)
    await expect(
      pinMessage(t.db, { message_id: dmMessage.id }, { actor_id: owner.id }),
    ).rejects.toBeInstanceOf(PermissionDeniedError)
    expect(await pinMessage(t.db, { message_id: dmMessage.id }, { actor_id: b.id })).toBe(true)
    expect((await listPinnedMessages(t.db, dm.id)).map((x) => x.id)).toEqual([dmMessage.id])
  })
})

describe('pin audit entries', () => {
  /** A fresh guild with a channel, a plain member and a MANAGE_MESSAGES moderator. */
  async function moderatedChannel() {
    const g = await makeGuild(t.db, owner.id)
    const channel = await makeChannel(t.db, g.id)
    const member = await makeUser(t.db)
    const mod = await makeUser(t.db)
    await makeMember(t.db, g.id, member.id)
    await makeMember(t.db, g.id, mod.id)
    const role = await makeRole(t.db, g.id, { permissions: Permissions.MANAGE_MESSAGES })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: g.id, user_id: mod.id, role_id: role.id })
      .execute()
    return { guild: g, channel, member, mod }
  }

  it('writes message_pin / message_unpin with actor, target and changes; nothing on a no-op or a refusal', async () => {
    const s = await moderatedChannel()
    const m = await makeMessage(t.db, s.channel.id, s.member.id, { content: 'secret plans' })
    expect(
      await pinMessage(
        t.db,
        { message_id: m.id.toUpperCase() },
        { actor_id: s.mod.id, reason: 'rules' },
      ),
    ).toBe(true)
    const [pin, ...rest] = await listAuditLog(t.db, s.guild.id)
    expect(rest).toEqual([])
    expect(pin).toMatchObject({
      guild_id: s.guild.id,
      actor_id: s.mod.id,
      action: 'message_pin',
      target_id: m.id,
      reason: 'rules',
    })
    expect(pin!.changes).toEqual({
      channel_id: { before: null, after: s.channel.id },
      author_id: { before: s.member.id, after: s.member.id },
    })
    expect(JSON.stringify(pin)).not.toContain('secret plans')

    // A no-op pin, a refused unpin and a refused pin write nothing at all.
    let before = await countRows(t.db)
    expect(await pinMessage(t.db, { message_id: m.id }, { actor_id: s.mod.id })).toBe(false)
    expect(await pinMessage(t.db, { message_id: m.id })).toBe(false)
    await expect(
      unpinMessage(t.db, { message_id: m.id }, { actor_id: s.member.id }),
    ).rejects.toBeInstanceOf(PermissionDeniedError)
    const other = await makeMessage(t.db, s.channel.id, s.member.id)
    before = await countRows(t.db)
    await expect(
      pinMessage(t.db, { message_id: other.id }, { actor_id: s.member.id }),
    ).rejects.toBeInstanceOf(PermissionDeniedError)
    expect(await countRows(t.db)).toEqual(before)

    expect(await unpinMessage(t.db, { message_id: m.id }, { actor_id: s.mod.id })).toBe(true)
    const [unpin] = await listAuditLog(t.db, s.guild.id)
    expect(unpin).toMatchObject({
      actor_id: s.mod.id,
      action: 'message_unpin',
      target_id: m.id,
      reason: null,
    })
    expect(unpin!.changes).toEqual({
      channel_id: { before: s.channel.id, after: null },
      author_id: { before: s.member.id, after: s.member.id },
    })
    // A no-op unpin writes nothing.
    before = await countRows(t.db)
    expect(await unpinMessage(t.db, { message_id: m.id }, { actor_id: s.mod.id })).toBe(false)
    expect(await unpinMessage(t.db, { message_id: m.id })).toBe(false)
    expect(await countRows(t.db)).toEqual(before)

    // Trusted calls are recorded without an actor, like every administrative change.
    expect(await pinMessage(t.db, { message_id: other.id })).toBe(true)
    expect(await unpinMessage(t.db, { message_id: other.id })).toBe(true)
    const log = await listAuditLog(t.db, s.guild.id)
    expect(log.map((e) => [e.action, e.actor_id, e.target_id])).toEqual([
      ['message_unpin', null, other.id],
      ['message_pin', null, other.id],
      ['message_unpin', s.mod.id, m.id],
      ['message_pin', s.mod.id, m.id],
    ])
    // Filterable by action (and actor).
    const pins = await listAuditLog(t.db, s.guild.id, { action: 'message_pin' })
    expect(pins.map((e) => e.target_id)).toEqual([other.id, m.id])
    const modUnpins = await listAuditLog(t.db, s.guild.id, {
      action: 'message_unpin',
      actor_id: s.mod.id,
    })
    expect(modUnpins.map((e) => e.id)).toEqual([unpin!.id])
  })

  it('a rolled-back pin or unpin leaves no entry; a DM pin writes none', async () => {
    const s = await moderatedChannel()
    const m = await makeMessage(t.db, s.channel.id, s.member.id)
    const rollback = new Error('roll back')
    const err = await t.db
      .transaction()
      .execute(async (trx) => {
        expect(await pinMessage(trx, { message_id: m.id }, { actor_id: s.mod.id })).toBe(true)
        expect(await listAuditLog(trx, s.guild.id)).toHaveLength(1)
        throw rollback
      })
      .catch((e: unknown) => e)
    expect(err).toBe(rollback)
    expect(await listAuditLog(t.db, s.guild.id)).toEqual([])
    expect(await listPinnedMessages(t.db, s.channel.id)).toEqual([])

    await pinMessage(t.db, { message_id: m.id }, { actor_id: s.mod.id })
    const pinned = await listAuditLog(t.db, s.guild.id)
    await t.db
      .transaction()
      .execute(async (trx) => {
        expect(await unpinMessage(trx, { message_id: m.id }, { actor_id: s.mod.id })).toBe(true)
        throw rollback
      })
      .catch((e: unknown) => e)
    expect(await listAuditLog(t.db, s.guild.id)).toEqual(pinned)
    expect((await listPinnedMessages(t.db, s.channel.id)).map((x) => x.id)).toEqual([m.id])

    // A DM has no guild and so no audit log: the pin writes no entry anywhere.
    const a = await makeUser(t.db)
    const b = await makeUser(t.db)
    const dm = await makeDm(t.db, a.id, b.id)
    const dmMessage = await makeMessage(t.db, dm.id, a.id)
    const entries = await countRows(t.db, ['audit_log'])
    expect(await pinMessage(t.db, { message_id: dmMessage.id }, { actor_id: b.id })).toBe(true)
    expect(await unpinMessage(t.db, { message_id: dmMessage.id }, { actor_id: a.id })).toBe(true)
    expect(await countRows(t.db, ['audit_log'])).toEqual(entries)
  })

  it('concurrent pins, then unpins, of one message write exactly one entry each', async () => {
    const s = await moderatedChannel()
    const m = await makeMessage(t.db, s.channel.id, s.member.id)
    const n = 10
    const barrier = await t.pool.connect()
    try {
      // Hold the message row: every pin waits for it (FOR SHARE), then all race.
      await barrier.query('begin')
      await barrier.query('select 1 from messages where id = $1 for update', [m.id])
      const pinning = Promise.all(
        Array.from({ length: n }, () =>
          pinMessage(t.db, { message_id: m.id }, { actor_id: s.mod.id }),
        ),
      )
      expect(await waitForLockWaiters(barrier, n)).toBeGreaterThanOrEqual(n)
      await barrier.query('commit')
      expect((await pinning).filter(Boolean)).toHaveLength(1)
      // Hold the pin row: every unpin's delete waits for it, then all race.
      await barrier.query('begin')
      await barrier.query('select 1 from message_pins where message_id = $1 for update', [m.id])
      const unpinning = Promise.all(
        Array.from({ length: n }, () =>
          unpinMessage(t.db, { message_id: m.id }, { actor_id: s.mod.id }),
        ),
      )
      expect(await waitForLockWaiters(barrier, n)).toBeGreaterThanOrEqual(n)
      await barrier.query('commit')
      expect((await unpinning).filter(Boolean)).toHaveLength(1)
    } catch (error) {
      await barrier.query('rollback')
      throw error
    } finally {
      barrier.release()
    }
    const log = await listAuditLog(t.db, s.guild.id)
    expect(log.map((e) => e.action)).toEqual(['message_unpin', 'message_pin'])
    expect(await pinCount(s.channel.id)).toBe(0)
  })
})
