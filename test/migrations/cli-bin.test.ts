import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ExitCode } from '../../src/cli/exit-code.ts'
import { createFreshDatabase, type FreshDatabase, fixtureDir } from './fixtures/database.ts'

const bin = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url))
const run = promisify(execFile)

describe('the guildstore executable', () => {
  let db: FreshDatabase
  beforeEach(async () => {
    db = await createFreshDatabase()
  })
  afterEach(async () => {
    await db.drop()
  })

  it('runs as a child process: status exits 3, migrate 0, status 0', async () => {
    const env = { ...process.env, DATABASE_URL: db.url }
    const args = ['--dir', fixtureDir('basic'), '--json']
    const pending = await run(process.execPath, [bin, 'status', ...args], { env }).catch(
      (e: { code: number; stdout: string }) => e,
    )
    expect('code' in pending ? pending.code : 0).toBe(ExitCode.Pending)
    const listed = JSON.parse(pending.stdout).migrations as { set: string }[]
    expect(listed.filter((m) => m.set === 'host')).toHaveLength(3)

    const migrate = await run(process.execPath, [bin, 'migrate', ...args], { env })
    const applied = JSON.parse(migrate.stdout).applied as { set: string }[]
    expect(applied.filter((m) => m.set === 'host')).toHaveLength(3)
    expect(applied.length).toBe(listed.length)
    expect(migrate.stderr).toContain('applied host 0001_create_widgets.sql')

    const done = await run(process.execPath, [bin, 'status', ...args], { env })
    expect(
      JSON.parse(done.stdout).migrations.every((m: { state: string }) => m.state === 'applied'),
    ).toBe(true)
    // Three child Node processes: generous on a loaded machine.
  }, 180_000)
})
