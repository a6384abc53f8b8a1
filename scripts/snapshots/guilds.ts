import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import {
  createGuild,
  type DB,
  deleteGuild,
  findGuildById,
  listGuildsForUser,
  newId,
  transferGuildOwnership,
  updateGuild,
} from '../../src/index.ts'
import type { SnapshotScenario } from './scenario.ts'

/** A user inserted directly (the users module has its own scenario). */
export async function snapshotUser(db: Kysely<DB>): Promise<string> {
  const id = newId()
  await db
    .insertInto('users')
    .values({ id, username: `snap_${randomBytes(5).toString('hex')}` })
    .execute()
  return id
}

const scenario: SnapshotScenario = {
  module: 'guilds',
  async run({ db, capture }) {
    const owner = await snapshotUser(db)
    const member = await snapshotUser(db)
    const stranger = await snapshotUser(db)
    let guildId = ''
    await capture('createGuild', async () => {
      guildId = (await createGuild(db, { name: 'Snapshot guild', owner_id: owner })).id
    })
    await db.insertInto('guild_members').values({ guild_id: guildId, user_id: member }).execute()
    await capture('findGuildById', () => findGuildById(db, guildId))
    await capture('listGuildsForUser', () => listGuildsForUser(db, owner))
    await capture('updateGuild', () => updateGuild(db, guildId, { name: 'Renamed' }))
    await capture('transferGuildOwnership', () =>
      transferGuildOwnership(db, { guild_id: guildId, new_owner_id: member }),
    )
    await capture('transferGuildOwnership (throws) to a non-member', () =>
      transferGuildOwnership(db, { guild_id: guildId, new_owner_id: stranger }),
    )
    await capture('deleteGuild', () => deleteGuild(db, guildId))
  },
}
export default scenario
