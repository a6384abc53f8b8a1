/**
 * The public row and table types in one place. Each row type is declared by
 * its entity module (`src/repositories/<entity>.ts`), next to the column list
 * it is derived from; this file only re-exports them with the generated table
 * types of `codegen/db.ts`.
 */
export type {
  ChannelMembers,
  ChannelReadStates,
  Channels,
  ChannelType,
  DB,
  DmChannels,
  DmParticipants,
  FriendshipStatus,
  Friendships,
  GuildMembers,
  Guilds,
  MemberRoles,
  MessageAttachments,
  MessageMentions,
  Messages,
  Roles,
  Sessions,
  Timestamp,
  UserStatus,
  Users,
} from '../codegen/db.ts'
export type { Attachment } from './repositories/attachments.ts'
export type { Channel, ChannelMember } from './repositories/channels.ts'
export type { DmChannel, DmParticipant } from './repositories/dms.ts'
export type { Friendship } from './repositories/friendships.ts'
export type { Guild } from './repositories/guilds.ts'
export type { GuildMember } from './repositories/members.ts'
export type { Message, MessageMention } from './repositories/messages.ts'
export type { MemberRole, Role } from './repositories/roles.ts'
export type { Session } from './repositories/sessions.ts'
export type { User, UserCredentials } from './repositories/users.ts'
export type { Projection, SecretColumn } from './sql/columns.ts'
