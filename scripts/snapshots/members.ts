import {
  addGuildMember,
  createGuild,
  findGuildMember,
  isGuildMember,
  listGuildMembers,
  removeGuildMember,
} from '../../src/index.ts'
import { snapshotUser } from './guilds.ts'
import type { SnapshotScenario } from './scenario.ts'

const scenario: SnapshotScenario = {
  module: 'members',
  async run({ db, capture }) {
    const owner = await snapshotUser(db)
    const user = await snapshotUser(db)
    const guild = await createGuild(db, { name: 'Members', owner_id: owner })
    const key = { guild_id: guild.id, user_id: user }
    await capture('addGuildMember', () => addGuildMember(db, key))
    await capture('findGuildMember', () => findGuildMember(db, key))
    await capture('isGuildMember', () => isGuildMember(db, key))
    await capture('listGuildMembers', () => listGuildMembers(db, guild.id, { limit: 10 }))
    await capture('removeGuildMember', () => removeGuildMember(db, key))
    await capture('removeGuildMember (throws) the owner', () =>
      removeGuildMember(db, { guild_id: guild.id, user_id: owner }),
    )
  },
}
export default scenario
