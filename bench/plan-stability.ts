/**
 * Plans across ANALYZE (issue 28, item 5): `node bench/plan-stability.ts`.
 *
 *   node bench/plan-stability.ts [--calls 150] [--old-index]
 *
 * Builds the skewed data set of test/support/skewed-data.ts twice, in two
 * fresh databases (one channel holding most messages, all unread by one
 * member; many small channels; a user with many DMs). One is left as loaded
 * (tables never analyzed, autovacuum off: "before"), the other gets
 * `VACUUM ANALYZE` ("after"). Then every hot path runs through guildstore's
 * own functions on one connection per database, the two taking turns call by
 * call (so the machine's load moves both sides alike), under plan_cache_mode
 * auto, force_generic_plan and force_custom_plan (set per connection). Prints
 * a markdown table of p50s with the load average beside it.
 *
 * `--old-index` puts 0.2's messages_channel_id_idx back in both databases (and
 * drops 0017's index) to measure the state before the fix.
 */
import { execFileSync } from 'node:child_process'
import { createPool } from '../src/pool/create-pool.ts'
import { createDb } from '../src/sql/create-db.ts'
import { createTestDatabase, type TestDatabase } from '../src/testing/index.ts'
import { HOT_CALLS } from '../test/support/hot-statements.ts'
import { SKEWED_SIZES, type SkewedData, seedSkewedData } from '../test/support/skewed-data.ts'
import { adminUrl } from './generate.ts'

const argv = process.argv.slice(2)
const option = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const calls = Number(option('--calls') ?? 150)
const oldIndex = argv.includes('--old-index')
const sizes = SKEWED_SIZES
const log = (msg: string) => process.stderr.write(`[plans] ${msg}\n`)
const load = () =>
  execFileSync('uptime', { encoding: 'utf8' })
    .trim()
    .replace(/^.*load average:\s*/, '')

const MODES = ['auto', 'force_generic_plan', 'force_custom_plan'] as const
type Mode = (typeof MODES)[number]

interface Side {
  t: TestDatabase
  data: SkewedData
}

async function side(analyze: boolean): Promise<Side> {
  const t = await createTestDatabase({ url: adminUrl() })
  const data = await seedSkewedData(t.pool, t.db, sizes)
  if (oldIndex) {
    await t.pool.query(
      'create index messages_channel_id_idx on messages (channel_id); drop index messages_channel_id_id_idx',
    )
  }
  if (analyze) await t.pool.query('vacuum analyze')
  return { t, data }
}

const p50 = (xs: Float64Array) => xs.sort()[Math.floor(xs.length / 2)] as number

const start = performance.now()
const sides: Side[] = []
try {
  sides.push(await side(false), await side(true))
  const [before, after] = sides as [Side, Side]
  log(`seeded both in ${((performance.now() - start) / 1000).toFixed(1)}s`)
  const rows: Record<string, Partial<Record<`${'before' | 'after'} ${Mode}`, number>>> = {}
  // Warm up Node and both servers first, so the first mode measured pays no
  // JIT or cold-cache cost the others do not.
  const warm = [
    createDb(createPool({ connectionString: before.t.url, max: 1 })),
    createDb(createPool({ connectionString: after.t.url, max: 1 })),
  ] as const
  for (let i = 0; i < 20; i++) {
    for (const call of HOT_CALLS) {
      await call.run(warm[0], before.data)
      await call.run(warm[1], after.data)
    }
  }
  for (const db of warm) await db.destroy()
  const loads: string[] = [`start ${load()}`]
  for (const mode of MODES) {
    const open = (s: Side) =>
      createDb(
        createPool({ connectionString: s.t.url, max: 1, options: `-c plan_cache_mode=${mode}` }),
      )
    const dbs = [open(before), open(after)] as const
    try {
      for (const call of HOT_CALLS) {
        for (let i = 0; i < 10; i++) {
          await call.run(dbs[0], before.data)
          await call.run(dbs[1], after.data)
        }
        const times = [new Float64Array(calls), new Float64Array(calls)]
        for (let i = 0; i < calls; i++) {
          // Alternate which side goes first.
          for (const k of i % 2 ? [1, 0] : [0, 1]) {
            const s = k === 0 ? before : after
            const t0 = performance.now()
            await call.run(dbs[k] as (typeof dbs)[0], s.data)
            ;(times[k] as Float64Array)[i] = performance.now() - t0
          }
        }
        const row = rows[call.name] ?? {}
        row[`before ${mode}`] = p50(times[0] as Float64Array)
        row[`after ${mode}`] = p50(times[1] as Float64Array)
        rows[call.name] = row
      }
    } finally {
      for (const db of dbs) await db.destroy()
    }
    loads.push(`${mode} done ${load()}`)
    log(`${mode} done`)
  }
  const f = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(2))
  const lines = [
    `p50 ms over ${calls} calls per cell, ${sizes.bigMessages} messages in the big channel; ${oldIndex ? "0.2's messages_channel_id_idx" : 'migration 0017'}`,
    '',
    '| statement | auto: before | after | generic: before | after | custom: before | after | worst after ÷ before |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const [name, r] of Object.entries(rows)) {
    const ratios = MODES.map((m) => (r[`after ${m}`] as number) / (r[`before ${m}`] as number))
    lines.push(
      `| ${name} | ${MODES.map((m) => `${f(r[`before ${m}`])} | ${f(r[`after ${m}`])}`).join(' | ')} | ${Math.max(...ratios).toFixed(2)}× |`,
    )
  }
  lines.push('', `Load average (1, 5, 15 min): ${loads.join('; ')}.`)
  process.stdout.write(`${lines.join('\n')}\n`)
} finally {
  for (const s of sides) await s.t.drop()
}
