import {
  Cluster,
  type ClusterNode,
  type ClusterOptions,
  type RedisOptions as IORedisOptions,
  Redis,
} from 'ioredis'
import { InvalidInputError } from '../errors/index.ts'
import { MAX_PAYLOAD_OPTION, TIMEOUT_OPTION } from './client.ts'
import { NAMESPACE_OPTION } from './namespace.ts'
import { assertNamespace, assertPositiveInteger } from './validate.ts'

/** Settings of guildstore's helpers, shared by {@link RedisOptions} and {@link RedisClusterOptions}. */
export interface GuildstoreRedisSettings {
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
  /**
   * Longest time, in milliseconds, one call of a Redis helper (IP blocks, OIDC
   * state, session cache, publish, subscribe) may take before it fails with
   * `RedisUnavailableError` (`reason: 'TIMEOUT'`). Default 5000; `0` waits as
   * long as ioredis does. The rate limiter has its own `timeoutMs`.
   */
  timeoutMs?: number | undefined
  /**
   * Largest encoded pub/sub payload, in bytes, the publish helpers send;
   * a larger one is refused with `PayloadTooLargeError` before anything is sent.
   * Default 1 MiB (`DEFAULT_MAX_PAYLOAD_BYTES`). Keep it well under Redis'
   * `client-output-buffer-limit pubsub` (32 MB hard, 8 MB for 60 s by default).
   */
  maxPayloadBytes?: number | undefined
}

/** One node of a Redis Cluster to start from (any of them; the client discovers the rest). */
export interface RedisClusterNode {
  host: string
  port: number
}

/**
 * Options of {@link createRedis} for a Redis Cluster: startup nodes, guildstore's
 * settings, per-node ioredis options (`redisOptions`: password, TLS…) and any
 * other ioredis `ClusterOptions`.
 */
export interface RedisClusterOptions extends GuildstoreRedisSettings {
  /** Startup nodes of the cluster: at least one. */
  cluster: RedisClusterNode[]
  /** ioredis options of every node connection (`password`, `username`, `tls`…). */
  redisOptions?: IORedisOptions | undefined
  /** Other ioredis cluster options (`scaleReads`, `natMap`, …). */
  clusterOptions?: Omit<ClusterOptions, 'redisOptions'> | undefined
}

/** Options of {@link createRedis} for one server: every ioredis option, plus a URL and guildstore's settings. */
export interface RedisOptions extends IORedisOptions, GuildstoreRedisSettings {
  /**
   * `redis://[user:pass@]host:port/db` or `rediss://…`. Default: `REDIS_URL`,
   * else `redis://127.0.0.1:6379` — unless `host`, `port`, `path` or `sentinels` is given.
   */
  url?: string | undefined
  /** Not for a single server: see {@link RedisClusterOptions}. */
  cluster?: undefined
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
 * Creates an ioredis client for guildstore: a single server, or a Redis
 * Cluster when `cluster` lists startup nodes.
 *
 * Defaults (each overridable): the URL from `REDIS_URL` (else
 * `redis://127.0.0.1:6379`); reconnects forever with capped exponential
 * backoff ({@link redisRetryDelay}); `maxRetriesPerRequest: 2`, so while the
 * server is down a command fails after a few seconds instead of waiting for
 * it; `connectTimeout: 5000`. An `'error'` listener is always attached, so a
 * connection error never crashes the process (see `onError`). For pub/sub,
 * subscribe on a second connection: `redis.duplicate()`.
 *
 * With `cluster`, the result is an ioredis `Cluster` (sharded pub/sub
 * enabled) and every guildstore helper takes it unchanged: each script and
 * multi-key command keeps its keys in one hash slot, and channel, presence
 * and global events travel by sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`), so
 * their traffic spreads over the shards.
 *
 * @throws {InvalidInputError} When `namespace`, `timeoutMs`, `maxPayloadBytes` or `cluster` is malformed.
 * @example
 * ```ts
 * const redis = createRedis() // REDIS_URL
 * const other = createRedis({ url: 'redis://cache:6379/2', namespace: 'chat', onError: log.warn })
 * const subscriber = redis.duplicate()
 * const cluster = createRedis({ cluster: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7000 }] })
 * ```
 */
export function createRedis(options: RedisClusterOptions): Cluster
export function createRedis(options?: string | RedisOptions): Redis
export function createRedis(
  options: string | RedisOptions | RedisClusterOptions = {},
): Redis | Cluster {
  if (typeof options !== 'string' && options.cluster !== undefined) {
    return createCluster(options as RedisClusterOptions)
  }
  const {
    url,
    namespace,
    onError,
    timeoutMs,
    maxPayloadBytes,
    cluster: _,
    ...rest
  } = typeof options === 'string' ? ({ url: options } as RedisOptions) : (options as RedisOptions)
  const settings = guildstoreSettings({ namespace, timeoutMs, maxPayloadBytes })
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
    ...definedOnly(rest),
    ...settings,
  }
  const redis = target === undefined ? new Redis(ioOptions) : new Redis(target, ioOptions)
  return withErrorListener(redis, onError)
}

/**
 * The options without the fields given as `undefined`: an option passed as
 * `undefined` is absent, so it keeps guildstore's default instead of replacing it
 * (ioredis would then fall back to its own, e.g. 20 retries per request).
 */
function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as Partial<T>
}

/** Checks guildstore's settings and returns them as ioredis option entries (kept by `duplicate()`). */
function guildstoreSettings(settings: {
  namespace: string | undefined
  timeoutMs: number | undefined
  maxPayloadBytes: number | undefined
}): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (settings.namespace !== undefined) {
    assertNamespace(settings.namespace)
    out[NAMESPACE_OPTION] = settings.namespace
  }
  if (settings.timeoutMs !== undefined) {
    if (
      typeof settings.timeoutMs !== 'number' ||
      !Number.isInteger(settings.timeoutMs) ||
      settings.timeoutMs < 0 ||
      settings.timeoutMs > 2_147_483_647
    ) {
      throw new InvalidInputError('timeoutMs must be an integer from 0 to 2147483647', {
        field: 'timeoutMs',
      })
    }
    out[TIMEOUT_OPTION] = settings.timeoutMs
  }
  if (settings.maxPayloadBytes !== undefined) {
    assertPositiveInteger(settings.maxPayloadBytes, 'maxPayloadBytes', 512 * 1024 * 1024)
    out[MAX_PAYLOAD_OPTION] = settings.maxPayloadBytes
  }
  return out
}

function createCluster(options: RedisClusterOptions): Cluster {
  const { cluster, namespace, onError, timeoutMs, maxPayloadBytes, redisOptions, clusterOptions } =
    options
  if (!Array.isArray(cluster) || cluster.length === 0) {
    throw new InvalidInputError('cluster must list at least one { host, port } node', {
      field: 'cluster',
    })
  }
  for (const node of cluster) {
    if (
      typeof node !== 'object' ||
      node === null ||
      typeof node.host !== 'string' ||
      node.host.length === 0 ||
      !Number.isInteger(node.port) ||
      node.port < 1 ||
      node.port > 65535
    ) {
      throw new InvalidInputError('each cluster node must be { host: string, port: 1..65535 }', {
        field: 'cluster',
      })
    }
  }
  const settings = guildstoreSettings({ namespace, timeoutMs, maxPayloadBytes })
  const client = new Cluster(
    cluster.map(({ host, port }): ClusterNode => ({ host, port })),
    {
      clusterRetryStrategy: redisRetryDelay,
      shardedSubscribers: true,
      ...definedOnly(clusterOptions ?? {}),
      redisOptions: {
        maxRetriesPerRequest: 2,
        connectTimeout: 5000,
        ...definedOnly(redisOptions ?? {}),
      },
      ...settings,
    } as ClusterOptions,
  )
  return withClusterErrorListener(client, onError)
}

/** {@link withErrorListener} for a cluster client, whose `duplicate` takes startup nodes first. */
function withClusterErrorListener(
  cluster: Cluster,
  onError: ((error: Error) => void) | undefined,
): Cluster {
  cluster.on('error', (error: Error) => {
    onError?.(error)
  })
  const duplicate = cluster.duplicate.bind(cluster)
  cluster.duplicate = (nodes?: ClusterNode[], override?: Partial<ClusterOptions>) =>
    withClusterErrorListener(duplicate(nodes, override), onError)
  return cluster
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
