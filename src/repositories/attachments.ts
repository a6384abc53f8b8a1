import { type Kysely, sql } from 'kysely'
import type { DB, MessageAttachments } from '../../codegen/db.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import { newId } from '../ids/new-id.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { prepareQuery } from '../sql/index.ts'
import {
  assertObject,
  assertOptionalText,
  assertText,
  assertUuid,
  assertUuidArray,
  defineFields,
  int64,
  text,
} from '../validation/index.ts'

/** The columns every attachment-returning function selects. */
export const attachmentColumns = columnList<MessageAttachments>()([
  'id',
  'message_id',
  'filename',
  's3_key',
  'size',
  'content_type',
  'created_at',
])

/** A file attached to a message (the object lives under `s3_key`); `size` is a `bigint`. */
export type Attachment = Projection<MessageAttachments, typeof attachmentColumns>

/** Length rules of the `message_attachments` columns (the CHECKs of the schema). */
export const attachmentFields = defineFields('message_attachments', {
  filename: text(1, 255),
  s3_key: text(1, 1024),
  content_type: text(1, 255),
  size: int64(),
})

// INSERT … SELECT … WHERE NOT EXISTS (a soft-deleted message): an unknown
// message still fails on the foreign key; a soft-deleted one inserts nothing.
const insertAttachment = prepareQuery(
  'attachments.insert',
  (
    db,
    p: {
      id: string
      message_id: string
      filename: string
      s3_key: string
      size: string
      content_type: string | null
    },
  ) =>
    db
      .insertInto('message_attachments')
      .columns(['id', 'message_id', 'filename', 's3_key', 'size', 'content_type'])
      .expression(
        db
          .selectNoFrom([
            sql<string>`${p.id}::uuid`.as('id'),
            sql<string>`${p.message_id}::uuid`.as('message_id'),
            sql<string>`${p.filename}::text`.as('filename'),
            sql<string>`${p.s3_key}::text`.as('s3_key'),
            sql<bigint>`${p.size}::bigint`.as('size'),
            sql<string | null>`${p.content_type}::text`.as('content_type'),
          ])
          .where(
            sql<boolean>`not exists (select 1 from messages m where m.id = ${p.message_id}::uuid and m.deleted_at is not null)`,
          ),
      )
      .returning(attachmentColumns),
)

// One query for a whole page of messages. Attachments of soft-deleted messages
// are left out, like the messages themselves.
const selectByMessageIds = prepareQuery(
  'attachments.by_message_ids',
  (db, p: { message_ids: string[] }) =>
    db
      .selectFrom('message_attachments as a')
      .innerJoin('messages as m', 'm.id', 'a.message_id')
      .select(attachmentColumns.map((c) => `a.${c}` as const))
      .where(sql<boolean>`a.message_id = any(${p.message_ids}::uuid[])`)
      .where('m.deleted_at', 'is', null)
      .orderBy('a.message_id')
      .orderBy('a.id'),
)

const deleteAttachmentById = prepareQuery('attachments.delete', (db, p: { id: string }) =>
  db.deleteFrom('message_attachments').where('id', '=', p.id).returning(attachmentColumns),
)

/** Input of {@link createAttachment}. */
export interface CreateAttachmentInput {
  message_id: string
  /** 1 to 255 characters. */
  filename: string
  /** The object's S3 key, 1 to 1024 characters. */
  s3_key: string
  /** Bytes: a non-negative integer (a safe-integer number, or a bigint up to 2^63 − 1). */
  size: number | bigint
  /** MIME type, 1 to 255 characters. */
  content_type?: string | null | undefined
}

/**
 * Records an uploaded file of a message. The returned `size` is a `bigint`
 * (int8 on a guildstore pool).
 *
 * @throws {InvalidInputError} for a malformed id, a filename, s3_key or
 *   content_type out of its length, or a size that is not a non-negative integer
 *   within int64.
 * @throws {ForeignKeyViolationError} when the message does not exist.
 * @throws {NotFoundError} (entity `'message'`) when the message is soft-deleted.
 * @example
 * ```ts
 * const file = await createAttachment(db, { message_id, filename: 'cat.png', s3_key, size: 48_213, content_type: 'image/png' })
 * ```
 */
export async function createAttachment(
  db: Kysely<DB>,
  input: CreateAttachmentInput,
): Promise<Attachment> {
  assertObject(input, 'input')
  assertUuid(input.message_id, 'message_id')
  assertText(input.filename, 'filename', attachmentFields.filename)
  assertText(input.s3_key, 's3_key', attachmentFields.s3_key)
  assertOptionalText(input.content_type, 'content_type', attachmentFields.content_type)
  const size = input.size
  const validSize =
    typeof size === 'bigint'
      ? size >= attachmentFields.size.min && size <= attachmentFields.size.max
      : typeof size === 'number' && Number.isSafeInteger(size) && size >= attachmentFields.size.min
  if (!validSize) {
    throw new InvalidInputError('size must be a non-negative integer within int64', {
      field: 'size',
    })
  }
  const row = await insertAttachment.executeTakeFirst(db, {
    id: newId(),
    message_id: input.message_id,
    filename: input.filename,
    s3_key: input.s3_key,
    size: size.toString(),
    content_type: input.content_type ?? null,
  })
  if (!row) throw new NotFoundError('message is deleted', { entity: 'message' })
  return row
}

/**
 * Lists the attachments of many messages (a history page) in ONE query,
 * ordered by message id, then attachment id. Attachments of soft-deleted
 * messages are not returned. At most 10 000 ids.
 *
 * @throws {InvalidInputError} when `message_ids` is not an array of UUIDs.
 * @example
 * ```ts
 * const page = await listChannelMessages(db, channel_id)
 * const files = await listAttachmentsByMessageIds(db, page.map((m) => m.id))
 * // … where a.message_id = any($1::uuid[]) and m.deleted_at is null order by a.message_id, a.id
 * ```
 */
export async function listAttachmentsByMessageIds(
  db: Kysely<DB>,
  message_ids: readonly string[],
): Promise<Attachment[]> {
  assertUuidArray(message_ids, 'message_ids')
  if (message_ids.length === 0) return []
  return selectByMessageIds.execute(db, { message_ids: [...message_ids] })
}

/**
 * Deletes an attachment's row and returns it, so the caller can delete the
 * S3 object under its `s3_key`.
 *
 * @returns the deleted row, or `undefined` when there was none.
 * @throws {InvalidInputError} when `id` is not a UUID.
 * @example
 * ```ts
 * const gone = await deleteAttachment(db, id)
 * if (gone) await s3.deleteObject({ Bucket, Key: gone.s3_key })
 * ```
 */
export async function deleteAttachment(
  db: Kysely<DB>,
  id: string,
): Promise<Attachment | undefined> {
  assertUuid(id, 'id')
  return deleteAttachmentById.executeTakeFirst(db, { id })
}
