import { InvalidInputError } from '../errors/index.ts'
import type { RedisClient } from './client.ts'
import { createDeadlines } from './deadline.ts'
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
   * failure. Default 1000. While the client is not connected the check waits
   * (up to this long) for it to be ready instead of queueing, so a check that
   * failed never runs later. `0` disables both: the command goes through
   * ioredis' offline queue, bounded only by `maxRetriesPerRequest` / `commandTimeout`.
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

const withTimeout = <T>(
  promise: Promise<T>,
  timeoutMs: number,
  what = 'rate limit check',
): Promise<T> => {
  if (timeoutMs <= 0) return promise
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} timed out after ${timeoutMs} ms`)),
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

/** One pending "ready" wait per client, however many checks wait on it. */
const readyWaits = new WeakMap<RedisClient, Promise<void>>()

const readyPromise = (redis: RedisClient): Promise<void> => {
  let pending = readyWaits.get(redis)
  if (!pending) {
    pending = new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        redis.off('ready', onReady)
        redis.off('end', onEnd)
        readyWaits.delete(redis)
      }
      const onReady = () => {
        cleanup()
        resolve()
      }
      const onEnd = () => {
        cleanup()
        reject(new Error('Redis connection is closed'))
      }
      redis.once('ready', onReady)
      redis.once('end', onEnd)
    })
    pending.catch(() => {})
    readyWaits.set(redis, pending)
    if (redis.status === 'wait') redis.connect().catch(() => {})
  }
  return pending
}

/**
 * Waits up to `timeoutMs` for the client to be ready, without queueing a
 * command: a check that was reported as failed must never run later, after a
 * reconnect, and take units nobody was told about.
 */
const whenReady = (redis: RedisClient, timeoutMs: number): Promise<void> => {
  if (redis.status === 'end') return Promise.reject(new Error('Redis connection is closed'))
  return withTimeout(readyPromise(redis), timeoutMs, 'Redis connection not ready')
}

/**
 * Creates a rate limiter: GCRA (a smooth token bucket, not a fixed window) on
 * Redis, one Lua script per check (EVALSHA, EVAL fallback), with the time read
 * from the Redis server. `limit` units pass in a burst, then one every
 * `windowMs / limit` ms; in any span of `d` ms at most
 * `limit + floor(d * limit / windowMs)` units pass, for every valid `limit` and
 * `windowMs` (exact rational arithmetic: the interval is never rounded). After
 * a burst of `limit` from a fresh subject, `resetAfterMs` is `windowMs`. Exact
 * under concurrency.
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
export function createRateLimiter(redis: RedisClient, options: RateLimiterOptions): RateLimiter {
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
  const namespace = resolveNamespace(redis, options)
  // validated once here, so the hot path only concatenates: [<ns>:]ratelimit:{<category>:<subject>}
  const keyPrefix = keysFor(namespace).rateLimit(category, '-').slice(0, -2)
  const deadlines = createDeadlines(timeoutMs)
  // The script works in exact fractions of this (no rounded emission interval).
  const windowUs = windowMs * 1000
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

  const failedResult = (cost: number): RateLimitResult => ({
    allowed: true,
    remaining: Math.max(0, limit - cost),
    retryAfterMs: 0,
    resetAfterMs: 0,
  })

  // One promise per check and no timer of its own: this is the hot path.
  const check = (key: string, cost: number): Promise<RateLimitResult> =>
    new Promise<RateLimitResult>((resolve, reject) => {
      const fail = (cause: unknown) => {
        const error = storeError(cause, 'consume')
        if (failOpen) resolve(failedResult(cost))
        else reject(error)
      }
      const entry = deadlines.start(() =>
        fail(new Error(`rate limit check timed out after ${timeoutMs} ms`)),
      )
      run(key, windowUs, limit, cost).then(
        (reply) => {
          if (!deadlines.finish(entry)) return
          const [allowed, remaining, retryAfterMs, resetAfterMs] = reply as number[]
          resolve({
            allowed: allowed === 1,
            remaining: Number(remaining),
            retryAfterMs: retryAfterMs === -1 ? Number.POSITIVE_INFINITY : Number(retryAfterMs),
            resetAfterMs: Number(resetAfterMs),
          })
        },
        (cause: unknown) => {
          if (deadlines.finish(entry)) fail(cause)
        },
      )
    })

  return {
    category,
    limit,
    windowMs,
    consume(subject, cost = 1) {
      try {
        assertKeyPart(subject, 'subject', MAX_KEY_PART_LENGTH)
        assertPositiveInteger(cost, 'cost')
      } catch (error) {
        return Promise.reject(error)
      }
      const key = `${keyPrefix}${subject}}`
      if (timeoutMs === 0 || redis.status === 'ready') return check(key, cost)
      return whenReady(redis, timeoutMs).then(
        () => check(key, cost),
        (cause: unknown) => {
          const error = storeError(cause, 'consume')
          if (failOpen) return failedResult(cost)
          throw error
        },
      )
    },
    async reset(subject) {
      assertKeyPart(subject, 'subject', MAX_KEY_PART_LENGTH)
      const key = `${keyPrefix}${subject}}`
      try {
        if (timeoutMs > 0 && redis.status !== 'ready') await whenReady(redis, timeoutMs)
        await withTimeout(redis.del(key), timeoutMs)
      } catch (cause) {
        throw storeError(cause, 'reset')
      }
    },
  }
}
