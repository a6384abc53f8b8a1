import { describe, expect, it } from 'vitest'
import { InvalidInputError, Permissions, searchMessages } from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeDm,
  makeGuild,
  makeMember,
  makeMessage,
  makeUser,
  unknownId,
} from '../support/factories.ts'

const t = useTestDatabase()

async function world() {
  const owner = await makeUser(t.db)
  const member = await makeUser(t.db)
  const stranger = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  await t.db
    .updateTable('roles')
    .set({ permissions: Permissions.VIEW_CHANNEL | Permissions.SEND_MESSAGES })
    .where('id', '=', guild.defaultRole.id)
    .execute()
  await makeMember(t.db, guild.id, member.id)
  const pub = await makeChannel(t.db, guild.id)
  const priv = await makeChannel(t.db, guild.id, { is_private: true })
  const otherGuild = await makeGuild(t.db, stranger.id)
  const foreign = await makeChannel(t.db, otherGuild.id)
  const dm = await makeDm(t.db, member.id, stranger.id)
  const dmOthers = await makeDm(t.db, owner.id, stranger.id)
  return { owner, member, stranger, guild, pub, priv, foreign, dm, dmOthers }
}

describe('searchMessages', () => {
  it('finds only messages in channels the user may access, newest first, never soft-deleted', async () => {
    const w = await world()
    const word = `kiwi${Date.now()}`
    const inPub = await makeMessage(t.db, w.pub.id, w.owner.id, { content: `a ${word} in public` })
    await makeMessage(t.db, w.priv.id, w.owner.id, { content: `${word} in private` })
    await makeMessage(t.db, w.foreign.id, w.stranger.id, { content: `${word} elsewhere` })
    const inDm = await makeMessage(t.db, w.dm.id, w.stranger.id, { content: `psst ${word}` })
    await makeMessage(t.db, w.dmOthers.id, w.stranger.id, { content: `${word} not for member` })
    const deleted = await makeMessage(t.db, w.pub.id, w.owner.id, { content: `${word} deleted` })
    await t.db
      .updateTable('messages')
      .set({ deleted_at: new Date() })
      .where('id', '=', deleted.id)
      .execute()
    await makeMessage(t.db, w.pub.id, w.owner.id, { content: 'unrelated text' })

    const found = await searchMessages(t.db, { user_id: w.member.id, query: word })
    expect(found.map((m) => m.id)).toEqual([inDm.id, inPub.id])
    expect(Object.keys(found[0]!).sort()).toEqual(
      [
        'author_id',
        'channel_id',
        'content',
        'created_at',
        'deleted_at',
        'edited_at',
        'id',
        'reply_to',
        'seq',
      ].sort(),
    )
    // Asking for inaccessible channels explicitly does not help.
    const asked = await searchMessages(t.db, {
      user_id: w.member.id,
      query: word,
      channel_ids: [w.priv.id, w.foreign.id, w.dmOthers.id, w.pub.id],
    })
    expect(asked.map((m) => m.id)).toEqual([inPub.id])
    // guild_id narrows (and excludes DMs); another guild's id gives nothing.
    expect(
      (await searchMessages(t.db, { user_id: w.member.id, query: word, guild_id: w.guild.id })).map(
        (m) => m.id,
      ),
    ).toEqual([inPub.id])
    expect(
      await searchMessages(t.db, {
        user_id: w.member.id,
        query: word,
        guild_id: w.foreign.guild_id!,
      }),
    ).toEqual([])
    // The owner sees the private channel and their own DM, not the member's DM.
    expect(
      (await searchMessages(t.db, { user_id: w.owner.id, query: word })).map((m) => m.content),
    ).toEqual([`${word} not for member`, `${word} in private`, `a ${word} in public`])
    // A stranger to the guild sees only their guild and DMs.
    expect((await searchMessages(t.db, { user_id: w.stranger.id, query: word })).length).toBe(3)
    expect(await searchMessages(t.db, { user_id: unknownId(), query: word })).toEqual([])
  })

  it('pages with the keyset `before`', async () => {
    const w = await world()
    const word = `mango${Date.now()}`
    const ids: string[] = []
    for (let i = 0; i < 7; i++)
      ids.push((await makeMessage(t.db, w.pub.id, w.member.id, { content: `${word} #${i}` })).id)
    const seen: string[] = []
    let before: string | undefined
    for (;;) {
      const page = await searchMessages(t.db, {
        user_id: w.member.id,
        query: word,
        before,
        limit: 3,
      })
      if (page.length === 0) break
      expect(page.length).toBeLessThanOrEqual(3)
      seen.push(...page.map((m) => m.id))
      before = page.at(-1)?.id
    }
    expect(seen).toEqual([...ids].reverse())
  })

  it('web-search syntax: phrases, negation, OR; odd syntax is never an error', async () => {
    const w = await world()
    const a = await makeMessage(t.db, w.pub.id, w.member.id, { content: 'release notes draft' })
    const b = await makeMessage(t.db, w.pub.id, w.member.id, { content: 'final release notes' })
    const c = await makeMessage(t.db, w.pub.id, w.member.id, { content: 'notes about a release' })
    const q = async (query: string) =>
      (await searchMessages(t.db, { user_id: w.member.id, query, guild_id: w.guild.id })).map(
        (m) => m.id,
      )
    expect(await q('"release notes"')).toEqual([b.id, a.id])
    expect(await q('"release notes" -draft')).toEqual([b.id])
    expect(await q('draft or about')).toEqual([c.id, a.id])
    expect(await q('RELEASE')).toEqual([c.id, b.id, a.id])
    for (const odd of [
      '"unbalanced',
      '-',
      'or or',
      'OR OR release',
      '!!! ???',
      '&|!()<->:*',
      "'",
      '\\',
      '""',
      '- -',
    ]) {
      const result = await q(odd)
      expect(Array.isArray(result)).toBe(true)
    }
    expect(await q('-')).toEqual([])
  })

  it('refuses bad input and writes nothing', async () => {
    const w = await world()
    const before = await countRows(t.db)
    const base = { user_id: w.member.id, query: 'hello' }
    const bad: unknown[] = [
      { ...base, query: '' },
      { ...base, query: 'a'.repeat(257) },
      { ...base, query: 'a\u0000b' },
      { ...base, query: 'x\uD800' },
      { ...base, query: 42 },
      { ...base, user_id: 'nope' },
      { ...base, guild_id: 'nope' },
      { ...base, channel_ids: ['nope'] },
      { ...base, channel_ids: 'not-an-array' },
      { ...base, channel_ids: Array.from({ length: 1001 }, () => unknownId()) },
      { ...base, before: 'nope' },
      { ...base, limit: 0 },
      { ...base, limit: 101 },
      { ...base, limit: 2.5 },
      null,
    ]
    for (const input of bad) {
      await expect(searchMessages(t.db, input as never)).rejects.toBeInstanceOf(InvalidInputError)
    }
    expect(await searchMessages(t.db, { ...base, query: 'a'.repeat(256), limit: 100 })).toEqual([])
    expect(await searchMessages(t.db, { ...base, channel_ids: [] })).toEqual([])
    expect(await countRows(t.db)).toEqual(before)
  })
})
