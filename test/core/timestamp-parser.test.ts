import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { guildstoreTypeParsers } from '../../src/index.ts'
import { parseTimestamptz, timestamptzParserFor } from '../../src/pool/timestamptz-parser.ts'
import { testDatabaseUrl } from '../support/env.ts'

const TIMESTAMPTZ = 1184
const reference = pg.types.getTypeParser(TIMESTAMPTZ, 'text') as (value: string) => unknown

/** Canonical ISO output of the server, the fast path's shape. */
const CANONICAL = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?[+-]\d\d(:\d\d){0,2}$/

/** A small deterministic PRNG (mulberry32), so a failure reproduces. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)
  }
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')
const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** A timestamptz string as the server prints it under DateStyle ISO (sometimes with a variation). */
function generate(random: (n: number) => number): string {
  const year = random(8) === 0 ? 1 + random(999) : 1 + random(9999)
  const month = 1 + random(12)
  const leapDay = month === 2 && isLeap(year) && random(4) === 0
  const day = leapDay ? 29 : 1 + random(DAYS[month - 1] as number)
  const fractionDigits = random(7)
  let fraction = ''
  if (fractionDigits > 0) {
    const digits = Array.from({ length: fractionDigits }, () => random(10)).join('')
    fraction = `.${random(6) === 0 ? digits.replace(/\d$/, '9') : digits}`
  }
  const offsetHours = random(15)
  const minutePick = random(6)
  const offsetMinutes =
    minutePick < 3 ? 0 : minutePick === 3 ? 30 : minutePick === 4 ? 45 : random(60)
  const offsetSeconds = random(6) === 0 ? random(60) : 0
  let offset = `${random(2) === 0 ? '+' : '-'}${pad(offsetHours)}`
  if (offsetMinutes !== 0 || offsetSeconds !== 0 || random(10) === 0)
    offset += `:${pad(offsetMinutes)}`
  if (offsetSeconds !== 0) offset += `:${pad(offsetSeconds)}`
  const time = `${pad(random(24))}:${pad(random(60))}:${pad(random(60))}${fraction}`
  const text = `${pad(year, 4)}-${pad(month)}-${pad(day)} ${time}${offset}`
  return random(20) === 0 ? `${text} BC` : text
}

/** Same value: equal epoch ms for Dates (an Invalid Date equals an Invalid Date), else `Object.is`. */
function expectSame(text: string, actual: unknown, expected: unknown): void {
  if (expected instanceof Date) {
    expect(actual, text).toBeInstanceOf(Date)
    expect(Object.is((actual as Date).getTime(), expected.getTime()), text).toBe(true)
  } else {
    expect(Object.is(actual, expected), text).toBe(true)
  }
}

describe('parseTimestamptz', () => {
  it('returns what pg-types returns over many generated server strings', () => {
    const random = prng(28)
    let canonical = 0
    for (let i = 0; i < 50_000; i++) {
      const text = generate(random)
      if (CANONICAL.test(text)) canonical++
      expectSame(text, parseTimestamptz(text), reference(text))
    }
    expect(canonical).toBeGreaterThan(40_000)
  })

  it('truncates every 1–6 digit fraction to milliseconds exactly as pg-types does', () => {
    for (let n = 0; n < 1_000_000; n += 7) {
      const text = `2026-12-07 18:00:26.${pad(n, 6)}+00`
      expectSame(text, parseTimestamptz(text), reference(text))
    }
    for (let n = 0; n < 1000; n++) {
      for (const text of [
        `2000-02-29 23:59:59.${pad(n, 3)}+05:30`,
        `2000-02-29 23:59:59.${n}-03`,
      ]) {
        expectSame(text, parseTimestamptz(text), reference(text))
      }
    }
  })

  it('falls back to pg-types for everything off the fast path', () => {
    const texts = [
      'infinity',
      '-infinity',
      '0001-01-01 00:00:00+00 BC',
      '0044-03-15 12:00:00.5+00:19:32 BC',
      '0099-12-31 23:59:59.999999+00',
      '0000-01-01 00:00:00+00',
      '10000-01-01 00:00:00+00',
      '294276-12-31 23:59:59.999999+00',
      '2026-12-07 18:00:26.1234567+00',
      '2026-12-07 18:00:26.+00',
      '2026-12-07 18:00:26Z',
      '2026-12-07 18:00:26',
      '2026-12-07 18:00:26+5',
      '2026-12-07 18:00:26+05:3',
      '2026-12-07 18:00:26+05:30:1',
      '2026-12-07 18:00:26+05:30:15x',
      '2026-12-07T18:00:26+00',
      '2026-12-07 18:00:26 +00',
      'Mon Dec 07 18:00:26.123 2026 UTC',
      '12/07/2026 18:00:26.123 UTC',
      '07.12.2026 18:00:26.123 UTC',
      '2026-12-07',
      '',
      'garbage',
      '2026-13-45 25:61:61+00',
      '2a26-12-07 18:00:26+00',
    ]
    for (const text of texts) expectSame(text, parseTimestamptz(text), reference(text))
    // Every prefix of a canonical value, fast path or fallback, agrees too.
    const full = '2024-02-29 23:59:59.999999-09:30:15'
    for (let end = 0; end <= full.length; end++) {
      const text = full.slice(0, end)
      expectSame(text, parseTimestamptz(text), reference(text))
    }
  })

  it('is what guildstore pools use for timestamptz text, unless the host set its own global parser', () => {
    expect(guildstoreTypeParsers.getTypeParser(TIMESTAMPTZ, 'text')).toBe(parseTimestamptz)
    expect(guildstoreTypeParsers.getTypeParser(TIMESTAMPTZ, 'binary')).toBe(
      pg.types.getTypeParser(TIMESTAMPTZ, 'binary'),
    )
    expect(guildstoreTypeParsers.getTypeParser(1114, 'text')).toBe(
      pg.types.getTypeParser(1114, 'text'),
    )
    const hostParser = (value: string): string => value
    expect(timestamptzParserFor(hostParser)).toBe(hostParser)
    expect(timestamptzParserFor(reference)).toBe(parseTimestamptz)
  })

  it('agrees with pg-types on what the server prints under several time zones', async () => {
    const client = new pg.Client({
      connectionString: testDatabaseUrl(),
      types: { getTypeParser: () => (value: string) => value },
    })
    await client.connect()
    try {
      const literals = [
        '2026-12-07 18:00:26.123456+00',
        '2026-12-07 18:00:26.057+00',
        '2000-02-29 23:59:59.999999+00',
        '2024-02-29 00:00:00+00',
        '1970-01-01 00:00:00+00',
        '1937-06-30 12:00:00+00',
        '1900-01-01 00:00:00+00',
        '1892-05-01 00:00:00+00',
        '1800-06-15 12:34:56.789+00',
        '0100-03-01 00:00:00+00',
        '0099-12-31 23:59:59+00',
        '0001-01-01 00:00:00+00',
        '0044-03-15 12:00:00+00 BC',
        '9999-12-31 23:59:59.999999+00',
        '10000-01-01 00:00:00+00',
        'infinity',
        '-infinity',
      ]
      const zones = [
        'UTC',
        'Asia/Kolkata',
        'America/St_Johns',
        'Europe/Amsterdam',
        'Asia/Kathmandu',
        'Pacific/Kiritimati',
        'Pacific/Chatham',
        'America/Caracas',
      ]
      const printed = new Set<string>()
      for (const zone of zones) {
        await client.query(`SET TimeZone = '${zone}'`)
        const { rows } = await client.query<{ t: string }>(
          `SELECT unnest($1::timestamptz[]) AS t
           UNION ALL
           SELECT to_timestamp(e::float8 / 1e6) FROM (
             SELECT (random() * 2.5e17)::int8 - 6.2e16::int8 AS e FROM generate_series(1, 500)
           ) s`,
          [literals],
        )
        for (const { t } of rows) {
          printed.add(t)
          expectSame(`${zone}: ${t}`, parseTimestamptz(t), reference(t))
        }
      }
      // The Amsterdam LMT-era offset the brief names, and the canonical shape dominating.
      expect([...printed].some((t) => t.endsWith('+00:19:32'))).toBe(true)
      expect([...printed].filter((t) => CANONICAL.test(t)).length).toBeGreaterThan(
        printed.size * 0.9,
      )
      await client.query(`SET DateStyle = 'Postgres, MDY'`)
      const { rows } = await client.query<{ t: string }>('SELECT unnest($1::timestamptz[]) AS t', [
        literals,
      ])
      for (const { t } of rows) expectSame(t, parseTimestamptz(t), reference(t))
    } finally {
      await client.end()
    }
  })
})
