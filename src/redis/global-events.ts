import type { Redis } from 'ioredis'
import type { EventHandler, GlobalEvent, SubscribeOptions } from './event-types.ts'
import { encodeEvent, eventDecoder, globalEventProblem } from './event-validation.ts'
import { channelsFor } from './keys.ts'
import { type NamespaceOptions, resolveNamespace } from './namespace.ts'
import { subscribeDecoded } from './subscription-registry.ts'

/**
 * Publishes a platform-wide event on `[<namespace>:]global` (JSON `{ v: 1, event }`).
 *
 * @returns How many subscriber connections received it.
 * @throws {InvalidInputError} When `event.type` is not a non-empty string.
 * @example
 * ```ts
 * await publishGlobal(redis, { type: 'maintenance', starts_at: new Date(Date.now() + 60_000) })
 * ```
 */
export async function publishGlobal<E extends GlobalEvent = GlobalEvent>(
  redis: Redis,
  event: E,
  options?: NamespaceOptions,
): Promise<number> {
  const payload = encodeEvent(event, globalEventProblem(event))
  return redis.publish(channelsFor(resolveNamespace(redis, options)).global, payload)
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
  subscriber: Redis,
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
