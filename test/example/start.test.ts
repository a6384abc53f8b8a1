import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedis } from '../../src/index.ts'
import { createEmptyDatabase, type EmptyDatabase, repoRoot, run } from '../package/support.ts'
import { testRedisUrl } from '../support/env.ts'

const start = join(repoRoot, 'examples', 'chat-service', 'start.ts')
const namespace = `gs_test_start_${randomBytes(6).toString('hex')}`
/** How many migrations the package ships (a blank database gets them all). */
const migrationCount = readdirSync(join(repoRoot, 'migrations')).filter((f) =>
  /^\d+_[a-z0-9_]+\.sql$/.test(f),
).length

/** Starts `npm run example`'s script; resolves with its URL once it listens. */
async function startExample(env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, [start], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stderr?.on('data', (d) => {
    stderr += d
  })
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d) => {
      stdout += d
      const match = /listening on (http:\/\/\S+)/.exec(stdout)
      if (match?.[1]) resolve(match[1])
    })
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)))
    // A child that compiles TypeScript, migrates and seeds: generous on a loaded machine.
    setTimeout(() => reject(new Error(`no URL within 90 s: ${stderr}`)), 90_000)
  })
  return {
    url,
    output: () => ({ stdout, stderr }),
    async stop(): Promise<number | null> {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const [code] = await exited
      return code as number | null
    },
  }
}

describe('npm run example (examples/chat-service/start.ts)', () => {
  let database: EmptyDatabase
  beforeAll(async () => {
    database = await createEmptyDatabase()
  })
  afterAll(async () => {
    await database?.drop()
    const redis = createRedis({ url: testRedisUrl() })
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.del(...keys)
    } while (cursor !== '0')
    redis.disconnect()
  })

  it('without servers or Docker, says what to set and exits 1', async () => {
    const r = await run(process.execPath, [start], {
      env: {
        DATABASE_URL: undefined,
        REDIS_URL: undefined,
        DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      },
      timeoutMs: 90_000,
    })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('DATABASE_URL=')
    expect(r.stderr).toContain('REDIS_URL=')
  }, 120_000)

  it('migrates a blank database, seeds demo users, serves them, and stops on SIGTERM (twice)', async () => {
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: testRedisUrl(),
      PORT: '0',
      CHAT_REDIS_NAMESPACE: namespace,
    }
    for (const expected of [`migrations: applied ${migrationCount}`, 'migrations: up to date']) {
      const example = await startExample(env)
      try {
        expect(example.output().stdout).toContain(`curl -s -X POST ${example.url}/login`)
        const login = await fetch(`${example.url}/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'demo_ada', password: 'correct horse battery staple' }),
        })
        expect(login.status).toBe(200)
        const { token } = (await login.json()) as { token: string }
        const search = await fetch(`${example.url}/search?q=welcome`, {
          headers: { authorization: `Bearer ${token}` },
        })
        const { messages } = (await search.json()) as { messages: { content: string }[] }
        expect(messages.map((m) => m.content)).toEqual(['Welcome to the demo guild!'])
        expect(example.output().stderr).toContain(expected)
      } finally {
        expect(await example.stop()).toBe(0)
      }
    }
  }, 240_000)
})
