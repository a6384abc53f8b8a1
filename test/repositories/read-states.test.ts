/**
 * Message positions (seq), mentions, markChannelRead and listChannelReadStates.
 */
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import {
  createMessage,
  deleteMessage,
  ForeignKeyViolationError,
  InvalidInputError,
  listChannelMessages,
  listChannelReadStates,
  listDmChannels,
  listMessageMentions,
  listVisibleChannels,
  markChannelRead,
  markDmRead,
  NotFoundError,
  Permissions,
  purgeDeletedMessages,
  setChannelOverwrite,
  UNREAD_COUNT_CAP,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeDm,
  makeGuild,
  makeMember,
  makeMessage,
  makeRole,
  makeUser,
  unknownId,
} from '../support/factories.ts'

const t = useTestDatabase({ max: 20 })

async function expectInvalidAndNothingWritten(call: () => Promise<unknown>, field?: string) {
  const before = await countRows(t.db)
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(InvalidInputError)
  if (field) expect((error as InvalidInputError).field).toBe(field)
  expect(await countRows(t.db)).toEqual(before)
}

/** A guild with an owner, a member and one text channel. */
async function guildWorld() {
  const owner = await makeUser(t.db)
  const member = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  await makeMember(t.db, guild.id, member.id)
  const channel = await makeChannel(t.db, guild.id, { position: 1 })
  return { owner, member, guild, channel }
}

const stateOf = async (user_id: string, guild_id: string | null, channel_id: string) =>
  (await listChannelReadStates(t.db, { user_id, guild_id })).find(
    (s) => s.channel_id === channel_id,
  )

describe('message positions', () => {
  it('numbers messages 1, 2, 3 … per channel, also for plain INSERTs, and exposes seq as bigint', async () => {
    const { owner, guild, channel } = await guildWorld()
    const other = await makeChannel(t.db, guild.id)
    const a = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      content: 'a',
    })
    const b = await makeMessage(t.db, channel.id, owner.id)
    const x = await createMessage(t.db, { channel_id: other.id, author_id: owner.id, content: 'x' })
    const c = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      content: 'c',
    })
    expect([a.seq, b.seq, c.seq, x.seq]).toEqual([1n, 2n, 3n, 1n])
    expect(typeof a.seq).toBe('bigint')
    const page = await listChannelMessages(t.db, channel.id)
    expect(page.map((m) => m.seq)).toEqual([3n, 2n, 1n])
  })

  it('orders pages by commit order (seq), not by id', async () => {
    const { owner, channel } = await guildWorld()
    // A message whose id is far in the future commits first: it still comes first.
    const future = await makeMessage(t.db, channel.id, owner.id, {
      id: 'ffffffff-0000-7000-8000-000000000000',
    })
    const later = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      content: 'later',
    })
    expect(later.seq).toBe(future.seq + 1n)
    expect((await listChannelMessages(t.db, channel.id)).map((m) => m.id)).toEqual([
      later.id,
      future.id,
    ])
    expect(
      (await listChannelMessages(t.db, channel.id, { after: future.id })).map((m) => m.id),
    ).toEqual([later.id])
    expect(
      (await listChannelMessages(t.db, channel.id, { before: later.id })).map((m) => m.id),
    ).toEqual([future.id])
  })

  it('a message to an unknown channel is a ForeignKeyViolationError, also through plain SQL', async () => {
    const user = await makeUser(t.db)
    const before = await countRows(t.db)
    await expect(
      createMessage(t.db, { channel_id: unknownId(), author_id: user.id, content: 'x' }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    await expect(makeMessage(t.db, unknownId(), user.id)).rejects.toMatchObject({
      code: '23503',
      constraint: 'messages_channel_id_fkey',
    })
    expect(await countRows(t.db)).toEqual(before)
  })
})

describe('createMessage mentions and listMessageMentions', () => {
  it('stores user, role and @everyone mentions in the same statement, duplicates collapsed', async () => {
    const { owner, member, guild, channel } = await guildWorld()
    const role = await makeRole(t.db, guild.id)
    const m = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      content: 'hi all',
      mentions: {
        user_ids: [member.id, member.id.toUpperCase(), owner.id],
        role_ids: [role.id, role.id],
        everyone: true,
      },
    })
    const plain = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      content: 'none',
      mentions: { user_ids: [], role_ids: [], everyone: false },
    })
    const mentions = await listMessageMentions(t.db, [m.id, plain.id, unknownId()])
    expect(mentions).toHaveLength(4)
    expect(mentions.filter((x) => x.user_id).map((x) => x.user_id)).toEqual(
      [member.id, owner.id].sort(),
    )
    expect(mentions.filter((x) => x.role_id)).toEqual([
      { message_id: m.id, user_id: null, role_id: role.id, everyone: false },
    ])
    expect(mentions.filter((x) => x.everyone)).toEqual([
      { message_id: m.id, user_id: null, role_id: null, everyone: true },
    ])
    expect(await listMessageMentions(t.db, [])).toEqual([])
    // a soft delete (by any path) removes the message's mentions
    await t.db
      .updateTable('messages')
      .set({ deleted_at: new Date() })
      .where('id', '=', m.id)
      .execute()
    expect(await listMessageMentions(t.db, [m.id])).toEqual([])
  })

  it('refuses a role of another guild, an unknown user or role, and malformed mentions, writing nothing', async () => {
    const { owner, member, channel } = await guildWorld()
    const elsewhere = await makeGuild(t.db, owner.id)
    const foreignRole = await makeRole(t.db, elsewhere.id)
    const base = { channel_id: channel.id, author_id: owner.id, content: 'x' }
    await expectInvalidAndNothingWritten(
      () => createMessage(t.db, { ...base, mentions: { role_ids: [foreignRole.id] } }),
      'mentions.role_ids',
    )
    await expectInvalidAndNothingWritten(
      () =>
        createMessage(t.db, {
          ...base,
          mentions: { role_ids: [elsewhere.defaultRole.id, unknownId()] },
        }),
      'mentions.role_ids',
    )
    await expectInvalidAndNothingWritten(
      () => createMessage(t.db, { ...base, mentions: { user_ids: [member.id, unknownId()] } }),
      'mentions.user_ids',
    )
    await expectInvalidAndNothingWritten(
      () => createMessage(t.db, { ...base, mentions: { user_ids: ['nope'] } }),
      'mentions.user_ids',
    )
    await expectInvalidAndNothingWritten(
      () =>
        createMessage(t.db, {
          ...base,
          mentions: { user_ids: Array.from({ length: 101 }, () => unknownId()) },
        }),
      'mentions.user_ids',
    )
    await expectInvalidAndNothingWritten(
      () => createMessage(t.db, { ...base, mentions: { everyone: 'yes' as unknown as boolean } }),
      'mentions.everyone',
    )
    await expectInvalidAndNothingWritten(
      () => createMessage(t.db, { ...base, mentions: 'everyone' as never }),
      'mentions',
    )
    // a role in a DM (no guild) is no role of "this guild"
    const dm = await makeDm(t.db, owner.id, member.id)
    await expectInvalidAndNothingWritten(
      () =>
        createMessage(t.db, {
          channel_id: dm.id,
          author_id: owner.id,
          content: 'x',
          mentions: { role_ids: [foreignRole.id] },
        }),
      'mentions.role_ids',
    )
    // a bad reply_to with valid mentions is still named as reply_to
    await expectInvalidAndNothingWritten(
      () =>
        createMessage(t.db, {
          ...base,
          reply_to: unknownId(),
          mentions: { user_ids: [member.id] },
        }),
      'reply_to',
    )
    await expect(listMessageMentions(t.db, ['x'])).rejects.toBeInstanceOf(InvalidInputError)
  })
})

describe('markChannelRead and listChannelReadStates (guild)', () => {
  it('counts unread messages of others, and mentions of me, my roles and @everyone', async () => {
    const { owner, member, guild, channel } = await guildWorld()
    const role = await makeRole(t.db, guild.id)
    const otherRole = await makeRole(t.db, guild.id)
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: guild.id, user_id: member.id, role_id: role.id })
      .execute()
    const post = (content: string, mentions?: Parameters<typeof createMessage>[1]['mentions']) =>
      createMessage(t.db, { channel_id: channel.id, author_id: owner.id, content, mentions })

    expect(await stateOf(member.id, guild.id, channel.id)).toEqual({
      channel_id: channel.id,
      last_message_id: null,
      last_read_message_id: null,
      unread_count: 0,
      mention_count: 0,
      muted: false,
      notification_level: 'all',
    })
    await post('plain')
    await post('me', { user_ids: [member.id] })
    await post('my role', { role_ids: [role.id] })
    await post('not my role', { role_ids: [otherRole.id] })
    await post('everyone', { everyone: true })
    await post('default role', { role_ids: [guild.defaultRole.id] })
    const all = await post('me twice over', {
      user_ids: [member.id],
      role_ids: [role.id],
      everyone: true,
    })
    // my own message mentioning me is neither unread nor a mention
    await createMessage(t.db, {
      channel_id: channel.id,
      author_id: member.id,
      content: 'mine',
      mentions: { user_ids: [member.id], everyone: true },
    })
    const s = await stateOf(member.id, guild.id, channel.id)
    expect(s).toMatchObject({ unread_count: 7, mention_count: 5, last_read_message_id: null })
    // the owner's own messages are not unread for them; the member's one is
    expect(await stateOf(owner.id, guild.id, channel.id)).toMatchObject({
      unread_count: 1,
      mention_count: 1, // @everyone in the member's message
    })

    await markChannelRead(t.db, { channel_id: channel.id, user_id: member.id, message_id: all.id })
    expect(await stateOf(member.id, guild.id, channel.id)).toMatchObject({
      unread_count: 0,
      mention_count: 0,
      last_read_message_id: all.id,
    })
    const next = await post('after', { user_ids: [member.id] })
    expect(await stateOf(member.id, guild.id, channel.id)).toMatchObject({
      last_message_id: next.id,
      unread_count: 1,
      mention_count: 1,
    })
  })

  it('never moves a marker backwards; a soft delete or purge never makes a read channel unread', async () => {
    const { owner, member, guild, channel } = await guildWorld()
    const msgs = []
    for (let i = 0; i < 5; i++) {
      msgs.push(
        await createMessage(t.db, {
          channel_id: channel.id,
          author_id: owner.id,
          content: `m${i}`,
        }),
      )
    }
    const [m0, , m2, , m4] = msgs as [
      (typeof msgs)[0],
      unknown,
      (typeof msgs)[0],
      unknown,
      (typeof msgs)[0],
    ]
    await markChannelRead(t.db, { channel_id: channel.id, user_id: member.id, message_id: m4.id })
    await markChannelRead(t.db, { channel_id: channel.id, user_id: member.id, message_id: m2.id })
    expect(await stateOf(member.id, guild.id, channel.id)).toMatchObject({
      last_read_message_id: m4.id,
      unread_count: 0,
    })
    // soft-delete the marked message, then purge it
    expect(await deleteMessage(t.db, m4.id)).toBe(true)
    expect(await stateOf(member.id, guild.id, channel.id)).toMatchObject({ unread_count: 0 })
    await t.db
      .updateTable('messages')
      .set({ deleted_at: new Date(Date.now() - 60_000) })
      .where('id', '=', m4.id)
      .execute()
    expect(await purgeDeletedMessages(t.db, { older_than: new Date() })).toBeGreaterThanOrEqual(1)
    const s = await stateOf(member.id, guild.id, channel.id)
    expect(s).toMatchObject({ unread_count: 0, last_read_message_id: m4.id })
    expect(s?.last_message_id).toBe((msgs[3] as { id: string }).id)
    // a soft-deleted message is a valid marker; an older one does not move it
    await deleteMessage(t.db, m0.id)
    await markChannelRead(t.db, { channel_id: channel.id, user_id: member.id, message_id: m0.id })
    expect((await stateOf(member.id, guild.id, channel.id))?.last_read_message_id).toBe(m4.id)
  })

  it('lists only the channels the user can see, by position, and none of another guild', async () => {
    const { owner, member, guild, channel } = await guildWorld()
    const hidden = await makeChannel(t.db, guild.id, { is_private: true, position: 0 })
    const voice = await makeChannel(t.db, guild.id, { type: 'voice', position: 2 })
    const mine = await makeChannel(t.db, guild.id, { is_private: true, position: 3 })
    await t.db
      .insertInto('channel_members')
      .values({ channel_id: mine.id, guild_id: guild.id, user_id: member.id })
      .execute()
    await createMessage(t.db, { channel_id: hidden.id, author_id: owner.id, content: 'secret' })
    const list = await listChannelReadStates(t.db, { user_id: member.id, guild_id: guild.id })
    expect(list.map((s) => s.channel_id)).toEqual([channel.id, voice.id, mine.id])
    const ownerList = await listChannelReadStates(t.db, { user_id: owner.id, guild_id: guild.id })
    expect(ownerList.map((s) => s.channel_id)).toEqual([hidden.id, channel.id, voice.id, mine.id])
    // without VIEW_CHANNEL on @everyone, a plain member sees nothing
    await t.db
      .updateTable('roles')
      .set({ permissions: Permissions.SEND_MESSAGES })
      .where('id', '=', guild.defaultRole.id)
      .execute()
    expect(await listChannelReadStates(t.db, { user_id: member.id, guild_id: guild.id })).toEqual(
      [],
    )
    const stranger = await makeUser(t.db)
    expect(await listChannelReadStates(t.db, { user_id: stranger.id, guild_id: guild.id })).toEqual(
      [],
    )
  })

  it('follows channel permission overwrites (the shared access rule)', async () => {
    const { owner, member, guild, channel } = await guildWorld()
    const hidden = await makeChannel(t.db, guild.id, { position: 2 })
    const shown = await makeChannel(t.db, guild.id, { position: 3 })
    // @everyone may not view `hidden`; on `shown` it may not either, but the member may
    await setChannelOverwrite(t.db, {
      channel_id: hidden.id,
      role_id: guild.defaultRole.id,
      allow: 0n,
      deny: Permissions.VIEW_CHANNEL,
    })
    await setChannelOverwrite(t.db, {
      channel_id: shown.id,
      role_id: guild.defaultRole.id,
      allow: 0n,
      deny: Permissions.VIEW_CHANNEL,
    })
    await setChannelOverwrite(t.db, {
      channel_id: shown.id,
      user_id: member.id,
      allow: Permissions.VIEW_CHANNEL,
      deny: 0n,
    })
    await createMessage(t.db, {
      channel_id: hidden.id,
      author_id: owner.id,
      content: 'secret',
      mentions: { everyone: true },
    })
    const list = await listChannelReadStates(t.db, { user_id: member.id, guild_id: guild.id })
    expect(list.map((s) => s.channel_id)).toEqual([channel.id, shown.id])
    const visible = await listVisibleChannels(t.db, { guild_id: guild.id, user_id: member.id })
    expect(list.map((s) => s.channel_id)).toEqual(visible.map((c) => c.id))
    // the owner still sees everything, with the @everyone mention counted
    const ownerList = await listChannelReadStates(t.db, { user_id: owner.id, guild_id: guild.id })
    expect(ownerList.map((s) => s.channel_id)).toEqual([channel.id, hidden.id, shown.id])
  })

  it(`caps both counts at UNREAD_COUNT_CAP (${UNREAD_COUNT_CAP}), exact below it`, async () => {
    const { owner, member, guild, channel } = await guildWorld()
    const insert = (n: number, everyone: boolean) =>
      sql`with m as (
        insert into messages (channel_id, author_id, content)
        select ${channel.id}::uuid, ${owner.id}::uuid, 'bulk ' || g from generate_series(1, ${n}::int) g
        returning id, channel_id, seq, author_id
      ) insert into message_mentions (message_id, channel_id, seq, author_id, everyone)
        select id, channel_id, seq, author_id, true from m where ${everyone}`.execute(t.db)
    await insert(UNREAD_COUNT_CAP - 1, true)
    expect(await stateOf(member.id, guild.id, channel.id)).toMatchObject({
      unread_count: UNREAD_COUNT_CAP - 1,
      mention_count: UNREAD_COUNT_CAP - 1,
    })
    await insert(1, true)
    expect(await stateOf(member.id, guild.id, channel.id)).toMatchObject({
      unread_count: UNREAD_COUNT_CAP,
      mention_count: UNREAD_COUNT_CAP,
    })
    await insert(500, true)
    expect(await stateOf(member.id, guild.id, channel.id)).toMatchObject({
      unread_count: UNREAD_COUNT_CAP,
      mention_count: UNREAD_COUNT_CAP,
    })
  })

  it('refuses bad input and a message of another channel; a DM only for participants', async () => {
    const { owner, member, guild, channel } = await guildWorld()
    const other = await makeChannel(t.db, guild.id)
    const elsewhere = await makeMessage(t.db, other.id, owner.id)
    const here = await makeMessage(t.db, channel.id, owner.id)
    const read = { channel_id: channel.id, user_id: member.id, message_id: here.id }
    await expectInvalidAndNothingWritten(
      () => markChannelRead(t.db, { ...read, message_id: elsewhere.id }),
      'message_id',
    )
    await expectInvalidAndNothingWritten(() => markChannelRead(t.db, { ...read, message_id: 'x' }))
    await expectInvalidAndNothingWritten(() => markChannelRead(t.db, { ...read, channel_id: 'x' }))
    await expectInvalidAndNothingWritten(() => markChannelRead(t.db, null as never))
    await expectInvalidAndNothingWritten(() =>
      listChannelReadStates(t.db, { user_id: member.id, guild_id: 'x' }),
    )
    await expectInvalidAndNothingWritten(() => listChannelReadStates(t.db, { user_id: 'x' }))
    const dm = await makeDm(t.db, owner.id, member.id)
    const dmMessage = await makeMessage(t.db, dm.id, owner.id)
    const stranger = await makeUser(t.db)
    const before = await countRows(t.db)
    await expect(markChannelRead(t.db, { ...read, channel_id: unknownId() })).rejects.toMatchObject(
      { entity: 'channel' },
    )
    await expect(markChannelRead(t.db, { ...read, user_id: unknownId() })).rejects.toBeInstanceOf(
      ForeignKeyViolationError,
    )
    await expect(
      markChannelRead(t.db, { channel_id: dm.id, user_id: stranger.id, message_id: dmMessage.id }),
    ).rejects.toBeInstanceOf(NotFoundError)
    // markDmRead refuses a guild channel
    await expect(markDmRead(t.db, read)).rejects.toMatchObject({ entity: 'dm_participant' })
    expect(await countRows(t.db)).toEqual(before)
  })
})

describe('read state of DMs', () => {
  it('lists the DMs with markChannelRead and markDmRead meaning the same; listDmChannels agrees', async () => {
    const me = await makeUser(t.db)
    const a = await makeUser(t.db)
    const b = await makeUser(t.db)
    const dmA = await makeDm(t.db, me.id, a.id)
    const dmB = await makeDm(t.db, me.id, b.id)
    const a1 = await createMessage(t.db, { channel_id: dmA.id, author_id: a.id, content: 'a1' })
    await createMessage(t.db, {
      channel_id: dmA.id,
      author_id: a.id,
      content: 'a2',
      mentions: { user_ids: [me.id] },
    })
    const b1 = await createMessage(t.db, {
      channel_id: dmB.id,
      author_id: b.id,
      content: 'b1',
      mentions: { everyone: true },
    })
    const list = await listChannelReadStates(t.db, { user_id: me.id, guild_id: null })
    expect(list).toEqual([
      {
        channel_id: dmB.id,
        last_message_id: b1.id,
        last_read_message_id: null,
        unread_count: 1,
        mention_count: 1,
        muted: false,
        notification_level: 'all',
      },
      expect.objectContaining({ channel_id: dmA.id, unread_count: 2, mention_count: 1 }),
    ])
    expect(await listChannelReadStates(t.db, { user_id: me.id })).toEqual(list)
    await markDmRead(t.db, { channel_id: dmA.id, user_id: me.id, message_id: a1.id })
    await markChannelRead(t.db, { channel_id: dmB.id, user_id: me.id, message_id: b1.id })
    const after = await listChannelReadStates(t.db, { user_id: me.id })
    expect(after.map((s) => [s.unread_count, s.mention_count, s.last_read_message_id])).toEqual([
      [0, 0, b1.id],
      [1, 1, a1.id],
    ])
    const dms = await listDmChannels(t.db, me.id)
    expect(dms.map((d) => [d.id, d.unread_count])).toEqual([
      [dmB.id, 0],
      [dmA.id, 1],
    ])
    // the 0.1.0 column follows
    const rows = await t.db
      .selectFrom('dm_participants')
      .select(['channel_id', 'last_read_message_id'])
      .where('user_id', '=', me.id)
      .orderBy('channel_id')
      .execute()
    expect(rows).toEqual(
      [
        { channel_id: dmA.id, last_read_message_id: a1.id },
        { channel_id: dmB.id, last_read_message_id: b1.id },
      ].sort((x, y) => (x.channel_id < y.channel_id ? -1 : 1)),
    )
  })

  it(`listDmChannels' unread_count stops at UNREAD_COUNT_CAP`, async () => {
    const me = await makeUser(t.db)
    const them = await makeUser(t.db)
    const dm = await makeDm(t.db, me.id, them.id)
    await sql`insert into messages (channel_id, author_id, content)
      select ${dm.id}::uuid, ${them.id}::uuid, 'x' || g from generate_series(1, 250) g`.execute(
      t.db,
    )
    expect((await listDmChannels(t.db, me.id))[0]?.unread_count).toBe(UNREAD_COUNT_CAP)
  })

  // issue 11 item 6: a purge racing markDmRead reset the marker to NULL (unread 0 → N).
  it.each([
    ['the purge commits after markDmRead', 'purge-open'],
    ['markDmRead commits after the purge', 'mark-open'],
  ])('a purge racing markDmRead never resets the marker (%s)', async (_name, order) => {
    const me = await makeUser(t.db)
    const them = await makeUser(t.db)
    const dm = await makeDm(t.db, me.id, them.id)
    for (let i = 0; i < 4; i++) await makeMessage(t.db, dm.id, them.id)
    const last = await makeMessage(t.db, dm.id, them.id, {
      deleted_at: new Date(Date.now() - 86_400_000),
    })
    const cutoff = new Date()
    expect(await listDmChannels(t.db, me.id)).toMatchObject([{ unread_count: 4 }])
    const read = { channel_id: dm.id, user_id: me.id, message_id: last.id }
    if (order === 'purge-open') {
      // The purge has deleted the marked message but not committed when the marker moves.
      await t.db.transaction().execute(async (trx) => {
        expect(await purgeDeletedMessages(trx, { older_than: cutoff })).toBeGreaterThanOrEqual(1)
        await markDmRead(t.db, read) // must not wait for the purge
      })
    } else {
      // The marker has moved but not committed when the purge runs and commits.
      await t.db.transaction().execute(async (trx) => {
        await markDmRead(trx, read)
        expect(await purgeDeletedMessages(t.db, { older_than: cutoff })).toBeGreaterThanOrEqual(1)
      })
    }
    expect(await listDmChannels(t.db, me.id)).toMatchObject([{ unread_count: 0 }])
    expect(await stateOf(me.id, null, dm.id)).toMatchObject({
      unread_count: 0,
      last_read_message_id: last.id,
    })
    const marker = await t.db
      .selectFrom('dm_participants')
      .select('last_read_message_id')
      .where('channel_id', '=', dm.id)
      .where('user_id', '=', me.id)
      .executeTakeFirstOrThrow()
    expect(marker.last_read_message_id).toBe(last.id)
    // and a new message counts again
    await makeMessage(t.db, dm.id, them.id)
    expect(await listDmChannels(t.db, me.id)).toMatchObject([{ unread_count: 1 }])
  })

  it('concurrent markers end at the newest message named, whatever the commit order (30 rounds)', async () => {
    const me = await makeUser(t.db)
    const them = await makeUser(t.db)
    let blockedSeen = 0
    for (let round = 0; round < 30; round++) {
      const dm = await makeDm(t.db, me.id, them.id).catch(async () => {
        // one DM per pair: a fresh partner each round
        return makeDm(t.db, me.id, (await makeUser(t.db)).id)
      })
      const msgs = []
      for (let i = 0; i < 8; i++) msgs.push(await makeMessage(t.db, dm.id, them.id))
      const newest = msgs[6] as { id: string }
      const older = [msgs[round % 5], msgs[5]] as { id: string }[]
      // The newest marker's transaction holds the marker row while the older
      // calls queue behind it; it commits first, then they run and must not win.
      const waiting = await t.db.transaction().execute(async (trx) => {
        await markChannelRead(trx, { channel_id: dm.id, user_id: me.id, message_id: newest.id })
        const calls = older.map((m) =>
          markChannelRead(t.db, { channel_id: dm.id, user_id: me.id, message_id: m.id }),
        )
        for (;;) {
          const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock'`.execute(t.db)
          if ((rows[0]?.n ?? 0) >= older.length) break
          await new Promise((resolve) => setTimeout(resolve, 2))
        }
        blockedSeen++
        return { calls }
      })
      await Promise.all(waiting.calls)
      expect((await stateOf(me.id, null, dm.id))?.last_read_message_id).toBe(newest.id)
      // and the other way round: the older ones first, the newest last
      await markChannelRead(t.db, { channel_id: dm.id, user_id: me.id, message_id: msgs[7]!.id })
      await markChannelRead(t.db, { channel_id: dm.id, user_id: me.id, message_id: msgs[1]!.id })
      expect((await stateOf(me.id, null, dm.id))?.last_read_message_id).toBe(msgs[7]!.id)
    }
    expect(blockedSeen).toBe(30)
  })
})
