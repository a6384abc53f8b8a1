import type { RedisClient } from './client.ts'
import type {
  ChannelEvent,
  EventHandler,
  EventMessage,
  PublishOptions,
  SubscribeOptions,
} from './event-types.ts'
import { channelEventProblem, encodeEvent, eventDecoder } from './event-validation.ts'
import { channelsFor } from './keys.ts'
import { resolveNamespace } from './namespace.ts'
import { publishPayload, subscribeDecoded } from './subscription-registry.ts'
import { assertKeyPart } from './validate.ts'

/**
 * Publishes an event of a chat channel on `[<namespace>:]channel:<channel_id>`.
 *
 * Wire format: JSON `{ v: 1, event, revive? }`; Dates as ISO-8601 strings and
 * bigints as decimal strings, listed in `revive` so subscribers get them back
 * as Date and bigint.
 *
 * @returns How many subscriber connections received it.
 * On a Redis Cluster client it is sent with `SPUBLISH` (sharded pub/sub): the
 * channel's shard carries it, so event traffic spreads over the shards.
 *
 * @throws {InvalidInputError} When `channel_id` is malformed, the event lacks a
 * required field, is not of a known type, or belongs to another channel.
 * @throws {PayloadTooLargeError} When the encoded event is over `maxPayloadBytes` (nothing is sent).
 * @throws {RedisUnavailableError} When Redis fails or the call times out.
 * @example
 * ```ts
 * const message = await createMessage(db, { channel_id, author_id, content })
 * await publishChannelEvent(redis, channel_id, { type: 'message_created', message })
 * ```
 */
export async function publishChannelEvent<M extends EventMessage = EventMessage>(
  redis: RedisClient,
  channel_id: string,
  event: ChannelEvent<M>,
  options?: PublishOptions,
): Promise<number> {
  assertKeyPart(channel_id, 'channel_id')
  const payload = encodeEvent(event, channelEventProblem(event, channel_id))
  const channel = channelsFor(resolveNamespace(redis, options)).channel(channel_id)
  return publishPayload(redis, 'publishChannelEvent', channel, payload, options)
}

/**
 * Subscribes to a chat channel's events on a subscriber connection (use a
 * dedicated one, e.g. `redis.duplicate()`; many channels share it). Events
 * arrive in publish order, with Date and bigint fields restored. A malformed
 * payload is dropped and reported to `options.logger`; it never throws.
 *
 * @returns A function that unsubscribes; delivery stops as soon as it is called.
 * @throws {InvalidInputError} When `channel_id` is malformed.
 * @throws {RedisUnavailableError} When Redis fails or the call times out.
 * @example
 * ```ts
 * const subscriber = redis.duplicate()
 * const stop = await subscribeChannelEvents(subscriber, channelId, (event) => {
 *   if (event.type === 'message_created') socket.send(event.message)
 * })
 * await stop()
 * ```
 */
export async function subscribeChannelEvents<M extends EventMessage = EventMessage>(
  subscriber: RedisClient,
  channel_id: string,
  handler: EventHandler<ChannelEvent<M>>,
  options?: SubscribeOptions,
): Promise<() => Promise<void>> {
  assertKeyPart(channel_id, 'channel_id')
  const channel = channelsFor(resolveNamespace(subscriber, options)).channel(channel_id)
  return subscribeDecoded(
    subscriber,
    channel,
    eventDecoder((event) => channelEventProblem(event, channel_id)),
    handler as (event: unknown) => void | Promise<void>,
    options?.logger,
  )
}
