import type { Kysely, Selectable } from 'kysely'
import type { DB, MessageEdits } from '../../codegen/db.ts'
import { prepareQuery } from '../sql/index.ts'
import { assertUuid, defineFields, integer } from '../validation/index.ts'

/** A previous version of a message: `content` as it was before edit number `version`, replaced at `replaced_at`. */
export type MessageEdit = Selectable<MessageEdits>

/** The version number's CHECK (`version >= 1`). */
export const messageEditFields = defineFields('message_edits', { version: integer(1) })

const editColumns = ['e.message_id', 'e.version', 'e.content', 'e.replaced_at'] as const

const selectEdits = prepareQuery('message_edits.list_of_message', (db, p: { message_id: string }) =>
  db
    .selectFrom('message_edits as e')
    .innerJoin('messages as m', 'm.id', 'e.message_id')
    .select(editColumns)
    .where('e.message_id', '=', p.message_id)
    .where('m.deleted_at', 'is', null)
    .orderBy('e.version'),
)

/**
 * The previous versions of a live message, oldest first: version `n` is the
 * content the message had before its `n`-th edit, and `replaced_at` when that
 * edit replaced it. `updateMessage` records them (a trigger, in the same
 * statement as the edit); purging the message removes them. Empty for a message
 * never edited, and for a soft-deleted or unknown one.
 *
 * @throws {InvalidInputError} when `message_id` is not a UUID.
 * @example
 * ```ts
 * await updateMessage(db, id, { content: 'v2' })
 * const [first] = await listMessageEdits(db, id) // { version: 1, content: 'v1', replaced_at }
 * ```
 */
export async function listMessageEdits(db: Kysely<DB>, message_id: string): Promise<MessageEdit[]> {
  assertUuid(message_id, 'message_id')
  return selectEdits.execute(db, { message_id })
}
