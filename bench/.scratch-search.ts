import pg from 'pg'
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
]
for (const q of qs) {
  const cap = await captureSql(pool, (db) =>
    searchMessages(db, { user_id: info.member_id, query: q, limit: 25 }),
  )
  const c = cap[0]!
  const t = performance.now()
  for (let i = 0; i < 5; i++) await pool.query(c.sql, [...c.parameters])
  const ms = (performance.now() - t) / 5
  const plan = (await pool.query('explain (analyze, buffers) ' + c.sql, [...c.parameters])).rows
    .map((r) => r['QUERY PLAN'])
    .join('\n')
  const n = (
    await pool.query(
      "select count(*) from messages where search @@ websearch_to_tsquery('simple', $1)",
      [q],
    )
  ).rows[0].count
  console.log(
    `=== ${q}: ${ms.toFixed(1)} ms, total hits ${n}\n${process.argv.includes('-v') ? plan : plan.split('\n').slice(-3).join('\n')}`,
  )
}
await pool.end()
