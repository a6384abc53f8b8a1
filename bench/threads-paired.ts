/**
 * Threads (issue 24 item 2), paired call by call as bench/send-paired.ts does
 * (bench/paired.ts): the two contenders alternate every call, each on a pool
 * of one connection, and the figure is the ratio of their median latencies.
 *
 *   - `sendMessage` into a thread / raw `pg` running the identical statement
 *     (captured from guildstore, bench/capture.ts) as a named prepared
 *     statement into another thread: what the library adds (issue 24's
 *     "≥ 0.95× raw on the same SQL");
 *   - `sendMessage` into a thread / the plain INSERT into another thread;
 *   - `sendMessage` into a thread / `sendMessage` into a text channel (what a
 *     thread adds to a send);
 *   - `readChannelMessages` of a thread (a page of 50) / raw `pg` running the
 *     identical statement;
 *   - `readChannelMessages` of a thread (a page of 50) / the same page's plain SELECT;
 *   - `readChannelMessages` of a thread / of a text channel (what a thread adds to a read);
 *   - `listActiveThreads` of a guild with 10,000 archived threads / of a guild
 *     with none (both with the same 20 active threads), each on a pool of its
 *     own with `plan_cache_mode = force_generic_plan`: the execution alone. (On
 *     this two-guild data set the guild with none is estimated at 1 row, so a
 *     connection whose first calls were for it kept custom plans and planned
 *     every call, ~2-3 ms: a planner artifact of two guilds, which the
 *     generic plan removes; see the report);
 *   - an A/A control (the plain INSERT against itself, on two pools).
 *
 *   node bench/threads-paired.ts [--pairs 2000] [--archived 10000]
 *
 * Every session runs with `synchronous_commit = off`. It builds a database of
 * its own (from the test template). Prints a markdown table on stdout with
 * the load average beside it.
 */
import { loadavg } from 'node:os'
import pg from 'pg'
import { createPool, guildstoreTypeParsers } from '../src/pool/create-pool.ts'
import { readChannelMessages, sendMessage } from '../src/repositories/authorized-messages.ts'
import { createChannel } from '../src/repositories/channels.ts'
import { createGuild } from '../src/repositories/guilds.ts'
import { addGuildMember } from '../src/repositories/members.ts'
import { createThread, listActiveThreads } from '../src/repositories/threads.ts'
import { createUser } from '../src/repositories/users.ts'
import { createDb } from '../src/sql/create-db.ts'
import { createTestDatabase } from '../src/testing/create-test-database.ts'
import { captureSql, runRaw, toRawStatement } from './capture.ts'
import { paired, RETURNING, rawInsert as rawInsertOf } from './paired.ts'

const argv = process.argv.slice(2)
const option = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const pairs = Number(option('--pairs') ?? 2000)
const archivedCount = Number(option('--archived') ?? 10_000)
const log = (msg: string) => process.stderr.write(`[bench:threads-paired] ${msg}\n`)

const t = await createTestDatabase({ pool: { max: 2 } })
const url = new URL(t.url)
url.searchParams.set('options', '-c synchronous_commit=off')
const gsPool = createPool({ connectionString: url.toString(), max: 1 })
const gsPoolB = createPool({ connectionString: url.toString(), max: 1 })
const rawA = new pg.Pool({ connectionString: url.toString(), max: 1, types: guildstoreTypeParsers })
const rawB = new pg.Pool({ connectionString: url.toString(), max: 1, types: guildstoreTypeParsers })
const db = createDb(gsPool)
const dbB = createDb(gsPoolB)
const generic = new URL(url)
generic.searchParams.set(
  'options',
  '-c synchronous_commit=off -c plan_cache_mode=force_generic_plan',
)
const listPoolA = createPool({ connectionString: generic.toString(), max: 1 })
const listPoolB = createPool({ connectionString: generic.toString(), max: 1 })
const listDbA = createDb(listPoolA)
const listDbB = createDb(listPoolB)

const owner = await createUser(t.db, { username: 'bench_owner' })
const member = await createUser(t.db, { username: 'bench_member' })

/** A guild with the member, a text channel and `active` active threads. */
async function guildWithThreads(name: string, active: number) {
  const guild = await createGuild(t.db, { name, owner_id: owner.id })
  await addGuildMember(t.db, { guild_id: guild.id, user_id: member.id })
  const channel = await createChannel(t.db, { guild_id: guild.id, name: 'general', type: 'text' })
  const threads = []
  for (let i = 0; i < active; i++) {
    threads.push(
      await createThread(t.db, { channel_id: channel.id, author_id: owner.id, name: `t${i}` }),
    )
  }
  return { guild, channel, threads }
}

const busy = await guildWithThreads('busy', 20)
const quiet = await guildWithThreads('quiet', 20)
log(`inserting ${archivedCount} archived threads`)
await t.pool.query(
  `insert into channels (id, guild_id, parent_id, name, type, auto_archive_minutes, archived_at)
   select guildstore_uuidv7(), $1, $2, 'old ' || g, 'public_thread', 60, now() - make_interval(mins => g)
   from generate_series(1, $3::int) g`,
  [busy.guild.id, busy.channel.id, archivedCount],
)
await t.pool.query('analyze channels')

// One thread per contender: each keeps its own row hot, as one sender would.
const [gsThread, rawThreadA, rawThreadB] = busy.threads as unknown as [
  { id: string },
  { id: string },
  { id: string },
]
const rawInsert = (pool: pg.Pool, channel_id: string) => rawInsertOf(pool, channel_id, member.id)
const gsSend = () =>
  sendMessage(db, { channel_id: gsThread.id, author_id: member.id, content: 'hello there' })
const gsChannelSend = () =>
  sendMessage(dbB, { channel_id: quiet.channel.id, author_id: member.id, content: 'hello there' })
const RAW_PAGE = `select ${RETURNING}, seq from messages
  where channel_id = $1 and deleted_at is null order by seq desc limit $2`
const rawPage = () =>
  rawA.query({ name: 'bench_plain_page', text: RAW_PAGE, values: [gsThread.id, 50] })
const gsPage = () =>
  readChannelMessages(db, { channel_id: gsThread.id, user_id: member.id, limit: 50 })
const gsChannelPage = () =>
  readChannelMessages(dbB, { channel_id: quiet.channel.id, user_id: member.id, limit: 50 })
// The raw contender on the same SQL: guildstore's own statements, captured on a
// warm call (one statement each).
const sendArgs = { channel_id: rawThreadA.id, author_id: member.id, content: 'hello there' }
const pageArgs = { channel_id: gsThread.id, user_id: member.id, limit: 50 }
const oneStatement = async (
  call: Parameters<typeof captureSql>[1],
  args: Record<string, unknown>,
) => {
  await captureSql(t.pool, call) // the first call stores the member's permissions there
  const captured = await captureSql(t.pool, call)
  if (captured.length !== 1) throw new Error(`expected one statement, got ${captured.length}`)
  return toRawStatement(captured[0] as (typeof captured)[0], args, { freshIds: true })
}
const sendSt = await oneStatement((d) => sendMessage(d, sendArgs), sendArgs)
const pageSt = await oneStatement((d) => readChannelMessages(d, pageArgs), pageArgs)
const rawSameSend = () => runRaw(rawA, sendSt, sendArgs)
const rawSamePage = () => runRaw(rawB, pageSt, pageArgs)
const listBusy = () => listActiveThreads(listDbA, { guild_id: busy.guild.id, user_id: member.id })
const listQuiet = () => listActiveThreads(listDbB, { guild_id: quiet.guild.id, user_id: member.id })

// Warm-up: prepares the statements and stores the member's permissions; 200 messages to page.
await paired(gsSend, rawInsert(rawA, rawThreadA.id), 200)
await paired(rawInsert(rawA, rawThreadA.id), rawInsert(rawB, rawThreadB.id), 200)
await paired(gsPage, rawPage, 200)
await paired(gsSend, rawSameSend, 200)
await paired(gsPage, rawSamePage, 200)
await paired(gsSend, gsChannelSend, 200)
await paired(gsPage, gsChannelPage, 200)
await paired(listBusy, listQuiet, 200)
const [busyPage, quietPage] = await Promise.all([listBusy(), listQuiet()])
if (busyPage.length !== 20 || quietPage.length !== 20) throw new Error('expected 20 active threads')

const loadBefore = loadavg()[0] as number
const sameSend = await paired(gsSend, rawSameSend, pairs)
const samePage = await paired(gsPage, rawSamePage, pairs)
const send = await paired(gsSend, rawInsert(rawA, rawThreadA.id), pairs)
const versus = await paired(gsSend, gsChannelSend, pairs)
const page = await paired(gsPage, rawPage, pairs)
const pageVersus = await paired(gsPage, gsChannelPage, pairs)
const list = await paired(listBusy, listQuiet, pairs)
const control = await paired(rawInsert(rawB, rawThreadB.id), rawInsert(rawA, rawThreadA.id), pairs)
const loadAfter = loadavg()[0] as number
log(`done: ${pairs} pairs each`)

const f = (x: number) => x.toFixed(0)
console.log(`| pairing (synchronous_commit=off, ${pairs} pairs) | median µs | ratio |
|---|---:|---:|
| sendMessage into a thread / raw pg, the identical statement | ${f(sameSend.a)} / ${f(sameSend.b)} | ${(sameSend.b / sameSend.a).toFixed(3)}× (raw ÷ guildstore) |
| readChannelMessages of a thread (50) / raw pg, the identical statement | ${f(samePage.a)} / ${f(samePage.b)} | ${(samePage.b / samePage.a).toFixed(3)}× (raw ÷ guildstore) |
| sendMessage into a thread / raw pg INSERT into a thread | ${f(send.a)} / ${f(send.b)} | ${(send.b / send.a).toFixed(3)}× (raw ÷ guildstore) |
| sendMessage into a thread / sendMessage into a text channel | ${f(versus.a)} / ${f(versus.b)} | ${(versus.b / versus.a).toFixed(3)}× (channel ÷ thread) |
| readChannelMessages of a thread (50) / raw pg SELECT of the page | ${f(page.a)} / ${f(page.b)} | ${(page.b / page.a).toFixed(3)}× (raw ÷ guildstore) |
| readChannelMessages of a thread / of a text channel (50) | ${f(pageVersus.a)} / ${f(pageVersus.b)} | ${(pageVersus.b / pageVersus.a).toFixed(3)}× (channel ÷ thread) |
| listActiveThreads (generic plans): ${archivedCount} archived / none (20 active each) | ${f(list.a)} / ${f(list.b)} | ${(list.a / list.b).toFixed(3)}× (with ÷ without) |
| A/A control: raw INSERT / raw INSERT | ${f(control.a)} / ${f(control.b)} | ${(control.b / control.a).toFixed(3)}× |

1-minute load average: ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after.`)

await Promise.all([
  gsPool.end(),
  gsPoolB.end(),
  listPoolA.end(),
  listPoolB.end(),
  rawA.end(),
  rawB.end(),
])
await t.drop()
