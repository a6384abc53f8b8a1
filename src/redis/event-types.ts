/**
 * The message fields a channel event carries: the columns of a `messages` row
 * (a `Message` from `createMessage` fits). Extra fields are carried too.
 */
export interface EventMessage {
  id: string
  channel_id: string
  author_id: string
  content: string
  reply_to: string | null
  created_at: Date
  edited_at: Date | null
}

/** A message was posted in a channel. */
export interface MessageCreatedEvent<M extends EventMessage = EventMessage> {
  type: 'message_created'
  message: M
}

/** A message was edited. */
export interface MessageUpdatedEvent<M extends EventMessage = EventMessage> {
  type: 'message_updated'
  message: M
}

/** A message was (soft-)deleted. */
export interface MessageDeletedEvent {
  type: 'message_deleted'
  channel_id: string
  message_id: string
}

/** A user is typing in a channel. */
export interface TypingEvent {
  type: 'typing'
  channel_id: string
  user_id: string
}

/** What happens in a channel, published on `channel:<channel_id>`. */
export type ChannelEvent<M extends EventMessage = EventMessage> =
  | MessageCreatedEvent<M>
  | MessageUpdatedEvent<M>
  | MessageDeletedEvent
  | TypingEvent

/** A user's presence status. */
export type PresenceStatus = 'online' | 'away' | 'busy' | 'offline'

/** A user's presence changed, published on `presence:<user_id>`. */
export interface PresenceEvent {
  type: 'presence'
  user_id: string
  status: PresenceStatus
}

/** A platform-wide event, published on `global`: any `type`, any JSON-able fields. */
export interface GlobalEvent {
  type: string
  [field: string]: unknown
}

/** Receives events; may be async. A throw or rejection is reported to the logger and does not stop delivery. */
export type EventHandler<E> = (event: E) => void | Promise<void>

/** Where pub/sub problems (malformed payloads, failing handlers) are reported. */
export interface RedisEventLogger {
  warn(message: string, meta: Record<string, unknown>): void
}

/** Options of the `subscribe*` functions. */
export interface SubscribeOptions {
  /** Overrides the subscriber client's namespace. */
  namespace?: string | undefined
  /** Told about dropped payloads and failing handlers. Default: nothing is logged. */
  logger?: RedisEventLogger | undefined
}

/** Options of the `publish*` functions. */
export interface PublishOptions {
  /** Overrides the client's namespace. */
  namespace?: string | undefined
  /**
   * Largest encoded payload in bytes for this call; overrides the client's
   * `maxPayloadBytes` (default 1 MiB). A larger event is refused with
   * `PayloadTooLargeError` before anything is sent.
   */
  maxPayloadBytes?: number | undefined
}
