import type { Selectable } from 'kysely'
import type {
  ChannelMembers,
  Channels,
  DmChannels,
  DmParticipants,
  Friendships,
  GuildMembers,
  Guilds,
  MemberRoles,
  MessageAttachments,
  Messages,
  Roles,
  Sessions,
  Users,
} from '../codegen/db.ts'

export type {
  ChannelMembers,
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
  Messages,
  Roles,
  Sessions,
  Timestamp,
  UserStatus,
  Users,
} from '../codegen/db.ts'

/** A user as every user-returning function returns it: never `password_hash` or `mfa_secret`. */
export type User = Omit<Selectable<Users>, 'password_hash' | 'mfa_secret'>
/** What {@link findUserCredentials} returns: the only read of the secret columns. */
export interface UserCredentials {
  id: string
  password_hash: string | null
  mfa_secret: string | null
}
/** A session (refresh token). `token_hash` is left out: the caller already holds it. */
export type Session = Omit<Selectable<Sessions>, 'token_hash'>
export type Guild = Selectable<Guilds>
export type GuildMember = Selectable<GuildMembers>
export type Role = Selectable<Roles>
export type MemberRole = Selectable<MemberRoles>
/** A channel: a guild text/voice channel, or (type `'dm'`, no guild) the channel of a DM. */
export type Channel = Selectable<Channels>
export type ChannelMember = Selectable<ChannelMembers>
/** A message. The internal full-text column `search` is not part of it. */
export type Message = Omit<Selectable<Messages>, 'search'>
export type Attachment = Selectable<MessageAttachments>
export type DmChannel = Selectable<DmChannels>
export type DmParticipant = Selectable<DmParticipants>
export type Friendship = Selectable<Friendships>
