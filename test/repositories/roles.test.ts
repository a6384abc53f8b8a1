import { describe, expect, it } from 'vitest'
import {
  assignRole,
  ConflictError,
  createRole,
  deleteRole,
  ForeignKeyViolationError,
  InvalidInputError,
  listGuildRoles,
  listMemberRoles,
  Permissions,
  unassignRole,
  updateRole,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeGuild, makeMember, makeRole, makeUser, unknownId } from '../support/factories.ts'
import { BAD_IDS } from '../support/hostile-inputs.ts'

const t = useTestDatabase()

const BAD_NAMES = ['', 'a\u0000b', 'x\uDC00', 'x'.repeat(101), 5]
const BAD_PERMS = [1, '8', 2n ** 63n, -(2n ** 63n) - 1n, null]
const BAD_POSITIONS = [-1, 2 ** 31, 1.5, '1', Number.NaN]

async function guildWithOwner() {
  const owner = await makeUser(t.db)
  return { owner, guild: await makeGuild(t.db, owner.id) }
}

describe('createRole', () => {
  it('creates a role; bits above 2^31 survive the round trip', async () => {
    const { guild } = await guildWithOwner()
    const permissions = Permissions.MODERATE_MEMBERS | Permissions.SEND_VOICE_MESSAGES | (1n << 62n)
    const role = await createRole(t.db, {
      guild_id: guild.id,
      name: 'mod',
      permissions,
      position: 3,
    })
    expect(role).toMatchObject({
      guild_id: guild.id,
      name: 'mod',
      permissions,
      position: 3,
      is_default: false,
    })
    expect(typeof role.permissions).toBe('bigint')
    const stored = await t.db
      .selectFrom('roles')
      .select('permissions')
      .where('id', '=', role.id)
      .executeTakeFirst()
    expect(stored?.permissions).toBe(permissions)
    const neg = await createRole(t.db, {
      guild_id: guild.id,
      name: 'neg',
      permissions: -(2n ** 63n),
    })
    expect(neg.permissions).toBe(-(2n ** 63n))
    expect(neg.position).toBe(0)
  })

  it('unknown guild → ForeignKeyViolationError; bad input → InvalidInputError; nothing written', async () => {
    const { guild } = await guildWithOwner()
    const before = await countRows(t.db)
    await expect(
      createRole(t.db, { guild_id: unknownId(), name: 'x', permissions: 0n }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    for (const name of BAD_NAMES) {
      await expect(
        createRole(t.db, { guild_id: guild.id, name: name as string, permissions: 0n }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    for (const permissions of BAD_PERMS) {
      await expect(
        createRole(t.db, { guild_id: guild.id, name: 'x', permissions: permissions as bigint }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    for (const position of BAD_POSITIONS) {
      await expect(
        createRole(t.db, {
          guild_id: guild.id,
          name: 'x',
          permissions: 0n,
          position: position as number,
        }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    for (const id of BAD_IDS) {
      await expect(
        createRole(t.db, { guild_id: id as string, name: 'x', permissions: 0n }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    expect(await countRows(t.db)).toEqual(before)
  })
})

describe('updateRole', () => {
  it('updates fields; empty patch returns the row; missing → undefined', async () => {
    const { guild } = await guildWithOwner()
    const role = await makeRole(t.db, guild.id)
    const big = 1n << 40n
    expect(
      await updateRole(t.db, role.id, { name: 'renamed', permissions: big, position: 2 ** 31 - 1 }),
    ).toMatchObject({
      name: 'renamed',
      permissions: big,
      position: 2 ** 31 - 1,
    })
    expect((await updateRole(t.db, role.id, {}))?.name).toBe('renamed')
    expect(await updateRole(t.db, unknownId(), { name: 'x' })).toBeUndefined()
    expect((await updateRole(t.db, guild.defaultRole.id, { permissions: 0n }))?.permissions).toBe(
      0n,
    )
  })

  it('refuses bad input and writes nothing', async () => {
    const { guild } = await guildWithOwner()
    const role = await makeRole(t.db, guild.id, { name: 'keep' })
    for (const name of BAD_NAMES) {
      await expect(updateRole(t.db, role.id, { name: name as string })).rejects.toBeInstanceOf(
        InvalidInputError,
      )
    }
    for (const permissions of BAD_PERMS.filter((p) => p !== null)) {
      await expect(
        updateRole(t.db, role.id, { permissions: permissions as bigint }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    for (const position of BAD_POSITIONS) {
      await expect(
        updateRole(t.db, role.id, { position: position as number }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    await expect(updateRole(t.db, 'x', { name: 'y' })).rejects.toBeInstanceOf(InvalidInputError)
    const row = await t.db
      .selectFrom('roles')
      .selectAll()
      .where('id', '=', role.id)
      .executeTakeFirstOrThrow()
    expect(row).toMatchObject({
      name: 'keep',
      permissions: role.permissions,
      position: role.position,
    })
  })
})

describe('deleteRole', () => {
  it('deletes a role with its assignments; unknown → false', async () => {
    const { owner, guild } = await guildWithOwner()
    const role = await makeRole(t.db, guild.id)
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: guild.id, user_id: owner.id, role_id: role.id })
      .execute()
    expect(await deleteRole(t.db, role.id)).toBe(true)
    expect(await listMemberRoles(t.db, { guild_id: guild.id, user_id: owner.id })).toEqual([])
    expect(await deleteRole(t.db, role.id)).toBe(false)
    await expect(deleteRole(t.db, 'nope')).rejects.toBeInstanceOf(InvalidInputError)
  })

  it('refuses the default role with ConflictError (default_role)', async () => {
    const { guild } = await guildWithOwner()
    const err = await deleteRole(t.db, guild.defaultRole.id).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as ConflictError).reason).toBe('default_role')
    expect((await listGuildRoles(t.db, guild.id)).map((r) => r.id)).toEqual([guild.defaultRole.id])
  })
})

describe('listGuildRoles', () => {
  it('lists by position then id', async () => {
    const { guild } = await guildWithOwner()
    const r3 = await makeRole(t.db, guild.id, { position: 3 })
    const r1a = await makeRole(t.db, guild.id, { position: 1 })
    const r1b = await makeRole(t.db, guild.id, { position: 1 })
    const ids = (await listGuildRoles(t.db, guild.id)).map((r) => r.id)
    expect(ids).toEqual([guild.defaultRole.id, ...[r1a.id, r1b.id].sort(), r3.id])
    expect(await listGuildRoles(t.db, unknownId())).toEqual([])
    await expect(listGuildRoles(t.db, '')).rejects.toBeInstanceOf(InvalidInputError)
  })
})

describe('assignRole / unassignRole / listMemberRoles', () => {
  it('assigns idempotently, lists and unassigns', async () => {
    const { guild } = await guildWithOwner()
    const user = await makeUser(t.db)
    await makeMember(t.db, guild.id, user.id)
    const a = await makeRole(t.db, guild.id, { position: 5 })
    const b = await makeRole(t.db, guild.id, { position: 2 })
    const key = { guild_id: guild.id, user_id: user.id }
    expect(await assignRole(t.db, { ...key, role_id: a.id })).toBe(true)
    expect(await assignRole(t.db, { ...key, role_id: a.id })).toBe(false)
    expect(await assignRole(t.db, { ...key, role_id: b.id })).toBe(true)
    expect((await listMemberRoles(t.db, key)).map((r) => r.id)).toEqual([b.id, a.id])
    expect(await unassignRole(t.db, { ...key, role_id: a.id })).toBe(true)
    expect(await unassignRole(t.db, { ...key, role_id: a.id })).toBe(false)
    expect((await listMemberRoles(t.db, key)).map((r) => r.id)).toEqual([b.id])
  })

  it('refuses the default role, a role of another guild and a non-member; writes nothing', async () => {
    const { guild } = await guildWithOwner()
    const { guild: otherGuild } = await guildWithOwner()
    const user = await makeUser(t.db)
    const stranger = await makeUser(t.db)
    await makeMember(t.db, guild.id, user.id)
    const foreign = await makeRole(t.db, otherGuild.id)
    const own = await makeRole(t.db, guild.id)
    const before = await countRows(t.db)
    const err = await assignRole(t.db, {
      guild_id: guild.id,
      user_id: user.id,
      role_id: guild.defaultRole.id,
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as ConflictError).reason).toBe('default_role')
    await expect(
      assignRole(t.db, { guild_id: guild.id, user_id: user.id, role_id: foreign.id }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    await expect(
      assignRole(t.db, { guild_id: guild.id, user_id: stranger.id, role_id: own.id }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    await expect(
      assignRole(t.db, { guild_id: guild.id, user_id: user.id, role_id: unknownId() }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    for (const id of BAD_IDS) {
      await expect(
        assignRole(t.db, { guild_id: guild.id, user_id: user.id, role_id: id as string }),
      ).rejects.toBeInstanceOf(InvalidInputError)
      await expect(
        unassignRole(t.db, { guild_id: id as string, user_id: user.id, role_id: own.id }),
      ).rejects.toBeInstanceOf(InvalidInputError)
      await expect(
        listMemberRoles(t.db, { guild_id: guild.id, user_id: id as string }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    expect(await countRows(t.db)).toEqual(before)
  })
})
