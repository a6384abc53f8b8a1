/**
 * Forum channels (issue 24 item 3, migration 0022): a `'forum'` channel whose
 * posts are public threads (threads.ts: `createThread` with a forum as the
 * parent, its first message in `content`), tagged with the forum's tags.
 */
import { type Kysely, sql } from 'kysely'
import type { DB, ForumTags } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import { CheckViolationError, UniqueViolationError } from '../errors/constraint-errors.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import { type ActingAs, PermissionDeniedError } from '../errors/permission-denied-error.ts'
import { newId } from '../ids/new-id.ts'
import type { AuthorizeResult } from '../permissions/authorize.ts'
import { hasPermission, Permissions } from '../permissions/permissions.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { mapErrors, prepareQuery } from '../sql/index.ts'
import {
  assertBoolean,
  assertObject,
  assertOptionalText,
  assertText,
  assertUuid,
  assertUuidArray,
  defineFields,
  text,
} from '../validation/index.ts'
import { administer } from './administer.ts'
import { assertActingAs, auditChanges } from './internal.ts'

/** Tags a post carries at most (Discord's). */
export const MAX_POST_TAGS = 5

/** The columns every forum-tag-returning function selects. */
export const forumTagColumns = columnList<ForumTags>()([
  'id',
  'channel_id',
  'name',
  'emoji',
  'moderated',
  'created_at',
])

/** A tag of a forum channel (at most 20 per forum); `moderated`: only `MANAGE_THREADS` holders apply it. */
export type ForumTag = Projection<ForumTags, typeof forumTagColumns>

/** Rules of the `forum_tags` columns (the CHECKs of migration 0022). */
export const forumTagFields = defineFields('forum_tags', {
  name: text(1, 20),
  emoji: text(1, 64),
})

const insertTag = prepareQuery(
  'forum_tags.insert',
  (
    db,
    p: { id: string; channel_id: string; name: string; emoji: string | null; moderated: boolean },
  ) =>
    db
      .insertInto('forum_tags')
      .values({
        id: p.id,
        channel_id: p.channel_id,
        name: p.name,
        emoji: p.emoji,
        moderated: p.moderated,
      })
      .returning(forumTagColumns),
)

// A forum, locked (its tags change under this lock).
const lockForum = prepareQuery('forums.lock', (db, p: { id: string }) =>
  db
    .selectFrom('channels')
    .select(['id', 'guild_id'])
    .where('id', '=', p.id)
    .where(sql<boolean>`type::text = 'forum'`)
    .forNoKeyUpdate(),
)

// A post with its forum's require_tag, its row written (not only locked): two
// tag changes of one post serialize here, and under REPEATABLE READ the later
// one fails with 40001 instead of replacing a set it cannot see.
const lockPost = prepareQuery('forums.lock_post', (db, p: { id: string }) =>
  db
    .updateTable('channels as t')
    .set({ updated_at: sql`now()` })
    .from('channels as f')
    .whereRef('f.id', '=', 't.parent_id')
    .where('t.id', '=', p.id)
    .where(sql<boolean>`f.type::text = 'forum'`)
    .returning(['t.id', 't.guild_id', 't.parent_id', 't.owner_id', 'f.require_tag']),
)

// The post's tags and the requested ones (tags of the post's forum only).
const selectPostTags = prepareQuery(
  'forums.post_tags',
  (db, p: { thread_id: string; forum_id: string; tag_ids: string[] }) =>
    db
      .selectFrom('forum_tags as g')
      .leftJoin('post_tags as pt', (join) =>
        join.onRef('pt.tag_id', '=', 'g.id').on('pt.thread_id', '=', p.thread_id),
      )
      .select(['g.id', 'g.moderated'])
      .select(sql<boolean>`pt.tag_id is not null`.as('applied'))
      .select(sql<boolean>`g.id = any(${p.tag_ids}::uuid[])`.as('requested'))
      .where('g.channel_id', '=', p.forum_id)
      .where((eb) =>
        eb.or([
          eb('pt.tag_id', 'is not', null),
          eb('g.id', '=', sql<string>`any(${p.tag_ids}::uuid[])`),
        ]),
      ),
)

const deletePostTags = prepareQuery(
  'forums.post_tags_delete',
  (db, p: { thread_id: string; tag_ids: string[] }) =>
    db
      .deleteFrom('post_tags')
      .where('thread_id', '=', p.thread_id)
      .where('tag_id', '=', sql<string>`any(${p.tag_ids}::uuid[])`),
)

const insertPostTags = prepareQuery(
  'forums.post_tags_insert',
  (db, p: { thread_id: string; tag_ids: string[] }) =>
    db
      .insertInto('post_tags')
      .columns(['thread_id', 'tag_id'])
      .expression(
        db.selectNoFrom([
          sql<string>`${p.thread_id}::uuid`.as('thread_id'),
          sql<string>`unnest(${p.tag_ids}::uuid[])`.as('tag_id'),
        ]),
      )
      .onConflict((oc) => oc.doNothing()),
)

/** Input of {@link createForumTag}. */
export interface CreateForumTagInput {
  /** A forum channel. */
  channel_id: string
  /** 1 to 20 characters, unique in the forum. */
  name: string
  /** 1 to 64 characters (a Unicode emoji or a custom emoji reference). */
  emoji?: string | null | undefined
  /** Only `MANAGE_THREADS` holders apply or remove it; default false. */
  moderated?: boolean | undefined
}

/**
 * Adds a tag to a forum channel: at most 20 per forum, exact under races.
 * With `as`, the actor needs `MANAGE_CHANNELS` in the forum. Writes the audit
 * entry (`forum_tag_create`).
 *
 * @throws {InvalidInputError} when a field is invalid.
 * @throws {NotFoundError} when there is no such forum (`entity: 'forum'`).
 * @throws {ConflictError} `'tag_limit'` (20 tags), `'tag_exists'` (the name is taken in the forum).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * const solved = await createForumTag(db, { channel_id: forum.id, name: 'solved', moderated: true })
 * ```
 */
export async function createForumTag(
  db: Kysely<DB>,
  input: CreateForumTagInput,
  as?: ActingAs,
): Promise<ForumTag> {
  assertObject(input, 'input')
  assertUuid(input.channel_id, 'channel_id')
  assertText(input.name, 'name', forumTagFields.name)
  assertOptionalText(input.emoji, 'emoji', forumTagFields.emoji)
  const moderated = input.moderated ?? false
  assertBoolean(moderated, 'moderated')
  assertActingAs(as)
  const { channel_id } = input
  return administer(db, as, {
    lock: async (trx) => {
      const forum = await lockForum.executeTakeFirst(trx, { id: channel_id })
      return forum?.guild_id ? { guild_id: forum.guild_id } : undefined
    },
    missing: () => {
      throw new NotFoundError('forum not found', { entity: 'forum' })
    },
    rule: (forum) => ({
      guild_id: forum.guild_id,
      permission: Permissions.MANAGE_CHANNELS,
      channel_id,
    }),
    apply: async (trx) => {
      try {
        return await mapErrors(
          insertTag.executeTakeFirstOrThrow(trx, {
            id: newId(),
            channel_id,
            name: input.name,
            emoji: input.emoji ?? null,
            moderated,
          }),
        )
      } catch (error) {
        if (error instanceof CheckViolationError && error.constraint === 'forum_tags_limit') {
          throw new ConflictError('the forum has 20 tags', { reason: 'tag_limit', cause: error })
        }
        if (error instanceof UniqueViolationError) {
          throw new ConflictError('the forum has a tag of this name', {
            reason: 'tag_exists',
            cause: error,
          })
        }
        throw error
      }
    },
    audit: (tag, forum) => ({
      guild_id: forum.guild_id,
      action: 'forum_tag_create',
      target_id: tag.id,
      changes: auditChanges(null, tag, ['name', 'emoji', 'moderated']),
    }),
  })
}

/** Checks a post's tag ids: at most {@link MAX_POST_TAGS} distinct UUIDs. */
export function assertPostTagIds(value: unknown, field: string): asserts value is string[] {
  assertUuidArray(value, field)
  const ids = (value as string[]).map((id) => id.toLowerCase())
  if (ids.length > MAX_POST_TAGS || new Set(ids).size !== ids.length) {
    throw new InvalidInputError(`${field} must be at most ${MAX_POST_TAGS} distinct tags`, {
      field,
    })
  }
}

/** A post as {@link applyPostTags} needs it. */
export interface LockedPost {
  id: string
  parent_id: string
  owner_id: string | null
  require_tag: boolean
}

/**
 * Replaces a post's tags by `tag_ids` in the caller's transaction (the post
 * locked): each a tag of its forum, at least one when the forum requires it,
 * moderated ones added or removed only with `MANAGE_THREADS` when `authorized`
 * (an actor's check) is given.
 *
 * @returns the tag ids before and after.
 */
export async function applyPostTags(
  trx: Kysely<DB>,
  post: LockedPost,
  tag_ids: readonly string[],
  authorized: AuthorizeResult | undefined,
): Promise<{ before: string[]; after: string[] }> {
  const wanted = tag_ids.map((id) => id.toLowerCase())
  if (post.require_tag && wanted.length === 0) {
    throw new ConflictError('this forum requires a tag on every post', { reason: 'tag_required' })
  }
  const rows = await selectPostTags.execute(trx, {
    thread_id: post.id,
    forum_id: post.parent_id,
    tag_ids: wanted,
  })
  if (rows.filter((r) => r.requested).length !== wanted.length) {
    throw new InvalidInputError('tag_ids must be tags of the post\u2019s forum', {
      field: 'tag_ids',
    })
  }
  const before = rows.filter((r) => r.applied).map((r) => r.id)
  const removed = rows.filter((r) => r.applied && !r.requested)
  const added = rows.filter((r) => r.requested && !r.applied)
  const moderates =
    authorized === undefined || hasPermission(authorized.permissions, Permissions.MANAGE_THREADS)
  if (!moderates && [...removed, ...added].some((r) => r.moderated)) {
    throw new PermissionDeniedError('a moderated tag needs MANAGE_THREADS', {
      reason: 'missing_permission',
      permission: Permissions.MANAGE_THREADS,
    })
  }
  if (removed.length > 0) {
    await deletePostTags.execute(trx, { thread_id: post.id, tag_ids: removed.map((r) => r.id) })
  }
  if (added.length > 0) {
    await insertPostTags.execute(trx, { thread_id: post.id, tag_ids: added.map((r) => r.id) })
  }
  return { before: before.sort(), after: [...wanted].sort() }
}

/** Input of {@link setPostTags}. */
export interface SetPostTagsInput {
  /** A forum post (a thread of a forum channel). */
  thread_id: string
  /** The post's tags afterwards: at most 5 tags of its forum (none: untagged, unless the forum requires one). */
  tag_ids: readonly string[]
}

/**
 * Sets a forum post's tags (replacing them). With `as`, the actor must be able
 * to send in the post, and be its author or hold `MANAGE_THREADS`; adding or
 * removing a moderated tag needs `MANAGE_THREADS`. Writes the audit entry
 * (`post_tags_update`) when the set changed.
 *
 * @returns the post's tag ids, sorted.
 * @throws {InvalidInputError} when an id is malformed, there are more than 5,
 *   or one is not a tag of the post's forum.
 * @throws {NotFoundError} when there is no such post (`entity: 'post'`).
 * @throws {ConflictError} `'tag_required'` (the forum requires a tag).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await setPostTags(db, { thread_id: post.id, tag_ids: [question.id] }, { actor_id: user.id })
 * ```
 */
export async function setPostTags(
  db: Kysely<DB>,
  input: SetPostTagsInput,
  as?: ActingAs,
): Promise<string[]> {
  assertObject(input, 'input')
  assertUuid(input.thread_id, 'thread_id')
  assertPostTagIds(input.tag_ids, 'tag_ids')
  assertActingAs(as)
  const { thread_id } = input
  return administer(db, as, {
    lock: async (trx) => {
      const post = await lockPost.executeTakeFirst(trx, { id: thread_id })
      return post?.guild_id && post.parent_id
        ? { ...post, guild_id: post.guild_id, parent_id: post.parent_id }
        : undefined
    },
    missing: () => {
      throw new NotFoundError('post not found', { entity: 'post' })
    },
    rule: (post) => ({
      guild_id: post.guild_id,
      permission: Permissions.SEND_MESSAGES,
      channel_id: thread_id,
    }),
    apply: async (trx, post, authorized) => {
      if (
        as &&
        authorized &&
        post.owner_id !== as.actor_id.toLowerCase() &&
        !hasPermission(authorized.permissions, Permissions.MANAGE_THREADS)
      ) {
        throw new PermissionDeniedError("only the post's author or MANAGE_THREADS sets its tags", {
          reason: 'missing_permission',
          permission: Permissions.MANAGE_THREADS,
        })
      }
      return applyPostTags(trx, post, input.tag_ids, authorized)
    },
    audit: ({ before, after }, post) =>
      before.join() === after.join()
        ? null
        : {
            guild_id: post.guild_id,
            action: 'post_tags_update',
            target_id: thread_id,
            changes: { tag_ids: { before: before.join(','), after: after.join(',') } },
          },
  }).then((r) => r.after)
}
