import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import {
  ConflictError,
  createDb,
  createMessage,
  deleteMessage,
  ForeignKeyViolationError,
  findOrCreateDmChannel,
  listChannelMessages,
  listDmChannels,
  markDmRead,
  NotFoundError,
  purgeDeletedMessages,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeDm,
  makeGuild,
  makeMessage,
  makeUser,
  unknownId,
} from '../support/factories.ts'
import { expectInvalidAndNothingWritten } from '../support/hostile-inputs.ts'
import { fulfilled, lockTables, raceAtBarrier } from '../support/race.ts'

const t = useTestDatabase({ max: 30 })

async function block(user_id: string, friend_id: string) {
  await t.db.insertInto('friendships').values({ user_id, friend_id, status: 'blocked' }).execute()
}

async function unreadOf(user_id: string, channel_id: string) {
  const entry = (await listDmChannels(t.db, user_id)).find((d) => d.id === channel_id)
  return entry?.unread_count
}

describe('findOrCreateDmChannel', () => {
  it('creates the channel once and finds the same one whichever way round', async () => {
    const alice = await makeUser(t.db)
    const bob = await makeUser(t.db)
    const first = await findOrCreateDmChannel(t.db, { user_id: alice.id, other_user_id: bob.id })
    expect(first.created).toBe(true)
    const [a, b] = alice.id < bob.id ? [alice.id, bob.id] : [bob.id, alice.id]
    expect(first.channel).toMatchObject({ user_a: a, user_b: b })
    expect(first.channel.created_at).toBeInstanceOf(Date)
    const again = await findOrCreateDmChannel(t.db, { user_id: bob.id, other_user_id: alice.id })
    expect(again).toEqual({ channel: first.channel, created: false })
    const upper = await findOrCreateDmChannel(t.db, {
      user_id: alice.id.toUpperCase(),
      other_user_id: bob.id,
    })
    expect(upper).toEqual({ channel: first.channel, created: false })
    const channel = await t.db
      .selectFrom('channels')
      .select(['type', 'guild_id', 'name'])
      .where('id', '=', first.channel.id)
      .executeTakeFirstOrThrow()
    expect(channel).toEqual({ type: 'dm', guild_id: null, name: null })
    const participants = await t.db
      .selectFrom('dm_participants')
      .select(['user_id', 'last_read_message_id'])
      .where('channel_id', '=', first.channel.id)
      .orderBy('user_id')
      .execute()
    expect(participants).toEqual([
      { user_id: a, last_read_message_id: null },
      { user_id: b, last_read_message_id: null },
    ])
  })

  it('is one round trip for an existing pair (and for a creation)', async () => {
    const x = await makeUser(t.db)
    const y = await makeUser(t.db)
    const queries: string[] = []
    const db = createDb(t.pool, { log: (e) => queries.push(e.sql) })
    await findOrCreateDmChannel(db, { user_id: x.id, other_user_id: y.id })
    expect(queries).toHaveLength(1)
    await findOrCreateDmChannel(db, { user_id: y.id, other_user_id: x.id })
    expect(queries).toHaveLength(2)
  })

  it('makes exactly one channel for 25 calls in both orders held at a barrier; one reports created', async () => {
    const x = await makeUser(t.db)
    const y = await makeUser(t.db)
    // Every call found no DM and waits to insert one at the table lock.
    const race = await raceAtBarrier(
      t.pool,
      lockTables('dm_channels'),
      Array.from(
        { length: 25 },
        (_, i) => () =>
          findOrCreateDmChannel(
            t.db,
            i % 2 ? { user_id: x.id, other_user_id: y.id } : { user_id: y.id, other_user_id: x.id },
          ),
      ),
    )
    expect(race.waiters).toBe(25)
    const results = fulfilled(race.results)
    expect(new Set(results.map((r) => r.channel.id)).size).toBe(1)
    expect(results.filter((r) => r.created)).toHaveLength(1)
    const [a, b] = x.id < y.id ? [x.id, y.id] : [y.id, x.id]
    const pairs = await t.db
      .selectFrom('dm_channels')
      .select('id')
      .where('user_a', '=', a)
      .where('user_b', '=', b)
      .execute()
    expect(pairs).toHaveLength(1)
    const n = await t.db
      .selectFrom('dm_participants')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('channel_id', '=', (pairs[0] as { id: string }).id)
      .executeTakeFirstOrThrow()
    expect(Number(n.n)).toBe(2)
  })

  it('refuses a DM with oneself, and malformed ids, writing nothing', async () => {
    const me = await makeUser(t.db)
    await expectInvalidAndNothingWritten(t.db, () =>
      findOrCreateDmChannel(t.db, { user_id: me.id, other_user_id: me.id }),
    )
    await expectInvalidAndNothingWritten(t.db, () =>
      findOrCreateDmChannel(t.db, { user_id: me.id, other_user_id: me.id.toUpperCase() }),
    )
    await expectInvalidAndNothingWritten(t.db, () =>
      findOrCreateDmChannel(t.db, { user_id: 'me', other_user_id: me.id }),
    )
    await expectInvalidAndNothingWritten(t.db, () =>
      findOrCreateDmChannel(t.db, { user_id: me.id, other_user_id: `${me.id}\u0000` }),
    )
  })

  it('refuses an unknown user with ForeignKeyViolationError, writing nothing', async () => {
    const me = await makeUser(t.db)
    const before = await countRows(t.db)
    await expect(
      findOrCreateDmChannel(t.db, { user_id: me.id, other_user_id: unknownId() }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    expect(await countRows(t.db)).toEqual(before)
  })

  it('refuses a DM when either user has blocked the other, also for an existing channel', async () => {
    const p = await makeUser(t.db)
    const q = await makeUser(t.db)
    const r = await makeUser(t.db)
    await block(p.id, q.id) // p blocked q
    await block(r.id, p.id) // r blocked p
    const before = await countRows(t.db)
    for (const [user_id, other_user_id] of [
      [p.id, q.id],
      [q.id, p.id],
      [p.id, r.id],
      [r.id, p.id],
    ] as const) {
      const error = await findOrCreateDmChannel(t.db, { user_id, other_user_id }).catch((e) => e)
      expect(error).toBeInstanceOf(ConflictError)
      expect((error as ConflictError).reason).toBe('blocked')
    }
    expect(await countRows(t.db)).toEqual(before)
    // An existing channel, then a block: refused too.
    const s = await makeUser(t.db)
    await findOrCreateDmChannel(t.db, { user_id: q.id, other_user_id: s.id })
    await block(s.id, q.id)
    await expect(
      findOrCreateDmChannel(t.db, { user_id: q.id, other_user_id: s.id }),
    ).rejects.toBeInstanceOf(ConflictError)
  })

  it("leaves nothing behind when the caller's transaction rolls back", async () => {
    const u = await makeUser(t.db)
    const v = await makeUser(t.db)
    const before = await countRows(t.db)
    await expect(
      t.db.transaction().execute(async (trx) => {
        const { channel, created } = await findOrCreateDmChannel(trx, {
          user_id: u.id,
          other_user_id: v.id,
        })
        expect(created).toBe(true)
        await createMessage(trx, { channel_id: channel.id, author_id: u.id, content: 'tx' })
        throw new Error('roll back')
      }),
    ).rejects.toThrow('roll back')
    expect(await countRows(t.db)).toEqual(before)
    expect(
      (await findOrCreateDmChannel(t.db, { user_id: u.id, other_user_id: v.id })).created,
    ).toBe(true)
  })
})

describe('DM messages', () => {
  it('are ordinary messages: createMessage / listChannelMessages with the DM id', async () => {
    const a = await makeUser(t.db)
    const b = await makeUser(t.db)
    const { channel } = await findOrCreateDmChannel(t.db, { user_id: a.id, other_user_id: b.id })
    const m1 = await createMessage(t.db, { channel_id: channel.id, author_id: a.id, content: 'hi' })
    const m2 = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: b.id,
      content: 'hey',
      reply_to: m1.id,
    })
    const page = await listChannelMessages(t.db, channel.id)
    expect(page.map((m) => m.id)).toEqual([m2.id, m1.id])
    expect(page[0]?.reply_to).toBe(m1.id)
  })
})

describe('listDmChannels', () => {
  it('lists the other user (no secrets, real Dates), newest activity first, in one query', async () => {
    const me = await makeUser(t.db)
    const quiet = await makeUser(t.db)
    const older = await makeUser(t.db)
    const newer = await makeUser(t.db)
    const dQuiet = await makeDm(t.db, me.id, quiet.id)
    const dOlder = await makeDm(t.db, me.id, older.id)
    const dNewer = await makeDm(t.db, me.id, newer.id)
    await makeMessage(t.db, dOlder.id, older.id)
    const lastOlder = await makeMessage(t.db, dOlder.id, me.id)
    const lastNewer = await makeMessage(t.db, dNewer.id, newer.id)
    // someone else's DM never shows up
    await makeDm(t.db, quiet.id, newer.id)

    const queries: string[] = []
    const db = createDb(t.pool, { log: (e) => queries.push(e.sql) })
    const list = await listDmChannels(db, me.id)
    expect(queries).toHaveLength(1)
    expect(list.map((d) => d.id)).toEqual([dNewer.id, dOlder.id, dQuiet.id])
    expect(list.map((d) => d.last_message_id)).toEqual([lastNewer.id, lastOlder.id, null])
    expect(list.map((d) => d.other_user.id)).toEqual([newer.id, older.id, quiet.id])
    const other = (list[0] as (typeof list)[number]).other_user
    expect(Object.keys(other).sort()).toEqual(
      [
        'avatar_url',
        'created_at',
        'display_name',
        'email',
        'id',
        'status',
        'updated_at',
        'username',
      ].sort(),
    )
    expect(other).toMatchObject({ username: newer.username, email: newer.email })
    expect(other.created_at).toBeInstanceOf(Date)
    expect(other.updated_at).toBeInstanceOf(Date)
    expect(JSON.stringify(list)).not.toContain('argon2')
    expect(list.map((d) => d.unread_count)).toEqual([1, 1, 0])
    expect(typeof list[0]?.unread_count).toBe('number')
  })

  it('ignores soft-deleted messages for last_message_id and unread_count', async () => {
    const me = await makeUser(t.db)
    const them = await makeUser(t.db)
    const dm = await makeDm(t.db, me.id, them.id)
    const kept = await makeMessage(t.db, dm.id, them.id)
    const dropped = await makeMessage(t.db, dm.id, them.id)
    expect(await unreadOf(me.id, dm.id)).toBe(2)
    expect(await deleteMessage(t.db, dropped.id)).toBe(true)
    const [entry] = await listDmChannels(t.db, me.id)
    expect(entry).toMatchObject({ id: dm.id, last_message_id: kept.id, unread_count: 1 })
  })

  it('returns [] for a user without DMs and refuses a malformed id', async () => {
    expect(await listDmChannels(t.db, unknownId())).toEqual([])
    await expectInvalidAndNothingWritten(t.db, () => listDmChannels(t.db, 'x'))
  })
})

describe('markDmRead', () => {
  it('clears the unread count (N → 0), which counts again after new messages', async () => {
    const me = await makeUser(t.db)
    const them = await makeUser(t.db)
    const { channel } = await findOrCreateDmChannel(t.db, {
      user_id: me.id,
      other_user_id: them.id,
    })
    const theirs = []
    for (let i = 0; i < 5; i++) {
      theirs.push(
        await createMessage(t.db, { channel_id: channel.id, author_id: them.id, content: `m${i}` }),
      )
    }
    // my own messages are never unread
    const mine = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: me.id,
      content: 'x',
    })
    expect(await unreadOf(me.id, channel.id)).toBe(5)
    expect(await unreadOf(them.id, channel.id)).toBe(1)

    await markDmRead(t.db, { channel_id: channel.id, user_id: me.id, message_id: mine.id })
    expect(await unreadOf(me.id, channel.id)).toBe(0)
    expect(await unreadOf(them.id, channel.id)).toBe(1) // only my own marker moved

    await createMessage(t.db, { channel_id: channel.id, author_id: them.id, content: 'again' })
    const last = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: them.id,
      content: 'and again',
    })
    expect(await unreadOf(me.id, channel.id)).toBe(2)

    // never moves backwards
    await markDmRead(t.db, {
      channel_id: channel.id,
      user_id: me.id,
      message_id: (theirs[0] as { id: string }).id,
    })
    expect(await unreadOf(me.id, channel.id)).toBe(2)
    const marker = await t.db
      .selectFrom('dm_participants')
      .select('last_read_message_id')
      .where('channel_id', '=', channel.id)
      .where('user_id', '=', me.id)
      .executeTakeFirstOrThrow()
    expect(marker.last_read_message_id).toBe(mine.id)

    await markDmRead(t.db, { channel_id: channel.id, user_id: me.id, message_id: last.id })
    expect(await unreadOf(me.id, channel.id)).toBe(0)
  })

  it('keeps unread counts when the message under the read marker is purged', async () => {
    const me = await makeUser(t.db)
    const them = await makeUser(t.db)
    const dm = await makeDm(t.db, me.id, them.id)
    await makeMessage(t.db, dm.id, them.id)
    const read = await makeMessage(t.db, dm.id, them.id)
    await markDmRead(t.db, { channel_id: dm.id, user_id: me.id, message_id: read.id })
    await makeMessage(t.db, dm.id, them.id)
    expect(await unreadOf(me.id, dm.id)).toBe(1)
    await t.db
      .updateTable('messages')
      .set({ deleted_at: new Date(Date.now() - 86_400_000) })
      .where('id', '=', read.id)
      .execute()
    expect(await purgeDeletedMessages(t.db, { older_than: new Date() })).toBeGreaterThanOrEqual(1)
    expect(await unreadOf(me.id, dm.id)).toBe(1)
  })

  it('refuses a non-participant (NotFoundError) and a message of another channel (InvalidInputError)', async () => {
    const me = await makeUser(t.db)
    const them = await makeUser(t.db)
    const stranger = await makeUser(t.db)
    const dm = await makeDm(t.db, me.id, them.id)
    const m = await makeMessage(t.db, dm.id, them.id)
    const guild = await makeGuild(t.db, me.id)
    const ch = await makeChannel(t.db, guild.id)
    const elsewhere = await makeMessage(t.db, ch.id, me.id)
    const before = await countRows(t.db)
    await expect(
      markDmRead(t.db, { channel_id: dm.id, user_id: stranger.id, message_id: m.id }),
    ).rejects.toBeInstanceOf(NotFoundError)
    await expect(
      markDmRead(t.db, { channel_id: ch.id, user_id: me.id, message_id: elsewhere.id }),
    ).rejects.toBeInstanceOf(NotFoundError)
    await expectInvalidAndNothingWritten(t.db, () =>
      markDmRead(t.db, { channel_id: dm.id, user_id: me.id, message_id: elsewhere.id }),
    )
    await expectInvalidAndNothingWritten(t.db, () =>
      markDmRead(t.db, { channel_id: dm.id, user_id: me.id, message_id: unknownId() }),
    )
    await expectInvalidAndNothingWritten(t.db, () =>
      markDmRead(t.db, { channel_id: dm.id, user_id: me.id, message_id: 'latest' }),
    )
    expect(await countRows(t.db)).toEqual(before)
    const marker = await t.db
      .selectFrom('dm_participants')
      .select('last_read_message_id')
      .where('channel_id', '=', dm.id)
      .where('user_id', '=', me.id)
      .executeTakeFirstOrThrow()
    expect(marker.last_read_message_id).toBeNull()
  })
})

describe('query plans', () => {
  it('listDmChannels reads the history through the live partial index', async () => {
    const me = await makeUser(t.db)
    for (let i = 0; i < 5; i++) {
      const other = await makeUser(t.db)
      const dm = await makeDm(t.db, me.id, other.id)
      for (let k = 0; k < 3; k++) await makeMessage(t.db, dm.id, other.id)
    }
    await sql`analyze`.execute(t.db)
    const logged: Array<{ sql: string; parameters: readonly unknown[] }> = []
    const db = createDb(t.pool, {
      logParameters: true,
      log: (e) => logged.push({ sql: e.sql, parameters: e.parameters ?? [] }),
    })
    await listDmChannels(db, me.id)
    const { sql: text, parameters } = logged[0] as (typeof logged)[number]
    const client = await t.pool.connect()
    try {
      // Tiny tables: keep the planner off sequential scans so the plan shows
      // the index choices a real-sized table gets.
      await client.query('set enable_seqscan = off')
      const plan = (await client.query(`explain ${text}`, [...parameters])).rows
        .map((r) => r['QUERY PLAN'])
        .join('\n')
      if (process.env.GUILDSTORE_TEST_VERBOSE) console.error(plan)
      expect(plan).toContain('messages_channel_id_seq_live_idx')
      expect(plan).not.toContain('Seq Scan on messages')
    } finally {
      await client.query('reset enable_seqscan')
      client.release()
    }
  })
})
