/**
 * Bulk writes into one channel (issue 23, item 3; migration 0020), before and
 * after, in databases of its own (from the test template):
 *
 * - `after`: the schema as migrated (0020: one counter read and one counter
 *   write per statement and channel);
 * - `before`: the same with 0018's per-row trigger put back (its function
 *   body, and no statement trigger): the numbering this migration replaced;
 * - `per-row`: the schema as migrated with 0019's message capture put back
 *   (one `message_created` per row, where 0025 writes one `messages_imported`
 *   per channel for a statement of more than 100 rows into it).
 *
 * Measured:
 *
 * 1. one plain-SQL `INSERT … SELECT` of n rows into one fresh channel, in its
 *    own transaction (rows/s); `before` only up to `--before-max` rows (it is
 *    quadratic: 40 000 rows take minutes);
 * 2. `importMessages` of n rows into one fresh channel through COPY and
 *    through the batched `INSERT … SELECT FROM unnest` route (rows/s, the call
 *    as a whole: validation, ordering, reference checks, taking the positions,
 *    the writes; the rows carry their `seq`, so no numbering row trigger runs);
 * 3. single-row writes paired call by call (alternating, order flipped every
 *    pair, ratio of medians, as bench/send-paired.ts): `createMessage` (which
 *    the row trigger numbers) and `sendMessage` (which takes its position in
 *    its own statement, so only 0020's statement trigger runs) on `after`
 *    against `before`, with an A/A control (`after` against itself).
 *
 *   node bench/bulk-import.ts [--sizes 5000,10000,20000,40000,1000000]
 *     [--before-max 40000] [--per-row-max 1000000] [--pairs 2000] [--fsync]
 *
 * Without `--fsync` sessions run with `synchronous_commit = off`. Prints
 * markdown tables with the load average beside them; figures from a loaded
 * machine are only indicative.
 */
import { readFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { type Kysely, sql } from 'kysely'
import type { DB } from '../codegen/db.ts'
import { createPool } from '../src/pool/create-pool.ts'
import { sendMessage } from '../src/repositories/authorized-messages.ts'
import { createChannel } from '../src/repositories/channels.ts'
import { createGuild } from '../src/repositories/guilds.ts'
import { type ImportMessageInput, importMessages } from '../src/repositories/import-messages.ts'
import { createMessage } from '../src/repositories/messages.ts'
import { createUser } from '../src/repositories/users.ts'
import { createDb } from '../src/sql/create-db.ts'
import { createTestDatabase, type TestDatabase } from '../src/testing/create-test-database.ts'
import { paired, timed } from './paired.ts'

const argv = process.argv.slice(2)
const option = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const sizes = (option('--sizes') ?? '5000,10000,20000,40000,1000000').split(',').map(Number)
const beforeMax = Number(option('--before-max') ?? 40_000)
const perRowMax = Number(option('--per-row-max') ?? 1_000_000)
const pairs = Number(option('--pairs') ?? 2000)
const fsync = argv.includes('--fsync')
const log = (msg: string) => process.stderr.write(`[bench:bulk-import] ${msg}\n`)
const load = () => (loadavg()[0] as number).toFixed(2)

/**
 * 0018's numbering, put back on `before`: its `guildstore_message_seq()` (one
 * counter UPDATE per row), read from the migration file, and no statement trigger.
 */
async function restore0018(db: Kysely<DB>): Promise<void> {
  const file = await readFile(
    new URL('../migrations/0018_channel_categories.sql', import.meta.url),
    'utf8',
  )
  const fn = /CREATE OR REPLACE FUNCTION guildstore_message_seq\(\)[\s\S]*?\n\$\$;/.exec(file)?.[0]
  if (!fn) throw new Error('guildstore_message_seq() not found in migration 0018')
  await sql.raw(`drop trigger messages_seq_store on messages; ${fn}`).execute(db)
}

/** 0019's message capture, put back: one `message_created` per inserted row, read from the migration file. */
async function restorePerRowEvents(db: Kysely<DB>): Promise<void> {
  const file = await readFile(
    new URL('../migrations/0019_change_feed.sql', import.meta.url),
    'utf8',
  )
  const fn = /CREATE FUNCTION guildstore_events_messages_insert\(\)[\s\S]*?\n\$\$;/.exec(file)?.[0]
  if (!fn) throw new Error('guildstore_events_messages_insert() not found in migration 0019')
  await sql.raw(fn.replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION')).execute(db)
}

interface Side {
  name: 'before' | 'after' | 'per-row'
  t: TestDatabase
  db: ReturnType<typeof createDb>
  author: string
  guild: string
}

async function side(name: Side['name']): Promise<Side> {
  const t = await createTestDatabase({ pool: { max: 2 } })
  if (name === 'before') await restore0018(t.db)
  if (name === 'per-row') await restorePerRowEvents(t.db)
  const url = new URL(t.url)
  if (!fsync) url.searchParams.set('options', '-c synchronous_commit=off')
  const db = createDb(createPool({ connectionString: url.toString(), max: 1 }))
  const author = (await createUser(t.db, { username: `bench_${name}` })).id
  const guild = (await createGuild(t.db, { name: 'bench', owner_id: author })).id
  return { name, t, db, author, guild }
}

const channel = async (s: Side, name: string) =>
  (await createChannel(s.t.db, { guild_id: s.guild, name, type: 'text' })).id

/** Seconds `run` takes. */
const seconds = async (run: () => Promise<unknown>) => (await timed(run)) / 1e6

/** One INSERT … SELECT of n rows into a fresh channel, in its own transaction. */
async function insertSelect(s: Side, n: number): Promise<number> {
  const c = await channel(s, `is-${n}`)
  const took = await seconds(() =>
    s.db.transaction().execute((trx) =>
      sql`insert into messages (id, channel_id, author_id, content)
        select guildstore_uuidv7(), ${c}::uuid, ${s.author}::uuid, 'bulk message ' || g
        from generate_series(1, ${n}::int) g`.execute(trx),
    ),
  )
  const check = await sql<{
    ok: boolean
  }>`select count(distinct seq) = ${n}::int and max(seq) = ${n}::int
    and (select last_seq from channels where id = ${c}::uuid) = ${n}::int as ok
    from messages where channel_id = ${c}::uuid`.execute(s.t.db)
  if (!check.rows[0]?.ok) throw new Error(`positions of ${n} rows on ${s.name} are not 1…${n}`)
  return took
}

/** importMessages of n rows (created_at out of order) into a fresh channel. */
async function importRows(s: Side, n: number, method: 'copy' | 'insert'): Promise<number> {
  const c = await channel(s, `im-${method}-${n}`)
  const base = Date.parse('2015-01-01T00:00:00Z')
  const rows: ImportMessageInput[] = Array.from({ length: n }, (_, i) => ({
    channel_id: c,
    author_id: s.author,
    content: `imported message ${i}`,
    created_at: new Date(base + ((i * 7919) % n) * 1000),
  }))
  return seconds(() => importMessages(s.db, rows, { method }))
}

const before = await side('before')
const after = await side('after')
const perRow = await side('per-row')
const rate = (n: number, s: number) => Math.round(n / s).toLocaleString('en-US')

const bulkLines: string[] = []
for (const n of sizes) {
  const l0 = load()
  const a = await insertSelect(after, n)
  const b = n <= beforeMax ? await insertSelect(before, n) : undefined
  const r = n <= perRowMax ? await insertSelect(perRow, n) : undefined
  const copy = await importRows(after, n, 'copy')
  const ins = await importRows(after, n, 'insert')
  log(`${n} rows done`)
  bulkLines.push(
    `| ${n.toLocaleString('en-US')} | ${b === undefined ? '(skipped)' : `${b.toFixed(2)} s, ${rate(n, b)}/s`} | ${r === undefined ? '(skipped)' : `${r.toFixed(2)} s, ${rate(n, r)}/s`} | ${a.toFixed(2)} s, ${rate(n, a)}/s | ${copy.toFixed(2)} s, ${rate(n, copy)}/s | ${ins.toFixed(2)} s, ${rate(n, ins)}/s | ${l0} → ${load()} |`,
  )
}

// Single-row writes, paired.
const sides = [before, after]
const channels = new Map<Side, string[]>()
for (const s of sides) channels.set(s, [await channel(s, 'one-a'), await channel(s, 'one-b')])
const ch = (s: Side, i: number) => (channels.get(s) as string[])[i] as string
const create = (s: Side, i: number) => () =>
  createMessage(s.db, { channel_id: ch(s, i), author_id: s.author, content: 'hello there' })
const send = (s: Side, i: number) => () =>
  sendMessage(s.db, { channel_id: ch(s, i), author_id: s.author, content: 'hello there' })
await paired(create(after, 0), create(before, 0), 300)
await paired(send(after, 0), send(before, 0), 300)
const l1 = load()
const createPair = await paired(create(after, 0), create(before, 0), pairs)
const sendPair = await paired(send(after, 0), send(before, 0), pairs)
const control = await paired(send(after, 0), send(after, 1), pairs)
const createControl = await paired(create(after, 0), create(after, 1), pairs)
const l2 = load()
log('pairs done')

const f = (x: number) => x.toFixed(0)
console.log(`One statement into one channel (${fsync ? 'synchronous_commit on' : 'synchronous_commit=off'}):

| rows | INSERT … SELECT before 0020 | INSERT … SELECT, an event per row (0019) | INSERT … SELECT as migrated (one messages_imported) | importMessages (COPY) | importMessages ('insert' route) | 1-min load |
|---:|---:|---:|---:|---:|---:|---|
${bulkLines.join('\n')}

Single-row writes, ${pairs} pairs each (ratio = before ÷ after median; above 1 means after is faster):

| pairing | median µs after / before | ratio |
|---|---:|---:|
| createMessage (row trigger) | ${f(createPair.a)} / ${f(createPair.b)} | ${(createPair.b / createPair.a).toFixed(3)}× |
| sendMessage (statement trigger only) | ${f(sendPair.a)} / ${f(sendPair.b)} | ${(sendPair.b / sendPair.a).toFixed(3)}× |
| A/A control: sendMessage after / after | ${f(control.a)} / ${f(control.b)} | ${(control.b / control.a).toFixed(3)}× |
| A/A control: createMessage after / after | ${f(createControl.a)} / ${f(createControl.b)} | ${(createControl.b / createControl.a).toFixed(3)}× |

1-minute load average: ${l1} before the pairs, ${l2} after.`)

for (const s of [...sides, perRow]) {
  await s.db.destroy()
  await s.t.drop()
}
