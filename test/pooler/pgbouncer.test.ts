/**
 * The repository API through PgBouncer (Debian's 1.18) in transaction mode,
 * started by this file on a spare loopback port in front of the shared
 * PostgreSQL: with `preparedStatements: false` the core scenarios of the
 * repository suite pass (transactions, concurrent get-or-create, keyset pages,
 * search, permissions), with more clients than server connections. Migrations
 * run through the pooler too (see the last test for what is guaranteed).
 */
import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  acceptFriendRequest,
  addChannelMember,
  addGuildMember,
  assignRole,
  blockUser,
  ConflictError,
  canAccessChannel,
  computePermissions,
  createAttachment,
  createChannel,
  createDb,
  createGuild,
  createMessage,
  createPool,
  createRole,
  createSession,
  createUser,
  type DB,
  deleteMessage,
  ForeignKeyViolationError,
  findMessageById,
  findOrCreateDmChannel,
  findSessionByTokenHash,
  findUserByEmail,
  findUserByUsername,
  findUserCredentials,
  hashToken,
  isBlocked,
  listAttachmentsByMessageIds,
  listChannelMessages,
  listDmChannels,
  listFriends,
  listVisibleChannels,
  markDmRead,
  migrationStatus,
  newId,
  Permissions,
  runMigrations,
  searchMessages,
  sendFriendRequest,
  UniqueViolationError,
  updateMessage,
} from '../../src/index.ts'
import { MIGRATION_LOCK_KEY } from '../../src/migrations/migration-lock.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { testDatabaseUrl } from '../support/env.ts'
import { waitFor } from '../support/local-servers.ts'
import { type OwnPgBouncer, startPgBouncer } from '../support/pgbouncer.ts'
import { fulfilled, lockTables, raceAtBarrier } from '../support/race.ts'

const t = useTestDatabase()
let bouncer: OwnPgBouncer
let pool: pg.Pool
let db: Kysely<DB>

beforeAll(async () => {
  const upstream = new URL(testDatabaseUrl())
  // 3 server connections for up to 12 clients: statements of different
  // clients share server connections, as in production behind a pooler
  bouncer = await startPgBouncer(
    { host: upstream.hostname, port: Number(upstream.port || 5432) },
    { poolSize: 3 },
  )
  pool = createPool({ connectionString: bouncer.urlOf(t.name), max: 12 })
  db = createDb(pool, { preparedStatements: false })
}, 60_000)

afterAll(async () => {
  await db?.destroy()
  await bouncer?.destroy()
})

const user = (name: string) =>
  createUser(db, { username: `${name}_${newId().slice(-8)}`, email: `${newId()}@example.test` })

describe('through PgBouncer 1.18 in transaction mode (preparedStatements: false)', () => {
  it('really goes through the pooler, sharing few server connections among many clients', async () => {
    await Promise.all(Array.from({ length: 24 }, () => sql`SELECT pg_sleep(0.01)`.execute(db)))
    const pools = await bouncer.admin('SHOW POOLS')
    const mine = pools.find((p) => p.database === t.name)
    expect(mine).toBeDefined()
    expect(
      Number(mine!.sv_active) + Number(mine!.sv_idle) + Number(mine!.sv_used),
    ).toBeLessThanOrEqual(3)
    const clients = await bouncer.admin('SHOW CLIENTS')
    expect(clients.filter((c) => c.database === t.name).length).toBeGreaterThan(3)
  })

  it('users, credentials and sessions', async () => {
    const ada = await user('ada')
    expect(await findUserByUsername(db, ada.username.toUpperCase())).toEqual(ada)
    expect(await findUserByEmail(db, ada.email!)).toEqual(ada)
    expect((await findUserCredentials(db, ada.username))?.id).toBe(ada.id)
    await expect(createUser(db, { username: ada.username })).rejects.toBeInstanceOf(
      UniqueViolationError,
    )
    const token = hashToken(newId())
    const session = await createSession(db, {
      user_id: ada.id,
      token_hash: token,
      expires_at: new Date(Date.now() + 60_000),
    })
    expect(await findSessionByTokenHash(db, token)).toEqual(session)
  })

  it('guilds, roles, permissions and private channels (multi-statement transactions)', async () => {
    const owner = await user('owner')
    const member = await user('member')
    const guild = await createGuild(db, { name: 'pooled', owner_id: owner.id })
    await addGuildMember(db, { guild_id: guild.id, user_id: member.id })
    const role = await createRole(db, {
      guild_id: guild.id,
      name: 'mods',
      permissions: Permissions.MANAGE_MESSAGES,
    })
    await assignRole(db, { guild_id: guild.id, user_id: member.id, role_id: role.id })
    const perms = await computePermissions(db, { guild_id: guild.id, user_id: member.id })
    expect(perms & Permissions.MANAGE_MESSAGES).toBe(Permissions.MANAGE_MESSAGES)
    const secret = await createChannel(db, {
      guild_id: guild.id,
      name: 'secret',
      type: 'text',
      is_private: true,
    })
    expect(await canAccessChannel(db, { channel_id: secret.id, user_id: member.id })).toBe(false)
    await addChannelMember(db, { channel_id: secret.id, user_id: member.id })
    expect(await canAccessChannel(db, { channel_id: secret.id, user_id: member.id })).toBe(true)
    const visible = await listVisibleChannels(db, { guild_id: guild.id, user_id: member.id })
    expect(visible.map((c) => c.id)).toContain(secret.id)
    // a failing transaction leaves nothing behind
    const before = await countRows(t.db)
    await expect(createGuild(db, { name: 'x', owner_id: newId() })).rejects.toBeInstanceOf(
      ForeignKeyViolationError,
    )
    expect(await countRows(t.db)).toEqual(before)
  })

  it('messages: concurrent posts (3 held at a barrier), keyset pages, edits, soft deletes, attachments, search', async () => {
    const author = await user('author')
    const guild = await createGuild(db, { name: 'msgs', owner_id: author.id })
    const channel = await createChannel(db, { guild_id: guild.id, name: 'general', type: 'text' })
    // A direct connection holds messages: each of the pooler's 3 server
    // connections carries a post waiting to insert, the other 37 queue in it.
    const race = await raceAtBarrier(
      t.pool,
      lockTables('messages'),
      Array.from(
        { length: 40 },
        (_, i) => () =>
          createMessage(db, {
            channel_id: channel.id,
            author_id: author.id,
            content: `pooled ${i} zebra`,
          }),
      ),
      3,
    )
    expect(race.waiters).toBe(3)
    const posted = fulfilled(race.results)
    // newest first by position (commit order), pages without gaps or overlaps
    const first = await listChannelMessages(db, channel.id, { limit: 25 })
    const second = await listChannelMessages(db, channel.id, {
      limit: 25,
      before: first.at(-1)!.id,
    })
    const paged = [...first, ...second]
    expect(paged.map((m) => m.id).sort()).toEqual(posted.map((m) => m.id).sort())
    const positions = paged.map((m) => BigInt((m as { seq?: bigint | string }).seq ?? 0))
    expect(positions).toEqual([...positions].sort((x, y) => (x > y ? -1 : x < y ? 1 : 0)))
    expect(new Set(positions).size).toBe(40)
    const edited = await updateMessage(db, posted[0]!.id, { content: 'edited zebra' })
    expect(edited?.edited_at).toBeInstanceOf(Date)
    expect(await deleteMessage(db, posted[1]!.id)).toBe(true)
    expect(await findMessageById(db, posted[1]!.id)).toBeUndefined()
    const attachment = await createAttachment(db, {
      message_id: posted[2]!.id,
      filename: 'a.png',
      s3_key: `k/${newId()}`,
      size: 10,
    })
    expect(await listAttachmentsByMessageIds(db, [posted[2]!.id])).toEqual([attachment])
    const found = await searchMessages(db, { user_id: author.id, query: 'zebra', limit: 100 })
    expect(found).toHaveLength(39)
  })

  it('DMs and friendships: 20 get-or-create calls (3 held at a barrier) make one channel; blocks refuse', async () => {
    const a = await user('a')
    const b = await user('b')
    // A direct connection holds dm_channels: the pooler's 3 server connections
    // each carry a call waiting to insert, the other 17 queue in the pooler.
    const race = await raceAtBarrier(
      t.pool,
      lockTables('dm_channels'),
      Array.from(
        { length: 20 },
        (_, i) => () =>
          findOrCreateDmChannel(
            db,
            i % 2 ? { user_id: a.id, other_user_id: b.id } : { user_id: b.id, other_user_id: a.id },
          ),
      ),
      3,
    )
    expect(race.waiters).toBe(3)
    const results = fulfilled(race.results)
    expect(new Set(results.map((r) => r.channel.id)).size).toBe(1)
    expect(results.filter((r) => r.created)).toHaveLength(1)
    const channel = results[0]!.channel
    const m = await createMessage(db, { channel_id: channel.id, author_id: a.id, content: 'hi' })
    expect((await listDmChannels(db, b.id))[0]?.unread_count).toBe(1)
    await markDmRead(db, { channel_id: channel.id, user_id: b.id, message_id: m.id })
    expect((await listDmChannels(db, b.id))[0]?.unread_count).toBe(0)
    await sendFriendRequest(db, { from_user_id: a.id, to_user_id: b.id })
    await acceptFriendRequest(db, { user_id: b.id, requester_id: a.id })
    expect((await listFriends(db, a.id)).map((u) => u.id)).toEqual([b.id])
    const c = await user('c')
    await blockUser(db, { user_id: c.id, blocked_user_id: a.id })
    expect(await isBlocked(db, { user_id: a.id, other_user_id: c.id })).toBe(true)
    await expect(
      findOrCreateDmChannel(db, { user_id: a.id, other_user_id: c.id }),
    ).rejects.toBeInstanceOf(ConflictError)
  })

  it('migrations through the pooler apply every file once on a fresh database', async () => {
    const name = `gs_pooler_mig_${newId().replaceAll('-', '').slice(-12)}`
    const admin = new pg.Client({ connectionString: testDatabaseUrl() })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${name}`)
    const pooled = createPool({ connectionString: bouncer.urlOf(name), max: 4 })
    try {
      const { applied } = await runMigrations(pooled)
      expect(applied.length).toBeGreaterThan(0)
      const status = await migrationStatus(pooled)
      expect(status.every((m) => m.state === 'applied')).toBe(true)
      // a second run through the pooler finds nothing to do
      expect((await runMigrations(pooled)).applied).toEqual([])
      // what the pooler leaves on its server connections after the runs
      const held = await admin.query(
        `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
          WHERE l.locktype = 'advisory' AND d.datname = $1`,
        [name],
      )
      expect(held.rows[0].n).toBe(0)
    } finally {
      await pooled.end()
      await bouncer.admin(`KILL ${name}`).catch(() => {})
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin.end()
    }
  })

  it('concurrent runners through the pooler apply each file exactly once and leave no lock held', async () => {
    // 0.1.0's session-level lock was unsafe here: two of three runners failed with
    // duplicate-object errors and one advisory lock stayed on a server connection.
    const name = `gs_pooler_conc_${newId().replaceAll('-', '').slice(-12)}`
    const admin = new pg.Client({ connectionString: testDatabaseUrl() })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${name}`)
    const runners = Array.from({ length: 3 }, () =>
      createPool({ connectionString: bouncer.urlOf(name), max: 2 }),
    )
    try {
      const waits: string[] = []
      const logger = {
        info: (message: string) => {
          if (message.includes('waiting for the migration lock')) waits.push(message)
        },
        warn: () => {},
      }
      // Hold the run lock first (directly on the server), so that all three runners
      // are waiting on it together before any of them may start: a real overlap.
      const holder = new pg.Client({
        connectionString: testDatabaseUrl().replace(/\/[^/]*$/, `/${name}`),
      })
      await holder.connect()
      await holder.query('BEGIN')
      await holder.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY])
      const running = Promise.allSettled(runners.map((p) => runMigrations(p, { logger })))
      await waitFor(() => waits.length >= 3, 30_000, 20)
      await holder.query('COMMIT')
      await holder.end()
      const outcomes = await running
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled'])
      const applied = outcomes.flatMap((o) =>
        o.status === 'fulfilled' ? o.value.applied.map((m) => m.name) : [],
      )
      const status = await migrationStatus(runners[0]!)
      expect(status.every((m) => m.state === 'applied')).toBe(true)
      // every file once, by exactly one of the runners
      expect([...applied].sort()).toEqual(status.map((m) => m.name).sort())
      const held = await admin.query(
        `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
          WHERE l.locktype = 'advisory' AND d.datname = $1`,
        [name],
      )
      expect(held.rows[0].n).toBe(0)
    } finally {
      for (const p of runners) await p.end()
      await bouncer.admin(`KILL ${name}`).catch(() => {})
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin.end()
    }
  })
})
