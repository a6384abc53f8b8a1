import { sql } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  createDb,
  createMessage,
  deleteMessage,
  ForeignKeyViolationError,
  findMessageById,
  listChannelMessages,
  type Message,
  purgeDeletedMessages,
  updateMessage,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeDm,
  makeGuild,
  makeMessage,
  makeUser,
  unknownId,
  v4Id,
} from '../support/factories.ts'
import { expectInvalidAndNothingWritten } from '../support/hostile-inputs.ts'

const t = useTestDatabase()

const LONE_SURROGATE = 'abc\uD800def'
const ZERO_ID = '00000000-0000-0000-0000-000000000000'
const MAX_ID = 'ffffffff-ffff-ffff-ffff-ffffffffffff'

let author: { id: string }
let channel: { id: string }
let otherChannel: { id: string }

beforeAll(async () => {
  author = await makeUser(t.db)
  const guild = await makeGuild(t.db, author.id)
  channel = await makeChannel(t.db, guild.id)
  otherChannel = await makeChannel(t.db, guild.id)
})

const ids = (rows: readonly { id: string }[]) => rows.map((r) => r.id)

function expectStrictlyDescending(list: readonly string[]) {
  for (let i = 1; i < list.length; i++) {
    expect((list[i - 1] as string) > (list[i] as string)).toBe(true)
  }
}

describe('createMessage', () => {
  it('inserts a message and returns it without the search column', async () => {
    const m = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: author.id,
      content: 'hello world',
    })
    expect(m).toMatchObject({
      channel_id: channel.id,
      author_id: author.id,
      content: 'hello world',
      reply_to: null,
      edited_at: null,
      deleted_at: null,
    })
    expect(m.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/)
    expect(m.created_at).toBeInstanceOf(Date)
    expect(m).not.toHaveProperty('search')
    expect(await findMessageById(t.db, m.id)).toEqual(m)
  })

  it('makes time-ordered ids (the keyset)', async () => {
    const a = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: author.id,
      content: 'a',
    })
    const b = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: author.id,
      content: 'b',
    })
    expect(b.id > a.id).toBe(true)
  })

  it('counts characters as code points: 4000 emoji are accepted, 4001 characters are not', async () => {
    const emoji = '😀'.repeat(4000)
    const m = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: author.id,
      content: emoji,
    })
    expect(m.content).toBe(emoji)
    const ascii = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: author.id,
      content: 'x'.repeat(4000),
    })
    expect(ascii.content).toHaveLength(4000)
    await expectInvalidAndNothingWritten(t.db, () =>
      createMessage(t.db, {
        channel_id: channel.id,
        author_id: author.id,
        content: 'x'.repeat(4001),
      }),
    )
    await expectInvalidAndNothingWritten(t.db, () =>
      createMessage(t.db, {
        channel_id: channel.id,
        author_id: author.id,
        content: '😀'.repeat(4001),
      }),
    )
  })

  it.each([
    ['empty content', { content: '' }],
    ['a NUL byte', { content: 'a\u0000b' }],
    ['a lone surrogate', { content: LONE_SURROGATE }],
    ['4001 characters', { content: 'y'.repeat(4001) }],
    ['content not a string', { content: 42 }],
    ['a malformed channel id', { channel_id: 'not-a-uuid' }],
    ['a malformed author id', { author_id: "1'; drop table messages; --" }],
    ['a malformed reply_to', { reply_to: 'nope' }],
  ])('refuses %s with InvalidInputError and writes nothing', async (_name, override) => {
    await expectInvalidAndNothingWritten(t.db, () =>
      createMessage(t.db, {
        channel_id: channel.id,
        author_id: author.id,
        content: 'ok',
        ...(override as object),
      } as Parameters<typeof createMessage>[1]),
    )
  })

  it('refuses an unknown channel or author with ForeignKeyViolationError and writes nothing', async () => {
    const before = await countRows(t.db)
    await expect(
      createMessage(t.db, { channel_id: unknownId(), author_id: author.id, content: 'x' }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    await expect(
      createMessage(t.db, { channel_id: channel.id, author_id: unknownId(), content: 'x' }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    expect(await countRows(t.db)).toEqual(before)
  })

  it('accepts a v4 id of an existing channel (ids need not be v7)', async () => {
    const guild = await makeGuild(t.db, author.id)
    const ch = await makeChannel(t.db, guild.id, { id: v4Id() })
    const m = await createMessage(t.db, { channel_id: ch.id, author_id: author.id, content: 'v4' })
    expect(m.channel_id).toBe(ch.id)
  })

  it('replies to a live message of the same channel, in one statement', async () => {
    const target = await makeMessage(t.db, channel.id, author.id)
    const queries: string[] = []
    const db = createDb(t.pool, { log: (e) => queries.push(e.sql) })
    const reply = await createMessage(db, {
      channel_id: channel.id,
      author_id: author.id,
      content: 're',
      reply_to: target.id,
    })
    expect(reply.reply_to).toBe(target.id)
    expect(queries).toHaveLength(1)
    expect(queries[0]).toMatch(/^insert into "messages"/)
  })

  it('refuses a reply_to that is unknown, soft-deleted or in another channel, writing nothing', async () => {
    const elsewhere = await makeMessage(t.db, otherChannel.id, author.id)
    const deleted = await makeMessage(t.db, channel.id, author.id, { deleted_at: new Date() })
    for (const reply_to of [unknownId(), elsewhere.id, deleted.id]) {
      await expectInvalidAndNothingWritten(t.db, () =>
        createMessage(t.db, {
          channel_id: channel.id,
          author_id: author.id,
          content: 'r',
          reply_to,
        }),
      )
    }
  })

  it("leaves nothing behind when the caller's transaction rolls back", async () => {
    const before = await countRows(t.db)
    await expect(
      t.db.transaction().execute(async (trx) => {
        const m = await createMessage(trx, {
          channel_id: channel.id,
          author_id: author.id,
          content: 'tx',
        })
        expect(await findMessageById(trx, m.id)).toBeDefined()
        throw new Error('roll back')
      }),
    ).rejects.toThrow('roll back')
    expect(await countRows(t.db)).toEqual(before)
  })
})

describe('findMessageById', () => {
  it('does not return a soft-deleted message', async () => {
    const m = await makeMessage(t.db, channel.id, author.id)
    expect((await findMessageById(t.db, m.id))?.id).toBe(m.id)
    expect(await deleteMessage(t.db, m.id)).toBe(true)
    expect(await findMessageById(t.db, m.id)).toBeUndefined()
  })

  it('returns undefined for an unknown id and refuses a malformed one', async () => {
    expect(await findMessageById(t.db, unknownId())).toBeUndefined()
    await expectInvalidAndNothingWritten(t.db, () => findMessageById(t.db, 'abc'))
    await expectInvalidAndNothingWritten(t.db, () => findMessageById(t.db, `${unknownId()}\u0000`))
  })
})

describe('listChannelMessages', () => {
  let history: { id: string }
  let all: string[] // newest first
  let deletedIds: Set<string>

  beforeAll(async () => {
    const guild = await makeGuild(t.db, author.id)
    history = await makeChannel(t.db, guild.id)
    const created: Message[] = []
    for (let i = 0; i < 260; i++) {
      created.push(
        await createMessage(t.db, {
          channel_id: history.id,
          author_id: author.id,
          content: `m${i}`,
        }),
      )
    }
    // 10 soft-deleted, spread through the history: 250 live remain.
    deletedIds = new Set()
    for (let i = 5; i < 260; i += 26) {
      const id = (created[i] as Message).id
      expect(await deleteMessage(t.db, id)).toBe(true)
      deletedIds.add(id)
    }
    all = ids(created)
      .filter((id) => !deletedIds.has(id))
      .reverse()
    expect(all).toHaveLength(250)
    // Noise in another channel must never show up.
    for (let i = 0; i < 20; i++) await makeMessage(t.db, otherChannel.id, author.id)
    // A realistic table for the planner: many channels, this one a small part
    // of the history (with only this channel, a backward scan of the primary
    // key would be as cheap as the partial index).
    await sql`update guilds set max_channels = 1000 where id = ${guild.id}::uuid`.execute(t.db)
    await sql`insert into channels (guild_id, name)
      select ${guild.id}::uuid, 'noise-' || g from generate_series(1, 500) g`.execute(t.db)
    await sql`insert into messages (channel_id, author_id, content)
      select c.id, ${author.id}::uuid, 'noise ' || g
      from channels c cross join generate_series(1, 40) g
      where c.guild_id = ${guild.id}::uuid and c.name like 'noise-%'`.execute(t.db)
    await sql`analyze messages`.execute(t.db)
  })

  it('returns the newest 50 by default, newest first, never soft-deleted ones', async () => {
    const page = await listChannelMessages(t.db, history.id)
    expect(ids(page)).toEqual(all.slice(0, 50))
    expect(page.every((m) => m.channel_id === history.id && m.deleted_at === null)).toBe(true)
  })

  it('pages backwards with before: 250 messages, no duplicates, no gaps, strictly descending', async () => {
    const seen: string[] = []
    let before: string | undefined
    const sizes: number[] = []
    for (;;) {
      const page = await listChannelMessages(t.db, history.id, { before, limit: 100 })
      sizes.push(page.length)
      if (page.length === 0) break
      seen.push(...ids(page))
      before = page.at(-1)?.id
    }
    expect(sizes).toEqual([100, 100, 50, 0])
    expect(seen).toEqual(all)
    expect(new Set(seen).size).toBe(250)
    expectStrictlyDescending(seen)
    expect(seen.some((id) => deletedIds.has(id))).toBe(false)
  })

  it('pages forwards with after: each page newest first, together the whole history', async () => {
    const pages: string[][] = []
    let after = ZERO_ID
    for (;;) {
      const page = await listChannelMessages(t.db, history.id, { after, limit: 60 })
      if (page.length === 0) break
      expectStrictlyDescending(ids(page))
      pages.push(ids(page))
      after = (page[0] as Message).id
    }
    expect(pages.map((p) => p.length)).toEqual([60, 60, 60, 60, 10])
    // The first page holds the OLDEST 60 messages.
    expect(pages[0]).toEqual(all.slice(-60))
    const seen = pages.reverse().flat()
    expect(seen).toEqual(all)
    expect(new Set(seen).size).toBe(250)
  })

  it('returns the newest messages strictly between after and before', async () => {
    const before = all[10] as string
    const after = all[60] as string
    const between = await listChannelMessages(t.db, history.id, { before, after })
    expect(ids(between)).toEqual(all.slice(11, 60))
    const limited = await listChannelMessages(t.db, history.id, { before, after, limit: 5 })
    expect(ids(limited)).toEqual(all.slice(11, 16))
    expect(await listChannelMessages(t.db, history.id, { before: after, after: before })).toEqual(
      [],
    )
  })

  it('accepts cursors that are not message ids, and an after beyond the newest gives []', async () => {
    expect(ids(await listChannelMessages(t.db, history.id, { before: MAX_ID, limit: 3 }))).toEqual(
      all.slice(0, 3),
    )
    expect(await listChannelMessages(t.db, history.id, { after: MAX_ID })).toEqual([])
    // a soft-deleted id works as a cursor
    const deleted = [...deletedIds][3] as string
    const page = await listChannelMessages(t.db, history.id, { before: deleted, limit: 1 })
    expect((page[0] as Message).id < deleted).toBe(true)
  })

  it('returns [] for an unknown channel', async () => {
    expect(await listChannelMessages(t.db, unknownId())).toEqual([])
  })

  it.each([
    ['limit 0', { limit: 0 }],
    ['limit 101', { limit: 101 }],
    ['limit -1', { limit: -1 }],
    ['limit 1.5', { limit: 1.5 }],
    ['limit as a string', { limit: '10' }],
    ['a malformed before', { before: 'x' }],
    ['a malformed after', { after: `${ZERO_ID}0` }],
  ])('refuses %s with InvalidInputError', async (_name, options) => {
    await expectInvalidAndNothingWritten(t.db, () =>
      listChannelMessages(t.db, history.id, options as Parameters<typeof listChannelMessages>[2]),
    )
  })

  it('refuses a malformed channel id', async () => {
    await expectInvalidAndNothingWritten(t.db, () => listChannelMessages(t.db, 'general'))
  })

  it('accepts limit 1 and limit 100', async () => {
    expect(await listChannelMessages(t.db, history.id, { limit: 1 })).toHaveLength(1)
    expect(await listChannelMessages(t.db, history.id, { limit: 100 })).toHaveLength(100)
  })

  it('is one prepared query per shape, each an index scan of the live partial index without a Sort', async () => {
    // Plans are asserted on a channel big enough that the choice does not hang on
    // statistics noise (a 260-row channel could plan a Sort over
    // messages_channel_id_idx on a loaded machine), with statistics refreshed
    // right before.
    const guild = await makeGuild(t.db, author.id)
    const big = await makeChannel(t.db, guild.id)
    // 600 messages in `big`, interleaved with 5 400 in 100 other channels: a bitmap
    // scan and Sort of 600 rows costs far more than reading 50 in seq order.
    await sql`with noise as (
        insert into channels (guild_id, name)
        select ${guild.id}::uuid, 'plan-noise-' || g from generate_series(1, 100) g
        returning id
      ), arr as (select array_agg(id) as ids from noise)
      insert into messages (channel_id, author_id, content, deleted_at)
      select case when g % 10 = 0 then ${big.id}::uuid else arr.ids[1 + g % 100] end,
        ${author.id}::uuid, 'plan ' || g, case when g % 97 = 0 then now() end
      from arr, generate_series(1, 6000) g
      order by g`.execute(t.db)
    await sql`analyze messages`.execute(t.db)
    const bigIds = (
      await t.db
        .selectFrom('messages')
        .select('id')
        .where('channel_id', '=', big.id)
        .where('deleted_at', 'is', null)
        .orderBy('id', 'desc')
        .execute()
    ).map((r) => r.id)
    expect(bigIds.length).toBeGreaterThan(580)
    const shapes: Array<[string, Parameters<typeof listChannelMessages>[2]]> = [
      ['newest', {}],
      ['before', { before: bigIds[50] as string }],
      ['after', { after: bigIds[400] as string }],
      ['between', { after: bigIds[400] as string, before: bigIds[50] as string }],
    ]
    const seenSql = new Set<string>()
    for (const [name, options] of shapes) {
      const logged: Array<{ sql: string; parameters: readonly unknown[] }> = []
      const db = createDb(t.pool, {
        logParameters: true,
        log: (e) => logged.push({ sql: e.sql, parameters: e.parameters ?? [] }),
      })
      await listChannelMessages(db, big.id, options)
      expect(logged, name).toHaveLength(1)
      const { sql: text, parameters } = logged[0] as (typeof logged)[number]
      expect(text, name).toContain('"deleted_at" is null')
      seenSql.add(text)
      // The custom plan (parameters known) …
      const custom = await t.pool.query(`explain ${text}`, [...parameters])
      const customPlan = custom.rows.map((r) => r['QUERY PLAN']).join('\n')
      expect(customPlan, `${name}\n${customPlan}`).toContain('messages_channel_id_seq_live_idx')
      expect(customPlan, `${name}\n${customPlan}`).toMatch(/Index Scan/)
      expect(customPlan, `${name}\n${customPlan}`).not.toMatch(/Sort|Seq Scan/)
      // … and the generic plan a prepared statement settles on.
      const client = await t.pool.connect()
      try {
        await client.query(`prepare gs_test_shape as ${text}`)
        await client.query('set plan_cache_mode = force_generic_plan')
        const placeholders = parameters.map((p) => `'${String(p)}'`).join(', ')
        const generic = await client.query(`explain execute gs_test_shape(${placeholders})`)
        const genericPlan = generic.rows.map((r) => r['QUERY PLAN']).join('\n')
        expect(genericPlan, `${name}\n${genericPlan}`).toContain('messages_channel_id_seq_live_idx')
        expect(genericPlan, `${name}\n${genericPlan}`).not.toMatch(/Sort|Seq Scan/)
        if (process.env.GUILDSTORE_TEST_VERBOSE) {
          console.error(`${name} custom:\n${customPlan}\n${name} generic:\n${genericPlan}`)
        }
      } finally {
        await client.query('deallocate gs_test_shape')
        await client.query('reset plan_cache_mode')
        client.release()
      }
    }
    expect(seenSql.size).toBe(4)
  }, 120_000) // bulk insert through the position trigger + ANALYZE: generous under load
})

describe('updateMessage', () => {
  it('changes the content and sets edited_at', async () => {
    const m = await makeMessage(t.db, channel.id, author.id)
    const edited = await updateMessage(t.db, m.id, { content: 'edited ✨' })
    expect(edited).toMatchObject({ id: m.id, content: 'edited ✨', deleted_at: null })
    expect(edited?.edited_at).toBeInstanceOf(Date)
    expect(edited).not.toHaveProperty('search')
    expect((await findMessageById(t.db, m.id))?.content).toBe('edited ✨')
  })

  it('returns undefined for a soft-deleted or unknown message, changing nothing', async () => {
    const m = await makeMessage(t.db, channel.id, author.id, { deleted_at: new Date() })
    expect(await updateMessage(t.db, m.id, { content: 'zombie' })).toBeUndefined()
    expect(await updateMessage(t.db, unknownId(), { content: 'ghost' })).toBeUndefined()
    const row = await t.db
      .selectFrom('messages')
      .select(['content', 'edited_at'])
      .where('id', '=', m.id)
      .executeTakeFirstOrThrow()
    expect(row).toEqual({ content: m.content, edited_at: null })
  })

  it.each([
    ['empty', ''],
    ['NUL', '\u0000'],
    ['lone surrogate', LONE_SURROGATE],
    ['4001 characters', 'z'.repeat(4001)],
  ])('refuses %s content and leaves the message as it was', async (_name, content) => {
    const m = await makeMessage(t.db, channel.id, author.id)
    await expectInvalidAndNothingWritten(t.db, () => updateMessage(t.db, m.id, { content }))
    expect(await findMessageById(t.db, m.id)).toMatchObject({ content: m.content, edited_at: null })
  })

  it('refuses a malformed id', async () => {
    await expectInvalidAndNothingWritten(t.db, () => updateMessage(t.db, '123', { content: 'x' }))
  })
})

describe('deleteMessage', () => {
  it('soft-deletes once: true, then false; the row stays with deleted_at set', async () => {
    const m = await makeMessage(t.db, channel.id, author.id)
    expect(await deleteMessage(t.db, m.id)).toBe(true)
    expect(await deleteMessage(t.db, m.id)).toBe(false)
    const row = await t.db
      .selectFrom('messages')
      .select('deleted_at')
      .where('id', '=', m.id)
      .executeTakeFirstOrThrow()
    expect(row.deleted_at).toBeInstanceOf(Date)
    expect(ids(await listChannelMessages(t.db, channel.id, { limit: 100 }))).not.toContain(m.id)
  })

  it('returns false for an unknown id and refuses a malformed one', async () => {
    expect(await deleteMessage(t.db, unknownId())).toBe(false)
    await expectInvalidAndNothingWritten(t.db, () => deleteMessage(t.db, 'x'))
  })
})

describe('purgeDeletedMessages', () => {
  it('hard-deletes messages soft-deleted before older_than, with their attachments', async () => {
    const guild = await makeGuild(t.db, author.id)
    const ch = await makeChannel(t.db, guild.id)
    const long = new Date(Date.now() - 40 * 86_400_000)
    const oldDeleted = await makeMessage(t.db, ch.id, author.id, { deleted_at: long })
    const recentDeleted = await makeMessage(t.db, ch.id, author.id, { deleted_at: new Date() })
    const live = await makeMessage(t.db, ch.id, author.id)
    const reply = await makeMessage(t.db, ch.id, author.id, { reply_to: oldDeleted.id })
    await t.db
      .insertInto('message_attachments')
      .values([
        { message_id: oldDeleted.id, filename: 'a.png', s3_key: 'k/a', size: 1n },
        { message_id: live.id, filename: 'b.png', s3_key: 'k/b', size: 2n },
      ])
      .execute()
    const cutoff = new Date(Date.now() - 30 * 86_400_000)
    expect(await purgeDeletedMessages(t.db, { older_than: cutoff })).toBeGreaterThanOrEqual(1)
    const left = await t.db
      .selectFrom('messages')
      .select(['id', 'reply_to'])
      .where('channel_id', '=', ch.id)
      .orderBy('id')
      .execute()
    expect(left.map((r) => r.id)).toEqual([recentDeleted.id, live.id, reply.id])
    expect(left.find((r) => r.id === reply.id)?.reply_to).toBeNull()
    const files = await t.db
      .selectFrom('message_attachments')
      .select('message_id')
      .where('message_id', 'in', [oldDeleted.id, live.id])
      .execute()
    expect(files.map((f) => f.message_id)).toEqual([live.id])
    expect(await purgeDeletedMessages(t.db, { older_than: cutoff })).toBe(0)
  })

  it('refuses an invalid Date', async () => {
    await expectInvalidAndNothingWritten(t.db, () =>
      purgeDeletedMessages(t.db, { older_than: new Date('nope') }),
    )
    await expectInvalidAndNothingWritten(t.db, () =>
      purgeDeletedMessages(t.db, { older_than: '2020-01-01' as unknown as Date }),
    )
  })
})

describe('cascades', () => {
  it('deleting a channel removes its messages and their attachments', async () => {
    const guild = await makeGuild(t.db, author.id)
    const ch = await makeChannel(t.db, guild.id)
    const m = await createMessage(t.db, { channel_id: ch.id, author_id: author.id, content: 'bye' })
    await t.db
      .insertInto('message_attachments')
      .values({ message_id: m.id, filename: 'f', s3_key: 'k', size: 3n })
      .execute()
    await t.db.deleteFrom('channels').where('id', '=', ch.id).execute()
    const n = await t.db
      .selectFrom('messages')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('channel_id', '=', ch.id)
      .executeTakeFirstOrThrow()
    expect(Number(n.n)).toBe(0)
    const a = await t.db
      .selectFrom('message_attachments')
      .select('id')
      .where('message_id', '=', m.id)
      .execute()
    expect(a).toEqual([])
  })

  it('DM messages are ordinary messages of the DM channel', async () => {
    const other = await makeUser(t.db)
    const dm = await makeDm(t.db, author.id, other.id)
    const m1 = await createMessage(t.db, { channel_id: dm.id, author_id: author.id, content: 'hi' })
    const m2 = await createMessage(t.db, { channel_id: dm.id, author_id: other.id, content: 'yo' })
    expect(ids(await listChannelMessages(t.db, dm.id))).toEqual([m2.id, m1.id])
  })
})
