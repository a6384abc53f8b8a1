import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type ChannelEvent,
  createRateLimiter,
  createRedis,
  publishChannelEvent,
  RateLimiterStoreError,
  subscribeChannelEvents,
} from '../../src/redis/index.ts'
import { freePort, type OwnRedisServer, ownRedisServer, waitFor } from './support.ts'

let server: OwnRedisServer
let redis: Redis
let subscriber: Redis
const connectionErrors: Error[] = []

beforeAll(async () => {
  server = ownRedisServer(await freePort())
  await server.start()
  redis = createRedis({ url: server.url, onError: (error) => connectionErrors.push(error) })
  subscriber = redis.duplicate()
  subscriber.on('error', () => {})
})

afterAll(async () => {
  redis?.disconnect()
  subscriber?.disconnect()
  await server?.stop()
})

describe('when the Redis server goes away and comes back', () => {
  it('fails closed (or open), then reconnects and resubscribes by itself', async () => {
    const limiter = createRateLimiter(redis, { category: 'login', limit: 3, windowMs: 60_000 })
    const open = createRateLimiter(redis, {
      category: 'login',
      limit: 3,
      windowMs: 60_000,
      failOpen: true,
    })
    const received: ChannelEvent[] = []
    await subscribeChannelEvents(subscriber, 'c1', (e) => {
      received.push(e)
    })
    const typing = (user_id: string) => ({ type: 'typing', channel_id: 'c1', user_id }) as const
    expect((await limiter.consume('ip')).allowed).toBe(true)
    await publishChannelEvent(redis, 'c1', typing('before'))
    await waitFor(() => received.length === 1)

    await server.stop()
    await waitFor(() => redis.status !== 'ready' && subscriber.status !== 'ready')
    const started = Date.now()
    const errors = await Promise.all(
      Array.from({ length: 50 }, () => limiter.consume('ip').catch((e: unknown) => e)),
    )
    for (const error of errors) expect(error).toBeInstanceOf(RateLimiterStoreError)
    expect(redis.listenerCount('ready')).toBeLessThan(5) // one shared wait, not one per check
    expect(Date.now() - started).toBeLessThan(20_000) // fails (1 s timeouts), never hangs
    expect(await open.consume('ip')).toMatchObject({ allowed: true })
    expect(connectionErrors.length).toBeGreaterThan(0)

    await server.start()
    await waitFor(() => redis.status === 'ready' && subscriber.status === 'ready', 30_000)
    // the fresh server lost the script cache and the state: EVAL fallback, new bucket
    expect(await limiter.consume('ip')).toMatchObject({ allowed: true, remaining: 2 })
    // autoResubscribe: a publish reaches the subscriber again without any call from us
    await waitFor(
      async () => (await publishChannelEvent(redis, 'c1', typing('after'))) === 1,
      10_000,
    )
    await waitFor(() => received.some((e) => e.type === 'typing' && e.user_id === 'after'))
    expect(received[0]).toEqual(typing('before'))
  })
})
