/**
 * Explicit column lists of every returned row type. Repository queries select
 * these, never `selectAll()`, so a secret column (or one added later) never
 * leaks into a default projection.
 */
export const userColumns = [
  'id',
  'username',
  'email',
  'display_name',
  'avatar_url',
  'status',
  'created_at',
  'updated_at',
] as const

export const sessionColumns = [
  'id',
  'user_id',
  'expires_at',
  'ip_address',
  'user_agent',
  'created_at',
] as const

export const guildColumns = ['id', 'name', 'owner_id', 'created_at', 'updated_at'] as const

export const guildMemberColumns = ['guild_id', 'user_id', 'nickname', 'joined_at'] as const

export const roleColumns = [
  'id',
  'guild_id',
  'name',
  'permissions',
  'position',
  'is_default',
  'created_at',
] as const

export const channelColumns = [
  'id',
  'guild_id',
  'name',
  'type',
  'topic',
  'position',
  'is_private',
  'created_at',
  'updated_at',
] as const

export const channelMemberColumns = ['channel_id', 'guild_id', 'user_id', 'added_at'] as const

export const messageColumns = [
  'id',
  'channel_id',
  'author_id',
  'reply_to',
  'content',
  'created_at',
  'edited_at',
  'deleted_at',
] as const

export const attachmentColumns = [
  'id',
  'message_id',
  'filename',
  's3_key',
  'size',
  'content_type',
  'created_at',
] as const

export const dmChannelColumns = ['id', 'user_a', 'user_b', 'created_at'] as const

export const friendshipColumns = [
  'user_id',
  'friend_id',
  'status',
  'created_at',
  'updated_at',
] as const
