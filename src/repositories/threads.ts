/**
 * Threads (issue 24 item 2, migration 0021): channels of type
 * `'public_thread'` / `'private_thread'` under a text channel. Their access
 * follows the parent (src/permissions/access-sql.ts, docs/permissions.md
 * "Threads"); their members are `channel_members` rows of the thread; their
 * messages, read states, mentions and search are those of any channel.
 */
import { type Kysely, sql } from 'kysely'
import type { Channels, DB } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import {
  CheckViolationError,
  ForeignKeyViolationError,
  UniqueViolationError,
} from '../errors/constraint-errors.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import { type ActingAs, PermissionDeniedError } from '../errors/permission-denied-error.ts'
import { newId } from '../ids/new-id.ts'
import { MIN_UUID } from '../ids/uuid-bounds.ts'
import { accessibleChannelIdsSql } from '../permissions/access-sql.ts'
import { memberChannelPermissionsSql } from '../permissions/actor-sql.ts'
import type { AuthorizeResult } from '../permissions/authorize.ts'
import { hasPermission, Permissions } from '../permissions/permissions.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { mapErrors, prepareQuery, rawQuery } from '../sql/index.ts'
import {
  assertBoolean,
  assertDate,
  assertIdKey,
  assertObject,
  assertOptionalUuid,
  assertText,
  assertUuid,
  pageLimit,
} from '../validation/index.ts'
import { administer, updateAudit } from './administer.ts'
import {
  type ChannelMember,
  channelColumns,
  channelFields,
  channelMemberColumns,
} from './channels.ts'
import { applyPostTags, assertPostTagIds, MAX_FORUM_TAGS } from './forums.ts'
import { assertActingAs, auditChanges } from './internal.ts'
import { PAGE_PLAN_ROWS } from './message-sql.ts'
import { createMessage } from './messages.ts'

/** The values `auto_archive_minutes` may take (Discord's): an hour, a day, three days, a week. */
export const AUTO_ARCHIVE_MINUTES = [60, 1440, 4320, 10080] as const

/** Default and maximum page size of {@link listActiveThreads} and {@link listArchivedThreads}. */
export const THREAD_PAGE_DEFAULT = 50
export const THREAD_PAGE_MAX = 100

/** Threads {@link archiveIdleThreads} archives per call at most. */
export const ARCHIVE_BATCH = 1000

/** The columns every thread-returning function selects: a channel's and the thread's own. */
export const threadColumns = columnList<Channels>()([
  ...channelColumns,
  'owner_id',
  'starter_message_id',
  'auto_archive_minutes',
  'archived_at',
  'locked',
])

/**
 * A thread: a channel (`parent_id` its text channel) with who started it
 * (`owner_id`), the message it was started from (`starter_message_id`),
 * `auto_archive_minutes`, `archived_at` (`null` while active) and `locked`.
 */
export type Thread = Projection<Channels, typeof threadColumns>

/** A thread membership (a `channel_members` row of the thread). */
export type ThreadMember = ChannelMember

/** The audit fields of a thread. */
const THREAD_FIELDS = [
  'name',
  'type',
  'parent_id',
  'auto_archive_minutes',
  'archived_at',
  'locked',
] as const

const THREAD_TYPE = sql<boolean>`auto_archive_minutes is not null`

const insertThread = prepareQuery(
  'threads.insert',
  (
    db,
    p: {
      id: string
      guild_id: string
      parent_id: string
      name: string
      type: 'public_thread' | 'private_thread'
      owner_id: string
      starter_message_id: string | null
      auto_archive_minutes: number
    },
  ) =>
    db
      .insertInto('channels')
      .values({
        id: p.id,
        guild_id: p.guild_id,
        parent_id: p.parent_id,
        name: p.name,
        type: p.type,
        owner_id: p.owner_id,
        starter_message_id: p.starter_message_id,
        auto_archive_minutes: p.auto_archive_minutes,
      })
      .returning(threadColumns),
)

// The parent of a new thread, locked as the thread's insert will lock it
// (FOR NO KEY UPDATE), before the actor check.
const lockParent = prepareQuery('threads.lock_parent', (db, p: { id: string }) =>
  db
    .selectFrom('channels')
    .select(['id', 'guild_id', 'type', 'require_tag'])
    .where('id', '=', p.id)
    .where('type', '<>', 'dm')
    .forNoKeyUpdate(),
)

// A thread, locked (its membership and state change under this lock).
const lockThreadRow = prepareQuery('threads.lock', (db, p: { id: string }) =>
  db
    .selectFrom('channels')
    .select(threadColumns)
    .where('id', '=', p.id)
    .where(THREAD_TYPE)
    .forNoKeyUpdate(),
)

/** Locks a thread and reads it; `undefined` when there is none. */
async function lockThread(
  trx: Kysely<DB>,
  id: string,
): Promise<(Thread & { guild_id: string; parent_id: string }) | undefined> {
  const row = await lockThreadRow.executeTakeFirst(trx, { id })
  return row?.guild_id && row.parent_id
    ? { ...row, guild_id: row.guild_id, parent_id: row.parent_id }
    : undefined
}

// One statement: the membership row (idempotent: an existing row is returned
// unchanged), only while the thread is active and, for a join, the user may
// access the thread, for an add, the user may view its parent. The verdict
// columns tell which rule refused.
const insertThreadMember = prepareQuery(
  'threads.member_insert',
  (db, p: { thread_id: string; user_id: string; join: boolean }) =>
    rawQuery(
      db,
      sql<{
        found: boolean
        archived: boolean
        allowed: boolean
        channel_id: string | null
        guild_id: string | null
        user_id: string | null
        added_at: Date | null
      }>`with t as materialized (
  select t.id, t.guild_id, t.parent_id, t.archived_at from channels t
  where t.id = ${p.thread_id}::uuid and t.auto_archive_minutes is not null
), ok as materialized (
  select case when ${p.join}::bool
    then exists (${accessibleChannelIdsSql({ userId: p.user_id, channelId: p.thread_id, guildId: sql`(select t.guild_id from t)` })})
    else coalesce((${memberChannelPermissionsSql(p.user_id, sql`(select t.parent_id from t)`)}
      & ${sql.raw(`${Permissions.VIEW_CHANNEL}::int8`)}) <> 0, false)
  end as allowed
), i as (
  insert into channel_members (channel_id, guild_id, user_id)
  select t.id, t.guild_id, ${p.user_id}::uuid from t cross join ok
  where ok.allowed and t.archived_at is null
  on conflict (channel_id, user_id) do update set channel_id = excluded.channel_id
  returning ${sql.raw(channelMemberColumns.join(', '))}
)
select exists (select from t) as found,
  coalesce((select t.archived_at is not null from t), false) as archived,
  (select ok.allowed from ok) as allowed, i.*
from (select) one left join i on true`,
    ),
)

const deleteThreadMember = prepareQuery(
  'threads.member_delete',
  (db, p: { thread_id: string; user_id: string }) =>
    db
      .deleteFrom('channel_members')
      .where('channel_id', '=', p.thread_id)
      .where('user_id', '=', p.user_id)
      .where(
        'channel_id',
        'in',
        db.selectFrom('channels').select('id').where('id', '=', p.thread_id).where(THREAD_TYPE),
      ),
)

const threadMemberExists = prepareQuery(
  'threads.member_exists',
  (db, p: { thread_id: string; user_id: string }) =>
    db
      .selectFrom('channel_members')
      .select('user_id')
      .where('channel_id', '=', p.thread_id)
      .where('user_id', '=', p.user_id),
)

const archiveThreadRow = prepareQuery(
  'threads.archive',
  (db, p: { id: string; archived: boolean; locked: boolean | null }) =>
    db
      .updateTable('channels')
      .set({
        archived_at: sql`case when ${p.archived}::bool
          then coalesce(archived_at, statement_timestamp()) end`,
        locked: sql`coalesce(${p.locked}::bool, locked)`,
        updated_at: sql`now()`,
      })
      .where('id', '=', p.id)
      .where(THREAD_TYPE)
      .returning(threadColumns),
)

// The archiver: one conditional UPDATE. The candidates are the active threads
// idle for their auto_archive_minutes (last activity: the newest message, or
// the thread's creation), read with last_seq; a thread is archived only while
// its row still has that last_seq and is active. A send that commits first
// changed last_seq (READ COMMITTED re-checks this WHERE on the newest row
// version after waiting for the send's lock), so the thread stays active; a
// send after the archive takes its position in the same UPDATE that clears
// archived_at (migration 0021), so it unarchives the thread.
const archiveIdle = prepareQuery(
  'threads.archive_idle',
  (db, p: { now: Date | null; batch: number }) =>
    rawQuery(
      db,
      sql<{
        id: string
      }>`update channels c set archived_at = coalesce(${p.now}::timestamptz, statement_timestamp())
from (
  select t.id, t.last_seq from channels t
  where t.auto_archive_minutes is not null and t.archived_at is null
    and coalesce(
      (select m.created_at from messages m where m.channel_id = t.id order by m.id desc limit 1),
      t.created_at) + make_interval(mins => t.auto_archive_minutes)
      <= coalesce(${p.now}::timestamptz, statement_timestamp())
  limit ${p.batch}
) idle
where c.id = idle.id and c.last_seq = idle.last_seq and c.archived_at is null
returning c.id`,
    ),
)

const threadCols = sql.raw(threadColumns.map((c) => `t.${c}`).join(', '))

// A guild's active threads the user may access, by id: a walk of the partial
// index channels_active_threads_idx (archived threads are not in it), with the
// access rule probed per thread, so the cost follows the page, not the guild's
// archived threads. The inner constant LIMIT (the largest page) lets
// PostgreSQL cost one generic plan (see message-sql.ts, PAGE_PLAN_ROWS):
// under `LIMIT $n` alone it planned this statement again on every call.
const activeThreads = prepareQuery(
  'threads.list_active',
  (db, p: { guild_id: string; user_id: string; after: string; limit: number }) =>
    rawQuery(
      db,
      sql<Thread>`select page.* from (
  select ${threadCols} from channels t
  where t.guild_id = ${p.guild_id}::uuid and t.auto_archive_minutes is not null and t.archived_at is null
    and t.id > ${p.after}::uuid
    and exists (${accessibleChannelIdsSql({ userId: p.user_id, guildId: p.guild_id, channelId: sql`t.id` })})
  order by t.id
  limit ${PAGE_PLAN_ROWS}
) page order by page.id limit ${p.limit}`,
    ),
)

// A channel's archived threads the user may access, newest archived first: a
// walk of channels_archived_threads_idx from the cursor's (archived_at, id).
function archivedThreads(paged: boolean) {
  return prepareQuery(
    paged ? 'threads.list_archived_before' : 'threads.list_archived',
    (db, p: { channel_id: string; user_id: string; before: string; limit: number }) =>
      rawQuery(
        db,
        sql<Thread>`select page.* from (
  select ${threadCols} from channels t
  where t.parent_id = ${p.channel_id}::uuid and t.archived_at is not null${
    paged
      ? sql`
    and (t.archived_at, t.id) < (
      select b.archived_at, b.id from channels b
      where b.id = ${p.before}::uuid and b.parent_id = ${p.channel_id}::uuid and b.archived_at is not null)`
      : sql``
  }
    and exists (${accessibleChannelIdsSql({ userId: p.user_id, channelId: sql`t.id`, guildId: sql`t.guild_id` })})
  order by t.archived_at desc, t.id desc
  limit ${PAGE_PLAN_ROWS}
) page order by page.archived_at desc, page.id desc limit ${p.limit}`,
      ),
  )
}
const archivedStatements = { first: archivedThreads(false), before: archivedThreads(true) }

/** What the thread constraints of migration 0021 raise, as typed errors. */
function threadErrors(error: unknown): never {
  if (error instanceof CheckViolationError) {
    if (error.constraint === 'channels_thread_parent') {
      throw new ConflictError("a thread's parent must be a text channel of its guild", {
        reason: 'parent_not_text',
        cause: error,
      })
    }
    if (error.constraint === 'channels_forum_post') {
      throw new InvalidInputError('a forum post is a public thread, not started from a message', {
        field: 'private',
        cause: error,
      })
    }
    if (error.constraint === 'channels_thread_message') {
      throw new InvalidInputError('message_id must be a live message of the channel', {
        field: 'message_id',
        cause: error,
      })
    }
    if (error.constraint === 'channel_members_thread_limit') {
      throw new ConflictError('the thread is at its member limit (guilds.max_thread_members)', {
        reason: 'thread_member_limit',
        cause: error,
      })
    }
  }
  if (
    error instanceof UniqueViolationError &&
    error.constraint === 'channels_starter_message_id_key'
  ) {
    throw new ConflictError('a thread was already started from this message', {
      reason: 'thread_exists',
      cause: error,
    })
  }
  if (error instanceof ForeignKeyViolationError) {
    throw new ConflictError("the user must be a member of the channel's guild", {
      reason: 'not_member',
      cause: error,
    })
  }
  throw error
}

/** Input of {@link createThread}. */
export interface CreateThreadInput {
  /** The parent: a text channel. */
  channel_id: string
  /** Who starts it (its `owner_id` and first member): a member of the guild. */
  author_id: string
  /** 1 to 100 characters. */
  name: string
  /** Start it from this live message of the channel (one thread per message; not for a private thread). */
  message_id?: string | null | undefined
  /** A private thread: visible to its members and `MANAGE_THREADS` holders; default false. */
  private?: boolean | undefined
  /** 60, 1440 (default), 4320 or 10080. */
  auto_archive_minutes?: number | undefined
  /** In a forum (migration 0022): the post's first message, 1 to 4000 characters (required there). */
  content?: string | undefined
  /** In a forum: the post's tags, at most 5 of the forum's (at least one when it requires a tag). */
  tag_ids?: readonly string[] | undefined
}

const CONTENT = { min: 1, max: 4000 } as const

/**
 * Starts a thread in a text channel, from a message or standalone; its author
 * becomes its first member. In a forum channel it starts a post: a public
 * thread with its first message (`content`) and its tags (`tag_ids`), in one
 * transaction. With `as`, the actor needs `CREATE_PUBLIC_THREADS` (or
 * `CREATE_PRIVATE_THREADS`) in the channel; in a forum, `SEND_MESSAGES` there
 * (Discord's "Create Posts"), and `MANAGE_THREADS` for a moderated tag. Writes the audit entry (`thread_create`) in the same
 * transaction.
 *
 * @throws {InvalidInputError} when a field is invalid, a private thread names
 *   a message, or `message_id` is not a live message of the channel.
 * @throws {NotFoundError} when the channel does not exist (`entity: 'channel'`).
 * @throws {ConflictError} `'parent_not_text'`, `'thread_exists'` (the message
 *   has a thread), `'not_member'` (the author is not in the guild),
 *   `'tag_required'` (a forum that requires a tag).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * const thread = await createThread(db, { channel_id, author_id: user.id, name: 'release notes' }, { actor_id: user.id })
 * ```
 */
export async function createThread(
  db: Kysely<DB>,
  input: CreateThreadInput,
  as?: ActingAs,
): Promise<Thread> {
  assertObject(input, 'input')
  assertUuid(input.channel_id, 'channel_id')
  assertUuid(input.author_id, 'author_id')
  assertText(input.name, 'name', channelFields.name)
  assertOptionalUuid(input.message_id, 'message_id')
  const isPrivate = input.private ?? false
  assertBoolean(isPrivate, 'private')
  const minutes = input.auto_archive_minutes ?? 1440
  assertAutoArchive(minutes)
  if (isPrivate && input.message_id != null) {
    throw new InvalidInputError('a private thread is not started from a message', {
      field: 'message_id',
    })
  }
  if (input.content !== undefined) assertText(input.content, 'content', CONTENT)
  if (input.tag_ids !== undefined) assertPostTagIds(input.tag_ids, 'tag_ids')
  assertActingAs(as)
  const { channel_id, author_id } = input
  return administer(db, as, {
    lock: async (trx) => {
      const parent = await lockParent.executeTakeFirst(trx, { id: channel_id })
      return parent?.guild_id
        ? {
            guild_id: parent.guild_id,
            forum: parent.type === 'forum',
            require_tag: parent.require_tag,
          }
        : undefined
    },
    missing: () => {
      throw new NotFoundError('channel not found', { entity: 'channel' })
    },
    // In a forum, posting is SEND_MESSAGES there (Discord's "Create Posts").
    rule: (parent) => ({
      guild_id: parent.guild_id,
      permission: parent.forum
        ? Permissions.SEND_MESSAGES
        : isPrivate
          ? Permissions.CREATE_PRIVATE_THREADS
          : Permissions.CREATE_PUBLIC_THREADS,
      channel_id,
    }),
    apply: async (trx, parent, authorized) => {
      if (parent.forum ? input.content === undefined : input.content !== undefined) {
        throw new InvalidInputError('a forum post (and only a forum post) starts with content', {
          field: 'content',
        })
      }
      if (!parent.forum && input.tag_ids !== undefined) {
        throw new InvalidInputError('tags are for forum posts', { field: 'tag_ids' })
      }
      try {
        const thread = await mapErrors(
          insertThread.executeTakeFirstOrThrow(trx, {
            id: newId(),
            guild_id: parent.guild_id,
            parent_id: channel_id,
            name: input.name,
            type: isPrivate ? 'private_thread' : 'public_thread',
            owner_id: author_id,
            starter_message_id: input.message_id ?? null,
            auto_archive_minutes: minutes,
          }),
        )
        await mapErrors(
          trx
            .insertInto('channel_members')
            .values({ channel_id: thread.id, guild_id: parent.guild_id, user_id: author_id })
            .execute(),
        )
        if (parent.forum) {
          await applyPostTags(
            trx,
            {
              id: thread.id,
              parent_id: channel_id,
              owner_id: author_id,
              require_tag: parent.require_tag,
            },
            input.tag_ids ?? [],
            authorized,
          )
          await createMessage(trx, {
            channel_id: thread.id,
            author_id,
            content: input.content ?? '',
          })
        }
        return thread
      } catch (error) {
        return threadErrors(error)
      }
    },
    audit: (thread, parent) => ({
      guild_id: parent.guild_id,
      action: 'thread_create',
      target_id: thread.id,
      changes: auditChanges(null, thread, THREAD_FIELDS),
    }),
  })
}

function assertAutoArchive(value: unknown): asserts value is number {
  if (!(AUTO_ARCHIVE_MINUTES as readonly unknown[]).includes(value)) {
    throw new InvalidInputError('auto_archive_minutes must be 60, 1440, 4320 or 10080', {
      field: 'auto_archive_minutes',
    })
  }
}

/** Identifies one thread membership. */
export interface ThreadMemberKey {
  thread_id: string
  user_id: string
}

const THREAD_MEMBER_KEY = ['thread_id', 'user_id'] as const

/** Runs the membership insert and turns its verdict into the member or a typed refusal. */
async function insertMember(
  db: Kysely<DB>,
  key: ThreadMemberKey,
  join: boolean,
): Promise<{ member: ThreadMember; added: boolean }> {
  const existed = await threadMemberExists.executeTakeFirst(db, key)
  let row: Awaited<ReturnType<typeof insertThreadMember.executeTakeFirst>>
  try {
    row = await mapErrors(insertThreadMember.executeTakeFirst(db, { ...key, join }))
  } catch (error) {
    return threadErrors(error)
  }
  if (!row?.found) throw new NotFoundError('thread not found', { entity: 'thread' })
  if (!row.allowed) {
    if (join) {
      throw new PermissionDeniedError('the user may not view this thread', {
        reason: 'missing_permission',
        permission: Permissions.VIEW_CHANNEL,
      })
    }
    throw new ConflictError("the user may not view the thread's channel", {
      reason: 'cannot_view',
    })
  }
  if (row.archived) throw new ConflictError('the thread is archived', { reason: 'archived' })
  if (row.channel_id == null || row.guild_id == null || row.user_id == null || !row.added_at) {
    throw new ConflictError("the user must be a member of the channel's guild", {
      reason: 'not_member',
    })
  }
  const member = {
    channel_id: row.channel_id,
    guild_id: row.guild_id,
    user_id: row.user_id,
    added_at: row.added_at,
  }
  return { member, added: existed === undefined }
}

/**
 * Joins a thread the user may access (a public thread: whoever views its
 * channel; a private one: its members and `MANAGE_THREADS` holders) while it
 * is active; idempotent.
 *
 * @throws {InvalidInputError} when an id is not a UUID.
 * @throws {NotFoundError} when there is no such thread (`entity: 'thread'`).
 * @throws {PermissionDeniedError} when the user may not view the thread.
 * @throws {ConflictError} `'archived'`, `'thread_member_limit'`.
 * @example
 * ```ts
 * await joinThread(db, { thread_id, user_id })
 * ```
 */
export async function joinThread(db: Kysely<DB>, input: ThreadMemberKey): Promise<ThreadMember> {
  assertIdKey(input, THREAD_MEMBER_KEY)
  return (await insertMember(db, input, true)).member
}

/**
 * Leaves a thread. For a private thread, access goes with the membership
 * (unless the user holds `MANAGE_THREADS`).
 *
 * @returns `false` when the user was not a member.
 * @throws {InvalidInputError} when an id is not a UUID.
 * @example
 * ```ts
 * await leaveThread(db, { thread_id, user_id })
 * ```
 */
export async function leaveThread(db: Kysely<DB>, input: ThreadMemberKey): Promise<boolean> {
  assertIdKey(input, THREAD_MEMBER_KEY)
  return (await deleteThreadMember.executeAffected(db, input)) > 0
}

/**
 * Adds a member to an active thread: a guild member who can view its channel;
 * idempotent. With `as`, the actor must be able to send in the thread (for a
 * private thread: be a member or hold `MANAGE_THREADS`). Writes the audit
 * entry (`thread_member_add`) when the row is new.
 *
 * @throws {InvalidInputError} when an id is not a UUID.
 * @throws {NotFoundError} when there is no such thread (`entity: 'thread'`).
 * @throws {ConflictError} `'cannot_view'`, `'archived'`, `'not_member'`, `'thread_member_limit'`.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await addThreadMember(db, { thread_id, user_id: friend.id }, { actor_id: me.id })
 * ```
 */
export async function addThreadMember(
  db: Kysely<DB>,
  input: ThreadMemberKey,
  as?: ActingAs,
): Promise<ThreadMember> {
  assertIdKey(input, THREAD_MEMBER_KEY)
  assertActingAs(as)
  const { thread_id, user_id } = input
  return administer(db, as, {
    lock: (trx) => lockThread(trx, thread_id),
    missing: () => {
      throw new NotFoundError('thread not found', { entity: 'thread' })
    },
    rule: (thread) => ({
      guild_id: thread.guild_id,
      permission: Permissions.SEND_MESSAGES,
      channel_id: thread_id,
    }),
    apply: (trx) => insertMember(trx, { thread_id, user_id }, false),
    audit: ({ member, added }, thread) =>
      added
        ? {
            guild_id: thread.guild_id,
            action: 'thread_member_add',
            target_id: member.user_id,
            changes: { thread_id: { before: null, after: thread.id } },
          }
        : null,
  }).then((r) => r.member)
}

/**
 * Removes a member from a thread. With `as`, the actor needs `MANAGE_THREADS`
 * in it. Writes the audit entry (`thread_member_remove`) when a row went.
 *
 * @returns `false` when the user was not a member (or there is no such thread).
 * @throws {InvalidInputError} when an id is not a UUID.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await removeThreadMember(db, { thread_id, user_id }, { actor_id: mod.id })
 * ```
 */
export async function removeThreadMember(
  db: Kysely<DB>,
  input: ThreadMemberKey,
  as?: ActingAs,
): Promise<boolean> {
  assertIdKey(input, THREAD_MEMBER_KEY)
  assertActingAs(as)
  const { thread_id, user_id } = input
  return administer(db, as, {
    lock: (trx) => lockThread(trx, thread_id),
    missing: () => false,
    rule: (thread) => ({
      guild_id: thread.guild_id,
      permission: Permissions.MANAGE_THREADS,
      channel_id: thread_id,
    }),
    apply: async (trx) =>
      (await deleteThreadMember.executeAffected(trx, { thread_id, user_id })) > 0,
    audit: (removed, thread) =>
      removed
        ? {
            guild_id: thread.guild_id,
            action: 'thread_member_remove',
            target_id: user_id,
            changes: { thread_id: { before: thread.id, after: null } },
          }
        : null,
  })
}

/** Input of {@link archiveThread}. */
export interface ArchiveThreadInput {
  thread_id: string
  /** `false` unarchives it instead (a locked one too); default true. */
  archived?: boolean | undefined
  /** Also lock it (`true`) or unlock it (`false`); absent: as it is. A change needs `MANAGE_THREADS` (with `as`). */
  locked?: boolean | undefined
}

/**
 * Archives a thread now (or, with `archived: false`, unarchives it), and
 * locks or unlocks it. A send to an archived thread unarchives it; to a locked
 * one only a `MANAGE_THREADS` holder may send. With `as` (Discord's rule): a
 * `MANAGE_THREADS` holder in the thread may do all of it; the thread's owner
 * (who started it), while they can view it, may archive or unarchive it
 * while it is not locked, but not lock or unlock it. Writes the audit entry
 * (`thread_update`) when something changed.
 *
 * @returns the thread, or `undefined` when there is none.
 * @throws {InvalidInputError} when a field is invalid.
 * @throws {PermissionDeniedError} when the actor may not (`reason`
 *   `'missing_permission'`, `permission` `MANAGE_THREADS`: not the owner, a
 *   change of `locked`, or a locked thread; `VIEW_CHANNEL` when the actor
 *   cannot view the thread); nothing is written.
 * @example
 * ```ts
 * await archiveThread(db, { thread_id, locked: true }, { actor_id: mod.id })
 * await archiveThread(db, { thread_id }, { actor_id: thread.owner_id })
 * ```
 */
export async function archiveThread(
  db: Kysely<DB>,
  input: ArchiveThreadInput,
  as?: ActingAs,
): Promise<Thread | undefined> {
  assertObject(input, 'input')
  assertUuid(input.thread_id, 'thread_id')
  if (input.locked !== undefined) assertBoolean(input.locked, 'locked')
  const archived = input.archived ?? true
  assertBoolean(archived, 'archived')
  assertActingAs(as)
  const { thread_id } = input
  return administer(db, as, {
    lock: (trx) => lockThread(trx, thread_id),
    missing: () => undefined,
    rule: (thread) => ({
      guild_id: thread.guild_id,
      permission: Permissions.VIEW_CHANNEL,
      channel_id: thread_id,
    }),
    apply: (trx, thread, authorized) => {
      if (as && authorized) assertMayArchive(thread, input.locked, as.actor_id, authorized)
      return archiveThreadRow.executeTakeFirst(trx, {
        id: thread_id,
        archived,
        locked: input.locked ?? null,
      })
    },
    audit: (after, before) =>
      updateAudit(before, after, THREAD_FIELDS, {
        guild_id: before.guild_id,
        action: 'thread_update',
        target_id: thread_id,
      }),
  })
}

/**
 * The actor rule of {@link archiveThread} past `VIEW_CHANNEL` (Discord's):
 * `MANAGE_THREADS` may do anything; the thread's owner may archive or
 * unarchive it while it is not locked, and change nothing about `locked`.
 */
function assertMayArchive(
  thread: Thread,
  locked: boolean | undefined,
  actor_id: string,
  authorized: AuthorizeResult,
): void {
  if (hasPermission(authorized.permissions, Permissions.MANAGE_THREADS)) return
  const refuse = (message: string) =>
    new PermissionDeniedError(message, {
      reason: 'missing_permission',
      permission: Permissions.MANAGE_THREADS,
    })
  if (thread.owner_id !== actor_id.toLowerCase()) {
    throw refuse("only the thread's owner or MANAGE_THREADS archives it")
  }
  if (locked !== undefined && locked !== thread.locked) {
    throw refuse('locking or unlocking a thread needs MANAGE_THREADS')
  }
  if (thread.locked)
    throw refuse('a locked thread is archived or unarchived only with MANAGE_THREADS')
}

/** Input of {@link archiveIdleThreads}. */
export interface ArchiveIdleThreadsInput {
  /** The time to judge idleness at (default: the database's clock). */
  now?: Date | undefined
}

/**
 * Archives the threads idle for their `auto_archive_minutes` (no message
 * since, or since creation), at most {@link ARCHIVE_BATCH} per call: the host
 * calls it periodically (again while it returns the full batch). A conditional
 * update: a send racing it either commits first and keeps the thread active,
 * or comes after and unarchives it; never a message in an archived thread.
 *
 * @returns how many threads it archived.
 * @throws {InvalidInputError} when `now` is not a valid Date.
 * @example
 * ```ts
 * setInterval(() => archiveIdleThreads(db).catch(log), 60_000)
 * ```
 */
export async function archiveIdleThreads(
  db: Kysely<DB>,
  input: ArchiveIdleThreadsInput = {},
): Promise<number> {
  assertObject(input, 'input')
  if (input.now !== undefined) assertDate(input.now, 'now')
  const rows = await archiveIdle.execute(db, { now: input.now ?? null, batch: ARCHIVE_BATCH })
  return rows.length
}

/** Input of {@link listActiveThreads}. */
export interface ListActiveThreadsInput {
  guild_id: string
  user_id: string
  /** Only threads with an id above this one (the last id of the previous page). */
  after?: string | null | undefined
  /** Page size, 1 to 100; default 50. */
  limit?: number | undefined
}

/**
 * A page of a guild's active threads that the user may access, by id (keyset:
 * pass the last id as `after`). Its cost follows the page, not the number of
 * archived threads.
 *
 * @throws {InvalidInputError} when an id is malformed or the limit is outside 1…100.
 * @example
 * ```ts
 * const threads = await listActiveThreads(db, { guild_id, user_id })
 * ```
 */
export async function listActiveThreads(
  db: Kysely<DB>,
  input: ListActiveThreadsInput,
): Promise<Thread[]> {
  assertIdKey(input, ['guild_id', 'user_id'])
  assertOptionalUuid(input.after, 'after')
  const limit = pageLimit(input.limit, THREAD_PAGE_DEFAULT, THREAD_PAGE_MAX)
  return activeThreads.execute(db, {
    guild_id: input.guild_id,
    user_id: input.user_id,
    after: input.after ?? MIN_UUID,
    limit,
  })
}

/** Input of {@link listArchivedThreads}. */
export interface ListArchivedThreadsInput {
  channel_id: string
  user_id: string
  /** Only threads archived before this one (the last thread of the previous page). */
  before?: string | null | undefined
  /** Page size, 1 to 100; default 50. */
  limit?: number | undefined
}

/**
 * A page of a channel's archived threads that the user may access, newest
 * archived first (keyset on `(archived_at, id)`: pass the last thread's id as
 * `before`). Private ones only for their members and `MANAGE_THREADS` holders.
 *
 * @throws {InvalidInputError} when an id is malformed or the limit is outside 1…100.
 * @example
 * ```ts
 * const page = await listArchivedThreads(db, { channel_id, user_id })
 * const next = await listArchivedThreads(db, { channel_id, user_id, before: page.at(-1)?.id })
 * ```
 */
export async function listArchivedThreads(
  db: Kysely<DB>,
  input: ListArchivedThreadsInput,
): Promise<Thread[]> {
  assertIdKey(input, ['channel_id', 'user_id'])
  assertOptionalUuid(input.before, 'before')
  const limit = pageLimit(input.limit, THREAD_PAGE_DEFAULT, THREAD_PAGE_MAX)
  const before = input.before ?? null
  return archivedStatements[before === null ? 'first' : 'before'].execute(db, {
    channel_id: input.channel_id,
    user_id: input.user_id,
    before: before ?? MIN_UUID,
    limit,
  })
}

// A forum's posts the user may access, by last activity (newest first): a walk
// of channels_forum_posts_idx from the cursor's (last_message_at, id), with
// each post's tags. `tagged`: only posts carrying any of `tag_ids` (a primary
// key probe of post_tags per post walked; the keyset is the same, so pages of
// a filtered listing chain like unfiltered ones).
function forumPosts(paged: boolean, tagged: boolean) {
  return prepareQuery(
    `threads.list_forum_posts${tagged ? '_tagged' : ''}${paged ? '_before' : ''}`,
    (
      db,
      p: { channel_id: string; user_id: string; before: string; limit: number; tag_ids: string[] },
    ) =>
      rawQuery(
        db,
        sql<ForumPost>`select page.*, array(
    select pt.tag_id from post_tags pt where pt.thread_id = page.id order by pt.tag_id
  ) as tag_ids
from (
  select ${threadCols}, t.last_message_at from channels t
  where t.parent_id = ${p.channel_id}::uuid and t.last_message_at is not null${
    paged
      ? sql`
    and (t.last_message_at, t.id) < (
      select b.last_message_at, b.id from channels b
      where b.id = ${p.before}::uuid and b.parent_id = ${p.channel_id}::uuid and b.last_message_at is not null)`
      : sql``
  }${
    tagged
      ? sql`
    and exists (
      select from post_tags pt where pt.thread_id = t.id and pt.tag_id = any(${p.tag_ids}::uuid[]))`
      : sql``
  }
    and exists (${accessibleChannelIdsSql({ userId: p.user_id, channelId: sql`t.id`, guildId: sql`t.guild_id` })})
  order by t.last_message_at desc, t.id desc
  limit ${PAGE_PLAN_ROWS}
) page order by page.last_message_at desc, page.id desc limit ${p.limit}`,
      ),
  )
}
const forumPostStatements = {
  all: { first: forumPosts(false, false), before: forumPosts(true, false) },
  tagged: { first: forumPosts(false, true), before: forumPosts(true, true) },
}

/** A forum post as {@link listForumPosts} lists it: the thread, its last activity and its tag ids. */
export type ForumPost = Thread & { last_message_at: Date; tag_ids: string[] }

/** Input of {@link listForumPosts}. */
export interface ListForumPostsInput {
  /** A forum channel. */
  channel_id: string
  user_id: string
  /** Only posts active before this one (the last post of the previous page). */
  before?: string | null | undefined
  /** Page size, 1 to 100; default 50. */
  limit?: number | undefined
  /**
   * Only posts carrying ANY of these tags (Discord's tag filter), at most 20
   * distinct ids; absent or empty: every post. An id that is no tag of the
   * forum matches nothing.
   */
  tag_ids?: readonly string[] | undefined
}

/**
 * A page of a forum's posts (active and archived) that the user may access,
 * by last activity, newest first (keyset on `(last_message_at, id)`: pass the
 * last post's id as `before`), each with its tag ids. With `tag_ids`, only the
 * posts carrying any of those tags, paged the same way (pass the same
 * `tag_ids` with `before`).
 *
 * @throws {InvalidInputError} when an id is malformed, `tag_ids` holds more
 *   than 20 ids or a duplicate, or the limit is outside 1…100.
 * @example
 * ```ts
 * const posts = await listForumPosts(db, { channel_id: forum.id, user_id })
 * const open = await listForumPosts(db, { channel_id: forum.id, user_id, tag_ids: [bug.id, question.id] })
 * ```
 */
export async function listForumPosts(
  db: Kysely<DB>,
  input: ListForumPostsInput,
): Promise<ForumPost[]> {
  assertIdKey(input, ['channel_id', 'user_id'])
  assertOptionalUuid(input.before, 'before')
  const limit = pageLimit(input.limit, THREAD_PAGE_DEFAULT, THREAD_PAGE_MAX)
  const tag_ids = input.tag_ids ?? []
  assertPostTagIds(tag_ids, 'tag_ids', MAX_FORUM_TAGS)
  const before = input.before ?? null
  const statements = tag_ids.length === 0 ? forumPostStatements.all : forumPostStatements.tagged
  return statements[before === null ? 'first' : 'before'].execute(db, {
    channel_id: input.channel_id,
    user_id: input.user_id,
    before: before ?? MIN_UUID,
    limit,
    tag_ids: [...tag_ids],
  })
}
