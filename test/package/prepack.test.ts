/**
 * Issue 11, item 13: `npm pack` on a clean checkout (no dist/) must build first
 * (0.1.0 shipped a tarball without dist/ and exited 0), and `ExitCode`, which
 * the README documents, must be reachable from the package entry.
 */
import { cp, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises'
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
    // Issue 27: the tarball holds exactly what a consumer needs. Top level: the manifest
    // and the four documents; below, only dist/src, dist/codegen and migrations/.
    const top = files.filter((f) => !f.includes('/')).sort()
    expect(top).toEqual(['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json'])
    expect(
      files.filter((f) => f.includes('/') && !/^(dist\/src|dist\/codegen|migrations)\//.test(f)),
    ).toEqual([])
    // Every migration of the checkout, and nothing else, under migrations/.
    const migrations = (await readdir(join(repoRoot, 'migrations'))).map((f) => `migrations/${f}`)
    expect(files.filter((f) => f.startsWith('migrations/')).sort()).toEqual(migrations.sort())
    // Every module with its declarations; no sources, tests or source maps.
    const js = files.filter((f) => f.endsWith('.js'))
    expect(js.length).toBeGreaterThan(50)
    expect(js.filter((f) => !files.includes(f.replace(/\.js$/, '.d.ts')))).toEqual([])
    expect(files.filter((f) => /\.(ts|map)$/.test(f) && !f.endsWith('.d.ts'))).toEqual([])
    expect(files.filter((f) => /(^|\/)(test|tests|__tests__)\/|\.test\./.test(f))).toEqual([])
    // A tsc process on a possibly loaded machine: explicit and generous.
  }, 300_000)
})

describe('package.json', () => {
  it('declares bin paths as npm publish keeps them (no leading ./, which npm 11 drops)', async () => {
    const manifest = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {
      bin: Record<string, string>
    }
    expect(manifest.bin).toEqual({ guildstore: 'dist/src/cli/bin.js' })
  })
})

describe('ExitCode', () => {
  it('is exported from the package entry with the documented values', () => {
    expect(ExitCode).toEqual({ Success: 0, Error: 1, Usage: 2, Pending: 3, Changed: 4 })
  })
})
