/**
 * Hostile inputs shared by the test files, and the one "refused and nothing
 * written" assertion.
 */
import type { Kysely } from 'kysely'
import { expect } from 'vitest'
import { type DB, InvalidInputError, newId } from '../../src/index.ts'
import { countRows } from './database.ts'

/**
 * Malformed ids every required id parameter refuses with InvalidInputError:
 * wrong shapes, one character short or long, a bad hex digit, NUL, lone
 * surrogates, non-strings, `null` and `undefined`.
 */
export const BAD_IDS: readonly unknown[] = [
  '',
  'not-a-uuid',
  'nope',
  '123',
  'a\u0000b',
  'x\uD800y',
  '\ud800',
  '\udfff',
  'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz',
  '0190c8a4-7e1f-7abc-8def-0123456789a',
  '0190c8a4-7e1f-7abc-8def-0123456789abc',
  '0190c8a4-7e1f-7abc-8def-0123456789ag',
  '0190c8a4-7e1f-7abc-8def-0123456789ax',
  '0190c8a4-7e1f-7abc-8def-0123456789az',
  '0190c8a4-7e1f-7abc-8def-0123456789a\u0000',
  1,
  7,
  42,
  null,
  undefined,
]

const MB = 'x'.repeat(1_000_000)

/** Strings for text slots (names, content, lookups, queries). */
export const TEXT_INPUTS: Readonly<Record<string, string>> = {
  sqlDrop: "'; DROP TABLE users; --",
  orTrue: "' OR 1=1 --",
  dollarParam: '$1',
  dollarQuote: '$$; select 1; $$',
  backslashes: '\\\\ \\\' \\" \\x00 \\u0000',
  likeWildcards: '%_%',
  likePercent: '%',
  nul: 'ab\u0000cd',
  loneHighSurrogate: '\uD800',
  loneLowSurrogate: 'x\uDC00y',
  oneMegabyte: MB,
  emoji: '👩‍👩‍👧‍👦🎉🏳️‍🌈',
  rightToLeft: '\u202Eevil\u202C name',
  zeroWidth: 'a\u200Bb\uFEFF',
  combining: 'e\u0301\u0301',
  tsqueryOps: '!(a & b) | c:* <-> "d"',
  newlines: 'line1\r\nline2\ttab',
  empty: '',
  spaces: '   ',
  controlChars: 'a\u0001\u001Fb\u007F',
}

const unknownId = () => newId()

/** Values for id slots (well-formed ones among them name nothing). */
export const ID_INPUTS: Readonly<Record<string, unknown>> = {
  notAUuid: 'not-a-uuid',
  empty: '',
  sqlDrop: "'; DROP TABLE users; --",
  orTrue: "00000000-0000-0000-0000-000000000000' OR '1'='1",
  dollarParam: '$1',
  backslash: '\\',
  likePercent: '%',
  nulSuffix: `${unknownId()}\u0000`,
  loneSurrogate: '\uD800',
  oneMegabyte: MB,
  emoji: '🎉',
  rightToLeft: `\u202E${unknownId()}`,
  trailingSpace: `${unknownId()} `,
  braces: `{${unknownId()}}`,
  noDashes: unknownId().replaceAll('-', ''),
  number: 12345,
  object: {},
  array: [unknownId()],
  upperCaseUnknown: unknownId().toUpperCase(),
  nilUuid: '00000000-0000-0000-0000-000000000000',
}

/**
 * Asserts that `call` is refused with an InvalidInputError and that no table
 * of the database changed (every table's row count, read from the catalog).
 * Returns the error for further assertions.
 *
 * @example
 * ```ts
 * await expectInvalidAndNothingWritten(t.db, () => createUser(t.db, { username: '' }))
 * ```
 */
export async function expectInvalidAndNothingWritten(
  db: Kysely<DB>,
  call: () => Promise<unknown>,
): Promise<InvalidInputError> {
  const before = await countRows(db)
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(InvalidInputError)
  expect(await countRows(db)).toEqual(before)
  return error as InvalidInputError
}
