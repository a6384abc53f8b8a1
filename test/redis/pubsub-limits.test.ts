/**
 * Pub/sub payload limit and unsubscribing during delivery (issue 11, items 7 and 8).
 * On 0.1.0 an oversized publish was sent (Redis then drops every subscriber
 * connection that receives it, losing the events behind it), and a handler
 * stopped by another handler of the same event still received that event.
 */
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../src/errors/index.ts'
import {
  createRedis,
  DEFAULT_MAX_PAYLOAD_BYTES,
  type GlobalEvent,
  PayloadTooLargeError,
  publishChannelEvent,
  publishGlobal,
  publishPresence,
  subscribeChannelEvents,
  subscribeGlobal,
} from '../../src/redis/index.ts'
import { redisUrl, testNamespace, waitFor } from './support.ts'

const namespace = testNamespace('limits')
let redis: Redis
let subscriber: Redis

beforeAll(() => {
  redis = createRedis({ url: redisUrl(), namespace })
  subscriber = redis.duplicate()
})

afterAll(() => {
  redis.disconnect()
  subscriber.disconnect()
})

describe('payload size limit', () => {
  it('refuses an event over the default 1 MiB before sending; the subscriber keeps every later event', async () => {
    const received: GlobalEvent[] = []
    const stop = await subscribeGlobal(subscriber, (e) => {
      received.push(e)
    })
    // a raw subscriber on the same channel proves nothing at all was sent
    const raw = redis.duplicate()
    let rawMessages = 0
    raw.on('message', () => {
      rawMessages++
    })
    await raw.subscribe(`${namespace}:global`)
    const big = { type: 'blob', data: 'x'.repeat(2 * DEFAULT_MAX_PAYLOAD_BYTES) }
    const error = await publishGlobal(redis, big).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(PayloadTooLargeError)
    expect(error).toBeInstanceOf(InvalidInputError)
    expect((error as PayloadTooLargeError).limit).toBe(DEFAULT_MAX_PAYLOAD_BYTES)
    expect((error as PayloadTooLargeError).bytes).toBeGreaterThan(2 * DEFAULT_MAX_PAYLOAD_BYTES)
    // multi-byte characters are counted in UTF-8 bytes, not string length
    const wide = { type: 'wide', data: 'é'.repeat(DEFAULT_MAX_PAYLOAD_BYTES / 2 + 10) }
    await expect(publishGlobal(redis, wide)).rejects.toBeInstanceOf(PayloadTooLargeError)
    for (let i = 0; i < 20; i++) expect(await publishGlobal(redis, { type: 'small', i })).toBe(2)
    await waitFor(() => received.length === 20 && rawMessages === 20)
    expect(received.map((e) => e.i)).toEqual(Array.from({ length: 20 }, (_, i) => i))
    raw.disconnect()
    await stop()
  })

  it('is configurable per client and per call, for every publish helper', async () => {
    const small = createRedis({ url: redisUrl(), namespace, maxPayloadBytes: 200 })
    // One subscriber on channel c: a publish that is sent reaches exactly it.
    const typed: string[] = []
    const stop = await subscribeChannelEvents(subscriber, 'c', (e) => {
      if (e.type === 'typing') typed.push(e.user_id)
    })
    try {
      const typing = { type: 'typing', channel_id: 'c', user_id: 'u'.repeat(300) } as const
      await expect(publishChannelEvent(small, 'c', typing)).rejects.toBeInstanceOf(
        PayloadTooLargeError,
      )
      await expect(
        publishPresence(small, { type: 'presence', user_id: 'u'.repeat(300), status: 'away' }),
      ).rejects.toBeInstanceOf(PayloadTooLargeError)
      await expect(
        publishGlobal(small, { type: 'g', pad: 'p'.repeat(300) }),
      ).rejects.toBeInstanceOf(PayloadTooLargeError)
      // a duplicate keeps the limit; a call may raise it
      await expect(
        publishGlobal(small.duplicate(), { type: 'g', pad: 'p'.repeat(300) }),
      ).rejects.toBeInstanceOf(PayloadTooLargeError)
      expect(await publishChannelEvent(small, 'c', typing, { maxPayloadBytes: 1000 })).toBe(1)
      await waitFor(() => typed.length === 1)
      expect(typed).toEqual([typing.user_id])
      await expect(
        publishGlobal(redis, { type: 'g' }, { maxPayloadBytes: 0 }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    } finally {
      await stop()
      small.disconnect()
    }
  })
})

describe('unsubscribing during delivery', () => {
  it('a handler stopped by an earlier handler of the same event does not receive it', async () => {
    const seenByB: string[] = []
    let stopB: (() => Promise<void>) | undefined
    const seenByA: string[] = []
    const stopA = await subscribeChannelEvents(subscriber, 'during', (e) => {
      if (e.type !== 'typing') return
      seenByA.push(e.user_id)
      void stopB?.()
    })
    stopB = await subscribeChannelEvents(subscriber, 'during', (e) => {
      if (e.type === 'typing') seenByB.push(e.user_id)
    })
    await publishChannelEvent(redis, 'during', {
      type: 'typing',
      channel_id: 'during',
      user_id: 'one',
    })
    await publishChannelEvent(redis, 'during', {
      type: 'typing',
      channel_id: 'during',
      user_id: 'two',
    })
    await waitFor(() => seenByA.length === 2)
    expect(seenByB).toEqual([])
    await stopA()
  })

  it('a handler that stops itself gets nothing more, even of events already received on the connection', async () => {
    const seen: string[] = []
    let stop: (() => Promise<void>) | undefined
    const other: string[] = []
    const stopOther = await subscribeChannelEvents(subscriber, 'self', (e) => {
      if (e.type === 'typing') other.push(e.user_id)
    })
    stop = await subscribeChannelEvents(subscriber, 'self', (e) => {
      if (e.type !== 'typing') return
      seen.push(e.user_id)
      void stop?.()
    })
    await Promise.all(
      ['a', 'b', 'c'].map((user_id) =>
        publishChannelEvent(redis, 'self', { type: 'typing', channel_id: 'self', user_id }),
      ),
    )
    await waitFor(() => other.length === 3)
    expect(seen).toEqual(['a'])
    await stopOther()
  })
})
