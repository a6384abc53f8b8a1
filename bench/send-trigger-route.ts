/**
 * sendMessage as before migration 0027: the same checks and insert, with the
 * message's event written by the feed's trigger instead of the statement.
 * For `bench/feed.ts` (0025's route against 0027's, on the same database) and
 * test/events/send-event.test.ts (the two routes write the same event); it
 * lives here, outside the package, so the library's statements and query
 * snapshots stay the route it ships, and the route is the caller's choice of
 * function, not a switch in module state.
 */
import type { Kysely } from 'kysely'
import type { DB } from '../codegen/db.ts'
import type { Message } from '../src/repositories/messages.ts'
import {
  cachedSend,
  fullSend,
  type SendMessageInput,
  sendWith,
} from '../src/repositories/send-statements.ts'

const triggerRoute = {
  full: { plain: fullSend(false, false), nonce: fullSend(true, false) },
  cached: {
    plain: cachedSend('plain', false, false),
    reply: cachedSend('reply', false, false),
    refs: cachedSend('refs', false, false),
    plain_nonce: cachedSend('plain', true, false),
    reply_nonce: cachedSend('reply', true, false),
    refs_nonce: cachedSend('refs', true, false),
  },
}

/** {@link sendWith} on the statements before migration 0027 (the feed's trigger writes the event). */
export function sendMessageByTrigger(db: Kysely<DB>, input: SendMessageInput): Promise<Message> {
  return sendWith(db, input, triggerRoute)
}
