/**
 * Real failovers under a send load (issue 26), with Debian's pg_auto_failover
 * (`apt-get install postgresql-15-auto-failover`): a monitor and two nodes
 * with synchronous replication (`ANY 1`) on loopback ports of this file's own.
 * 16 senders post messages with nonces through `createPool({ hosts })`,
 * retrying each send with its nonce on a retryable error or an unknown
 * outcome. The primary node is killed with SIGKILL (its keeper, its
 * postmaster and every backend: a machine that dies; killing the postmaster
 * alone makes the keeper restart it in place, which is no failover), the
 * monitor promotes the standby, the killed node is started again and rejoins
 * as a standby; five failovers, both directions. Counted: acknowledged sends
 * missing afterwards (must be 0), messages per nonce (must be at most 1), and
 * the window from each kill to the next acknowledged send.
 *
 * The monitor's health checks are tightened (500 ms period, 1 s unhealthy
 * timeout) so the whole file stays under 3 minutes.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, openSync } from 'node:fs'
import { chown, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createDb,
  createPool,
  DatabaseUnavailableError,
  Permissions,
  runMigrations,
  sendMessage,
  UnknownOutcomeError,
} from '../../src/index.ts'
import { makeGuildWithMember } from '../support/factories.ts'
import { freePort, sleep, waitFor } from './support/ports.ts'

const run = promisify(execFile)
const PG_AUTOCTL = ['/usr/bin/pg_autoctl', '/usr/lib/postgresql/15/bin/pg_autoctl'].find((p) =>
  existsSync(p),
)
const BIN = '/usr/lib/postgresql/15/bin'
const RUNUSER = ['/usr/sbin/runuser', '/sbin/runuser'].find((p) => existsSync(p)) ?? 'runuser'
const FAILOVERS = 5

type NodeName = 'monitor' | 'n1' | 'n2'

/** A monitor and two nodes; every process of a node is found by an environment marker. */
class AutoFailoverCluster {
  readonly root: string
  readonly ports: Record<NodeName, number>
  readonly children: ChildProcess[] = []

  constructor(root: string, ports: Record<NodeName, number>) {
    this.root = root
    this.ports = ports
  }

  get monitorUri(): string {
    return `postgres://autoctl_node@127.0.0.1:${this.ports.monitor}/pg_auto_failover?sslmode=disable`
  }

  marker(node: NodeName): string {
    return `GS_PAF_NODE=${this.root}:${node}`
  }

  #command(node: NodeName, args: string[]): string[] {
    return [
      '-u',
      'postgres',
      '--',
      'env',
      `PATH=${BIN}:/usr/bin:/bin`,
      `XDG_CONFIG_HOME=${this.root}/config`,
      `XDG_DATA_HOME=${this.root}/data`,
      `XDG_RUNTIME_DIR=${this.root}/run`,
      'PGHOST=127.0.0.1',
      this.marker(node),
      PG_AUTOCTL as string,
      ...args,
    ]
  }

  /** Runs a pg_autoctl command to its end. */
  async once(node: NodeName, args: string[]): Promise<void> {
    await run(RUNUSER, this.#command(node, args), { timeout: 60_000 })
  }

  /** Starts a long-running pg_autoctl command (a keeper), logging to its node's file. */
  start(node: NodeName, args: string[]): void {
    const log = openSync(join(this.root, `${node}.log`), 'a')
    const child = spawn(RUNUSER, this.#command(node, args), { stdio: ['ignore', log, log] })
    child.on('error', () => {})
    this.children.push(child)
  }

  createNode(node: 'n1' | 'n2'): void {
    this.start(node, [
      'create',
      'postgres',
      '--pgdata',
      join(this.root, node),
      '--pgport',
      String(this.ports[node]),
      '--hostname',
      '127.0.0.1',
      '--listen',
      '127.0.0.1',
      '--auth',
      'trust',
      '--no-ssl',
      '--monitor',
      this.monitorUri,
      '--run',
    ])
  }

  async restartNode(node: 'n1' | 'n2'): Promise<void> {
    // A killed keeper may linger as a zombie, which its pidfile check takes for
    // a running keeper: the pidfile goes first (every process of the node is dead).
    await rm(join(this.root, 'run', 'pg_autoctl', this.root.slice(1), node, 'pg_autoctl.pid'), {
      force: true,
    })
    this.start(node, ['run', '--pgdata', join(this.root, node)])
  }

  /** Every live process of a node (its keeper's processes, postmaster, backends). */
  async pids(node: NodeName): Promise<number[]> {
    const marker = `${this.marker(node)}\0`
    const found: number[] = []
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      const environ = await readFile(`/proc/${entry}/environ`, 'latin1').catch(() => '')
      // The `runuser … env GS_PAF_NODE=… pg_autoctl` wrapper carries the marker
      // in its arguments, not its environment: it goes with its node too.
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'latin1').catch(() => '')
      if (environ.includes(marker) || cmdline.includes(marker)) found.push(Number(entry))
    }
    return found
  }

  /** SIGKILLs every process of a node (stopped first, so none restarts another meanwhile). */
  /** Returns when the first SIGKILL was sent. */
  async kill(node: NodeName): Promise<number> {
    const killed = new Set<number>()
    let firstKill = 0
    for (let round = 0; round < 20; round++) {
      const pids = await this.pids(node)
      if (pids.length === 0) {
        await waitFor(
          async () => (await Promise.all([...killed].map(dead))).every(Boolean),
          10_000,
          10,
        )
        return firstKill
      }
      for (const pid of pids) tryKill(pid, 'SIGSTOP')
      firstKill ||= Date.now()
      for (const pid of pids) {
        tryKill(pid, 'SIGKILL')
        killed.add(pid)
      }
      await sleep(50)
    }
    throw new Error(`processes of ${node} survived SIGKILL`)
  }

  async monitor<R extends pg.QueryResultRow>(text: string): Promise<R[]> {
    const client = new pg.Client({
      connectionString: `postgres://postgres@127.0.0.1:${this.ports.monitor}/pg_auto_failover`,
      connectionTimeoutMillis: 2000,
    })
    client.on('error', () => {})
    await client.connect()
    try {
      return (await client.query<R>(text)).rows
    } finally {
      await client.end().catch(() => {})
    }
  }

  /** Reported/goal states, by port. */
  async states(): Promise<Array<{ port: number; reported: string; goal: string }>> {
    return this.monitor(
      'SELECT nodeport AS port, reportedstate::text AS reported, goalstate::text AS goal FROM pgautofailover.node ORDER BY nodeid',
    )
  }

  /** Waits for one primary and one secondary, both settled with synchronous replication on; returns the primary's port. */
  async stable(timeoutMs = 60_000): Promise<number> {
    let primary = 0
    await waitFor(
      async () => {
        const states = await this.states().catch(() => [])
        const p = states.find((s) => s.reported === 'primary' && s.goal === 'primary')
        const s = states.find((x) => x.reported === 'secondary' && x.goal === 'secondary')
        primary = p?.port ?? 0
        return states.length === 2 && p !== undefined && s !== undefined
      },
      timeoutMs,
      100,
    )
    return primary
  }

  async destroy(): Promise<void> {
    for (const node of ['n1', 'n2', 'monitor'] as const) await this.kill(node).catch(() => 0)
    await rm(this.root, { recursive: true, force: true }).catch(() => {})
  }
}

/** Whether a process is gone or a zombie (dead, not yet reaped). */
async function dead(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  return stat === '' || / Z /.test(stat.slice(stat.lastIndexOf(')')))
}

function tryKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch {
    // gone already
  }
}

let cluster: AutoFailoverCluster | undefined

beforeAll(async () => {
  if (!PG_AUTOCTL) {
    throw new Error('pg_autoctl is not installed (apt-get install postgresql-15-auto-failover)')
  }
  const root = await mkdtemp(join(tmpdir(), 'gs-paf-'))
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim())
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim())
  await chown(root, uid, gid)
  await mkdir(join(root, 'run'))
  await chown(join(root, 'run'), uid, gid)
  cluster = new AutoFailoverCluster(root, {
    monitor: await freePort(),
    n1: await freePort(),
    n2: await freePort(),
  })
  const c = cluster
  await c.once('monitor', [
    'create',
    'monitor',
    '--pgdata',
    join(root, 'monitor'),
    '--pgport',
    String(c.ports.monitor),
    '--hostname',
    '127.0.0.1',
    '--listen',
    '127.0.0.1',
    '--auth',
    'trust',
    '--no-ssl',
  ])
  c.start('monitor', ['run', '--pgdata', join(root, 'monitor')])
  await waitFor(
    async () =>
      c.monitor('SELECT 1').then(
        () => true,
        () => false,
      ),
    30_000,
    100,
  )
  for (const [name, value] of Object.entries({
    health_check_period: 500,
    health_check_timeout: 500,
    health_check_max_retries: 1,
    health_check_retry_delay: 200,
    node_considered_unhealthy_timeout: 1000,
    startup_grace_period: 1000,
    primary_demote_timeout: 2000,
  })) {
    await c.monitor(`ALTER SYSTEM SET pgautofailover.${name} = ${value}`)
  }
  await c.monitor('SELECT pg_reload_conf()')
  c.createNode('n1')
  await waitFor(
    async () => (await c.states().catch(() => [])).some((s) => s.reported === 'single'),
    60_000,
    100,
  )
  c.createNode('n2')
  await c.stable(90_000)
}, 150_000)

afterAll(async () => {
  await cluster?.destroy()
}, 60_000)

describe('pg_auto_failover: SIGKILL of the primary node under 16 senders with nonces', () => {
  it(`${FAILOVERS} failovers, both directions: no acknowledged send lost, none twice`, async () => {
    const c = cluster as AutoFailoverCluster
    const pool = createPool({
      connectionString: 'postgres://postgres@/postgres',
      hosts: [`127.0.0.1:${c.ports.n1}`, `127.0.0.1:${c.ports.n2}`],
      max: 20,
      connectionTimeoutMillis: 2000,
    })
    const db = createDb(pool)
    try {
      await runMigrations(pool)
      const sync = await pool.query<{ synchronous_standby_names: string }>(
        'SHOW synchronous_standby_names',
      )
      expect(sync.rows[0]?.synchronous_standby_names).toMatch(/^ANY 1/)
      const w = await makeGuildWithMember(
        db,
        Permissions.VIEW_CHANNEL | Permissions.SEND_MESSAGES | Permissions.READ_MESSAGE_HISTORY,
      )

      /** `at`: when acknowledged; `attemptAt`: when the attempt that succeeded began. */
      const acked: Array<{ id: string; nonce: string; at: number; attemptAt: number }> = []
      const unexpected: unknown[] = []
      let unknownOutcomes = 0
      let retries = 0
      let stop = false
      const sender = async (i: number) => {
        for (let j = 0; !stop; j++) {
          const nonce = `s${i}-${j}`
          const input = { channel_id: w.channel.id, author_id: w.user.id, content: nonce, nonce }
          for (;;) {
            const attemptAt = Date.now()
            try {
              const message = await sendMessage(db, input)
              acked.push({ id: message.id, nonce, at: Date.now(), attemptAt })
              break
            } catch (error) {
              if (error instanceof UnknownOutcomeError) unknownOutcomes++
              else if (!(error instanceof DatabaseUnavailableError) || !error.retryable) {
                unexpected.push(error)
                return
              }
              retries++
              await sleep(20)
            }
          }
        }
      }
      const senders = Array.from({ length: 16 }, (_, i) => sender(i))

      const windows: number[] = []
      const promotions: number[] = []
      const directions: string[] = []
      /** Runs one step; a failure carries the cluster's states and log tails. */
      const step = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
        try {
          return await fn()
        } catch (error) {
          const states = await c.states().catch((e: unknown) => String(e))
          const tails = await Promise.all(
            (['monitor', 'n1', 'n2'] as const).map(async (n) =>
              (await readFile(join(c.root, `${n}.log`), 'utf8').catch(() => ''))
                .split('\n')
                .slice(-8)
                .join('\n'),
            ),
          )
          throw new Error(
            `${label}: ${String(error)}; states ${JSON.stringify(states)}; acked ${acked.length}, unexpected ${unexpected.map(String).join(' | ')}\n${tails.join('\n---\n')}`,
          )
        }
      }
      try {
        for (let k = 0; k < FAILOVERS; k++) {
          const primaryPort = await step(`failover ${k}: stable`, () => c.stable())
          const victim = primaryPort === c.ports.n1 ? 'n1' : 'n2'
          const ackedBefore = acked.length
          await step(`failover ${k}: sends before`, () =>
            waitFor(() => acked.length >= ackedBefore + 50, 30_000, 10),
          )
          const killedAt = await c.kill(victim) // every process of the node is dead when it returns
          await step(`failover ${k}: promotion`, () =>
            waitFor(
              async () =>
                (await c.states()).some(
                  (s) => s.port !== primaryPort && ['wait_primary', 'primary'].includes(s.reported),
                ),
              60_000,
              50,
            ),
          )
          const promotedMs = Date.now() - killedAt // when this test saw it
          // the first acknowledged send attempted after the kill: only the new primary can ack it
          const attemptedAfterKill = () => acked.filter((a) => a.attemptAt > killedAt)
          await step(`failover ${k}: a send after the kill`, () =>
            waitFor(() => attemptedAfterKill().length > 0, 60_000, 10),
          )
          const firstAfter = Math.min(...attemptedAfterKill().map((a) => a.at))
          windows.push(firstAfter - killedAt)
          promotions.push(promotedMs)
          directions.push(victim === 'n1' ? 'n1→n2' : 'n2→n1')
          await c.restartNode(victim)
        }
        await step('final: stable', () => c.stable())
        const settled = acked.length
        await waitFor(() => acked.length >= settled + 50, 30_000, 10)
      } finally {
        stop = true
        await Promise.all(senders)
      }

      expect(unexpected).toEqual([])
      // No acknowledged send is missing, and no nonce has two messages.
      const ids = acked.map((a) => a.id)
      const found = await pool.query<{ n: string }>(
        'SELECT count(*) AS n FROM messages WHERE id = ANY($1::uuid[])',
        [ids],
      )
      const missing = ids.length - Number(found.rows[0]?.n)
      const dupes = await pool.query<{ nonce: string }>(
        'SELECT nonce FROM messages WHERE channel_id = $1 AND nonce IS NOT NULL GROUP BY nonce HAVING count(*) > 1',
        [w.channel.id],
      )
      // Positions across the failovers: never reused (one message per seq);
      // gaps are the positions of sends cut off before their commit (positions
      // are unique, not dense), counted for the report.
      const positions = await pool.query<{ n: string; distinct_seq: string; max_seq: string }>(
        'SELECT count(*) AS n, count(DISTINCT seq) AS distinct_seq, max(seq) AS max_seq FROM messages WHERE channel_id = $1',
        [w.channel.id],
      )
      const p = positions.rows[0]
      const reused = Number(p?.n) - Number(p?.distinct_seq)
      const gaps = Number(p?.max_seq) - Number(p?.distinct_seq)
      const sorted = [...windows].sort((a, b) => a - b)
      const p50 = sorted[Math.floor(sorted.length / 2)]
      console.info(
        `pg_auto_failover: ${FAILOVERS} failovers (${directions.join(', ')}), ${acked.length} acknowledged sends, missing ${missing}, nonces with 2+ messages ${dupes.rows.length}, retries ${retries} (unknown outcome ${unknownOutcomes}), unavailable (kill → next acknowledged send) p50 ${p50} ms, max ${sorted.at(-1)} ms (${windows.join(', ')}); monitor saw the promotion after ${promotions.join(', ')} ms; seq: ${p?.n} messages, ${reused} reused, ${gaps} gaps (sends cut off before commit)`,
      )
      expect(reused).toBe(0)
      expect(missing).toBe(0)
      expect(dupes.rows).toEqual([])
      expect(new Set(directions)).toEqual(new Set(['n1→n2', 'n2→n1']))
      expect(new Set(acked.map((a) => a.nonce)).size).toBe(acked.length)
    } finally {
      await db.destroy()
    }
  }, 170_000)
})
