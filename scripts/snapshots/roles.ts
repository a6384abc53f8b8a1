import {
  assignRole,
  computePermissions,
  createChannel,
  createGuild,
  createRole,
  deleteRole,
  listGuildRoles,
  listMemberRoles,
  Permissions,
  unassignRole,
  updateRole,
} from '../../src/index.ts'
import { snapshotUser } from './guilds.ts'
import type { SnapshotScenario } from './scenario.ts'

const scenario: SnapshotScenario = {
  module: 'roles',
  async run({ db, capture }) {
    const owner = await snapshotUser(db)
    const user = await snapshotUser(db)
    const guild = await createGuild(db, { name: 'Roles', owner_id: owner })
    await db.insertInto('guild_members').values({ guild_id: guild.id, user_id: user }).execute()
    const channel = await createChannel(db, { guild_id: guild.id, name: 'c', type: 'text' })
    let roleId = ''
    await capture('createRole', async () => {
      roleId = (
        await createRole(db, {
          guild_id: guild.id,
          name: 'mod',
          permissions: Permissions.MANAGE_MESSAGES,
        })
      ).id
    })
    await capture('updateRole', () =>
      updateRole(db, roleId, { permissions: Permissions.MODERATE_MEMBERS }),
    )
    await capture('listGuildRoles', () => listGuildRoles(db, guild.id))
    const assignment = { guild_id: guild.id, user_id: user, role_id: roleId }
    await capture('assignRole', () => assignRole(db, assignment))
    await capture('listMemberRoles', () =>
      listMemberRoles(db, { guild_id: guild.id, user_id: user }),
    )
    await capture('computePermissions', () =>
      computePermissions(db, { guild_id: guild.id, user_id: user }),
    )
    await capture('computePermissions with channel_id', () =>
      computePermissions(db, { guild_id: guild.id, user_id: user, channel_id: channel.id }),
    )
    await capture('unassignRole', () => unassignRole(db, assignment))
    await capture('deleteRole', () => deleteRole(db, roleId))
  },
}
export default scenario
