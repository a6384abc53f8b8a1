/**
 * The change feed's costs (issue 23 item 9), side by side in one run, on
 * three databases of its own from the test template: one with the feed as
 * migrated (positions at insert, migration 0025; a send's event written by its
 * own statement, 0027), one with 0019's commit-time stamp put back (`stamp`:
 * the design 0025 replaced, for before/after in the same run) and one with the
 * feed's triggers disabled (the branch point). A send runs either route:
 * `statement` (sendMessage as it is: the event in its statement, 0027) or
 * `trigger` (the statements before 0027, the feed's trigger capturing the
 * insert): the branch point and the stamp run `trigger` (on the branch point,
 * with the triggers disabled, that is the send with no event at all), and the
 * feed runs both, so 0027 is measured against 0025 in the same run.
 *
 *   node bench/feed.ts [--pairs 2000] [--seconds 3] [--events 1000000]
 *                      [--subscribers 1000] [--rate 1000] [--redis URL]
 *                      [--only send,senders,catchup,delivery] [--rounds 3]
 *                      [--modes poll:event,poll:batch,hints:event,hints:batch]
 *
 * 1. send: `sendMessage` with its event (feed on) against the branch point and
 *    against the plain INSERT of the message alone (feed off), paired call by
 *    call, order flipped every pair; with today's pairing (feed off on both
 *    sides) and an A/A control; the same with 0025's trigger route and with
 *    the stamp, and the statement route against the trigger route.
 * 2. senders: 16 senders over 16 channels of one guild, messages/s, blocks of
 *    `--seconds` rotating feed on (statement route) / feed on (trigger route,
 *    0025) / stamp / off (three each).
 * 3. catchup: `listEvents` p50 for a member of 5 guilds at the head of a small
 *    table, then after `--events` events of other guilds: at the head (no
 *    page statement runs), a backlog of 1 (the page statement runs and
 *    returns nothing), and from a token before all of them (a backlog of
 *    `--events` + 1): the ratio of the last two is the cost of the backlog.
 * 4. delivery: `--subscribers` subscriptions in this process (one per user),
 *    a sender process (bench/feed-sender.ts) at `--rate` messages/s for
 *    `--seconds` × 2, four times (`--modes`): woken by the head poll alone, then
 *    by Redis hints (`--redis`, default $TEST_REDIS_URL or redis://127.0.0.1:6379),
 *    each consumed per event and with `batches()`: commit-to-iterator latency
 *    p50 / p99, deliveries/s, and the dispatcher's shared reads (count, mean
 *    round trip). The sender runs without the parent's `--cpu-prof`.
 *
 * Every session runs with synchronous_commit = off (as bench/send-paired.ts).
 * Prints markdown on stdout with the load average; figures from a loaded box
 * are indications only.
 */
import { fork } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import pg from 'pg'
import type { DB } from '../codegen/db.ts'
import { newId } from '../src/ids/new-id.ts'
import { createPool, guildstoreTypeParsers } from '../src/pool/create-pool.ts'
import { createRedis } from '../src/redis/index.ts'
import { sendMessage } from '../src/repositories/authorized-messages.ts'
import { createChannel } from '../src/repositories/channels.ts'
import type { GuildstoreEvent } from '../src/repositories/event-map.ts'
import { listEvents } from '../src/repositories/events.ts'
import { createGuild } from '../src/repositories/guilds.ts'
import { addGuildMember } from '../src/repositories/members.ts'
import { subscribeEvents } from '../src/repositories/subscribe-events.ts'
import { createUser } from '../src/repositories/users.ts'
import { createDb } from '../src/sql/create-db.ts'
import { createTestDatabase } from '../src/testing/create-test-database.ts'
import { median, paired, timed } from './paired.ts'
import { sendMessageByTrigger } from './send-trigger-route.ts'

const argv = process.argv.slice(2)
const option = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const pairs = Number(option('--pairs') ?? 2000)
const seconds = Number(option('--seconds') ?? 3)
const eventCount = Number(option('--events') ?? 1_000_000)
const subscriberCount = Number(option('--subscribers') ?? 1000)
const rate = Number(option('--rate') ?? 1000)
const redisUrl = option('--redis') ?? process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const only = new Set((option('--only') ?? 'send,senders,catchup,delivery').split(','))
const rounds = Number(option('--rounds') ?? 3)
const log = (msg: string) => process.stderr.write(`[bench:feed] ${msg}\n`)
const load = () => (loadavg()[0] as number).toFixed(2)
/** A section's markdown, on stdout as soon as it is measured. */
const emit = (section: string) => console.log(section)

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
}

/**
 * 0019's commit-time stamp, put back: position without a default and nullable
 * (0028's primary key goes, 0019's partial unique index comes back), the id
 * column (the stamp numbers a transaction's rows in id order; 0027 dropped
 * it), the xact column and its hash index, the stamp trigger, the lock key and
 * the horizon under that lock, read from the migration file.
 */
async function restoreStamp(db: Kysely<DB>): Promise<void> {
  const file = await readFile(
    new URL('../migrations/0019_change_feed.sql', import.meta.url),
    'utf8',
  )
  const from = file.indexOf('CREATE FUNCTION guildstore_event_lock_key()')
  const to = file.indexOf('-- ----', from)
  const index = /CREATE INDEX guildstore_events_unstamped_idx[^;]*;/.exec(file)?.[0]
  if (from < 0 || to < 0 || !index) throw new Error('the stamp was not found in migration 0019')
  const stamp = file
    .slice(from, to)
    .replace(
      'CREATE FUNCTION guildstore_event_horizon()',
      'CREATE OR REPLACE FUNCTION guildstore_event_horizon()',
    )
  await sql
    .raw(`alter table guildstore_events alter column position drop default;
alter table guildstore_events drop constraint guildstore_events_pkey, alter column position drop not null;
create unique index guildstore_events_position_key on guildstore_events (position) where position is not null;
alter table guildstore_events add column id bigint generated always as identity (cache 100) primary key;
alter table guildstore_events add column xact xid8 not null default pg_current_xact_id();
${index}
${stamp}`)
    .execute(db)
}

/** A database from the template, its URL with synchronous_commit off, and which feed runs. */
async function database(feed: 'on' | 'stamp' | 'off', max: number) {
  const t = await createTestDatabase({ pool: { max: 2 } })
  if (feed === 'stamp') await restoreStamp(t.db)
  if (feed === 'off') {
    const { rows } = await sql<{
      rel: string
      name: string
    }>`select c.relname as rel, tg.tgname as name
      from pg_trigger tg join pg_class c on c.oid = tg.tgrelid
      where tg.tgname like 'guildstore_events_%' and not tg.tgisinternal`.execute(t.db)
    for (const r of rows) {
      await sql`alter table ${sql.table(r.rel)} disable trigger ${sql.ref(r.name)}`.execute(t.db)
    }
  }
  const url = new URL(t.url)
  url.searchParams.set('options', '-c synchronous_commit=off')
  // Idle connections close after half a second: the three pools, and other
  // users of a shared server, stay under max_connections between blocks.
  const pool = createPool({ connectionString: url.toString(), max, idleTimeoutMillis: 500 })
  return { t, url: url.toString(), pool, db: createDb(pool) }
}

async function guildWith(db: Kysely<DB>, channels: number) {
  const owner = await createUser(db, { username: `o_${newId().slice(-8)}` })
  const guild = await createGuild(db, { name: 'bench', owner_id: owner.id })
  const list = []
  for (let i = 0; i < channels; i++) {
    list.push(await createChannel(db, { guild_id: guild.id, name: `c${i}`, type: 'text' }))
  }
  return { owner, guild, channels: list }
}

const on = await database('on', 20)
const stamp = await database('stamp', 20)
const off = await database('off', 20)
log(`databases ${on.t.name} (feed), ${stamp.t.name} (0019's stamp) and ${off.t.name} (feed off)`)

if (only.has('send')) {
  const gOn = await guildWith(on.t.db, 2)
  const gStamp = await guildWith(stamp.t.db, 2)
  const gOff = await guildWith(off.t.db, 3)
  const one = (url: string) =>
    new pg.Pool({ connectionString: url, max: 1, types: guildstoreTypeParsers })
  const [sendOnPool, sendStampPool, sendOffPool, rawA, rawB] = [
    one(on.url),
    one(stamp.url),
    one(off.url),
    one(off.url),
    one(off.url),
  ]
  const dbOn = createDb(sendOnPool)
  const dbStamp = createDb(sendStampPool)
  const dbOff = createDb(sendOffPool)
  const send =
    (db: Kysely<DB>, g: typeof gOn, route: 'statement' | 'trigger' = 'trigger') =>
    () =>
      (route === 'statement' ? sendMessage : sendMessageByTrigger)(db, {
        channel_id: (g.channels[0] as { id: string }).id,
        author_id: g.owner.id,
        content: 'hello there',
      })
  const sendOn = send(dbOn, gOn, 'statement')
  const sendOn25 = send(dbOn, gOn, 'trigger')
  const raw = (pool: pg.Pool, channel: string, author: string) => () =>
    pool.query({
      name: 'bench_plain_insert',
      text: 'insert into messages (id, channel_id, author_id, reply_to, content) values ($1, $2, $3, $4, $5) returning id, channel_id, author_id, reply_to, content, created_at, edited_at, deleted_at',
      values: [newId(), channel, author, null, 'hello there'],
    })
  const rawOffA = raw(rawA, (gOff.channels[1] as { id: string }).id, gOff.owner.id)
  const rawOffB = raw(rawB, (gOff.channels[2] as { id: string }).id, gOff.owner.id)
  await paired(sendOn, rawOffA, 300)
  await paired(sendOn25, rawOffA, 300)
  await paired(send(dbStamp, gStamp), rawOffA, 300)
  await paired(send(dbOff, gOff), rawOffB, 300)
  const l0 = load()
  const direct = await paired(sendOn, send(dbOff, gOff), pairs)
  const before = await paired(sendOn25, send(dbOff, gOff), pairs)
  const routes = await paired(sendOn, sendOn25, pairs)
  const stamped = await paired(send(dbStamp, gStamp), send(dbOff, gOff), pairs)
  const versus = await paired(sendOn, send(dbStamp, gStamp), pairs)
  const feed = await paired(sendOn, rawOffA, pairs)
  const today = await paired(send(dbOff, gOff), rawOffA, pairs)
  const control = await paired(rawOffB, rawOffA, pairs)
  const f = (x: number) => x.toFixed(0)
  emit(`### sendMessage with its event (synchronous_commit=off, ${pairs} pairs)

| pairing | median µs | ratio (second ÷ first) |
|---|---:|---:|
| sendMessage with the feed / sendMessage without it (branch point) | ${f(direct.a)} / ${f(direct.b)} | ${(direct.b / direct.a).toFixed(3)}× |
| sendMessage with the feed by 0025's trigger / without it (branch point) | ${f(before.a)} / ${f(before.b)} | ${(before.b / before.a).toFixed(3)}× |
| sendMessage with the feed: event in its statement / by 0025's trigger | ${f(routes.a)} / ${f(routes.b)} | ${(routes.b / routes.a).toFixed(3)}× |
| sendMessage with 0019's stamp / sendMessage without the feed | ${f(stamped.a)} / ${f(stamped.b)} | ${(stamped.b / stamped.a).toFixed(3)}× |
| sendMessage with the feed / sendMessage with 0019's stamp | ${f(versus.a)} / ${f(versus.b)} | ${(versus.b / versus.a).toFixed(3)}× |
| sendMessage with the feed / plain INSERT (no feed) | ${f(feed.a)} / ${f(feed.b)} | ${(feed.b / feed.a).toFixed(3)}× |
| sendMessage without the feed (branch point) / plain INSERT | ${f(today.a)} / ${f(today.b)} | ${(today.b / today.a).toFixed(3)}× |
| A/A control: plain INSERT / plain INSERT | ${f(control.a)} / ${f(control.b)} | ${(control.b / control.a).toFixed(3)}× |

1-minute load average: ${l0} before, ${load()} after.
`)
  await Promise.all([
    sendOnPool.end(),
    sendStampPool.end(),
    sendOffPool.end(),
    rawA.end(),
    rawB.end(),
  ])
  log('send done')
}

if (only.has('senders')) {
  const gOn = await guildWith(on.t.db, 16)
  const gStamp = await guildWith(stamp.t.db, 16)
  const gOff = await guildWith(off.t.db, 16)
  const block = async (db: Kysely<DB>, g: typeof gOn, route: 'statement' | 'trigger') => {
    const sendVia = route === 'statement' ? sendMessage : sendMessageByTrigger
    await new Promise((r) => setTimeout(r, 700)) // the previous block's connections close
    let count = 0
    const end = Date.now() + seconds * 1000
    await Promise.all(
      g.channels.map(async (c) => {
        while (Date.now() < end) {
          await sendVia(db, { channel_id: c.id, author_id: g.owner.id, content: 'x' })
          count++
        }
      }),
    )
    return count / seconds
  }
  const sides = [
    { db: on.db, g: gOn, route: 'statement' as const, r: [] as number[] },
    { db: on.db, g: gOn, route: 'trigger' as const, r: [] as number[] },
    { db: stamp.db, g: gStamp, route: 'trigger' as const, r: [] as number[] },
    { db: off.db, g: gOff, route: 'trigger' as const, r: [] as number[] },
  ]
  for (const s of sides) await block(s.db, s.g, s.route)
  const l0 = load()
  // `--rounds` rounds (default 3), the order rotated each round (on, on by 0025, stamp, off; on by 0025, stamp, off, on; …).
  for (let i = 0; i < rounds; i++) {
    for (let k = 0; k < sides.length; k++) {
      const s = sides[(i + k) % sides.length] as (typeof sides)[number]
      s.r.push(await block(s.db, s.g, s.route))
    }
  }
  const [rOn, rOn25, rStamp, rOff] = sides.map((s) => s.r) as [
    number[],
    number[],
    number[],
    number[],
  ]
  const f = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ')
  // Each round's on ÷ off (the blocks of one round are adjacent in time, so a
  // drift of the whole run cancels out of the ratio).
  const perRound = rOn.map((x, i) => x / (rOff[i] as number))
  emit(`### 16 senders over 16 channels of one guild (${seconds} s blocks, rotating)

| | messages/s per block | median |
|---|---|---:|
| feed on (the send's event in its statement, 0027) | ${f(rOn)} | ${median(rOn).toFixed(0)} |
| feed on, the event by 0025's trigger | ${f(rOn25)} | ${median(rOn25).toFixed(0)} |
| 0019's commit-time stamp | ${f(rStamp)} | ${median(rStamp).toFixed(0)} |
| feed off (branch point) | ${f(rOff)} | ${median(rOff).toFixed(0)} |
| ratio on ÷ off | | ${(median(rOn) / median(rOff)).toFixed(3)}× |
| median of each round's on ÷ off (${rounds} rounds) | ${perRound.map((x) => x.toFixed(3)).join(', ')} | ${median(perRound).toFixed(3)}× |
| ratio on by 0025's trigger ÷ off | | ${(median(rOn25) / median(rOff)).toFixed(3)}× |
| ratio stamp ÷ off | | ${(median(rStamp) / median(rOff)).toFixed(3)}× |

1-minute load average: ${l0} before, ${load()} after.
`)
  log('senders done')
}

if (only.has('catchup')) {
  const reader = await createUser(on.t.db, { username: `r_${newId().slice(-8)}` })
  for (let i = 0; i < 5; i++) {
    const g = await guildWith(on.t.db, 2)
    await addGuildMember(on.t.db, { guild_id: g.guild.id, user_id: reader.id })
    for (let k = 0; k < 20; k++) {
      await sendMessage(on.t.db, {
        channel_id: (g.channels[0] as { id: string }).id,
        author_id: g.owner.id,
        content: `m${k}`,
      })
    }
  }
  const measure = async (after: string, n = 300) => {
    const xs: number[] = []
    for (let i = 0; i < n; i++)
      xs.push(await timed(() => listEvents(on.db, { user_id: reader.id, after })))
    return median(xs)
  }
  const old = (await listEvents(on.db, { user_id: reader.id })).next
  const small = await measure(old)
  const [{ n: before } = { n: 0 }] = (
    await sql<{ n: number }>`select count(*)::int as n from guildstore_events`.execute(on.t.db)
  ).rows
  log(`inserting ${eventCount} events of other guilds …`)
  const others = Array.from({ length: 100 }, () => newId())
  for (let done = 0; done < eventCount; done += 100_000) {
    const n = Math.min(100_000, eventCount - done)
    await sql`insert into guildstore_events (type, guild_id, data)
      select 'app.bench', (${others}::uuid[])[1 + g % 100], '{}'::jsonb from generate_series(1, ${n}) g`.execute(
      on.t.db,
    )
  }
  await sql`vacuum analyze guildstore_events`.execute(on.t.db)
  const headToken = (await listEvents(on.db, { user_id: reader.id })).next
  // One more event of another guild: from headToken the page statement runs
  // (a backlog of 1), where at the head listEvents answers without it.
  await sql`insert into guildstore_events (type, guild_id, data)
    values ('app.bench', ${others[0]}::uuid, '{}'::jsonb)`.execute(on.t.db)
  const head = (await listEvents(on.db, { user_id: reader.id })).next
  const l0 = load()
  const atHead = await measure(head)
  const one = await measure(headToken)
  const backlog = await measure(old)
  const smallAgain = await measure(old)
  emit(`### listEvents catch-up (a member of 5 guilds, limit 100)

| table | token | p50 µs |
|---|---|---:|
| ${before} events | at the head (no page statement: nothing can follow the horizon) | ${small.toFixed(0)} |
| ${before + eventCount + 1} events | at the head (no page statement) | ${atHead.toFixed(0)} |
| ${before + eventCount + 1} events | backlog 1 (one event of another guild: the page statement runs, returns none) | ${one.toFixed(0)} |
| ${before + eventCount + 1} events | backlog ${eventCount + 1}, none visible to the user | ${backlog.toFixed(0)} (first), ${smallAgain.toFixed(0)} (again) |
| ratio backlog ${eventCount + 1} ÷ backlog 1 | | ${(backlog / one).toFixed(2)}× |

1-minute load average: ${l0} before, ${load()} after.
`)
  log('catchup done')
}

if (only.has('delivery')) {
  const g = await guildWith(on.t.db, 1)
  const channel = (g.channels[0] as { id: string }).id
  const users: string[] = []
  for (let i = 0; i < subscriberCount; i++) {
    const u = await createUser(on.t.db, { username: `s_${i}_${newId().slice(-6)}` })
    await addGuildMember(on.t.db, { guild_id: g.guild.id, user_id: u.id })
    users.push(u.id)
  }
  const rows: string[] = []
  // Four runs: the dispatcher woken by its 100 ms head poll alone, then by Redis hints the
  // sender publishes after each commit (as a host does), each consumed per event (`for
  // await (const e of sub)`) and in batches (`for await (const batch of sub.batches())`).
  // The sender is its own process.
  const modes = (option('--modes') ?? 'poll:event,poll:batch,hints:event,hints:batch').split(',')
  for (const mode of modes) {
    const [wake, consume] = mode.split(':') as ['poll' | 'hints', 'event' | 'batch']
    const hints = wake === 'hints' ? 'Redis hints' : 'poll only (100 ms)'
    const redis = wake === 'hints' ? createRedis({ url: redisUrl }) : null
    const subPool = createPool({ connectionString: on.url, max: 3 })
    // The dispatcher's reads: how many, and their time in the database round trip.
    const reads = { n: 0, ms: 0, audience: 0 }
    const subDb = createDb(subPool, {
      log: (entry) => {
        if (entry.sql.includes('x.user_id = u.id')) {
          reads.n++
          reads.ms += entry.durationMs
        } else if (entry.sql.includes("'c' as kind")) reads.audience += entry.durationMs
      },
    })
    const committedAt = new Map<number, number>()
    const receivedAt: Array<[number, number]> = []
    let delivered = 0
    const subs = users.map((user_id) => subscribeEvents(subDb, redis, { user_id }))
    await Promise.all(subs.map((s) => s.ready()))
    const now = () => performance.timeOrigin + performance.now()
    // One subscriber in ten records its receipt times (the others only count):
    // 100,000s of samples per second would be the bench's own load.
    const record = (e: GuildstoreEvent, at: number) => {
      const content = (e.data as { message?: { content: string } | null }).message?.content
      if (content?.startsWith('d')) receivedAt.push([Number(content.slice(1)), at])
    }
    const loops = subs.map(async (s, i) => {
      if (consume === 'batch') {
        for await (const batch of s.batches()) {
          if (i % 10 === 0) {
            const at = now()
            for (const e of batch) record(e, at)
          }
          delivered += batch.length
        }
      } else {
        for await (const e of s) {
          if (i % 10 === 0) record(e, now())
          delivered++
        }
      }
    })
    const l0 = load()
    const start = performance.now()
    const child = fork(
      fileURLToPath(new URL('./feed-sender.ts', import.meta.url)),
      [
        on.url,
        channel,
        g.owner.id,
        String(rate),
        String(seconds * 2),
        ...(redis ? [redisUrl] : []),
      ],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] },
    )
    const summary = await new Promise<{ sent: number; seconds: number }>((resolve, reject) => {
      child.on(
        'message',
        (m: { k?: number; at?: number; done?: boolean; sent: number; seconds: number }) => {
          if (m.done) resolve(m)
          else if (m.k !== undefined && m.at !== undefined) committedAt.set(m.k, m.at)
        },
      )
      child.on('exit', (code) => code && reject(new Error(`the sender exited with ${code}`)))
    })
    const expected = summary.sent * subscriberCount
    const deadline = Date.now() + 60_000
    while (delivered < expected && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50))
    const allSeconds = (performance.now() - start) / 1000
    const latencies = receivedAt.flatMap(([k, at]) => {
      const c = committedAt.get(k)
      return c === undefined ? [] : [at - c]
    })
    rows.push(
      `| ${hints} | ${consume === 'batch' ? 'batches()' : 'per event'} | ${summary.sent} | ${(summary.sent / summary.seconds).toFixed(0)} | ${delivered} of ${expected} | ${(delivered / allSeconds).toFixed(0)} | ${quantile(latencies, 0.5).toFixed(1)} | ${quantile(latencies, 0.99).toFixed(1)} | ${reads.n} (${(reads.ms / Math.max(1, reads.n)).toFixed(1)} ms, audience ${(reads.audience / Math.max(1, reads.n)).toFixed(1)} ms) | ${l0} → ${load()} |`,
    )
    await Promise.all(subs.map((s) => s.close()))
    await Promise.all(loops)
    await subDb.destroy()
    await redis?.quit()
    log(`delivery (${hints}, ${consume}) done`)
  }
  emit(`### Delivery: ${subscriberCount} subscribers in one process, a sender process at ${rate} messages/s

| wake-up | consumed | sent | sent/s | deliveries | deliveries/s | commit → iterator p50 ms | p99 ms | shared reads (mean round trip of the page and of its audience) | 1-min load before → after |
|---|---|---:|---:|---:|---:|---:|---:|---|---|
${rows.join('\n')}

Latency: the sender's commit time (reported over IPC) to the iterator's \`next()\` in one subscriber of ten.
`)
}

await on.db.destroy()
await stamp.db.destroy()
await off.db.destroy()
await on.t.drop()
await stamp.t.drop()
await off.t.drop()
