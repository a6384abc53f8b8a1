/**
 * The change feed's event kinds (docs/events.md): one entry per `type`, its
 * value the event's `data`. Ids are strings; 64-bit numbers (`seq`,
 * permission bits, positions) are decimal strings; times are ISO strings.
 *
 * A host adds its own kinds by declaration merging, then appends them with
 * `appendEvent`:
 *
 * @example
 * ```ts
 * declare module 'guildstore' {
 *   interface GuildstoreEventMap {
 *     'app.poll_closed': { poll_id: string; winner: string }
 *   }
 * }
 * await appendEvent(trx, { type: 'app.poll_closed', guild_id, data: { poll_id, winner } })
 * ```
 */
export interface GuildstoreEventMap {
  /** A message was sent; `message` is the message as it is when read (null once deleted). */
  message_created: {
    message_id: string
    seq: string
    author_id: string
    message: FeedMessage | null
  }
  /**
   * One statement inserted more than 100 messages into the channel (a bulk
   * insert, a COPY, `importMessages`): one event for them all instead of a
   * `message_created` each. Refetch the channel's messages with `seq` from
   * `first_seq` to `last_seq` (`count` of them were inserted; the range may
   * hold older ones when a loader set `seq` itself).
   */
  messages_imported: { first_seq: string; last_seq: string; count: number }
  /** A message's content changed; `message` as for `message_created`. */
  message_edited: { message_id: string; seq: string; message: FeedMessage | null }
  /** A message was deleted (soft). */
  message_deleted: { message_id: string; seq: string }
  /** A message was purged (its row removed). */
  message_purged: { message_id: string; seq: string }
  reaction_added: { message_id: string; user_id: string; emoji: string; emoji_id: string | null }
  reaction_removed: { message_id: string; user_id: string; emoji: string; emoji_id: string | null }
  message_pinned: { message_id: string; pinned_by: string | null }
  message_unpinned: { message_id: string }
  member_joined: { user_id: string; nickname: string | null }
  /** Also in the removed user's own stream; after it, nothing more of the guild reaches them. */
  member_removed: { user_id: string; reason: 'left' | 'kicked' | 'banned' }
  ban_added: { user_id: string; expires_at: string | null }
  ban_removed: { user_id: string }
  role_created: { role: FeedRole }
  role_updated: { role: FeedRole }
  role_deleted: { role_id: string }
  member_role_added: { user_id: string; role_id: string }
  member_role_removed: { user_id: string; role_id: string }
  channel_created: { channel: FeedChannel }
  channel_updated: { channel: FeedChannel }
  /** A guild event (every member hears it). */
  channel_deleted: { channel_id: string }
  /** A guild event carrying ids and bits only: the channel's access may have changed. */
  overwrite_set: {
    channel_id: string
    overwrite_id: string
    role_id: string | null
    user_id: string | null
    allow: string
    deny: string
  }
  overwrite_deleted: {
    channel_id: string
    overwrite_id: string
    role_id: string | null
    user_id: string | null
  }
  invite_created: {
    invite_id: string
    inviter_id: string | null
    max_uses: number | null
    expires_at: string | null
  }
  invite_used: { invite_id: string; uses: number }
  invite_revoked: { invite_id: string; uses: number }
  dm_created: { channel_id: string; user_a: string; user_b: string }
  /**
   * The own streams of both users (`user_id`'s side towards `friend_id`); a
   * block only reaches its author.
   */
  relationship_set: {
    user_id: string
    friend_id: string
    status: 'pending' | 'accepted' | 'blocked'
  }
  relationship_removed: {
    user_id: string
    friend_id: string
    status: 'pending' | 'accepted' | 'blocked'
  }
  /** The user's own stream: a read marker moved (for their other devices). */
  read_state_updated: {
    channel_id: string
    last_read_message_id: string | null
    last_read_seq?: string | undefined
  }
  emoji_created: { emoji: FeedEmoji }
  emoji_updated: { emoji: FeedEmoji }
  emoji_deleted: { emoji_id: string }
}

/** A message as an event carries it (read when the event is read). */
export interface FeedMessage {
  id: string
  channel_id: string
  author_id: string
  reply_to: string | null
  content: string
  created_at: string
  edited_at: string | null
  seq: string
}

/** A role as an event carries it. */
export interface FeedRole {
  id: string
  guild_id: string
  name: string
  permissions: string
  position: number
  is_default: boolean
}

/** A guild channel as an event carries it. */
export interface FeedChannel {
  id: string
  guild_id: string
  type: string
  name: string | null
  topic: string | null
  position: number
  parent_id: string | null
  is_private: boolean
  rate_limit_per_user: number
}

/** A custom emoji as an event carries it. */
export interface FeedEmoji {
  id: string
  name: string
  animated: boolean
  restricted: boolean
}

/**
 * One event of the change feed: a discriminated union on `type` over
 * {@link GuildstoreEventMap} (a host's merged kinds included). `position` is
 * its place in commit order (a decimal string); `guild_id`, `channel_id` and
 * `user_id` say who may read it (docs/events.md, "Access").
 *
 * @example
 * ```ts
 * for (const e of page.events) {
 *   if (e.type === 'message_created') render(e.data.message)
 * }
 * ```
 */
export type GuildstoreEvent = {
  [K in keyof GuildstoreEventMap]: {
    position: string
    type: K
    guild_id: string | null
    channel_id: string | null
    user_id: string | null
    data: GuildstoreEventMap[K]
  }
}[keyof GuildstoreEventMap]

/** The kinds the triggers of migrations 0019 and 0025 write; `appendEvent` refuses them. */
export const BUILT_IN_EVENT_TYPES: ReadonlySet<string> = new Set<keyof GuildstoreEventMap>([
  'message_created',
  'messages_imported',
  'message_edited',
  'message_deleted',
  'message_purged',
  'reaction_added',
  'reaction_removed',
  'message_pinned',
  'message_unpinned',
  'member_joined',
  'member_removed',
  'ban_added',
  'ban_removed',
  'role_created',
  'role_updated',
  'role_deleted',
  'member_role_added',
  'member_role_removed',
  'channel_created',
  'channel_updated',
  'channel_deleted',
  'overwrite_set',
  'overwrite_deleted',
  'invite_created',
  'invite_used',
  'invite_revoked',
  'dm_created',
  'relationship_set',
  'relationship_removed',
  'read_state_updated',
  'emoji_created',
  'emoji_updated',
  'emoji_deleted',
])
