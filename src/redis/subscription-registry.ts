import { InvalidInputError } from '../errors/index.ts'
import { clientSetting, guard, isCluster, MAX_PAYLOAD_OPTION, type RedisClient } from './client.ts'
import { MalformedPayloadError } from './codec.ts'
import type { PublishOptions, RedisEventLogger } from './event-types.ts'
import { DEFAULT_MAX_PAYLOAD_BYTES, PayloadTooLargeError } from './redis-errors.ts'

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
const connections = new WeakMap<RedisClient, ConnectionState>()

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

const connectionState = (subscriber: RedisClient): ConnectionState => {
  let state = connections.get(subscriber)
  if (state) return state
  const created: ConnectionState = { channels: new Map() }
  connections.set(subscriber, created)
  // A cluster client delivers sharded pub/sub (SSUBSCRIBE) as 'smessage'.
  const event = isCluster(subscriber) ? 'smessage' : 'message'
  subscriber.on(event, (channel: string, raw: string) => {
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
    // A snapshot, so a handler added during delivery waits for the next event;
    // but a handler removed during delivery (by an earlier one) gets nothing more.
    for (const subscription of [...entry.subscriptions]) {
      if (entry.subscriptions.has(subscription)) deliver(channel, subscription, event)
    }
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
  subscriber: RedisClient,
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
      ready: guard(subscriber, 'subscribe', () =>
        isCluster(subscriber) ? subscriber.ssubscribe(channel) : subscriber.subscribe(channel),
      ).then(() => undefined),
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
      if (isCluster(subscriber)) await subscriber.sunsubscribe(channel)
      else await subscriber.unsubscribe(channel)
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
export function activeSubscriptionCount(subscriber: RedisClient): number {
  return connections.get(subscriber)?.channels.size ?? 0
}

/** The payload limit of a publish call: the call's, else the client's, else the default. */
function payloadLimit(redis: RedisClient, options: PublishOptions | undefined): number {
  const explicit = options?.maxPayloadBytes
  if (explicit !== undefined) {
    if (typeof explicit !== 'number' || !Number.isInteger(explicit) || explicit < 1) {
      throw new InvalidInputError('maxPayloadBytes must be a positive integer', {
        field: 'maxPayloadBytes',
      })
    }
    return explicit
  }
  const configured = clientSetting(redis, MAX_PAYLOAD_OPTION)
  return typeof configured === 'number' ? configured : DEFAULT_MAX_PAYLOAD_BYTES
}

/**
 * Publishes an encoded payload: refused with {@link PayloadTooLargeError}
 * before sending when over the limit; `SPUBLISH` on a cluster (sharded
 * pub/sub), `PUBLISH` on a single node; failures as `RedisUnavailableError`.
 *
 * @returns How many subscriber connections received it.
 */
export function publishPayload(
  redis: RedisClient,
  operation: string,
  channel: string,
  payload: string,
  options: PublishOptions | undefined,
): Promise<number> {
  const limit = payloadLimit(redis, options)
  // UTF-8 is at most 3 bytes per UTF-16 unit: count exactly only when it could matter.
  if (payload.length * 3 > limit) {
    const bytes = Buffer.byteLength(payload, 'utf8')
    if (bytes > limit) throw new PayloadTooLargeError(bytes, limit)
  }
  return guard(redis, operation, () =>
    isCluster(redis)
      ? (redis.spublish(channel, payload) as Promise<number>)
      : redis.publish(channel, payload),
  )
}
