import { InvalidInputError } from '../errors/invalid-input-error.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Checks that `value` is a UUID string (any version, any case).
 *
 * @throws {InvalidInputError} when it is not.
 * @example
 * ```ts
 * assertUuid(params.id, 'id')
 * ```
 */
export function assertUuid(value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string' || !UUID.test(value)) {
    throw new InvalidInputError(`${field} must be a UUID`, { field })
  }
}

/** Like {@link assertUuid}, but `null` and `undefined` pass. */
export function assertOptionalUuid(
  value: unknown,
  field: string,
): asserts value is string | null | undefined {
  if (value !== null && value !== undefined) assertUuid(value, field)
}

/**
 * Checks an array of UUIDs: an array, at most `max` entries, each a UUID.
 *
 * @throws {InvalidInputError} when it is not.
 */
export function assertUuidArray(
  value: unknown,
  field: string,
  max = 10_000,
): asserts value is string[] {
  if (!Array.isArray(value)) throw new InvalidInputError(`${field} must be an array`, { field })
  if (value.length > max) {
    throw new InvalidInputError(`${field} must hold at most ${max} ids`, { field })
  }
  for (const id of value) assertUuid(id, field)
}

/** Length rules of {@link assertText}. */
export interface TextRule {
  /** Minimum length in characters (code points). Default 1. */
  min?: number
  /** Maximum length in characters (code points). */
  max: number
}

/** Length in Unicode code points, as PostgreSQL's `char_length` counts. */
export function codePointLength(value: string): number {
  let n = 0
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < value.length) {
      const d = value.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) i++
    }
    n++
  }
  return n
}

/**
 * Checks a text input: a string, well-formed UTF-16 (no lone surrogates, which
 * could not be stored verbatim), no NUL character (PostgreSQL text cannot hold
 * one), and a length in code points within the rule.
 *
 * @throws {InvalidInputError} naming the field and the rule, never the value.
 * @example
 * ```ts
 * assertText(input.content, 'content', { min: 1, max: 4000 })
 * ```
 */
export function assertText(value: unknown, field: string, rule: TextRule): asserts value is string {
  if (typeof value !== 'string') throw new InvalidInputError(`${field} must be a string`, { field })
  if (value.includes('\u0000')) {
    throw new InvalidInputError(`${field} must not contain a NUL character`, { field })
  }
  if (!value.isWellFormed()) {
    throw new InvalidInputError(`${field} must be well-formed Unicode (no lone surrogates)`, {
      field,
    })
  }
  const min = rule.min ?? 1
  // Cheap bounds first: UTF-16 length is ≥ code points and ≤ 2 × code points.
  if (value.length < min || value.length > rule.max * 2) {
    throw new InvalidInputError(`${field} must be ${min} to ${rule.max} characters`, { field })
  }
  if (value.length > rule.max || min > value.length / 2) {
    const n = codePointLength(value)
    if (n < min || n > rule.max) {
      throw new InvalidInputError(`${field} must be ${min} to ${rule.max} characters`, { field })
    }
  }
}

/** Like {@link assertText}, but `null` and `undefined` pass. */
export function assertOptionalText(
  value: unknown,
  field: string,
  rule: TextRule,
): asserts value is string | null | undefined {
  if (value !== null && value !== undefined) assertText(value, field, rule)
}

/**
 * Checks that `value` is one of `allowed`.
 *
 * @throws {InvalidInputError} when it is not.
 */
export function assertOneOf<const T extends string>(
  value: unknown,
  field: string,
  allowed: readonly T[],
): asserts value is T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidInputError(`${field} must be one of: ${allowed.join(', ')}`, { field })
  }
}

/**
 * Checks an integer within bounds (a JS safe integer).
 *
 * @throws {InvalidInputError} when it is not.
 */
export function assertInteger(
  value: unknown,
  field: string,
  min: number,
  max: number,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidInputError(`${field} must be an integer from ${min} to ${max}`, { field })
  }
}

/**
 * Checks a valid `Date` (not `Invalid Date`).
 *
 * @throws {InvalidInputError} when it is not.
 */
export function assertDate(value: unknown, field: string): asserts value is Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new InvalidInputError(`${field} must be a valid Date`, { field })
  }
}

/**
 * Checks a signed 64-bit integer `bigint` (what a PostgreSQL `bigint` holds).
 *
 * @throws {InvalidInputError} when it is not.
 */
export function assertInt64(value: unknown, field: string): asserts value is bigint {
  if (
    typeof value !== 'bigint' ||
    value < -9_223_372_036_854_775_808n ||
    value > 9_223_372_036_854_775_807n
  ) {
    throw new InvalidInputError(`${field} must be a bigint within the signed 64-bit range`, {
      field,
    })
  }
}

/**
 * Checks that `value` is a plain object (the input record of a function).
 *
 * @throws {InvalidInputError} when it is not.
 */
export function assertObject(
  value: unknown,
  field: string,
): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidInputError(`${field} must be an object`, { field })
  }
}

/**
 * Resolves a page size: `undefined` gives `fallback`, else an integer 1…`max`.
 *
 * @throws {InvalidInputError} when it is out of range.
 */
export function pageLimit(value: unknown, fallback: number, max: number): number {
  if (value === undefined || value === null) return fallback
  assertInteger(value, 'limit', 1, max)
  return value
}

/**
 * Checks an integer against a field rule (see `defineFields`).
 *
 * @throws {InvalidInputError} when it is not an integer within the rule.
 * @example
 * ```ts
 * assertInRange(input.position, 'position', channelFields.position)
 * ```
 */
export function assertInRange(
  value: unknown,
  field: string,
  rule: { min: number; max: number },
): asserts value is number {
  assertInteger(value, field, rule.min, rule.max)
}

/**
 * Checks a boolean.
 *
 * @throws {InvalidInputError} when it is not one.
 */
export function assertBoolean(value: unknown, field: string): asserts value is boolean {
  if (typeof value !== 'boolean')
    throw new InvalidInputError(`${field} must be a boolean`, { field })
}
