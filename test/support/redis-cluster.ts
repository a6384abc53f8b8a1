/**
 * A Redis Cluster of one test file's own: three masters (`redis-server
 * --cluster-enabled yes`) on spare loopback ports, joined with `redis-cli
 * --cluster create … --cluster-replicas 0`, torn down by `destroy()`. A master
 * can be killed and restarted on the same port and config file, so it rejoins
 * with its slots. With `{ replicas: 1 }` each master gets a replica (six
 * nodes), so a killed master is replaced by its promoted replica after
 * `nodeTimeoutMs`. Never the shared Redis.
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

/** Options of {@link startRedisCluster}. */
export interface RedisClusterSetup {
  /** Replicas per master: 0 (default) or 1. */
  replicas?: 0 | 1
  /** `cluster-node-timeout` in ms: how long a silent node takes to be failed. Default 5000. */
  nodeTimeoutMs?: number
}

/** A throwaway 3-master Redis Cluster (with replicas when asked). */
export interface OwnRedisCluster {
  /** Every node (with replicas, `masterPortOf` tells which are masters). */
  readonly nodes: readonly ClusterNode[]
  /** `[{ host, port }, …]` for `createRedis({ cluster })`. */
  readonly startupNodes: Array<{ host: string; port: number }>
  /** Waits until every running node reports `cluster_state:ok`. */
  waitHealthy(timeoutMs?: number): Promise<void>
  /** The port of the master serving `slot`. */
  masterPortOf(slot: number): Promise<number>
  /** The port of the replica of the master on `masterPort` (asked of that master). */
  replicaPortOf(masterPort: number): Promise<number>
  /**
   * Waits until the master on `masterPort` has no write its replica has not
   * acknowledged (`INFO replication`: the replica's offset reaches the
   * master's `master_repl_offset`), so everything written before is on both.
   */
  waitReplicated(masterPort: number, timeoutMs?: number): Promise<void>
  /** Waits until the node on `port` is a master serving slots, as every running node sees it. */
  waitPromoted(port: number, timeoutMs?: number): Promise<void>
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

function clusterNode(dir: string, port: number, nodeTimeoutMs: number): ClusterNode {
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
          // 5000 by default: long enough that a loaded box never sees a spurious node failure
          '--cluster-node-timeout',
          String(nodeTimeoutMs),
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

/** Starts three masters (and their replicas), joins them into a cluster and waits until it is healthy. */
export async function startRedisCluster(setup: RedisClusterSetup = {}): Promise<OwnRedisCluster> {
  const replicas = setup.replicas ?? 0
  const nodeTimeoutMs = setup.nodeTimeoutMs ?? 5000
  const dir = await mkdtemp(join(tmpdir(), 'gs-redis-cluster-'))
  const taken = new Set<number>()
  const nodes: ClusterNode[] = []
  const destroy = async () => {
    await Promise.all(nodes.map((node) => node.stop('SIGKILL').catch(() => {})))
    await rm(dir, { recursive: true, force: true }).catch(() => {})
  }
  try {
    for (let i = 0; i < 3 * (1 + replicas); i++) {
      nodes.push(clusterNode(dir, await clusterPort(taken), nodeTimeoutMs))
    }
    await Promise.all(nodes.map((node) => node.start()))
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        '--cluster-replicas',
        String(replicas),
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
            if (!node.running) continue
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
    async replicaPortOf(masterPort) {
      const info = await cli(masterPort, 'info', 'replication')
      const port = /^slave0:.*\bport=(\d+)/m.exec(info)?.[1]
      if (port === undefined) throw new Error(`the master on ${masterPort} has no replica`)
      return Number(port)
    },
    async waitReplicated(masterPort, timeoutMs = 10_000) {
      const offset = (info: string) => Number(/^master_repl_offset:(\d+)/m.exec(info)?.[1] ?? NaN)
      const target = offset(await cli(masterPort, 'info', 'replication'))
      await waitFor(
        async () => {
          const info = await cli(masterPort, 'info', 'replication')
          const acked = /^slave0:.*\bstate=online,offset=(\d+)/m.exec(info)?.[1]
          return acked !== undefined && Number(acked) >= target
        },
        timeoutMs,
        20,
      )
    },
    async waitPromoted(port, timeoutMs = 30_000) {
      await waitFor(
        async () => {
          for (const node of nodes) {
            if (!node.running) continue
            const text = await cli(node.port, 'cluster', 'nodes').catch(() => '')
            const line = text
              .split('\n')
              .find((l) => l.split(' ')[1]?.startsWith(`127.0.0.1:${port}@`))
            // <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot>…
            const fields = line?.split(' ') ?? []
            if (!fields[2]?.split(',').includes('master') || fields.length < 9) return false
          }
          return true
        },
        timeoutMs,
        50,
      )
    },
    destroy,
  }
  try {
    await cluster.waitHealthy()
    if (replicas > 0) {
      // each master's replica is attached and synced before the test starts
      const slots = await cli(nodes[0]!.port, '--json', 'cluster', 'slots').catch(() => '')
      const masters = new Set<number>()
      for (const range of JSON.parse(slots || '[]') as Array<[number, number, [string, number]]>) {
        masters.add(Number(range[2][1]))
      }
      if (masters.size !== 3) {
        throw new Error(`expected 3 masters, CLUSTER SLOTS shows ${masters.size}`)
      }
      await Promise.all([...masters].map((port) => cluster.waitReplicated(port, 20_000)))
    }
  } catch (error) {
    // never leave the processes behind when the setup fails (the caller gets no handle)
    await destroy()
    throw error
  }
  return cluster
}
