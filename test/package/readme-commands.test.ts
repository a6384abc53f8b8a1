/**
 * Every shell command in README.md is executed by a test: the two commands of
 * a fresh clone here, the others where the table below says, and a command the
 * table does not know fails this test until someone says where it runs.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testRedisUrl } from '../support/env.ts'
import {
  admin,
  createEmptyDatabase,
  describeRun,
  type EmptyDatabase,
  repoRoot,
  run,
} from './support.ts'

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8')
/** The README's long form: its commands are held to the same rule. */
const reference = readFileSync(join(repoRoot, 'docs', 'reference.md'), 'utf8')

/** The commands of every ```sh block: continuations joined, `&&` split, comments dropped. */
function shellCommands(text: string): string[] {
  const commands: string[] = []
  for (const block of text.matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)) {
    const joined = (block[1] ?? '').replace(/\\\n\s*/g, ' ')
    for (const line of joined.split('\n')) {
      const code = line.replace(/(^|\s)#.*$/, '').trim()
      if (!code) continue
      for (const part of code.split('&&')) commands.push(part.trim().replace(/\s+/g, ' '))
    }
  }
  return commands
}

/** The Quickstart's shell blocks run as written in test/package/quickstart.test.ts. */
const quickstart = {
  file: 'test/package/quickstart.test.ts',
  evidence: "runs the Quickstart's shell blocks and code as written",
}

/** Where each README command runs, with a string that file must contain as evidence. */
const executedBy: Record<string, { file: string; evidence: string }> = {
  './dev example': { file: 'test/package/readme-commands.test.ts', evidence: "'dev', 'example'" },
  './dev test': { file: 'test/package/readme-commands.test.ts', evidence: "'dev', 'test'" },
  // The clone's block: the quickstart test packs the sources as `npm pack` does (its
  // prepack build is test/package/prepack.test.ts); `npm ci` is CI's first step.
  'npm ci': { file: '.ci/run', evidence: 'npm ci --no-audit --no-fund' },
  'npm pack': { file: 'test/package/support.ts', evidence: "npm(['pack'," },
  'mkdir chat-app': quickstart,
  'cd chat-app': quickstart,
  'npm init -y': quickstart,
  'npm pkg set type=module': quickstart,
  'npm install /path/to/guildstore/guildstore-0.2.0.tgz kysely pg ioredis': quickstart,
  'npm install --save-dev typescript @types/pg': quickstart,
  'npx tsc --init': quickstart,
  'export DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres': quickstart,
  'npx tsc': quickstart,
  'node quickstart.js': quickstart,
  'npx guildstore migrate': {
    file: 'test/package/readme-commands.test.ts',
    evidence: "guildstore(project, 'migrate'",
  },
  'npx guildstore status': {
    file: 'test/package/readme-commands.test.ts',
    evidence: "guildstore(project, 'status'",
  },
  'npx guildstore new add guild banners': {
    file: 'test/package/readme-commands.test.ts',
    evidence: "guildstore(project, 'new add guild banners'",
  },
  'npx guildstore migrate --schema chat': {
    file: 'test/package/readme-commands.test.ts',
    evidence: "guildstore(project, 'migrate --schema chat'",
  },
  'npx guildstore status --schema chat': {
    file: 'test/package/readme-commands.test.ts',
    evidence: "guildstore(project, 'status --schema chat'",
  },
  'TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres TEST_REDIS_URL=redis://127.0.0.1:6379 npm test':
    {
      file: '.ci/run',
      evidence: 'TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres',
    },
}

describe('README commands', () => {
  it('every command in a shell block of README.md and docs/reference.md is known here and executed where the table says', () => {
    const commands = [...shellCommands(readme), ...shellCommands(reference)]
    expect(commands).toContain('./dev example')
    expect(commands).toContain('./dev test')
    expect(new Set(commands)).toEqual(new Set(Object.keys(executedBy)))
    for (const [command, { file, evidence }] of Object.entries(executedBy)) {
      const text = readFileSync(join(repoRoot, file), 'utf8')
      expect(text.includes(evidence), `${command}: ${file} contains ${evidence}`).toBe(true)
    }
  })

  it('reads in five minutes: the two commands, then the Quickstart, then the features; the rest in docs/', () => {
    const headings = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1])
    expect(headings).toEqual([
      'Try it: two commands',
      'Quickstart',
      'Features',
      'Testing and development',
      'License',
    ])
    // Issue 27, item 6: it was 53 KB. About 1,200 words at 250 a minute.
    expect(readme.split(/\s+/).length).toBeLessThan(1300)
    // Node's requirement comes before any command.
    expect(readme.indexOf('Node.js ≥ 22.12')).toBeLessThan(readme.indexOf('```sh'))
    // Not published yet: the registry install is named once, as what comes later, never run.
    expect(readme.split('npm install guildstore kysely pg ioredis').length - 1).toBe(1)
    expect(shellCommands(readme)).not.toContain('npm install guildstore kysely pg ioredis')
    // "The original Rust design" is introduced where it is first used.
    expect(readme).toMatch(/written in Rust;[\s\S]*"the original Rust design"/)
    const order = [
      'API overview',
      'Schema',
      'Redis',
      'Migrations and the CLI',
      'Testing',
      'Development',
    ]
    const at = order.map((h) => reference.search(new RegExp(`^## ${h.replace(/[`]/g, '.')}$`, 'm')))
    expect(at.every((i) => i >= 0)).toBe(true)
    expect([...at].sort((a, b) => a - b)).toEqual(at)
  })

  it('every relative link of README.md and docs/reference.md names a file that exists', () => {
    for (const [file, text] of [
      ['README.md', readme],
      ['docs/reference.md', reference],
    ] as const) {
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (!target || /^[a-z]+:/.test(target)) continue
        const path = join(repoRoot, dirname(file), target)
        expect(existsSync(path), `${file} links to ${target}`).toBe(true)
      }
    }
  })
})

/** `npx guildstore <args>` of a checkout: the CLI's source entry, in `project`. */
const guildstore = (project: string, args: string, databaseUrl: string) =>
  run(process.execPath, [join(repoRoot, 'src', 'cli', 'bin.ts'), ...args.split(' ')], {
    cwd: project,
    env: { DATABASE_URL: databaseUrl },
    timeoutMs: 120_000,
  })

describe("the README's guildstore CLI commands, in order, in an empty project", () => {
  const databases: EmptyDatabase[] = []
  let project: string
  beforeAll(async () => {
    databases.push(await createEmptyDatabase(), await createEmptyDatabase())
    project = await mkdtemp(join(tmpdir(), 'guildstore-readme-'))
  })
  afterAll(async () => {
    for (const d of databases) await d.drop()
    if (project) await rm(project, { recursive: true, force: true })
  })

  it('new, migrate, status: a host migration is written and applied, nothing pending', async () => {
    const url = databases[0]?.url as string
    const created = await guildstore(project, 'new add guild banners', url)
    expect(created.code, describeRun(created)).toBe(0)
    const file = join(project, 'migrations', '0001_add_guild_banners.sql')
    expect(existsSync(file)).toBe(true)
    const migrate = await guildstore(project, 'migrate', url)
    expect(migrate.code, describeRun(migrate)).toBe(0)
    const status = await guildstore(project, 'status', url)
    expect(status.code, describeRun(status)).toBe(0)
    expect(status.stdout).toContain('0001_add_guild_banners.sql')
  }, 300_000)

  it('migrate --schema chat, status --schema chat: installed into the schema, exit 0', async () => {
    const url = databases[1]?.url as string
    const migrate = await guildstore(project, 'migrate --schema chat', url)
    expect(migrate.code, describeRun(migrate)).toBe(0)
    const status = await guildstore(project, 'status --schema chat', url)
    expect(status.code, describeRun(status)).toBe(0)
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      const { rows } = await client.query(
        "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'chat' AND tablename = 'users'",
      )
      expect(rows[0].n).toBe(1)
    } finally {
      await client.end()
    }
  }, 300_000)
})

describe('the two commands, as written (node_modules already there)', () => {
  let database: EmptyDatabase
  beforeAll(async () => {
    database = await createEmptyDatabase()
  })
  afterAll(async () => {
    await database?.drop()
  })

  it('./dev example prints its URL, serves the page, and stops on SIGTERM', async () => {
    const child: ChildProcess = spawn('bash', [join(repoRoot, 'dev'), 'example'], {
      cwd: repoRoot,
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        DATABASE_URL: database.url,
        REDIS_URL: testRedisUrl(),
        CHAT_REDIS_NAMESPACE: `gs_test_readme_${randomBytes(6).toString('hex')}`,
        PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stderr?.on('data', (d) => {
      stderr += d
    })
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL in 120 s: ${stderr}`)), 120_000)
      child.stdout?.on('data', (d) => {
        stdout += d
        const match = /^chat service listening on (http:\/\/\S+)$/m.exec(stdout)
        if (match?.[1]) {
          clearTimeout(timer)
          resolve(match[1])
        }
      })
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)))
    })
    try {
      const page = await fetch(`${url}/`)
      expect(page.status).toBe(200)
      expect(await page.text()).toContain('<title>guildstore chat</title>')
    } finally {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      expect((await exited)[0]).toBe(0)
    }
  }, 180_000)

  it('./dev test runs vitest (here on one file) and passes', async () => {
    const r = await run('bash', [join(repoRoot, 'dev'), 'test', 'test/core/ids.test.ts'], {
      env: { NO_COLOR: '1', FORCE_COLOR: undefined, GUILDSTORE_TEST_WORKERS: undefined },
      timeoutMs: 180_000,
    })
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.stdout).toMatch(/Tests\s+(\d+) passed \(\1\)/)
    // Issue 27, item 7: like .ci/run, two test files at a time below 200 connections.
    const maxConnections = await admin((c) => c.query('SHOW max_connections'))
    const limit = Number(maxConnections.rows[0].max_connections)
    const said = `max_connections is ${limit}: two test files at a time (GUILDSTORE_TEST_WORKERS=2)`
    if (limit < 200) expect(r.stderr).toContain(said)
    else expect(r.stderr).not.toContain('GUILDSTORE_TEST_WORKERS=2')
  }, 200_000)

  it('./dev test leaves a GUILDSTORE_TEST_WORKERS the caller set alone', async () => {
    const r = await run('bash', [join(repoRoot, 'dev'), 'test', 'test/core/ids.test.ts'], {
      env: { NO_COLOR: '1', FORCE_COLOR: undefined, GUILDSTORE_TEST_WORKERS: '1' },
      timeoutMs: 180_000,
    })
    expect(r.code, describeRun(r)).toBe(0)
    expect(r.stderr).not.toContain('GUILDSTORE_TEST_WORKERS=2')
  }, 200_000)

  it('./dev with no or an unknown command prints its usage and exits 2', async () => {
    for (const args of [[], ['deploy']]) {
      const r = await run('bash', [join(repoRoot, 'dev'), ...args])
      expect(r.code).toBe(2)
      expect(r.stderr.trim()).toBe('usage: ./dev example | ./dev test [vitest arguments]')
    }
  })
})
