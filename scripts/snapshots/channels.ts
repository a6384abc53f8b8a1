import {
  addChannelMember,
  canAccessChannel,
  createChannel,
  createGuild,
  deleteChannel,
  findChannelById,
  isChannelMember,
  listChannelMembers,
  listGuildChannels,
  listVisibleChannels,
  removeChannelMember,
  updateChannel,
} from '../../src/index.ts'
import { snapshotUser } from './guilds.ts'
import type { SnapshotScenario } from './scenario.ts'

const scenario: SnapshotScenario = {
  module: 'channels',
  async run({ db, capture }) {
    const owner = await snapshotUser(db)
    const guild = await createGuild(db, { name: 'Channels', owner_id: owner })
    let channelId = ''
    await capture('createChannel', async () => {
      channelId = (
        await createChannel(db, {
          guild_id: guild.id,
          name: 'staff',
          type: 'text',
          is_private: true,
        })
      ).id
    })
    await capture('findChannelById', () => findChannelById(db, channelId))
    await capture('listGuildChannels', () => listGuildChannels(db, guild.id))
    await capture('updateChannel', () => updateChannel(db, channelId, { topic: 'Staff only' }))
    const key = { channel_id: channelId, user_id: owner }
    await capture('addChannelMember', () => addChannelMember(db, key))
    await capture('listChannelMembers', () => listChannelMembers(db, channelId))
    await capture('isChannelMember', () => isChannelMember(db, key))
    await capture('canAccessChannel', () => canAccessChannel(db, key))
    await capture('listVisibleChannels', () =>
      listVisibleChannels(db, { guild_id: guild.id, user_id: owner }),
    )
    await capture('removeChannelMember', () => removeChannelMember(db, key))
    await capture('deleteChannel', () => deleteChannel(db, channelId))
  },
}
export default scenario
