/**
 * Notification settings (issue 25, item 1; migration 0014) and how they shape
 * listChannelReadStates: suppressed @everyone and role mentions, the levels,
 * mutes that end by time with no write, per-field updates from two devices
 * (with proof that they raced), hostile input.
 */
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import {
  createChannel,
  createMessage,
  createThread,
  ForeignKeyViolationError,
  getNotificationSettings,
  InvalidInputError,
  listChannelReadStates,
  setChannelNotificationSettings,
  setGuildNotificationSettings,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeDm,
  makeGuild,
  makeMember,
  makeRole,
  makeUser,
} from '../support/factories.ts'
import { waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase({ max: 8 })

async function world() {
  const owner = await makeUser(t.db)
  const member = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  await makeMember(t.db, guild.id, member.id)
  const role = await makeRole(t.db, guild.id, { permissions: 0n })
  await t.db
    .insertInto('member_roles')
    .values({ guild_id: guild.id, user_id: member.id, role_id: role.id })
    .execute()
  const channel = await makeChannel(t.db, guild.id)
  const other = await makeChannel(t.db, guild.id, { position: 1 })
  // In `channel`: one message mentioning the member, one @everyone, one the
  // default role (@everyone by role id), one their role, one plain.
  const post = (
    mentions?: Parameters<typeof createMessage>[1]['mentions'],
    channel_id = channel.id,
  ) => createMessage(t.db, { channel_id, author_id: owner.id, content: 'x', mentions })
  await post({ user_ids: [member.id] })
  await post({ everyone: true })
  await post({ role_ids: [guild.defaultRole.id] })
  await post({ role_ids: [role.id] })
  await post()
  await post({ user_ids: [member.id] }, other.id)
  return { owner, member, guild, role, channel, other }
}

const states = async (user_id: string, guild_id: string) =>
  Object.fromEntries(
    (await listChannelReadStates(t.db, { user_id, guild_id })).map((s) => [s.channel_id, s]),
  )

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  )

describe('notification settings', () => {
  it('defaults: all mentions count, nothing muted; getNotificationSettings returns them', async () => {
    const w = await world()
    const s = await states(w.member.id, w.guild.id)
    expect(s[w.channel.id]).toMatchObject({
      unread_count: 5,
      mention_count: 4,
      muted: false,
      notification_level: 'all',
    })
    const got = await getNotificationSettings(t.db, { user_id: w.member.id, guild_id: w.guild.id })
    expect(got.guild).toMatchObject({
      level: 'all',
      suppress_everyone: false,
      suppress_roles: false,
      muted: false,
    })
    expect(got.channels).toEqual([])
  })

  it('suppress_everyone: @everyone (and the default role) count nothing; the unread count stays exact', async () => {
    const w = await world()
    await setGuildNotificationSettings(t.db, {
      guild_id: w.guild.id,
      user_id: w.member.id,
      suppress_everyone: true,
    })
    const s = await states(w.member.id, w.guild.id)
    expect(s[w.channel.id]).toMatchObject({ unread_count: 5, mention_count: 2 })
  })

  it('suppress_roles: role mentions count nothing, @everyone still does', async () => {
    const w = await world()
    await setGuildNotificationSettings(t.db, {
      guild_id: w.guild.id,
      user_id: w.member.id,
      suppress_roles: true,
    })
    expect((await states(w.member.id, w.guild.id))[w.channel.id]).toMatchObject({
      mention_count: 3,
    })
  })

  it("levels: the guild's 'nothing' counts no mention; a channel override wins", async () => {
    const w = await world()
    await setGuildNotificationSettings(t.db, {
      guild_id: w.guild.id,
      user_id: w.member.id,
      level: 'nothing',
    })
    let s = await states(w.member.id, w.guild.id)
    expect(s[w.channel.id]).toMatchObject({
      mention_count: 0,
      unread_count: 5,
      notification_level: 'nothing',
    })
    expect(s[w.other.id]).toMatchObject({ mention_count: 0, notification_level: 'nothing' })
    await setChannelNotificationSettings(t.db, {
      channel_id: w.other.id,
      user_id: w.member.id,
      level: 'mentions',
    })
    s = await states(w.member.id, w.guild.id)
    expect(s[w.other.id]).toMatchObject({ mention_count: 1, notification_level: 'mentions' })
    // null: follow the guild again.
    await setChannelNotificationSettings(t.db, {
      channel_id: w.other.id,
      user_id: w.member.id,
      level: null,
    })
    expect((await states(w.member.id, w.guild.id))[w.other.id]).toMatchObject({
      mention_count: 0,
      notification_level: 'nothing',
    })
  })

  it('a mute ends by time alone, with no write; a guild mute mutes every channel', async () => {
    const w = await world()
    await setChannelNotificationSettings(t.db, {
      channel_id: w.channel.id,
      user_id: w.member.id,
      muted: true,
      muted_until: new Date(Date.now() + 1_200),
    })
    let s = await states(w.member.id, w.guild.id)
    expect(s[w.channel.id]?.muted).toBe(true)
    expect(s[w.other.id]?.muted).toBe(false)
    // Counts stay exact while muted: the client decides how to show it.
    expect(s[w.channel.id]).toMatchObject({ unread_count: 5, mention_count: 4 })
    const before = await sql<{
      x: string
    }>`select xmin::text as x from channel_notification_settings
      where channel_id = ${w.channel.id}`.execute(t.db)
    await new Promise((r) => setTimeout(r, 1_400))
    s = await states(w.member.id, w.guild.id)
    expect(s[w.channel.id]?.muted).toBe(false)
    const after = await sql<{ x: string }>`select xmin::text as x from channel_notification_settings
      where channel_id = ${w.channel.id}`.execute(t.db)
    expect(after.rows[0]?.x).toBe(before.rows[0]?.x)
    await setGuildNotificationSettings(t.db, {
      guild_id: w.guild.id,
      user_id: w.member.id,
      muted: true,
    })
    s = await states(w.member.id, w.guild.id)
    expect([s[w.channel.id]?.muted, s[w.other.id]?.muted]).toEqual([true, true])
  })

  it('two devices changing different fields at once both keep theirs (last writer per field)', async () => {
    const w = await world()
    const key = { guild_id: w.guild.id, user_id: w.member.id }
    await setGuildNotificationSettings(t.db, { ...key, level: 'all' })
    const holder = await t.pool.connect()
    try {
      await holder.query('begin')
      await holder.query(
        'select 1 from guild_notification_settings where guild_id = $1 and user_id = $2 for update',
        [w.guild.id, w.member.id],
      )
      const a = setGuildNotificationSettings(t.db, { ...key, level: 'mentions' })
      const b = setGuildNotificationSettings(t.db, { ...key, suppress_everyone: true })
      const c = setGuildNotificationSettings(t.db, { ...key, muted: true })
      expect(await waitForLockWaiters(holder, 3)).toBeGreaterThanOrEqual(3)
      await holder.query('commit')
      await Promise.all([a, b, c])
    } finally {
      holder.release()
    }
    const got = await getNotificationSettings(t.db, { user_id: w.member.id, guild_id: w.guild.id })
    expect(got.guild).toMatchObject({ level: 'mentions', suppress_everyone: true, muted: true })
  })

  it('DMs: a channel override applies, there is no guild setting', async () => {
    const a = await makeUser(t.db)
    const b = await makeUser(t.db)
    const dm = await makeDm(t.db, a.id, b.id)
    await createMessage(t.db, {
      channel_id: dm.id,
      author_id: b.id,
      content: 'hi',
      mentions: { user_ids: [a.id] },
    })
    await setChannelNotificationSettings(t.db, {
      channel_id: dm.id,
      user_id: a.id,
      level: 'nothing',
    })
    const [state] = await listChannelReadStates(t.db, { user_id: a.id })
    expect(state).toMatchObject({
      unread_count: 1,
      mention_count: 0,
      notification_level: 'nothing',
    })
    const got = await getNotificationSettings(t.db, { user_id: a.id })
    expect(got.guild).toBeNull()
    expect(got.channels.map((c) => [c.channel_id, c.level])).toEqual([[dm.id, 'nothing']])
  })

  // A thread the member joined (their read-state list shows joined active
  // threads), with one message of the owner mentioning them.
  async function threadOf(w: Awaited<ReturnType<typeof world>>, parent_id = w.channel.id) {
    const thread = await createThread(t.db, {
      channel_id: parent_id,
      author_id: w.member.id,
      name: 'sub',
      ...(parent_id === w.channel.id ? {} : { content: 'the question' }),
    })
    await createMessage(t.db, {
      channel_id: thread.id,
      author_id: w.owner.id,
      content: 'x',
      mentions: { user_ids: [w.member.id] },
    })
    return thread
  }

  const setChannel = (channel_id: string, user_id: string, patch: object) =>
    setChannelNotificationSettings(t.db, { channel_id, user_id, ...patch })

  it("threads: with no override a thread follows its parent's level and mute, else the guild's", async () => {
    const w = await world()
    const thread = await threadOf(w)
    let s = await states(w.member.id, w.guild.id)
    expect(s[thread.id]).toMatchObject({
      unread_count: 1,
      mention_count: 1,
      muted: false,
      notification_level: 'all',
    })
    await setGuildNotificationSettings(t.db, {
      guild_id: w.guild.id,
      user_id: w.member.id,
      level: 'mentions',
    })
    s = await states(w.member.id, w.guild.id)
    expect(s[thread.id]).toMatchObject({ notification_level: 'mentions', mention_count: 1 })
    // The parent's override: its level and its mute reach the thread, not the
    // sibling channel.
    await setChannel(w.channel.id, w.member.id, { level: 'nothing', muted: true })
    s = await states(w.member.id, w.guild.id)
    expect(s[thread.id]).toMatchObject({
      notification_level: 'nothing',
      mention_count: 0,
      unread_count: 1,
      muted: true,
    })
    expect(s[w.other.id]).toMatchObject({ notification_level: 'mentions', muted: false })
    // A category is a parent_id too, but its settings do not reach its channels.
    const category = await createChannel(t.db, {
      guild_id: w.guild.id,
      name: 'cat',
      type: 'category',
    })
    const inCategory = await createChannel(t.db, {
      guild_id: w.guild.id,
      name: 'c',
      type: 'text',
      parent_id: category.id,
    })
    await setChannel(category.id, w.member.id, { level: 'nothing', muted: true })
    s = await states(w.member.id, w.guild.id)
    expect(s[inCategory.id]).toMatchObject({ notification_level: 'mentions', muted: false })
  })

  it("threads: a thread's own override wins per field; a muted parent still mutes it", async () => {
    const w = await world()
    const thread = await threadOf(w)
    await setChannel(w.channel.id, w.member.id, { level: 'nothing' })
    await setChannel(thread.id, w.member.id, { level: 'all' })
    let s = await states(w.member.id, w.guild.id)
    expect(s[thread.id]).toMatchObject({ notification_level: 'all', mention_count: 1 })
    expect(s[w.channel.id]).toMatchObject({ notification_level: 'nothing', mention_count: 0 })
    // The thread's level override does not unmute it under a muted parent
    // (Discord: muting a channel mutes its threads).
    await setChannel(w.channel.id, w.member.id, { muted: true })
    s = await states(w.member.id, w.guild.id)
    expect(s[thread.id]).toMatchObject({ notification_level: 'all', muted: true })
    // The thread's own mute, with the parent unmuted, mutes only the thread.
    await setChannel(w.channel.id, w.member.id, { muted: false })
    await setChannel(thread.id, w.member.id, { muted: true })
    s = await states(w.member.id, w.guild.id)
    expect([s[thread.id]?.muted, s[w.channel.id]?.muted]).toEqual([true, false])
    // null: the thread follows its parent's level again.
    await setChannel(thread.id, w.member.id, { level: null })
    s = await states(w.member.id, w.guild.id)
    expect(s[thread.id]).toMatchObject({ notification_level: 'nothing', mention_count: 0 })
    const got = await getNotificationSettings(t.db, { user_id: w.member.id, guild_id: w.guild.id })
    expect(got.channels.map((c) => c.channel_id).sort()).toEqual([w.channel.id, thread.id].sort())
  })

  it("threads: the parent's mute ends by time alone and unmutes the thread, with no write", async () => {
    const w = await world()
    const thread = await threadOf(w)
    await setChannel(w.channel.id, w.member.id, {
      muted: true,
      muted_until: new Date(Date.now() + 1_200),
    })
    let s = await states(w.member.id, w.guild.id)
    expect([s[thread.id]?.muted, s[w.channel.id]?.muted]).toEqual([true, true])
    const xmins = async () =>
      (
        await sql<{ x: string }>`select xmin::text as x from channel_notification_settings
          where user_id = ${w.member.id} order by channel_id`.execute(t.db)
      ).rows.map((r) => r.x)
    const before = await xmins()
    await new Promise((r) => setTimeout(r, 1_400))
    s = await states(w.member.id, w.guild.id)
    expect([s[thread.id]?.muted, s[w.channel.id]?.muted]).toEqual([false, false])
    expect(await xmins()).toEqual(before)
  })

  it("forum posts follow their forum's settings the same way", async () => {
    const w = await world()
    const forum = await createChannel(t.db, { guild_id: w.guild.id, name: 'help', type: 'forum' })
    const post = await threadOf(w, forum.id)
    let s = await states(w.member.id, w.guild.id)
    expect(s[post.id]).toMatchObject({ mention_count: 1, muted: false, notification_level: 'all' })
    await setChannel(forum.id, w.member.id, { level: 'nothing', muted: true })
    s = await states(w.member.id, w.guild.id)
    expect(s[post.id]).toMatchObject({
      mention_count: 0,
      unread_count: 1,
      muted: true,
      notification_level: 'nothing',
    })
    await setChannel(post.id, w.member.id, { level: 'mentions' })
    s = await states(w.member.id, w.guild.id)
    expect(s[post.id]).toMatchObject({ mention_count: 1, notification_level: 'mentions' })
  })

  it('refuses bad input and non-members with typed errors, writing nothing', async () => {
    const w = await world()
    const before = await countRows(t.db, [
      'guild_notification_settings',
      'channel_notification_settings',
    ])
    const key = { guild_id: w.guild.id, user_id: w.member.id }
    for (const bad of [
      { ...key, level: 'loud' as never },
      { ...key, suppress_roles: 'yes' as never },
      { ...key, muted_until: 'soon' as never },
      { ...key },
      { ...key, guild_id: 'x' },
    ]) {
      expect(await rejection(setGuildNotificationSettings(t.db, bad))).toBeInstanceOf(
        InvalidInputError,
      )
    }
    expect(
      await rejection(
        setChannelNotificationSettings(t.db, { channel_id: w.channel.id, user_id: w.member.id }),
      ),
    ).toBeInstanceOf(InvalidInputError)
    const stranger = await makeUser(t.db)
    expect(
      await rejection(
        setGuildNotificationSettings(t.db, {
          guild_id: w.guild.id,
          user_id: stranger.id,
          level: 'all',
        }),
      ),
    ).toBeInstanceOf(ForeignKeyViolationError)
    expect(
      await countRows(t.db, ['guild_notification_settings', 'channel_notification_settings']),
    ).toEqual(before)
  })
})
