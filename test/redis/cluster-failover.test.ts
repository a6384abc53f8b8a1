/**
 * Redis Cluster failover: a real cluster of 3 masters + 3 replicas started by
 * this file on spare loopback ports (never the shared Redis), with a short
 * `cluster-node-timeout`. One master is SIGKILLed and NOT restarted; its
 * replica takes over. Through the same client objects, every helper either
 * works or throws a typed error within its timeout during the window, works
 * again after the promotion, and the state replicated before the kill
 * survives: limiter usage (still denied: fail closed), sessions, IP blocks,
 * OIDC states (each consumable once, never twice). The sharded subscription
 * comes back on the promoted replica.
 */
import { loadavg } from 'node:os'
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
  isIpBlocked,
  publishChannelEvent,
  RateLimiterStoreError,
  RedisUnavailableError,
  saveOidcState,
  subscribeChannelEvents,
} from '../../src/redis/index.ts'
import { type OwnRedisCluster, startRedisCluster } from '../support/redis-cluster.ts'
import { waitFor } from './support.ts'

const NS = 'gs_clfail'
const NODE_TIMEOUT_MS = 1000
/** The helpers' timeout (`createRedis({ timeoutMs })`) and the limiter's. */
const HELPER_TIMEOUT_MS = 2000
const LIMITER_TIMEOUT_MS = 1000
/** Slack over a timeout for a loaded 2-core box (timer lateness), never a hang. */
const SLACK_MS = 1500
const redisKeys = createRedisKeys(NS)
const redisChannels = createRedisChannels(NS)
let cluster: OwnRedisCluster
let redis: Cluster
let subscriber: Cluster
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
  cluster = await startRedisCluster({ replicas: 1, nodeTimeoutMs: NODE_TIMEOUT_MS })
  redis = createRedis({
    cluster: cluster.startupNodes,
    timeoutMs: HELPER_TIMEOUT_MS,
    namespace: NS,
  })
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

describe('Redis Cluster failover (3 masters + 3 replicas, a master killed for good)', () => {
  it('replicated state survives the replica takeover; typed errors only in the window; the same clients recover', async () => {
    const limiter = createRateLimiter(redis, {
      category: 'failover',
      limit: 5,
      windowMs: 3_600_000,
      timeoutMs: LIMITER_TIMEOUT_MS,
    })
    const probeLimiter = createRateLimiter(redis, {
      category: 'probe',
      limit: 1_000_000,
      windowMs: 1000,
      timeoutMs: LIMITER_TIMEOUT_MS,
    })
    const N = 30
    const subjects = Array.from({ length: N }, (_, i) => `203.0.113.${i}`)
    const users = Array.from({ length: N }, (_, i) => `user-${i}`)
    const states = Array.from({ length: N }, (_, i) => `state-${i}`)
    const ips = Array.from({ length: N }, (_, i) => `198.51.100.${i}`)

    // 1. State on every shard: limiter usage (the whole burst), sessions, OIDC states, IP blocks.
    const masters = new Set<number>()
    for (let i = 0; i < N; i++) {
      for (let k = 0; k < 5; k++) expect((await limiter.consume(subjects[i]!)).allowed).toBe(true)
      expect((await limiter.consume(subjects[i]!)).allowed).toBe(false)
      await cacheSession(redis, users[i]!, { user: users[i], roles: [BigInt(i)] }, 600)
      await saveOidcState(redis, states[i]!, { nonce: `n${i}`, at: new Date(i) })
      await blockIp(redis, ips[i]!, 600)
      masters.add(await cluster.masterPortOf(await slotOf(redisKeys.session(users[i]!))))
    }
    expect(masters.size).toBe(3)

    // The victim: the master owning a channel we subscribe to; probes whose keys live on it.
    const victimPort = await cluster.masterPortOf(await slotOf(redisChannels.channel('victim')))
    const replicaPort = await cluster.replicaPortOf(victimPort)
    const onVictim = async (key: (candidate: string) => string, prefix: string) => {
      for (let i = 0; ; i++) {
        const candidate = `${prefix}-${i}`
        if ((await cluster.masterPortOf(await slotOf(key(candidate)))) === victimPort) {
          return candidate
        }
      }
    }
    const probeUser = await onVictim((c) => redisKeys.session(c), 'probe-user')
    const probeSubject = await onVictim((c) => redisKeys.rateLimit('probe', c), 'probe-subject')
    let probeIp = ''
    for (let i = 1; probeIp === ''; i++) {
      const ip = `192.0.2.${i}`
      if ((await cluster.masterPortOf(await slotOf(redisKeys.rateLimitBlock(ip)))) === victimPort) {
        probeIp = ip
      }
    }
    const windowState = await onVictim((c) => redisKeys.oidcState(c), 'window-state')
    await saveOidcState(redis, windowState, { nonce: 'window' })
    const victimSubjects = []
    for (const subject of subjects) {
      const key = redisKeys.rateLimit('failover', subject)
      if ((await cluster.masterPortOf(await slotOf(key))) === victimPort)
        victimSubjects.push(subject)
    }
    expect(victimSubjects.length).toBeGreaterThan(0)

    const received: string[] = []
    await subscribeChannelEvents(subscriber, 'victim', (event) => {
      if (event.type === 'typing') received.push(event.user_id)
    })
    expect(await publishChannelEvent(redis, 'victim', typing('victim', 'before'))).toBe(1)
    await waitFor(() => received.includes('before'), 10_000)

    // 2. Everything written so far is on the replicas too: "survived" is then tellable from "lost".
    // Replication lag on the victim: a write, then WAIT for the replica's ack (same connection).
    const lagKey = `${NS}:lag:{${await onVictim((c) => `${NS}:lag:{${c}}`, 'tag')}}`
    const lags: number[] = []
    for (let i = 0; i < 50; i++) {
      await node(victimPort).set(lagKey, String(i))
      const sent = performance.now()
      expect(await node(victimPort).call('WAIT', '1', '1000')).toBe(1)
      lags.push(performance.now() - sent)
    }
    lags.sort((x, y) => x - y)
    const replicationStarted = Date.now()
    for (const port of masters) await cluster.waitReplicated(port)
    const replicatedMs = Date.now() - replicationStarted

    // 3. Kill the victim for good; its replica must take over.
    const victim = cluster.nodes.find((n) => n.port === victimPort)!
    const killedAt = Date.now()
    await victim.stop('SIGKILL')
    let promotedMs = -1
    const promoted = cluster.waitPromoted(replicaPort, 30_000).then(() => {
      promotedMs = Date.now() - killedAt
    })

    // 4. The window: every helper at once on the victim's slots, round after round, until a
    // whole round passes. Each call succeeds or fails typed within its timeout.
    type Outcome = { name: string; ok: boolean; ms: number; at: number; error?: unknown }
    const outcomes: Outcome[] = []
    const bound: Record<string, number> = {}
    const attempt = async (name: string, limitMs: number, call: () => Promise<unknown>) => {
      bound[name] = limitMs
      const started = Date.now()
      try {
        const value = await call()
        outcomes.push({ name, ok: true, ms: Date.now() - started, at: Date.now() - killedAt })
        return value
      } catch (error) {
        outcomes.push({
          name,
          ok: false,
          ms: Date.now() - started,
          at: Date.now() - killedAt,
          error,
        })
        return error
      }
    }
    let windowTakes = 0
    let roundOkMs = -1
    let rounds = 0
    const deadline = Date.now() + 40_000
    while (roundOkMs < 0 && Date.now() < deadline) {
      rounds++
      const before = outcomes.length
      const [, , , , , , taken] = await Promise.all([
        attempt('cacheSession', HELPER_TIMEOUT_MS, () =>
          cacheSession(redis, probeUser, { probe: true }, 600),
        ),
        attempt('getCachedSession', HELPER_TIMEOUT_MS, () => getCachedSession(redis, probeUser)),
        attempt('isIpBlocked', HELPER_TIMEOUT_MS, () => isIpBlocked(redis, probeIp)),
        attempt('blockIp', HELPER_TIMEOUT_MS, () => blockIp(redis, probeIp, 600)),
        attempt('consume', LIMITER_TIMEOUT_MS, () => probeLimiter.consume(probeSubject)),
        attempt('publishChannelEvent', HELPER_TIMEOUT_MS, () =>
          publishChannelEvent(redis, 'victim', typing('victim', 'window')),
        ),
        attempt('consumeOidcState', HELPER_TIMEOUT_MS, () => consumeOidcState(redis, windowState)),
      ])
      if (taken !== undefined && !(taken instanceof Error)) windowTakes++
      const round = outcomes.slice(before)
      if (round.every((o) => o.ok)) roundOkMs = Date.now() - killedAt
      else await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const oks = outcomes.filter((o) => o.ok).map((o) => o.at)
    const firstOkMs = oks.length > 0 ? Math.min(...oks) : -1
    // the first round ran against the dead master: every helper was tried inside the window
    expect(rounds).toBeGreaterThan(1)
    expect(roundOkMs).toBeGreaterThan(0)
    await promoted
    await cluster.waitHealthy()
    // the replica serves the victim's slots now
    expect(await cluster.masterPortOf(await slotOf(redisChannels.channel('victim')))).toBe(
      replicaPort,
    )

    // Every failure was typed, retryable, and bounded by its timeout.
    const failures = outcomes.filter((o) => !o.ok)
    for (const o of outcomes) expect(o.ms, o.name).toBeLessThan(bound[o.name]! + SLACK_MS)
    for (const f of failures) {
      if (f.name === 'consume') {
        expect(f.error).toBeInstanceOf(RateLimiterStoreError)
      } else {
        expect(f.error, f.name).toBeInstanceOf(RedisUnavailableError)
        expect((f.error as RedisUnavailableError).retryable).toBe(true)
      }
    }

    // 5. After the promotion, the replicated state survived, through the same clients.
    for (const subject of subjects) {
      // the whole burst was used: still denied (no reset to a fresh bucket → fail closed)
      const result = await limiter.consume(subject)
      expect(result.allowed, subject).toBe(false)
      expect(result.remaining).toBe(0)
    }
    for (let i = 0; i < N; i++) {
      expect(await getCachedSession(redis, users[i]!)).toEqual({
        user: users[i],
        roles: [BigInt(i)],
      })
      expect(await isIpBlocked(redis, ips[i]!)).toBe(true)
      // consumable exactly once, even by concurrent callers
      const takes = await Promise.all(
        Array.from({ length: 3 }, () => consumeOidcState(redis, states[i]!)),
      )
      expect(takes.filter((t) => t !== undefined)).toEqual([{ nonce: `n${i}`, at: new Date(i) }])
      expect(await consumeOidcState(redis, states[i]!)).toBeUndefined()
    }
    // the state probed in the window: taken at most once over the window and after it
    const after = await consumeOidcState(redis, windowState)
    expect(windowTakes + (after === undefined ? 0 : 1)).toBeLessThanOrEqual(1)
    expect(await consumeOidcState(redis, windowState)).toBeUndefined()

    // New writes on the moved slots work.
    await cacheSession(redis, probeUser, { back: true }, 60)
    expect(await getCachedSession(redis, probeUser)).toEqual({ back: true })
    await saveOidcState(redis, windowState, { nonce: 'again' })
    expect(await consumeOidcState(redis, windowState)).toEqual({ nonce: 'again' })
    expect((await probeLimiter.consume(probeSubject)).allowed).toBe(true)

    // 6. The sharded subscription is back on the promoted replica.
    await waitFor(
      async () => {
        try {
          await publishChannelEvent(redis, 'victim', typing('victim', 'after'))
        } catch (error) {
          expect(error).toBeInstanceOf(RedisUnavailableError)
        }
        return received.includes('after')
      },
      20_000,
      200,
    )
    const subscribedMs = Date.now() - killedAt

    const reasons = new Map<string, number>()
    for (const f of failures) {
      const e = f.error as RedisUnavailableError | RateLimiterStoreError
      const label = `${f.name}:${e instanceof RedisUnavailableError ? e.reason : e.name}`
      reasons.set(label, (reasons.get(label) ?? 0) + 1)
    }
    const longest = Math.max(...outcomes.map((o) => o.ms))
    console.log(
      `[cluster failover] node-timeout ${NODE_TIMEOUT_MS} ms, load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(
          ' ',
        )}: replica promoted ${promotedMs} ms after the kill; first call on the moved slots ok ${firstOkMs} ms, every helper ok ${roundOkMs} ms, subscription ${subscribedMs} ms; ${rounds} rounds of 7 calls, ${failures.length} typed failures (longest call ${longest} ms): ${[
        ...reasons,
      ]
        .map(([k, v]) => `${k}×${v}`)
        .join(
          ', ',
        )}; window OIDC takes ${windowTakes}, after ${after === undefined ? 0 : 1}; replication of all writes confirmed (polled) within ${replicatedMs} ms; replica ack after a write p50 ${lags[25]!.toFixed(2)} ms, max ${lags[49]!.toFixed(2)} ms`,
    )
  }, 55_000)
})
