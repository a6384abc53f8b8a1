/**
 * Read state and mention counts against an in-memory model, over random worlds
 * (seeded PRNG): a guild with roles, a private channel and members, DMs; then a
 * random run of posts with random mentions, soft deletes, purges and bursts of
 * concurrent read markers (some racing a purge). After every run, for every
 * user, listChannelReadStates (guild and DMs) and listDmChannels must equal the
 * model: newest live message, marker = the newest message any marker call
 * named, unread = live messages of others after it, mentions = those naming
 * the user, a role they hold (the default role too) or @everyone.
 *
 * Which channels a user sees is listVisibleChannels' answer (itself checked
 * against a model in access.test.ts); the list must be exactly those.
 */
import { describe, expect, it } from 'vitest'
import {
  createMessage,
  deleteMessage,
  InvalidInputError,
  listChannelReadStates,
  listDmChannels,
  listVisibleChannels,
  markChannelRead,
  markDmRead,
  Permissions,
  purgeDeletedMessages,
  UNREAD_COUNT_CAP,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeChannel, makeDm, makeRole, makeUser } from '../support/factories.ts'

const t = useTestDatabase({ max: 12 })

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
    chance: (p: number) => next() < p,
    pick: <T>(items: readonly T[]) => items[Math.floor(next() * items.length)] as T,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    subset: <T>(items: readonly T[], p: number) => items.filter(() => next() < p),
  }
}

interface ModelMessage {
  id: string
  seq: bigint
  author: string
  state: 'live' | 'deleted' | 'purged'
  users: Set<string>
  roles: Set<string>
  everyone: boolean
}
interface ModelChannel {
  id: string
  /** Who may post (members / participants). */
  posters: string[]
  isDm: boolean
  messages: ModelMessage[]
  /** user → the marked message with the greatest seq. */
  markers: Map<string, ModelMessage>
}

const SEEDS = Array.from({ length: 12 }, (_, i) => 4242 + i * 7919)

describe(`read state model, ${SEEDS.length} random worlds`, () => {
  it.each(SEEDS)('world %i', async (seed) => {
    const r = prng(seed)
    const db = t.db
    const users = (await Promise.all(Array.from({ length: 5 }, () => makeUser(db)))).map(
      (u) => u.id,
    )
    const [owner] = users as [string]
    const guild = await db
      .insertInto('guilds')
      .values({ name: `rs${seed}`, owner_id: owner })
      .returning('id')
      .executeTakeFirstOrThrow()
    const members = [owner, ...users.slice(1).filter(() => r.chance(0.75))]
    await db
      .insertInto('guild_members')
      .values(members.map((user_id) => ({ guild_id: guild.id, user_id })))
      .execute()
    const defaultRole = await makeRole(db, guild.id, {
      name: '@everyone',
      is_default: true,
      position: 0,
      permissions: r.chance(0.8) ? Permissions.VIEW_CHANNEL | Permissions.SEND_MESSAGES : 0n,
    })
    /** role id → holders (the default role: every member). */
    const holders = new Map<string, Set<string>>([[defaultRole.id, new Set(members)]])
    for (let k = 0; k < 2; k++) {
      const role = await makeRole(db, guild.id, {
        position: k + 1,
        permissions: r.chance(0.5) ? Permissions.VIEW_CHANNEL : 0n,
      })
      const held = r.subset(members, 0.5)
      if (held.length > 0) {
        await db
          .insertInto('member_roles')
          .values(held.map((user_id) => ({ guild_id: guild.id, user_id, role_id: role.id })))
          .execute()
      }
      holders.set(role.id, new Set(held))
    }
    const roleIds = [...holders.keys()]
    const channels: ModelChannel[] = []
    for (let c = 0; c < 3; c++) {
      const isPrivate = c === 2
      const ch = await makeChannel(db, guild.id, { position: c, is_private: isPrivate })
      if (isPrivate) {
        const cm = r.subset(members, 0.5)
        if (cm.length > 0) {
          await db
            .insertInto('channel_members')
            .values(cm.map((user_id) => ({ channel_id: ch.id, guild_id: guild.id, user_id })))
            .execute()
        }
      }
      channels.push({ id: ch.id, posters: members, isDm: false, messages: [], markers: new Map() })
    }
    for (const [a, b] of [
      [users[0], users[1]],
      [users[1], users[2]],
      [users[3], users[0]],
    ] as [string, string][]) {
      const dm = await makeDm(db, a, b)
      channels.push({ id: dm.id, posters: [a, b], isDm: true, messages: [], markers: new Map() })
    }

    const markable = (c: ModelChannel) => c.messages.filter((m) => m.state !== 'purged')
    const applyMarker = (c: ModelChannel, user: string, m: ModelMessage) => {
      const cur = c.markers.get(user)
      if (!cur || cur.seq < m.seq) c.markers.set(user, m)
    }
    let purgeRaces = 0

    for (let step = 0; step < 70; step++) {
      const c = r.pick(channels)
      const roll = r.int(0, 99)
      if (roll < 55) {
        const author = r.pick(c.posters)
        const mentionUsers = r.chance(0.3) ? r.subset(users, 0.3) : []
        const mentionRoles = !c.isDm && r.chance(0.3) ? r.subset(roleIds, 0.4) : []
        const everyone = r.chance(0.15)
        const m = await createMessage(db, {
          channel_id: c.id,
          author_id: author,
          content: `s${seed} #${step}`,
          mentions: { user_ids: mentionUsers, role_ids: mentionRoles, everyone },
        })
        c.messages.push({
          id: m.id,
          seq: m.seq,
          author,
          state: 'live',
          users: new Set(mentionUsers),
          roles: new Set(mentionRoles),
          everyone,
        })
      } else if (roll < 70) {
        const live = c.messages.filter((m) => m.state === 'live')
        if (live.length === 0) continue
        const m = r.pick(live)
        expect(await deleteMessage(db, m.id)).toBe(true)
        m.state = 'deleted'
      } else {
        // A burst of concurrent markers on one channel, sometimes racing a purge.
        const options = markable(c)
        if (options.length === 0) continue
        const user = r.pick(c.posters)
        const picks = Array.from({ length: r.int(1, 4) }, () => r.pick(options))
        const withPurge = r.chance(0.3)
        const calls = picks.map((m) =>
          (c.isDm && r.chance(0.5) ? markDmRead : markChannelRead)(db, {
            channel_id: c.id,
            user_id: user,
            message_id: m.id,
          }),
        )
        const purge = withPurge
          ? purgeDeletedMessages(db, { older_than: new Date(Date.now() + 60_000) })
          : Promise.resolve(0)
        const results = await Promise.allSettled(calls)
        await purge
        results.forEach((res, k) => {
          const m = picks[k] as ModelMessage
          if (res.status === 'fulfilled') applyMarker(c, user, m)
          else {
            // Only a purge may refuse a marker: its message was gone by then.
            expect(res.reason).toBeInstanceOf(InvalidInputError)
            expect(withPurge && m.state === 'deleted').toBe(true)
            purgeRaces++
          }
        })
        if (withPurge) {
          for (const ch of channels) {
            for (const m of ch.messages) if (m.state === 'deleted') m.state = 'purged'
          }
        }
      }
    }

    // ---- compare ----------------------------------------------------------
    const rolesOf = (user: string) =>
      new Set([...holders].filter(([, h]) => h.has(user)).map(([id]) => id))
    const expectedState = (c: ModelChannel, user: string) => {
      const live = c.messages.filter((m) => m.state === 'live')
      const marker = c.markers.get(user)
      const unread = live.filter((m) => m.author !== user && (!marker || m.seq > marker.seq))
      const held = rolesOf(user)
      const mentioning = unread.filter(
        (m) => m.everyone || m.users.has(user) || [...m.roles].some((role) => held.has(role)),
      )
      return {
        channel_id: c.id,
        last_message_id: live.at(-1)?.id ?? null,
        last_read_message_id: marker?.id ?? null,
        unread_count: Math.min(unread.length, UNREAD_COUNT_CAP),
        mention_count: Math.min(mentioning.length, UNREAD_COUNT_CAP),
        // No notification settings in these worlds: the defaults.
        muted: false,
        notification_level: 'all',
      }
    }
    for (const user of users) {
      const visible = await listVisibleChannels(db, { guild_id: guild.id, user_id: user })
      const got = await listChannelReadStates(db, { user_id: user, guild_id: guild.id })
      expect(got.map((s) => s.channel_id)).toEqual(visible.map((v) => v.id))
      expect(got).toEqual(
        visible.map((v) =>
          expectedState(channels.find((c) => c.id === v.id) as ModelChannel, user),
        ),
      )
      const dms = channels.filter((c) => c.isDm && c.posters.includes(user))
      const gotDms = await listChannelReadStates(db, { user_id: user })
      expect([...gotDms].sort((a, b) => (a.channel_id < b.channel_id ? -1 : 1))).toEqual(
        dms
          .map((c) => expectedState(c, user))
          .sort((a, b) => (a.channel_id < b.channel_id ? -1 : 1)),
      )
      const list = await listDmChannels(db, user)
      for (const c of dms) {
        expect(list.find((d) => d.id === c.id)?.unread_count).toBe(
          expectedState(c, user).unread_count,
        )
      }
    }
    if (process.env.GUILDSTORE_TEST_VERBOSE) console.error({ seed, purgeRaces })
  })
})
