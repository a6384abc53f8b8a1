import type { Redis } from 'ioredis'
import { MalformedPayloadError } from './codec.ts'
import type { RedisEventLogger } from './event-types.ts'

/** Turns a raw payload into an event, or throws {@link MalformedPayloadError}. */
export type PayloadDecoder = (raw: string) => unknown

interface Subscription {
  handler: (event: unknown) => void | Promise<void>
  logger: RedisEventLogger | undefined
}

interface ChannelState {
  decode: PayloadDecoder
  subscriptions: Set<Subscription>
  ready: Promise<void>
}

interface ConnectionState {
  channels: Map<string, ChannelState>
}

/** One dispatch map per subscriber connection; its single 'message' listener reads it. */
const connections = new WeakMap<Redis, ConnectionState>()

const warnAll = (
  subscriptions: Iterable<Subscription>,
  message: string,
  meta: Record<string, unknown>,
): void => {
  const loggers = new Set<RedisEventLogger>()
  for (const { logger } of subscriptions) if (logger) loggers.add(logger)
  for (const logger of loggers) {
    try {
      logger.warn(message, meta)
    } catch {
      // a logger must not break delivery
    }
  }
}

const deliver = (channel: string, subscription: Subscription, event: unknown): void => {
  const report = (error: unknown) =>
    warnAll([subscription], 'guildstore: a Redis event handler failed', {
      channel,
      error: error instanceof Error ? error.name : typeof error,
    })
  try {
    const result = subscription.handler(event)
    if (result && typeof (result as Promise<void>).then === 'function') {
      ;(result as Promise<void>).then(undefined, report)
    }
  } catch (error) {
    report(error)
  }
}

const connectionState = (subscriber: Redis): ConnectionState => {
  let state = connections.get(subscriber)
  if (state) return state
  const created: ConnectionState = { channels: new Map() }
  connections.set(subscriber, created)
  subscriber.on('message', (channel: string, raw: string) => {
    const entry = created.channels.get(channel)
    if (!entry || entry.subscriptions.size === 0) return
    let event: unknown
    try {
      event = entry.decode(raw)
    } catch (error) {
      warnAll(entry.subscriptions, 'guildstore: dropped a malformed Redis event', {
        channel,
        reason: error instanceof MalformedPayloadError ? error.message : 'decode failed',
        bytes: Buffer.byteLength(raw),
      })
      return
    }
    for (const subscription of [...entry.subscriptions]) deliver(channel, subscription, event)
  })
  state = created
  return state
}

/**
 * Subscribes `handler` to a Redis channel on a shared subscriber connection:
 * one 'message' listener per connection, one SUBSCRIBE per channel however
 * many handlers (reference counted). Resolves once Redis confirmed the
 * subscription; the returned function unsubscribes (UNSUBSCRIBE after the last one).
 */
export async function subscribeDecoded(
  subscriber: Redis,
  channel: string,
  decode: PayloadDecoder,
  handler: (event: unknown) => void | Promise<void>,
  logger: RedisEventLogger | undefined,
): Promise<() => Promise<void>> {
  const state = connectionState(subscriber)
  let entry = state.channels.get(channel)
  if (!entry) {
    const created: ChannelState = {
      decode,
      subscriptions: new Set(),
      ready: subscriber.subscribe(channel).then(() => undefined),
    }
    created.ready.catch(() => {
      if (state.channels.get(channel) === created) state.channels.delete(channel)
    })
    state.channels.set(channel, created)
    entry = created
  }
  const current = entry
  const subscription: Subscription = { handler, logger }
  current.subscriptions.add(subscription)
  try {
    await current.ready
  } catch (error) {
    current.subscriptions.delete(subscription)
    throw error
  }
  let active = true
  return async () => {
    if (!active) return
    active = false
    current.subscriptions.delete(subscription)
    if (current.subscriptions.size > 0 || state.channels.get(channel) !== current) return
    state.channels.delete(channel)
    try {
      await subscriber.unsubscribe(channel)
    } catch (error) {
      // delivery has stopped already; the connection will drop the channel when it ends
      warnAll([subscription], 'guildstore: UNSUBSCRIBE failed', {
        channel,
        error: error instanceof Error ? error.name : typeof error,
      })
    }
  }
}

/** How many channels a subscriber connection has guildstore subscriptions on (for tests and metrics). */
export function activeSubscriptionCount(subscriber: Redis): number {
  return connections.get(subscriber)?.channels.size ?? 0
}
