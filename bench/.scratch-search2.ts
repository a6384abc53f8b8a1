import { accessibleChannelIdsSql } from '../src/permissions/access-sql.ts'
import { createPool } from '../src/pool/create-pool.ts'
import { searchMessages } from '../src/repositories/search.ts'
import { captureSql } from './capture.ts'

const url = 'postgres://postgres@127.0.0.1:5432/guildstore_bench'
const pool = createPool({ connectionString: url, max: 2 })
const info = (await pool.query('select info from bench.meta')).rows[0].info
const qs = [
  'deploy',
  'xylophone',
  'coffee pizza',
  '"merge branch"',
  'database -cache',
  'quokka or narwhal',
  'the',
]
const cap0 = await captureSql(pool, (db) =>
  searchMessages(db, { user_id: info.member_id, query: 'x', limit: 25 }),
)
const sql0 = cap0[0]!.sql
console.log(sql0)
// variant: accessible ids first, then array param
const accSql = sql0.match(/array\((select c\.id[\s\S]*)\)\) and id </)![1]
const variant = `select "id", "channel_id", "author_id", "reply_to", "content", "created_at", "edited_at", "deleted_at" from "messages" where search @@ websearch_to_tsquery('simple', $1) and "deleted_at" is null and channel_id = any($2::uuid[]) and "id" < $3::uuid order by "id" desc limit $4`
const verbose = process.argv.includes('-v')
for (const q of qs) {
  const p0 = cap0[0]!.parameters.map((v) => (v === 'x' ? q : v))
  const t = performance.now()
  for (let i = 0; i < 5; i++) await pool.query(sql0, [...p0])
  const a = (performance.now() - t) / 5
  // accessible ids via the same params (user id positions)
  const t2 = performance.now()
  let plan = ''
  for (let i = 0; i < 5; i++) {
    const ids = (
      await pool.query(
        `select array(${accSql.replace(/\$(\d+)/g, (_, n) => `$${Number(n) - 1}`)}) as ids`,
        p0.slice(1, -2),
      )
    ).rows[0].ids
    await pool.query(variant, [q, ids, 'ffffffff-ffff-ffff-ffff-ffffffffffff', 25])
    if (i === 4)
      plan = (
        await pool.query('explain (analyze) ' + variant, [
          q,
          ids,
          'ffffffff-ffff-ffff-ffff-ffffffffffff',
          25,
        ])
      ).rows
        .map((r) => r['QUERY PLAN'])
        .join('\n')
  }
  const b = (performance.now() - t2) / 5
  console.log(`${q}: current ${a.toFixed(1)} ms; two-step ${b.toFixed(1)} ms`)
  if (verbose) console.log(plan)
}
await pool.end()
