import { type Kysely, sql } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import { CheckViolationError } from '../errors/constraint-errors.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import { type ActingAs, PermissionDeniedError } from '../errors/permission-denied-error.ts'
import { hasFlagSql, memberChannelPermissionsSql } from '../permissions/actor-sql.ts'
import { authorize } from '../permissions/authorize.ts'
import { Permissions } from '../permissions/permissions.ts'
import { inTransaction, prepareQuery, rawQuery } from '../sql/index.ts'
import { normalizeEmoji } from '../validation/emoji.ts'

export { normalizeEmoji }

import {
  assertObject,
  assertOptionalUuid,
  assertUuid,
  assertUuidArray,
  defineFields,
  integer,
  pageLimit,
  text,
} from '../validation/index.ts'
import { writeAudit } from './internal.ts'
import { assertMessageActor } from './message-actor.ts'
import { type User, userColumns } from './users.ts'

/** At most this many distinct emojis on one message (CHECK `message_reaction_summaries_emoji_limit`). */
export const MAX_REACTION_EMOJIS = 20

/** Field rules of the reaction tables' CHECKs (the library keeps the counters). */
export const reactionFields = defineFields('message_reactions', { emoji: text(1, 100) })
/** The per-emoji counter's CHECK (`count >= 0`). */
export const reactionCountFields = defineFields('message_reaction_counts', { count: integer(0) })
/** The per-message distinct-emoji counter's CHECK (0 to {@link MAX_REACTION_EMOJIS}). */
export const reactionSummaryFields = defineFields('message_reaction_summaries', {
  emoji_count: integer(0, MAX_REACTION_EMOJIS),
})

/** One emoji's reactions on one message, as {@link listReactions} returns them. */
export interface MessageReactionSummary {
  message_id: string
  /** A Unicode emoji, or a custom emoji reference `name:id`. */
  emoji: string
  /** How many users reacted with it (exact). */
  count: number
  /** Whether the viewer is one of them (false without a `viewer_id`). */
  me: boolean
}

/** At most this many message ids per {@link listReactions} call. */
const REACTION_PAGE_MAX_MESSAGES = 200
const REACTION_USERS_DEFAULT = 25
const REACTION_USERS_MAX = 100

// One statement: the message must be live; ON CONFLICT makes it idempotent.
// The counts, and the 20-emoji cap, are kept by the AFTER INSERT trigger.
const insertReaction = prepareQuery(
  'reactions.insert',
  (db, p: { message_id: string; emoji: string; user_id: string }) =>
    rawQuery(
      db,
      sql<{ found: boolean; added: boolean }>`with m as (
  select id from messages where id = ${p.message_id}::uuid and deleted_at is null
), ins as (
  insert into message_reactions (message_id, emoji, user_id)
  select m.id, ${p.emoji}::text, ${p.user_id}::uuid from m
  on conflict (message_id, emoji, user_id) do nothing
  returning 1
)
select exists (select 1 from m) as found, exists (select 1 from ins) as added`,
    ),
)

// A custom emoji reaction, step 1: lock what the decision reads, so that it
// cannot change before the insert commits: the emoji (FOR SHARE: an update or
// delete of the emoji waits, and a reaction waits for one in flight), the
// reactor's membership and role assignments in the emoji's guild (FOR KEY
// SHARE: a kick or a role removal waits). Also reads where the message is.
const lockCustomEmoji = prepareQuery(
  'reactions.lock_custom_emoji',
  (db, p: { message_id: string; emoji_id: string; user_id: string }) =>
    rawQuery(
      db,
      sql<{
        emoji_guild_id: string | null
        member: boolean
        roles_locked: number
        found: boolean
        guild_id: string | null
        channel_id: string | null
      }>`with e as (
  select id, guild_id from guild_emojis where id = ${p.emoji_id}::uuid for share
), gm as (
  select 1 from guild_members
  where guild_id = (select guild_id from e) and user_id = ${p.user_id}::uuid
  for key share
), mr as (
  select 1 from member_roles
  where guild_id = (select guild_id from e) and user_id = ${p.user_id}::uuid
  for key share
), m as (
  select x.channel_id, c.guild_id
  from messages x join channels c on c.id = x.channel_id
  where x.id = ${p.message_id}::uuid and x.deleted_at is null
)
select (select guild_id from e) as emoji_guild_id,
  exists (select 1 from gm) as member,
  (select count(*) from mr)::int4 as roles_locked,
  exists (select 1 from m) as found,
  (select guild_id from m) as guild_id,
  (select channel_id from m) as channel_id`,
    ),
)

// Step 2, on a snapshot taken after the locks: the emoji must have that name,
// the reactor must be a member of its guild and, when it is restricted, hold
// one of its roles (the default role: every member); then the insert.
const insertCustomReaction = prepareQuery(
  'reactions.insert_custom',
  (db, p: { message_id: string; emoji: string; name: string; emoji_id: string; user_id: string }) =>
    rawQuery(
      db,
      sql<{
        found: boolean
        named: boolean
        member: boolean
        allowed: boolean
        added: boolean
      }>`with m as (
  select id from messages where id = ${p.message_id}::uuid and deleted_at is null
), e as (
  select id, guild_id, restricted from guild_emojis
  where id = ${p.emoji_id}::uuid and name = ${p.name}::text
), member as (
  select exists (
    select 1 from guild_members gm join e on gm.guild_id = e.guild_id
    where gm.user_id = ${p.user_id}::uuid
  ) as ok
), allowed as (
  select coalesce((select not e.restricted from e), false) or exists (
    select 1 from guild_emoji_roles er join roles r on r.id = er.role_id
    where er.emoji_id = ${p.emoji_id}::uuid
      and (r.is_default or exists (
        select 1 from member_roles mr
        where mr.guild_id = er.guild_id and mr.user_id = ${p.user_id}::uuid and mr.role_id = er.role_id))
  ) as ok
), ins as (
  insert into message_reactions (message_id, emoji, user_id, emoji_id)
  select m.id, ${p.emoji}::text, ${p.user_id}::uuid, e.id from m, e
  where (select ok from member) and (select ok from allowed)
  on conflict (message_id, emoji, user_id) do nothing
  returning 1
)
select exists (select 1 from m) as found,
  exists (select 1 from e) as named,
  (select ok from member) as member,
  (select ok from allowed) as allowed,
  exists (select 1 from ins) as added`,
    ),
)

const deleteReaction = prepareQuery(
  'reactions.delete',
  (db, p: { message_id: string; emoji: string; user_id: string }) =>
    db
      .deleteFrom('message_reactions')
      .where('message_id', '=', p.message_id)
      .where('emoji', '=', p.emoji)
      .where('user_id', '=', p.user_id),
)

// One statement. With an actor, its MANAGE_MESSAGES in the message's channel,
// checked in the statement that deletes (never in a DM: nobody manages a DM);
// a NULL actor is a trusted call. It also returns what the audit entry names
// (guild_id is null in a DM, which has no audit log).
const deleteReactions = prepareQuery(
  'reactions.delete_of_message',
  (db, p: { message_id: string; emoji: string | null; actor_id: string | null }) =>
    rawQuery(
      db,
      sql<{
        found: boolean
        allowed: boolean
        removed: number
        guild_id: string | null
        channel_id: string | null
      }>`with m as (
  select x.id, x.channel_id, c.guild_id
  from messages x join channels c on c.id = x.channel_id
  where x.id = ${p.message_id}::uuid
), allowed as (
  select (
    ${p.actor_id}::uuid is null
    or ${hasFlagSql(memberChannelPermissionsSql(p.actor_id, sql`m.channel_id`), Permissions.MANAGE_MESSAGES)}
  ) as ok
  from m
), d as (
  delete from message_reactions r
  where r.message_id = ${p.message_id}::uuid
    and (${p.emoji}::text is null or r.emoji = ${p.emoji}::text)
    and coalesce((select ok from allowed), false)
  returning 1
)
select exists (select 1 from m) as found,
  coalesce((select ok from allowed), false) as allowed,
  (select count(*) from d)::int4 as removed,
  (select guild_id from m) as guild_id,
  (select channel_id from m) as channel_id`,
    ),
)

const selectReactions = prepareQuery(
  'reactions.counts_of_messages',
  (db, p: { message_ids: string[]; viewer_id: string | null }) =>
    rawQuery(
      db,
      sql<MessageReactionSummary>`select c.message_id, c.emoji, c.count,
  (${p.viewer_id}::uuid is not null and exists (
    select 1 from message_reactions r
    where r.message_id = c.message_id and r.emoji = c.emoji and r.user_id = ${p.viewer_id}::uuid
  )) as me
from message_reaction_counts c
where c.message_id = any(${p.message_ids}::uuid[])
order by c.message_id desc, c.first_reacted_at, c.emoji`,
    ),
)

const reactionUserColumns = userColumns.map((c) => `u.${c}` as const)

const selectReactionUsers = prepareQuery(
  'reactions.users_of_emoji',
  (db, p: { message_id: string; emoji: string; after: string | null; limit: number }) =>
    db
      .selectFrom('message_reactions as r')
      .innerJoin('users as u', 'u.id', 'r.user_id')
      .select(reactionUserColumns)
      .where('r.message_id', '=', p.message_id)
      .where('r.emoji', '=', p.emoji)
      .where(sql<boolean>`(${p.after}::uuid is null or r.user_id > ${p.after}::uuid)`)
      .orderBy('r.user_id')
      .limit(p.limit),
)

/** Maps the cap's CHECK violation to `ConflictError('reaction_limit')`. */
function reactionLimit(error: unknown): never {
  if (
    error instanceof CheckViolationError &&
    error.constraint === 'message_reaction_summaries_emoji_limit'
  ) {
    throw new ConflictError(`a message holds at most ${MAX_REACTION_EMOJIS} distinct emojis`, {
      reason: 'reaction_limit',
      cause: error,
    })
  }
  throw error
}

/** Input of {@link addReaction} and {@link removeReaction}. */
export interface ReactionInput {
  message_id: string
  user_id: string
  /**
   * A Unicode emoji (`'👍🏽'`) or a custom emoji reference (`'party:<id>'`,
   * `'<:party:<id>>'`); every spelling of one emoji is the same reaction (its
   * canonical form, see `normalizeEmoji`: `'👍\uFE0F'` is `'👍'`,
   * `'<a:party:<ID>>'` is `'party:<id>'`). {@link addReaction} takes a custom
   * reference only when `<id>` is an existing guild emoji's (UUID) and `party`
   * its current name; removing and listing also take the numeric ids of
   * reactions stored before migration 0015.
   */
  emoji: string
}

function assertReaction(input: unknown): { message_id: string; user_id: string; emoji: string } {
  assertObject(input, 'input')
  assertUuid(input.message_id, 'message_id')
  assertUuid(input.user_id, 'user_id')
  return {
    message_id: input.message_id,
    user_id: input.user_id,
    emoji: normalizeEmoji(input.emoji),
  }
}

/** A canonical custom reference `name:id`: its parts; `null` for a Unicode emoji. */
function customEmoji(emoji: string): { name: string; id: string } | null {
  const match = /^([A-Za-z0-9_]{2,32}):([0-9a-f-]+)$/.exec(emoji)
  if (!match) return null
  const id = match[2] as string
  if (/^[0-9]+$/.test(id)) {
    throw new InvalidInputError(
      'a custom emoji reaction must name a guild emoji (name:<uuid>); a numeric id names none',
      { field: 'emoji' },
    )
  }
  return { name: match[1] as string, id }
}

/** Adds a custom emoji reaction: the checks of {@link addReaction}, locked, then the insert. */
async function addCustomReaction(
  db: Kysely<DB>,
  p: { message_id: string; user_id: string; emoji: string },
  custom: { name: string; id: string },
): Promise<boolean> {
  return inTransaction(db, async (trx) => {
    const key = { message_id: p.message_id, emoji_id: custom.id, user_id: p.user_id }
    const where = await lockCustomEmoji.executeTakeFirst(trx, key)
    if (!where?.found) throw new NotFoundError('message not found', { entity: 'message' })
    if (where.emoji_guild_id === null) throw noSuchEmoji()
    if (!where.member) throw notMember()
    if (where.guild_id !== null && where.guild_id !== where.emoji_guild_id) {
      await authorize(trx, {
        guild_id: where.guild_id,
        actor_id: p.user_id,
        permission: Permissions.USE_EXTERNAL_EMOJIS,
        channel_id: where.channel_id ?? undefined,
      })
    }
    const row = await insertCustomReaction
      .executeTakeFirst(trx, { ...key, emoji: p.emoji, name: custom.name })
      .catch(reactionLimit)
    if (!row?.found) throw new NotFoundError('message not found', { entity: 'message' })
    if (!row.named) throw noSuchEmoji()
    if (!row.member) throw notMember()
    if (!row.allowed) {
      throw new PermissionDeniedError('the emoji is restricted to roles the user does not hold', {
        reason: 'emoji_role',
      })
    }
    return row.added
  })
}

function notMember(): PermissionDeniedError {
  return new PermissionDeniedError("only members of an emoji's guild may use it", {
    reason: 'not_member',
  })
}

function noSuchEmoji(): NotFoundError {
  return new NotFoundError('no custom emoji has that name and id', { entity: 'emoji' })
}

/**
 * Adds a user's reaction to a live message. Idempotent: reacting again with
 * the same emoji changes nothing. The per-emoji counts and the cap of 20
 * distinct emojis per message are kept by triggers that queue concurrent
 * writers of one message, so the cap holds under any concurrency.
 *
 * A Unicode emoji is one statement. A custom emoji (`name:<uuid>`, see
 * {@link createGuildEmoji}) must name an existing emoji by its current name
 * and id; the user must be a member of the emoji's guild; from another guild
 * (or in a DM) it needs `USE_EXTERNAL_EMOJIS` in the message's channel (not in
 * a DM, which has no permissions); a restricted emoji needs one of its roles
 * (owners and administrators too, as in Discord). The checks hold their rows
 * locked until the insert commits, so a concurrent delete, rename, role or
 * membership change is either seen or waits.
 *
 * @returns `true` when the reaction was added, `false` when it was already there.
 * @throws {InvalidInputError} for a malformed id or emoji (see `normalizeEmoji`),
 *   or a custom reference with a numeric id (it names no guildstore emoji).
 * @throws {NotFoundError} when there is no live message with that id (entity
 *   `'message'`), or no custom emoji with that name and id (entity `'emoji'`).
 * @throws {PermissionDeniedError} for a custom emoji the user may not use
 *   (reason `'not_member'` of its guild or of the message's guild,
 *   `'missing_permission'` (`USE_EXTERNAL_EMOJIS`), `'emoji_role'`); nothing is written.
 * @throws {ConflictError} (reason `'reaction_limit'`) when the emoji would be the
 *   message's 21st distinct one; nothing is written.
 * @throws {ForeignKeyViolationError} when the user does not exist.
 * @example
 * ```ts
 * const added = await addReaction(db, { message_id, user_id, emoji: '👍' })
 * ```
 */
export async function addReaction(db: Kysely<DB>, input: ReactionInput): Promise<boolean> {
  const p = assertReaction(input)
  const custom = customEmoji(p.emoji)
  if (custom) return addCustomReaction(db, p, custom)
  const row = await insertReaction.executeTakeFirst(db, p).catch(reactionLimit)
  if (!row?.found) throw new NotFoundError('message not found', { entity: 'message' })
  return row.added
}

/**
 * Removes a user's reaction. The counts follow in the same statement.
 *
 * @returns whether there was such a reaction.
 * @throws {InvalidInputError} for a malformed id or emoji.
 * @example
 * ```ts
 * await removeReaction(db, { message_id, user_id, emoji: '👍' })
 * ```
 */
export async function removeReaction(db: Kysely<DB>, input: ReactionInput): Promise<boolean> {
  const p = assertReaction(input)
  return (await deleteReaction.executeAffected(db, p)) > 0
}

/** Input of {@link removeReactions}. */
export interface RemoveReactionsInput {
  message_id: string
  /** Only this emoji's reactions; all of the message's when absent. */
  emoji?: string | null | undefined
}

/**
 * Removes every reaction of a message, or every reaction with one emoji.
 * With `as`, the actor must have `MANAGE_MESSAGES` in the message's guild
 * channel (checked in the deleting statement; in a DM nobody may); without it
 * the call is trusted.
 *
 * In a guild channel, when it removed at least one reaction, it writes the
 * audit entry `reactions_remove` in the same transaction (target: the message;
 * `changes`: `channel_id`, `emoji` (`null`: every emoji) and `count` from the
 * number removed to 0; the actor of `as`, `null` for a trusted call). A DM has
 * no audit log.
 *
 * @returns the number of reactions removed (0 when the message does not exist).
 * @throws {InvalidInputError} for a malformed id, emoji or actor.
 * @throws {PermissionDeniedError} (reason `'missing_permission'`) when the actor
 *   may not; nothing is removed.
 * @example
 * ```ts
 * const n = await removeReactions(db, { message_id, emoji: '👎' }, { actor_id: moderatorId })
 * ```
 */
export async function removeReactions(
  db: Kysely<DB>,
  input: RemoveReactionsInput,
  as?: ActingAs,
): Promise<number> {
  assertObject(input, 'input')
  assertUuid(input.message_id, 'message_id')
  const emoji = input.emoji == null ? null : normalizeEmoji(input.emoji)
  const actor = as === undefined ? undefined : assertMessageActor(as)
  const { message_id } = input
  return inTransaction(db, async (trx) => {
    const row = await deleteReactions.executeTakeFirst(trx, {
      message_id,
      emoji,
      actor_id: actor?.actor_id ?? null,
    })
    if (!row?.found) return 0
    if (!row.allowed) {
      throw new PermissionDeniedError('removing reactions needs MANAGE_MESSAGES in the channel', {
        reason: 'missing_permission',
        permission: Permissions.MANAGE_MESSAGES,
      })
    }
    if (row.removed > 0 && row.guild_id !== null) {
      await writeAudit(trx, actor, {
        guild_id: row.guild_id,
        action: 'reactions_remove',
        target_id: message_id,
        changes: {
          channel_id: { before: row.channel_id, after: row.channel_id },
          emoji: { before: emoji, after: emoji },
          count: { before: row.removed, after: 0 },
        },
      })
    }
    return row.removed
  })
}

/** Input of {@link listReactions}. */
export interface ListReactionsInput {
  /** The messages of a page (at most 200 ids). */
  message_ids: string[]
  /** Whose reactions set `me`; `me` is `false` everywhere without it. */
  viewer_id?: string | null | undefined
}

/**
 * The reactions of a page of messages, in one query: per message and emoji
 * the exact count and whether the viewer reacted. Rows are grouped by message
 * (newest message first), each message's emojis in the order they were first
 * used. Messages without reactions have no rows.
 *
 * @throws {InvalidInputError} for a malformed id or more than 200 message ids.
 * @example
 * ```ts
 * const page = await listChannelMessages(db, channel_id)
 * const reactions = await listReactions(db, { message_ids: page.map((m) => m.id), viewer_id: me })
 * ```
 */
export async function listReactions(
  db: Kysely<DB>,
  input: ListReactionsInput,
): Promise<MessageReactionSummary[]> {
  assertObject(input, 'input')
  assertUuidArray(input.message_ids, 'message_ids', REACTION_PAGE_MAX_MESSAGES)
  assertOptionalUuid(input.viewer_id, 'viewer_id')
  if (input.message_ids.length === 0) return []
  return selectReactions.execute(db, {
    message_ids: input.message_ids,
    viewer_id: input.viewer_id ?? null,
  })
}

/** Input of {@link listReactionUsers}. */
export interface ListReactionUsersInput {
  message_id: string
  emoji: string
  /** Keyset: the last user id of the previous page. */
  after?: string | null | undefined
  /** Page size, 1 to 100; default 25. */
  limit?: number | undefined
}

/**
 * Who reacted to a message with an emoji: a keyset page of users ordered by
 * user id (pass the last id as `after` for the next page).
 *
 * @throws {InvalidInputError} for a malformed id or emoji, or a limit outside 1…100.
 * @example
 * ```ts
 * const users = await listReactionUsers(db, { message_id, emoji: '👍', limit: 25 })
 * const next = await listReactionUsers(db, { message_id, emoji: '👍', after: users.at(-1)?.id })
 * ```
 */
export async function listReactionUsers(
  db: Kysely<DB>,
  input: ListReactionUsersInput,
): Promise<User[]> {
  assertObject(input, 'input')
  assertUuid(input.message_id, 'message_id')
  const emoji = normalizeEmoji(input.emoji)
  assertOptionalUuid(input.after, 'after')
  const limit = pageLimit(input.limit, REACTION_USERS_DEFAULT, REACTION_USERS_MAX)
  return selectReactionUsers.execute(db, {
    message_id: input.message_id,
    emoji,
    after: input.after ?? null,
    limit,
  }) as Promise<User[]>
}
