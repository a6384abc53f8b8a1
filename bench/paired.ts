/**
 * The paired timing of the `*-paired.ts` benches: two contenders alternate
 * call by call (the order flips every pair), and each side's median latency
 * is kept, so a ratio of medians compares them under the same load.
 */
import type pg from 'pg'
import { newId } from '../src/ids/new-id.ts'

/** The columns the raw contenders return, as sendMessage does. */
export const RETURNING =
  'id, channel_id, author_id, reply_to, content, created_at, edited_at, deleted_at'
const RAW_INSERT = `insert into messages (id, channel_id, author_id, reply_to, content) values ($1, $2, $3, $4, $5) returning ${RETURNING}`

/**
 * The raw contender of a send: the plain INSERT of the same row, prepared, on `pool`.
 *
 * @example
 * ```ts
 * await paired(gsSend, rawInsert(raw, channel.id, member.id), 4000)
 * ```
 */
export const rawInsert = (pool: pg.Pool, channel_id: string, author_id: string) => () =>
  pool.query({
    name: 'bench_plain_insert',
    text: RAW_INSERT,
    values: [newId(), channel_id, author_id, null, 'hello there'],
  })

/** Microseconds one call took. */
export async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint()
  await run()
  return Number(process.hrtime.bigint() - start) / 1000
}

/** The median of a list of numbers. */
export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

/**
 * Alternates a and b call by call (order flipped every pair); returns the median µs of each.
 *
 * @example
 * ```ts
 * const { a, b } = await paired(gsSend, rawInsert, 4000)
 * console.log(`ratio ${(b / a).toFixed(3)}×`)
 * ```
 */
export async function paired(a: () => Promise<unknown>, b: () => Promise<unknown>, n: number) {
  const ta: number[] = []
  const tb: number[] = []
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      ta.push(await timed(a))
      tb.push(await timed(b))
    } else {
      tb.push(await timed(b))
      ta.push(await timed(a))
    }
  }
  return { a: median(ta), b: median(tb) }
}
