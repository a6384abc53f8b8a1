import { describe, expect, it } from 'vitest'
import {
  addGuildMember,
  ConflictError,
  ForeignKeyViolationError,
  findGuildMember,
  InvalidInputError,
  isGuildMember,
  listGuildMembers,
  removeGuildMember,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeGuild,
  makeMember,
  makeRole,
  makeUser,
  unknownId,
} from '../support/factories.ts'
import { BAD_IDS } from '../support/hostile-inputs.ts'
import { fulfilled, lockTables, raceAtBarrier } from '../support/race.ts'

const t = useTestDatabase({ max: 20 })

describe('addGuildMember', () => {
  it('adds a member and is idempotent', async () => {
    const owner = await makeUser(t.db)
    const user = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    const m1 = await addGuildMember(t.db, { guild_id: g.id, user_id: user.id })
    expect(m1).toMatchObject({ guild_id: g.id, user_id: user.id, nickname: null })
    expect(Object.keys(m1).sort()).toEqual([
      'communication_disabled_until',
      'guild_id',
      'joined_at',
      'nickname',
      'user_id',
    ])
    const m2 = await addGuildMember(t.db, { guild_id: g.id, user_id: user.id })
    expect(m2).toEqual(m1)
  })

  it('19 calls for one user held at a barrier make exactly one row and all return it', async () => {
    const owner = await makeUser(t.db)
    const user = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    // All 19 (the pool of 20 less the barrier) wait to insert at the table lock.
    const race = await raceAtBarrier(
      t.pool,
      lockTables('guild_members'),
      Array.from(
        { length: 19 },
        () => () => addGuildMember(t.db, { guild_id: g.id, user_id: user.id }),
      ),
    )
    expect(race.waiters).toBe(19)
    const results = fulfilled(race.results)
    expect(new Set(results.map((r) => r.joined_at.getTime())).size).toBe(1)
    expect(results.every((r) => r.user_id === user.id)).toBe(true)
    const rows = await t.db
      .selectFrom('guild_members')
      .selectAll()
      .where('guild_id', '=', g.id)
      .where('user_id', '=', user.id)
      .execute()
    expect(rows).toHaveLength(1)
  })

  it('unknown guild or user → ForeignKeyViolationError, nothing written', async () => {
    const owner = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    const before = await countRows(t.db)
    await expect(
      addGuildMember(t.db, { guild_id: unknownId(), user_id: owner.id }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    await expect(
      addGuildMember(t.db, { guild_id: g.id, user_id: unknownId() }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    expect(await countRows(t.db)).toEqual(before)
  })

  it('refuses bad ids and writes nothing', async () => {
    const owner = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    const before = await countRows(t.db)
    for (const id of BAD_IDS) {
      await expect(
        addGuildMember(t.db, { guild_id: id as string, user_id: owner.id }),
      ).rejects.toBeInstanceOf(InvalidInputError)
      await expect(
        addGuildMember(t.db, { guild_id: g.id, user_id: id as string }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    await expect(addGuildMember(t.db, undefined as never)).rejects.toBeInstanceOf(InvalidInputError)
    expect(await countRows(t.db)).toEqual(before)
  })
})

describe('removeGuildMember', () => {
  it('removes a member with their role assignments and private-channel memberships', async () => {
    const owner = await makeUser(t.db)
    const user = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    const other = await makeGuild(t.db, owner.id)
    await makeMember(t.db, g.id, user.id)
    await makeMember(t.db, other.id, user.id)
    const role = await makeRole(t.db, g.id)
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: g.id, user_id: user.id, role_id: role.id })
      .execute()
    const ch = await makeChannel(t.db, g.id, { is_private: true })
    const otherCh = await makeChannel(t.db, other.id, { is_private: true })
    await t.db
      .insertInto('channel_members')
      .values([
        { channel_id: ch.id, guild_id: g.id, user_id: user.id },
        { channel_id: otherCh.id, guild_id: other.id, user_id: user.id },
      ])
      .execute()
    expect(await removeGuildMember(t.db, { guild_id: g.id, user_id: user.id })).toBe(true)
    expect(await isGuildMember(t.db, { guild_id: g.id, user_id: user.id })).toBe(false)
    expect(
      await t.db.selectFrom('member_roles').selectAll().where('user_id', '=', user.id).execute(),
    ).toEqual([])
    const cms = await t.db
      .selectFrom('channel_members')
      .select('channel_id')
      .where('user_id', '=', user.id)
      .execute()
    expect(cms.map((r) => r.channel_id)).toEqual([otherCh.id])
    expect(await isGuildMember(t.db, { guild_id: other.id, user_id: user.id })).toBe(true)
    expect(await removeGuildMember(t.db, { guild_id: g.id, user_id: user.id })).toBe(false)
    expect(await removeGuildMember(t.db, { guild_id: unknownId(), user_id: user.id })).toBe(false)
  })

  it('refuses the owner with ConflictError (reason owner)', async () => {
    const owner = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    const err = await removeGuildMember(t.db, {
      guild_id: g.id,
      user_id: owner.id.toUpperCase(),
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as ConflictError).reason).toBe('owner')
    expect(await isGuildMember(t.db, { guild_id: g.id, user_id: owner.id })).toBe(true)
  })

  it('refuses bad ids and writes nothing', async () => {
    const owner = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    const before = await countRows(t.db)
    for (const id of BAD_IDS) {
      await expect(
        removeGuildMember(t.db, { guild_id: g.id, user_id: id as string }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
    expect(await countRows(t.db)).toEqual(before)
  })
})

describe('findGuildMember / isGuildMember', () => {
  it('finds members and answers membership', async () => {
    const owner = await makeUser(t.db)
    const stranger = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    expect(await findGuildMember(t.db, { guild_id: g.id, user_id: owner.id })).toMatchObject({
      guild_id: g.id,
      user_id: owner.id,
    })
    expect(await findGuildMember(t.db, { guild_id: g.id, user_id: stranger.id })).toBeUndefined()
    expect(await isGuildMember(t.db, { guild_id: g.id, user_id: owner.id })).toBe(true)
    expect(await isGuildMember(t.db, { guild_id: g.id, user_id: stranger.id })).toBe(false)
    for (const id of BAD_IDS) {
      await expect(
        findGuildMember(t.db, { guild_id: id as string, user_id: owner.id }),
      ).rejects.toBeInstanceOf(InvalidInputError)
      await expect(
        isGuildMember(t.db, { guild_id: g.id, user_id: id as string }),
      ).rejects.toBeInstanceOf(InvalidInputError)
    }
  })
})

describe('listGuildMembers', () => {
  it('pages by user_id with a keyset', async () => {
    const owner = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    const ids = [owner.id]
    for (let i = 0; i < 6; i++) {
      const u = await makeUser(t.db)
      await makeMember(t.db, g.id, u.id)
      ids.push(u.id)
    }
    ids.sort()
    const seen: string[] = []
    let after: string | undefined
    for (;;) {
      const page = await listGuildMembers(t.db, g.id, { after, limit: 3 })
      expect(page.length).toBeLessThanOrEqual(3)
      if (page.length === 0) break
      seen.push(...page.map((m) => m.user_id))
      after = page.at(-1)?.user_id
    }
    expect(seen).toEqual(ids)
    expect((await listGuildMembers(t.db, g.id)).length).toBe(7)
    expect(await listGuildMembers(t.db, unknownId())).toEqual([])
  })

  it('refuses bad limits and ids', async () => {
    const owner = await makeUser(t.db)
    const g = await makeGuild(t.db, owner.id)
    for (const limit of [0, 101, 1.5, -1, Number.NaN, '10']) {
      await expect(listGuildMembers(t.db, g.id, { limit: limit as number })).rejects.toBeInstanceOf(
        InvalidInputError,
      )
    }
    expect(await listGuildMembers(t.db, g.id, { limit: 100 })).toHaveLength(1)
    await expect(listGuildMembers(t.db, g.id, { after: 'nope' })).rejects.toBeInstanceOf(
      InvalidInputError,
    )
    await expect(listGuildMembers(t.db, 'nope')).rejects.toBeInstanceOf(InvalidInputError)
  })
})
