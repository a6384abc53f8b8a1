import { describe, expect, it } from 'vitest'
import {
  ConflictError,
  createGuild,
  DEFAULT_PERMISSIONS,
  deleteGuild,
  ForeignKeyViolationError,
  findGuildById,
  InvalidInputError,
  listGuildsForUser,
  NotFoundError,
  transferGuildOwnership,
  updateGuild,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeGuild,
  makeMember,
  makeMessage,
  makeRole,
  makeUser,
  unknownId,
  v4Id,
} from '../support/factories.ts'
import { BAD_IDS } from '../support/hostile-inputs.ts'

const t = useTestDatabase()

const BAD_TEXT = ['', 'a\u0000b', 'x\uD800y', 'x'.repeat(101), 42, null]

describe('createGuild', () => {
  it('creates the guild, the owner membership and the default role', async () => {
    const owner = await makeUser(t.db)
    const guild = await createGuild(t.db, { name: 'Rustaceans 🦀', owner_id: owner.id })
    expect(guild).toMatchObject({ name: 'Rustaceans 🦀', owner_id: owner.id })
    expect(Object.keys(guild).sort()).toEqual(
      [
        'created_at',
        'id',
        'max_channels',
        'max_channels_per_category',
        'max_thread_members',
        'max_pins_per_channel',
        'max_emojis_static',
        'max_emojis_animated',
        'name',
        'owner_id',
        'updated_at',
      ].sort(),
    )
    expect(guild.id).toMatch(/^[0-9a-f-]{36}$/)
    const members = await t.db
      .selectFrom('guild_members')
      .selectAll()
      .where('guild_id', '=', guild.id)
      .execute()
    expect(members.map((m) => m.user_id)).toEqual([owner.id])
    const roles = await t.db
      .selectFrom('roles')
      .selectAll()
      .where('guild_id', '=', guild.id)
      .execute()
    expect(roles).toHaveLength(1)
    expect(roles[0]).toMatchObject({
      name: '@everyone',
      is_default: true,
      position: 0,
      permissions: DEFAULT_PERMISSIONS,
    })
  })

  it('accepts a 100-character name (in code points)', async () => {
    const owner = await makeUser(t.db)
    const name = '😀'.repeat(100)
    expect((await createGuild(t.db, { name, owner_id: owner.id })).name).toBe(name)
  })

  it('is atomic: an unknown owner leaves no guild, member or role', async () => {
    const before = await countRows(t.db)
    await expect(
      createGuild(t.db, { name: 'ghost', owner_id: unknownId() }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    expect(await countRows(t.db)).toEqual(before)
  })

  it('refuses bad input and writes nothing', async () => {
    const owner = await makeUser(t.db)
    const before = await countRows(t.db)
    for (const name of BAD_TEXT) {
      await expect(
        createGuild(t.db, { name: name as string, owner_id: owner.id }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    for (const owner_id of BAD_IDS) {
      await expect(
        createGuild(t.db, { name: 'ok', owner_id: owner_id as string }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    await expect(createGuild(t.db, null as never)).rejects.toBeInstanceOf(InvalidInputError)
    expect(await countRows(t.db)).toEqual(before)
  })

  it("rolls back with the caller's transaction", async () => {
    const owner = await makeUser(t.db)
    const before = await countRows(t.db)
    let created: string | undefined
    await expect(
      t.db.transaction().execute(async (trx) => {
        created = (await createGuild(trx, { name: 'doomed', owner_id: owner.id })).id
        expect(await findGuildById(trx, created)).toBeDefined()
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(created).toBeDefined()
    expect(await findGuildById(t.db, created as string)).toBeUndefined()
    expect(await countRows(t.db)).toEqual(before)
  })
})

describe('findGuildById / listGuildsForUser', () => {
  it('finds by id, any UUID version, and undefined when missing', async () => {
    const owner = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    expect((await findGuildById(t.db, g.id))?.name).toBe(g.name)
    expect(await findGuildById(t.db, g.id.toUpperCase())).toMatchObject({ id: g.id })
    expect(await findGuildById(t.db, v4Id())).toBeUndefined()
    for (const id of BAD_IDS) {
      await expect(findGuildById(t.db, id as string)).rejects.toBeInstanceOf(InvalidInputError)
    }
  })

  it('lists the guilds a user is a member of, by name', async () => {
    const [a, b] = [await makeUser(t.db), await makeUser(t.db)]
    const g1 = await makeGuild(t.db, a.id, { name: 'zeta' })
    const g2 = await makeGuild(t.db, b.id, { name: 'alpha' })
    await makeGuild(t.db, b.id, { name: 'not mine' })
    await makeMember(t.db, g2.id, a.id)
    expect((await listGuildsForUser(t.db, a.id)).map((g) => g.id)).toEqual([g2.id, g1.id])
    expect(await listGuildsForUser(t.db, unknownId())).toEqual([])
    await expect(listGuildsForUser(t.db, 'nope')).rejects.toBeInstanceOf(InvalidInputError)
  })
})

describe('updateGuild', () => {
  it('renames and bumps updated_at; empty patch returns the row; missing → undefined', async () => {
    const owner = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    const updated = await updateGuild(t.db, g.id, { name: 'renamed' })
    expect(updated?.name).toBe('renamed')
    expect(updated!.updated_at.getTime()).toBeGreaterThanOrEqual(g.updated_at.getTime())
    expect((await updateGuild(t.db, g.id, {}))?.name).toBe('renamed')
    expect(await updateGuild(t.db, unknownId(), { name: 'x' })).toBeUndefined()
  })

  it('refuses bad input and writes nothing', async () => {
    const owner = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id, { name: 'keep' })
    for (const name of BAD_TEXT.filter((n) => n !== null)) {
      await expect(updateGuild(t.db, g.id, { name: name as string })).rejects.toBeInstanceOf(
        InvalidInputError,
      )
    }
    await expect(updateGuild(t.db, 'bad', { name: 'x' })).rejects.toBeInstanceOf(InvalidInputError)
    expect((await findGuildById(t.db, g.id))?.name).toBe('keep')
  })
})

describe('deleteGuild', () => {
  it('cascades to members, roles, assignments, channels and messages', async () => {
    const owner = await makeUser(t.db)
    const other = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    await makeMember(t.db, g.id, other.id)
    const role = await makeRole(t.db, g.id)
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: g.id, user_id: other.id, role_id: role.id })
      .execute()
    const ch = await makeChannel(t.db, g.id, { is_private: true })
    await t.db
      .insertInto('channel_members')
      .values({ channel_id: ch.id, guild_id: g.id, user_id: other.id })
      .execute()
    await makeMessage(t.db, ch.id, other.id)
    const before = await countRows(t.db)
    expect(await deleteGuild(t.db, g.id)).toBe(true)
    const after = await countRows(t.db)
    expect(after).toMatchObject({
      guilds: before.guilds! - 1,
      guild_members: before.guild_members! - 2,
      roles: before.roles! - 2,
      member_roles: before.member_roles! - 1,
      channels: before.channels! - 1,
      channel_members: before.channel_members! - 1,
      messages: before.messages! - 1,
      users: before.users,
    })
    expect(await deleteGuild(t.db, g.id)).toBe(false)
    await expect(deleteGuild(t.db, 'x')).rejects.toBeInstanceOf(InvalidInputError)
  })
})

describe('transferGuildOwnership', () => {
  it('transfers to a member', async () => {
    const owner = await makeUser(t.db)
    const member = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    await makeMember(t.db, g.id, member.id)
    const guild = await transferGuildOwnership(t.db, { guild_id: g.id, new_owner_id: member.id })
    expect(guild.owner_id).toBe(member.id)
    expect((await findGuildById(t.db, g.id))?.owner_id).toBe(member.id)
  })

  it('refuses a non-member with ConflictError and an unknown guild with NotFoundError', async () => {
    const owner = await makeUser(t.db)
    const stranger = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    const err = await transferGuildOwnership(t.db, {
      guild_id: g.id,
      new_owner_id: stranger.id,
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as ConflictError).reason).toBe('not_member')
    expect((await findGuildById(t.db, g.id))?.owner_id).toBe(owner.id)
    await expect(
      transferGuildOwnership(t.db, { guild_id: unknownId(), new_owner_id: owner.id }),
    ).rejects.toBeInstanceOf(NotFoundError)
  })

  it('refuses bad ids and writes nothing', async () => {
    const owner = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    const before = await countRows(t.db)
    for (const id of BAD_IDS) {
      await expect(
        transferGuildOwnership(t.db, { guild_id: id as string, new_owner_id: owner.id }),
      ).rejects.toBeInstanceOf(InvalidInputError)
      await expect(
        transferGuildOwnership(t.db, { guild_id: g.id, new_owner_id: id as string }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    expect(await countRows(t.db)).toEqual(before)
  })
})
