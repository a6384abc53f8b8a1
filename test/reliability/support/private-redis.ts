import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { waitFor } from './ports.ts'

/** A throwaway `redis-server` (no persistence) on its own loopback port. */
export interface PrivateRedis {
  readonly url: string
  start(): Promise<void>
  /** SIGKILL: the server vanishes without a goodbye, like a crash. */
  kill(): Promise<void>
}

export function privateRedis(port: number): PrivateRedis {
  let child: ChildProcess | undefined
  return {
    url: `redis://127.0.0.1:${port}`,
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
      await waitFor(() => output.includes('Ready to accept connections'), 5000).catch((error) => {
        started.kill('SIGKILL')
        throw error
      })
    },
    async kill() {
      const running = child
      child = undefined
      if (!running || running.exitCode !== null || running.signalCode !== null) return
      const exited = once(running, 'exit')
      running.kill('SIGKILL')
      await exited
    },
  }
}
