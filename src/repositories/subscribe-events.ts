/**
 * Live delivery of the change feed (issue 23 item 5; docs/events.md, "Live
 * delivery"): one dispatcher per `db` and process reads every subscriber's new
 * events in ONE statement per wake-up and fans them out in memory.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely'
import type pg from 'pg'
import type { DB } from '../../codegen/db.ts'
import { GuildstoreError } from '../errors/guildstore-error.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { ResyncRequiredError } from '../errors/resync-required-error.ts'
import { accessibleChannelIdsSql } from '../permissions/access-sql.ts'
import { GuildstoreAdapter } from '../sql/execution.ts'
import { mapErrors, prepareQuery, rawQuery } from '../sql/index.ts'
import { assertInteger, assertObject, assertUuid } from '../validation/index.ts'
import type { GuildstoreEvent } from './event-map.ts'
import { decodeEventToken, encodeEventToken } from './event-token.ts'
import {
  dmStreamSql,
  type EventHead,
  eventStreamSql,
  guildStreamSql,
  hydratedDataSql,
  hydrationJoinSql,
  resyncReason,
  selectHorizon,
} from './events.ts'

/** The PostgreSQL channel a writing transaction notifies at commit with `guildstore.event_notify = 'on'` (migration 0025). */
export const EVENT_NOTIFY_CHANNEL = 'guildstore_events'
/** The Redis channel hints travel on (`<namespace>:` prefixed when given). */
export const EVENT_HINT_CHANNEL = 'guildstore:events'
/** Events a subscriber may hold unread before the dispatcher stops reading for it. */
export const SUBSCRIBER_BUFFER_DEFAULT = 1000
const PAGE = 200

/** The slice of an ioredis client (or Cluster) the hint path uses. */
export interface HintRedis {
  duplicate(): HintRedis
  subscribe(channel: string): Promise<unknown>
  publish(channel: string, message: string): Promise<unknown>
  on(event: 'message', listener: (channel: string, message: string) => void): unknown
  on(event: 'error', listener: (error: Error) => void): unknown
  quit(): Promise<unknown>
  disconnect(): void
}

/** How {@link subscribeEvents} reads. */
export interface SubscribeEventsInput {
  /** Whose events. */
  user_id: string
  /** A token to resume after; absent: from the current head. */
  after?: string | null | undefined
  /** Events held unread before reading pauses for this subscriber (default {@link SUBSCRIBER_BUFFER_DEFAULT}). */
  buffer?: number | undefined
  /**
   * How often the dispatcher looks at the feed's head (one read of a sequence, no lock), in ms
   * (default 100; 10 to 60,000); it reads events only when the head moved. Per dispatcher: the first subscriber's.
   */
  poll_ms?: number | undefined
  /**
   * Whether the dispatcher also LISTENs for `NOTIFY guildstore_events` (default false: writers
   * notify only with `guildstore.event_notify = 'on'`; a transaction-mode pooler cannot LISTEN).
   */
  listen?: boolean | undefined
  /** The Redis namespace of the hint channel. */
  namespace?: string | undefined
}

/** The iterator {@link subscribeEvents} returns. */
export interface EventSubscription extends AsyncIterable<GuildstoreEvent> {
  /** The token after the last event this iterator returned: keep it to resume. */
  token(): string
  /** Resolves once the subscription knows its start (the head, when started without `after`). */
  ready(): Promise<void>
  /** Ends the iterator (a pending `next()` returns done) and, with the last subscriber, the dispatcher. */
  close(): Promise<void>
}

// The head alone (one read of the sequence): only a cue that a position was
// taken (the read that follows takes the horizon properly).
const selectHead = prepareQuery(
  'events.head',
  (db) =>
    rawQuery(
      db,
      sql<{ head: string }>`select (case when is_called then last_value else 0 end)::text as head
from guildstore_event_positions`,
    ),
  { primary: true },
)

/** One event of the shared page, with what its audience check needs. */
interface SharedRow {
  position: string
  type: string
  guild_id: string | null
  channel_id: string | null
  user_id: string | null
  data: Record<string, unknown>
}

const stream = (p: { after: string; horizon: string; limit: number }, of: RawBuilder<unknown>) =>
  eventStreamSql(of, sql`${p.after}`, sql`${p.horizon}`, sql`${p.limit}`)

// The shared page: the first `limit` events in (after, horizon] of the union
// of all subscribers' streams (their guilds, their own streams, their DMs),
// each stream an index range scan with LIMIT, read and hydrated ONCE however
// many subscribers share a guild.
const readSharedPage = prepareQuery(
  'events.read_shared',
  (db, p: { user_ids: string[]; after: string; horizon: string; limit: number }) =>
    rawQuery(
      db,
      sql<SharedRow>`with cand as (
  select e.position
  from (select distinct gm.guild_id from guild_members gm where gm.user_id = any(${p.user_ids}::uuid[])) g
  cross join lateral (${stream(p, guildStreamSql(sql`g.guild_id`))}) e
  union
  select e.position
  from unnest(${p.user_ids}::uuid[]) u (id)
  cross join lateral (${stream(p, sql`x.user_id = u.id`)}) e
  union
  select e.position
  from (select distinct dp.channel_id from dm_participants dp where dp.user_id = any(${p.user_ids}::uuid[])) d
  cross join lateral (${stream(p, dmStreamSql(sql`d.channel_id`))}) e
), firsts as (
  select position from cand order by position limit ${p.limit}
)
select e.position::text as position, e.type, e.guild_id, e.channel_id, e.user_id,
  ${hydratedDataSql(sql`e`)} as data
from firsts f
join guildstore_events e on e.position = f.position
${hydrationJoinSql(sql`e`, sql`true`)}
order by e.position`,
    ),
  { primary: true },
)

// Who may read what on the page: the subscribers' memberships of the page's
// guilds ('g') and the page's channels each may access by the one access rule
// ('c'; DM channels for their participants). One statement for all.
const readAudience = prepareQuery(
  'events.read_audience',
  (db, p: { user_ids: string[]; guild_ids: string[]; channel_ids: string[] }) =>
    rawQuery(
      db,
      sql<{
        kind: string
        user_id: string
        id: string
      }>`select 'g' as kind, gm.user_id, gm.guild_id as id
from guild_members gm
where gm.user_id = any(${p.user_ids}::uuid[]) and gm.guild_id = any(${p.guild_ids}::uuid[])
union all
select 'c' as kind, u.id as user_id, a.id
from unnest(${p.user_ids}::uuid[]) u (id)
cross join lateral (${accessibleChannelIdsSql({ userId: sql`u.id`, channelIds: sql`${p.channel_ids}::uuid[]` })}) a`,
    ),
  { primary: true },
)

const released = new WeakSet<object>()

/** Returns a pooled client to its pool unless that was done already (pg throws on a second release). */
function releaseOnce(client: { release(destroy?: boolean): void }, destroy = false): void {
  if (released.has(client)) return
  released.add(client)
  client.release(destroy)
}

class Subscriber implements EventSubscription {
  /** Position read up to (undefined: not yet known, the head). */
  fetched: string | undefined
  /** Position of the last event returned by the iterator. */
  delivered: string | undefined
  readonly buffer: GuildstoreEvent[] = []
  error: Error | undefined
  closed = false
  #waiter: (() => void) | undefined
  #ready: Promise<void>
  #markReady!: () => void

  readonly dispatcher: Dispatcher
  readonly user_id: string
  readonly cap: number

  constructor(dispatcher: Dispatcher, user_id: string, after: string | undefined, cap: number) {
    this.dispatcher = dispatcher
    this.user_id = user_id
    this.cap = cap
    this.fetched = after
    this.#ready = new Promise((resolve) => {
      this.#markReady = resolve
    })
    if (after !== undefined) this.#markReady()
  }

  /** The dispatcher has new state for this subscriber. */
  wake(): void {
    if (this.fetched !== undefined) this.#markReady()
    const w = this.#waiter
    this.#waiter = undefined
    w?.()
  }

  full(): boolean {
    return this.buffer.length >= this.cap
  }

  token(): string {
    const at = this.buffer.length > 0 ? this.delivered : (this.fetched ?? this.delivered)
    return at === undefined ? '' : encodeEventToken(at)
  }

  ready(): Promise<void> {
    return this.#ready
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.buffer.length = 0
    this.wake()
    await this.dispatcher.remove(this)
  }

  async *[Symbol.asyncIterator](): AsyncIterator<GuildstoreEvent> {
    for (;;) {
      if (this.closed) return
      const event = this.buffer.shift()
      if (event) {
        this.delivered = event.position
        // Reading had paused for this subscriber: let it resume once half is drained.
        if (this.buffer.length === Math.floor(this.cap / 2)) this.dispatcher.wake()
        yield event
        continue
      }
      if (this.error) throw this.error
      await new Promise<void>((resolve) => {
        this.#waiter = resolve
      })
    }
  }
}

/** One per `db` (and listen / poll setting) in a process: hints in, one read per wake-up, fan-out. */
class Dispatcher {
  readonly subscribers = new Set<Subscriber>()
  #running = false
  #again = false
  #timer: NodeJS.Timeout | undefined
  #listener: pg.PoolClient | undefined
  #hints: HintRedis | undefined
  #stopped = false

  readonly db: Kysely<DB>
  readonly pool: pg.Pool
  readonly redis: HintRedis | null
  readonly options: { listen: boolean; pollMs: number; namespace: string | undefined }
  readonly onEmpty: () => void

  constructor(
    db: Kysely<DB>,
    pool: pg.Pool,
    redis: HintRedis | null,
    options: { listen: boolean; pollMs: number; namespace: string | undefined },
    onEmpty: () => void,
  ) {
    this.db = db
    this.pool = pool
    this.redis = redis
    this.options = options
    this.onEmpty = onEmpty
  }

  /** The sequence's head at the last look, and whether a look is under way. */
  #seen: string | undefined
  #looking = false
  /** The horizon of the last read: below the head while a writer is in flight. */
  #horizon: string | undefined

  start(): void {
    this.#timer = setInterval(() => void this.#look(), this.options.pollMs)
    this.#timer.unref()
    if (this.options.listen) void this.#listen()
    if (this.redis) void this.#subscribeRedis(this.redis)
  }

  /**
   * Reads when the feed's head moved since the last look, when the last read's
   * horizon was below the head (a writer was in flight: its commit moves no
   * head), or when a subscriber waits for the head.
   */
  async #look(): Promise<void> {
    if (this.#looking || this.#stopped) return
    this.#looking = true
    try {
      const row = await selectHead.executeTakeFirst(this.db, {})
      const head = row?.head
      const waiting = [...this.subscribers].some((s) => s.fetched === undefined)
      const heldBack =
        head !== undefined && this.#horizon !== undefined && BigInt(this.#horizon) < BigInt(head)
      if (head !== this.#seen || waiting || heldBack) {
        this.#seen = head
        this.wake()
      }
    } catch {
      this.wake() // the read retries and fails typed; the next look tries again
    } finally {
      this.#looking = false
    }
  }

  /** LISTEN on one pooled connection; on its loss, again after a second (the timer covers the gap). */
  async #listen(): Promise<void> {
    if (this.#stopped) return
    try {
      const client = await this.pool.connect()
      if (this.#stopped) {
        releaseOnce(client)
        return
      }
      this.#listener = client
      client.on('notification', () => this.wake())
      client.on('error', () => {
        // A connection ended from outside (a restart, a terminated backend) may
        // error after stop() released it, or error twice: release it once only
        // (a second release throws inside this handler: an uncaught exception).
        if (this.#listener === client) this.#listener = undefined
        releaseOnce(client, true)
        if (!this.#stopped) setTimeout(() => void this.#listen(), 1000).unref()
      })
      await client.query(`LISTEN ${EVENT_NOTIFY_CHANNEL}`)
      this.wake()
    } catch {
      setTimeout(() => void this.#listen(), 1000).unref()
    }
  }

  async #subscribeRedis(redis: HintRedis): Promise<void> {
    try {
      const sub = redis.duplicate()
      this.#hints = sub
      sub.on('error', () => {}) // ioredis reconnects and resubscribes by itself
      sub.on('message', () => this.wake())
      await sub.subscribe(hintChannel(this.options.namespace))
    } catch {
      // Hints only wake: without them the timer reads.
    }
  }

  add(s: Subscriber): void {
    this.subscribers.add(s)
    this.wake()
  }

  async remove(s: Subscriber): Promise<void> {
    this.subscribers.delete(s)
    if (this.subscribers.size === 0) await this.stop()
  }

  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.onEmpty()
    if (this.#timer) clearInterval(this.#timer)
    const listener = this.#listener
    this.#listener = undefined
    if (listener) {
      await listener.query(`UNLISTEN ${EVENT_NOTIFY_CHANNEL}`).catch(() => {})
      releaseOnce(listener)
    }
    const hints = this.#hints
    this.#hints = undefined
    if (hints) await hints.quit().catch(() => hints.disconnect())
  }

  /** Reads now, or once more after the read under way. */
  wake(): void {
    if (this.#stopped) return
    if (this.#running) {
      this.#again = true
      return
    }
    this.#running = true
    void this.#loop()
  }

  async #loop(): Promise<void> {
    try {
      for (;;) {
        this.#again = false
        let behind = false
        try {
          behind = await this.#readOnce()
        } catch {
          // A failed read (the database away) is retried on the next hint or tick.
        }
        if (this.#stopped || (!this.#again && !behind)) break
      }
    } finally {
      this.#running = false
    }
  }

  /**
   * One shared read for every subscriber that has room: the page from the
   * lowest position among them, its audience, then the fan-out in memory.
   * True when the page was full (read again at once).
   */
  async #readOnce(): Promise<boolean> {
    const live = [...this.subscribers].filter((s) => !s.closed && !s.error && !s.full())
    if (live.length === 0) return false
    const head: EventHead = await mapErrors(selectHorizon.executeTakeFirstOrThrow(this.db, {}))
    this.#horizon = head.horizon
    const due: Subscriber[] = []
    for (const s of live) {
      if (s.fetched === undefined) {
        s.fetched = head.horizon
        s.wake()
        continue
      }
      const refused = resyncReason(s.fetched, head)
      if (refused) {
        s.error = new ResyncRequiredError(refused)
        s.wake()
      } else if (BigInt(s.fetched) < BigInt(head.horizon)) due.push(s)
    }
    if (due.length === 0) return false
    const after = due.reduce((low, s) => {
      const f = BigInt(s.fetched as string)
      return f < low ? f : low
    }, BigInt(head.horizon))
    const users = [...new Set(due.map((s) => s.user_id.toLowerCase()))]
    const rows = await mapErrors(
      readSharedPage.execute(this.db, {
        user_ids: users,
        after: after.toString(),
        horizon: head.horizon,
        limit: PAGE,
      }),
    )
    const next = rows.length === PAGE ? (rows.at(-1) as SharedRow).position : head.horizon
    const guilds = new Set<string>()
    const channels = new Set<string>()
    for (const r of rows) {
      if (r.guild_id) guilds.add(r.guild_id)
      if (r.channel_id) channels.add(r.channel_id)
    }
    const may = new Set<string>()
    if (guilds.size > 0 || channels.size > 0) {
      const audience = await mapErrors(
        readAudience.execute(this.db, {
          user_ids: users,
          guild_ids: [...guilds],
          channel_ids: [...channels],
        }),
      )
      for (const a of audience) may.add(`${a.kind}:${a.user_id}:${a.id}`)
    }
    const sees = (user: string, r: SharedRow) =>
      r.user_id === user ||
      (r.guild_id !== null
        ? may.has(`g:${user}:${r.guild_id}`) &&
          (r.channel_id === null || may.has(`c:${user}:${r.channel_id}`))
        : r.channel_id !== null && may.has(`c:${user}:${r.channel_id}`))
    for (const s of due) {
      if (s.closed) continue
      const user = s.user_id.toLowerCase()
      const from = BigInt(s.fetched as string)
      for (const r of rows) {
        if (BigInt(r.position) <= from || !sees(user, r)) continue
        s.buffer.push({ ...r } as GuildstoreEvent)
      }
      if (BigInt(next) > from) s.fetched = next
      s.wake()
    }
    return next !== head.horizon
  }
}

const hintChannel = (namespace: string | undefined) =>
  namespace === undefined ? EVENT_HINT_CHANNEL : `${namespace}:${EVENT_HINT_CHANNEL}`

const dispatchers = new WeakMap<Kysely<DB>, Map<string, Dispatcher>>()

function poolOf(db: Kysely<DB>): pg.Pool {
  const adapter = db.getExecutor().adapter
  if (!(adapter instanceof GuildstoreAdapter) || db.isTransaction) {
    throw new InvalidInputError('subscribeEvents needs a db from createDb (not a transaction)', {
      field: 'db',
    })
  }
  return adapter.execution.pool
}

/**
 * A live iterator over the events `user_id` may see, from `after` (or the
 * current head): every event exactly once, in commit order, as `listEvents`
 * would return them. Keep `token()` to resume later (`after`, here or in
 * `listEvents`).
 *
 * One dispatcher per `db` in the process serves every subscriber: it looks at
 * the feed's head every `poll_ms` (one read of a sequence), wakes on hints —
 * with `redis`, a message on the hint channel (see {@link publishEventHint});
 * with `listen`, PostgreSQL `NOTIFY` from committing writers — and then
 * reads all its subscribers' new events in one statement. Hints only wake: a
 * lost hint delays an event by at most `poll_ms`, never loses it. A subscriber that
 * holds `buffer` unread events is left out of the reads until it has consumed
 * half of them, so a slow consumer costs bounded memory and resumes by its
 * position.
 *
 * @throws {InvalidInputError} for a malformed input, or a `db` that is not a
 * `createDb` instance. The iterator throws {@link ResyncRequiredError} when
 * the position is older than retention kept.
 * @example
 * ```ts
 * const sub = subscribeEvents(db, redis, { user_id, after: lastEventId })
 * req.on('close', () => void sub.close())
 * for await (const e of sub) res.write(`id: ${sub.token()}\ndata: ${JSON.stringify(e)}\n\n`)
 * ```
 */
export function subscribeEvents(
  db: Kysely<DB>,
  redis: HintRedis | null,
  input: SubscribeEventsInput,
): EventSubscription {
  assertObject(input, 'input')
  assertUuid(input.user_id, 'user_id')
  const after = input.after == null ? undefined : decodeEventToken(input.after)
  const cap = input.buffer ?? SUBSCRIBER_BUFFER_DEFAULT
  assertInteger(cap, 'buffer', 1, 1_000_000)
  const pollMs = input.poll_ms ?? 100
  assertInteger(pollMs, 'poll_ms', 10, 60_000)
  if (input.listen !== undefined && typeof input.listen !== 'boolean') {
    throw new InvalidInputError('listen must be a boolean', { field: 'listen' })
  }
  if (
    input.namespace !== undefined &&
    (typeof input.namespace !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(input.namespace))
  ) {
    throw new InvalidInputError('namespace must be 1 to 64 of A-Z a-z 0-9 _ . -', {
      field: 'namespace',
    })
  }
  const pool = poolOf(db)
  const listen = input.listen ?? false
  const key = `${listen}:${pollMs}:${redis ? 'r' : '-'}:${input.namespace ?? ''}`
  let byKey = dispatchers.get(db)
  if (!byKey) {
    byKey = new Map()
    dispatchers.set(db, byKey)
  }
  let dispatcher = byKey.get(key)
  if (!dispatcher) {
    const map = byKey
    const created: Dispatcher = new Dispatcher(
      db,
      pool,
      redis,
      { listen, pollMs, namespace: input.namespace },
      () => {
        if (map.get(key) === created) map.delete(key)
      },
    )
    dispatcher = created
    byKey.set(key, dispatcher)
    dispatcher.start()
  }
  const subscriber = new Subscriber(dispatcher, input.user_id, after, cap)
  dispatcher.add(subscriber)
  return subscriber
}

/**
 * Publishes a hint on Redis that events were committed: every process's
 * dispatcher subscribed with that `redis` (and namespace) reads at once. For a
 * deployment that does not LISTEN (`listen: false`, e.g. behind a
 * transaction-mode pooler): call it after your own commits. Losing one is
 * harmless (the timer reads).
 *
 * @example
 * ```ts
 * await sendMessage(db, input)
 * await publishEventHint(redis).catch(() => {}) // a hint only
 * ```
 * @throws {GuildstoreError} when Redis did not take it within `timeoutMs`.
 */
export async function publishEventHint(
  redis: HintRedis,
  namespace?: string,
  timeoutMs = 1000,
): Promise<void> {
  // A client queues commands while Redis is away; a hint must never hold its caller.
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), timeoutMs)
  })
  const publishing = redis.publish(hintChannel(namespace), '')
  // After the timeout the queued command may still fail (e.g. "Connection is
  // closed" when the client is disconnected): that outcome is no one's to handle.
  Promise.resolve(publishing).catch(() => {})
  try {
    await Promise.race([publishing, late])
  } catch (cause) {
    throw new GuildstoreError('the event hint could not be published', { cause })
  } finally {
    clearTimeout(timer)
  }
}
