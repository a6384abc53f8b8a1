/**
 * A PgBouncer of one test file's own, in `pool_mode = transaction`, on a spare
 * loopback port in front of a PostgreSQL server (every database name is passed
 * through). Its ini and userlist live in a temporary directory; it runs as the
 * `postgres` OS user, since PgBouncer refuses to run as root.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, waitFor } from './local-servers.ts'

const run = promisify(execFile)
const PGBOUNCER = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => existsSync(p))
const RUNUSER = ['/usr/sbin/runuser', '/sbin/runuser'].find((p) => existsSync(p)) ?? 'runuser'

/** A running PgBouncer. */
export interface OwnPgBouncer {
  readonly port: number
  /** `postgres://<user>@127.0.0.1:<port>/<database>` through the pooler. */
  urlOf(database: string): string
  /** Runs a command on the admin console (`SHOW POOLS`, …) and returns its rows. */
  admin(command: string): Promise<Array<Record<string, unknown>>>
  /** Stops it and deletes its directory. Never throws. */
  destroy(): Promise<void>
}

/** Whether PgBouncer is installed (`.ci/run` installs Debian's package when it is missing). */
export const pgbouncerInstalled = (): boolean => PGBOUNCER !== undefined

/**
 * Starts PgBouncer in transaction mode in front of `upstream` (host, port; trust
 * auth for `user`), with `poolSize` server connections per database and user.
 */
export async function startPgBouncer(
  upstream: { host: string; port: number; user?: string },
  options: { poolSize?: number } = {},
): Promise<OwnPgBouncer> {
  if (!PGBOUNCER) throw new Error('pgbouncer is not installed (apt-get install pgbouncer)')
  const user = upstream.user ?? 'postgres'
  const dir = await mkdtemp(join(tmpdir(), 'gs-pgbouncer-'))
  const port = await freePort()
  const ini = join(dir, 'pgbouncer.ini')
  await writeFile(
    ini,
    [
      '[databases]',
      `* = host=${upstream.host} port=${upstream.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize ?? 4}`,
      'max_client_conn = 200',
      `admin_users = ${user}`,
      'ignore_startup_parameters = extra_float_digits,options',
      'server_reset_query =',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  )
  await writeFile(join(dir, 'userlist.txt'), `"${user}" ""\n`)
  const { stdout: uid } = await run('id', ['-u', 'postgres'])
  const { stdout: gid } = await run('id', ['-g', 'postgres'])
  for (const path of [dir, ini, join(dir, 'userlist.txt')]) {
    await chown(path, Number(uid.trim()), Number(gid.trim()))
  }
  await chmod(dir, 0o700)
  const child: ChildProcess = spawn(RUNUSER, ['-u', 'postgres', '--', PGBOUNCER, ini], {
    stdio: 'ignore',
  })
  const destroy = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))])
      // runuser forwards the signal; if pgbouncer lingers, kill it by its pid file
      await run('sh', ['-c', `kill -9 $(cat ${join(dir, 'pgbouncer.pid')}) 2>/dev/null || true`])
    }
    await rm(dir, { recursive: true, force: true }).catch(() => {})
  }
  const urlOf = (database: string) => `postgres://${user}@127.0.0.1:${port}/${database}`
  const { default: pg } = await import('pg')
  const admin = async (command: string) => {
    const client = new pg.Client({ connectionString: urlOf('pgbouncer') })
    await client.connect()
    try {
      // the admin console speaks the simple query protocol only
      const result = await client.query(command)
      return result.rows as Array<Record<string, unknown>>
    } finally {
      await client.end().catch(() => {})
    }
  }
  try {
    await waitFor(
      async () => {
        try {
          await admin('SHOW VERSION')
          return true
        } catch {
          return false
        }
      },
      15_000,
      100,
    )
  } catch (error) {
    await destroy()
    throw error
  }
  return { port, urlOf, admin, destroy }
}
