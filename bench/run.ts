/**
 * guildstore benchmark: `npm run bench` (= `node bench/run.ts`).
 *
 *   node bench/run.ts [--messages 10000000] [--rebuild] [--rounds 5] [--quick]
 *                     [--only <name part>] [--explain] [--no-write] [--out FILE]
 *
 * Builds (or reuses) the data set (bench/generate.ts), then measures every
 * scenario (bench/scenarios/) three ways in one process, interleaved in
 * rounds: guildstore's function, raw `pg` running the identical SQL as a named
 * prepared statement, and Drizzle ORM. Prints a markdown table and writes
 * BENCHMARKS.md (bench/report.ts: machine, versions, data set, results,
 * EXPLAIN ANALYZE of every hot query).
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { createPool, guildstoreTypeParsers } from '../src/pool/create-pool.ts'
import { createDb } from '../src/sql/create-db.ts'
import { explain } from './explain.ts'
import { ensureDataset, parseDatasetArgs } from './generate.ts'
import { measure, type ScenarioResult } from './harness.ts'
import { type PreparedScenario, prepareScenario } from './prepare.ts'
import { type ExplainEntry, offsetTable, renderMarkdown, resultsTable, targets } from './report.ts'
import { loadContext } from './scenarios/context.ts'
import { allScenarios } from './scenarios/index.ts'
import { keysetVsOffset } from './scenarios/offset.ts'
import { searchBreakdown } from './scenarios/search.ts'
import { systemInfo } from './system-info.ts'

const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(name)
const option = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const quick = flag('--quick')
const rounds = Number(option('--rounds') ?? (quick ? 3 : 5))
const only = option('--only')
const root = fileURLToPath(new URL('..', import.meta.url))
const outFile = option('--out') ?? `${root}BENCHMARKS.md`
const POOL_MAX = 16
const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`)
const iterations = (n: number) => (quick ? Math.max(20, Math.round(n / 10)) : n)

const benchStart = performance.now()
const data = await ensureDataset(parseDatasetArgs(argv))

// Three pools of equal size, one per contender; the same int8 → bigint parsers.
const gsPool = createPool({
  connectionString: data.url,
  max: POOL_MAX,
  application_name: 'bench-guildstore',
})
const rawPool = new pg.Pool({
  connectionString: data.url,
  max: POOL_MAX,
  types: guildstoreTypeParsers,
  application_name: 'bench-raw',
})
const dzPool = new pg.Pool({
  connectionString: data.url,
  max: POOL_MAX,
  types: guildstoreTypeParsers,
  application_name: 'bench-drizzle',
})
const capturePool = createPool({ connectionString: data.url, max: 2 })
for (const p of [rawPool, dzPool]) p.on('error', () => {})
const db = createDb(gsPool)

/** Deletes what earlier runs' write scenarios left in the write channel. */
async function cleanWrites(): Promise<number> {
  const r = await rawPool.query('delete from messages where channel_id = $1 and id > $2', [
    data.write_channel_id,
    data.max_message_id,
  ])
  if (r.rowCount) await rawPool.query('vacuum (analyze) messages')
  return r.rowCount ?? 0
}
const leftover = await cleanWrites()
if (leftover) log(`removed ${leftover} messages left by an earlier run`)

const ctx = await loadContext(rawPool, data, drizzle({ client: dzPool }))
const selected = allScenarios(ctx).filter(
  (d) => !only || d.name.toLowerCase().includes(only.toLowerCase()),
)
const prepared: PreparedScenario[] = []
for (const def of selected) {
  prepared.push(await prepareScenario(def, { db, capturePool, rawPool, iterations }))
}

const sys = await systemInfo(rawPool)
const tScen = performance.now()
const results: ScenarioResult[] = []
for (const p of prepared) {
  results.push(await measure(p.scenario, { rounds, warmup: 300, progress: log }))
  if (p.def.write) await cleanWrites()
}
const explains: ExplainEntry[] = []
const offset = await keysetVsOffset(ctx, prepared, rawPool, iterations, log)
if (offset) explains.push(offset.explain)
const scenarioSeconds = (performance.now() - tScen) / 1000

const breakdown = prepared.some((p) => p.def.name.startsWith('searchMessages'))
  ? await searchBreakdown(ctx, db, rawPool, iterations(60))
  : []

for (const p of prepared) {
  explains.push({
    name: p.def.name,
    sql: p.raw.sql,
    prepared: !p.def.unnamed,
    plan: await explain(rawPool, p.raw.sql, p.explainParams, {
      prepared: !p.def.unnamed,
      write: p.def.write ?? false,
    }),
  })
}

/**
 * Runs a sub-bench (a script of its own, printing its Markdown section on stdout)
 * and returns that section; an exit code other than 0 is noted in the section.
 */
function subBench(file: string, args: string[] = []): Promise<string> {
  const path = `${root}${file}`
  if (!existsSync(path) || only) return Promise.resolve('')
  log(`running ${file}`)
  return new Promise<string>((resolve) => {
    const child = spawn(process.execPath, [path, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.on('close', (code) =>
      resolve(code === 0 ? out.trim() : `${out.trim()}\n\n(${file} exited with ${code})`),
    )
  })
}

// The Redis limiter (bench/redis-limiter.ts).
const redisSection = await subBench('bench/redis-limiter.ts')
// Read state, catch-up and createMessage contention (its own scratch database);
// --quick runs it at 50 000 unread.
const readStateSection = await subBench(
  'bench/scenarios/read-state.ts',
  quick ? ['--quick', '--unread', '50000'] : [],
)
// Channel permission overwrites: computePermissions and canAccessChannel in
// channels with overwrites vs raw pg (its own scratch database).
const overwritesSection = await subBench(
  'bench/scenarios/overwrites.ts',
  quick ? ['--members', '500', '--channels', '20', '--rounds', '30', '--iterations', '50'] : [],
)
// Authorized send/read and reactions, on the same data set.
const authorizedSection = await subBench('bench/messages-authorized.ts', [
  '--messages',
  String(data.params.messages),
  '--rounds',
  String(rounds),
  ...(quick ? ['--quick'] : []),
])

// Read replicas: lag, read-your-writes fallbacks, throughput (its own private primary + replica).
const replicasSection = await subBench(
  'bench/replicas.ts',
  quick ? ['--seconds', '2', '--rounds', '100'] : [],
)
await Promise.all([db.destroy(), rawPool.end(), dzPool.end(), capturePool.end()])
const maxRssMiB = process.resourceUsage().maxRSS / 1024
const totalSeconds = (performance.now() - benchStart) / 1000

const table = resultsTable(results)
console.log(`\n${table}\n`)
if (offset) console.log(`${offsetTable(offset.result)}\n`)
console.log(`${targets(results, data)}\n`)
if (breakdown.length) console.log(`${breakdown.join('\n')}\n`)
console.log(
  `peak RSS of the bench process: ${maxRssMiB.toFixed(0)} MiB; scenarios ${scenarioSeconds.toFixed(0)} s; total ${totalSeconds.toFixed(0)} s`,
)
if (flag('--explain')) {
  for (const e of explains) console.log(`\n### ${e.name}\n\n${e.plan}`)
}

if (!flag('--no-write')) {
  const md = await renderMarkdown({
    data,
    sys,
    results,
    table,
    searchBreakdown: breakdown,
    offsetResult: offset?.result,
    explains,
    redisSection,
    readStateSection,
    overwritesSection,
    authorizedSection,
    replicasSection,
    rounds,
    poolMax: POOL_MAX,
    maxRssMiB,
    scenarioSeconds,
    totalSeconds,
    cmdline: ['npm run bench', ...(argv.length ? ['--', ...argv] : [])].join(' '),
    root,
    outFile,
  })
  await writeFile(outFile, md)
  log(`wrote ${outFile}`)
}
