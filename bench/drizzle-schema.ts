/**
 * A minimal Drizzle schema of the tables the benchmark's Drizzle contender
 * reads and writes (same column names as guildstore's rows, snake_case keys, so
 * both return the same shape).
 */
import {
  bigint,
  boolean,
  customType,
  integer,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core'

const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' })
const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' })

export const userStatus = pgEnum('user_status', ['online', 'away', 'busy', 'offline'])
export const channelType = pgEnum('channel_type', ['text', 'voice', 'dm'])
export const friendshipStatus = pgEnum('friendship_status', ['pending', 'accepted', 'blocked'])

export const users = pgTable('users', {
  id: uuid('id').primaryKey(),
  username: text('username').notNull(),
  email: text('email'),
  password_hash: text('password_hash'),
  mfa_secret: text('mfa_secret'),
  display_name: text('display_name'),
  avatar_url: text('avatar_url'),
  status: userStatus('status').notNull(),
  created_at: ts('created_at').notNull(),
  updated_at: ts('updated_at').notNull(),
})

export const guilds = pgTable('guilds', {
  id: uuid('id').primaryKey(),
  name: text('name').notNull(),
  owner_id: uuid('owner_id').notNull(),
  created_at: ts('created_at').notNull(),
  updated_at: ts('updated_at').notNull(),
})

export const guildMembers = pgTable(
  'guild_members',
  {
    guild_id: uuid('guild_id').notNull(),
    user_id: uuid('user_id').notNull(),
    nickname: text('nickname'),
    joined_at: ts('joined_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.guild_id, t.user_id] })],
)

export const roles = pgTable('roles', {
  id: uuid('id').primaryKey(),
  guild_id: uuid('guild_id').notNull(),
  name: text('name').notNull(),
  permissions: bigint('permissions', { mode: 'bigint' }).notNull(),
  position: integer('position').notNull(),
  is_default: boolean('is_default').notNull(),
  created_at: ts('created_at').notNull(),
})

export const memberRoles = pgTable(
  'member_roles',
  {
    guild_id: uuid('guild_id').notNull(),
    user_id: uuid('user_id').notNull(),
    role_id: uuid('role_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.guild_id, t.user_id, t.role_id] })],
)

export const channels = pgTable('channels', {
  id: uuid('id').primaryKey(),
  guild_id: uuid('guild_id'),
  name: text('name'),
  type: channelType('type').notNull(),
  topic: text('topic'),
  position: integer('position').notNull(),
  is_private: boolean('is_private').notNull(),
  created_at: ts('created_at').notNull(),
  updated_at: ts('updated_at').notNull(),
})

export const channelMembers = pgTable(
  'channel_members',
  {
    channel_id: uuid('channel_id').notNull(),
    user_id: uuid('user_id').notNull(),
    added_at: ts('added_at').notNull(),
    guild_id: uuid('guild_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.channel_id, t.user_id] })],
)

export const messages = pgTable('messages', {
  id: uuid('id').primaryKey(),
  channel_id: uuid('channel_id').notNull(),
  author_id: uuid('author_id').notNull(),
  reply_to: uuid('reply_to'),
  content: text('content').notNull(),
  created_at: ts('created_at').notNull().defaultNow(),
  edited_at: ts('edited_at'),
  deleted_at: ts('deleted_at'),
  search: tsvector('search'),
})

export const dmChannels = pgTable('dm_channels', {
  id: uuid('id').primaryKey(),
  user_a: uuid('user_a').notNull(),
  user_b: uuid('user_b').notNull(),
  created_at: ts('created_at').notNull().defaultNow(),
})

export const dmParticipants = pgTable(
  'dm_participants',
  {
    channel_id: uuid('channel_id').notNull(),
    user_id: uuid('user_id').notNull(),
    last_read_message_id: uuid('last_read_message_id'),
    joined_at: ts('joined_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.channel_id, t.user_id] })],
)

export const friendships = pgTable(
  'friendships',
  {
    user_id: uuid('user_id').notNull(),
    friend_id: uuid('friend_id').notNull(),
    status: friendshipStatus('status').notNull(),
    created_at: ts('created_at').notNull(),
    updated_at: ts('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.user_id, t.friend_id] })],
)

/** The `Message` columns, as a Drizzle selection. */
export const messageSelection = {
  id: messages.id,
  channel_id: messages.channel_id,
  author_id: messages.author_id,
  reply_to: messages.reply_to,
  content: messages.content,
  created_at: messages.created_at,
  edited_at: messages.edited_at,
  deleted_at: messages.deleted_at,
}
