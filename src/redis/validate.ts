import { InvalidInputError } from '../errors/index.ts'
import { assertText } from '../validation/validate.ts'

/** Longest accepted rate-limit category, in characters. */
export const MAX_CATEGORY_LENGTH = 64
/** Longest accepted key part (user id, subject, ip, state), in characters. */
export const MAX_KEY_PART_LENGTH = 512
/** Longest accepted TTL, in seconds (the largest a 32-bit signed integer holds, ~68 years). */
export const MAX_TTL_SECONDS = 2_147_483_647

const NAMESPACE_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/

/**
 * Checks a key part (user id, subject, ip, state): the shared text rule of
 * guildstore's inputs (a string, 1 to `maxLength` characters, no NUL, no lone
 * surrogate — one would be sent as U+FFFD, so two strings would share a key).
 *
 * @throws {InvalidInputError} When it is not.
 */
export function assertKeyPart(
  value: unknown,
  field: string,
  maxLength = MAX_KEY_PART_LENGTH,
): asserts value is string {
  assertText(value, field, { min: 1, max: maxLength })
}

/**
 * Checks a rate-limit category: a key part that also has no `:`, `{` or `}`, so
 * `(category, subject)` pairs can never collide and the hash tag stays intact.
 *
 * @throws {InvalidInputError} When it is not.
 */
export function assertCategory(value: unknown, field = 'category'): asserts value is string {
  assertKeyPart(value, field, MAX_CATEGORY_LENGTH)
  if (/[:{}\s]/.test(value)) {
    throw new InvalidInputError(`${field} must not contain ':', '{', '}' or whitespace`, { field })
  }
}

/**
 * Checks that `value` is an integer from 1 to `max`.
 *
 * @throws {InvalidInputError} When it is not.
 */
export function assertPositiveInteger(
  value: unknown,
  field: string,
  max = Number.MAX_SAFE_INTEGER,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidInputError(`${field} must be an integer from 1 to ${max}`, { field })
  }
}

/**
 * Checks a TTL in seconds: an integer from 1 to {@link MAX_TTL_SECONDS}.
 *
 * @throws {InvalidInputError} When it is not.
 */
export function assertTtlSeconds(value: unknown, field = 'ttlSeconds'): asserts value is number {
  assertPositiveInteger(value, field, MAX_TTL_SECONDS)
}

/**
 * Checks a namespace: 1 to 64 characters of `A-Z a-z 0-9 _ . -`.
 *
 * @throws {InvalidInputError} When it is not.
 */
export function assertNamespace(value: unknown, field = 'namespace'): asserts value is string {
  if (typeof value !== 'string' || !NAMESPACE_PATTERN.test(value)) {
    throw new InvalidInputError(
      `${field} must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'`,
      {
        field,
      },
    )
  }
}
