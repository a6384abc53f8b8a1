/**
 * sendMessage: its statements (the full check and the cached paths) and the
 * loop that runs them, with the pieces `authorized-messages.ts`' reads share.
 * Internal: `authorized-messages.ts` re-exports `sendMessage` and
 * `SendMessageInput` only.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import { DatabaseUnavailableError } from '../errors/database-error.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { PermissionDeniedError } from '../errors/permission-denied-error.ts'
import { RateLimitedError } from '../errors/rate-limited-error.ts'
import { newId } from '../ids/new-id.ts'
import { hasFlagSql, memberChannelPermissionsSql } from '../permissions/actor-sql.ts'
import { Permissions } from '../permissions/permissions.ts'
import { prepareQuery, rawQuery } from '../sql/index.ts'
import { assertObject, assertOptionalUuid, assertText, assertUuid } from '../validation/index.ts'
import { onNonceConflict, priorMessage, validNonce } from './message-nonce.ts'
import {
  ARM_MESSAGE_EVENT,
  channelGuildSql,
  type MessageInsertParams,
  mentionsSql,
  messageEventSql,
  referencesSql,
} from './message-sql.ts'
import {
  type Message,
  type MessageMentionsInput,
  messageColumns,
  validateMentions,
} from './messages.ts'

const CONTENT = { min: 1, max: 4000 } as const
/** Attempts of {@link sendMessage} when the rows its check read changed under it. */
const SEND_ATTEMPTS = 5

/** Why an authorized call was refused, as the statement reports it. */
export type Verdict =
  | 'ok'
  | 'miss'
  | 'no_access'
  | 'send'
  | 'mention_everyone'
  | 'blocked'
  | 'read_history'

export const flag = (perms: RawBuilder<unknown>, f: bigint) => hasFlagSql(perms, f)

/** The flags that exempt a member from slowmode (Discord's rule). */
const SLOWMODE_BYPASS = sql.raw(
  `${Permissions.MANAGE_MESSAGES | Permissions.MANAGE_CHANNELS}::int8`,
)

// How long the author still waits, after a send slowmode refused (read after
// the refusal: the number is advice, the refusal was decided in the statement).
const slowmodeWait = prepareQuery(
  'messages.slowmode_wait',
  (db, p: { channel_id: string; author_id: string }) =>
    db
      .selectFrom('channel_slowmode as s')
      .innerJoin('channels as c', 'c.id', 's.channel_id')
      .select(
        sql<number>`greatest(0, ceil(extract(epoch from (s.last_sent_at
          + make_interval(secs => c.rate_limit_per_user) - statement_timestamp())) * 1000))::int`.as(
          'ms',
        ),
      )
      .where('s.channel_id', '=', p.channel_id)
      .where('s.user_id', '=', p.author_id),
)

/**
 * `bool`: whether `role_ids` names the default (`@everyone`) role of `guildId`:
 * a mention of everyone, which needs `MENTION_EVERYONE` as `everyone: true` does.
 */
const mentionsDefaultRoleSql = (role_ids: string[], guildId: RawBuilder<unknown>) =>
  sql<boolean>`exists (
    select 1 from roles r
    where r.guild_id = ${guildId} and r.id = any(${role_ids}::uuid[]) and r.is_default
  )`

/**
 * The version guard: the channel row, locked, compared with the statement's
 * snapshot of it. Every change that can take a permission away from someone in
 * a channel (role bits removed, a role or an assignment deleted, a member
 * removed, ownership transferred, an overwrite changed, a private-channel or DM
 * participant removed, a block) increments `channels.access_version` of the
 * channels it affects in the same transaction (migration 0006's triggers). The
 * locking read sees the newest committed version and waits for an uncommitted
 * one, so a revocation that committed after the snapshot, or still holds the
 * row, shows up as a different value: nothing is written and the statement
 * runs again with a fresh snapshot. A revocation that comes after the lock
 * waits for the send to commit. So a send never commits after a revocation it
 * did not see, while senders lock nothing but the channel row, which their
 * insert takes anyway for the message position (FOR NO KEY UPDATE: the same
 * lock, so sends to one channel queue here once).
 */
const guardSql = (channel_id: unknown) =>
  sql`locked as (
  select (c.type, c.guild_id, c.is_private, c.access_version)::text as v
  from channels c where c.id = ${channel_id}::uuid for no key update
), stale as (
  select (select ctx.v from ctx) is distinct from (select locked.v from locked) as stale
)`

interface SendRow {
  verdict: Verdict
  stale: boolean
  /** Refused by the channel's slowmode (the position was given back). */
  slowed: boolean | null
  reply_ok: boolean
  roles_ok: boolean
  users_ok: boolean
  id: string | null
  channel_id: string | null
  author_id: string | null
  reply_to: string | null
  content: string | null
  created_at: Date | null
  edited_at: Date | null
  deleted_at: Date | null
  seq: bigint | null
}

const returning = sql.raw(messageColumns.map((c) => `i.${c}`).join(', '))
const insertedColumns = sql.raw(messageColumns.join(', '))

/**
 * `fill`: stores the permissions the statement computed (`bits`, from its
 * snapshot) with the channel's `access_version` of the same snapshot, for the
 * cached path of later calls (migration 0007). Sound whatever happens next: a
 * revocation after that snapshot gives the channel another version, and the row
 * is then never used. Stored only when `when` holds (the call succeeds: a
 * refusal writes nothing).
 */
export const fillSql = (user_id: unknown, when: RawBuilder<unknown>) => sql`fill as (
  insert into channel_permission_cache (channel_id, user_id, access_version, permissions)
  select ch.id, ${user_id}::uuid, ch.access_version, bits.p from ctx ch cross join bits
  where bits.p <> 0 and ${when}
  on conflict (channel_id, user_id) do update
    set access_version = excluded.access_version, permissions = excluded.permissions
    where channel_permission_cache.access_version <= excluded.access_version
)`

/** `dm`: for a DM channel only, whether the user is a participant and whether a block stands. */
export const dmSql = (user_id: unknown, channel_id: unknown) => sql`dm as materialized (
  select
    exists (
      select 1 from dm_participants dp
      where dp.channel_id = ${channel_id}::uuid and dp.user_id = ${user_id}::uuid
    ) as participant,
    exists (
      select 1 from dm_channels d join friendships f
        on f.status = 'blocked'
        and ((f.user_id = d.user_a and f.friend_id = d.user_b) or (f.user_id = d.user_b and f.friend_id = d.user_a))
      where d.id = ${channel_id}::uuid
    ) as blocked
  where (select ctx.type from ctx) = 'dm'
)`

/**
 * `bits`: the user's permissions in the channel as one `int8`: the shared rule
 * for a guild channel; for a DM, `VIEW_CHANNEL | READ_MESSAGE_HISTORY` for a
 * participant, with `SEND_MESSAGES | MENTION_EVERYONE` while no block stands.
 */
const DM_READ = sql.raw(`${Permissions.VIEW_CHANNEL | Permissions.READ_MESSAGE_HISTORY}::int8`)
const DM_SEND = sql.raw(`${Permissions.SEND_MESSAGES | Permissions.MENTION_EVERYONE}::int8`)
export const bitsSql = sql`bits as materialized (
  select case
    when (select ctx.type from ctx) = 'dm' then (
      select case when not dm.participant then 0::int8
        when dm.blocked then ${DM_READ}
        else ${DM_READ} | ${DM_SEND} end
      from dm)
    else coalesce((select perms.p from perms), 0::int8)
  end as p
)`

/** `, armed` in `pos`'s select list: the send tells the feed's trigger that it writes its event (migration 0027). */
const armed = (event: boolean) => (event ? sql`,\n    ${ARM_MESSAGE_EVENT} as armed` : sql``)
/** The insert's condition on `armed`, which keeps the setting's call in the plan. */
const whenArmed = (event: boolean) => (event ? sql` and pos.armed <> ''` : sql``)

// ONE statement: the check (the shared permission rule, for a DM the
// participant and block rules), the version guard, the insert, which runs only
// when the verdict is 'ok' and nothing the verdict read has changed, and the
// refresh of the cached permissions, and the message's change-feed event
// (`message_event`, with `armed` in `pos`: as in the cached path below). The
// final select reads verdict and refs before stale, so the channel row is
// locked only after all the reading, for the insert and the commit.
export function fullSend(withNonce: boolean, event = true) {
  return prepareQuery(
    `messages.send_authorized${withNonce ? '_nonce' : ''}${event ? '' : '_trigger_capture'}`,
    (db, p: MessageInsertParams & { nonce: string | null }) => {
      const refsFull = referencesSql(p, sql`(select ctx.guild_id from ctx)`)
      return rawQuery(
        db,
        sql<SendRow>`with ctx as materialized (
  select c.id, c.type, c.guild_id, c.access_version, (c.type, c.guild_id, c.is_private, c.access_version)::text as v
  from channels c where c.id = ${p.channel_id}::uuid
), perms as materialized (
  select ${memberChannelPermissionsSql(p.author_id, sql`${p.channel_id}::uuid`)} as p
), ${dmSql(p.author_id, p.channel_id)}, ${bitsSql}, verdict as materialized (
  select case
    when ch.id is null then 'no_access'
    when ch.type = 'dm' then case
      when not (select dm.participant from dm) then 'no_access'
      when (select dm.blocked from dm) then 'blocked'
      else 'ok'
    end
    when not ${flag(sql`perms.p`, Permissions.VIEW_CHANNEL)} then 'no_access'
    when not ${flag(sql`perms.p`, Permissions.SEND_MESSAGES)} then 'send'
    when (${p.everyone}::bool or ${mentionsDefaultRoleSql(p.role_ids, sql`ch.guild_id`)})
      and not ${flag(sql`perms.p`, Permissions.MENTION_EVERYONE)} then 'mention_everyone'
    else 'ok'
  end as verdict
  from perms left join ctx ch on true
), refs as materialized (
  select ${refsFull.reply} as reply_ok, ${refsFull.roles} as roles_ok, ${refsFull.users} as users_ok
), ${guardSql(p.channel_id)}, pos as materialized (
  select guildstore_take_position(${p.channel_id}::uuid, (select ctx.access_version from ctx),
    ${p.author_id}::uuid, coalesce((select perms.p from perms) & ${SLOWMODE_BYPASS} <> 0, false)) as seq${armed(event)}
  from refs
  where (select verdict from verdict) = 'ok'
    and not (select stale from stale)
    and refs.reply_ok and refs.roles_ok and refs.users_ok
), i as (
  insert into messages (id, channel_id, author_id, reply_to, content, seq${nonceColumn(withNonce)})
  select ${p.id}::uuid, ${p.channel_id}::uuid, ${p.author_id}::uuid, ${p.reply_to}::uuid, ${p.content}::text, pos.seq${nonceValue(withNonce, p)}
  from pos
  where pos.seq > 0${whenArmed(event)}${withNonce ? sql`\n  ${onNonceConflict}` : sql``}
  returning ${insertedColumns}
), ${mentionsSql(p, 'i')}, ${event ? sql`${messageEventSql}, ` : sql``}${fillSql(p.author_id, sql`exists (select from i)`)}
select verdict.verdict, stale.stale, refs.reply_ok, refs.roles_ok, refs.users_ok,
  (select pos.seq from pos) = -1 as slowed, ${returning}
from verdict cross join refs cross join stale left join i on true`,
      )
    },
  )
}
/** The full statement, without and with a client nonce (migration 0010). */
const sendStatement = { plain: fullSend(false), nonce: fullSend(true) }

// The cached path: ONE statement that inserts only when the author's stored
// permissions (channel_permission_cache) hold every bit the send needs, were
// computed at the channel's current access_version, and the reply and mention
// references are valid. The version is compared by the UPDATE that takes the
// message position, on the newest channel row: under READ COMMITTED, an UPDATE
// that finds the row changed by a transaction that committed meanwhile
// re-evaluates its WHERE on the new version, and one that finds it held by an
// uncommitted transaction waits for it first. So a revocation that committed
// before the lock makes the statement write nothing (the caller falls back to
// the full statement), and one that comes later waits for the send to commit.
// The message gets its position here (the trigger leaves an explicit seq
// alone), so the send takes the channel row once, as a plain INSERT does.
// The statement also writes the message's change-feed event (`message_event`,
// migration 0027), so no trigger runs for it: `armed` tells the feed's
// trigger, before the insert ends, that this insert's event is written here.
export function cachedSend(shape: 'plain' | 'reply' | 'refs', withNonce: boolean, event = true) {
  const refs = shape !== 'plain'
  const mentions = shape === 'refs'
  return prepareQuery(
    `messages.send_cached${refs ? `_${shape}` : ''}${withNonce ? '_nonce' : ''}${event ? '' : '_trigger_capture'}`,
    (
      db,
      p: MessageInsertParams & {
        /** The bits the send needs (`int8` as text). */
        need: string
        nonce: string | null
      },
    ) => {
      // A reply or mentions: their references are checked in the same WHERE
      // (so the position is taken only when the insert happens).
      const r = referencesSql(p, channelGuildSql(p.channel_id))
      // The stored version (read from the snapshot, before any lock) goes to
      // guildstore_take_position (migration 0007), which takes the position
      // only while the channel row still has that version. Its UPDATE is a
      // one-table statement of its own, so when sends queue on a busy
      // channel's row, the re-check after the wait costs what the position
      // trigger's costs after a plain INSERT waited (an UPDATE in a CTE of this
      // statement would re-initialize the whole statement's plan under the
      // lock). References are checked first: no position is taken for a send
      // that will not insert.
      const refsOk = mentions
        ? sql`\n  where ${r.reply} and ${r.roles} and ${r.users}`
        : refs
          ? sql`\n  where ${r.reply}`
          : sql``
      // A role mention of the default role mentions everyone: MENTION_EVERYONE
      // is needed then, as for `everyone: true` (which `need` carries).
      const everyoneRole = mentions
        ? sql` | case when ${mentionsDefaultRoleSql(p.role_ids, channelGuildSql(p.channel_id))}
        then ${sql.raw(`${Permissions.MENTION_EVERYONE}::int8`)} else 0::int8 end`
        : sql``
      // A subquery with a volatile call in its select list is not flattened:
      // the function runs once, and the WHERE on its result decides the insert.
      const insert = sql`insert into messages (id, channel_id, author_id, reply_to, content, seq${nonceColumn(withNonce)})
select ${p.id}::uuid, ${p.channel_id}::uuid, ${p.author_id}::uuid, ${refs ? sql`${p.reply_to}::uuid` : sql`null`}, ${p.content}::text, pos.seq${nonceValue(withNonce, p)}
from (
  select guildstore_take_position(${p.channel_id}::uuid, a.access_version, ${p.author_id}::uuid,
    (a.permissions & ${SLOWMODE_BYPASS}) <> 0) as seq${armed(event)}
  from (select) one left join lateral (
    select a.access_version, a.permissions from channel_permission_cache a
    where a.channel_id = ${p.channel_id}::uuid and a.user_id = ${p.author_id}::uuid
      and (~a.permissions & (${p.need}::int8${everyoneRole})) = 0
  ) a on true${refsOk}
) pos
where pos.seq > 0${whenArmed(event)}${withNonce ? sql`\n${onNonceConflict}` : sql``}
returning ${insertedColumns}`
      const ctes = [...(mentions ? [mentionsSql(p, 'i')] : []), ...(event ? [messageEventSql] : [])]
      return rawQuery(
        db,
        ctes.length > 0
          ? sql<Message>`with i as (
${insert}
), ${sql.join(ctes)}
select ${returning} from i`
          : sql<Message>`${insert}`,
      )
    },
  )
}
/** The cached path of a plain send (no reply, no mentions), of a reply without mentions, and of one with mentions; each also with a nonce. */
const cachedSendStatement = {
  plain: cachedSend('plain', false),
  reply: cachedSend('reply', false),
  refs: cachedSend('refs', false),
  plain_nonce: cachedSend('plain', true),
  reply_nonce: cachedSend('reply', true),
  refs_nonce: cachedSend('refs', true),
}

/** The send's statements: the full path and the cached paths. */
export type SendStatements = {
  full: typeof sendStatement
  cached: typeof cachedSendStatement
}

/**
 * sendMessage's statements: the event written by the statement (migration
 * 0027). bench/send-trigger-route.ts builds the statements as before 0027 (the
 * event written by the feed's trigger) for bench/feed.ts and the tests.
 */
const statementRoute: SendStatements = { full: sendStatement, cached: cachedSendStatement }

/** `, nonce` in an insert's column list when the statement carries one. */
const nonceColumn = (withNonce: boolean) => (withNonce ? sql`, nonce` : sql``)
/** The nonce value in an insert's select list when the statement carries one. */
const nonceValue = (withNonce: boolean, p: { nonce: string | null }) =>
  withNonce ? sql`, ${p.nonce}::text` : sql``

/** Input of {@link sendMessage}. */
export interface SendMessageInput {
  channel_id: string
  author_id: string
  /** 1 to 4000 characters (code points), no NUL, well-formed Unicode. */
  content: string
  /** A live message of the same channel. */
  reply_to?: string | null | undefined
  mentions?: MessageMentionsInput | null | undefined
  /**
   * A client nonce, 1 to 25 characters: makes the send exactly-once. Another
   * send with the same channel, author and nonce within 24 hours returns the
   * ORIGINAL message and writes nothing (also when both run at once: the second
   * waits for the first). Retry with it after an `UnknownOutcomeError`.
   */
  nonce?: string | null | undefined
}

export function refusal(verdict: Verdict): Error {
  switch (verdict) {
    case 'blocked':
      return new ConflictError('a block stands between the participants of this DM', {
        reason: 'blocked',
      })
    case 'send':
      return new PermissionDeniedError('sending needs SEND_MESSAGES in the channel', {
        reason: 'missing_permission',
        permission: Permissions.SEND_MESSAGES,
      })
    case 'mention_everyone':
      return new PermissionDeniedError('mentioning @everyone needs MENTION_EVERYONE', {
        reason: 'missing_permission',
        permission: Permissions.MENTION_EVERYONE,
      })
    case 'read_history':
      return new PermissionDeniedError('reading needs READ_MESSAGE_HISTORY in the channel', {
        reason: 'missing_permission',
        permission: Permissions.READ_MESSAGE_HISTORY,
      })
    default:
      // Unknown channel, not a member, no VIEW_CHANNEL, a private channel, not
      // a DM participant: one refusal, so it does not tell which channels exist.
      return new PermissionDeniedError('the user may not view this channel', {
        reason: 'missing_permission',
        permission: Permissions.VIEW_CHANNEL,
      })
  }
}

/**
 * Posts a message only if the author may: in ONE statement, it computes the
 * author's permissions in the channel with the same rule as
 * `computePermissions` (`VIEW_CHANNEL` and `SEND_MESSAGES`, and
 * `MENTION_EVERYONE` for `mentions.everyone` and for a `mentions.role_ids`
 * that names the guild's default `@everyone` role: both mention everyone, and
 * both are refused alike), or for a DM checks that the
 * author is a participant and that neither user blocks the other, and inserts.
 * Nothing is written on refusal. The rows the check read are locked in the same
 * statement and compared with the versions it read: a permission revoked
 * concurrently makes the statement write nothing and run again with a fresh
 * snapshot, so no send commits after a revocation it did not see.
 *
 * The same statement writes the message's `message_created` event to the
 * change feed (migration 0027; docs/events.md, "The send's event, in its
 * statement"): one event per send, in the send's transaction, with the payload
 * the feed's trigger writes for any other insert; a refused send writes none.
 *
 * The trusted `createMessage` stays for hosts that check elsewhere.
 *
 * With a `nonce` the send is exactly-once: a retry with the same channel,
 * author and nonce within 24 hours returns the original message and writes
 * nothing (checked before the permission rule runs again, so a retry after a
 * lost connection gets the message even when the permission was revoked since).
 *
 * @throws {InvalidInputError} for a malformed id, invalid content or mentions,
 *   or a `reply_to` that is not a live message of the same channel.
 * @throws {PermissionDeniedError} (reason `'missing_permission'`, `permission`
 *   the missing flag: `VIEW_CHANNEL` also for an unknown channel or a DM the
 *   author is not in, `SEND_MESSAGES`, `MENTION_EVERYONE` for `everyone: true`
 *   or the `@everyone` role in `role_ids`).
 * @throws {ConflictError} (reason `'blocked'`) in a DM when either user blocks the other.
 * @example
 * ```ts
 * const message = await sendMessage(db, { channel_id, author_id: user.id, content: 'hi' })
 * await publishChannelEvent(redis, channel_id, { type: 'message_created', message })
 * ```
 */
export async function sendMessage(db: Kysely<DB>, input: SendMessageInput): Promise<Message> {
  return sendWith(db, input, statementRoute)
}

/**
 * {@link sendMessage} with the given statements (its own, or the ones of
 * bench/send-trigger-route.ts): the route is the caller's argument, no module state.
 */
export async function sendWith(
  db: Kysely<DB>,
  input: SendMessageInput,
  statements: SendStatements,
): Promise<Message> {
  assertObject(input, 'input')
  assertUuid(input.channel_id, 'channel_id')
  assertUuid(input.author_id, 'author_id')
  assertOptionalUuid(input.reply_to, 'reply_to')
  assertText(input.content, 'content', CONTENT)
  const mentions = validateMentions(input.mentions) ?? {
    user_ids: [],
    role_ids: [],
    everyone: false,
  }
  const nonce = validNonce(input.nonce)
  const params = {
    ...mentions,
    id: newId(),
    channel_id: input.channel_id,
    author_id: input.author_id,
    reply_to: input.reply_to ?? null,
    content: input.content,
    nonce,
  }
  // The author's stored permissions first: one statement that inserts when they
  // decide; else (first send, a version changed, a bit missing, a bad reference)
  // the full rule decides, reports why, and refreshes them.
  const need =
    Permissions.VIEW_CHANNEL |
    Permissions.SEND_MESSAGES |
    (mentions.everyone ? Permissions.MENTION_EVERYONE : 0n)
  const noMentions =
    params.user_ids.length === 0 && params.role_ids.length === 0 && !params.everyone
  // A reply without mentions has a statement of its own: it checks the reply
  // target only, and locks no mention or role tables (docs/architecture.md,
  // "Locks per send").
  const shape = !noMentions ? 'refs' : params.reply_to === null ? 'plain' : 'reply'
  const cached = await statements.cached[
    nonce === null ? shape : (`${shape}_nonce` as const)
  ].executeTakeFirst(db, { ...params, need: `${need}` })
  if (cached !== undefined) return cached
  const key =
    nonce === null
      ? undefined
      : { channel_id: params.channel_id, author_id: params.author_id, nonce }
  if (key) {
    // nothing inserted: an earlier send with this nonce, or the stored permissions did not decide
    const prior = await priorMessage(db, key)
    if (prior !== undefined && prior !== 'forgotten') return prior
  }
  for (let attempt = 1; attempt <= SEND_ATTEMPTS; attempt++) {
    const row = (await statements.full[key ? 'nonce' : 'plain'].executeTakeFirst(
      db,
      params,
    )) as SendRow
    if (row.stale) continue
    if (row.verdict !== 'ok') throw refusal(row.verdict)
    if (row.slowed) {
      // A send with this nonce that already went through is answered, not slowed.
      if (key) {
        const prior = await priorMessage(db, key)
        if (prior !== undefined && prior !== 'forgotten') return prior
      }
      const wait = await slowmodeWait.executeTakeFirst(db, {
        channel_id: params.channel_id,
        author_id: params.author_id,
      })
      throw new RateLimitedError('slowmode: this member sent in this channel too recently', {
        retry_after_ms: Math.max(1, wait?.ms ?? 1),
      })
    }
    if (row.id === null && key && row.reply_ok && row.roles_ok && row.users_ok) {
      // allowed and valid, yet nothing inserted: a concurrent send with this nonce won
      const prior = await priorMessage(db, key)
      if (prior !== undefined && prior !== 'forgotten') return prior
      continue
    }
    if (row.id === null) {
      if (!row.roles_ok) {
        throw new InvalidInputError("mentions.role_ids must be roles of this channel's guild", {
          field: 'mentions.role_ids',
        })
      }
      if (!row.users_ok) {
        throw new InvalidInputError('mentions.user_ids must be existing users', {
          field: 'mentions.user_ids',
        })
      }
      throw new InvalidInputError('reply_to must be a live message of the same channel', {
        field: 'reply_to',
      })
    }
    const {
      verdict: _verdict,
      stale: _stale,
      slowed: _slowed,
      reply_ok: _reply,
      roles_ok: _roles,
      users_ok: _users,
      ...message
    } = row
    return message as Message
  }
  throw new DatabaseUnavailableError(
    'the permissions of this channel kept changing during the send; retry it',
    { sqlState: '40001' },
  )
}
