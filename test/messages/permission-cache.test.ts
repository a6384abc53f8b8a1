/**
 * The stored permissions of sendMessage / readChannelMessages (migration 0007):
 * which statement decides, that a stored value is never trusted beyond its
 * channel's access_version or for bits it does not hold, and that the answers
 * agree with computePermissions while a world keeps changing.
 */
import { randomInt } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  assignRole,
  banMember,
  computePermissions,
  createDb,
  deleteChannelOverwrite,
  InvalidInputError,
  listMessageMentions,
  PermissionDeniedError,
  Permissions,
  readChannelMessages,
  removeGuildMember,
  sendMessage,
  setChannelOverwrite,
  unassignRole,
  updateRole,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeGuild,
  makeGuildWithMember,
  makeMember,
  makeRole,
  makeUser,
} from '../support/factories.ts'

const t = useTestDatabase({ max: 8 })

const { VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY, MENTION_EVERYONE, ADMINISTRATOR } =
  Permissions

/** Which statements a call ran, by their shape. */
type Kind = 'send_cached' | 'send_full' | 'read_cached' | 'read_fill' | 'read_plain' | 'other'
function kindOf(text: string): Kind {
  // The full statement also takes its position through guildstore_take_position (0012).
  if (text.includes('locked as (')) return 'send_full'
  if (text.includes('guildstore_take_position(')) return 'send_cached'
  if (text.includes("then 'ok' else 'miss' end as verdict")) return 'read_cached'
  if (text.includes('insert into channel_permission_cache')) return 'read_fill'
  if (text.includes('as verdict') && text.includes('from messages m')) return 'read_plain'
  return 'other'
}

let ran: Kind[] = []
let logged: ReturnType<typeof createDb>
beforeAll(() => {
  logged = createDb(t.pool, { log: (e) => ran.push(kindOf(e.sql)) })
})
const statements = async (call: () => Promise<unknown>) => {
  ran = []
  await call()
  return ran
}

const world = (perms: bigint) => makeGuildWithMember(t.db, perms)

const cacheRow = async (channel_id: string, user_id: string) =>
  t.db
    .selectFrom('channel_permission_cache as a')
    .innerJoin('channels as c', 'c.id', 'a.channel_id')
    .select(['a.access_version', 'a.permissions', 'c.access_version as channel_version'])
    .where('a.channel_id', '=', channel_id)
    .where('a.user_id', '=', user_id)
    .executeTakeFirst()

describe('stored permissions', () => {
  it('the first send and read run the full rule and store it; later ones run one statement', async () => {
    const w = await world(VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY)
    const send = () =>
      sendMessage(logged, { channel_id: w.channel.id, author_id: w.user.id, content: 'hi' })
    expect(await statements(send)).toEqual(['send_cached', 'send_full'])
    const row = await cacheRow(w.channel.id, w.user.id)
    expect(row?.access_version).toBe(row?.channel_version)
    expect(row?.permissions).toBe(VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY)
    expect(await statements(send)).toEqual(['send_cached'])
    expect(await statements(send)).toEqual(['send_cached'])

    const read = () => readChannelMessages(logged, { user_id: w.user.id, channel_id: w.channel.id })
    expect(await statements(read)).toEqual(['read_cached'])
    expect((await read()).map((m) => m.content)).toEqual(['hi', 'hi', 'hi'])

    // A reader who never sent: the first read stores, the next one does not need to.
    const reader = await makeUser(t.db)
    await makeMember(t.db, w.guild.id, reader.id)
    const readAs = () =>
      readChannelMessages(logged, { user_id: reader.id, channel_id: w.channel.id })
    expect(await statements(readAs)).toEqual(['read_cached', 'read_fill'])
    expect(await statements(readAs)).toEqual(['read_cached'])
    expect((await readAs()).length).toBe(3)
  })

  it('a reply with mentions is decided by the stored value too; a bad reference falls back and writes nothing', async () => {
    const w = await world(VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | MENTION_EVERYONE)
    const first = await sendMessage(t.db, {
      channel_id: w.channel.id,
      author_id: w.user.id,
      content: 'first',
    })
    const role = await makeRole(t.db, w.guild.id, { permissions: 0n })
    let reply: Awaited<ReturnType<typeof sendMessage>> | undefined
    expect(
      await statements(async () => {
        reply = await sendMessage(logged, {
          channel_id: w.channel.id,
          author_id: w.user.id,
          content: 'reply',
          reply_to: first.id,
          mentions: { user_ids: [w.owner.id], role_ids: [role.id], everyone: true },
        })
      }),
    ).toEqual(['send_cached'])
    expect(reply?.reply_to).toBe(first.id)
    expect(reply?.seq).toBe(first.seq + 1n)
    const mentions = await listMessageMentions(t.db, [reply!.id])
    expect(mentions.map((m) => [m.user_id, m.role_id, m.everyone])).toEqual([
      [w.owner.id, null, false],
      [null, role.id, false],
      [null, null, true],
    ])
    // A reply to a message of another channel: the stored value does not decide
    // (the position is not taken), the full rule reports it, nothing written.
    const elsewhere = await makeChannel(t.db, w.guild.id)
    const foreign = await sendMessage(t.db, {
      channel_id: elsewhere.id,
      author_id: w.user.id,
      content: 'elsewhere',
    })
    const before = await countRows(t.db)
    ran = []
    await expect(
      sendMessage(logged, {
        channel_id: w.channel.id,
        author_id: w.user.id,
        content: 'bad reply',
        reply_to: foreign.id,
      }),
    ).rejects.toBeInstanceOf(InvalidInputError)
    expect(ran).toEqual(['send_cached', 'send_full'])
    expect(await countRows(t.db)).toEqual(before)
    const next = await sendMessage(t.db, {
      channel_id: w.channel.id,
      author_id: w.user.id,
      content: 'next',
    })
    expect(next.seq).toBe(first.seq + 2n)
  })

  it('a revocation committed after the value was stored is never bypassed (send and read)', async () => {
    const w = await world(VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY)
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.user.id, content: 'one' })
    await readChannelMessages(t.db, { user_id: w.user.id, channel_id: w.channel.id })
    await updateRole(t.db, w.guild.defaultRole.id, { permissions: VIEW_CHANNEL })
    ran = []
    const sendErr = await sendMessage(logged, {
      channel_id: w.channel.id,
      author_id: w.user.id,
      content: 'two',
    }).catch((e: unknown) => e)
    expect(sendErr).toBeInstanceOf(PermissionDeniedError)
    expect((sendErr as PermissionDeniedError).permission).toBe(SEND_MESSAGES)
    expect(ran).toEqual(['send_cached', 'send_full'])
    const readErr = await readChannelMessages(t.db, {
      user_id: w.user.id,
      channel_id: w.channel.id,
    }).catch((e: unknown) => e)
    expect(readErr).toBeInstanceOf(PermissionDeniedError)
    expect((readErr as PermissionDeniedError).permission).toBe(READ_MESSAGE_HISTORY)
    const left = await t.db
      .selectFrom('messages')
      .select('content')
      .where('channel_id', '=', w.channel.id)
      .execute()
    expect(left.map((m) => m.content)).toEqual(['one'])
  })

  it('a bit the stored value lacks is decided by the full rule, which refreshes it', async () => {
    const w = await world(VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY)
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.user.id, content: 'one' })
    const before = await cacheRow(w.channel.id, w.user.id)
    // A grant bumps nothing: the stored value is now a strict subset.
    await updateRole(t.db, w.guild.defaultRole.id, {
      permissions: VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | MENTION_EVERYONE,
    })
    expect((await cacheRow(w.channel.id, w.user.id))?.channel_version).toBe(before?.channel_version)
    const everyone = () =>
      sendMessage(logged, {
        channel_id: w.channel.id,
        author_id: w.user.id,
        content: '@everyone',
        mentions: { everyone: true },
      })
    expect(await statements(everyone)).toEqual(['send_cached', 'send_full'])
    expect((await cacheRow(w.channel.id, w.user.id))?.permissions).toBe(
      VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | MENTION_EVERYONE,
    )
    expect(await statements(everyone)).toEqual(['send_cached'])
  })

  it('assigning a role with a deny overwrite, or making the channel private, changes the version', async () => {
    const w = await world(VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY)
    const muted = await makeRole(t.db, w.guild.id, { permissions: 0n })
    await setChannelOverwrite(t.db, {
      channel_id: w.channel.id,
      role_id: muted.id,
      allow: 0n,
      deny: SEND_MESSAGES,
    })
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.user.id, content: 'one' })
    const v0 = (await cacheRow(w.channel.id, w.user.id))?.channel_version as bigint
    await assignRole(t.db, { guild_id: w.guild.id, user_id: w.user.id, role_id: muted.id })
    const v1 = (await cacheRow(w.channel.id, w.user.id))?.channel_version as bigint
    expect(v1).toBeGreaterThan(v0)
    await expect(
      sendMessage(t.db, { channel_id: w.channel.id, author_id: w.user.id, content: 'two' }),
    ).rejects.toBeInstanceOf(PermissionDeniedError)
    // A role without deny overwrites assigned: a grant, no new version.
    const plain = await makeRole(t.db, w.guild.id, { permissions: 0n })
    await assignRole(t.db, { guild_id: w.guild.id, user_id: w.user.id, role_id: plain.id })
    expect((await cacheRow(w.channel.id, w.user.id))?.channel_version).toBe(v1)

    const other = await world(VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY)
    await readChannelMessages(t.db, { user_id: other.user.id, channel_id: other.channel.id })
    const p0 = (await cacheRow(other.channel.id, other.user.id))?.channel_version as bigint
    await t.db
      .updateTable('channels')
      .set({ is_private: true })
      .where('id', '=', other.channel.id)
      .execute()
    expect((await cacheRow(other.channel.id, other.user.id))?.channel_version).toBe(p0 + 1n)
    await expect(
      readChannelMessages(t.db, { user_id: other.user.id, channel_id: other.channel.id }),
    ).rejects.toBeInstanceOf(PermissionDeniedError)
  })

  it('in a read-only transaction a first read decides without storing', async () => {
    const w = await world(VIEW_CHANNEL | READ_MESSAGE_HISTORY)
    ran = []
    const page = await logged
      .transaction()
      .setAccessMode('read only')
      .execute((trx) => readChannelMessages(trx, { user_id: w.user.id, channel_id: w.channel.id }))
    expect(page).toEqual([])
    expect(ran.filter((k) => k !== 'other')).toEqual(['read_cached', 'read_plain'])
    expect(await cacheRow(w.channel.id, w.user.id)).toBeUndefined()
  })

  it('agrees with computePermissions while grants and revocations keep changing the world', async () => {
    const randomPerms = () => {
      let p = 0n
      for (const f of [VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY, MENTION_EVERYONE])
        if (randomInt(4) > 0) p |= f
      if (randomInt(15) === 0) p |= ADMINISTRATOR
      return p
    }
    const o = await makeUser(t.db)
    const g = await makeGuild(t.db, o.id)
    const roles = [g.defaultRole]
    for (let i = 0; i < 3; i++)
      roles.push(await makeRole(t.db, g.id, { permissions: randomPerms() }))
    const users: { id: string }[] = []
    const members = new Set<string>()
    for (let i = 0; i < 4; i++) {
      const u = await makeUser(t.db)
      users.push(u)
      await makeMember(t.db, g.id, u.id)
      members.add(u.id)
    }
    const channels = [await makeChannel(t.db, g.id), await makeChannel(t.db, g.id)]
    const pick = <T>(xs: readonly T[]) => xs[randomInt(xs.length)] as T
    const memberList = () => users.filter((u) => members.has(u.id))

    const mutations: Record<string, () => Promise<unknown>> = {
      'role bits set': () => updateRole(t.db, pick(roles).id, { permissions: randomPerms() }),
      'role assigned': async () => {
        const u = memberList()[0]
        if (!u) return
        await assignRole(t.db, {
          guild_id: g.id,
          user_id: pick(memberList()).id,
          role_id: pick(roles.slice(1)).id,
        })
      },
      'role unassigned': async () => {
        if (memberList().length === 0) return
        await unassignRole(t.db, {
          guild_id: g.id,
          user_id: pick(memberList()).id,
          role_id: pick(roles.slice(1)).id,
        })
      },
      'overwrite set': async () => {
        const allow = randomPerms() & ~ADMINISTRATOR
        const deny = randomPerms() & ~ADMINISTRATOR & ~allow
        const target =
          randomInt(2) === 0 || memberList().length === 0
            ? { role_id: pick(roles).id }
            : { user_id: pick(memberList()).id }
        await setChannelOverwrite(t.db, { channel_id: pick(channels).id, ...target, allow, deny })
      },
      'overwrite deleted': () =>
        deleteChannelOverwrite(t.db, { channel_id: pick(channels).id, role_id: pick(roles).id }),
      'privacy toggled': async () => {
        const c = pick(channels)
        await t.db
          .updateTable('channels')
          .set((eb) => ({ is_private: eb.not('is_private') }))
          .where('id', '=', c.id)
          .execute()
      },
      'channel member added': async () => {
        if (memberList().length === 0) return
        await t.db
          .insertInto('channel_members')
          .values({ channel_id: pick(channels).id, guild_id: g.id, user_id: pick(memberList()).id })
          .onConflict((oc) => oc.doNothing())
          .execute()
      },
      'channel member removed': () =>
        t.db
          .deleteFrom('channel_members')
          .where('channel_id', '=', pick(channels).id)
          .where('user_id', '=', pick(users).id)
          .execute(),
      'member removed': async () => {
        const u = pick(users)
        await removeGuildMember(t.db, { guild_id: g.id, user_id: u.id })
        members.delete(u.id)
      },
      'member banned': async () => {
        const u = pick(users)
        await banMember(t.db, { guild_id: g.id, user_id: u.id })
        members.delete(u.id)
        await t.db.deleteFrom('guild_bans').where('guild_id', '=', g.id).execute()
      },
      'member (re)joined': async () => {
        const u = pick(users)
        if (members.has(u.id)) return
        await makeMember(t.db, g.id, u.id)
        members.add(u.id)
      },
    }
    const names = Object.keys(mutations)
    const applied = new Map<string, number>()
    let allowed = 0
    let refused = 0
    let cachedSends = 0
    let cachedReads = 0
    for (let step = 0; step < 60; step++) {
      const name = step < names.length ? (names[step] as string) : pick(names)
      await mutations[name]?.()
      applied.set(name, (applied.get(name) ?? 0) + 1)
      for (const u of [o, ...users]) {
        for (const c of channels) {
          const perms = await computePermissions(t.db, {
            guild_id: g.id,
            user_id: u.id,
            channel_id: c.id,
          })
          const has = (f: bigint) => (perms & f) === f
          const everyone = randomInt(3) === 0
          const expectSend =
            has(VIEW_CHANNEL) && has(SEND_MESSAGES) && (!everyone || has(MENTION_EVERYONE))
          ran = []
          const sent = await sendMessage(logged, {
            channel_id: c.id,
            author_id: u.id,
            content: `step ${step}`,
            mentions: { everyone },
          }).then(
            () => true,
            (e: unknown) => {
              expect(e).toBeInstanceOf(PermissionDeniedError)
              return false
            },
          )
          expect(sent, `step ${step} (${name}): send perms=${perms} everyone=${everyone}`).toBe(
            expectSend,
          )
          if (sent && ran.length === 1) cachedSends++
          if (sent) allowed++
          else refused++
          ran = []
          const read = await readChannelMessages(logged, {
            user_id: u.id,
            channel_id: c.id,
            limit: 1,
          }).then(
            () => true,
            (e: unknown) => {
              expect(e).toBeInstanceOf(PermissionDeniedError)
              return false
            },
          )
          expect(read, `step ${step} (${name}): read perms=${perms}`).toBe(
            has(VIEW_CHANNEL) && has(READ_MESSAGE_HISTORY),
          )
          if (read && ran.length === 1) cachedReads++
        }
      }
    }
    // Every kind of change happened, both outcomes were seen, and the stored
    // values decided a good share of the calls (not only the full rule).
    expect([...applied.keys()].sort()).toEqual([...names].sort())
    expect(allowed).toBeGreaterThan(20)
    expect(refused).toBeGreaterThan(20)
    expect(cachedSends).toBeGreaterThan(10)
    expect(cachedReads).toBeGreaterThan(10)
  }, 120_000)
})
