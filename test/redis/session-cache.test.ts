import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../src/errors/index.ts'
import {
  cacheSession,
  createRedis,
  getCachedSession,
  invalidateCachedSession,
  redisKeys,
} from '../../src/redis/index.ts'
import { deleteNamespace, namespaceKeys, redisUrl, testNamespace } from './support.ts'

const namespace = testNamespace('session')
let redis: Redis

beforeAll(() => {
  redis = createRedis({ url: redisUrl(), namespace })
})

afterAll(async () => {
  await deleteNamespace(redis, namespace)
  redis.disconnect()
})

interface SessionData {
  user: { id: string; username: string; created_at: Date; permissions: bigint }
  roles: string[]
  expires_at: Date
  mfa: null
}

const data: SessionData = {
  user: {
    id: '0190f5a2-0000-7000-8000-000000000001',
    username: 'ada',
    created_at: new Date('2024-05-06T07:08:09.010Z'),
    permissions: 2n ** 60n + 5n,
  },
  roles: ['admin', 'mod'],
  expires_at: new Date('2030-01-01T00:00:00.000Z'),
  mfa: null,
}

describe('session cache', () => {
  it('round-trips typed data (Dates and bigints included) under session:<user_id>', async () => {
    await cacheSession(redis, 'u1', data, 300)
    expect(await redis.exists(`${namespace}:session:u1`)).toBe(1)
    expect(redisKeys.session('u1')).toBe('session:u1')
    const cached = await getCachedSession<SessionData>(redis, 'u1')
    expect(cached).toEqual(data)
    expect(cached?.user.created_at).toBeInstanceOf(Date)
    expect(typeof cached?.user.permissions).toBe('bigint')
    expect(await getCachedSession(redis, 'nobody')).toBeUndefined()
  })

  it('sets the TTL and replaces on a second write', async () => {
    await cacheSession(redis, 'u2', { v: 1 }, 120)
    await cacheSession(redis, 'u2', { v: 2 }, 30)
    const ttl = await redis.ttl(`${namespace}:session:u2`)
    expect(ttl).toBeGreaterThan(25)
    expect(ttl).toBeLessThanOrEqual(30)
    expect(await getCachedSession(redis, 'u2')).toEqual({ v: 2 })
  })

  it('invalidates', async () => {
    await cacheSession(redis, 'u3', { v: 3 }, 60)
    expect(await invalidateCachedSession(redis, 'u3')).toBe(true)
    expect(await getCachedSession(redis, 'u3')).toBeUndefined()
    expect(await invalidateCachedSession(redis, 'u3')).toBe(false)
  })

  it('a corrupt value reads as undefined and is deleted', async () => {
    for (const corrupt of ['{"v":1,"data":', 'plain text', '{"a":1}', '{"v":9,"data":{}}']) {
      await redis.set(`${namespace}:session:u4`, corrupt, 'EX', 60)
      expect(await getCachedSession(redis, 'u4')).toBeUndefined()
      expect(await redis.exists(`${namespace}:session:u4`)).toBe(0)
    }
    // a revive list pointing at a prototype is refused, not followed
    await redis.set(
      `${namespace}:session:u4`,
      JSON.stringify({ v: 1, data: {}, revive: [[['__proto__', 'polluted'], 'date']] }),
    )
    expect(await getCachedSession(redis, 'u4')).toBeUndefined()
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('refuses malformed input without writing anything', async () => {
    const before = (await namespaceKeys(redis, namespace)).sort()
    for (const id of ['', 'a\0b', 'x'.repeat(513), 7 as unknown as string]) {
      await expect(cacheSession(redis, id, {}, 60)).rejects.toBeInstanceOf(InvalidInputError)
      await expect(getCachedSession(redis, id)).rejects.toBeInstanceOf(InvalidInputError)
      await expect(invalidateCachedSession(redis, id)).rejects.toBeInstanceOf(InvalidInputError)
    }
    for (const ttl of [0, -1, 1.5, Number.POSITIVE_INFINITY]) {
      await expect(cacheSession(redis, 'u5', {}, ttl)).rejects.toBeInstanceOf(InvalidInputError)
    }
    await expect(cacheSession(redis, 'u5', undefined, 60)).rejects.toBeInstanceOf(InvalidInputError)
    const circular: Record<string, unknown> = {}
    circular.self = circular
    await expect(cacheSession(redis, 'u5', circular, 60)).rejects.toBeInstanceOf(InvalidInputError)
    expect((await namespaceKeys(redis, namespace)).sort()).toEqual(before)
  })
})
