import { describe, expect, it } from 'vitest'
import {
  computePermissions,
  createDb,
  hasPermission,
  InvalidInputError,
  Permissions,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeGuild,
  makeMember,
  makeRole,
  makeUser,
  unknownId,
} from '../support/factories.ts'

const t = useTestDatabase()

const BASE = Permissions.VIEW_CHANNEL | Permissions.SEND_MESSAGES

async function setup() {
  const owner = await makeUser(t.db)
  const member = await makeUser(t.db)
  const stranger = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  await t.db
    .updateTable('roles')
    .set({ permissions: BASE })
    .where('id', '=', guild.defaultRole.id)
    .execute()
  await makeMember(t.db, guild.id, member.id)
  return { owner, member, stranger, guild }
}

async function assign(guild_id: string, user_id: string, role_id: string) {
  await t.db.insertInto('member_roles').values({ guild_id, user_id, role_id }).execute()
}

describe('computePermissions', () => {
  it('non-member: 0n; owner: ALL; plain member: the default role', async () => {
    const { owner, member, stranger, guild } = await setup()
    expect(await computePermissions(t.db, { guild_id: guild.id, user_id: stranger.id })).toBe(0n)
    expect(await computePermissions(t.db, { guild_id: unknownId(), user_id: owner.id })).toBe(0n)
    expect(await computePermissions(t.db, { guild_id: guild.id, user_id: owner.id })).toBe(
      Permissions.ALL,
    )
    expect(await computePermissions(t.db, { guild_id: guild.id, user_id: member.id })).toBe(BASE)
  })

  it('default OR every assigned role; bit 2^40 survives; roles of other members do not count', async () => {
    const { owner, member, guild } = await setup()
    const r1 = await makeRole(t.db, guild.id, { permissions: Permissions.MODERATE_MEMBERS })
    const r2 = await makeRole(t.db, guild.id, {
      permissions: Permissions.MANAGE_MESSAGES | (1n << 62n),
    })
    const unassigned = await makeRole(t.db, guild.id, { permissions: Permissions.BAN_MEMBERS })
    await assign(guild.id, member.id, r1.id)
    await assign(guild.id, member.id, r2.id)
    await assign(guild.id, owner.id, unassigned.id)
    const perms = await computePermissions(t.db, { guild_id: guild.id, user_id: member.id })
    expect(perms).toBe(
      BASE | Permissions.MODERATE_MEMBERS | Permissions.MANAGE_MESSAGES | (1n << 62n),
    )
    expect((perms & (1n << 40n)) !== 0n).toBe(true)
    expect(hasPermission(perms, Permissions.BAN_MEMBERS)).toBe(false)
  })

  it('an ADMINISTRATOR role (or default role) gives ALL', async () => {
    const { member, guild } = await setup()
    const admin = await makeRole(t.db, guild.id, { permissions: Permissions.ADMINISTRATOR })
    await assign(guild.id, member.id, admin.id)
    expect(await computePermissions(t.db, { guild_id: guild.id, user_id: member.id })).toBe(
      Permissions.ALL,
    )

    const other = await setup()
    await t.db
      .updateTable('roles')
      .set({ permissions: Permissions.ADMINISTRATOR })
      .where('id', '=', other.guild.defaultRole.id)
      .execute()
    expect(
      await computePermissions(t.db, { guild_id: other.guild.id, user_id: other.member.id }),
    ).toBe(Permissions.ALL)
  })

  it('channels: public as guild; private 0n for non-channel-members; owner/admin ALL; other guild 0n', async () => {
    const { owner, member, stranger, guild } = await setup()
    const admin = await makeUser(t.db)
    await makeMember(t.db, guild.id, admin.id)
    const adminRole = await makeRole(t.db, guild.id, { permissions: Permissions.ADMINISTRATOR })
    await assign(guild.id, admin.id, adminRole.id)
    const pub = await makeChannel(t.db, guild.id)
    const priv = await makeChannel(t.db, guild.id, { is_private: true })
    const { guild: otherGuild } = await setup()
    const foreign = await makeChannel(t.db, otherGuild.id)
    const p = (user_id: string, channel_id: string) =>
      computePermissions(t.db, { guild_id: guild.id, user_id, channel_id })

    expect(await p(member.id, pub.id)).toBe(BASE)
    expect(await p(member.id, priv.id)).toBe(0n)
    expect(await p(owner.id, priv.id)).toBe(Permissions.ALL)
    expect(await p(admin.id, priv.id)).toBe(Permissions.ALL)
    expect(await p(stranger.id, pub.id)).toBe(0n)
    expect(await p(owner.id, foreign.id)).toBe(0n)
    expect(await p(member.id, unknownId())).toBe(0n)

    await t.db
      .insertInto('channel_members')
      .values({ channel_id: priv.id, guild_id: guild.id, user_id: member.id })
      .execute()
    expect(await p(member.id, priv.id)).toBe(BASE)
    // A channel membership of a non-member of the guild cannot even exist.
    await expect(
      t.db
        .insertInto('channel_members')
        .values({ channel_id: priv.id, guild_id: guild.id, user_id: stranger.id })
        .execute(),
    ).rejects.toMatchObject({ code: '23503', constraint: 'channel_members_guild_member_fkey' })
    expect(await p(stranger.id, priv.id)).toBe(0n)
  })

  it('refuses bad ids', async () => {
    const { owner, guild } = await setup()
    for (const bad of ['nope', '', 'a\u0000b', 1, null]) {
      await expect(
        computePermissions(t.db, { guild_id: bad as string, user_id: owner.id }),
      ).rejects.toBeInstanceOf(InvalidInputError)
      await expect(
        computePermissions(t.db, { guild_id: guild.id, user_id: bad as string }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    await expect(
      computePermissions(t.db, { guild_id: guild.id, user_id: owner.id, channel_id: 'nope' }),
    ).rejects.toBeInstanceOf(InvalidInputError)
    await expect(computePermissions(t.db, null as never)).rejects.toBeInstanceOf(InvalidInputError)
  })

  it('runs as one query', async () => {
    const { member, guild } = await setup()
    const ch = await makeChannel(t.db, guild.id)
    // Count round trips through a logging Kysely over the same pool (not destroyed: it would end t.pool).
    const seen: string[] = []
    const db = createDb(t.pool, { log: (e) => seen.push(e.sql) })
    await computePermissions(db, { guild_id: guild.id, user_id: member.id, channel_id: ch.id })
    await computePermissions(db, { guild_id: guild.id, user_id: member.id })
    expect(seen).toHaveLength(2)
    expect(seen.every((s) => s.includes('bit_or'))).toBe(true)
  })
})
