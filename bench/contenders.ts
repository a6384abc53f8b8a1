/**
 * Driver contenders of issue 28: `npm run bench:contenders` (= `node bench/contenders.ts`).
 *
 *   node bench/contenders.ts [--quick] [--pairs 2000] [--rounds 30] [--pool 16]
 *                            [--drizzle both|node-postgres|postgres-js] [--only <name part>]
 *                            [--no-memory] [data-set flags of bench/generate.ts]
 *
 * On the data set of bench/generate.ts (1M messages by default; reused when it
 * exists, `BENCH_DATABASE` names another database), every hot path
 * (bench/hot-paths.ts) runs four ways: guildstore, raw `pg` and raw
 * postgres.js with the SQL guildstore sends as prepared statements, and
 * Drizzle. With `--drizzle both` (the default) Drizzle on node-postgres and on
 * postgres.js are paired first and the faster one is kept.
 *
 * - Concurrency 1, paired call by call: every call runs each contender once,
 *   the order rotating and flipping from call to call; a contender's figure is
 *   its median latency, its ratio is raw postgres.js's median ÷ its own
 *   (above 1.0: faster than raw postgres.js).
 * - 16 and 64 concurrent: many short rounds, the contenders taking turns
 *   (bench/harness.ts `measure`), median ops/s of the rounds; each contender
 *   has a pool of `--pool` connections (default 16: 64 concurrent queue on it).
 * - Memory: each contender alone in a child process: peak RSS, and V8 heap
 *   bytes allocated per call (bench/allocations.ts).
 *
 * Markdown tables on stdout, progress on stderr; the 1-minute load average
 * before and after each measurement is in the tables. `--quick` finishes in
 * a few minutes on an existing data set.
 */
import { spawn } from 'node:child_process'
import { loadavg } from 'node:os'
import { allocatedBy } from './allocations.ts'
import { cliArgs } from './cli-args.ts'
import { type Contender, measure, runRound, warmUp } from './harness.ts'
import {
  DRIZZLE_PG,
  DRIZZLE_POSTGRES_JS,
  GUILDSTORE,
  type HotBench,
  type HotPath,
  RAW_PG,
  RAW_POSTGRES_JS,
  setUpHotPaths,
} from './hot-paths.ts'
import { median, timed } from './paired.ts'

const { argv, option, flag } = cliArgs()
const quick = flag('--quick')
const PAIRS = Number(option('--pairs') ?? (quick ? 300 : 2000))
const ROUNDS = Number(option('--rounds') ?? (quick ? 12 : 30))
const POOL = Number(option('--pool') ?? 16)
const drizzleOption = option('--drizzle') ?? 'both'
const child = option('--child')
const log = (msg: string) => process.stderr.write(`[bench:contenders] ${msg}\n`)
const load = () => (loadavg()[0] as number).toFixed(2)

/** Pairs for a path: its nominal iterations relative to a page's 2000 (search is ~20× slower). */
const pairsFor = (path: HotPath) =>
  Math.max(40, Math.round(PAIRS * (path.name.startsWith('search') ? 0.1 : 1)))

const drizzles =
  drizzleOption === 'both'
    ? [DRIZZLE_PG, DRIZZLE_POSTGRES_JS]
    : [drizzleOption === 'postgres-js' ? DRIZZLE_POSTGRES_JS : DRIZZLE_PG]

/**
 * Runs every contender once per call, `n` calls: call `i` starts at contender
 * `⌊i/2⌋ mod k` and runs them forwards on even calls, backwards on odd ones.
 * Returns each contender's median µs.
 */
async function pairedCalls(cs: readonly Contender[], n: number): Promise<number[]> {
  const k = cs.length
  const times = cs.map(() => [] as number[])
  for (let i = 0; i < n; i++) {
    const start = (i >> 1) % k
    for (let j = 0; j < k; j++) {
      const idx = (start + (i % 2 ? k - j : j)) % k
      const c = cs[idx] as Contender
      ;(times[idx] as number[]).push(await timed(() => c.run(i)))
    }
  }
  return times.map(median)
}

/** A cell of a markdown row: a number with `digits`, or `—`. */
const cell = (x: number | undefined, digits = 0) =>
  x === undefined || Number.isNaN(x) ? '—' : x.toFixed(digits)
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined ? '—' : `${(a / b).toFixed(2)}×`

/** Keeps the faster Drizzle variant (paired at concurrency 1 on the paths both have). */
async function pickDrizzle(bench: HotBench): Promise<string[]> {
  const lines = [
    '| hot path | drizzle (node-postgres) µs | drizzle (postgres.js) µs | load before / after |',
    '|---|---:|---:|---|',
  ]
  const logs: number[] = []
  for (const path of bench.paths) {
    const cs = path.contenders.filter(
      (c) => c.name === DRIZZLE_PG || c.name === DRIZZLE_POSTGRES_JS,
    )
    if (cs.length !== 2) continue
    const n = Math.max(40, Math.round(pairsFor(path) / 4))
    await warmUp(cs, 100, 1)
    const l0 = load()
    const [a, b] = (await pairedCalls(cs, n)) as [number, number]
    lines.push(`| ${path.name} | ${cell(a)} | ${cell(b)} | ${l0} / ${load()} |`)
    logs.push(Math.log(a / b))
  }
  const mean = logs.reduce((s, x) => s + x, 0) / Math.max(1, logs.length)
  const keep = mean > 0 ? DRIZZLE_POSTGRES_JS : DRIZZLE_PG
  const drop = keep === DRIZZLE_PG ? DRIZZLE_POSTGRES_JS : DRIZZLE_PG
  await bench.dropDrizzle(drop)
  log(
    `drizzle: keeping ${keep} (geometric mean of the latency ratios ${Math.exp(mean).toFixed(3)})`,
  )
  lines.push(
    '',
    `Kept: **${keep}** (node-postgres ÷ postgres.js latency, geometric mean: ${Math.exp(mean).toFixed(2)}×).`,
  )
  return lines
}

/** Memory of one contender alone: this process, started with `--child <name>`. */
async function childRun(bench: HotBench, name: string): Promise<void> {
  const calls = quick ? 300 : 2000
  const rssAfterSetup = process.memoryUsage().rss
  const perCall: Record<string, number> = {}
  for (const path of bench.paths) {
    const c = path.contenders.find((x) => x.name === name)
    if (!c) continue
    const n = Math.max(30, Math.round(calls * (path.name.startsWith('search') ? 0.1 : 1)))
    await runRound(c, 200, 1)
    const bytes = await allocatedBy(async () => {
      for (let i = 0; i < n; i++) await c.run(i)
    })
    perCall[path.name] = bytes / n
    await runRound(c, n, 16)
    if (path.write) await bench.cleanWrites()
  }
  process.stdout.write(
    `${JSON.stringify({
      name,
      rssAfterSetupMiB: rssAfterSetup / 2 ** 20,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      perCall,
    })}\n`,
  )
}

/** What each contender imports (its RSS in a fresh process is the floor of its footprint). */
const IMPORTS: Record<string, string[]> = {
  [GUILDSTORE]: ['../src/index.ts'],
  [RAW_PG]: ['pg'],
  [RAW_POSTGRES_JS]: ['postgres'],
  [DRIZZLE_PG]: ['drizzle-orm/node-postgres', './drizzle-schema.ts'],
  [DRIZZLE_POSTGRES_JS]: ['drizzle-orm/postgres-js', 'postgres', './drizzle-schema.ts'],
}

/** RSS (MiB) of a fresh Node process after importing `modules` (resolved from this file). */
function importRss(modules: readonly string[]): Promise<number> {
  const urls = modules.map((m) => (m.startsWith('.') ? new URL(m, import.meta.url).href : m))
  const code = `${urls.map((u) => `await import(${JSON.stringify(u)})`).join(';')};process.stdout.write(String(process.memoryUsage().rss))`
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', code], {
      cwd: new URL('.', import.meta.url),
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    p.stdout.on('data', (d) => {
      out += d
    })
    p.on('close', () => resolve(Number(out) / 2 ** 20))
  })
}

interface ChildResult {
  name: string
  rssAfterSetupMiB: number
  peakRssMiB: number
  perCall: Record<string, number>
}

/** Runs this script as a child for one contender; resolves its JSON line. */
function spawnChild(name: string): Promise<ChildResult | undefined> {
  const args = [
    process.argv[1] as string,
    // The parent's own arguments, less those the child gets its own of.
    ...argv.filter(
      (a, i) => a !== '--no-memory' && a !== '--drizzle' && argv[i - 1] !== '--drizzle',
    ),
    '--child',
    name,
    '--drizzle',
    name === DRIZZLE_POSTGRES_JS ? 'postgres-js' : 'node-postgres',
  ]
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.on('data', (d) => {
      out += d
    })
    p.on('close', (code) => {
      if (code !== 0) log(`child ${name} exited with ${code}`)
      const line = out.trim().split('\n').at(-1)
      resolve(line ? (JSON.parse(line) as ChildResult) : undefined)
    })
  })
}

const t0 = performance.now()
const bench = await setUpHotPaths({
  argv,
  pool: child ? 16 : POOL,
  drizzles: child ? drizzles.slice(0, 1) : drizzles,
  only: option('--only'),
})
if (child) {
  await childRun(bench, child)
  await bench.close()
  process.exit(0)
}
const leftover = await bench.cleanWrites()
if (leftover) log(`removed ${leftover} messages of earlier runs`)

const out: string[] = []
if (drizzles.length === 2) {
  log('pairing the two Drizzle variants')
  out.push(
    '### Drizzle: node-postgres or postgres.js (concurrency 1, paired)',
    '',
    ...(await pickDrizzle(bench)),
    '',
  )
}
const drizzleName =
  bench.paths
    .flatMap((p) => p.contenders.map((c) => c.name))
    .find((n) => n.startsWith('drizzle')) ?? DRIZZLE_PG
const order = [GUILDSTORE, RAW_PG, RAW_POSTGRES_JS, drizzleName]
const byName = (cs: readonly Contender[]) => new Map(cs.map((c) => [c.name, c]))

// Concurrency 1, paired call by call.
const c1 = [
  `| hot path | ${order.map((n) => `${n} µs`).join(' | ')} | guildstore vs postgres.js | raw pg vs postgres.js | guildstore vs drizzle | pairs | load before / after |`,
  `|---|${order.map(() => '---:').join('|')}|---:|---:|---:|---:|---|`,
]
for (const path of bench.paths) {
  const n = pairsFor(path)
  await warmUp(path.contenders, Math.min(300, n), 1)
  const l0 = load()
  const meds = await pairedCalls(path.contenders, n)
  const l1 = load()
  const m = new Map(path.contenders.map((c, i) => [c.name, meds[i] as number]))
  const [gs, rp, pj, dz] = order.map((k) => m.get(k))
  c1.push(
    `| ${path.name} | ${[gs, rp, pj, dz].map((x) => cell(x)).join(' | ')} | ${ratio(pj, gs)} | ${ratio(pj, rp)} | ${ratio(dz, gs)} | ${n} | ${l0} / ${l1} |`,
  )
  log(`c=1 ${path.name}: ${order.map((k) => `${k} ${cell(m.get(k))} µs`).join(', ')}`)
  if (path.write) await bench.cleanWrites()
}
out.push(
  '### Concurrency 1, paired call by call (median µs per call; ratios: the other’s median ÷ this one’s, above 1.0 = faster)',
  '',
  ...c1,
  '',
)

// Throughput at 16 and 64 concurrent.
for (const concurrency of [16, 64]) {
  const lines = [
    `| hot path | ${order.map((n) => `${n} ops/s`).join(' | ')} | guildstore vs postgres.js | raw pg vs postgres.js | guildstore vs drizzle | rounds × calls | load before / after |`,
    `|---|${order.map(() => '---:').join('|')}|---:|---:|---:|---|---|`,
  ]
  for (const path of bench.paths) {
    const iterations = concurrency * (path.name.startsWith('search') ? 2 : 8)
    const l0 = load()
    const r = await measure(
      { name: path.name, concurrency, iterations, contenders: path.contenders },
      { rounds: ROUNDS, warmup: concurrency * 8, progress: log },
    )
    const l1 = load()
    const m = byName(path.contenders)
    const ops = new Map(r.contenders.map((c) => [c.name, c.opsPerSec]))
    const [gs, rp, pj, dz] = order.map((k) => (m.has(k) ? ops.get(k) : undefined))
    lines.push(
      `| ${path.name} | ${[gs, rp, pj, dz].map((x) => cell(x)).join(' | ')} | ${ratio(gs, pj)} | ${ratio(rp, pj)} | ${ratio(gs, dz)} | ${ROUNDS} × ${iterations} | ${l0} / ${l1} |`,
    )
    if (path.write) await bench.cleanWrites()
  }
  out.push(
    `### ${concurrency} concurrent (median ops/s over rounds; pools of ${POOL} connections per contender)`,
    '',
    ...lines,
    '',
  )
}
await bench.close()

if (!flag('--no-memory')) {
  const results: ChildResult[] = []
  const imports: number[] = []
  const l0 = load()
  for (const name of order) {
    log(`memory: ${name} in a child process`)
    const r = await spawnChild(name)
    if (r) {
      results.push(r)
      imports.push(await importRss(IMPORTS[name] ?? []))
    }
  }
  const l1 = load()
  const paths = [...new Set(results.flatMap((r) => Object.keys(r.perCall)))]
  out.push(
    `### Memory (each contender alone in a child process; load ${l0} before, ${l1} after)`,
    '',
    'Every child loads the whole bench (all four clients, the scenarios, Kysely and drizzle-orm) and captures the SQL through guildstore, so its RSS after setup is the same for all; the peak above it is what the contender added. Allocations: V8 heap bytes per call at concurrency 1 (bench/allocations.ts), Buffers outside the heap not counted.',
    '',
    `| | ${results.map((r) => r.name).join(' | ')} |`,
    `|---|${results.map(() => '---:').join('|')}|`,
    `| peak RSS, MiB | ${results.map((r) => r.peakRssMiB.toFixed(0)).join(' | ')} |`,
    `| RSS after setup, MiB | ${results.map((r) => r.rssAfterSetupMiB.toFixed(0)).join(' | ')} |`,
    `| peak RSS − RSS after setup, MiB | ${results.map((r) => (r.peakRssMiB - r.rssAfterSetupMiB).toFixed(0)).join(' | ')} |`,
    `| RSS of a fresh process importing only the contender's modules, MiB | ${imports.map((x) => x.toFixed(0)).join(' | ')} |`,
    ...paths.map(
      (p) =>
        `| ${p}: KiB allocated per call | ${results.map((r) => cell(r.perCall[p] === undefined ? undefined : (r.perCall[p] as number) / 1024, 1)).join(' | ')} |`,
    ),
    '',
  )
}
console.log(out.join('\n'))
log(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
