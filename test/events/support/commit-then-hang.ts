/**
 * A writer for test/events/subscribe.test.ts: commits one message, says
 * "committed", then hangs where it would publish its hint (the test SIGKILLs
 * it there).
 */
import { createDb, createPool, sendMessage } from '../../../src/index.ts'

const pool = createPool({ connectionString: process.env.URL as string, max: 1 })
const db = createDb(pool)
await sendMessage(db, {
  channel_id: process.env.CHANNEL as string,
  author_id: process.env.AUTHOR as string,
  content: 'from the child',
})
process.stdout.write('committed\n')
await new Promise(() => setInterval(() => {}, 1000))
