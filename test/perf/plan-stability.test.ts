/**
 * Plans across ANALYZE (issue 28, item 5): on skewed data (one channel holding
 * 60 000 messages, all unread by one member; a user with 400 DMs), every hot
 * statement must do about the same work after `VACUUM ANALYZE` as before it,
 * under the plan cache's own choice and under forced generic plans; and the
 * read-state list must keep its generic plan once analyzed.
 *
 * Not a timing test. The work is what `EXPLAIN (ANALYZE, BUFFERS, FORMAT
 * JSON)` counts for the statements the function really sends. They are
 * captured from its query log. A named statement is prepared under its own
 * text and executed 6 times first; an unnamed one is planned with its values.
 * The counts are the rows its scans read plus the shared buffers it touched,
 * and pg_prepared_statements' custom_plans. None of them moves with the
 * machine's load.
 *
 * It can fail. With 0.2's messages_channel_id_idx (PLAN_STABILITY_OLD_INDEX=1
 * puts it back in place of 0017's), listChannelReadStates' unread count reads
 * the whole big channel after ANALYZE: about 69 700 rows + buffers, where the
 * bound is 7 900. With the read-state SQL before its InitPlan change, the plan
 * cache stays on custom plans (7 of 7). PLAN_STABILITY_PRINT=1 prints every
 * statement's counts.
 */
import pg from 'pg'
import { beforeAll, describe, expect, it } from 'vitest'
import { createDb } from '../../src/index.ts'
import { registeredQueries } from '../../src/sql/registry.ts'
import { useTestDatabase } from '../support/database.ts'
import { HOT_CALLS } from '../support/hot-statements.ts'
import { SKEWED_SIZES, type SkewedData, seedSkewedData } from '../support/skewed-data.ts'
import { sqlLiteral } from '../support/sql-literal.ts'

const t = useTestDatabase({ max: 3 })

/**
 * After ANALYZE (or as a generic plan) a statement may do at most RATIO × its
 * work before, plus SLACK. Work is rows its scans read plus buffers it touched:
 * rows alone miss a plan that reads the same rows from many more pages, and
 * buffers alone miss one that reads 60 000 heap rows from a few hundred
 * well-ordered pages (0.2's unread count did exactly that).
 */
const RATIO = 1.5
/** A sequential scan of a small table (at most 1 000 rows here) once the planner knows it is small. */
const SLACK = 1500

interface Captured {
  sql: string
  parameters: readonly unknown[]
  /** Sent as a named prepared statement (else unnamed: planned with its values every time). */
  named: boolean
}

/** The SQL of every prepared query (dynamic ones are sent unnamed). */
const PREPARED_SQL = new Set(
  registeredQueries()
    .filter((q) => q.name !== undefined)
    .flatMap((q) => q.statements),
)

type Mode = 'auto' | 'force_generic_plan' | 'force_custom_plan'

interface PlanNode {
  'Node Type': string
  'Actual Rows'?: number
  'Actual Loops'?: number
  'Rows Removed by Filter'?: number
  'Rows Removed by Index Recheck'?: number
  'Shared Hit Blocks'?: number
  'Shared Read Blocks'?: number
  Plans?: PlanNode[]
}

/** What one EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) says a statement did. */
interface Work {
  /** Shared buffers, hit + read. */
  buffers: number
  /** Rows the scans of the plan read: returned plus removed by a filter or recheck, times loops. */
  rows: number
  /** Of the 7 runs of each named read, how many were planned for their values (a custom plan). */
  customPlans: number
}

function rowsScanned(node: PlanNode): number {
  const own = node['Node Type'].includes('Scan')
    ? ((node['Actual Rows'] ?? 0) +
        (node['Rows Removed by Filter'] ?? 0) +
        (node['Rows Removed by Index Recheck'] ?? 0)) *
      (node['Actual Loops'] ?? 1)
    : 0
  return own + (node.Plans ?? []).reduce((sum, child) => sum + rowsScanned(child), 0)
}

function workOf(rows: Array<Record<string, unknown>>): Work {
  const doc = rows[0]?.['QUERY PLAN'] as Array<{ Plan: PlanNode }>
  const plan = doc[0]?.Plan as PlanNode
  return {
    buffers: (plan['Shared Hit Blocks'] ?? 0) + (plan['Shared Read Blocks'] ?? 0),
    rows: rowsScanned(plan),
    customPlans: 0,
  }
}

/** The statements one call sends (their text and bound values), from the query log. */
async function capture(pool: pg.Pool, run: (db: ReturnType<typeof createDb>) => Promise<unknown>) {
  const out: Captured[] = []
  const db = createDb(pool, {
    logParameters: true,
    log: (e) =>
      out.push({ sql: e.sql, parameters: e.parameters ?? [], named: PREPARED_SQL.has(e.sql) }),
  })
  await run(db)
  return out.filter((c) => /^\s*(with|select|insert|update|delete)\b/i.test(c.sql))
}

/**
 * The buffers of every statement of a call, summed: each prepared and run as
 * the function runs it (a read executed 6 times first, so the plan cache has
 * made its generic-or-custom choice), each in a transaction rolled back.
 */
async function work(
  url: string,
  statements: readonly Captured[],
  mode: Mode,
  write: boolean,
): Promise<Work> {
  // A client of its own, outside the pool: nothing prepared stays behind.
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  const total: Work = { buffers: 0, rows: 0, customPlans: 0 }
  try {
    for (const st of statements) {
      await c.query('begin')
      try {
        let r: pg.QueryResult
        if (st.named) {
          await c.query(`set local plan_cache_mode = ${mode}`)
          await c.query(`prepare plan_check as ${st.sql}`)
          const args = st.parameters.length ? `(${st.parameters.map(sqlLiteral).join(', ')})` : ''
          if (!write) for (let k = 0; k < 6; k++) await c.query(`execute plan_check${args}`)
          r = await c.query(`explain (analyze, buffers, format json) execute plan_check${args}`)
          if (!write) {
            const plans = await c.query<{ n: number }>(
              "select custom_plans::int as n from pg_prepared_statements where name = 'plan_check'",
            )
            total.customPlans += plans.rows[0]?.n ?? 0
          }
        } else {
          r = await c.query(`explain (analyze, buffers, format json) ${st.sql}`, [...st.parameters])
        }
        const w = workOf(r.rows)
        total.buffers += w.buffers
        total.rows += w.rows
      } finally {
        await c.query('rollback')
        if (st.named) await c.query('deallocate plan_check')
      }
    }
  } finally {
    await c.end()
  }
  return total
}

describe('plans across ANALYZE on skewed data', () => {
  let data: SkewedData
  const captured = new Map<string, Captured[]>()
  const before = new Map<string, Work>()

  beforeAll(async () => {
    data = await seedSkewedData(t.pool, t.db, SKEWED_SIZES)
    if (process.env.PLAN_STABILITY_OLD_INDEX)
      await t.pool.query(
        'create index messages_channel_id_idx on messages (channel_id); drop index messages_channel_id_id_idx',
      )
    for (const call of HOT_CALLS) {
      const statements = await capture(t.pool, async (db) => {
        const result = await call.run(db, data)
        // The send's row goes again, so its EXPLAIN can insert the same id.
        if (call.write)
          await t.pool.query('delete from messages where id = $1', [(result as { id: string }).id])
      })
      captured.set(call.name, statements)
      // Tables never analyzed: the plans a freshly loaded database gets.
      before.set(call.name, await work(t.url, statements, 'auto', call.write === true))
    }
    await t.pool.query('vacuum analyze')
  }, 60_000)

  it('captured every hot statement, and the data is skewed as meant', async () => {
    for (const call of HOT_CALLS)
      expect(captured.get(call.name)?.length, call.name).toBeGreaterThan(0)
    const r = await t.pool.query<{ n: number }>(
      `select count(*)::int as n from messages m
       where m.channel_id = $1 and m.seq > coalesce(
         (select last_read_seq from channel_read_states where user_id = $2 and channel_id = $1), 0)`,
      [data.big_channel_id, data.reader_id],
    )
    expect(r.rows[0]?.n).toBe(SKEWED_SIZES.bigMessages)
    const s = await t.pool.query<{ analyzed: boolean }>(
      "select last_analyze is not null as analyzed from pg_stat_user_tables where relname = 'messages'",
    )
    expect(s.rows[0]?.analyzed).toBe(true)
  })

  // The plan cache makes 5 custom plans, then keeps the generic one unless it
  // costs more than they did. The read-state list used to stay on custom plans
  // once analyzed: 3.5–8 ms of planning on every call for 0.3 ms of execution.
  it.each(['listChannelReadStates guild', 'listChannelReadStates DMs'])(
    '%s: after ANALYZE the plan cache keeps the generic plan (no planning per call)',
    async (name) => {
      const statements = captured.get(name) as Captured[]
      expect(statements.every((st) => st.named)).toBe(true)
      const w = await work(t.url, statements, 'auto', false)
      expect(w.customPlans, `${name}: ${JSON.stringify(w)}`).toBe(5 * statements.length)
    },
  )

  it.each(HOT_CALLS.map((c) => [c.name, c] as const))(
    '%s: after ANALYZE, as chosen and as a generic plan, within 1.5× the work before',
    async (name, call) => {
      const statements = captured.get(name) as Captured[]
      const base = before.get(name) as Work
      const write = call.write === true
      const after = {
        auto: await work(t.url, statements, 'auto', write),
        generic: await work(t.url, statements, 'force_generic_plan', write),
      }
      if (process.env.PLAN_STABILITY_PRINT) {
        console.log(`${name}\t${JSON.stringify(base)}\t${JSON.stringify(after)}`)
      }
      const detail = `${name}: before ${JSON.stringify(base)}, after ${JSON.stringify(after)}`
      expect(base.buffers, detail).toBeGreaterThan(0)
      for (const w of [after.auto, after.generic]) {
        expect(w.rows + w.buffers, detail).toBeLessThanOrEqual(
          RATIO * (base.rows + base.buffers) + SLACK,
        )
      }
    },
  )
})
