import { request } from 'node:http'
import { Redis } from 'ioredis'
import pg from 'pg'

/** Thrown when the tests find no PostgreSQL/Redis: no URL, nothing on the local ports, no Docker. */
export class TestServersUnavailableError extends Error {
  override name = 'TestServersUnavailableError'
}

/** The servers the test run talks to, and how to let go of them afterwards. */
export interface TestServers {
  databaseUrl: string
  redisUrl: string
  source: 'env' | 'local' | 'testcontainers'
  stop(): Promise<void>
}

export interface ResolveOptions {
  env?: Record<string, string | undefined>
  /** Whether a Docker engine answers; defaults to pinging it. */
  dockerAnswers?: () => Promise<boolean>
  /** Whether a server answers at a local default URL; defaults to connecting to it. */
  localAnswers?: (url: string, kind: 'postgres' | 'redis') => Promise<boolean>
  /** Starts PostgreSQL and Redis containers; defaults to testcontainers. */
  startContainers?: () => Promise<TestServers>
}

/**
 * Where PostgreSQL and Redis answer on a developer machine by default. The
 * variables exist so a test can make local servers invisible (point them at a
 * closed port).
 */
export const localDefaults = (env: Record<string, string | undefined> = process.env) => ({
  databaseUrl: env.GUILDSTORE_LOCAL_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
  redisUrl: env.GUILDSTORE_LOCAL_REDIS_URL || 'redis://127.0.0.1:6379',
})

/** `host:port` of a URL, for messages (never the password). */
export const hostPort = (url: string): string => {
  try {
    const u = new URL(url)
    return `${u.hostname}:${u.port || (u.protocol.startsWith('redis') ? 6379 : 5432)}`
  } catch {
    return 'an unparsable URL'
  }
}

export const missingServersMessage = (
  missing: string[],
  env: Record<string, string | undefined> = {},
): string => {
  const local = localDefaults(env)
  const where = missing
    .map((name) =>
      name === 'TEST_DATABASE_URL'
        ? `PostgreSQL (TEST_DATABASE_URL is not set, nothing answers on ${hostPort(local.databaseUrl)})`
        : `Redis (TEST_REDIS_URL is not set, nothing answers on ${hostPort(local.redisUrl)})`,
    )
    .join(' and ')
  return `guildstore tests need PostgreSQL (14+) and Redis (6.2+), and found no ${where}; no Docker engine answers for testcontainers either.
Fix it one of these ways:
  - start PostgreSQL and Redis on their default local ports (user postgres, trust auth, allowed to CREATE DATABASE), then run the tests again;
  - or point the tests at running servers:
      TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
      TEST_REDIS_URL=redis://127.0.0.1:6379 npm test
  - or start a Docker engine (DOCKER_HOST or /var/run/docker.sock) and run npm test again.`
}

/** Pings the Docker engine's `/_ping` endpoint with a short timeout. */
export function pingDocker(
  env: Record<string, string | undefined> = process.env,
  timeoutMs = 1500,
): Promise<boolean> {
  const host = env.DOCKER_HOST
  let target: { socketPath: string } | { host: string; port: number }
  if (!host || host.startsWith('unix://')) {
    target = { socketPath: host ? host.slice('unix://'.length) : '/var/run/docker.sock' }
  } else {
    const url = new URL(host.replace(/^tcp:/, 'http:'))
    target = { host: url.hostname, port: Number(url.port || 2375) }
  }
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('timeout', () => {
      req.destroy()
      resolve(false)
    })
    req.on('error', () => resolve(false))
    req.end()
  })
}

/** Whether PostgreSQL at `url` accepts a connection and answers `SELECT 1`. */
export async function postgresAnswers(url: string, timeoutMs = 3000): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

/** Whether Redis at `url` answers `PING`. */
export async function redisAnswers(url: string, timeoutMs = 3000): Promise<boolean> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return (await redis.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}

const answers = (url: string, kind: 'postgres' | 'redis') =>
  kind === 'postgres' ? postgresAnswers(url) : redisAnswers(url)

async function startWithTestcontainers(): Promise<TestServers> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql')
  const { RedisContainer } = await import('@testcontainers/redis')
  const [pg, redis] = await Promise.all([
    new PostgreSqlContainer('postgres:16-alpine').start(),
    new RedisContainer('redis:7-alpine').start(),
  ])
  return {
    databaseUrl: pg.getConnectionUri(),
    redisUrl: redis.getConnectionUrl(),
    source: 'testcontainers',
    async stop() {
      await Promise.all([pg.stop(), redis.stop()])
    },
  }
}

/**
 * Finds the servers for a test run, each of PostgreSQL and Redis on its own:
 * `TEST_DATABASE_URL` / `TEST_REDIS_URL` first, then the local default ports
 * (127.0.0.1:5432 user postgres, 127.0.0.1:6379) when they answer, then
 * testcontainers when a Docker engine answers, else a
 * {@link TestServersUnavailableError} that says how to fix it.
 */
export async function resolveTestServers(options: ResolveOptions = {}): Promise<TestServers> {
  const env = options.env ?? process.env
  const localAnswers = options.localAnswers ?? answers
  const local = localDefaults(env)
  let source: TestServers['source'] = 'env'
  let databaseUrl = env.TEST_DATABASE_URL
  let redisUrl = env.TEST_REDIS_URL
  const [pgLocal, redisLocal] = await Promise.all([
    databaseUrl ? false : localAnswers(local.databaseUrl, 'postgres'),
    redisUrl ? false : localAnswers(local.redisUrl, 'redis'),
  ])
  if (pgLocal) databaseUrl = local.databaseUrl
  if (redisLocal) redisUrl = local.redisUrl
  if (pgLocal || redisLocal) source = 'local'
  if (databaseUrl && redisUrl) return { databaseUrl, redisUrl, source, async stop() {} }
  const dockerAnswers = options.dockerAnswers ?? (() => pingDocker(env))
  if (!(await dockerAnswers())) {
    const missing = [
      ...(databaseUrl ? [] : ['TEST_DATABASE_URL']),
      ...(redisUrl ? [] : ['TEST_REDIS_URL']),
    ]
    throw new TestServersUnavailableError(missingServersMessage(missing, env))
  }
  const started = await (options.startContainers ?? startWithTestcontainers)()
  return {
    ...started,
    databaseUrl: databaseUrl ?? started.databaseUrl,
    redisUrl: redisUrl ?? started.redisUrl,
  }
}
