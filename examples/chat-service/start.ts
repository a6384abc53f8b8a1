/**
 * `npm run example`: starts the chat service with a little demo data.
 *
 * Servers: `DATABASE_URL` and `REDIS_URL` when set; otherwise PostgreSQL and
 * Redis containers (testcontainers) when a Docker engine answers; otherwise it
 * says what to set and exits 1. `PORT` (default 3000; 0 picks a free one),
 * `CHAT_REDIS_NAMESPACE` (default `chat-example`).
 */
import type { Kysely } from 'kysely'
import {
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
import { pingDocker } from '../../test/support/servers.ts'
import { hashPassword } from './passwords.ts'
import { createChatService } from './server.ts'

const DEMO_PASSWORD = 'correct horse battery staple'

interface Servers {
  databaseUrl: string
  redisUrl: string
  stop(): Promise<void>
}

async function servers(): Promise<Servers | undefined> {
  const databaseUrl = process.env.DATABASE_URL
  const redisUrl = process.env.REDIS_URL
  if (databaseUrl && redisUrl) return { databaseUrl, redisUrl, async stop() {} }
  if (!(await pingDocker())) return undefined
  console.error('starting containers (testcontainers): postgres:16-alpine, redis:7-alpine …')
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql')
  const { RedisContainer } = await import('@testcontainers/redis')
  const [pg, redis] = await Promise.all([
    databaseUrl ? undefined : new PostgreSqlContainer('postgres:16-alpine').start(),
    redisUrl ? undefined : new RedisContainer('redis:7-alpine').start(),
  ])
  return {
    databaseUrl: databaseUrl ?? (pg?.getConnectionUri() as string),
    redisUrl: redisUrl ?? (redis?.getConnectionUrl() as string),
    async stop() {
      await Promise.all([pg?.stop(), redis?.stop()])
    },
  }
}

/** Two users, a guild with a channel and a welcome message; skipped when already there. */
async function seed(db: Kysely<DB>): Promise<void> {
  if (await findUserByUsername(db, 'demo_ada')) return
  const password_hash = await hashPassword(DEMO_PASSWORD)
  const ada = await createUser(db, { username: 'demo_ada', display_name: 'Ada', password_hash })
  await createUser(db, { username: 'demo_grace', display_name: 'Grace', password_hash })
  const guild = await createGuild(db, { name: 'Demo guild', owner_id: ada.id })
  const channel = await createChannel(db, { guild_id: guild.id, name: 'general', type: 'text' })
  await createMessage(db, {
    channel_id: channel.id,
    author_id: ada.id,
    content: 'Welcome to the demo guild!',
  })
}

const found = await servers()
if (!found) {
  console.error(`The chat example needs PostgreSQL and Redis. Either set both:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
  REDIS_URL=redis://127.0.0.1:6379 npm run example
or start a Docker engine (DOCKER_HOST or /var/run/docker.sock) and run it again.`)
  process.exit(1)
}

const pool = createPool({ connectionString: found.databaseUrl, max: 10 })
const { applied } = await runMigrations(pool)
console.error(`migrations: ${applied.length ? `applied ${applied.length}` : 'up to date'}`)
const db = createDb(pool)
await seed(db)

const redis = createRedis({
  url: found.redisUrl,
  namespace: process.env.CHAT_REDIS_NAMESPACE || 'chat-example',
  onError: (error) => console.error(`redis: ${error.message}`),
})
const subscriber = redis.duplicate()
const service = await createChatService({
  db,
  redis,
  subscriber,
  port: Number(process.env.PORT ?? 3000),
})

const u = service.url
console.log(`chat service listening on ${u}
Try (password of demo_ada and demo_grace: "${DEMO_PASSWORD}"):
  TOKEN=$(curl -s -X POST ${u}/login -H 'content-type: application/json' \\
    -d '{"username":"demo_ada","password":"${DEMO_PASSWORD}"}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).token')
  CHANNEL=$(curl -s -X POST ${u}/guilds -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
    -d '{"name":"My guild"}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).channel.id')
  curl -N ${u}/channels/$CHANNEL/events -H "authorization: Bearer $TOKEN" &    # live events (SSE)
  curl -s -X POST ${u}/channels/$CHANNEL/messages -H "authorization: Bearer $TOKEN" \\
    -H 'content-type: application/json' -d '{"content":"hello, world"}'
  curl -s "${u}/channels/$CHANNEL/messages?limit=20" -H "authorization: Bearer $TOKEN"
  curl -s "${u}/search?q=hello" -H "authorization: Bearer $TOKEN"
Ctrl-C stops it.`)

let stopping = false
async function shutdown(signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  console.error(`${signal}: stopping`)
  await service.close()
  await db.destroy()
  redis.disconnect()
  subscriber.disconnect()
  await found?.stop()
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
