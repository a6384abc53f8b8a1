import {
  createMessage,
  deleteMessage,
  findMessageById,
  listChannelMessages,
  newId,
  purgeDeletedMessages,
  updateMessage,
} from '../../src/index.ts'
import type { SnapshotScenario } from './scenario.ts'

const scenario: SnapshotScenario = {
  module: 'messages',
  async run({ db, capture }) {
    const user = await db
      .insertInto('users')
      .values({ id: newId(), username: `snap_${newId().slice(-8)}` })
      .returning('id')
      .executeTakeFirstOrThrow()
    const guild = await db
      .insertInto('guilds')
      .values({ id: newId(), name: 'snapshots', owner_id: user.id })
      .returning('id')
      .executeTakeFirstOrThrow()
    const channel = await db
      .insertInto('channels')
      .values({ id: newId(), guild_id: guild.id, name: 'general', type: 'text' })
      .returning('id')
      .executeTakeFirstOrThrow()
    const first = await createMessage(db, {
      channel_id: channel.id,
      author_id: user.id,
      content: 'one',
    })
    let reply = first
    await capture('createMessage', async () => {
      reply = await createMessage(db, {
        channel_id: channel.id,
        author_id: user.id,
        content: 'two',
        reply_to: first.id,
      })
    })
    await capture('createMessage (throws) invalid content', () =>
      createMessage(db, { channel_id: channel.id, author_id: user.id, content: '' }),
    )
    await capture('findMessageById', () => findMessageById(db, first.id))
    await capture('listChannelMessages newest', () => listChannelMessages(db, channel.id))
    await capture('listChannelMessages before', () =>
      listChannelMessages(db, channel.id, { before: reply.id, limit: 10 }),
    )
    await capture('listChannelMessages after', () =>
      listChannelMessages(db, channel.id, { after: first.id, limit: 10 }),
    )
    await capture('listChannelMessages between', () =>
      listChannelMessages(db, channel.id, { after: first.id, before: reply.id }),
    )
    await capture('updateMessage', () => updateMessage(db, first.id, { content: 'edited' }))
    await capture('deleteMessage', () => deleteMessage(db, reply.id))
    await capture('purgeDeletedMessages', () =>
      purgeDeletedMessages(db, { older_than: new Date(Date.now() + 60_000) }),
    )
  },
}

export default scenario
