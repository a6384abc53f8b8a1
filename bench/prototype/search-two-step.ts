/**
 * PROTOTYPE (bench only): searchMessages as ONE statement (today: the accessible
 * channel ids inline as `channel_id = any(array(<subquery>))`, so the planner
 * cannot know how many messages they cover and picks a BitmapAnd with
 * messages_channel_id_idx) vs TWO statements (the accessible ids first, then the
 * search with them bound as a `uuid[]` parameter: planned with the actual array,
 * so channel_id's MCV statistics apply).
 *
 *   node bench/prototype/search-two-step.ts [-v]
 */
import { createPool } from '../../src/pool/create-pool.ts'
import { searchMessages } from '../../src/repositories/search.ts'
import { captureSql } from '../capture.ts'
import { ensureDataset } from '../generate.ts'

const data = await ensureDataset()
const pool = createPool({ connectionString: data.url, max: 2 })
const qs = [
  'deploy',
  'xylophone',
  'coffee pizza',
  '"merge branch"',
  'database -cache',
  'quokka or narwhal',
  'the',
]
const [cap] = await captureSql(pool, (db) =>
  searchMessages(db, { user_id: data.member_id, query: 'x', limit: 25 }),
)
const sql0 = cap!.sql
// The accessible-ids subquery of today's statement, renumbered ($1 is the query text).
const accSql = /array\((select c\.id[\s\S]*)\)\) and id </.exec(sql0)![1]!
const idsSql = `select array(${accSql.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) - 1}`)}) as ids`
const variant = `select "id", "channel_id", "author_id", "reply_to", "content", "created_at", "edited_at", "deleted_at" from "messages" where search @@ websearch_to_tsquery('simple', $1) and "deleted_at" is null and channel_id = any($2::uuid[]) and "id" < $3::uuid order by "id" desc limit $4`
const MAX = 'ffffffff-ffff-ffff-ffff-ffffffffffff'
const verbose = process.argv.includes('-v')
const R = 10
for (const q of qs) {
  const p0 = cap!.parameters.map((v) => (v === 'x' ? q : v))
  let t = performance.now()
  for (let i = 0; i < R; i++) await pool.query(sql0, [...p0])
  const one = (performance.now() - t) / R
  t = performance.now()
  let ids: string[] = []
  for (let i = 0; i < R; i++) {
    ids = (await pool.query<{ ids: string[] }>(idsSql, p0.slice(1, -2))).rows[0]!.ids
    await pool.query(variant, [q, ids, MAX, 25])
  }
  const two = (performance.now() - t) / R
  console.log(
    `${q.padEnd(20)} one statement ${one.toFixed(1)} ms; two statements ${two.toFixed(1)} ms`,
  )
  if (verbose) {
    const plan = await pool.query(`explain (analyze, buffers) ${variant}`, [q, ids, MAX, 25])
    console.log(plan.rows.map((r) => r['QUERY PLAN']).join('\n'))
  }
}
await pool.end()
