/**
 * The public row and table types in one place. Each row type is declared by
 * its entity module (`src/repositories/<entity>.ts`), next to the column list
 * it is derived from; this file only re-exports them with the generated table
 * types of `codegen/db.ts`. A new entity need not touch it: `src/index.ts`
 * exports every entity module through `src/repositories/index.ts`.
 */
/** Every generated table type (`Users`, …), enum type and `DB`: a new migration's tables follow after `npm run codegen`. */
export type * from '../codegen/db.ts'
export type { Attachment } from './repositories/attachments.ts'
export type { AuditFieldChange, AuditLogEntry } from './repositories/audit-log.ts'
export type { Ban } from './repositories/bans.ts'
export type { Channel, ChannelMember } from './repositories/channels.ts'
export type { DmChannel, DmParticipant } from './repositories/dms.ts'
export type { Friendship } from './repositories/friendships.ts'
export type { Guild } from './repositories/guilds.ts'
export type { Invite } from './repositories/invites.ts'
export type { GuildMember } from './repositories/members.ts'
export type { MessageEdit } from './repositories/message-edits.ts'
export type { Message, MessageMention } from './repositories/messages.ts'
export type {
  ChannelNotificationSetting,
  GuildNotificationSetting,
} from './repositories/notification-settings.ts'
export type { ChannelOverwrite } from './repositories/overwrites.ts'
export type { MessageReactionSummary } from './repositories/reactions.ts'
export type { MemberRole, Role } from './repositories/roles.ts'
export type { Session } from './repositories/sessions.ts'
export type { User, UserCredentials } from './repositories/users.ts'
export type { Projection, SecretColumn } from './sql/columns.ts'
