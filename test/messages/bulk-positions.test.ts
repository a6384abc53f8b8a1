/**
 * Migration 0020: a statement's messages are numbered in one step. A plain-SQL
 * INSERT … SELECT into one or many channels gets gap-free positions in the
 * order the statement produces its rows, and the channel's counter row is
 * written twice per statement and channel (taken, then stored), whatever the
 * number of rows: linear, where 0003's trigger wrote it once per row (each
 * write walking the versions the earlier ones left, O(n²)). Single-row writes,
 * sends, later statements of the same transaction, savepoints, nested inserts
 * and more channels than the trigger has slots keep positions exact.
 */
import { type Kysely, sql } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  CheckViolationError,
  createMessage,
  type DB,
  listChannelMessages,
  sendMessage,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuild, makeMember, makeUser } from '../support/factories.ts'

const t = useTestDatabase({ max: 4 })

let owner: string
let guild: string

/** Per channel: row count, distinct positions, lowest and highest, and the counter. */
async function positions(db: Kysely<DB>, channel: string) {
  const r = await sql<{ n: number; d: number; lo: number; hi: number; counter: number }>`
    select count(*)::int as n, count(distinct m.seq)::int as d, coalesce(min(m.seq), 0)::int as lo,
      coalesce(max(m.seq), 0)::int as hi, (select c.last_seq::int from channels c where c.id = ${channel}) as counter
    from messages m where m.channel_id = ${channel}`.execute(db)
  return r.rows[0]
}

/** Asserts positions 1…n, unique, and the counter at n. */
async function expectGapFree(db: Kysely<DB>, channel: string, n: number) {
  expect(await positions(db, channel)).toEqual({ n, d: n, lo: n > 0 ? 1 : 0, hi: n, counter: n })
}

/** Rows of `channel` inserted by one plain INSERT … SELECT of `n` rows. */
const insertSelect = (db: Kysely<DB>, channel: string, n: number) =>
  sql`insert into messages (id, channel_id, author_id, content)
    select guildstore_uuidv7(), ${channel}::uuid, ${owner}::uuid, 'bulk ' || g
    from generate_series(1, ${n}::int) g`.execute(db)

/** Updates of `channels` rows the backend counted so far (not yet flushed to the statistics). */
const channelUpdateCount = async (db: Kysely<DB>) =>
  (
    await sql<{
      n: number
    }>`select pg_stat_get_xact_tuples_updated('channels'::regclass)::int as n`.execute(db)
  ).rows[0]?.n ?? -1

/**
 * Runs `write` in a transaction and returns how many `channels` rows it
 * updated: the backend's pending count after minus before (statistics are
 * flushed only between transactions, so the difference is this one's).
 */
async function channelUpdates(write: (trx: Kysely<DB>) => Promise<unknown>): Promise<number> {
  return t.db.transaction().execute(async (trx) => {
    const before = await channelUpdateCount(trx)
    await write(trx)
    return (await channelUpdateCount(trx)) - before
  })
}

beforeAll(async () => {
  owner = (await makeUser(t.db)).id
  guild = (await makeGuild(t.db, owner)).id
})

describe('numbering a statement in one step (0020)', () => {
  it('20 000 rows in one statement: positions 1…20 000 in row order, the counter row written twice', async () => {
    const channel = (await makeChannel(t.db, guild)).id
    const updates = await channelUpdates((trx) => insertSelect(trx, channel, 20_000))
    // one take (UPDATE … last_seq + 1) and one store at the statement's end;
    // 0003's trigger made 20 000
    expect(updates).toBe(2)
    await expectGapFree(t.db, channel, 20_000)
    const order = await sql<{ bad: number }>`select count(*)::int as bad from (
      select seq, lag(seq) over (order by (substr(content, 6))::int) as prev
      from messages where channel_id = ${channel}) s where prev is not null and seq <> prev + 1`.execute(
      t.db,
    )
    expect(order.rows[0]?.bad).toBe(0)
  })

  it('a single-row insert writes the counter once, as before', async () => {
    const channel = (await makeChannel(t.db, guild)).id
    const updates = await channelUpdates((trx) =>
      createMessage(trx, { channel_id: channel, author_id: owner, content: 'one' }),
    )
    expect(updates).toBe(1)
    await expectGapFree(t.db, channel, 1)
  })

  it('three channels interleaved row by row in one statement: each gap-free, two counter writes each', async () => {
    // Three channels in three different slots (0020: a channel's slot is
    // uuid_hash(id) & 255; two channels sharing one take positions row by row,
    // by design, so three random channels would collide about once in 85 runs).
    const channels: string[] = []
    const slots = new Set<number>()
    while (channels.length < 3) {
      const id = (await makeChannel(t.db, guild)).id
      const slot = (
        await sql<{ s: number }>`select uuid_hash(${id}::uuid) & 255 as s`.execute(t.db)
      ).rows[0]?.s
      if (slot === undefined || slots.has(slot)) continue
      slots.add(slot)
      channels.push(id)
    }
    await createMessage(t.db, { channel_id: channels[0] as string, author_id: owner, content: 'x' })
    const updates = await channelUpdates((trx) =>
      sql`insert into messages (id, channel_id, author_id, content)
        select guildstore_uuidv7(), (${channels}::uuid[])[1 + g % 3], ${owner}::uuid, 'i ' || g
        from generate_series(0, 2999) g`.execute(trx),
    )
    expect(updates).toBe(6)
    await expectGapFree(t.db, channels[0] as string, 1001)
    await expectGapFree(t.db, channels[1] as string, 1000)
    await expectGapFree(t.db, channels[2] as string, 1000)
  })

  it('more channels than slots (300, interleaved): every channel gap-free', async () => {
    const ids: string[] = []
    for (let i = 0; i < 300; i++) ids.push(newChannelId())
    await sql`insert into channels (id, guild_id, name, type)
      select c, ${guild}::uuid, 'many', 'text' from unnest(${ids}::uuid[]) c`.execute(t.db)
    await t.db.transaction().execute(async (trx) => {
      await sql`insert into messages (id, channel_id, author_id, content)
        select guildstore_uuidv7(), (${ids}::uuid[])[1 + g % 300], ${owner}::uuid, 'm ' || g
        from generate_series(0, 2999) g`.execute(trx)
    })
    const bad = await sql<{ n: number }>`select count(*)::int as n from (
      select c.id, c.last_seq, count(m.id) as n, count(distinct m.seq) as d, min(m.seq) as lo, max(m.seq) as hi
      from channels c join messages m on m.channel_id = c.id where c.id = any(${ids}::uuid[])
      group by c.id, c.last_seq) s where not (n = 10 and d = 10 and lo = 1 and hi = 10 and last_seq = 10)`.execute(
      t.db,
    )
    expect(bad.rows[0]?.n).toBe(0)
  })

  it('later statements of the same transaction continue from the stored counter (createMessage, sendMessage, another INSERT … SELECT)', async () => {
    const channel = (await makeChannel(t.db, guild)).id
    const member = (await makeUser(t.db)).id
    await makeMember(t.db, guild, member)
    const seqs = await t.db.transaction().execute(async (trx) => {
      await insertSelect(trx, channel, 500)
      const a = await createMessage(trx, { channel_id: channel, author_id: owner, content: 'a' })
      await insertSelect(trx, channel, 500)
      const b = await sendMessage(trx, { channel_id: channel, author_id: member, content: 'b' })
      await insertSelect(trx, channel, 10)
      return [a.seq, b.seq]
    })
    expect(seqs).toEqual([501n, 1002n])
    await expectGapFree(t.db, channel, 1012)
  })

  it('a single-row insert, then a send, then another single-row insert in one transaction: the second insert sees the send moved the counter', async () => {
    const channel = (await makeChannel(t.db, guild)).id
    const member = (await makeUser(t.db)).id
    await makeMember(t.db, guild, member)
    const seqs = await t.db.transaction().execute(async (trx) => {
      const a = await createMessage(trx, { channel_id: channel, author_id: owner, content: 'a' })
      const b = await sendMessage(trx, { channel_id: channel, author_id: member, content: 'b' })
      const c = await createMessage(trx, { channel_id: channel, author_id: owner, content: 'c' })
      const d = await createMessage(trx, { channel_id: channel, author_id: owner, content: 'd' })
      await sql`update channels set last_seq = last_seq + 1 where id = ${channel}`.execute(trx)
      await sql`update channels set last_seq = last_seq - 1 where id = ${channel}`.execute(trx)
      await insertSelect(trx, channel, 3)
      const e = await createMessage(trx, { channel_id: channel, author_id: owner, content: 'e' })
      return [a.seq, b.seq, c.seq, d.seq, e.seq]
    })
    expect(seqs).toEqual([1n, 2n, 3n, 4n, 8n])
    await expectGapFree(t.db, channel, 8)
  })

  it('a failed statement rolled back to a savepoint leaves no stale running position', async () => {
    const channel = (await makeChannel(t.db, guild)).id
    const category = (await makeChannel(t.db, guild, { type: 'category' })).id
    await t.db.transaction().execute(async (trx) => {
      await insertSelect(trx, channel, 100)
      await sql`savepoint s`.execute(trx)
      // 200 rows numbered, then a row for a category: the statement fails
      const failed = sql`insert into messages (id, channel_id, author_id, content)
        select guildstore_uuidv7(), case when g <= 200 then ${channel}::uuid else ${category}::uuid end,
          ${owner}::uuid, 'f ' || g from generate_series(1, 201) g`.execute(trx)
      await expect(failed).rejects.toThrow(/category|messages_channel_kind/)
      await sql`rollback to savepoint s`.execute(trx)
      await insertSelect(trx, channel, 50)
    })
    await expectGapFree(t.db, channel, 150)
  })

  it('an INSERT … SELECT touching a category refuses it (CheckViolationError) and writes nothing', async () => {
    const channel = (await makeChannel(t.db, guild)).id
    const category = (await makeChannel(t.db, guild, { type: 'category' })).id
    const before = await countRows(t.db, ['messages'])
    const attempt = t.db
      .transaction()
      .execute((trx) =>
        sql`insert into messages (id, channel_id, author_id, content)
          select guildstore_uuidv7(), c, ${owner}::uuid, 'x'
          from unnest(array[${channel}::uuid, ${category}::uuid]) c`.execute(trx),
      )
      .catch((error: unknown) => error)
    const error = await attempt
    expect(String((error as Error).message)).toMatch(/category/)
    expect(await countRows(t.db, ['messages'])).toEqual(before)
    await expectGapFree(t.db, channel, 0)
    // typed when it comes through a library call
    await expect(
      createMessage(t.db, { channel_id: category, author_id: owner, content: 'no' }),
    ).rejects.toBeInstanceOf(CheckViolationError)
  })

  it('a nested insert (from a function the outer INSERT calls per row) keeps positions unique and gap-free', async () => {
    const channel = (await makeChannel(t.db, guild)).id
    // one session for the temp function and the statement
    await t.db.connection().execute(async (conn) => {
      await sql`create or replace function pg_temp.also_insert(channel uuid, author uuid, g int) returns text
        language plpgsql volatile as $$ begin
          if g % 10 = 0 then
            insert into messages (id, channel_id, author_id, content) values (guildstore_uuidv7(), channel, author, 'nested');
          end if;
          return 'outer ' || g;
        end $$`.execute(conn)
      await sql`insert into messages (id, channel_id, author_id, content)
        select guildstore_uuidv7(), ${channel}::uuid, ${owner}::uuid, pg_temp.also_insert(${channel}::uuid, ${owner}::uuid, g)
        from generate_series(1, 100) g`.execute(conn)
    })
    await expectGapFree(t.db, channel, 110)
  })

  it('history pages read the bulk rows in position order', async () => {
    const channel = (await makeChannel(t.db, guild)).id
    await insertSelect(t.db, channel, 120)
    const page = await listChannelMessages(t.db, channel, { limit: 100 })
    expect(page.map((m) => m.seq)).toEqual(Array.from({ length: 100 }, (_, i) => BigInt(120 - i)))
  })
})

/** A fresh UUIDv7-looking id for raw inserts. */
function newChannelId(): string {
  return crypto.randomUUID()
}
