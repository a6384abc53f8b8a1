/**
 * Read state, catch-up and createMessage under contention (issue 14):
 *
 *   node bench/scenarios/read-state.ts [--unread 500000] [--channels 20] [--rounds 3] [--quick]
 *
 * Builds its own scratch database (dropped at the end), then measures, each
 * side by side with raw `pg` running the identical SQL as a named prepared
 * statement (captured from guildstore, as bench/run.ts does):
 *
 * - listChannelReadStates for a guild of `--channels` channels where the user
 *   has read everything, and where one channel holds `--unread` unread
 *   messages (with mentions of the user, their roles and @everyone): the ratio
 *   of the two is the backlog cost (target ≤ 1.5×);
 * - listDmChannels with 0 and `--unread` unread messages in a DM;
 * - the catch-up poll: listChannelMessages({ after: newest seen }) on the busy
 *   channel, with nothing new and with 50 new messages;
 * - createMessage, 16 writers spread over 64 channels, and 16 writers on one
 *   hot channel (messages/s and p99).
 *
 * Prints a markdown section (stdout) with the results and the plans.
 */
import type { Kysely } from 'kysely'
import pg from 'pg'
import type { DB } from '../../codegen/db.ts'
import { adminUrl } from '../../scripts/scratch-database.ts'
import { newId } from '../../src/ids/new-id.ts'
import { guildstoreTypeParsers } from '../../src/pool/create-pool.ts'
import { listDmChannels } from '../../src/repositories/dms.ts'
import { createMessage, listChannelMessages } from '../../src/repositories/messages.ts'
import { listChannelReadStates, markChannelRead } from '../../src/repositories/read-states.ts'
import { createDb } from '../../src/sql/create-db.ts'
import { createTestDatabase } from '../../src/testing/index.ts'
import { captureSql, type RawStatement, runRaw, toRawStatement } from '../capture.ts'
import { explain } from '../explain.ts'
import { measure, type ScenarioResult } from '../harness.ts'

const argv = process.argv.slice(2)
const option = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const quick = argv.includes('--quick')
const UNREAD = Number(option('--unread') ?? 500_000)
const CHANNELS = Number(option('--channels') ?? 20)
const ROUNDS = Number(option('--rounds') ?? (quick ? 2 : 3))
/** listDmChannels takes ~0.1 ms: many short rounds, so that the median drops the ones a pause hit. */
const DM_ROUNDS = Math.max(ROUNDS, quick ? 10 : 20)
const iters = (n: number) => (quick ? Math.max(40, Math.round(n / 5)) : n)
const log = (msg: string) => process.stderr.write(`[bench:read-state] ${msg}\n`)

const t0 = performance.now()
const scratch = await createTestDatabase({ url: adminUrl(), pool: { max: 2 } })
const gsPool = new pg.Pool({
  connectionString: scratch.url,
  max: 16,
  types: guildstoreTypeParsers,
  application_name: 'bench-guildstore',
})
const rawPool = new pg.Pool({
  connectionString: scratch.url,
  max: 16,
  types: guildstoreTypeParsers,
  application_name: 'bench-raw',
})
// EXPLAIN runs `deallocate all`: on a pool of its own, never under the contenders.
const explainPool = new pg.Pool({
  connectionString: scratch.url,
  max: 1,
  types: guildstoreTypeParsers,
})
/** Retries an operation once when another process terminated its connection (57P01). */
const retry = async <T>(op: () => Promise<T>): Promise<T> => {
  try {
    return await op()
  } catch (error) {
    if ((error as { code?: string }).code !== '57P01') throw error
    return op()
  }
}
const q = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) =>
  (await rawPool.query<R>(text, values)).rows
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void scratch.drop().finally(() => process.exit(130))
  })
}
for (const p of [gsPool, rawPool, explainPool])
  p.on('error', (e) => log(`pool error: ${e.message}`))
const db: Kysely<DB> = createDb(gsPool)
const only = option('--only')

try {
  // ---- data -------------------------------------------------------------------
  log(`building: ${CHANNELS} channels, ${UNREAD} messages in the busy channel and in a DM`)
  const [owner, reader, fresh, partner] = (
    await q<{ id: string }>(
      `insert into users (username) select 'bench_rs_' || g from generate_series(1, 4) g returning id`,
    )
  ).map((r) => r.id) as [string, string, string, string]
  const [guild] = await q<{ id: string }>(
    `insert into guilds (name, owner_id) values ('bench', $1) returning id`,
    [owner],
  )
  const guildId = guild!.id
  await q(`insert into guild_members (guild_id, user_id) select $1, u from unnest($2::uuid[]) u`, [
    guildId,
    [owner, reader, fresh],
  ])
  await q(
    `insert into roles (guild_id, name, permissions, is_default) values ($1, '@everyone', 3072, true)`,
    [guildId],
  )
  const roles = (
    await q<{ id: string }>(
      `insert into roles (guild_id, name, position) select $1, 'r' || g, g from generate_series(1, 3) g returning id`,
      [guildId],
    )
  ).map((r) => r.id)
  await q(
    `insert into member_roles (guild_id, user_id, role_id)
     select $1, u, r from unnest($2::uuid[]) u cross join unnest($3::uuid[]) r`,
    [guildId, [reader, fresh], roles],
  )
  const channels = (
    await q<{ id: string }>(
      `insert into channels (guild_id, name, position) select $1, 'c' || g, g from generate_series(1, $2::int) g returning id`,
      [guildId, CHANNELS],
    )
  ).map((r) => r.id)
  const busy = channels[0] as string
  // A DM with the same backlog.
  const dm = newId()
  await q(`insert into channels (id, type) values ($1, 'dm')`, [dm])
  const [a, b] = fresh < partner ? [fresh, partner] : [partner, fresh]
  await q(`insert into dm_channels (id, user_a, user_b) values ($1, $2, $3)`, [dm, a, b])
  await q(`insert into dm_participants (channel_id, user_id) values ($1, $2), ($1, $3)`, [dm, a, b])

  /** Bulk load with explicit positions (the messages_seq trigger leaves them). */
  const bulk = async (channel: string, author: string, n: number, withMentions: boolean) => {
    await q(
      `with m as (
         insert into messages (id, channel_id, author_id, content, seq)
         select guildstore_uuidv7(), $1, $2, 'backlog message ' || g, c.last_seq + g
         from channels c cross join generate_series(1, $3::int) g where c.id = $1
         returning id, channel_id, seq, author_id
       ), mentions as (
         insert into message_mentions (message_id, channel_id, seq, author_id, user_id, role_id, everyone)
         select m.id, m.channel_id, m.seq, m.author_id, x.user_id, x.role_id, x.everyone from m
         cross join lateral (
           select $4::uuid as user_id, null::uuid as role_id, false as everyone where m.seq % 13 = 0
           union all select $5::uuid, null, false where m.seq % 13 = 0
           union all select null, $6::uuid, false where m.seq % 7 = 0
           union all select null, null, true where m.seq % 10 = 0
         ) x
         where $7::boolean
       )
       update channels set last_seq = last_seq + $3::int where id = $1`,
      [channel, author, n, reader, fresh, roles[0], withMentions],
    )
  }
  const tb = performance.now()
  for (const c of channels) await bulk(c, owner, c === busy ? UNREAD : 200, true)
  await bulk(dm, partner, UNREAD, false)
  log(`loaded in ${((performance.now() - tb) / 1000).toFixed(1)} s; vacuum analyze`)
  await q('vacuum analyze')

  // reader: everything read. fresh: everything read but the busy channel (and the DM).
  const newest = async (channel: string) =>
    (await listChannelMessages(db, channel, { limit: 1 }))[0]!.id
  for (const c of channels) {
    const id = await newest(c)
    await markChannelRead(db, { channel_id: c, user_id: reader, message_id: id })
    if (c !== busy) await markChannelRead(db, { channel_id: c, user_id: fresh, message_id: id })
  }
  // The partner (who wrote the DM's backlog) has read it to the end: 0 unread.
  await markChannelRead(db, { channel_id: dm, user_id: partner, message_id: await newest(dm) })
  const readerDmPartner = partner
  const [readState0] = (
    await listChannelReadStates(db, { user_id: reader, guild_id: guildId })
  ).filter((s) => s.channel_id === busy)
  const [readStateN] = (
    await listChannelReadStates(db, { user_id: fresh, guild_id: guildId })
  ).filter((s) => s.channel_id === busy)
  log(`busy channel: reader ${JSON.stringify(readState0)}; fresh ${JSON.stringify(readStateN)}`)

  // ---- scenarios ----------------------------------------------------------------
  interface Def {
    name: string
    concurrency: number
    iterations: number
    call: (d: Kysely<DB>, i: number) => Promise<unknown>
    probe: Record<string, unknown>
    args: (i: number) => Record<string, unknown>
    write?: boolean
    /** Warm-up calls per contender (at most `iterations`); default 300. */
    warmup?: number
    /** Rounds; default `--rounds`. */
    rounds?: number
  }
  const results: ScenarioResult[] = []
  const plans: Array<{ name: string; sql: string; plan: string }> = []
  const run = async (def: Def) => {
    if (only && !def.name.includes(only)) return
    const captured = await captureSql(gsPool, (d) => def.call(d, 0))
    const raw: RawStatement = toRawStatement(captured.at(-1)!, def.probe, { freshIds: true })
    const scenario = {
      name: def.name,
      concurrency: def.concurrency,
      iterations: def.iterations,
      contenders: [
        { name: 'guildstore', run: (i: number) => retry(() => def.call(db, i)) },
        { name: 'raw pg', run: (i: number) => retry(() => runRaw(rawPool, raw, def.args(i))) },
      ],
    }
    results.push(
      await measure(scenario, {
        rounds: def.rounds ?? ROUNDS,
        warmup: def.warmup ?? 300,
        progress: log,
      }),
    )
    // Every scenario's plan with its own arguments: buffer counts compare the
    // backlog cases independently of how loaded the machine is.
    plans.push({
      name: def.name,
      sql: raw.sql,
      plan: await explain(explainPool, raw.sql, raw.params(def.args(0)), {
        prepared: true,
        write: def.write ?? false,
      }),
    })
  }

  for (const [label, user] of [
    ['0 unread', reader],
    [`${UNREAD.toLocaleString('en')} unread in one channel`, fresh],
  ] as const) {
    await run({
      name: `listChannelReadStates, ${CHANNELS} channels, ${label}`,
      concurrency: 1,
      iterations: iters(300),
      call: (d) => listChannelReadStates(d, { user_id: user, guild_id: guildId }),
      probe: { user, guildId },
      args: () => ({ user, guildId }),
    })
  }
  for (const [label, user] of [
    ['0 unread', readerDmPartner],
    [`${UNREAD.toLocaleString('en')} unread`, fresh],
  ] as const) {
    await run({
      name: `listDmChannels, ${label}`,
      concurrency: 1,
      // ~0.1 ms a call: a round of a few hundred calls is over in tens of ms, so
      // a JIT or GC pause, or a burst of another process, moves the figure of
      // the round it lands in; a long warm-up and many rounds (the median drops
      // the hit ones)
      iterations: iters(2500),
      warmup: 1000,
      rounds: DM_ROUNDS,
      call: (d) => listDmChannels(d, user),
      probe: { user },
      args: () => ({ user }),
    })
  }
  const recent = (await listChannelMessages(db, busy, { limit: 51 })).map((m) => m.id)
  for (const [label, after] of [
    ['nothing new', recent[0] as string],
    ['50 new', recent[50] as string],
  ] as const) {
    await run({
      name: `catch-up poll (after), ${label}`,
      concurrency: 16,
      iterations: iters(4000),
      call: (d) => listChannelMessages(d, busy, { after, limit: 100 }),
      probe: { busy, after },
      args: () => ({ busy, after }),
    })
  }
  const writeChannels = (
    await q<{ id: string }>(
      `insert into channels (guild_id, name, position) select $1, 'w' || g, 100 + g from generate_series(1, 64) g returning id`,
      [guildId],
    )
  ).map((r) => r.id)
  const hot = writeChannels[0] as string
  await run({
    name: 'createMessage, 16 writers over 64 channels',
    concurrency: 16,
    iterations: iters(4000),
    call: (d, i) =>
      createMessage(d, {
        channel_id: writeChannels[i % 64] as string,
        author_id: owner,
        content: `spread ${i}`,
      }),
    probe: { channel: writeChannels[0], owner, content: 'spread 0' },
    args: (i) => ({ channel: writeChannels[i % 64], owner, content: `spread ${i}` }),
    write: true,
  })
  await run({
    name: 'createMessage, 16 writers on one hot channel',
    concurrency: 16,
    iterations: iters(4000),
    call: (d, i) => createMessage(d, { channel_id: hot, author_id: owner, content: `hot ${i}` }),
    probe: { hot, owner, content: 'hot 0' },
    args: (i) => ({ hot, owner, content: `hot ${i}` }),
    write: true,
  })

  // ---- report -------------------------------------------------------------------
  const f = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2))
  const lines: string[] = []
  lines.push(
    '| scenario | conc. | contender | ops/s | p50 ms | p95 ms | p99 ms | Node CPU µs/op | vs raw pg |',
  )
  lines.push('|---|---:|---|---:|---:|---:|---:|---:|---:|')
  for (const r of results) {
    const raw = r.contenders.find((c) => c.name === 'raw pg')!
    for (const c of r.contenders) {
      lines.push(
        `| ${r.name} | ${r.concurrency} | ${c.name} | ${f(c.opsPerSec)} | ${f(c.p50)} | ${f(c.p95)} | ${f(c.p99)} | ${f(c.cpuPerOp)} | ${(c.opsPerSec / raw.opsPerSec).toFixed(2)}× |`,
      )
    }
  }
  const gs = (name: string) =>
    results.find((r) => r.name.startsWith(name))?.contenders.find((c) => c.name === 'guildstore')
  const ratio = (a: string, b: string) => (gs(b)?.p50 ?? Number.NaN) / (gs(a)?.p50 ?? Number.NaN)
  const rsRatio = ratio(
    'listChannelReadStates',
    `listChannelReadStates, ${CHANNELS} channels, ${UNREAD.toLocaleString('en')}`,
  )
  const dmRatio = ratio('listDmChannels, 0', `listDmChannels, ${UNREAD.toLocaleString('en')}`)
  const out = [
    `### Read state, catch-up and createMessage (bench/scenarios/read-state.ts)`,
    '',
    `Scratch database: ${CHANNELS} channels; the busy channel and one DM hold ${UNREAD.toLocaleString('en')} messages each (every 13th mentions the user, every 7th a role they hold, every 10th @everyone), the other channels 200. ${ROUNDS} rounds (listDmChannels ${DM_ROUNDS}), median; guildstore and raw pg (same SQL, named prepared statement) interleaved, in the warm-up too. Node CPU µs/op: the process's CPU time per operation (JIT and GC included), which moves far less with the machine's load than wall time does.`,
    '',
    ...lines,
    '',
    `Backlog cost (p50, ${UNREAD.toLocaleString('en')} unread ÷ 0 unread): listChannelReadStates **${rsRatio.toFixed(2)}×**, listDmChannels **${dmRatio.toFixed(2)}×** (target ≤ 1.5×).`,
    `Busy channel as the two users see it: 0 unread → \`${JSON.stringify(readState0)}\`; backlog → \`${JSON.stringify(readStateN)}\`.`,
    '',
    '| scenario | shared buffers (EXPLAIN ANALYZE) | execution ms |',
    '|---|---:|---:|',
    ...plans.map(
      (p) =>
        `| ${p.name} | ${/Buffers: shared hit=(\d+)/.exec(p.plan)?.[1] ?? '?'} | ${/Execution Time: ([\d.]+)/.exec(p.plan)?.[1] ?? '?'} |`,
    ),
    '',
    ...plans.flatMap((p, k) => [
      `#### ${p.name}`,
      '',
      ...(plans.findIndex((o) => o.sql === p.sql) === k ? ['```sql', p.sql, '```', ''] : []),
      '```',
      p.plan,
      '```',
      '',
    ]),
    `Total ${((performance.now() - t0) / 1000).toFixed(0)} s.`,
  ]
  process.stdout.write(`${out.join('\n')}\n`)
} finally {
  await Promise.all([db.destroy(), rawPool.end(), explainPool.end()])
  await scratch.drop()
}
