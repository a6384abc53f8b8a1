/** Full-text search, as a mix and per query. */
import type { Kysely } from 'kysely'
import type pg from 'pg'
import type { DB } from '../../codegen/db.ts'
import { searchMessages } from '../../src/repositories/search.ts'
import * as dz from '../drizzle-queries.ts'
import { runRound } from '../harness.ts'
import { at, type BenchContext, type ScenarioDef, scenario } from './context.ts'

export function searchScenarios(ctx: BenchContext): ScenarioDef[] {
  return [
    scenario({
      name: 'searchMessages (6 queries, rotating)',
      iterations: 300,
      unnamed: true,
      multi: true,
      args: (i) => ({ user_id: ctx.data.member_id, query: at(ctx.searches, i), limit: 25 }),
      guildstore: (db, a) => searchMessages(db, a),
      drizzle: (a) => dz.searchMessages(ctx.ddb, a),
      note: 'guildstore runs two statements: the accessible channel ids (named, prepared), then the search with them bound as one uuid[] (unnamed, planned per call, on purpose); raw pg runs the same two, both named.',
    }),
  ]
}

/**
 * searchMessages per query (guildstore only): the mix hides which terms are
 * slow. Returns markdown table lines.
 */
export async function searchBreakdown(
  ctx: BenchContext,
  db: Kysely<DB>,
  rawPool: pg.Pool,
  iterations: number,
): Promise<string[]> {
  const lines = ['| query | hits (all channels) | p50 ms | p95 ms |', '|---|---:|---:|---:|']
  for (const q of ctx.searches) {
    const hits = (
      await rawPool.query<{ n: number }>(
        "select count(*)::int as n from messages where search @@ websearch_to_tsquery('simple', $1) and deleted_at is null",
        [q],
      )
    ).rows[0]?.n
    const s = await runRound(
      {
        name: q,
        run: () => searchMessages(db, { user_id: ctx.data.member_id, query: q, limit: 25 }),
      },
      iterations,
      1,
    )
    lines.push(`| \`${q}\` | ${hits} | ${s.p50.toFixed(1)} | ${s.p95.toFixed(1)} |`)
  }
  return lines
}
