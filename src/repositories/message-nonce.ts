/**
 * Exactly-once message creates (migration 0010): the client nonce of
 * `createMessage` and `sendMessage`, and how a create that inserted nothing
 * finds the message an earlier attempt with the same nonce wrote. Internal:
 * not re-exported from `index.ts`.
 *
 * The rule: (channel, author, nonce) is unique among messages that carry a
 * nonce (a partial unique index). A create with a nonce inserts `ON CONFLICT DO
 * NOTHING`, so a concurrent second attempt waits for the first and then
 * inserts nothing; it then reads the original here. A nonce is remembered 24
 * hours: a match older than that has its nonce cleared ({@link priorMessage}
 * returns `'forgotten'`) and the caller inserts anew.
 */
import { type Kysely, sql } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { prepareQuery } from '../sql/index.ts'
import { assertText } from '../validation/index.ts'
import { type Message, messageColumns, messageFields } from './messages.ts'

/** How long a nonce is remembered, in hours. */
export const NONCE_HOURS = 24

/** The ON CONFLICT clause of an insert with a nonce (the partial unique index of 0010). */
export const onNonceConflict = sql`on conflict (channel_id, author_id, nonce) where nonce is not null do nothing`

/** The key of a nonce. */
export interface NonceKey {
  channel_id: string
  author_id: string
  nonce: string
}

// Builders run on first use, after `messages.ts` finished loading (it imports this module).
const selectByNonce = prepareQuery('messages.by_nonce', (db, p: NonceKey) =>
  db
    .selectFrom('messages')
    .select(messageColumns)
    .select(
      sql<boolean>`created_at >= now() - make_interval(hours => ${sql.lit(NONCE_HOURS)})`.as(
        'fresh',
      ),
    )
    .where('channel_id', '=', sql<string>`${p.channel_id}::uuid`)
    .where('author_id', '=', sql<string>`${p.author_id}::uuid`)
    .where('nonce', '=', sql<string>`${p.nonce}::text`),
)

const forgetNonce = prepareQuery('messages.forget_nonce', (db, p: { id: string }) =>
  db
    .updateTable('messages')
    .set({ nonce: null })
    .where('id', '=', sql<string>`${p.id}::uuid`)
    .where(sql<boolean>`created_at < now() - make_interval(hours => ${sql.lit(NONCE_HOURS)})`),
)

/**
 * Validates an optional nonce: `undefined`/`null` for none, else a string of
 * 1 to 25 characters (code points), no NUL, well-formed Unicode.
 *
 * @throws {InvalidInputError} for anything else.
 */
export function validNonce(nonce: unknown): string | null {
  if (nonce === undefined || nonce === null) return null
  assertText(nonce, 'nonce', messageFields.nonce)
  return nonce
}

/**
 * The message an earlier create with this nonce wrote, when it is younger
 * than {@link NONCE_HOURS}; `'forgotten'` when the match was older (its nonce
 * is now cleared: insert anew); `undefined` when there is none.
 */
export async function priorMessage(
  db: Kysely<DB>,
  key: NonceKey,
): Promise<Message | 'forgotten' | undefined> {
  const row = await selectByNonce.executeTakeFirst(db, key)
  if (!row) return undefined
  const { fresh, ...message } = row
  if (fresh) return message
  await forgetNonce.execute(db, { id: message.id })
  return 'forgotten'
}
