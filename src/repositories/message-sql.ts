/**
 * SQL fragments shared by the message statements (`messages.ts`, the trusted
 * calls; `authorized-messages.ts`, the checked ones), so both read pages and
 * check references the same way. Internal: not re-exported.
 */
import { type RawBuilder, sql } from 'kysely'

/** Default and maximum page size of the history pages. */
export const MESSAGE_PAGE_DEFAULT = 50
export const MESSAGE_PAGE_MAX = 100

/**
 * The inner `LIMIT` of every history page (the largest page), under the
 * caller's `LIMIT $n`: the index scan still stops after n rows (a limit pulls
 * rows on demand, and the outer ORDER BY is the inner one, so no Sort node),
 * but the planner can cost the plan without knowing n. With only `LIMIT $n`, a
 * generic plan is costed for 10% of the channel's rows, so on a busy channel
 * PostgreSQL judged it worse than a custom plan and planned the statement again
 * on every call; with the constant it keeps one plan per connection.
 */
export const PAGE_PLAN_ROWS = sql.lit(MESSAGE_PAGE_MAX)

/** The smallest `int8`: the lower bound when a cursor names nothing older. */
export const MIN_SEQ = sql.raw('(-9223372036854775808)::int8')

// History pages are index scans of the partial index
// messages_channel_id_seq_live_idx (channel_id, seq) WHERE deleted_at IS NULL.
// A cursor is a message id, translated to its position in the same statement
// (a primary-key probe, an InitPlan whose result bounds the index scan). An id
// that names no message of this channel stands for the position just after
// the newest live message with a smaller id (the 0.1.0 meaning, by id).

/** The `seq` above which an `after` page starts. */
export const afterBound = (channel_id: string, after: string) => sql<bigint>`(select coalesce(
  (select k.seq from messages k where k.id = ${after}::uuid and k.channel_id = ${channel_id}::uuid),
  (select k.seq from messages k where k.channel_id = ${channel_id}::uuid and k.deleted_at is null and k.id < ${after}::uuid order by k.id desc limit 1),
  ${MIN_SEQ}))`

/** The `seq` below which a `before` page starts. */
export const beforeBound = (channel_id: string, before: string) => sql<bigint>`(select coalesce(
  (select k.seq from messages k where k.id = ${before}::uuid and k.channel_id = ${channel_id}::uuid),
  (select k.seq + 1 from messages k where k.channel_id = ${channel_id}::uuid and k.deleted_at is null and k.id < ${before}::uuid order by k.id desc limit 1),
  ${MIN_SEQ}))`

/** The bound values of a message insert with its references and mentions. */
export interface MessageInsertParams {
  id: string
  channel_id: string
  author_id: string
  reply_to: string | null
  content: string
  user_ids: string[]
  role_ids: string[]
  everyone: boolean
}

/** The references of a message: the reply target and the mentioned roles and users. */
type References = Pick<MessageInsertParams, 'channel_id' | 'reply_to' | 'user_ids' | 'role_ids'>

/**
 * The reference checks of a message, as three `bool` expressions: the reply
 * target is a live message of the channel, every mentioned role is a role of
 * `guildId` (the channel's guild), every mentioned user exists.
 */
export function referencesSql(p: References, guildId: RawBuilder<unknown>) {
  return {
    reply: sql<boolean>`(${p.reply_to}::uuid is null or exists (
      select 1 from messages r
      where r.id = ${p.reply_to}::uuid and r.channel_id = ${p.channel_id}::uuid and r.deleted_at is null
    ))`,
    roles: sql<boolean>`cardinality(${p.role_ids}::uuid[]) = (
      select count(*) from roles r where r.guild_id = ${guildId} and r.id = any(${p.role_ids}::uuid[])
    )`,
    users: sql<boolean>`cardinality(${p.user_ids}::uuid[]) = (
      select count(*) from users u where u.id = any(${p.user_ids}::uuid[])
    )`,
  }
}

/** The guild of the channel `channel_id`, as a scalar subquery. */
export const channelGuildSql = (channel_id: string) =>
  sql`(select c.guild_id from channels c where c.id = ${channel_id}::uuid)`

/**
 * `insert into message_mentions … select … from ${from}`: mention rows of the
 * messages `source` names in `from`, for the targets `t` (`user_id`,
 * `role_id`, `everyone`) it names; each copies its message's channel_id, seq
 * and author_id.
 */
export function insertMentionRowsSql(source: 'i' | 'm', from: RawBuilder<unknown>) {
  const s = sql.raw(source)
  return sql`insert into message_mentions (message_id, channel_id, seq, author_id, user_id, role_id, everyone)
  select ${s}.id, ${s}.channel_id, ${s}.seq, ${s}.author_id, t.user_id, t.role_id, t.everyone
  from ${from}`
}

/**
 * `mentions as (…)`: the mention rows of the message inserted by the CTE named
 * `source` (none when it inserted nothing); they copy its channel_id, seq and
 * author_id.
 */
export function mentionsSql(
  p: Pick<MessageInsertParams, 'user_ids' | 'role_ids' | 'everyone'>,
  source: 'i' | 'm',
) {
  const s = sql.raw(source)
  return sql`mentions as (
  ${insertMentionRowsSql(
    source,
    sql`${s} cross join (
    select u as user_id, null::uuid as role_id, false as everyone from unnest(${p.user_ids}::uuid[]) u
    union all select null::uuid, r, false from unnest(${p.role_ids}::uuid[]) r
    union all select null::uuid, null::uuid, true where ${p.everyone}::boolean
  ) t`,
  )}
)`
}

/**
 * The send's statement writes its message's `message_created` event itself
 * (issue 23: a send then runs no statement trigger, no transition table and no
 * plpgsql call), and tells the feed's trigger so through this
 * transaction-local setting (migration 0027). The statement sets it to its
 * transaction's id before its insert into `messages` ends; that insert's
 * `AFTER` statement trigger finds it at trigger depth 0 (its `WHEN`), empties
 * it and does not fire. Every other insert into `messages` (a host's plain
 * SQL, `createMessage`, `importMessages`, an insert made by a trigger) finds
 * it empty, or runs at a trigger depth above 0, and gets its events from the
 * trigger as before. A failed statement undoes the setting with it.
 */
export const ARM_MESSAGE_EVENT = sql<string>`set_config('guildstore.message_event', pg_current_xact_id()::text, true)`

/**
 * `message_event as (insert into guildstore_events …)`: the `message_created`
 * event of the message the CTE `i` inserted (none when it inserted nothing),
 * with the payload the feed's trigger writes for a row of a plain insert
 * (migration 0025: the channel's guild, the channel, `message_id`, `seq` as
 * text, `author_id`). Only in a statement that set {@link ARM_MESSAGE_EVENT}
 * before its insert ended, or the trigger writes the event a second time.
 */
export const messageEventSql = sql`message_event as (
  insert into guildstore_events (type, guild_id, channel_id, data)
  select 'message_created', c.guild_id, i.channel_id,
    jsonb_build_object('message_id', i.id, 'seq', i.seq::text, 'author_id', i.author_id)
  from i join channels c on c.id = i.channel_id
)`
