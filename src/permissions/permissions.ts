const FLAGS = {
  CREATE_INSTANT_INVITE: 1n << 0n,
  KICK_MEMBERS: 1n << 1n,
  BAN_MEMBERS: 1n << 2n,
  ADMINISTRATOR: 1n << 3n,
  MANAGE_CHANNELS: 1n << 4n,
  MANAGE_GUILD: 1n << 5n,
  ADD_REACTIONS: 1n << 6n,
  VIEW_AUDIT_LOG: 1n << 7n,
  PRIORITY_SPEAKER: 1n << 8n,
  STREAM: 1n << 9n,
  VIEW_CHANNEL: 1n << 10n,
  SEND_MESSAGES: 1n << 11n,
  SEND_TTS_MESSAGES: 1n << 12n,
  MANAGE_MESSAGES: 1n << 13n,
  EMBED_LINKS: 1n << 14n,
  ATTACH_FILES: 1n << 15n,
  READ_MESSAGE_HISTORY: 1n << 16n,
  MENTION_EVERYONE: 1n << 17n,
  USE_EXTERNAL_EMOJIS: 1n << 18n,
  CONNECT: 1n << 20n,
  SPEAK: 1n << 21n,
  MUTE_MEMBERS: 1n << 22n,
  DEAFEN_MEMBERS: 1n << 23n,
  MOVE_MEMBERS: 1n << 24n,
  CHANGE_NICKNAME: 1n << 26n,
  MANAGE_NICKNAMES: 1n << 27n,
  MANAGE_ROLES: 1n << 28n,
  MANAGE_WEBHOOKS: 1n << 29n,
  MANAGE_EMOJIS: 1n << 30n,
  MANAGE_THREADS: 1n << 34n,
  CREATE_PUBLIC_THREADS: 1n << 35n,
  CREATE_PRIVATE_THREADS: 1n << 36n,
  SEND_MESSAGES_IN_THREADS: 1n << 38n,
  MODERATE_MEMBERS: 1n << 40n,
  SEND_VOICE_MESSAGES: 1n << 46n,
} as const satisfies Record<string, bigint>

/**
 * Permission flags, as `bigint` bits (Discord-compatible positions). A role's
 * `permissions` is the OR of its flags; bits above 2^31 are real and survive
 * every round trip (PostgreSQL `bigint`, parsed to `bigint`).
 *
 * @example
 * ```ts
 * await createRole(db, { guild_id, name: 'mod', permissions: Permissions.MANAGE_MESSAGES | Permissions.KICK_MEMBERS })
 * ```
 */
export const Permissions = Object.freeze({
  ...FLAGS,
  /** Every flag, OR'd: what the owner and administrators have. */
  ALL: Object.values(FLAGS).reduce((all, flag) => all | flag, 0n),
})

/** The permissions a new guild's default (@everyone) role gets. */
export const DEFAULT_PERMISSIONS: bigint =
  Permissions.VIEW_CHANNEL |
  Permissions.SEND_MESSAGES |
  Permissions.READ_MESSAGE_HISTORY |
  Permissions.ADD_REACTIONS |
  Permissions.EMBED_LINKS |
  Permissions.ATTACH_FILES |
  Permissions.CONNECT |
  Permissions.SPEAK |
  Permissions.CHANGE_NICKNAME |
  Permissions.CREATE_INSTANT_INVITE |
  Permissions.CREATE_PUBLIC_THREADS |
  Permissions.CREATE_PRIVATE_THREADS |
  Permissions.SEND_MESSAGES_IN_THREADS

/**
 * Whether `perms` holds every bit of `flag` (`ADMINISTRATOR` implies all).
 *
 * @example
 * ```ts
 * if (!hasPermission(await computePermissions(db, { guild_id, user_id }), Permissions.MANAGE_ROLES)) deny()
 * ```
 */
export function hasPermission(perms: bigint, flag: bigint): boolean {
  if ((perms & Permissions.ADMINISTRATOR) !== 0n) return true
  return (perms & flag) === flag
}
