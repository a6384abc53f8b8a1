import { describe, expect, it } from 'vitest'
import {
  CheckViolationError,
  type ConflictError,
  createChannel,
  createForumTag,
  createMessage,
  createThread,
  DatabaseUnavailableError,
  InvalidInputError,
  listAuditLog,
  listForumPosts,
  NotFoundError,
  PermissionDeniedError,
  Permissions,
  readChannelMessages,
  sendMessage,
  setPostTags,
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
    await t.db
      .insertInto('channel_overwrites')
      .values({
        channel_id: forum.id,
        guild_id: guild.id,
        user_id: user.id,
        allow: 0n,
        deny: Permissions.VIEW_CHANNEL,
      })
      .execute()
    expect(await listForumPosts(t.db, { channel_id: forum.id, user_id: user.id })).toEqual([])
    for (const bad of BAD_IDS) {
      await expectInvalidAndNothingWritten(t.db, () =>
        listForumPosts(t.db, { channel_id: bad as string, user_id: user.id }),
      )
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
})
