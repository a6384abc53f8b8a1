/**
 * Load-independent evidence for a two-contender scenario (guildstore vs raw pg
 * running the same SQL), for when wall-clock ratios are too noisy to trust:
 *
 * - Node CPU µs per call (`process.cpuUsage` over a block of calls);
 * - client round trips per call (`client.query` calls on the contender's pool);
 * - the backend's CPU µs per call (`/proc/<pid>/stat` of the pool's one backend;
 *   the server must run on this host, else it shows NaN);
 * - wall µs per call and the throughput ratio, from short blocks run back to
 *   back, order swapped every pair, median over pairs (each pair shares the load
 *   of its moment);
 * - each backend's prepared statements with their generic/custom plan counts
 *   (`pg_prepared_statements`) and `EXPLAIN (ANALYZE, BUFFERS)` of the
 *   statement as that connection runs it (generic or custom plan, as it chose).
 *
 * Concurrency 1: a pool then holds one connection, whose backend is measured
 * (the same one for both contenders when they share a pool).
 */
import { readFile } from 'node:fs/promises'
import type pg from 'pg'
import type { Contender } from './harness.ts'

const roundTrips = new WeakMap<pg.Pool, number>()

/** Counts the `client.query` calls of the pool's connections from now on (install before its first query). */
export function countRoundTrips(pool: pg.Pool): void {
  roundTrips.set(pool, 0)
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...a: unknown[]) => unknown
    ;(client as { query: unknown }).query = (...a: unknown[]) => {
      roundTrips.set(pool, (roundTrips.get(pool) ?? 0) + 1)
      return query(...a)
    }
  })
}

/** CPU time (user + system, in clock ticks of 10 ms) of a local process, NaN when unreadable. */
async function cpuTicks(pid: number): Promise<number> {
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? []
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return Number.NaN
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

/** One contender and the pool it runs on. */
export interface DiagnosedContender extends Contender {
  pool: pg.Pool
}

/**
 * Runs the diagnosis of `a` (guildstore, or an A/A control) against `b` (raw pg)
 * and writes it with `log`. `sql` and `probe` pick the statement to EXPLAIN.
 */
export async function diagnosePair(
  name: string,
  [a, b]: [DiagnosedContender, DiagnosedContender],
  options: {
    sql: string
    probe: readonly unknown[]
    pairs: number
    block: number
    plans: boolean
    log: (msg: string) => void
  },
): Promise<void> {
  const { pairs, block, log } = options
  const both = [a, b]
  for (const c of both) for (let i = 0; i < 1000; i++) await c.run(i)
  // One after the other: concurrent queries would open a second connection.
  const pids: number[] = []
  for (const c of both)
    pids.push((await c.pool.query('select pg_backend_pid() as pid')).rows[0].pid)
  const wall = [[] as number[], [] as number[]]
  const cpu = [[] as number[], [] as number[]]
  const trips = [0, 0]
  const serverTicks = [0, 0]
  const ratio: number[] = []
  let seq = 0
  for (let p = 0; p < pairs; p++) {
    for (const k of p % 2 ? [1, 0] : [0, 1]) {
      const c = both[k] as DiagnosedContender
      const trips0 = roundTrips.get(c.pool) ?? Number.NaN
      const ticks0 = await cpuTicks(pids[k] as number)
      const t0 = performance.now()
      const cpu0 = process.cpuUsage()
      for (let i = 0; i < block; i++) await c.run(seq + i)
      const cpu1 = process.cpuUsage(cpu0)
      ;(wall[k] as number[]).push(((performance.now() - t0) * 1000) / block)
      ;(cpu[k] as number[]).push((cpu1.user + cpu1.system) / block)
      trips[k] = (trips[k] as number) + ((roundTrips.get(c.pool) ?? Number.NaN) - trips0)
      serverTicks[k] = (serverTicks[k] as number) + ((await cpuTicks(pids[k] as number)) - ticks0)
    }
    // a's throughput ÷ b's in this pair
    ratio.push((wall[1]?.at(-1) as number) / (wall[0]?.at(-1) as number))
    seq += block
  }
  const calls = pairs * block
  log(`${name}: ${pairs} pairs of ${block}-call blocks (medians over blocks)`)
  for (const [k, c] of both.entries()) {
    log(
      `  ${c.name.padEnd(12)} wall ${median(wall[k] as number[]).toFixed(1)} µs/call, Node CPU ${median(cpu[k] as number[]).toFixed(1)} µs/call, round trips ${((trips[k] as number) / calls).toFixed(3)}/call, backend ${pids[k]} CPU ${(((serverTicks[k] as number) * 10_000) / calls).toFixed(1)} µs/call`,
    )
  }
  const cpuDiff = (cpu[0] as number[]).map((x, i) => x - ((cpu[1] as number[])[i] as number))
  log(
    `  paired: ${a.name} ÷ ${b.name} throughput ${median(ratio).toFixed(3)}×, Node CPU ${a.name} − ${b.name} ${median(cpuDiff).toFixed(1)} µs/call`,
  )
  // Each backend once (the contenders may share one), with every statement of this SQL text.
  for (const pool of new Set(both.map((c) => c.pool))) {
    const client = await pool.connect()
    try {
      const statements = await client.query(
        `select name, parameter_types::text as types, generic_plans, custom_plans
         from pg_prepared_statements where statement = $1`,
        [options.sql],
      )
      for (const s of statements.rows) {
        log(
          `  backend ${pids[both.findIndex((c) => c.pool === pool)]}: statement "${s.name}" ${s.types}: ${s.generic_plans} generic plans, ${s.custom_plans} custom plans`,
        )
        const literals = options.probe.map((v) => client.escapeLiteral(String(v))).join(', ')
        const explain = `explain (analyze, buffers) execute "${String(s.name).replaceAll('"', '""')}"(${literals})`
        // One plan shown; the execution time as the median of 21 runs (one run is noisy).
        let lines: string[] = []
        const times: number[] = []
        for (let n = 0; n < 21; n++) {
          lines = (await client.query(explain)).rows.map((x) => x['QUERY PLAN'] as string)
          const time = lines.find((l) => l.startsWith('Execution Time'))?.match(/[\d.]+/)?.[0]
          times.push(Number(time))
        }
        const buffers = lines.find((l) => /^ {2}Buffers/.test(l))?.trim()
        log(
          `    ${buffers}; execution time ${median(times).toFixed(3)} ms (median of 21 EXPLAIN ANALYZE)${options.plans ? `\n${lines.join('\n')}` : ''}`,
        )
      }
    } finally {
      client.release()
    }
  }
}
