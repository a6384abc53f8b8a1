/**
 * Packs the package and checks the tarball as a consumer would get it:
 * publint and @arethetypeswrong/cli (ESM-only profile) with no errors, and the
 * file list: dist/ and migrations/ in, tests and sources out.
 *
 *   npm run build && node scripts/check-package.ts
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = (name: string) => join(root, 'node_modules', '.bin', name)
const out = mkdtempSync(join(tmpdir(), 'guildstore-pack-'))
try {
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', out], {
      cwd: root,
      // Under `npm publish --dry-run` (prepublishOnly runs this script) npm sets
      // npm_config_dry_run, and a dry-run pack writes no tarball to check.
      env: { ...process.env, npm_config_dry_run: 'false' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  ) as Array<{ filename: string; files: Array<{ path: string }>; size: number }>
  const info = packed[0]
  if (!info) throw new Error('npm pack printed nothing')
  const tarball = join(out, info.filename)
  const files = info.files.map((f) => f.path)
  const problems: string[] = []
  const must = ['package.json', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts']
  for (const f of must) if (!files.includes(f)) problems.push(`missing ${f}`)
  if (!files.some((f) => f.startsWith('migrations/') && f.endsWith('.sql'))) {
    problems.push('no migrations/*.sql')
  }
  if (!files.includes('dist/src/cli/bin.js')) problems.push('missing the bin dist/src/cli/bin.js')
  if (!files.includes('dist/src/testing/index.js')) problems.push('missing guildstore/testing')
  for (const f of files) {
    if (/^(test|bench|scripts|examples|src)\//.test(f) || /\.test\.[jt]s$/.test(f)) {
      problems.push(`ships ${f}`)
    }
  }
  console.error(`${info.filename}: ${files.length} files, ${info.size} bytes`)
  execFileSync(bin('publint'), ['run', tarball, '--strict'], { cwd: root, stdio: 'inherit' })
  execFileSync(bin('attw'), [tarball, '--profile', 'esm-only', '--format', 'table-flipped'], {
    cwd: root,
    stdio: 'inherit',
  })
  if (problems.length) {
    console.error(`tarball problems:\n  ${problems.join('\n  ')}`)
    process.exitCode = 1
  }
} finally {
  rmSync(out, { recursive: true, force: true })
}
