import { createHash } from 'node:crypto'

/**
 * The SHA-256 hex digest of a refresh token: what `sessions.token_hash` stores,
 * so a database leak does not leak usable tokens.
 *
 * @example
 * ```ts
 * const session = await findSessionByTokenHash(db, hashToken(tokenFromCookie))
 * ```
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}
