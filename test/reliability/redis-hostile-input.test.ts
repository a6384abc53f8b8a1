/**
 * Hostile input through every Redis helper that takes a string (key parts,
 * channel ids, payloads), on a Redis server of this file's own: a typed
 * InvalidInputError, or the value round-trips verbatim; never a raw error;
 * every key stays inside the client's namespace; distinct key parts never
 * share a key; a glob-like channel id never receives another channel's events.
 */
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GuildstoreError, InvalidInputError } from '../../src/errors/index.ts'
import {
  blockIp,
  type ChannelEvent,
  cacheSession,
  consumeOidcState,
  createRateLimiter,
  createRedis,
  getCachedSession,
  invalidateCachedSession,
  isIpBlocked,
  publishChannelEvent,
  saveOidcState,
  subscribeChannelEvents,
  unblockIp,
} from '../../src/redis/index.ts'
import { type OwnRedisServer, ownRedisServer } from '../support/local-servers.ts'
import { freePort, sleep, waitFor } from './support/ports.ts'

const NAMESPACE = 'gs_rel_hostile'
let server: OwnRedisServer
let redis: Redis
let subscriber: Redis

beforeAll(async () => {
  server = ownRedisServer(await freePort())
  await server.start()
  redis = createRedis({ url: server.url, namespace: NAMESPACE })
  subscriber = redis.duplicate()
  subscriber.on('error', () => {})
})

afterAll(async () => {
  redis?.disconnect()
  subscriber?.disconnect()
  await server?.stop('SIGKILL')
})

const KEY_PARTS: Record<string, string> = {
  sqlDrop: "'; DROP TABLE users; --",
  redisCommand: 'x\r\nFLUSHALL\r\n',
  colon: 'a:b:c',
  braces: '}{hash}{',
  glob: '*',
  globClass: 'a[bc]?*',
  likeWildcards: '%_%',
  dollar: '$1',
  backslashes: '\\\\\\',
  spaces: '   ',
  nul: 'a\u0000b',
  loneSurrogate: '\uD800',
  emoji: '🎉👩‍👩‍👧',
  rightToLeft: '\u202Eevil',
  oneMegabyte: 'x'.repeat(1_000_000),
  empty: '',
  uuidUpper: '0192F3A4-7B5C-7D6E-8F90-A1B2C3D4E5F6',
}

const PAYLOADS: Record<string, unknown> = {
  loneSurrogate: { s: '\uD800' },
  nul: { s: 'a\u0000b' },
  emoji: { s: '🎉\u202E' },
  bigint: { n: 12345678901234567890n },
  date: { d: new Date('2020-01-02T03:04:05.678Z') },
  nested: { a: [{ b: [{ c: 'deep' }] }] },
  megabyte: { s: 'y'.repeat(1_000_000) },
  protoKey: JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}'),
}

type Outcome = 'ok' | 'invalid'
const tally: Record<string, number> = {}

async function attempt(
  fn: string,
  problems: string[],
  where: string,
  call: () => Promise<void>,
): Promise<Outcome | undefined> {
  tally[fn] = (tally[fn] ?? 0) + 1
  try {
    await call()
    return 'ok'
  } catch (error) {
    if (error instanceof InvalidInputError) return 'invalid'
    const kind =
      error instanceof GuildstoreError
        ? `${error.name}: ${error.message}`
        : (error as Error)?.name === 'AssertionError'
          ? `not verbatim: ${(error as Error).message.slice(0, 200)}`
          : `raw ${String(error).slice(0, 200)}`
    problems.push(`${where}: ${kind}`)
    return undefined
  }
}

describe('hostile input through the Redis helpers', () => {
  it('key parts: typed refusal or a verbatim round trip; never a raw error', async () => {
    const problems: string[] = []
    const limiter = createRateLimiter(redis, {
      category: 'rel',
      limit: 5,
      windowMs: 60_000,
      timeoutMs: 30_000, // not about timeouts: generous on a loaded machine
    })
    for (const [label, part] of Object.entries(KEY_PARTS)) {
      const w = (fn: string) => `${fn}(${label})`
      await attempt(
        'cacheSession/getCachedSession/invalidateCachedSession',
        problems,
        w('session'),
        async () => {
          await cacheSession(redis, part, { label }, 60)
          expect(await getCachedSession(redis, part)).toEqual({ label })
          expect(await invalidateCachedSession(redis, part)).toBe(true)
          expect(await getCachedSession(redis, part)).toBeUndefined()
        },
      )
      await attempt('saveOidcState/consumeOidcState', problems, w('oidc'), async () => {
        await saveOidcState(redis, part, { label }, 60)
        expect(await consumeOidcState(redis, part)).toEqual({ label })
        expect(await consumeOidcState(redis, part)).toBeUndefined()
      })
      await attempt('blockIp/isIpBlocked/unblockIp', problems, w('ip'), async () => {
        await blockIp(redis, part, 60)
        expect(await isIpBlocked(redis, part)).toBe(true)
        expect(await unblockIp(redis, part)).toBe(true)
        expect(await isIpBlocked(redis, part)).toBe(false)
      })
      await attempt('rateLimiter.consume/reset', problems, w('limiter'), async () => {
        expect(await limiter.consume(part, 5)).toMatchObject({ allowed: true, remaining: 0 })
        expect((await limiter.consume(part)).allowed).toBe(false)
        await limiter.reset(part)
        expect((await limiter.consume(part)).allowed).toBe(true)
      })
      await attempt('publishChannelEvent', problems, w('publish'), async () => {
        await publishChannelEvent(redis, part, { type: 'typing', channel_id: part, user_id: 'u' })
      })
    }
    // Every key stayed inside the namespace.
    const keys = await redis.keys('*')
    expect(keys.filter((k) => !k.startsWith(`${NAMESPACE}:`))).toEqual([])
    console.info(`[reliability] redis hostile input: ${JSON.stringify(tally)}`)
    expect(problems).toEqual([])
  }, 60_000)

  it('payloads: typed refusal or returned verbatim (deep equal), never a raw error', async () => {
    const problems: string[] = []
    for (const [label, data] of Object.entries(PAYLOADS)) {
      await attempt('cacheSession(data)', problems, `cacheSession(${label})`, async () => {
        await cacheSession(redis, `payload-${label}`, data, 60)
        const back = await getCachedSession(redis, `payload-${label}`)
        expect(back).toEqual(data)
        expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      })
      await attempt('saveOidcState(data)', problems, `saveOidcState(${label})`, async () => {
        await saveOidcState(redis, `payload-${label}`, data, 60)
        expect(await consumeOidcState(redis, `payload-${label}`)).toEqual(data)
      })
    }
    const circular: Record<string, unknown> = {}
    circular.self = circular
    await attempt('cacheSession(data)', problems, 'cacheSession(circular)', () =>
      cacheSession(redis, 'payload-circular', circular, 60),
    )
    expect(problems).toEqual([])
  })

  it('distinct key parts never share a key (lone surrogates vs U+FFFD)', async () => {
    // Two different strings must name two different entries, or one of them must be refused.
    const pairs: [string, string][] = [
      ['a\uD800', 'a\uFFFD'],
      ['a\uD800', 'a\uDBFF'],
      ['\uDC00x', '\uFFFDx'],
    ]
    for (const [first, second] of pairs) {
      const stored = await cacheSession(redis, first, { who: 'first' }, 60).then(
        () => true,
        (e: unknown) => {
          expect(e).toBeInstanceOf(InvalidInputError)
          return false
        },
      )
      if (!stored) continue
      const other = await getCachedSession(redis, second).catch((e: unknown) => {
        expect(e).toBeInstanceOf(InvalidInputError)
        return undefined
      })
      expect(other, `${JSON.stringify(first)} vs ${JSON.stringify(second)}`).toBeUndefined()
      await invalidateCachedSession(redis, first)
    }
  })

  it('a glob-like channel id subscribes to itself only', async () => {
    const received: ChannelEvent[] = []
    const unsubscribe = await subscribeChannelEvents(subscriber, '*', (event) => {
      received.push(event)
    })
    try {
      await publishChannelEvent(redis, 'other', {
        type: 'typing',
        channel_id: 'other',
        user_id: 'u1',
      })
      await publishChannelEvent(redis, '*', { type: 'typing', channel_id: '*', user_id: 'u2' })
      await waitFor(() => received.length > 0, 5000)
      await sleep(100)
      expect(received).toEqual([{ type: 'typing', channel_id: '*', user_id: 'u2' }])
    } finally {
      await unsubscribe()
    }
  })
})
