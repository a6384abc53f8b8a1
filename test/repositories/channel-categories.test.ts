import { describe, expect, it } from 'vitest'
import {
  CheckViolationError,
  ConflictError,
  canAccessChannel,
  createChannel,
  createMessage,
  deleteChannel,
  InvalidInputError,
  listGuildChannels,
  NotFoundError,
  PermissionDeniedError,
  Permissions,
  reorderChannels,
  sendMessage,
  setChannelOverwrite,
  syncChannelPermissions,
  updateChannel,
  updateGuild,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeGuild, makeMember, makeRole, makeUser, unknownId } from '../support/factories.ts'
import { BAD_IDS, expectInvalidAndNothingWritten } from '../support/hostile-inputs.ts'
import { raceAtBarrier } from '../support/race.ts'

const t = useTestDatabase({ max: 12 })

async function setup() {
  const owner = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  const category = await createChannel(t.db, { guild_id: guild.id, name: 'Text', type: 'category' })
  return { owner, guild, category }
}

/** A member whose roles give `permissions` in the guild (below the owner). */
async function memberWith(guild_id: string, permissions: bigint, position = 1) {
  const user = await makeUser(t.db)
  await makeMember(t.db, guild_id, user.id)
  const role = await makeRole(t.db, guild_id, { permissions, position })
  await t.db
    .insertInto('member_roles')
    .values({ guild_id, user_id: user.id, role_id: role.id })
    .execute()
  return { user, role }
}

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  )

describe('categories', () => {
  it('creates a category and channels in it; a category has no parent and holds no messages', async () => {
    const { owner, guild, category } = await setup()
    expect(category).toMatchObject({ type: 'category', parent_id: null })
    const general = await createChannel(t.db, {
      guild_id: guild.id,
      name: 'general',
      type: 'text',
      parent_id: category.id,
    })
    expect(general.parent_id).toBe(category.id)

    await expectInvalidAndNothingWritten(t.db, () =>
      createChannel(t.db, {
        guild_id: guild.id,
        name: 'x',
        type: 'category',
        parent_id: category.id,
      }),
    )
    // A category holds no messages, by either route.
    const sent = await rejection(
      sendMessage(t.db, { channel_id: category.id, author_id: owner.id, content: 'hi' }),
    )
    expect(sent).toBeInstanceOf(CheckViolationError)
    expect((sent as CheckViolationError).constraint).toBe('messages_channel_kind')
    const created = await rejection(
      createMessage(t.db, { channel_id: category.id, author_id: owner.id, content: 'hi' }),
    )
    expect(created).toBeInstanceOf(CheckViolationError)
    const seq = await t.db
      .selectFrom('channels')
      .select('last_seq')
      .where('id', '=', category.id)
      .executeTakeFirstOrThrow()
    expect(Number(seq.last_seq)).toBe(0)
  })

  it('refuses a parent that is not a category of the same guild, writing nothing', async () => {
    const { owner, guild, category } = await setup()
    const text = await createChannel(t.db, { guild_id: guild.id, name: 'a', type: 'text' })
    const other = await makeGuild(t.db, owner.id)
    const foreign = await createChannel(t.db, { guild_id: other.id, name: 'c', type: 'category' })
    for (const parent_id of [text.id, foreign.id, unknownId()]) {
      const before = await countRows(t.db)
      const error = await rejection(
        createChannel(t.db, { guild_id: guild.id, name: 'b', type: 'text', parent_id }),
      )
      expect(error).toBeInstanceOf(ConflictError)
      expect((error as ConflictError).reason).toBe('parent_not_category')
      expect(await countRows(t.db)).toEqual(before)
    }
    // Moving a category into a category, or a channel into itself.
    await expect(
      updateChannel(t.db, category.id, { parent_id: category.id }),
    ).rejects.toBeInstanceOf(InvalidInputError)
    const self = await rejection(updateChannel(t.db, text.id, { parent_id: text.id }))
    expect((self as ConflictError).reason).toBe('parent_not_category')
  })

  it('deleting a category leaves its channels at the top level, counts kept', async () => {
    const { guild, category } = await setup()
    const a = await createChannel(t.db, {
      guild_id: guild.id,
      name: 'a',
      type: 'text',
      parent_id: category.id,
    })
    expect(await deleteChannel(t.db, category.id)).toBe(true)
    const [listed] = (await listGuildChannels(t.db, guild.id)).filter((c) => c.id === a.id)
    expect(listed).toMatchObject({ parent_id: null, permissions_synced: null })
    const counts = await t.db
      .selectFrom('guildstore_channel_counts')
      .select(['scope_id', 'channels'])
      .where('scope_id', 'in', [guild.id, category.id])
      .execute()
    expect(counts).toEqual([{ scope_id: guild.id, channels: 1 }])
  })
})

describe('channel limits', () => {
  it('holds the guild and category limits on create and move; a delete frees a slot', async () => {
    const { guild, category } = await setup()
    await updateGuild(t.db, guild.id, { max_channels: 4, max_channels_per_category: 2 })
    const a = await createChannel(t.db, {
      guild_id: guild.id,
      name: 'a',
      type: 'text',
      parent_id: category.id,
    })
    await createChannel(t.db, {
      guild_id: guild.id,
      name: 'b',
      type: 'text',
      parent_id: category.id,
    })
    const full = await rejection(
      createChannel(t.db, { guild_id: guild.id, name: 'c', type: 'text', parent_id: category.id }),
    )
    expect((full as ConflictError).reason).toBe('category_limit')
    const outside = await createChannel(t.db, { guild_id: guild.id, name: 'd', type: 'text' })
    const moved = await rejection(updateChannel(t.db, outside.id, { parent_id: category.id }))
    expect((moved as ConflictError).reason).toBe('category_limit')
    // The guild holds 4 (the category counts too).
    const guildFull = await rejection(
      createChannel(t.db, { guild_id: guild.id, name: 'e', type: 'text' }),
    )
    expect((guildFull as ConflictError).reason).toBe('channel_limit')
    await deleteChannel(t.db, a.id)
    await updateChannel(t.db, outside.id, { parent_id: category.id })
    await createChannel(t.db, { guild_id: guild.id, name: 'f', type: 'voice' })
    expect((await listGuildChannels(t.db, guild.id)).length).toBe(4)
  })

  it('holds exactly under 24 concurrent creates into one category (cap 5)', async () => {
    const { guild, category } = await setup()
    await updateGuild(t.db, guild.id, { max_channels_per_category: 5 })
    const calls = Array.from(
      { length: 24 },
      (_, i) => () =>
        createChannel(t.db, {
          guild_id: guild.id,
          name: `c${i}`,
          type: 'text',
          parent_id: category.id,
        }),
    )
    // Every create stops at the counter rows' lock until all 11 pool
    // connections are waiting there: the race ran.
    const race = await raceAtBarrier(
      t.pool,
      'lock table guildstore_channel_counts in exclusive mode',
      calls,
      11,
    )
    expect(race.waiters).toBeGreaterThanOrEqual(11)
    const ok = race.results.filter((r) => r.status === 'fulfilled')
    const refused = race.results.filter((r) => r.status === 'rejected')
    expect(ok.length).toBe(5)
    for (const r of refused) {
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError)
      expect(((r as PromiseRejectedResult).reason as ConflictError).reason).toBe('category_limit')
    }
    const children = (await listGuildChannels(t.db, guild.id)).filter(
      (c) => c.parent_id === category.id,
    )
    expect(children.length).toBe(5)
  })

  it('takes the limits from updateGuild, checked like the CHECKs', async () => {
    const { guild } = await setup()
    for (const bad of [0, 10_001, 1.5, '5']) {
      await expectInvalidAndNothingWritten(t.db, () =>
        updateGuild(t.db, guild.id, { max_channels: bad as number }),
      )
    }
    await expectInvalidAndNothingWritten(t.db, () =>
      updateGuild(t.db, guild.id, { max_channels_per_category: 1001 }),
    )
    expect(await updateGuild(t.db, guild.id, { max_channels: 10_000 })).toMatchObject({
      max_channels: 10_000,
      max_channels_per_category: 50,
    })
  })
})

describe('reorderChannels', () => {
  it('applies positions and moves, renumbering each group of siblings', async () => {
    const { guild, category } = await setup()
    const voice = await createChannel(t.db, { guild_id: guild.id, name: 'Voice', type: 'category' })
    const a = await createChannel(t.db, { guild_id: guild.id, name: 'a', type: 'text' })
    const b = await createChannel(t.db, { guild_id: guild.id, name: 'b', type: 'text' })
    const c = await createChannel(t.db, { guild_id: guild.id, name: 'c', type: 'voice' })
    const listed = await reorderChannels(t.db, guild.id, [
      { id: b.id, position: 0, parent_id: category.id },
      { id: a.id, position: 1, parent_id: category.id },
      { id: c.id, position: 0, parent_id: voice.id },
      { id: voice.id, position: 0 },
    ])
    const pos = (id: string) => listed.find((x) => x.id === id)
    expect(pos(b.id)).toMatchObject({ parent_id: category.id, position: 0 })
    expect(pos(a.id)).toMatchObject({ parent_id: category.id, position: 1 })
    expect(pos(c.id)).toMatchObject({ parent_id: voice.id, position: 0 })
    // Top level: Voice asked for 0 and goes before Text, which had 0.
    expect(pos(voice.id)?.position).toBe(0)
    expect(pos(category.id)?.position).toBe(1)
    const audit = await t.db
      .selectFrom('audit_log')
      .select(['target_id'])
      .where('guild_id', '=', guild.id)
      .where('action', '=', 'channel_update')
      .execute()
    expect(audit.map((e) => e.target_id).sort()).toEqual([a.id, b.id, c.id].sort())
  })

  it('refuses bad entries and unknown channels, writing nothing', async () => {
    const { owner, guild, category } = await setup()
    const a = await createChannel(t.db, { guild_id: guild.id, name: 'a', type: 'text' })
    for (const bad of BAD_IDS) {
      await expectInvalidAndNothingWritten(t.db, () =>
        reorderChannels(t.db, guild.id, [{ id: bad as string, position: 0 }]),
      )
    }
    for (const positions of [
      [],
      [{ id: a.id, position: -1 }],
      [
        { id: a.id, position: 0 },
        { id: a.id.toUpperCase(), position: 1 },
      ],
      [{ id: a.id, position: 0, parent_id: 'x' }],
      'nope',
    ]) {
      await expectInvalidAndNothingWritten(t.db, () =>
        reorderChannels(t.db, guild.id, positions as never),
      )
    }
    await expectInvalidAndNothingWritten(t.db, () =>
      reorderChannels(t.db, guild.id, [{ id: category.id, position: 0, parent_id: category.id }]),
    )
    const other = await makeGuild(t.db, owner.id)
    const foreign = await createChannel(t.db, { guild_id: other.id, name: 'f', type: 'text' })
    const before = await countRows(t.db)
    await expect(
      reorderChannels(t.db, guild.id, [
        { id: a.id, position: 5 },
        { id: foreign.id, position: 0 },
      ]),
    ).rejects.toBeInstanceOf(NotFoundError)
    await expect(
      reorderChannels(t.db, unknownId(), [{ id: a.id, position: 0 }]),
    ).rejects.toBeInstanceOf(NotFoundError)
    expect(await countRows(t.db)).toEqual(before)
    expect((await listGuildChannels(t.db, guild.id)).find((c) => c.id === a.id)?.position).toBe(0)
  })

  it('runs concurrent reorders one after the other: no interleaving, no duplicate positions', async () => {
    const { guild } = await setup()
    const channels = []
    for (let i = 0; i < 6; i++) {
      channels.push(await createChannel(t.db, { guild_id: guild.id, name: `c${i}`, type: 'text' }))
    }
    const forward = channels.map((c, i) => ({ id: c.id, position: i }))
    const backward = channels.map((c, i) => ({ id: c.id, position: channels.length - 1 - i }))
    const race = await raceAtBarrier(
      t.pool,
      { text: 'select 1 from guilds where id = $1 for no key update', values: [guild.id] },
      [
        () => reorderChannels(t.db, guild.id, forward),
        () => reorderChannels(t.db, guild.id, backward),
      ],
    )
    expect(race.waiters).toBeGreaterThanOrEqual(2)
    expect(race.results.every((r) => r.status === 'fulfilled')).toBe(true)
    const listed = await listGuildChannels(t.db, guild.id)
    const top = listed.filter((c) => c.parent_id === null).map((c) => c.position)
    expect(top.sort((x, y) => x - y)).toEqual([...top.keys()])
    // One of the two orders won whole.
    const order = listed.filter((c) => c.type === 'text').map((c) => c.id)
    const ids = channels.map((c) => c.id)
    expect([ids.join(), [...ids].reverse().join()]).toContain(order.join())
  })
})

describe('syncChannelPermissions and moves', () => {
  it('derives permissions_synced and copies the category overwrites', async () => {
    const { guild, category } = await setup()
    const staff = await makeRole(t.db, guild.id, { position: 1 })
    await setChannelOverwrite(t.db, {
      channel_id: category.id,
      role_id: guild.defaultRole.id,
      allow: 0n,
      deny: Permissions.VIEW_CHANNEL,
    })
    await setChannelOverwrite(t.db, {
      channel_id: category.id,
      role_id: staff.id,
      allow: Permissions.VIEW_CHANNEL,
      deny: 0n,
    })
    const ch = await createChannel(t.db, {
      guild_id: guild.id,
      name: 'x',
      type: 'text',
      parent_id: category.id,
    })
    const other = await makeRole(t.db, guild.id, { position: 1 })
    await setChannelOverwrite(t.db, {
      channel_id: ch.id,
      role_id: other.id,
      allow: Permissions.ADD_REACTIONS,
      deny: 0n,
    })
    const synced = async () =>
      (await listGuildChannels(t.db, guild.id)).find((c) => c.id === ch.id)?.permissions_synced
    expect(await synced()).toBe(false)
    const after = await syncChannelPermissions(t.db, ch.id)
    expect(after.map((o) => [o.role_id, BigInt(o.allow), BigInt(o.deny)]).sort()).toEqual(
      [
        [guild.defaultRole.id, 0n, Permissions.VIEW_CHANNEL],
        [staff.id, Permissions.VIEW_CHANNEL, 0n],
      ].sort(),
    )
    expect(await synced()).toBe(true)
    // Derived, never stale: a change on either side shows at once.
    await setChannelOverwrite(t.db, {
      channel_id: category.id,
      role_id: staff.id,
      allow: 0n,
      deny: 0n,
    })
    expect(await synced()).toBe(false)
    const audit = await t.db
      .selectFrom('audit_log')
      .select('action')
      .where('guild_id', '=', guild.id)
      .where('target_id', '=', ch.id)
      .where('action', 'like', 'overwrite_%')
      .execute()
    expect(audit.map((a) => a.action).sort()).toEqual([
      'overwrite_create',
      'overwrite_create',
      'overwrite_create',
      'overwrite_delete',
    ])
    const top = await createChannel(t.db, { guild_id: guild.id, name: 'top', type: 'text' })
    const none = await rejection(syncChannelPermissions(t.db, top.id))
    expect((none as ConflictError).reason).toBe('no_category')
    await expect(syncChannelPermissions(t.db, unknownId())).rejects.toBeInstanceOf(NotFoundError)
  })

  it('moving never widens access; a sync by an actor follows the overwrite rules', async () => {
    const { guild, category } = await setup()
    // The category is open to everyone; the channel is closed to @everyone.
    await setChannelOverwrite(t.db, {
      channel_id: category.id,
      role_id: guild.defaultRole.id,
      allow: Permissions.VIEW_CHANNEL,
      deny: 0n,
    })
    const secret = await createChannel(t.db, { guild_id: guild.id, name: 'secret', type: 'text' })
    await setChannelOverwrite(t.db, {
      channel_id: secret.id,
      role_id: guild.defaultRole.id,
      allow: 0n,
      deny: Permissions.VIEW_CHANNEL,
    })
    const member = await makeUser(t.db)
    await makeMember(t.db, guild.id, member.id)
    const can = () => canAccessChannel(t.db, { channel_id: secret.id, user_id: member.id })
    expect(await can()).toBe(false)
    await updateChannel(t.db, secret.id, { parent_id: category.id })
    expect(await can()).toBe(false)

    // A moderator with MANAGE_CHANNELS and MANAGE_ROLES but without VIEW_CHANNEL
    // itself may move but not lift the deny of VIEW_CHANNEL by a sync.
    const mod = await memberWith(guild.id, Permissions.MANAGE_CHANNELS | Permissions.MANAGE_ROLES)
    const refused = await rejection(
      syncChannelPermissions(t.db, secret.id, { actor_id: mod.user.id }),
    )
    expect(refused).toBeInstanceOf(PermissionDeniedError)
    expect(await can()).toBe(false)
    // The owner may.
    await syncChannelPermissions(t.db, secret.id, { actor_id: await ownerOf(guild.id) })
    expect(await can()).toBe(true)

    // Moving into a category where the actor lacks MANAGE_CHANNELS is refused.
    const locked = await createChannel(t.db, {
      guild_id: guild.id,
      name: 'Locked',
      type: 'category',
    })
    await setChannelOverwrite(t.db, {
      channel_id: locked.id,
      role_id: mod.role.id,
      allow: 0n,
      deny: Permissions.MANAGE_CHANNELS,
    })
    const plain = await createChannel(t.db, { guild_id: guild.id, name: 'plain', type: 'text' })
    const move = await rejection(
      updateChannel(t.db, plain.id, { parent_id: locked.id }, { actor_id: mod.user.id }),
    )
    expect(move).toBeInstanceOf(PermissionDeniedError)
    const reorder = await rejection(
      reorderChannels(t.db, guild.id, [{ id: plain.id, position: 0, parent_id: locked.id }], {
        actor_id: mod.user.id,
      }),
    )
    expect(reorder).toBeInstanceOf(PermissionDeniedError)
    expect(
      (await listGuildChannels(t.db, guild.id)).find((c) => c.id === plain.id)?.parent_id,
    ).toBeNull()
  })
})

async function ownerOf(guild_id: string): Promise<string> {
  const g = await t.db
    .selectFrom('guilds')
    .select('owner_id')
    .where('id', '=', guild_id)
    .executeTakeFirstOrThrow()
  return g.owner_id
}
