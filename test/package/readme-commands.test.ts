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
import { join } from 'node:path'
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

/** The commands of every ```sh block: continuations joined, `&&` split, comments dropped. */
function readmeCommands(): string[] {
  const commands: string[] = []
  for (const block of readme.matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)) {
    const text = (block[1] ?? '').replace(/\\\n\s*/g, ' ')
    for (const line of text.split('\n')) {
      const code = line.replace(/(^|\s)#.*$/, '').trim()
      if (!code) continue
      for (const part of code.split('&&')) commands.push(part.trim().replace(/\s+/g, ' '))
    }
  }
  return commands
}

/** Where each README command runs, with a string that file must contain as evidence. */
const executedBy: Record<string, { file: string; evidence: string }> = {
  './dev example': { file: 'test/package/readme-commands.test.ts', evidence: "'dev', 'example'" },
  './dev test': { file: 'test/package/readme-commands.test.ts', evidence: "'dev', 'test'" },
  // Until guildstore is on the registry, the consumer test installs the packed
  // tarball with the same peer dependencies (@types/pg included) instead.
  'npm install guildstore kysely pg ioredis': {
    file: 'test/package/support.ts',
    evidence: '...(await peerDependencySpecs())',
  },
  'npm install --save-dev @types/pg': {
    file: 'test/package/support.ts',
    evidence: "'@types/pg'",
  },
  'export DATABASE_URL=postgres://app@127.0.0.1:5432/chat': {
    file: 'test/package/consumer/run.mjs',
    evidence: "cli('migrate')",
  },
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
  'npm ci': { file: '.ci/run', evidence: 'npm ci --no-audit --no-fund' },
  'npm run build': { file: '.ci/run', evidence: 'npm run build' },
  'npm pack': { file: 'test/package/support.ts', evidence: "npm(['pack'," },
  'npm install /path/to/guildstore/guildstore-0.1.0.tgz kysely pg ioredis': {
    file: 'test/package/support.ts',
    evidence: 'const tarball = join(tmp, info.filename)',
  },
  'TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres TEST_REDIS_URL=redis://127.0.0.1:6379 npm test':
    {
      file: '.ci/run',
      evidence: 'TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres',
    },
}

describe('README commands', () => {
  it('every command in a shell block is known here and executed where the table says', () => {
    const commands = readmeCommands()
    expect(commands).toContain('./dev example')
    expect(commands).toContain('./dev test')
    expect(new Set(commands)).toEqual(new Set(Object.keys(executedBy)))
    for (const [command, { file, evidence }] of Object.entries(executedBy)) {
      const text = readFileSync(join(repoRoot, file), 'utf8')
      expect(text.includes(evidence), `${command}: ${file} contains ${evidence}`).toBe(true)
    }
  })

  it('the two commands come right after the introduction, the install block only once', () => {
    const headings = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1])
    expect(headings.slice(0, 3)).toEqual(['Try it: two commands', 'Quickstart', 'API overview'])
    const order = ['API overview', 'Migrations and the `guildstore` CLI', 'Testing', 'Development']
    const at = order.map((h) => headings.indexOf(h))
    expect(at.every((i) => i > 1)).toBe(true)
    expect([...at].sort((a, b) => a - b)).toEqual(at)
    expect(readme.split('npm install guildstore kysely pg ioredis').length - 1).toBe(1)
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
