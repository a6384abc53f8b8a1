import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { chmod, copyFile, cp, mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { expect } from 'vitest'
import { testDatabaseUrl } from '../support/env.ts'

/** The repository root. */
export const repoRoot = join(import.meta.dirname, '..', '..')

/** A blank database (no migrations) of the calling test's own. */
export interface EmptyDatabase {
  url: string
  drop(): Promise<void>
}

/** Runs `fn` with a client of the test server's admin database. */
export async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testDatabaseUrl() })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** Creates `gs_pkg_<random>` on the test server; `drop()` drops it (connections and all). */
export async function createEmptyDatabase(): Promise<EmptyDatabase> {
  const name = `gs_pkg_${randomBytes(6).toString('hex')}`
  await admin((c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`))
  const url = new URL(testDatabaseUrl())
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      await admin((c) =>
        c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`),
      )
    },
  }
}

/** What a finished child process left behind. */
export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/**
 * Runs a command and resolves with its exit code and output (never rejects on
 * a non-zero exit). The child gets this Node first on its PATH and none of
 * vitest's own environment variables.
 */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<RunResult> {
  const env: Record<string, string | undefined> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(VITEST|VITE_|TINYPOOL|NODE_OPTIONS$)/.test(key)) env[key] = value
  }
  env.PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`
  Object.assign(env, options.env)
  return new Promise((resolve) => {
    execFile(
      command,
      [...args],
      {
        cwd: options.cwd ?? repoRoot,
        env,
        timeout: options.timeoutMs ?? 180_000,
        maxBuffer: 32 * 1024 * 1024,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

/** A readable summary of a failed child, for assertion messages. */
export const describeRun = (r: RunResult): string =>
  `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`

/**
 * The README's quickstart, run as written against a blank database. The block
 * is the first ```ts fence under "## Quickstart" in README.md.
 */
export function quickstartBlock(): { code: string; source: string } {
  for (const file of ['README.md']) {
    const path = join(repoRoot, file)
    if (!existsSync(path)) continue
    const text = readFileSync(path, 'utf8')
    const heading = /^## Quickstart\s*$/m.exec(text)
    if (!heading) continue
    const section = text.slice(heading.index + heading[0].length).split(/^## /m)[0] ?? ''
    const block = /^```ts\n([\s\S]*?)^```$/m.exec(section)
    if (block?.[1]) return { code: block[1], source: file }
  }
  throw new Error('no ```ts block under "## Quickstart" in README.md')
}

/** The version of a dev dependency as installed in this repository. */
export const installed = async (name: string): Promise<string> =>
  (
    JSON.parse(await readFile(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as {
      version: string
    }
  ).version

/** npm in `cwd`, with a generous timeout (it spawns and may hit the cache). */
export const npm = (args: string[], cwd: string) => run('npm', args, { cwd, timeoutMs: 240_000 })

/** The peer dependencies a consumer installs next to the tarball, at this repository's versions. */
export const peerDependencySpecs = async (): Promise<string[]> =>
  Promise.all(
    ['kysely', 'pg', 'ioredis', '@types/pg', 'typescript'].map(
      async (d) => `${d}@${await installed(d)}`,
    ),
  )

/**
 * Builds the current sources into `<tmp>/stage` (never touching ./dist) and packs
 * it with `npm pack`, as `npm publish` would: the tarball and its file list.
 */
export async function packGuildstore(
  tmp: string,
): Promise<{ packedFiles: string[]; tarball: string }> {
  const manifest = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {
    files: string[]
  }
  const stage = join(tmp, 'stage')
  await mkdir(stage, { recursive: true })

  // 1. Build the current sources into the staging copy: what `npm run build` makes.
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc')
  const build = await run(
    process.execPath,
    [tsc, '-p', 'tsconfig.build.json', '--outDir', join(stage, 'dist')],
    { timeoutMs: 300_000 },
  )
  expect(build.code, describeRun(build)).toBe(0)
  await chmod(join(stage, 'dist', 'src', 'cli', 'bin.js'), 0o755)
  await copyFile(join(repoRoot, 'package.json'), join(stage, 'package.json'))
  const extras = [...manifest.files.filter((f) => !f.startsWith('dist')), 'README.md', 'LICENSE']
  for (const entry of new Set(extras)) {
    if (existsSync(join(repoRoot, entry))) {
      await cp(join(repoRoot, entry), join(stage, entry), { recursive: true })
    }
  }

  // 2. npm pack, as `npm publish` would.
  const pack = await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], stage)
  expect(pack.code, describeRun(pack)).toBe(0)
  const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: { path: string }[] }>
  if (!info) throw new Error('npm pack printed nothing')
  const tarball = join(tmp, info.filename)
  return { packedFiles: info.files.map((f) => f.path), tarball }
}

/**
 * The package as a consumer gets it: {@link packGuildstore}, then the tarball
 * installed with the peer dependencies into the empty ESM project `app` (created here).
 */
export async function installPackedGuildstore(
  tmp: string,
  app: string,
): Promise<{ packedFiles: string[]; tarball: string }> {
  const packed = await packGuildstore(tmp)
  await mkdir(app, { recursive: true })

  // 3. An empty ESM project that installs the tarball and the peer dependencies.
  await writeFile(
    join(app, 'package.json'),
    `${JSON.stringify({ name: 'guildstore-consumer', private: true, type: 'module' }, null, 2)}\n`,
  )
  const install = await npm(
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
      packed.tarball,
      ...(await peerDependencySpecs()),
    ],
    app,
  )
  expect(install.code, describeRun(install)).toBe(0)
  return packed
}

/** The README's "## Quickstart" section. */
function quickstartSection(): string {
  const text = readFileSync(join(repoRoot, 'README.md'), 'utf8')
  const heading = /^## Quickstart\s*$/m.exec(text)
  if (!heading) throw new Error('no "## Quickstart" in README.md')
  return text.slice(heading.index + heading[0].length).split(/^## /m)[0] ?? ''
}

/** The ```sh blocks of the README's Quickstart, in order, as written. */
export function quickstartShellBlocks(): string[] {
  return [...quickstartSection().matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '')
}
