import {
  createUser,
  deleteUser,
  findUserByEmail,
  findUserById,
  findUserByUsername,
  findUserCredentials,
  findUsersByIds,
  newId,
  setUserMfaSecret,
  setUserPassword,
  updateUser,
  updateUserStatus,
} from '../../src/index.ts'
import type { SnapshotScenario } from './scenario.ts'

const scenario: SnapshotScenario = {
  module: 'users',
  async run({ db, capture }) {
    const suffix = newId().slice(-8)
    const other = await createUser(db, { username: `snap_o_${suffix}` })
    let userId = ''
    await capture('createUser', async () => {
      const user = await createUser(db, {
        username: `snap_${suffix}`,
        email: `snap_${suffix}@example.test`,
        password_hash: '$argon2id$snapshot',
        display_name: 'Snapshot',
        status: 'online',
      })
      userId = user.id
    })
    await capture('createUser (throws) duplicate username', () =>
      createUser(db, { username: `SNAP_${suffix}` }),
    )
    await capture('createUser (throws) invalid username', () => createUser(db, { username: '' }))
    await capture('findUserById', () => findUserById(db, userId))
    await capture('findUserByUsername', () => findUserByUsername(db, `Snap_${suffix}`))
    await capture('findUserByEmail', () => findUserByEmail(db, `SNAP_${suffix}@example.test`))
    await capture('findUsersByIds', () => findUsersByIds(db, [userId, other.id, newId()]))
    await capture('findUserCredentials', () => findUserCredentials(db, `snap_${suffix}`))
    await capture('updateUser', () =>
      updateUser(db, userId, { display_name: 'Snap', avatar_url: null }),
    )
    await capture('updateUser empty patch', () => updateUser(db, userId, {}))
    await capture('updateUserStatus', () => updateUserStatus(db, userId, 'away'))
    await capture('setUserPassword', () => setUserPassword(db, userId, '$argon2id$new'))
    await capture('setUserMfaSecret', () => setUserMfaSecret(db, userId, null))
    await capture('deleteUser', () => deleteUser(db, userId))
    await deleteUser(db, other.id)
  },
}

export default scenario
