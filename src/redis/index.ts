export { publishChannelEvent, subscribeChannelEvents } from './channel-events.ts'
export { isCluster, type RedisClient } from './client.ts'
export {
  createRedis,
  type GuildstoreRedisSettings,
  type RedisClusterNode,
  type RedisClusterOptions,
  type RedisOptions,
  redisRetryDelay,
} from './create-redis.ts'
export type {
  ChannelEvent,
  EventHandler,
  EventMessage,
  GlobalEvent,
  MessageCreatedEvent,
  MessageDeletedEvent,
  MessageUpdatedEvent,
  PresenceEvent,
  PresenceStatus,
  PublishOptions,
  RedisEventLogger,
  SubscribeOptions,
  TypingEvent,
} from './event-types.ts'
export { publishGlobal, subscribeGlobal } from './global-events.ts'
export { blockIp, isIpBlocked, unblockIp } from './ip-block.ts'
export {
  createRedisChannels,
  createRedisKeys,
  type RedisChannels,
  type RedisKeys,
  redisChannels,
  redisKeys,
} from './keys.ts'
export { type NamespaceOptions, redisNamespace } from './namespace.ts'
export { consumeOidcState, saveOidcState } from './oidc-state.ts'
export { publishPresence, subscribePresence } from './presence-events.ts'
export {
  createRateLimiter,
  type RateLimiter,
  type RateLimiterOptions,
  type RateLimitResult,
} from './rate-limiter.ts'
export { RateLimiterStoreError } from './rate-limiter-store-error.ts'
export {
  DEFAULT_MAX_PAYLOAD_BYTES,
  PayloadTooLargeError,
  RedisUnavailableError,
} from './redis-errors.ts'
export { cacheSession, getCachedSession, invalidateCachedSession } from './session-cache.ts'
