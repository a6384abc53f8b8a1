import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto'

/** scrypt cost parameters (OWASP: N=2^17 in production; 2^14 keeps the example quick). */
const N = 16_384
const r = 8
const p = 1
const KEY_LENGTH = 32

const derive = (password: string, salt: Buffer, options: ScryptOptions, keylen: number) =>
  new Promise<Buffer>((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keylen, options, (error, key) =>
      error ? reject(error) : resolve(key),
    )
  })

/**
 * Hashes a password with scrypt and a random salt:
 * `scrypt$<N>$<r>$<p>$<salt, base64url>$<key, base64url>`.
 *
 * @example
 * ```ts
 * await createUser(db, { username, password_hash: await hashPassword(password) })
 * ```
 */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(password, salt, { N, r, p }, KEY_LENGTH)
  return ['scrypt', N, r, p, salt.toString('base64url'), key.toString('base64url')].join('$')
}

/** A well-formed hash of nothing, to spend the same time when the user does not exist. */
const decoy = hashPassword(randomBytes(16).toString('hex'))

/**
 * Checks a password against a {@link hashPassword} hash in constant time. With
 * `stored` undefined (no such user) it still does the work and returns false,
 * so response times do not tell which usernames exist.
 *
 * @example
 * ```ts
 * const ok = await verifyPassword(password, credentials?.password_hash ?? undefined)
 * ```
 */
export async function verifyPassword(
  password: string,
  stored: string | undefined,
): Promise<boolean> {
  const [scheme, n, rr, pp, salt, key] = (stored ?? (await decoy)).split('$')
  if (scheme !== 'scrypt' || !n || !rr || !pp || !salt || !key) return false
  const expected = Buffer.from(key, 'base64url')
  const actual = await derive(
    password,
    Buffer.from(salt, 'base64url'),
    { N: Number(n), r: Number(rr), p: Number(pp) },
    expected.length,
  )
  return stored !== undefined && timingSafeEqual(actual, expected)
}
