/**
 * `npm run example` (or `./dev example`): starts the chat service with a little
 * demo data and prints its URL.
 *
 * PostgreSQL, first that works: `DATABASE_URL`; else a server on the local
 * default port (127.0.0.1:5432, user postgres; database `guildstore_chat`,
 * created when missing); else a container (testcontainers) when a Docker engine
 * answers; else an embedded PostgreSQL (PGlite, data in `.data/pglite`, kept
 * across restarts; a development default). Redis, likewise: `REDIS_URL`; else
 * 127.0.0.1:6379; else a container; else single-process mode (events fanned out
 * in this process, login limiting in memory). It says which it chose.
 *
 * `PORT` (default 3000; 0 picks a free one), `CHAT_REDIS_NAMESPACE` (default
 * `chat-example`), `GUILDSTORE_PGLITE_DIR` (the embedded data folder),
 * `GUILDSTORE_LOCAL_DATABASE_URL` / `GUILDSTORE_LOCAL_REDIS_URL` (where to look
 * for local servers).
 */
import { fileURLToPath } from 'node:url'
import type { Kysely } from 'kysely'
import pg from 'pg'
import {
  addGuildMember,
  createChannel,
  createDb,
  createGuild,
  createMessage,
  createPool,
  createRedis,
  createUser,
  type DB,
  findUserByUsername,
  runMigrations,
} from '../../src/index.ts'
import {
  hostPort,
  localDefaults,
  pingDocker,
  postgresAnswers,
  redisAnswers,
} from '../../test/support/servers.ts'
import {
  defaultEmbeddedDataDir,
  EmbeddedPostgresBusyError,
  startEmbeddedPostgres,
} from './embedded-postgres.ts'
import { hashPassword } from './passwords.ts'
import { createChatService, PortInUseError } from './server.ts'

const DEMO_PASSWORD = 'correct horse battery staple'
const LOCAL_DATABASE = 'guildstore_chat'
const root = fileURLToPath(new URL('../../', import.meta.url))
const env = process.env

/** A failure the user can fix: printed as its message alone, exit 1. */
class Explained extends Error {}

const redact = (url: string): string => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')
const databaseName = (url: string): string => {
  try {
    return decodeURIComponent(new URL(url).pathname.slice(1)) || 'postgres'
  } catch {
    return 'postgres'
  }
}
const withDatabase = (url: string, name: string): string => {
  const u = new URL(url)
  u.pathname = `/${encodeURIComponent(name)}`
  return u.toString()
}
const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`

/** Connects once to `url`; a missing database or a silent server become explanations. */
async function checkDatabase(url: string, variable: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
  } catch (error) {
    const code = (error as { code?: string }).code
    const name = databaseName(url)
    if (code === '3D000') {
      const admin = redact(withDatabase(url, 'postgres'))
      throw new Explained(
        `database "${name}" does not exist on ${hostPort(url)} (${variable}). Create it:
  psql "${admin}" -c 'CREATE DATABASE ${quoteIdent(name)}'
or unset ${variable} to let the example choose (a local server, Docker, or an embedded PostgreSQL).`,
      )
    }
    throw new Explained(
      `PostgreSQL at ${hostPort(url)} (${variable}) does not answer: ${(error as Error).message}. Start it, fix ${variable}, or unset it to let the example choose.`,
    )
  } finally {
    await client.end().catch(() => {})
  }
}

/** Creates `name` on the server of `adminUrl` when it is missing; true when it did. */
async function ensureDatabase(adminUrl: string, name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl })
  client.on('error', () => {})
  await client.connect()
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    if (found.rowCount) return false
    await client.query(`CREATE DATABASE ${quoteIdent(name)}`)
    return true
  } catch (error) {
    if ((error as { code?: string }).code === '42P04') return false // created meanwhile
    throw new Explained(
      `could not create database "${name}" on ${hostPort(adminUrl)}: ${(error as Error).message}. Create it yourself, or set DATABASE_URL.`,
    )
  } finally {
    await client.end().catch(() => {})
  }
}

interface Database {
  url: string
  embedded: boolean
  stop(): Promise<void>
}
interface RedisChoice {
  url: string | undefined
  stop(): Promise<void>
}
const nothing = async () => {}

async function chooseDatabase(dockerAnswers: () => Promise<boolean>): Promise<Database> {
  if (env.DATABASE_URL) {
    await checkDatabase(env.DATABASE_URL, 'DATABASE_URL')
    console.error(`database: ${redact(env.DATABASE_URL)} (DATABASE_URL)`)
    return { url: env.DATABASE_URL, embedded: false, stop: nothing }
  }
  const local = localDefaults(env).databaseUrl
  if (await postgresAnswers(local)) {
    const created = await ensureDatabase(local, LOCAL_DATABASE)
    const url = withDatabase(local, LOCAL_DATABASE)
    console.error(
      `database: local PostgreSQL on ${hostPort(local)}, database ${LOCAL_DATABASE}${created ? ' (created)' : ''} — set DATABASE_URL to use another`,
    )
    return { url, embedded: false, stop: nothing }
  }
  if (await dockerAnswers()) {
    console.error(
      'database: starting a PostgreSQL container (testcontainers, postgres:16-alpine) …',
    )
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql')
    const container = await new PostgreSqlContainer('postgres:16-alpine').start()
    return {
      url: container.getConnectionUri(),
      embedded: false,
      stop: async () => {
        await container.stop()
      },
    }
  }
  const dataDir = env.GUILDSTORE_PGLITE_DIR || defaultEmbeddedDataDir(root)
  console.error(
    `database: no DATABASE_URL, nothing on ${hostPort(local)}, no Docker — starting an embedded PostgreSQL (PGlite, data in ${dataDir}; a development default, one connection) …`,
  )
  const started = Date.now()
  const embedded = await startEmbeddedPostgres(dataDir)
  console.error(`database: embedded PostgreSQL ready in ${Date.now() - started} ms`)
  return { url: embedded.url, embedded: true, stop: () => embedded.stop() }
}

async function chooseRedis(dockerAnswers: () => Promise<boolean>): Promise<RedisChoice> {
  if (env.REDIS_URL) {
    if (!(await redisAnswers(env.REDIS_URL))) {
      throw new Explained(
        `Redis at ${hostPort(env.REDIS_URL)} (REDIS_URL) does not answer. Start it, fix REDIS_URL, or unset it (without Redis the example runs in single-process mode).`,
      )
    }
    console.error(`redis: ${redact(env.REDIS_URL)} (REDIS_URL)`)
    return { url: env.REDIS_URL, stop: nothing }
  }
  const local = localDefaults(env).redisUrl
  if (await redisAnswers(local)) {
    console.error(`redis: local Redis on ${hostPort(local)} — set REDIS_URL to use another`)
    return { url: local, stop: nothing }
  }
  if (await dockerAnswers()) {
    console.error('redis: starting a Redis container (testcontainers, redis:7-alpine) …')
    const { RedisContainer } = await import('@testcontainers/redis')
    const container = await new RedisContainer('redis:7-alpine').start()
    return {
      url: container.getConnectionUrl(),
      stop: async () => {
        await container.stop()
      },
    }
  }
  console.error(
    `redis: none (no REDIS_URL, nothing on ${hostPort(local)}, no Docker) — SINGLE-PROCESS MODE: events fan out inside this process and login limiting counts in memory; one instance only`,
  )
  return { url: undefined, stop: nothing }
}

/** Two users in a guild with a #general and a long #history; skipped when already there. */
async function seed(db: Kysely<DB>): Promise<void> {
  if (await findUserByUsername(db, 'demo_ada')) return
  const password_hash = await hashPassword(DEMO_PASSWORD)
  const ada = await createUser(db, { username: 'demo_ada', display_name: 'Ada', password_hash })
  const grace = await createUser(db, {
    username: 'demo_grace',
    display_name: 'Grace',
    password_hash,
  })
  const guild = await createGuild(db, { name: 'Demo guild', owner_id: ada.id })
  await addGuildMember(db, { guild_id: guild.id, user_id: grace.id })
  const general = await createChannel(db, { guild_id: guild.id, name: 'general', type: 'text' })
  await createMessage(db, {
    channel_id: general.id,
    author_id: ada.id,
    content: 'Welcome to the demo guild!',
  })
  const history = await createChannel(db, {
    guild_id: guild.id,
    name: 'history',
    type: 'text',
    topic: 'scroll up: older messages load as you go',
  })
  for (let i = 1; i <= 120; i++) {
    await createMessage(db, {
      channel_id: history.id,
      author_id: i % 2 ? ada.id : grace.id,
      content: `history note ${i} of 120`,
    })
  }
}

const stops: (() => Promise<void>)[] = []
async function stopAll(): Promise<void> {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => {})
}

async function main(): Promise<void> {
  let docker: Promise<boolean> | undefined
  const dockerAnswers = () => {
    docker ??= pingDocker(env)
    return docker
  }
  const database = await chooseDatabase(dockerAnswers)
  stops.push(database.stop)
  const redisChoice = await chooseRedis(dockerAnswers)
  stops.push(redisChoice.stop)

  // The embedded server runs every client on one backend: one connection, no
  // named prepared statements.
  const pool = createPool({
    connectionString: database.url,
    max: database.embedded ? 1 : 10,
    // PGlite answers one statement at a time; on a loaded machine a connection can wait long.
    connectionTimeoutMillis: database.embedded ? 120_000 : 30_000,
  })
  // One backend: the run-level lock's open transaction on a second connection would
  // block the run itself; the data-folder lock already keeps other runners out.
  const { applied } = await runMigrations(pool, database.embedded ? { lock: false } : {})
  console.error(`migrations: ${applied.length ? `applied ${applied.length}` : 'up to date'}`)
  const db = createDb(pool, database.embedded ? { preparedStatements: false } : {})
  stops.push(() => db.destroy())
  await seed(db)

  const redis = redisChoice.url
    ? createRedis({
        url: redisChoice.url,
        namespace: env.CHAT_REDIS_NAMESPACE || 'chat-example',
        onError: (error) => console.error(`redis: ${error.message}`),
      })
    : undefined
  const subscriber = redis?.duplicate()
  if (redis && subscriber) {
    stops.push(async () => {
      redis.disconnect()
      subscriber.disconnect()
    })
  }
  const port = Number(env.PORT || 3000)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Explained(`PORT must be a port number (0 picks a free one), not "${env.PORT}"`)
  }
  const service = await createChatService({ db, redis, subscriber, port })
  stops.push(() => service.close())

  const u = service.url
  console.log(`chat service listening on ${u}
Open ${u}/ in a browser: sign up, or log in as demo_ada or demo_grace (password "${DEMO_PASSWORD}").
The HTTP API, e.g.:
  curl -s -X POST ${u}/login -H 'content-type: application/json' -d '{"username":"demo_ada","password":"${DEMO_PASSWORD}"}'
Ctrl-C stops it.`)
}

let stopping = false
async function shutdown(signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  console.error(`${signal}: stopping`)
  await stopAll()
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    shutdown(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error)
        process.exit(1)
      },
    )
  })
}

try {
  await main()
} catch (error) {
  const explained =
    error instanceof Explained ||
    error instanceof PortInUseError ||
    error instanceof EmbeddedPostgresBusyError
  console.error(explained ? (error as Error).message : error)
  await stopAll()
  process.exit(1)
}
