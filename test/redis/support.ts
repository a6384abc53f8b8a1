import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:net'
import type { Redis } from 'ioredis'
import { inject } from 'vitest'
import '../support/env.ts'

/** The Redis URL of the test run: the global setup's, else TEST_REDIS_URL, else the local default. */
export function redisUrl(): string {
  let provided: string | undefined
  try {
    provided = inject('redisUrl')
  } catch {
    provided = undefined
  }
  return provided || process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379'
}

/** A random namespace for one test file, so its keys never meet another file's. */
export function testNamespace(label: string): string {
  return `gs_test_${label}_${randomBytes(6).toString('hex')}`
}

/** Every key under `namespace` (SCAN, never KEYS). */
export async function namespaceKeys(redis: Redis, namespace: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}

/** Deletes every key under `namespace` and nothing else. */
export async function deleteNamespace(redis: Redis, namespace: string): Promise<void> {
  const keys = await namespaceKeys(redis, namespace)
  if (keys.length > 0) await redis.del(...keys)
}

/** Resolves once `check` returns true, polling every 10 ms; rejects after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** A redis-server this test started itself, on its own loopback port. */
export interface OwnRedisServer {
  port: number
  url: string
  start(): Promise<void>
  stop(): Promise<void>
}

/** Manages a throwaway `redis-server` (no persistence) on `port`. */
export function ownRedisServer(port: number): OwnRedisServer {
  let child: ChildProcess | undefined
  const url = `redis://127.0.0.1:${port}`
  return {
    port,
    url,
    async start() {
      const started = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--daemonize',
          'no',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
      child = started
      let output = ''
      started.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString()
      })
      await waitFor(() => output.includes('Ready to accept connections'), 5000).catch((error) => {
        started.kill('SIGKILL')
        throw error
      })
    },
    async stop() {
      const running = child
      child = undefined
      if (!running || running.exitCode !== null || running.signalCode !== null) return
      const exited = once(running, 'exit')
      running.kill('SIGTERM')
      await exited
    },
  }
}
