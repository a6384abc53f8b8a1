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
import { administer, updateAudit } from './administer.ts'
import { assertActingAs, auditChanges } from './internal.ts'

/** Tags a forum holds at most (Discord's; migration 0022's `forum_tags_limit`). */
export const MAX_FORUM_TAGS = 20

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

// A tag with its forum's guild, locked (FOR UPDATE: a rename changes a unique
// key, and a delete removes the row post_tags' foreign key probes).
const lockTag = prepareQuery('forum_tags.lock', (db, p: { id: string }) =>
  db
    .selectFrom('forum_tags as g')
    .innerJoin('channels as f', 'f.id', 'g.channel_id')
    .select(forumTagColumns.map((c) => `g.${c}` as const))
    .select('f.guild_id')
    .where('g.id', '=', p.id)
    .forUpdate('g'),
)

// A null parameter keeps the column; `emoji` is set only when given (null clears it).
const updateTag = prepareQuery(
  'forum_tags.update',
  (
    db,
    p: {
      id: string
      name: string | null
      emoji_given: boolean
      emoji: string | null
      moderated: boolean | null
    },
  ) =>
    db
      .updateTable('forum_tags')
      .set({
        name: sql`coalesce(${p.name}::text, name)`,
        emoji: sql`case when ${p.emoji_given}::bool then ${p.emoji}::text else emoji end`,
        moderated: sql`coalesce(${p.moderated}::bool, moderated)`,
      })
      .where('id', '=', p.id)
      .returning(forumTagColumns),
)

// Its post_tags rows go by the foreign key's cascade, in this statement.
const deleteTag = prepareQuery('forum_tags.delete', (db, p: { id: string }) =>
  db.deleteFrom('forum_tags').where('id', '=', p.id),
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
    apply: (trx) =>
      mapErrors(
        insertTag.executeTakeFirstOrThrow(trx, {
          id: newId(),
          channel_id,
          name: input.name,
          emoji: input.emoji ?? null,
          moderated,
        }),
      ).catch(tagErrors),
    audit: (tag, forum) => ({
      guild_id: forum.guild_id,
      action: 'forum_tag_create',
      target_id: tag.id,
      changes: auditChanges(null, tag, TAG_FIELDS),
    }),
  })
}

/** The audit fields of a tag. */
const TAG_FIELDS = ['name', 'emoji', 'moderated'] as const

/** What a tag's insert or update raises, as the documented conflicts. */
function tagErrors(error: unknown): never {
  if (error instanceof CheckViolationError && error.constraint === 'forum_tags_limit') {
    throw new ConflictError(`the forum has ${MAX_FORUM_TAGS} tags`, {
      reason: 'tag_limit',
      cause: error,
    })
  }
  if (error instanceof UniqueViolationError) {
    throw new ConflictError('the forum has a tag of this name', {
      reason: 'tag_exists',
      cause: error,
    })
  }
  throw error
}

/** Locks a tag for {@link updateForumTag} / {@link deleteForumTag}; `undefined` when there is none. */
async function lockForumTag(
  trx: Kysely<DB>,
  id: string,
): Promise<(ForumTag & { guild_id: string }) | undefined> {
  const row = await lockTag.executeTakeFirst(trx, { id })
  return row?.guild_id ? { ...row, guild_id: row.guild_id } : undefined
}

/** The permission a tag's change needs: `MANAGE_CHANNELS` in its forum (as {@link createForumTag}). */
const tagRule = (tag: { guild_id: string; channel_id: string }) => ({
  guild_id: tag.guild_id,
  permission: Permissions.MANAGE_CHANNELS,
  channel_id: tag.channel_id,
})

/** Input of {@link updateForumTag}: the fields given change, the others are kept. */
export interface UpdateForumTagInput {
  tag_id: string
  /** 1 to 20 characters, unique in the forum (the rule of {@link createForumTag}). */
  name?: string | undefined
  /** 1 to 64 characters; `null` removes it. */
  emoji?: string | null | undefined
  /** Only `MANAGE_THREADS` holders apply or remove it. */
  moderated?: boolean | undefined
}

/**
 * Changes a forum tag's name, emoji or `moderated` flag; the fields not given
 * are kept, and the posts carrying the tag keep it. With `as`, the actor needs
 * `MANAGE_CHANNELS` in the forum. Writes the audit entry (`forum_tag_update`,
 * the fields that changed) in the same transaction; an empty patch changes
 * nothing and writes no entry.
 *
 * @returns the tag, or `undefined` when there is none with that id.
 * @throws {InvalidInputError} when a field is invalid; nothing is written.
 * @throws {ConflictError} `'tag_exists'` (the forum has another tag of that name).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await updateForumTag(db, { tag_id: solved.id, name: 'answered', emoji: '✅' }, { actor_id: mod.id })
 * ```
 */
export async function updateForumTag(
  db: Kysely<DB>,
  input: UpdateForumTagInput,
  as?: ActingAs,
): Promise<ForumTag | undefined> {
  assertObject(input, 'input')
  assertUuid(input.tag_id, 'tag_id')
  if (input.name !== undefined) assertText(input.name, 'name', forumTagFields.name)
  assertOptionalText(input.emoji, 'emoji', forumTagFields.emoji)
  if (input.moderated !== undefined) assertBoolean(input.moderated, 'moderated')
  assertActingAs(as)
  const id = input.tag_id
  const given =
    input.name !== undefined || input.emoji !== undefined || input.moderated !== undefined
  return administer(db, as, {
    lock: (trx) => lockForumTag(trx, id),
    missing: () => undefined,
    rule: tagRule,
    apply: async (trx, { guild_id: _, ...before }) =>
      given
        ? mapErrors(
            updateTag.executeTakeFirstOrThrow(trx, {
              id,
              name: input.name ?? null,
              emoji_given: input.emoji !== undefined,
              emoji: input.emoji ?? null,
              moderated: input.moderated ?? null,
            }),
          ).catch(tagErrors)
        : before,
    audit: (after, before) =>
      updateAudit(before, after, TAG_FIELDS, {
        guild_id: before.guild_id,
        action: 'forum_tag_update',
        target_id: id,
      }),
  })
}

/** Input of {@link deleteForumTag}. */
export interface DeleteForumTagInput {
  tag_id: string
}

/**
 * Deletes a forum tag; the posts carrying it lose it in the same statement
 * (the foreign key's cascade), and the tag's slot of the forum's 20 is free
 * again. A forum with `require_tag` may be left with posts without a tag (as
 * in Discord: the rule applies to new posts and tag changes). With `as`, the
 * actor needs `MANAGE_CHANNELS` in the forum. Writes the audit entry
 * (`forum_tag_delete`) in the same transaction.
 *
 * @returns the deleted tag, or `undefined` when there was none.
 * @throws {InvalidInputError} for a malformed id.
 * @throws {PermissionDeniedError} when the actor may not (`reason`); nothing is deleted.
 * @example
 * ```ts
 * await deleteForumTag(db, { tag_id: stale.id }, { actor_id: mod.id })
 * ```
 */
export async function deleteForumTag(
  db: Kysely<DB>,
  input: DeleteForumTagInput,
  as?: ActingAs,
): Promise<ForumTag | undefined> {
  assertObject(input, 'input')
  assertUuid(input.tag_id, 'tag_id')
  assertActingAs(as)
  const id = input.tag_id
  return administer(db, as, {
    lock: (trx) => lockForumTag(trx, id),
    missing: () => undefined,
    rule: tagRule,
    apply: async (trx, { guild_id: _, ...tag }) => {
      await deleteTag.execute(trx, { id })
      return tag
    },
    audit: (tag, locked) => ({
      guild_id: locked.guild_id,
      action: 'forum_tag_delete',
      target_id: id,
      changes: auditChanges(tag, null, TAG_FIELDS),
    }),
  })
}

/** Checks tag ids: at most `max` ({@link MAX_POST_TAGS}: a post's) distinct UUIDs. */
export function assertPostTagIds(
  value: unknown,
  field: string,
  max: number = MAX_POST_TAGS,
): asserts value is string[] {
  assertUuidArray(value, field)
  const ids = (value as string[]).map((id) => id.toLowerCase())
  if (ids.length > max || new Set(ids).size !== ids.length) {
    throw new InvalidInputError(`${field} must be at most ${max} distinct tags`, {
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
