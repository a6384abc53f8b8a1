import {
  acceptFriendRequest,
  blockUser,
  createUser,
  deleteUser,
  isBlocked,
  listFriendRequests,
  listFriends,
  lockUserPair,
  newId,
  removeFriendship,
  sendFriendRequest,
  unblockUser,
} from '../../src/index.ts'
import type { SnapshotScenario } from './scenario.ts'

const scenario: SnapshotScenario = {
  module: 'friendships',
  async run({ db, capture }) {
    const suffix = newId().slice(-8)
    const a = await createUser(db, { username: `snap_a_${suffix}` })
    const b = await createUser(db, { username: `snap_b_${suffix}` })
    await capture('sendFriendRequest', () =>
      sendFriendRequest(db, { from_user_id: a.id, to_user_id: b.id }),
    )
    await capture('sendFriendRequest (throws) to oneself', () =>
      sendFriendRequest(db, { from_user_id: a.id, to_user_id: a.id }),
    )
    await capture('listFriendRequests', () => listFriendRequests(db, b.id))
    await capture('acceptFriendRequest', () =>
      acceptFriendRequest(db, { user_id: b.id, requester_id: a.id }),
    )
    await capture('listFriends', () => listFriends(db, a.id))
    await capture('removeFriendship', () =>
      removeFriendship(db, { user_id: a.id, other_user_id: b.id }),
    )
    await capture('blockUser', () => blockUser(db, { user_id: a.id, blocked_user_id: b.id }))
    await capture('isBlocked', () => isBlocked(db, { user_id: b.id, other_user_id: a.id }))
    await capture('unblockUser', () => unblockUser(db, { user_id: a.id, blocked_user_id: b.id }))
    await capture('lockUserPair', () =>
      db.transaction().execute((trx) => lockUserPair(trx, a.id, b.id)),
    )
    await deleteUser(db, a.id)
    await deleteUser(db, b.id)
  },
}

export default scenario
