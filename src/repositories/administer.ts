import type { Kysely } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import type { ActingAs } from '../errors/permission-denied-error.ts'
import { type AuthorizeResult, type AuthorizeRule, authorize } from '../permissions/authorize.ts'
import { inTransaction } from '../sql/index.ts'
import { type AuditWrite, auditChanges, inRetriedTransaction, writeAudit } from './internal.ts'

/** The actor-independent part of an {@link AuthorizeRule}: the guild, the permission, the targets. */
export type AdministeredRule = Omit<AuthorizeRule, 'actor_id'>

/**
 * One administered change, stated by what differs from the others: what it
 * locks, the permission it needs, the change and its audit entry.
 *
 * `T` is the locked target (`undefined` for a change with no row to lock
 * first, such as a create or an assignment); `R` is what the call returns.
 */
export interface AdministeredChange<T, R> {
  /**
   * Locks and reads the target in the transaction, before any check. When it
   * returns `undefined` the call returns {@link missing} (or throws it) and
   * nothing else runs. Omitted: nothing is locked here (`authorize` still
   * locks what the actor's permissions depend on).
   */
  lock?: ((trx: Kysely<DB>) => Promise<T | undefined>) | undefined
  /** The result when {@link lock} found no target; a function that throws refuses instead. */
  missing?: (() => R) | undefined
  /** What the actor of `as` must be allowed (the guild, the permission, the targets), from the locked target. */
  rule: (target: T) => AdministeredRule
  /** The change itself, after the check, in the same transaction. */
  apply: (trx: Kysely<DB>, target: T, authorized: AuthorizeResult | undefined) => Promise<R>
  /** The audit entry of the change (or one per part of it), or `null` when nothing changed (no entry). */
  audit: (result: R, target: T) => AuditWrite | readonly AuditWrite[] | null
  /**
   * Run again when PostgreSQL picks the transaction as a deadlock victim
   * (kicks and bans, which lock in an order other writers cannot share).
   */
  retryDeadlocks?: boolean | undefined
}

/**
 * Runs an administered change in one transaction: lock the target, authorize
 * the actor (only when `as` is given: a trusted call skips it), apply, write
 * the audit entry. Inside a caller's transaction it is part of that
 * transaction, so the check and the write it guards commit together.
 *
 * @example
 * ```ts
 * return administer(db, as, {
 *   lock: (trx) => lockRole.executeTakeFirst(trx, { id }),
 *   missing: () => false,
 *   rule: (role) => ({ guild_id: role.guild_id, permission: Permissions.MANAGE_ROLES, role_ids: [id] }),
 *   apply: async (trx) => (await deleteRoleRow.executeAffected(trx, { id })) > 0,
 *   audit: (deleted, role) =>
 *     deleted ? { guild_id: role.guild_id, action: 'role_delete', target_id: id, changes: {} } : null,
 * })
 * ```
 */
export function administer<T, R>(
  db: Kysely<DB>,
  as: ActingAs | undefined,
  change: AdministeredChange<T, R>,
): Promise<R> {
  const run = change.retryDeadlocks ? inRetriedTransaction : inTransaction
  return run(db, async (trx) => {
    let target = undefined as T
    if (change.lock) {
      const locked = await change.lock(trx)
      if (locked === undefined) {
        if (!change.missing) throw new TypeError('administer: lock without missing')
        return change.missing()
      }
      target = locked
    }
    const authorized = as
      ? await authorize(trx, { ...change.rule(target), actor_id: as.actor_id })
      : undefined
    const result = await change.apply(trx, target, authorized)
    const entry = change.audit(result, target)
    for (const one of Array.isArray(entry) ? entry : entry ? [entry] : []) {
      await writeAudit(trx, as, one)
    }
    return result
  })
}

/**
 * The audit entry of an update: the listed fields whose value changed between
 * `before` and `after`, or `null` when none did or no row was updated.
 *
 * @example
 * ```ts
 * audit: (row, before) => updateAudit(before, row, ROLE_FIELDS, { guild_id, action: 'role_update', target_id: id })
 * ```
 */
export function updateAudit(
  before: Record<string, unknown>,
  after: Record<string, unknown> | undefined,
  fields: readonly string[],
  entry: Omit<AuditWrite, 'changes'>,
): AuditWrite | null {
  if (!after) return null
  const changes = auditChanges(before, after, fields)
  return Object.keys(changes).length === 0 ? null : { ...entry, changes }
}
