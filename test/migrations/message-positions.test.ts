/**
 * Migration 0003 on a 0.1.0 database: positions back-filled in id order (in
 * several batches), below every message written while it runs; seq NOT NULL;
 * the history index; DM read markers carried over; idempotent when re-run.
 */
import { randomBytes } from 'node:crypto'
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createDb,
  createMessage,
  createPool,
  listChannelMessages,
  listDmChannels,
  runMigrations,
} from '../../src/index.ts'
import { defaultMigrationsDirectory } from '../../src/migrations/index.ts'
import { until } from '../support/race.ts'
import { createFreshDatabase, type FreshDatabase } from './fixtures/database.ts'

const OLD_MESSAGES = 23_456 // three batches of 10 000

/** A UUIDv7 at `ms` (random bits after it). */
function idAt(ms: number): string {
  const r = randomBytes(10).toString('hex')
  const ts = ms.toString(16).padStart(12, '0')
  return `${ts.slice(0, 8)}-${ts.slice(8)}-7${r.slice(0, 3)}-a${r.slice(4, 7)}-${r.slice(7, 19)}`
}

describe('migration 0003 (message positions) on a 0.1.0 database', () => {
  let fresh: FreshDatabase
  let dir: string
  beforeEach(async () => {
    fresh = await createFreshDatabase()
    dir = await mkdtemp(join(tmpdir(), 'gs-0003-'))
  })
  afterEach(async () => {
    await fresh.drop()
    await rm(dir, { recursive: true, force: true })
  })

  it('back-fills positions in id order, in batches, while writers keep posting (one held mid-migration)', async () => {
    const all = (await readdir(defaultMigrationsDirectory())).filter((f) => f.endsWith('.sql'))
    const version = (f: string) => Number(f.slice(0, 4))
    for (const f of all.filter((f) => version(f) < 3)) {
      await copyFile(join(defaultMigrationsDirectory(), f), join(dir, f))
    }
    const pool = fresh.pool()
    await runMigrations(pool, { directory: dir })
    const q = fresh.query

    // ---- a 0.1.0 world ------------------------------------------------------
    const [u1, u2] = (
      await q<{ id: string }>(
        `insert into users (username) values ('alpha_${randomBytes(3).toString('hex')}'), ('beta_${randomBytes(3).toString('hex')}') returning id`,
      )
    ).map((r) => r.id) as [string, string]
    const [guild] = await q<{ id: string }>(
      `insert into guilds (name, owner_id) values ('g', $1) returning id`,
      [u1],
    )
    const chans = await q<{ id: string }>(
      `insert into channels (guild_id, name) values ($1, 'a'), ($1, 'b') returning id`,
      [guild?.id],
    )
    const [dm] = await q<{ id: string }>(`insert into channels (type) values ('dm') returning id`)
    const [a, b] = u1 < u2 ? [u1, u2] : [u2, u1]
    await q(`insert into dm_channels (id, user_a, user_b) values ($1, $2, $3)`, [dm?.id, a, b])
    await q(`insert into dm_participants (channel_id, user_id) values ($1, $2), ($1, $3)`, [
      dm?.id,
      a,
      b,
    ])
    const channelIds = [...chans.map((c) => c.id), dm?.id as string]
    // Ids in random time order, inserted in another order: the back-fill must follow ids.
    const base = Date.now() - 86_400_000
    const rows = Array.from({ length: OLD_MESSAGES }, (_, i) => ({
      id: idAt(base + Math.floor(Math.random() * 3_600_000)),
      channel_id: channelIds[i % 3] as string,
      deleted: i % 10 === 0,
    }))
    await q(
      `insert into messages (id, channel_id, author_id, content, deleted_at)
       select x.id, x.channel_id, $3, 'old', case when x.deleted then now() end
       from unnest($1::uuid[], $2::uuid[], $4::boolean[]) as x(id, channel_id, deleted)`,
      [rows.map((r) => r.id), rows.map((r) => r.channel_id), u2, rows.map((r) => r.deleted)],
    )
    // u1 read the DM up to its 100th message (by id)
    const dmIds = rows
      .filter((r) => r.channel_id === dm?.id)
      .map((r) => r.id)
      .sort()
    const marked = dmIds[99] as string
    await q(`update dm_participants set last_read_message_id = $1 where user_id = $2`, [marked, u1])

    // ---- migrate while a 0.1.0 writer keeps posting ------------------------
    await copyFile(
      join(defaultMigrationsDirectory(), '0003_message_positions_read_state.sql'),
      join(dir, '0003_message_positions_read_state.sql'),
    )
    const writer = fresh.pool()
    let migrating = true
    const written: string[] = []
    const writing = (async () => {
      let i = 0
      while (migrating || i < 5) {
        const [m] = (
          await writer.query<{ id: string }>(
            `insert into messages (channel_id, author_id, content) values ($1, $2, 'during') returning id`,
            [chans[0]?.id, u1],
          )
        ).rows
        written.push(m?.id as string)
        i++
      }
    })()
    // A barrier holds dm_participants: the migration stops at its LOCK TABLE of
    // it, after the numbering trigger exists and before the back-fill, and a
    // write lands there, provably during the migration.
    const barrier = await fresh.pool().connect()
    let applied: Awaited<ReturnType<typeof runMigrations>>['applied']
    let ms: number
    let held: { id: string; seq: string | null }
    let unnumbered: number
    try {
      await barrier.query('begin')
      await barrier.query('lock table dm_participants in access share mode')
      const started = performance.now()
      let finished = false
      const migration = runMigrations(pool, { directory: dir }).finally(() => {
        finished = true
      })
      await until(
        async () =>
          (
            await barrier.query<{ n: number }>(
              `select count(*)::int as n from pg_locks
                where relation = 'dm_participants'::regclass and mode = 'AccessExclusiveLock' and not granted`,
            )
          ).rows[0]!.n === 1,
        'the migration to wait for dm_participants',
      )
      ;[held] = (
        await writer.query<{ id: string; seq: string | null }>(
          `insert into messages (channel_id, author_id, content) values ($1, $2, 'held') returning id, seq::text as seq`,
          [chans[0]?.id, u1],
        )
      ).rows as [{ id: string; seq: string | null }]
      unnumbered = (
        await barrier.query<{ n: number }>(
          'select count(*)::int as n from messages where seq is null',
        )
      ).rows[0]!.n
      expect(finished).toBe(false)
      await barrier.query('commit')
      ;({ applied } = await migration)
      ms = performance.now() - started
    } finally {
      barrier.release()
    }
    migrating = false
    await writing
    expect(applied.map((m) => m.version)).toContain(3)
    expect(written.length).toBeGreaterThanOrEqual(5)
    // The held write was numbered by the new trigger from 1 up, while the
    // 0.1.0 messages still waited for their back-fill.
    expect(BigInt(held.seq ?? '0')).toBeGreaterThanOrEqual(1n)
    expect(unnumbered).toBeGreaterThanOrEqual(OLD_MESSAGES)
    written.push(held.id)

    // ---- positions ---------------------------------------------------------
    const [col] = await q<{ attnotnull: boolean }>(
      `select attnotnull from pg_attribute where attrelid = 'messages'::regclass and attname = 'seq'`,
    )
    expect(col?.attnotnull).toBe(true)
    const [index] = await q<{ valid: boolean }>(
      `select i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid
       where c.relname = 'messages_channel_id_seq_live_idx'`,
    )
    expect(index?.valid).toBe(true)
    const duringIds = new Set(written)
    for (const channel of channelIds) {
      const got = await q<{ id: string; seq: string }>(
        `select m.id, m.seq::text as seq from messages m where m.channel_id = $1 order by m.seq`,
        [channel],
      )
      const seqs = got.map((r) => BigInt(r.seq))
      expect(new Set(seqs).size).toBe(seqs.length) // no duplicate position
      const old = got.filter((r) => !duringIds.has(r.id))
      // the 0.1.0 messages: positions ≤ 0, in id order
      const oldIds = rows.filter((r) => r.channel_id === channel).map((r) => r.id)
      const sortedOld = [...oldIds].sort()
      const bad = old.findIndex((r, k) => r.id !== sortedOld[k])
      expect(
        bad,
        JSON.stringify([
          bad,
          old.slice(Math.max(0, bad - 2), bad + 3),
          sortedOld.slice(Math.max(0, bad - 2), bad + 3),
        ]),
      ).toBe(-1)
      expect(old.every((r) => BigInt(r.seq) <= 0n)).toBe(true)
      // each message written during the migration: after every 0.1.0 message
      const firstDuring = got.findIndex((r) => duringIds.has(r.id))
      if (firstDuring >= 0) {
        expect(got.slice(firstDuring).every((r) => duringIds.has(r.id))).toBe(true)
      }
    }

    // ---- the library on the migrated database ------------------------------
    const libPool = createPool({ connectionString: fresh.url, max: 2 })
    const db = createDb(libPool)
    const next = await createMessage(db, {
      channel_id: chans[0]?.id as string,
      author_id: u1,
      content: 'new',
    })
    const [max] = await q<{ max: string }>(
      `select max(seq)::text as max from messages where channel_id = $1 and id <> $2`,
      [chans[0]?.id, next.id],
    )
    expect(next.seq).toBe(BigInt(max?.max as string) + 1n)
    const page = await listChannelMessages(db, chans[1]?.id as string, { limit: 100 })
    const liveB = rows
      .filter((r) => r.channel_id === chans[1]?.id && !r.deleted)
      .map((r) => r.id)
      .sort()
      .reverse()
    expect(page.map((m) => m.id)).toEqual(liveB.slice(0, 100))
    // the DM marker came along: unread = live messages of the other user after it
    const liveDmAfter = rows.filter(
      (r) => r.channel_id === dm?.id && !r.deleted && r.id > marked,
    ).length
    const [entry] = await listDmChannels(db, u1)
    expect(entry?.unread_count).toBe(Math.min(liveDmAfter, 100))
    const [state] = await q<{ last_read_message_id: string }>(
      `select last_read_message_id from channel_read_states where user_id = $1`,
      [u1],
    )
    expect(state?.last_read_message_id).toBe(marked)

    // ---- re-running the file changes nothing --------------------------------
    const before = await q(`select id, seq::text from messages order by id`)
    const text = await readFile(join(dir, '0003_message_positions_read_state.sql'), 'utf8')
    await q(text)
    expect(await q(`select id, seq::text from messages order by id`)).toEqual(before)
    await libPool.end()
    if (process.env.GUILDSTORE_TEST_VERBOSE) {
      console.error({ rows: OLD_MESSAGES, ms: Math.round(ms), writtenDuring: written.length })
    }
  }, 120_000)
})
