/** Keyset vs OFFSET at 90% depth, raw pg both: why history pages use a keyset. */
import type pg from 'pg'
import { messageColumns } from '../../src/repositories/messages.ts'
import { runRaw } from '../capture.ts'
import { explain } from '../explain.ts'
import { type Contender, measure, type ScenarioResult } from '../harness.ts'
import type { PreparedScenario } from '../prepare.ts'
import { at, type BenchContext } from './context.ts'

/** The comparison's result and the OFFSET statement's plan, or undefined when its scenarios were not selected. */
export async function keysetVsOffset(
  ctx: BenchContext,
  prepared: readonly PreparedScenario[],
  rawPool: pg.Pool,
  iterations: (n: number) => number,
  log: (msg: string) => void,
): Promise<
  | {
      result: ScenarioResult
      explain: { name: string; sql: string; plan: string; prepared: boolean }
    }
  | undefined
> {
  const keyset = prepared.find((p) => p.def.name.includes('90% depth'))
  const newest = prepared.find((p) => p.def.name.includes('newest page (busiest'))
  if (!keyset || !newest) return undefined
  // The classic OFFSET page (guildstore's own page reads through an inner
  // LIMIT 100, which an OFFSET appended to it would empty).
  const offsetSql = `select ${messageColumns.map((c) => `"${c}"`).join(', ')} from "messages" where "channel_id" = $1 and "deleted_at" is null order by "seq" desc limit $2 offset $3`
  const offsetAt = Math.floor(ctx.live * 0.9)
  const contenders: Contender[] = [
    {
      name: 'keyset (before)',
      run: (i) =>
        runRaw(rawPool, keyset.raw, {
          channel_id: ctx.busiest,
          before: at(ctx.cursors90, i),
          limit: 50,
        }),
    },
    {
      name: 'OFFSET',
      run: (i) =>
        rawPool.query({
          name: 'bench_offset',
          text: offsetSql,
          values: [ctx.busiest, 50, offsetAt + (i % 64) * 37],
        }),
    },
  ]
  const result = await measure(
    {
      name: `page at 90% depth (offset ${offsetAt}): keyset vs OFFSET, raw pg`,
      concurrency: 1,
      iterations: iterations(30),
      contenders,
    },
    { rounds: 3, warmup: 5, progress: log },
  )
  return {
    result,
    explain: {
      name: 'OFFSET page at 90% depth (for comparison, not used by guildstore)',
      sql: offsetSql,
      prepared: true,
      plan: await explain(rawPool, offsetSql, [ctx.busiest, 50, offsetAt], { prepared: true }),
    },
  }
}
