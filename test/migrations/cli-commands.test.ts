/**
 * The CLI is one module per command (issue 10, item 5): each command is a function that
 * returns its exit code, and `main` only parses and dispatches to them.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { migrateCommand } from '../../src/cli/commands/migrate.ts'
import { newCommand } from '../../src/cli/commands/new.ts'
import { statusCommand } from '../../src/cli/commands/status.ts'
import { ExitCode } from '../../src/cli/exit-code.ts'
import { type CliIo, reporter } from '../../src/cli/io.ts'
import {
  createFreshDatabase,
  emptyDir,
  type FreshDatabase,
  fixtureDir,
} from './fixtures/database.ts'

function sink(cwd?: string): CliIo & { out: () => string; err: () => string } {
  let stdout = ''
  let stderr = ''
  return {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
    ...(cwd ? { cwd } : {}),
    out: () => stdout,
    err: () => stderr,
  }
}

describe('one module per CLI command, each returning its exit code', () => {
  let db: FreshDatabase
  beforeEach(async () => {
    db = await createFreshDatabase()
  })
  afterEach(async () => {
    await db.drop()
  })

  it('status → 3 (pending), migrate → 0, status → 0, new → 0, without going through main', async () => {
    const options = { databaseUrl: db.url, dir: fixtureDir('basic'), json: true }
    const io = sink()
    expect(await statusCommand(options, io, reporter(io))).toBe(ExitCode.Pending)
    expect(await migrateCommand(options, io, reporter(io))).toBe(ExitCode.Success)
    expect(await statusCommand(options, io, reporter(io))).toBe(ExitCode.Success)
    const project = await emptyDir()
    try {
      const local = sink(project.dir)
      expect(await newCommand(['first'], {}, local, reporter(local))).toBe(ExitCode.Success)
      expect(await readdir(join(project.dir, 'migrations'))).toEqual(['0001_first.sql'])
    } finally {
      await project.remove()
    }
  })

  it('main only parses and dispatches: it stays short and imports each command module', async () => {
    const source = await readFile(
      fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url)),
      'utf8',
    )
    const body = /^export async function main[\s\S]*?^}/m.exec(source)?.[0] ?? ''
    expect(body.split('\n').length).toBeLessThanOrEqual(40) // 0.1.0: 121 lines
    for (const command of ['migrate', 'status', 'new']) {
      expect(source).toContain(`from './commands/${command}.ts'`)
    }
    expect(source).not.toMatch(/runMigrations|migrationStatus|createMigration/)
  })
})
