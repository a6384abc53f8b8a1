import pg from 'pg'
import { runMigrations } from '/work/wt-i13/src/migrations/index.ts'
const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL })
await admin.connect()
await admin.query('DROP DATABASE IF EXISTS i13dbg WITH (FORCE)')
await admin.query('CREATE DATABASE i13dbg')
const pool = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/i13dbg', max: 4 })
const t = setTimeout(async () => { console.log((await admin.query("select pid, state, backend_xmin, wait_event_type, wait_event, left(query,80) q from pg_stat_activity where datname='i13dbg'")).rows); process.exit(1) }, 8000)
console.log(await runMigrations(pool, { directory: '/work/wt-i13/test/migrations/fixtures/basic', logger: console }))
clearTimeout(t)
await pool.end(); await admin.end()
