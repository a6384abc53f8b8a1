import { uuidv7 } from 'uuidv7'

/**
 * Makes a new UUIDv7 id: time-ordered (48-bit millisecond timestamp first,
 * monotonic within a process), so ids sort by creation time.
 *
 * @example
 * ```ts
 * newId() // '019b0c2e-7f3a-7c41-9a0e-3b5f1d2c4e6a'
 * ```
 */
export function newId(): string {
  return uuidv7()
}
