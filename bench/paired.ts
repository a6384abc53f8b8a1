/**
 * Paired timing, call by call: two contenders alternate every call (the order
 * flips every pair), and each gets the median of its latencies. On a loaded
 * 2-core box the ratio of the two medians is stable to about ±1%, where
 * throughput blocks move ±20%. Used by bench/send-paired.ts and
 * bench/bulk-import.ts.
 *
 * @example
 * ```ts
 * const { a, b } = await paired(() => sendA(), () => sendB(), 4000)
 * console.log(`ratio ${(b / a).toFixed(3)}×`)
 * ```
 */

/** Microseconds `run` takes. */
export async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint()
  await run()
  return Number(process.hrtime.bigint() - start) / 1000
}

/** The median of `xs`. */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

/** Alternates a and b call by call (order flipped every pair); returns the median µs of each. */
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
