/**
 * Issue 22, defect 7: one emoji, one reaction. normalizeEmoji stores one
 * canonical form (no redundant U+FE0F; a custom emoji as name:id with a
 * decimal id without leading zeros), on add, remove and list; migration 0009
 * rewrites existing rows with guildstore_canonical_emoji, the same rule in SQL
 * (compared here on the same vectors, and over every code point), merging
 * duplicates without passing the 20-emoji cap.
 */
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import {
  addReaction,
  ConflictError,
  createDb,
  defaultMigrationsDirectory,
  listReactions,
  listReactionUsers,
  MAX_REACTION_EMOJIS,
  newId,
  normalizeEmoji,
  removeReaction,
  removeReactions,
  runMigrations,
} from '../../src/index.ts'
import { createFreshDatabase } from '../migrations/fixtures/database.ts'
import { useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeEmoji,
  makeGuild,
  makeMember,
  makeMessage,
  makeUser,
} from '../support/factories.ts'

const t = useTestDatabase()
const VS16 = '\uFE0F'
const UUID = 'ABCDEF01-2345-6789-ABCD-EF0123456789'

/** [input, canonical form]: each input is accepted by normalizeEmoji. */
const VECTORS: [string, string][] = [
  ['👍', '👍'],
  [`👍${VS16}`, '👍'],
  [`😀${VS16}`, '😀'],
  ['👍🏽', '👍🏽'],
  ['❤️', '❤️'], // ❤ has default text presentation: its VS16 stays
  ['☺️', '☺️'],
  ['#️⃣', '#️⃣'],
  ['1️⃣', '1️⃣'],
  ['🏳️‍🌈', '🏳️‍🌈'],
  ['👁️‍🗨️', '👁️‍🗨️'],
  ['❤️‍🔥', '❤️‍🔥'],
  ['🐻‍❄️', '🐻‍❄️'],
  [`🐻${VS16}‍❄️`, '🐻‍❄️'],
  ['👨‍❤️‍👨', '👨‍❤️‍👨'],
  [`👩${VS16}‍💻`, '👩‍💻'],
  ['👩‍👩‍👧‍👦', '👩‍👩‍👧‍👦'],
  ['🇫🇷', '🇫🇷'],
  ['party:123', 'party:123'],
  ['party:0123', 'party:123'],
  ['<a:party:000123>', 'party:123'],
  ['<:party:0123>', 'party:123'],
  ['<party:123>', 'party:123'],
  ['party:0', 'party:0'],
  ['party:000', 'party:0'],
  ['Party_Parrot:00000000000000000001', 'Party_Parrot:1'],
  [`xy:${UUID}`, `xy:${UUID.toLowerCase()}`],
  [`<a:xy:${UUID}>`, `xy:${UUID.toLowerCase()}`],
]

describe('canonical emoji form', () => {
  it.each(VECTORS)('normalizeEmoji(%j) is %j, and is its own canonical form', (input, out) => {
    expect(normalizeEmoji(input)).toBe(out)
    expect(normalizeEmoji(out)).toBe(out)
  })

  it('the migration SQL function gives the same form on every vector', async () => {
    const inputs = VECTORS.map(([input]) => input)
    const { rows } = await sql<{ out: string }>`select guildstore_canonical_emoji(x) as out
      from unnest(${inputs}::text[]) with ordinality u(x, n) order by n`.execute(t.db)
    expect(rows.map((r) => r.out)).toEqual(inputs.map((input) => normalizeEmoji(input)))
  })

  it('the SQL function drops U+FE0F after exactly the Emoji_Presentation characters', async () => {
    const node: number[] = []
    const ep = /^\p{Emoji_Presentation}$/u
    for (let cp = 1; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue
      if (ep.test(String.fromCodePoint(cp))) node.push(cp)
    }
    const { rows } = await sql<{ cp: number }>`select cp from generate_series(1, 1114111) cp
      where (cp < 55296 or cp > 57343)
        and guildstore_canonical_emoji(chr(cp) || chr(65039)) = chr(cp)
      order by cp`.execute(t.db)
    expect(rows.map((r) => r.cp)).toEqual(node)
    expect(node.length).toBeGreaterThan(1000)
  }, 120_000)
})

describe('one emoji, one reaction (through the API)', () => {
  // Reactions with a custom emoji name a guild emoji (migration 0015): the
  // reactors are members of its guild.
  async function message(...members: { id: string }[]) {
    const owner = await makeUser(t.db)
    const guild = await makeGuild(t.db, owner.id)
    for (const u of members) await makeMember(t.db, guild.id, u.id)
    const channel = await makeChannel(t.db, guild.id)
    const emoji = await makeEmoji(t.db, guild.id, owner.id, { name: 'party' })
    return { ...(await makeMessage(t.db, channel.id, owner.id)), party: `party:${emoji.id}` }
  }

  it('👍 and 👍 U+FE0F are one reaction; party:<id>, party:<ID>, <a:party:<ID>> are one', async () => {
    const [a, b] = [await makeUser(t.db), await makeUser(t.db)]
    const m = await message(a, b)
    const upper = m.party.toUpperCase().replace('PARTY', 'party')
    expect(await addReaction(t.db, { message_id: m.id, user_id: a.id, emoji: '👍' })).toBe(true)
    expect(await addReaction(t.db, { message_id: m.id, user_id: a.id, emoji: `👍${VS16}` })).toBe(
      false,
    )
    expect(await addReaction(t.db, { message_id: m.id, user_id: b.id, emoji: `👍${VS16}` })).toBe(
      true,
    )
    for (const emoji of [m.party, upper, `<a:${upper}>`]) {
      await addReaction(t.db, { message_id: m.id, user_id: a.id, emoji })
    }
    await addReaction(t.db, { message_id: m.id, user_id: b.id, emoji: `<:${upper}>` })
    expect(await listReactions(t.db, { message_ids: [m.id], viewer_id: a.id })).toEqual([
      { message_id: m.id, emoji: '👍', count: 2, me: true },
      { message_id: m.id, emoji: m.party, count: 2, me: true },
    ])
    const users = await listReactionUsers(t.db, { message_id: m.id, emoji: `👍${VS16}` })
    expect(users.map((u) => u.id).sort()).toEqual([a.id, b.id].sort())
    expect(
      await removeReaction(t.db, { message_id: m.id, user_id: a.id, emoji: `<${upper}>` }),
    ).toBe(true)
    expect(await removeReactions(t.db, { message_id: m.id, emoji: `👍${VS16}` })).toBe(2)
    expect(await listReactions(t.db, { message_ids: [m.id] })).toEqual([
      { message_id: m.id, emoji: m.party, count: 1, me: false },
    ])
  })

  it('a second spelling takes no slot of the 20', async () => {
    const [user, other] = [await makeUser(t.db), await makeUser(t.db)]
    const m = await message(user!, other!)
    const emojis = [...'😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂']
    for (const emoji of emojis)
      await addReaction(t.db, { message_id: m.id, user_id: user.id, emoji })
    await addReaction(t.db, { message_id: m.id, user_id: user.id, emoji: m.party })
    expect(emojis.length + 1).toBe(MAX_REACTION_EMOJIS)
    // Other spellings of the 20 are the same emojis: accepted.
    await addReaction(t.db, { message_id: m.id, user_id: other.id, emoji: `😀${VS16}` })
    await addReaction(t.db, {
      message_id: m.id,
      user_id: other.id,
      emoji: `<a:${m.party.toUpperCase().replace('PARTY', 'party')}>`,
    })
    const err = await addReaction(t.db, { message_id: m.id, user_id: other.id, emoji: '🤔' }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ConflictError)
    expect(await listReactions(t.db, { message_ids: [m.id] })).toHaveLength(MAX_REACTION_EMOJIS)
  })
})

describe('migration 0009 on rows stored before it', () => {
  it('merges the spellings, keeps counts, order and the cap, and drops stored ADMINISTRATOR bits', async () => {
    const fresh = await createFreshDatabase()
    const dir = await mkdtemp(join(tmpdir(), 'gs-0009-'))
    try {
      const all = (await readdir(defaultMigrationsDirectory())).filter((f) => f.endsWith('.sql'))
      for (const file of all.filter((f) => Number.parseInt(f, 10) < 9)) {
        await copyFile(join(defaultMigrationsDirectory(), file), join(dir, file))
      }
      const pool = fresh.pool()
      await runMigrations(pool, { directory: dir })
      const q = (text: string, values: unknown[] = []) => pool.query(text, values)
      const users = Array.from({ length: 4 }, () => newId())
      for (const [i, id] of users.entries()) {
        await q('insert into users (id, username) values ($1, $2)', [id, `user${i}`])
      }
      const [u0, u1, u2, u3] = users as [string, string, string, string]
      const guild = newId()
      const channel = newId()
      await q(`insert into guilds (id, name, owner_id) values ($1, 'g', $2)`, [guild, u0])
      await q(`insert into channels (id, guild_id, name) values ($1, $2, 'c')`, [channel, guild])
      const [m1, m2] = [newId(), newId()]
      for (const id of [m1, m2]) {
        await q(
          `insert into messages (id, channel_id, author_id, content) values ($1, $2, $3, 'x')`,
          [id, channel, u0],
        )
      }
      // One statement per reaction, in this order (first_reacted_at follows it).
      const react = (m: string, emoji: string, user: string) =>
        q('insert into message_reactions (message_id, emoji, user_id) values ($1, $2, $3)', [
          m,
          emoji,
          user,
        ])
      await react(m1, `👍${VS16}`, u1) // first: 👍 stays the first emoji of m1
      await react(m1, 'party:0123', u1)
      await react(m1, '👍', u1) // the same user, other spelling: merged
      await react(m1, '👍', u2)
      await react(m1, 'party:123', u2)
      await react(m1, 'party:000123', u3)
      await react(m1, '❤️', u3)
      await react(m1, `👍${VS16}`, u3)
      // m2: 20 distinct stored emojis, two of them spellings of one.
      const twenty = [...'😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚', `🙂${VS16}`, '🙂']
      for (const emoji of twenty) await react(m2, emoji, u1)
      await q(`insert into channel_permission_cache values ($1, $2, 0, $3), ($1, $4, 0, $5)`, [
        channel,
        u1,
        (1n << 3n) | (1n << 10n),
        u2,
        1n << 10n,
      ])
      const before = (await q('select count(*)::int as n from message_reactions')).rows[0].n
      expect(before).toBe(28)
      expect(
        (await q('select emoji_count from message_reaction_summaries where message_id = $1', [m2]))
          .rows[0].emoji_count,
      ).toBe(20)

      await runMigrations(pool) // 0009 and anything after it
      const reactions = (
        await q(
          'select message_id, emoji, user_id from message_reactions order by message_id, emoji, user_id',
        )
      ).rows
      const canonical = (m: string) =>
        reactions
          .filter((r) => r.message_id === m)
          .map((r) => `${r.emoji}/${users.indexOf(r.user_id)}`)
      expect(canonical(m1).sort()).toEqual(
        ['👍/1', '👍/2', '👍/3', 'party:123/1', 'party:123/2', 'party:123/3', '❤️/3'].sort(),
      )
      const db = createDb(pool)
      expect(await listReactions(db, { message_ids: [m1] })).toEqual([
        { message_id: m1, emoji: '👍', count: 3, me: false },
        { message_id: m1, emoji: 'party:123', count: 3, me: false },
        { message_id: m1, emoji: '❤️', count: 1, me: false },
      ])
      const m2Reactions = await listReactions(db, { message_ids: [m2] })
      expect(m2Reactions.map((r) => r.emoji)).toEqual([...twenty.slice(0, 18), '🙂'])
      expect(m2Reactions.every((r) => r.count === 1)).toBe(true)
      // The counters agree with the rows.
      const summaries = (
        await q('select message_id, emoji_count from message_reaction_summaries order by 1')
      ).rows
      expect(Object.fromEntries(summaries.map((s) => [s.message_id, s.emoji_count]))).toEqual({
        [m1]: 3,
        [m2]: 19,
      })
      // The message has room again: a 20th distinct emoji is accepted, a 21st is not.
      await addReaction(db, { message_id: m2, user_id: u2, emoji: '🤔' })
      const full = await addReaction(db, { message_id: m2, user_id: u2, emoji: '🤨' }).catch(
        (e: unknown) => e,
      )
      expect(full).toBeInstanceOf(ConflictError)
      // Stored permissions holding ADMINISTRATOR are gone; others stay.
      const cache = (await q('select user_id from channel_permission_cache')).rows
      expect(cache.map((r) => r.user_id)).toEqual([u2])
    } finally {
      await fresh.drop()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
