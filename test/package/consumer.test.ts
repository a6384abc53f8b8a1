/**
 * The package as a consumer gets it: builds the current tree into a staging
 * copy (never touching ./dist, which other test files or the CI may be using),
 * packs it with `npm pack`, installs the tarball into an empty temporary project
 * with its peer dependencies, then type-checks and runs code there that imports
 * only 'guildstore' and 'guildstore/testing'.
 */

import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import pg from 'pg'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MIGRATION_LOCK_KEY } from '../../src/migrations/index.ts'
import { testDatabaseUrl } from '../support/env.ts'
import { until } from '../support/race.ts'
import {
  createEmptyDatabase,
  describeRun,
  type EmptyDatabase,
  installPackedGuildstore,
  quickstartBlock,
  type RunResult,
  repoRoot,
  run,
} from './support.ts'

/**
 * Like `run`, with the child's stderr readable while it runs (`stderr()`), to
 * see a CLI runner report that it waits.
 */
function runWatched(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: Record<string, string | undefined> },
): { stderr: () => string; done: Promise<RunResult> } {
  const env: Record<string, string | undefined> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(VITEST|VITE_|TINYPOOL|NODE_OPTIONS$)/.test(key)) env[key] = value
  }
  env.PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`
  Object.assign(env, options.env)
  const child = spawn(command, [...args], { cwd: options.cwd, env })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d
  })
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
  })
  const done = new Promise<RunResult>((resolve) => {
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }))
  })
  return { stderr: () => stderr, done }
}

const here = join(repoRoot, 'test', 'package', 'consumer')
/**
 * Every step here spawns processes (tsc, node, npm, the CLI): with both cores
 * loaded a type-check alone took 30 s, vitest's default. Explicit, generous.
 */
const SPAWNING_TEST_TIMEOUT = 240_000

/** The package's migration files, in order (every release adds some). */
const MIGRATION_FILES = readdirSync(join(repoRoot, 'migrations'))
  .filter((f) => f.endsWith('.sql'))
  .sort()
/** Every name each source entry point exports, values and types alike (one program for all). */
function exportedNames(entries: string[]): string[][] {
  const config = ts.getParsedCommandLineOfConfigFile(join(repoRoot, 'tsconfig.json'), undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    },
  })
  if (!config) throw new Error('cannot read tsconfig.json')
  const program = ts.createProgram({ rootNames: entries, options: config.options })
  const checker = program.getTypeChecker()
  return entries.map((entry) => {
    const source = program.getSourceFile(entry)
    const symbol = source && checker.getSymbolAtLocation(source)
    if (!symbol) throw new Error(`no module symbol for ${entry}`)
    return checker
      .getExportsOfModule(symbol)
      .map((s) => s.name)
      .sort()
  })
}

/** One import per exported name: values as values (they exist at runtime), the rest as types. */
function importEverything(specifier: string, names: string[], runtime: Set<string>): string {
  return names
    .map((name) =>
      runtime.has(name)
        ? `import { ${name} as v_${name} } from '${specifier}'\nvoid v_${name}`
        : `import type { ${name} as T_${name} } from '${specifier}'\nexport type { T_${name} }`,
    )
    .join('\n')
}

describe('the packed package, installed into an empty project', () => {
  let tmp: string
  let app: string
  let packedFiles: string[]
  let fresh: EmptyDatabase
  const env = () => ({ TEST_DATABASE_URL: testDatabaseUrl(), DATABASE_URL: undefined })

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'guildstore-consumer-'))
    app = join(tmp, 'app')
    fresh = await createEmptyDatabase()
    ;({ packedFiles } = await installPackedGuildstore(tmp, app))
    // vitest for the consumer's own test file: this repository's, linked rather than installed.
    await symlink(
      join(repoRoot, 'node_modules', 'vitest'),
      join(app, 'node_modules', 'vitest'),
      'dir',
    )
    for (const file of ['fixture.sql', 'run.mjs', 'node-test.mjs', 'vitest.test.mjs']) {
      await copyFile(join(here, file), join(app, file))
    }
  }, 600_000)

  afterAll(async () => {
    await fresh?.drop()
    if (tmp) await rm(tmp, { recursive: true, force: true })
  })

  it('ships dist, migrations and the bin, and no sources or tests', () => {
    expect(packedFiles).toEqual(
      expect.arrayContaining([
        'package.json',
        'dist/src/index.js',
        'dist/src/index.d.ts',
        'dist/src/testing/index.js',
        'dist/src/cli/bin.js',
        'migrations/0001_initial_schema.sql',
      ]),
    )
    expect(
      packedFiles.filter((f) => /^(src|test|scripts|bench|examples|docs)\/|\.test\./.test(f)),
    ).toEqual([])
  })

  it('type-checks a strict consumer that imports the whole public API', async () => {
    const runtime = new Set(Object.keys(await import('../../src/index.ts')))
    const runtimeTesting = new Set(Object.keys(await import('../../src/testing/index.ts')))
    const [names = [], testingNames = []] = exportedNames([
      join(repoRoot, 'src', 'index.ts'),
      join(repoRoot, 'src', 'testing', 'index.ts'),
    ])
    expect(names).toEqual(
      expect.arrayContaining(['createDb', 'User', 'DB', 'createUser', 'createRedis']),
    )
    await writeFile(
      join(app, 'everything.ts'),
      `${importEverything('guildstore', names, runtime)}\n${importEverything('guildstore/testing', testingNames, runtimeTesting)}\n`,
    )
    await copyFile(join(here, 'api-usage.ts.txt'), join(app, 'api-usage.ts'))
    const { code: block } = quickstartBlock()
    await writeFile(join(app, 'quickstart.ts'), `${block}\nexport {}\n`)
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2023',
          lib: ['ES2023'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        files: ['everything.ts', 'api-usage.ts', 'quickstart.ts'],
      }),
    )
    const tsc = await run(
      process.execPath,
      [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app],
      { cwd: app, timeoutMs: 150_000 },
    )
    expect(tsc.code, describeRun(tsc)).toBe(0)
    expect(tsc.stdout).toBe('')
  }, 180_000)

  it(
    'migrates with the CLI, then works through guildstore/testing and the repositories',
    async () => {
      const r = await run(process.execPath, ['run.mjs'], {
        cwd: app,
        env: { ...env(), FRESH_DATABASE_URL: fresh.url },
      })
      expect(r.code, describeRun(r)).toBe(0)
      const out = JSON.parse(r.stdout)
      expect(out.cli.first.code).toBe(0)
      expect(out.cli.first.out.applied.map((m: { name: string }) => m.name)).toContain(
        'initial_schema',
      )
      expect(out.cli.second).toEqual({ code: 0, out: { applied: [] } })
      expect(out.cli.status.code).toBe(0)
      expect(out.states).toEqual(MIGRATION_FILES.map((f) => `${f}:applied`))
      expect(out.exports).toEqual(Object.keys(await import('../../src/index.ts')).sort())
      expect(out.fixtureUser.username).toBe('fixture_ada')
      expect(out.fixtureUser.keys).not.toContain('password_hash')
      expect(out.grace).not.toContain('password_hash')
      expect(out.grace).not.toContain('mfa_secret')
      expect(out.pages).toEqual([
        ['fourth: engine', 'third', 'second'],
        ['first: analytical engine'],
      ])
      expect(out.search).toEqual(['first: analytical engine', 'fourth: engine'])
      expect(out.ownerCanAccess).toBe(true)
      expect(out.strangerCanAccess).toBe(false)
      expect(out.permissionsType).toBe('bigint')
      expect(out.cloneName).toMatch(/^guildstore_test_/)
    },
    SPAWNING_TEST_TIMEOUT,
  )

  it(
    "guildstore/testing works under Node's own test runner",
    async () => {
      const r = await run(process.execPath, ['--test', '--test-reporter=tap', 'node-test.mjs'], {
        cwd: app,
        env: env(),
      })
      expect(r.code, describeRun(r)).toBe(0)
      expect(r.stdout).toMatch(/^# pass 2$/m)
      expect(r.stdout).toMatch(/^# fail 0$/m)
    },
    SPAWNING_TEST_TIMEOUT,
  )

  it(
    'guildstore/testing works under vitest in the consumer project',
    async () => {
      const vitest = join(app, 'node_modules', 'vitest', 'vitest.mjs')
      const output = join(tmp, 'vitest-report.json')
      const r = await run(
        process.execPath,
        [vitest, 'run', '--root', app, '--reporter=json', `--outputFile.json=${output}`],
        { cwd: app, env: env() },
      )
      expect(r.code, describeRun(r)).toBe(0)
      const report = JSON.parse(await readFile(output, 'utf8'))
      expect(report.numPassedTests).toBe(2)
      expect(report.numFailedTests).toBe(0)
    },
    SPAWNING_TEST_TIMEOUT,
  )

  it(
    'six CLI runners held at the run lock together apply each migration once; an edited applied file is refused by name',
    async () => {
      const other = await createEmptyDatabase()
      const bin = join(app, 'node_modules', '.bin', 'guildstore')
      const migration = join(
        app,
        'node_modules',
        'guildstore',
        'migrations',
        '0001_initial_schema.sql',
      )
      const original = await readFile(migration, 'utf8')
      // Runners poll the run lock with a try-lock (no lock waiter to count): a
      // holder keeps it until every runner has said on stderr that it waits.
      const holder = new pg.Client({ connectionString: other.url })
      await holder.connect()
      try {
        await holder.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY])
        const children = Array.from({ length: 6 }, () =>
          runWatched(bin, ['migrate', '--json', '--database-url', other.url], {
            cwd: app,
            env: env(),
          }),
        )
        const waiting = 'guildstore: waiting for the migration lock held by another runner'
        await until(
          () => children.every((c) => c.stderr().includes(waiting)),
          'six waiting CLI runners',
          120_000,
        )
        await holder.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY])
        const runners = await Promise.all(children.map((c) => c.done))
        for (const r of runners) expect(r.stderr).toContain(waiting)
        for (const r of runners) expect(r.code, describeRun(r)).toBe(0)
        const applied = runners.flatMap((r) => JSON.parse(r.stdout).applied)
        expect(applied.map((m: { name: string }) => m.name)).toEqual(
          MIGRATION_FILES.map((f) => f.replace(/^\d+_/, '').replace(/\.sql$/, '')),
        )

        await writeFile(migration, `${original}\n-- edited after it was applied\n`)
        const status = await run(bin, ['status', '--database-url', other.url], {
          cwd: app,
          env: env(),
        })
        const migrate = await run(bin, ['migrate', '--database-url', other.url], {
          cwd: app,
          env: env(),
        })
        for (const r of [status, migrate]) {
          expect(r.code, describeRun(r)).toBe(4)
          expect(r.stderr + r.stdout).toContain('0001_initial_schema.sql')
        }
      } finally {
        await holder.end().catch(() => {})
        await writeFile(migration, original)
        await other.drop()
      }
    },
    SPAWNING_TEST_TIMEOUT,
  )
})
