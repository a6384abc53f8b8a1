/**
 * Internals shared by the administrative repositories: the acting-as
 * validation, the audit writer, shared locks. Not re-exported from the package.
 */
import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { DatabaseUnavailableError } from '../errors/database-error.ts'
import type { ActingAs } from '../errors/permission-denied-error.ts'
import { newId } from '../ids/new-id.ts'
import { inTransaction, prepareQuery } from '../sql/index.ts'
import { assertObject, assertOptionalText, assertUuid } from '../validation/index.ts'
import { type AuditAction, auditLogFields } from './audit-log.ts'

/** Length rule of an actor's `reason` (CHECK `audit_log_reason_length`). */
export const REASON = auditLogFields.reason

const insertAudit = prepareQuery(
  'audit_log.insert',
  (
    db,
    p: {
      id: string
      guild_id: string
      actor_id: string | null
      action: string
      target_id: string | null
      changes: string
      reason: string | null
    },
  ) =>
    db.insertInto('audit_log').values({
      id: p.id,
      guild_id: p.guild_id,
      actor_id: p.actor_id,
      action: p.action,
      target_id: p.target_id,
      changes: sql`${p.changes}::jsonb`,
      reason: p.reason,
    }),
)

/**
 * Locks a guild channel against overwrite changes and actor checks
 * (FOR NO KEY UPDATE: message inserts, whose foreign key takes KEY SHARE, go on).
 */
export const lockChannelForUpdate = prepareQuery(
  'channels.lock_for_overwrites',
  (db, p: { id: string }) =>
    db
      .selectFrom('channels')
      .select(['id', 'guild_id'])
      .where('id', '=', p.id)
      .where('type', '<>', 'dm')
      .forNoKeyUpdate(),
)

/**
 * Locks a guild channel (a DM's is none) with {@link lockChannelForUpdate},
 * for a change of its members or overwrites; `undefined` when there is none.
 */
export async function lockChannelOfGuild(
  trx: Kysely<DB>,
  id: string,
): Promise<{ guild_id: string } | undefined> {
  const row = await lockChannelForUpdate.executeTakeFirst(trx, { id })
  return row?.guild_id ? { guild_id: row.guild_id } : undefined
}

// The guild row FOR SHARE, first: the lock order of every writer that touches
// a guild and a membership (transferGuildOwnership locks the guild, then the
// new owner's membership), so a removal never deadlocks with a transfer.
const lockGuildShared = prepareQuery('guilds.lock_shared', (db, p: { guild_id: string }) =>
  db.selectFrom('guilds').select('id').where('id', '=', p.guild_id).forShare(),
)

// The guild's channels, in id order (FOR NO KEY UPDATE: message inserts, whose
// foreign key takes KEY SHARE, go on). Removing a member bumps every channel of
// the guild (migration 0006), and writers that hang on a membership take their
// channel first (addChannelMember, setChannelOverwrite): taking the channels
// before the membership keeps one order, channel then membership, for all of them.
const lockGuildChannels = prepareQuery(
  'channels.lock_guild_channels',
  (db, p: { guild_id: string }) =>
    db
      .selectFrom('channels')
      .select('id')
      .where('guild_id', '=', p.guild_id)
      // Threads after the other channels, each in id order: the order
      // guildstore_bump_channels locks in (migration 0021).
      .orderBy(sql`auto_archive_minutes is not null`)
      .orderBy('id')
      .forNoKeyUpdate(),
)

const lockMembershipRow = prepareQuery(
  'guild_members.lock_for_delete',
  (db, p: { guild_id: string; user_id: string }) =>
    db
      .selectFrom('guild_members')
      .select('user_id')
      .where('guild_id', '=', p.guild_id)
      .where('user_id', '=', p.user_id)
      .forUpdate(),
)

/**
 * Locks the guild (FOR SHARE), its channels (in id order) and then the
 * membership (FOR UPDATE) before the membership is deleted (kick, ban): writes
 * that hang on the membership (role grants, overwrites, channel memberships:
 * FOR KEY SHARE) finish first, so the deleting statement, which comes next
 * with a fresh snapshot, sees and removes what they wrote; later ones find no
 * member. The channels come before the membership because the deletion bumps
 * them (their access version, migration 0006) and channel writers lock the
 * channel before the membership.
 */
export async function lockMembership(
  trx: Kysely<DB>,
  key: { guild_id: string; user_id: string },
): Promise<void> {
  await lockGuildShared.execute(trx, { guild_id: key.guild_id })
  await lockGuildChannels.execute(trx, { guild_id: key.guild_id })
  await lockMembershipRow.execute(trx, key)
}

// One statement: lock the guild row (FOR SHARE, so a concurrent ownership
// transfer is serialized with this removal and the owner read is current),
// refuse the owner, delete the membership. Role assignments, channel
// overwrites and private-channel memberships of the member go by cascade:
// channel_members (guild_id, user_id) → guild_members ON DELETE CASCADE
// (migration 0002) runs on a fresh snapshot after any concurrent
// addChannelMember committed, so none can be left behind (a deleting CTE here
// worked on the statement's snapshot and missed them: issue 11, item 1).
export const deleteMember = prepareQuery(
  'guild_members.delete',
  (db, p: { guild_id: string; user_id: string }) =>
    db
      .with('g', (db) =>
        db.selectFrom('guilds').select('owner_id').where('id', '=', p.guild_id).forShare(),
      )
      .with('d', (db) =>
        db
          .deleteFrom('guild_members')
          .where('guild_id', '=', p.guild_id)
          .where('user_id', '=', p.user_id)
          .where('user_id', '<>', (eb) => eb.selectFrom('g').select('g.owner_id'))
          .returning('user_id'),
      )
      .selectNoFrom((eb) => [
        eb.selectFrom('g').select('g.owner_id').as('owner_id'),
        eb.exists(eb.selectFrom('d').select('d.user_id')).as('deleted'),
      ]),
)

/**
 * Checks an optional {@link ActingAs}: an object with a UUID `actor_id` and an
 * optional `reason` of 1 to 512 characters.
 *
 * @throws {InvalidInputError} when it is not.
 */
export function assertActingAs(as: unknown): asserts as is ActingAs | undefined {
  if (as === undefined) return
  assertObject(as, 'as')
  assertUuid(as.actor_id, 'as.actor_id')
  assertOptionalText(as.reason, 'as.reason', REASON)
}

type AuditValue = string | number | boolean | bigint | Date | null | undefined

/** A field's value as the audit log stores it: 64-bit integers and dates as strings. */
function jsonValue(value: AuditValue): string | number | boolean | null {
  if (value === undefined || value === null) return null
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Date) return value.toISOString()
  return value
}

/**
 * The `changes` of an entry: `{ field: { before, after } }` for each listed
 * field whose value differs (a created row has `before: null`, a deleted one
 * `after: null`). Only the listed fields: callers list no secret.
 */
export function auditChanges(
  before: Record<string, unknown> | null | undefined,
  after: Record<string, unknown> | null | undefined,
  fields: readonly string[],
): Record<string, { before: unknown; after: unknown }> {
  const changes: Record<string, { before: unknown; after: unknown }> = {}
  for (const field of fields) {
    const b = jsonValue((before?.[field] ?? null) as AuditValue)
    const a = jsonValue((after?.[field] ?? null) as AuditValue)
    if (b !== a) changes[field] = { before: b, after: a }
  }
  return changes
}

/** One entry to write with {@link writeAudit}. */
export interface AuditWrite {
  guild_id: string
  action: AuditAction
  target_id: string | null
  changes: Record<string, { before: unknown; after: unknown }>
  /** Reason kept on the entry: the actor's, else this one (e.g. a ban's reason). */
  reason?: string | null | undefined
}

/**
 * Writes an audit entry in the caller's transaction (`trx`), naming the actor
 * of `as` (none for a trusted call).
 */
export async function writeAudit(
  trx: Kysely<DB>,
  as: ActingAs | undefined,
  entry: AuditWrite,
): Promise<void> {
  await insertAudit.execute(trx, {
    id: newId(),
    guild_id: entry.guild_id,
    actor_id: as?.actor_id ?? null,
    action: entry.action,
    target_id: entry.target_id,
    changes: JSON.stringify(entry.changes),
    reason: as?.reason ?? entry.reason ?? null,
  })
}

/** How many times {@link inRetriedTransaction} runs a transaction a deadlock aborted. */
const DEADLOCK_ATTEMPTS = 5

/**
 * Runs `fn` in a transaction like `inTransaction`, and when PostgreSQL aborts
 * it as a deadlock victim (40P01) runs it again, up to 5 times: a kick or a ban
 * races with writes that lock the membership and the channel in other orders
 * (role grants, overwrites, channel adds, joins); the victim rolled back whole,
 * so running it again is safe. Inside a caller's transaction there is no retry
 * (the caller's transaction is aborted; the error is a retryable
 * `DatabaseUnavailableError`).
 */
export async function inRetriedTransaction<T>(
  db: Kysely<DB>,
  fn: (trx: Kysely<DB>) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await inTransaction(db, fn)
    } catch (error) {
      const deadlock = error instanceof DatabaseUnavailableError && error.sqlState === '40P01'
      if (!deadlock || db.isTransaction || attempt >= DEADLOCK_ATTEMPTS) throw error
    }
  }
}
