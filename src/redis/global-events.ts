import type { RedisClient } from './client.ts'
import type { EventHandler, GlobalEvent, PublishOptions, SubscribeOptions } from './event-types.ts'
import { encodeEvent, eventDecoder, globalEventProblem } from './event-validation.ts'
import { channelsFor } from './keys.ts'
import { resolveNamespace } from './namespace.ts'
import { publishPayload, subscribeDecoded } from './subscription-registry.ts'

/**
 * Publishes a platform-wide event on `[<namespace>:]global` (JSON `{ v: 1, event }`).
 *
 * @returns How many subscriber connections received it.
 * @throws {InvalidInputError} When `event.type` is not a non-empty string.
 * @throws {PayloadTooLargeError} When the encoded event is over `maxPayloadBytes` (nothing is sent).
 * @throws {RedisUnavailableError} When Redis fails or the call times out.
 * @example
 * ```ts
 * await publishGlobal(redis, { type: 'maintenance', starts_at: new Date(Date.now() + 60_000) })
 * ```
 */
export async function publishGlobal<E extends GlobalEvent = GlobalEvent>(
  redis: RedisClient,
  event: E,
  options?: PublishOptions,
): Promise<number> {
  const payload = encodeEvent(event, globalEventProblem(event))
  const channel = channelsFor(resolveNamespace(redis, options)).global
  return publishPayload(redis, 'publishGlobal', channel, payload, options)
}

/**
 * Subscribes to platform-wide events on a shared subscriber connection.
 * A malformed payload is dropped and reported to `options.logger`.
 *
 * @returns A function that unsubscribes.
 * @throws {InvalidInputError} When `options.namespace` is malformed.
 * @example
 * ```ts
 * const stop = await subscribeGlobal(subscriber, (event) => {
 *   if (event.type === 'maintenance') warnClients(event)
 * })
 * ```
 */
export async function subscribeGlobal<E extends GlobalEvent = GlobalEvent>(
  subscriber: RedisClient,
  handler: EventHandler<E>,
  options?: SubscribeOptions,
): Promise<() => Promise<void>> {
  const channel = channelsFor(resolveNamespace(subscriber, options)).global
  return subscribeDecoded(
    subscriber,
    channel,
    eventDecoder(globalEventProblem),
    handler as (event: unknown) => void | Promise<void>,
    options?.logger,
  )
}
