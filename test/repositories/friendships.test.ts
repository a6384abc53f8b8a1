import { describe, expect, it } from 'vitest'
import {
  acceptFriendRequest,
  blockUser,
  ConflictError,
  createUser,
  deleteUser,
  ForeignKeyViolationError,
  type Friendship,
  InvalidInputError,
  isBlocked,
  listFriendRequests,
  listFriends,
  lockUserPair,
  NotFoundError,
  removeFriendship,
  sendFriendRequest,
  type User,
  unblockUser,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeUser, randomUsername, unknownId } from '../support/factories.ts'
import { BAD_IDS, expectInvalidAndNothingWritten } from '../support/hostile-inputs.ts'
import { fulfilled, lockTables, raceAtBarrier, waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase({ max: 20 })

const USER_KEYS = [
  'avatar_url',
  'created_at',
  'display_name',
  'email',
  'id',
  'status',
  'updated_at',
  'username',
]
const FRIENDSHIP_KEYS = ['created_at', 'friend_id', 'status', 'updated_at', 'user_id']

function expectPublicUsers(users: User[]) {
  for (const user of users) expect(Object.keys(user).sort()).toEqual(USER_KEYS)
}

async function expectBlocked(run: () => Promise<unknown>) {
  const before = await countRows(t.db)
  const error = await run().catch((e: unknown) => e)
  expect(error).toBeInstanceOf(ConflictError)
  expect((error as ConflictError).reason).toBe('blocked')
  expect(await countRows(t.db)).toEqual(before)
}

/** All rows between two users, as `from>to:status`, sorted. */
async function rowsBetween(a: string, b: string): Promise<string[]> {
  const rows = await t.db
    .selectFrom('friendships')
    .select(['user_id', 'friend_id', 'status'])
    .where((eb) =>
      eb.or([
        eb.and([eb('user_id', '=', a), eb('friend_id', '=', b)]),
        eb.and([eb('user_id', '=', b), eb('friend_id', '=', a)]),
      ]),
    )
    .execute()
  const name = (id: string) => (id === a ? 'a' : 'b')
  return rows.map((r) => `${name(r.user_id)}>${name(r.friend_id)}:${r.status}`).sort()
}

async function twoUsers() {
  return [await makeUser(t.db), await makeUser(t.db)] as const
}

async function befriend(a: string, b: string) {
  await t.db
    .insertInto('friendships')
    .values([
      { user_id: a, friend_id: b, status: 'accepted' },
      { user_id: b, friend_id: a, status: 'accepted' },
    ])
    .execute()
}

describe('sendFriendRequest', () => {
  it('creates a pending request from → to', async () => {
    const [a, b] = await twoUsers()
    const row = await sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id })
    expect(Object.keys(row).sort()).toEqual(FRIENDSHIP_KEYS)
    expect(row).toMatchObject({ user_id: a.id, friend_id: b.id, status: 'pending' })
    expect(row.created_at).toBeInstanceOf(Date)
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:pending'])
  })

  it('is idempotent for a request already pending', async () => {
    const [a, b] = await twoUsers()
    const first = await sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id })
    const again = await sendFriendRequest(t.db, {
      from_user_id: a.id.toUpperCase(),
      to_user_id: b.id,
    })
    expect(again).toEqual(first)
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:pending'])
  })

  it('makes friends when the other side already asked', async () => {
    const [a, b] = await twoUsers()
    await sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id })
    const row = await sendFriendRequest(t.db, { from_user_id: b.id, to_user_id: a.id })
    expect(row).toMatchObject({ user_id: b.id, friend_id: a.id, status: 'accepted' })
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:accepted', 'b>a:accepted'])
  })

  it('returns the accepted row for users who are friends already', async () => {
    const [a, b] = await twoUsers()
    await befriend(a.id, b.id)
    const row = await sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id })
    expect(row).toMatchObject({ user_id: a.id, friend_id: b.id, status: 'accepted' })
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:accepted', 'b>a:accepted'])
  })

  it('refuses a request to oneself', async () => {
    const a = await makeUser(t.db)
    await expectInvalidAndNothingWritten(t.db, () =>
      sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: a.id }),
    )
    await expectInvalidAndNothingWritten(t.db, () =>
      sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: a.id.toUpperCase() }),
    )
  })

  it.each(BAD_IDS)('refuses id %j on either side', async (bad) => {
    const a = await makeUser(t.db)
    await expectInvalidAndNothingWritten(t.db, () =>
      sendFriendRequest(t.db, { from_user_id: bad as string, to_user_id: a.id }),
    )
    await expectInvalidAndNothingWritten(t.db, () =>
      sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: bad as string }),
    )
  })

  it('refuses a missing input object', async () => {
    await expectInvalidAndNothingWritten(t.db, () => sendFriendRequest(t.db, undefined as never))
  })

  it('refuses an unknown user with ForeignKeyViolationError', async () => {
    const a = await makeUser(t.db)
    const before = await countRows(t.db)
    await expect(
      sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: unknownId() }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    await expect(
      sendFriendRequest(t.db, { from_user_id: unknownId(), to_user_id: a.id }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    expect(await countRows(t.db)).toEqual(before)
  })

  it('refuses requests both ways when a block stands', async () => {
    const [a, b] = await twoUsers()
    await blockUser(t.db, { user_id: a.id, blocked_user_id: b.id })
    await expectBlocked(() => sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id }))
    await expectBlocked(() => sendFriendRequest(t.db, { from_user_id: b.id, to_user_id: a.id }))
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:blocked'])
  })

  it('ends crossing requests held at a barrier as friends, never two pendings (20 rounds)', async () => {
    for (let round = 0; round < 20; round++) {
      const [a, b] = await twoUsers()
      // One call takes the pair's lock and waits to write at the table lock,
      // the other waits on the pair's lock.
      const race = await raceAtBarrier(t.pool, lockTables('friendships'), [
        () => sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id }),
        () => sendFriendRequest(t.db, { from_user_id: b.id, to_user_id: a.id }),
      ])
      expect(race.waiters).toBe(2)
      const [ab, ba] = fulfilled(race.results)
      expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:accepted', 'b>a:accepted'])
      // One of the two ran first and saw nothing; the other made friends.
      expect([ab!.status, ba!.status].sort()).toEqual(['accepted', 'pending'])
    }
  })

  it('never leaves a friendship next to a block held at a barrier with it (20 rounds)', async () => {
    for (let round = 0; round < 20; round++) {
      const [a, b] = await twoUsers()
      await sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id })
      const race = await raceAtBarrier(t.pool, lockTables('friendships'), [
        () => blockUser(t.db, { user_id: a.id, blocked_user_id: b.id }),
        () => sendFriendRequest(t.db, { from_user_id: b.id, to_user_id: a.id }),
      ])
      expect(race.waiters).toBe(2)
      const send = race.results[1]!
      expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:blocked'])
      if (send.status === 'rejected') expect(send.reason).toBeInstanceOf(ConflictError)
    }
  })
})

describe('acceptFriendRequest', () => {
  it('accepts a pending request: both rows accepted, the accepter’s row returned', async () => {
    const [a, b] = await twoUsers()
    await sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id })
    const row = await acceptFriendRequest(t.db, { user_id: b.id, requester_id: a.id })
    expect(Object.keys(row).sort()).toEqual(FRIENDSHIP_KEYS)
    expect(row).toMatchObject({ user_id: b.id, friend_id: a.id, status: 'accepted' })
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:accepted', 'b>a:accepted'])
  })

  it('throws NotFoundError when nothing is pending', async () => {
    const [a, b] = await twoUsers()
    const before = await countRows(t.db)
    const none = await acceptFriendRequest(t.db, { user_id: b.id, requester_id: a.id }).catch(
      (e: unknown) => e,
    )
    expect(none).toBeInstanceOf(NotFoundError)
    expect((none as NotFoundError).entity).toBe('friend_request')
    expect(await countRows(t.db)).toEqual(before)
  })

  it('does not let the requester accept their own request', async () => {
    const [a, b] = await twoUsers()
    await sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id })
    await expect(
      acceptFriendRequest(t.db, { user_id: a.id, requester_id: b.id }),
    ).rejects.toBeInstanceOf(NotFoundError)
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:pending'])
  })

  it('throws NotFoundError for a request from an unknown user', async () => {
    const a = await makeUser(t.db)
    await expect(
      acceptFriendRequest(t.db, { user_id: a.id, requester_id: unknownId() }),
    ).rejects.toBeInstanceOf(NotFoundError)
  })

  it('refuses oneself and malformed ids', async () => {
    const a = await makeUser(t.db)
    await expectInvalidAndNothingWritten(t.db, () =>
      acceptFriendRequest(t.db, { user_id: a.id, requester_id: a.id }),
    )
    for (const bad of BAD_IDS) {
      await expectInvalidAndNothingWritten(t.db, () =>
        acceptFriendRequest(t.db, { user_id: a.id, requester_id: bad as string }),
      )
      await expectInvalidAndNothingWritten(t.db, () =>
        acceptFriendRequest(t.db, { user_id: bad as string, requester_id: a.id }),
      )
    }
  })
})

describe('removeFriendship', () => {
  it('unfriends (both rows)', async () => {
    const [a, b] = await twoUsers()
    await befriend(a.id, b.id)
    expect(await removeFriendship(t.db, { user_id: b.id, other_user_id: a.id })).toBe(true)
    expect(await rowsBetween(a.id, b.id)).toEqual([])
    expect(await removeFriendship(t.db, { user_id: b.id, other_user_id: a.id })).toBe(false)
  })

  it('cancels an outgoing request and declines an incoming one', async () => {
    const [a, b] = await twoUsers()
    await sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id })
    expect(await removeFriendship(t.db, { user_id: a.id, other_user_id: b.id })).toBe(true)
    expect(await rowsBetween(a.id, b.id)).toEqual([])
    await sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id })
    expect(await removeFriendship(t.db, { user_id: b.id, other_user_id: a.id })).toBe(true)
    expect(await rowsBetween(a.id, b.id)).toEqual([])
  })

  it('never removes a block', async () => {
    const [a, b] = await twoUsers()
    await blockUser(t.db, { user_id: a.id, blocked_user_id: b.id })
    expect(await removeFriendship(t.db, { user_id: b.id, other_user_id: a.id })).toBe(false)
    expect(await removeFriendship(t.db, { user_id: a.id, other_user_id: b.id })).toBe(false)
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:blocked'])
  })

  it('refuses oneself and malformed ids', async () => {
    const a = await makeUser(t.db)
    await expectInvalidAndNothingWritten(t.db, () =>
      removeFriendship(t.db, { user_id: a.id, other_user_id: a.id }),
    )
    for (const bad of BAD_IDS) {
      await expectInvalidAndNothingWritten(t.db, () =>
        removeFriendship(t.db, { user_id: a.id, other_user_id: bad as string }),
      )
    }
  })
})

describe('blockUser / unblockUser / isBlocked', () => {
  it('blocks, ending a friendship both ways', async () => {
    const [a, b] = await twoUsers()
    await befriend(a.id, b.id)
    const row = await blockUser(t.db, { user_id: a.id, blocked_user_id: b.id })
    expect(Object.keys(row).sort()).toEqual(FRIENDSHIP_KEYS)
    expect(row).toMatchObject({ user_id: a.id, friend_id: b.id, status: 'blocked' })
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:blocked'])
    expect(await listFriends(t.db, a.id)).toEqual([])
    expect(await listFriends(t.db, b.id)).toEqual([])
  })

  it('ends requests both ways', async () => {
    const [a, b] = await twoUsers()
    await sendFriendRequest(t.db, { from_user_id: b.id, to_user_id: a.id })
    await blockUser(t.db, { user_id: a.id, blocked_user_id: b.id })
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:blocked'])
    const [c, d] = await twoUsers()
    await sendFriendRequest(t.db, { from_user_id: c.id, to_user_id: d.id })
    await blockUser(t.db, { user_id: c.id, blocked_user_id: d.id })
    expect(await rowsBetween(c.id, d.id)).toEqual(['a>b:blocked'])
  })

  it('is idempotent and keeps the other side’s own block', async () => {
    const [a, b] = await twoUsers()
    const first = await blockUser(t.db, { user_id: a.id, blocked_user_id: b.id })
    const again = await blockUser(t.db, { user_id: a.id, blocked_user_id: b.id })
    expect(again).toEqual(first)
    await blockUser(t.db, { user_id: b.id, blocked_user_id: a.id })
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:blocked', 'b>a:blocked'])
    expect(await unblockUser(t.db, { user_id: a.id, blocked_user_id: b.id })).toBe(true)
    expect(await rowsBetween(a.id, b.id)).toEqual(['b>a:blocked'])
    expect(await isBlocked(t.db, { user_id: a.id, other_user_id: b.id })).toBe(true)
    await expectBlocked(() => sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id }))
  })

  it('unblocks only one’s own block', async () => {
    const [a, b] = await twoUsers()
    await blockUser(t.db, { user_id: a.id, blocked_user_id: b.id })
    expect(await unblockUser(t.db, { user_id: b.id, blocked_user_id: a.id })).toBe(false)
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:blocked'])
    expect(await unblockUser(t.db, { user_id: a.id, blocked_user_id: b.id })).toBe(true)
    expect(await unblockUser(t.db, { user_id: a.id, blocked_user_id: b.id })).toBe(false)
    expect(await rowsBetween(a.id, b.id)).toEqual([])
    const row = await sendFriendRequest(t.db, { from_user_id: b.id, to_user_id: a.id })
    expect(row.status).toBe('pending')
  })

  it('unblock does not touch a friendship', async () => {
    const [a, b] = await twoUsers()
    await befriend(a.id, b.id)
    expect(await unblockUser(t.db, { user_id: a.id, blocked_user_id: b.id })).toBe(false)
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:accepted', 'b>a:accepted'])
  })

  it('isBlocked sees a block either way', async () => {
    const [a, b] = await twoUsers()
    expect(await isBlocked(t.db, { user_id: a.id, other_user_id: b.id })).toBe(false)
    await befriend(a.id, b.id)
    expect(await isBlocked(t.db, { user_id: a.id, other_user_id: b.id })).toBe(false)
    await blockUser(t.db, { user_id: b.id, blocked_user_id: a.id })
    expect(await isBlocked(t.db, { user_id: a.id, other_user_id: b.id })).toBe(true)
    expect(await isBlocked(t.db, { user_id: b.id, other_user_id: a.id.toUpperCase() })).toBe(true)
    expect(await isBlocked(t.db, { user_id: a.id, other_user_id: a.id })).toBe(false)
  })

  it('refuses an unknown user with ForeignKeyViolationError, writing nothing', async () => {
    const [a, b] = await twoUsers()
    await befriend(a.id, b.id)
    const before = await countRows(t.db)
    await expect(
      blockUser(t.db, { user_id: a.id, blocked_user_id: unknownId() }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    expect(await countRows(t.db)).toEqual(before)
  })

  it('refuses oneself and malformed ids', async () => {
    const a = await makeUser(t.db)
    await expectInvalidAndNothingWritten(t.db, () =>
      blockUser(t.db, { user_id: a.id, blocked_user_id: a.id }),
    )
    await expectInvalidAndNothingWritten(t.db, () =>
      unblockUser(t.db, { user_id: a.id, blocked_user_id: a.id }),
    )
    for (const bad of BAD_IDS) {
      await expectInvalidAndNothingWritten(t.db, () =>
        blockUser(t.db, { user_id: a.id, blocked_user_id: bad as string }),
      )
      await expectInvalidAndNothingWritten(t.db, () =>
        blockUser(t.db, { user_id: bad as string, blocked_user_id: a.id }),
      )
      await expectInvalidAndNothingWritten(t.db, () =>
        unblockUser(t.db, { user_id: a.id, blocked_user_id: bad as string }),
      )
      await expectInvalidAndNothingWritten(t.db, () =>
        isBlocked(t.db, { user_id: a.id, other_user_id: bad as string }),
      )
      await expectInvalidAndNothingWritten(t.db, () =>
        isBlocked(t.db, { user_id: bad as string, other_user_id: a.id }),
      )
    }
    await expectInvalidAndNothingWritten(t.db, () => isBlocked(t.db, null as never))
  })
})

describe('listFriends / listFriendRequests', () => {
  it('lists accepted friends by username, without secrets', async () => {
    const me = await makeUser(t.db)
    const prefix = randomUsername()
    const zed = await makeUser(t.db, { username: `${prefix}_z` })
    const amy = await makeUser(t.db, { username: `${prefix}_a` })
    const mid = await makeUser(t.db, { username: `${prefix}_m` })
    const pending = await makeUser(t.db)
    const blocked = await makeUser(t.db)
    await befriend(me.id, zed.id)
    await befriend(me.id, amy.id)
    await sendFriendRequest(t.db, { from_user_id: mid.id, to_user_id: me.id })
    await acceptFriendRequest(t.db, { user_id: me.id, requester_id: mid.id })
    await sendFriendRequest(t.db, { from_user_id: me.id, to_user_id: pending.id })
    await blockUser(t.db, { user_id: me.id, blocked_user_id: blocked.id })
    const friends = await listFriends(t.db, me.id)
    expect(friends.map((u) => u.id)).toEqual([amy.id, mid.id, zed.id])
    expectPublicUsers(friends)
    expect((await listFriends(t.db, zed.id)).map((u) => u.id)).toEqual([me.id])
    expect(await listFriends(t.db, unknownId())).toEqual([])
  })

  it('lists incoming and outgoing requests', async () => {
    const me = await makeUser(t.db)
    const [in1, in2, out1, friend] = [
      await makeUser(t.db),
      await makeUser(t.db),
      await makeUser(t.db),
      await makeUser(t.db),
    ]
    await sendFriendRequest(t.db, { from_user_id: in1.id, to_user_id: me.id })
    await sendFriendRequest(t.db, { from_user_id: in2.id, to_user_id: me.id })
    await sendFriendRequest(t.db, { from_user_id: me.id, to_user_id: out1.id })
    await befriend(me.id, friend.id)
    const requests = await listFriendRequests(t.db, me.id)
    expect(requests.incoming.map((u) => u.id).sort()).toEqual([in1.id, in2.id].sort())
    expect(requests.outgoing.map((u) => u.id)).toEqual([out1.id])
    expectPublicUsers([...requests.incoming, ...requests.outgoing])
    const theirs = await listFriendRequests(t.db, out1.id)
    expect(theirs.incoming.map((u) => u.id)).toEqual([me.id])
    expect(theirs.outgoing).toEqual([])
  })

  it.each(BAD_IDS)('refuses %j', async (bad) => {
    await expectInvalidAndNothingWritten(t.db, () => listFriends(t.db, bad as string))
    await expectInvalidAndNothingWritten(t.db, () => listFriendRequests(t.db, bad as string))
  })
})

describe('friendship_status round trip', () => {
  it('stores and reads pending, accepted and blocked', async () => {
    const [a, b] = await twoUsers()
    const seen: Friendship['status'][] = []
    seen.push((await sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id })).status)
    seen.push((await acceptFriendRequest(t.db, { user_id: b.id, requester_id: a.id })).status)
    seen.push((await blockUser(t.db, { user_id: a.id, blocked_user_id: b.id })).status)
    expect(seen).toEqual(['pending', 'accepted', 'blocked'])
    const stored = await t.db
      .selectFrom('friendships')
      .select('status')
      .where('user_id', '=', a.id)
      .executeTakeFirst()
    expect(stored?.status).toBe('blocked')
  })
})

describe('cascades and transactions', () => {
  it('deleting a user removes their friendships both ways', async () => {
    const [a, b] = await twoUsers()
    const c = await makeUser(t.db)
    await befriend(a.id, b.id)
    await blockUser(t.db, { user_id: c.id, blocked_user_id: a.id })
    await deleteUser(t.db, a.id)
    expect(await rowsBetween(a.id, b.id)).toEqual([])
    expect(await rowsBetween(a.id, c.id)).toEqual([])
    expect(await listFriends(t.db, b.id)).toEqual([])
  })

  it("rolls back with the caller's transaction", async () => {
    const other = await makeUser(t.db)
    const before = await countRows(t.db)
    await expect(
      t.db.transaction().execute(async (trx) => {
        const user = await createUser(trx, { username: randomUsername() })
        await sendFriendRequest(trx, { from_user_id: user.id, to_user_id: other.id })
        await acceptFriendRequest(trx, { user_id: other.id, requester_id: user.id })
        expect((await listFriends(trx, other.id)).map((u) => u.id)).toEqual([user.id])
        const third = await createUser(trx, { username: randomUsername() })
        await sendFriendRequest(trx, { from_user_id: third.id, to_user_id: other.id })
        await blockUser(trx, { user_id: other.id, blocked_user_id: user.id })
        const requests = await listFriendRequests(trx, other.id)
        expect(requests.incoming.map((u) => u.id)).toEqual([third.id])
        expect(await isBlocked(trx, { user_id: user.id, other_user_id: other.id })).toBe(true)
        throw new Error('x')
      }),
    ).rejects.toThrow('x')
    expect(await countRows(t.db)).toEqual(before)
  })

  it('lockUserPair serializes with the friendship functions, either order', async () => {
    const [a, b] = await twoUsers()
    let release!: () => void
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    let locked!: () => void
    const holding = new Promise<void>((resolve) => {
      locked = resolve
    })
    const holder = t.db.transaction().execute(async (trx) => {
      await lockUserPair(trx, b.id, a.id)
      locked()
      await released
    })
    await holding
    const send = sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id })
    // The request waits on the pair's lock (the one lock waiter of this database).
    expect(await waitForLockWaiters(t.pool, 1)).toBe(1)
    expect(await rowsBetween(a.id, b.id)).toEqual([]) // still waiting for the lock
    release()
    await holder
    expect((await send).status).toBe('pending')
    expect(await rowsBetween(a.id, b.id)).toEqual(['a>b:pending'])
  })

  it('lockUserPair refuses to run outside a transaction', async () => {
    const [a, b] = await twoUsers()
    await expect(lockUserPair(t.db, a.id, b.id)).rejects.toBeInstanceOf(InvalidInputError)
    await expect(
      t.db.transaction().execute((trx) => lockUserPair(trx, a.id, 'nope')),
    ).rejects.toBeInstanceOf(InvalidInputError)
  })
})
