/**
 * Rate-limiter throughput: guildstore's limiter vs a bare EVALSHA of the same
 * script vs rate-limiter-flexible's RateLimiterRedis, on one Redis, in one
 * process, in interleaved rounds.
 *
 *   node bench/redis-limiter.ts            # REDIS_URL or redis://127.0.0.1:6379
 *   BENCH_OPS=100000 BENCH_CONCURRENCY=128 BENCH_ROUNDS=5 node bench/redis-limiter.ts
 *
 * Works under its own random key namespace and deletes its keys at the end.
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { RateLimiterRedis } from 'rate-limiter-flexible'
import { createRateLimiter, createRedis } from '../src/redis/index.ts'
import { RATE_LIMIT_LUA } from '../src/redis/rate-limit-script.ts'

const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
const OPS = Number(process.env.BENCH_OPS ?? 50_000)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const WARMUP = Math.min(5_000, OPS)
const SUBJECTS = 1_000
const LIMIT = 100
const WINDOW_MS = 1_000

const namespace = `gs_bench_${randomBytes(4).toString('hex')}`
const redis = createRedis({ url, namespace })
const subjects = Array.from({ length: SUBJECTS }, (_, i) => `10.0.${i >> 8}.${i & 255}`)

type Check = (subject: string) => Promise<unknown>

const limiter = createRateLimiter(redis, { category: 'bench', limit: LIMIT, windowMs: WINDOW_MS })
const guildstore: Check = (subject) => limiter.consume(subject)

const sha = (await redis.script('LOAD', RATE_LIMIT_LUA)) as string
const interval = Math.floor((WINDOW_MS * 1000) / LIMIT)
const bareKeyPrefix = `${namespace}:bare:ratelimit:{bench:`
const bare: Check = (subject) =>
  redis.evalsha(sha, 1, `${bareKeyPrefix}${subject}}`, interval, LIMIT, 1)

const flexible = new RateLimiterRedis({
  storeClient: redis,
  keyPrefix: `${namespace}:rlf`,
  points: LIMIT,
  duration: WINDOW_MS / 1000,
})
const rlf: Check = (subject) =>
  flexible.consume(subject).catch((rejection: unknown) => {
    if (rejection instanceof Error) throw rejection // a store error, not "limited"
    return rejection
  })

interface Sample {
  opsPerSec: number
  p50: number
  p99: number
}

async function run(check: Check, ops: number): Promise<Sample> {
  const latencies = new Float64Array(ops)
  let next = 0
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= ops) return
      const started = performance.now()
      await check(subjects[i % SUBJECTS]!)
      latencies[i] = performance.now() - started
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  const seconds = (performance.now() - started) / 1000
  latencies.sort()
  return {
    opsPerSec: ops / seconds,
    p50: latencies[Math.floor(ops * 0.5)]!,
    p99: latencies[Math.floor(ops * 0.99)]!,
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const contenders: Array<[string, Check]> = [
  ['guildstore createRateLimiter', guildstore],
  ['bare EVALSHA (same script)', bare],
  ['rate-limiter-flexible', rlf],
]

try {
  for (const [, check] of contenders) await run(check, WARMUP)
  const samples = new Map<string, Sample[]>(contenders.map(([name]) => [name, []]))
  for (let round = 0; round < ROUNDS; round++) {
    // rotate the start so no contender always runs first
    for (let k = 0; k < contenders.length; k++) {
      const [name, check] = contenders[(round + k) % contenders.length]!
      samples.get(name)!.push(await run(check, OPS))
    }
  }
  const summary = contenders.map(([name]) => {
    const list = samples.get(name)!
    return {
      name,
      opsPerSec: median(list.map((s) => s.opsPerSec)),
      p50: median(list.map((s) => s.p50)),
      p99: median(list.map((s) => s.p99)),
    }
  })
  const baseline = summary.find((s) => s.name.startsWith('bare'))!.opsPerSec
  console.log(
    `Redis ${url} — ${OPS} checks × ${ROUNDS} rounds, ${CONCURRENCY} in flight, ${SUBJECTS} subjects (median of rounds)\n`,
  )
  console.log(
    `${'contender'.padEnd(30)} ${'ops/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'vs bare'.padStart(8)}`,
  )
  for (const s of summary) {
    console.log(
      `${s.name.padEnd(30)} ${Math.round(s.opsPerSec).toString().padStart(10)} ${s.p50.toFixed(3).padStart(8)} ${s.p99.toFixed(3).padStart(8)} ${`${(s.opsPerSec / baseline).toFixed(2)}×`.padStart(8)}`,
    )
  }
} finally {
  let cursor = '0'
  do {
    const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000)
    cursor = nextCursor
    if (keys.length > 0) await redis.del(...keys)
  } while (cursor !== '0')
  redis.disconnect()
}
