import { type Kysely, sql } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { newId } from '../ids/new-id.ts'
import { prepareQuery } from '../sql/prepared-query.ts'
import { inTransaction } from '../sql/transaction.ts'
import type { Attachment, Message } from '../types.ts'
import {
  assertDate,
  assertObject,
  assertOptionalUuid,
  assertText,
  assertUuid,
  pageLimit,
} from '../validation/validate.ts'
import { attachmentColumns, messageColumns } from './columns.ts'

/** Length rule of `messages.content` (CHECK messages_content_length). */
const CONTENT = { min: 1, max: 4000 } as const

/** Default and maximum page size of {@link listChannelMessages}. */
const MESSAGE_PAGE_DEFAULT = 50
const MESSAGE_PAGE_MAX = 100

// One INSERT … SELECT: the reply target is checked in the same statement (one
// round trip, no race with a concurrent delete of the target).
const insertMessage = prepareQuery(
  (
    db,
    p: {
      id: string
      channel_id: string
      author_id: string
      reply_to: string | null
      content: string
    },
  ) =>
    db
      .insertInto('messages')
      .columns(['id', 'channel_id', 'author_id', 'reply_to', 'content'])
      .expression(
        db
          .selectNoFrom([
            sql<string>`${p.id}::uuid`.as('id'),
            sql<string>`${p.channel_id}::uuid`.as('channel_id'),
            sql<string>`${p.author_id}::uuid`.as('author_id'),
            sql<string | null>`${p.reply_to}::uuid`.as('reply_to'),
            sql<string>`${p.content}::text`.as('content'),
          ])
          .where(
            sql<boolean>`${p.reply_to}::uuid is null or exists (select 1 from messages r where r.id = ${p.reply_to}::uuid and r.channel_id = ${p.channel_id}::uuid and r.deleted_at is null)`,
          ),
      )
      .returning(messageColumns),
)

const selectMessageById = prepareQuery((db, p: { id: string }) =>
  db
    .selectFrom('messages')
    .select(messageColumns)
    .where('id', '=', p.id)
    .where('deleted_at', 'is', null),
)

// History pages: four static shapes, each an index scan of the partial index
// messages_channel_id_id_live_idx (channel_id, id) WHERE deleted_at IS NULL
// (the literal `deleted_at is null` in every WHERE makes the partial index
// match), reading at most `limit` index entries whatever the history depth.
const listNewest = prepareQuery((db, p: { channel_id: string; limit: number }) =>
  db
    .selectFrom('messages')
    .select(messageColumns)
    .where('channel_id', '=', p.channel_id)
    .where('deleted_at', 'is', null)
    .orderBy('id', 'desc')
    .limit(p.limit),
)

const listBefore = prepareQuery((db, p: { channel_id: string; before: string; limit: number }) =>
  db
    .selectFrom('messages')
    .select(messageColumns)
    .where('channel_id', '=', p.channel_id)
    .where('deleted_at', 'is', null)
    .where('id', '<', p.before)
    .orderBy('id', 'desc')
    .limit(p.limit),
)

// Oldest first (a forward index scan, no Sort node); listChannelMessages
// reverses the page in place so it is returned newest first.
const listAfter = prepareQuery((db, p: { channel_id: string; after: string; limit: number }) =>
  db
    .selectFrom('messages')
    .select(messageColumns)
    .where('channel_id', '=', p.channel_id)
    .where('deleted_at', 'is', null)
    .where('id', '>', p.after)
    .orderBy('id', 'asc')
    .limit(p.limit),
)

const listBetween = prepareQuery(
  (db, p: { channel_id: string; after: string; before: string; limit: number }) =>
    db
      .selectFrom('messages')
      .select(messageColumns)
      .where('channel_id', '=', p.channel_id)
      .where('deleted_at', 'is', null)
      .where('id', '>', p.after)
      .where('id', '<', p.before)
      .orderBy('id', 'desc')
      .limit(p.limit),
)

const updateMessageContent = prepareQuery((db, p: { id: string; content: string }) =>
  db
    .updateTable('messages')
    .set({ content: p.content, edited_at: sql`now()` })
    .where('id', '=', p.id)
    .where('deleted_at', 'is', null)
    .returning(messageColumns),
)

const softDeleteMessage = prepareQuery((db, p: { id: string }) =>
  db
    .updateTable('messages')
    .set({ deleted_at: sql`now()` })
    .where('id', '=', p.id)
    .where('deleted_at', 'is', null),
)

// Before a purge: a DM read marker pointing at a message about to be purged
// would be set to NULL by the foreign key (ON DELETE SET NULL), which would make
// the whole conversation unread again. Move it back to the newest message that
// stays (or to NULL when none is older: then every remaining message is newer
// anyway), which leaves every unread count unchanged.
const moveReadMarkersOffPurged = prepareQuery((db, p: { older_than: Date }) =>
  db
    .updateTable('dm_participants as p')
    .set({
      last_read_message_id: sql<
        string | null
      >`(select k.id from messages k where k.channel_id = p.channel_id and k.id < p.last_read_message_id and (k.deleted_at is null or k.deleted_at >= ${p.older_than}) order by k.id desc limit 1)`,
    })
    .where(
      sql<boolean>`p.last_read_message_id in (select d.id from messages d where d.deleted_at is not null and d.deleted_at < ${p.older_than})`,
    ),
)

const purgeMessages = prepareQuery((db, p: { older_than: Date }) =>
  db
    .deleteFrom('messages')
    .where('deleted_at', 'is not', null)
    .where('deleted_at', '<', p.older_than),
)

// purgeDeletedMessagesWithAttachments, step 1: lock the messages to purge.
// FOR UPDATE waits for every transaction that holds a KEY SHARE lock on one of
// them (an attachment insert's foreign-key check) and then keeps new ones out
// until we commit, so step 2's fresh snapshot sees every attachment there will
// ever be on these messages. Ordered by id: concurrent purges lock in one order.
const lockPurgeable = prepareQuery((db, p: { older_than: Date }) =>
  db
    .selectFrom('messages')
    .select('id')
    .where('deleted_at', 'is not', null)
    .where('deleted_at', '<', p.older_than)
    .orderBy('id')
    .forUpdate(),
)

// Step 2: the attachment rows go first, returned; then exactly the locked messages.
const deleteAttachmentsOf = prepareQuery((db, p: { ids: readonly string[] }) =>
  db
    .deleteFrom('message_attachments')
    .where(sql<boolean>`message_id = any(${p.ids}::uuid[])`)
    .returning(attachmentColumns),
)

const deleteMessagesByIds = prepareQuery((db, p: { ids: readonly string[] }) =>
  db.deleteFrom('messages').where(sql<boolean>`id = any(${p.ids}::uuid[])`),
)

/** Input of {@link createMessage}. */
export interface CreateMessageInput {
  channel_id: string
  author_id: string
  /** 1 to 4000 characters (code points), no NUL, well-formed Unicode. */
  content: string
  /** A live (not soft-deleted) message of the same channel. */
  reply_to?: string | null
}

/**
 * Posts a message to a channel (a guild channel or a DM). The id is a new
 * UUIDv7, so it sorts by creation time and is the history's keyset. One round
 * trip: the reply target is checked inside the INSERT.
 *
 * No permission check happens here. `canAccessChannel` only says "may read"
 * (a DM stays readable after a block); to decide "may send here":
 * - guild channel: `computePermissions(db, { guild_id, user_id, channel_id })`
 *   includes `Permissions.SEND_MESSAGES`;
 * - DM: in one transaction, `lockUserPair(trx, me, them)`, then
 *   `findOrCreateDmChannel(trx, { user_id: me, other_user_id: them })`, which
 *   throws `ConflictError` (`'blocked'`) when either blocked the other, then
 *   `createMessage(trx, …)` with its channel id.
 *
 * @throws {InvalidInputError} for a malformed id, content that is empty, longer
 *   than 4000 characters, holds a NUL or a lone surrogate, or a `reply_to` that
 *   is not a live message of the same channel.
 * @throws {ForeignKeyViolationError} when the channel or the author does not exist.
 * @example
 * ```ts
 * const message = await createMessage(db, { channel_id, author_id: user.id, content: 'hi' })
 * // insert into "messages" ("id", "channel_id", "author_id", "reply_to", "content")
 * //   select $1::uuid, $2::uuid, … where $4::uuid is null or exists (…) returning …
 * ```
 */
export async function createMessage(db: Kysely<DB>, input: CreateMessageInput): Promise<Message> {
  assertObject(input, 'input')
  assertUuid(input.channel_id, 'channel_id')
  assertUuid(input.author_id, 'author_id')
  assertOptionalUuid(input.reply_to, 'reply_to')
  assertText(input.content, 'content', CONTENT)
  const row = await insertMessage.executeTakeFirst(db, {
    id: newId(),
    channel_id: input.channel_id,
    author_id: input.author_id,
    reply_to: input.reply_to ?? null,
    content: input.content,
  })
  if (!row) {
    throw new InvalidInputError('reply_to must be a live message of the same channel', {
      field: 'reply_to',
    })
  }
  return row
}

/**
 * Finds a message by id; a soft-deleted message is not found.
 *
 * @throws {InvalidInputError} when `id` is not a UUID.
 * @example
 * ```ts
 * const message = await findMessageById(db, id) // Message | undefined
 * ```
 */
export async function findMessageById(db: Kysely<DB>, id: string): Promise<Message | undefined> {
  assertUuid(id, 'id')
  return selectMessageById.executeTakeFirst(db, { id })
}

/** Options of {@link listChannelMessages}. */
export interface ListChannelMessagesOptions {
  /** Only messages with an id below this one (older). */
  before?: string | null
  /** Only messages with an id above this one (newer). */
  after?: string | null
  /** Page size, 1 to 100; default 50. */
  limit?: number
}

/**
 * Lists a channel's live messages, newest first, by keyset on the time-ordered id:
 *
 * - neither `before` nor `after`: the newest `limit` messages;
 * - `before`: the newest `limit` messages with an id below `before` (scroll back:
 *   pass the last id of the previous page);
 * - `after`: the OLDEST `limit` messages with an id above `after`, returned newest
 *   first (scroll forward / catch up: pass the first id of the previous page;
 *   when a page is full there may be more, continue with the new first id);
 * - both: the newest `limit` messages strictly between `after` and `before`.
 *
 * The cursors need not be live (or existing) message ids. Soft-deleted messages
 * never appear. Every shape is one prepared index scan of
 * `messages_channel_id_id_live_idx`, reading at most `limit` entries, so the cost
 * does not grow with history depth.
 *
 * @throws {InvalidInputError} for a malformed id or a limit outside 1…100.
 * @example
 * ```ts
 * const page = await listChannelMessages(db, channel_id, { limit: 50 })
 * const older = await listChannelMessages(db, channel_id, { before: page.at(-1)?.id })
 * // select … from "messages" where "channel_id" = $1 and "deleted_at" is null
 * //   and "id" < $2 order by "id" desc limit $3
 * ```
 */
export async function listChannelMessages(
  db: Kysely<DB>,
  channel_id: string,
  options: ListChannelMessagesOptions = {},
): Promise<Message[]> {
  assertUuid(channel_id, 'channel_id')
  assertObject(options, 'options')
  const { before, after } = options
  assertOptionalUuid(before, 'before')
  assertOptionalUuid(after, 'after')
  const limit = pageLimit(options.limit, MESSAGE_PAGE_DEFAULT, MESSAGE_PAGE_MAX)
  if (before != null && after != null) {
    return listBetween.execute(db, { channel_id, after, before, limit })
  }
  if (before != null) return listBefore.execute(db, { channel_id, before, limit })
  if (after != null) return (await listAfter.execute(db, { channel_id, after, limit })).reverse()
  return listNewest.execute(db, { channel_id, limit })
}

/**
 * Edits a live message's content and sets `edited_at` to now.
 *
 * @returns the updated message, or `undefined` when there is no live message with that id.
 * @throws {InvalidInputError} for a malformed id or invalid content (see {@link createMessage}).
 * @example
 * ```ts
 * const edited = await updateMessage(db, id, { content: 'fixed typo' })
 * ```
 */
export async function updateMessage(
  db: Kysely<DB>,
  id: string,
  patch: { content: string },
): Promise<Message | undefined> {
  assertUuid(id, 'id')
  assertObject(patch, 'patch')
  assertText(patch.content, 'content', CONTENT)
  return updateMessageContent.executeTakeFirst(db, { id, content: patch.content })
}

/**
 * Soft-deletes a message: sets `deleted_at`, so no read path returns it any
 * more; {@link purgeDeletedMessages} removes it for good later.
 *
 * @returns `true` when a live message was deleted, `false` when there was none
 *   (unknown or already deleted).
 * @throws {InvalidInputError} when `id` is not a UUID.
 * @example
 * ```ts
 * if (await deleteMessage(db, id)) await publishChannelEvent(redis, channel_id, { type: 'message_deleted', channel_id, message_id: id })
 * ```
 */
export async function deleteMessage(db: Kysely<DB>, id: string): Promise<boolean> {
  assertUuid(id, 'id')
  return (await softDeleteMessage.executeAffected(db, { id })) > 0
}

/**
 * Hard-deletes the messages soft-deleted before `older_than`, with their
 * attachments (cascade). Replies to them keep existing with `reply_to` NULL.
 * A DM read marker on a purged message is first moved back to the newest
 * remaining older message, so no unread count changes. Two statements, in the
 * caller's transaction or a new one.
 *
 * The attachment rows go too, and their `s3_key`s with them: when attachments
 * point at stored objects, use {@link purgeDeletedMessagesWithAttachments},
 * which returns every attachment row it deleted, so no object is orphaned
 * (`listAttachmentsByMessageIds` does not list attachments of soft-deleted
 * messages, so listing them first is not possible).
 *
 * @returns the number of messages deleted.
 * @throws {InvalidInputError} when `older_than` is not a valid Date.
 * @example
 * ```ts
 * const purged = await purgeDeletedMessages(db, { older_than: new Date(Date.now() - 30 * 86_400_000) })
 * ```
 */
export async function purgeDeletedMessages(
  db: Kysely<DB>,
  input: { older_than: Date },
): Promise<number> {
  assertObject(input, 'input')
  assertDate(input.older_than, 'older_than')
  const older_than = input.older_than
  return inTransaction(db, async (trx) => {
    await moveReadMarkersOffPurged.execute(trx, { older_than })
    return purgeMessages.executeAffected(trx, { older_than })
  })
}

/** What {@link purgeDeletedMessagesWithAttachments} returns. */
export interface PurgeResult {
  /** The number of messages deleted. */
  purged: number
  /** Every attachment row deleted with them, for deleting the stored objects (`s3_key`). */
  attachments: Attachment[]
}

/**
 * Like {@link purgeDeletedMessages} (hard-deletes the messages soft-deleted
 * before `older_than`, keeps DM read markers' unread counts), and returns every
 * attachment row it deleted, so the caller can delete the stored objects.
 *
 * Cannot miss one: in one transaction (the caller's or its own) it locks the
 * messages to purge (`FOR UPDATE`, which waits for in-flight attachment inserts
 * on them and keeps new ones out), deletes their attachments with `RETURNING`,
 * then deletes exactly those messages. An attachment insert racing the purge
 * either commits first (and is returned) or fails on the foreign key. Delete
 * the objects after the transaction committed; if it rolls back, nothing was
 * deleted.
 *
 * @throws {InvalidInputError} when `older_than` is not a valid Date.
 * @example
 * ```ts
 * const { purged, attachments } = await purgeDeletedMessagesWithAttachments(db, {
 *   older_than: new Date(Date.now() - 30 * 86_400_000),
 * })
 * await s3.deleteObjects(attachments.map((a) => a.s3_key))
 * ```
 */
export async function purgeDeletedMessagesWithAttachments(
  db: Kysely<DB>,
  input: { older_than: Date },
): Promise<PurgeResult> {
  assertObject(input, 'input')
  assertDate(input.older_than, 'older_than')
  const older_than = input.older_than
  return inTransaction(db, async (trx) => {
    const ids = (await lockPurgeable.execute(trx, { older_than })).map((r) => r.id)
    if (ids.length === 0) return { purged: 0, attachments: [] }
    await moveReadMarkersOffPurged.execute(trx, { older_than })
    const attachments = await deleteAttachmentsOf.execute(trx, { ids })
    const purged = await deleteMessagesByIds.executeAffected(trx, { ids })
    return { purged, attachments }
  })
}
