import pg from 'pg'

/** The type oid of `timestamptz`. */
export const TIMESTAMPTZ_OID = 1184

type TimestamptzParser = (value: string) => unknown

/** pg-types' own text parser of `timestamptz` (postgres-date's `parseDate`), as pg had it when guildstore loaded: the fallback, and the reference of the fast path. */
const pgTypesTimestamptz = pg.types.getTypeParser(TIMESTAMPTZ_OID, 'text') as (
  value: string,
) => Date | number | null

/** Whether the parser captured at load is pg-types' stock one (not one a host set globally before). */
const stockAtLoad = pgTypesTimestamptz.name === 'parseDate'

/**
 * The `timestamptz` text parser for a pool, given pg's global one now:
 * {@link parseTimestamptz} while that is still pg-types' stock parser, else the
 * host's own global parser (a `pg.types.setTypeParser(1184, …)` keeps winning,
 * as it did before the fast path).
 *
 * @example
 * ```ts
 * timestamptzParserFor(pg.types.getTypeParser(1184)) // parseTimestamptz
 * ```
 */
export function timestamptzParserFor(current: TimestamptzParser): TimestamptzParser {
  return stockAtLoad && current === pgTypesTimestamptz ? parseTimestamptz : current
}

/** 10^0 … 10^6: the divisor of a fraction of n digits. */
const POW10 = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000]

/** The digit at `at` (0–9), or -1 for any other character (or past the end). */
const digitAt = (text: string, at: number): number => {
  const d = text.charCodeAt(at) - 48
  return d >= 0 && d <= 9 ? d : -1
}

/** The two-digit number at `at`, or -1 unless both characters are digits. */
const twoDigitsAt = (text: string, at: number): number => {
  const tens = digitAt(text, at)
  const ones = digitAt(text, at + 1)
  return tens < 0 || ones < 0 ? -1 : tens * 10 + ones
}

/**
 * Parses a `timestamptz` value as PostgreSQL sends it in text form, to exactly
 * what pg-types' own parser returns (the same `Date`, the same epoch ms), only
 * faster: the canonical ISO output `YYYY-MM-DD HH:MM:SS[.f…]±HH[:MM[:SS]]`
 * (years 100–9999, up to 6 fractional digits) is read by character codes into
 * `Date.UTC` minus the offset, with pg-types' millisecond arithmetic (the
 * fraction as a double times 1000, truncated). Anything else — BC dates,
 * `infinity`/`-infinity`, years outside 100–9999, a DateStyle other than ISO —
 * goes to pg-types' parser, so the result is always identical.
 *
 * @example
 * ```ts
 * parseTimestamptz('2026-12-07 18:00:26.123456+05:30').toISOString()
 * // '2026-12-07T12:30:26.123Z'
 * ```
 */
export function parseTimestamptz(text: string): Date | number | null {
  const length = text.length
  if (
    length < 22 ||
    text.charCodeAt(4) !== 45 || // '-'
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 32 || // ' '
    text.charCodeAt(13) !== 58 || // ':'
    text.charCodeAt(16) !== 58
  ) {
    return pgTypesTimestamptz(text)
  }
  const century = twoDigitsAt(text, 0)
  const yearOfCentury = twoDigitsAt(text, 2)
  const month = twoDigitsAt(text, 5)
  const day = twoDigitsAt(text, 8)
  const hour = twoDigitsAt(text, 11)
  const minute = twoDigitsAt(text, 14)
  const second = twoDigitsAt(text, 17)
  // Years 0–99 take pg-types' setUTCFullYear path: leave them to it.
  if (
    century < 1 ||
    yearOfCentury < 0 ||
    month < 0 ||
    day < 0 ||
    hour < 0 ||
    minute < 0 ||
    second < 0
  ) {
    return pgTypesTimestamptz(text)
  }
  let at = 19
  let ms = 0
  if (text.charCodeAt(at) === 46) {
    // '.': pg-types computes 1000 * parseFloat('.ffffff'); n / 10^k is that same double.
    at++
    let fraction = 0
    const start = at
    for (let d = digitAt(text, at); d >= 0; d = digitAt(text, ++at)) fraction = fraction * 10 + d
    const digits = at - start
    if (digits === 0 || digits > 6) return pgTypesTimestamptz(text)
    ms = 1000 * (fraction / (POW10[digits] as number))
  }
  const sign = text.charCodeAt(at)
  if (sign !== 43 && sign !== 45) return pgTypesTimestamptz(text) // '+' / '-'
  const offsetHours = twoDigitsAt(text, at + 1)
  if (offsetHours < 0) return pgTypesTimestamptz(text)
  at += 3
  let offsetSeconds = offsetHours * 3600
  if (at < length) {
    const offsetMinutes = text.charCodeAt(at) === 58 ? twoDigitsAt(text, at + 1) : -1
    if (offsetMinutes < 0) return pgTypesTimestamptz(text)
    offsetSeconds += offsetMinutes * 60
    at += 3
    if (at < length) {
      const offsetSecs = text.charCodeAt(at) === 58 ? twoDigitsAt(text, at + 1) : -1
      if (offsetSecs < 0 || at + 3 !== length) return pgTypesTimestamptz(text)
      offsetSeconds += offsetSecs
    }
  }
  const utc = Date.UTC(century * 100 + yearOfCentury, month - 1, day, hour, minute, second, ms)
  return new Date(sign === 45 ? utc + offsetSeconds * 1000 : utc - offsetSeconds * 1000)
}
