import type { Selectable } from 'kysely'
import type {
  AuditLog,
  ChannelMembers,
  ChannelOverwrites,
  Channels,
  DmChannels,
  DmParticipants,
  Friendships,
  GuildBans,
  GuildInvites,
  GuildMembers,
  Guilds,
  MemberRoles,
  MessageAttachments,
  Messages,
  Roles,
  Sessions,
  Users,
} from '../codegen/db.ts'
import type { Permissions } from './permissions/permissions.ts'

export type {
  AuditLog,
  ChannelMembers,
  ChannelOverwrites,
  Channels,
  ChannelType,
  DB,
  DmChannels,
  DmParticipants,
  FriendshipStatus,
  Friendships,
  GuildBans,
  GuildInvites,
  GuildMembers,
  Guilds,
  Json,
  JsonArray,
  JsonObject,
  JsonPrimitive,
  JsonValue,
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
/**
 * A channel permission overwrite: for one role (the default `@everyone` role
 * included) or one member (exactly one of `role_id` / `user_id`), the `allow`
 * and `deny` bitfields (64-bit `bigint`s of `Permissions` flags).
 */
export type ChannelOverwrite = Selectable<ChannelOverwrites>
/** A guild ban. It stands while `expires_at` is `null` or in the future. */
export type Ban = Selectable<GuildBans>
/** A guild invite: `code` lets anyone holding it join; `uses` never exceeds `max_uses`. */
export type Invite = Selectable<GuildInvites>
/** One field's change in an audit entry (64-bit integers and dates as strings). */
export interface AuditFieldChange {
  before: string | number | boolean | null
  after: string | number | boolean | null
}
/**
 * An audit log entry: who (`actor_id`, `null` for a trusted call) did what
 * (`action`) to what (`target_id`), with the changed fields before and after.
 */
export type AuditLogEntry = Omit<Selectable<AuditLog>, 'changes'> & {
  changes: Record<string, AuditFieldChange>
}
