// Runs inside the temporary host project, as the application role (DML rights only):
// guildstore installed in schema "chat" next to the host's own users/sessions/messages.
// Prints one JSON document.
import {
  createChannel,
  createDb,
  createGuild,
  createMessage,
  createPool,
  createUser,
  listChannelMessages,
  migrationStatus,
  searchMessages,
} from 'guildstore'

const pool = createPool({ connectionString: process.env.APP_DATABASE_URL, schema: 'chat', max: 2 })
const db = createDb(pool)
try {
  const owner = await createUser(db, { username: 'ada', email: 'ada@example.test' })
  const guild = await createGuild(db, { name: 'Engines', owner_id: owner.id })
  const channel = await createChannel(db, { guild_id: guild.id, name: 'general', type: 'text' })
  for (const content of ['the analytical engine', 'second', 'difference engine']) {
    await createMessage(db, { channel_id: channel.id, author_id: owner.id, content })
  }
  const history = await listChannelMessages(db, channel.id, { limit: 10 })
  const hits = await searchMessages(db, { user_id: owner.id, query: 'engine' })
  const ddl = await pool.query('CREATE TABLE chat.not_allowed (id int)').then(
    () => 'allowed',
    (e) => e.code,
  )
  const who = await pool.query(
    "SELECT current_user AS role, current_setting('search_path') AS path",
  )
  const status = await migrationStatus(pool)
  console.log(
    JSON.stringify({
      role: who.rows[0].role,
      searchPath: who.rows[0].path,
      guildId: guild.id,
      history: history.map((m) => m.content),
      hits: hits.map((m) => m.content).sort(),
      ddl,
      statusStates: [...new Set(status.map((m) => m.state))],
    }),
  )
} finally {
  await db.destroy()
}
