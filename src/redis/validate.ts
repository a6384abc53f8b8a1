import { InvalidInputError } from '../errors/index.ts'

/** Longest accepted rate-limit category, in characters. */
export const MAX_CATEGORY_LENGTH = 64
/** Longest accepted key part (user id, subject, ip, state), in characters. */
export const MAX_KEY_PART_LENGTH = 512
/** Longest accepted TTL, in seconds (the largest a 32-bit signed integer holds, ~68 years). */
export const MAX_TTL_SECONDS = 2_147_483_647

const NAMESPACE_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/

/**
 * Checks that `value` is a non-empty string of at most `maxLength` characters without a NUL byte.
 *
 * @throws {InvalidInputError} When it is not.
 */
export function assertKeyPart(
  value: unknown,
  field: string,
  maxLength = MAX_KEY_PART_LENGTH,
): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidInputError(`${field} must be a non-empty string`, { field })
  }
  if (value.length > maxLength) {
    throw new InvalidInputError(`${field} must be at most ${maxLength} characters`, { field })
  }
  if (value.includes('\0')) {
    throw new InvalidInputError(`${field} must not contain a NUL byte`, { field })
  }
  // A lone surrogate is sent as U+FFFD: two different strings would share one key.
  if (!value.isWellFormed()) {
    throw new InvalidInputError(`${field} must be well-formed Unicode (no lone surrogates)`, {
      field,
    })
  }
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
