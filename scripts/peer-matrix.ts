/**
 * Reruns the tests that depend on pg's internals (src/sql/wire-query.ts) and
 * a few hot paths on another `pg` of the peer range (`pg ^8.13.0`), by
 * default its oldest: `npm run peer-matrix` (= `node scripts/peer-matrix.ts`).
 *
 *   node scripts/peer-matrix.ts                       # pg 8.13.0
 *   node scripts/peer-matrix.ts --pg 8.15.0           # another version
 *   node scripts/peer-matrix.ts --prefix /tmp/pg813 test/core/wire-query.test.ts
 *
 * Installs `pg@<version>` with the OLDEST `pg-protocol` and `pg-pool` its own
 * dependency ranges allow (read with `npm view`: what a host that pinned them
 * would run) into a temporary prefix (default `<tmpdir>/guildstore-peer-pg-<version>`,
 * reused when it already holds that version), then runs vitest on the given
 * test files (default: {@link DEFAULT_FILES}) with `GUILDSTORE_PEER_PG` set,
 * so `import pg from 'pg'` loads that pg (vitest.config.ts), and
 * `GUILDSTORE_PEER_PG_VERSION`, which the first test of
 * test/core/wire-query.test.ts checks against the pg actually loaded.
 * Needs `TEST_DATABASE_URL` / `TEST_REDIS_URL` as the tests do, and the npm
 * registry (so it is not part of `.ci/run`). Exit code: vitest's (2 for bad usage or a failed install).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The tests it runs when no file is given: the wire path and the hot paths over it. */
export const DEFAULT_FILES = [
  'test/core/wire-query.test.ts',
  'test/core/prepared-query.test.ts',
  'test/repositories/search.test.ts',
  'test/repositories/messages.test.ts',
  'test/repositories/read-states.test.ts',
  'test/repositories/dms.test.ts',
  'test/repositories/permissions.test.ts',
  'test/messages/authorized.test.ts',
]

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const at = args.indexOf(name)
  if (at < 0) return undefined
  const value = args[at + 1]
  args.splice(at, 2)
  return value
}
const version = flag('--pg') ?? '8.13.0'
const prefix = flag('--prefix') ?? join(tmpdir(), `guildstore-peer-pg-${version}`)
if (!/^\d+\.\d+\.\d+$/.test(version) || args.some((a) => a.startsWith('--'))) {
  console.error('usage: node scripts/peer-matrix.ts [--pg 8.13.0] [--prefix DIR] [test files…]')
  process.exit(2)
}
const files = args.length > 0 ? args : DEFAULT_FILES
const log = (msg: string) => process.stderr.write(`[peer-matrix] ${msg}\n`)

/** Runs a command; its stdout, or exits 2 when it fails. */
function run(command: string, argv: string[], options: { cwd?: string } = {}): string {
  const r = spawnSync(command, argv, { encoding: 'utf8', ...options })
  if (r.status !== 0) {
    log(`${command} ${argv.join(' ')} failed:\n${r.stderr}`)
    process.exit(2)
  }
  return r.stdout
}

/** The version of a package installed under the prefix, if any. */
const installed = (name: string): string | undefined => {
  const file = join(prefix, 'node_modules', name, 'package.json')
  return existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
    : undefined
}

if (installed('pg') === version) {
  log(`reusing pg ${version} in ${prefix}`)
} else {
  const deps = JSON.parse(
    run('npm', ['view', `pg@${version}`, 'dependencies', '--json']),
  ) as Record<string, string>
  // the lowest version of a caret/tilde/exact range such as ^1.7.0
  const oldest = (name: string) => {
    const range = deps[name]
    const m = range ? /^[\^~]?(\d+\.\d+\.\d+)$/.exec(range) : null
    return m ? `${name}@${m[1]}` : name
  }
  const packages = [`pg@${version}`, oldest('pg-protocol'), oldest('pg-pool')]
  mkdirSync(prefix, { recursive: true })
  writeFileSync(join(prefix, 'package.json'), '{"name":"guildstore-peer-pg","private":true}\n')
  log(`installing ${packages.join(' ')} into ${prefix}`)
  run('npm', ['install', '--no-audit', '--no-fund', '--no-save', ...packages], { cwd: prefix })
}
log(
  `pg ${installed('pg')}, pg-protocol ${installed('pg-protocol')}, pg-pool ${installed('pg-pool')}: ${files.length} test file(s)`,
)
const vitest = spawnSync('npx', ['vitest', 'run', ...files], {
  stdio: 'inherit',
  env: {
    ...process.env,
    GUILDSTORE_PEER_PG: join(prefix, 'node_modules', 'pg'),
    GUILDSTORE_PEER_PG_VERSION: version,
  },
})
process.exit(vitest.status ?? 1)
