/**
 * A private primary with a real streaming replica, for one test file: `initdb`
 * (wal_level=replica; initdb's pg_hba.conf already trusts loopback
 * replication), then `pg_basebackup -R -X stream -c fast` into a second data
 * directory started on a second spare port (hot standby). Both run as the
 * `postgres` OS user, since PostgreSQL refuses to run as root. Never the
 * shared server.
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { appendFile, chown, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { freePort, waitFor } from './local-servers.ts'

const run = promisify(execFile)

function serverBinaries(): string {
  if (process.env.GUILDSTORE_PG_BIN) return process.env.GUILDSTORE_PG_BIN
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : []
  return join(root, versions[0] ?? '15', 'bin')
}
const BIN = serverBinaries()
const RUNUSER = ['/usr/sbin/runuser', '/sbin/runuser'].find((p) => existsSync(p)) ?? 'runuser'

const asPostgres = (args: string[], timeoutMs = 60_000) =>
  run(RUNUSER, ['-u', 'postgres', '--', ...args], { timeout: timeoutMs })

/** One server of the pair. */
export interface ReplicatedServer {
  readonly port: number
  urlOf(database: string): string
  readonly running: boolean
  start(): Promise<void>
  stop(mode?: 'fast' | 'immediate'): Promise<void>
}

/** A primary and its streaming replica. */
export interface ReplicatedPair {
  readonly primary: ReplicatedServer
  readonly replica: ReplicatedServer
  /** Runs one statement on a server (`postgres` database unless named). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    server: ReplicatedServer,
    text: string,
    values?: unknown[],
    database?: string,
  ): Promise<R[]>
  /** Waits until the replica has replayed everything the primary wrote so far. */
  waitCaughtUp(timeoutMs?: number): Promise<void>
  /** Stops both and deletes the directory. Never throws. */
  destroy(): Promise<void>
}

function server(root: string, dataDir: string, port: number, log: string): ReplicatedServer {
  let running = false
  const pgCtl = (args: string[], timeoutMs = 60_000) =>
    asPostgres([join(BIN, 'pg_ctl'), '-D', dataDir, ...args], timeoutMs)
  return {
    port,
    urlOf: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    get running() {
      return running
    },
    async start() {
      await pgCtl([
        '-o',
        `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=60 -c wal_level=replica -c max_wal_senders=5 -c hot_standby=on -c wal_receiver_status_interval=1s`,
        '-l',
        join(root, log),
        '-w',
        '-t',
        '60',
        'start',
      ])
      running = true
    },
    async stop(mode = 'fast') {
      await pgCtl(['-m', mode, '-w', '-t', '60', 'stop'])
      running = false
    },
  }
}

/** Creates, starts and replicates the pair; call `destroy()` in `afterAll`. */
export async function startReplicatedPair(): Promise<ReplicatedPair> {
  const root = await mkdtemp(join(tmpdir(), 'gs-replica-'))
  const { stdout: uid } = await run('id', ['-u', 'postgres'])
  const { stdout: gid } = await run('id', ['-g', 'postgres'])
  await chown(root, Number(uid.trim()), Number(gid.trim()))
  const primaryDir = join(root, 'primary')
  const replicaDir = join(root, 'replica')
  const primary = server(root, primaryDir, await freePort(), 'primary.log')
  const replica = server(root, replicaDir, await freePort(), 'replica.log')
  const destroy = async () => {
    for (const [s, dir] of [
      [replica, replicaDir],
      [primary, primaryDir],
    ] as const) {
      if (!s.running) continue
      await s.stop('immediate').catch(async () => {
        const pid = Number(
          (await readFile(join(dir, 'postmaster.pid'), 'utf8').catch(() => '0')).split('\n')[0],
        )
        if (pid > 0) process.kill(pid, 'SIGKILL')
      })
    }
    await rm(root, { recursive: true, force: true }).catch(() => {})
  }
  try {
    await asPostgres([
      join(BIN, 'initdb'),
      '-D',
      primaryDir,
      '--auth=trust',
      '-U',
      'postgres',
      '--no-sync',
      '--encoding=UTF8',
      '--locale=C',
    ])
    // initdb's pg_hba.conf trusts loopback replication already; be explicit anyway
    await appendFile(join(primaryDir, 'pg_hba.conf'), '\nhost replication all 127.0.0.1/32 trust\n')
    await primary.start()
    await asPostgres([
      join(BIN, 'pg_basebackup'),
      '-h',
      '127.0.0.1',
      '-p',
      String(primary.port),
      '-U',
      'postgres',
      '-D',
      replicaDir,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
    ])
    await replica.start()
  } catch (error) {
    await destroy()
    throw error
  }
  const query = async <R extends pg.QueryResultRow>(
    target: ReplicatedServer,
    text: string,
    values: unknown[] = [],
    database = 'postgres',
  ): Promise<R[]> => {
    const client = new pg.Client({ connectionString: target.urlOf(database) })
    await client.connect()
    try {
      return (await client.query<R>(text, values)).rows
    } finally {
      await client.end().catch(() => {})
    }
  }
  const pair: ReplicatedPair = {
    primary,
    replica,
    query,
    async waitCaughtUp(timeoutMs = 30_000) {
      const [row] = await query<{ lsn: string }>(
        primary,
        'SELECT pg_current_wal_lsn()::text AS lsn',
      )
      const lsn = row?.lsn
      await waitFor(
        async () => {
          const [row] = await query<{ ok: boolean }>(
            replica,
            'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok',
            [lsn],
          )
          return row?.ok === true
        },
        timeoutMs,
        20,
      )
    },
    destroy,
  }
  await waitFor(
    async () => {
      const [row] = await query<{ r: boolean }>(replica, 'SELECT pg_is_in_recovery() AS r')
      return row?.r === true
    },
    30_000,
    50,
  )
  return pair
}
