/**
 * Helpers for tests that run servers of their own on loopback ports (never the
 * shared ones): a free port, polling, and a throwaway `redis-server`.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'

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

/** Resolves once `check` returns true, polling every `everyMs`; rejects after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  // Generous: only a failing condition waits this long, and a loaded 2-core box is slow.
  timeoutMs = 30_000,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** A redis-server this test started itself, on its own loopback port. */
export interface OwnRedisServer {
  port: number
  url: string
  start(): Promise<void>
  /** `SIGTERM` (default) shuts down cleanly; `SIGKILL` makes it vanish like a crash. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>
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
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: ['ignore', 'pipe', 'ignore'] },
      )
      child = started
      let output = ''
      started.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString()
      })
      await waitFor(() => output.includes('Ready to accept connections'), 30_000).catch((error) => {
        started.kill('SIGKILL')
        throw error
      })
    },
    async stop(signal = 'SIGTERM') {
      const running = child
      child = undefined
      if (!running || running.exitCode !== null || running.signalCode !== null) return
      const exited = once(running, 'exit')
      running.kill(signal)
      await exited
    },
  }
}
