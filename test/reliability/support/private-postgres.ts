/**
 * A PostgreSQL server of one test file's own (PostgreSQL 15 binaries, run as the
 * `postgres` OS user because PostgreSQL refuses to run as root), on a spare
 * loopback port, so a test may stop, kill and restart it. Never the shared server.
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './ports.ts'

const run = promisify(execFile)
/** The newest PostgreSQL server binaries Debian installed (or GUILDSTORE_PG_BIN). */
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
/** runuser lives in /usr/sbin, which a non-login PATH may lack. */
const RUNUSER = ['/usr/sbin/runuser', '/sbin/runuser'].find((p) => existsSync(p)) ?? 'runuser'

/** A throwaway PostgreSQL server. */
export interface PrivatePostgres {
  readonly port: number
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth). */
  readonly url: string
  /** The URL of another database on it. */
  urlOf(database: string): string
  /** Starts it (waits until it accepts connections). */
  start(): Promise<void>
  /** Stops it: `fast` terminates sessions (57P01), `immediate` kills without a clean shutdown. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>
  /** Stops it (if running) and deletes its data directory. Never throws. */
  destroy(): Promise<void>
}

async function asPostgres(args: string[], timeoutMs: number): Promise<void> {
  await run(RUNUSER, ['-u', 'postgres', '--', ...args], { timeout: timeoutMs })
}

/** Whether the host can run a private server (binaries present, `postgres` user exists). */
export async function privatePostgresAvailable(): Promise<boolean> {
  try {
    await run(join(BIN, 'pg_ctl'), ['--version'], { timeout: 5000 })
    await run('id', ['postgres'], { timeout: 5000 })
    return true
  } catch {
    return false
  }
}

/**
 * `initdb` a fresh cluster in a temporary directory (trust auth, fsync off) and
 * pick a spare loopback port; call `start()` next and `destroy()` in `afterAll`.
 */
export async function createPrivatePostgres(): Promise<PrivatePostgres> {
  const root = await mkdtemp(join(tmpdir(), 'gs-rel-pg-'))
  const dataDir = join(root, 'data')
  let running = false
  const cleanup = () => rm(root, { recursive: true, force: true }).catch(() => {})
  try {
    await chown(root, Number(await uid('postgres')), Number(await gid('postgres')))
    await asPostgres(
      [
        join(BIN, 'initdb'),
        '-D',
        dataDir,
        '--auth=trust',
        '-U',
        'postgres',
        '--no-sync',
        '--encoding=UTF8',
        '--locale=C',
      ],
      60_000,
    )
  } catch (error) {
    await cleanup()
    throw error
  }
  const port = await freePort()
  const urlOf = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`
  const pgCtl = (args: string[], timeoutMs = 30_000) =>
    asPostgres([join(BIN, 'pg_ctl'), '-D', dataDir, ...args], timeoutMs)

  const server: PrivatePostgres = {
    port,
    url: urlOf('postgres'),
    urlOf,
    async start() {
      await pgCtl([
        '-o',
        `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=60`,
        '-l',
        join(root, 'server.log'),
        '-w',
        '-t',
        '30',
        'start',
      ])
      running = true
    },
    async stop(mode = 'fast') {
      await pgCtl(['-m', mode, '-w', '-t', '30', 'stop'])
      running = false
    },
    async destroy() {
      if (running) {
        await pgCtl(['-m', 'immediate', '-w', '-t', '10', 'stop'], 15_000).catch(async () => {
          // Last resort: kill the postmaster by the pid in its pid file.
          const pid = Number(
            (await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0],
          )
          if (pid > 0) process.kill(pid, 'SIGKILL')
        })
        running = false
      }
      await cleanup()
    },
  }
  return server
}

async function uid(user: string): Promise<string> {
  return (await run('id', ['-u', user])).stdout.trim()
}
async function gid(user: string): Promise<string> {
  return (await run('id', ['-g', user])).stdout.trim()
}
