/**
 * `EXPLAIN (ANALYZE, BUFFERS)` of a captured statement, run the way the
 * contenders run it: a prepared statement executed 6 times first (so the plan
 * shown is the one the plan cache settles on, generic or custom), or, for a
 * statement guildstore sends unnamed, planned with its actual values. Writes run
 * inside a transaction that is rolled back.
 */
import type pg from 'pg'
import { sqlLiteral as literal } from '../test/support/sql-literal.ts'

export async function explain(
  pool: pg.Pool,
  sql: string,
  params: readonly unknown[],
  options: { prepared: boolean; write?: boolean },
): Promise<string> {
  const client = await pool.connect()
  try {
    if (options.write) await client.query('begin')
    let rows: Array<Record<string, string>>
    if (options.prepared) {
      await client.query('deallocate all')
      await client.query(`prepare bench_explain as ${sql}`)
      const args = params.length ? `(${params.map(literal).join(', ')})` : ''
      if (!options.write) {
        for (let i = 0; i < 6; i++) await client.query(`execute bench_explain${args}`)
      }
      rows = (await client.query(`explain (analyze, buffers) execute bench_explain${args}`)).rows
      await client.query('deallocate bench_explain')
    } else {
      rows = (await client.query(`explain (analyze, buffers) ${sql}`, [...params])).rows
    }
    if (options.write) await client.query('rollback')
    return rows.map((r) => r['QUERY PLAN']).join('\n')
  } catch (error) {
    if (options.write) await client.query('rollback').catch(() => {})
    return `EXPLAIN failed: ${(error as Error).message}`
  } finally {
    client.release()
  }
}
