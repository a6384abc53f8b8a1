/**
 * While Redis is down, every Redis helper other than the rate limiter (which
 * has RateLimiterStoreError) fails with one typed error, RedisUnavailableError:
 * `retryable` true, naming the helper and host:port, never a raw ioredis error;
 * once the server is back the same client works again. A refusal by Redis
 * (WRONGTYPE) is the same class with `retryable` false.
 */
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  blockIp,
  cacheSession,
  consumeOidcState,
  createRedis,
  getCachedSession,
  invalidateCachedSession,
  isIpBlocked,
  publishChannelEvent,
  publishGlobal,
  publishPresence,
  RedisUnavailableError,
  redisKeys,
  saveOidcState,
  subscribeChannelEvents,
  subscribeGlobal,
  unblockIp,
} from '../../src/redis/index.ts'
import { freePort, type OwnRedisServer, ownRedisServer, waitFor } from './support.ts'

let server: OwnRedisServer
let redis: Redis
let subscriber: Redis
let subscriptions = 0

beforeAll(async () => {
  server = ownRedisServer(await freePort())
  await server.start()
  redis = createRedis({ url: server.url, timeoutMs: 4000 })
  subscriber = redis.duplicate()
})

afterAll(async () => {
  redis?.disconnect()
  subscriber?.disconnect()
  await server?.stop('SIGKILL')
})

const helpers: Record<string, () => Promise<unknown>> = {
  blockIp: () => blockIp(redis, '192.0.2.1', 60),
  unblockIp: () => unblockIp(redis, '192.0.2.1'),
  isIpBlocked: () => isIpBlocked(redis, '192.0.2.1'),
  saveOidcState: () => saveOidcState(redis, 'st', { nonce: 'n' }),
  consumeOidcState: () => consumeOidcState(redis, 'st'),
  cacheSession: () => cacheSession(redis, 'u1', { secret: 'hunter2' }, 60),
  getCachedSession: () => getCachedSession(redis, 'u1'),
  invalidateCachedSession: () => invalidateCachedSession(redis, 'u1'),
  publishChannelEvent: () =>
    publishChannelEvent(redis, 'c1', { type: 'typing', channel_id: 'c1', user_id: 'u1' }),
  publishPresence: () =>
    publishPresence(redis, { type: 'presence', user_id: 'u1', status: 'away' }),
  publishGlobal: () => publishGlobal(redis, { type: 'x' }),
  subscribe: () => subscribeChannelEvents(subscriber, `c2-${++subscriptions}`, () => {}),
}

describe('Redis helpers while Redis is down', () => {
  it('each throws RedisUnavailableError (retryable, naming helper and host:port), then recovers', async () => {
    for (const call of Object.values(helpers)) await call() // all work while up
    await server.stop('SIGKILL')
    const timings: number[] = []
    // all at once: each one is bounded by the helper timeout on its own
    const outcomes = await Promise.all(
      Object.entries(helpers).map(async ([name, call]) => {
        const started = Date.now()
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        )
        timings.push(Date.now() - started)
        return [name, error] as const
      }),
    )
    for (const [name, error] of outcomes) {
      expect(error, name).toBeInstanceOf(RedisUnavailableError)
      const typed = error as RedisUnavailableError
      expect(typed.retryable, name).toBe(true)
      expect(typed.code).toBe('REDIS_UNAVAILABLE')
      expect(typed.operation).toBe(name)
      expect(typed.message).toContain(`127.0.0.1:${server.port}`)
      expect(typed.message).not.toContain('hunter2')
      expect(typed.cause).toBeDefined()
    }
    // bounded by the client's 4 s helper timeout (generous slack for a loaded box)
    expect(Math.max(...timings)).toBeLessThan(15_000)
    await server.start()
    await waitFor(() => redis.status === 'ready' && subscriber.status === 'ready', 15_000)
    for (const call of Object.values(helpers)) await call()
    const received: unknown[] = []
    await subscribeGlobal(subscriber, (e) => {
      received.push(e)
    })
    expect(await publishGlobal(redis, { type: 'back' })).toBe(1)
    await waitFor(() => received.length === 1)
  }, 120_000)

  it('a refusal by Redis is RedisUnavailableError with retryable false, and nothing is written', async () => {
    await redis.rpush(redisKeys.session('wrongtype'), 'a')
    const error = await getCachedSession(redis, 'wrongtype').then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(RedisUnavailableError)
    expect((error as RedisUnavailableError).retryable).toBe(false)
    expect((error as RedisUnavailableError).reason).toBe('WRONGTYPE')
    expect(await redis.lrange(redisKeys.session('wrongtype'), 0, -1)).toEqual(['a'])
  })

  it('rejects a malformed timeoutMs, maxPayloadBytes or cluster with InvalidInputError', async () => {
    const { InvalidInputError } = await import('../../src/errors/index.ts')
    for (const bad of [-1, 1.5, Number.NaN, '10' as unknown as number]) {
      expect(() => createRedis({ url: server.url, lazyConnect: true, timeoutMs: bad })).toThrow(
        InvalidInputError,
      )
      expect(() =>
        createRedis({ url: server.url, lazyConnect: true, maxPayloadBytes: bad }),
      ).toThrow(InvalidInputError)
    }
    for (const bad of [[], [{ host: '', port: 1 }], [{ host: 'h', port: 70000 }], [null]]) {
      expect(() => createRedis({ cluster: bad as never })).toThrow(InvalidInputError)
    }
  })
})
