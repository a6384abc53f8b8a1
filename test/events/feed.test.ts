/**
 * The change feed (issue 23, migration 0019): every listed mutation writes its
 * event in its own transaction, positions in commit order, the access rule at
 * read time, tokens, retention.
 */
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import {
  acceptFriendRequest,
  addGuildMember,
  addReaction,
  appendEvent,
  assignRole,
  banMember,
  blockUser,
  createChannel,
  createGuildEmoji,
  createInvite,
  createRole,
  deleteChannel,
  deleteChannelOverwrite,
  deleteGuildEmoji,
  deleteMessage,
  deleteRole,
  findOrCreateDmChannel,
  type GuildstoreEvent,
  InvalidInputError,
  importMessages,
  listEvents,
  markChannelRead,
  oldestEventToken,
  Permissions,
  pinMessage,
  purgeDeletedMessages,
  purgeEvents,
  ResyncRequiredError,
  removeGuildMember,
  removeReaction,
  revokeInvite,
  sendFriendRequest,
  sendMessage,
  setChannelOverwrite,
  unassignRole,
  unbanMember,
  unpinMessage,
  updateChannel,
  updateGuildEmoji,
  updateMessage,
  updateRole,
  useInvite,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuildWithMember, makeUser, unknownId } from '../support/factories.ts'

// A host's own kinds, by declaration merging (docs/events.md, "Host events").
declare module '../../src/repositories/event-map.ts' {
  interface GuildstoreEventMap {
    'app.thing': { n: number }
    'app.level': { level: string }
  }
}

const t = useTestDatabase()
const { VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY } = Permissions
const BASE = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY

/** A guild (owner + one member, @everyone = BASE) and a public channel. */
async function world() {
  const { owner, guild, user: member, channel } = await makeGuildWithMember(t.db, BASE)
  return { owner, member, guild, channel }
}

/** Every event `user_id` may read after `token`, page by page, and the final token. */
async function drain(user_id: string, after: string, limit = 100) {
  const events: GuildstoreEvent[] = []
  let token = after
  for (;;) {
    const page = await listEvents(t.db, { user_id, after: token, limit })
    events.push(...page.events)
    if (page.next === token) return { events, token }
    token = page.next
  }
}

const head = async (user_id: string) => (await listEvents(t.db, { user_id })).next
const types = (events: GuildstoreEvent[]) => events.map((e) => e.type)

describe('capture: every listed mutation writes its event', () => {
  it('messages, reactions and pins', async () => {
    const w = await world()
    const token = await head(w.member.id)
    const m = await sendMessage(t.db, {
      channel_id: w.channel.id,
      author_id: w.owner.id,
      content: 'hi',
    })
    await updateMessage(t.db, m.id, { content: 'hello' })
    await addReaction(t.db, { message_id: m.id, user_id: w.member.id, emoji: '👍' })
    await removeReaction(t.db, { message_id: m.id, user_id: w.member.id, emoji: '👍' })
    await pinMessage(t.db, { message_id: m.id })
    await unpinMessage(t.db, { message_id: m.id })
    await deleteMessage(t.db, m.id)
    await purgeDeletedMessages(t.db, { older_than: new Date(Date.now() + 60_000) })
    const { events } = await drain(w.member.id, token)
    expect(types(events)).toEqual([
      'message_created',
      'message_edited',
      'reaction_added',
      'reaction_removed',
      'message_pinned',
      'message_unpinned',
      'message_deleted',
      'message_purged',
    ])
    for (const e of events) {
      expect(e.guild_id).toBe(w.guild.id)
      expect(e.channel_id).toBe(w.channel.id)
    }
    // Hydrated at read time: the message is gone, so its content never comes back.
    const created = events[0] as Extract<GuildstoreEvent, { type: 'message_created' }>
    expect(created.data.message_id).toBe(m.id)
    expect(created.data.message).toBeNull()
    expect(JSON.stringify(events)).not.toContain('hello')
    const positions = events.map((e) => BigInt(e.position))
    expect([...positions].sort((a, b) => (a < b ? -1 : 1))).toEqual(positions)
  })

  it('a live message is hydrated as it is now', async () => {
    const w = await world()
    const token = await head(w.member.id)
    const m = await sendMessage(t.db, {
      channel_id: w.channel.id,
      author_id: w.owner.id,
      content: 'one',
    })
    await updateMessage(t.db, m.id, { content: 'two' })
    const { events } = await drain(w.member.id, token)
    const [created, edited] = events as Extract<GuildstoreEvent, { type: 'message_created' }>[]
    expect(created?.data.message?.content).toBe('two')
    expect(created?.data.message?.seq).toBe(String(m.seq))
    expect(edited?.type).toBe('message_edited')
  })

  it('members, bans, roles, channels, overwrites, invites and emojis', async () => {
    const w = await world()
    const joiner = await makeUser(t.db)
    const kicked = await makeUser(t.db)
    const banned = await makeUser(t.db)
    const token = await head(w.owner.id)
    await addGuildMember(t.db, { guild_id: w.guild.id, user_id: kicked.id })
    await addGuildMember(t.db, { guild_id: w.guild.id, user_id: banned.id })
    await removeGuildMember(
      t.db,
      { guild_id: w.guild.id, user_id: kicked.id },
      { actor_id: w.owner.id },
    )
    await banMember(t.db, { guild_id: w.guild.id, user_id: banned.id })
    await unbanMember(t.db, { guild_id: w.guild.id, user_id: banned.id })
    const role = await createRole(t.db, { guild_id: w.guild.id, name: 'mods', permissions: 0n })
    await updateRole(t.db, role.id, { name: 'moderators' })
    await assignRole(t.db, { guild_id: w.guild.id, user_id: w.member.id, role_id: role.id })
    await unassignRole(t.db, { guild_id: w.guild.id, user_id: w.member.id, role_id: role.id })
    await deleteRole(t.db, role.id)
    const channel = await createChannel(t.db, { guild_id: w.guild.id, name: 'news', type: 'text' })
    await updateChannel(t.db, channel.id, { topic: 'today' })
    await setChannelOverwrite(t.db, {
      channel_id: channel.id,
      user_id: w.member.id,
      allow: 0n,
      deny: SEND_MESSAGES,
    })
    await deleteChannelOverwrite(t.db, { channel_id: channel.id, user_id: w.member.id })
    // Read before the delete: a deleted channel's own events pass nobody's access check.
    const channelEvents = await drain(w.owner.id, token)
    expect(types(channelEvents.events).slice(-4)).toEqual([
      'channel_created',
      'channel_updated',
      'overwrite_set',
      'overwrite_deleted',
    ])
    await deleteChannel(t.db, channel.id)
    const invite = await createInvite(t.db, { guild_id: w.guild.id, inviter_id: w.owner.id })
    await useInvite(t.db, { code: invite.code, user_id: joiner.id })
    await revokeInvite(t.db, { code: invite.code })
    const emoji = await createGuildEmoji(t.db, {
      guild_id: w.guild.id,
      name: 'party',
      storage_key: 'emojis/party.png',
      creator_id: w.owner.id,
    })
    await updateGuildEmoji(t.db, { emoji_id: emoji.id, name: 'partying' })
    await deleteGuildEmoji(t.db, { emoji_id: emoji.id })
    await removeGuildMember(t.db, { guild_id: w.guild.id, user_id: joiner.id })

    const { events } = await drain(w.owner.id, token)
    expect(types(events)).toEqual([
      'member_joined',
      'member_joined',
      'member_removed',
      'ban_added',
      'member_removed',
      'ban_removed',
      'role_created',
      'role_updated',
      'member_role_added',
      'member_role_removed',
      'role_deleted',
      'overwrite_set',
      'overwrite_deleted',
      'channel_deleted',
      'invite_created',
      'member_joined',
      'invite_used',
      'invite_revoked',
      'emoji_created',
      'emoji_updated',
      'emoji_deleted',
      'member_removed',
    ])
    const reasons = events
      .filter((e) => e.type === 'member_removed')
      .map((e) => (e.data as { reason: string }).reason)
    expect(reasons).toEqual(['kicked', 'banned', 'left'])
    // No secret in the feed: the invite's code is not in it.
    expect(JSON.stringify(events)).not.toContain(invite.code)
  })

  it("DMs, friendships and blocks, read markers: the participants' and the user's own streams", async () => {
    const w = await world()
    const a = w.owner
    const b = await makeUser(t.db)
    const [ta, tb, tm] = [await head(a.id), await head(b.id), await head(w.member.id)]
    const { channel: dm } = await findOrCreateDmChannel(t.db, {
      user_id: a.id,
      other_user_id: b.id,
    })
    await sendFriendRequest(t.db, { from_user_id: a.id, to_user_id: b.id })
    await acceptFriendRequest(t.db, { user_id: b.id, requester_id: a.id })
    await blockUser(t.db, { user_id: b.id, blocked_user_id: a.id })
    const m = await sendMessage(t.db, { channel_id: w.channel.id, author_id: a.id, content: 'x' })
    await markChannelRead(t.db, { channel_id: w.channel.id, user_id: a.id, message_id: m.id })

    const ea = (await drain(a.id, ta)).events
    const eb = (await drain(b.id, tb)).events
    const rel = (list: GuildstoreEvent[]) =>
      list.map((e) => {
        const d = e.data as { status?: string; user_id?: string }
        return [e.type, d.status, d.user_id === a.id ? 'a' : d.user_id === b.id ? 'b' : undefined]
      })
    const pair = [
      ['relationship_set', 'pending', 'a'],
      ['relationship_set', 'accepted', 'a'],
      ['relationship_set', 'accepted', 'b'],
      ['relationship_removed', 'accepted', 'a'],
      ['relationship_removed', 'accepted', 'b'],
    ]
    expect(rel(ea)).toEqual([
      ['dm_created', undefined, undefined],
      ...pair,
      // Not told of b's block.
      ['message_created', undefined, undefined],
      ['read_state_updated', undefined, undefined],
    ])
    expect(ea[0]?.channel_id).toBe(dm.id)
    expect(rel(eb)).toEqual([
      ['dm_created', undefined, undefined],
      ...pair,
      ['relationship_set', 'blocked', 'b'],
    ])
    // Another user's own stream and DM never reach a third party.
    const em = (await drain(w.member.id, tm)).events
    expect(types(em)).toEqual(['message_created'])
  })

  it('a rolled-back or refused change leaves no event', async () => {
    const w = await world()
    const before = await countRows(t.db, ['guildstore_events'])
    await expect(
      t.db.transaction().execute(async (trx) => {
        await sendMessage(trx, { channel_id: w.channel.id, author_id: w.owner.id, content: 'no' })
        await appendEvent(trx, { type: 'app.thing', guild_id: w.guild.id, data: { n: 1 } })
        throw new Error('rollback')
      }),
    ).rejects.toThrow('rollback')
    const outsider = await makeUser(t.db)
    await expect(
      sendMessage(t.db, { channel_id: w.channel.id, author_id: outsider.id, content: 'refused' }),
    ).rejects.toThrow()
    expect(await countRows(t.db, ['guildstore_events'])).toEqual(before)
  })
})

describe('appendEvent', () => {
  it("writes a host event in the caller's transaction, at REPEATABLE READ and SERIALIZABLE too", async () => {
    const w = await world()
    const token = await head(w.member.id)
    for (const level of ['read committed', 'repeatable read', 'serializable'] as const) {
      await t.db
        .transaction()
        .setIsolationLevel(level)
        .execute(async (trx) => {
          await sendMessage(trx, {
            channel_id: w.channel.id,
            author_id: w.owner.id,
            content: level,
          })
          await appendEvent(trx, { type: 'app.level', guild_id: w.guild.id, data: { level } })
        })
    }
    const { events } = await drain(w.member.id, token)
    expect(events.map((e) => `${e.type}`)).toEqual([
      'message_created',
      'app.level',
      'message_created',
      'app.level',
      'message_created',
      'app.level',
    ])
    expect(events.filter((e) => e.type === ('app.level' as never)).map((e) => e.data)).toEqual([
      { level: 'read committed' },
      { level: 'repeatable read' },
      { level: 'serializable' },
    ])
  })

  it('refuses bad input with InvalidInputError and writes nothing', async () => {
    const w = await world()
    const before = await countRows(t.db, ['guildstore_events'])
    const bad: unknown[] = [
      { type: 'Bad Type', guild_id: w.guild.id, data: {} },
      { type: 'message_created', guild_id: w.guild.id, data: {} },
      { type: 'app.x', data: {} },
      { type: 'app.x', guild_id: 'nope', data: {} },
      { type: 'app.x', user_id: w.owner.id, data: [] },
      { type: 'app.x', user_id: w.owner.id, data: null },
      { type: 'app.x', user_id: w.owner.id, data: { big: 'x'.repeat(20_000) } },
      { type: 'app.x', user_id: w.owner.id, data: { nul: '\u0000' } },
      null,
    ]
    for (const input of bad) {
      await expect(appendEvent(t.db, input as never), JSON.stringify(input)).rejects.toBeInstanceOf(
        InvalidInputError,
      )
    }
    expect(await countRows(t.db, ['guildstore_events'])).toEqual(before)
  })
})

describe('types', () => {
  it('a declared host kind narrows GuildstoreEvent; an undeclared kind does not compile', () => {
    const narrow = (e: GuildstoreEvent): number | undefined => {
      if (e.type === 'app.thing') return e.data.n
      if (e.type === 'message_created') return e.data.message?.content.length
      return undefined
    }
    expect(narrow({ type: 'app.thing', data: { n: 3 } } as GuildstoreEvent)).toBe(3)
    const undeclared = () =>
      // @ts-expect-error: 'app.undeclared' is not in GuildstoreEventMap
      appendEvent(t.db, { type: 'app.undeclared', user_id: unknownId(), data: {} })
    expect(typeof undeclared).toBe('function')
  })
})

describe('listEvents: access at read time', () => {
  it('a channel the user cannot see: none of its events; a revocation mid-stream: not one after it', async () => {
    const w = await world()
    const secret = await makeChannel(t.db, w.guild.id)
    const token = await head(w.member.id)
    const send = (channel_id: string, content: string) =>
      sendMessage(t.db, { channel_id, author_id: w.owner.id, content })
    await send(secret.id, 'before-1')
    await send(w.channel.id, 'public-1')
    const firstPage = await drain(w.member.id, token)
    expect(firstPage.events.map((e) => e.channel_id)).toEqual([secret.id, w.channel.id])
    // Revoke VIEW_CHANNEL for the member on `secret`.
    await setChannelOverwrite(t.db, {
      channel_id: secret.id,
      user_id: w.member.id,
      allow: 0n,
      deny: VIEW_CHANNEL,
    })
    await send(secret.id, 'after-1')
    await send(w.channel.id, 'public-2')
    await send(secret.id, 'after-2')
    const rest = await drain(w.member.id, firstPage.token)
    expect(types(rest.events)).toEqual(['overwrite_set', 'message_created'])
    expect(rest.events.filter((e) => e.channel_id === secret.id)).toEqual([])
    expect(JSON.stringify(rest.events)).not.toContain('after-')
    // The owner still sees all three.
    const ownerView = await drain(w.owner.id, firstPage.token)
    expect(ownerView.events.filter((e) => e.channel_id === secret.id)).toHaveLength(2)
  })

  it('a kicked user is told in their own stream, and gets nothing of the guild after it', async () => {
    const w = await world()
    const token = await head(w.member.id)
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.owner.id, content: 'a' })
    await removeGuildMember(
      t.db,
      { guild_id: w.guild.id, user_id: w.member.id },
      { actor_id: w.owner.id },
    )
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.owner.id, content: 'b' })
    await createRole(t.db, { guild_id: w.guild.id, name: 'later', permissions: 0n })
    const { events } = await drain(w.member.id, token)
    expect(types(events)).toEqual(['member_removed'])
    expect(events[0]?.user_id).toBe(w.member.id)
    expect(events[0]?.data).toEqual({ user_id: w.member.id, reason: 'kicked' })
  })

  it('the token is opaque, survives a new pool, and a malformed one is InvalidInputError', async () => {
    const w = await world()
    const token = await head(w.member.id)
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.owner.id, content: 'x' })
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/)
    const { createDb, createPool } = await import('../../src/index.ts')
    const pool = createPool({ connectionString: t.url, max: 1 })
    const db2 = createDb(pool)
    try {
      const page = await listEvents(db2, { user_id: w.member.id, after: token })
      expect(types(page.events)).toEqual(['message_created'])
    } finally {
      await db2.destroy()
    }
    for (const after of ['', 'x', 'Z3MxOi0x', 'Z3MyOjE', '!!!!', 42, 'Z3MxOjE=']) {
      await expect(
        listEvents(t.db, { user_id: w.member.id, after: after as string }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    await expect(listEvents(t.db, { user_id: 'nope' })).rejects.toBeInstanceOf(InvalidInputError)
    await expect(listEvents(t.db, { user_id: w.member.id, limit: 0 })).rejects.toBeInstanceOf(
      InvalidInputError,
    )
  })

  it('refuses inside a REPEATABLE READ transaction', async () => {
    const w = await world()
    await expect(
      t.db
        .transaction()
        .setIsolationLevel('repeatable read')
        .execute((trx) => listEvents(trx, { user_id: w.member.id })),
    ).rejects.toBeInstanceOf(InvalidInputError)
  })

  it('pages: small limits return every event once, in order', async () => {
    const w = await world()
    const token = await head(w.member.id)
    for (let i = 0; i < 25; i++) {
      await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.owner.id, content: `m${i}` })
    }
    const { events } = await drain(w.member.id, token, 7)
    expect(events.map((e) => (e.data as { message: { content: string } }).message.content)).toEqual(
      Array.from({ length: 25 }, (_, i) => `m${i}`),
    )
  })
})

describe('positions: taken at insert, read up to the horizon', () => {
  it('a long-open transaction that wrote early holds the horizon back; nothing is skipped', async () => {
    const w = await world()
    const token = await head(w.member.id)
    let release!: () => void
    const held = new Promise<void>((r) => {
      release = r
    })
    let wrote!: () => void
    const written = new Promise<void>((r) => {
      wrote = r
    })
    const long = t.db.transaction().execute(async (trx) => {
      await sendMessage(trx, { channel_id: w.channel.id, author_id: w.owner.id, content: 'early' })
      wrote()
      await held
    })
    let first: { events: GuildstoreEvent[]; token: string }
    try {
      await written
      // Another channel: the long transaction holds its channel's row (seq) until it ends.
      const other = await makeChannel(t.db, w.guild.id)
      await sendMessage(t.db, { channel_id: other.id, author_id: w.owner.id, content: 'late' })
      // Committed after the long transaction's position: held back, the token stays below it.
      first = await drain(w.member.id, token)
      expect(first.events).toEqual([])
    } finally {
      release()
      await long
    }
    const second = await drain(w.member.id, first.token)
    expect(types(second.events)).toEqual(['message_created', 'channel_created', 'message_created'])
    expect(
      second.events.map((e) => (e.data as { message?: { content: string } }).message?.content),
    ).toEqual(['early', undefined, 'late'])
  })

  it('a multi-row INSERT … SELECT of up to 100 rows per channel gets one event per row, in seq order', async () => {
    const w = await world()
    const token = await head(w.member.id)
    await sql`insert into messages (channel_id, author_id, content)
      select ${w.channel.id}::uuid, ${w.owner.id}::uuid, 'bulk ' || g from generate_series(1, 100) g`.execute(
      t.db,
    )
    const { events } = await drain(w.member.id, token, 1000)
    expect(new Set(types(events))).toEqual(new Set(['message_created']))
    expect(events).toHaveLength(100)
    const seqs = events.map((e) => BigInt((e.data as { seq: string }).seq))
    expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => BigInt(i + 1)))
  })
})

describe('bulk statements: one messages_imported per channel above 100 rows', () => {
  /** The channel's seq range now, for comparing with a summary. */
  const seqRange = async (channel_id: string) =>
    (
      await sql<{ first: string; last: string; n: number }>`select min(seq)::text as first,
        max(seq)::text as last, count(*)::int as n from messages where channel_id = ${channel_id}`.execute(
        t.db,
      )
    ).rows[0]

  it('an INSERT … SELECT of 101 rows into one channel and 3 into another: one summary and 3 events', async () => {
    const w = await world()
    const second = await makeChannel(t.db, w.guild.id)
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.owner.id, content: 'before' })
    const token = await head(w.member.id)
    await sql`insert into messages (channel_id, author_id, content)
      select case when g <= 101 then ${w.channel.id}::uuid else ${second.id}::uuid end,
        ${w.owner.id}::uuid, 'bulk ' || g
      from generate_series(1, 104) g`.execute(t.db)
    const { events } = await drain(w.member.id, token)
    const summary = events.find((e) => e.type === 'messages_imported')
    expect(summary).toMatchObject({
      type: 'messages_imported',
      guild_id: w.guild.id,
      channel_id: w.channel.id,
      data: { first_seq: '2', last_seq: '102', count: 101 },
    })
    expect(await seqRange(w.channel.id)).toEqual({ first: '1', last: '102', n: 102 })
    const rest = events.filter((e) => e.type !== 'messages_imported')
    expect(types(rest)).toEqual(['message_created', 'message_created', 'message_created'])
    expect(rest.map((e) => e.channel_id)).toEqual([second.id, second.id, second.id])
    expect(events).toHaveLength(4)
    // The access rule applies to it like any channel event: a user who cannot see the channel misses it.
    await setChannelOverwrite(t.db, {
      channel_id: w.channel.id,
      user_id: w.member.id,
      allow: 0n,
      deny: VIEW_CHANNEL,
    })
    expect(types((await drain(w.member.id, token)).events)).toEqual([
      ...types(rest),
      'overwrite_set',
    ])
  })

  it.each(['copy', 'insert'] as const)(
    'importMessages (%s route) of 250 rows into one channel and 40 into another: one summary and 40 events',
    async (method) => {
      const w = await world()
      const second = await makeChannel(t.db, w.guild.id)
      const token = await head(w.member.id)
      const base = Date.parse('2020-01-01T00:00:00Z')
      const rows = [
        ...Array.from({ length: 250 }, (_, i) => ({
          channel_id: w.channel.id,
          author_id: w.owner.id,
          content: `old ${i}`,
          created_at: new Date(base + i * 1000),
        })),
        ...Array.from({ length: 40 }, (_, i) => ({
          channel_id: second.id,
          author_id: w.owner.id,
          content: `other ${i}`,
          created_at: new Date(base + i * 1000),
        })),
      ]
      expect(await importMessages(t.db, rows, { method })).toEqual({ imported: 290 })
      const { events } = await drain(w.member.id, token)
      const summaries = events.filter((e) => e.type === 'messages_imported')
      expect(summaries).toHaveLength(1)
      expect(summaries[0]).toMatchObject({
        channel_id: w.channel.id,
        data: { first_seq: '1', last_seq: '250', count: 250 },
      })
      const created = events.filter((e) => e.type === 'message_created')
      expect(created).toHaveLength(40)
      expect(new Set(created.map((e) => e.channel_id))).toEqual(new Set([second.id]))
    },
  )
})

describe('retention', () => {
  it('purges in batches, raises the floor; an older token is ResyncRequiredError; no after = the head', async () => {
    const w = await world()
    const token = await head(w.member.id)
    for (let i = 0; i < 12; i++) {
      await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.owner.id, content: `p${i}` })
    }
    const mid = await drain(w.member.id, token)
    const deleted = await purgeEvents(t.db, { older_than: new Date(Date.now() + 60_000), batch: 5 })
    expect(deleted).toBeGreaterThanOrEqual(12)
    expect(await countRows(t.db, ['guildstore_events'])).toEqual({ guildstore_events: 0 })
    await expect(listEvents(t.db, { user_id: w.member.id, after: token })).rejects.toBeInstanceOf(
      ResyncRequiredError,
    )
    // The head is resumable; so is the floor itself.
    expect((await listEvents(t.db, { user_id: w.member.id, after: mid.token })).events).toEqual([])
    const oldest = await oldestEventToken(t.db)
    expect(oldest).toBe(mid.token)
    const fresh = await listEvents(t.db, { user_id: w.member.id })
    expect(fresh.events).toEqual([])
    // Nothing older than the cutoff: nothing goes.
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.owner.id, content: 'keep' })
    expect(await purgeEvents(t.db, { older_than: new Date(Date.now() - 60_000) })).toBe(0)
    expect((await drain(w.member.id, fresh.next)).events).toHaveLength(1)
    await expect(purgeEvents(t.db, { older_than: 'yesterday' as never })).rejects.toBeInstanceOf(
      InvalidInputError,
    )
    await expect(purgeEvents(t.db, { older_than: new Date(), batch: 0 })).rejects.toBeInstanceOf(
      InvalidInputError,
    )
  })

  it('a token ahead of the feed is ResyncRequiredError', async () => {
    const w = await world()
    const ahead = Buffer.from('gs1:999999999999').toString('base64url')
    await expect(listEvents(t.db, { user_id: w.member.id, after: ahead })).rejects.toBeInstanceOf(
      ResyncRequiredError,
    )
    expect(unknownId()).toBeTruthy()
  })
})
