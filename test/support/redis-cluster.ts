/**
 * A Redis Cluster of one test file's own: three masters (`redis-server
 * --cluster-enabled yes`) on spare loopback ports, joined with `redis-cli
 * --cluster create … --cluster-replicas 0`, torn down by `destroy()`. A master
 * can be killed and restarted on the same port and config file, so it rejoins
 * with its slots. Never the shared Redis.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { freePort, waitFor } from './local-servers.ts'

const run = promisify(execFile)

/** One cluster node process. */
export interface ClusterNode {
  readonly port: number
  /** Whether its process runs. */
  readonly running: boolean
  /** Starts (or restarts) it on its port with its config file. */
  start(): Promise<void>
  /** Kills it (`SIGKILL` by default: a crash). */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>
}

/** A throwaway 3-master Redis Cluster. */
export interface OwnRedisCluster {
  readonly nodes: readonly ClusterNode[]
  /** `[{ host, port }, …]` for `createRedis({ cluster })`. */
  readonly startupNodes: Array<{ host: string; port: number }>
  /** Waits until every node reports `cluster_state:ok`. */
  waitHealthy(timeoutMs?: number): Promise<void>
  /** The port of the master serving `slot`. */
  masterPortOf(slot: number): Promise<number>
  /** Kills every node and deletes the directory. Never throws. */
  destroy(): Promise<void>
}

/** A free port whose cluster-bus port (port + 10000) is free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = await freePort()
    if (port + 10000 > 65535 || taken.has(port)) continue
    const bus = await isFree(port + 10000)
    if (bus) {
      taken.add(port)
      return port
    }
  }
  throw new Error('no free port pair for a cluster node')
}

async function isFree(port: number): Promise<boolean> {
  const { createServer } = await import('node:net')
  const server = createServer()
  return new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    timeout: 10_000,
  })
  return stdout
}

function clusterNode(dir: string, port: number): ClusterNode {
  let child: ChildProcess | undefined
  return {
    port,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null
    },
    async start() {
      const started = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          // long enough that a loaded box never sees a spurious node failure
          '--cluster-node-timeout',
          '5000',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: ['ignore', 'pipe', 'ignore'] },
      )
      child = started
      let output = ''
      started.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString()
      })
      await waitFor(() => output.includes('Ready to accept connections'), 10_000).catch((error) => {
        started.kill('SIGKILL')
        throw error
      })
    },
    async stop(signal = 'SIGKILL') {
      const running = child
      child = undefined
      if (!running || running.exitCode !== null || running.signalCode !== null) return
      const exited = once(running, 'exit')
      running.kill(signal)
      await exited
    },
  }
}

/** Starts three masters, joins them into a cluster and waits until it is healthy. */
export async function startRedisCluster(): Promise<OwnRedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'gs-redis-cluster-'))
  const taken = new Set<number>()
  const nodes: ClusterNode[] = []
  const destroy = async () => {
    await Promise.all(nodes.map((node) => node.stop('SIGKILL').catch(() => {})))
    await rm(dir, { recursive: true, force: true }).catch(() => {})
  }
  try {
    for (let i = 0; i < 3; i++) nodes.push(clusterNode(dir, await clusterPort(taken)))
    await Promise.all(nodes.map((node) => node.start()))
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    )
  } catch (error) {
    await destroy()
    throw error
  }
  const cluster: OwnRedisCluster = {
    nodes,
    startupNodes: nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
    async waitHealthy(timeoutMs = 20_000) {
      await waitFor(
        async () => {
          for (const node of nodes) {
            const info = await cli(node.port, 'cluster', 'info').catch(() => '')
            if (!info.includes('cluster_state:ok')) return false
          }
          return true
        },
        timeoutMs,
        100,
      )
    },
    async masterPortOf(slot) {
      const client = new Redis({
        host: '127.0.0.1',
        port: nodes.find((n) => n.running)!.port,
        lazyConnect: true,
        maxRetriesPerRequest: 0,
      })
      try {
        const slots = (await client.cluster('SLOTS')) as unknown as Array<
          [number, number, [string, number]]
        >
        for (const [from, to, master] of slots) {
          if (slot >= from && slot <= to) return Number(master[1])
        }
      } finally {
        client.disconnect()
      }
      throw new Error(`no master serves slot ${slot}`)
    },
    destroy,
  }
  await cluster.waitHealthy()
  return cluster
}
