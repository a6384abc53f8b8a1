import {
  createMessage,
  findOrCreateDmChannel,
  listDmChannels,
  markDmRead,
  newId,
} from '../../src/index.ts'
import type { SnapshotScenario } from './scenario.ts'

const scenario: SnapshotScenario = {
  module: 'dms',
  async run({ db, capture }) {
    const [me, them] = await db
      .insertInto('users')
      .values([
        { id: newId(), username: `snap_${newId().slice(-8)}` },
        { id: newId(), username: `snap_${newId().slice(-8)}` },
      ])
      .returning('id')
      .execute()
    if (!me || !them) throw new Error('scenario setup failed')
    let channelId = ''
    await capture('findOrCreateDmChannel', async () => {
      const { channel } = await findOrCreateDmChannel(db, {
        user_id: me.id,
        other_user_id: them.id,
      })
      channelId = channel.id
    })
    const message = await createMessage(db, {
      channel_id: channelId,
      author_id: them.id,
      content: 'hi',
    })
    await capture('listDmChannels', () => listDmChannels(db, me.id))
    await capture('markDmRead', () =>
      markDmRead(db, { channel_id: channelId, user_id: me.id, message_id: message.id }),
    )
  },
}

export default scenario
