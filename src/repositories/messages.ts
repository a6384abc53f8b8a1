import { type Kysely, type SelectQueryBuilder, sql } from 'kysely'
import type { DB, MessageMentions, Messages } from '../../codegen/db.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { type ActingAs, PermissionDeniedError } from '../errors/permission-denied-error.ts'
import { newId } from '../ids/new-id.ts'
import { authorize } from '../permissions/authorize.ts'
import { Permissions } from '../permissions/permissions.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { inTransaction, prepareQuery, rawQuery } from '../sql/index.ts'
import {
  assertDate,
  assertObject,
  assertOptionalUuid,
  assertText,
  assertUuid,
  assertUuidArray,
  defineFields,
  pageLimit,
  text,
} from '../validation/index.ts'
import { type Attachment, attachmentColumns } from './attachments.ts'
import { assertActingAs, writeAudit } from './internal.ts'
import { onNonceConflict, priorMessage, validNonce } from './message-nonce.ts'
import {
  afterBound,
  beforeBound,
  channelGuildSql,
  MESSAGE_PAGE_DEFAULT,
  MESSAGE_PAGE_MAX,
  type MessageInsertParams,
  mentionsSql,
  PAGE_PLAN_ROWS,
  referencesSql,
} from './message-sql.ts'

/** The columns every message-returning function selects (not the internal `search`). */
export const messageColumns = columnList<Messages>()([
  'id',
  'channel_id',
  'author_id',
  'reply_to',
  'content',
  'created_at',
  'edited_at',
  'deleted_at',
  'seq',
])

/**
 * A message. The internal full-text column `search` is not part of it. `seq` is
 * its position in its channel: positions grow in commit order within a channel
 * (see {@link listChannelMessages}); they are not dense, and messages of a 0.1.0
 * database got positions ≤ 0 when migrated.
 */
export type Message = Projection<Messages, typeof messageColumns>

/** The public columns of `message_mentions` (channel_id, seq and author_id are internal copies). */
export const messageMentionColumns = columnList<MessageMentions>()([
  'message_id',
  'user_id',
  'role_id',
  'everyone',
])

/**
 * One mention of a message: exactly one of `user_id`, `role_id` or `everyone`
 * (`true`) names whom it mentions.
 */
export type MessageMention = Projection<MessageMentions, typeof messageMentionColumns>

/** Length rules of the `messages` columns (the CHECKs of the schema). */
export const messageFields = defineFields('messages', {
  content: text(1, 4000),
  nonce: text(1, 25),
})

const CONTENT = messageFields.content

/** At most this many user ids, and as many role ids, in one message's mentions. */
export const MENTIONS_MAX = 100

// One INSERT … SELECT: the reply target is checked in the same statement (one
// round trip, no race with a concurrent delete of the target).
const insertMessage = prepareQuery(
  'messages.insert',
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

// The same INSERT with its mentions, in ONE statement: the message row is
// written only when the reply target, every mentioned role (a role of the
// channel's guild) and every mentioned user exist; the mention rows copy the
// new row's channel_id, seq (set by the messages_seq trigger) and author_id.
const RETURNING = sql.raw(messageColumns.map((c) => `m.${c}`).join(', '))
const insertMessageWithMentions = prepareQuery(
  'messages.insert_with_mentions',
  (db, p: MessageInsertParams) => {
    const r = referencesSql(p, channelGuildSql(p.channel_id))
    return rawQuery(
      db,
      sql<Message>`with m as (
  insert into messages (id, channel_id, author_id, reply_to, content)
  select ${p.id}::uuid, ${p.channel_id}::uuid, ${p.author_id}::uuid, ${p.reply_to}::uuid, ${p.content}::text
  where ${r.reply} and ${r.roles} and ${r.users}
  returning *
), ${mentionsSql(p, 'm')}
select ${RETURNING} from m`,
    )
  },
)

// The same with a client nonce (migration 0010): a second create with the same
// (channel, author, nonce) inserts nothing, waiting for a concurrent first one.
const insertMessageWithNonce = prepareQuery(
  'messages.insert_nonce',
  (db, p: MessageInsertParams & { nonce: string }) => {
    const r = referencesSql(p, channelGuildSql(p.channel_id))
    return rawQuery(
      db,
      sql<Message>`with m as (
  insert into messages (id, channel_id, author_id, reply_to, content, nonce)
  select ${p.id}::uuid, ${p.channel_id}::uuid, ${p.author_id}::uuid, ${p.reply_to}::uuid, ${p.content}::text, ${p.nonce}::text
  where ${r.reply} and ${r.roles} and ${r.users}
  ${onNonceConflict}
  returning *
), ${mentionsSql(p, 'm')}
select ${RETURNING} from m`,
    )
  },
)

interface MessageRefsRow {
  reply_ok: boolean
  roles_ok: boolean
  users_ok: boolean
}

// Only after an INSERT that wrote nothing: which reference was wrong.
const checkMessageRefs = prepareQuery(
  'messages.check_refs',
  (
    db,
    p: { channel_id: string; reply_to: string | null; user_ids: string[]; role_ids: string[] },
  ) => {
    const r = referencesSql(p, channelGuildSql(p.channel_id))
    return rawQuery(
      db,
      sql<MessageRefsRow>`select ${r.reply} as reply_ok, ${r.roles} as roles_ok, ${r.users} as users_ok`,
    )
  },
)

const selectMentions = prepareQuery(
  'messages.mentions_of_messages',
  (db, p: { message_ids: string[] }) =>
    db
      .selectFrom('message_mentions')
      .select(messageMentionColumns)
      .where(sql<boolean>`message_id = any(${p.message_ids}::uuid[])`)
      .orderBy('message_id')
      .orderBy(sql`user_id nulls last`)
      .orderBy(sql`role_id nulls last`),
)

const selectMessageById = prepareQuery('messages.by_id', (db, p: { id: string }) =>
  db
    .selectFrom('messages')
    .select(messageColumns)
    .where('id', '=', p.id)
    .where('deleted_at', 'is', null),
)

// History pages: four static shapes, each an index scan of the partial index
// messages_channel_id_seq_live_idx (channel_id, seq) WHERE deleted_at IS NULL
// (the literal `deleted_at is null` in every WHERE makes the partial index
// match), reading at most `limit` index entries whatever the history depth,
// through the inner LIMIT of PAGE_PLAN_ROWS (message-sql.ts). Cursor bounds:
// afterBound / beforeBound (message-sql.ts).

/** Live messages of one channel, as the history pages narrow them. */
type ChannelHistory = SelectQueryBuilder<DB, 'messages', object>

/** One page: `narrow` adds the cursor bounds; `direction` is the index order read. */
function historyPage(
  db: Kysely<DB>,
  p: { channel_id: string; limit: number },
  direction: 'asc' | 'desc',
  narrow: (q: ChannelHistory) => ChannelHistory = (q) => q,
) {
  const live = db
    .selectFrom('messages')
    .where('channel_id', '=', p.channel_id)
    .where('deleted_at', 'is', null)
  return db
    .selectFrom(
      narrow(live)
        .select(messageColumns)
        .orderBy('seq', direction)
        .limit(PAGE_PLAN_ROWS)
        .as('page'),
    )
    .selectAll()
    .orderBy('page.seq', direction)
    .limit(p.limit)
}

const listNewest = prepareQuery(
  'messages.list_newest',
  (db, p: { channel_id: string; limit: number }) => historyPage(db, p, 'desc'),
)

const listBefore = prepareQuery(
  'messages.list_before',
  (db, p: { channel_id: string; before: string; limit: number }) =>
    historyPage(db, p, 'desc', (q) => q.where('seq', '<', beforeBound(p.channel_id, p.before))),
)

// Oldest first (a forward index scan, no Sort node); listChannelMessages
// reverses the page in place so it is returned newest first.
const listAfter = prepareQuery(
  'messages.list_after',
  (db, p: { channel_id: string; after: string; limit: number }) =>
    historyPage(db, p, 'asc', (q) => q.where('seq', '>', afterBound(p.channel_id, p.after))),
)

const listBetween = prepareQuery(
  'messages.list_between',
  (db, p: { channel_id: string; after: string; before: string; limit: number }) =>
    historyPage(db, p, 'desc', (q) =>
      q
        .where('seq', '>', afterBound(p.channel_id, p.after))
        .where('seq', '<', beforeBound(p.channel_id, p.before)),
    ),
)

const updateMessageContent = prepareQuery(
  'messages.update_content',
  (db, p: { id: string; content: string }) =>
    db
      .updateTable('messages')
      .set({ content: p.content, edited_at: sql`now()` })
      .where('id', '=', p.id)
      .where('deleted_at', 'is', null)
      .returning(messageColumns),
)

const softDeleteMessage = prepareQuery('messages.soft_delete', (db, p: { id: string }) =>
  db
    .updateTable('messages')
    .set({ deleted_at: sql`now()` })
    .where('id', '=', p.id)
    .where('deleted_at', 'is', null),
)

// The live message and its channel's guild, locked against a concurrent edit or delete.
const lockLiveMessage = prepareQuery('messages.lock_live', (db, p: { id: string }) =>
  db
    .selectFrom('messages as m')
    .innerJoin('channels as c', 'c.id', 'm.channel_id')
    .select(['m.id', 'm.channel_id', 'm.author_id', 'c.guild_id'])
    .where('m.id', '=', p.id)
    .where('m.deleted_at', 'is', null)
    .forUpdate('m'),
)

// A purge touches no read marker: markers are positions (channel_read_states.
// last_read_seq) and plain ids without a foreign key (migration 0003), so a
// purge, racing a marker update or not, never makes a read channel unread.
const purgeMessages = prepareQuery('messages.purge', (db, p: { older_than: Date }) =>
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
const lockPurgeable = prepareQuery('messages.lock_purgeable', (db, p: { older_than: Date }) =>
  db
    .selectFrom('messages')
    .select('id')
    .where('deleted_at', 'is not', null)
    .where('deleted_at', '<', p.older_than)
    .orderBy('id')
    .forUpdate(),
)

// Step 2: the attachment rows go first, returned; then exactly the locked messages.
const deleteAttachmentsOf = prepareQuery(
  'message_attachments.delete_of_messages',
  (db, p: { ids: readonly string[] }) =>
    db
      .deleteFrom('message_attachments')
      .where(sql<boolean>`message_id = any(${p.ids}::uuid[])`)
      .returning(attachmentColumns),
)

const deleteMessagesByIds = prepareQuery(
  'messages.delete_by_ids',
  (db, p: { ids: readonly string[] }) =>
    db.deleteFrom('messages').where(sql<boolean>`id = any(${p.ids}::uuid[])`),
)

/** Whom a new message mentions (see {@link CreateMessageInput.mentions}). */
export interface MessageMentionsInput {
  /** Users mentioned by id; each must exist. Duplicates are collapsed. At most 100. */
  user_ids?: readonly string[] | null | undefined
  /**
   * Roles mentioned by id; each must be a role of the channel's guild.
   * Duplicates are collapsed. At most 100. The guild's default `@everyone` role
   * mentions every member, like `everyone: true`: `sendMessage` needs
   * `MENTION_EVERYONE` for either (`createMessage` is trusted for both).
   */
  role_ids?: readonly string[] | null | undefined
  /** `@everyone`: every user who can see the channel (`sendMessage`: needs `MENTION_EVERYONE`). */
  everyone?: boolean | null | undefined
}

/** Input of {@link createMessage}. */
export interface CreateMessageInput {
  channel_id: string
  author_id: string
  /** 1 to 4000 characters (code points), no NUL, well-formed Unicode. */
  content: string
  /** A live (not soft-deleted) message of the same channel. */
  reply_to?: string | null | undefined
  /**
   * Whom the message mentions. The host parses its own markup and passes the
   * ids; they are validated and stored in the same statement as the message
   * (see {@link listMessageMentions}, and `mention_count` of `listChannelReadStates`).
   */
  mentions?: MessageMentionsInput | null | undefined
  /**
   * A client nonce, 1 to 25 characters: makes the create exactly-once. Another
   * create with the same channel, author and nonce within 24 hours returns the
   * ORIGINAL message and writes nothing (also when both run at once: the second
   * waits for the first). After 24 hours the nonce is forgotten. Use it to retry
   * safely after an `UnknownOutcomeError`.
   */
  nonce?: string | null | undefined
}

/** Validated mentions: ids lower-cased and de-duplicated, at most {@link MENTIONS_MAX} of each. */
export interface ValidMentions {
  user_ids: string[]
  role_ids: string[]
  everyone: boolean
}

/**
 * Validates the mentions input of `createMessage` and `sendMessage`: the ids
 * lower-cased and de-duplicated; `undefined` when nothing is mentioned.
 *
 * @throws {InvalidInputError} for a non-object, malformed ids, more than
 *   {@link MENTIONS_MAX} of a kind, or a non-boolean `everyone`.
 * @example
 * ```ts
 * validateMentions({ user_ids: [a, a.toUpperCase()] }) // { user_ids: [a], role_ids: [], everyone: false }
 * ```
 */
export function validateMentions(
  mentions: MessageMentionsInput | null | undefined,
): ValidMentions | undefined {
  if (mentions === undefined || mentions === null) return undefined
  assertObject(mentions, 'mentions')
  const ids = (value: unknown, field: string): string[] => {
    if (value === undefined || value === null) return []
    assertUuidArray(value, field, MENTIONS_MAX)
    return [...new Set(value.map((id) => id.toLowerCase()))]
  }
  const user_ids = ids(mentions.user_ids, 'mentions.user_ids')
  const role_ids = ids(mentions.role_ids, 'mentions.role_ids')
  const everyone = mentions.everyone ?? false
  if (typeof everyone !== 'boolean') {
    throw new InvalidInputError('mentions.everyone must be a boolean', {
      field: 'mentions.everyone',
    })
  }
  if (user_ids.length === 0 && role_ids.length === 0 && !everyone) return undefined
  return { user_ids, role_ids, everyone }
}

/**
 * Posts a message to a channel (a guild channel or a DM). The id is a new
 * UUIDv7; the database gives the message its position `seq` in the channel
 * from the channel's counter, which it holds until the transaction commits, so
 * positions are taken in commit order (the catch-up of
 * {@link listChannelMessages} relies on it). One round trip: the reply target
 * (and the mentions, when given) are checked and stored inside the INSERT.
 *
 * No permission check happens here: to post on a user's behalf use
 * `sendMessage`, which checks (view and send, overwrites, bans; in a DM: a
 * participant and no block either way) and inserts in one statement.
 * `canAccessChannel` only says "may read" (a DM stays readable after a block).
 * Without `sendMessage`, the manual equivalent is:
 * - guild channel: `computePermissions(db, { guild_id, user_id, channel_id })`
 *   includes `Permissions.SEND_MESSAGES`;
 * - DM: in one transaction, `lockUserPair(trx, me, them)`, then
 *   `findOrCreateDmChannel(trx, { user_id: me, other_user_id: them })`, which
 *   throws `ConflictError` (`'blocked'`) when either blocked the other, then
 *   `createMessage(trx, …)` with its channel id.
 *
 * Inside a caller's transaction, the channel's counter stays locked until that
 * transaction ends: other messages to the same channel wait for it (keep such
 * transactions short). Under REPEATABLE READ or SERIALIZABLE, two transactions
 * posting to one channel at once make one fail with a serialization error
 * (retry it).
 *
 * With a `nonce`, the create is exactly-once: a retry with the same channel,
 * author and nonce within 24 hours returns the original message (its content
 * and references as first sent) and writes nothing.
 *
 * @throws {InvalidInputError} for a malformed id, content that is empty, longer
 *   than 4000 characters, holds a NUL or a lone surrogate, a `reply_to` that is
 *   not a live message of the same channel, mentions that are malformed, of
 *   unknown users, or of roles not of this channel's guild, or a `nonce` that is
 *   not 1 to 25 characters. Nothing is written.
 * @throws {ForeignKeyViolationError} when the channel or the author does not exist.
 * @example
 * ```ts
 * const message = await createMessage(db, {
 *   channel_id, author_id: user.id, content: 'hi @ada',
 *   mentions: { user_ids: [ada.id] },
 * })
 * message.seq // its position in the channel (bigint)
 * ```
 */
export async function createMessage(db: Kysely<DB>, input: CreateMessageInput): Promise<Message> {
  assertObject(input, 'input')
  assertUuid(input.channel_id, 'channel_id')
  assertUuid(input.author_id, 'author_id')
  assertOptionalUuid(input.reply_to, 'reply_to')
  assertText(input.content, 'content', CONTENT)
  const mentions = validateMentions(input.mentions)
  const nonce = validNonce(input.nonce)
  const base = {
    id: newId(),
    channel_id: input.channel_id,
    author_id: input.author_id,
    reply_to: input.reply_to ?? null,
    content: input.content,
  }
  if (nonce !== null) {
    const key = { channel_id: base.channel_id, author_id: base.author_id, nonce }
    for (let attempt = 1; attempt <= 2; attempt++) {
      const params = { ...base, user_ids: [], role_ids: [], everyone: false, ...mentions, nonce }
      const row = await insertMessageWithNonce.executeTakeFirst(db, params)
      if (row) return row
      const prior = await priorMessage(db, key)
      if (prior === undefined) break // nothing inserted and no earlier message: a bad reference
      if (prior !== 'forgotten') return prior
    }
  } else {
    const row = mentions
      ? await insertMessageWithMentions.executeTakeFirst(db, { ...base, ...mentions })
      : await insertMessage.executeTakeFirst(db, base)
    if (row) return row
  }
  const refs = await checkMessageRefs.executeTakeFirst(db, {
    channel_id: base.channel_id,
    reply_to: base.reply_to,
    user_ids: mentions?.user_ids ?? [],
    role_ids: mentions?.role_ids ?? [],
  })
  if (refs && !refs.roles_ok) {
    throw new InvalidInputError("mentions.role_ids must be roles of this channel's guild", {
      field: 'mentions.role_ids',
    })
  }
  if (refs && !refs.users_ok) {
    throw new InvalidInputError('mentions.user_ids must be existing users', {
      field: 'mentions.user_ids',
    })
  }
  throw new InvalidInputError('reply_to must be a live message of the same channel', {
    field: 'reply_to',
  })
}

/**
 * Lists the mentions of a page of messages in ONE query, ordered by message id
 * (then user mentions, role mentions, `@everyone`). Ids that name no message
 * give nothing; a soft delete removes a message's mentions.
 *
 * @throws {InvalidInputError} when `message_ids` is not an array of at most 10 000 UUIDs.
 * @example
 * ```ts
 * const page = await listChannelMessages(db, channel_id)
 * const mentions = await listMessageMentions(db, page.map((m) => m.id))
 * // select … from "message_mentions" where message_id = any($1::uuid[]) order by …
 * ```
 */
export async function listMessageMentions(
  db: Kysely<DB>,
  message_ids: readonly string[],
): Promise<MessageMention[]> {
  assertUuidArray(message_ids, 'message_ids')
  if (message_ids.length === 0) return []
  return selectMentions.execute(db, { message_ids: [...message_ids] })
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
  /** Only messages before this message (a smaller `seq`). */
  before?: string | null | undefined
  /** Only messages after this message (a greater `seq`): the catch-up cursor. */
  after?: string | null | undefined
  /** Page size, 1 to 100; default 50. */
  limit?: number | undefined
}

/**
 * Lists a channel's live messages, newest first, by keyset on the position
 * `seq` (commit order within the channel):
 *
 * - neither `before` nor `after`: the newest `limit` messages;
 * - `before`: the newest `limit` messages before `before` (scroll back: pass
 *   the last id of the previous page);
 * - `after`: the OLDEST `limit` messages after `after`, returned newest first
 *   (scroll forward / catch up: pass the first id of the previous page; when a
 *   page is full there may be more, continue with the new first id);
 * - both: the newest `limit` messages strictly between `after` and `before`.
 *
 * Catch-up is gap-free: a message that commits after a page was read always
 * has a greater `seq` than every message of that page (positions are taken
 * under the channel's row lock, held until commit), so polling with
 * `after: newest seen id` never skips one, whatever the app servers' clocks.
 *
 * Cursors are message ids of this channel (soft-deleted ones too). An id that
 * names no message of the channel (a purged one, or any UUID) stands, as in
 * 0.1.0, for the place just after the newest live message with a smaller id.
 * Soft-deleted messages never appear. Every shape is one prepared index scan of
 * `messages_channel_id_seq_live_idx`, reading at most `limit` entries, so the
 * cost does not grow with history depth.
 *
 * @throws {InvalidInputError} for a malformed id or a limit outside 1…100.
 * @example
 * ```ts
 * const page = await listChannelMessages(db, channel_id, { limit: 50 })
 * const older = await listChannelMessages(db, channel_id, { before: page.at(-1)?.id })
 * const newer = await listChannelMessages(db, channel_id, { after: page[0]?.id })
 * // select … from "messages" where "channel_id" = $1 and "deleted_at" is null
 * //   and "seq" < (select coalesce(…)) order by "seq" desc limit $n
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

/** Patch of {@link updateMessage}. */
export interface UpdateMessagePatch {
  /** 1 to 4000 characters (code points), no NUL, well-formed Unicode. */
  content: string
}

/**
 * Edits a live message's content and sets `edited_at` to now. The previous
 * content is kept as a version (see `listMessageEdits`), in the same statement
 * (a trigger on the row being replaced, so concurrent edits each record their
 * own predecessor).
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
  patch: UpdateMessagePatch,
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
 * With `as` (a moderator, or the author): the author deletes their own
 * message freely; anyone else needs `MANAGE_MESSAGES` in the message's guild
 * channel (never in a DM), checked with the delete in one transaction, which
 * also writes the audit entry (`message_delete`, target: the message; no content).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * if (await deleteMessage(db, id)) await publishChannelEvent(redis, channel_id, { type: 'message_deleted', channel_id, message_id: id })
 * ```
 */
export async function deleteMessage(db: Kysely<DB>, id: string, as?: ActingAs): Promise<boolean> {
  assertUuid(id, 'id')
  assertActingAs(as)
  if (!as) return (await softDeleteMessage.executeAffected(db, { id })) > 0
  return inTransaction(db, async (trx) => {
    const message = await lockLiveMessage.executeTakeFirst(trx, { id })
    if (!message) return false
    if (message.author_id === as.actor_id.toLowerCase()) {
      return (await softDeleteMessage.executeAffected(trx, { id })) > 0
    }
    if (!message.guild_id) {
      throw new PermissionDeniedError('only the author may delete a direct message', {
        reason: 'missing_permission',
        permission: Permissions.MANAGE_MESSAGES,
      })
    }
    await authorize(trx, {
      guild_id: message.guild_id,
      actor_id: as.actor_id,
      permission: Permissions.MANAGE_MESSAGES,
      channel_id: message.channel_id,
    })
    if ((await softDeleteMessage.executeAffected(trx, { id })) === 0) return false
    await writeAudit(trx, as, {
      guild_id: message.guild_id,
      action: 'message_delete',
      target_id: id,
      changes: {
        channel_id: { before: message.channel_id, after: message.channel_id },
        author_id: { before: message.author_id, after: message.author_id },
      },
    })
    return true
  })
}

/** Input of {@link purgeDeletedMessages}. */
export interface PurgeDeletedMessagesInput {
  /** Purge the messages soft-deleted before this moment. */
  older_than: Date
}

/**
 * Hard-deletes the messages soft-deleted before `older_than`, with their
 * attachments and mentions (cascade). Replies to them keep existing with
 * `reply_to` NULL. Read markers are left as they are: they hold positions, so
 * no unread count changes (a marker's `last_read_message_id` may then name a
 * purged message). One statement.
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
  input: PurgeDeletedMessagesInput,
): Promise<number> {
  assertObject(input, 'input')
  assertDate(input.older_than, 'older_than')
  return purgeMessages.executeAffected(db, { older_than: input.older_than })
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
 * before `older_than`; read markers untouched), and returns every attachment
 * row it deleted, so the caller can delete the stored objects.
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
  input: PurgeDeletedMessagesInput,
): Promise<PurgeResult> {
  assertObject(input, 'input')
  assertDate(input.older_than, 'older_than')
  const older_than = input.older_than
  return inTransaction(db, async (trx) => {
    const ids = (await lockPurgeable.execute(trx, { older_than })).map((r) => r.id)
    if (ids.length === 0) return { purged: 0, attachments: [] }
    const attachments = await deleteAttachmentsOf.execute(trx, { ids })
    const purged = await deleteMessagesByIds.executeAffected(trx, { ids })
    return { purged, attachments }
  })
}
