import type { ActingAs } from '../errors/permission-denied-error.ts'
import { assertObject, assertOptionalText, assertUuid } from '../validation/validate.ts'

/** Length rule of `ActingAs.reason`. */
const REASON = { min: 1, max: 512 } as const

/**
 * Validates the `as` argument of a message-moderation call (pins, reactions).
 *
 * @throws {InvalidInputError} when it is not an object with a UUID `actor_id`
 *   and an optional reason of 1 to 512 characters.
 */
export function assertMessageActor(as: unknown): ActingAs {
  assertObject(as, 'as')
  assertUuid(as.actor_id, 'actor_id')
  assertOptionalText(as.reason, 'reason', REASON)
  return as as unknown as ActingAs
}
