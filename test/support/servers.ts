import { request } from 'node:http'

/** Thrown when the tests have neither server URLs nor a Docker engine to start servers in. */
export class TestServersUnavailableError extends Error {
  override name = 'TestServersUnavailableError'
}

/** The servers the test run talks to, and how to let go of them afterwards. */
export interface TestServers {
  databaseUrl: string
  redisUrl: string
  source: 'env' | 'testcontainers'
  stop(): Promise<void>
}

export interface ResolveOptions {
  env?: Record<string, string | undefined>
  /** Whether a Docker engine answers; defaults to pinging it. */
  dockerAnswers?: () => Promise<boolean>
  /** Starts PostgreSQL and Redis containers; defaults to testcontainers. */
  startContainers?: () => Promise<TestServers>
}

export const missingServersMessage = (
  missing: string[],
) => `guildstore tests need PostgreSQL (14+) and Redis, but ${missing.join(' and ')} ${
  missing.length > 1 ? 'are' : 'is'
} not set and no Docker engine answers for testcontainers.
Fix it one of these ways:
  - point the tests at running servers:
      TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
      TEST_REDIS_URL=redis://127.0.0.1:6379 npm test
    (the PostgreSQL user must be allowed to CREATE DATABASE)
  - or start a Docker engine (DOCKER_HOST or /var/run/docker.sock) and run npm test again.`

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
 * Finds the servers for a test run: `TEST_DATABASE_URL` / `TEST_REDIS_URL` first,
 * then testcontainers when a Docker engine answers, else a
 * {@link TestServersUnavailableError} that says how to fix it.
 */
export async function resolveTestServers(options: ResolveOptions = {}): Promise<TestServers> {
  const env = options.env ?? process.env
  const databaseUrl = env.TEST_DATABASE_URL
  const redisUrl = env.TEST_REDIS_URL
  if (databaseUrl && redisUrl) {
    return { databaseUrl, redisUrl, source: 'env', async stop() {} }
  }
  const dockerAnswers = options.dockerAnswers ?? (() => pingDocker(env))
  if (!(await dockerAnswers())) {
    const missing = [
      ...(databaseUrl ? [] : ['TEST_DATABASE_URL']),
      ...(redisUrl ? [] : ['TEST_REDIS_URL']),
    ]
    throw new TestServersUnavailableError(missingServersMessage(missing))
  }
  const started = await (options.startContainers ?? startWithTestcontainers)()
  return {
    ...started,
    databaseUrl: databaseUrl ?? started.databaseUrl,
    redisUrl: redisUrl ?? started.redisUrl,
  }
}
