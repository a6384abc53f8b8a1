/**
 * How long migration 0003 takes on a 0.1.0 database (issue 14):
 *
 *   node bench/scenarios/backfill.ts [--messages 1000000] [--channels 1000]
 *
 * Makes a blank scratch database, applies the migrations before 0003, loads
 * `--messages` 0.1.0 messages (ids in random time order) over `--channels`
 * channels, then applies 0003 while one writer keeps inserting, and reports
 * the total time, the longest a single INSERT of that writer waited (what the
 * migration's locks cost a live app), and the rows the writer got in.
 */
import { randomBytes } from 'node:crypto'
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { adminUrl } from '../../scripts/scratch-database.ts'
import { defaultMigrationsDirectory, runMigrations } from '../../src/migrations/index.ts'

const argv = process.argv.slice(2)
const option = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const MESSAGES = Number(option('--messages') ?? 1_000_000)
const CHANNELS = Number(option('--channels') ?? 1000)
const log = (msg: string) => process.stderr.write(`[bench:backfill] ${msg}\n`)

const admin = new pg.Client({ connectionString: adminUrl() })
await admin.connect()
const name = `gs_backfill_${randomBytes(4).toString('hex')}`
await admin.query(`create database ${name}`)
const url = new URL(adminUrl())
url.pathname = `/${name}`
const pool = new pg.Pool({ connectionString: url.toString(), max: 4 })
pool.on('error', () => {})
const dir = await mkdtemp(join(tmpdir(), 'gs-backfill-'))
try {
  const files = (await readdir(defaultMigrationsDirectory())).filter((f) => f.endsWith('.sql'))
  for (const f of files.filter((f) => Number(f.slice(0, 4)) < 3)) {
    await copyFile(join(defaultMigrationsDirectory(), f), join(dir, f))
  }
  await runMigrations(pool, { directory: dir })
  const q = async (text: string, values: unknown[] = []) => (await pool.query(text, values)).rows
  const [user] = await q(`insert into users (username) values ('backfill') returning id`)
  const [guild] = await q(`insert into guilds (name, owner_id) values ('g', $1) returning id`, [
    user.id,
  ])
  await q(
    `insert into channels (guild_id, name) select $1, 'c' || g from generate_series(1, $2::int) g`,
    [guild.id, CHANNELS],
  )
  const t0 = performance.now()
  // ids: a random millisecond within a day, so id order is not insertion order
  await q(
    `with ch as (select array_agg(id) as ids from channels)
     insert into messages (id, channel_id, author_id, content, deleted_at)
     select (lpad(to_hex((extract(epoch from now()) * 1000)::bigint - 86400000 + (random() * 86400000)::bigint), 12, '0')
             || '7' || substr(md5(g::text), 1, 3) || 'a' || substr(md5(g::text), 4, 15))::uuid,
       ch.ids[1 + g % $3::int], $1, 'message ' || g, case when g % 20 = 0 then now() end
     from ch cross join generate_series(1, $2::int) g`,
    [user.id, MESSAGES, CHANNELS],
  )
  await q('vacuum analyze')
  log(`loaded ${MESSAGES} messages in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

  await copyFile(
    join(defaultMigrationsDirectory(), '0003_message_positions_read_state.sql'),
    join(dir, '0003_message_positions_read_state.sql'),
  )
  const [channel] = await q('select id from channels limit 1')
  let migrating = true
  let worst = 0
  let inserted = 0
  const writer = (async () => {
    while (migrating) {
      const t = performance.now()
      await pool.query(
        `insert into messages (channel_id, author_id, content) values ($1, $2, 'live')`,
        [channel.id, user.id],
      )
      worst = Math.max(worst, performance.now() - t)
      inserted++
    }
  })()
  const t1 = performance.now()
  await runMigrations(pool, { directory: dir })
  const seconds = (performance.now() - t1) / 1000
  migrating = false
  await writer
  const [check] = await q('select count(*)::int as n, count(seq)::int as with_seq from messages')
  process.stdout.write(
    `| ${MESSAGES.toLocaleString('en')} messages, ${CHANNELS} channels | ${seconds.toFixed(1)} s | ${worst.toFixed(0)} ms | ${inserted} | ${check.n === check.with_seq ? 'all numbered' : 'MISSING'} |\n`,
  )
} finally {
  await pool.end()
  await rm(dir, { recursive: true, force: true })
  await admin.query(`drop database if exists ${name} with (force)`)
  await admin.end()
}
