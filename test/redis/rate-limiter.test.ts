import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../src/errors/index.ts'
import {
  createRateLimiter,
  createRedis,
  createRedisKeys,
  RateLimiterStoreError,
} from '../../src/redis/index.ts'
import { deleteNamespace, freePort, namespaceKeys, redisUrl, testNamespace } from './support.ts'

const namespace = testNamespace('limiter')
const keys = createRedisKeys(namespace)
let redis: Redis

beforeAll(() => {
  redis = createRedis({ url: redisUrl(), namespace })
})

afterAll(async () => {
  await deleteNamespace(redis, namespace)
  redis.disconnect()
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('createRateLimiter', () => {
  it('allows exactly `limit` of 300 concurrent checks', async () => {
    const limiter = createRateLimiter(redis, { category: 'burst', limit: 50, windowMs: 60_000 })
    const results = await Promise.all(Array.from({ length: 300 }, () => limiter.consume('1.2.3.4')))
    const allowed = results.filter((r) => r.allowed)
    expect(allowed).toHaveLength(50)
    expect(allowed.map((r) => r.remaining).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 50 }, (_, i) => i),
    )
    for (const denied of results.filter((r) => !r.allowed)) {
      expect(denied.remaining).toBe(0)
      expect(denied.retryAfterMs).toBeGreaterThan(0)
      expect(denied.retryAfterMs).toBeLessThanOrEqual(1200)
    }
  })

  it('reports remaining, retryAfterMs and resetAfterMs', async () => {
    // A long window (one unit per 10 s) keeps the bounds loose enough for a loaded machine.
    const limiter = createRateLimiter(redis, { category: 'values', limit: 10, windowMs: 100_000 })
    const first = await limiter.consume('u1')
    expect(first).toEqual({ allowed: true, remaining: 9, retryAfterMs: 0, resetAfterMs: 10_000 })
    const second = await limiter.consume('u1')
    expect(second.allowed).toBe(true)
    expect(second.remaining).toBe(8)
    expect(second.resetAfterMs).toBeGreaterThan(19_000)
    expect(second.resetAfterMs).toBeLessThanOrEqual(20_000)
    for (let i = 0; i < 8; i++) expect((await limiter.consume('u1')).allowed).toBe(true)
    const denied = await limiter.consume('u1')
    expect(denied.allowed).toBe(false)
    expect(denied.remaining).toBe(0)
    expect(denied.retryAfterMs).toBeGreaterThan(9_000)
    expect(denied.retryAfterMs).toBeLessThanOrEqual(10_000)
    expect(denied.resetAfterMs).toBeGreaterThan(90_000)
    expect(denied.resetAfterMs).toBeLessThanOrEqual(100_000)
    // another subject is untouched
    expect((await limiter.consume('u2')).remaining).toBe(9)
  })

  it('stores the TAT under the documented key, by the Redis clock, expiring with the window', async () => {
    const limiter = createRateLimiter(redis, { category: 'login', limit: 5, windowMs: 5000 })
    await limiter.consume('203.0.113.7')
    const key = `${namespace}:ratelimit:{login:203.0.113.7}`
    expect(keys.rateLimit('login', '203.0.113.7')).toBe(key)
    const [[, stored], [, time], [, pttl]] = (await redis
      .multi()
      .get(key)
      .time()
      .pttl(key)
      .exec()) as [[null, string], [null, [string, string]], [null, number]]
    const redisNowUs = Number(time[0]) * 1_000_000 + Number(time[1])
    // TAT = now + one emission interval (1 s), in microseconds of the server's clock
    expect(Math.abs(Number(stored) - (redisNowUs + 1_000_000))).toBeLessThan(200_000)
    expect(pttl).toBeGreaterThan(0)
    expect(pttl).toBeLessThanOrEqual(1000)
  })

  it('takes `cost` units; a denied cost changes nothing; cost > limit is never allowed', async () => {
    const limiter = createRateLimiter(redis, { category: 'cost', limit: 10, windowMs: 100_000 })
    const key = keys.rateLimit('cost', 's')
    expect((await limiter.consume('s', 4)).remaining).toBe(6)
    const before = await redis.get(key)
    const tooMuch = await limiter.consume('s', 7)
    expect(tooMuch.allowed).toBe(false)
    expect(tooMuch.remaining).toBe(6)
    expect(tooMuch.retryAfterMs).toBeGreaterThan(9000)
    expect(await redis.get(key)).toBe(before)
    const overLimit = await limiter.consume('s', 11)
    expect(overLimit).toMatchObject({ allowed: false, retryAfterMs: Number.POSITIVE_INFINITY })
    expect(await redis.get(key)).toBe(before)
    expect(await limiter.consume('s', 6)).toMatchObject({ allowed: true, remaining: 0 })
    // over-limit cost on a fresh subject creates no key
    expect((await limiter.consume('fresh', 11)).allowed).toBe(false)
    expect(await redis.exists(keys.rateLimit('cost', 'fresh'))).toBe(0)
  })

  it('reset forgets a subject', async () => {
    const limiter = createRateLimiter(redis, { category: 'reset', limit: 3, windowMs: 60_000 })
    for (let i = 0; i < 3; i++) await limiter.consume('s')
    expect((await limiter.consume('s')).allowed).toBe(false)
    await limiter.reset('s')
    expect(await redis.exists(keys.rateLimit('reset', 's'))).toBe(0)
    expect(await limiter.consume('s')).toMatchObject({ allowed: true, remaining: 2 })
  })

  it('slides: no second full burst right after a window edge', async () => {
    const limiter = createRateLimiter(redis, { category: 'edge', limit: 10, windowMs: 1000 })
    const burst = await Promise.all(Array.from({ length: 12 }, () => limiter.consume('s')))
    expect(burst.filter((r) => r.allowed)).toHaveLength(10)
    const started = Date.now()
    await sleep(300)
    const after = await Promise.all(Array.from({ length: 10 }, () => limiter.consume('s')))
    const elapsed = Date.now() - started
    const allowedAfter = after.filter((r) => r.allowed).length
    // a fixed 1 s window would let 10 more through at its edge; GCRA refills 1 per 100 ms
    expect(allowedAfter).toBeGreaterThanOrEqual(3)
    expect(allowedAfter).toBeLessThanOrEqual(Math.floor(elapsed / 100))
    expect(allowedAfter).toBeLessThan(10)
  })

  it('refuses malformed options and arguments without writing anything', async () => {
    const bad = [
      { category: 'x', limit: 0, windowMs: 1000 },
      { category: 'x', limit: 1.5, windowMs: 1000 },
      { category: 'x', limit: -1, windowMs: 1000 },
      { category: 'x', limit: Number.NaN, windowMs: 1000 },
      { category: 'x', limit: 10, windowMs: 0 },
      { category: 'x', limit: 10, windowMs: 2.5 },
      { category: 'x', limit: 2_000_000, windowMs: 1 },
      { category: '', limit: 1, windowMs: 1000 },
      { category: 'a:b', limit: 1, windowMs: 1000 },
      { category: 'a{b', limit: 1, windowMs: 1000 },
      { category: 'a\0b', limit: 1, windowMs: 1000 },
      { category: 'x'.repeat(65), limit: 1, windowMs: 1000 },
      { category: 'x', limit: 1, windowMs: 1000, namespace: 'bad ns' },
      { category: 'x', limit: 1, windowMs: 1000, timeoutMs: -1 },
    ]
    for (const options of bad) {
      expect(() => createRateLimiter(redis, options)).toThrow(InvalidInputError)
    }
    const before = (await namespaceKeys(redis, namespace)).length
    const limiter = createRateLimiter(redis, { category: 'invalid', limit: 5, windowMs: 1000 })
    for (const subject of ['', 'a\0b', 'x'.repeat(513), 42 as unknown as string]) {
      await expect(limiter.consume(subject)).rejects.toBeInstanceOf(InvalidInputError)
      await expect(limiter.reset(subject)).rejects.toBeInstanceOf(InvalidInputError)
    }
    for (const cost of [0, -1, 1.5, Number.NaN, '2' as unknown as number]) {
      await expect(limiter.consume('ok', cost)).rejects.toBeInstanceOf(InvalidInputError)
    }
    const error = await limiter.consume('a\0b').catch((e: InvalidInputError) => e)
    expect(error).toMatchObject({ field: 'subject' })
    expect((error as Error).message).not.toContain('a\0b')
    expect((await namespaceKeys(redis, namespace)).length).toBe(before)
  })

  it('store failure: RateLimiterStoreError by default, allowed with failOpen', async () => {
    const port = await freePort() // nothing listens there
    const errors: Error[] = []
    const down = createRedis({
      url: `redis://127.0.0.1:${port}`,
      maxRetriesPerRequest: 0,
      onError: (error) => errors.push(error),
    })
    try {
      const closed = createRateLimiter(down, {
        category: 'down',
        limit: 5,
        windowMs: 1000,
        timeoutMs: 200,
      })
      const started = Date.now()
      const error = await closed.consume('s').catch((e: unknown) => e)
      expect(Date.now() - started).toBeLessThan(1000)
      expect(error).toBeInstanceOf(RateLimiterStoreError)
      expect((error as RateLimiterStoreError).cause).toBeInstanceOf(Error)
      expect((error as RateLimiterStoreError).category).toBe('down')
      await expect(closed.reset('s')).rejects.toBeInstanceOf(RateLimiterStoreError)

      const reported: RateLimiterStoreError[] = []
      const open = createRateLimiter(down, {
        category: 'down',
        limit: 5,
        windowMs: 1000,
        failOpen: true,
        timeoutMs: 200,
        onStoreError: (e) => reported.push(e),
      })
      expect(await open.consume('s')).toEqual({
        allowed: true,
        remaining: 4,
        retryAfterMs: 0,
        resetAfterMs: 0,
      })
      expect(reported).toHaveLength(1)
      expect(reported[0]).toBeInstanceOf(RateLimiterStoreError)
      expect(errors.length).toBeGreaterThan(0) // the 'error' listener took them; nothing crashed
    } finally {
      down.disconnect()
    }
  })
})
