/**
 * A Node.js older than 22.12 gets one line saying so and how to fix it — from
 * the CLI, the example (`npm run example`) and the test setup alike. The old
 * version is faked with a preloaded module, so this runs on any Node; the
 * machine's own old Node (Debian's /usr/bin/node, when it is one) is tried too.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot, run } from '../package/support.ts'

const FAKE_OLD =
  "data:text/javascript,Object.defineProperty(process,'version',{value:'v20.20.2'});" +
  "Object.defineProperty(process,'versions',{value:{...process.versions,node:'20.20.2'}})"

const entries: [string, string[]][] = [
  ['the CLI (src/cli/bin.ts)', [join(repoRoot, 'src', 'cli', 'bin.ts'), 'status']],
  [
    'npm run example (scripts/require-node.mjs first)',
    [join(repoRoot, 'scripts', 'require-node.mjs')],
  ],
  [
    'the test setup (vitest.config.ts)',
    [join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'test/core/ids.test.ts'],
  ],
]

const expectOneLine = (stderr: string, version: string) => {
  const lines = stderr.trim().split('\n')
  expect(lines).toHaveLength(1)
  expect(lines[0]).toMatch(
    new RegExp(
      `^guildstore needs Node\\.js >= 22\\.12, but this is ${version.replaceAll('.', '\\.')}\\. Fix: .*(node@24|\\./dev)`,
    ),
  )
}

describe('Node.js older than 22.12', () => {
  for (const [name, args] of entries) {
    it(`${name}: one line, exit 1`, async () => {
      const r = await run(process.execPath, ['--import', FAKE_OLD, ...args], { timeoutMs: 60_000 })
      expect(r.code).toBe(1)
      expect(r.stdout).toBe('')
      expectOneLine(r.stderr, 'v20.20.2')
    })
  }

  it('npm run example names its fix (./dev) and the CLI its own (node@24)', async () => {
    const example = await run(process.execPath, [
      '--import',
      FAKE_OLD,
      entries[1]?.[1][0] as string,
    ])
    expect(example.stderr).toContain('run ./dev (it brings Node 24 from the npm registry)')
    const cli = await run(process.execPath, ['--import', FAKE_OLD, entries[0]?.[1][0] as string])
    expect(cli.stderr).toContain('npm install --prefix ~/.cache/node24 node@24')
  })

  it('the real thing: the machine Node, when it is older than 22.12, gets the same line', async () => {
    const machine = '/usr/bin/node'
    const version = existsSync(machine)
      ? execFileSync(machine, ['--version'], { encoding: 'utf8' }).trim()
      : undefined
    const [major = 0, minor = 0] = (version ?? 'v0.0').slice(1).split('.').map(Number)
    const old = version !== undefined && (major < 22 || (major === 22 && minor < 12))
    // Where the machine's Node is new enough (or absent), the faked runs above stand alone.
    const node = old ? machine : process.execPath
    const args = old ? [] : ['--import', FAKE_OLD]
    const r = await run(node, [...args, join(repoRoot, 'scripts', 'require-node.mjs')])
    expect(r.code).toBe(1)
    expectOneLine(r.stderr, old ? (version as string) : 'v20.20.2')
  })
})
