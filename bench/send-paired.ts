/**
 * `sendMessage` against the plain INSERT of the same row, paired call by call:
 * the two contenders alternate every call (the order flips every pair), each on
 * a pool of one connection, and the figure is the ratio of their median
 * latencies. On a 2-core box that ratio is stable to about ±1%, where
 * throughput blocks of a fraction of a second move ±20%. An A/A control (the
 * raw INSERT against itself, on two pools) shows the noise floor of the run.
 *
 *   node bench/send-paired.ts [--pairs 4000] [--fsync]
 *
 * Without `--fsync` every session runs with `synchronous_commit = off`, which
 * isolates the statement from the WAL flush. It builds a database of its own
 * (from the test template), so it never disturbs `npm run bench`'s data set.
 * Prints a markdown table on stdout with the load average beside it.
 */
import { loadavg } from 'node:os'
import pg from 'pg'
import { newId } from '../src/ids/new-id.ts'
import { createPool, guildstoreTypeParsers } from '../src/pool/create-pool.ts'
import { sendMessage } from '../src/repositories/authorized-messages.ts'
import { createChannel } from '../src/repositories/channels.ts'
import { createGuild } from '../src/repositories/guilds.ts'
import { addGuildMember } from '../src/repositories/members.ts'
import { createUser } from '../src/repositories/users.ts'
import { createDb } from '../src/sql/create-db.ts'
import { createTestDatabase } from '../src/testing/create-test-database.ts'
import { paired } from './paired.ts'

const argv = process.argv.slice(2)
const option = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const pairs = Number(option('--pairs') ?? 4000)
const fsync = argv.includes('--fsync')
const log = (msg: string) => process.stderr.write(`[bench:send-paired] ${msg}\n`)

const t = await createTestDatabase({ pool: { max: 2 } })
const url = new URL(t.url)
if (!fsync) url.searchParams.set('options', '-c synchronous_commit=off')
const gsPool = createPool({ connectionString: url.toString(), max: 1 })
const rawA = new pg.Pool({ connectionString: url.toString(), max: 1, types: guildstoreTypeParsers })
const rawB = new pg.Pool({ connectionString: url.toString(), max: 1, types: guildstoreTypeParsers })
const db = createDb(gsPool)

const owner = await createUser(t.db, { username: 'bench_owner' })
const member = await createUser(t.db, { username: 'bench_member' })
const guild = await createGuild(t.db, { name: 'bench', owner_id: owner.id })
await addGuildMember(t.db, { guild_id: guild.id, user_id: member.id })
// One channel per contender: each keeps its own counter row hot, as one sender would.
const gsChannel = await createChannel(t.db, { guild_id: guild.id, name: 'gs', type: 'text' })
const rawChannelA = await createChannel(t.db, { guild_id: guild.id, name: 'raw-a', type: 'text' })
const rawChannelB = await createChannel(t.db, { guild_id: guild.id, name: 'raw-b', type: 'text' })

const RETURNING = 'id, channel_id, author_id, reply_to, content, created_at, edited_at, deleted_at'
const RAW_INSERT = `insert into messages (id, channel_id, author_id, reply_to, content) values ($1, $2, $3, $4, $5) returning ${RETURNING}`
const rawInsert = (pool: pg.Pool, channel_id: string) => () =>
  pool.query({
    name: 'bench_plain_insert',
    text: RAW_INSERT,
    values: [newId(), channel_id, member.id, null, 'hello there'],
  })
const gsSend = () =>
  sendMessage(db, { channel_id: gsChannel.id, author_id: member.id, content: 'hello there' })

// Warm-up: prepares the statements and stores the member's permissions.
await paired(gsSend, rawInsert(rawA, rawChannelA.id), 300)
await paired(rawInsert(rawA, rawChannelA.id), rawInsert(rawB, rawChannelB.id), 300)

const loadBefore = loadavg()[0] as number
const main = await paired(gsSend, rawInsert(rawA, rawChannelA.id), pairs)
const control = await paired(
  rawInsert(rawB, rawChannelB.id),
  rawInsert(rawA, rawChannelA.id),
  pairs,
)
const loadAfter = loadavg()[0] as number
log(`done: ${pairs} pairs each`)

const f = (x: number) => x.toFixed(0)
console.log(`| pairing (${fsync ? 'synchronous_commit on' : 'synchronous_commit=off'}, ${pairs} pairs) | median µs | ratio (raw ÷ contender) |
|---|---:|---:|
| guildstore sendMessage / raw pg INSERT | ${f(main.a)} / ${f(main.b)} | ${(main.b / main.a).toFixed(3)}× |
| A/A control: raw INSERT / raw INSERT | ${f(control.a)} / ${f(control.b)} | ${(control.b / control.a).toFixed(3)}× |

1-minute load average: ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after.`)

await Promise.all([gsPool.end(), rawA.end(), rawB.end()])
await t.drop()
