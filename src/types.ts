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
  MessageEdits,
  Messages,
  Roles,
  Sessions,
  Users,
} from '../codegen/db.ts'
import type { Permissions } from './permissions/permissions.ts'

export type {
  ChannelMembers,
  ChannelPinCounts,
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
  MessageEdits,
  MessagePins,
  MessageReactionCounts,
  MessageReactionSummaries,
  MessageReactions,
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
/** A guild (server). */
export type Guild = Selectable<Guilds>
/** A user's membership of a guild. */
export type GuildMember = Selectable<GuildMembers>
/** A guild role; `permissions` is a 64-bit `bigint` bitfield of {@link Permissions} flags. */
export type Role = Selectable<Roles>
/** A role assignment: `role_id` held by `user_id` in `guild_id`. */
export type MemberRole = Selectable<MemberRoles>
/** A channel: a guild text/voice channel, or (type `'dm'`, no guild) the channel of a DM. */
export type Channel = Selectable<Channels>
/** Membership of a private channel. */
export type ChannelMember = Selectable<ChannelMembers>
/** A message. The internal full-text column `search` is not part of it. */
export type Message = Omit<Selectable<Messages>, 'search'>
/** A file attached to a message (the object lives under `s3_key`); `size` is a `bigint`. */
export type Attachment = Selectable<MessageAttachments>
/** A 1:1 DM: its id is also its channel id; `user_a < user_b`. */
export type DmChannel = Selectable<DmChannels>
/** A DM participant and their read marker. */
export type DmParticipant = Selectable<DmParticipants>
/** One direction of a relation: `(user_id → friend_id, status)`; accepted friendships have both directions. */
export type Friendship = Selectable<Friendships>
/** A previous version of a message: `content` as it was before edit number `version`, replaced at `replaced_at`. */
export type MessageEdit = Selectable<MessageEdits>
/** One emoji's reactions on one message, as `listReactions` returns them. */
export interface MessageReactionSummary {
  message_id: string
  /** A Unicode emoji, or a custom emoji reference `name:id`. */
  emoji: string
  /** How many users reacted with it (exact). */
  count: number
  /** Whether the viewer is one of them (false without a `viewer_id`). */
  me: boolean
}
