/**
 * The durable change feed (issue 23, migrations 0019 and 0025; docs/events.md):
 * the triggers write events in each change's transaction, each with its
 * position taken at insert by a transaction registered as in flight, and this
 * module appends host events, reads a user's events by token and purges old
 * ones.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { ResyncRequiredError } from '../errors/resync-required-error.ts'
import { accessibleChannelIdsSql } from '../permissions/access-sql.ts'
import { mapErrors, prepareQuery, rawQuery } from '../sql/index.ts'
import {
  assertDate,
  assertObject,
  assertOptionalUuid,
  assertUuid,
  defineFields,
  pageLimit,
  pattern,
} from '../validation/index.ts'
import { BUILT_IN_EVENT_TYPES, type GuildstoreEvent, type GuildstoreEventMap } from './event-map.ts'
import { decodeEventToken, encodeEventToken } from './event-token.ts'

/** Events per `listEvents` page unless `limit` says otherwise. */
export const EVENT_PAGE_DEFAULT = 100
/** The largest `listEvents` page. */
export const EVENT_PAGE_MAX = 1000
/** The largest `data` of an appended event, as JSON text (characters). */
export const EVENT_DATA_MAX = 16_384

/** The CHECK of `guildstore_events.type` (migration 0019). */
export const eventFields = defineFields('guildstore_events', {
  type: pattern(/^[a-z][a-z0-9_.]{0,63}$/),
})

/** What {@link appendEvent} writes. */
export type AppendEventInput<K extends keyof GuildstoreEventMap = keyof GuildstoreEventMap> = {
  /** A host kind (declared in {@link GuildstoreEventMap}); built-in kinds are the triggers' alone. */
  type: K
  /** The guild whose members hear it (with `channel_id`: only those who may see that channel). */
  guild_id?: string | null | undefined
  /** A channel of `guild_id`, or, without `guild_id`, a DM channel whose participants hear it. */
  channel_id?: string | null | undefined
  /** A user who hears it in their own stream. */
  user_id?: string | null | undefined
  /** A JSON object (at most {@link EVENT_DATA_MAX} characters as JSON). */
  data: GuildstoreEventMap[K]
}

const insertEvent = prepareQuery(
  'events.append',
  (
    db,
    p: {
      type: string
      guild_id: string | null
      channel_id: string | null
      user_id: string | null
      data: string
    },
  ) =>
    db.insertInto('guildstore_events').values({
      type: p.type,
      guild_id: p.guild_id,
      channel_id: p.channel_id,
      user_id: p.user_id,
      data: sql`${p.data}::jsonb`,
    }),
)

/**
 * Appends a host event to the feed, in `trx`'s transaction: it becomes
 * readable when that transaction commits, with a position in commit order,
 * and never when it rolls back. With a plain `db` it commits on its own.
 * Correct at every isolation level (it only inserts).
 *
 * At least one of `guild_id`, `channel_id`, `user_id` names who hears it
 * (docs/events.md, "Access"); the ids are not checked against existing rows.
 *
 * @throws {InvalidInputError} for a malformed or built-in `type`, an id that
 * is not a UUID, no audience, or `data` that is not a JSON object within
 * {@link EVENT_DATA_MAX}.
 * @example
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await closePoll(trx, pollId)
 *   await appendEvent(trx, { type: 'app.poll_closed', guild_id, data: { poll_id: pollId, winner } })
 * })
 * ```
 */
export async function appendEvent<K extends keyof GuildstoreEventMap>(
  trx: Kysely<DB>,
  input: AppendEventInput<K>,
): Promise<void> {
  assertObject(input, 'input')
  const { type, data } = input
  if (typeof type !== 'string' || !eventFields.type.pattern.test(type)) {
    throw new InvalidInputError('type must be 1 to 64 of a-z, 0-9, _ and ., from a letter', {
      field: 'type',
    })
  }
  if (BUILT_IN_EVENT_TYPES.has(type)) {
    throw new InvalidInputError('type names a built-in event kind', { field: 'type' })
  }
  assertOptionalUuid(input.guild_id, 'guild_id')
  assertOptionalUuid(input.channel_id, 'channel_id')
  assertOptionalUuid(input.user_id, 'user_id')
  if (input.guild_id == null && input.channel_id == null && input.user_id == null) {
    throw new InvalidInputError('an event needs guild_id, channel_id or user_id', {
      field: 'guild_id',
    })
  }
  assertObject(data, 'data')
  let json: string
  try {
    json = JSON.stringify(data)
  } catch (cause) {
    throw new InvalidInputError('data must be JSON-serializable', { field: 'data', cause })
  }
  if (json.length > EVENT_DATA_MAX || json.includes('\\u0000')) {
    throw new InvalidInputError(`data must be at most ${EVENT_DATA_MAX} characters of JSON`, {
      field: 'data',
    })
  }
  await mapErrors(
    insertEvent.execute(trx, {
      type,
      guild_id: input.guild_id ?? null,
      channel_id: input.channel_id ?? null,
      user_id: input.user_id ?? null,
      data: json,
    }),
  )
}

/** Sets why the guild_members delete of this transaction happens (`'kick'`), for `member_removed`. */
export const setEventReason = prepareQuery('events.set_reason', (db, p: { reason: string }) =>
  rawQuery(db, sql`select set_config('guildstore.event_reason', ${p.reason}, true)`),
)

// The horizon (its own statement: the read that follows takes a later
// snapshot), the sequence's head, the retention floor and the isolation level
// in one round trip.
/**
 * The feed's horizon (positions readable now), its head (the highest position
 * taken, committed or not), its floor and the session's isolation level.
 */
export interface EventHead {
  horizon: string
  head: string
  floor: string
  isolation: string
}

/**
 * `select horizon, head, floor, isolation`: the head is read after the
 * horizon, so it is at least every horizon any reader was ever given: a token
 * above it comes from another database (or an older backup of this one).
 */
export const selectHorizon = prepareQuery(
  'events.horizon',
  (db) =>
    rawQuery(
      db,
      sql<EventHead>`select
  guildstore_event_horizon()::text as horizon,
  coalesce(pg_sequence_last_value('guildstore_event_positions'), 0)::text as head,
  (select floor from guildstore_event_floor)::text as floor,
  current_setting('transaction_isolation') as isolation`,
    ),
  { primary: true },
)

/** One candidate of a page: `visible` false rows carry no content. */
export interface EventRow {
  position: string
  visible: boolean
  type: string | null
  guild_id: string | null
  channel_id: string | null
  user_id: string | null
  data: Record<string, unknown> | null
}

/**
 * `select position, visible, type, guild_id, channel_id, user_id, data`: one
 * user's page of candidates in (after, horizon], in position order. The first
 * `limit` of each stream the user can read (each guild they are a member of
 * now, their own stream, each DM they take part in), each an index range scan
 * with LIMIT, merged; then the first `limit` overall. Streams the user cannot
 * read are never scanned, so the cost is limit × streams, never the table's
 * size or the backlog. Channel events then pass the one access rule
 * (accessibleChannelIdsSql) for the channels on the page only, and message
 * events are hydrated from the live message. Rows not `visible` carry no
 * content. Each argument is an SQL expression (bound values, or the columns of
 * an outer row: `subscribeEvents` reads many users in one statement).
 */
export function eventPageSql(
  userId: RawBuilder<unknown>,
  after: RawBuilder<unknown>,
  horizon: RawBuilder<unknown>,
  limit: RawBuilder<unknown>,
): RawBuilder<EventRow> {
  const stream = (of: RawBuilder<unknown>) => eventStreamSql(of, after, horizon, limit)
  return sql<EventRow>`with cand as (
  select e.position, 'g' as via
  from guild_members gm
  cross join lateral (${stream(guildStreamSql(sql`gm.guild_id`))}) e
  where gm.user_id = ${userId}::uuid
  union all
  select e.position, 'u' as via
  from (select ${userId}::uuid as id) u
  cross join lateral (${stream(sql`x.user_id = u.id`)}) e
  union all
  select e.position, 'd' as via
  from dm_participants dp
  cross join lateral (${stream(dmStreamSql(sql`dp.channel_id`))}) e
  where dp.user_id = ${userId}::uuid
), firsts as (
  select position, bool_or(via = 'u') as own, bool_or(via = 'g') as guild, bool_or(via = 'd') as dm
  from cand group by position order by position limit ${limit}
), ev as materialized (
  select e.position, e.type, e.guild_id, e.channel_id, e.user_id, e.data, f.own, f.guild, f.dm
  from firsts f join guildstore_events e on e.position = f.position
), seen as (
  select ev.*, (ev.own or ev.dm or (ev.guild and (ev.channel_id is null or ev.channel_id in (
    ${accessibleChannelIdsSql({
      userId: sql`${userId}::uuid`,
      channelIds: sql`(select array_agg(distinct v.channel_id) from ev v where v.guild and v.channel_id is not null)`,
    })}
  )))) as visible
  from ev
)
select s.position::text as position, s.visible,
  case when s.visible then s.type end as type,
  case when s.visible then s.guild_id end as guild_id,
  case when s.visible then s.channel_id end as channel_id,
  case when s.visible then s.user_id end as user_id,
  case when not s.visible then null
    else ${hydratedDataSql(sql`s`)} end as data
from seen s
${hydrationJoinSql(sql`s`, sql`s.visible`)}
order by s.position`
}

/**
 * A guild's stream, as a condition on `guildstore_events x`: its events by
 * their scope (migration 0028's guildstore_events_scope_idx, on
 * `coalesce(guild_id, channel_id)`), a range of that index in position order.
 * `guild_id = G` keeps out a DM event whose channel id were G.
 */
export const guildStreamSql = (guildId: RawBuilder<unknown>) =>
  sql`coalesce(x.guild_id, x.channel_id) = ${guildId} and x.guild_id = ${guildId}`

/** A DM's stream (no guild, its channel): the same index as {@link guildStreamSql}. */
export const dmStreamSql = (channelId: RawBuilder<unknown>) =>
  sql`coalesce(x.guild_id, x.channel_id) = ${channelId} and x.guild_id is null`

/**
 * `select x.position`: the first `limit` positions in (after, horizon] of one
 * stream of the feed (`of`, a condition on `guildstore_events x` that one of
 * its indexes serves: {@link guildStreamSql}, {@link dmStreamSql}, or
 * `x.user_id = …` for a user's own stream), in order: an index range scan
 * with LIMIT.
 */
export function eventStreamSql(
  of: RawBuilder<unknown>,
  after: RawBuilder<unknown>,
  horizon: RawBuilder<unknown>,
  limit: RawBuilder<unknown>,
): RawBuilder<{ position: string }> {
  return sql`select x.position from guildstore_events x
    where ${of} and x.position > ${after}::int8 and x.position <= ${horizon}::int8
    order by x.position limit ${limit}`
}

/**
 * An event's `data` (of the row alias `e`, joined with {@link hydrationJoinSql}):
 * for `message_created` / `message_edited`, with `message`, the live message
 * (NULL once deleted).
 */
export function hydratedDataSql(e: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`case when ${e}.type in ('message_created', 'message_edited') then ${e}.data || jsonb_build_object('message',
      case when m.id is null then null else jsonb_build_object('id', m.id, 'channel_id', m.channel_id,
        'author_id', m.author_id, 'reply_to', m.reply_to, 'content', m.content, 'created_at', m.created_at,
        'edited_at', m.edited_at, 'seq', m.seq::text) end)
    else ${e}.data end`
}

/** `left join messages m`: the live message of a message event of alias `e`, when `when` holds. */
export function hydrationJoinSql(
  e: RawBuilder<unknown>,
  when: RawBuilder<unknown>,
): RawBuilder<unknown> {
  return sql`left join messages m
  on m.id = (case when ${when} and ${e}.type in ('message_created', 'message_edited')
    then (${e}.data ->> 'message_id')::uuid end)
  and m.deleted_at is null`
}

const selectEvents = prepareQuery(
  'events.list',
  (db, p: { user_id: string; after: string; horizon: string; limit: number }) =>
    rawQuery(
      db,
      eventPageSql(sql`${p.user_id}`, sql`${p.after}`, sql`${p.horizon}`, sql`${p.limit}`),
    ),
  { primary: true },
)

/** A page's rows as events, and the token it ends at. */
export function toEventPage(rows: EventRow[], limit: number, horizon: string): EventPage {
  const last = rows.at(-1)
  const next = rows.length === limit && last ? last.position : horizon
  const events = rows
    .filter((r) => r.visible)
    .map(
      (r) =>
        ({
          position: r.position,
          type: r.type,
          guild_id: r.guild_id,
          channel_id: r.channel_id,
          user_id: r.user_id,
          data: r.data,
        }) as GuildstoreEvent,
    )
  return { events, next }
}

/**
 * Why a token cannot be resumed against this head and floor, or undefined. A
 * token above the horizon but not above the head is not refused: the horizon
 * may step back for a moment (a writer registered just below it, migration
 * 0025), and such a token reads nothing until the horizon passes it.
 */
export function resyncReason(after: string, head: EventHead): string | undefined {
  if (BigInt(after) < BigInt(head.floor))
    return 'the token is older than the retained events: resync'
  if (BigInt(after) > BigInt(head.head))
    return "the token is ahead of this database's change feed: resync"
  return undefined
}

/** What {@link listEvents} reads. */
export interface ListEventsInput {
  /** Whose events: their guilds (as a member now), channels they may see, their DMs, their own stream. */
  user_id: string
  /** A token from a previous page (`next`); absent: start at the current head (no events). */
  after?: string | null | undefined
  /** Candidates per page (1 to {@link EVENT_PAGE_MAX}, default {@link EVENT_PAGE_DEFAULT}). */
  limit?: number | undefined
}

/** A page of the feed. */
export interface EventPage {
  /** The user's events after the token, in position (commit) order. */
  events: GuildstoreEvent[]
  /** The token to resume from: pass it as `after` next time. */
  next: string
}

/**
 * The events `user_id` may see after the token `after`, in commit order, and
 * the token to continue from. The token is opaque, covers all the user's
 * guilds, DMs and own stream, and survives restarts. Access is decided when
 * reading: guild events for guilds the user is a member of now, channel
 * events through the one access rule (`VIEW_CHANNEL`), DM events for
 * participants, and their own stream (which tells them of their own removal).
 * Without `after`, it returns no events and the current head's token (a fresh
 * connection starts there, after loading the state).
 *
 * A page may hold fewer than `limit` events (some candidates were not
 * visible) while `next` moves on; read again until `next` stops moving.
 * Reads run at READ COMMITTED: inside a REPEATABLE READ or SERIALIZABLE
 * transaction it refuses (its horizon needs a snapshot taken after it).
 *
 * @throws {InvalidInputError} for a malformed `user_id`, `after` or `limit`,
 * or a snapshot isolation level.
 * @throws {ResyncRequiredError} when `after` is older than retention kept
 * (`purgeEvents`) or ahead of this database's feed.
 * @example
 * ```ts
 * let token = (await listEvents(db, { user_id })).next
 * // … later, or after a reconnect with the token the client kept:
 * const page = await listEvents(db, { user_id, after: token })
 * for (const e of page.events) deliver(e)
 * token = page.next
 * ```
 */
export async function listEvents(db: Kysely<DB>, input: ListEventsInput): Promise<EventPage> {
  assertObject(input, 'input')
  assertUuid(input.user_id, 'user_id')
  const limit = pageLimit(input.limit, EVENT_PAGE_DEFAULT, EVENT_PAGE_MAX)
  const after = input.after == null ? undefined : decodeEventToken(input.after)
  const head = await mapErrors(selectHorizon.executeTakeFirstOrThrow(db, {}))
  if (head.isolation !== 'read committed') {
    throw new InvalidInputError(
      'listEvents reads at READ COMMITTED, not in a snapshot transaction',
      {
        field: 'db',
      },
    )
  }
  if (after === undefined) return { events: [], next: encodeEventToken(head.horizon) }
  const refused = resyncReason(after, head)
  if (refused) throw new ResyncRequiredError(refused)
  // A token at or above the horizon: nothing is readable past it yet, and it never moves back.
  if (BigInt(after) >= BigInt(head.horizon)) return { events: [], next: encodeEventToken(after) }
  const rows = await mapErrors(
    selectEvents.execute(db, { user_id: input.user_id, after, horizon: head.horizon, limit }),
  )
  const page = toEventPage(rows, limit, head.horizon)
  return { events: page.events, next: encodeEventToken(page.next) }
}

/** What {@link purgeEvents} removes. */
export interface PurgeEventsInput {
  /** Events created before this time go. */
  older_than: Date
  /** Events per statement (1 to 10,000, default 1,000): each batch is one short transaction. */
  batch?: number | undefined
}

// One batch: the oldest `batch` events by position, those created before the
// cutoff deleted, and the floor raised to the highest position deleted, in
// one statement (one transaction), so a reader never sees rows gone but the
// floor not yet raised. Only positions at or below the horizon: the floor
// never passes a transaction still in flight (its events, committed later,
// would be below the floor at once). Rows are found by position (the
// primary key since migration 0028).
const deleteBatch = prepareQuery(
  'events.purge_batch',
  (db, p: { older_than: Date; batch: number }) =>
    rawQuery(
      db,
      sql<{ deleted: number }>`with hz as materialized (
  select guildstore_event_horizon() as horizon
), victims as (
  select position from guildstore_events, hz
  where position <= hz.horizon
  order by position limit ${p.batch}
), d as (
  delete from guildstore_events e using victims v
  where e.position = v.position
    and e.created_at < ${p.older_than}::timestamptz
  returning e.position
), f as (
  update guildstore_event_floor set floor = greatest(floor, (select max(position) from d))
  where (select max(position) from d) is not null
  returning floor
)
select (select count(*) from d)::int as deleted, (select count(*) from f)::int as raised`,
    ),
)

/**
 * Deletes the feed's events created before `older_than`, oldest position
 * first, in batches of `batch` (each its own short transaction unless `db` is
 * a transaction), and raises the oldest resumable position: a token from
 * before the purged events then gets {@link ResyncRequiredError}. Returns how
 * many events it deleted. Safe to run concurrently with writers, readers and
 * itself.
 *
 * @throws {InvalidInputError} for an invalid `older_than` or `batch`.
 * @example
 * ```ts
 * const week = 7 * 86_400_000
 * const deleted = await purgeEvents(db, { older_than: new Date(Date.now() - week) })
 * ```
 */
export async function purgeEvents(db: Kysely<DB>, input: PurgeEventsInput): Promise<number> {
  assertObject(input, 'input')
  assertDate(input.older_than, 'older_than')
  const batch = input.batch === undefined ? 1000 : pageLimit(input.batch, 1000, 10_000)
  let total = 0
  for (;;) {
    const row = await mapErrors(
      deleteBatch.executeTakeFirstOrThrow(db, { older_than: input.older_than, batch }),
    )
    total += row.deleted
    if (row.deleted === 0) return total
  }
}

const selectFloor = prepareQuery(
  'events.floor',
  (db) => db.selectFrom('guildstore_event_floor').select(sql<string>`floor::text`.as('floor')),
  { primary: true },
)

/**
 * The token of the oldest resumable position: a token at or after it can be
 * resumed; an older one gets {@link ResyncRequiredError}.
 *
 * @example
 * ```ts
 * const oldest = await oldestEventToken(db)
 * ```
 */
export async function oldestEventToken(db: Kysely<DB>): Promise<string> {
  const row = await mapErrors(selectFloor.executeTakeFirstOrThrow(db, {}))
  return encodeEventToken(row.floor)
}
