import type { RedisClient } from './client.ts'
import type {
  EventHandler,
  PresenceEvent,
  PublishOptions,
  SubscribeOptions,
} from './event-types.ts'
import { encodeEvent, eventDecoder, presenceEventProblem } from './event-validation.ts'
import { channelsFor } from './keys.ts'
import { resolveNamespace } from './namespace.ts'
import { publishPayload, subscribeDecoded } from './subscription-registry.ts'
import { assertKeyPart } from './validate.ts'

/**
 * Publishes a user's presence on `[<namespace>:]presence:<user_id>` (JSON `{ v: 1, event }`).
 *
 * @returns How many subscriber connections received it.
 * @throws {InvalidInputError} When `user_id` is missing or `status` is not online, away, busy or offline.
 * @throws {PayloadTooLargeError} When the encoded event is over `maxPayloadBytes` (nothing is sent).
 * @throws {RedisUnavailableError} When Redis fails or the call times out.
 * @example
 * ```ts
 * await publishPresence(redis, { type: 'presence', user_id: user.id, status: 'away' })
 * ```
 */
export async function publishPresence(
  redis: RedisClient,
  event: PresenceEvent,
  options?: PublishOptions,
): Promise<number> {
  const payload = encodeEvent(event, presenceEventProblem(event))
  assertKeyPart(event.user_id, 'user_id')
  const channel = channelsFor(resolveNamespace(redis, options)).presence(event.user_id)
  return publishPayload(redis, 'publishPresence', channel, payload, options)
}

/**
 * Subscribes to a user's presence events on a shared subscriber connection.
 * A malformed payload is dropped and reported to `options.logger`.
 *
 * @returns A function that unsubscribes.
 * @throws {InvalidInputError} When `user_id` is malformed.
 * @example
 * ```ts
 * const stop = await subscribePresence(subscriber, friendId, (e) => socket.send(e))
 * ```
 */
export async function subscribePresence(
  subscriber: RedisClient,
  user_id: string,
  handler: EventHandler<PresenceEvent>,
  options?: SubscribeOptions,
): Promise<() => Promise<void>> {
  assertKeyPart(user_id, 'user_id')
  const channel = channelsFor(resolveNamespace(subscriber, options)).presence(user_id)
  return subscribeDecoded(
    subscriber,
    channel,
    eventDecoder((event) => presenceEventProblem(event) ?? userMismatch(event, user_id)),
    handler as (event: unknown) => void | Promise<void>,
    options?.logger,
  )
}

const userMismatch = (event: unknown, user_id: string) =>
  (event as PresenceEvent).user_id === user_id ? undefined : 'user_id is not the subscribed user'
