/**
 * importMessages (issue 23, item 3): history imports through COPY (or, where
 * COPY FROM STDIN is absent, batched INSERT … SELECT FROM unnest), positions
 * after the channel's existing messages in (created_at, id) order, mentions
 * as sendMessage stores them, every row validated before anything is written.
 */
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createDb,
  createMessage,
  createThread,
  type DB,
  type ImportMessageInput,
  InvalidInputError,
  importMessages,
  listMessageMentions,
  NotFoundError,
  UniqueViolationError,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuild, makeRole, makeUser } from '../support/factories.ts'

const t = useTestDatabase({ max: 4 })

let owner: string
let ada: string
let guild: string
let role: string
/** A Kysely instance guildstore did not make: no access to the pg client, so the 'insert' route. */
let foreign: Kysely<DB>

beforeAll(async () => {
  owner = (await makeUser(t.db)).id
  ada = (await makeUser(t.db)).id
  const g = await makeGuild(t.db, owner)
  guild = g.id
  role = (await makeRole(t.db, guild)).id
  foreign = new Kysely<DB>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: t.url, max: 2 }) }),
  })
})

afterAll(async () => {
  await foreign?.destroy()
})

const at = (s: string) => new Date(`2020-01-01T${s}Z`)

/** Rows of `channel` by the owner, row k posted at 10:00:0k and saying `${prefix}${k}`. */
const secondRows = (channel_id: string, prefix: string, ks: number[]): ImportMessageInput[] =>
  ks.map((k) => ({
    channel_id,
    author_id: owner,
    content: `${prefix}${k}`,
    created_at: at(`10:00:0${k}.000`),
  }))

/** Two ids that sort as `suffix` does (one random stem per call). */
const idPair = (): [string, string] => {
  const stem = crypto.randomUUID().slice(0, 34)
  return [`${stem}0a`, `${stem}0b`]
}

/** The channel's messages in position order: [seq, content]. */
async function history(channel: string) {
  const r = await sql<{
    seq: string
    content: string
  }>`select seq::text, content from messages where channel_id = ${channel} order by seq`.execute(
    t.db,
  )
  return r.rows.map((m) => [Number(m.seq), m.content] as const)
}

const counter = async (channel: string) =>
  Number(
    (
      await sql<{
        n: string
      }>`select last_seq::text as n from channels where id = ${channel}`.execute(t.db)
    ).rows[0]?.n,
  )

describe.each(['copy', 'insert'] as const)('importMessages (%s route)', (method) => {
  const importer = () => (method === 'copy' ? t.db : foreign)

  it('positions follow the existing messages in (created_at, id) order, per channel, many channels in one call', async () => {
    const a = (await makeChannel(t.db, guild)).id
    const b = (await makeChannel(t.db, guild)).id
    await createMessage(t.db, { channel_id: a, author_id: owner, content: 'live 1' })
    await createMessage(t.db, { channel_id: a, author_id: owner, content: 'live 2' })
    const same = at('10:00:00.000')
    const [tieA, tieB] = idPair()
    const rows: ImportMessageInput[] = [
      { channel_id: a, author_id: owner, content: 'third', created_at: at('12:00:00.000') },
      { channel_id: b, author_id: ada, content: 'b second', created_at: at('11:00:00.000') },
      { channel_id: a, author_id: ada, content: 'first', created_at: at('09:00:00.000') },
      {
        id: tieB,
        channel_id: a,
        author_id: owner,
        content: 'tie b',
        created_at: same,
      },
      {
        id: tieA,
        channel_id: a,
        author_id: owner,
        content: 'tie a',
        created_at: same,
      },
      { channel_id: b, author_id: owner, content: 'b first', created_at: at('08:00:00.000') },
    ]
    expect(await importMessages(importer(), rows, { method })).toEqual({ imported: 6 })
    expect(await history(a)).toEqual([
      [1, 'live 1'],
      [2, 'live 2'],
      [3, 'first'],
      [4, 'tie a'],
      [5, 'tie b'],
      [6, 'third'],
    ])
    expect(await history(b)).toEqual([
      [1, 'b first'],
      [2, 'b second'],
    ])
    expect(await counter(a)).toBe(6)
    expect(await counter(b)).toBe(2)
    // a later send continues after the import
    const next = await createMessage(t.db, { channel_id: a, author_id: owner, content: 'after' })
    expect(next.seq).toBe(7n)
  })

  it('300 channels in one call (more than the numbering slots), rows shuffled: each channel 1…4 in time order', async () => {
    await sql`update guilds set max_channels = 1000 where id = ${guild}`.execute(t.db)
    const channels: string[] = []
    for (let i = 0; i < 300; i++) channels.push((await makeChannel(t.db, guild)).id)
    const rows: ImportMessageInput[] = channels.flatMap((channel_id) =>
      [3, 1, 4, 2].map((k) => ({
        channel_id,
        author_id: owner,
        content: `k${k}`,
        created_at: at(`10:00:0${k}.000`),
      })),
    )
    rows.sort((x, y) => (x.content + x.channel_id < y.content + y.channel_id ? -1 : 1))
    expect(await importMessages(importer(), rows, { method })).toEqual({ imported: 1200 })
    const bad = await sql<{ n: number }>`select count(*)::int as n from messages m
      join channels c on c.id = m.channel_id
      where m.channel_id = any(${channels}::uuid[])
        and (m.content <> 'k' || m.seq or c.last_seq <> 4)`.execute(t.db)
    expect(bad.rows[0]?.n).toBe(0)
  })

  it('ties of created_at among new ids, input in write order and reversed, ids and channel ids in upper case: positions follow (created_at, id), ids stored lower-case', async () => {
    const a = (await makeChannel(t.db, guild)).id
    const b = (await makeChannel(t.db, guild)).id
    const times = ['10:00:00.000', '10:00:00.000', '10:00:00.001', '10:00:00.001', '10:00:00.001']
    // content's first character: which import the row came in
    const rows = (call: number): ImportMessageInput[] =>
      [a, b].flatMap((channel_id) =>
        times.map((s, k) => ({
          channel_id,
          author_id: owner,
          content: `${call}k${k}`,
          created_at: at(s),
        })),
      )
    await importMessages(importer(), rows(1), { method })
    await importMessages(importer(), rows(2).reverse(), { method })
    // given ids already in write order (by channel, created_at, id), one channel spelled in upper case
    const [x, y] = idPair()
    await importMessages(
      importer(),
      [
        { id: x, channel_id: a, author_id: owner, content: '3x', created_at: at('11:00:00.000') },
        {
          id: y.toUpperCase(),
          channel_id: a.toUpperCase(),
          author_id: owner.toUpperCase(),
          content: '3y',
          created_at: at('11:00:00.000'),
        },
      ],
      { method },
    )
    // within each import and channel: positions consecutive, in (created_at, id) order
    const misplaced = await sql<{ n: number; rows: number }>`select
        count(*) filter (where seq - first + 1 <> r)::int as n, count(*)::int as rows from (
        select seq, min(seq) over w as first, row_number() over (w order by created_at, id) as r
        from messages where channel_id in (${a}, ${b})
        window w as (partition by channel_id, left(content, 1))) s`.execute(t.db)
    expect(misplaced.rows[0]).toEqual({ n: 0, rows: 22 })
    expect((await history(a)).filter(([, c]) => c.startsWith('3'))).toEqual([
      [11, '3x'],
      [12, '3y'],
    ])
    const stored = await t.db
      .selectFrom('messages')
      .select(['id', 'channel_id', 'author_id'])
      .where('id', '=', y)
      .executeTakeFirstOrThrow()
    expect(stored).toEqual({ id: y, channel_id: a, author_id: owner })
    expect(await counter(a)).toBe(12)
    expect(await counter(b)).toBe(10)
  })

  it('created_at at the edges of the day, the year and the range is kept to the millisecond', async () => {
    const channel = (await makeChannel(t.db, guild)).id
    const when = [
      '1970-01-01T00:00:00.000Z',
      '1999-12-31T23:59:59.999Z',
      '2000-02-29T12:34:56.007Z',
      '2024-06-30T09:05:03.050Z',
      '9999-12-31T23:59:59.999Z',
    ]
    await importMessages(
      importer(),
      when.map((w) => ({
        channel_id: channel,
        author_id: owner,
        content: w,
        created_at: new Date(w),
      })),
      { method },
    )
    const rows = await t.db
      .selectFrom('messages')
      .select(['content', 'created_at'])
      .where('channel_id', '=', channel)
      .orderBy('seq')
      .execute()
    expect(rows.map((r) => [r.content, r.created_at.toISOString()])).toEqual(
      when.map((w) => [w, w]),
    )
  })

  it('one counter write per channel (the rows carry their positions); positions past 2^53 are exact', async () => {
    const a = (await makeChannel(t.db, guild)).id
    const b = (await makeChannel(t.db, guild)).id
    const rows = [a, b].flatMap((channel_id) =>
      Array.from({ length: 150 }, (_, i) => ({
        channel_id,
        author_id: owner,
        content: `m${i}`,
        created_at: new Date(Date.UTC(2020, 0, 1) + i),
      })),
    )
    const updates = await importer()
      .transaction()
      .execute(async (trx) => {
        const count = async () =>
          (
            await sql<{
              n: number
            }>`select pg_stat_get_xact_tuples_updated('channels'::regclass)::int as n`.execute(trx)
          ).rows[0]?.n ?? -1
        const before = await count()
        await importMessages(trx, rows, { method })
        return (await count()) - before
      })
    expect(updates).toBe(2)
    expect(await counter(a)).toBe(150)
    expect(await counter(b)).toBe(150)
    const big = (await makeChannel(t.db, guild)).id
    await sql`update channels set last_seq = 9007199254740990 where id = ${big}`.execute(t.db)
    await importMessages(importer(), secondRows(big, 'b', [3, 1, 2]), { method })
    const seqs = await sql<{ seq: string; content: string }>`select seq::text, content
      from messages where channel_id = ${big} order by seq`.execute(t.db)
    expect(seqs.rows).toEqual([
      { seq: '9007199254740991', content: 'b1' },
      { seq: '9007199254740992', content: 'b2' },
      { seq: '9007199254740993', content: 'b3' },
    ])
  })

  it("in one transaction with createMessage before and after (0020's numbering slots): positions stay gap-free", async () => {
    const channel = (await makeChannel(t.db, guild)).id
    const db = importer()
    await db.transaction().execute(async (trx) => {
      await createMessage(trx, { channel_id: channel, author_id: owner, content: 'before' })
      await importMessages(trx, secondRows(channel, 'i', [2, 1, 3]), { method })
      await createMessage(trx, { channel_id: channel, author_id: owner, content: 'after' })
    })
    expect(await history(channel)).toEqual([
      [1, 'before'],
      [2, 'i1'],
      [3, 'i2'],
      [4, 'i3'],
      [5, 'after'],
    ])
    expect(await counter(channel)).toBe(5)
  })

  it('an archived thread is unarchived by the import, as by a send', async () => {
    const parent = (await makeChannel(t.db, guild)).id
    const thread = await createThread(t.db, { channel_id: parent, author_id: owner, name: 't' })
    await sql`update channels set archived_at = now() where id = ${thread.id}`.execute(t.db)
    await importMessages(
      importer(),
      [
        {
          channel_id: thread.id,
          author_id: owner,
          content: 'back',
          created_at: at('10:00:00.000'),
        },
      ],
      { method },
    )
    const row = await t.db
      .selectFrom('channels')
      .select(['archived_at', 'last_seq'])
      .where('id', '=', thread.id)
      .executeTakeFirstOrThrow()
    expect(row).toEqual({ archived_at: null, last_seq: 1n })
  })

  it('keeps created_at; new ids are UUIDv7 carrying created_at; content with tabs, newlines, backslashes and emoji is verbatim', async () => {
    const channel = (await makeChannel(t.db, guild)).id
    const tricky = 'tab\there\nnew line\r\nback\\slash \\N \\. 👍🏽 ünïcödé\tthen\\ü\r\n\\.'
    const when = new Date('2019-03-01T10:00:00.123Z')
    await importMessages(
      importer(),
      [{ channel_id: channel, author_id: owner, content: tricky, created_at: when }],
      { method },
    )
    const row = await t.db
      .selectFrom('messages')
      .select(['id', 'content', 'created_at', 'reply_to'])
      .where('channel_id', '=', channel)
      .executeTakeFirstOrThrow()
    expect(row.content).toBe(tricky)
    expect(row.created_at.getTime()).toBe(when.getTime())
    expect(row.reply_to).toBeNull()
    expect(row.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(Number.parseInt(row.id.replace(/-/g, '').slice(0, 12), 16)).toBe(when.getTime())
  })

  it('mentions are stored as sendMessage stores them (channel, position, author copied); replies within the import and to live messages', async () => {
    const channel = (await makeChannel(t.db, guild)).id
    const live = await createMessage(t.db, {
      channel_id: channel,
      author_id: owner,
      content: 'live',
    })
    const [first, second] = idPair()
    await importMessages(
      importer(),
      [
        {
          id: second,
          channel_id: channel,
          author_id: ada,
          content: 'reply to the first',
          created_at: at('10:00:01.000'),
          reply_to: first,
          mentions: { role_ids: [role], everyone: true },
        },
        {
          id: first,
          channel_id: channel,
          author_id: owner,
          content: 'hi @ada',
          created_at: at('10:00:00.000'),
          reply_to: live.id,
          mentions: { user_ids: [ada, ada.toUpperCase()] },
        },
      ],
      { method },
    )
    const mentions = await listMessageMentions(t.db, [first, second])
    expect(mentions).toEqual([
      { message_id: first, user_id: ada, role_id: null, everyone: false },
      { message_id: second, user_id: null, role_id: role, everyone: false },
      { message_id: second, user_id: null, role_id: null, everyone: true },
    ])
    const copied = await sql<{ ok: number }>`select count(*)::int as ok from message_mentions mm
      join messages m on m.id = mm.message_id
      where mm.message_id in (${first}, ${second})
        and mm.channel_id = m.channel_id and mm.seq = m.seq and mm.author_id = m.author_id`.execute(
      t.db,
    )
    expect(copied.rows[0]?.ok).toBe(3)
    const replies = await t.db
      .selectFrom('messages')
      .select(['id', 'reply_to', 'seq'])
      .where('id', 'in', [first, second])
      .orderBy('seq')
      .execute()
    expect(replies).toEqual([
      { id: first, reply_to: live.id, seq: 2n },
      { id: second, reply_to: first, seq: 3n },
    ])
  })
})

describe('importMessages routes', () => {
  it('a createDb instance over PostgreSQL takes the COPY route: no INSERT statement reaches messages', async () => {
    const logged: string[] = []
    const logging = createDb(t.pool, { log: (e) => logged.push(e.sql) })
    const c = (await makeChannel(t.db, guild)).id
    const rows = [1, 2, 3].map((i) => ({
      channel_id: c,
      author_id: owner,
      content: `c${i}`,
      created_at: at(`10:00:0${i}.000`),
    }))
    expect(await importMessages(logging, rows)).toEqual({ imported: 3 })
    expect(logged.some((s) => s.includes('version()'))).toBe(true)
    expect(logged.filter((s) => /insert into messages/i.test(s))).toEqual([])
    expect(await history(c)).toEqual([
      [1, 'c1'],
      [2, 'c2'],
      [3, 'c3'],
    ])
    // the same instance with method 'insert' does send one
    await importMessages(
      logging,
      rows.map((r) => ({ ...r, content: `i${r.content}` })),
      {
        method: 'insert',
      },
    )
    expect(logged.filter((s) => /insert into messages/i.test(s))).toHaveLength(1)
    expect(await counter(c)).toBe(6)
  })
})

describe('importMessages refuses before writing anything', () => {
  const valid = (channel: string): ImportMessageInput => ({
    channel_id: channel,
    author_id: owner,
    content: 'ok',
    created_at: at('10:00:00.000'),
  })

  /** Asserts `rows` is refused with `type` (message naming `rows[index]` when given) and nothing written. */
  async function refused(
    rows: unknown,
    type: new (...args: never[]) => Error,
    index?: number,
    field?: string,
  ) {
    const before = await countRows(t.db)
    const error = await importMessages(t.db, rows as ImportMessageInput[]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(type)
    if (index !== undefined) expect((error as Error).message).toContain(`rows[${index}]`)
    if (field !== undefined) expect((error as InvalidInputError).field).toBe(field)
    expect(await countRows(t.db)).toEqual(before)
  }

  it('malformed rows: InvalidInputError naming the row and field', async () => {
    const c = (await makeChannel(t.db, guild)).id
    const ok = valid(c)
    await refused('nope', InvalidInputError, undefined, 'rows')
    await refused([ok, null], InvalidInputError, 1, 'rows[1].input')
    await refused([ok, ok, { ...ok, content: '' }], InvalidInputError, 2, 'rows[2].content')
    await refused([{ ...ok, content: 'a\u0000b' }], InvalidInputError, 0, 'rows[0].content')
    await refused([ok, { ...ok, content: 'x'.repeat(4001) }], InvalidInputError, 1)
    await refused([ok, { ...ok, channel_id: 'nope' }], InvalidInputError, 1, 'rows[1].channel_id')
    await refused([{ ...ok, author_id: 7 }], InvalidInputError, 0, 'rows[0].author_id')
    await refused([{ ...ok, created_at: '2020-01-01' }], InvalidInputError, 0, 'rows[0].created_at')
    await refused([{ ...ok, created_at: new Date(Number.NaN) }], InvalidInputError, 0)
    await refused([{ ...ok, created_at: new Date(-1) }], InvalidInputError, 0, 'rows[0].created_at')
    await refused([{ ...ok, id: 'x' }], InvalidInputError, 0, 'rows[0].id')
    await refused(
      [ok, { ...ok, mentions: { user_ids: ['x'] } }],
      InvalidInputError,
      1,
      'rows[1].mentions.user_ids',
    )
    const id = '01900000-0000-7000-8000-000000000001'
    await refused(
      [{ ...ok, id }, ok, { ...ok, id: id.toUpperCase() }],
      InvalidInputError,
      2,
      'rows[2].id',
    )
  })

  it('references: unknown channel or author → NotFoundError; category, unknown mention, foreign role, bad reply → InvalidInputError; an existing id → UniqueViolationError', async () => {
    const c = (await makeChannel(t.db, guild)).id
    const category = (await makeChannel(t.db, guild, { type: 'category' })).id
    const other = (await makeChannel(t.db, guild)).id
    const otherGuild = (await makeGuild(t.db, owner)).id
    const foreignRole = (await makeRole(t.db, otherGuild)).id
    const elsewhere = await createMessage(t.db, {
      channel_id: other,
      author_id: owner,
      content: 'x',
    })
    const ok = valid(c)
    const nobody = '01900000-0000-7000-8000-0000000000ff'
    await refused([ok, { ...ok, channel_id: nobody }], NotFoundError, 1)
    await refused([ok, ok, { ...ok, author_id: nobody }], NotFoundError, 2)
    await refused([ok, { ...ok, channel_id: category }], InvalidInputError, 1, 'rows[1].channel_id')
    await refused(
      [{ ...ok, mentions: { user_ids: [nobody] } }],
      InvalidInputError,
      0,
      'rows[0].mentions.user_ids',
    )
    await refused(
      [ok, { ...ok, mentions: { role_ids: [foreignRole] } }],
      InvalidInputError,
      1,
      'rows[1].mentions.role_ids',
    )
    await refused([{ ...ok, reply_to: elsewhere.id }], InvalidInputError, 0, 'rows[0].reply_to')
    await refused([{ ...ok, reply_to: nobody }], InvalidInputError, 0, 'rows[0].reply_to')
    await refused(
      [{ ...ok, id: nobody, reply_to: nobody }],
      InvalidInputError,
      0,
      'rows[0].reply_to',
    )
    // a reply to a later row of the import (its target would be written after it)
    const [early, late] = idPair()
    await refused(
      [
        { ...ok, id: early, reply_to: late },
        { ...ok, id: late, created_at: at('11:00:00.000') },
      ],
      InvalidInputError,
      0,
      'rows[0].reply_to',
    )
    await refused([ok, { ...ok, id: elsewhere.id }], UniqueViolationError)
  })

  it("method 'copy' on a Kysely instance guildstore did not make is refused; an empty list writes nothing", async () => {
    const c = (await makeChannel(t.db, guild)).id
    await expect(importMessages(foreign, [valid(c)], { method: 'copy' })).rejects.toBeInstanceOf(
      InvalidInputError,
    )
    // refused before a position is taken: a caller's transaction that goes on and commits
    // leaves the counter where it was
    await foreign.transaction().execute(async (trx) => {
      await expect(importMessages(trx, [valid(c)], { method: 'copy' })).rejects.toBeInstanceOf(
        InvalidInputError,
      )
    })
    expect(await counter(c)).toBe(0)
    await expect(
      importMessages(t.db, [valid(c)], { method: 'fast' as 'copy' }),
    ).rejects.toBeInstanceOf(InvalidInputError)
    expect(await importMessages(t.db, [])).toEqual({ imported: 0 })
    expect(await history(c)).toEqual([])
  })

  it("inside a caller's transaction that rolls back, nothing stays", async () => {
    const c = (await makeChannel(t.db, guild)).id
    await t.db
      .transaction()
      .execute(async (trx) => {
        await importMessages(trx, [valid(c), valid(c)])
        expect(
          (
            await sql<{
              n: number
            }>`select count(*)::int as n from messages where channel_id = ${c}`.execute(trx)
          ).rows[0]?.n,
        ).toBe(2)
        throw new Error('roll back')
      })
      .catch(() => undefined)
    expect(await history(c)).toEqual([])
    expect(await counter(c)).toBe(0)
  })
})
