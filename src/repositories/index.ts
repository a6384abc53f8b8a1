export * from './attachments.ts'
export * from './channels.ts'
export * from './dms.ts'
export * from './friendships.ts'
export * from './guilds.ts'
export * from './members.ts'
export * from './messages.ts'
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
export * from './users.ts'
