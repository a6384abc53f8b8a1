/**
 * Issue 13's "done when", with the packed tarball in an empty host project: `new` writes
 * into the project; host migrations with foreign keys to guildstore's tables apply after
 * guildstore's; a reinstall of node_modules changes nothing; guildstore in schema "chat"
 * next to the host's own users/sessions/messages passes a consumer scenario under a
 * DML-only role; a 0.1.0 database upgrades in place.
 */
import { createHash, randomBytes } from 'node:crypto'
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testDatabaseUrl } from '../support/env.ts'
import {
  createEmptyDatabase,
  describeRun,
  type EmptyDatabase,
  installPackedGuildstore,
  npm,
  repoRoot,
  run,
} from './support.ts'

const here = join(repoRoot, 'test', 'package', 'host-project')
const hostTables = join(repoRoot, 'test', 'migrations', 'fixtures', 'host-tables.sql')

async function sql(url: string, text: string, values?: unknown[]): Promise<pg.QueryResultRow[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text, values)).rows
  } finally {
    await client.end()
  }
}

describe('a host project with its own tables and migrations (packed tarball)', () => {
  let tmp: string
  let app: string
  let bin: string
  let db: EmptyDatabase
  let old: EmptyDatabase
  const role = `gs_app_${randomBytes(4).toString('hex')}`
  const env = () => ({ DATABASE_URL: db.url, TEST_DATABASE_URL: undefined })
  const packaged = () => readdir(join(app, 'node_modules', 'guildstore', 'migrations'))

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'guildstore-host-'))
    app = join(tmp, 'app')
    await installPackedGuildstore(tmp, app)
    bin = join(app, 'node_modules', '.bin', 'guildstore')
    db = await createEmptyDatabase()
    old = await createEmptyDatabase()
    // The host's application existed before guildstore: its own users, sessions, messages.
    await sql(db.url, await readFile(hostTables, 'utf8'))
    await copyFile(join(here, 'scenario.mjs'), join(app, 'scenario.mjs'))
  }, 600_000)

  afterAll(async () => {
    await db?.drop()
    await old?.drop()
    await sql(testDatabaseUrl(), `DROP ROLE IF EXISTS "${role}"`).catch(() => {})
    if (tmp) await rm(tmp, { recursive: true, force: true })
  })

  it('`new` writes into ./migrations of the project, never into node_modules', async () => {
    const shipped = await packaged()
    const first = await run(bin, ['new', 'create', 'guild', 'banners'], { cwd: app, env: env() })
    expect(first.code, describeRun(first)).toBe(0)
    expect(first.stdout).toBe(`${join(app, 'migrations', '0001_create_guild_banners.sql')}\n`)
    const second = await run(bin, ['new', 'link_profiles', '--json'], { cwd: app, env: env() })
    expect(second.code, describeRun(second)).toBe(0)
    expect(JSON.parse(second.stdout)).toEqual({
      file: join(app, 'migrations', '0002_link_profiles.sql'),
      version: 2,
    })
    expect(await packaged()).toEqual(shipped)
    // Run from inside the installed package, `new` refuses (exit 2).
    const inside = await run(bin, ['new', 'oops'], {
      cwd: join(app, 'node_modules', 'guildstore'),
      env: env(),
    })
    expect(inside.code, describeRun(inside)).toBe(2)
    expect(inside.stderr).toContain('installed package')
    expect(await packaged()).toEqual(shipped)

    // The host's migrations: foreign keys to guildstore's tables in schema chat, and to its own users.
    await writeFile(
      join(app, 'migrations', '0001_create_guild_banners.sql'),
      'CREATE TABLE guild_banners (\n  guild_id uuid PRIMARY KEY REFERENCES chat.guilds (id) ON DELETE CASCADE,\n  url text NOT NULL\n);\n',
    )
    await writeFile(
      join(app, 'migrations', '0002_link_profiles.sql'),
      'CREATE TABLE profile_links (\n  host_user_id integer PRIMARY KEY REFERENCES users (id),\n  chat_user_id uuid NOT NULL UNIQUE REFERENCES chat.users (id) ON DELETE CASCADE\n);\n',
    )
  })

  it("`migrate --schema chat` applies guildstore's files first, then the host's, in one run", async () => {
    const shipped = (await packaged()).filter((f) => f.endsWith('.sql')).sort()
    const migrate = await run(bin, ['migrate', '--schema', 'chat', '--json'], {
      cwd: app,
      env: env(),
    })
    expect(migrate.code, describeRun(migrate)).toBe(0)
    const applied = JSON.parse(migrate.stdout).applied as { set: string; name: string }[]
    expect(applied.map((m) => m.set)).toEqual([...shipped.map(() => 'guildstore'), 'host', 'host'])
    expect(applied.slice(-2).map((m) => m.name)).toEqual(['create_guild_banners', 'link_profiles'])
    const status = await run(bin, ['status', '--schema', 'chat'], { cwd: app, env: env() })
    expect(status.code, describeRun(status)).toBe(0)
    expect(status.stdout).toMatch(/host\s+0002\s+0002_link_profiles\.sql\s+applied/)
    // The host's tables kept their rows; guildstore's are in chat.
    expect(await sql(db.url, 'SELECT email FROM public.users')).toEqual([
      { email: 'host-owner@example.test' },
    ])
    expect(await sql(db.url, "SELECT to_regclass('chat.messages') IS NOT NULL AS ok")).toEqual([
      { ok: true },
    ])
  })

  it('passes the consumer scenario in schema chat under a DML-only role', async () => {
    const name = new URL(db.url).pathname.slice(1)
    for (const statement of [
      `CREATE ROLE "${role}" LOGIN`,
      `REVOKE ALL ON DATABASE "${name}" FROM PUBLIC`,
      `GRANT CONNECT ON DATABASE "${name}" TO "${role}"`,
      `GRANT USAGE ON SCHEMA chat TO "${role}"`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA chat TO "${role}"`,
      `ALTER DEFAULT PRIVILEGES IN SCHEMA chat GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "${role}"`,
    ]) {
      await sql(db.url, statement)
    }
    const appUrl = new URL(db.url)
    appUrl.username = role
    const r = await run(process.execPath, ['scenario.mjs'], {
      cwd: app,
      env: { ...env(), APP_DATABASE_URL: appUrl.toString() },
    })
    expect(r.code, describeRun(r)).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({
      role,
      searchPath: '"chat"',
      history: ['difference engine', 'second', 'the analytical engine'],
      hits: ['difference engine', 'the analytical engine'],
      ddl: '42501',
      statusStates: ['applied'],
    })
    // The host's migration's foreign key points at guildstore's row.
    await sql(db.url, 'INSERT INTO guild_banners (guild_id, url) VALUES ($1, $2)', [
      out.guildId,
      'https://cdn.example.test/banner.png',
    ])
  })

  it('a reinstall of node_modules changes nothing: status 0, migrate applies nothing', async () => {
    const before = await readdir(join(app, 'migrations'))
    await rm(join(app, 'node_modules'), { recursive: true, force: true })
    const ci = await npm(
      ['ci', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
      app,
    )
    expect(ci.code, describeRun(ci)).toBe(0)
    expect(await readdir(join(app, 'migrations'))).toEqual(before)
    const status = await run(bin, ['status', '--schema', 'chat', '--json'], {
      cwd: app,
      env: env(),
    })
    expect(status.code, describeRun(status)).toBe(0)
    const migrate = await run(bin, ['migrate', '--schema', 'chat', '--json'], {
      cwd: app,
      env: env(),
    })
    expect(migrate.code, describeRun(migrate)).toBe(0)
    expect(JSON.parse(migrate.stdout)).toEqual({ applied: [] })
  }, 120_000)

  it('upgrades a 0.1.0 database in place (history keyed by version only, public schema)', async () => {
    const initialPath = join(
      app,
      'node_modules',
      'guildstore',
      'migrations',
      '0001_initial_schema.sql',
    )
    const initial = await readFile(initialPath)
    // The database as 0.1.0's `guildstore migrate` left it.
    await sql(old.url, initial.toString('utf8'))
    await sql(
      old.url,
      `CREATE TABLE public.guildstore_migrations (
  version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer NOT NULL)`,
    )
    await sql(
      old.url,
      "INSERT INTO public.guildstore_migrations (version, name, checksum, duration_ms) VALUES (1, 'initial_schema', $1, 7)",
      [createHash('sha256').update(initial).digest('hex')],
    )
    await sql(old.url, "INSERT INTO users (username) VALUES ('from_010')")
    // Run from a directory without ./migrations: guildstore's own set only.
    const migrate = await run(bin, ['migrate', '--json', '--database-url', old.url], {
      cwd: tmp,
      env: env(),
    })
    expect(migrate.code, describeRun(migrate)).toBe(0)
    const applied = JSON.parse(migrate.stdout).applied as { set: string; version: number }[]
    expect(applied.every((m) => m.set === 'guildstore' && m.version > 1)).toBe(true)
    const status = await run(bin, ['status', '--json', '--database-url', old.url], {
      cwd: tmp,
      env: env(),
    })
    expect(status.code, describeRun(status)).toBe(0)
    expect(
      await sql(
        old.url,
        'SELECT set_name, version FROM public.guildstore_migrations WHERE version = 1',
      ),
    ).toEqual([{ set_name: 'guildstore', version: 1 }])
    expect(await sql(old.url, 'SELECT count(*)::int AS n FROM users')).toEqual([{ n: 1 }])
  })
})
