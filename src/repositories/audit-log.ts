import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import type { ActingAs } from '../errors/permission-denied-error.ts'
import { newId } from '../ids/new-id.ts'
import { prepareQuery } from '../sql/prepared-query.ts'
import type { AuditLogEntry } from '../types.ts'
import {
  assertObject,
  assertOneOf,
  assertOptionalText,
  assertOptionalUuid,
  assertUuid,
  pageLimit,
} from '../validation/validate.ts'

/**
 * Every action the audit log records, one per kind of administrative change.
 * `member_remove` is a trusted removal (no actor: e.g. the member left);
 * `member_kick` a removal on behalf of an actor.
 */
export const AUDIT_ACTIONS = [
  'guild_update',
  'owner_transfer',
  'channel_create',
  'channel_update',
  'channel_delete',
  'channel_member_add',
  'channel_member_remove',
  'overwrite_create',
  'overwrite_update',
  'overwrite_delete',
  'role_create',
  'role_update',
  'role_delete',
  'member_role_add',
  'member_role_remove',
  'member_remove',
  'member_kick',
  'member_ban',
  'member_unban',
  'invite_create',
  'invite_revoke',
  'message_delete',
] as const

/** An action of the audit log (see {@link AUDIT_ACTIONS}). */
export type AuditAction = (typeof AUDIT_ACTIONS)[number]

/** Default page size of {@link listAuditLog}. */
export const AUDIT_PAGE_DEFAULT = 50
/** Largest page size of {@link listAuditLog}. */
export const AUDIT_PAGE_MAX = 100

/** Above every UUID: the keyset start of a first (newest) page. */
const MAX_UUID = 'ffffffff-ffff-ffff-ffff-ffffffffffff'

/** Length rule of an actor's `reason` (CHECK `audit_log_reason_length`). */
export const REASON = { min: 1, max: 512 } as const

const auditColumns = [
  'id',
  'guild_id',
  'actor_id',
  'action',
  'target_id',
  'changes',
  'reason',
  'created_at',
] as const

const insertAudit = prepareQuery(
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

const selectAuditPage = prepareQuery(
  (
    db,
    p: {
      guild_id: string
      before: string
      limit: number
      action: string | null
      actor_id: string | null
    },
  ) =>
    db
      .selectFrom('audit_log')
      .select(auditColumns)
      .where('guild_id', '=', p.guild_id)
      .where('id', '<', p.before)
      .where(sql<boolean>`(${p.action}::text is null or action = ${p.action}::text)`)
      .where(sql<boolean>`(${p.actor_id}::uuid is null or actor_id = ${p.actor_id}::uuid)`)
      .orderBy('id', 'desc')
      .limit(p.limit),
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

/** Options of {@link listAuditLog}. */
export interface ListAuditLogOptions {
  /** The previous page's last `id`: this page holds older entries. */
  before?: string | null | undefined
  /** Page size, 1 to 100; default 50. */
  limit?: number | undefined
  /** Only entries of this action. */
  action?: AuditAction | null | undefined
  /** Only entries made by this actor. */
  actor_id?: string | null | undefined
}

/**
 * Lists a guild's audit log, newest first, by keyset on the time-ordered id
 * (a page's cost does not grow with its depth), optionally only one action or
 * one actor's entries.
 *
 * @throws {InvalidInputError} when an id is not a UUID, `action` is not an
 *   {@link AuditAction} or `limit` not an integer 1–100.
 * @example
 * ```ts
 * const page = await listAuditLog(db, guild_id, { action: 'member_ban', limit: 20 })
 * const next = await listAuditLog(db, guild_id, { action: 'member_ban', before: page.at(-1)?.id })
 * ```
 */
export async function listAuditLog(
  db: Kysely<DB>,
  guild_id: string,
  options: ListAuditLogOptions = {},
): Promise<AuditLogEntry[]> {
  assertUuid(guild_id, 'guild_id')
  assertObject(options, 'options')
  assertOptionalUuid(options.before, 'before')
  assertOptionalUuid(options.actor_id, 'actor_id')
  if (options.action != null) assertOneOf(options.action, 'action', AUDIT_ACTIONS)
  const limit = pageLimit(options.limit, AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX)
  const rows = await selectAuditPage.execute(db, {
    guild_id,
    before: options.before ?? MAX_UUID,
    limit,
    action: options.action ?? null,
    actor_id: options.actor_id ?? null,
  })
  // `changes` is always the object auditChanges built.
  return rows as unknown as AuditLogEntry[]
}
