/**
 * `npm test` with no servers anywhere (no TEST_* variables, the local default
 * ports closed, no Docker) prints only the explanation and exits 1: no
 * "No test files found", no stack.
 */
import { describe, expect, it } from 'vitest'
import { repoRoot, run } from '../package/support.ts'
import { freePort } from '../support/local-servers.ts'

describe('npm test without servers', () => {
  it('prints only what it looked for and how to provide it, exit 1', async () => {
    const closed = await freePort()
    const r = await run('npm', ['test', '--', 'test/core/ids.test.ts'], {
      cwd: repoRoot,
      env: {
        TEST_DATABASE_URL: undefined,
        TEST_REDIS_URL: undefined,
        GUILDSTORE_LOCAL_DATABASE_URL: `postgres://postgres@127.0.0.1:${closed}/postgres`,
        GUILDSTORE_LOCAL_REDIS_URL: `redis://127.0.0.1:${closed}`,
        DOCKER_HOST: 'unix:///nonexistent/docker.sock',
        NO_COLOR: '1',
        FORCE_COLOR: undefined,
      },
      timeoutMs: 120_000,
    })
    expect(r.code).toBe(1)
    const output = `${r.stdout}\n${r.stderr}`
    expect(r.stderr).toContain(
      `found no PostgreSQL (TEST_DATABASE_URL is not set, nothing answers on 127.0.0.1:${closed}) and Redis (TEST_REDIS_URL is not set, nothing answers on 127.0.0.1:${closed}); no Docker engine answers`,
    )
    expect(r.stderr).toContain('TEST_REDIS_URL=redis://127.0.0.1:6379 npm test')
    expect(output).not.toContain('No test files found')
    expect(output).not.toContain('Unhandled Error')
    expect(output).not.toMatch(/^\s+(at|❯) /m)
  }, 150_000)
})
