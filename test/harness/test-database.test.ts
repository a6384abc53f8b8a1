import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { createGuild, createUser, GuildstoreError } from '../../src/index.ts'
import { createTestDatabase, ensureTemplateDatabase } from '../../src/testing/index.ts'
import { templateDatabase, testDatabaseUrl } from '../support/env.ts'

async function databaseExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: testDatabaseUrl() })
  await client.connect()
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    return rowCount === 1
  } finally {
    await client.end()
  }
}

describe('createTestDatabase', () => {
  it('clones a migrated database, applies fixtures in order, and drops it', async () => {
    const dir = tmpdir()
    const first = join(dir, `gs-fixture-a-${process.pid}.sql`)
    const second = join(dir, `gs-fixture-b-${process.pid}.sql`)
    await writeFile(
      first,
      "INSERT INTO users (username, email) VALUES ('fixture_one', 'one@example.test');",
    )
    await writeFile(
      second,
      "UPDATE users SET display_name = 'second ran' WHERE username = 'fixture_one';",
    )
    const started = performance.now()
    const t = await createTestDatabase({ url: testDatabaseUrl(), fixtures: [first, second] })
    const cloneMs = performance.now() - started
    try {
      const user = await t.db
        .selectFrom('users')
        .select(['username', 'display_name'])
        .executeTakeFirstOrThrow()
      expect(user).toEqual({ username: 'fixture_one', display_name: 'second ran' })
      const history = await t.pool.query('SELECT count(*)::int AS n FROM guildstore_migrations')
      expect(history.rows[0].n).toBeGreaterThan(0)
      expect(await databaseExists(t.name)).toBe(true)
      // A clone from the template, its pool and two fixtures: measured 0.9-2.2 s
      // idle and 2.8 s with both cores of a 2-core box busy; 10 s is a bound the
      // test's own 30 s timeout does not make for it.
      expect(cloneMs).toBeLessThan(10_000)
    } finally {
      await t.drop()
    }
    expect(await databaseExists(t.name)).toBe(false)
  })

  it('gives two databases that share no rows', async () => {
    const [a, b] = await Promise.all([
      createTestDatabase({ url: testDatabaseUrl() }),
      createTestDatabase({ url: testDatabaseUrl() }),
    ])
    try {
      await a.db.insertInto('users').values({ username: 'only_in_a' }).execute()
      const inB = await b.db.selectFrom('users').select('id').execute()
      expect(a.name).not.toBe(b.name)
      expect(inB).toEqual([])
    } finally {
      await Promise.all([a.drop(), b.drop()])
    }
  })

  it('drops the clone when a fixture fails, and says so with the error', async () => {
    const bad = join(tmpdir(), `gs-fixture-bad-${process.pid}.sql`)
    await writeFile(bad, 'INSERT INTO no_such_table VALUES (1);')
    await expect(createTestDatabase({ url: testDatabaseUrl(), fixtures: [bad] })).rejects.toThrow(
      /no_such_table/,
    )
  })

  it('reuses the template the global setup built', async () => {
    expect(await ensureTemplateDatabase({ url: testDatabaseUrl() })).toBe(templateDatabase())
  })

  it('needs a server URL', async () => {
    const saved = { t: process.env.TEST_DATABASE_URL, d: process.env.DATABASE_URL }
    delete process.env.TEST_DATABASE_URL
    delete process.env.DATABASE_URL
    try {
      await expect(createTestDatabase()).rejects.toBeInstanceOf(GuildstoreError)
    } finally {
      if (saved.t !== undefined) process.env.TEST_DATABASE_URL = saved.t
      if (saved.d !== undefined) process.env.DATABASE_URL = saved.d
    }
  })

  it('installs into a schema and adds the host migrations to the template ({ schema, hostMigrationsDirectory })', async () => {
    const host = await mkdtemp(join(tmpdir(), 'gs-host-'))
    try {
      await writeFile(
        join(host, '0001_guild_banners.sql'),
        'CREATE TABLE guild_banners (guild_id uuid PRIMARY KEY REFERENCES chat.guilds (id) ON DELETE CASCADE, url text NOT NULL);\n',
      )
      const t = await createTestDatabase({
        url: testDatabaseUrl(),
        schema: 'chat',
        hostMigrationsDirectory: host,
      })
      try {
        const user = await createUser(t.db, { username: 'in_chat' })
        const guild = await createGuild(t.db, { name: 'g', owner_id: user.id })
        await t.pool.query('INSERT INTO public.guild_banners (guild_id, url) VALUES ($1, $2)', [
          guild.id,
          'u',
        ])
        const { rows } = await t.pool.query(
          `SELECT current_setting('search_path') AS path,
                  to_regclass('chat.users') IS NOT NULL AS in_chat,
                  to_regclass('public.users') IS NULL AS none_in_public,
                  (SELECT count(*)::int FROM chat.guildstore_migrations WHERE set_name = 'host') AS host_rows`,
        )
        expect(rows[0]).toEqual({
          path: '"chat"',
          in_chat: true,
          none_in_public: true,
          host_rows: 1,
        })
        expect(t.name).toMatch(/^guildstore_test_/)
      } finally {
        await t.drop()
      }
      const other = await ensureTemplateDatabase({ url: testDatabaseUrl(), schema: 'chat' })
      expect(other).not.toBe(templateDatabase())
    } finally {
      await rm(host, { recursive: true, force: true })
    }
  })
})
