import { writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { GuildstoreError } from '../../src/index.ts'
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
      // A clone from the template takes well under the time a migration run would.
      expect(cloneMs).toBeLessThan(30_000) // a clone, not a migration run; generous under load
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
})
