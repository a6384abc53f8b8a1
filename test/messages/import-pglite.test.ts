/**
 * importMessages on an embedded PGlite (through its socket server, as the
 * example runs it): COPY FROM STDIN there ends the connection (protocol
 * synchronization lost), so the default route must be the batched
 * INSERT … SELECT FROM unnest, and 0020's numbering must hold there too.
 * The migrations run on PGlite first (all of them, 0020 included). The
 * change feed works there too: 0025's in-flight registration and horizon read
 * advisory locks and pg_locks, which PGlite's single backend has.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startEmbeddedPostgres } from '../../examples/chat-service/embedded-postgres.ts'
import {
  createChannel,
  createDb,
  createGuild,
  createPool,
  createUser,
  type DB,
  importMessages,
  listEvents,
  listMessageMentions,
  runMigrations,
  sendMessage,
} from '../../src/index.ts'

let dir: string
let stop: (() => Promise<void>) | undefined
let db: Kysely<DB>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gs-import-pglite-'))
  const embedded = await startEmbeddedPostgres(join(dir, 'data'))
  stop = () => embedded.stop()
  const pool = createPool({
    connectionString: embedded.url,
    max: 1,
    connectionTimeoutMillis: 120_000,
  })
  await runMigrations(pool, { lock: false })
  db = createDb(pool, { preparedStatements: false })
}, 300_000)

afterAll(async () => {
  await db?.destroy()
  await stop?.()
  if (dir) await rm(dir, { recursive: true, force: true })
}, 60_000)

describe('importMessages on PGlite', () => {
  it('takes the batched INSERT route by default: positions in (created_at, id) order after existing ones, mentions stored', async () => {
    const { rows } = await sql<{ u: string; g: string; c: string }>`with u as (
        insert into users (username) values ('pglite_importer') returning id),
      g as (insert into guilds (name, owner_id) select 'g', id from u returning id),
      c as (insert into channels (guild_id, name, type) select id, 'c', 'text' from g returning id)
      select (select id from u) as u, (select id from g) as g, (select id from c) as c`.execute(db)
    const { u, c } = rows[0] as { u: string; g: string; c: string }
    await sql`insert into messages (channel_id, author_id, content) values (${c}, ${u}, 'live')`.execute(
      db,
    )
    const base = Date.parse('2018-01-01T00:00:00Z')
    const n = 12_000 // more than two batches
    const result = await importMessages(
      db,
      Array.from({ length: n }, (_, i) => ({
        channel_id: c,
        author_id: u,
        content: `m ${i}`,
        created_at: new Date(base + ((i * 7919) % n) * 1000),
        ...(i === 0 ? { mentions: { user_ids: [u], everyone: true } } : {}),
      })),
    )
    expect(result).toEqual({ imported: n })
    const check = await sql<{ n: number; d: number; hi: number; counter: number; bad: number }>`
      select count(*)::int as n, count(distinct seq)::int as d, max(seq)::int as hi,
        (select last_seq::int from channels where id = ${c}) as counter,
        (select count(*)::int from (select created_at, lag(created_at) over (order by seq) as prev
          from messages where channel_id = ${c} and seq > 1) s where prev > created_at) as bad
      from messages where channel_id = ${c}`.execute(db)
    expect(check.rows[0]).toEqual({ n: n + 1, d: n + 1, hi: n + 1, counter: n + 1, bad: 0 })
    const first = await sql<{
      id: string
    }>`select id from messages where channel_id = ${c} and content = 'm 0'`.execute(db)
    const id = first.rows[0]?.id as string
    expect((await listMessageMentions(db, [id])).map((m) => [m.user_id, m.everyone])).toEqual([
      [u, false],
      [null, true],
    ])
    // the connection is still usable (a COPY attempt would have ended it)
    expect((await sql<{ one: number }>`select 1 as one`.execute(db)).rows[0]?.one).toBe(1)
  }, 300_000)

  it('the change feed: positions at insert, the horizon from pg_locks (its own in-flight lock holds it back)', async () => {
    const owner = await createUser(db, { username: 'pglite_feed' })
    const guild = await createGuild(db, { name: 'feed', owner_id: owner.id })
    const channel = await createChannel(db, { guild_id: guild.id, name: 'c', type: 'text' })
    const token = (await listEvents(db, { user_id: owner.id })).next
    await db.transaction().execute(async (trx) => {
      await sendMessage(trx, { channel_id: channel.id, author_id: owner.id, content: 'in flight' })
      const { rows } = await sql<{ horizon: string; head: string }>`select
          guildstore_event_horizon()::text as horizon,
          pg_sequence_last_value('guildstore_event_positions')::text as head`.execute(trx)
      const row = rows[0] as { horizon: string; head: string }
      expect(BigInt(row.horizon)).toBeLessThan(BigInt(row.head))
    })
    const page = await listEvents(db, { user_id: owner.id, after: token })
    expect(page.events.map((e) => e.type)).toEqual(['message_created'])
    const again = await listEvents(db, { user_id: owner.id, after: page.next })
    expect(again.events).toEqual([])
  }, 120_000)
})
