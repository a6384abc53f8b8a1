/**
 * Replica figures for docs/scaling.md, on a private primary and streaming
 * replica started on loopback (as the tests do): replication lag, what
 * read-your-writes costs (waits and fallbacks), and read throughput with and
 * without the replica. One box: primary, replica and this process share the
 * CPU, so this shows the mechanism's cost, not scale-out.
 *
 *   node bench/replicas.ts [--seconds 5] [--rounds 300] [--concurrency 16]
 *
 * Prints a Markdown section on stdout (a sub-bench of `npm run bench`); progress on stderr.
 */
import { parseArgs } from 'node:util'
import {
  createDb,
  createPool,
  createUser,
  findUserById,
  newId,
  replicaStats,
  runMigrations,
  updateUser,
} from '../src/index.ts'
import { startReplicatedPair } from '../test/support/private-replica.ts'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '16' },
  },
})
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const concurrency = Number(values.concurrency)

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return `p50 ${pct(s, 50).toFixed(2)} ms, p95 ${pct(s, 95).toFixed(2)} ms, max ${s.at(-1)?.toFixed(2)} ms (n=${s.length})`
}
/** Rows of the Markdown table printed at the end. */
const rows: Array<[string, string]> = []
const report = (figure: string, value: string) => {
  rows.push([figure, value])
  console.error(`${figure}: ${value}`)
}

const pair = await startReplicatedPair()
const primary = createPool({ connectionString: pair.primary.urlOf('postgres'), max: 20 })
const replica = createPool({
  connectionString: pair.replica.urlOf('postgres'),
  max: 20,
  connectionTimeoutMillis: 2000,
})
try {
  await runMigrations(primary)
  const plain = createDb(primary)
  const users = await Promise.all(
    Array.from({ length: 200 }, () => createUser(plain, { username: `b_${newId().slice(-12)}` })),
  )
  await pair.waitCaughtUp()

  // 1. Replication lag: commit on the primary → replayed on the replica.
  const lags: number[] = []
  for (let i = 0; i < rounds; i++) {
    const user = users[i % users.length]!
    await updateUser(plain, user.id, { display_name: `n${i}` })
    const started = performance.now()
    const { rows } = await primary.query('SELECT pg_current_wal_lsn()::text AS lsn')
    for (;;) {
      const r = await replica.query('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [
        rows[0].lsn,
      ])
      if (r.rows[0].ok) break
    }
    lags.push(performance.now() - started)
  }
  report('replication lag (write committed → replayed, polled)', summary(lags))

  // 2. Read-your-writes: a write then a read of it through the same db.
  for (const timeout of [250, 0]) {
    const db = createDb(primary, {
      replicas: [replica],
      readYourWritesTimeoutMs: timeout,
      replicaCheckIntervalMs: 200,
    })
    await findUserById(db, users[0]!.id)
    const readMs: number[] = []
    for (let i = 0; i < rounds; i++) {
      const user = users[i % users.length]!
      await updateUser(db, user.id, { display_name: `r${i}` })
      const started = performance.now()
      const found = await findUserById(db, user.id)
      readMs.push(performance.now() - started)
      if (found?.display_name !== `r${i}`) throw new Error('stale read after own write')
    }
    const s = replicaStats(db)!
    report(
      `read right after own write, readYourWritesTimeoutMs ${timeout}`,
      `${rounds} pairs, 0 stale; replica served ${s.replicaReads - 1} (${s.waitedReads} after a replay check), primary fallback ${s.primaryReads.notReplayed} (not replayed), ${s.primaryReads.lagging} (lagging); read ${summary(readMs)}`,
    )
  }

  // 3. Paused replay: the read after a write waits the bound, then uses the primary.
  {
    const db = createDb(primary, { replicas: [replica], readYourWritesTimeoutMs: 250 })
    await findUserById(db, users[0]!.id)
    await pair.query(pair.replica, 'SELECT pg_wal_replay_pause()')
    const readMs: number[] = []
    for (let i = 0; i < 20; i++) {
      await updateUser(db, users[i]!.id, { display_name: `p${i}` })
      const started = performance.now()
      await findUserById(db, users[i]!.id)
      readMs.push(performance.now() - started)
    }
    await pair.query(pair.replica, 'SELECT pg_wal_replay_resume()')
    const p = replicaStats(db)!.primaryReads
    report(
      'replay paused, read after own write (timeout 250 ms)',
      `${p.notReplayed} waited the bound then used the primary, ${p.lagging} skipped the lagging replica at once; read ${summary(readMs)}`,
    )
  }

  // 4. Read throughput, findUserById, `concurrency` callers for `seconds` s each.
  const throughput = async (label: string, db: ReturnType<typeof createDb>) => {
    let ops = 0
    const until = performance.now() + seconds * 1000
    await Promise.all(
      Array.from({ length: concurrency }, async (_, w) => {
        let i = w
        while (performance.now() < until) {
          await findUserById(db, users[i++ % users.length]!.id)
          ops++
        }
      }),
    )
    report(
      `findUserById, ${concurrency} concurrent: ${label}`,
      `${(ops / seconds).toFixed(0)} reads/s`,
    )
  }
  const primaryOnly = createDb(primary)
  const withReplica = createDb(primary, { replicas: [replica] })
  await throughput('primary only (warm-up)', primaryOnly)
  for (let round = 0; round < 2; round++) {
    await throughput('primary only', primaryOnly)
    await throughput('reads to the replica', withReplica)
  }
  const s = replicaStats(withReplica)!
  report(
    'throughput run with the replica: reads served',
    `replica ${s.replicaReads}, primary ${JSON.stringify(s.primaryReads)}`,
  )
  console.log(
    [
      'A private primary and a streaming replica on loopback (pg_basebackup), sharing this box: the figures show the cost of routing and read-your-writes, not scale-out.',
      '',
      '| figure | value |',
      '|---|---|',
      ...rows.map(([f, v]) => `| ${f} | ${v} |`),
    ].join('\n'),
  )
} finally {
  await primary.end()
  await replica.end()
  await pair.destroy()
}
