import { InvalidInputError } from '../errors/index.ts'

const LSN_PATTERN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/

/**
 * Parses a PostgreSQL WAL position (`pg_lsn` text, e.g. `'0/16B3748'`) into a
 * number that compares like the position.
 *
 * @throws {InvalidInputError} When `text` is not an LSN.
 */
export function parseLsn(text: unknown, field = 'token'): bigint {
  const match = typeof text === 'string' ? LSN_PATTERN.exec(text) : null
  if (!match) {
    throw new InvalidInputError(`${field} must be a PostgreSQL WAL position such as '0/16B3748'`, {
      field,
    })
  }
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`)
}

/** Formats a WAL position as `pg_lsn` text (`'0/16B3748'`). */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`
}
