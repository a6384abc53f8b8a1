/**
 * Property test of the access rule: 30 random worlds (seeded PRNG) of users,
 * guilds, roles with and without VIEW_CHANNEL / ADMINISTRATOR, private channels
 * with random channel members, channel overwrites (for @everyone, for roles,
 * for members; allow and deny), DMs and blocks. searchMessages,
 * listVisibleChannels, canAccessChannel, computePermissions and listDmChannels
 * are compared with an in-memory model of the rule in api.md:
 *   not a member → nothing; owner or ADMINISTRATOR → everything in the guild;
 *   else default role | assigned roles must include VIEW_CHANNEL, and a private
 *   channel also needs channel membership; a DM → its two participants.
 */
import { describe, expect, it } from 'vitest'
import {
  canAccessChannel,
  computePermissions,
  hasPermission,
  listDmChannels,
  listVisibleChannels,
  Permissions,
  searchMessages,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeChannel, makeDm, makeMessage, makeRole, makeUser } from '../support/factories.ts'

const t = useTestDatabase()

/** mulberry32: a small seeded PRNG. */
function prng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    chance: (p: number) => next() < p,
    pick: <T>(items: readonly T[]) => items[Math.floor(next() * items.length)] as T,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
  }
}

const { VIEW_CHANNEL, ADMINISTRATOR, SEND_MESSAGES } = Permissions
const PERMISSION_CHOICES = [
  0n,
  VIEW_CHANNEL,
  SEND_MESSAGES,
  VIEW_CHANNEL | SEND_MESSAGES,
  ADMINISTRATOR,
]

interface ModelGuild {
  id: string
  defaultRoleId: string
  owner: string
  members: Set<string>
  defaultPerms: bigint
  roles: { id: string; perms: bigint; holders: Set<string> }[]
  channels: ModelChannel[]
}
interface ModelOverwrite {
  allow: bigint
  deny: bigint
}
interface ModelChannel {
  id: string
  isPrivate: boolean
  members: Set<string>
  /** role id (the default role's included) or user id → overwrite. */
  overwrites: Map<string, ModelOverwrite>
}
interface World {
  users: string[]
  guilds: ModelGuild[]
  dms: { id: string; a: string; b: string }[]
  /** message id → channel id (live messages only). */
  messages: Map<string, string>
}

const OVERWRITE_CHOICES = [
  0n,
  0n,
  VIEW_CHANNEL,
  SEND_MESSAGES,
  VIEW_CHANNEL | SEND_MESSAGES,
  ADMINISTRATOR | SEND_MESSAGES,
]

const SEEDS = Array.from({ length: 30 }, (_, i) => 1000 + i * 7919)

async function buildWorld(seed: number): Promise<World> {
  const r = prng(seed)
  const db = t.db
  const users = await Promise.all(Array.from({ length: 6 }, () => makeUser(db))).then((us) =>
    us.map((u) => u.id),
  )
  const world: World = { users, guilds: [], dms: [], messages: new Map() }
  const post = async (channelId: string) => {
    const n = r.int(1, 2)
    for (let i = 0; i < n; i++) {
      const author = r.pick(users)
      const deleted = r.chance(0.2)
      const m = await makeMessage(db, channelId, author, {
        content: `zebra s${seed} ${i}`,
        ...(deleted ? { deleted_at: new Date() } : {}),
      })
      if (!deleted) world.messages.set(m.id, channelId)
    }
  }
  for (let g = 0; g < 2; g++) {
    const owner = r.pick(users)
    const defaultPerms = r.pick(
      PERMISSION_CHOICES.filter((p) => p !== ADMINISTRATOR || r.chance(0.3)),
    )
    const guild = await db
      .insertInto('guilds')
      .values({ name: `w${seed}g${g}`, owner_id: owner })
      .returning('id')
      .executeTakeFirstOrThrow()
    const members = new Set([owner, ...users.filter(() => r.chance(0.6))])
    await db
      .insertInto('guild_members')
      .values([...members].map((user_id) => ({ guild_id: guild.id, user_id })))
      .execute()
    const defaultRole = await db
      .insertInto('roles')
      .values({
        guild_id: guild.id,
        name: '@everyone',
        permissions: defaultPerms,
        position: 0,
        is_default: true,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const model: ModelGuild = {
      id: guild.id,
      defaultRoleId: defaultRole.id,
      owner,
      members,
      defaultPerms,
      roles: [],
      channels: [],
    }
    for (let k = r.int(0, 3); k > 0; k--) {
      const perms = r.pick(PERMISSION_CHOICES)
      const role = await makeRole(db, guild.id, { permissions: perms, position: k })
      const holders = new Set([...members].filter(() => r.chance(0.4)))
      if (holders.size > 0) {
        await db
          .insertInto('member_roles')
          .values(
            [...holders].map((user_id) => ({ guild_id: guild.id, user_id, role_id: role.id })),
          )
          .execute()
      }
      model.roles.push({ id: role.id, perms, holders })
    }
    for (let c = r.int(1, 4); c > 0; c--) {
      const isPrivate = r.chance(0.5)
      const channel = await makeChannel(db, guild.id, { is_private: isPrivate, position: c })
      // Channel members are guild members: the foreign key (guild_id, user_id) →
      // guild_members refuses anyone else (migration 0002).
      const channelMembers = new Set([...members].filter(() => r.chance(0.4)))
      if (channelMembers.size > 0) {
        await db
          .insertInto('channel_members')
          .values(
            [...channelMembers].map((user_id) => ({
              channel_id: channel.id,
              guild_id: guild.id,
              user_id,
            })),
          )
          .execute()
      }
      // Overwrites: for @everyone, for some roles, for some members (flags that
      // matter to the model, and ADMINISTRATOR, which overwrites cannot grant).
      const overwrites = new Map<string, ModelOverwrite>()
      const randomOverwrite = (): ModelOverwrite => {
        const allow = r.pick(OVERWRITE_CHOICES)
        return { allow, deny: r.pick(OVERWRITE_CHOICES) & ~allow }
      }
      if (r.chance(0.5)) overwrites.set(defaultRole.id, randomOverwrite())
      for (const role of model.roles) if (r.chance(0.4)) overwrites.set(role.id, randomOverwrite())
      for (const user of members) if (r.chance(0.25)) overwrites.set(user, randomOverwrite())
      if (overwrites.size > 0) {
        await db
          .insertInto('channel_overwrites')
          .values(
            [...overwrites].map(([target, o]) => ({
              channel_id: channel.id,
              guild_id: guild.id,
              ...(members.has(target) ? { user_id: target } : { role_id: target }),
              allow: o.allow,
              deny: o.deny,
            })),
          )
          .execute()
      }
      model.channels.push({ id: channel.id, isPrivate, members: channelMembers, overwrites })
      await post(channel.id)
    }
    world.guilds.push(model)
  }
  const pairs = new Set<string>()
  for (let d = r.int(0, 3); d > 0; d--) {
    const a = r.pick(users)
    const b = r.pick(users.filter((u) => u !== a))
    const key = [a, b].sort().join()
    if (pairs.has(key)) continue
    pairs.add(key)
    const dm = await makeDm(db, a, b)
    world.dms.push({ id: dm.id, a, b })
    await post(dm.id)
  }
  // Blocks, some between DM partners (after the DM exists).
  for (let k = r.int(0, 2); k > 0; k--) {
    const a = r.pick(users)
    const b = r.pick(users.filter((u) => u !== a))
    await db
      .insertInto('friendships')
      .values({ user_id: a, friend_id: b, status: 'blocked' })
      .onConflict((oc) => oc.doNothing())
      .execute()
  }
  return world
}

/** The model: the permissions of `user` in `guild` (api.md's computePermissions without a channel). */
function modelPerms(guild: ModelGuild, user: string): bigint {
  if (!guild.members.has(user)) return 0n
  let perms = guild.defaultPerms
  for (const role of guild.roles) if (role.holders.has(user)) perms |= role.perms
  if (guild.owner === user || (perms & ADMINISTRATOR) !== 0n) return Permissions.ALL
  return perms
}

/**
 * The model of a member's permissions in a channel, in Discord's order: base;
 * owner/ADMINISTRATOR → ALL; @everyone overwrite (deny, allow); the member's
 * roles' overwrites together (OR of denies, OR of allows); the member's own;
 * without ADMINISTRATOR (an overwrite's grants nothing); a private channel → 0 for a non-channel-member; no VIEW_CHANNEL → 0.
 */
function modelChannelPerms(guild: ModelGuild, channel: ModelChannel, user: string): bigint {
  if (!guild.members.has(user)) return 0n
  const base = modelPerms(guild, user)
  if (base === Permissions.ALL) return base
  let perms = base
  const everyone = channel.overwrites.get(guild.defaultRoleId)
  if (everyone) perms = (perms & ~everyone.deny) | everyone.allow
  let deny = 0n
  let allow = 0n
  for (const role of guild.roles) {
    const o = channel.overwrites.get(role.id)
    if (o && role.holders.has(user)) {
      deny |= o.deny
      allow |= o.allow
    }
  }
  perms = (perms & ~deny) | allow
  const own = channel.overwrites.get(user)
  if (own) perms = (perms & ~own.deny) | own.allow
  // An overwrite's ADMINISTRATOR grants nothing (only the base does, above).
  perms &= ~ADMINISTRATOR
  if (channel.isPrivate && !channel.members.has(user)) return 0n
  return (perms & VIEW_CHANNEL) === 0n ? 0n : perms
}

function modelCanAccess(world: World, channelId: string, user: string): boolean {
  const dm = world.dms.find((d) => d.id === channelId)
  if (dm) return dm.a === user || dm.b === user
  for (const guild of world.guilds) {
    const channel = guild.channels.find((c) => c.id === channelId)
    if (!channel) continue
    return (modelChannelPerms(guild, channel, user) & VIEW_CHANNEL) !== 0n
  }
  return false
}

describe('access rule, 30 random worlds', () => {
  it('search, visible channels, canAccessChannel, computePermissions and DM lists match the model', async () => {
    const mismatches: string[] = []
    let checks = 0
    let worldsOverwrites = 0
    for (const seed of SEEDS) {
      const world = await buildWorld(seed)
      for (const g of world.guilds)
        for (const c of g.channels) worldsOverwrites += c.overwrites.size
      const allChannels = [
        ...world.guilds.flatMap((g) => g.channels.map((c) => c.id)),
        ...world.dms.map((d) => d.id),
      ]
      for (const user of world.users) {
        const who = `seed ${seed} user ${world.users.indexOf(user)}`
        // canAccessChannel over every channel of the world.
        for (const channelId of allChannels) {
          checks++
          const got = await canAccessChannel(t.db, { channel_id: channelId, user_id: user })
          const want = modelCanAccess(world, channelId, user)
          if (got !== want)
            mismatches.push(`${who}: canAccessChannel(${channelId}) = ${got}, model ${want}`)
        }
        for (const guild of world.guilds) {
          checks++
          const visible = (await listVisibleChannels(t.db, { guild_id: guild.id, user_id: user }))
            .map((c) => c.id)
            .sort()
          const want = guild.channels
            .filter((c) => modelCanAccess(world, c.id, user))
            .map((c) => c.id)
            .sort()
          if (visible.join() !== want.join()) {
            mismatches.push(`${who}: listVisibleChannels = [${visible}], model [${want}]`)
          }
          checks++
          const perms = await computePermissions(t.db, { guild_id: guild.id, user_id: user })
          if (
            hasPermission(perms, VIEW_CHANNEL) !==
            hasPermission(modelPerms(guild, user), VIEW_CHANNEL)
          ) {
            mismatches.push(
              `${who}: computePermissions VIEW_CHANNEL differs (${perms} vs ${modelPerms(guild, user)})`,
            )
          }
          for (const channel of guild.channels) {
            checks++
            const channelPerms = await computePermissions(t.db, {
              guild_id: guild.id,
              user_id: user,
              channel_id: channel.id,
            })
            const wantPerms = modelChannelPerms(guild, channel, user)
            if (channelPerms !== wantPerms) {
              mismatches.push(
                `${who}: computePermissions(channel) = ${channelPerms}, model ${wantPerms}`,
              )
            }
          }
          // Search scoped to one guild never leaves the user's access (nor the guild).
          checks++
          const scoped = await searchMessages(t.db, {
            user_id: user,
            query: 'zebra',
            guild_id: guild.id,
            limit: 100,
          })
          for (const m of scoped) {
            if (
              !guild.channels.some((c) => c.id === m.channel_id) ||
              !modelCanAccess(world, m.channel_id, user)
            ) {
              mismatches.push(`${who}: guild-scoped search returned ${m.id} from ${m.channel_id}`)
            }
          }
        }
        // Search: exactly the live messages of the channels the user can access.
        checks++
        const found = (await searchMessages(t.db, { user_id: user, query: 'zebra', limit: 100 }))
          .map((m) => m.id)
          .sort()
        const want = [...world.messages]
          .filter(([, channelId]) => modelCanAccess(world, channelId, user))
          .map(([id]) => id)
          .sort()
        const leaked = found.filter((id) => !want.includes(id))
        const missing = want.filter((id) => !found.includes(id))
        if (leaked.length > 0) mismatches.push(`${who}: search LEAKED ${leaked.length} message(s)`)
        if (missing.length > 0)
          mismatches.push(`${who}: search missed ${missing.length} accessible message(s)`)
        // Search restricted to explicit channel ids: never more than access allows.
        checks++
        const explicit = await searchMessages(t.db, {
          user_id: user,
          query: 'zebra',
          channel_ids: allChannels,
          limit: 100,
        })
        for (const m of explicit) {
          if (!modelCanAccess(world, m.channel_id, user))
            mismatches.push(`${who}: channel_ids search LEAKED ${m.id}`)
        }
        // DM list: exactly the user's DMs.
        checks++
        const dms = await listDmChannels(t.db, user)
        const gotDms = dms.map((d) => d.id).sort()
        const wantDms = world.dms
          .filter((d) => d.a === user || d.b === user)
          .map((d) => d.id)
          .sort()
        if (gotDms.join() !== wantDms.join())
          mismatches.push(`${who}: listDmChannels = [${gotDms}], model [${wantDms}]`)
        for (const d of dms) {
          const dm = world.dms.find((x) => x.id === d.id)
          const other = dm && (dm.a === user ? dm.b : dm.a)
          if (d.other_user.id !== other)
            mismatches.push(`${who}: listDmChannels other_user wrong for ${d.id}`)
        }
      }
    }
    const overwriteCount = worldsOverwrites
    console.info(
      `[reliability] access: ${SEEDS.length} worlds (${overwriteCount} overwrites), ${checks} checks against the model`,
    )
    expect(overwriteCount).toBeGreaterThan(100)
    expect(mismatches.slice(0, 30)).toEqual([])
  }, 300_000) // generous: this ran 80 s with both cores loaded
})
