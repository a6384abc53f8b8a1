export * from './attachments.ts'
export * from './audit-log.ts'
export * from './authorized-messages.ts'
export * from './bans.ts'
export * from './channels.ts'
export * from './dms.ts'
export * from './emojis.ts'
export type {
  FeedChannel,
  FeedEmoji,
  FeedMessage,
  FeedRole,
  GuildstoreEvent,
  GuildstoreEventMap,
} from './event-map.ts'
export {
  type AppendEventInput,
  appendEvent,
  EVENT_DATA_MAX,
  EVENT_PAGE_DEFAULT,
  EVENT_PAGE_MAX,
  type EventPage,
  type ListEventsInput,
  listEvents,
  oldestEventToken,
  type PurgeEventsInput,
  purgeEvents,
} from './events.ts'
export {
  type CreateForumTagInput,
  createForumTag,
  type DeleteForumTagInput,
  deleteForumTag,
  type ForumTag,
  forumTagColumns,
  forumTagFields,
  MAX_POST_TAGS,
  type SetPostTagsInput,
  setPostTags,
  type UpdateForumTagInput,
  updateForumTag,
} from './forums.ts'
export * from './friendships.ts'
export * from './guilds.ts'
export * from './import-messages.ts'
export * from './invites.ts'
export * from './members.ts'
export * from './message-edits.ts'
export * from './messages.ts'
export * from './notification-settings.ts'
export * from './overwrites.ts'
export * from './pins.ts'
export * from './reactions.ts'
export {
  type ChannelReadState,
  type ListChannelReadStatesInput,
  listChannelReadStates,
  type MarkChannelReadInput,
  markChannelRead,
  UNREAD_COUNT_CAP,
} from './read-states.ts'
export * from './roles.ts'
export * from './search.ts'
export * from './sessions.ts'
export {
  EVENT_HINT_CHANNEL,
  EVENT_NOTIFY_CHANNEL,
  type EventSubscription,
  type HintRedis,
  publishEventHint,
  SUBSCRIBER_BUFFER_DEFAULT,
  type SubscribeEventsInput,
  subscribeEvents,
} from './subscribe-events.ts'
export * from './threads.ts'
export * from './users.ts'
