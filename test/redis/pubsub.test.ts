import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../src/errors/index.ts'
import {
  type ChannelEvent,
  createRedis,
  type EventMessage,
  type GlobalEvent,
  type PresenceEvent,
  publishChannelEvent,
  publishGlobal,
  publishPresence,
  subscribeChannelEvents,
  subscribeGlobal,
  subscribePresence,
} from '../../src/redis/index.ts'
import { redisUrl, testNamespace, waitFor } from './support.ts'

const namespace = testNamespace('pubsub')
let redis: Redis
let subscriber: Redis

beforeAll(() => {
  redis = createRedis({ url: redisUrl(), namespace })
  subscriber = redis.duplicate({ connectionName: `${namespace}_sub` })
})

afterAll(() => {
  redis.disconnect()
  subscriber.disconnect()
})

const message = (channel_id: string, n: number): EventMessage & { nonce: bigint } => ({
  id: `m-${n}`,
  channel_id,
  author_id: 'u-1',
  content: `hello ${n}`,
  reply_to: n > 0 ? `m-${n - 1}` : null,
  created_at: new Date(Date.UTC(2025, 0, 1, 0, 0, n)),
  edited_at: n % 2 ? new Date(Date.UTC(2025, 0, 2)) : null,
  nonce: BigInt(n) * 10n ** 18n,
})

const numsub = async (channel: string): Promise<number> => {
  const reply = (await redis.pubsub('NUMSUB', channel)) as [string, number]
  return Number(reply[1])
}

describe('pub/sub', () => {
  it('delivers every channel event type as published, Dates and bigints included', async () => {
    const received: ChannelEvent[] = []
    const stop = await subscribeChannelEvents(subscriber, 'c-types', (e) => {
      received.push(e)
    })
    const events: ChannelEvent[] = [
      { type: 'message_created', message: message('c-types', 0) },
      { type: 'message_updated', message: message('c-types', 1) },
      { type: 'message_deleted', channel_id: 'c-types', message_id: 'm-0' },
      { type: 'typing', channel_id: 'c-types', user_id: 'u-2' },
    ]
    for (const event of events) expect(await publishChannelEvent(redis, 'c-types', event)).toBe(1)
    await waitFor(() => received.length === events.length)
    expect(received).toEqual(events)
    const created = received[0] as unknown as { message: EventMessage & { nonce: bigint } }
    expect(created.message.created_at).toBeInstanceOf(Date)
    expect(created.message.nonce).toBe(0n)
    expect((received[1] as { message: EventMessage }).message.edited_at).toBeInstanceOf(Date)
    await stop()
  })

  it('publishes on channel:<id> as { v: 1, event }', async () => {
    const raw = redis.duplicate()
    const payloads: string[] = []
    raw.on('message', (_channel: string, payload: string) => payloads.push(payload))
    await raw.subscribe(`${namespace}:channel:c-wire`)
    await publishChannelEvent(redis, 'c-wire', {
      type: 'typing',
      channel_id: 'c-wire',
      user_id: 'u',
    })
    await waitFor(() => payloads.length === 1)
    expect(JSON.parse(payloads[0]!)).toEqual({
      v: 1,
      event: { type: 'typing', channel_id: 'c-wire', user_id: 'u' },
    })
    raw.disconnect()
  })

  it('keeps publish order over 200 events', async () => {
    const received: string[] = []
    const stop = await subscribeChannelEvents(subscriber, 'c-order', (e) => {
      if (e.type === 'message_created') received.push(e.message.id)
    })
    await Promise.all(
      Array.from({ length: 200 }, (_, n) =>
        publishChannelEvent(redis, 'c-order', {
          type: 'message_created',
          message: message('c-order', n),
        }),
      ),
    )
    await waitFor(() => received.length === 200)
    expect(received).toEqual(Array.from({ length: 200 }, (_, n) => `m-${n}`))
    await stop()
  })

  it('shares one connection and one listener across many channels, counting references', async () => {
    const counts = new Map<string, number>()
    const stops = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        subscribeChannelEvents(subscriber, `c-many-${i}`, () => {
          counts.set(`c-many-${i}`, (counts.get(`c-many-${i}`) ?? 0) + 1)
        }),
      ),
    )
    const second = await subscribeChannelEvents(subscriber, 'c-many-0', () => {})
    expect(subscriber.listenerCount('message')).toBe(1)
    const clients = (await redis.client('LIST')) as string
    expect(
      clients.split('\n').filter((line) => line.includes(`name=${namespace}_sub `)),
    ).toHaveLength(1)
    expect(await numsub(`${namespace}:channel:c-many-0`)).toBe(1)
    for (let i = 0; i < 20; i++) {
      await publishChannelEvent(redis, `c-many-${i}`, {
        type: 'typing',
        channel_id: `c-many-${i}`,
        user_id: 'u',
      })
    }
    await waitFor(() => counts.size === 20)
    expect([...counts.values()].every((n) => n === 1)).toBe(true)
    await second()
    expect(await numsub(`${namespace}:channel:c-many-0`)).toBe(1) // still one subscription left
    for (const stop of stops) await stop()
    expect(await numsub(`${namespace}:channel:c-many-0`)).toBe(0)
    expect(subscriber.listenerCount('message')).toBe(1)
  })

  it('stops delivering to a handler once it unsubscribes', async () => {
    const a: string[] = []
    const b: string[] = []
    const stopA = await subscribeChannelEvents(subscriber, 'c-unsub', (e) => {
      a.push(e.type)
    })
    const stopB = await subscribeChannelEvents(subscriber, 'c-unsub', (e) => {
      b.push(e.type)
    })
    const typing = { type: 'typing', channel_id: 'c-unsub', user_id: 'u' } as const
    await publishChannelEvent(redis, 'c-unsub', typing)
    await waitFor(() => a.length === 1 && b.length === 1)
    await stopA()
    await stopA() // idempotent
    await publishChannelEvent(redis, 'c-unsub', typing)
    await waitFor(() => b.length === 2)
    expect(a).toHaveLength(1)
    await stopB()
    expect(await publishChannelEvent(redis, 'c-unsub', typing)).toBe(0)
    expect(b).toHaveLength(2)
  })

  it('drops malformed payloads with a warning and keeps delivering', async () => {
    const warnings: Array<[string, Record<string, unknown>]> = []
    const logger = {
      warn: (msg: string, meta: Record<string, unknown>) => warnings.push([msg, meta]),
    }
    const received: ChannelEvent[] = []
    let throwNext = true
    const stop = await subscribeChannelEvents(
      subscriber,
      'c-bad',
      (e) => {
        if (throwNext) {
          throwNext = false
          throw new Error('handler bug')
        }
        received.push(e)
      },
      { logger },
    )
    const channel = `${namespace}:channel:c-bad`
    const bad = [
      'not json',
      '[]',
      JSON.stringify({ v: 2, event: { type: 'typing', channel_id: 'c-bad', user_id: 'u' } }),
      JSON.stringify({ v: 1, event: { type: 'typing', channel_id: 'c-bad' } }),
      JSON.stringify({ v: 1, event: { type: 'unknown_kind', channel_id: 'c-bad' } }),
      JSON.stringify({ v: 1, event: { type: 'typing', channel_id: 'elsewhere', user_id: 'u' } }),
      JSON.stringify({
        v: 1,
        event: { type: 'message_created', message: { id: 'm', channel_id: 'c-bad' } },
      }),
      JSON.stringify({
        v: 1,
        event: { type: 'typing', channel_id: 'c-bad', user_id: 'u', at: 'x' },
        revive: [[['at'], 'date']],
      }),
    ]
    const typing = { type: 'typing', channel_id: 'c-bad', user_id: 'u' } as const
    await publishChannelEvent(redis, 'c-bad', typing) // the handler throws on this one
    for (const payload of bad) await redis.publish(channel, payload)
    await publishChannelEvent(redis, 'c-bad', typing)
    await waitFor(() => received.length === 1)
    expect(received).toEqual([typing])
    expect(warnings.filter(([msg]) => msg.includes('malformed'))).toHaveLength(bad.length)
    expect(warnings.filter(([msg]) => msg.includes('handler failed'))).toHaveLength(1)
    for (const [, meta] of warnings) expect(meta.channel).toBe(channel)
    expect(JSON.stringify(warnings)).not.toContain('not json')
    await stop()
  })

  it('refuses to publish a malformed event, and nothing is delivered', async () => {
    const received: ChannelEvent[] = []
    const stop = await subscribeChannelEvents(subscriber, 'c-invalid', (e) => {
      received.push(e)
    })
    const invalid = [
      { type: 'typing', channel_id: 'other', user_id: 'u' },
      { type: 'typing', channel_id: 'c-invalid' },
      { type: 'message_created', message: message('other', 1) },
      { type: 'message_created', message: { ...message('c-invalid', 1), created_at: 'now' } },
      { type: 'nope', channel_id: 'c-invalid' },
    ] as unknown as ChannelEvent[]
    for (const event of invalid) {
      await expect(publishChannelEvent(redis, 'c-invalid', event)).rejects.toBeInstanceOf(
        InvalidInputError,
      )
    }
    await expect(
      publishChannelEvent(redis, '', { type: 'typing', channel_id: '', user_id: 'u' }),
    ).rejects.toBeInstanceOf(InvalidInputError)
    await expect(subscribeChannelEvents(subscriber, '', () => {})).rejects.toBeInstanceOf(
      InvalidInputError,
    )
    const sentinel = { type: 'typing', channel_id: 'c-invalid', user_id: 'sentinel' } as const
    await publishChannelEvent(redis, 'c-invalid', sentinel)
    await waitFor(() => received.length > 0)
    expect(received).toEqual([sentinel])
    await stop()
  })

  it('round-trips presence and global events', async () => {
    const presence: PresenceEvent[] = []
    const global: GlobalEvent[] = []
    const stopPresence = await subscribePresence(subscriber, 'u-9', (e) => {
      presence.push(e)
    })
    const stopGlobal = await subscribeGlobal(subscriber, (e) => {
      global.push(e)
    })
    const event: PresenceEvent = { type: 'presence', user_id: 'u-9', status: 'busy' }
    expect(await publishPresence(redis, event)).toBe(1)
    const maintenance = { type: 'maintenance', starts_at: new Date('2030-01-01T00:00:00Z'), n: 3n }
    expect(await publishGlobal(redis, maintenance)).toBe(1)
    await waitFor(() => presence.length === 1 && global.length === 1)
    expect(presence).toEqual([event])
    expect(global).toEqual([maintenance])
    await expect(
      publishPresence(redis, { type: 'presence', user_id: 'u-9', status: 'asleep' as 'away' }),
    ).rejects.toBeInstanceOf(InvalidInputError)
    await expect(publishGlobal(redis, { type: '' })).rejects.toBeInstanceOf(InvalidInputError)
    await stopPresence()
    await stopGlobal()
    expect(await numsub(`${namespace}:global`)).toBe(0)
  })
})
