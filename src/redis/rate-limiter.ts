import type { Redis } from 'ioredis'
import { InvalidInputError } from '../errors/index.ts'
import { bindScript } from './define-script.ts'
import { keysFor } from './keys.ts'
import { resolveNamespace } from './namespace.ts'
import { RATE_LIMIT_SCRIPT } from './rate-limit-script.ts'
import { RateLimiterStoreError } from './rate-limiter-store-error.ts'
import {
  assertCategory,
  assertKeyPart,
  assertNamespace,
  assertPositiveInteger,
  MAX_KEY_PART_LENGTH,
} from './validate.ts'

/** Longest accepted window: 366 days. */
export const MAX_WINDOW_MS = 366 * 24 * 60 * 60 * 1000

/** Options of {@link createRateLimiter}. */
export interface RateLimiterOptions {
  /** What is limited, e.g. `'login'`: 1–64 characters, no `:`, `{`, `}`, whitespace or NUL. */
  category: string
  /** How many units pass per window, and the largest burst. A positive integer, at most `windowMs * 1000`. */
  limit: number
  /** The window in milliseconds. A positive integer, at most 366 days. */
  windowMs: number
  /**
   * When Redis fails (down, timeout), resolve `{ allowed: true, … }` instead of
   * throwing {@link RateLimiterStoreError}. Default `false` (fail closed).
   */
  failOpen?: boolean | undefined
  /** Told about every store failure, whether the limiter fails open or closed. Must not throw. */
  onStoreError?: ((error: RateLimiterStoreError) => void) | undefined
  /**
   * Give up on a check after this many milliseconds and treat it as a store
   * failure. Default 1000. `0` disables the timer (then only the client's own
   * `maxRetriesPerRequest` / `commandTimeout` bound the wait).
   */
  timeoutMs?: number | undefined
  /** Overrides the client's namespace; keys become `<namespace>:ratelimit:{…}`. */
  namespace?: string | undefined
}

/** The outcome of one {@link RateLimiter.consume}. */
export interface RateLimitResult {
  /** Whether the units were taken. */
  allowed: boolean
  /** Units still available right now, after this call. */
  remaining: number
  /**
   * When not allowed: milliseconds until the same call would pass (0 when
   * allowed; `Infinity` when `cost > limit`, which never passes).
   */
  retryAfterMs: number
  /** Milliseconds until the subject is back to a full `limit` (0 when it is). */
  resetAfterMs: number
}

/** A rate limiter for one category; see {@link createRateLimiter}. */
export interface RateLimiter {
  readonly category: string
  readonly limit: number
  readonly windowMs: number
  /**
   * Takes `cost` units (default 1) for `subject` if they are available. One
   * atomic round trip; a denied call changes nothing.
   *
   * @throws {InvalidInputError} When `subject` or `cost` is malformed.
   * @throws {RateLimiterStoreError} When Redis fails and `failOpen` is off.
   */
  consume(subject: string, cost?: number): Promise<RateLimitResult>
  /**
   * Forgets `subject`'s usage (e.g. after a successful login).
   *
   * @throws {InvalidInputError} When `subject` is malformed.
   * @throws {RateLimiterStoreError} When Redis fails (whatever `failOpen` says).
   */
  reset(subject: string): Promise<void>
}

const withTimeout = <T>(promise: Promise<T>, timeoutMs: number): Promise<T> => {
  if (timeoutMs <= 0) return promise
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`rate limit check timed out after ${timeoutMs} ms`)),
      timeoutMs,
    )
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}

/**
 * Creates a rate limiter: GCRA (a smooth token bucket, not a fixed window) on
 * Redis, one Lua script per check (EVALSHA, EVAL fallback), with the time read
 * from the Redis server. `limit` units pass in a burst, then one every
 * `windowMs / limit` ms; in any span of `d` ms at most
 * `limit + floor(d * limit / windowMs)` units pass. Exact under concurrency.
 *
 * Key: `[<namespace>:]ratelimit:{<category>:<subject>}`, expiring when the subject is full again.
 *
 * @throws {InvalidInputError} When an option is malformed.
 * @example
 * ```ts
 * const login = createRateLimiter(redis, { category: 'login', limit: 5, windowMs: 60_000 })
 * const { allowed, retryAfterMs } = await login.consume(ip)
 * if (!allowed) return reply(429, { retryAfter: Math.ceil(retryAfterMs / 1000) })
 * ```
 */
export function createRateLimiter(redis: Redis, options: RateLimiterOptions): RateLimiter {
  const { category, limit, windowMs } = options
  assertCategory(category)
  assertPositiveInteger(windowMs, 'windowMs', MAX_WINDOW_MS)
  assertPositiveInteger(limit, 'limit', windowMs * 1000)
  const timeoutMs = options.timeoutMs ?? 1000
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0) {
    throw new InvalidInputError('timeoutMs must be a non-negative integer', { field: 'timeoutMs' })
  }
  if (options.namespace !== undefined) assertNamespace(options.namespace)
  const failOpen = options.failOpen === true
  const onStoreError = options.onStoreError
  const keys = keysFor(resolveNamespace(redis, options))
  const interval = Math.floor((windowMs * 1000) / limit)
  const run = bindScript(redis, RATE_LIMIT_SCRIPT)

  const storeError = (cause: unknown, what: string): RateLimiterStoreError => {
    const error = new RateLimiterStoreError(`rate limiter store failed during ${what}`, {
      category,
      cause,
    })
    if (onStoreError) {
      try {
        onStoreError(error)
      } catch {
        // a reporting hook must not change the outcome
      }
    }
    return error
  }

  return {
    category,
    limit,
    windowMs,
    async consume(subject, cost = 1) {
      assertKeyPart(subject, 'subject', MAX_KEY_PART_LENGTH)
      assertPositiveInteger(cost, 'cost')
      const key = keys.rateLimit(category, subject)
      let reply: unknown
      try {
        reply = await withTimeout(run([key], [interval, limit, cost]), timeoutMs)
      } catch (cause) {
        const error = storeError(cause, 'consume')
        if (failOpen) {
          return {
            allowed: true,
            remaining: Math.max(0, limit - cost),
            retryAfterMs: 0,
            resetAfterMs: 0,
          }
        }
        throw error
      }
      const [allowed, remaining, retryAfterMs, resetAfterMs] = reply as number[]
      return {
        allowed: allowed === 1,
        remaining: Number(remaining),
        retryAfterMs: retryAfterMs === -1 ? Number.POSITIVE_INFINITY : Number(retryAfterMs),
        resetAfterMs: Number(resetAfterMs),
      }
    },
    async reset(subject) {
      assertKeyPart(subject, 'subject', MAX_KEY_PART_LENGTH)
      const key = keys.rateLimit(category, subject)
      try {
        await withTimeout(redis.del(key), timeoutMs)
      } catch (cause) {
        throw storeError(cause, 'reset')
      }
    },
  }
}
