import { describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../src/errors/index.ts'
import {
  createRedis,
  createRedisChannels,
  createRedisKeys,
  redisChannels,
  redisKeys,
  redisNamespace,
} from '../../src/redis/index.ts'

describe('key and channel names', () => {
  it('follows the documented patterns without a namespace', () => {
    expect(redisKeys.session('u1')).toBe('session:u1')
    expect(redisKeys.rateLimit('login', '1.2.3.4')).toBe('ratelimit:{login:1.2.3.4}')
    expect(redisKeys.rateLimitBlock('1.2.3.4')).toBe('ratelimit:block:1.2.3.4')
    expect(redisKeys.oidcState('abc')).toBe('oidc:state:abc')
    expect(redisChannels.channel('c1')).toBe('channel:c1')
    expect(redisChannels.presence('u1')).toBe('presence:u1')
    expect(redisChannels.global).toBe('global')
  })

  it('prefixes every name with a namespace', () => {
    const keys = createRedisKeys('app1')
    const channels = createRedisChannels('app1')
    expect(keys.session('u1')).toBe('app1:session:u1')
    expect(keys.rateLimit('login', '::1')).toBe('app1:ratelimit:{login:::1}')
    expect(keys.rateLimitBlock('::1')).toBe('app1:ratelimit:block:::1')
    expect(keys.oidcState('s')).toBe('app1:oidc:state:s')
    expect(channels.channel('c1')).toBe('app1:channel:c1')
    expect(channels.presence('u1')).toBe('app1:presence:u1')
    expect(channels.global).toBe('app1:global')
  })

  it('refuses malformed names', () => {
    for (const ns of ['', 'a:b', 'a b', 'a{b}', 'x'.repeat(65)]) {
      expect(() => createRedisKeys(ns)).toThrow(InvalidInputError)
      expect(() => createRedis({ namespace: ns, lazyConnect: true })).toThrow(InvalidInputError)
    }
    expect(() => redisKeys.session('')).toThrow(InvalidInputError)
    expect(() => redisKeys.rateLimit('a:b', 'x')).toThrow(InvalidInputError)
    expect(() => redisKeys.rateLimit('login', 'a\0')).toThrow(InvalidInputError)
    expect(() => redisChannels.channel('')).toThrow(InvalidInputError)
  })

  it('a client keeps its namespace through duplicate()', () => {
    const redis = createRedis({
      url: 'redis://127.0.0.1:6379',
      namespace: 'app2',
      lazyConnect: true,
    })
    const copy = redis.duplicate()
    expect(redisNamespace(redis)).toBe('app2')
    expect(redisNamespace(copy)).toBe('app2')
    expect(redisNamespace(createRedis({ lazyConnect: true }))).toBeUndefined()
    redis.disconnect()
    copy.disconnect()
  })
})
