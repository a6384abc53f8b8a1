import { describe, expect, it } from 'vitest'
import {
  CheckViolationError,
  type ConflictError,
  createChannel,
  createForumTag,
  createMessage,
  createThread,
  DatabaseUnavailableError,
  deleteForumTag,
  InvalidInputError,
  listAuditLog,
  listForumPosts,
  NotFoundError,
  PermissionDeniedError,
  Permissions,
  readChannelMessages,
  sendMessage,
  setPostTags,
  updateForumTag,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeGuild, makeMemberWith, makeUser, unknownId } from '../support/factories.ts'
import { BAD_IDS, expectInvalidAndNothingWritten } from '../support/hostile-inputs.ts'
import { raceAtBarrier } from '../support/race.ts'

const t = useTestDatabase({ max: 12 })

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  )

async function setup(require_tag = false) {
  const owner = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  const forum = await createChannel(t.db, {
    guild_id: guild.id,
    name: 'help',
    type: 'forum',
    require_tag,
  })
  return { owner, guild, forum }
}

const member = (guild_id: string, permissions = 0n) => makeMemberWith(t.db, guild_id, permissions)

/** A deny of VIEW_CHANNEL on the forum for one member (plain SQL). */
const hideForum = (channel_id: string, guild_id: string, user_id: string) =>
  t.db
    .insertInto('channel_overwrites')
    .values({ channel_id, guild_id, user_id, allow: 0n, deny: Permissions.VIEW_CHANNEL })
    .execute()

const post = (channel_id: string, author_id: string, more: object = {}) =>
  createThread(
    t.db,
    { channel_id, author_id, name: 'how do I…', content: 'the question', ...more },
    { actor_id: author_id },
  )

describe('forum posts', () => {
  it('a post is a public thread with its first message; the forum itself holds none', async () => {
    const { owner, guild, forum } = await setup()
    expect(forum).toMatchObject({ type: 'forum', require_tag: false })
    const user = await member(guild.id)
    const p = await post(forum.id, user.id)
    expect(p).toMatchObject({ type: 'public_thread', parent_id: forum.id, owner_id: user.id })
    const messages = await readChannelMessages(t.db, { channel_id: p.id, user_id: owner.id })
    expect(messages.map((m) => m.content)).toEqual(['the question'])
    const sent = await rejection(
      sendMessage(t.db, { channel_id: forum.id, author_id: owner.id, content: 'x' }),
    )
    expect((sent as CheckViolationError).constraint).toBe('messages_channel_kind')
    const created = await rejection(
      createMessage(t.db, { channel_id: forum.id, author_id: owner.id, content: 'x' }),
    )
    expect(created).toBeInstanceOf(CheckViolationError)
    // Without content, private, or content outside a forum: refused, nothing written.
    await expectInvalidAndNothingWritten(t.db, () =>
      createThread(t.db, { channel_id: forum.id, author_id: user.id, name: 'x' }),
    )
    await expectInvalidAndNothingWritten(t.db, () =>
      createThread(t.db, {
        channel_id: forum.id,
        author_id: user.id,
        name: 'x',
        content: 'y',
        private: true,
      }),
    )
    const text = await createChannel(t.db, { guild_id: guild.id, name: 'general', type: 'text' })
    await expectInvalidAndNothingWritten(t.db, () =>
      createThread(t.db, { channel_id: text.id, author_id: user.id, name: 'x', content: 'y' }),
    )
    // Posting is SEND_MESSAGES in the forum ("Create Posts"), with `as`.
    await t.db
      .insertInto('channel_overwrites')
      .values({
        channel_id: forum.id,
        guild_id: guild.id,
        user_id: user.id,
        allow: 0n,
        deny: Permissions.SEND_MESSAGES,
      })
      .execute()
    expect(await rejection(post(forum.id, user.id))).toBeInstanceOf(PermissionDeniedError)
    await expectInvalidAndNothingWritten(t.db, () =>
      createChannel(t.db, { guild_id: guild.id, name: 'x', type: 'text', require_tag: true }),
    )
  })

  it('posts list by last activity, keyset pages, only what the user may see', async () => {
    const { owner, guild, forum } = await setup()
    const user = await member(guild.id)
    const posts = []
    for (let i = 0; i < 4; i++) posts.push(await post(forum.id, owner.id))
    // Activity in the oldest post moves it first.
    await sendMessage(t.db, { channel_id: posts[0]?.id ?? '', author_id: user.id, content: 'up' })
    const first = await listForumPosts(t.db, { channel_id: forum.id, user_id: user.id, limit: 2 })
    const rest = await listForumPosts(t.db, {
      channel_id: forum.id,
      user_id: user.id,
      before: first.at(-1)?.id,
    })
    const order = [posts[0], posts[3], posts[2], posts[1]].map((p) => p?.id)
    expect([...first, ...rest].map((p) => p.id)).toEqual(order)
    // A member who may not view the forum sees no post.
    await hideForum(forum.id, guild.id, user.id)
    expect(await listForumPosts(t.db, { channel_id: forum.id, user_id: user.id })).toEqual([])
    for (const bad of BAD_IDS) {
      await expectInvalidAndNothingWritten(t.db, () =>
        listForumPosts(t.db, { channel_id: bad as string, user_id: user.id }),
      )
    }
  })
  it('tag_ids filters posts having ANY of the tags, keyset pages across the filter, only what the user may see', async () => {
    const { owner, guild, forum } = await setup()
    const user = await member(guild.id)
    const bug = await createForumTag(t.db, { channel_id: forum.id, name: 'bug' })
    const idea = await createForumTag(t.db, { channel_id: forum.id, name: 'idea' })
    const other = await createForumTag(t.db, { channel_id: forum.id, name: 'other' })
    // Newest last: b1 (bug), o1 (other), i1 (idea), b2 (bug+idea), o2 (other), b3 (bug).
    const plan: [string, string[]][] = [
      ['b1', [bug.id]],
      ['o1', [other.id]],
      ['i1', [idea.id]],
      ['b2', [bug.id, idea.id]],
      ['o2', [other.id]],
      ['b3', [bug.id]],
    ]
    const made: Record<string, string> = {}
    for (const [name, tag_ids] of plan) {
      made[name] = (await post(forum.id, owner.id, { name, tag_ids })).id
    }
    const list = (more: object) =>
      listForumPosts(t.db, { channel_id: forum.id, user_id: user.id, ...more })
    const ids = (names: string[]) => names.map((n) => made[n])
    // Any of bug, idea: newest first, pages of 2 chained with `before`.
    const filter = { tag_ids: [bug.id, idea.id] }
    const seen: string[] = []
    let before: string | undefined
    for (let page = 0; page < 4; page++) {
      const got = await list({ ...filter, limit: 2, ...(before ? { before } : {}) })
      expect(got.length).toBeLessThanOrEqual(2)
      if (got.length === 0) break
      for (const p of got) expect(p.tag_ids.some((id) => filter.tag_ids.includes(id))).toBe(true)
      seen.push(...got.map((p) => p.id))
      before = got.at(-1)?.id
    }
    expect(seen).toEqual(ids(['b3', 'b2', 'i1', 'b1']))
    // A post after the cursor that matches only later still pages right:
    // activity moves b1 first, the next page from b2 skips it.
    await sendMessage(t.db, { channel_id: made.b1 ?? '', author_id: owner.id, content: 'up' })
    const top = await list({ ...filter, limit: 2 })
    expect(top.map((p) => p.id)).toEqual(ids(['b1', 'b3']))
    expect((await list({ ...filter, before: top.at(-1)?.id })).map((p) => p.id)).toEqual(
      ids(['b2', 'i1']),
    )
    // One tag; a tag of no post; absent or empty: every post.
    expect((await list({ tag_ids: [other.id] })).map((p) => p.id)).toEqual(ids(['o2', 'o1']))
    expect(await list({ tag_ids: [unknownId()] })).toEqual([])
    expect(await list({ tag_ids: [] })).toHaveLength(6)
    // A member who may not view the forum sees no post, filtered or not.
    await hideForum(forum.id, guild.id, user.id)
    expect(await list(filter)).toEqual([])
    // Hostile filters: typed, nothing written.
    for (const bad of [
      ['nope'],
      [bug.id, bug.id],
      Array.from({ length: 21 }, () => unknownId()),
      'x',
      [null],
    ]) {
      await expectInvalidAndNothingWritten(t.db, () => list({ tag_ids: bad }))
    }
  })
})

describe('forum tags', () => {
  it('tags are rows of the forum: unique names, at most 20, MANAGE_CHANNELS with `as`; audited', async () => {
    const { owner, guild, forum } = await setup()
    const tag = await createForumTag(
      t.db,
      { channel_id: forum.id, name: 'question', emoji: '❓' },
      { actor_id: owner.id },
    )
    expect(tag).toMatchObject({
      channel_id: forum.id,
      name: 'question',
      emoji: '❓',
      moderated: false,
    })
    const dup = await rejection(createForumTag(t.db, { channel_id: forum.id, name: 'question' }))
    expect((dup as ConflictError).reason).toBe('tag_exists')
    const user = await member(guild.id)
    expect(
      await rejection(
        createForumTag(t.db, { channel_id: forum.id, name: 'x' }, { actor_id: user.id }),
      ),
    ).toBeInstanceOf(PermissionDeniedError)
    const text = await createChannel(t.db, { guild_id: guild.id, name: 'general', type: 'text' })
    expect(
      await rejection(createForumTag(t.db, { channel_id: text.id, name: 'x' })),
    ).toBeInstanceOf(NotFoundError)
    for (const bad of [
      { channel_id: forum.id, name: '' },
      { channel_id: forum.id, name: 'x'.repeat(21) },
      { channel_id: forum.id, name: 'ok', emoji: '' },
      { channel_id: forum.id, name: 'ok', moderated: 'yes' as unknown as boolean },
      ...BAD_IDS.map((id) => ({ channel_id: id as string, name: 'ok' })),
    ]) {
      await expectInvalidAndNothingWritten(t.db, () => createForumTag(t.db, bad))
    }
    const audit = await listAuditLog(t.db, guild.id)
    expect(audit.find((e) => e.target_id === tag.id)?.action).toBe('forum_tag_create')
  })

  it('the 20-tag limit is exact under concurrent creates (proof: lock waiters)', async () => {
    const { forum } = await setup()
    for (let i = 0; i < 15; i++) await createForumTag(t.db, { channel_id: forum.id, name: `t${i}` })
    // The barrier holds the forum's counter row: every create waits there.
    const race = await raceAtBarrier(
      t.pool,
      {
        text: 'select 1 from guildstore_forum_tag_counts where channel_id = $1 for update',
        values: [forum.id],
      },
      Array.from(
        { length: 10 },
        (_, i) => () => createForumTag(t.db, { channel_id: forum.id, name: `r${i}` }),
      ),
    )
    expect(race.waiters).toBeGreaterThanOrEqual(10)
    const refused = race.results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []))
    expect(refused).toHaveLength(5)
    for (const e of refused) expect((e as ConflictError).reason).toBe('tag_limit')
    const n = await t.db
      .selectFrom('forum_tags')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('channel_id', '=', forum.id)
      .executeTakeFirstOrThrow()
    expect(Number(n.n)).toBe(20)
  })

  it('setPostTags: tags of the forum only, at most 5, require_tag, moderated tags need MANAGE_THREADS', async () => {
    const { owner, guild, forum } = await setup(true)
    const other = await setup()
    const tags = []
    for (let i = 0; i < 6; i++)
      tags.push(await createForumTag(t.db, { channel_id: forum.id, name: `t${i}` }))
    const solved = await createForumTag(t.db, {
      channel_id: forum.id,
      name: 'solved',
      moderated: true,
    })
    const foreign = await createForumTag(t.db, { channel_id: other.forum.id, name: 'elsewhere' })
    const user = await member(guild.id)
    const moderator = await member(guild.id, Permissions.MANAGE_THREADS)
    const ids = tags.map((g) => g.id)
    // require_tag: a post needs a tag.
    const untagged = await rejection(post(forum.id, user.id))
    expect((untagged as ConflictError).reason).toBe('tag_required')
    const p = await post(forum.id, user.id, { tag_ids: [ids[0]] })
    const before = await countRows(t.db)
    for (const bad of [ids.slice(0, 6), [ids[0], ids[0]], [foreign.id], [unknownId()], ['nope']]) {
      const error = await rejection(
        setPostTags(t.db, { thread_id: p.id, tag_ids: bad as string[] }, { actor_id: user.id }),
      )
      expect(error).toBeInstanceOf(InvalidInputError)
    }
    expect(await countRows(t.db)).toEqual(before)
    const cleared = await rejection(setPostTags(t.db, { thread_id: p.id, tag_ids: [] }))
    expect((cleared as ConflictError).reason).toBe('tag_required')
    expect(
      await setPostTags(
        t.db,
        { thread_id: p.id, tag_ids: ids.slice(1, 6) as string[] },
        {
          actor_id: user.id,
        },
      ),
    ).toEqual((ids.slice(1, 6) as string[]).sort())
    // The moderated tag: not by the author, yes by a moderator; removing it too.
    const denied = await rejection(
      setPostTags(t.db, { thread_id: p.id, tag_ids: [solved.id] }, { actor_id: user.id }),
    )
    expect(denied).toBeInstanceOf(PermissionDeniedError)
    await setPostTags(t.db, { thread_id: p.id, tag_ids: [solved.id] }, { actor_id: moderator.id })
    expect(
      await rejection(
        setPostTags(t.db, { thread_id: p.id, tag_ids: [ids[0] as string] }, { actor_id: user.id }),
      ),
    ).toBeInstanceOf(PermissionDeniedError)
    // Another member (not the author, no MANAGE_THREADS) sets nothing.
    const stranger = await member(guild.id)
    expect(
      await rejection(
        setPostTags(t.db, { thread_id: p.id, tag_ids: [solved.id] }, { actor_id: stranger.id }),
      ),
    ).toBeInstanceOf(PermissionDeniedError)
    const listed = await listForumPosts(t.db, { channel_id: forum.id, user_id: owner.id })
    expect(listed[0]?.tag_ids).toEqual([solved.id])
    // The plain-SQL path is held by the schema: a sixth tag, a tag of another forum.
    const sixth = await rejection(
      t.db
        .insertInto('post_tags')
        .values(ids.map((tag_id) => ({ thread_id: p.id, tag_id })))
        .execute(),
    )
    expect((sixth as CheckViolationError).constraint).toBe('post_tags_limit')
    const wrong = await rejection(
      t.db.insertInto('post_tags').values({ thread_id: p.id, tag_id: foreign.id }).execute(),
    )
    expect((wrong as CheckViolationError).constraint).toBe('post_tags_forum')
    // A deleted tag leaves no stale id.
    await t.db.deleteFrom('forum_tags').where('id', '=', solved.id).execute()
    const after = await listForumPosts(t.db, { channel_id: forum.id, user_id: owner.id })
    expect(after[0]?.tag_ids).toEqual([])
    const audit = await listAuditLog(t.db, guild.id, { action: 'post_tags_update' })
    expect(audit.length).toBeGreaterThanOrEqual(2)
  })

  it('two tag changes of one post inside REPEATABLE READ: the later one fails with 40001', async () => {
    const { guild, forum } = await setup()
    const user = await member(guild.id)
    const a = await createForumTag(t.db, { channel_id: forum.id, name: 'a' })
    const b = await createForumTag(t.db, { channel_id: forum.id, name: 'b' })
    const p = await post(forum.id, user.id)
    const error = await rejection(
      t.db
        .transaction()
        .setIsolationLevel('repeatable read')
        .execute(async (trx) => {
          await trx.selectFrom('post_tags').select('tag_id').execute()
          await setPostTags(t.db, { thread_id: p.id, tag_ids: [a.id] })
          await setPostTags(trx, { thread_id: p.id, tag_ids: [b.id] })
        }),
    )
    expect(error).toBeInstanceOf(DatabaseUnavailableError)
    const tags = await listForumPosts(t.db, { channel_id: forum.id, user_id: user.id })
    expect(tags[0]?.tag_ids).toEqual([a.id])
  })

  it('updateForumTag: the fields given change, names unique in the forum, MANAGE_CHANNELS with `as`; audited', async () => {
    const { owner, guild, forum } = await setup()
    const other = await setup()
    const tag = await createForumTag(t.db, { channel_id: forum.id, name: 'question', emoji: '❓' })
    await createForumTag(t.db, { channel_id: forum.id, name: 'taken' })
    // The same name in another forum is not a conflict.
    await createForumTag(t.db, { channel_id: other.forum.id, name: 'answered' })
    const p = await post(forum.id, owner.id, { tag_ids: [tag.id] })
    const renamed = await updateForumTag(
      t.db,
      { tag_id: tag.id, name: 'answered', moderated: true },
      { actor_id: owner.id },
    )
    expect(renamed).toMatchObject({ id: tag.id, name: 'answered', emoji: '❓', moderated: true })
    // emoji: null removes it; the others are kept.
    expect(await updateForumTag(t.db, { tag_id: tag.id, emoji: null })).toMatchObject({
      name: 'answered',
      emoji: null,
      moderated: true,
    })
    // The post keeps the tag.
    const [listed] = await listForumPosts(t.db, { channel_id: forum.id, user_id: owner.id })
    expect(listed?.id).toBe(p.id)
    expect(listed?.tag_ids).toEqual([tag.id])
    // The identity rule of create: the name is taken in this forum (exactly).
    const dup = await rejection(updateForumTag(t.db, { tag_id: tag.id, name: 'taken' }))
    expect((dup as ConflictError).reason).toBe('tag_exists')
    // Without MANAGE_CHANNELS: refused, nothing written; with it in the forum: allowed.
    const user = await member(guild.id)
    const before = await countRows(t.db)
    const denied = await rejection(
      updateForumTag(t.db, { tag_id: tag.id, name: 'x' }, { actor_id: user.id }),
    )
    expect(denied).toMatchObject({ permission: Permissions.MANAGE_CHANNELS })
    expect(await countRows(t.db)).toEqual(before)
    const manager = await member(guild.id, Permissions.MANAGE_CHANNELS)
    await updateForumTag(t.db, { tag_id: tag.id, name: 'solved' }, { actor_id: manager.id })
    // An empty patch changes nothing and writes no entry; an unknown tag: undefined.
    const entries = (await listAuditLog(t.db, guild.id, { action: 'forum_tag_update' })).length
    expect(await updateForumTag(t.db, { tag_id: tag.id }, { actor_id: owner.id })).toMatchObject({
      name: 'solved',
    })
    expect(await updateForumTag(t.db, { tag_id: unknownId(), name: 'x' })).toBeUndefined()
    const audit = await listAuditLog(t.db, guild.id, { action: 'forum_tag_update' })
    expect(audit).toHaveLength(entries)
    expect(audit.map((e) => Object.keys(e.changes).sort())).toEqual([
      ['name'],
      ['emoji'],
      ['moderated', 'name'],
    ])
    for (const bad of [
      { tag_id: tag.id, name: '' },
      { tag_id: tag.id, name: 'x'.repeat(21) },
      { tag_id: tag.id, emoji: '' },
      { tag_id: tag.id, emoji: 'e'.repeat(65) },
      { tag_id: tag.id, moderated: 'yes' as unknown as boolean },
      { tag_id: tag.id, name: 5 as unknown as string },
      ...BAD_IDS.map((id) => ({ tag_id: id as string, name: 'ok' })),
    ]) {
      await expectInvalidAndNothingWritten(t.db, () => updateForumTag(t.db, bad))
    }
  })

  it('deleteForumTag: its posts lose it in the same transaction, the slot is free again; MANAGE_CHANNELS; audited', async () => {
    const { owner, guild, forum } = await setup()
    const tags = []
    for (let i = 0; i < 20; i++)
      tags.push(await createForumTag(t.db, { channel_id: forum.id, name: `t${i}` }))
    const [gone, kept] = tags as [(typeof tags)[0], (typeof tags)[0]]
    const p = await post(forum.id, owner.id, { tag_ids: [gone.id, kept.id] })
    const postTags = async () =>
      (await listForumPosts(t.db, { channel_id: forum.id, user_id: owner.id }))[0]?.tag_ids
    // Inside a caller's transaction that rolls back: nothing happened.
    const rolledBack = await rejection(
      t.db
        .transaction()
        .setIsolationLevel('repeatable read')
        .execute(async (trx) => {
          expect(await deleteForumTag(trx, { tag_id: gone.id })).toMatchObject({ id: gone.id })
          const inside = await trx
            .selectFrom('post_tags')
            .select('tag_id')
            .where('thread_id', '=', p.id)
            .execute()
          expect(inside.map((r) => r.tag_id)).toEqual([kept.id])
          throw new Error('roll back')
        }),
    )
    expect((rolledBack as Error).message).toBe('roll back')
    expect(await postTags()).toEqual([gone.id, kept.id].sort())
    // Without MANAGE_CHANNELS: refused, nothing deleted.
    const user = await member(guild.id)
    const before = await countRows(t.db)
    expect(
      await rejection(deleteForumTag(t.db, { tag_id: gone.id }, { actor_id: user.id })),
    ).toBeInstanceOf(PermissionDeniedError)
    expect(await countRows(t.db)).toEqual(before)
    const deleted = await deleteForumTag(t.db, { tag_id: gone.id }, { actor_id: owner.id })
    expect(deleted).toMatchObject({ id: gone.id, name: gone.name, channel_id: forum.id })
    expect(await postTags()).toEqual([kept.id])
    expect(await deleteForumTag(t.db, { tag_id: gone.id })).toBeUndefined()
    // The forum held 20: the deleted one's slot takes a new tag, and only one.
    await createForumTag(t.db, { channel_id: forum.id, name: 'new' })
    const full = await rejection(createForumTag(t.db, { channel_id: forum.id, name: 'over' }))
    expect((full as ConflictError).reason).toBe('tag_limit')
    const audit = await listAuditLog(t.db, guild.id, { action: 'forum_tag_delete' })
    expect(audit).toHaveLength(1)
    expect(audit[0]).toMatchObject({ target_id: gone.id, actor_id: owner.id })
    expect(audit[0]?.changes.name).toEqual({ before: gone.name, after: null })
    for (const bad of BAD_IDS) {
      await expectInvalidAndNothingWritten(t.db, () =>
        deleteForumTag(t.db, { tag_id: bad as string }),
      )
    }
  })

  it('a rename and a create of one name at once: one wins, the other is tag_exists (proof: lock waiters)', async () => {
    const { forum } = await setup()
    const tag = await createForumTag(t.db, { channel_id: forum.id, name: 'old' })
    // The barrier holds the forum's counter row (the create waits there) and
    // the tag's row (the rename waits in its lock).
    const race = await raceAtBarrier(
      t.pool,
      {
        text: `select 1 from guildstore_forum_tag_counts c, forum_tags g
          where c.channel_id = $1 and g.id = $2 for update`,
        values: [forum.id, tag.id],
      },
      [
        () => updateForumTag(t.db, { tag_id: tag.id, name: 'same' }),
        () => createForumTag(t.db, { channel_id: forum.id, name: 'same' }),
      ],
    )
    expect(race.waiters).toBeGreaterThanOrEqual(2)
    const refused = race.results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []))
    expect(refused).toHaveLength(1)
    expect((refused[0] as ConflictError).reason).toBe('tag_exists')
    const names = await t.db
      .selectFrom('forum_tags')
      .select('name')
      .where('channel_id', '=', forum.id)
      .execute()
    expect(names.filter((n) => n.name === 'same')).toHaveLength(1)
  })
})
