/**
 * Paired timing for benches: two contenders alternate call by call (the order
 * flips every pair), and each is summarized by its median latency. Shared by
 * bench/send-paired.ts and bench/feed.ts.
 */

/** The latency of one call, in µs. */
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
export async function paired(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
  n: number,
): Promise<{ a: number; b: number }> {
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
