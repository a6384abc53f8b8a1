import type { Cluster, Redis } from 'ioredis'
import { GuildstoreError } from '../errors/index.ts'
import { RedisUnavailableError } from './redis-errors.ts'

/**
 * What every guildstore Redis helper takes: a single-node client (`Redis`) or a
 * Redis Cluster client (`Cluster`), both as made by {@link createRedis}.
 */
export type RedisClient = Redis | Cluster

/** Option keys under which {@link createRedis} keeps guildstore settings in the client's options (kept by `duplicate()`). */
export const TIMEOUT_OPTION = 'guildstoreTimeoutMs'
/** See {@link TIMEOUT_OPTION}. */
export const MAX_PAYLOAD_OPTION = 'guildstoreMaxPayloadBytes'

/** Default time a Redis helper call may take before it fails with {@link RedisUnavailableError}. */
export const DEFAULT_REDIS_TIMEOUT_MS = 5000

/**
 * Whether `client` is an ioredis `Cluster` (made by `createRedis({ cluster })`).
 *
 * @example
 * ```ts
 * const redis = createRedis({ cluster: [{ host: 'redis-0', port: 6379 }] })
 * isCluster(redis) // true
 * ```
 */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true
}

/** A guildstore setting stored in the client's options, if any. */
export function clientSetting(client: RedisClient, key: string): unknown {
  return (client.options as Record<string, unknown> | undefined)?.[key]
}

const NOT_RETRYABLE = new Set([
  'NOAUTH',
  'WRONGPASS',
  'NOPERM',
  'WRONGTYPE',
  'ERR',
  'NOSCRIPT',
  'EXECABORT',
  'CROSSSLOT',
])

const MESSAGE_REASONS: Array<[RegExp, string]> = [
  [/Connection is closed/i, 'CONNECTION_CLOSED'],
  [/Stream isn't writeable/i, 'CONNECTION_CLOSED'],
  [/None of startup nodes is available/i, 'NO_NODE_AVAILABLE'],
  [/Failed to refresh slots cache/i, 'NO_NODE_AVAILABLE'],
  [/Too many Cluster redirections/i, 'TOO_MANY_REDIRECTIONS'],
  [/Cluster isn't ready/i, 'CLUSTER_NOT_READY'],
  [/Command timed out/i, 'TIMEOUT'],
  [/Reached the max retries per request limit/i, 'MAX_RETRIES'],
]

/** A short, value-free name of what went wrong. */
function reasonOf(error: unknown): string {
  if (typeof error !== 'object' || error === null) return 'UNKNOWN'
  const err = error as { code?: unknown; name?: unknown; message?: unknown }
  if (typeof err.code === 'string' && /^[A-Z_]+$/.test(err.code)) return err.code
  const message = typeof err.message === 'string' ? err.message : ''
  if (err.name === 'ReplyError') {
    const word = /^([A-Z]+)\b/.exec(message)?.[1]
    return word ?? 'ERR'
  }
  for (const [pattern, reason] of MESSAGE_REASONS) if (pattern.test(message)) return reason
  if (err.name === 'MaxRetriesPerRequestError') return 'MAX_RETRIES'
  if (err.name === 'ClusterAllFailedError') return 'NO_NODE_AVAILABLE'
  return 'UNKNOWN'
}

/** `host:port` of a single node, `cluster` for a cluster: never a password. */
function targetOf(client: RedisClient): string {
  if (isCluster(client)) return 'cluster'
  const options = client.options as { host?: string; port?: number; path?: string } | undefined
  if (options?.path) return options.path
  return `${options?.host ?? '?'}:${options?.port ?? '?'}`
}

/**
 * Turns anything an ioredis call threw into a {@link RedisUnavailableError}
 * naming the operation; guildstore's own errors pass through.
 */
export function toRedisError(
  client: RedisClient,
  operation: string,
  error: unknown,
): GuildstoreError {
  if (error instanceof GuildstoreError) return error
  const reason = reasonOf(error)
  return new RedisUnavailableError(
    `Redis unavailable during ${operation} (${targetOf(client)}: ${reason})`,
    { operation, reason, retryable: !NOT_RETRYABLE.has(reason), cause: error },
  )
}

/** The helper timeout of a client: `createRedis({ timeoutMs })`, else the default. */
export function timeoutOf(client: RedisClient): number {
  const value = clientSetting(client, TIMEOUT_OPTION)
  return typeof value === 'number' ? value : DEFAULT_REDIS_TIMEOUT_MS
}

/**
 * Runs one Redis helper call: at most the client's timeout, and every failure
 * as a {@link RedisUnavailableError} (never a raw ioredis error, never a hang
 * while a cluster reconfigures).
 */
export function guard<T>(
  client: RedisClient,
  operation: string,
  call: () => Promise<T>,
): Promise<T> {
  const timeoutMs = timeoutOf(client)
  return new Promise<T>((resolve, reject) => {
    let settled = false
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            if (settled) return
            settled = true
            reject(
              toRedisError(
                client,
                operation,
                Object.assign(new Error(`timed out after ${timeoutMs} ms`), { code: 'TIMEOUT' }),
              ),
            )
          }, timeoutMs)
        : undefined
    timer?.unref?.()
    let pending: Promise<T>
    try {
      pending = call()
    } catch (error) {
      pending = Promise.reject(error)
    }
    pending.then(
      (value) => {
        if (settled) return
        settled = true
        if (timer) clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        if (settled) return
        settled = true
        if (timer) clearTimeout(timer)
        reject(toRedisError(client, operation, error))
      },
    )
  })
}
