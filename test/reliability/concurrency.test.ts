/**
 * Races through the public API on one pool of 20: nothing lost, nothing doubled,
 * every race ends in the one state the contract promises. Each race is held at
 * a barrier (a lock in another connection's open transaction) until its calls
 * wait on locks together, so they provably overlap; the barrier takes one of the
 * 20 connections, so at most 19 calls are held at once.
 */
import { describe, expect, it } from 'vitest'
import {
  addGuildMember,
  blockUser,
  ConflictError,
  createMessage,
  findOrCreateDmChannel,
  listChannelMessages,
  listFriendRequests,
  listFriends,
  listGuildMembers,
  type Message,
  removeGuildMember,
  sendFriendRequest,
  transferGuildOwnership,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuild, makeMember, makeUser } from '../support/factories.ts'
import { fulfilled, lockTables, raceAtBarrier, rejections } from '../support/race.ts'

const t = useTestDatabase({ max: 20 })
/** The calls a barrier can hold at once: the pool less the barrier's connection. */
const HELD = 19

describe('concurrent writes', () => {
  it('1 000 concurrent createMessage (19 at a time held at a barrier on messages): none lost, none doubled, history pages through all strictly in order', async () => {
    const author = await makeUser(t.db)
    const guild = await makeGuild(t.db, author.id)
    const channel = await makeChannel(t.db, guild.id)
    const n = 1000
    // Every insert waits on the table lock: the first 19 hold the pool's other
    // connections, the rest queue for them and follow unheld once it commits.
    const race = await raceAtBarrier(
      t.pool,
      lockTables('messages'),
      Array.from(
        { length: n },
        (_, i) => () =>
          createMessage(t.db, {
            channel_id: channel.id,
            author_id: author.id,
            content: `msg ${i}`,
          }),
      ),
      HELD,
    )
    expect(race.waiters).toBe(HELD)
    const created = fulfilled(race.results)
    expect(new Set(created.map((m) => m.id)).size).toBe(n)
    expect(new Set(created.map((m) => m.content)).size).toBe(n)

    // Page backwards (newest first) with the keyset, 100 at a time.
    const seen: Message[] = []
    let before: string | undefined
    for (let page = 0; page < 20; page++) {
      const rows = await listChannelMessages(t.db, channel.id, {
        limit: 100,
        ...(before ? { before } : {}),
      })
      if (rows.length === 0) break
      seen.push(...rows)
      before = rows.at(-1)!.id
    }
    expect(seen.length).toBe(n)
    const ids = seen.map((m) => m.id)
    // strictly in commit order: positions (seq) descending, 1 000 … 1
    expect(seen.map((m) => m.seq)).toEqual(seen.map((_, i) => BigInt(n - i)))
    expect(new Set(ids)).toEqual(new Set(created.map((m) => m.id)))

    // And forwards with `after`, from the oldest.
    const forward: string[] = []
    let after: string | undefined = ids.at(-1)
    forward.push(after!)
    for (let page = 0; page < 20; page++) {
      const rows = await listChannelMessages(t.db, channel.id, { limit: 100, after: after! })
      if (rows.length === 0) break
      // A page of `after` comes newest first: take it in ascending (commit) order.
      const asc = [...rows].reverse().map((m) => m.id)
      forward.push(...asc)
      after = asc.at(-1)
    }
    expect(forward.length).toBe(n)
    expect(forward).toEqual([...ids].reverse())

    const stored = await t.db
      .selectFrom('messages')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('channel_id', '=', channel.id)
      .executeTakeFirstOrThrow()
    expect(Number(stored.n)).toBe(n)
  }, 180_000)

  it('crossing friend requests (A→B and B→A held at a barrier together, 9 pairs) all end accepted, one row each way', async () => {
    const pairs = await Promise.all(
      Array.from({ length: 9 }, async () => [await makeUser(t.db), await makeUser(t.db)] as const),
    )
    // Of each pair one call takes the pair's lock and waits to write at the
    // table lock, the other waits on the pair's lock: 18 waiters.
    const { results, waiters } = await raceAtBarrier(
      t.pool,
      lockTables('friendships'),
      pairs.flatMap(([a, b]) => [
        () => sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id }),
        () => sendFriendRequest(t.db, { from_user_id: b.id, to_user_id: a.id }),
      ]),
    )
    expect(waiters).toBe(18)
    expect(rejections(results).map(String)).toEqual([])
    for (const [a, b] of pairs) {
      const rows = await t.db
        .selectFrom('friendships')
        .select(['user_id', 'friend_id', 'status'])
        .where((eb) =>
          eb.or([
            eb.and([eb('user_id', '=', a.id), eb('friend_id', '=', b.id)]),
            eb.and([eb('user_id', '=', b.id), eb('friend_id', '=', a.id)]),
          ]),
        )
        .execute()
      expect(rows).toHaveLength(2)
      expect(rows.every((r) => r.status === 'accepted')).toBe(true)
      expect((await listFriends(t.db, a.id)).map((u) => u.id)).toEqual([b.id])
      expect((await listFriends(t.db, b.id)).map((u) => u.id)).toEqual([a.id])
      const requests = await listFriendRequests(t.db, a.id)
      expect(requests.incoming).toEqual([])
      expect(requests.outgoing).toEqual([])
    }
  }, 120_000)

  it('DM find-or-create race: 19 calls in both orders held at a barrier make one channel, exactly one created:true', async () => {
    const a = await makeUser(t.db)
    const b = await makeUser(t.db)
    // Each call found no DM and waits to insert one at the table lock.
    const race = await raceAtBarrier(
      t.pool,
      lockTables('dm_channels'),
      Array.from(
        { length: HELD },
        (_, i) => () =>
          findOrCreateDmChannel(
            t.db,
            i % 2 === 0
              ? { user_id: a.id, other_user_id: b.id }
              : { user_id: b.id, other_user_id: a.id },
          ),
      ),
    )
    expect(race.waiters).toBe(HELD)
    const results = fulfilled(race.results)
    expect(new Set(results.map((r) => r.channel.id)).size).toBe(1)
    expect(results.filter((r) => r.created)).toHaveLength(1)
    const id = results[0]!.channel.id
    const pairRows = await t.db
      .selectFrom('dm_channels')
      .select('id')
      .where((eb) => eb.or([eb('user_a', '=', a.id), eb('user_b', '=', a.id)]))
      .execute()
    expect(pairRows.map((r) => r.id)).toEqual([id])
    const participants = await t.db
      .selectFrom('dm_participants')
      .select('user_id')
      .where('channel_id', '=', id)
      .execute()
    expect(participants.map((p) => p.user_id).sort()).toEqual([a.id, b.id].sort())
    const dmChannels = await t.db
      .selectFrom('channels')
      .select('id')
      .where('type', '=', 'dm')
      .where('id', '=', id)
      .execute()
    expect(dmChannels).toHaveLength(1)
  }, 120_000)

  it('19 addGuildMember for one user (and 9 users twice) held at a barrier are idempotent: one membership each', async () => {
    const owner = await makeUser(t.db)
    const guild = await makeGuild(t.db, owner.id)
    const user = await makeUser(t.db)
    const first = await raceAtBarrier(
      t.pool,
      lockTables('guild_members'),
      Array.from(
        { length: HELD },
        () => () => addGuildMember(t.db, { guild_id: guild.id, user_id: user.id }),
      ),
    )
    expect(first.waiters).toBe(HELD)
    const same = fulfilled(first.results)
    expect(same).toHaveLength(HELD)
    expect(new Set(same.map((m) => `${m.guild_id}/${m.user_id}`)).size).toBe(1)
    const others = await Promise.all(Array.from({ length: 9 }, () => makeUser(t.db)))
    const second = await raceAtBarrier(
      t.pool,
      lockTables('guild_members'),
      others.flatMap((u) => [
        () => addGuildMember(t.db, { guild_id: guild.id, user_id: u.id }),
        () => addGuildMember(t.db, { guild_id: guild.id, user_id: u.id }),
      ]),
    )
    expect(second.waiters).toBe(18)
    expect(rejections(second.results)).toEqual([])
    const members = await listGuildMembers(t.db, guild.id, { limit: 100 })
    expect(members).toHaveLength(11)
    expect(new Set(members.map((m) => m.user_id)).size).toBe(11)
    const rows = await t.db
      .selectFrom('guild_members')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('guild_id', '=', guild.id)
      .executeTakeFirstOrThrow()
    expect(Number(rows.n)).toBe(11)
  }, 120_000)

  it('transferGuildOwnership racing removeGuildMember of the new owner (9 guilds, both held at a barrier): the owner is always a member', async () => {
    const setups = await Promise.all(
      Array.from({ length: 9 }, async () => {
        const owner = await makeUser(t.db)
        const heir = await makeUser(t.db)
        const guild = await makeGuild(t.db, owner.id)
        await makeMember(t.db, guild.id, heir.id)
        return { guild, heir }
      }),
    )
    // Both calls wait at their first lock of the guild (transfer: FOR UPDATE,
    // removal: FOR SHARE), then go together.
    const { results, waiters } = await raceAtBarrier<unknown>(
      t.pool,
      lockTables('guilds'),
      setups.flatMap(({ guild, heir }, i) => {
        const transfer = () =>
          transferGuildOwnership(t.db, { guild_id: guild.id, new_owner_id: heir.id })
        const remove = () => removeGuildMember(t.db, { guild_id: guild.id, user_id: heir.id })
        return i % 2 === 0 ? [transfer, remove] : [remove, transfer]
      }),
    )
    expect(waiters).toBe(18)
    for (const error of rejections(results)) expect(error).toBeInstanceOf(ConflictError)
    const orphaned = await t.db
      .selectFrom('guilds as g')
      .select('g.id')
      .where(
        'g.id',
        'in',
        setups.map((s) => s.guild.id),
      )
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('guild_members as m')
              .select('m.user_id')
              .whereRef('m.guild_id', '=', 'g.id')
              .whereRef('m.user_id', '=', 'g.owner_id'),
          ),
        ),
      )
      .execute()
    expect(orphaned).toEqual([])
  }, 120_000)

  it('a block racing crossing friend requests (6 triples held at a barrier): only the block remains, every refusal is ConflictError', async () => {
    const pairs = await Promise.all(
      Array.from({ length: 6 }, async () => [await makeUser(t.db), await makeUser(t.db)] as const),
    )
    // Of each triple the first call to take the pair's lock waits to write at
    // the table lock, the two others wait on the pair's lock: 18 waiters.
    const { results, waiters } = await raceAtBarrier(
      t.pool,
      lockTables('friendships'),
      pairs.flatMap(([a, b], i) => {
        const calls = [
          () => sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id }),
          () => sendFriendRequest(t.db, { from_user_id: b.id, to_user_id: a.id }),
          () => blockUser(t.db, { user_id: a.id, blocked_user_id: b.id }),
        ]
        const order = i % 3 === 0 ? [2, 0, 1] : i % 3 === 1 ? [0, 2, 1] : [0, 1, 2]
        return order.map((k) => calls[k]!)
      }),
    )
    expect(waiters).toBe(18)
    for (const error of rejections(results)) expect(error).toBeInstanceOf(ConflictError)
    for (const [a, b] of pairs) {
      const rows = await t.db
        .selectFrom('friendships')
        .select(['user_id', 'friend_id', 'status'])
        .where((eb) =>
          eb.or([
            eb.and([eb('user_id', '=', a.id), eb('friend_id', '=', b.id)]),
            eb.and([eb('user_id', '=', b.id), eb('friend_id', '=', a.id)]),
          ]),
        )
        .execute()
      expect(rows).toEqual([{ user_id: a.id, friend_id: b.id, status: 'blocked' }])
    }
  }, 120_000)
})
