/**
 * `npm run example` (examples/chat-service/start.ts) as a user runs it: with
 * server URLs, on the embedded PostgreSQL with local servers made invisible
 * (closed ports, no Docker), and its failures (a busy port, a missing
 * database), each an explanation without a stack.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedis } from '../../src/index.ts'
import { createEmptyDatabase, type EmptyDatabase, repoRoot, run } from '../package/support.ts'
import { testDatabaseUrl, testRedisUrl } from '../support/env.ts'
import { freePort } from '../support/local-servers.ts'

const start = join(repoRoot, 'examples', 'chat-service', 'start.ts')
/** What a first run applies: every migration file of the package. */
const APPLIED_ALL = `migrations: applied ${
  readdirSync(join(repoRoot, 'migrations')).filter((f) => f.endsWith('.sql')).length
}`
const namespace = `gs_test_start_${randomBytes(6).toString('hex')}`
const PASSWORD = 'correct horse battery staple'
/** Generous: PGlite takes 5–15 s to start on a loaded machine. */
const START_TIMEOUT = 120_000

interface Example {
  url: string
  output(): { stdout: string; stderr: string }
  stop(): Promise<number | null>
}

/** Starts the example's script; resolves with its URL once it listens. */
async function startExample(env: Record<string, string>): Promise<Example> {
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
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`no URL within ${START_TIMEOUT} ms: ${stderr}`))
    }, START_TIMEOUT)
    child.stdout?.on('data', (d) => {
      stdout += d
      const match = /listening on (http:\/\/\S+)/.exec(stdout)
      if (match?.[1]) {
        clearTimeout(timer)
        resolve(match[1])
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited ${code}: ${stderr}`))
    })
  })
  return {
    url,
    output: () => ({ stdout, stderr }),
    async stop(): Promise<number | null> {
      if (child.exitCode !== null) return child.exitCode
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const [code] = await exited
      return code as number | null
    },
  }
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field
async function call(url: string, method: string, body?: unknown, token?: string): Promise<any> {
  const res = await fetch(url, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`)
  return text ? JSON.parse(text) : undefined
}

const login = async (base: string, username: string): Promise<string> =>
  (await call(`${base}/login`, 'POST', { username, password: PASSWORD })).token

/** Demo guild's channels by name, as demo_ada sees them. */
async function demoChannels(base: string, token: string): Promise<Map<string, string>> {
  const { guilds } = await call(`${base}/guilds`, 'GET', undefined, token)
  const demo = guilds.find((g: { name: string }) => g.name === 'Demo guild')
  const { channels } = await call(`${base}/guilds/${demo.id}/channels`, 'GET', undefined, token)
  return new Map(channels.map((c: { name: string; id: string }) => [c.name, c.id]))
}

/** Opens a channel's event stream; `next()` resolves with the next message_created. */
async function openEvents(base: string, channelId: string, token: string) {
  const controller = new AbortController()
  const res = await fetch(`${base}/channels/${channelId}/events`, {
    headers: { authorization: `Bearer ${token}` },
    signal: controller.signal,
  })
  expect(res.status).toBe(200)
  const reader = res.body?.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  const frame = async (): Promise<string> => {
    for (;;) {
      const cut = buffer.indexOf('\n\n')
      if (cut >= 0) {
        const out = buffer.slice(0, cut)
        buffer = buffer.slice(cut + 2)
        return out
      }
      const chunk = await reader?.read()
      if (!chunk || chunk.done) throw new Error('stream ended')
      buffer += chunk.value
    }
  }
  await frame() // the subscription stands
  return {
    async nextMessage(): Promise<{ content: string }> {
      for (;;) {
        const f = await frame()
        const data = f.split('\n').find((l) => l.startsWith('data: '))
        if (f.includes('event: message_created') && data) return JSON.parse(data.slice(6)).message
      }
    },
    close: () => controller.abort(),
  }
}

/** Redacts nothing, asserts an explanation: no stack frames in what the user sees. */
const expectNoStack = (stderr: string) => {
  expect(stderr).not.toMatch(/^\s+at /m)
  expect(stderr).not.toContain('Error:')
}

describe('npm run example (examples/chat-service/start.ts)', () => {
  let database: EmptyDatabase
  let pgliteDir: string
  beforeAll(async () => {
    database = await createEmptyDatabase()
    pgliteDir = await mkdtemp(join(tmpdir(), 'guildstore-pglite-'))
  })
  afterAll(async () => {
    await database?.drop()
    if (pgliteDir) await rm(pgliteDir, { recursive: true, force: true })
    const redis = createRedis({ url: testRedisUrl() })
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.del(...keys)
    } while (cursor !== '0')
    redis.disconnect()
  })

  it('migrates a blank database, seeds demo users, serves them, and stops on SIGTERM (twice)', async () => {
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: testRedisUrl(),
      PORT: '0',
      CHAT_REDIS_NAMESPACE: namespace,
    }
    for (const expected of [APPLIED_ALL, 'migrations: up to date']) {
      const example = await startExample(env)
      try {
        expect(example.output().stdout).toContain(`curl -s -X POST ${example.url}/login`)
        expect(example.output().stdout).toContain(`Open ${example.url}/ in a browser`)
        expect(example.output().stderr).toContain('(DATABASE_URL)')
        expect(example.output().stderr).toContain('(REDIS_URL)')
        const token = await login(example.url, 'demo_ada')
        const { messages } = await call(`${example.url}/search?q=welcome`, 'GET', undefined, token)
        expect(messages.map((m: { content: string }) => m.content)).toEqual([
          'Welcome to the demo guild!',
        ])
        const page = await fetch(`${example.url}/`)
        expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
        expect(await page.text()).toContain('<script type="module" src="/app.js"></script>')
        expect(example.output().stderr).toContain(expected)
      } finally {
        expect(await example.stop()).toBe(0)
      }
    }
  }, 300_000)

  it('with local servers invisible and no Docker: embedded PostgreSQL (kept across restarts) and single-process mode', async () => {
    const [closedPg, closedRedis] = [await freePort(), await freePort()]
    const env = {
      GUILDSTORE_LOCAL_DATABASE_URL: `postgres://postgres@127.0.0.1:${closedPg}/postgres`,
      GUILDSTORE_LOCAL_REDIS_URL: `redis://127.0.0.1:${closedRedis}`,
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      GUILDSTORE_PGLITE_DIR: join(pgliteDir, 'data'),
      PORT: '0',
    }
    const text = `saved in the embedded database ${randomBytes(3).toString('hex')}`
    const first = await startExample(env)
    try {
      const { stderr } = first.output()
      expect(stderr).toContain(`nothing on 127.0.0.1:${closedPg}, no Docker`)
      expect(stderr).toContain(
        `starting an embedded PostgreSQL (PGlite, data in ${env.GUILDSTORE_PGLITE_DIR}`,
      )
      expect(stderr).toContain('SINGLE-PROCESS MODE')
      expect(stderr).toContain(APPLIED_ALL)
      expect(existsSync(env.GUILDSTORE_PGLITE_DIR)).toBe(true)

      const ada = await login(first.url, 'demo_ada')
      const grace = await login(first.url, 'demo_grace')
      const channels = await demoChannels(first.url, ada)
      const general = channels.get('general') as string
      // History with paging: 120 seeded notes in #history, newest first.
      const history = channels.get('history') as string
      const page1 = await call(
        `${first.url}/channels/${history}/messages?limit=50`,
        'GET',
        undefined,
        grace,
      )
      const page2 = await call(
        `${first.url}/channels/${history}/messages?limit=50&before=${page1.messages.at(-1).id}`,
        'GET',
        undefined,
        grace,
      )
      expect(page1.messages[0].content).toBe('history note 120 of 120')
      expect(page2.messages[0].content).toBe('history note 70 of 120')

      // Live events fan out inside the process: Grace's stream sees Ada's post.
      const events = await openEvents(first.url, general, grace)
      try {
        await call(`${first.url}/channels/${general}/messages`, 'POST', { content: text }, ada)
        expect((await events.nextMessage()).content).toBe(text)
      } finally {
        events.close()
      }
      const found = await call(`${first.url}/search?q=embedded`, 'GET', undefined, grace)
      expect(found.messages.map((m: { content: string }) => m.content)).toEqual([text])

      // A second instance on the same data folder is refused with an explanation.
      const second = await run(process.execPath, [start], {
        env: { ...env, DATABASE_URL: undefined, REDIS_URL: undefined },
        timeoutMs: START_TIMEOUT,
      })
      expect(second.code).toBe(1)
      expect(second.stderr).toContain(
        `the embedded PostgreSQL data in ${env.GUILDSTORE_PGLITE_DIR} is in use by process`,
      )
      expectNoStack(second.stderr)
    } finally {
      expect(await first.stop()).toBe(0)
    }

    // Restarted on the same folder: nothing to migrate, the message is still there.
    const again = await startExample(env)
    try {
      expect(again.output().stderr).toContain('migrations: up to date')
      const ada = await login(again.url, 'demo_ada')
      const general = (await demoChannels(again.url, ada)).get('general') as string
      const { messages } = await call(
        `${again.url}/channels/${general}/messages?limit=5`,
        'GET',
        undefined,
        ada,
      )
      expect(messages[0].content).toBe(text)
    } finally {
      expect(await again.stop()).toBe(0)
    }
  }, 600_000)

  it('a busy port: names the port and PORT, exits 1, no stack', async () => {
    const busy: Server = createServer()
    busy.listen(0, '127.0.0.1')
    await once(busy, 'listening')
    const port = (busy.address() as { port: number }).port
    try {
      const r = await run(process.execPath, [start], {
        env: {
          DATABASE_URL: database.url,
          REDIS_URL: testRedisUrl(),
          CHAT_REDIS_NAMESPACE: namespace,
          PORT: String(port),
        },
        timeoutMs: START_TIMEOUT,
      })
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`)
      expect(r.stderr).toContain(`Set PORT to a free port, e.g. PORT=${port + 1}`)
      expectNoStack(r.stderr)
    } finally {
      busy.close()
    }
  }, 180_000)

  it('a missing database: names it and says how to create it, exits 1, no stack', async () => {
    const name = `gs_missing_${randomBytes(4).toString('hex')}`
    const url = new URL(testDatabaseUrl())
    url.pathname = `/${name}`
    const r = await run(process.execPath, [start], {
      env: { DATABASE_URL: url.toString(), REDIS_URL: testRedisUrl(), PORT: '0' },
      timeoutMs: 60_000,
    })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      `database "${name}" does not exist on ${url.hostname}:${url.port || 5432} (DATABASE_URL)`,
    )
    expect(r.stderr).toContain(`-c 'CREATE DATABASE "${name}"'`)
    expectNoStack(r.stderr)
  }, 120_000)
})
