import { appendFile, mkdir, readdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ExitCode } from '../../src/cli/exit-code.ts'
import { main } from '../../src/cli/main.ts'
import { redactUrl } from '../../src/cli/redact-url.ts'
import {
  copyFixture,
  createFreshDatabase,
  emptyDir,
  type FreshDatabase,
  fixtureDir,
} from './fixtures/database.ts'

interface Run {
  code: number
  stdout: string
  stderr: string
}

async function run(argv: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await main(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env,
  })
  return { code, stdout, stderr }
}

const basic = fixtureDir('basic')

interface Listed {
  set: string
  version: number
  name: string
  state: string
  file: string
  checksum: string
  appliedAt: string
}
/** The host set's entries of a `migrations` / `applied` list. */
const host = (list: Listed[]): Listed[] => list.filter((m) => m.set === 'host')

describe('guildstore CLI (in-process)', () => {
  let db: FreshDatabase
  beforeEach(async () => {
    db = await createFreshDatabase()
  })
  afterEach(async () => {
    await db.drop()
  })

  it('exports the documented exit codes', () => {
    expect(ExitCode).toEqual({ Success: 0, Error: 1, Usage: 2, Pending: 3, Changed: 4 })
  })

  it('migrate --json applies, prints only JSON on stdout, logs on stderr (0)', async () => {
    const result = await run(['migrate', '--dir', basic, '--database-url', db.url, '--json'])
    expect(result.code).toBe(ExitCode.Success)
    const doc = JSON.parse(result.stdout)
    const sets = doc.applied.map((m: { set: string }) => m.set)
    // guildstore's own set first, then the host's (--dir)
    expect(sets).toEqual([
      ...sets.filter((x: string) => x === 'guildstore'),
      'host',
      'host',
      'host',
    ])
    expect(sets.filter((x: string) => x === 'guildstore').length).toBeGreaterThan(0)
    expect(host(doc.applied).map((m) => [m.version, m.name])).toEqual([
      [1, 'create_widgets'],
      [2, 'add_widget_color'],
      [10, 'widgets_label_index'],
    ])
    expect(typeof doc.applied[0].durationMs).toBe('number')
    expect(result.stdout.trim().split('\n')).toHaveLength(1)
    expect(result.stderr).toContain('applied host 0001_create_widgets.sql')
    expect(result.stderr).toContain('applied 0001_initial_schema.sql')
    expect(
      await db.query(
        "SELECT count(*)::int AS n FROM public.guildstore_migrations WHERE set_name = 'host'",
      ),
    ).toEqual([{ n: 3 }])

    const again = await run(['migrate', '--dir', basic, '--database-url', db.url, '--json'])
    expect(again.code).toBe(ExitCode.Success)
    expect(JSON.parse(again.stdout)).toEqual({ applied: [] })
  })

  it('migrate reads DATABASE_URL from the given env and reports in words without --json', async () => {
    const result = await run(['migrate', '--dir', basic], { DATABASE_URL: db.url })
    expect(result.code).toBe(ExitCode.Success)
    expect(result.stdout).toMatch(/^applied \d+ migrations\n$/)
    expect(result.stderr).toContain('guildstore: applied host 0010_widgets_label_index.sql')
    const again = await run(['migrate', '--dir', basic], { DATABASE_URL: db.url })
    expect(again.stdout).toBe('database is up to date\n')
  })

  it('status exits 3 with pending migrations, 0 when up to date', async () => {
    const pending = await run(['status', '--dir', basic, '--database-url', db.url, '--json'])
    expect(pending.code).toBe(ExitCode.Pending)
    const doc = JSON.parse(pending.stdout)
    expect(host(doc.migrations).map((m) => m.state)).toEqual(['pending', 'pending', 'pending'])
    expect(doc.migrations[0]).toMatchObject({ set: 'guildstore', state: 'pending' })
    expect(pending.stderr).toMatch(/\d+ pending migrations/)

    await run(['migrate', '--dir', basic, '--database-url', db.url])
    const done = await run(['status', '--dir', basic, '--database-url', db.url, '--json'])
    expect(done.code).toBe(ExitCode.Success)
    const migrations = host(JSON.parse(done.stdout).migrations)
    expect(migrations[0]).toMatchObject({
      set: 'host',
      version: 1,
      name: 'create_widgets',
      file: '0001_create_widgets.sql',
      state: 'applied',
    })
    expect(migrations[0]!.checksum).toMatch(/^[0-9a-f]{64}$/)
    expect(Number.isNaN(Date.parse(migrations[0]!.appliedAt))).toBe(false)

    const table = await run(['status', '--dir', basic, '--database-url', db.url])
    expect(table.code).toBe(ExitCode.Success)
    expect(table.stdout).toMatch(/^SET\s+VERSION\s+FILE\s+STATE/)
    expect(table.stdout).toMatch(/guildstore\s+0001\s+0001_initial_schema\.sql\s+applied/)
    expect(table.stdout).toMatch(/host\s+0002\s+0002_add_widget_color\.sql\s+applied/)
  })

  it('status and migrate exit 4 naming an edited applied file; migrate applies nothing', async () => {
    const fixture = await copyFixture('basic')
    try {
      await run(['migrate', '--dir', fixture.dir, '--database-url', db.url])
      await appendFile(join(fixture.dir, '0001_create_widgets.sql'), '\n-- edited\n')
      await appendFile(join(fixture.dir, '0020_new.sql'), 'CREATE TABLE newer (id int);\n')

      const status = await run(['status', '--dir', fixture.dir, '--database-url', db.url, '--json'])
      expect(status.code).toBe(ExitCode.Changed)
      const changed = host(JSON.parse(status.stdout).migrations).find((m) => m.state === 'changed')
      expect(changed?.file).toBe('0001_create_widgets.sql')
      expect(status.stderr).toContain('host 0001_create_widgets.sql is changed')

      const migrate = await run([
        'migrate',
        '--dir',
        fixture.dir,
        '--database-url',
        db.url,
        '--json',
      ])
      expect(migrate.code).toBe(ExitCode.Changed)
      expect(JSON.parse(migrate.stdout)).toEqual({
        error: {
          code: 'MIGRATION_CHECKSUM_MISMATCH',
          message: expect.stringContaining('0001_create_widgets.sql'),
          files: ['0001_create_widgets.sql'],
        },
      })
      expect(migrate.stderr).toContain('guildstore: error:')
      expect(await db.query("SELECT to_regclass('newer') AS t")).toEqual([{ t: null }])
    } finally {
      await fixture.remove()
    }
  })

  it('exits 4 naming a missing applied file', async () => {
    const fixture = await copyFixture('basic')
    try {
      await run(['migrate', '--dir', fixture.dir, '--database-url', db.url])
      const { rm } = await import('node:fs/promises')
      await rm(join(fixture.dir, '0002_add_widget_color.sql'))
      const migrate = await run([
        'migrate',
        '--dir',
        fixture.dir,
        '--database-url',
        db.url,
        '--json',
      ])
      expect(migrate.code).toBe(ExitCode.Changed)
      expect(JSON.parse(migrate.stdout).error).toMatchObject({
        code: 'MIGRATION_MISSING',
        files: ['0002_add_widget_color.sql'],
      })
      const status = await run(['status', '--dir', fixture.dir, '--database-url', db.url])
      expect(status.code).toBe(ExitCode.Changed)
      expect(status.stderr).toContain('host 0002_add_widget_color.sql is missing')
    } finally {
      await fixture.remove()
    }
  })

  it('exits 1 for a failing migration, naming the file; earlier files stay', async () => {
    const result = await run([
      'migrate',
      '--dir',
      fixtureDir('failing'),
      '--database-url',
      db.url,
      '--json',
    ])
    expect(result.code).toBe(ExitCode.Error)
    expect(JSON.parse(result.stdout).error).toMatchObject({
      code: 'MIGRATION_FAILED',
      files: ['0002_breaks.sql'],
    })
    expect(result.stderr).toContain('0002_breaks.sql failed at line 2')
    expect(
      await db.query("SELECT version FROM public.guildstore_migrations WHERE set_name = 'host'"),
    ).toEqual([{ version: 1 }])
  })
})

describe('guildstore CLI errors without a database', () => {
  it('exits 1 when the database is unreachable, never printing the password', async () => {
    const url = 'postgres://app:Sup3rSecretPw@127.0.0.1:1/nowhere'
    for (const command of ['migrate', 'status']) {
      const result = await run([command, '--dir', basic, '--database-url', url, '--json'])
      expect(result.code).toBe(ExitCode.Error)
      expect(JSON.parse(result.stdout).error.code).toBe('DATABASE_UNAVAILABLE')
      expect(result.stdout + result.stderr).not.toContain('Sup3rSecretPw')
    }
    const human = await run(['migrate', '--dir', basic], { DATABASE_URL: url })
    expect(human.code).toBe(ExitCode.Error)
    expect(human.stderr).toContain('postgres://app:***@127.0.0.1:1/nowhere')
    expect(human.stdout + human.stderr).not.toContain('Sup3rSecretPw')
  })

  it('redacts passwords in URLs', () => {
    expect(redactUrl('postgres://app:s3cret@db:5432/chat')).toBe('postgres://app:***@db:5432/chat')
    expect(redactUrl('postgres://db/chat?password=s3cret')).not.toContain('s3cret')
    expect(redactUrl('not a url s3cret')).toBe('[redacted]')
  })

  it.each([
    [['migrate', '--dir', basic], 'no database'],
    [['status', '--database-url', 'mysql://x@y/z'], 'postgres://'],
    [['status', '--database-url', 'nonsense'], 'not a valid URL'],
    [['frobnicate'], "unknown command 'frobnicate'"],
    [['status', '--bogus'], "unknown option '--bogus'"],
    [['new'], "missing required argument 'name'"],
    [['--database-url'], 'argument missing'],
    [[], 'Usage: guildstore'],
  ])('exits 2 for the usage error %j, on stderr only', async (argv, text) => {
    const result = await run(argv)
    expect(result.code).toBe(ExitCode.Usage)
    expect(result.stderr).toContain(text)
    expect(result.stdout).toBe('')
  })

  it('reports a usage error as JSON on stdout with --json', async () => {
    const missingUrl = await run(['status', '--dir', basic, '--json'])
    expect(missingUrl.code).toBe(ExitCode.Usage)
    expect(JSON.parse(missingUrl.stdout).error).toMatchObject({ code: 'USAGE_ERROR' })
    const unknown = await run(['--json', 'frobnicate'])
    expect(unknown.code).toBe(ExitCode.Usage)
    expect(JSON.parse(unknown.stdout).error.message).toContain('frobnicate')
  })

  it('prints help and the version on stdout with exit 0', async () => {
    const help = await run(['--help'])
    expect(help.code).toBe(ExitCode.Success)
    expect(help.stdout).toContain('migrate')
    expect(help.stdout).toContain('--database-url')
    const version = await run(['--version'])
    expect(version.code).toBe(ExitCode.Success)
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
  })

  it('new writes the next numbered file (0), refuses an invalid name (2)', async () => {
    const tmp = await emptyDir()
    try {
      const first = await run(['new', 'create', 'users', '--dir', tmp.dir])
      expect(first.code).toBe(ExitCode.Success)
      expect(first.stdout).toBe(`${join(tmp.dir, '0001_create_users.sql')}\n`)
      const second = await run(['new', 'Add Foo', '--dir', tmp.dir, '--json'])
      expect(second.code).toBe(ExitCode.Success)
      expect(JSON.parse(second.stdout)).toEqual({
        file: join(tmp.dir, '0002_add_foo.sql'),
        version: 2,
      })
      const bad = await run(['new', '???', '--dir', tmp.dir, '--json'])
      expect(bad.code).toBe(ExitCode.Usage)
      expect(JSON.parse(bad.stdout).error.code).toBe('INVALID_INPUT')
      expect((await readdir(tmp.dir)).sort()).toEqual(['0001_create_users.sql', '0002_add_foo.sql'])
    } finally {
      await tmp.remove()
    }
  })

  it('exits 1 for invalid migration files, naming them', async () => {
    const result = await run([
      'status',
      '--dir',
      fixtureDir('duplicate'),
      '--database-url',
      'postgres://x@127.0.0.1:1/x',
      '--json',
    ])
    expect(result.code).toBe(ExitCode.Error)
    expect(JSON.parse(result.stdout).error).toMatchObject({
      code: 'MIGRATION_FILE_INVALID',
      files: ['0001_first.sql', '0001_second.sql'],
    })
  })
})

describe('guildstore CLI: output is exact and URLs are redacted by parsing (0.1.0 corrupted it)', () => {
  let db: FreshDatabase
  beforeEach(async () => {
    db = await createFreshDatabase()
  })
  afterEach(async () => {
    await db.drop()
  })

  const withPassword = (url: string, user: string, password: string) => {
    const u = new URL(url)
    u.username = user
    u.password = password
    return u.toString()
  }

  it('--json stays valid and exact when the password is a common word ("app")', async () => {
    // trust authentication: the password is sent nowhere it matters, but it is in the URL
    const url = withPassword(db.url, 'postgres', 'app')
    await run(['migrate', '--dir', basic, '--database-url', url])
    const status = await run(['status', '--dir', basic, '--database-url', url, '--json'])
    expect(status.code).toBe(ExitCode.Success)
    const doc = JSON.parse(status.stdout)
    expect(doc.migrations.map((m: { state: string }) => m.state)).toEqual(
      doc.migrations.map(() => 'applied'),
    )
    expect(status.stdout).toContain('"state":"applied"')
    expect(status.stdout).not.toContain('***')
    const table = await run(['status', '--dir', basic, '--database-url', url])
    expect(table.stdout).toMatch(/host\s+0001\s+0001_create_widgets\.sql\s+applied/)
  })

  it('redacts only the password: user "postgres" with password "postgres" keeps its scheme and user', async () => {
    const url = withPassword(db.url, 'postgres', 'postgres')
    const migrate = await run(['migrate', '--dir', basic, '--database-url', url, '--json'])
    expect(migrate.code).toBe(ExitCode.Success)
    const u = new URL(db.url)
    expect(migrate.stderr).toContain(`migrating postgres://postgres:***@${u.host}${u.pathname}`)
    expect(JSON.parse(migrate.stdout).applied.length).toBeGreaterThan(3)
  })

  it('prints a URL without a password as it is', async () => {
    const migrate = await run(['migrate', '--dir', basic, '--database-url', db.url])
    expect(migrate.code).toBe(ExitCode.Success)
    expect(migrate.stderr).toContain(`migrating ${db.url} (schema public`)
  })

  it('--schema installs guildstore and its history into that schema; status reads it there', async () => {
    const migrate = await run([
      'migrate',
      '--schema',
      'chat',
      '--dir',
      basic,
      '--database-url',
      db.url,
      '--json',
    ])
    expect(migrate.code).toBe(ExitCode.Success)
    expect(
      await db.query(
        "SELECT count(*)::int AS n FROM chat.guildstore_migrations WHERE set_name = 'guildstore'",
      ),
    ).toEqual([{ n: JSON.parse(migrate.stdout).applied.length - 3 }])
    expect(await db.query("SELECT to_regclass('chat.users') IS NOT NULL AS ok")).toEqual([
      { ok: true },
    ])
    // the host's files ran with the connection's own search_path (public)
    expect(await db.query("SELECT to_regclass('public.widgets') IS NOT NULL AS ok")).toEqual([
      { ok: true },
    ])
    const status = await run([
      'status',
      '--schema',
      'chat',
      '--dir',
      basic,
      '--database-url',
      db.url,
    ])
    expect(status.code).toBe(ExitCode.Success)
    const elsewhere = await run(['status', '--dir', basic, '--database-url', db.url, '--json'])
    expect(elsewhere.code).toBe(ExitCode.Pending) // nothing installed in public
    const bad = await run(['status', '--schema', 'Bad-Name', '--database-url', db.url, '--json'])
    expect(bad.code).toBe(ExitCode.Usage)
    expect(JSON.parse(bad.stdout).error.code).toBe('USAGE_ERROR')
  })

  it('a dangling symlink or a version above 2147483647 is a MigrationFileError naming the file; nothing runs', async () => {
    for (const make of [
      async (dir: string) => {
        await symlink(join(dir, 'nowhere.sql'), join(dir, '0002_dangling.sql'))
        return '0002_dangling.sql'
      },
      async (dir: string) => {
        await writeFile(join(dir, '2147483648_too_big.sql'), 'CREATE TABLE too_big (id int);\n')
        return '2147483648_too_big.sql'
      },
    ]) {
      const tmp = await emptyDir()
      try {
        await writeFile(join(tmp.dir, '0001_first.sql'), 'CREATE TABLE first_one (id int);\n')
        const file = await make(tmp.dir)
        for (const command of ['migrate', 'status']) {
          const r = await run([command, '--dir', tmp.dir, '--database-url', db.url, '--json'])
          expect(r.code, file).toBe(ExitCode.Error)
          expect(JSON.parse(r.stdout).error).toMatchObject({
            code: 'MIGRATION_FILE_INVALID',
            files: [file],
          })
          expect(r.stderr).toContain(file)
        }
        expect(await db.query("SELECT to_regclass('public.guildstore_migrations') AS t")).toEqual([
          { t: null },
        ])
      } finally {
        await tmp.remove()
      }
    }
  })
})

describe('guildstore new writes into the project, never into the installed package', () => {
  it('defaults to ./migrations of the working directory and creates it', async () => {
    const project = await emptyDir()
    try {
      let stdout = ''
      const code = await main(['new', 'add', 'banners'], {
        stdout: { write: (s: string) => (stdout += s) },
        stderr: { write: () => {} },
        env: {},
        cwd: project.dir,
      })
      expect(code).toBe(ExitCode.Success)
      expect(stdout).toBe(`${join(project.dir, 'migrations', '0001_add_banners.sql')}\n`)
      expect(await readdir(join(project.dir, 'migrations'))).toEqual(['0001_add_banners.sql'])
    } finally {
      await project.remove()
    }
  })

  it('refuses a directory inside node_modules (exit 2), writing nothing', async () => {
    const project = await emptyDir()
    try {
      const target = join(project.dir, 'node_modules', 'guildstore', 'migrations')
      await mkdir(target, { recursive: true })
      for (const argv of [
        ['new', 'x', '--dir', target, '--json'],
        ['new', 'x', '--json'],
      ]) {
        let stdout = ''
        const code = await main(argv, {
          stdout: { write: (s: string) => (stdout += s) },
          stderr: { write: () => {} },
          env: {},
          cwd: argv.length === 3 ? join(project.dir, 'node_modules', 'guildstore') : project.dir,
        })
        expect(code).toBe(ExitCode.Usage)
        expect(JSON.parse(stdout).error.message).toContain('installed package')
      }
      expect(await readdir(target)).toEqual([])
    } finally {
      await project.remove()
    }
  })
})

describe('guildstore CLI without the host directory', () => {
  it('checks guildstore set only, and says that recorded host migrations went unchecked', async () => {
    const db = await createFreshDatabase()
    try {
      await run(['migrate', '--dir', basic, '--database-url', db.url])
      const status = await run(['status', '--database-url', db.url, '--json'])
      expect(status.code).toBe(ExitCode.Success)
      expect(
        JSON.parse(status.stdout).migrations.every((m: Listed) => m.set === 'guildstore'),
      ).toBe(true)
      expect(status.stderr).toContain('3 host migrations are recorded but no host directory')
      const migrate = await run(['migrate', '--database-url', db.url, '--json'])
      expect(JSON.parse(migrate.stdout)).toEqual({ applied: [] })
      expect(migrate.stderr).toContain('3 host migrations are recorded')
    } finally {
      await db.drop()
    }
  })
})
