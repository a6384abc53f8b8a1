/**
 * Custom emojis (issue 25, item 4; migration 0015): createGuildEmoji,
 * updateGuildEmoji, deleteGuildEmoji, listGuildEmojis, the per-guild caps
 * (exact under 100 concurrent creates), and custom emoji reactions: an
 * existing emoji by its current name, membership of its guild,
 * USE_EXTERNAL_EMOJIS from another guild, role restriction, delete cascade.
 */
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import {
  addReaction,
  ConflictError,
  createGuildEmoji,
  DatabaseUnavailableError,
  DEFAULT_PERMISSIONS,
  deleteGuild,
  deleteGuildEmoji,
  deleteRole,
  InvalidInputError,
  listAuditLog,
  listGuildEmojis,
  listReactions,
  MAX_REACTION_EMOJIS,
  NotFoundError,
  PermissionDeniedError,
  Permissions,
  removeReaction,
  UniqueViolationError,
  unassignRole,
  updateGuild,
  updateGuildEmoji,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeDm,
  makeEmoji,
  makeGuild,
  makeMember,
  makeMessage,
  makeRole,
  makeUser,
  unknownId,
} from '../support/factories.ts'
import { BAD_IDS, expectInvalidAndNothingWritten, TEXT_INPUTS } from '../support/hostile-inputs.ts'
import { raceAtBarrier, waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase({ max: 40 })

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  )

/** A guild with its owner, a plain member, a channel and a message. */
async function world() {
  const owner = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  const member = await makeUser(t.db)
  await makeMember(t.db, guild.id, member.id)
  const channel = await makeChannel(t.db, guild.id)
  const message = await makeMessage(t.db, channel.id, owner.id)
  return { owner, guild, member, channel, message }
}

const emojiInput = (guild_id: string, creator_id: string, more: object = {}) => ({
  guild_id,
  name: `e_${Math.random().toString(36).slice(2, 8)}`,
  storage_key: `emojis/${unknownId()}.png`,
  creator_id,
  ...more,
})

/** The stored reaction counts agree with the reaction rows (and the summary). */
async function countsConsistent(messageId: string): Promise<number> {
  const { rows } = await sql<{ bad: number; distinct: number; summary: number | null }>`
    select
      (select count(*)::int from (
        select emoji, count(*) n from message_reactions where message_id = ${messageId} group by emoji
      ) r full join (
        select emoji, count n from message_reaction_counts where message_id = ${messageId}
      ) c using (emoji) where r.n is distinct from c.n) as bad,
      (select count(distinct emoji)::int from message_reactions where message_id = ${messageId}) as distinct,
      (select emoji_count from message_reaction_summaries where message_id = ${messageId}) as summary`.execute(
    t.db,
  )
  const row = rows[0]!
  expect(row.bad).toBe(0)
  expect(row.summary ?? 0).toBe(row.distinct)
  return row.distinct
}

describe('createGuildEmoji / updateGuildEmoji / deleteGuildEmoji / listGuildEmojis', () => {
  it('creates, lists, renames, restricts and deletes, with an audit entry each', async () => {
    const w = await world()
    const role = await makeRole(t.db, w.guild.id)
    const as = { actor_id: w.owner.id, reason: 'fun' }
    const party = await createGuildEmoji(
      t.db,
      {
        guild_id: w.guild.id,
        name: 'party',
        storage_key: 'emojis/party.png',
        creator_id: w.member.id,
        role_ids: [role.id.toUpperCase()],
      },
      as,
    )
    expect(party).toMatchObject({
      guild_id: w.guild.id,
      name: 'party',
      animated: false,
      storage_key: 'emojis/party.png',
      creator_id: w.member.id,
      restricted: true,
      role_ids: [role.id],
    })
    const wave = await createGuildEmoji(t.db, {
      ...emojiInput(w.guild.id, w.owner.id),
      name: 'wave',
      animated: true,
    })
    expect(wave).toMatchObject({ animated: true, restricted: false, role_ids: [] })
    expect((await listGuildEmojis(t.db, w.guild.id)).map((e) => e.name)).toEqual(['party', 'wave'])

    const renamed = await updateGuildEmoji(
      t.db,
      { emoji_id: party.id, name: 'partyparrot', role_ids: [] },
      as,
    )
    expect(renamed).toMatchObject({ name: 'partyparrot', restricted: false, role_ids: [] })
    expect(await updateGuildEmoji(t.db, { emoji_id: wave.id })).toEqual(wave)
    expect(await updateGuildEmoji(t.db, { emoji_id: unknownId(), name: 'zz' })).toBeUndefined()

    const gone = await deleteGuildEmoji(t.db, { emoji_id: party.id }, as)
    expect(gone).toEqual({ emoji: renamed, storage_keys: ['emojis/party.png'] })
    expect(await deleteGuildEmoji(t.db, { emoji_id: party.id })).toBeUndefined()
    expect((await listGuildEmojis(t.db, w.guild.id)).map((e) => e.id)).toEqual([wave.id])

    const log = await listAuditLog(t.db, w.guild.id)
    const mine = log.filter((e) => e.target_id === party.id)
    expect(mine.map((e) => e.action)).toEqual(['emoji_delete', 'emoji_update', 'emoji_create'])
    expect(mine.every((e) => e.actor_id === w.owner.id && e.reason === 'fun')).toBe(true)
    expect(mine[2]!.changes).toMatchObject({
      name: { before: null, after: 'party' },
      restricted: { before: null, after: true },
      role_ids: { before: null, after: role.id },
    })
    expect(mine[1]!.changes).toEqual({
      name: { before: 'party', after: 'partyparrot' },
      restricted: { before: true, after: false },
      role_ids: { before: role.id, after: null },
    })
    expect(mine[0]!.changes).toMatchObject({
      name: { before: 'partyparrot', after: null },
      storage_key: { before: 'emojis/party.png', after: null },
    })
    const trusted = log.find((e) => e.target_id === wave.id)
    expect(trusted).toMatchObject({ action: 'emoji_create', actor_id: null })
  })

  it('names are unique per guild by the identity rule (any case), free across guilds', async () => {
    const w = await world()
    const other = await world()
    const a = await createGuildEmoji(t.db, { ...emojiInput(w.guild.id, w.owner.id), name: 'Blob' })
    for (const name of ['blob', 'BLOB', 'Blob']) {
      const e = await refusal(
        createGuildEmoji(t.db, { ...emojiInput(w.guild.id, w.owner.id), name }),
      )
      expect(e).toBeInstanceOf(UniqueViolationError)
      expect((e as UniqueViolationError).constraint).toBe('guild_emojis_name_identity_key')
    }
    const b = await createGuildEmoji(t.db, { ...emojiInput(w.guild.id, w.owner.id), name: 'cat' })
    expect(await refusal(updateGuildEmoji(t.db, { emoji_id: b.id, name: 'BLOB' }))).toBeInstanceOf(
      UniqueViolationError,
    )
    // Its own name in another case is a rename, not a clash.
    expect((await updateGuildEmoji(t.db, { emoji_id: a.id, name: 'BLOB' }))?.name).toBe('BLOB')
    await createGuildEmoji(t.db, { ...emojiInput(other.guild.id, other.owner.id), name: 'blob' })
    expect(await listGuildEmojis(t.db, w.guild.id)).toHaveLength(2)
  })

  it('refuses hostile input with InvalidInputError, writing nothing', async () => {
    const w = await world()
    const other = await world()
    const foreignRole = await makeRole(t.db, other.guild.id)
    const emoji = await makeEmoji(t.db, w.guild.id, w.owner.id)
    const base = () => emojiInput(w.guild.id, w.owner.id)
    const badNames: unknown[] = [
      ...Object.values(TEXT_INPUTS),
      'a',
      'x'.repeat(33),
      'pa-rty',
      'pärty',
      'party ',
      ':party:',
      'party:1',
      42,
      null,
      ['party'],
    ]
    for (const name of badNames) {
      await expectInvalidAndNothingWritten(t.db, () =>
        createGuildEmoji(t.db, { ...base(), name } as never),
      )
      await expectInvalidAndNothingWritten(t.db, () =>
        updateGuildEmoji(t.db, { emoji_id: emoji.id, name } as never),
      )
    }
    for (const storage_key of ['', 'k'.repeat(1025), 7, null]) {
      await expectInvalidAndNothingWritten(t.db, () =>
        createGuildEmoji(t.db, { ...base(), storage_key } as never),
      )
    }
    for (const animated of ['yes', 1, 'false']) {
      await expectInvalidAndNothingWritten(t.db, () =>
        createGuildEmoji(t.db, { ...base(), animated } as never),
      )
    }
    const tooMany = Array.from({ length: 251 }, () => unknownId())
    for (const role_ids of ['x', [1], ['not-a-uuid'], tooMany, [foreignRole.id], [unknownId()]]) {
      await expectInvalidAndNothingWritten(t.db, () =>
        createGuildEmoji(t.db, { ...base(), role_ids } as never),
      )
      await expectInvalidAndNothingWritten(t.db, () =>
        updateGuildEmoji(t.db, { emoji_id: emoji.id, role_ids } as never),
      )
    }
    for (const id of BAD_IDS) {
      await expectInvalidAndNothingWritten(t.db, () =>
        createGuildEmoji(t.db, { ...base(), guild_id: id } as never),
      )
      await expectInvalidAndNothingWritten(t.db, () =>
        createGuildEmoji(t.db, { ...base(), creator_id: id } as never),
      )
      await expectInvalidAndNothingWritten(t.db, () =>
        updateGuildEmoji(t.db, { emoji_id: id, name: 'ok' } as never),
      )
      await expectInvalidAndNothingWritten(t.db, () =>
        deleteGuildEmoji(t.db, { emoji_id: id } as never),
      )
      await expectInvalidAndNothingWritten(t.db, () =>
        createGuildEmoji(t.db, base(), { actor_id: id } as never),
      )
      await expect(listGuildEmojis(t.db, id as string)).rejects.toBeInstanceOf(InvalidInputError)
    }
    for (const input of [null, 'x', 7]) {
      await expectInvalidAndNothingWritten(t.db, () => createGuildEmoji(t.db, input as never))
      await expectInvalidAndNothingWritten(t.db, () => deleteGuildEmoji(t.db, input as never))
    }
    // The refused role lists left the emoji as it was.
    expect(await listGuildEmojis(t.db, w.guild.id)).toEqual([
      expect.objectContaining({ id: emoji.id, restricted: false, role_ids: [] }),
    ])
  })

  it('MANAGE_EMOJIS guards create, rename and delete; refusals write nothing', async () => {
    const w = await world()
    const emoji = await makeEmoji(t.db, w.guild.id, w.owner.id)
    const as = { actor_id: w.member.id }
    const denied = async (call: () => Promise<unknown>) => {
      const before = await countRows(t.db)
      const e = await refusal(call())
      expect(e).toBeInstanceOf(PermissionDeniedError)
      expect((e as PermissionDeniedError).permission).toBe(Permissions.MANAGE_EMOJIS)
      expect(await countRows(t.db)).toEqual(before)
    }
    await denied(() => createGuildEmoji(t.db, emojiInput(w.guild.id, w.member.id), as))
    await denied(() => updateGuildEmoji(t.db, { emoji_id: emoji.id, name: 'newname' }, as))
    await denied(() => deleteGuildEmoji(t.db, { emoji_id: emoji.id }, as))
    const outsider = await makeUser(t.db)
    const e = await refusal(
      createGuildEmoji(t.db, emojiInput(w.guild.id, outsider.id), { actor_id: outsider.id }),
    )
    expect((e as PermissionDeniedError).reason).toBe('not_member')

    const managers = await makeRole(t.db, w.guild.id, { permissions: Permissions.MANAGE_EMOJIS })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: w.guild.id, user_id: w.member.id, role_id: managers.id })
      .execute()
    const made = await createGuildEmoji(t.db, emojiInput(w.guild.id, w.member.id), as)
    expect(await updateGuildEmoji(t.db, { emoji_id: made.id, name: 'renamed' }, as)).toMatchObject({
      name: 'renamed',
    })
    expect(await deleteGuildEmoji(t.db, { emoji_id: made.id }, as)).toBeDefined()
    const actions = (await listAuditLog(t.db, w.guild.id, { actor_id: w.member.id })).map(
      (x) => x.action,
    )
    expect(actions).toEqual(['emoji_delete', 'emoji_update', 'emoji_create'])
  })
})

describe('cascades from other tables', () => {
  it('a deleted creator leaves the emoji (creator_id null); a deleted guild takes emojis, roles and reactions', async () => {
    const w = await world()
    const other = await world()
    const creator = await makeUser(t.db)
    await makeMember(t.db, w.guild.id, other.owner.id)
    const role = await makeRole(t.db, w.guild.id)
    const emoji = await createGuildEmoji(t.db, {
      ...emojiInput(w.guild.id, creator.id),
      name: 'doomed',
      role_ids: [role.id],
    })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: w.guild.id, user_id: other.owner.id, role_id: role.id })
      .execute()
    // Used in another guild's channel by its owner (external: the owner holds ALL there).
    expect(
      await addReaction(t.db, {
        message_id: other.message.id,
        user_id: other.owner.id,
        emoji: `doomed:${emoji.id}`,
      }),
    ).toBe(true)
    await t.db.deleteFrom('users').where('id', '=', creator.id).execute()
    expect((await listGuildEmojis(t.db, w.guild.id))[0]?.creator_id).toBeNull()
    await deleteGuild(t.db, w.guild.id)
    for (const table of ['guild_emojis', 'guild_emoji_roles', 'guild_emoji_counts'] as const) {
      const left = await t.db
        .selectFrom(table)
        .select(sql<number>`count(*)::int`.as('n'))
        .where('guild_id', '=', w.guild.id)
        .executeTakeFirstOrThrow()
      expect(left.n).toBe(0)
    }
    expect(await countsConsistent(other.message.id)).toBe(0)
  })
})

describe('the per-guild emoji caps', () => {
  it('default 50 each; set 0 to 250 by updateGuild; static and animated apart; a delete frees a slot', async () => {
    const w = await world()
    expect(w.guild).toBeDefined()
    const g = await updateGuild(t.db, w.guild.id, { max_emojis_static: 2, max_emojis_animated: 1 })
    expect(g).toMatchObject({ max_emojis_static: 2, max_emojis_animated: 1 })
    const mk = (animated: boolean) =>
      createGuildEmoji(t.db, { ...emojiInput(w.guild.id, w.owner.id), animated })
    const first = await mk(false)
    await mk(false)
    await mk(true)
    for (const animated of [false, true]) {
      const before = await countRows(t.db)
      const e = await refusal(mk(animated))
      expect(e).toBeInstanceOf(ConflictError)
      expect((e as ConflictError).reason).toBe('emoji_limit')
      expect(await countRows(t.db)).toEqual(before)
    }
    await deleteGuildEmoji(t.db, { emoji_id: first.id })
    await mk(false)
    // Lowering keeps what is there and refuses new ones.
    await updateGuild(t.db, w.guild.id, { max_emojis_static: 0 })
    expect(await listGuildEmojis(t.db, w.guild.id)).toHaveLength(3)
    expect(await refusal(mk(false))).toBeInstanceOf(ConflictError)
    const log = await listAuditLog(t.db, w.guild.id, { action: 'guild_update' })
    expect(log[0]?.changes).toEqual({ max_emojis_static: { before: 2, after: 0 } })
    const counts = await t.db
      .selectFrom('guild_emoji_counts')
      .selectAll()
      .where('guild_id', '=', w.guild.id)
      .executeTakeFirstOrThrow()
    expect(counts).toMatchObject({ static_count: 2, animated_count: 1 })
    const fresh = await world()
    const defaults = await updateGuild(t.db, fresh.guild.id, {})
    expect(defaults).toMatchObject({ max_emojis_static: 50, max_emojis_animated: 50 })
    for (const bad of [-1, 251, 2.5, '9', null]) {
      await expectInvalidAndNothingWritten(t.db, () =>
        updateGuild(t.db, w.guild.id, { max_emojis_animated: bad } as never),
      )
    }
  })

  it('holds the cap of 50 under 100 concurrent creates held at the counter row', async () => {
    const w = await world()
    // Create the counter row, then hold it: every create queues on it.
    const seed = await createGuildEmoji(t.db, emojiInput(w.guild.id, w.owner.id))
    await deleteGuildEmoji(t.db, { emoji_id: seed.id })
    const calls = Array.from(
      { length: 100 },
      (_, i) => () =>
        createGuildEmoji(t.db, { ...emojiInput(w.guild.id, w.owner.id), name: `race_${i}` }),
    )
    const race = await raceAtBarrier(
      t.pool,
      {
        text: 'select 1 from guild_emoji_counts where guild_id = $1 for update',
        values: [w.guild.id],
      },
      calls,
      30,
    )
    expect(race.waiters).toBeGreaterThanOrEqual(30)
    const ok = race.results.filter((r) => r.status === 'fulfilled')
    const capped = race.results.filter(
      (r) =>
        r.status === 'rejected' &&
        r.reason instanceof ConflictError &&
        r.reason.reason === 'emoji_limit',
    )
    expect(ok).toHaveLength(50)
    expect(capped).toHaveLength(50)
    expect(await listGuildEmojis(t.db, w.guild.id)).toHaveLength(50)
    const counts = await t.db
      .selectFrom('guild_emoji_counts')
      .select('static_count')
      .where('guild_id', '=', w.guild.id)
      .executeTakeFirstOrThrow()
    expect(counts.static_count).toBe(50)
  })
})

describe('reactions with a custom emoji', () => {
  it('must name an existing emoji by its current name; a numeric id names none', async () => {
    const w = await world()
    const emoji = await makeEmoji(t.db, w.guild.id, w.owner.id, { name: 'party' })
    const r = (emoji: string) =>
      addReaction(t.db, { message_id: w.message.id, user_id: w.member.id, emoji })
    for (const bad of [`party:${unknownId()}`, `other:${emoji.id}`, `PARTY:${emoji.id}`]) {
      const before = await countRows(t.db)
      const e = await refusal(r(bad))
      expect(e).toBeInstanceOf(NotFoundError)
      expect((e as NotFoundError).entity).toBe('emoji')
      expect(await countRows(t.db)).toEqual(before)
    }
    for (const legacy of ['party:123', '<a:party:000123>', `party:${'9'.repeat(20)}`]) {
      await expectInvalidAndNothingWritten(t.db, () => r(legacy))
    }
    expect(await r(`<:party:${emoji.id.toUpperCase()}>`)).toBe(true)
    const stored = await t.db
      .selectFrom('message_reactions')
      .select(['emoji', 'emoji_id'])
      .where('message_id', '=', w.message.id)
      .execute()
    expect(stored).toEqual([{ emoji: `party:${emoji.id}`, emoji_id: emoji.id }])
    const missing = await refusal(
      addReaction(t.db, {
        message_id: unknownId(),
        user_id: w.member.id,
        emoji: `party:${emoji.id}`,
      }),
    )
    expect((missing as NotFoundError).entity).toBe('message')
  })

  it("needs membership of the emoji's guild, and USE_EXTERNAL_EMOJIS from another guild", async () => {
    const home = await world()
    const away = await world()
    const emoji = await makeEmoji(t.db, away.guild.id, away.owner.id, { name: 'away' })
    const ref = `away:${emoji.id}`
    const react = (user_id: string, message_id = home.message.id) =>
      addReaction(t.db, { message_id, user_id, emoji: ref })
    const deny = async (user_id: string, reason: string, message_id?: string) => {
      const before = await countRows(t.db)
      const e = await refusal(react(user_id, message_id))
      expect(e).toBeInstanceOf(PermissionDeniedError)
      expect((e as PermissionDeniedError).reason).toBe(reason)
      expect(await countRows(t.db)).toEqual(before)
      return e as PermissionDeniedError
    }
    // home.member is not in the emoji's guild.
    await deny(home.member.id, 'not_member')
    await makeMember(t.db, away.guild.id, home.member.id)
    // In both guilds, but @everyone of home lacks USE_EXTERNAL_EMOJIS.
    expect((DEFAULT_PERMISSIONS & Permissions.USE_EXTERNAL_EMOJIS) === 0n).toBe(true)
    const e = await deny(home.member.id, 'missing_permission')
    expect(e.permission).toBe(Permissions.USE_EXTERNAL_EMOJIS)
    // Granted in the channel by an overwrite: allowed.
    await t.db
      .insertInto('channel_overwrites')
      .values({
        guild_id: home.guild.id,
        channel_id: home.channel.id,
        role_id: home.guild.defaultRole.id,
        allow: Permissions.USE_EXTERNAL_EMOJIS,
        deny: 0n,
      })
      .execute()
    expect(await react(home.member.id)).toBe(true)
    // In its own guild no USE_EXTERNAL_EMOJIS is needed.
    expect(await react(away.member.id, away.message.id)).toBe(true)
    // A DM: any emoji of a guild the user is in.
    const dm = await makeDm(t.db, home.member.id, away.member.id)
    const dmMessage = await makeMessage(t.db, dm.id, away.member.id)
    expect(await react(home.member.id, dmMessage.id)).toBe(true)
    const stranger = await makeUser(t.db)
    await deny(stranger.id, 'not_member', dmMessage.id)
    expect(await countsConsistent(home.message.id)).toBe(1)
  })

  it('a role-restricted emoji needs one of its roles (owners too); a deleted last role locks it', async () => {
    const w = await world()
    const vip = await makeRole(t.db, w.guild.id)
    const emoji = await createGuildEmoji(t.db, {
      ...emojiInput(w.guild.id, w.owner.id),
      name: 'vip',
      role_ids: [vip.id],
    })
    const react = (user_id: string) =>
      addReaction(t.db, { message_id: w.message.id, user_id, emoji: `vip:${emoji.id}` })
    const deniedFor = async (user_id: string) => {
      const e = await refusal(react(user_id))
      expect(e).toBeInstanceOf(PermissionDeniedError)
      expect((e as PermissionDeniedError).reason).toBe('emoji_role')
    }
    await deniedFor(w.member.id)
    await deniedFor(w.owner.id)
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: w.guild.id, user_id: w.member.id, role_id: vip.id })
      .execute()
    expect(await react(w.member.id)).toBe(true)
    await unassignRole(t.db, { guild_id: w.guild.id, user_id: w.member.id, role_id: vip.id })
    await removeReaction(t.db, {
      message_id: w.message.id,
      user_id: w.member.id,
      emoji: `vip:${emoji.id}`,
    })
    await deniedFor(w.member.id)
    // The default role in the list: every member.
    await updateGuildEmoji(t.db, { emoji_id: emoji.id, role_ids: [w.guild.defaultRole.id] })
    expect(await react(w.member.id)).toBe(true)
    // Its only role deleted: restricted to nobody until its roles are set again.
    await updateGuildEmoji(t.db, { emoji_id: emoji.id, role_ids: [vip.id] })
    await deleteRole(t.db, vip.id)
    const after = (await listGuildEmojis(t.db, w.guild.id))[0]
    expect(after).toMatchObject({ restricted: true, role_ids: [] })
    await deniedFor(w.owner.id)
    await updateGuildEmoji(t.db, { emoji_id: emoji.id, role_ids: [] })
    expect(await react(w.owner.id)).toBe(true)
  })

  it('deleting the emoji removes its reactions in the same transaction, freeing their slots', async () => {
    const w = await world()
    const emoji = await makeEmoji(t.db, w.guild.id, w.owner.id, { name: 'gone' })
    const users = [w.owner, w.member]
    const unicode = [...'😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂']
    for (const e of unicode)
      await addReaction(t.db, { message_id: w.message.id, user_id: w.owner.id, emoji: e })
    for (const u of users)
      await addReaction(t.db, {
        message_id: w.message.id,
        user_id: u.id,
        emoji: `gone:${emoji.id}`,
      })
    expect(await countsConsistent(w.message.id)).toBe(MAX_REACTION_EMOJIS)
    expect(
      await refusal(
        addReaction(t.db, { message_id: w.message.id, user_id: w.owner.id, emoji: '🤔' }),
      ),
    ).toBeInstanceOf(ConflictError)
    const gone = await deleteGuildEmoji(t.db, { emoji_id: emoji.id })
    expect(gone?.storage_keys).toEqual([emoji.storage_key])
    expect(await countsConsistent(w.message.id)).toBe(MAX_REACTION_EMOJIS - 1)
    expect(
      await addReaction(t.db, { message_id: w.message.id, user_id: w.owner.id, emoji: '🤔' }),
    ).toBe(true)
    const left = await t.db
      .selectFrom('message_reactions')
      .select('emoji')
      .where('emoji_id', '=', emoji.id)
      .execute()
    expect(left).toEqual([])
    expect(await countsConsistent(w.message.id)).toBe(MAX_REACTION_EMOJIS)
  })

  it('a rename moves the reactions to the new name, keeping counts and order', async () => {
    const w = await world()
    const emoji = await makeEmoji(t.db, w.guild.id, w.owner.id, { name: 'old' })
    await addReaction(t.db, {
      message_id: w.message.id,
      user_id: w.owner.id,
      emoji: `old:${emoji.id}`,
    })
    await addReaction(t.db, { message_id: w.message.id, user_id: w.member.id, emoji: '👍' })
    await addReaction(t.db, {
      message_id: w.message.id,
      user_id: w.member.id,
      emoji: `old:${emoji.id}`,
    })
    await updateGuildEmoji(t.db, { emoji_id: emoji.id, name: 'new' })
    expect(
      await listReactions(t.db, { message_ids: [w.message.id], viewer_id: w.owner.id }),
    ).toEqual([
      { message_id: w.message.id, emoji: `new:${emoji.id}`, count: 2, me: true },
      { message_id: w.message.id, emoji: '👍', count: 1, me: false },
    ])
    expect(await countsConsistent(w.message.id)).toBe(2)
    expect(
      await refusal(
        addReaction(t.db, {
          message_id: w.message.id,
          user_id: w.owner.id,
          emoji: `old:${emoji.id}`,
        }),
      ),
    ).toBeInstanceOf(NotFoundError)
    expect(
      await addReaction(t.db, {
        message_id: w.message.id,
        user_id: w.owner.id,
        emoji: `new:${emoji.id}`,
      }),
    ).toBe(false)
  })

  it('a reaction waits for an uncommitted delete of its emoji and then finds none', async () => {
    const w = await world()
    const emoji = await makeEmoji(t.db, w.guild.id, w.owner.id, { name: 'racing' })
    const holder = await t.pool.connect()
    try {
      await holder.query('begin')
      await holder.query('delete from guild_emojis where id = $1', [emoji.id])
      const pending = refusal(
        addReaction(t.db, {
          message_id: w.message.id,
          user_id: w.member.id,
          emoji: `racing:${emoji.id}`,
        }),
      )
      expect(await waitForLockWaiters(holder, 1)).toBeGreaterThanOrEqual(1)
      await holder.query('commit')
      const e = await pending
      expect(e).toBeInstanceOf(NotFoundError)
      expect((e as NotFoundError).entity).toBe('emoji')
    } finally {
      holder.release()
    }
    expect(await countsConsistent(w.message.id)).toBe(0)
  })

  it('20 reactions racing a delete of their emoji: none survives it, counts stay exact', async () => {
    const w = await world()
    const emoji = await makeEmoji(t.db, w.guild.id, w.owner.id, { name: 'fleeting' })
    const users = []
    for (let i = 0; i < 20; i++) {
      const u = await makeUser(t.db)
      await makeMember(t.db, w.guild.id, u.id)
      users.push(u)
    }
    await addReaction(t.db, { message_id: w.message.id, user_id: w.owner.id, emoji: '👍' })
    const calls: (() => Promise<unknown>)[] = users.map(
      (u) => () =>
        addReaction(t.db, {
          message_id: w.message.id,
          user_id: u.id,
          emoji: `fleeting:${emoji.id}`,
        }),
    )
    calls.splice(10, 0, () => deleteGuildEmoji(t.db, { emoji_id: emoji.id }))
    const race = await raceAtBarrier(
      t.pool,
      { text: 'select 1 from guild_emojis where id = $1 for update', values: [emoji.id] },
      calls,
      21,
    )
    expect(race.waiters).toBeGreaterThanOrEqual(21)
    const deleted = race.results[10]
    expect(deleted?.status === 'fulfilled' && deleted.value).toMatchObject({
      storage_keys: [emoji.storage_key],
    })
    const reactions = race.results.filter((_, i) => i !== 10)
    for (const r of reactions) {
      if (r.status === 'fulfilled') expect(r.value).toBe(true)
      else expect((r.reason as NotFoundError).entity).toBe('emoji')
    }
    const left = await t.db
      .selectFrom('message_reactions')
      .select('emoji')
      .where('message_id', '=', w.message.id)
      .execute()
    expect(left).toEqual([{ emoji: '👍' }])
    expect(await countsConsistent(w.message.id)).toBe(1)
  })

  it('a role removal committed after a REPEATABLE READ snapshot: refused typed, retryable', async () => {
    const w = await world()
    const vip = await makeRole(t.db, w.guild.id)
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: w.guild.id, user_id: w.member.id, role_id: vip.id })
      .execute()
    const emoji = await createGuildEmoji(t.db, {
      ...emojiInput(w.guild.id, w.owner.id),
      name: 'vip',
      role_ids: [vip.id],
    })
    for (const level of ['repeatable read', 'serializable'] as const) {
      const e = await refusal(
        t.db
          .transaction()
          .setIsolationLevel(level)
          .execute(async (trx) => {
            await sql`select 1`.execute(trx)
            await unassignRole(t.db, {
              guild_id: w.guild.id,
              user_id: w.member.id,
              role_id: vip.id,
            })
            return addReaction(trx, {
              message_id: w.message.id,
              user_id: w.member.id,
              emoji: `vip:${emoji.id}`,
            })
          }),
      )
      expect(e).toBeInstanceOf(DatabaseUnavailableError)
      expect((e as DatabaseUnavailableError).retryable).toBe(true)
      await t.db
        .insertInto('member_roles')
        .values({ guild_id: w.guild.id, user_id: w.member.id, role_id: vip.id })
        .execute()
    }
    expect(await countsConsistent(w.message.id)).toBe(0)
    // And inside a caller's transaction with nothing competing, it works.
    const ok = await t.db
      .transaction()
      .setIsolationLevel('serializable')
      .execute((trx) =>
        addReaction(trx, {
          message_id: w.message.id,
          user_id: w.member.id,
          emoji: `vip:${emoji.id}`,
        }),
      )
    expect(ok).toBe(true)
  })
})
