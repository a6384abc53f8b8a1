import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConflictError, InvalidInputError } from '../../src/errors/index.ts'
import { consumeOidcState, createRedis, saveOidcState } from '../../src/redis/index.ts'
import { fulfilled, timedRace, windowsOverlap } from '../support/race.ts'
import { deleteNamespace, namespaceKeys, redisUrl, testNamespace } from './support.ts'

const namespace = testNamespace('oidc')
let redis: Redis
let other: Redis

beforeAll(() => {
  redis = createRedis({ url: redisUrl(), namespace })
  other = redis.duplicate()
})

afterAll(async () => {
  await deleteNamespace(redis, namespace)
  redis.disconnect()
  other.disconnect()
})

describe('OIDC state', () => {
  it('round-trips the data once, with the default 600 s TTL', async () => {
    const data = { nonce: 'n-1', verifier: 'v', issued_at: new Date('2025-01-02T03:04:05.678Z') }
    await saveOidcState(redis, 'state-1', data)
    const ttl = await redis.ttl(`${namespace}:oidc:state:state-1`)
    expect(ttl).toBeGreaterThan(590)
    expect(ttl).toBeLessThanOrEqual(600)
    expect(await consumeOidcState(redis, 'state-1')).toEqual(data)
    expect(await consumeOidcState(redis, 'state-1')).toBeUndefined()
    expect(await redis.exists(`${namespace}:oidc:state:state-1`)).toBe(0)
  })

  it('of four overlapping consumers exactly one gets it (20 rounds, two pipelined on each of two connections)', async () => {
    for (let round = 0; round < 20; round++) {
      const state = `race-${round}`
      await saveOidcState(redis, state, { round }, 30)
      // No lock waiters to count in Redis: overlap is shown by the calls' own
      // windows (every call started before any ended: max(start) < min(end)),
      // and on each connection the two commands are pipelined, both sent
      // before the first reply, so the server decides who wins.
      const race = await timedRace(
        [redis, other, redis, other].map(
          (client) => () => consumeOidcState<{ round: number }>(client, state),
        ),
      )
      expect(windowsOverlap(race)).toBe(true)
      expect(fulfilled(race.results).filter((r) => r !== undefined)).toEqual([{ round }])
    }
  })

  it('honours a custom TTL and refuses a duplicate pending state', async () => {
    // 60 s, not a few: the duplicate below must still find it on a loaded machine.
    await saveOidcState(redis, 'dup', { first: true }, 60)
    const ttl = await redis.ttl(`${namespace}:oidc:state:dup`)
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(60)
    await expect(saveOidcState(redis, 'dup', { first: false })).rejects.toBeInstanceOf(
      ConflictError,
    )
    expect(await consumeOidcState(redis, 'dup')).toEqual({ first: true })
  })

  it('an unknown or unreadable state is undefined', async () => {
    expect(await consumeOidcState(redis, 'never-saved')).toBeUndefined()
    await redis.set(`${namespace}:oidc:state:corrupt`, '{not json')
    expect(await consumeOidcState(redis, 'corrupt')).toBeUndefined()
    expect(await redis.exists(`${namespace}:oidc:state:corrupt`)).toBe(0)
  })

  it('refuses malformed input without writing anything', async () => {
    const before = (await namespaceKeys(redis, namespace)).sort()
    for (const state of ['', 's\0', 'x'.repeat(513)]) {
      await expect(saveOidcState(redis, state, {})).rejects.toBeInstanceOf(InvalidInputError)
      await expect(consumeOidcState(redis, state)).rejects.toBeInstanceOf(InvalidInputError)
    }
    for (const ttl of [0, -1, 0.5]) {
      await expect(saveOidcState(redis, 'ok', {}, ttl)).rejects.toBeInstanceOf(InvalidInputError)
    }
    await expect(saveOidcState(redis, 'ok', undefined)).rejects.toBeInstanceOf(InvalidInputError)
    await expect(saveOidcState(redis, 'ok', { at: new Date(Number.NaN) })).rejects.toBeInstanceOf(
      InvalidInputError,
    )
    expect((await namespaceKeys(redis, namespace)).sort()).toEqual(before)
  })
})
