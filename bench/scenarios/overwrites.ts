/**
 * Channel permission overwrites: `computePermissions` (with a channel) and
 * `canAccessChannel` in channels with overwrites, guildstore vs raw `pg`
 * running the IDENTICAL SQL (captured from guildstore) as a named prepared
 * statement, interleaved in rounds (bench/harness.ts).
 *
 *   node bench/scenarios/overwrites.ts [--members 2000] [--channels 50] [--rounds 100] [--iterations 100]
 *     [--explain] [--aa] [--separate-pools] [--diagnose [--pairs 100] [--block 200] [--plans]]
 *
 * Both contenders share one pool, so at concurrency 1 one connection: the same
 * backend runs guildstore's statement and raw pg's, alternately. Many short
 * rounds: the two contenders of a round run back to back and share the box's
 * load of the moment; each goes first in half of them (an even number of
 * rounds). Besides the ratio of the contenders' median rounds, the table shows
 * the paired ratio, the median of the rounds' own ratios (the steadier one).
 *
 * `--aa`: an A/A control, raw pg (under a statement name of its own) in
 * guildstore's place: the noise floor of the ratios on this box.
 * `--separate-pools`: a pool (so a backend) per contender, as before 2026-11-30.
 * `--diagnose`: load-independent evidence instead of the table
 * (bench/paired-diagnosis.ts): Node CPU, round trips and backend CPU per call,
 * plan cache counters and EXPLAIN (ANALYZE, BUFFERS) of the statements.
 *
 * Builds its own scratch database (a clone of the migrated template): one guild
 * with `--members` members, 20 roles (each member holds 0–4), `--channels`
 * channels, each with an @everyone overwrite, 8 role overwrites and 16 member
 * overwrites (a mix of allow and deny), and some private channels. Prints a
 * markdown table; the database is dropped at the end.
 */
import pg from 'pg'
import { adminUrl } from '../../scripts/scratch-database.ts'
import { newId } from '../../src/ids/new-id.ts'
import { computePermissions } from '../../src/permissions/compute-permissions.ts'
import { Permissions } from '../../src/permissions/permissions.ts'
import { guildstoreTypeParsers } from '../../src/pool/create-pool.ts'
import { canAccessChannel } from '../../src/repositories/channels.ts'
import { createDb } from '../../src/sql/create-db.ts'
import { createTestDatabase } from '../../src/testing/index.ts'
import { captureSql, runRaw, toRawStatement } from '../capture.ts'
import { type Contender, measure, type ScenarioResult } from '../harness.ts'
import { countRoundTrips, type DiagnosedContender, diagnosePair } from '../paired-diagnosis.ts'

const argv = process.argv.slice(2)
const option = (name: string, fallback: number) => {
  const i = argv.indexOf(name)
  return i >= 0 ? Number(argv[i + 1]) : fallback
}
const MEMBERS = option('--members', 2000)
const CHANNELS = option('--channels', 50)
const ROUNDS = option('--rounds', 100)
const ITERATIONS = option('--iterations', 100)
const AA = argv.includes('--aa')
const DIAGNOSE = argv.includes('--diagnose')
const log = (msg: string) => process.stderr.write(`[bench:overwrites] ${msg}\n`)

const { VIEW_CHANNEL, SEND_MESSAGES, MANAGE_MESSAGES, READ_MESSAGE_HISTORY } = Permissions
const FLAGS = [VIEW_CHANNEL, SEND_MESSAGES, MANAGE_MESSAGES, READ_MESSAGE_HISTORY, 0n]

/** A small seeded PRNG (mulberry32), so every run builds the same data. */
function prng(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}
const rand = prng(42)
const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)] as T

const scratch = await createTestDatabase({ url: adminUrl(), pool: { max: 4 } })
// One pool, so one connection (concurrency 1) for both contenders: the same
// backend runs both statements, alternately. With a pool each, two backends
// running the same statement differed by up to 1.32× (paired 1.14×) in an A/A
// control at load 2 (--aa --separate-pools): a contender's backend, not its
// client, decided the ratio.
const newPool = (application_name: string) =>
  new pg.Pool({
    connectionString: scratch.url,
    max: 8,
    types: guildstoreTypeParsers,
    application_name,
  })
const gsPool = newPool('bench-overwrites')
const SEPARATE = argv.includes('--separate-pools')
const rawPool = SEPARATE ? newPool('bench-overwrites-raw') : gsPool
if (DIAGNOSE) for (const pool of new Set([gsPool, rawPool])) countRoundTrips(pool)
try {
  const started = performance.now()
  // The load runs on the scratch database's own pool: neither contender's connection
  // is the backend that loaded the data (measured slower per call than a fresh one).
  const q = (text: string, values: unknown[] = []) => scratch.pool.query(text, values)
  const owner = newId()
  const guild = newId()
  await q(
    `insert into users (id, username) select id, 'u' || right(replace(id::text, '-', ''), 30)
     from unnest($1::uuid[]) id`,
    [[owner, ...Array.from({ length: MEMBERS }, () => newId())]],
  )
  const users = (await q('select id from users where id <> $1 order by id', [owner])).rows.map(
    (r) => r.id as string,
  )
  await q(`insert into guilds (id, name, owner_id) values ($1, 'bench', $2)`, [guild, owner])
  await q('insert into guild_members (guild_id, user_id) select $1, unnest($2::uuid[])', [
    guild,
    [owner, ...users],
  ])
  const everyone = newId()
  await q(
    `insert into roles (id, guild_id, name, permissions, position, is_default)
     values ($1, $2, '@everyone', $3, 0, true)`,
    [everyone, guild, (VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY).toString()],
  )
  const roles = Array.from({ length: 20 }, () => newId())
  for (const [k, role] of roles.entries()) {
    await q(
      'insert into roles (id, guild_id, name, permissions, position) values ($1, $2, $3, $4, $5)',
      [role, guild, `r${k}`, pick(FLAGS).toString(), k + 1],
    )
  }
  const assignments: [string, string][] = []
  for (const user of users) {
    const held = new Set(Array.from({ length: Math.floor(rand() * 5) }, () => pick(roles)))
    for (const role of held) assignments.push([user, role])
  }
  await q(
    `insert into member_roles (guild_id, user_id, role_id)
     select $1, u, r from unnest($2::uuid[], $3::uuid[]) as x(u, r)`,
    [guild, assignments.map((a) => a[0]), assignments.map((a) => a[1])],
  )
  const channels = Array.from({ length: CHANNELS }, () => newId())
  let overwrites = 0
  for (const [k, channel] of channels.entries()) {
    await q(
      `insert into channels (id, guild_id, name, type, position, is_private) values ($1, $2, $3, 'text', $4, $5)`,
      [channel, guild, `c${k}`, k, k % 10 === 9],
    )
    const targets: { role?: string; user?: string }[] = [
      { role: everyone },
      ...[...new Set(Array.from({ length: 8 }, () => pick(roles)))].map((role) => ({ role })),
      ...[...new Set(Array.from({ length: 16 }, () => pick(users)))].map((user) => ({ user })),
    ]
    for (const target of targets) {
      const allow = pick(FLAGS)
      const deny = pick(FLAGS) & ~allow
      await q(
        `insert into channel_overwrites (channel_id, guild_id, role_id, user_id, allow, deny)
         values ($1, $2, $3, $4, $5, $6)`,
        [
          channel,
          guild,
          target.role ?? null,
          target.user ?? null,
          allow.toString(),
          deny.toString(),
        ],
      )
      overwrites++
    }
    if (k % 10 === 9) {
      // channel_members carries the guild (migration 0002) and only holds its members.
      await q(
        `insert into channel_members (channel_id, guild_id, user_id)
         select $1, $2, m.user_id from guild_members m
         where m.guild_id = $2 and m.user_id = any($3::uuid[])`,
        [channel, guild, users.filter(() => rand() < 0.3)],
      )
    }
  }
  await q('vacuum analyze')
  log(
    `data: ${MEMBERS} members, ${roles.length} roles, ${assignments.length} assignments, ${CHANNELS} channels, ${overwrites} overwrites (${((performance.now() - started) / 1000).toFixed(1)} s)`,
  )

  const db = createDb(gsPool)
  const at = <T>(list: readonly T[], i: number) => list[i % list.length] as T
  const argsOf = (i: number) => ({
    guild_id: guild,
    user_id: at(users, i * 7919),
    channel_id: at(channels, i),
  })

  const scenarios: {
    name: string
    run: (d: typeof db, a: ReturnType<typeof argsOf>) => Promise<unknown>
    rawArgs: (a: ReturnType<typeof argsOf>) => Record<string, unknown>
  }[] = [
    {
      name: 'computePermissions (channel with overwrites)',
      run: (d, a) => computePermissions(d, a),
      rawArgs: (a) => a,
    },
    {
      name: 'canAccessChannel (channel with overwrites)',
      run: (d, a) => canAccessChannel(d, { channel_id: a.channel_id, user_id: a.user_id }),
      rawArgs: (a) => ({ channel_id: a.channel_id, user_id: a.user_id }),
    },
  ]
  const results: ScenarioResult[] = []
  for (const s of scenarios) {
    const probe = argsOf(0)
    const [captured, ...more] = await captureSql(gsPool, (cdb) => s.run(cdb, probe))
    if (!captured || more.length > 0) throw new Error(`${s.name}: expected one statement`)
    const raw = toRawStatement(captured, s.rawArgs(probe))
    if (argv.includes('--explain')) {
      const plan = await rawPool.query(`explain (analyze, buffers) ${raw.sql}`, [...raw.probe])
      log(`${s.name}\n${plan.rows.map((r) => r['QUERY PLAN']).join('\n')}`)
    }
    // The same answers both ways, over a sample (which also warms both up).
    for (let i = 0; i < 1000; i++) {
      const a = argsOf(i)
      const mine = await s.run(db, a)
      const theirs = (await runRaw(rawPool, raw, s.rawArgs(a))).rows[0]
      const value = Object.values(theirs as object)[0]
      if (String(mine) !== String(value)) throw new Error(`${s.name}: answers differ at ${i}`)
    }
    // --aa: the control, raw pg (a statement of its own name) in guildstore's place.
    const control = { ...raw, name: `${raw.name}_aa` }
    const first: DiagnosedContender = AA
      ? {
          name: 'raw pg (A/A)',
          pool: gsPool,
          run: (i) => runRaw(gsPool, control, s.rawArgs(argsOf(i))),
        }
      : { name: 'guildstore', pool: gsPool, run: (i) => s.run(db, argsOf(i)) }
    const second: DiagnosedContender = {
      name: 'raw pg',
      pool: rawPool,
      run: (i) => runRaw(rawPool, raw, s.rawArgs(argsOf(i))),
    }
    if (DIAGNOSE) {
      await diagnosePair(s.name, [first, second], {
        sql: raw.sql,
        probe: raw.probe,
        pairs: option('--pairs', 100),
        block: option('--block', 200),
        plans: argv.includes('--plans'),
        log,
      })
      continue
    }
    const contenders: Contender[] = [first, second]
    results.push(
      await measure(
        { name: s.name, concurrency: 1, iterations: ITERATIONS, contenders },
        { rounds: ROUNDS, warmup: 1000, progress: log },
      ),
    )
  }

  // Concurrency 1 throughout: one connection per pool, so both contenders ran on one backend.
  if (gsPool.totalCount !== 1) log(`note: the pool holds ${gsPool.totalCount} connections`)
  const who = AA ? 'raw pg (A/A)' : 'guildstore'
  const lines = [
    `| scenario | ${who} ops/s | raw pg ops/s | ratio | paired ratio | ${who} p95 ms | raw pg p95 ms |`,
    `|---|---:|---:|---:|---:|---:|---:|`,
  ]
  for (const r of results) {
    const [gs, raw] = r.contenders as [
      ScenarioResult['contenders'][0],
      ScenarioResult['contenders'][0],
    ]
    // Paired: the median of the rounds' own ratios (a round runs the two back to back).
    const perRound = gs.rounds
      .map((g, k) => g.opsPerSec / (raw.rounds[k]?.opsPerSec ?? Number.NaN))
      .sort((x, y) => x - y)
    const mid = perRound.length >> 1
    const paired =
      perRound.length % 2
        ? (perRound[mid] as number)
        : ((perRound[mid - 1] as number) + (perRound[mid] as number)) / 2
    lines.push(
      `| ${r.name} | ${Math.round(gs.opsPerSec)} | ${Math.round(raw.opsPerSec)} | ${(gs.opsPerSec / raw.opsPerSec).toFixed(2)}× | ${paired.toFixed(2)}× | ${gs.p95.toFixed(3)} | ${raw.p95.toFixed(3)} |`,
    )
  }
  if (!DIAGNOSE) {
    process.stdout.write(
      `\n${MEMBERS} members, ${CHANNELS} channels, ${overwrites} overwrites; ${ROUNDS} rounds × ${ITERATIONS} operations (${ITERATIONS * ROUNDS} per contender), median of rounds; paired ratio: median of the rounds' own ratios.${AA ? " A/A control: raw pg in guildstore's place." : ''}\n\n${lines.join('\n')}\n`,
    )
  }
} finally {
  await gsPool.end()
  if (SEPARATE) await rawPool.end()
  await scratch.drop()
}
