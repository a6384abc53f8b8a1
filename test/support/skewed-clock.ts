/**
 * Injected clock skew for ids: `skewedId()` mints a UUIDv7 from `Date.now()`
 * plus the skew (ms) of the current async context (`skew.run(ms, fn)`), as an
 * app server with a wrong clock would. Tests swap it in for `newId` with
 * `vi.mock('../../src/ids/new-id.ts', …)`.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { randomBytes } from 'node:crypto'

/** The clock skew, in ms, of the code running inside `skew.run(ms, …)`. */
export const skew = new AsyncLocalStorage<number>()

/** A UUIDv7 whose timestamp is this context's skewed clock (not monotonic, like two servers). */
export function skewedId(): string {
  const ms = Date.now() + (skew.getStore() ?? 0)
  const r = randomBytes(10).toString('hex')
  const variant = ((Number.parseInt(r[3] as string, 16) & 0x3) | 0x8).toString(16)
  const ts = ms.toString(16).padStart(12, '0')
  return `${ts.slice(0, 8)}-${ts.slice(8)}-7${r.slice(0, 3)}-${variant}${r.slice(4, 7)}-${r.slice(7, 19)}`
}
