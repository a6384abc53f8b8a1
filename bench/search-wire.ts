/**
 * Where a search call's time goes, guildstore against raw `pg` on the same two
 * statements (issue 28, the search gap): `node bench/search-wire.ts`.
 *
 *   node bench/search-wire.ts [--pairs 300] [--blocks 3] [data-set flags of bench/generate.ts]
 *
 * Four contenders, paired call by call (order rotating and flipping): guildstore
 * and raw pg each on a pool of its own (as bench/contenders.ts runs them), and
 * the same two on ONE shared connection (a pool of one), so that what differs
 * between them there is only the client code. Every block starts on fresh
 * connections (the pools are ended and made again), so a backend that happens
 * to be slow or fast does not follow one contender through the run.
 *
 * Per call, socket timestamps split the time into: the client before the
 * first write (validation, pool checkout, serializing), the first statement's
 * wait (server and wire), the client between the statements, the second
 * statement's wait, and the client after the last answer (row decoding).
 * Markdown on stdout (median µs per segment and call, with the load average),
 * progress on stderr.
 */
import net from 'node:net'
import { loadavg } from 'node:os'
import pg from 'pg'
import { createPool, guildstoreTypeParsers } from '../src/pool/create-pool.ts'
import { searchMessages } from '../src/repositories/search.ts'
import { createDb } from '../src/sql/create-db.ts'
import { captureSql, toRawStatement } from './capture.ts'
import { cliArgs } from './cli-args.ts'
import { ensureDataset, parseDatasetArgs } from './generate.ts'
import { type Contender, warmUp } from './harness.ts'
import { median } from './paired.ts'
import { runChain } from './prepare.ts'

const { argv, option } = cliArgs()
const PAIRS = Number(option('--pairs') ?? 300)
const BLOCKS = Number(option('--blocks') ?? 3)
const log = (msg: string) => process.stderr.write(`[bench:search-wire] ${msg}\n`)
const load = () => (loadavg()[0] as number).toFixed(2)

const data = await ensureDataset(parseDatasetArgs(argv))
/** The six queries of bench/scenarios (context.ts `searches`), rotating. */
const SEARCHES = [
  'deploy',
  'xylophone',
  'coffee pizza',
  '"merge branch"',
  'database -cache',
  'quokka or narwhal',
]
const args = (i: number) => ({
  user_id: data.member_id,
  query: SEARCHES[i % SEARCHES.length] as string,
  limit: 25,
})

// The statements guildstore sends, as raw pg runs them: the first named, the search unnamed.
const capturePool = createPool({ connectionString: data.url, max: 1 })
const statements = (await captureSql(capturePool, (db) => searchMessages(db, args(0)))).map((c) =>
  toRawStatement(c, args(0)),
)
await capturePool.end()
const unnamed = statements.at(-1)
const rawChain = (pool: pg.Pool) => (i: number) =>
  runChain(statements, args(i), async (st, values) => {
    const config =
      st === unnamed ? { text: st.sql, values } : { name: st.name, text: st.sql, values }
    return (await pool.query(config)).rows
  })

// Socket timestamps of the call in flight: the first write of each statement
// (_write or _writev) and the first chunk of its answer.
let events: bigint[] | undefined
let writing = false
const socket = net.Socket.prototype as unknown as Record<string, (...a: unknown[]) => unknown>
for (const method of ['_write', '_writev', 'push'] as const) {
  const original = socket[method] as (...a: unknown[]) => unknown
  socket[method] = function (this: unknown, ...a: unknown[]) {
    if (events) {
      const isWrite = method !== 'push'
      if (isWrite ? !writing : writing && a[0] != null) events.push(process.hrtime.bigint())
      if (isWrite || a[0] != null) writing = isWrite
    }
    return original.apply(this, a)
  }
}

const SEGMENTS = [
  'client before 1st write',
  '1st statement: wait',
  'client between',
  '2nd statement: wait',
  'client after',
]
const totals = new Map<string, number[]>()
const segments = new Map<string, number[][]>()

for (let block = 0; block < BLOCKS; block++) {
  const ownGs = createPool({ connectionString: data.url, max: 16 })
  const ownRaw = new pg.Pool({ connectionString: data.url, max: 16, types: guildstoreTypeParsers })
  const shared = createPool({ connectionString: data.url, max: 1 })
  const gsDb = createDb(ownGs)
  const sharedDb = createDb(shared)
  const cs: Contender[] = [
    { name: 'guildstore', run: (i) => searchMessages(gsDb, args(i)) },
    { name: 'raw pg', run: rawChain(ownRaw) },
    { name: 'guildstore (shared connection)', run: (i) => searchMessages(sharedDb, args(i)) },
    { name: 'raw pg (shared connection)', run: rawChain(shared) },
  ]
  await warmUp(cs, 120, 1)
  const l0 = load()
  const k = cs.length
  for (let i = 0; i < PAIRS; i++) {
    const start = (i >> 1) % k
    for (let j = 0; j < k; j++) {
      const c = cs[(start + (i % 2 ? k - j : j)) % k] as Contender
      events = []
      writing = false
      const t0 = process.hrtime.bigint()
      await c.run(i)
      const t1 = process.hrtime.bigint()
      const e = events
      events = undefined
      const total = Number(t1 - t0) / 1000
      ;(totals.get(c.name) ?? totals.set(c.name, []).get(c.name))?.push(total)
      // write, answer, write, answer: two round trips, one statement each
      if (e.length !== 4) continue
      const points = [t0, ...e, t1]
      const row = points.slice(1).map((p, q) => Number(p - (points[q] as bigint)) / 1000)
      ;(segments.get(c.name) ?? segments.set(c.name, []).get(c.name))?.push(row)
    }
  }
  log(`block ${block + 1}/${BLOCKS}: ${PAIRS} pairs, load ${l0} / ${load()}`)
  await Promise.all([gsDb.destroy(), sharedDb.destroy(), ownRaw.end()])
}

const names = [...totals.keys()]
const med = (name: string) => median(totals.get(name) ?? [])
console.log(
  [
    `### searchMessages: guildstore and raw pg, ${BLOCKS} blocks × ${PAIRS} pairs on fresh connections (median µs; load ${load()} at the end)`,
    '',
    `| segment | ${names.join(' | ')} |`,
    `|---|${names.map(() => '---:').join('|')}|`,
    ...SEGMENTS.map(
      (s, q) =>
        `| ${s} | ${names.map((n) => median((segments.get(n) ?? []).map((r) => r[q] as number)).toFixed(0)).join(' | ')} |`,
    ),
    `| whole call | ${names.map((n) => med(n).toFixed(0)).join(' | ')} |`,
    `| calls with 2 round trips / all | ${names.map((n) => `${segments.get(n)?.length ?? 0} / ${totals.get(n)?.length ?? 0}`).join(' | ')} |`,
    '',
    `raw pg ÷ guildstore (above 1.0: guildstore faster): own connections ${(med('raw pg') / med('guildstore')).toFixed(3)}, one shared connection ${(med('raw pg (shared connection)') / med('guildstore (shared connection)')).toFixed(3)}`,
  ].join('\n'),
)
