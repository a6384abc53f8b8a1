import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import { accessibleChannelIdsSql } from '../permissions/access-sql.ts'
import { prepareQuery, rawQuery } from '../sql/index.ts'
import { assertIdKey, assertObject, assertOptionalUuid, assertUuid } from '../validation/index.ts'
import type { NotificationLevel } from './notification-settings.ts'

/**
 * The cap of `unread_count` and `mention_count` in {@link listChannelReadStates}
 * (and of `unread_count` in `listDmChannels`): counts are exact up to it, and a
 * count equal to it means "this many or more" (show it as "99+"). Counting stops
 * there, so listing read states costs the same whatever the backlog.
 */
export const UNREAD_COUNT_CAP = 100

const CAP = sql.raw(String(UNREAD_COUNT_CAP))
const MIN_SEQ = sql.raw('(-9223372036854775808)::int8')

interface MarkReadRow {
  /** The channel's type, `null` when there is no such channel. */
  type: 'text' | 'voice' | 'dm' | null
  /** For a DM: whether the user is one of its participants. */
  participant: boolean
  /** Whether the message is in the channel. */
  in_channel: boolean
}

/**
 * One statement: moves a read marker forward only. The UPSERT's `WHERE`
 * compares positions on the locked row, so whatever order concurrent calls
 * commit in, the marker ends at the greatest position any of them named.
 * `dm_only` (markDmRead) writes nothing for a channel that is not a DM. For a DM
 * the user must be a participant; its `dm_participants.last_read_message_id`
 * follows (the 0.1.0 column, kept in step).
 */
export const markReadStatement = prepareQuery(
  'read_states.mark',
  (db, p: { channel_id: string; user_id: string; message_id: string; dm_only: boolean }) =>
    rawQuery(
      db,
      sql<MarkReadRow>`with ch as (
  select c.type,
    exists (select 1 from dm_participants dp where dp.channel_id = c.id and dp.user_id = ${p.user_id}::uuid) as participant
  from channels c where c.id = ${p.channel_id}::uuid
), target as (
  select m.id, m.seq from messages m
  where m.id = ${p.message_id}::uuid and m.channel_id = ${p.channel_id}::uuid
), moved as (
  insert into channel_read_states as rs (user_id, channel_id, last_read_seq, last_read_message_id)
  select ${p.user_id}::uuid, ${p.channel_id}::uuid, t.seq, t.id
  from target t, ch
  where (ch.type = 'dm' and ch.participant) or (ch.type <> 'dm' and not ${p.dm_only}::boolean)
  on conflict (user_id, channel_id) do update
    set last_read_seq = excluded.last_read_seq,
      last_read_message_id = excluded.last_read_message_id,
      updated_at = now()
    where rs.last_read_seq < excluded.last_read_seq
  returning rs.last_read_message_id
), legacy as (
  update dm_participants dp set last_read_message_id = mv.last_read_message_id
  from moved mv
  where dp.channel_id = ${p.channel_id}::uuid and dp.user_id = ${p.user_id}::uuid
)
select (select type from ch) as type,
  coalesce((select participant from ch), false) as participant,
  exists (select 1 from target) as in_channel`,
    ),
)

/** Input of {@link markChannelRead} (and of `markDmRead`). */
export interface MarkChannelReadInput {
  channel_id: string
  user_id: string
  /** A message of that channel (it may be soft-deleted). */
  message_id: string
}

/** Runs {@link markReadStatement} and turns what was missing into the documented errors. */
export async function markRead(
  db: Kysely<DB>,
  input: MarkChannelReadInput,
  dmOnly: boolean,
): Promise<void> {
  assertIdKey(input, ['channel_id', 'user_id', 'message_id'])
  const row = await markReadStatement.executeTakeFirst(db, {
    channel_id: input.channel_id,
    user_id: input.user_id,
    message_id: input.message_id,
    dm_only: dmOnly,
  })
  const isDm = row?.type === 'dm'
  if (dmOnly ? !isDm || !row?.participant : isDm && !row?.participant) {
    throw new NotFoundError('the user is not a participant of this DM', {
      entity: 'dm_participant',
    })
  }
  if (!row?.type) throw new NotFoundError('no such channel', { entity: 'channel' })
  if (!row.in_channel) {
    throw new InvalidInputError('message_id must be a message of this channel', {
      field: 'message_id',
    })
  }
}

/**
 * Marks a channel (a guild channel or a DM) read up to a message. The marker
 * keeps that message's position and id and never moves backwards: an older
 * message leaves it as it is, and concurrent calls end at the newest message
 * any of them named, whatever order they commit in. The message may be
 * soft-deleted, but must belong to the channel. Purges and soft deletes never
 * move a marker, so they never make a read channel unread again.
 *
 * No permission check: a guild channel's marker is kept for any user (it only
 * shows in {@link listChannelReadStates} while they can see the channel); a
 * DM's only for its participants. One statement.
 *
 * @throws {InvalidInputError} for a malformed id, or when the message is not in that channel.
 * @throws {NotFoundError} (entity `'channel'`) when there is no such channel;
 *   (entity `'dm_participant'`) for a DM the user is not part of.
 * @throws {ForeignKeyViolationError} when the user does not exist.
 * @example
 * ```ts
 * const [newest] = await listChannelMessages(db, channel_id, { limit: 1 })
 * if (newest) await markChannelRead(db, { channel_id, user_id: me, message_id: newest.id })
 * ```
 */
export async function markChannelRead(db: Kysely<DB>, input: MarkChannelReadInput): Promise<void> {
  await markRead(db, input, false)
}

/** One channel of {@link listChannelReadStates}. */
export interface ChannelReadState {
  channel_id: string
  /** The newest live message, or `null` when there is none. */
  last_message_id: string | null
  /** The message the user last marked read, or `null` when never (it may have been deleted since). */
  last_read_message_id: string | null
  /**
   * Live messages of others after the user's marker (all of them when there is
   * no marker), exact up to {@link UNREAD_COUNT_CAP}.
   */
  unread_count: number
  /**
   * Of those, the ones that mention the user, a role they hold (the default
   * role included), or `@everyone`; exact up to {@link UNREAD_COUNT_CAP}.
   * The user's notification settings shape it: a suppressed `@everyone` (and
   * default-role) mention counts nothing, suppressed role mentions count
   * nothing, and the level `'nothing'` counts no mention at all.
   */
  mention_count: number
  /**
   * Muted now (the channel's mute or the guild's, unless it has ended; for a
   * thread also its parent channel's). Counts stay exact: a client decides how to show it.
   */
  muted: boolean
  /**
   * The effective level: the channel's override, else (for a thread) its
   * parent channel's override, else the guild's, else `'all'`.
   */
  notification_level: NotificationLevel
}

/** Input of {@link listChannelReadStates}. */
export interface ListChannelReadStatesInput {
  user_id: string
  /** A guild: its channels the user can see. `null` or absent: the user's DMs. */
  guild_id?: string | null | undefined
}

interface ReadStateRow {
  channel_id: string
  last_message_id: string | null
  last_read_message_id: string | null
  unread_count: number
  mention_count: number
  muted: boolean
  notification_level: NotificationLevel
}

/**
 * The per-channel columns of a read-state list over `v` (channel ids) joined
 * with `channels c`. Every count is a `LIMIT cap` index range: live messages by
 * (channel_id, seq); mentions by (user_id | role_id, channel_id, seq) and
 * (channel_id, seq) for @everyone, one range per held role, read from the
 * indexes alone (they include author_id; soft-deleted messages have no mention
 * rows, and seq identifies a message within the channel).
 *
 * A thread (`auto_archive_minutes` set) also reads its parent's override
 * (`ps`, a primary-key probe in the same statement): its level is its own
 * override's, else its parent's, else the guild's; it is muted while its own,
 * its parent's or the guild's mute stands (docs/read-state.md, "Threads").
 * A category is a `parent_id` too, but only a thread's parent is read.
 *
 * The per-channel parts read the user's id as `(select $n::uuid)`, an
 * InitPlan whose value the planner does not see, so a custom plan estimates
 * them exactly as the generic plan does. With the bare parameter a custom plan
 * estimated the user's mention ranges from the statistics and came out a few
 * hundred cost units cheaper than the generic plan, and the plan cache then
 * chose a custom plan on every call once the tables were analyzed: 3.5–8 ms
 * of planning per call for 0.3 ms of execution (docs/architecture.md, "Plans
 * that stay fast across ANALYZE").
 */
function readStateSelect(
  userIdParam: unknown,
  roles: { ids: RawBuilder<unknown>; everyone: RawBuilder<unknown> } | null,
) {
  const userId = sql`(select ${userIdParam}::uuid)`
  const after = sql`coalesce(rs.last_read_seq, ${MIN_SEQ})`
  // A level of 'nothing' counts no mention: a one-time filter of each range.
  const mentionRange = (
    target: RawBuilder<unknown>,
    when: RawBuilder<unknown> = sql`true`,
  ) => sql`select mm.seq
      from message_mentions mm
      where ${target} and mm.channel_id = c.id and mm.seq > ${after}
        and mm.author_id <> ${userId} and ns.level <> 'nothing' and ${when}
      order by mm.seq limit ${CAP}`
  // Role mentions: of the roles the user holds; the default role's mentions
  // are mentions of everyone (suppress_everyone), the others' role mentions
  // (suppress_roles).
  const roleRanges =
    roles === null
      ? sql``
      : sql`
      union all
      select y.seq from unnest(${roles.ids}) as held(role_id)
      cross join lateral (${mentionRange(sql`mm.role_id = held.role_id`, sql`not ns.suppress_roles`)}) y
      union all
      (${mentionRange(sql`mm.role_id = ${roles.everyone}`, sql`not ns.suppress_everyone`)})`
  return sql`select c.id as channel_id, lm.id as last_message_id, rs.last_read_message_id,
  unread.n as unread_count, least(mentions.n, ${CAP})::int as mention_count,
  ns.muted, ns.level as notification_level
from visible v
cross join gs
join channels c on c.id = v.id
left join channel_read_states rs on rs.user_id = ${userId} and rs.channel_id = c.id
left join channel_notification_settings cs on cs.channel_id = c.id and cs.user_id = ${userId}
left join channel_notification_settings ps
  on c.auto_archive_minutes is not null and ps.channel_id = c.parent_id and ps.user_id = ${userId}
cross join lateral (
  select coalesce(cs.level, ps.level, gs.level, 'all') as level,
    coalesce(gs.suppress_everyone, false) as suppress_everyone,
    coalesce(gs.suppress_roles, false) as suppress_roles,
    coalesce(cs.muted and (cs.muted_until is null or cs.muted_until > statement_timestamp()), false)
      or coalesce(ps.muted and (ps.muted_until is null or ps.muted_until > statement_timestamp()), false)
      or coalesce(gs.muted, false) as muted
) ns
left join lateral (
  select m.id from messages m
  where m.channel_id = c.id and m.deleted_at is null
  order by m.seq desc limit 1
) lm on true
cross join lateral (
  select count(*)::int as n from (
    select 1 from messages m
    where m.channel_id = c.id and m.deleted_at is null and m.seq > ${after}
      and m.author_id <> ${userId}
    order by m.seq limit ${CAP}
  ) x
) unread
cross join lateral (
  select count(distinct x.seq)::int as n from (
    (${mentionRange(sql`mm.user_id = ${userId}`)})
    union all
    (${mentionRange(sql`mm.everyone`, sql`not ns.suppress_everyone`)})${roleRanges}
  ) x
) mentions`
}

// A guild's channels the user can see (the shared access rule), with their
// read state; of its threads (migration 0021), the active ones the user joined
// and may still see, so the list does not grow with the guild's threads.
const selectGuildReadStates = prepareQuery(
  'read_states.list_guild',
  (db, p: { user_id: string; guild_id: string }) =>
    rawQuery(
      db,
      sql<ReadStateRow>`with visible as (
  ${accessibleChannelIdsSql({ userId: p.user_id, guildId: p.guild_id, withoutThreads: true })}
  union all
  select tm.channel_id from channel_members tm join channels t on t.id = tm.channel_id
  where tm.guild_id = ${p.guild_id}::uuid and tm.user_id = ${p.user_id}::uuid
    and t.auto_archive_minutes is not null and t.archived_at is null
    and exists (${accessibleChannelIdsSql({ userId: p.user_id, guildId: p.guild_id, channelId: sql`t.id` })})
), held as (
  select coalesce(array_agg(r.id) filter (where not r.is_default), '{}') as ids,
    (array_agg(r.id) filter (where r.is_default))[1] as everyone
  from roles r
  where r.guild_id = ${p.guild_id}::uuid
    and (r.is_default or exists (
      select 1 from member_roles mr
      where mr.guild_id = r.guild_id and mr.user_id = ${p.user_id}::uuid and mr.role_id = r.id
    ))
), gs as materialized (
  select g.level, g.suppress_everyone, g.suppress_roles,
    g.muted and (g.muted_until is null or g.muted_until > statement_timestamp()) as muted
  from (select) one
  left join guild_notification_settings g
    on g.guild_id = ${p.guild_id}::uuid and g.user_id = ${p.user_id}::uuid
)
${readStateSelect(p.user_id, { ids: sql`(select ids from held)`, everyone: sql`(select everyone from held)` })}
order by c.position, c.id`,
    ),
)

// The user's DMs, with their read state, most recent activity first.
const selectDmReadStates = prepareQuery('read_states.list_dms', (db, p: { user_id: string }) =>
  rawQuery(
    db,
    sql<ReadStateRow>`with visible as (
  select dp.channel_id as id from dm_participants dp where dp.user_id = ${p.user_id}::uuid
), gs as (
  select null::text as level, false as suppress_everyone, false as suppress_roles, false as muted
)
${readStateSelect(p.user_id, null)}
order by lm.id desc nulls last, c.created_at desc, c.id desc`,
  ),
)

/**
 * Lists a user's read state in ONE query: with `guild_id`, for every channel of
 * that guild the user can see (the same access rule as `listVisibleChannels`)
 * and every active thread of it the user joined and can see, by position;
 * without it (or `null`), for each of the user's DMs, most recent
 * activity first. Per channel: the newest live message id, the user's marker,
 * and the unread and mention counts, both exact up to {@link UNREAD_COUNT_CAP}.
 *
 * Each count reads at most {@link UNREAD_COUNT_CAP} index entries per channel
 * (per held role for role mentions), so the list costs the same with 0 or
 * 500 000 unread messages; its cost grows with the number of channels.
 *
 * @throws {InvalidInputError} for a malformed id.
 * @example
 * ```ts
 * for (const s of await listChannelReadStates(db, { user_id: me, guild_id })) {
 *   const badge = s.unread_count >= UNREAD_COUNT_CAP ? '99+' : String(s.unread_count)
 * }
 * const dms = await listChannelReadStates(db, { user_id: me })
 * ```
 */
export async function listChannelReadStates(
  db: Kysely<DB>,
  input: ListChannelReadStatesInput,
): Promise<ChannelReadState[]> {
  assertObject(input, 'input')
  assertUuid(input.user_id, 'user_id')
  assertOptionalUuid(input.guild_id, 'guild_id')
  return input.guild_id == null
    ? selectDmReadStates.execute(db, { user_id: input.user_id })
    : selectGuildReadStates.execute(db, { user_id: input.user_id, guild_id: input.guild_id })
}
