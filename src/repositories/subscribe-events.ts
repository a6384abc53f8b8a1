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
/**
 * A shared read's page: at least PAGE events, and up to PAGE_MAX when every
 * subscriber it reads for has room for that many (a dispatcher behind, e.g.
 * at 1,000 events/s, then pays its per-read statements once per 1,000
 * events); so no subscriber holds more than `buffer` plus PAGE.
 */
const PAGE = 200
const PAGE_MAX = 1000

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
  /**
   * The same events in arrays: each step hands over everything read for this
   * subscription and not yet returned (never an empty array), in order, and
   * `token()` is then the token after the array's last event. One step per
   * wake-up instead of one per event, for a consumer that writes many events
   * at once (one SSE or WebSocket write per array). The arrays and events are
   * frozen and shared with the process's other subscribers. Iterating it and
   * the subscription itself take from the same events (each is returned
   * once, by one of them); `break` leaves the subscription open, `close()`
   * ends both.
   *
   * @example
   * ```ts
   * for await (const events of sub.batches()) ws.send(JSON.stringify({ events, token: sub.token() }))
   * ```
   */
  batches(): AsyncIterable<readonly GuildstoreEvent[]>
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

/** A wait for the next hand-over; resolved by {@link Subscriber.wake}. */
type Waiter = () => void

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined })

class Subscriber implements EventSubscription {
  /** Position read up to (undefined: not yet known, the head). */
  fetched: string | undefined
  /** `fetched` as a bigint (-1 while unknown): compared on every read. */
  from = -1n
  /** Position of the last event returned by the iterator. */
  delivered: string | undefined
  /**
   * The events read and not yet returned: the dispatcher appends whole
   * (shared, frozen) slices of its page; `#at` is the next event of the first.
   */
  #chunks: (readonly GuildstoreEvent[])[] = []
  #at = 0
  /** How many events `#chunks` holds past `#at`. */
  held = 0
  /** The dispatcher left this subscriber out of a read because it was full. */
  paused = false
  error: Error | undefined
  closed = false
  #waiters: Waiter[] = []
  #ready: Promise<void>
  #markReady!: () => void

  readonly dispatcher: Dispatcher
  /** Lower-cased, as the shared read returns ids. */
  readonly user_id: string
  readonly cap: number

  constructor(dispatcher: Dispatcher, user_id: string, after: string | undefined, cap: number) {
    this.dispatcher = dispatcher
    this.user_id = user_id.toLowerCase()
    this.cap = cap
    this.#ready = new Promise((resolve) => {
      this.#markReady = resolve
    })
    if (after !== undefined) this.advance(after)
  }

  /** Moves the read position (and marks the subscription ready). */
  advance(position: string, big: bigint = BigInt(position)): void {
    this.fetched = position
    this.from = big
    this.#markReady()
  }

  /** Appends a slice of the page (shared with other subscribers: never mutated). */
  push(events: readonly GuildstoreEvent[]): void {
    if (events.length === 0 || this.closed) return
    this.#chunks.push(events)
    this.held += events.length
  }

  /** The dispatcher has new state for this subscriber. */
  wake(): void {
    if (this.#waiters.length === 0) return
    const ws = this.#waiters
    this.#waiters = []
    for (const w of ws) w()
  }

  full(): boolean {
    return this.held >= this.cap
  }

  token(): string {
    const at = this.held > 0 ? this.delivered : (this.fetched ?? this.delivered)
    return at === undefined ? '' : encodeEventToken(at)
  }

  ready(): Promise<void> {
    return this.#ready
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.#chunks = []
    this.#at = 0
    this.held = 0
    this.wake()
    await this.dispatcher.remove(this)
  }

  /** After events were taken: reading resumes for a paused subscriber once half is drained. */
  #taken(): void {
    if (this.paused && this.held <= this.cap >> 1) {
      this.paused = false
      this.dispatcher.wake()
    }
  }

  /** The next held event, or undefined. */
  #takeOne(): GuildstoreEvent | undefined {
    const chunk = this.#chunks[0]
    if (chunk === undefined) return undefined
    const event = chunk[this.#at++] as GuildstoreEvent
    if (this.#at === chunk.length) {
      this.#chunks.shift()
      this.#at = 0
    }
    this.held--
    this.delivered = event.position
    this.#taken()
    return event
  }

  /** Every held event in one array (the page's own frozen slice when it is one whole slice), or undefined. */
  #takeAll(): readonly GuildstoreEvent[] | undefined {
    const chunks = this.#chunks
    if (chunks.length === 0) return undefined
    let out: readonly GuildstoreEvent[]
    if (chunks.length === 1 && this.#at === 0) out = chunks[0] as readonly GuildstoreEvent[]
    else {
      const all: GuildstoreEvent[] = []
      for (let i = 0; i < chunks.length; i++) {
        const c = chunks[i] as readonly GuildstoreEvent[]
        for (let k = i === 0 ? this.#at : 0; k < c.length; k++) all.push(c[k] as GuildstoreEvent)
      }
      out = Object.freeze(all)
    }
    this.#chunks = []
    this.#at = 0
    this.held = 0
    this.delivered = (out[out.length - 1] as GuildstoreEvent).position
    this.#taken()
    return out
  }

  /** Resolves on the next {@link wake}. */
  #wait(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#waiters.push(resolve)
    })
  }

  /**
   * `take` now when something is held (no wait: one settled promise per
   * call), else after the next hand-over; done once closed, the error once failed.
   */
  #next<T>(take: () => T | undefined): Promise<IteratorResult<T, undefined>> {
    if (this.closed) return Promise.resolve(DONE)
    const value = take()
    if (value !== undefined) return Promise.resolve({ done: false, value })
    if (this.error) return Promise.reject(this.error)
    return this.#wait().then(() => this.#next(take))
  }

  [Symbol.asyncIterator](): AsyncIterator<GuildstoreEvent, undefined> {
    const take = () => this.#takeOne()
    return {
      next: () => this.#next(take),
      // `break` out of a for await ends this loop only: the subscription stays
      // open (iterate again to continue), close() ends it.
      return: () => Promise.resolve(DONE),
    }
  }

  batches(): AsyncIterable<readonly GuildstoreEvent[]> {
    const take = () => this.#takeAll()
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => this.#next(take),
        return: () => Promise.resolve(DONE),
      }),
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
    const reading = (s: Subscriber) => !s.closed && !s.error && !s.full()
    let any = false
    for (const s of this.subscribers) {
      if (reading(s)) any = true
      else if (!s.closed && s.full()) s.paused = true // its consumer wakes this dispatcher at half
    }
    if (!any) return false
    const head: EventHead = await mapErrors(selectHorizon.executeTakeFirstOrThrow(this.db, {}))
    this.#horizon = head.horizon
    const horizon = BigInt(head.horizon)
    const due: Subscriber[] = []
    let after = horizon
    const userSet = new Set<string>()
    // Who has room is decided after the horizon's round trip: subscribers that joined meanwhile share this read.
    // (A full subscriber was marked paused above: only this dispatcher fills one, one read at a time.)
    for (const s of this.subscribers) {
      if (!reading(s)) continue
      if (s.fetched === undefined) {
        s.advance(head.horizon, horizon)
        s.wake()
        continue
      }
      const refused = resyncReason(s.fetched, head)
      if (refused) {
        s.error = new ResyncRequiredError(refused)
        s.wake()
      } else if (s.from < horizon) {
        due.push(s)
        userSet.add(s.user_id)
        if (s.from < after) after = s.from
      }
    }
    if (due.length === 0) return false
    const users = [...userSet]
    let room = PAGE_MAX
    for (const s of due) room = Math.min(room, s.cap - s.held)
    const limit = Math.max(PAGE, room)
    const rows = await mapErrors(
      readSharedPage.execute(this.db, {
        user_ids: users,
        after: after.toString(),
        horizon: head.horizon,
        limit,
      }),
    )
    const full = rows.length === limit
    const next = full ? (rows.at(-1) as SharedRow).position : head.horizon
    const page = new SharedPage(rows)
    if (page.needsAudience) {
      const audience = await mapErrors(
        readAudience.execute(this.db, {
          user_ids: users,
          guild_ids: [...page.guilds],
          channel_ids: [...page.channels],
        }),
      )
      page.setAudience(audience)
    }
    const nextBig = BigInt(next)
    for (const s of due) {
      if (s.closed) continue
      s.push(page.eventsFor(s.user_id, s.from))
      if (nextBig > s.from) s.advance(next, nextBig)
      s.wake()
    }
    return full
  }
}

/** An audience of the page: the rows of one (guild, channel, own stream) triple. */
interface AudienceKey {
  guild_id: string | null
  channel_id: string | null
  user_id: string | null
}

/**
 * One read's page, fanned out: each event is one frozen object shared by every
 * subscriber that may see it, and each subscriber gets a (frozen, shared)
 * slice. Who sees what is decided per audience key of the page (a guild, a
 * channel, a user's own stream: few on a page), once per user, never per
 * event × subscriber; subscribers whose users see the same keys from the same
 * position share one slice.
 */
class SharedPage {
  readonly events: GuildstoreEvent[]
  readonly positions: bigint[]
  /** The audience key (index into `keys`) of each event. */
  readonly keyOf: number[]
  readonly keys: AudienceKey[] = []
  readonly guilds = new Set<string>()
  readonly channels = new Set<string>()
  /** Members of the page's guilds, and who may access its channels, by id. */
  #members = new Map<string, Set<string>>()
  #access = new Map<string, Set<string>>()
  /** The keys each user sees ('' for all of them), by user. */
  #masks = new Map<string, string>()
  /** Slices by `<first index>:<mask>`. */
  #slices = new Map<string, readonly GuildstoreEvent[]>()

  constructor(rows: SharedRow[]) {
    const n = rows.length
    this.events = new Array(n)
    this.positions = new Array(n)
    this.keyOf = new Array(n)
    const index = new Map<string, number>()
    for (let i = 0; i < n; i++) {
      const r = rows[i] as SharedRow
      this.events[i] = Object.freeze({
        position: r.position,
        type: r.type,
        guild_id: r.guild_id,
        channel_id: r.channel_id,
        user_id: r.user_id,
        data: deepFreeze(r.data),
      }) as GuildstoreEvent
      this.positions[i] = BigInt(r.position)
      const id = `${r.guild_id}|${r.channel_id}|${r.user_id}`
      let k = index.get(id)
      if (k === undefined) {
        k = this.keys.length
        index.set(id, k)
        this.keys.push({ guild_id: r.guild_id, channel_id: r.channel_id, user_id: r.user_id })
        if (r.guild_id) this.guilds.add(r.guild_id)
        if (r.channel_id) this.channels.add(r.channel_id)
      }
      this.keyOf[i] = k
    }
    Object.freeze(this.events)
  }

  get needsAudience(): boolean {
    return this.guilds.size > 0 || this.channels.size > 0
  }

  setAudience(rows: { kind: string; user_id: string; id: string }[]): void {
    for (const a of rows) {
      const into = a.kind === 'g' ? this.#members : this.#access
      let set = into.get(a.id)
      if (!set) {
        set = new Set()
        into.set(a.id, set)
      }
      set.add(a.user_id)
    }
  }

  /** Whether `user` sees the events of key `k` (docs/events.md, "Access"). */
  #sees(user: string, k: AudienceKey): boolean {
    if (k.user_id === user) return true
    if (k.guild_id !== null) {
      if (!this.#members.get(k.guild_id)?.has(user)) return false
      return k.channel_id === null || this.#access.get(k.channel_id)?.has(user) === true
    }
    return k.channel_id !== null && this.#access.get(k.channel_id)?.has(user) === true
  }

  /** Which keys `user` sees: '' when all, else one '1' or '0' per key. */
  #maskOf(user: string): string {
    let mask = this.#masks.get(user)
    if (mask !== undefined) return mask
    let bits = ''
    let all = true
    for (const k of this.keys) {
      const seen = this.#sees(user, k)
      all &&= seen
      bits += seen ? '1' : '0'
    }
    mask = all ? '' : bits
    this.#masks.set(user, mask)
    return mask
  }

  /** The events after `from` that `user` sees, in order (shared and frozen: never mutate). */
  eventsFor(user: string, from: bigint): readonly GuildstoreEvent[] {
    const positions = this.positions
    let first = 0
    if (positions.length > 0 && (positions[0] as bigint) <= from) {
      // Behind only when it was not the lowest: a binary search for the first position after it.
      let hi = positions.length
      while (first < hi) {
        const mid = (first + hi) >> 1
        if ((positions[mid] as bigint) <= from) first = mid + 1
        else hi = mid
      }
    }
    if (first === positions.length) return EMPTY
    const mask = this.#maskOf(user)
    const id = `${first}:${mask}`
    let slice = this.#slices.get(id)
    if (slice === undefined) {
      if (mask === '') slice = first === 0 ? this.events : Object.freeze(this.events.slice(first))
      else {
        const out: GuildstoreEvent[] = []
        for (let i = first; i < this.events.length; i++) {
          if (mask.charCodeAt(this.keyOf[i] as number) === 49)
            out.push(this.events[i] as GuildstoreEvent)
        }
        slice = Object.freeze(out)
      }
      this.#slices.set(id, slice)
    }
    return slice
  }
}

const EMPTY: readonly GuildstoreEvent[] = Object.freeze([])

/** Freezes a JSON value and everything in it (an event's `data` is shared by its subscribers). */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
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
 * lost hint delays an event by at most `poll_ms`, never loses it. The fan-out
 * decides access once per audience (guild, channel, own stream) of the page
 * and user, and hands each subscriber shared slices of the page: the events
 * are frozen objects shared by every subscriber that sees them (do not
 * mutate them). A subscriber that holds `buffer` unread events is left out of
 * the reads until it has consumed half of them, so a slow consumer costs
 * bounded memory and resumes by its position. `batches()` yields the same
 * events as arrays, everything held in one step.
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
