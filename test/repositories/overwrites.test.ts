import { describe, expect, it } from 'vitest'
import {
  canAccessChannel,
  computePermissions,
  deleteChannelOverwrite,
  ForeignKeyViolationError,
  InvalidInputError,
  listAuditLog,
  listChannelOverwrites,
  listVisibleChannels,
  NotFoundError,
  PermissionDeniedError,
  Permissions,
  removeGuildMember,
  setChannelOverwrite,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeDm,
  makeGuild,
  makeMember,
  makeRole,
  makeUser,
  unknownId,
} from '../support/factories.ts'

const t = useTestDatabase()
const { VIEW_CHANNEL, SEND_MESSAGES, MANAGE_ROLES, READ_MESSAGE_HISTORY, ADMINISTRATOR } =
  Permissions
const BASE = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY

async function setup() {
  const owner = await makeUser(t.db)
  const member = await makeUser(t.db)
  const mod = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  await t.db
    .updateTable('roles')
    .set({ permissions: BASE })
    .where('id', '=', guild.defaultRole.id)
    .execute()
  await makeMember(t.db, guild.id, member.id)
  await makeMember(t.db, guild.id, mod.id)
  const mods = await makeRole(t.db, guild.id, { permissions: 0n, position: 5, name: 'mods' })
  await t.db
    .insertInto('member_roles')
    .values({ guild_id: guild.id, user_id: mod.id, role_id: mods.id })
    .execute()
  const channel = await makeChannel(t.db, guild.id)
  return { owner, member, mod, guild, mods, channel, everyone: guild.defaultRole }
}

const perms = (guild_id: string, user_id: string, channel_id: string) =>
  computePermissions(t.db, { guild_id, user_id, channel_id })

describe('channel overwrites (Discord order)', () => {
  it('deny @everyone VIEW + allow @mods VIEW: mods see it, others see nothing', async () => {
    const s = await setup()
    await setChannelOverwrite(t.db, {
      channel_id: s.channel.id,
      role_id: s.everyone.id,
      allow: 0n,
      deny: VIEW_CHANNEL,
    })
    await setChannelOverwrite(t.db, {
      channel_id: s.channel.id,
      role_id: s.mods.id,
      allow: VIEW_CHANNEL,
      deny: 0n,
    })
    expect(await perms(s.guild.id, s.mod.id, s.channel.id)).toBe(BASE)
    expect(await perms(s.guild.id, s.member.id, s.channel.id)).toBe(0n)
    expect(await canAccessChannel(t.db, { channel_id: s.channel.id, user_id: s.mod.id })).toBe(true)
    expect(await canAccessChannel(t.db, { channel_id: s.channel.id, user_id: s.member.id })).toBe(
      false,
    )
    const visible = await listVisibleChannels(t.db, { guild_id: s.guild.id, user_id: s.member.id })
    expect(visible.map((c) => c.id)).not.toContain(s.channel.id)
    // The owner ignores overwrites.
    expect(await perms(s.guild.id, s.owner.id, s.channel.id)).toBe(Permissions.ALL)
  })

  it('member overwrite comes last; role allows beat role denies; VIEW denied gives 0', async () => {
    const s = await setup()
    const other = await makeRole(t.db, s.guild.id, { permissions: 0n, position: 2 })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: s.guild.id, user_id: s.mod.id, role_id: other.id })
      .execute()
    // One role denies SEND, another allows it: the allow wins (roles together).
    await setChannelOverwrite(t.db, {
      channel_id: s.channel.id,
      role_id: other.id,
      allow: 0n,
      deny: SEND_MESSAGES,
    })
    await setChannelOverwrite(t.db, {
      channel_id: s.channel.id,
      role_id: s.mods.id,
      allow: SEND_MESSAGES,
      deny: 0n,
    })
    expect(await perms(s.guild.id, s.mod.id, s.channel.id)).toBe(BASE)
    // The member's own deny beats every role allow.
    await setChannelOverwrite(t.db, {
      channel_id: s.channel.id,
      user_id: s.mod.id,
      allow: 0n,
      deny: SEND_MESSAGES,
    })
    expect(await perms(s.guild.id, s.mod.id, s.channel.id)).toBe(BASE & ~SEND_MESSAGES)
    // Denying VIEW leaves nothing at all.
    await setChannelOverwrite(t.db, {
      channel_id: s.channel.id,
      user_id: s.mod.id,
      allow: 0n,
      deny: VIEW_CHANNEL,
    })
    expect(await perms(s.guild.id, s.mod.id, s.channel.id)).toBe(0n)
    // An administrator ignores overwrites.
    await t.db
      .updateTable('roles')
      .set({ permissions: ADMINISTRATOR })
      .where('id', '=', other.id)
      .execute()
    expect(await perms(s.guild.id, s.mod.id, s.channel.id)).toBe(Permissions.ALL)
  })

  it('a member overwrite goes with the membership; replacing keeps one row', async () => {
    const s = await setup()
    const key = { channel_id: s.channel.id, user_id: s.member.id }
    const first = await setChannelOverwrite(t.db, { ...key, allow: MANAGE_ROLES, deny: 0n })
    const second = await setChannelOverwrite(t.db, { ...key, allow: 0n, deny: SEND_MESSAGES })
    expect(second.id).toBe(first.id)
    expect(second.allow).toBe(0n)
    expect(second.deny).toBe(SEND_MESSAGES)
    expect(await listChannelOverwrites(t.db, s.channel.id)).toHaveLength(1)
    await removeGuildMember(t.db, { guild_id: s.guild.id, user_id: s.member.id })
    expect(await listChannelOverwrites(t.db, s.channel.id)).toEqual([])
    expect(await deleteChannelOverwrite(t.db, key)).toBe(false)
  })

  it('refuses bad input, roles of other guilds, non-members, DM channels; nothing written', async () => {
    const s = await setup()
    const elsewhere = await makeGuild(t.db, s.owner.id)
    const stranger = await makeUser(t.db)
    const dm = await makeDm(t.db, s.owner.id, s.member.id)
    const before = await countRows(t.db, ['channel_overwrites', 'audit_log'])
    const base = { channel_id: s.channel.id, allow: 0n, deny: 0n }
    for (const input of [
      { ...base },
      { ...base, role_id: s.mods.id, user_id: s.member.id },
      { ...base, role_id: 'nope' },
      { ...base, role_id: s.mods.id, allow: 1 as unknown as bigint },
      { ...base, role_id: s.mods.id, allow: 1n << 64n },
      { ...base, role_id: s.mods.id, allow: VIEW_CHANNEL, deny: VIEW_CHANNEL },
    ]) {
      await expect(setChannelOverwrite(t.db, input)).rejects.toThrow(InvalidInputError)
    }
    await expect(
      setChannelOverwrite(t.db, { ...base, role_id: s.mods.id }, { actor_id: 'x' }),
    ).rejects.toThrow(InvalidInputError)
    await expect(
      setChannelOverwrite(t.db, { ...base, role_id: elsewhere.defaultRole.id }),
    ).rejects.toThrow(ForeignKeyViolationError)
    await expect(setChannelOverwrite(t.db, { ...base, user_id: stranger.id })).rejects.toThrow(
      ForeignKeyViolationError,
    )
    await expect(
      setChannelOverwrite(t.db, { ...base, channel_id: dm.id, user_id: s.member.id }),
    ).rejects.toThrow(NotFoundError)
    await expect(
      setChannelOverwrite(t.db, { ...base, channel_id: unknownId(), user_id: s.member.id }),
    ).rejects.toThrow(NotFoundError)
    expect(await countRows(t.db, ['channel_overwrites', 'audit_log'])).toEqual(before)
  })

  it('acting as: needs MANAGE_ROLES in the channel, grants only what one holds; audited', async () => {
    const s = await setup()
    const key = { channel_id: s.channel.id, user_id: s.member.id }
    const refused = await setChannelOverwrite(
      t.db,
      { ...key, allow: 0n, deny: SEND_MESSAGES },
      { actor_id: s.mod.id },
    ).catch((e) => e)
    expect(refused).toBeInstanceOf(PermissionDeniedError)
    expect(refused.reason).toBe('missing_permission')
    expect(refused.permission).toBe(MANAGE_ROLES)
    // MANAGE_ROLES granted to the mods in this channel only.
    await setChannelOverwrite(t.db, {
      channel_id: s.channel.id,
      role_id: s.mods.id,
      allow: MANAGE_ROLES,
      deny: 0n,
    })
    const ungrantable = await setChannelOverwrite(
      t.db,
      { ...key, allow: Permissions.MANAGE_GUILD, deny: 0n },
      { actor_id: s.mod.id },
    ).catch((e) => e)
    expect(ungrantable).toBeInstanceOf(PermissionDeniedError)
    expect(ungrantable.permission).toBe(Permissions.MANAGE_GUILD)
    const row = await setChannelOverwrite(
      t.db,
      { ...key, allow: 0n, deny: SEND_MESSAGES },
      { actor_id: s.mod.id, reason: 'spam' },
    )
    expect(row.deny).toBe(SEND_MESSAGES)
    const [entry] = await listAuditLog(t.db, s.guild.id, { actor_id: s.mod.id })
    expect(entry).toMatchObject({
      action: 'overwrite_create',
      actor_id: s.mod.id,
      target_id: s.channel.id,
      reason: 'spam',
      changes: {
        user_id: { before: null, after: s.member.id },
        deny: { before: null, after: SEND_MESSAGES.toString() },
      },
    })
    expect(await deleteChannelOverwrite(t.db, key, { actor_id: s.mod.id })).toBe(true)
    const log = await listAuditLog(t.db, s.guild.id)
    expect(log.map((e) => e.action)).toEqual([
      'overwrite_delete',
      'overwrite_create',
      'overwrite_create',
    ])
    // A non-member actor.
    const stranger = await makeUser(t.db)
    const notMember = await deleteChannelOverwrite(t.db, key, { actor_id: stranger.id }).catch(
      (e) => e,
    )
    expect(notMember).toBeInstanceOf(PermissionDeniedError)
    expect(notMember.reason).toBe('not_member')
  })
})
