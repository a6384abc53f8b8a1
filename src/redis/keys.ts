import { assertCategory, assertKeyPart, assertNamespace } from './validate.ts'

/** Builders of the Redis key names guildstore uses. */
export interface RedisKeys {
  /** Cached session of a user: `session:<user_id>`. */
  session(user_id: string): string
  /**
   * Rate-limit state of one subject in one category:
   * `ratelimit:{<category>:<subject>}`. The braces are a Redis Cluster hash tag.
   */
  rateLimit(category: string, subject: string): string
  /** Block flag of an IP address: `ratelimit:block:<ip>`. */
  rateLimitBlock(ip: string): string
  /** One pending OIDC login: `oidc:state:<state>`. */
  oidcState(state: string): string
}

/** Builders of the Redis pub/sub channel names guildstore uses. */
export interface RedisChannels {
  /** Events of one chat channel: `channel:<channel_id>`. */
  channel(channel_id: string): string
  /** Presence of one user: `presence:<user_id>`. */
  presence(user_id: string): string
  /** Platform-wide events: `global`. */
  readonly global: string
}

const prefixOf = (namespace: string | undefined): string => {
  if (namespace === undefined) return ''
  assertNamespace(namespace)
  return `${namespace}:`
}

/**
 * Makes key builders for a namespace: every key becomes `<namespace>:<key>`,
 * so several apps can share one Redis. Without a namespace the keys are bare.
 *
 * @throws {InvalidInputError} When the namespace, or later an argument, is malformed
 * (empty, too long, a NUL byte; a category with `:`, `{`, `}` or whitespace).
 * @example
 * ```ts
 * const keys = createRedisKeys('chat')
 * keys.rateLimit('login', '203.0.113.7') // 'chat:ratelimit:{login:203.0.113.7}'
 * ```
 */
export function createRedisKeys(namespace?: string): RedisKeys {
  const prefix = prefixOf(namespace)
  return {
    session(user_id) {
      assertKeyPart(user_id, 'user_id')
      return `${prefix}session:${user_id}`
    },
    rateLimit(category, subject) {
      assertCategory(category)
      assertKeyPart(subject, 'subject')
      return `${prefix}ratelimit:{${category}:${subject}}`
    },
    rateLimitBlock(ip) {
      assertKeyPart(ip, 'ip')
      return `${prefix}ratelimit:block:${ip}`
    },
    oidcState(state) {
      assertKeyPart(state, 'state')
      return `${prefix}oidc:state:${state}`
    },
  }
}

/**
 * Makes pub/sub channel-name builders for a namespace (`<namespace>:channel:<id>`, …).
 *
 * @throws {InvalidInputError} When the namespace, or later an argument, is malformed.
 * @example
 * ```ts
 * createRedisChannels('chat').presence(userId) // 'chat:presence:<userId>'
 * ```
 */
export function createRedisChannels(namespace?: string): RedisChannels {
  const prefix = prefixOf(namespace)
  return {
    channel(channel_id) {
      assertKeyPart(channel_id, 'channel_id')
      return `${prefix}channel:${channel_id}`
    },
    presence(user_id) {
      assertKeyPart(user_id, 'user_id')
      return `${prefix}presence:${user_id}`
    },
    global: `${prefix}global`,
  }
}

/**
 * The key builders without a namespace.
 *
 * @throws {InvalidInputError} When an argument is malformed.
 * @example
 * ```ts
 * redisKeys.session(userId) // 'session:<userId>'
 * redisKeys.rateLimit('login', ip) // 'ratelimit:{login:<ip>}'
 * redisKeys.rateLimitBlock(ip) // 'ratelimit:block:<ip>'
 * redisKeys.oidcState(state) // 'oidc:state:<state>'
 * ```
 */
export const redisKeys: RedisKeys = createRedisKeys()

/**
 * The pub/sub channel-name builders without a namespace.
 *
 * @throws {InvalidInputError} When an argument is malformed.
 * @example
 * ```ts
 * redisChannels.channel(channelId) // 'channel:<channelId>'
 * redisChannels.global // 'global'
 * ```
 */
export const redisChannels: RedisChannels = createRedisChannels()

const keysCache = new Map<string, RedisKeys>()
const channelsCache = new Map<string, RedisChannels>()

/** Key builders for a resolved namespace, memoised. */
export function keysFor(namespace: string | undefined): RedisKeys {
  if (namespace === undefined) return redisKeys
  let keys = keysCache.get(namespace)
  if (!keys) {
    keys = createRedisKeys(namespace)
    if (keysCache.size >= 256) keysCache.clear()
    keysCache.set(namespace, keys)
  }
  return keys
}

/** Channel-name builders for a resolved namespace, memoised. */
export function channelsFor(namespace: string | undefined): RedisChannels {
  if (namespace === undefined) return redisChannels
  let channels = channelsCache.get(namespace)
  if (!channels) {
    channels = createRedisChannels(namespace)
    if (channelsCache.size >= 256) channelsCache.clear()
    channelsCache.set(namespace, channels)
  }
  return channels
}
