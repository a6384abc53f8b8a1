import { GuildstoreError } from './guildstore-error.ts'

/**
 * The acting user may not do this: a permission is missing, or the role
 * hierarchy refused (the target is at or above the actor's highest role).
 *
 * Thrown by authorized operations (`sendMessage`, `readChannelMessages`) and by
 * administrative functions called with an {@link ActingAs} actor. Nothing was
 * written when it is thrown.
 *
 * @example
 * ```ts
 * try {
 *   await banMember(db, { guild_id, user_id }, { actor_id: moderatorId })
 * } catch (err) {
 *   if (err instanceof PermissionDeniedError) return reply(403, err.reason)
 *   throw err
 * }
 * ```
 */
export class PermissionDeniedError extends GuildstoreError {
  override readonly code = 'PERMISSION_DENIED'
  /**
   * Why it was refused: `'missing_permission'` (see {@link permission}),
   * `'hierarchy'` (the target is at or above the actor's highest role),
   * `'not_member'`, or another stable name documented where it is thrown.
   */
  readonly reason: string
  /** The missing permission flag, when `reason` is `'missing_permission'`. */
  readonly permission: bigint | undefined

  constructor(
    message: string,
    options: { reason: string; permission?: bigint | undefined; cause?: unknown } = {
      reason: 'missing_permission',
    },
  ) {
    super(message, options)
    this.reason = options.reason
    this.permission = options.permission
  }
}

/**
 * Who an administrative call acts on behalf of. With it, the actor's permission
 * and the role hierarchy are checked atomically with the change, and the audit
 * entry names the actor; without it the call is trusted.
 *
 * @example
 * ```ts
 * await removeGuildMember(db, { guild_id, user_id }, { actor_id: modId, reason: 'spam' })
 * ```
 */
export interface ActingAs {
  /** The user performing the action. */
  actor_id: string
  /** Why, as the audit log should record it (at most 512 characters). */
  reason?: string | undefined
}
