/**
 * The isolation contract (issue 22, item 5; docs/isolation.md): every writing
 * function whose correctness depends on what it read is run inside a caller's
 * REPEATABLE READ and SERIALIZABLE transaction whose snapshot predates a
 * competing write that committed, through the interleaving harness:
 *
 *   a.snap   the caller's transaction takes its snapshot
 *   b.call   a competing call (autocommit) commits
 *   a.call   the function runs on the older snapshot
 *   a.commit
 *
 * and also with the competing call still uncommitted while `a.call` runs
 * (`b` in a READ COMMITTED transaction, committing after `a.call` blocked).
 * Each function either succeeds with its invariant intact, or refuses with a
 * typed GuildstoreError (here: DatabaseUnavailableError for 40001, retryable).
 * Also each runs alone in such a transaction and its effect is there after
 * the commit.
 */
import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  acceptFriendRequest,
  addChannelMember,
  addReaction,
  archiveThread,
  assignRole,
  createChannel,
  createForumTag,
  createGuildEmoji,
  createInvite,
  createMessage,
  createThread,
  createUser,
  DatabaseUnavailableError,
  type DB,
  findOrCreateDmChannel,
  GuildstoreError,
  importMessages,
  joinThread,
  markChannelRead,
  pinMessage,
  sendFriendRequest,
  sendMessage,
  setPostTags,
  updateForumTag,
  updateGuild,
  updateGuildEmoji,
  updateMessage,
  updateRole,
  useInvite,
} from '../../src/index.ts'
import { createTestDatabase, type TestDatabase } from '../../src/testing/index.ts'
import { testDatabaseUrl } from '../support/env.ts'
import {
  makeChannel,
  makeEmoji,
  makeGuild,
  makeMember,
  makeMessage,
  makeRole,
  makeUser,
  randomUsername,
} from '../support/factories.ts'
import { createInterleaver, type Interleaver } from '../support/interleave.ts'

interface Ctx {
  guild: string
  owner: string
  a: string
  b: string
  channel: string
  message: string
  role: string
  [key: string]: string
}

interface ContractCase {
  name: string
  setup?: (db: Kysely<DB>, c: Ctx) => Promise<void>
  /** The call, made by session `who`. */
  call: (db: Kysely<DB>, c: Ctx, who: 'a' | 'b') => Promise<unknown>
  /** What must hold afterwards (messages of what does not). */
  check: (db: Kysely<DB>, c: Ctx) => Promise<string[]>
}

const count = async (db: Kysely<DB>, q: ReturnType<typeof sql<{ n: number }>>) =>
  (await q.execute(db)).rows[0]?.n ?? -1

/** The channel's positions are 1…n, each once. */
const positionsGapFree = async (db: Kysely<DB>, c: Ctx) => {
  const r = await sql<{ n: number; d: number; mx: number }>`select count(*)::int as n,
    count(distinct seq)::int as d, max(seq)::int as mx from messages where channel_id = ${c.channel}`.execute(
    db,
  )
  const row = r.rows[0]
  return row && row.n === row.d && row.mx === row.n ? [] : [`positions ${JSON.stringify(row)}`]
}

const CASES: ContractCase[] = [
  {
    name: 'pinMessage at the cap (49 of 50 pinned)',
    setup: async (db, c) => {
      for (let i = 0; i < 49; i++) {
        const m = await makeMessage(db, c.channel, c.owner)
        await pinMessage(db, { message_id: m.id })
      }
      c.second = (await makeMessage(db, c.channel, c.owner)).id
    },
    call: (db, c, who) =>
      pinMessage(db, { message_id: who === 'a' ? c.message : (c.second as string) }),
    check: async (db, c) => {
      const n = await count(
        db,
        sql<{
          n: number
        }>`select count(*)::int as n from message_pins where channel_id = ${c.channel}`,
      )
      return n <= 50 ? [] : [`${n} pins`]
    },
  },
  {
    name: 'addReaction at the cap (19 of 20 emojis)',
    setup: async (db, c) => {
      const emojis = [
        '😀',
        '😁',
        '😂',
        '🤣',
        '😃',
        '😄',
        '😅',
        '😆',
        '😉',
        '😊',
        '😋',
        '😎',
        '😍',
        '😘',
        '🥰',
        '😗',
        '😙',
        '🥲',
        '😚',
      ]
      for (const emoji of emojis)
        await addReaction(db, { message_id: c.message, user_id: c.owner, emoji })
    },
    call: (db, c, who) =>
      addReaction(db, {
        message_id: c.message,
        user_id: c[who] as string,
        emoji: who === 'a' ? '🙂' : '🤗',
      }),
    check: async (db, c) => {
      const n = await count(
        db,
        sql<{
          n: number
        }>`select count(distinct emoji)::int as n from message_reactions where message_id = ${c.message}`,
      )
      return n <= 20 ? [] : [`${n} emojis`]
    },
  },
  {
    name: 'useInvite with one use left',
    setup: async (db, c) => {
      const invite = await createInvite(db, { guild_id: c.guild, inviter_id: c.owner, max_uses: 1 })
      c.code = invite.code
    },
    call: (db, c, who) => useInvite(db, { code: c.code as string, user_id: c[who] as string }),
    check: async (db, c) => {
      const joined = await count(
        db,
        sql<{
          n: number
        }>`select count(*)::int as n from guild_members where guild_id = ${c.guild} and user_id in (${c.a}, ${c.b})`,
      )
      const uses = await count(
        db,
        sql<{ n: number }>`select uses as n from guild_invites where code = ${c.code}`,
      )
      return joined <= 1 && uses <= 1 && joined === uses ? [] : [`${joined} joined, ${uses} uses`]
    },
  },
  {
    name: 'sendMessage (positions stay gap-free and unique)',
    setup: async (db, c) => {
      await makeMember(db, c.guild, c.a)
      await makeMember(db, c.guild, c.b)
    },
    call: (db, c, who) =>
      sendMessage(db, { channel_id: c.channel, author_id: c[who] as string, content: who }),
    check: positionsGapFree,
  },
  {
    name: 'createMessage (positions stay gap-free and unique)',
    call: (db, c, who) =>
      createMessage(db, { channel_id: c.channel, author_id: c[who] as string, content: who }),
    check: positionsGapFree,
  },
  {
    name: 'importMessages (positions stay gap-free and unique)',
    call: (db, c, who) =>
      importMessages(db, [
        {
          channel_id: c.channel,
          author_id: c[who] as string,
          content: `${who} 1`,
          created_at: new Date(1),
        },
        {
          channel_id: c.channel,
          author_id: c[who] as string,
          content: `${who} 2`,
          created_at: new Date(2),
        },
      ]),
    check: positionsGapFree,
  },
  {
    name: 'findOrCreateDmChannel (one DM per pair)',
    call: (db, c) => findOrCreateDmChannel(db, { user_id: c.a, other_user_id: c.b }),
    check: async (db, c) => {
      const n = await count(
        db,
        sql<{
          n: number
        }>`select count(*)::int as n from dm_channels where user_a = least(${c.a}::uuid, ${c.b}::uuid) and user_b = greatest(${c.a}::uuid, ${c.b}::uuid)`,
      )
      return n === 1 ? [] : [`${n} DMs`]
    },
  },
  {
    name: 'sendFriendRequest both ways (one friendship, no crossed requests)',
    call: (db, c, who) =>
      sendFriendRequest(db, {
        from_user_id: c[who] as string,
        to_user_id: c[who === 'a' ? 'b' : 'a'] as string,
      }),
    check: async (db, c) => {
      const rows = await sql<{
        user_id: string
        status: string
      }>`select user_id, status from friendships
        where (user_id = ${c.a} and friend_id = ${c.b}) or (user_id = ${c.b} and friend_id = ${c.a})`.execute(
        db,
      )
      const statuses = rows.rows.map((r) => r.status).sort()
      const ok =
        (statuses.length === 1 && statuses[0] === 'pending') ||
        (statuses.length === 2 && statuses.every((s) => s === 'accepted'))
      return ok ? [] : [`friendships ${statuses.join(',')}`]
    },
  },
  {
    name: 'acceptFriendRequest twice',
    setup: async (db, c) => {
      await sendFriendRequest(db, { from_user_id: c.b, to_user_id: c.a })
    },
    call: (db, c) => acceptFriendRequest(db, { user_id: c.a, requester_id: c.b }),
    check: async (db, c) => {
      const n = await count(
        db,
        sql<{
          n: number
        }>`select count(*)::int as n from friendships where status = 'accepted' and ((user_id = ${c.a} and friend_id = ${c.b}) or (user_id = ${c.b} and friend_id = ${c.a}))`,
      )
      return n === 2 ? [] : [`${n} accepted rows`]
    },
  },
  {
    name: 'joinThread with one member slot left',
    setup: async (db, c) => {
      await makeMember(db, c.guild, c.a)
      await makeMember(db, c.guild, c.b)
      await updateGuild(db, c.guild, { max_thread_members: 2 })
      c.thread = (
        await createThread(db, { channel_id: c.channel, author_id: c.owner, name: 't' })
      ).id
    },
    call: (db, c, who) =>
      joinThread(db, { thread_id: c.thread as string, user_id: c[who] as string }),
    check: async (db, c) => {
      const n = await count(
        db,
        sql<{
          n: number
        }>`select count(*)::int as n from channel_members where channel_id = ${c.thread}`,
      )
      const counted = await count(
        db,
        sql<{
          n: number
        }>`select members as n from guildstore_thread_member_counts where thread_id = ${c.thread}`,
      )
      return n <= 2 && n === counted ? [] : [`${n} thread members, ${counted} counted`]
    },
  },
  {
    name: 'createThread from one message twice (one thread per message)',
    setup: async (db, c) => {
      await makeMember(db, c.guild, c.a)
      await makeMember(db, c.guild, c.b)
    },
    call: (db, c, who) =>
      createThread(db, {
        channel_id: c.channel,
        author_id: c[who] as string,
        name: who,
        message_id: c.message,
      }),
    check: async (db, c) => {
      const n = await count(
        db,
        sql<{
          n: number
        }>`select count(*)::int as n from channels where starter_message_id = ${c.message}`,
      )
      return n === 1 ? [] : [`${n} threads of one message`]
    },
  },
  {
    name: 'createForumTag with one tag slot left (19 of 20)',
    setup: async (db, c) => {
      c.forum = (await createChannel(db, { guild_id: c.guild, name: 'f', type: 'forum' })).id
      for (let i = 0; i < 19; i++) {
        await createForumTag(db, { channel_id: c.forum as string, name: `t${i}` })
      }
    },
    call: (db, c, who) => createForumTag(db, { channel_id: c.forum as string, name: who }),
    check: async (db, c) => {
      const n = await count(
        db,
        sql<{
          n: number
        }>`select count(*)::int as n from forum_tags where channel_id = ${c.forum}`,
      )
      return n <= 20 ? [] : [`${n} tags`]
    },
  },
  {
    name: 'updateForumTag: two tags renamed to one name (names stay unique in the forum)',
    setup: async (db, c) => {
      c.forum = (await createChannel(db, { guild_id: c.guild, name: 'f', type: 'forum' })).id
      c.tagA = (await createForumTag(db, { channel_id: c.forum as string, name: 'a' })).id
      c.tagB = (await createForumTag(db, { channel_id: c.forum as string, name: 'b' })).id
    },
    call: (db, c, who) =>
      updateForumTag(db, { tag_id: (who === 'a' ? c.tagA : c.tagB) as string, name: 'same' }),
    check: async (db, c) => {
      const n = await count(
        db,
        sql<{ n: number }>`select count(*)::int as n from forum_tags
          where channel_id = ${c.forum} and name = 'same'`,
      )
      return n <= 1 ? [] : [`${n} tags named 'same'`]
    },
  },
  {
    name: "archiveThread by its owner (a) against a moderator's lock (b): no owner archive over a lock",
    setup: async (db, c) => {
      await makeMember(db, c.guild, c.a)
      c.thread = (await createThread(db, { channel_id: c.channel, author_id: c.a, name: 't' })).id
    },
    call: (db, c, who) =>
      who === 'a'
        ? archiveThread(db, { thread_id: c.thread as string }, { actor_id: c.a })
        : archiveThread(db, { thread_id: c.thread as string, archived: false, locked: true }),
    check: async (db, c) => {
      const row = await db
        .selectFrom('channels')
        .select(['archived_at', 'locked'])
        .where('id', '=', c.thread as string)
        .executeTakeFirstOrThrow()
      return row.locked && row.archived_at !== null ? ['archived by its owner while locked'] : []
    },
  },
  {
    name: 'setPostTags twice on one post (the set is one of the two)',
    setup: async (db, c) => {
      c.forum = (await createChannel(db, { guild_id: c.guild, name: 'f', type: 'forum' })).id
      c.tagA = (await createForumTag(db, { channel_id: c.forum as string, name: 'a' })).id
      c.tagB = (await createForumTag(db, { channel_id: c.forum as string, name: 'b' })).id
      c.post = (
        await createThread(db, {
          channel_id: c.forum as string,
          author_id: c.owner,
          name: 'p',
          content: 'q',
        })
      ).id
    },
    call: (db, c, who) =>
      setPostTags(db, {
        thread_id: c.post as string,
        tag_ids: [(who === 'a' ? c.tagA : c.tagB) as string],
      }),
    check: async (db, c) => {
      const n = await count(
        db,
        sql<{ n: number }>`select count(*)::int as n from post_tags where thread_id = ${c.post}`,
      )
      return n === 1 ? [] : [`${n} tags on the post`]
    },
  },
  {
    name: 'addChannelMember to a private channel twice',
    setup: async (db, c) => {
      await makeMember(db, c.guild, c.a)
      c.private = (await makeChannel(db, c.guild, { is_private: true })).id
    },
    call: (db, c) => addChannelMember(db, { channel_id: c.private as string, user_id: c.a }),
    check: async (db, c) => {
      const n = await count(
        db,
        sql<{
          n: number
        }>`select count(*)::int as n from channel_members where channel_id = ${c.private}`,
      )
      return n === 1 ? [] : [`${n} channel members`]
    },
  },
  {
    name: 'assignRole twice',
    setup: async (db, c) => {
      await makeMember(db, c.guild, c.a)
    },
    call: (db, c) => assignRole(db, { guild_id: c.guild, user_id: c.a, role_id: c.role }),
    check: async (db, c) => {
      const n = await count(
        db,
        sql<{ n: number }>`select count(*)::int as n from member_roles where role_id = ${c.role}`,
      )
      return n === 1 ? [] : [`${n} assignments`]
    },
  },
  {
    name: 'updateRole concurrently (the audit log matches the role)',
    call: (db, c, who) => updateRole(db, c.role, { name: `role-${who}` }),
    check: async (db, c) => {
      const role = await sql<{ name: string }>`select name from roles where id = ${c.role}`.execute(
        db,
      )
      const last = await sql<{
        after: string
      }>`select changes->'name'->>'after' as after from audit_log
        where target_id = ${c.role} order by id desc limit 1`.execute(db)
      return role.rows[0]?.name === last.rows[0]?.after ? [] : ['audit log disagrees with the role']
    },
  },
  {
    name: 'createGuildEmoji at the cap (1 static emoji)',
    setup: async (db, c) => {
      await db
        .updateTable('guilds')
        .set({ max_emojis_static: 1 })
        .where('id', '=', c.guild)
        .execute()
    },
    call: (db, c, who) =>
      createGuildEmoji(db, {
        guild_id: c.guild,
        name: `emoji_${who}`,
        storage_key: `emojis/${who}`,
        creator_id: c.owner,
      }),
    check: async (db, c) => {
      const n = await count(
        db,
        sql<{
          n: number
        }>`select count(*)::int as n from guild_emojis where guild_id = ${c.guild}`,
      )
      const kept = await count(
        db,
        sql<{ n: number }>`select coalesce((select static_count from guild_emoji_counts
          where guild_id = ${c.guild}), 0) as n`,
      )
      return n <= 1 && kept === n ? [] : [`${n} emojis, counter ${kept}`]
    },
  },
  {
    name: 'addReaction with custom emojis at the cap (19 of 20 emojis)',
    setup: async (db, c) => {
      for (const who of ['a', 'b'] as const) {
        await makeMember(db, c.guild, c[who] as string)
        const e = await makeEmoji(db, c.guild, c.owner, { name: `emoji_${who}` })
        c[`emoji_${who}`] = `emoji_${who}:${e.id}`
      }
      for (const emoji of [...'😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙🥲😚'])
        await addReaction(db, { message_id: c.message, user_id: c.owner, emoji })
    },
    call: (db, c, who) =>
      addReaction(db, {
        message_id: c.message,
        user_id: c[who] as string,
        emoji: c[`emoji_${who}`] as string,
      }),
    check: async (db, c) => {
      const n = await count(
        db,
        sql<{ n: number }>`select count(distinct emoji)::int as n from message_reactions
          where message_id = ${c.message}`,
      )
      return n <= 20 ? [] : [`${n} emojis`]
    },
  },
  {
    name: 'updateGuildEmoji renaming concurrently (reactions follow the name)',
    setup: async (db, c) => {
      const e = await makeEmoji(db, c.guild, c.owner, { name: 'before' })
      c.emoji = e.id
      await addReaction(db, { message_id: c.message, user_id: c.owner, emoji: `before:${e.id}` })
    },
    call: (db, c, who) =>
      updateGuildEmoji(db, { emoji_id: c.emoji as string, name: `name_${who}` }),
    check: async (db, c) => {
      const rows = await sql<{ emoji: string; name: string }>`select r.emoji, e.name
        from message_reactions r join guild_emojis e on e.id = r.emoji_id
        where r.emoji_id = ${c.emoji}`.execute(db)
      const stale = rows.rows.filter((r) => r.emoji !== `${r.name}:${c.emoji}`)
      return rows.rows.length === 1 && stale.length === 0 ? [] : ['reactions not under the name']
    },
  },
  {
    name: 'updateMessage concurrently (the edit history is a chain)',
    call: (db, c, who) => updateMessage(db, c.message, { content: `edit by ${who}` }),
    check: async (db, c) => {
      const m = await sql<{
        content: string
      }>`select content from messages where id = ${c.message}`.execute(db)
      const edits = await sql<{
        n: number
      }>`select count(*)::int as n from message_edits where message_id = ${c.message}`.execute(db)
      const n = edits.rows[0]?.n ?? 0
      return m.rows[0]?.content.startsWith('edit by') && n >= 1 && n <= 2 ? [] : [`edits ${n}`]
    },
  },
  {
    name: 'markChannelRead (the marker never moves back)',
    setup: async (db, c) => {
      await makeMember(db, c.guild, c.a)
      c.newer = (await makeMessage(db, c.channel, c.owner)).id
    },
    call: (db, c, who) => {
      if (who === 'b') c.newerMarked = 'yes'
      return markChannelRead(db, {
        channel_id: c.channel,
        user_id: c.a,
        message_id: (who === 'a' ? c.message : c.newer) as string,
      })
    },
    check: async (db, c) => {
      const r = await sql<{
        id: string | null
      }>`select last_read_message_id as id from channel_read_states
        where channel_id = ${c.channel} and user_id = ${c.a}`.execute(db)
      // The newest message any call named.
      const expected = c.newerMarked ? c.newer : c.message
      return r.rows[0]?.id === expected ? [] : [`marker at ${r.rows[0]?.id}, expected ${expected}`]
    },
  },
]

let t: TestDatabase
let h: Interleaver
beforeAll(async () => {
  t = await createTestDatabase({ url: testDatabaseUrl(), pool: { max: 4 } })
  h = await createInterleaver(t.url, ['a', 'b'])
})
afterAll(async () => {
  await h?.close()
  await t?.drop()
})

async function world(db: Kysely<DB>): Promise<Ctx> {
  const owner = await makeUser(db)
  const a = await createUser(db, { username: randomUsername() })
  const b = await createUser(db, { username: randomUsername() })
  const guild = await makeGuild(db, owner.id)
  const channel = await makeChannel(db, guild.id)
  const message = await makeMessage(db, channel.id, owner.id)
  const role = await makeRole(db, guild.id, { permissions: 0n })
  return {
    guild: guild.id,
    owner: owner.id,
    a: a.id,
    b: b.id,
    channel: channel.id,
    message: message.id,
    role: role.id,
  }
}

const typed = (e: unknown) => e === undefined || e instanceof GuildstoreError

describe('every guarded writer inside a caller REPEATABLE READ / SERIALIZABLE transaction', () => {
  for (const level of ['repeatable read', 'serializable'] as const) {
    for (const c of CASES) {
      it(`${c.name}, ${level}: alone, then on a snapshot older than a committed competitor, then waiting on an uncommitted one`, async () => {
        // Alone: it works, and its effect is there after the commit.
        const alone = await world(t.db)
        await c.setup?.(t.db, alone)
        const solo = await h.run(
          [
            {
              name: 'a',
              isolation: level,
              steps: [{ name: 'call', run: (db) => c.call(db, alone, 'a') }],
            },
            { name: 'b', isolation: 'autocommit', steps: [] },
          ],
          ['a.call', 'a.commit'],
        )
        expect(solo.outcomes.map((o) => o.error)).toEqual([undefined, undefined])
        expect(await c.check(t.db, alone)).toEqual([])

        // A competitor committed after the snapshot.
        const w = await world(t.db)
        await c.setup?.(t.db, w)
        const stale = await h.run(
          [
            {
              name: 'a',
              isolation: level,
              steps: [
                { name: 'snap', run: (db) => sql`select 1`.execute(db) },
                { name: 'call', run: (db) => c.call(db, w, 'a') },
              ],
            },
            {
              name: 'b',
              isolation: 'autocommit',
              steps: [{ name: 'call', run: (db) => c.call(db, w, 'b') }],
            },
          ],
          ['a.snap', 'b.call', 'a.call', 'a.commit'],
        )
        for (const o of stale.outcomes)
          expect(typed(o.error), `${o.step}: ${String(o.error)}`).toBe(true)
        expect(await c.check(t.db, w)).toEqual([])

        // A competitor still uncommitted while the call runs.
        const v = await world(t.db)
        await c.setup?.(t.db, v)
        const waiting = await h.run(
          [
            {
              name: 'a',
              isolation: level,
              steps: [
                { name: 'snap', run: (db) => sql`select 1`.execute(db) },
                { name: 'call', run: (db) => c.call(db, v, 'a') },
              ],
            },
            {
              name: 'b',
              isolation: 'read committed',
              steps: [{ name: 'call', run: (db) => c.call(db, v, 'b') }],
            },
          ],
          ['a.snap', 'b.call', 'a.call', 'b.commit', 'a.commit'],
        )
        for (const o of waiting.outcomes)
          expect(typed(o.error), `${o.step}: ${String(o.error)}`).toBe(true)
        expect(await c.check(t.db, v)).toEqual([])
        // A refusal is the retryable kind, never a silent wrong result.
        for (const o of [...stale.outcomes, ...waiting.outcomes]) {
          if (o.error instanceof DatabaseUnavailableError) expect(o.error.retryable).toBe(true)
        }
      })
    }
  }
})
