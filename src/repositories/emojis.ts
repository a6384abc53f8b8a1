import { type Kysely, sql } from 'kysely'
import type { DB, GuildEmojis } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import { CheckViolationError } from '../errors/constraint-errors.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import type { ActingAs } from '../errors/permission-denied-error.ts'
import { newId } from '../ids/new-id.ts'
import { Permissions } from '../permissions/permissions.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { prepareQuery } from '../sql/index.ts'
import {
  assertBoolean,
  assertObject,
  assertText,
  assertUuid,
  assertUuidArray,
  defineFields,
  integer,
  pattern,
  text,
} from '../validation/index.ts'
import { administer, updateAudit } from './administer.ts'
import { assertActingAs, auditChanges } from './internal.ts'

/** The columns every emoji-returning function selects (plus `role_ids`). */
export const guildEmojiColumns = columnList<GuildEmojis>()([
  'id',
  'guild_id',
  'name',
  'animated',
  'storage_key',
  'creator_id',
  'restricted',
  'created_at',
])

/**
 * A guild's custom emoji. Used in a reaction as `name:id`. When `restricted`,
 * only members holding one of `role_ids` may use it (none when the list is
 * empty: its last role was deleted).
 */
export type GuildEmoji = Projection<GuildEmojis, typeof guildEmojiColumns> & {
  /** The roles allowed to use it, in id order; empty when it is not restricted. */
  role_ids: string[]
}

/** Rules of the `guild_emojis` columns (the CHECKs of migration 0015). */
export const guildEmojiFields = defineFields('guild_emojis', {
  name: pattern(/^[A-Za-z0-9_]{2,32}$/),
  storage_key: text(1, 1024),
})

/** The per-guild emoji counters' CHECKs (the cap itself is a guild setting). */
export const guildEmojiCountFields = defineFields('guild_emoji_counts', {
  static_count: integer(0),
  animated_count: integer(0),
})

/** At most this many roles in one emoji's `role_ids` (Discord's role limit). */
export const MAX_EMOJI_ROLES = 250

/** The emoji fields an audit entry records. */
const EMOJI_FIELDS = ['name', 'animated', 'storage_key', 'restricted', 'role_ids'] as const

const roleIdsSql = sql<string[]>`array(select er.role_id from guild_emoji_roles er
  where er.emoji_id = e.id order by er.role_id)`

const emojiSelection = [
  ...guildEmojiColumns.map((c) => `e.${c}` as const),
  roleIdsSql.as('role_ids'),
] as const

const insertEmoji = prepareQuery(
  'guild_emojis.insert',
  (
    db,
    p: {
      id: string
      guild_id: string
      name: string
      animated: boolean
      storage_key: string
      creator_id: string
      restricted: boolean
    },
  ) =>
    db.insertInto('guild_emojis').values({
      id: p.id,
      guild_id: p.guild_id,
      name: p.name,
      animated: p.animated,
      storage_key: p.storage_key,
      creator_id: p.creator_id,
      restricted: p.restricted,
    }),
)

// Only roles of the emoji's guild are inserted: the caller compares the count.
const insertEmojiRoles = prepareQuery(
  'guild_emoji_roles.insert',
  (db, p: { emoji_id: string; guild_id: string; role_ids: string[] }) =>
    db
      .insertInto('guild_emoji_roles')
      .columns(['emoji_id', 'guild_id', 'role_id'])
      .expression(
        db
          .selectFrom('roles')
          .select([sql<string>`${p.emoji_id}::uuid`.as('emoji_id'), 'guild_id', 'id'])
          .where('id', '=', sql<string>`any(${p.role_ids}::uuid[])`)
          .where('guild_id', '=', p.guild_id),
      ),
)

const deleteEmojiRoles = prepareQuery(
  'guild_emoji_roles.delete_of_emoji',
  (db, p: { emoji_id: string }) =>
    db.deleteFrom('guild_emoji_roles').where('emoji_id', '=', p.emoji_id),
)

const selectEmoji = prepareQuery('guild_emojis.by_id', (db, p: { id: string }) =>
  db.selectFrom('guild_emojis as e').select(emojiSelection).where('e.id', '=', p.id),
)

// Locks the emoji against concurrent changes and reactions (which take it FOR SHARE).
const lockEmoji = prepareQuery('guild_emojis.lock_for_update', (db, p: { id: string }) =>
  db.selectFrom('guild_emojis as e').select(emojiSelection).where('e.id', '=', p.id).forUpdate(),
)

// A null parameter keeps the column. A new name moves the emoji's reactions
// (trigger guild_emojis_renamed, migration 0015).
const updateEmoji = prepareQuery(
  'guild_emojis.update',
  (db, p: { id: string; name: string | null; restricted: boolean | null }) =>
    db
      .updateTable('guild_emojis')
      .set({
        name: sql`coalesce(${p.name}::text, name)`,
        restricted: sql`coalesce(${p.restricted}::bool, restricted)`,
      })
      .where('id', '=', p.id),
)

// Its reactions (message_reactions.emoji_id) and role rows go by cascade.
const deleteEmoji = prepareQuery('guild_emojis.delete', (db, p: { id: string }) =>
  db.deleteFrom('guild_emojis').where('id', '=', p.id),
)

const selectGuildEmojis = prepareQuery(
  'guild_emojis.list_of_guild',
  (db, p: { guild_id: string }) =>
    db
      .selectFrom('guild_emojis as e')
      .select(emojiSelection)
      .where('e.guild_id', '=', p.guild_id)
      .orderBy('e.id'),
)

/** The audit view of an emoji: `role_ids` as one comma-separated string (null: none). */
function auditView(emoji: GuildEmoji): Record<string, unknown>
function auditView(emoji: GuildEmoji | null): Record<string, unknown> | null
function auditView(emoji: GuildEmoji | null): Record<string, unknown> | null {
  return emoji && { ...emoji, role_ids: emoji.role_ids.join(',') || null }
}

/** Checks `role_ids`: UUIDs, at most {@link MAX_EMOJI_ROLES}; returns them distinct, lower case. */
function assertRoleIds(value: unknown): string[] {
  assertUuidArray(value, 'role_ids', MAX_EMOJI_ROLES)
  return [...new Set(value.map((id) => id.toLowerCase()))]
}

/** What an actor needs for any change of a guild's emojis. */
const emojiRule = (guild_id: string) => ({ guild_id, permission: Permissions.MANAGE_EMOJIS })

/** Maps the cap's refusal to `ConflictError('emoji_limit')`. */
function emojiLimit(error: unknown): never {
  if (
    error instanceof CheckViolationError &&
    error.constraint === 'guild_emoji_counts_emoji_limit'
  ) {
    throw new ConflictError('the guild holds as many emojis of this kind as its cap allows', {
      reason: 'emoji_limit',
      cause: error,
    })
  }
  throw error
}

/** Sets an emoji's roles to `role_ids` (all of its guild, else InvalidInputError). */
async function setEmojiRoles(
  trx: Kysely<DB>,
  emoji: { id: string; guild_id: string },
  role_ids: string[],
): Promise<void> {
  await deleteEmojiRoles.execute(trx, { emoji_id: emoji.id })
  if (role_ids.length === 0) return
  const n = await insertEmojiRoles.executeAffected(trx, {
    emoji_id: emoji.id,
    guild_id: emoji.guild_id,
    role_ids,
  })
  if (n !== role_ids.length) {
    throw new InvalidInputError("role_ids must name roles of the emoji's guild", {
      field: 'role_ids',
    })
  }
}

/** Input of {@link createGuildEmoji}. */
export interface CreateGuildEmojiInput {
  guild_id: string
  /** 2 to 32 of `A-Z a-z 0-9 _`; unique in the guild, case-insensitively. */
  name: string
  /** Default `false`. Static and animated emojis have separate caps. */
  animated?: boolean | undefined
  /** Where the image is stored (1 to 1024 characters), returned when the emoji is deleted. */
  storage_key: string
  creator_id: string
  /** Only members with one of these roles (of the guild) may use it; none: everyone. */
  role_ids?: string[] | undefined
}

/**
 * Creates a custom emoji in a guild. Within the guild's cap
 * (`max_emojis_static` / `max_emojis_animated`, default 50 each), exact under
 * any concurrency: creates of one guild queue on its counter row.
 *
 * Writes the audit entry `emoji_create` in the same transaction. With `as`,
 * the actor needs `MANAGE_EMOJIS` in the guild.
 *
 * @throws {InvalidInputError} for a malformed id, a name outside the rule, a
 *   storage key out of its length, a non-boolean `animated`, or `role_ids`
 *   not all UUIDs of roles of the guild (at most 250); nothing is written.
 * @throws {ConflictError} (reason `'emoji_limit'`) at the cap.
 * @throws {UniqueViolationError} when the guild has an emoji of that name
 *   (any case; constraint `guild_emojis_name_identity_key`).
 * @throws {ForeignKeyViolationError} when the guild or the creator does not exist.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * const party = await createGuildEmoji(db, { guild_id, name: 'party', storage_key: 'emojis/party.png', creator_id: me })
 * await addReaction(db, { message_id, user_id: me, emoji: `party:${party.id}` })
 * ```
 */
export async function createGuildEmoji(
  db: Kysely<DB>,
  input: CreateGuildEmojiInput,
  as?: ActingAs,
): Promise<GuildEmoji> {
  assertObject(input, 'input')
  assertUuid(input.guild_id, 'guild_id')
  assertEmojiName(input.name)
  const animated = input.animated ?? false
  assertBoolean(animated, 'animated')
  assertText(input.storage_key, 'storage_key', guildEmojiFields.storage_key)
  assertUuid(input.creator_id, 'creator_id')
  const role_ids = input.role_ids === undefined ? [] : assertRoleIds(input.role_ids)
  assertActingAs(as)
  const { guild_id, name, storage_key, creator_id } = input
  return administer(db, as, {
    rule: () => emojiRule(guild_id),
    apply: async (trx) => {
      const id = newId()
      await insertEmoji
        .execute(trx, {
          id,
          guild_id,
          name,
          animated,
          storage_key,
          creator_id,
          restricted: role_ids.length > 0,
        })
        .catch(emojiLimit)
      await setEmojiRoles(trx, { id, guild_id }, role_ids)
      return selectEmoji.executeTakeFirstOrThrow(trx, { id })
    },
    audit: (row) => ({
      guild_id,
      action: 'emoji_create',
      target_id: row.id,
      changes: auditChanges(null, auditView(row), EMOJI_FIELDS),
    }),
  })
}

function assertEmojiName(value: unknown): asserts value is string {
  if (typeof value !== 'string' || !guildEmojiFields.name.pattern.test(value)) {
    throw new InvalidInputError('name must be 2 to 32 of A-Z, a-z, 0-9 and _', { field: 'name' })
  }
}

/** Input of {@link updateGuildEmoji}. */
export interface UpdateGuildEmojiInput {
  emoji_id: string
  /** A new name (same rule as at creation); the emoji's reactions follow it. */
  name?: string | undefined
  /** The roles allowed to use it; `[]` lifts the restriction. */
  role_ids?: string[] | undefined
}

/**
 * Renames a custom emoji or sets its roles. A rename moves the emoji's
 * reactions to the new `name:id` in the same transaction (counts and the
 * order of a message's emojis kept), so a custom reaction is always stored
 * under its emoji's current name. An empty patch returns the emoji as it is.
 *
 * Writes the audit entry `emoji_update` (changed fields) in the same
 * transaction. With `as`, the actor needs `MANAGE_EMOJIS` in the emoji's guild.
 *
 * @returns the emoji, or `undefined` when there is none with that id.
 * @throws {InvalidInputError} for a malformed id or name, or `role_ids` not
 *   all roles of the emoji's guild; nothing is written.
 * @throws {UniqueViolationError} when the guild has another emoji of that name.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await updateGuildEmoji(db, { emoji_id, name: 'partyparrot', role_ids: [boosters.id] }, { actor_id: me })
 * ```
 */
export async function updateGuildEmoji(
  db: Kysely<DB>,
  input: UpdateGuildEmojiInput,
  as?: ActingAs,
): Promise<GuildEmoji | undefined> {
  assertObject(input, 'input')
  assertUuid(input.emoji_id, 'emoji_id')
  if (input.name !== undefined) assertEmojiName(input.name)
  const role_ids = input.role_ids === undefined ? undefined : assertRoleIds(input.role_ids)
  assertActingAs(as)
  const id = input.emoji_id
  const name = input.name ?? null
  if (name === null && role_ids === undefined && !as) {
    return selectEmoji.executeTakeFirst(db, { id })
  }
  return administer(db, as, {
    lock: (trx) => lockEmoji.executeTakeFirst(trx, { id }),
    missing: () => undefined,
    rule: (before) => emojiRule(before.guild_id),
    apply: async (trx, before) => {
      if (name === null && role_ids === undefined) return before
      await updateEmoji.execute(trx, {
        id,
        name,
        restricted: role_ids === undefined ? null : role_ids.length > 0,
      })
      if (role_ids !== undefined) await setEmojiRoles(trx, before, role_ids)
      return selectEmoji.executeTakeFirstOrThrow(trx, { id })
    },
    audit: (row, before) =>
      updateAudit(auditView(before), row && auditView(row), EMOJI_FIELDS, {
        guild_id: before.guild_id,
        action: 'emoji_update',
        target_id: id,
      }),
  })
}

/** Input of {@link deleteGuildEmoji}. */
export interface DeleteGuildEmojiInput {
  emoji_id: string
}

/** What {@link deleteGuildEmoji} returns. */
export interface DeletedGuildEmoji {
  /** The emoji as it was. */
  emoji: GuildEmoji
  /** The stored objects to delete now that no row names them (its image). */
  storage_keys: string[]
}

/**
 * Deletes a custom emoji. Its reactions go in the same transaction (freeing
 * their slots of each message's 20; the counts follow), and so does its
 * place under the guild's cap. Returns the storage keys to delete, as
 * `purgeDeletedMessagesWithAttachments` returns the attachments: the rows are
 * gone when the call returns, the objects are the caller's to remove.
 *
 * Writes the audit entry `emoji_delete` in the same transaction. With `as`,
 * the actor needs `MANAGE_EMOJIS` in the emoji's guild.
 *
 * @returns the deleted emoji and its storage keys, or `undefined` when there was none.
 * @throws {InvalidInputError} for a malformed id.
 * @throws {PermissionDeniedError} when the actor may not (`reason`); nothing is deleted.
 * @example
 * ```ts
 * const gone = await deleteGuildEmoji(db, { emoji_id }, { actor_id: me })
 * for (const key of gone?.storage_keys ?? []) await s3.deleteObject({ Bucket, Key: key })
 * ```
 */
export async function deleteGuildEmoji(
  db: Kysely<DB>,
  input: DeleteGuildEmojiInput,
  as?: ActingAs,
): Promise<DeletedGuildEmoji | undefined> {
  assertObject(input, 'input')
  assertUuid(input.emoji_id, 'emoji_id')
  assertActingAs(as)
  const id = input.emoji_id
  return administer(db, as, {
    lock: (trx) => lockEmoji.executeTakeFirst(trx, { id }),
    missing: () => undefined,
    rule: (emoji) => emojiRule(emoji.guild_id),
    apply: async (trx, emoji) => {
      await deleteEmoji.execute(trx, { id })
      return { emoji, storage_keys: [emoji.storage_key] }
    },
    audit: (_deleted, emoji) => ({
      guild_id: emoji.guild_id,
      action: 'emoji_delete',
      target_id: id,
      changes: auditChanges(auditView(emoji), null, EMOJI_FIELDS),
    }),
  })
}

/**
 * Lists a guild's custom emojis, oldest first, each with its `role_ids`.
 *
 * @throws {InvalidInputError} when `guild_id` is not a UUID.
 * @example
 * ```ts
 * const emojis = await listGuildEmojis(db, guild_id)
 * ```
 */
export async function listGuildEmojis(db: Kysely<DB>, guild_id: string): Promise<GuildEmoji[]> {
  assertUuid(guild_id, 'guild_id')
  return selectGuildEmojis.execute(db, { guild_id })
}
