/**
 * Issue 11, item 13: `npm pack` on a clean checkout (no dist/) must build first
 * (0.1.0 shipped a tarball without dist/ and exited 0), and `ExitCode`, which
 * the README documents, must be reachable from the package entry.
 */
import { cp, mkdtemp, readdir, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ExitCode } from '../../src/index.ts'
import { describeRun, repoRoot, run } from './support.ts'

describe('npm pack on a checkout without dist/', () => {
  const dirs: string[] = []
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  })

  it('builds first (prepack) and ships dist/', async () => {
    const checkout = await mkdtemp(join(tmpdir(), 'guildstore-prepack-'))
    const out = await mkdtemp(join(tmpdir(), 'guildstore-prepack-out-'))
    dirs.push(checkout, out)
    // What a clean clone has (sources, no dist/), with this repository's node_modules.
    for (const entry of [
      'package.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'src',
      'codegen',
      'migrations',
      'README.md',
      'CHANGELOG.md',
      'LICENSE',
    ]) {
      await cp(join(repoRoot, entry), join(checkout, entry), { recursive: true })
    }
    await symlink(join(repoRoot, 'node_modules'), join(checkout, 'node_modules'), 'dir')
    expect(await readdir(checkout)).not.toContain('dist')

    const pack = await run('npm', ['pack', '--json', '--pack-destination', out], {
      cwd: checkout,
      timeoutMs: 240_000,
    })
    expect(pack.code, describeRun(pack)).toBe(0)
    // npm prints the lifecycle scripts' output before the JSON document.
    const json = pack.stdout.slice(pack.stdout.indexOf('[\n'))
    const [info] = JSON.parse(json) as Array<{ files: { path: string }[] }>
    const files = info!.files.map((f) => f.path)
    expect(files).toEqual(
      expect.arrayContaining([
        'dist/src/index.js',
        'dist/src/index.d.ts',
        'dist/src/cli/bin.js',
        'dist/src/testing/index.js',
      ]),
    )
    // A tsc process on a possibly loaded machine: explicit and generous.
  }, 300_000)
})

describe('ExitCode', () => {
  it('is exported from the package entry with the documented values', () => {
    expect(ExitCode).toEqual({ Success: 0, Error: 1, Usage: 2, Pending: 3, Changed: 4 })
  })
})
