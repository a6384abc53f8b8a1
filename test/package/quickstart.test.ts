import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createEmptyDatabase,
  describeRun,
  type EmptyDatabase,
  packGuildstore,
  quickstartBlock,
  quickstartShellBlocks,
  repoRoot,
  run,
} from './support.ts'

describe('README quickstart', () => {
  const { code, source } = quickstartBlock()
  let database: EmptyDatabase
  let dir: string
  beforeAll(async () => {
    database = await createEmptyDatabase()
    dir = await mkdtemp(join(tmpdir(), 'guildstore-quickstart-'))
  })
  afterAll(async () => {
    await database?.drop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it(`imports only from 'guildstore' and states its output (${source})`, () => {
    const specifiers = [...code.matchAll(/from '([^']+)'/g)].map((m) => m[1])
    expect(specifiers).toEqual(['guildstore'])
    expect(code).toMatch(/^\/\/ → .+$/m)
  })

  it('runs against a blank database, exits 0 and prints what it says', async () => {
    const entry = pathToFileURL(join(repoRoot, 'src', 'index.ts')).href
    const file = join(dir, 'quickstart.ts')
    await writeFile(file, code.replaceAll("from 'guildstore'", `from '${entry}'`))
    const result = await run(process.execPath, [file], {
      cwd: dir,
      env: { DATABASE_URL: database.url },
      timeoutMs: 120_000,
    })
    expect(result.code, describeRun(result)).toBe(0)
    const expected = /^\/\/ → (.+)$/m.exec(code)?.[1]
    expect(result.stdout.trim()).toBe(expected)
    // A child Node process that compiles TypeScript on the fly: generous on a loaded machine.
  }, 180_000)
})

/**
 * Issue 27: the Quickstart as a newcomer runs it. Its shell blocks run as written in
 * an empty directory, with two substitutions: the tarball path (the tarball is packed
 * here from the current sources, as its first block does) and `DATABASE_URL` (a blank
 * database of this test's own). The peers are whatever the npm registry resolves now
 * (no lock file, `prefer-online`), so a peer release that breaks the Quickstart fails
 * here. `npx tsc --init` writes the current TypeScript's defaults; `skipLibCheck` is
 * then turned off, so the installed peers' own declarations are checked too.
 */
describe('README quickstart, as a newcomer runs it (fresh peers from the registry)', () => {
  let database: EmptyDatabase
  let tmp: string
  beforeAll(async () => {
    database = await createEmptyDatabase()
    tmp = await mkdtemp(join(tmpdir(), 'guildstore-newcomer-'))
  })
  afterAll(async () => {
    await database?.drop()
    if (tmp) await rm(tmp, { recursive: true, force: true })
  })

  it("runs the Quickstart's shell blocks and code as written, twice", async () => {
    const [checkout, project, runIt, ...rest] = quickstartShellBlocks()
    expect(rest).toEqual([])
    // The clone's block: `npm ci && npm pack` (npm pack builds first: test/package/prepack.test.ts).
    expect(checkout?.trim()).toMatch(/^npm ci && npm pack\s+# writes (guildstore-\S+\.tgz)$/)
    const written = /# writes (guildstore-\S+\.tgz)/.exec(checkout ?? '')?.[1]
    const { tarball } = await packGuildstore(tmp)
    expect(basename(tarball)).toBe(written)

    const placeholder = `/path/to/guildstore/${written}`
    expect(project).toContain(placeholder)
    const exportUrl = /^export DATABASE_URL=\S+$/m
    expect(project).toMatch(exportUrl)
    const script = (project ?? '')
      .replace(placeholder, tarball)
      .replace(exportUrl, `export DATABASE_URL='${database.url}'`)
    const env = {
      npm_config_prefer_online: 'true',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
    }
    const setup = await run('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: tmp,
      env,
      timeoutMs: 180_000,
    })
    expect(setup.code, describeRun(setup)).toBe(0)
    const app = join(tmp, 'chat-app')

    // tsc --init of the current TypeScript turns on strict and exactOptionalPropertyTypes.
    const tsconfigPath = join(app, 'tsconfig.json')
    const tsconfig = await readFile(tsconfigPath, 'utf8')
    expect(tsconfig).toMatch(/"strict": true/)
    expect(tsconfig).toMatch(/"exactOptionalPropertyTypes": true/)
    await writeFile(tsconfigPath, tsconfig.replace(/"skipLibCheck": true/, '"skipLibCheck": false'))
    const { code } = quickstartBlock()
    await writeFile(join(app, 'quickstart.ts'), code)

    const expected = /^\/\/ → (.+)$/m.exec(code)?.[1]
    for (const round of [1, 2]) {
      const r = await run('bash', ['-euo', 'pipefail', '-c', runIt ?? ''], {
        cwd: app,
        env: { ...env, DATABASE_URL: database.url },
        timeoutMs: 120_000,
      })
      expect(r.code, `round ${round}: ${describeRun(r)}`).toBe(0)
      expect(r.stdout.trim()).toBe(expected)
    }
    const versions = await run('npm', ['ls', '--depth=0', '--json'], { cwd: app })
    const deps = JSON.parse(versions.stdout).dependencies as Record<string, { version: string }>
    // What the registry gave this run, for the log.
    console.info(
      `[quickstart] ${Object.entries(deps)
        .map(([n, d]) => `${n}@${d.version}`)
        .join(' ')}`,
    )
  }, 300_000)
})
