// Runs inside a temporary project that installed the packed guildstore tarball:
// migrates a blank database with the CLI (twice: the second is a no-op), then
// uses guildstore/testing and the repository functions, and prints one JSON document.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import * as guildstore from 'guildstore'
import { createTestDatabase } from 'guildstore/testing'

const {
  canAccessChannel,
  createChannel,
  createGuild,
  createMessage,
  createPool,
  createUser,
  findUserByUsername,
  listChannelMessages,
  listGuildRoles,
  migrationStatus,
  searchMessages,
} = guildstore

const url = process.env.FRESH_DATABASE_URL
const cli = (...args) => {
  const r = spawnSync('npx', ['--no', 'guildstore', ...args, '--database-url', url, '--json'], {
    encoding: 'utf8',
  })
  if (r.status !== 0) process.stderr.write(r.stderr)
  return { code: r.status, out: r.stdout ? JSON.parse(r.stdout) : null }
}
const first = cli('migrate')
const second = cli('migrate')
const status = cli('status')

const pool = createPool({ connectionString: url, max: 1 })
const states = (await migrationStatus(pool)).map((m) => `${m.file}:${m.state}`)
await pool.end()

const t = await createTestDatabase({
  fixtures: [fileURLToPath(new URL('./fixture.sql', import.meta.url))],
})
try {
  const db = t.db
  const fixtureUser = await findUserByUsername(db, 'FIXTURE_ADA') // case-insensitive
  const grace = await createUser(db, { username: 'grace', email: 'grace@example.test' })
  const guild = await createGuild(db, { name: 'Compilers', owner_id: grace.id })
  const channel = await createChannel(db, { guild_id: guild.id, name: 'general', type: 'text' })
  for (const content of ['first: analytical engine', 'second', 'third', 'fourth: engine']) {
    await createMessage(db, { channel_id: channel.id, author_id: grace.id, content })
  }
  const page1 = await listChannelMessages(db, channel.id, { limit: 3 })
  const page2 = await listChannelMessages(db, channel.id, { before: page1.at(-1).id, limit: 3 })
  const hits = await searchMessages(db, { user_id: grace.id, query: 'engine' })
  const roles = await listGuildRoles(db, guild.id)
  console.log(
    JSON.stringify({
      cli: { first, second, status },
      states,
      exports: Object.keys(guildstore).sort(),
      fixtureUser: fixtureUser && {
        username: fixtureUser.username,
        keys: Object.keys(fixtureUser),
      },
      grace: Object.keys(grace).sort(),
      pages: [page1.map((m) => m.content), page2.map((m) => m.content)],
      search: hits.map((m) => m.content).sort(),
      ownerCanAccess: await canAccessChannel(db, { channel_id: channel.id, user_id: grace.id }),
      strangerCanAccess: fixtureUser
        ? await canAccessChannel(db, { channel_id: channel.id, user_id: fixtureUser.id })
        : null,
      permissionsType: typeof roles[0]?.permissions,
      cloneName: t.name,
    }),
  )
} finally {
  await t.drop()
}
