import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createEmptyDatabase,
  describeRun,
  type EmptyDatabase,
  quickstartBlock,
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
