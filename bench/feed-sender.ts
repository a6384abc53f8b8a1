/**
 * The sender of bench/feed.ts's delivery run, in a process of its own so the
 * subscribers' process spends its cores on reading and fanning out only (as
 * a host's gateway process would: the writers are other processes).
 *
 *   node bench/feed-sender.ts <db-url> <channel_id> <author_id> <rate> <seconds> [<redis-url>]
 *
 * Sends `rate × seconds` messages (`d0`, `d1`, …) at `rate` per second from 4
 * loops, and after each commit reports `{ k, at }` to the parent over IPC,
 * `at` being the commit's wall-clock time in ms (`performance.timeOrigin +
 * performance.now()`, comparable across processes of one machine). With a
 * Redis URL it publishes a hint after each commit (`publishEventHint`), as a
 * host does. Ends with `{ done, sent, seconds }`.
 */

import { createPool } from '../src/pool/create-pool.ts'
import { createRedis } from '../src/redis/index.ts'
import { sendMessage } from '../src/repositories/authorized-messages.ts'
import { publishEventHint } from '../src/repositories/subscribe-events.ts'
import { createDb } from '../src/sql/create-db.ts'

const [url, channel_id, author_id, rateArg, secondsArg, redisUrl] = process.argv.slice(2)
if (!url || !channel_id || !author_id || !rateArg || !secondsArg || !process.send) {
  throw new Error('usage: run by bench/feed.ts (fork with IPC)')
}
const rate = Number(rateArg)
const total = rate * Number(secondsArg)
const db = createDb(createPool({ connectionString: url, max: 4 }))
const redis = redisUrl ? createRedis({ url: redisUrl }) : undefined
const now = () => performance.timeOrigin + performance.now()
const report = (m: object) => new Promise<void>((r) => process.send?.(m, () => r()))

const start = performance.now()
let sent = 0
await Promise.all(
  Array.from({ length: 4 }, async (_, w) => {
    for (let k = w; k < total; k += 4) {
      const wait = start + (k * 1000) / rate - performance.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      await sendMessage(db, { channel_id, author_id, content: `d${k}` })
      const at = now()
      if (redis) await publishEventHint(redis).catch(() => {})
      sent++
      await report({ k, at })
    }
  }),
)
await report({ done: true, sent, seconds: (performance.now() - start) / 1000 })
await db.destroy()
await redis?.quit()
process.disconnect()
