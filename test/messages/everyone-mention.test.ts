/**
 * Issue 22, defect 6: a role mention of the guild's default (`@everyone`) role
 * mentions every member, so sendMessage needs MENTION_EVERYONE for it exactly
 * as for `mentions.everyone`, on the full path and on the cached one.
 */
import { describe, expect, it } from 'vitest'
import {
  createMessage,
  DEFAULT_PERMISSIONS,
  InvalidInputError,
  listChannelReadStates,
  PermissionDeniedError,
  Permissions,
  sendMessage,
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

const t = useTestDatabase()
const { MENTION_EVERYONE } = Permissions

/** A guild of an owner and five members; the default role has DEFAULT_PERMISSIONS (no MENTION_EVERYONE). */
async function world() {
  const owner = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  const members = []
  for (let i = 0; i < 5; i++) {
    const user = await makeUser(t.db)
    await makeMember(t.db, guild.id, user.id)
    members.push(user)
  }
  const channel = await makeChannel(t.db, guild.id)
  expect(DEFAULT_PERMISSIONS & MENTION_EVERYONE).toBe(0n)
  return { owner, guild, members, channel }
}

const mentionCount = async (user_id: string, guild_id: string, channel_id: string) =>
  (await listChannelReadStates(t.db, { user_id, guild_id })).find(
    (s) => s.channel_id === channel_id,
  )?.mention_count

async function refusedMentionEveryone(call: () => Promise<unknown>) {
  const before = await countRows(t.db, ['messages', 'message_mentions'])
  const err = await call().catch((e: unknown) => e)
  expect(err).toBeInstanceOf(PermissionDeniedError)
  expect((err as PermissionDeniedError).reason).toBe('missing_permission')
  expect((err as PermissionDeniedError).permission).toBe(MENTION_EVERYONE)
  expect(await countRows(t.db, ['messages', 'message_mentions'])).toEqual(before)
}

describe('@everyone by its role id', () => {
  it('needs MENTION_EVERYONE like mentions.everyone: nobody is pinged', async () => {
    const { guild, members, channel } = await world()
    const [author, ...others] = members
    if (!author) throw new Error('no members')
    const send = (mentions: Parameters<typeof sendMessage>[1]['mentions']) =>
      sendMessage(t.db, { channel_id: channel.id, author_id: author.id, content: 'hey', mentions })
    // The full path (no stored permissions yet).
    await refusedMentionEveryone(() => send({ role_ids: [guild.defaultRole.id] }))
    // The cached path: a plain send stores the author's permissions first.
    await send(undefined)
    await refusedMentionEveryone(() => send({ role_ids: [guild.defaultRole.id] }))
    // Mixed with a role the author may mention, and with duplicates in any case.
    const role = await makeRole(t.db, guild.id)
    await refusedMentionEveryone(() =>
      send({ role_ids: [role.id, guild.defaultRole.id.toUpperCase(), guild.defaultRole.id] }),
    )
    // The flag itself is refused the same way, as before.
    await refusedMentionEveryone(() => send({ everyone: true }))
    for (const other of others) {
      expect(await mentionCount(other.id, guild.id, channel.id)).toBe(0)
    }
    // An ordinary role mention still needs nothing more.
    const ok = await send({ role_ids: [role.id] })
    expect(ok.content).toBe('hey')
    // A default role of another guild is not a role of this one: invalid, as before.
    const elsewhere = await makeGuild(t.db, author.id)
    const foreign = await send({ role_ids: [elsewhere.defaultRole.id] }).catch((e: unknown) => e)
    expect(foreign).toBeInstanceOf(InvalidInputError)
    expect(await send({ role_ids: [unknownId()] }).catch((e: unknown) => e)).toBeInstanceOf(
      InvalidInputError,
    )
  })

  it('with MENTION_EVERYONE it is accepted and pings every other member, on both paths', async () => {
    const { guild, members, channel } = await world()
    const [author, ...others] = members
    if (!author) throw new Error('no members')
    const heralds = await makeRole(t.db, guild.id, { permissions: MENTION_EVERYONE })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: guild.id, user_id: author.id, role_id: heralds.id })
      .execute()
    const send = () =>
      sendMessage(t.db, {
        channel_id: channel.id,
        author_id: author.id,
        content: 'all hands',
        mentions: { role_ids: [guild.defaultRole.id] },
      })
    await send() // the full path, which stores the permissions
    await send() // the cached path
    for (const other of others) {
      expect(await mentionCount(other.id, guild.id, channel.id)).toBe(2)
    }
  })

  it('createMessage stays trusted for both spellings', async () => {
    const { owner, guild, members, channel } = await world()
    await createMessage(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      content: 'trusted',
      mentions: { role_ids: [guild.defaultRole.id] },
    })
    for (const member of members) {
      expect(await mentionCount(member.id, guild.id, channel.id)).toBe(1)
    }
  })
})
