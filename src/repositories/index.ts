export * from './attachments.ts'
export * from './audit-log.ts'
export * from './authorized-messages.ts'
export * from './bans.ts'
export * from './channels.ts'
export * from './dms.ts'
export * from './emojis.ts'
export * from './forums.ts'
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
export * from './threads.ts'
export * from './users.ts'
