import { type Kysely, sql } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import { CheckViolationError } from '../errors/constraint-errors.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import { type ActingAs, PermissionDeniedError } from '../errors/permission-denied-error.ts'
import { hasFlagSql, memberChannelPermissionsSql } from '../permissions/actor-sql.ts'
import { Permissions } from '../permissions/permissions.ts'
import { inTransaction, prepareQuery, rawQuery } from '../sql/index.ts'
import { assertObject, assertUuid, defineFields, integer } from '../validation/index.ts'
import { writeAudit } from './internal.ts'
import { assertMessageActor } from './message-actor.ts'
import { type Message, messageColumns } from './messages.ts'

/**
 * The default pin cap of a channel (a guild's `max_pins_per_channel`, which
 * `updateGuild` sets from 1 to {@link MAX_PINS_CAP}; a DM's always).
 */
export const MAX_PINS_PER_CHANNEL = 50

/** The highest pin cap a guild may set (Discord's). */
export const MAX_PINS_CAP = 250

/** The per-channel pin counter's CHECK (0 to {@link MAX_PINS_CAP}; the guild's cap is a trigger's). */
export const pinCountFields = defineFields('channel_pin_counts', {
  pin_count: integer(0, MAX_PINS_CAP),
})

/**
 * `bool`: whether `actor` may pin and unpin in the channel `channelId` (an SQL
 * expression): `MANAGE_MESSAGES` in a guild channel, a participant in a DM.
 * NULL actor: a trusted call.
 */
/** What the pin statements return besides their outcome. */
interface PinChange {
  found: boolean
  allowed: boolean
  /** `null` in a DM (no audit log) and when there is no such message or pin. */
  guild_id: string | null
  channel_id: string | null
  author_id: string | null
}

const mayManagePinsSql = (actor: unknown, channelId: ReturnType<typeof sql>) => sql<boolean>`(
  ${actor}::uuid is null
  or ${hasFlagSql(memberChannelPermissionsSql(actor, channelId), Permissions.MANAGE_MESSAGES)}
  or exists (select 1 from dm_participants dp where dp.channel_id = ${channelId} and dp.user_id = ${actor}::uuid)
)`

// One statement. FOR SHARE on the message: a concurrent soft delete waits for
// this pin (and then unpins it in its trigger), or this pin waits for the
// delete and finds no live message. The 50-pin cap is the CHECK on the channel's
// counter row, which the insert trigger increments. It also returns what the
// audit entry names (guild_id is null in a DM, which has no audit log).
const insertPin = prepareQuery(
  'pins.insert',
  (db, p: { message_id: string; actor_id: string | null }) =>
    rawQuery(
      db,
      sql<PinChange & { pinned: boolean }>`with m as (
  select x.id, x.channel_id, x.author_id, c.guild_id
  from messages x join channels c on c.id = x.channel_id
  where x.id = ${p.message_id}::uuid and x.deleted_at is null
  for share of x
), allowed as (
  select ${mayManagePinsSql(p.actor_id, sql`m.channel_id`)} as ok from m
), ins as (
  insert into message_pins (message_id, channel_id, pinned_by)
  select m.id, m.channel_id, ${p.actor_id}::uuid from m where (select ok from allowed)
  on conflict (message_id) do nothing
  returning 1
)
select exists (select 1 from m) as found,
  coalesce((select ok from allowed), false) as allowed,
  exists (select 1 from ins) as pinned,
  (select guild_id from m) as guild_id,
  (select channel_id from m) as channel_id,
  (select author_id from m) as author_id`,
    ),
)

const deletePin = prepareQuery(
  'pins.delete',
  (db, p: { message_id: string; actor_id: string | null }) =>
    rawQuery(
      db,
      sql<PinChange & { unpinned: boolean }>`with p as (
  select x.message_id, x.channel_id, m.author_id, c.guild_id
  from message_pins x
  join messages m on m.id = x.message_id
  join channels c on c.id = x.channel_id
  where x.message_id = ${p.message_id}::uuid
), allowed as (
  select ${mayManagePinsSql(p.actor_id, sql`p.channel_id`)} as ok from p
), d as (
  delete from message_pins x where x.message_id = ${p.message_id}::uuid and (select ok from allowed)
  returning 1
)
select exists (select 1 from p) as found,
  coalesce((select ok from allowed), false) as allowed,
  exists (select 1 from d) as unpinned,
  (select guild_id from p) as guild_id,
  (select channel_id from p) as channel_id,
  (select author_id from p) as author_id`,
    ),
)

const pinnedColumns = messageColumns.map((c) => `m.${c}` as const)

const selectPinned = prepareQuery('pins.list_of_channel', (db, p: { channel_id: string }) =>
  db
    .selectFrom('message_pins as p')
    .innerJoin('messages as m', 'm.id', 'p.message_id')
    .select(pinnedColumns)
    .where('p.channel_id', '=', p.channel_id)
    .where('m.deleted_at', 'is', null)
    .orderBy('p.pinned_at', 'desc')
    .orderBy('p.message_id', 'desc'),
)

function refuse(): never {
  throw new PermissionDeniedError(
    'pinning needs MANAGE_MESSAGES in the channel (or being a DM participant)',
    { reason: 'missing_permission', permission: Permissions.MANAGE_MESSAGES },
  )
}

/**
 * Writes the audit entry of a pin change in a guild channel (a DM has no audit
 * log): target the message, `changes` its channel (`before`/`after` null on
 * the side without the pin) and its author; never its content.
 */
async function auditPin(
  trx: Kysely<DB>,
  as: ActingAs | undefined,
  action: 'message_pin' | 'message_unpin',
  message_id: string,
  row: PinChange,
): Promise<void> {
  if (row.guild_id === null) return
  const pinned = action === 'message_pin'
  await writeAudit(trx, as, {
    guild_id: row.guild_id,
    action,
    target_id: message_id,
    changes: {
      channel_id: {
        before: pinned ? null : row.channel_id,
        after: pinned ? row.channel_id : null,
      },
      author_id: { before: row.author_id, after: row.author_id },
    },
  })
}

/**
 * Pins a live message in its channel. With `as`, the actor must have
 * `MANAGE_MESSAGES` in the guild channel, or be a participant of the DM,
 * checked in the inserting statement; without it the call is trusted. At most
 * the guild's `max_pins_per_channel` pins per channel (default 50, up to 250;
 * 50 in a DM), enforced race-free on a counter row that concurrent pins queue on. A soft-deleted message leaves the pin list.
 *
 * In a guild channel a pin writes the audit entry `message_pin` (target: the
 * message; `changes`: `channel_id` and `author_id`, never the content; the
 * actor of `as`, `null` for a trusted call) in the pin's transaction; pinning
 * a pinned message writes nothing. A DM has no audit log.
 *
 * @returns `true` when pinned now, `false` when it already was.
 * @throws {InvalidInputError} for a malformed id or actor.
 * @throws {NotFoundError} when there is no live message with that id.
 * @throws {PermissionDeniedError} when the actor may not; nothing is written.
 * @throws {ConflictError} (reason `'pin_limit'`) when the channel is at its cap.
 * @example
 * ```ts
 * await pinMessage(db, { message_id }, { actor_id: moderatorId, reason: 'rules' })
 * ```
 */
export async function pinMessage(
  db: Kysely<DB>,
  input: { message_id: string },
  as?: ActingAs,
): Promise<boolean> {
  assertObject(input, 'input')
  assertUuid(input.message_id, 'message_id')
  const actor = as === undefined ? undefined : assertMessageActor(as)
  const { message_id } = input
  return inTransaction(db, async (trx) => {
    const row = await insertPin
      .executeTakeFirst(trx, { message_id, actor_id: actor?.actor_id ?? null })
      .catch((error: unknown) => {
        if (
          error instanceof CheckViolationError &&
          (error.constraint === 'channel_pin_counts_pin_limit' ||
            error.constraint === 'channel_pin_counts_pin_range')
        ) {
          throw new ConflictError("the channel is at its guild's pin cap", {
            reason: 'pin_limit',
            cause: error,
          })
        }
        throw error
      })
    if (!row?.found) throw new NotFoundError('message not found', { entity: 'message' })
    if (!row.allowed) refuse()
    if (row.pinned) await auditPin(trx, actor, 'message_pin', message_id, row)
    return row.pinned
  })
}

/**
 * Unpins a message. With `as`, the same check as {@link pinMessage}. In a
 * guild channel an unpin writes the audit entry `message_unpin` (as
 * {@link pinMessage} writes `message_pin`) in the unpin's transaction;
 * unpinning a message that is not pinned writes nothing.
 *
 * @returns whether it was pinned.
 * @throws {InvalidInputError} for a malformed id or actor.
 * @throws {PermissionDeniedError} when the actor may not; nothing is changed.
 * @example
 * ```ts
 * await unpinMessage(db, { message_id }, { actor_id: moderatorId })
 * ```
 */
export async function unpinMessage(
  db: Kysely<DB>,
  input: { message_id: string },
  as?: ActingAs,
): Promise<boolean> {
  assertObject(input, 'input')
  assertUuid(input.message_id, 'message_id')
  const actor = as === undefined ? undefined : assertMessageActor(as)
  const { message_id } = input
  return inTransaction(db, async (trx) => {
    const row = await deletePin.executeTakeFirst(trx, {
      message_id,
      actor_id: actor?.actor_id ?? null,
    })
    if (!row?.found) return false
    if (!row.allowed) refuse()
    if (row.unpinned) await auditPin(trx, actor, 'message_unpin', message_id, row)
    return row.unpinned
  })
}

/**
 * A channel's pinned live messages, the most recently pinned first (at most
 * 50, one query).
 *
 * @throws {InvalidInputError} when `channel_id` is not a UUID.
 * @example
 * ```ts
 * const pins = await listPinnedMessages(db, channel_id)
 * ```
 */
export async function listPinnedMessages(db: Kysely<DB>, channel_id: string): Promise<Message[]> {
  assertUuid(channel_id, 'channel_id')
  return selectPinned.execute(db, { channel_id }) as Promise<Message[]>
}
