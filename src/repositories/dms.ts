import { type Kysely, sql } from 'kysely'
import type { DB, DmChannels, DmParticipants, UserStatus } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { newId } from '../ids/new-id.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { prepareQuery, rawQuery } from '../sql/index.ts'
import { assertIdKey, assertUuid } from '../validation/index.ts'
import type { UserPair } from './friendships.ts'
import { markRead, UNREAD_COUNT_CAP } from './read-states.ts'
import type { User } from './users.ts'

/** The columns every DM-returning function selects. */
export const dmChannelColumns = columnList<DmChannels>()(['id', 'user_a', 'user_b', 'created_at'])

/** A 1:1 DM: its id is also its channel id; `user_a < user_b`. */
export type DmChannel = Projection<DmChannels, typeof dmChannelColumns>

/** The columns of a DM participant. */
export const dmParticipantColumns = columnList<DmParticipants>()([
  'channel_id',
  'user_id',
  'joined_at',
  'last_read_message_id',
])

/** A DM participant and their read marker. */
export type DmParticipant = Projection<DmParticipants, typeof dmParticipantColumns>

interface FindOrCreateRow {
  blocked: boolean
  id: string | null
  user_a: string | null
  user_b: string | null
  created_at: Date | null
  created: boolean | null
}

// One statement, one round trip. For an existing pair the `existing` CTE finds
// it and nothing is inserted. Otherwise the pair row is inserted with
// ON CONFLICT (user_a, user_b) DO NOTHING, which is what makes concurrent calls
// race-free: a loser waits for the winner's transaction, then inserts nothing.
// Its channels row and both participants are inserted from the new pair row in
// the same statement (the foreign keys are checked at the end of it). A block
// either way inserts nothing and is reported in `blocked`.
const findOrInsertDm = prepareQuery(
  'dms.find_or_insert',
  (db, p: { id: string; a: string; b: string }) =>
    rawQuery(
      db,
      sql<FindOrCreateRow>`with existing as (
  select d.id, d.user_a, d.user_b, d.created_at
  from dm_channels d
  where d.user_a = ${p.a}::uuid and d.user_b = ${p.b}::uuid
), block as (
  select exists (
    select 1 from friendships f
    where f.status = 'blocked'
      and ((f.user_id = ${p.a}::uuid and f.friend_id = ${p.b}::uuid)
        or (f.user_id = ${p.b}::uuid and f.friend_id = ${p.a}::uuid))
  ) as blocked
), new_dm as (
  insert into dm_channels (id, user_a, user_b)
  select ${p.id}::uuid, ${p.a}::uuid, ${p.b}::uuid
  where not exists (select 1 from existing) and not (select blocked from block)
  on conflict (user_a, user_b) do nothing
  returning id, user_a, user_b, created_at
), new_channel as (
  insert into channels (id, type)
  select id, 'dm'::channel_type from new_dm
  returning id
), new_participants as (
  insert into dm_participants (channel_id, user_id)
  select id, user_a from new_dm
  union all
  select id, user_b from new_dm
  returning channel_id
)
select block.blocked, d.id, d.user_a, d.user_b, d.created_at, d.created
from block
left join (
  select id, user_a, user_b, created_at, false as created from existing
  union all
  select id, user_a, user_b, created_at, true as created from new_dm
) d on true`,
    ),
)

// After a lost race: a new statement (a new snapshot under READ COMMITTED)
// sees the winner's committed row.
const selectDmByPair = prepareQuery('dms.by_pair', (db, p: { a: string; b: string }) =>
  db
    .selectFrom('dm_channels')
    .select(dmChannelColumns)
    .where('user_a', '=', p.a)
    .where('user_b', '=', p.b),
)

interface DmListRow {
  id: string
  user_a: string
  user_b: string
  created_at: Date
  other_id: string
  other_username: string
  other_email: string | null
  other_display_name: string | null
  other_avatar_url: string | null
  other_status: UserStatus
  other_created_at: Date
  other_updated_at: Date
  last_message_id: string | null
  unread_count: number
}

// One query: the user's participant rows, the pair, the other user (the
// `User` columns only, never the secrets), the read marker, and two lateral
// subqueries on the live-history index (channel_id, seq): the newest live
// message, and the other user's live messages after the marker's position,
// counted up to UNREAD_COUNT_CAP (so the cost does not grow with the backlog).
const selectDmList = prepareQuery('dms.list', (db, p: { user_id: string }) =>
  rawQuery(
    db,
    sql<DmListRow>`select d.id, d.user_a, d.user_b, d.created_at,
  u.id as other_id, u.username as other_username, u.email as other_email,
  u.display_name as other_display_name, u.avatar_url as other_avatar_url,
  u.status as other_status, u.created_at as other_created_at, u.updated_at as other_updated_at,
  lm.id as last_message_id,
  unread.n as unread_count
from dm_participants me
join dm_channels d on d.id = me.channel_id
join users u on u.id = case when d.user_a = me.user_id then d.user_b else d.user_a end
left join channel_read_states rs on rs.user_id = me.user_id and rs.channel_id = d.id
left join lateral (
  select m.id from messages m
  where m.channel_id = d.id and m.deleted_at is null
  order by m.seq desc
  limit 1
) lm on true
cross join lateral (
  select count(*)::int as n from (
    select 1 from messages m
    where m.channel_id = d.id and m.deleted_at is null
      and m.seq > coalesce(rs.last_read_seq, (-9223372036854775808)::int8)
      and m.author_id <> me.user_id
    order by m.seq
    limit ${sql.raw(String(UNREAD_COUNT_CAP))}
  ) x
) unread
where me.user_id = ${p.user_id}::uuid
order by lm.id desc nulls last, d.created_at desc, d.id desc`,
  ),
)

/** What {@link findOrCreateDmChannel} returns. */
export interface FindOrCreateDmResult {
  channel: DmChannel
  /** `true` for exactly one caller: the one whose call made the channel. */
  created: boolean
}

/**
 * Finds the DM channel of two users, or makes it (its `channels` row of type
 * `'dm'`, its pair row and both participants). The same channel whichever way
 * round; race-free through the pair's UNIQUE (user_a, user_b) and
 * INSERT … ON CONFLICT DO NOTHING: concurrent calls for one pair make exactly
 * one channel and exactly one of them gets `created: true`.
 *
 * One round trip when the pair exists (and when this call creates it); a call
 * that loses a creation race reads the winner's row with a second statement.
 * Runs without a transaction of its own (the creating statement is atomic by
 * itself); inside a caller's transaction it uses that one. Under REPEATABLE
 * READ / SERIALIZABLE a lost race is a serialization failure
 * (`DatabaseUnavailableError`, retry the transaction).
 *
 * @throws {InvalidInputError} for a malformed id, or when both ids are the same user.
 * @throws {ConflictError} (reason `'blocked'`) when either user has blocked the
 *   other, also for an existing channel.
 * @throws {ForeignKeyViolationError} when a user does not exist (and there is no channel yet).
 * @example
 * ```ts
 * const { channel, created } = await findOrCreateDmChannel(db, { user_id: me, other_user_id: them })
 * await createMessage(db, { channel_id: channel.id, author_id: me, content: 'hey' })
 * ```
 */
export async function findOrCreateDmChannel(
  db: Kysely<DB>,
  input: UserPair,
): Promise<FindOrCreateDmResult> {
  assertIdKey(input, ['user_id', 'other_user_id'])
  const x = input.user_id.toLowerCase()
  const y = input.other_user_id.toLowerCase()
  if (x === y) {
    throw new InvalidInputError('other_user_id must be another user', { field: 'other_user_id' })
  }
  // Lower-case hex with fixed dashes sorts like PostgreSQL's uuid ordering.
  const [a, b] = x < y ? [x, y] : [y, x]
  for (let attempt = 0; attempt < 3; attempt++) {
    const row = await findOrInsertDm.executeTakeFirst(db, { id: newId(), a, b })
    if (row?.blocked) {
      throw new ConflictError('a block between these users refuses the DM', { reason: 'blocked' })
    }
    if (row?.id && row.user_a && row.user_b && row.created_at) {
      return {
        channel: { id: row.id, user_a: row.user_a, user_b: row.user_b, created_at: row.created_at },
        created: row.created === true,
      }
    }
    // Lost the race: the conflicting row is committed now.
    const existing = await selectDmByPair.executeTakeFirst(db, { a, b })
    if (existing) return { channel: existing, created: false }
    // The winner rolled back or the pair was deleted meanwhile: try again.
  }
  throw new ConflictError('the DM channel changed concurrently; try again', {
    reason: 'concurrent_change',
  })
}

/** One entry of {@link listDmChannels}. */
export type DmChannelListEntry = DmChannel & {
  /** The other participant. */
  other_user: User
  /** The newest live message, or `null` when there is none. */
  last_message_id: string | null
  /**
   * Live messages of the other user after this user's read marker, exact up to
   * `UNREAD_COUNT_CAP` (a value equal to it means "that many or more").
   */
  unread_count: number
}

/**
 * Lists a user's DM conversations in ONE query, most recent activity first
 * (newest live message id descending, conversations without messages last,
 * then newest conversation first), each with the other user, the newest live
 * message id and the unread count (live messages of the other user after this
 * user's read marker; one's own messages are never unread), exact up to
 * `UNREAD_COUNT_CAP`: the cost does not grow with the backlog.
 *
 * @throws {InvalidInputError} when `user_id` is not a UUID.
 * @example
 * ```ts
 * for (const dm of await listDmChannels(db, me)) console.log(dm.other_user.username, dm.unread_count)
 * ```
 */
export async function listDmChannels(
  db: Kysely<DB>,
  user_id: string,
): Promise<DmChannelListEntry[]> {
  assertUuid(user_id, 'user_id')
  const rows = await selectDmList.execute(db, { user_id })
  return rows.map((r) => ({
    id: r.id,
    user_a: r.user_a,
    user_b: r.user_b,
    created_at: r.created_at,
    other_user: {
      id: r.other_id,
      username: r.other_username,
      email: r.other_email,
      display_name: r.other_display_name,
      avatar_url: r.other_avatar_url,
      status: r.other_status,
      created_at: r.other_created_at,
      updated_at: r.other_updated_at,
    },
    last_message_id: r.last_message_id,
    unread_count: r.unread_count,
  }))
}

/** Input of {@link markDmRead}. */
export interface MarkDmReadInput {
  channel_id: string
  user_id: string
  /** A message of that channel (it may be soft-deleted). */
  message_id: string
}

/**
 * Marks a DM read up to a message: the same as `markChannelRead` for a DM (the
 * marker keeps the message's position and never moves backwards, whatever order
 * concurrent calls commit in; purges never reset it), and also sets the user's
 * `dm_participants.last_read_message_id`. The message may be soft-deleted, but
 * must belong to the channel. One statement.
 *
 * @throws {InvalidInputError} for a malformed id, or when the message is not in that channel.
 * @throws {NotFoundError} (entity `'dm_participant'`) when the user is not a
 *   participant of that DM (or the channel is no DM).
 * @example
 * ```ts
 * const [newest] = await listChannelMessages(db, dm.id, { limit: 1 })
 * if (newest) await markDmRead(db, { channel_id: dm.id, user_id: me, message_id: newest.id })
 * ```
 */
export async function markDmRead(db: Kysely<DB>, input: MarkDmReadInput): Promise<void> {
  await markRead(db, input, true)
}
