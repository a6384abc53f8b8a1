import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { testDatabaseUrl } from '../support/env.ts'

/** The repository root. */
export const repoRoot = join(import.meta.dirname, '..', '..')

/** A blank database (no migrations) of the calling test's own. */
export interface EmptyDatabase {
  url: string
  drop(): Promise<void>
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
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
