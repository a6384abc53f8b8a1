/**
 * Every Redis helper on a real 3-master Redis Cluster started by this file on
 * spare loopback ports (never the shared Redis): keys of each script stay in
 * one slot while the subjects spread over all shards, channel events travel by
 * sharded pub/sub, and a master killed mid-test gives typed errors (no hang)
 * until it is back, after which the same clients work again.
 */
import type { Cluster } from 'ioredis'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  blockIp,
  type ChannelEvent,
  cacheSession,
  consumeOidcState,
  createRateLimiter,
  createRedis,
  createRedisChannels,
  createRedisKeys,
  getCachedSession,
  invalidateCachedSession,
  isCluster,
  isIpBlocked,
  type PresenceEvent,
  publishChannelEvent,
  publishGlobal,
  publishPresence,
  RateLimiterStoreError,
  RedisUnavailableError,
  redisNamespace,
  saveOidcState,
  subscribeChannelEvents,
  subscribeGlobal,
  subscribePresence,
  unblockIp,
} from '../../src/redis/index.ts'
import { fulfilled, timedRace, windowsOverlap } from '../support/race.ts'
import { type OwnRedisCluster, startRedisCluster } from '../support/redis-cluster.ts'
import { waitFor } from './support.ts'

const NS = 'gs_cluster'
const redisKeys = createRedisKeys(NS)
const redisChannels = createRedisChannels(NS)
let cluster: OwnRedisCluster
let redis: Cluster
let subscriber: Cluster
/** A plain connection to one node, for CLUSTER KEYSLOT / PUBSUB SHARDNUMSUB. */
const nodeClients = new Map<number, Redis>()

const node = (port: number): Redis => {
  let client = nodeClients.get(port)
  if (!client) {
    client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, retryStrategy: null })
    client.on('error', () => {})
    nodeClients.set(port, client)
  }
  return client
}
const anyNode = () => node(cluster.nodes.find((n) => n.running)!.port)
const slotOf = async (name: string) => Number(await anyNode().cluster('KEYSLOT', name))

beforeAll(async () => {
  cluster = await startRedisCluster()
  redis = createRedis({ cluster: cluster.startupNodes, timeoutMs: 3000, namespace: NS })
  subscriber = redis.duplicate()
}, 60_000)

afterAll(async () => {
  redis?.disconnect()
  subscriber?.disconnect()
  for (const client of nodeClients.values()) client.disconnect()
  await cluster?.destroy()
})

const typing = (channel_id: string, user_id: string): ChannelEvent => ({
  type: 'typing',
  channel_id,
  user_id,
})

describe('Redis Cluster (3 masters)', () => {
  it('createRedis({ cluster }) returns an ioredis Cluster that knows all three masters', async () => {
    expect(isCluster(redis)).toBe(true)
    // the namespace is kept by the cluster client and its duplicates
    expect(redisNamespace(redis)).toBe(NS)
    expect(redisNamespace(subscriber)).toBe(NS)
    await redis.set('probe', '1')
    expect(redis.nodes('master')).toHaveLength(3)
  })

  it('the rate limiter works for subjects on every shard, each key in one slot', async () => {
    const limiter = createRateLimiter(redis, { category: 'login', limit: 3, windowMs: 60_000 })
    const subjects = Array.from({ length: 24 }, (_, i) => `203.0.113.${i}`)
    const masters = new Set<number>()
    for (const subject of subjects) {
      const key = redisKeys.rateLimit('login', subject)
      masters.add(await cluster.masterPortOf(await slotOf(key)))
      const results = []
      for (let i = 0; i < 4; i++) results.push(await limiter.consume(subject))
      expect(results.map((r) => r.allowed)).toEqual([true, true, true, false])
      expect(await redis.exists(key)).toBe(1)
    }
    // the subjects really spread over the three shards
    expect(masters.size).toBe(3)
    await limiter.reset(subjects[0]!)
    expect((await limiter.consume(subjects[0]!)).allowed).toBe(true)
  })

  it('IP blocks, OIDC state (single use under concurrency) and the session cache work unchanged', async () => {
    const masters = new Set<number>()
    for (let i = 0; i < 12; i++) {
      const ip = `198.51.100.${i}`
      masters.add(await cluster.masterPortOf(await slotOf(redisKeys.rateLimitBlock(ip))))
      await blockIp(redis, ip, 60)
      expect(await isIpBlocked(redis, ip)).toBe(true)
      expect(await unblockIp(redis, ip)).toBe(true)
      expect(await isIpBlocked(redis, ip)).toBe(false)

      const state = `state-${i}`
      await saveOidcState(redis, state, { nonce: `n${i}`, at: new Date(0) })
      // Overlap shown by the calls' windows (max(start) < min(end)): the five
      // GETDELs go pipelined to the slot's master before the first reply.
      const race = await timedRace(
        Array.from({ length: 5 }, () => () => consumeOidcState(redis, state)),
      )
      expect(windowsOverlap(race)).toBe(true)
      const takes = fulfilled(race.results)
      expect(takes.filter((t) => t !== undefined)).toEqual([{ nonce: `n${i}`, at: new Date(0) }])

      const user = `user-${i}`
      await cacheSession(redis, user, { roles: [1n, 2n] }, 60)
      expect(await getCachedSession(redis, user)).toEqual({ roles: [1n, 2n] })
      // a corrupt value is removed by the compare-and-delete script (one key, one slot)
      await redis.set(redisKeys.session(user), 'not json')
      expect(await getCachedSession(redis, user)).toBeUndefined()
      expect(await redis.exists(redisKeys.session(user))).toBe(0)
      await cacheSession(redis, user, { ok: true }, 60)
      expect(await invalidateCachedSession(redis, user)).toBe(true)
    }
    expect(masters.size).toBe(3)
  })

  it('channel events use sharded pub/sub on the channel’s own shard, spread over all shards', async () => {
    const channels = Array.from({ length: 12 }, (_, i) => `sharded-${i}`)
    const received = new Map<string, string[]>()
    const stops = await Promise.all(
      channels.map((channel) =>
        subscribeChannelEvents(subscriber, channel, (event) => {
          if (event.type === 'typing') {
            received.set(channel, [...(received.get(channel) ?? []), event.user_id])
          }
        }),
      ),
    )
    const shards = new Set<number>()
    for (const channel of channels) {
      const name = redisChannels.channel(channel)
      const owner = await cluster.masterPortOf(await slotOf(name))
      shards.add(owner)
      // SSUBSCRIBE on the owning shard; no classic SUBSCRIBE anywhere
      const [, sharded] = (await node(owner).call('PUBSUB', 'SHARDNUMSUB', name)) as [
        string,
        number,
      ]
      expect(Number(sharded)).toBe(1)
      for (const n of cluster.nodes) {
        const [, classic] = (await node(n.port).call('PUBSUB', 'NUMSUB', name)) as [string, number]
        expect(Number(classic)).toBe(0)
      }
      for (let k = 0; k < 3; k++) {
        expect(await publishChannelEvent(redis, channel, typing(channel, `u${k}`))).toBe(1)
      }
    }
    expect(shards.size).toBe(3)
    await waitFor(() => channels.every((c) => received.get(c)?.length === 3), 10_000)
    for (const channel of channels) expect(received.get(channel)).toEqual(['u0', 'u1', 'u2'])
    for (const stop of stops) await stop()
    const name = redisChannels.channel(channels[0]!)
    const owner = await cluster.masterPortOf(await slotOf(name))
    const [, after] = (await node(owner).call('PUBSUB', 'SHARDNUMSUB', name)) as [string, number]
    expect(Number(after)).toBe(0)
  })

  it('presence and global events round-trip on the cluster', async () => {
    const presence: PresenceEvent[] = []
    const global: unknown[] = []
    const stopPresence = await subscribePresence(subscriber, 'u-7', (e) => {
      presence.push(e)
    })
    const stopGlobal = await subscribeGlobal(subscriber, (e) => {
      global.push(e)
    })
    expect(await publishPresence(redis, { type: 'presence', user_id: 'u-7', status: 'busy' })).toBe(
      1,
    )
    expect(await publishGlobal(redis, { type: 'maintenance', at: new Date(5) })).toBe(1)
    await waitFor(() => presence.length === 1 && global.length === 1, 10_000)
    expect(presence).toEqual([{ type: 'presence', user_id: 'u-7', status: 'busy' }])
    expect(global).toEqual([{ type: 'maintenance', at: new Date(5) }])
    await stopPresence()
    await stopGlobal()
  })

  it('a master killed mid-test: typed errors within the timeout, no hang; after its restart the same clients work', async () => {
    const limiter = createRateLimiter(redis, {
      category: 'kill',
      limit: 1_000_000,
      windowMs: 1000,
      timeoutMs: 1000,
    })
    // a channel, a session key and a limiter subject on the master we kill
    const victimPort = await cluster.masterPortOf(await slotOf(redisChannels.channel('victim')))
    let user = ''
    for (let i = 0; user === ''; i++) {
      const candidate = `victim-user-${i}`
      if ((await cluster.masterPortOf(await slotOf(redisKeys.session(candidate)))) === victimPort) {
        user = candidate
      }
    }
    let subject = ''
    for (let i = 0; subject === ''; i++) {
      const candidate = `victim-subject-${i}`
      const key = redisKeys.rateLimit('kill', candidate)
      if ((await cluster.masterPortOf(await slotOf(key))) === victimPort) subject = candidate
    }
    const received: string[] = []
    await subscribeChannelEvents(subscriber, 'victim', (event) => {
      if (event.type === 'typing') received.push(event.user_id)
    })
    expect(await publishChannelEvent(redis, 'victim', typing('victim', 'before'))).toBe(1)
    await waitFor(() => received.includes('before'), 10_000)

    const victim = cluster.nodes.find((n) => n.port === victimPort)!
    await victim.stop('SIGKILL')

    // Every helper now fails typed (and bounded by its timeout), never raw, never hangs.
    const failures: unknown[] = []
    const attempt = async (call: () => Promise<unknown>) => {
      const started = Date.now()
      try {
        await call()
        return { ok: true, ms: Date.now() - started }
      } catch (error) {
        failures.push(error)
        return { ok: false, ms: Date.now() - started }
      }
    }
    const results = [
      await attempt(() => cacheSession(redis, user, { x: 1 }, 60)),
      await attempt(() => getCachedSession(redis, user)),
      await attempt(() => publishChannelEvent(redis, 'victim', typing('victim', 'down'))),
      await attempt(() => limiter.consume(subject)),
    ]
    expect(results.every((r) => !r.ok)).toBe(true)
    // bounded: the helper timeout is 3 s, the limiter's 1 s (generous slack for a loaded box)
    for (const r of results) expect(r.ms).toBeLessThan(15_000)
    expect(failures.slice(0, 3).every((e) => e instanceof RedisUnavailableError)).toBe(true)
    for (const e of failures.slice(0, 3) as RedisUnavailableError[]) {
      expect(e.retryable).toBe(true)
      expect(e.message).toMatch(/^Redis unavailable during \w+ \(cluster: [A-Z_]+\)$/)
    }
    expect(failures[3]).toBeInstanceOf(RateLimiterStoreError)

    const restartedAt = Date.now()
    await victim.start()
    await cluster.waitHealthy()
    // The same clients recover by themselves: keep trying until one call passes.
    await waitFor(
      async () => {
        try {
          await cacheSession(redis, user, { back: true }, 60)
          return true
        } catch (error) {
          expect(error).toBeInstanceOf(RedisUnavailableError)
          return false
        }
      },
      30_000,
      200,
    )
    const recoveredMs = Date.now() - restartedAt
    expect(await getCachedSession(redis, user)).toEqual({ back: true })
    expect((await limiter.consume(subject)).allowed).toBe(true)
    // The sharded subscription comes back on the restarted master.
    await waitFor(
      async () => {
        try {
          await publishChannelEvent(redis, 'victim', typing('victim', 'after'))
        } catch {
          // not yet
        }
        return received.includes('after')
      },
      30_000,
      250,
    )
    expect(received).not.toContain('down')
    console.log(
      `[cluster] master killed: typed failures in ${results.map((r) => r.ms).join('/')} ms (${failures
        .map((e) => (e as RedisUnavailableError).reason ?? (e as Error).name)
        .join(
          ', ',
        )}); helpers back ${recoveredMs} ms after the restart, subscription ${Date.now() - restartedAt} ms`,
    )
  }, 90_000)
})
