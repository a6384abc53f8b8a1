import { type RedisOptions as IORedisOptions, Redis } from 'ioredis'
import { NAMESPACE_OPTION } from './namespace.ts'
import { assertNamespace } from './validate.ts'

/** Options of {@link createRedis}: every ioredis option, plus a URL, a namespace and an error hook. */
export interface RedisOptions extends IORedisOptions {
  /**
   * `redis://[user:pass@]host:port/db` or `rediss://…`. Default: `REDIS_URL`,
   * else `redis://127.0.0.1:6379` — unless `host`, `port`, `path` or `sentinels` is given.
   */
  url?: string | undefined
  /**
   * Prefix of every key and channel name guildstore's helpers use with this
   * client (`<namespace>:session:…`), so several apps can share one Redis.
   * 1–64 characters of `A-Z a-z 0-9 _ . -`. Kept by `redis.duplicate()`.
   */
  namespace?: string | undefined
  /**
   * Called with every connection error (refused, reset, DNS…). The client
   * reconnects by itself either way and the process never crashes on it. Default: ignore.
   */
  onError?: ((error: Error) => void) | undefined
}

/**
 * Reconnect delay after the `times`-th failed attempt: 50 ms doubling up to a
 * 2 s cap, plus up to 100 ms of jitter. Never gives up.
 *
 * @example
 * ```ts
 * new Redis({ retryStrategy: redisRetryDelay })
 * ```
 */
export function redisRetryDelay(times: number): number {
  const exponent = Math.min(Math.max(times, 1) - 1, 10)
  return Math.min(50 * 2 ** exponent, 2000) + Math.floor(Math.random() * 100)
}

/**
 * Creates an ioredis client for guildstore.
 *
 * Defaults (each overridable): the URL from `REDIS_URL` (else
 * `redis://127.0.0.1:6379`); reconnects forever with capped exponential
 * backoff ({@link redisRetryDelay}); `maxRetriesPerRequest: 2`, so while the
 * server is down a command fails after a few seconds instead of waiting for
 * it; `connectTimeout: 5000`. An `'error'` listener is always attached, so a
 * connection error never crashes the process (see `onError`). For pub/sub,
 * subscribe on a second connection: `redis.duplicate()`.
 *
 * @throws {InvalidInputError} When `namespace` is malformed.
 * @example
 * ```ts
 * const redis = createRedis() // REDIS_URL
 * const other = createRedis({ url: 'redis://cache:6379/2', namespace: 'chat', onError: log.warn })
 * const subscriber = redis.duplicate()
 * ```
 */
export function createRedis(options: string | RedisOptions = {}): Redis {
  const { url, namespace, onError, ...rest } =
    typeof options === 'string' ? { url: options } : options
  if (namespace !== undefined) assertNamespace(namespace)
  const hasTarget =
    rest.host !== undefined ||
    rest.port !== undefined ||
    rest.path !== undefined ||
    rest.sentinels != null
  const target = url ?? (hasTarget ? undefined : process.env.REDIS_URL || 'redis://127.0.0.1:6379')
  const ioOptions: IORedisOptions & Record<string, unknown> = {
    retryStrategy: redisRetryDelay,
    maxRetriesPerRequest: 2,
    connectTimeout: 5000,
    ...rest,
  }
  if (namespace !== undefined) ioOptions[NAMESPACE_OPTION] = namespace
  const redis = target === undefined ? new Redis(ioOptions) : new Redis(target, ioOptions)
  return withErrorListener(redis, onError)
}

/**
 * Attaches the `'error'` listener, also to every `duplicate()` (the documented
 * pub/sub connection): ioredis copies options to a duplicate, not listeners.
 */
function withErrorListener(redis: Redis, onError: ((error: Error) => void) | undefined): Redis {
  redis.on('error', (error: Error) => {
    onError?.(error)
  })
  const duplicate = redis.duplicate.bind(redis)
  redis.duplicate = (override?: Partial<IORedisOptions>) =>
    withErrorListener(duplicate(override), onError)
  return redis
}
