/**
 * Where the per-call CPU goes, by driver (issue 28, item 1): `npm run bench:profile`
 * (= `node bench/profile.ts`).
 *
 *   node bench/profile.ts [--quick] [--calls 10000] [--interval 100] [--concurrency 1]
 *                         [--only <name part>] [--save DIR] [data-set flags of bench/generate.ts]
 *
 * For each hot path (bench/hot-paths.ts; `--quick`: the newest page,
 * readChannelMessages and listDmChannels) and each contender (guildstore, raw
 * pg and raw postgres.js on the same captured statement, Drizzle on
 * node-postgres), runs `--calls` calls (`--concurrency` at a time, default 1) under the inspector's
 * CPU profiler (sampling every `--interval` µs), then attributes self time by
 * layer (bench/cpu-profile.ts: pg-protocol, pg's Result, pg-types,
 * postgres.js by job, kysely, guildstore's src/sql and src/pool, Node
 * internals, GC) and by function. Prints markdown tables (µs per call) on
 * stdout, progress on stderr; `--save DIR` also writes each `.cpuprofile`.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import type { Profiler } from 'node:inspector'
import { Session } from 'node:inspector/promises'
import { loadavg } from 'node:os'
import { cliArgs } from './cli-args.ts'
import { type Attribution, attribute } from './cpu-profile.ts'
import { type Contender, warmUp } from './harness.ts'
import { DRIZZLE_PG, setUpHotPaths } from './hot-paths.ts'

const { argv, option, flag } = cliArgs()
const quick = flag('--quick')
const CALLS = Number(option('--calls') ?? (quick ? 2000 : 10_000))
const INTERVAL = Number(option('--interval') ?? 100)
const save = option('--save')
/** Calls in flight at once (workers sharing one counter). */
const CONCURRENCY = Number(option('--concurrency') ?? 1)
/** Blocks per contender, interleaved. */
const BLOCKS = 4
const only = option('--only')
const QUICK_PATHS = ['history: newest page', 'readChannelMessages', 'listDmChannels']
const log = (msg: string) => process.stderr.write(`[bench:profile] ${msg}\n`)
const load = () => (loadavg()[0] as number).toFixed(2)

/** One contender's totals over its blocks of calls (µs). */
interface Run {
  name: string
  calls: number
  /** Without the profiler: wall, user and system CPU. */
  plain: { wall: number; user: number; system: number }
  /** Under the profiler: wall and CPU (all threads, the sampler's included). */
  wall: number
  cpu: number
  attribution: Attribution
}

const session = new Session()
session.connect()
await session.post('Profiler.enable')
await session.post('Profiler.setSamplingInterval', { interval: INTERVAL })

/** Adds a map's values into another. */
const addInto = (to: Map<string, number>, from: Map<string, number>) => {
  for (const [k, v] of from) to.set(k, (to.get(k) ?? 0) + v)
}

/** Runs `calls` calls of `c`, {@link CONCURRENCY} at a time. */
async function runCalls(c: Contender, calls: number): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < calls) await c.run(next++)
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
}

/**
 * Runs `calls` calls of `c` without the profiler, then under it, and adds the
 * block's figures to `run`.
 */
async function profileBlock(run: Run, c: Contender, calls: number, file?: string): Promise<void> {
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await runCalls(c, calls)
  run.plain.wall += (performance.now() - t0) * 1000
  const used0 = process.cpuUsage(cpu0)
  run.plain.user += used0.user
  run.plain.system += used0.system
  await session.post('Profiler.start')
  const cpu = process.cpuUsage()
  const t = performance.now()
  await runCalls(c, calls)
  run.wall += (performance.now() - t) * 1000
  const used = process.cpuUsage(cpu)
  run.cpu += used.user + used.system
  const { profile } = (await session.post('Profiler.stop')) as { profile: Profiler.Profile }
  if (file) await writeFile(file, JSON.stringify(profile))
  const a = attribute(profile)
  run.calls += calls
  run.attribution.busy += a.busy
  addInto(run.attribution.byLayer, a.byLayer)
  addInto(run.attribution.byFunction, a.byFunction)
}

const f1 = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(1))

/** The layer table of one hot path: rows = layers, columns = contenders, µs per call. */
function layerTable(runs: Run[]): string[] {
  const layers = new Map<string, number>()
  for (const r of runs) {
    for (const [layer, us] of r.attribution.byLayer) {
      if (layer === '(idle)') continue
      layers.set(layer, Math.max(layers.get(layer) ?? 0, us / r.calls))
    }
  }
  const rows = [...layers.entries()].filter(([, us]) => us >= 0.5).sort((a, b) => b[1] - a[1])
  const small = [...layers.entries()].filter(([, us]) => us < 0.5).map(([l]) => l)
  const per = (r: Run, layer: string) => (r.attribution.byLayer.get(layer) ?? 0) / r.calls
  return [
    `| µs per call | ${runs.map((r) => r.name).join(' | ')} |`,
    `|---|${runs.map(() => '---:').join('|')}|`,
    `| elapsed ÷ calls, no profiler | ${runs.map((r) => f1(r.plain.wall / r.calls)).join(' | ')} |`,
    `| Node CPU, no profiler: user + system | ${runs.map((r) => `${f1(r.plain.user / r.calls)} + ${f1(r.plain.system / r.calls)}`).join(' | ')} |`,
    `| elapsed ÷ calls, under the profiler | ${runs.map((r) => f1(r.wall / r.calls)).join(' | ')} |`,
    `| Node CPU, under the profiler (all threads) | ${runs.map((r) => f1(r.cpu / r.calls)).join(' | ')} |`,
    `| sampled, not idle | ${runs.map((r) => f1(r.attribution.busy / r.calls)).join(' | ')} |`,
    ...rows.map(([layer]) => `| ${layer} | ${runs.map((r) => f1(per(r, layer))).join(' | ')} |`),
    `| (below 0.5 µs everywhere: ${small.length} layers) | ${runs
      .map((r) => f1(small.reduce((s, l) => s + per(r, l), 0)))
      .join(' | ')} |`,
  ]
}

/** The top functions of a contender by self time. */
function topFunctions(r: Run, n: number): string[] {
  return [...r.attribution.byFunction.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([fn, us]) => `| ${r.name} | \`${fn.replaceAll('|', '\\|')}\` | ${f1(us / r.calls)} |`)
}

const t0 = performance.now()
const bench = await setUpHotPaths({
  argv,
  pool: Math.max(2, CONCURRENCY),
  drizzles: [DRIZZLE_PG],
  only,
})
if (save) await mkdir(save, { recursive: true })
const paths = bench.paths.filter(
  (p) => only || !quick || QUICK_PATHS.some((q) => p.name.startsWith(q)),
)
const out: string[] = [
  `CPU profiles (node:inspector, sampling every ${INTERVAL} µs): ${CALLS} calls per contender ${CONCURRENCY === 1 ? 'one at a time' : `${CONCURRENCY} at a time (a pool of ${CONCURRENCY} connections each)`} (search: a tenth), in ${BLOCKS} blocks interleaved with the other contenders', each block run once without and once under the profiler, after an interleaved warm-up. Self time by layer, µs per call.`,
  '',
]
const tops: string[] = []
for (const path of paths) {
  const calls = Math.max(50, Math.round(CALLS * (path.name.startsWith('search') ? 0.1 : 1)))
  await warmUp(path.contenders, Math.min(1000, calls), CONCURRENCY)
  const l0 = load()
  const cs = path.contenders
  const runs: Run[] = cs.map((c) => ({
    name: c.name,
    calls: 0,
    plain: { wall: 0, user: 0, system: 0 },
    wall: 0,
    cpu: 0,
    attribution: { busy: 0, byLayer: new Map(), byFunction: new Map() },
  }))
  // Blocks interleaved, the first contender rotating: no contender always runs first.
  for (let b = 0; b < BLOCKS; b++) {
    for (let j = 0; j < cs.length; j++) {
      const k = (b + j) % cs.length
      const c = cs[k] as Contender
      const file = save
        ? `${save}/${`${path.name}-${c.name}-${b}`.replace(/[^a-z0-9.]+/gi, '-')}.cpuprofile`
        : undefined
      await profileBlock(runs[k] as Run, c, Math.ceil(calls / BLOCKS), file)
      if (path.write) await bench.cleanWrites()
    }
  }
  const l1 = load()
  log(
    `${path.name}: ${runs.map((r) => `${r.name} ${f1(r.plain.user / r.calls)} µs user CPU`).join(', ')}`,
  )
  out.push(`### ${path.name} (load ${l0} before, ${l1} after)`, '', ...layerTable(runs), '')
  if (tops.length === 0) {
    tops.push(
      `### Top functions by self time: ${path.name}`,
      '',
      '| contender | function | µs per call |',
      '|---|---|---:|',
      ...runs.flatMap((r) => topFunctions(r, 12)),
      '',
    )
  }
}
await session.post('Profiler.disable')
session.disconnect()
await bench.close()
console.log([...out, ...tops].join('\n'))
log(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
