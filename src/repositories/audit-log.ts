import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import type { AuditLog, DB } from '../../codegen/db.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { prepareQuery } from '../sql/index.ts'
import {
  assertObject,
  assertOneOf,
  assertOptionalUuid,
  assertUuid,
  defineFields,
  pageLimit,
  pattern,
  text,
} from '../validation/index.ts'

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
  'member_timeout',
  'invite_create',
  'invite_revoke',
  'message_delete',
  'message_pin',
  'message_unpin',
  'reactions_remove',
  'emoji_create',
  'emoji_update',
  'emoji_delete',
  'thread_create',
  'thread_update',
  'thread_member_add',
  'thread_member_remove',
  'forum_tag_create',
  'forum_tag_update',
  'forum_tag_delete',
  'post_tags_update',
] as const

/** An action of the audit log (see {@link AUDIT_ACTIONS}). */
export type AuditAction = (typeof AUDIT_ACTIONS)[number]

/** Default page size of {@link listAuditLog}. */
export const AUDIT_PAGE_DEFAULT = 50
/** Largest page size of {@link listAuditLog}. */
export const AUDIT_PAGE_MAX = 100

/** Above every UUID: the keyset start of a first (newest) page. */
const MAX_UUID = 'ffffffff-ffff-ffff-ffff-ffffffffffff'

/** The columns every audit-entry-returning function selects. */
export const auditLogColumns = columnList<AuditLog>()([
  'id',
  'guild_id',
  'actor_id',
  'action',
  'target_id',
  'changes',
  'reason',
  'created_at',
])

/** One field's change in an audit entry (64-bit integers and dates as strings). */
export interface AuditFieldChange {
  before: string | number | boolean | null
  after: string | number | boolean | null
}

/**
 * An audit log entry: who (`actor_id`, `null` for a trusted call) did what
 * (`action`) to what (`target_id`), with the changed fields before and after.
 */
export type AuditLogEntry = Omit<Projection<AuditLog, typeof auditLogColumns>, 'changes'> & {
  changes: Record<string, AuditFieldChange>
}

/** Rules of the `audit_log` columns (the CHECKs of the schema). */
export const auditLogFields = defineFields('audit_log', {
  reason: text(1, 512),
  action: pattern(/^[a-z][a-z_]{0,63}$/),
})

const selectAuditPage = prepareQuery(
  'audit_log.list_page',
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
      .select(auditLogColumns)
      .where('guild_id', '=', p.guild_id)
      .where('id', '<', p.before)
      .where(sql<boolean>`(${p.action}::text is null or action = ${p.action}::text)`)
      .where(sql<boolean>`(${p.actor_id}::uuid is null or actor_id = ${p.actor_id}::uuid)`)
      .orderBy('id', 'desc')
      .limit(p.limit),
)

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
