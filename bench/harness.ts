/**
 * Measurement: contenders of a scenario run in the same process, interleaved
 * in rounds (the order rotates every round: ABC, BCA, CAB, …), after a warm-up.
 * Every round records each operation's latency and the process's CPU time; a
 * scenario's figure is the median over rounds.
 *
 * The warm-up is interleaved too (contenders take turns in small chunks, the
 * first of each turn rotating): a scenario's first calls make V8 re-optimize
 * code the contenders share (pg's protocol parser and row builder meeting a new
 * result shape, streams, the pool), and a warm-up run one contender after the
 * other charged all of that to whichever contender came first.
 */

/** One way of doing a scenario's operation. `i` is the operation's sequence number. */
export interface Contender {
  name: string
  run: (i: number) => Promise<unknown>
}

export interface Scenario {
  name: string
  /** Operations in flight at once (workers sharing one counter). */
  concurrency: number
  /** Operations per contender per round. */
  iterations: number
  contenders: Contender[]
  /** Shown under the table. */
  note?: string
}

export interface RoundStats {
  opsPerSec: number
  p50: number
  p95: number
  p99: number
  /**
   * Node CPU time per operation, µs: `process.cpuUsage()` (user + system, all
   * threads: JIT and GC included) over the round ÷ operations. It moves far
   * less with the machine's load than wall time does.
   */
  cpuPerOp: number
}

export interface ContenderResult extends RoundStats {
  name: string
  rounds: RoundStats[]
}

export interface ScenarioResult {
  name: string
  concurrency: number
  iterations: number
  rounds: number
  contenders: ContenderResult[]
  note?: string
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  return sorted[idx] as number
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

let sequence = 0

/** Runs `n` operations of one contender with `concurrency` workers; returns the round's stats. */
export async function runRound(c: Contender, n: number, concurrency: number): Promise<RoundStats> {
  const lat = new Float64Array(n)
  let next = 0
  const cpu = process.cpuUsage()
  const start = performance.now()
  const worker = async () => {
    for (;;) {
      const k = next++
      if (k >= n) return
      const t = performance.now()
      await c.run(sequence++)
      lat[k] = performance.now() - t
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
  const wall = performance.now() - start
  const used = process.cpuUsage(cpu)
  lat.sort()
  return {
    opsPerSec: (n * 1000) / wall,
    p50: percentile(lat, 0.5),
    p95: percentile(lat, 0.95),
    p99: percentile(lat, 0.99),
    cpuPerOp: (used.user + used.system) / n,
  }
}

/**
 * Warms the contenders up: `calls` operations each, in turns of `chunk`
 * operations, the contender that starts a turn rotating (AB, BA, AB, …).
 */
export async function warmUp(
  contenders: readonly Contender[],
  calls: number,
  concurrency: number,
  chunk = Math.max(concurrency * 4, 20),
): Promise<void> {
  const k = contenders.length
  for (let done = 0, turn = 0; done < calls; done += chunk, turn++) {
    for (let j = 0; j < k; j++) {
      const c = contenders[(turn + j) % k] as Contender
      await runRound(c, Math.min(chunk, calls - done), concurrency)
    }
  }
}

/** Measures a scenario: an interleaved warm-up (see {@link warmUp}), then `rounds` rotating rounds. */
export async function measure(
  s: Scenario,
  options: { rounds: number; warmup: number; progress?: (msg: string) => void },
): Promise<ScenarioResult> {
  const { rounds, warmup, progress } = options
  const t = performance.now()
  await warmUp(
    s.contenders,
    Math.max(s.concurrency * 4, Math.min(warmup, s.iterations)),
    s.concurrency,
  )
  const per = new Map<string, RoundStats[]>(s.contenders.map((c) => [c.name, []]))
  for (let r = 0; r < rounds; r++) {
    const k = s.contenders.length
    for (let j = 0; j < k; j++) {
      const c = s.contenders[(r + j) % k] as Contender
      per.get(c.name)!.push(await runRound(c, s.iterations, s.concurrency))
    }
  }
  const contenders = s.contenders.map((c) => {
    const rs = per.get(c.name)!
    return {
      name: c.name,
      rounds: rs,
      opsPerSec: median(rs.map((x) => x.opsPerSec)),
      p50: median(rs.map((x) => x.p50)),
      p95: median(rs.map((x) => x.p95)),
      p99: median(rs.map((x) => x.p99)),
      cpuPerOp: median(rs.map((x) => x.cpuPerOp)),
    }
  })
  progress?.(
    `${s.name}: ${contenders.map((c) => `${c.name} ${Math.round(c.opsPerSec)}/s (${c.cpuPerOp.toFixed(0)} µs CPU/op)`).join(', ')} (${((performance.now() - t) / 1000).toFixed(1)}s)`,
  )
  const result: ScenarioResult = {
    name: s.name,
    concurrency: s.concurrency,
    iterations: s.iterations,
    rounds,
    contenders,
  }
  if (s.note) result.note = s.note
  return result
}
