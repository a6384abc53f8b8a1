import { describe, expect, it } from 'vitest'
import {
  addChannelMember,
  ConflictError,
  canAccessChannel,
  createChannel,
  deleteChannel,
  ForeignKeyViolationError,
  findChannelById,
  InvalidInputError,
  isChannelMember,
  listChannelMembers,
  listGuildChannels,
  listVisibleChannels,
  NotFoundError,
  Permissions,
  removeChannelMember,
  updateChannel,
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
import { BAD_IDS } from '../support/hostile-inputs.ts'

const t = useTestDatabase()

const BAD_NAMES = ['', 'a\u0000b', 'x\uD800', 'x'.repeat(101), 5]

async function guildWithOwner() {
  const owner = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  await t.db
    .updateTable('roles')
    .set({ permissions: Permissions.VIEW_CHANNEL | Permissions.SEND_MESSAGES })
    .where('id', '=', guild.defaultRole.id)
    .execute()
  return { owner, guild }
}

describe('createChannel', () => {
  it('creates text and voice channels (enum round trip) with defaults', async () => {
    const { guild } = await guildWithOwner()
    const text = await createChannel(t.db, { guild_id: guild.id, name: 'general', type: 'text' })
    expect(text).toMatchObject({
      guild_id: guild.id,
      name: 'general',
      type: 'text',
      topic: null,
      position: 0,
      is_private: false,
    })
    const voice = await createChannel(t.db, {
      guild_id: guild.id,
      name: 'lounge',
      type: 'voice',
      topic: 't'.repeat(1024),
      position: 2 ** 31 - 1,
      is_private: true,
    })
    expect(voice).toMatchObject({ type: 'voice', position: 2 ** 31 - 1, is_private: true })
    expect((await findChannelById(t.db, voice.id))?.type).toBe('voice')
    expect(Object.keys(text).sort()).toEqual([
      'created_at',
      'guild_id',
      'id',
      'is_private',
      'name',
      'parent_id',
      'position',
      'rate_limit_per_user',
      'require_tag',
      'topic',
      'type',
      'updated_at',
    ])
  })

  it('refuses bad input (dm type, bad enum, names, topic, position, boolean) and writes nothing', async () => {
    const { guild } = await guildWithOwner()
    const before = await countRows(t.db)
    const base = { guild_id: guild.id, name: 'ok', type: 'text' as const }
    const bad: unknown[] = [
      { ...base, type: 'dm' },
      { ...base, type: 'TEXT' },
      { ...base, type: 'stage' },
      { ...base, type: undefined },
      ...BAD_NAMES.map((name) => ({ ...base, name })),
      { ...base, topic: 't'.repeat(1025) },
      { ...base, topic: 'a\u0000' },
      { ...base, topic: '\uDC00' },
      { ...base, position: -1 },
      { ...base, position: 2 ** 31 },
      { ...base, position: 0.5 },
      { ...base, is_private: 'yes' },
      { ...base, is_private: 1 },
      ...BAD_IDS.map((guild_id) => ({ ...base, guild_id })),
      null,
    ]
    for (const input of bad) {
      await expect(createChannel(t.db, input as never)).rejects.toBeInstanceOf(InvalidInputError)
    }
    await expect(createChannel(t.db, { ...base, guild_id: unknownId() })).rejects.toBeInstanceOf(
      ForeignKeyViolationError,
    )
    expect(await countRows(t.db)).toEqual(before)
  })
})

describe('findChannelById / listGuildChannels', () => {
  it('finds and lists by position then id', async () => {
    const { guild } = await guildWithOwner()
    const c2 = await makeChannel(t.db, guild.id, { position: 2 })
    const c0a = await makeChannel(t.db, guild.id, { position: 0 })
    const c0b = await makeChannel(t.db, guild.id, { position: 0, is_private: true })
    expect((await listGuildChannels(t.db, guild.id)).map((c) => c.id)).toEqual([
      ...[c0a.id, c0b.id].sort(),
      c2.id,
    ])
    expect((await findChannelById(t.db, c2.id))?.id).toBe(c2.id)
    expect(await findChannelById(t.db, unknownId())).toBeUndefined()
    expect(await listGuildChannels(t.db, unknownId())).toEqual([])
    await expect(findChannelById(t.db, 'x')).rejects.toBeInstanceOf(InvalidInputError)
    await expect(listGuildChannels(t.db, 'x')).rejects.toBeInstanceOf(InvalidInputError)
  })
})

describe('updateChannel', () => {
  it('updates fields, clears the topic, leaves DM channels alone', async () => {
    const { owner, guild } = await guildWithOwner()
    const ch = await makeChannel(t.db, guild.id, { topic: 'old' })
    const updated = await updateChannel(t.db, ch.id, {
      name: 'renamed',
      topic: null,
      position: 4,
      is_private: true,
    })
    expect(updated).toMatchObject({ name: 'renamed', topic: null, position: 4, is_private: true })
    expect((await updateChannel(t.db, ch.id, {}))?.name).toBe('renamed')
    expect(await updateChannel(t.db, unknownId(), { name: 'x' })).toBeUndefined()
    const other = await makeUser(t.db)
    const dm = await makeDm(t.db, owner.id, other.id)
    expect(await updateChannel(t.db, dm.id, { name: 'x' })).toBeUndefined()
    expect((await findChannelById(t.db, dm.id))?.name).toBeNull()
  })

  it('refuses bad input and writes nothing', async () => {
    const { guild } = await guildWithOwner()
    const ch = await makeChannel(t.db, guild.id, { name: 'keep' })
    const bad: unknown[] = [
      ...BAD_NAMES.map((name) => ({ name })),
      { topic: 'x'.repeat(1025) },
      { position: -5 },
      { is_private: 'true' },
    ]
    for (const patch of bad) {
      await expect(updateChannel(t.db, ch.id, patch as never)).rejects.toBeInstanceOf(
        InvalidInputError,
      )
    }
    await expect(updateChannel(t.db, 'bad', { name: 'x' })).rejects.toBeInstanceOf(
      InvalidInputError,
    )
    expect(await findChannelById(t.db, ch.id)).toEqual(ch)
  })
})

describe('deleteChannel', () => {
  it('cascades to messages and channel members; DM channels are not deleted here', async () => {
    const { owner, guild } = await guildWithOwner()
    const ch = await makeChannel(t.db, guild.id, { is_private: true })
    await t.db
      .insertInto('channel_members')
      .values({ channel_id: ch.id, guild_id: guild.id, user_id: owner.id })
      .execute()
    await makeMessage(t.db, ch.id, owner.id)
    await makeMessage(t.db, ch.id, owner.id)
    const before = await countRows(t.db)
    expect(await deleteChannel(t.db, ch.id)).toBe(true)
    expect(await countRows(t.db)).toEqual({
      ...before,
      channels: before.channels! - 1,
      channel_members: before.channel_members! - 1,
      messages: before.messages! - 2,
      // The channel_delete entry.
      audit_log: before.audit_log! + 1,
      // channel_deleted (the change feed, migration 0019); its messages go with it unannounced.
      guildstore_events: before.guildstore_events! + 1,
    })
    expect(await deleteChannel(t.db, ch.id)).toBe(false)
    const other = await makeUser(t.db)
    const dm = await makeDm(t.db, owner.id, other.id)
    expect(await deleteChannel(t.db, dm.id)).toBe(false)
    expect(await findChannelById(t.db, dm.id)).toBeDefined()
    await expect(deleteChannel(t.db, 'x')).rejects.toBeInstanceOf(InvalidInputError)
  })
})

describe('channel members', () => {
  it('adds idempotently, lists, checks and removes', async () => {
    const { owner, guild } = await guildWithOwner()
    const user = await makeUser(t.db)
    await makeMember(t.db, guild.id, user.id)
    const ch = await makeChannel(t.db, guild.id, { is_private: true })
    const key = { channel_id: ch.id, user_id: user.id }
    const m1 = await addChannelMember(t.db, key)
    expect(m1).toMatchObject(key)
    expect(m1.added_at).toBeInstanceOf(Date)
    expect(await addChannelMember(t.db, key)).toEqual(m1)
    await addChannelMember(t.db, { channel_id: ch.id, user_id: owner.id })
    expect((await listChannelMembers(t.db, ch.id)).map((m) => m.user_id).sort()).toEqual(
      [owner.id, user.id].sort(),
    )
    expect(await isChannelMember(t.db, key)).toBe(true)
    expect(await removeChannelMember(t.db, key)).toBe(true)
    expect(await removeChannelMember(t.db, key)).toBe(false)
    expect(await isChannelMember(t.db, key)).toBe(false)
  })

  it('a non-member of the guild → ConflictError; unknown or DM channel → NotFoundError; nothing written', async () => {
    const { owner, guild } = await guildWithOwner()
    const stranger = await makeUser(t.db)
    const ch = await makeChannel(t.db, guild.id, { is_private: true })
    const dm = await makeDm(t.db, owner.id, stranger.id)
    const before = await countRows(t.db)
    const err = await addChannelMember(t.db, { channel_id: ch.id, user_id: stranger.id }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as ConflictError).reason).toBe('not_member')
    await expect(
      addChannelMember(t.db, { channel_id: unknownId(), user_id: owner.id }),
    ).rejects.toBeInstanceOf(NotFoundError)
    await expect(
      addChannelMember(t.db, { channel_id: dm.id, user_id: owner.id }),
    ).rejects.toBeInstanceOf(NotFoundError)
    for (const id of BAD_IDS) {
      await expect(
        addChannelMember(t.db, { channel_id: ch.id, user_id: id as string }),
      ).rejects.toBeInstanceOf(InvalidInputError)
      await expect(
        removeChannelMember(t.db, { channel_id: id as string, user_id: owner.id }),
      ).rejects.toBeInstanceOf(InvalidInputError)
      await expect(
        isChannelMember(t.db, { channel_id: id as string, user_id: owner.id }),
      ).rejects.toBeInstanceOf(InvalidInputError)
      await expect(listChannelMembers(t.db, id as string)).rejects.toBeInstanceOf(InvalidInputError)
    }
    expect(await countRows(t.db)).toEqual(before)
  })
})

describe('canAccessChannel / listVisibleChannels', () => {
  it('public, private, admin, owner, strangers, DMs and VIEW_CHANNEL', async () => {
    const { owner, guild } = await guildWithOwner()
    const member = await makeUser(t.db)
    const insider = await makeUser(t.db)
    const admin = await makeUser(t.db)
    const stranger = await makeUser(t.db)
    for (const u of [member, insider, admin]) await makeMember(t.db, guild.id, u.id)
    const adminRole = await makeRole(t.db, guild.id, { permissions: Permissions.ADMINISTRATOR })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: guild.id, user_id: admin.id, role_id: adminRole.id })
      .execute()
    const pub = await makeChannel(t.db, guild.id, { position: 0 })
    const priv = await makeChannel(t.db, guild.id, { position: 1, is_private: true })
    await t.db
      .insertInto('channel_members')
      .values({ channel_id: priv.id, guild_id: guild.id, user_id: insider.id })
      .execute()
    // A channel membership of a non-member of the guild cannot exist (migration 0002).
    await expect(
      t.db
        .insertInto('channel_members')
        .values({ channel_id: priv.id, guild_id: guild.id, user_id: stranger.id })
        .execute(),
    ).rejects.toMatchObject({ code: '23503' })
    const dm = await makeDm(t.db, member.id, stranger.id)

    const can = (user_id: string, channel_id: string) =>
      canAccessChannel(t.db, { user_id, channel_id })
    const visible = async (user_id: string) =>
      (await listVisibleChannels(t.db, { guild_id: guild.id, user_id })).map((c) => c.id)

    expect(await can(member.id, pub.id)).toBe(true)
    expect(await can(member.id, priv.id)).toBe(false)
    expect(await can(insider.id, priv.id)).toBe(true)
    expect(await can(admin.id, priv.id)).toBe(true)
    expect(await can(owner.id, priv.id)).toBe(true)
    expect(await can(stranger.id, pub.id)).toBe(false)
    expect(await can(stranger.id, priv.id)).toBe(false)
    expect(await can(member.id, dm.id)).toBe(true)
    expect(await can(stranger.id, dm.id)).toBe(true)
    expect(await can(owner.id, dm.id)).toBe(false)
    expect(await can(member.id, unknownId())).toBe(false)

    expect(await visible(member.id)).toEqual([pub.id])
    expect(await visible(insider.id)).toEqual([pub.id, priv.id])
    expect(await visible(admin.id)).toEqual([pub.id, priv.id])
    expect(await visible(owner.id)).toEqual([pub.id, priv.id])
    expect(await visible(stranger.id)).toEqual([])

    // Without VIEW_CHANNEL on the default role, plain members see nothing; a role can give it back.
    await t.db
      .updateTable('roles')
      .set({ permissions: Permissions.SEND_MESSAGES })
      .where('id', '=', guild.defaultRole.id)
      .execute()
    expect(await can(member.id, pub.id)).toBe(false)
    expect(await visible(insider.id)).toEqual([])
    expect(await visible(owner.id)).toEqual([pub.id, priv.id])
    const viewer = await makeRole(t.db, guild.id, { permissions: Permissions.VIEW_CHANNEL })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: guild.id, user_id: insider.id, role_id: viewer.id })
      .execute()
    expect(await visible(insider.id)).toEqual([pub.id, priv.id])
  })

  it('refuses bad ids', async () => {
    const { owner, guild } = await guildWithOwner()
    for (const id of BAD_IDS) {
      await expect(
        canAccessChannel(t.db, { channel_id: id as string, user_id: owner.id }),
      ).rejects.toBeInstanceOf(InvalidInputError)
      await expect(
        listVisibleChannels(t.db, { guild_id: guild.id, user_id: id as string }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
  })
})
