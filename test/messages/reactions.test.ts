import { randomInt } from 'node:crypto'
import { sql } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  addReaction,
  ConflictError,
  deleteUser,
  InvalidInputError,
  listAuditLog,
  listReactions,
  listReactionUsers,
  MAX_REACTION_EMOJIS,
  NotFoundError,
  normalizeEmoji,
  PermissionDeniedError,
  Permissions,
  purgeDeletedMessages,
  removeReaction,
  removeReactions,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeDm,
  makeEmoji,
  makeGuild,
  makeMember,
  makeMessage,
  makeRole,
  makeUser,
  unknownId,
} from '../support/factories.ts'
import { lockTables, raceAtBarrier, waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase({ max: 24 })

/** 40 distinct valid emojis. */
const EMOJIS = [
  ...'😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂🤗🤩🤔🤨😐😑😶🙄😏😣😥😮🤐😯😪😫🥱😴😌😛😜',
]
const uniqueEmojis = [...new Set(EMOJIS)]

let owner: { id: string }
let guild: { id: string; defaultRole: { id: string } }
let channel: { id: string }

beforeAll(async () => {
  owner = await makeUser(t.db)
  guild = await makeGuild(t.db, owner.id)
  channel = await makeChannel(t.db, guild.id)
  expect(uniqueEmojis.length).toBeGreaterThanOrEqual(40)
})

async function newMessage() {
  return makeMessage(t.db, channel.id, owner.id)
}

async function newUsers(n: number) {
  const users = []
  for (let i = 0; i < n; i++) users.push(await makeUser(t.db))
  return users
}

/** The stored counts, checked against the reaction rows themselves. */
async function assertCountsConsistent(messageId: string) {
  const { rows } = await sql<{ emoji: string; stored: number | null; actual: number | null }>`
    select coalesce(c.emoji, r.emoji) as emoji, c.count as stored, r.n as actual
    from (select emoji, count from message_reaction_counts where message_id = ${messageId}) c
    full join (select emoji, count(*)::int as n from message_reactions where message_id = ${messageId} group by emoji) r
      on r.emoji = c.emoji`.execute(t.db)
  for (const row of rows) expect(row.stored, row.emoji).toBe(row.actual)
  const summary = await t.db
    .selectFrom('message_reaction_summaries')
    .select('emoji_count')
    .where('message_id', '=', messageId)
    .executeTakeFirst()
  expect(summary?.emoji_count ?? 0).toBe(rows.length)
  return rows.length
}

describe('normalizeEmoji', () => {
  it('accepts Unicode emoji sequences and custom references, in one stored form', () => {
    expect(normalizeEmoji('👍')).toBe('👍')
    expect(normalizeEmoji('👍🏽')).toBe('👍🏽')
    expect(normalizeEmoji('👩‍👩‍👧‍👦')).toBe('👩‍👩‍👧‍👦')
    expect(normalizeEmoji('🇫🇷')).toBe('🇫🇷')
    expect(normalizeEmoji('1️⃣')).toBe('1️⃣')
    expect(normalizeEmoji('❤')).toBe('❤️')
    const id = unknownId()
    expect(normalizeEmoji(`<:party:${id.toUpperCase()}>`)).toBe(`party:${id}`)
    expect(normalizeEmoji(`<a:party:${id}>`)).toBe(`party:${id}`)
    expect(normalizeEmoji('party_parrot:123456789012345678')).toBe(
      'party_parrot:123456789012345678',
    )
  })

  it.each([
    ['empty', ''],
    ['letters', 'abc'],
    ['two emojis', '👍👍'],
    ['emoji and text', '👍 lol'],
    ['one-letter name', 'x:1'],
    ['bad id', 'party:12ab'],
    ['too long id', `party:${'1'.repeat(21)}`],
    ['sql', "👍'; drop table users; --"],
    ['nul', '👍\u0000'],
    ['lone surrogate', '\uD83D'],
    ['huge', '👍'.repeat(100_000)],
    ['number', 42],
    ['null', null],
  ])('refuses %s', (_name, value) => {
    expect(() => normalizeEmoji(value)).toThrow(InvalidInputError)
  })
})

describe('addReaction / removeReaction', () => {
  it('adds idempotently, removes, and keeps exact counts with me', async () => {
    const m = await newMessage()
    const [a, b] = await newUsers(2)
    expect(await addReaction(t.db, { message_id: m.id, user_id: a!.id, emoji: '👍' })).toBe(true)
    expect(await addReaction(t.db, { message_id: m.id, user_id: a!.id, emoji: '👍' })).toBe(false)
    expect(await addReaction(t.db, { message_id: m.id, user_id: b!.id, emoji: '👍' })).toBe(true)
    expect(await addReaction(t.db, { message_id: m.id, user_id: b!.id, emoji: '🎉' })).toBe(true)
    expect(await listReactions(t.db, { message_ids: [m.id], viewer_id: a!.id })).toEqual([
      { message_id: m.id, emoji: '👍', count: 2, me: true },
      { message_id: m.id, emoji: '🎉', count: 1, me: false },
    ])
    expect(await removeReaction(t.db, { message_id: m.id, user_id: a!.id, emoji: '👍' })).toBe(true)
    expect(await removeReaction(t.db, { message_id: m.id, user_id: a!.id, emoji: '👍' })).toBe(
      false,
    )
    expect(await removeReaction(t.db, { message_id: m.id, user_id: b!.id, emoji: '🎉' })).toBe(true)
    expect(await listReactions(t.db, { message_ids: [m.id] })).toEqual([
      { message_id: m.id, emoji: '👍', count: 1, me: false },
    ])
    expect(await assertCountsConsistent(m.id)).toBe(1)
  })

  it('treats every spelling of a custom emoji as one reaction', async () => {
    const m = await newMessage()
    const [a, b] = await newUsers(2)
    for (const u of [a!, b!]) await makeMember(t.db, guild.id, u.id)
    const { id } = await makeEmoji(t.db, guild.id, owner.id, { name: 'blob' })
    expect(
      await addReaction(t.db, { message_id: m.id, user_id: a!.id, emoji: `<:blob:${id}>` }),
    ).toBe(true)
    expect(
      await addReaction(t.db, {
        message_id: m.id,
        user_id: a!.id,
        emoji: `blob:${id.toUpperCase()}`,
      }),
    ).toBe(false)
    await addReaction(t.db, { message_id: m.id, user_id: b!.id, emoji: `<a:blob:${id}>` })
    expect(await listReactions(t.db, { message_ids: [m.id] })).toEqual([
      { message_id: m.id, emoji: `blob:${id}`, count: 2, me: false },
    ])
  })

  it('refuses a missing or soft-deleted message with NotFoundError, writing nothing', async () => {
    const m = await newMessage()
    await t.db
      .updateTable('messages')
      .set({ deleted_at: new Date() })
      .where('id', '=', m.id)
      .execute()
    const before = await countRows(t.db)
    for (const message_id of [m.id, unknownId()]) {
      await expect(
        addReaction(t.db, { message_id, user_id: owner.id, emoji: '👍' }),
      ).rejects.toBeInstanceOf(NotFoundError)
    }
    expect(await countRows(t.db)).toEqual(before)
  })

  it('keeps reactions and counts exact when a reacting user is deleted (cascade)', async () => {
    const m = await newMessage()
    const [a, b] = await newUsers(2)
    await addReaction(t.db, { message_id: m.id, user_id: a!.id, emoji: '👍' })
    await addReaction(t.db, { message_id: m.id, user_id: b!.id, emoji: '👍' })
    await addReaction(t.db, { message_id: m.id, user_id: b!.id, emoji: '🔥' })
    await deleteUser(t.db, b!.id)
    expect(await listReactions(t.db, { message_ids: [m.id] })).toEqual([
      { message_id: m.id, emoji: '👍', count: 1, me: false },
    ])
    expect(await assertCountsConsistent(m.id)).toBe(1)
  })

  it('a purged message takes its reactions and counts along', async () => {
    const m = await newMessage()
    await addReaction(t.db, { message_id: m.id, user_id: owner.id, emoji: '👍' })
    await t.db
      .updateTable('messages')
      .set({ deleted_at: new Date(Date.now() - 60_000) })
      .where('id', '=', m.id)
      .execute()
    await purgeDeletedMessages(t.db, { older_than: new Date() })
    for (const table of [
      'message_reactions',
      'message_reaction_counts',
      'message_reaction_summaries',
    ] as const) {
      const rows = await t.db
        .selectFrom(table)
        .select('message_id')
        .where('message_id', '=', m.id)
        .execute()
      expect(rows, table).toEqual([])
    }
  })
})

describe('the 20-emoji cap', () => {
  it('refuses the 21st distinct emoji with ConflictError reaction_limit, writing nothing', async () => {
    const m = await newMessage()
    for (let i = 0; i < MAX_REACTION_EMOJIS; i++) {
      await addReaction(t.db, { message_id: m.id, user_id: owner.id, emoji: uniqueEmojis[i]! })
    }
    const other = (await newUsers(1))[0]!
    const before = await countRows(t.db)
    const err = await addReaction(t.db, {
      message_id: m.id,
      user_id: other.id,
      emoji: uniqueEmojis[MAX_REACTION_EMOJIS]!,
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as ConflictError).reason).toBe('reaction_limit')
    expect(await countRows(t.db)).toEqual(before)
    // An emoji already there can still be added by someone else.
    expect(
      await addReaction(t.db, { message_id: m.id, user_id: other.id, emoji: uniqueEmojis[0]! }),
    ).toBe(true)
    // Freeing one emoji makes room for a new one.
    await removeReactions(t.db, { message_id: m.id, emoji: uniqueEmojis[1]! })
    expect(
      await addReaction(t.db, {
        message_id: m.id,
        user_id: other.id,
        emoji: uniqueEmojis[MAX_REACTION_EMOJIS]!,
      }),
    ).toBe(true)
    expect(await assertCountsConsistent(m.id)).toBe(MAX_REACTION_EMOJIS)
  })

  it('holds under a 100-way race of new emojis held at a barrier', async () => {
    const m = await newMessage()
    const users = await newUsers(100)
    // Create the message's summary row, then hold its lock: every add queues on it.
    await addReaction(t.db, { message_id: m.id, user_id: users[0]!.id, emoji: '👍' })
    await removeReaction(t.db, { message_id: m.id, user_id: users[0]!.id, emoji: '👍' })
    const barrier = await t.pool.connect()
    let results: PromiseSettledResult<boolean>[]
    try {
      await barrier.query('begin')
      await barrier.query(
        'select 1 from message_reaction_summaries where message_id = $1 for update',
        [m.id],
      )
      const pending = Promise.allSettled(
        users.map((u, i) =>
          addReaction(t.db, { message_id: m.id, user_id: u.id, emoji: uniqueEmojis[i % 40]! }),
        ),
      )
      // Every pool connection but the barrier's is inside an add, waiting.
      expect(await waitForLockWaiters(barrier, 20)).toBeGreaterThanOrEqual(20)
      await barrier.query('commit')
      results = await pending
    } catch (error) {
      await barrier.query('rollback')
      throw error
    } finally {
      barrier.release()
    }
    const ok = results.filter((r) => r.status === 'fulfilled')
    const refused = results.filter(
      (r) =>
        r.status === 'rejected' &&
        r.reason instanceof ConflictError &&
        r.reason.reason === 'reaction_limit',
    )
    expect(ok.length + refused.length).toBe(100)
    expect(await assertCountsConsistent(m.id)).toBe(MAX_REACTION_EMOJIS)
    // Users whose emoji made it in all got in; each of the 20 emojis has its users.
    const counts = await listReactions(t.db, { message_ids: [m.id] })
    expect(counts.reduce((n, c) => n + c.count, 0)).toBe(ok.length)
  })

  // 100 writers queue on one counter row: correctness, not speed; a busy
  // 2-core box needs more than the default 30 s.
  it('holds over 100-way rounds on fresh messages, 23 held at a barrier before the summary row exists', async () => {
    const users = await newUsers(100)
    for (let round = 0; round < 5; round++) {
      const m = await newMessage()
      // No summary row yet: the first 23 adds (the pool of 24 less the
      // barrier) wait at the table lock to create or lock it, the rest queue
      // for a connection and follow.
      const { results, waiters } = await raceAtBarrier(
        t.pool,
        lockTables('message_reaction_summaries'),
        users.map(
          (u, i) => () =>
            addReaction(t.db, {
              message_id: m.id,
              user_id: u.id,
              emoji: uniqueEmojis[(i + round) % 40]!,
            }),
        ),
        23,
      )
      expect(waiters).toBe(23)
      for (const r of results) {
        if (r.status === 'rejected') {
          expect(r.reason).toBeInstanceOf(ConflictError)
          expect((r.reason as ConflictError).reason).toBe('reaction_limit')
        }
      }
      expect(await assertCountsConsistent(m.id)).toBe(MAX_REACTION_EMOJIS)
    }
  }, 180_000)
})

describe('counts under concurrent adds and removes', () => {
  it('match a model after thousands of random concurrent operations', async () => {
    const messages = [await newMessage(), await newMessage(), await newMessage()]
    const workers = 16
    const usersPerWorker = 3
    const users = await newUsers(workers * usersPerWorker)
    const emojis = uniqueEmojis.slice(0, 12)
    const opsPerWorker = 200
    // Each worker owns its users' reactions, so its model is exact; workers
    // race on the same messages and emojis, i.e. on the same counter rows.
    const model = new Set<string>()
    let mismatches = 0
    await Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        const mine = users.slice(w * usersPerWorker, (w + 1) * usersPerWorker)
        for (let i = 0; i < opsPerWorker; i++) {
          const m = messages[randomInt(messages.length)]!
          const u = mine[randomInt(mine.length)]!
          const e = emojis[randomInt(emojis.length)]!
          const key = `${m.id}|${e}|${u.id}`
          const input = { message_id: m.id, user_id: u.id, emoji: e }
          if (randomInt(3) < 2) {
            const added = await addReaction(t.db, input)
            if (added !== !model.has(key)) mismatches++
            model.add(key)
          } else {
            const removed = await removeReaction(t.db, input)
            if (removed !== model.has(key)) mismatches++
            model.delete(key)
          }
        }
      }),
    )
    expect(mismatches).toBe(0)
    const expected = new Map<string, number>()
    for (const key of model) {
      const [mid, e] = key.split('|')
      expected.set(`${mid}|${e}`, (expected.get(`${mid}|${e}`) ?? 0) + 1)
    }
    const viewer = users[0]!.id
    const rows = await listReactions(t.db, {
      message_ids: messages.map((m) => m.id),
      viewer_id: viewer,
    })
    const got = new Map(rows.map((r) => [`${r.message_id}|${r.emoji}`, r.count]))
    expect(got).toEqual(expected)
    for (const r of rows) expect(r.me).toBe(model.has(`${r.message_id}|${r.emoji}|${viewer}`))
    for (const m of messages) await assertCountsConsistent(m.id)
    // Bulk removal racing with adds stays exact too.
    await Promise.all([
      removeReactions(t.db, { message_id: messages[0]!.id }),
      ...users.map((u) =>
        addReaction(t.db, { message_id: messages[0]!.id, user_id: u.id, emoji: emojis[0]! }),
      ),
    ])
    await assertCountsConsistent(messages[0]!.id)
  })
})

describe('listReactions', () => {
  it('returns a page in one query, grouped by message, emojis in first-use order', async () => {
    const m1 = await newMessage()
    const m2 = await newMessage()
    const [a] = await newUsers(1)
    await addReaction(t.db, { message_id: m1.id, user_id: a!.id, emoji: '🔥' })
    await addReaction(t.db, { message_id: m1.id, user_id: owner.id, emoji: '👀' })
    await addReaction(t.db, { message_id: m2.id, user_id: owner.id, emoji: '✅' })
    const rows = await listReactions(t.db, {
      message_ids: [m1.id, m2.id, unknownId()],
      viewer_id: owner.id,
    })
    expect(rows).toEqual([
      { message_id: m2.id, emoji: '✅', count: 1, me: true },
      { message_id: m1.id, emoji: '🔥', count: 1, me: false },
      { message_id: m1.id, emoji: '👀', count: 1, me: true },
    ])
    expect(await listReactions(t.db, { message_ids: [] })).toEqual([])
  })

  it('refuses more than 200 ids and malformed ids', async () => {
    const many = Array.from({ length: 201 }, () => unknownId())
    await expect(listReactions(t.db, { message_ids: many })).rejects.toBeInstanceOf(
      InvalidInputError,
    )
    await expect(listReactions(t.db, { message_ids: ['nope'] as string[] })).rejects.toBeInstanceOf(
      InvalidInputError,
    )
  })
})

describe('listReactionUsers', () => {
  it('pages the users who reacted, by keyset on user id', async () => {
    const m = await newMessage()
    const users = await newUsers(7)
    for (const u of users) await addReaction(t.db, { message_id: m.id, user_id: u.id, emoji: '👍' })
    await addReaction(t.db, { message_id: m.id, user_id: owner.id, emoji: '👎' })
    const seen: string[] = []
    let after: string | undefined
    for (;;) {
      const page = await listReactionUsers(t.db, { message_id: m.id, emoji: '👍', after, limit: 3 })
      for (const u of page) {
        expect(u).not.toHaveProperty('password_hash')
        seen.push(u.id)
      }
      if (page.length < 3) break
      after = page.at(-1)!.id
    }
    expect(seen).toEqual(users.map((u) => u.id).sort())
  })
})

describe('removeReactions', () => {
  it('removes one emoji or all, and counts them', async () => {
    const m = await newMessage()
    const users = await newUsers(3)
    for (const u of users) {
      await addReaction(t.db, { message_id: m.id, user_id: u.id, emoji: '👍' })
      await addReaction(t.db, { message_id: m.id, user_id: u.id, emoji: '👎' })
    }
    expect(await removeReactions(t.db, { message_id: m.id, emoji: '👎' })).toBe(3)
    expect(await assertCountsConsistent(m.id)).toBe(1)
    expect(await removeReactions(t.db, { message_id: m.id })).toBe(3)
    expect(await assertCountsConsistent(m.id)).toBe(0)
    expect(await removeReactions(t.db, { message_id: unknownId() })).toBe(0)
  })

  it('as a member: needs MANAGE_MESSAGES in the channel; refused writes nothing', async () => {
    const m = await newMessage()
    const [member, mod] = await newUsers(2)
    await makeMember(t.db, guild.id, member!.id)
    await makeMember(t.db, guild.id, mod!.id)
    const role = await makeRole(t.db, guild.id, { permissions: Permissions.MANAGE_MESSAGES })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: guild.id, user_id: mod!.id, role_id: role.id })
      .execute()
    await addReaction(t.db, { message_id: m.id, user_id: member!.id, emoji: '👍' })
    const before = await countRows(t.db)
    const err = await removeReactions(t.db, { message_id: m.id }, { actor_id: member!.id }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(PermissionDeniedError)
    expect((err as PermissionDeniedError).permission).toBe(Permissions.MANAGE_MESSAGES)
    expect(await countRows(t.db)).toEqual(before)
    // A non-member of the guild may not either.
    const stranger = (await newUsers(1))[0]!
    await expect(
      removeReactions(t.db, { message_id: m.id }, { actor_id: stranger.id }),
    ).rejects.toBeInstanceOf(PermissionDeniedError)
    expect(await removeReactions(t.db, { message_id: m.id }, { actor_id: mod!.id })).toBe(1)
    expect(await removeReactions(t.db, { message_id: m.id }, { actor_id: owner.id })).toBe(0)
  })

  it('as a DM participant: refused (nobody manages a DM)', async () => {
    const [a, b] = await newUsers(2)
    const dm = await makeDm(t.db, a!.id, b!.id)
    const m = await makeMessage(t.db, dm.id, a!.id)
    await addReaction(t.db, { message_id: m.id, user_id: b!.id, emoji: '👍' })
    await expect(
      removeReactions(t.db, { message_id: m.id }, { actor_id: a!.id }),
    ).rejects.toBeInstanceOf(PermissionDeniedError)
    expect(await assertCountsConsistent(m.id)).toBe(1)
  })
})

describe('reactions_remove audit entries', () => {
  /** A fresh guild with a channel, a plain member and a MANAGE_MESSAGES moderator. */
  async function moderatedChannel() {
    const g = await makeGuild(t.db, owner.id)
    const ch = await makeChannel(t.db, g.id)
    const [member, mod] = await newUsers(2)
    await makeMember(t.db, g.id, member!.id)
    await makeMember(t.db, g.id, mod!.id)
    const role = await makeRole(t.db, g.id, { permissions: Permissions.MANAGE_MESSAGES })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: g.id, user_id: mod!.id, role_id: role.id })
      .execute()
    return { guild: g, channel: ch, member: member!, mod: mod! }
  }

  it('writes one entry per removal that removed something, with emoji and count', async () => {
    const s = await moderatedChannel()
    const m = await makeMessage(t.db, s.channel.id, s.member.id, { content: 'secret plans' })
    const custom = `party:${(await makeEmoji(t.db, s.guild.id, owner.id, { name: 'party' })).id}`
    const users = await newUsers(3)
    for (const u of users) {
      await makeMember(t.db, s.guild.id, u.id)
      await addReaction(t.db, { message_id: m.id, user_id: u.id, emoji: '👍' })
      await addReaction(t.db, { message_id: m.id, user_id: u.id, emoji: custom })
    }
    await addReaction(t.db, { message_id: m.id, user_id: s.member.id, emoji: '👎' })
    // One emoji, named in any spelling: recorded in its stored form.
    expect(
      await removeReactions(
        t.db,
        { message_id: m.id, emoji: `<:${custom}>` },
        { actor_id: s.mod.id, reason: 'spam' },
      ),
    ).toBe(3)
    const [one, ...rest] = await listAuditLog(t.db, s.guild.id)
    expect(rest).toEqual([])
    expect(one).toMatchObject({
      guild_id: s.guild.id,
      actor_id: s.mod.id,
      action: 'reactions_remove',
      target_id: m.id,
      reason: 'spam',
    })
    expect(one!.changes).toEqual({
      channel_id: { before: s.channel.id, after: s.channel.id },
      emoji: { before: custom, after: custom },
      count: { before: 3, after: 0 },
    })
    expect(JSON.stringify(one)).not.toContain('secret plans')

    // Nothing removed (that emoji is gone, an emoji never used), or refused: nothing written.
    const before = await countRows(t.db)
    expect(
      await removeReactions(t.db, { message_id: m.id, emoji: custom }, { actor_id: s.mod.id }),
    ).toBe(0)
    expect(await removeReactions(t.db, { message_id: m.id, emoji: '🙂' })).toBe(0)
    const err = await removeReactions(t.db, { message_id: m.id }, { actor_id: s.member.id }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(PermissionDeniedError)
    expect(await countRows(t.db)).toEqual(before)

    // All emojis: `emoji` null.
    expect(await removeReactions(t.db, { message_id: m.id }, { actor_id: s.mod.id })).toBe(4)
    const [all] = await listAuditLog(t.db, s.guild.id)
    expect(all).toMatchObject({ actor_id: s.mod.id, action: 'reactions_remove', reason: null })
    expect(all!.changes).toEqual({
      channel_id: { before: s.channel.id, after: s.channel.id },
      emoji: { before: null, after: null },
      count: { before: 4, after: 0 },
    })
    expect(await removeReactions(t.db, { message_id: m.id }, { actor_id: s.mod.id })).toBe(0)

    // A trusted call is recorded without an actor.
    await addReaction(t.db, { message_id: m.id, user_id: s.member.id, emoji: '👍' })
    expect(await removeReactions(t.db, { message_id: m.id, emoji: '👍' })).toBe(1)
    const log = await listAuditLog(t.db, s.guild.id, { action: 'reactions_remove' })
    expect(log.map((e) => [e.actor_id, e.changes.count?.before])).toEqual([
      [null, 1],
      [s.mod.id, 4],
      [s.mod.id, 3],
    ])
    expect(await listAuditLog(t.db, s.guild.id, { action: 'message_delete' })).toEqual([])
  })

  it('a rolled-back removal leaves no entry; a DM removal writes none', async () => {
    const s = await moderatedChannel()
    const m = await makeMessage(t.db, s.channel.id, s.member.id)
    await addReaction(t.db, { message_id: m.id, user_id: s.member.id, emoji: '👍' })
    const rollback = new Error('roll back')
    const err = await t.db
      .transaction()
      .execute(async (trx) => {
        expect(await removeReactions(trx, { message_id: m.id }, { actor_id: s.mod.id })).toBe(1)
        expect(await listAuditLog(trx, s.guild.id)).toHaveLength(1)
        throw rollback
      })
      .catch((e: unknown) => e)
    expect(err).toBe(rollback)
    expect(await listAuditLog(t.db, s.guild.id)).toEqual([])
    expect(await assertCountsConsistent(m.id)).toBe(1)

    const [a, b] = await newUsers(2)
    const dm = await makeDm(t.db, a!.id, b!.id)
    const dmMessage = await makeMessage(t.db, dm.id, a!.id)
    await addReaction(t.db, { message_id: dmMessage.id, user_id: b!.id, emoji: '👍' })
    const entries = await countRows(t.db, ['audit_log'])
    expect(await removeReactions(t.db, { message_id: dmMessage.id })).toBe(1)
    expect(await countRows(t.db, ['audit_log'])).toEqual(entries)
  })
})
