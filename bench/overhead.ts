/**
 * Per-call overhead of guildstore's execution path, layer by layer, on one
 * cheap prepared query (the newest page of a small channel), concurrency 1,
 * variants interleaved in blocks.
 *
 *   node bench/overhead.ts [--n=3000] [--limit=50] [--messages 50000 --users 2000 …]
 *
 * Data-set flags are those of `bench/generate.ts`; with `BENCH_DATABASE=name`
 * a small data set lives beside the full one.
 */
import pg from 'pg'
import { createPool, guildstoreTypeParsers } from '../src/pool/create-pool.ts'
import { listChannelMessages } from '../src/repositories/messages.ts'
import { createDb } from '../src/sql/create-db.ts'
import { captureSql } from './capture.ts'
import { ensureDataset, parseDatasetArgs } from './generate.ts'

const data = await ensureDataset(parseDatasetArgs(process.argv.slice(2)))
const url = data.url
const mk = () => createPool({ connectionString: url, max: 4 })
const rawPool = new pg.Pool({ connectionString: url, max: 4, types: guildstoreTypeParsers })
// The default: prepared queries of a top-level createDb run straight on its pool.
const db = createDb(mk())
// With a log hook (or plugins), every query goes through Kysely's executor.
const dbLogged = createDb(mk(), { log: () => {} })
// a small channel: the page is cheap, so client-side overhead dominates
const small = (
  await rawPool.query(
    `select channel_id from messages group by 1 having count(*) between 60 and 200 limit 1`,
  )
).rows[0].channel_id
const limit = Number(process.argv.find((a) => a.startsWith('--limit='))?.slice(8) ?? 50)
const [cap] = await captureSql(mk(), (d) => listChannelMessages(d, small, { limit }))
const variants: Record<string, () => Promise<unknown>> = {
  'raw pg pool.query (named)': () =>
    rawPool.query({ name: 'ovh', text: cap!.sql, values: [small, limit] }),
  'guildstore (createDb: prepared query → pool)': () => listChannelMessages(db, small, { limit }),
  'guildstore (createDb with log hook: Kysely executor)': () =>
    listChannelMessages(dbLogged, small, { limit }),
}
const N = Number(process.argv.find((a) => a.startsWith('--n='))?.slice(4) ?? 3000)
const blocks = 8
const times: Record<string, number[]> = Object.fromEntries(
  Object.keys(variants).map((k) => [k, []]),
)
const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
for (const fn of Object.values(variants)) for (let i = 0; i < 500; i++) await fn()
for (let b = 0; b < blocks; b++) {
  const keys = Object.keys(variants)
  for (let j = 0; j < keys.length; j++) {
    const k = keys[(b + j) % keys.length]!
    const fn = variants[k]!
    const t = performance.now()
    const c0 = process.cpuUsage()
    for (let i = 0; i < N; i++) await fn()
    const c1 = process.cpuUsage(c0)
    times[k]!.push(((performance.now() - t) * 1000) / N)
    cpu[k]!.push((c1.user + c1.system) / N)
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const base = med(times['raw pg pool.query (named)']!)
const baseCpu = med(cpu['raw pg pool.query (named)']!)
console.log(
  `page limit ${limit}, ${N} calls × ${blocks} blocks, median per call (wall µs; Node CPU µs):`,
)
for (const [k, xs] of Object.entries(times)) {
  const c = med(cpu[k]!)
  console.log(
    `  ${k.padEnd(42)} wall ${med(xs).toFixed(1)} µs (${(base / med(xs)).toFixed(3)}× raw)  cpu ${c.toFixed(1)} µs (+${(c - baseCpu).toFixed(1)} µs vs raw)`,
  )
}
await Promise.all([db.destroy(), dbLogged.destroy(), rawPool.end()])
