import { createChannel, createGuild, newId, searchMessages } from '../../src/index.ts'
import { snapshotUser } from './guilds.ts'
import type { SnapshotScenario } from './scenario.ts'

const scenario: SnapshotScenario = {
  module: 'search',
  async run({ db, capture }) {
    const owner = await snapshotUser(db)
    const guild = await createGuild(db, { name: 'Search', owner_id: owner })
    const channel = await createChannel(db, { guild_id: guild.id, name: 'general', type: 'text' })
    await db
      .insertInto('messages')
      .values({ id: newId(), channel_id: channel.id, author_id: owner, content: 'release notes' })
      .execute()
    await capture('searchMessages', () =>
      searchMessages(db, {
        user_id: owner,
        query: '"release notes"',
        guild_id: guild.id,
        limit: 10,
      }),
    )
  },
}
export default scenario
