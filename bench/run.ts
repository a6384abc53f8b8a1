/**
 * guildstore benchmark: `npm run bench` (= `node bench/run.ts`).
 *
 *   node bench/run.ts [--messages 10000000] [--rebuild] [--rounds 5] [--quick]
 *                     [--only <name part>] [--explain] [--no-write] [--out FILE]
 *
 * Builds (or reuses) the data set (bench/generate.ts), then measures every
 * scenario three ways in one process, interleaved in rounds: guildstore's
 * function, raw `pg` running the identical SQL as a named prepared statement,
 * and Drizzle ORM. Prints a markdown table and writes BENCHMARKS.md (machine,
 * versions, data set, results, EXPLAIN ANALYZE of every hot query).
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { computePermissions } from '../src/permissions/compute-permissions.ts'
import { createPool, guildstoreTypeParsers } from '../src/pool/create-pool.ts'
import { findOrCreateDmChannel, listDmChannels } from '../src/repositories/dms.ts'
import { createMessage, listChannelMessages } from '../src/repositories/messages.ts'
import { searchMessages } from '../src/repositories/search.ts'
import { createDb } from '../src/sql/create-db.ts'
import { type Captured, captureSql, type RawStatement, runRaw, toRawStatement } from './capture.ts'
import * as dz from './drizzle-queries.ts'
import { explain } from './explain.ts'
import { ensureDataset, parseDatasetArgs } from './generate.ts'
import { type Contender, measure, runRound, type Scenario, type ScenarioResult } from './harness.ts'
import { type SystemInfo, systemInfo } from './system-info.ts'

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
const iters = (n: number) => (quick ? Math.max(20, Math.round(n / 10)) : n)

const benchStart = performance.now()
const { params, rebuild } = parseDatasetArgs(argv)
const data = await ensureDataset({ params, rebuild })
const url = data.url

// Three pools of equal size, one per contender; the same int8 → bigint parsers.
const gsPool = createPool({
  connectionString: url,
  max: POOL_MAX,
  application_name: 'bench-guildstore',
})
const rawPool = new pg.Pool({
  connectionString: url,
  max: POOL_MAX,
  types: guildstoreTypeParsers,
  application_name: 'bench-raw',
})
const dzPool = new pg.Pool({
  connectionString: url,
  max: POOL_MAX,
  types: guildstoreTypeParsers,
  application_name: 'bench-drizzle',
})
const capturePool = createPool({ connectionString: url, max: 2 })
for (const p of [rawPool, dzPool]) p.on('error', () => {})
const db = createDb(gsPool)
const ddb = drizzle({ client: dzPool })

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

// ---- inputs -----------------------------------------------------------------
const busiest = data.busiest.channel_id
const guild = data.busiest.guild_id
const live = data.busiest.live_messages

/** 64 cursors around a depth (fraction of the busiest channel's history, from the newest). */
async function cursorsAt(depth: number): Promise<string[]> {
  const at = Math.floor(live * depth)
  const r = await rawPool.query<{ id: string }>(
    `select id from (select id, row_number() over (order by id desc) as rn from messages
       where channel_id = $1 and deleted_at is null) x where rn = any($2::int[]) order by rn`,
    [busiest, Array.from({ length: 64 }, (_, k) => at + k * 37)],
  )
  return r.rows.map((x) => x.id)
}
const cursors50 = await cursorsAt(0.5)
const cursors90 = await cursorsAt(0.9)
const members = (
  await rawPool.query<{ user_id: string }>(
    'select user_id from guild_members where guild_id = $1 order by joined_at limit 64',
    [guild],
  )
).rows.map((r) => r.user_id)
const partners = (
  await rawPool.query<{ other: string }>(
    `select case when d.user_a = $1 then d.user_b else d.user_a end as other
     from dm_channels d join dm_participants p on p.channel_id = d.id and p.user_id = $1
     where not exists (select 1 from friendships f where f.status = 'blocked'
       and ((f.user_id = d.user_a and f.friend_id = d.user_b) or (f.user_id = d.user_b and f.friend_id = d.user_a)))
     order by d.id limit 32`,
    [data.dm_user_id],
  )
).rows.map((r) => r.other)
const SEARCHES = [
  'deploy',
  'xylophone',
  'coffee pizza',
  '"merge branch"',
  'database -cache',
  'quokka or narwhal',
]
const CONTENTS = Array.from(
  { length: 97 },
  (_, k) => `bench message ${k}: the deploy went fine, coffee later?`,
)

const at = <T>(list: readonly T[], i: number) => list[i % list.length] as T

// ---- scenarios ----------------------------------------------------------------
interface Def<A extends Record<string, unknown>> {
  name: string
  concurrency?: number
  iterations: number
  args: (i: number) => A
  /** Arguments as the SQL sees them (keys for the raw parameter mapping); default `args`. */
  rawArgs?: (a: A) => Record<string, unknown>
  guildstore: (a: A) => Promise<unknown>
  drizzle: (a: A) => Promise<unknown>
  freshIds?: boolean
  write?: boolean
  /** guildstore sends this statement unnamed (planned per call). */
  unnamed?: boolean
  /**
   * guildstore sends several statements; the raw contender runs the same ones in
   * order, each named, feeding an `ids` array a statement returns into the
   * array-valued parameter of the next.
   */
  multi?: boolean
  note?: string
}

interface Prepared {
  scenario: Scenario
  raw: RawStatement
  explainParams: readonly unknown[]
  def: Def<Record<string, unknown>>
}

const explains: Array<{ name: string; sql: string; plan: string; prepared: boolean }> = []

async function prepare<A extends Record<string, unknown>>(def: Def<A>): Promise<Prepared> {
  const probe = def.args(0)
  const captured: Captured[] = await captureSql(capturePool, (cdb) =>
    withDb(cdb, () => def.guildstore(probe)),
  )
  if (captured.length !== 1 && !def.multi) {
    throw new Error(`${def.name}: expected one statement, captured ${captured.length}`)
  }
  const statements = captured.map((c) =>
    toRawStatement(c, (def.rawArgs ?? ((a) => a))(probe), { freshIds: def.freshIds ?? false }),
  )
  // The last statement is the one measured and explained; earlier ones feed it.
  const raw = statements.at(-1) as RawStatement
  // The mapping must reproduce the captured parameters for the probe call.
  const check = raw.params((def.rawArgs ?? ((a) => a))(probe))
  const same = check.every(
    (v, i) => v === raw.probe[i] || (def.freshIds && typeof v === 'string' && v.length === 36),
  )
  if (!same) throw new Error(`${def.name}: raw parameter mapping does not reproduce the capture`)
  const rawArgs = def.rawArgs ?? ((a: A) => a)
  const contenders: Contender[] = [
    { name: 'guildstore', run: (i) => def.guildstore(def.args(i)) },
    {
      name: 'raw pg',
      run:
        statements.length === 1
          ? (i) => runRaw(rawPool, raw, rawArgs(def.args(i)))
          : async (i) => {
              const args = rawArgs(def.args(i))
              let ids: unknown
              for (const st of statements) {
                const values = st.params(args).map((v) => (Array.isArray(v) && ids ? ids : v))
                const r = await rawPool.query({ name: st.name, text: st.sql, values })
                ids = (r.rows[0] as { ids?: unknown } | undefined)?.ids
              }
            },
    },
    { name: 'drizzle', run: (i) => def.drizzle(def.args(i)) },
  ]
  const scenario: Scenario = {
    name: def.name,
    concurrency: def.concurrency ?? 1,
    iterations: iters(def.iterations),
    contenders,
  }
  if (def.note) scenario.note = def.note
  return {
    scenario,
    raw,
    explainParams: raw.probe,
    def: def as unknown as Def<Record<string, unknown>>,
  }
}

// guildstore functions take the executor; `current` lets the capture use a logging one.
let current = db
function withDb<T>(d: typeof db, fn: () => Promise<T>): Promise<T> {
  const prev = current
  current = d
  return fn().finally(() => {
    current = prev
  })
}

const defs: Array<Def<Record<string, unknown>>> = [
  {
    name: 'listChannelMessages: newest page (busiest channel)',
    iterations: 2000,
    args: () => ({ channel_id: busiest, limit: 50 }),
    guildstore: (a) => listChannelMessages(current, a.channel_id as string, { limit: 50 }),
    drizzle: (a) => dz.listNewest(ddb, a.channel_id as string, 50),
  },
  {
    name: 'listChannelMessages: page at 50% depth (before)',
    iterations: 2000,
    args: (i) => ({ channel_id: busiest, before: at(cursors50, i), limit: 50 }),
    guildstore: (a) =>
      listChannelMessages(current, a.channel_id as string, {
        before: a.before as string,
        limit: 50,
      }),
    drizzle: (a) => dz.listBefore(ddb, a.channel_id as string, a.before as string, 50),
  },
  {
    name: 'listChannelMessages: page at 90% depth (before)',
    iterations: 2000,
    args: (i) => ({ channel_id: busiest, before: at(cursors90, i), limit: 50 }),
    guildstore: (a) =>
      listChannelMessages(current, a.channel_id as string, {
        before: a.before as string,
        limit: 50,
      }),
    drizzle: (a) => dz.listBefore(ddb, a.channel_id as string, a.before as string, 50),
  },
  {
    name: 'listChannelMessages: newest page, 16 concurrent',
    concurrency: 16,
    iterations: 4000,
    args: () => ({ channel_id: busiest, limit: 50 }),
    guildstore: (a) => listChannelMessages(current, a.channel_id as string, { limit: 50 }),
    drizzle: (a) => dz.listNewest(ddb, a.channel_id as string, 50),
  },
  {
    name: 'createMessage: one at a time',
    iterations: 2000,
    write: true,
    freshIds: true,
    args: (i) => ({
      channel_id: data.write_channel_id,
      author_id: data.member_id,
      content: at(CONTENTS, i),
    }),
    guildstore: (a) =>
      createMessage(current, {
        channel_id: a.channel_id as string,
        author_id: a.author_id as string,
        content: a.content as string,
      }),
    drizzle: (a) =>
      dz.createMessage(ddb, {
        channel_id: a.channel_id as string,
        author_id: a.author_id as string,
        content: a.content as string,
      }),
  },
  {
    name: 'createMessage: 16 concurrent',
    concurrency: 16,
    iterations: 4000,
    write: true,
    freshIds: true,
    args: (i) => ({
      channel_id: data.write_channel_id,
      author_id: data.member_id,
      content: at(CONTENTS, i),
    }),
    guildstore: (a) =>
      createMessage(current, {
        channel_id: a.channel_id as string,
        author_id: a.author_id as string,
        content: a.content as string,
      }),
    drizzle: (a) =>
      dz.createMessage(ddb, {
        channel_id: a.channel_id as string,
        author_id: a.author_id as string,
        content: a.content as string,
      }),
  },
  {
    name: 'computePermissions (channel, 64 members)',
    iterations: 2000,
    args: (i) => ({ guild_id: guild, user_id: at(members, i), channel_id: busiest }),
    guildstore: (a) =>
      computePermissions(current, {
        guild_id: a.guild_id as string,
        user_id: a.user_id as string,
        channel_id: a.channel_id as string,
      }),
    drizzle: (a) =>
      dz.computePermissions(ddb, {
        guild_id: a.guild_id as string,
        user_id: a.user_id as string,
        channel_id: a.channel_id as string,
      }),
  },
  {
    name: 'searchMessages (6 queries, rotating)',
    iterations: 300,
    unnamed: true,
    multi: true,
    args: (i) => ({ user_id: data.member_id, query: at(SEARCHES, i), limit: 25 }),
    guildstore: (a) =>
      searchMessages(current, {
        user_id: a.user_id as string,
        query: a.query as string,
        limit: 25,
      }),
    drizzle: (a) =>
      dz.searchMessages(ddb, { user_id: a.user_id as string, query: a.query as string, limit: 25 }),
    note: 'guildstore runs two statements: the accessible channel ids (named, prepared), then the search with them bound as one uuid[] (unnamed, planned per call, on purpose); raw pg runs the same two, both named.',
  },
  {
    name: `listDmChannels (user with ${data.dm_user_dm_count} DMs)`,
    iterations: 1000,
    args: () => ({ user_id: data.dm_user_id }),
    guildstore: (a) => listDmChannels(current, a.user_id as string),
    drizzle: (a) => dz.listDmChannels(ddb, a.user_id as string),
  },
  {
    name: 'findOrCreateDmChannel: existing pair',
    iterations: 2000,
    freshIds: true,
    args: (i) => {
      const other = at(partners, i)
      const me = data.dm_user_id
      const [a, b] = me < other ? [me, other] : [other, me]
      return { user_id: me, other_user_id: other, a, b }
    },
    rawArgs: (a) => ({ a: a.a, b: a.b }),
    guildstore: (a) =>
      findOrCreateDmChannel(current, {
        user_id: a.user_id as string,
        other_user_id: a.other_user_id as string,
      }),
    drizzle: (a) =>
      dz.findOrCreateDmChannel(ddb, {
        user_id: a.user_id as string,
        other_user_id: a.other_user_id as string,
      }),
  },
]

const selected = defs.filter((d) => !only || d.name.toLowerCase().includes(only.toLowerCase()))
const results: ScenarioResult[] = []
const prepared: Prepared[] = []
for (const def of selected) prepared.push(await prepare(def))

const sys: SystemInfo = await systemInfo(rawPool)
const tScen = performance.now()
for (const p of prepared) {
  results.push(await measure(p.scenario, { rounds, warmup: 300, progress: log }))
  if (p.def.write) await cleanWrites()
}

// OFFSET vs keyset at 90% depth: raw pg both.
let offsetResult: ScenarioResult | undefined
const keyset = prepared.find((p) => p.def.name.includes('90% depth'))
const newest = prepared.find((p) => p.def.name.includes('newest page (busiest'))
if (keyset && newest) {
  const offsetSql = `${newest.raw.sql} offset $3`
  const offsetAt = Math.floor(live * 0.9)
  const contenders: Contender[] = [
    {
      name: 'keyset (before)',
      run: (i) =>
        runRaw(rawPool, keyset.raw, { channel_id: busiest, before: at(cursors90, i), limit: 50 }),
    },
    {
      name: 'OFFSET',
      run: (i) =>
        rawPool.query({
          name: 'bench_offset',
          text: offsetSql,
          values: [busiest, 50, offsetAt + (i % 64) * 37],
        }),
    },
  ]
  offsetResult = await measure(
    {
      name: `page at 90% depth (offset ${offsetAt}): keyset vs OFFSET, raw pg`,
      concurrency: 1,
      iterations: iters(30),
      contenders,
    },
    { rounds: 3, warmup: 5, progress: log },
  )
  explains.push({
    name: 'OFFSET page at 90% depth (for comparison, not used by guildstore)',
    sql: offsetSql,
    prepared: true,
    plan: await explain(rawPool, offsetSql, [busiest, 50, offsetAt], { prepared: true }),
  })
}
const scenarioSeconds = (performance.now() - tScen) / 1000

// searchMessages per query (guildstore only): the mix hides which terms are slow.
const searchBreakdown: string[] = []
if (prepared.some((p) => p.def.name.startsWith('searchMessages'))) {
  searchBreakdown.push('| query | hits (all channels) | p50 ms | p95 ms |', '|---|---:|---:|---:|')
  for (const q of SEARCHES) {
    const hits = (
      await rawPool.query<{ n: number }>(
        "select count(*)::int as n from messages where search @@ websearch_to_tsquery('simple', $1) and deleted_at is null",
        [q],
      )
    ).rows[0]!.n
    const s = await runRound(
      { name: q, run: () => searchMessages(db, { user_id: data.member_id, query: q, limit: 25 }) },
      iters(60),
      1,
    )
    searchBreakdown.push(`| \`${q}\` | ${hits} | ${s.p50.toFixed(1)} | ${s.p95.toFixed(1)} |`)
  }
}

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

// The Redis section (bench/redis-limiter.ts, owned by the Redis helper), when present.
let redisSection = ''
const redisBench = `${root}bench/redis-limiter.ts`
if (existsSync(redisBench) && !only) {
  log('running bench/redis-limiter.ts')
  redisSection = await new Promise<string>((resolve) => {
    const child = spawn(process.execPath, [redisBench], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.on('close', (code) =>
      resolve(
        code === 0 ? out.trim() : `${out.trim()}\n\n(bench/redis-limiter.ts exited with ${code})`,
      ),
    )
  })
}

// Read state, catch-up and createMessage contention (bench/scenarios/read-state.ts,
// its own scratch database); --quick runs it at 50 000 unread.
let readStateSection = ''
const readStateBench = `${root}bench/scenarios/read-state.ts`
if (existsSync(readStateBench) && !only) {
  log('running bench/scenarios/read-state.ts')
  readStateSection = await new Promise<string>((resolve) => {
    const args = quick ? ['--quick', '--unread', '50000'] : []
    const child = spawn(process.execPath, [readStateBench, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.on('close', (code) =>
      resolve(code === 0 ? out.trim() : `${out.trim()}\n\n(read-state bench exited with ${code})`),
    )
  })
}

await Promise.all([db.destroy(), rawPool.end(), dzPool.end(), capturePool.end()])
const maxRssMiB = process.resourceUsage().maxRSS / 1024
const totalSeconds = (performance.now() - benchStart) / 1000

// ---- report -----------------------------------------------------------------
const f1 = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2))
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`

function resultsTable(rs: ScenarioResult[]): string {
  const lines = [
    '| scenario | conc. | contender | ops/s | p50 ms | p95 ms | p99 ms | vs raw pg | vs drizzle |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|',
  ]
  for (const r of rs) {
    const raw = r.contenders.find((c) => c.name === 'raw pg')
    const d = r.contenders.find((c) => c.name === 'drizzle')
    r.contenders.forEach((c, k) => {
      lines.push(
        `| ${k === 0 ? r.name : ''} | ${k === 0 ? r.concurrency : ''} | ${c.name} | ${f1(c.opsPerSec)} | ${f1(c.p50)} | ${f1(c.p95)} | ${f1(c.p99)} | ${raw ? ratio(c.opsPerSec, raw.opsPerSec) : ''} | ${d ? ratio(c.opsPerSec, d.opsPerSec) : ''} |`,
      )
    })
  }
  return lines.join('\n')
}

function offsetTable(r: ScenarioResult): string {
  const [k, o] = r.contenders as [ScenarioResult['contenders'][0], ScenarioResult['contenders'][0]]
  return [
    '| query (raw pg, prepared) | ops/s | p50 ms | p95 ms | p99 ms |',
    '|---|---:|---:|---:|---:|',
    ...r.contenders.map(
      (c) => `| ${c.name} | ${f1(c.opsPerSec)} | ${f1(c.p50)} | ${f1(c.p95)} | ${f1(c.p99)} |`,
    ),
    '',
    `Keyset is ${(k.opsPerSec / o.opsPerSec).toFixed(0)}× the throughput of OFFSET at this depth: OFFSET reads and discards every row above the page.`,
  ].join('\n')
}

function targets(rs: ScenarioResult[]): string {
  const lines = ['| target | measured | met |', '|---|---:|:---:|']
  for (const r of rs) {
    const g = r.contenders.find((c) => c.name === 'guildstore')!
    const raw = r.contenders.find((c) => c.name === 'raw pg')!
    const d = r.contenders.find((c) => c.name === 'drizzle')!
    const a = g.opsPerSec / raw.opsPerSec
    const b = g.opsPerSec / d.opsPerSec
    lines.push(`| ${r.name}: ≥ 0.95× raw pg | ${a.toFixed(3)}× | ${a >= 0.95 ? 'yes' : '**no**'} |`)
    lines.push(`| ${r.name}: ≥ 1.3× drizzle | ${b.toFixed(3)}× | ${b >= 1.3 ? 'yes' : '**no**'} |`)
  }
  const n = rs.find((r) => r.name.includes('newest page (busiest'))
  const deep = rs.find((r) => r.name.includes('90% depth'))
  if (n && deep) {
    const x = deep.contenders[0]!.opsPerSec / n.contenders[0]!.opsPerSec
    lines.push(
      `| page at 90% depth ≥ 0.9× newest page (${data.params.messages.toLocaleString('en')} messages) | ${x.toFixed(3)}× | ${x >= 0.9 ? 'yes' : '**no**'} |`,
    )
  }
  const s = rs.find((r) => r.name.startsWith('searchMessages'))
  if (s) {
    const p95 = s.contenders[0]!.p95
    lines.push(`| searchMessages p95 ≤ 20 ms | ${f1(p95)} ms | ${p95 <= 20 ? 'yes' : '**no**'} |`)
  }
  return lines.join('\n')
}

const table = resultsTable(results)
console.log(`\n${table}\n`)
if (offsetResult) console.log(`${offsetTable(offsetResult)}\n`)
console.log(`${targets(results)}\n`)
if (searchBreakdown.length) console.log(`${searchBreakdown.join('\n')}\n`)
console.log(
  `peak RSS of the bench process: ${maxRssMiB.toFixed(0)} MiB; scenarios ${scenarioSeconds.toFixed(0)} s; total ${totalSeconds.toFixed(0)} s`,
)
if (flag('--explain')) {
  for (const e of explains) console.log(`\n### ${e.name}\n\n${e.plan}`)
}

const cmdline = ['npm run bench', ...(argv.length ? ['--', ...argv] : [])].join(' ')
const md = `# Benchmarks

Generated by \`${cmdline}\` (bench/run.ts) on ${new Date().toISOString().slice(0, 10)}. Numbers are
the median of ${rounds} interleaved rounds (contender order rotating every round, after a warm-up),
each contender on its own pool of ${POOL_MAX} connections, all in one Node process. PostgreSQL runs on
the same machine, so the bench process and the server share the CPU: treat differences under ~5% as noise.

## Machine and versions

| | |
|---|---|
| CPU | ${sys.cpuModel}, ${sys.cpus} cores |
| memory | ${sys.memoryGiB} GiB |
| OS | ${sys.os} |
| Node.js | ${sys.node} |
| PostgreSQL | ${sys.postgres} |
| PostgreSQL settings | ${Object.entries(sys.postgresSettings)
  .map(([k, v]) => `${k}=${v}`)
  .join(', ')} |
| Redis | ${sys.redis} |
| packages | ${Object.entries(sys.packages)
  .map(([k, v]) => `${k} ${v}`)
  .join(', ')} |

## Data set

Database \`guildstore_bench\`, built by bench/generate.ts in ${data.buildSeconds.toFixed(0)} s${data.reused ? ' (reused by this run)' : ''}:
${Object.entries(data.counts)
  .map(([k, v]) => `${k} ${v.toLocaleString('en')}`)
  .join(', ')}.
Sizes: ${Object.entries(data.tableSizes)
  .map(([k, v]) => `${k} ${v}`)
  .join(', ')}.

- Messages: UUIDv7 ids made in SQL from a synthetic, strictly increasing millisecond timeline (one
  year), so id order = created_at order; 1% soft-deleted, 3% edited, 1% replies; 5% in DMs.
- Skew: the busiest channel (#general of the biggest guild) holds ${data.busiest.live_messages.toLocaleString('en')} live messages
  (${(data.busiest.share * 100).toFixed(1)}% of all); the rest follow a power law over ${data.params.channels.toLocaleString('en')} channels.
- Content: 3–17 words: 85% drawn Zipf-like from ~320 common words, 15% uniformly from a long tail of
  2 000 words (\`term0\`…\`term1999\`), plus 20 rare words (~100 hits per 1M messages each); texts come
  from a pool of 100 000 distinct texts.
- Guilds: sizes skewed (biggest ${'≈'}5 000 members); every guild has its owner as member and 4 roles
  (default @everyone, Member, Moderator, Admin); ~26% of members hold a role; position 2 of every
  guild is a private channel with 40 channel_members; position 3 a voice channel.
- DMs: ${data.params.dmPairs.toLocaleString('en')} pairs, skewed towards power users (the bench's DM user has ${data.dm_user_dm_count} DMs), read markers at 80%.
- Friendships: ${data.params.friendships.toLocaleString('en')} accepted pairs (two rows each), pending requests, some blocks (never between DM pairs).

## How to reproduce

\`\`\`sh
export PATH=/opt/node24/node_modules/.bin:$PATH
# a PostgreSQL superuser URL (default postgres://postgres@127.0.0.1:5432/postgres); the bench creates guildstore_bench
export BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
npm run bench                       # 1M messages (reuses the data set when its parameters match)
npm run bench -- --messages 10000000  # the 10M variant
npm run bench -- --rebuild           # force a fresh data set
npm run bench -- --quick --only search   # a quick look at one scenario
node bench/generate.ts --messages 1000000   # only build the data set
\`\`\`

## Results (${data.params.messages.toLocaleString('en')} messages)

Ratios compare throughput (ops/s). "raw pg" runs the identical SQL text (captured from guildstore's
log hook) as a named prepared statement on a plain \`pg.Pool\`; "drizzle" runs an equivalent query built
with drizzle-orm's query builder per call (bench/drizzle-queries.ts).

**Reading the ratios.** On this 2-core machine PostgreSQL and the bench share the CPU, and
wall-clock ratios between two contenders running the same SQL move by about ±8% from run to run
(the same code measured 0.92× on the newest page and 1.02× at 90% depth in one 1M run, and 0.97×
and 0.91× in the 10M run). The steadier measure of what guildstore adds is Node CPU per call,
\`node bench/overhead.ts\`: a guildstore call on a \`createDb\` executor runs its prepared statement
straight on the pool and costs the same as raw \`pool.query({ name, text, values })\` (−1.4 µs
per call, i.e. within noise); with a \`log\` hook or plugins it goes through Kysely's executor
(+28 µs per call).

${table}

${results
  .filter((r) => r.note)
  .map((r) => `- ${r.name}: ${r.note}`)
  .join('\n')}

${searchBreakdown.length ? `### searchMessages by query (guildstore, a member of 5 guilds incl. the busiest)\n\n${searchBreakdown.join('\n')}\n` : ''}
### Keyset vs OFFSET

${offsetResult ? offsetTable(offsetResult) : '(not run)'}

### Targets

${targets(results)}

Peak RSS of the bench process: ${maxRssMiB.toFixed(0)} MiB. Scenario time ${scenarioSeconds.toFixed(0)} s; whole run ${totalSeconds.toFixed(0)} s.

${redisSection ? `## Redis rate limiter (bench/redis-limiter.ts)\n\n${redisSection}\n` : ''}${readStateSection ? `## Read state and catch-up\n\n${readStateSection}\n` : ''}
## Query plans

\`EXPLAIN (ANALYZE, BUFFERS)\` of each scenario's statement with the probe arguments: prepared
statements after 6 executions (the plan the plan cache settled on), the unnamed search statement with
its actual values. Writes ran in a rolled-back transaction.

${explains.map((e) => `### ${e.name}\n\n\`\`\`sql\n${e.sql}\n\`\`\`\n\n\`\`\`\n${e.plan}\n\`\`\``).join('\n\n')}
`
// The 10M variant (`npm run bench -- --messages 10000000 --only listChannelMessages --out bench/results-10m.md`),
// when it was run: its results and targets go into BENCHMARKS.md too.
let full = md
const tenM = `${root}bench/results-10m.md`
if (outFile.endsWith('BENCHMARKS.md') && existsSync(tenM)) {
  const text = await readFile(tenM, 'utf8')
  const a = text.indexOf('## Results')
  const b = text.indexOf('## Query plans')
  const built = /built by bench\/generate.ts in (\d+) s/.exec(text)?.[1]
  if (a >= 0 && b > a) {
    const section = `## 10M messages variant (bench/results-10m.md)\n\nFrom \`npm run bench -- --messages 10000000 --only listChannelMessages --out bench/results-10m.md\`${built ? ` (data set built in ${built} s)` : ''}; its query plans are in that file.\n\n${text
      .slice(a, b)
      .replace(/^## Results/, '### Results')
      .replace(/^### /gm, '#### ')
      .replace(/^#### Results/m, '### Results')}`
    full = md.replace('## Query plans', `${section}\n## Query plans`)
  }
}
if (!flag('--no-write')) {
  await writeFile(outFile, full)
  log(`wrote ${outFile}`)
}
