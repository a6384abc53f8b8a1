import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { assertObject, assertUuid } from './validate.ts'

/**
 * Checks an input object made of ids (a key such as `{ guild_id, user_id }`):
 * an object, and each named field a UUID, checked in the order given.
 *
 * @throws {InvalidInputError} naming the first bad field (`input` when it is no object).
 * @example
 * ```ts
 * assertIdKey(input, ['guild_id', 'user_id']) // input: { guild_id: string; user_id: string }
 * ```
 */
export function assertIdKey<const K extends string>(
  input: unknown,
  fields: readonly K[],
): asserts input is Record<K, string> {
  assertObject(input, 'input')
  for (const field of fields) assertUuid(input[field], field)
}

/**
 * Two user ids of a pair, lowercased; the same id twice is refused.
 *
 * @throws {InvalidInputError} when an id is not a UUID, or `b` equals `a`.
 * @example
 * ```ts
 * const [from, to] = distinctIds(input.from_user_id, 'from_user_id', input.to_user_id, 'to_user_id')
 * ```
 */
export function distinctIds(
  a: unknown,
  aField: string,
  b: unknown,
  bField: string,
): [string, string] {
  assertUuid(a, aField)
  assertUuid(b, bField)
  const x = a.toLowerCase()
  const y = b.toLowerCase()
  if (x === y) {
    throw new InvalidInputError(`${bField} must differ from ${aField}`, { field: bField })
  }
  return [x, y]
}
