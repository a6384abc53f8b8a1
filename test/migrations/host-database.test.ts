/**
 * guildstore inside a host's database (issue 13): two migration sets in one run, guildstore
 * in a schema of its own next to the host's users/sessions/messages, a 0.1.0 history upgraded
 * in place, a DML-only application role, and a lock that cannot outlive its runner.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createDb,
  createPool,
  defaultMigrationsDirectory,
  deleteUser,
  InvalidInputError,
  MIGRATION_LOCK_KEY,
  MigrationFileError,
  migrationStatus,
  readMigrationFiles,
  runMigrations,
} from '../../src/index.ts'
import { testDatabaseUrl } from '../support/env.ts'
import {
  copyFixture,
  createFreshDatabase,
  emptyDir,
  type FreshDatabase,
  fixtureDir,
} from './fixtures/database.ts'
import { chatScenario } from './fixtures/scenario.ts'

const hostTables = join(fixtureDir('.'), 'host-tables.sql')
const hostChat = fixtureDir('host-chat')

/** Where each named relation lives: `schema.name`, or null. */
async function whereIs(db: FreshDatabase, names: string[]): Promise<Record<string, string[]>> {
  const rows = await db.query<{ relname: string; nspname: string }>(
    `SELECT c.relname, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = ANY($1) AND c.relkind = 'r' ORDER BY n.nspname`,
    [names],
  )
  const out: Record<string, string[]> = {}
  for (const r of rows) {
    out[r.relname] = [...(out[r.relname] ?? []), r.nspname]
  }
  return out
}

describe('two migration sets, guildstore in a schema of its own', () => {
  let db: FreshDatabase
  beforeEach(async () => {
    db = await createFreshDatabase()
  })
  afterEach(async () => {
    await db.drop()
  })

  it("applies guildstore's set into the schema, then the host's (FKs to <schema>.guilds), in one run; both tracked apart", async () => {
    await db.query(await readFile(hostTables, 'utf8'))
    const pool = db.pool()
    const guildstoreFiles = await readMigrationFiles(defaultMigrationsDirectory())
    const lines: string[] = []
    const { applied } = await runMigrations(pool, {
      schema: 'chat',
      hostDirectory: hostChat,
      logger: { info: (m) => lines.push(m) },
    })
    expect(applied.map((m) => `${m.set}/${m.file}`)).toEqual([
      ...guildstoreFiles.map((f) => `guildstore/${f.file}`),
      'host/0001_guild_banners.sql',
      'host/0002_profile_links.sql',
    ])
    expect(lines.at(-1)).toMatch(/^applied host 0002_profile_links\.sql/)
    // Both sets have a version 1: tracked apart, nothing "changed".
    const status = await migrationStatus(pool, { schema: 'chat', hostDirectory: hostChat })
    expect(status.map((m) => m.state).every((s) => s === 'applied')).toBe(true)
    expect(status.filter((m) => m.version === 1).map((m) => m.set)).toEqual(['guildstore', 'host'])
    expect(
      await db.query(
        'SELECT set_name, version FROM chat.guildstore_migrations ORDER BY set_name, version',
      ),
    ).toEqual([
      ...guildstoreFiles.map((f) => ({ set_name: 'guildstore', version: f.version })),
      { set_name: 'host', version: 1 },
      { set_name: 'host', version: 2 },
    ])
    // guildstore's tables, types, functions and history are in chat; the host's stay in public.
    expect(
      await whereIs(db, [
        'users',
        'sessions',
        'messages',
        'guilds',
        'guild_banners',
        'guildstore_migrations',
      ]),
    ).toEqual({
      users: ['chat', 'public'],
      sessions: ['chat', 'public'],
      messages: ['chat', 'public'],
      guilds: ['chat'],
      guild_banners: ['public'],
      guildstore_migrations: ['chat'],
    })
    expect(
      await db.query(
        `SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE p.proname = 'guildstore_uuidv7'`,
      ),
    ).toEqual([{ nspname: 'chat' }])
    expect(
      await db.query(
        `SELECT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typname = 'user_status'`,
      ),
    ).toEqual([{ nspname: 'chat' }])
    expect(await db.query("SELECT to_regclass('public.guildstore_migrations') AS t")).toEqual([
      { t: null },
    ])
    // Run again: nothing to do.
    expect(
      (await runMigrations(pool, { schema: 'chat', hostDirectory: hostChat })).applied,
    ).toEqual([])
  })

  it('createPool({ schema }) runs the repositories, prepared statements and search there, next to the host tables', async () => {
    await db.query(await readFile(hostTables, 'utf8'))
    const pool = createPool({ connectionString: db.url, schema: 'chat', max: 3 })
    const chat = createDb(pool)
    try {
      // Migrate through a plain connection (the host set runs with the connection's own
      // search_path, public here); the schema pool's default schema is checked below.
      await runMigrations(db.pool(), { schema: 'chat', hostDirectory: hostChat })
      expect(
        (await migrationStatus(pool, { hostDirectory: hostChat })).map((m) => m.state),
      ).toEqual(expect.arrayContaining(['applied']))
      expect(
        (await migrationStatus(pool, { hostDirectory: hostChat })).every(
          (m) => m.state === 'applied',
        ),
      ).toBe(true)
      const r = await chatScenario(chat, 'a')
      expect(r.history).toEqual(['difference engine', 'second', 'the analytical engine'])
      expect(r.hits).toEqual(['difference engine', 'the analytical engine'])
      // The rows went to chat.*; the host's own tables are untouched.
      expect(await db.query('SELECT count(*)::int AS n FROM chat.users')).toEqual([{ n: 2 }])
      expect(await db.query('SELECT email FROM public.users')).toEqual([
        { email: 'host-owner@example.test' },
      ])
      expect(await db.query('SELECT count(*)::int AS n FROM public.messages')).toEqual([{ n: 1 }])
      expect(await db.query('SELECT count(*)::int AS n FROM chat.messages')).toEqual([{ n: 4 }])
      // Host migrations reference guildstore's tables: the FK holds.
      await db.query('INSERT INTO guild_banners (guild_id, url) VALUES ($1, $2)', [
        r.guildId,
        'https://cdn.example.test/b.png',
      ])
      const fk = await db
        .query('INSERT INTO guild_banners (guild_id, url) VALUES (gen_random_uuid(), $1)', ['x'])
        .catch((e: { code?: string }) => e.code)
      expect(fk).toBe('23503')
      // A host connection with its own search_path (public) deletes a guildstore user: the
      // DM trigger (guildstore_delete_dm_channel, unqualified `channels` in 0001) still
      // finds chat.channels, because the runner pinned its search_path.
      await db.query('DELETE FROM chat.users WHERE id = $1', [r.guestId])
      expect(
        await db.query('SELECT count(*)::int AS n FROM chat.channels WHERE id = $1', [
          r.dmChannelId,
        ]),
      ).toEqual([{ n: 0 }])
      expect(await deleteUser(chat, r.ownerId)).toBe(true)
      expect(await db.query('SELECT count(*)::int AS n FROM guild_banners')).toEqual([{ n: 0 }])
    } finally {
      await chat.destroy()
    }
  })

  it("runs guildstore's no-transaction files (CREATE INDEX CONCURRENTLY) in the schema too", async () => {
    const { applied } = await runMigrations(db.pool(), {
      directory: fixtureDir('basic'),
      schema: 'chat',
    })
    expect(applied.map((m) => m.file)).toContain('0010_widgets_label_index.sql')
    expect(
      await db.query(
        `SELECT n.nspname, i.indisvalid AS valid FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relname = 'widgets_label_idx'`,
      ),
    ).toEqual([{ nspname: 'chat', valid: true }])
    expect(await db.query("SELECT to_regclass('public.widgets') AS t")).toEqual([{ t: null }])
  })

  it("refuses guildstore's own directory as the host set, before touching the database", async () => {
    const error = await runMigrations(db.pool(), {
      hostDirectory: defaultMigrationsDirectory(),
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MigrationFileError)
    expect((error as Error).message).toContain("guildstore's own set")
    expect(await db.query("SELECT to_regclass('public.guildstore_migrations') AS t")).toEqual([
      { t: null },
    ])
  })

  it('refuses an invalid schema name before touching the database', async () => {
    for (const schema of [
      'Chat',
      'a-b',
      'pg_chat',
      '"x"',
      '',
      'x'.repeat(64),
      'information_schema',
    ]) {
      const error = await runMigrations(db.pool(), { schema }).catch((e: unknown) => e)
      expect(error, schema).toBeInstanceOf(InvalidInputError)
      expect(() => createPool({ connectionString: db.url, schema })).toThrow(InvalidInputError)
    }
    expect(
      await db.query(
        "SELECT count(*)::int AS n FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' AND nspname NOT IN ('public', 'information_schema')",
      ),
    ).toEqual([{ n: 0 }])
  })

  it("upgrades a 0.1.0 history in place: 0001 stays guildstore's, a host file 0.1.0 wrote into the package becomes the host's", async () => {
    const pool = db.pool()
    const [initial] = await readMigrationFiles(defaultMigrationsDirectory())
    const host = await emptyDir()
    try {
      // The database as 0.1.0 left it: 0001 applied, plus `guildstore new add_guild_banners`
      // (written into node_modules/guildstore/migrations as 0002 and applied from there).
      const banners =
        'CREATE TABLE guild_banners (guild_id uuid PRIMARY KEY REFERENCES guilds (id));\n'
      await writeFile(join(host.dir, '0002_add_guild_banners.sql'), banners)
      const [bannerFile] = await readMigrationFiles(host.dir)
      await db.query(initial!.sql)
      await db.query(`CREATE TABLE public.guildstore_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  duration_ms integer NOT NULL
)`)
      await db.query(banners)
      await db.query(
        `INSERT INTO public.guildstore_migrations (version, name, checksum, duration_ms)
         VALUES (1, 'initial_schema', $1, 5), (2, 'add_guild_banners', $2, 1)`,
        [initial!.checksum, bannerFile!.checksum],
      )
      await db.query("INSERT INTO users (username) VALUES ('kept_from_010')")

      // status reads the old table without changing it
      const before = await migrationStatus(pool, { hostDirectory: host.dir })
      expect(before.find((m) => m.set === 'guildstore' && m.version === 1)?.state).toBe('applied')
      expect(before.find((m) => m.set === 'host')).toMatchObject({
        version: 2,
        state: 'applied',
      })
      const { applied } = await runMigrations(pool, { hostDirectory: host.dir })
      expect(applied.every((m) => m.set === 'guildstore' && m.version > 1)).toBe(true)
      expect(
        await db.query(
          'SELECT set_name, version, name FROM public.guildstore_migrations WHERE version <= 2 ORDER BY set_name, version',
        ),
      ).toEqual([
        { set_name: 'guildstore', version: 1, name: 'initial_schema' },
        ...(applied.some((m) => m.version === 2)
          ? [
              {
                set_name: 'guildstore',
                version: 2,
                name: applied.find((m) => m.version === 2)!.name,
              },
            ]
          : []),
        { set_name: 'host', version: 2, name: 'add_guild_banners' },
      ])
      expect(
        await db.query(
          `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint
            WHERE conrelid = 'public.guildstore_migrations'::regclass AND contype = 'p'`,
        ),
      ).toEqual([{ def: 'PRIMARY KEY (set_name, version)' }])
      const after = await migrationStatus(pool, { hostDirectory: host.dir })
      expect(after.every((m) => m.state === 'applied')).toBe(true)
      expect(await db.query('SELECT username FROM users')).toEqual([{ username: 'kept_from_010' }])
    } finally {
      await host.remove()
    }
  })

  it('the host set has its own checksums and missing-file checks', async () => {
    const host = await copyFixture('basic')
    try {
      const pool = db.pool()
      await runMigrations(pool, { hostDirectory: host.dir })
      await writeFile(join(host.dir, '0002_add_widget_color.sql'), '-- edited\n')
      const status = await migrationStatus(pool, { hostDirectory: host.dir })
      expect(
        status.filter((m) => m.state !== 'applied').map((m) => `${m.set}/${m.file}:${m.state}`),
      ).toEqual(['host/0002_add_widget_color.sql:changed'])
      // Without the host directory, only guildstore's set is checked: the host's rows are not "missing".
      expect(
        (await migrationStatus(pool)).every((m) => m.set === 'guildstore' && m.state === 'applied'),
      ).toBe(true)
    } finally {
      await host.remove()
    }
  })
})

describe('a two-role setup: the application role has only DML rights', () => {
  let db: FreshDatabase
  const role = `gs_app_${Math.random().toString(36).slice(2, 10)}`
  beforeEach(async () => {
    db = await createFreshDatabase()
  })
  afterEach(async () => {
    await db.drop()
    const admin = new pg.Client({ connectionString: testDatabaseUrl() })
    await admin.connect()
    try {
      await admin.query(`DROP ROLE IF EXISTS ${admin.escapeIdentifier(role)}`)
    } finally {
      await admin.end()
    }
  })

  it('migrates as the owner, runs the consumer scenario as a DML-only role, which cannot run DDL', async () => {
    await db.query(await readFile(hostTables, 'utf8'))
    // The migrating role (the test's superuser here) installs; the grants of docs/host-database.md.
    await runMigrations(db.pool(), { schema: 'chat', hostDirectory: hostChat })
    const id = (s: string) => `"${s}"`
    await db.query(`CREATE ROLE ${id(role)} LOGIN`)
    await db.query(`REVOKE ALL ON DATABASE ${id(db.name)} FROM PUBLIC`)
    await db.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
    await db.query(`GRANT CONNECT ON DATABASE ${id(db.name)} TO ${id(role)}`)
    await db.query(`GRANT USAGE ON SCHEMA chat TO ${id(role)}`)
    await db.query(
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA chat TO ${id(role)}`,
    )
    await db.query(
      `ALTER DEFAULT PRIVILEGES IN SCHEMA chat GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${id(role)}`,
    )
    const url = new URL(db.url)
    url.username = role
    const pool = createPool({ connectionString: url.toString(), schema: 'chat', max: 2 })
    const app = createDb(pool)
    try {
      const rights = await pool.query<{
        create_db: boolean
        create_chat: boolean
        create_public: boolean
      }>(
        `SELECT has_database_privilege(current_database(), 'CREATE') AS create_db,
                has_schema_privilege('chat', 'CREATE') AS create_chat,
                has_schema_privilege('public', 'CREATE') AS create_public`,
      )
      expect(rights.rows[0]).toEqual({ create_db: false, create_chat: false, create_public: false })
      const ddl = await pool
        .query('CREATE TABLE chat.nope (id int)')
        .catch((e: { code?: string }) => e.code)
      expect(ddl).toBe('42501')
      const r = await chatScenario(app, 'dml')
      expect(r.history).toEqual(['difference engine', 'second', 'the analytical engine'])
      expect(r.hits).toEqual(['difference engine', 'the analytical engine'])
      expect(await deleteUser(app, r.guestId)).toBe(true) // DM trigger runs under the app role too
      expect(
        await db.query('SELECT count(*)::int AS n FROM chat.channels WHERE id = $1', [
          r.dmChannelId,
        ]),
      ).toEqual([{ n: 0 }])
      // status needs only read access; migrate (DDL) is the owner's job
      const status = await migrationStatus(pool, { hostDirectory: hostChat })
      expect(status.length).toBeGreaterThan(2)
      expect(status.every((m) => m.state === 'applied')).toBe(true)
    } finally {
      await app.destroy()
    }
  })
})

describe('the migration lock through a transaction-mode pooler', () => {
  let db: FreshDatabase
  beforeEach(async () => {
    db = await createFreshDatabase()
  })
  afterEach(async () => {
    await db.drop()
  })

  it('is a transaction-level lock held by an open transaction without a snapshot, never a session lock', async () => {
    const host = await emptyDir()
    const barrier = await db.pool().connect()
    try {
      // A barrier instead of a sleep: the host file waits for a lock the test holds.
      await barrier.query('SELECT pg_advisory_lock(424242)')
      await writeFile(join(host.dir, '0001_barrier.sql'), 'SELECT pg_advisory_xact_lock(424242);\n')
      const running = runMigrations(db.pool(), { hostDirectory: host.dir })
      let waiting = false
      for (const started = Date.now(); !waiting && Date.now() - started < 60_000; ) {
        const rows = await db.query(
          `SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objid = 424242
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        )
        waiting = rows.length === 1
        if (!waiting) await new Promise((r) => setTimeout(r, 20))
      }
      expect(waiting).toBe(true)
      const holders = await db.query(
        `SELECT a.state, a.backend_xmin::text AS xmin, l.mode
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND (l.classid::bigint << 32 | l.objid::bigint) = $1::bigint`,
        [MIGRATION_LOCK_KEY],
      )
      // While the host file runs, the holder is idle *in a transaction* (so the lock is
      // transaction-scoped: it ends with that transaction, which a pooler aborts when the
      // client goes) and keeps no snapshot (a CREATE INDEX CONCURRENTLY does not wait for it).
      expect(holders).toEqual([{ state: 'idle in transaction', xmin: null, mode: 'ExclusiveLock' }])
      await barrier.query('SELECT pg_advisory_unlock(424242)')
      expect((await running).applied.at(-1)).toMatchObject({ set: 'host', version: 1 })
      expect(
        await db.query(
          `SELECT count(*)::int AS n FROM pg_locks l WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        ),
      ).toEqual([{ n: 0 }])
    } finally {
      barrier.release(true)
      await host.remove()
    }
  })
})
