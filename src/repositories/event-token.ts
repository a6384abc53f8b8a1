import { InvalidInputError } from '../errors/invalid-input-error.ts'

/** The token's version tag: a new encoding gets a new tag, old tokens keep decoding. */
const PREFIX = 'gs1:'
const POSITION = /^(0|[1-9][0-9]{0,18})$/
const INT64_MAX = 9223372036854775807n

/**
 * A feed position (a decimal string) as the opaque token clients keep:
 * base64url of `gs1:<position>`. Tokens hold nothing but the position, so
 * they survive restarts and are valid on every process of the deployment.
 *
 * @example
 * ```ts
 * encodeEventToken('42') // 'Z3MxOjQy'
 * ```
 */
export function encodeEventToken(position: string): string {
  return Buffer.from(`${PREFIX}${position}`, 'utf8').toString('base64url')
}

/**
 * The position inside a token from {@link encodeEventToken}.
 *
 * @throws {InvalidInputError} when `token` is not one (field `after`).
 * @example
 * ```ts
 * decodeEventToken('Z3MxOjQy') // '42'
 * ```
 */
export function decodeEventToken(token: unknown): string {
  const refuse = () => new InvalidInputError('after is not a change-feed token', { field: 'after' })
  if (typeof token !== 'string' || token.length === 0 || token.length > 64) throw refuse()
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw refuse()
  const text = Buffer.from(token, 'base64url').toString('utf8')
  if (!text.startsWith(PREFIX)) throw refuse()
  const position = text.slice(PREFIX.length)
  if (!POSITION.test(position) || BigInt(position) > INT64_MAX) throw refuse()
  // base64url decoding is lenient: require the canonical form back.
  if (encodeEventToken(position) !== token) throw refuse()
  return position
}
