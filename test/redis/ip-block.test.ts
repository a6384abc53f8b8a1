import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../src/errors/index.ts'
import { blockIp, createRedis, isIpBlocked, unblockIp } from '../../src/redis/index.ts'
import { until } from '../support/race.ts'
import { deleteNamespace, namespaceKeys, redisUrl, testNamespace } from './support.ts'

const namespace = testNamespace('ipblock')
let redis: Redis

beforeAll(() => {
  redis = createRedis({ url: redisUrl(), namespace })
})

afterAll(async () => {
  await deleteNamespace(redis, namespace)
  redis.disconnect()
})

describe('IP blocks', () => {
  it('blocks under ratelimit:block:<ip> with the TTL, and unblocks', async () => {
    expect(await isIpBlocked(redis, '198.51.100.1')).toBe(false)
    await blockIp(redis, '198.51.100.1', 60)
    expect(await isIpBlocked(redis, '198.51.100.1')).toBe(true)
    expect(await isIpBlocked(redis, '198.51.100.2')).toBe(false)
    const ttl = await redis.ttl(`${namespace}:ratelimit:block:198.51.100.1`)
    expect(ttl).toBeGreaterThanOrEqual(50) // 60 less the time a loaded machine takes to ask
    expect(ttl).toBeLessThanOrEqual(60)
    expect(await unblockIp(redis, '198.51.100.1')).toBe(true)
    expect(await isIpBlocked(redis, '198.51.100.1')).toBe(false)
    expect(await unblockIp(redis, '198.51.100.1')).toBe(false)
  })

  it('a block ends when its TTL does: 1 s, within [0.9 s, 3 s]', async () => {
    const beforeBlock = performance.now()
    await blockIp(redis, '2001:db8::1', 1)
    expect(await isIpBlocked(redis, '2001:db8::1')).toBe(true)
    const pttl = await redis.pttl(`${namespace}:ratelimit:block:2001:db8::1`)
    expect(pttl).toBeGreaterThan(0)
    expect(pttl).toBeLessThanOrEqual(1000)
    // Polled every 10 ms (a read of an expired key expires it): it ends no
    // earlier than 1 s after the call began, and not much later (the upper
    // bound leaves a loaded machine 2 s of slack).
    await until(async () => !(await isIpBlocked(redis, '2001:db8::1')), 'the block to end')
    const lasted = performance.now() - beforeBlock
    expect(lasted).toBeGreaterThanOrEqual(900)
    expect(lasted).toBeLessThan(3000)
  })

  it('blocking again replaces the TTL', async () => {
    await blockIp(redis, '198.51.100.3', 1)
    await blockIp(redis, '198.51.100.3', 300)
    const ttl = await redis.ttl(`${namespace}:ratelimit:block:198.51.100.3`)
    expect(ttl).toBeGreaterThanOrEqual(290) // 300 less the time a loaded machine takes to ask
    expect(ttl).toBeLessThanOrEqual(300)
  })

  it('a per-call namespace overrides the client one', async () => {
    const other = `${namespace}_other`
    await blockIp(redis, '198.51.100.4', 30, { namespace: other })
    expect(await isIpBlocked(redis, '198.51.100.4')).toBe(false)
    expect(await isIpBlocked(redis, '198.51.100.4', { namespace: other })).toBe(true)
    expect(await unblockIp(redis, '198.51.100.4', { namespace: other })).toBe(true)
  })

  it('refuses a malformed ip or ttl without writing anything', async () => {
    const before = (await namespaceKeys(redis, namespace)).sort()
    for (const ttl of [0, -5, 1.5, Number.NaN, 2 ** 31, '60' as unknown as number]) {
      await expect(blockIp(redis, '198.51.100.9', ttl)).rejects.toBeInstanceOf(InvalidInputError)
    }
    for (const ip of ['', 'a\0b', 'x'.repeat(129), undefined as unknown as string]) {
      await expect(blockIp(redis, ip, 60)).rejects.toBeInstanceOf(InvalidInputError)
      await expect(isIpBlocked(redis, ip)).rejects.toBeInstanceOf(InvalidInputError)
      await expect(unblockIp(redis, ip)).rejects.toBeInstanceOf(InvalidInputError)
    }
    expect((await namespaceKeys(redis, namespace)).sort()).toEqual(before)
    expect(await isIpBlocked(redis, '198.51.100.9')).toBe(false)
  })
})
