import { type Kysely, sql } from 'kysely'
import type { ChannelMembers, Channels, DB } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import { CheckViolationError } from '../errors/constraint-errors.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import type { ActingAs } from '../errors/permission-denied-error.ts'
import { newId } from '../ids/new-id.ts'
import { MIN_UUID } from '../ids/uuid-bounds.ts'
import { accessibleChannelIdsSql } from '../permissions/access-sql.ts'
import { authorize } from '../permissions/authorize.ts'
import { Permissions } from '../permissions/permissions.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { dynamicQuery, mapErrors, prepareQuery, rawQuery } from '../sql/index.ts'
import {
  assertBoolean,
  assertIdKey,
  assertInRange,
  assertObject,
  assertOneOf,
  assertOptionalText,
  assertOptionalUuid,
  assertText,
  assertUuid,
  defineFields,
  integer,
  text,
} from '../validation/index.ts'
import { administer, updateAudit } from './administer.ts'
import { assertActingAs, auditChanges, lockChannelOfGuild } from './internal.ts'
import type { GuildMemberKey } from './members.ts'

/** The channel fields an audit entry records. */
const CHANNEL_FIELDS = [
  'name',
  'type',
  'topic',
  'position',
  'is_private',
  'rate_limit_per_user',
  'parent_id',
] as const

/** The columns every channel-returning function selects. */
export const channelColumns = columnList<Channels>()([
  'id',
  'guild_id',
  'name',
  'type',
  'topic',
  'position',
  'is_private',
  'rate_limit_per_user',
  'parent_id',
  'require_tag',
  'created_at',
  'updated_at',
])

/**
 * A channel: a guild text or voice channel or category, or (type `'dm'`, no
 * guild) the channel of a DM. `parent_id` is the category a guild channel sits
 * in (`null`: none; a category and a DM's channel never have one).
 */
export type Channel = Projection<Channels, typeof channelColumns>

/** The columns every channel-membership-returning function selects. */
export const channelMemberColumns = columnList<ChannelMembers>()([
  'channel_id',
  'guild_id',
  'user_id',
  'added_at',
])

/** Membership of a private channel (`guild_id` is the channel's guild: migration 0002). */
export type ChannelMember = Projection<ChannelMembers, typeof channelMemberColumns>

/** Rules of the `channels` columns (the CHECKs of the schema; `position` is an `integer`). */
export const channelFields = defineFields('channels', {
  name: text(1, 100),
  topic: text(0, 1024),
  position: integer(),
  rate_limit_per_user: integer(0, 21_600),
})

const NAME = channelFields.name
const TOPIC = channelFields.topic

/**
 * The channel types a guild channel can have (`'dm'` is internal to DMs). A
 * `'category'` groups channels (their `parent_id`) and holds no messages; a
 * `'forum'` holds posts (threads, `createThread`) and no messages of its own.
 */
export const GUILD_CHANNEL_TYPES = ['text', 'voice', 'category', 'forum'] as const

/** A guild channel's type. */
export type GuildChannelType = (typeof GUILD_CHANNEL_TYPES)[number]

const insertChannel = prepareQuery(
  'channels.insert',
  (
    db,
    p: {
      id: string
      guild_id: string
      name: string
      type: GuildChannelType
      topic: string | null
      position: number
      is_private: boolean
      rate_limit_per_user: number
      parent_id: string | null
      require_tag: boolean
    },
  ) =>
    db
      .insertInto('channels')
      .values({
        id: p.id,
        guild_id: p.guild_id,
        name: p.name,
        type: p.type,
        topic: p.topic,
        position: p.position,
        is_private: p.is_private,
        rate_limit_per_user: p.rate_limit_per_user,
        parent_id: p.parent_id,
        require_tag: p.require_tag,
      })
      .returning(channelColumns),
)

const selectChannel = prepareQuery('channels.by_id', (db, p: { id: string }) =>
  db.selectFrom('channels').select(channelColumns).where('id', '=', p.id),
)

const selectGuildChannel = prepareQuery('channels.guild_channel_by_id', (db, p: { id: string }) =>
  db.selectFrom('channels').select(channelColumns).where('id', '=', p.id).where('type', '<>', 'dm'),
)

// One statement for the whole list, with each channel's sync state derived
// from the overwrites themselves (never stored, so never stale): equal sets of
// (target, allow, deny) between the channel and its category.
const selectGuildChannels = prepareQuery('channels.list_of_guild', (db, p: { guild_id: string }) =>
  db
    .selectFrom('channels as c')
    .select(channelColumns.map((column) => `c.${column}` as const))
    .select(
      sql<boolean | null>`case when c.parent_id is null then null else not exists (
  (select o.role_id, o.user_id, o.allow, o.deny from channel_overwrites o where o.channel_id = c.id
   except
   select o.role_id, o.user_id, o.allow, o.deny from channel_overwrites o where o.channel_id = c.parent_id)
  union all
  (select o.role_id, o.user_id, o.allow, o.deny from channel_overwrites o where o.channel_id = c.parent_id
   except
   select o.role_id, o.user_id, o.allow, o.deny from channel_overwrites o where o.channel_id = c.id)
) end`.as('permissions_synced'),
    )
    .where('c.guild_id', '=', p.guild_id)
    // Threads are listed by listActiveThreads / listArchivedThreads.
    .where('c.auto_archive_minutes', 'is', null)
    .orderBy('c.position')
    .orderBy('c.id'),
)

const deleteGuildChannel = prepareQuery('channels.delete', (db, p: { id: string }) =>
  db.deleteFrom('channels').where('id', '=', p.id).where('type', '<>', 'dm'),
)

// One statement: find the channel, lock the user's membership of its guild
// (FOR KEY SHARE: a concurrent removal waits for us), insert idempotently.
// The row carries the guild_id: its foreign key (guild_id, user_id) →
// guild_members ON DELETE CASCADE (migration 0002) removes it with the
// membership, whatever the interleaving with removeGuildMember.
const upsertChannelMember = prepareQuery(
  'channel_members.upsert',
  (db, p: { channel_id: string; user_id: string }) =>
    db
      .with('c', (db) =>
        db
          .selectFrom('channels')
          .select('guild_id')
          .where('id', '=', p.channel_id)
          .where('type', '<>', 'dm'),
      )
      .with('m', (db) =>
        db
          .selectFrom('guild_members')
          .select(['guild_id', 'user_id'])
          .where('guild_id', '=', (eb) => eb.selectFrom('c').select('c.guild_id'))
          .where('user_id', '=', p.user_id)
          .forKeyShare(),
      )
      .with('i', (db) =>
        db
          .insertInto('channel_members')
          .columns(['channel_id', 'guild_id', 'user_id'])
          .expression(
            db
              .selectFrom('m')
              .select([
                sql<string>`${p.channel_id}::uuid`.as('channel_id'),
                'm.guild_id',
                'm.user_id',
              ]),
          )
          .onConflict((oc) =>
            oc
              .columns(['channel_id', 'user_id'])
              .doUpdateSet({ channel_id: sql`excluded.channel_id` }),
          )
          .returning(channelMemberColumns),
      )
      .selectNoFrom((eb) => [
        eb.exists(eb.selectFrom('c').select('c.guild_id')).as('channel_found'),
        eb.selectFrom('i').select('i.channel_id').as('channel_id'),
        eb.selectFrom('i').select('i.guild_id').as('guild_id'),
        eb.selectFrom('i').select('i.user_id').as('user_id'),
        eb.selectFrom('i').select('i.added_at').as('added_at'),
      ]),
)

const deleteChannelMember = prepareQuery(
  'channel_members.delete',
  (db, p: { channel_id: string; user_id: string }) =>
    db
      .deleteFrom('channel_members')
      .where('channel_id', '=', p.channel_id)
      .where('user_id', '=', p.user_id),
)

const selectChannelMembers = prepareQuery('channel_members.list', (db, p: { channel_id: string }) =>
  db
    .selectFrom('channel_members')
    .select(channelMemberColumns)
    .where('channel_id', '=', p.channel_id)
    .orderBy('added_at')
    .orderBy('user_id'),
)

const channelMemberExists = prepareQuery(
  'channel_members.exists',
  (db, p: { channel_id: string; user_id: string }) =>
    db.selectNoFrom((eb) =>
      eb
        .exists(
          eb
            .selectFrom('channel_members')
            .select(sql`1`.as('one'))
            .where('channel_id', '=', p.channel_id)
            .where('user_id', '=', p.user_id),
        )
        .as('exists'),
    ),
)

// The one access rule (src/permissions/access-sql.ts), narrowed to one channel.
const channelAccess = prepareQuery(
  'channels.can_access',
  (db, p: { channel_id: string; user_id: string }) =>
    db.selectNoFrom(
      sql<boolean>`exists (${accessibleChannelIdsSql({ userId: p.user_id, channelId: p.channel_id })})`.as(
        'allowed',
      ),
    ),
)

// The one access rule, narrowed to one guild, joined back for the rows.
const visibleChannels = prepareQuery(
  'channels.list_visible',
  (db, p: { guild_id: string; user_id: string }) =>
    db
      .selectFrom('channels')
      .select(channelColumns)
      .where('guild_id', '=', p.guild_id)
      .where('auto_archive_minutes', 'is', null)
      .where(
        sql<boolean>`id in (${accessibleChannelIdsSql({ userId: p.user_id, guildId: p.guild_id, withoutThreads: true })})`,
      )
      .orderBy('position')
      .orderBy('id'),
)

/** The columns {@link updateChannel} may set. */
type ChannelSet = {
  name?: string
  topic?: string | null
  position?: number
  is_private?: boolean
  rate_limit_per_user?: number
  parent_id?: string | null
}

// Sets only the patched columns: one shape per combination, sent unnamed.
const updateGuildChannel = dynamicQuery(
  'channels.update',
  (db, id: string, set: ChannelSet) =>
    db
      .updateTable('channels')
      .set({ ...set, updated_at: sql`now()` })
      .where('id', '=', id)
      .where('type', '<>', 'dm')
      .returning(channelColumns),
  [[MIN_UUID, { name: '', topic: '', position: 0, is_private: false }]],
)

const selectGuildChannelLocked = prepareQuery(
  'channels.guild_channel_lock',
  (db, p: { id: string }) =>
    db
      .selectFrom('channels')
      .select(channelColumns)
      .where('id', '=', p.id)
      .where('type', '<>', 'dm')
      .forNoKeyUpdate(),
)

/** Locks a guild channel (not a DM's) and reads it; `undefined` when there is none. */
async function lockGuildChannel(
  trx: Kysely<DB>,
  id: string,
): Promise<(Channel & { guild_id: string }) | undefined> {
  const row = await selectGuildChannelLocked.executeTakeFirst(trx, { id })
  return row?.guild_id ? { ...row, guild_id: row.guild_id } : undefined
}

/** What managing a channel needs: `MANAGE_THREADS` for a thread (Discord's), else `MANAGE_CHANNELS`. */
function managePermission(type: Channel['type']): bigint {
  return type === 'public_thread' || type === 'private_thread'
    ? Permissions.MANAGE_THREADS
    : Permissions.MANAGE_CHANNELS
}

/** A parent must be a UUID, and a category has none (its own CHECK, before any I/O). */
function assertParent(parent_id: unknown, type: GuildChannelType): void {
  assertOptionalUuid(parent_id, 'parent_id')
  if (parent_id != null && type === 'category') {
    throw new InvalidInputError('a category cannot sit in a category', { field: 'parent_id' })
  }
}

/** What the structure constraints of migration 0018 raise, as typed conflicts. */
const STRUCTURE_CONFLICTS: Record<string, [reason: string, message: string]> = {
  channels_parent_category: [
    'parent_not_category',
    "a channel's parent must be a category of its guild",
  ],
  channels_parent_kind: ['parent_not_category', 'a category cannot sit in a category'],
  channels_guild_limit: [
    'channel_limit',
    'the guild is at its channel limit (guilds.max_channels)',
  ],
  channels_category_limit: [
    'category_limit',
    'the category is at its limit (guilds.max_channels_per_category)',
  ],
}

/** Runs a channel write, turning a structure constraint's violation into a `ConflictError` (`reason`). */
export async function structureErrors<T>(write: Promise<T>): Promise<T> {
  try {
    return await write
  } catch (error) {
    const conflict =
      error instanceof CheckViolationError && error.constraint !== undefined
        ? STRUCTURE_CONFLICTS[error.constraint]
        : undefined
    if (!conflict) throw error
    throw new ConflictError(conflict[1], { reason: conflict[0], cause: error })
  }
}

/** Input of {@link createChannel}. */
export interface CreateChannelInput {
  guild_id: string
  /** 1 to 100 characters. */
  name: string
  /** `'text'` or `'voice'` (DM channels are made by `findOrCreateDmChannel`). */
  type: GuildChannelType
  /** At most 1024 characters. */
  topic?: string | null | undefined
  /** 0 to 2^31-1; default 0. */
  position?: number | undefined
  /** Visible only to its `channel_members` (and the owner and administrators); default false. */
  is_private?: boolean | undefined
  /**
   * Slowmode: seconds a member waits between two messages, 0 (default, off)
   * to 21600. `MANAGE_MESSAGES` or `MANAGE_CHANNELS` bypasses it.
   */
  rate_limit_per_user?: number | undefined
  /** The category it sits in (a category of the same guild); a category has none. */
  parent_id?: string | null | undefined
  /** A forum only: every post needs a tag (migration 0022); default false. */
  require_tag?: boolean | undefined
}

/**
 * Creates a text or voice channel in a guild.
 *
 * @throws {InvalidInputError} when a field is invalid, including `type: 'dm'`.
 * @throws {ForeignKeyViolationError} when the guild does not exist.
 * Writes the audit entry (`channel_create`) in the same transaction. With
 * `as`, the actor needs `MANAGE_CHANNELS`.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * const general = await createChannel(db, { guild_id, name: 'general', type: 'text' })
 * ```
 */
export async function createChannel(
  db: Kysely<DB>,
  input: CreateChannelInput,
  as?: ActingAs,
): Promise<Channel> {
  assertObject(input, 'input')
  assertUuid(input.guild_id, 'guild_id')
  assertText(input.name, 'name', NAME)
  assertOneOf(input.type, 'type', GUILD_CHANNEL_TYPES)
  assertOptionalText(input.topic, 'topic', TOPIC)
  const position = input.position ?? 0
  assertInRange(position, 'position', channelFields.position)
  const is_private = input.is_private ?? false
  assertBoolean(is_private, 'is_private')
  const rate_limit_per_user = input.rate_limit_per_user ?? 0
  assertInRange(rate_limit_per_user, 'rate_limit_per_user', channelFields.rate_limit_per_user)
  const parent_id = input.parent_id ?? null
  assertParent(parent_id, input.type)
  const require_tag = input.require_tag ?? false
  assertBoolean(require_tag, 'require_tag')
  if (require_tag && input.type !== 'forum') {
    throw new InvalidInputError('require_tag is a forum setting', { field: 'require_tag' })
  }
  assertActingAs(as)
  const { guild_id } = input
  return administer(db, as, {
    // In a category: MANAGE_CHANNELS there (its overwrites apply).
    rule: () => ({
      guild_id,
      permission: Permissions.MANAGE_CHANNELS,
      ...(parent_id === null ? {} : { channel_id: parent_id }),
    }),
    apply: (trx) =>
      structureErrors(
        insertChannel.executeTakeFirstOrThrow(trx, {
          id: newId(),
          guild_id,
          name: input.name,
          type: input.type,
          topic: input.topic ?? null,
          position,
          is_private,
          rate_limit_per_user,
          parent_id,
          require_tag,
        }),
      ),
    audit: (row) => ({
      guild_id,
      action: 'channel_create',
      target_id: row.id,
      changes: auditChanges(null, row, CHANNEL_FIELDS),
    }),
  })
}

/**
 * Finds a channel by id: a guild channel or a DM's channel (type `'dm'`).
 *
 * @throws {InvalidInputError} when `id` is not a UUID.
 * @example
 * ```ts
 * const channel = await findChannelById(db, id)
 * ```
 */
export async function findChannelById(db: Kysely<DB>, id: string): Promise<Channel | undefined> {
  assertUuid(id, 'id')
  return selectChannel.executeTakeFirst(db, { id })
}

/** A channel as {@link listGuildChannels} lists it. */
export type GuildChannelListing = Channel & {
  /**
   * In a category: whether its overwrites equal the category's (derived when
   * listed); `null` outside a category.
   */
  permissions_synced: boolean | null
}

/**
 * Lists a guild's channels (categories and private ones included) by
 * position, then id, in one statement, each with `permissions_synced`. A
 * client groups them by `parent_id`. For what one user may see, use
 * {@link listVisibleChannels}.
 *
 * @throws {InvalidInputError} when `guild_id` is not a UUID.
 * @example
 * ```ts
 * const channels = await listGuildChannels(db, guild_id)
 * ```
 */
export async function listGuildChannels(
  db: Kysely<DB>,
  guild_id: string,
): Promise<GuildChannelListing[]> {
  assertUuid(guild_id, 'guild_id')
  return selectGuildChannels.execute(db, { guild_id })
}

/** Patch of {@link updateChannel}. */
export interface UpdateChannelPatch {
  name?: string | undefined
  /** `null` clears it. */
  topic?: string | null | undefined
  position?: number | undefined
  is_private?: boolean | undefined
  /** Slowmode in seconds, 0 (off) to 21600. */
  rate_limit_per_user?: number | undefined
  /**
   * Moves it into a category of its guild (`null`: out of any). Its overwrites
   * stay as they are (moving never changes who can see it; see
   * `syncChannelPermissions`). With `as`, the actor also needs `MANAGE_CHANNELS`
   * in the destination category.
   */
  parent_id?: string | null | undefined
}

/**
 * Updates a guild channel (and `updated_at`). DM channels are not updated
 * (`undefined`). An empty patch returns the channel as it is.
 *
 * @throws {InvalidInputError} when a field is invalid.
 * Writes the audit entry (`channel_update`, changed fields) in the same
 * transaction. With `as`, the actor needs `MANAGE_CHANNELS` in the channel
 * (`MANAGE_THREADS` for a thread).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await updateChannel(db, channel.id, { topic: 'Release planning', is_private: true })
 * ```
 */
export async function updateChannel(
  db: Kysely<DB>,
  id: string,
  patch: UpdateChannelPatch,
  as?: ActingAs,
): Promise<Channel | undefined> {
  assertUuid(id, 'id')
  assertObject(patch, 'patch')
  const set: ChannelSet = {}
  if (patch.name !== undefined) {
    assertText(patch.name, 'name', NAME)
    set.name = patch.name
  }
  if (patch.topic !== undefined) {
    assertOptionalText(patch.topic, 'topic', TOPIC)
    set.topic = patch.topic
  }
  if (patch.position !== undefined) {
    assertInRange(patch.position, 'position', channelFields.position)
    set.position = patch.position
  }
  if (patch.is_private !== undefined) {
    assertBoolean(patch.is_private, 'is_private')
    set.is_private = patch.is_private
  }
  if (patch.rate_limit_per_user !== undefined) {
    assertInRange(
      patch.rate_limit_per_user,
      'rate_limit_per_user',
      channelFields.rate_limit_per_user,
    )
    set.rate_limit_per_user = patch.rate_limit_per_user
  }
  if (patch.parent_id !== undefined) {
    assertOptionalUuid(patch.parent_id, 'parent_id')
    set.parent_id = patch.parent_id
  }
  assertActingAs(as)
  if (Object.keys(set).length === 0 && !as) return selectGuildChannel.executeTakeFirst(db, { id })
  return administer(db, as, {
    lock: (trx) => lockGuildChannel(trx, id),
    missing: () => undefined,
    rule: (before) => ({
      guild_id: before.guild_id,
      permission: managePermission(before.type),
      channel_id: id,
    }),
    apply: async (trx, before) => {
      if (Object.keys(set).length === 0) return before
      if (set.parent_id != null && before.type === 'category') {
        throw new InvalidInputError('a category cannot sit in a category', { field: 'parent_id' })
      }
      if (as && set.parent_id != null && set.parent_id !== before.parent_id) {
        // Into a category: MANAGE_CHANNELS there too.
        await authorize(trx, {
          guild_id: before.guild_id,
          actor_id: as.actor_id,
          permission: Permissions.MANAGE_CHANNELS,
          channel_id: set.parent_id,
        })
      }
      return structureErrors(mapErrors(updateGuildChannel(trx, id, set).executeTakeFirst()))
    },
    audit: (row, before) =>
      updateAudit(before, row, CHANNEL_FIELDS, {
        guild_id: before.guild_id,
        action: 'channel_update',
        target_id: id,
      }),
  })
}

/**
 * Deletes a guild channel with its messages, attachments and channel members
 * (cascade). DM channels are not deleted here (`false`): they go with their pair.
 *
 * @throws {InvalidInputError} when `id` is not a UUID.
 * Writes the audit entry (`channel_delete`) in the same transaction. With
 * `as`, the actor needs `MANAGE_CHANNELS` in the channel (`MANAGE_THREADS`
 * for a thread).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await deleteChannel(db, channel.id)
 * ```
 */
export async function deleteChannel(db: Kysely<DB>, id: string, as?: ActingAs): Promise<boolean> {
  assertUuid(id, 'id')
  assertActingAs(as)
  return administer(db, as, {
    lock: (trx) => lockGuildChannel(trx, id),
    missing: () => false,
    rule: (before) => ({
      guild_id: before.guild_id,
      permission: managePermission(before.type),
      channel_id: id,
    }),
    apply: async (trx) => (await deleteGuildChannel.executeAffected(trx, { id })) > 0,
    audit: (deleted, before) =>
      deleted
        ? {
            guild_id: before.guild_id,
            action: 'channel_delete',
            target_id: id,
            changes: auditChanges(before, null, CHANNEL_FIELDS),
          }
        : null,
  })
}

/** Identifies one channel membership. */
export interface ChannelMemberKey {
  channel_id: string
  user_id: string
}

/** The fields of a {@link ChannelMemberKey}, in validation order. */
const CHANNEL_MEMBER_KEY = ['channel_id', 'user_id'] as const

/**
 * Adds a guild member to a (private) channel's members; idempotent (an
 * existing row is returned unchanged).
 *
 * @throws {InvalidInputError} when an id is not a UUID.
 * @throws {NotFoundError} when there is no such guild channel (`entity: 'channel'`).
 * @throws {ConflictError} when the user is not a member of the channel's guild (`reason: 'not_member'`).
 * A private channel's membership is its last permission layer (see
 * docs/permissions.md). Writes the audit entry (`channel_member_add`) when the
 * row is new, in the same transaction. With `as`, the actor needs
 * `MANAGE_ROLES` in the channel (the permission that manages overwrites).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await addChannelMember(db, { channel_id: staff.id, user_id })
 * ```
 */
export async function addChannelMember(
  db: Kysely<DB>,
  input: ChannelMemberKey,
  as?: ActingAs,
): Promise<ChannelMember> {
  assertIdKey(input, CHANNEL_MEMBER_KEY)
  assertActingAs(as)
  const { channel_id, user_id } = input
  const notFound = () => {
    throw new NotFoundError('channel not found', { entity: 'channel' })
  }
  return administer(db, as, {
    lock: (trx) => lockChannelOfGuild(trx, channel_id),
    missing: notFound,
    rule: (channel) => ({
      guild_id: channel.guild_id,
      permission: Permissions.MANAGE_ROLES,
      channel_id,
    }),
    apply: async (trx) => {
      const existed = await channelMemberExists.executeTakeFirst(trx, { channel_id, user_id })
      const row = await upsertChannelMember.executeTakeFirst(trx, { channel_id, user_id })
      if (!row?.channel_found) return notFound()
      if (
        row.channel_id == null ||
        row.guild_id == null ||
        row.user_id == null ||
        row.added_at == null
      ) {
        throw new ConflictError("the user must be a member of the channel's guild", {
          reason: 'not_member',
        })
      }
      const member: ChannelMember = {
        channel_id: row.channel_id,
        guild_id: row.guild_id,
        user_id: row.user_id,
        added_at: row.added_at,
      }
      return { member, added: existed?.exists !== true }
    },
    audit: ({ member, added }, channel) =>
      added
        ? {
            guild_id: channel.guild_id,
            action: 'channel_member_add',
            target_id: member.user_id,
            changes: { channel_id: { before: null, after: member.channel_id } },
          }
        : null,
  }).then((r) => r.member)
}

/**
 * Removes a user from a channel's members.
 *
 * @returns `false` when they were not one.
 * @throws {InvalidInputError} when an id is not a UUID.
 * Writes the audit entry (`channel_member_remove`) in the same transaction.
 * With `as`, the actor needs `MANAGE_ROLES` in the channel.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await removeChannelMember(db, { channel_id, user_id })
 * ```
 */
export async function removeChannelMember(
  db: Kysely<DB>,
  input: ChannelMemberKey,
  as?: ActingAs,
): Promise<boolean> {
  assertIdKey(input, CHANNEL_MEMBER_KEY)
  assertActingAs(as)
  const { channel_id, user_id } = input
  return administer(db, as, {
    lock: (trx) => lockChannelOfGuild(trx, channel_id),
    missing: () => false,
    rule: (channel) => ({
      guild_id: channel.guild_id,
      permission: Permissions.MANAGE_ROLES,
      channel_id,
    }),
    apply: async (trx) =>
      (await deleteChannelMember.executeAffected(trx, { channel_id, user_id })) > 0,
    audit: (removed, channel) =>
      removed
        ? {
            guild_id: channel.guild_id,
            action: 'channel_member_remove',
            target_id: user_id,
            changes: { channel_id: { before: channel_id.toLowerCase(), after: null } },
          }
        : null,
  })
}

/**
 * Lists a channel's members (of a private channel: who may see it besides the
 * owner and administrators), by `added_at`, then `user_id`.
 *
 * @throws {InvalidInputError} when `channel_id` is not a UUID.
 * @example
 * ```ts
 * const members = await listChannelMembers(db, channel.id)
 * ```
 */
export async function listChannelMembers(
  db: Kysely<DB>,
  channel_id: string,
): Promise<ChannelMember[]> {
  assertUuid(channel_id, 'channel_id')
  return selectChannelMembers.execute(db, { channel_id })
}

/**
 * Whether a user is one of a channel's members (`channel_members`).
 *
 * @throws {InvalidInputError} when an id is not a UUID.
 * @example
 * ```ts
 * await isChannelMember(db, { channel_id, user_id })
 * ```
 */
export async function isChannelMember(db: Kysely<DB>, input: ChannelMemberKey): Promise<boolean> {
  assertIdKey(input, CHANNEL_MEMBER_KEY)
  const row = await channelMemberExists.executeTakeFirst(db, {
    channel_id: input.channel_id,
    user_id: input.user_id,
  })
  return row?.exists === true
}

/**
 * Whether a user may access a channel: a guild channel when their permissions
 * in it (as {@link computePermissions} computes them) include `VIEW_CHANNEL`;
 * a DM channel when they are one of its participants. One prepared query, the
 * same access rule as {@link listVisibleChannels} and `searchMessages`.
 *
 * @returns `false` too when the channel does not exist.
 * @throws {InvalidInputError} when an id is not a UUID.
 * @example
 * ```ts
 * if (!(await canAccessChannel(db, { channel_id, user_id }))) return reply(404)
 * ```
 */
export async function canAccessChannel(db: Kysely<DB>, input: ChannelMemberKey): Promise<boolean> {
  assertIdKey(input, CHANNEL_MEMBER_KEY)
  const row = await channelAccess.executeTakeFirst(db, {
    channel_id: input.channel_id,
    user_id: input.user_id,
  })
  return row?.allowed === true
}

/**
 * Lists the channels of a guild a user may access, by position, then id (one
 * query; the same access rule as {@link canAccessChannel}). Empty for a non-member.
 *
 * @throws {InvalidInputError} when an id is not a UUID.
 * @example
 * ```ts
 * const sidebar = await listVisibleChannels(db, { guild_id, user_id })
 * ```
 */
export async function listVisibleChannels(
  db: Kysely<DB>,
  input: GuildMemberKey,
): Promise<Channel[]> {
  assertIdKey(input, ['guild_id', 'user_id'])
  return visibleChannels.execute(db, { guild_id: input.guild_id, user_id: input.user_id })
}

/** One entry of {@link reorderChannels}. */
export interface ChannelPositionInput {
  id: string
  /** Its place among its siblings (the channels of its category, or the top level); 0 to 2^31-1. */
  position: number
  /** Moves it into this category (`null`: out of any); absent: it stays where it is. */
  parent_id?: string | null | undefined
}

/** The most channels one reorder may name: a guild's largest possible limit. */
const REORDER_MAX = 10_000

// The guild row FOR NO KEY UPDATE: reorders of one guild run one at a time
// (inserts, whose foreign keys take KEY SHARE on it, go on).
const lockGuildForReorder = prepareQuery(
  'channels.lock_guild_for_reorder',
  (db, p: { id: string }) =>
    db.selectFrom('guilds').select(['id']).where('id', '=', p.id).forNoKeyUpdate(),
)

// Every channel of the guild but its threads (which never move), in id order
// (the order syncChannelPermissions locks a channel and its category in), so a
// reorder cannot deadlock with it.
const lockGuildChannels = prepareQuery('channels.lock_of_guild', (db, p: { guild_id: string }) =>
  db
    .selectFrom('channels')
    .select(['id', 'type', 'parent_id'])
    .where('guild_id', '=', p.guild_id)
    .where('auto_archive_minutes', 'is', null)
    .orderBy('id')
    .forNoKeyUpdate(),
)

const applyPositions = prepareQuery(
  'channels.apply_positions',
  (db, p: { ids: string[]; positions: number[]; parents: (string | null)[]; moves: boolean[] }) =>
    rawQuery(
      db,
      sql<{ id: string }>`update channels c
set position = v.position,
    parent_id = case when v.move then v.parent_id else c.parent_id end
from unnest(${p.ids}::uuid[], ${p.positions}::int4[], ${p.parents}::uuid[], ${p.moves}::bool[])
  as v(id, position, parent_id, move)
where c.id = v.id
returning c.id`,
    ),
)

// Positions 0..n-1 within each group of siblings (same parent; the top level
// holds the categories and the channels in none), in the order asked for:
// a position given by this reorder goes before an untouched sibling's equal one.
const normalizePositions = prepareQuery(
  'channels.normalize_positions',
  (db, p: { guild_id: string; ids: string[] }) =>
    rawQuery(
      db,
      sql`update channels c set position = r.rank
from (
  select id, (row_number() over (
    partition by parent_id order by position, (id = any(${p.ids}::uuid[])) desc, id) - 1)::int4 as rank
  from channels where guild_id = ${p.guild_id}::uuid and auto_archive_minutes is null
) r
where c.id = r.id and c.position <> r.rank`,
    ),
)

/**
 * Reorders a guild's channels, and moves them between categories, in one
 * transaction under the guild's lock: concurrent reorders of a guild run one
 * after the other, never interleaved. Each listed channel takes its
 * `position` among its siblings, and (when `parent_id` is given) its new
 * category; then every group of siblings is renumbered 0, 1, 2… in that
 * order, so no two siblings share a position. Moving keeps a channel's
 * overwrites (see {@link syncChannelPermissions}), so it never changes who can
 * see it. The category limits hold (`reason: 'category_limit'`).
 *
 * With `as`: `MANAGE_CHANNELS` in the guild, and for each channel that moves,
 * `MANAGE_CHANNELS` in it and in its new category. Each move writes a
 * `channel_update` audit entry (`parent_id`); positions alone are not audited.
 *
 * @returns the guild's channels afterwards, as {@link listGuildChannels} lists them.
 * @throws {InvalidInputError} when an entry is invalid, an id repeats, or a category would get a parent.
 * @throws {NotFoundError} when the guild does not exist (`entity: 'guild'`) or a
 *   listed channel is not one of its channels (`entity: 'channel'`).
 * @throws {ConflictError} `'parent_not_category'` or `'category_limit'`.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await reorderChannels(db, guild_id, [
 *   { id: rules.id, position: 0 },
 *   { id: general.id, position: 1, parent_id: textCategory.id },
 * ])
 * ```
 */
export async function reorderChannels(
  db: Kysely<DB>,
  guild_id: string,
  positions: readonly ChannelPositionInput[],
  as?: ActingAs,
): Promise<GuildChannelListing[]> {
  assertUuid(guild_id, 'guild_id')
  if (!Array.isArray(positions) || positions.length === 0 || positions.length > REORDER_MAX) {
    throw new InvalidInputError(`positions must be an array of 1 to ${REORDER_MAX} entries`, {
      field: 'positions',
    })
  }
  const seen = new Set<string>()
  for (const [i, entry] of positions.entries()) {
    assertObject(entry, `positions[${i}]`)
    assertUuid(entry.id, `positions[${i}].id`)
    assertInRange(entry.position, `positions[${i}].position`, channelFields.position)
    assertOptionalUuid(entry.parent_id, `positions[${i}].parent_id`)
    const id = entry.id.toLowerCase()
    if (seen.has(id)) {
      throw new InvalidInputError('a channel is listed twice', { field: `positions[${i}].id` })
    }
    seen.add(id)
  }
  assertActingAs(as)
  const ids = positions.map((e) => e.id.toLowerCase())
  return administer(db, as, {
    lock: async (trx) => {
      if (!(await lockGuildForReorder.executeTakeFirst(trx, { id: guild_id }))) return undefined
      const current = new Map(
        (await lockGuildChannels.execute(trx, { guild_id })).map((c) => [c.id, c]),
      )
      const moves = positions.flatMap((e) => {
        const channel = current.get(e.id.toLowerCase())
        if (!channel) throw new NotFoundError('channel not found', { entity: 'channel' })
        const parent =
          e.parent_id === undefined ? channel.parent_id : (e.parent_id?.toLowerCase() ?? null)
        if (parent === channel.parent_id) return []
        if (parent !== null && channel.type === 'category') {
          throw new InvalidInputError('a category cannot sit in a category', { field: 'parent_id' })
        }
        return [{ id: channel.id, before: channel.parent_id, after: parent }]
      })
      return { moves }
    },
    missing: () => {
      throw new NotFoundError('guild not found', { entity: 'guild' })
    },
    rule: () => ({ guild_id, permission: Permissions.MANAGE_CHANNELS }),
    apply: async (trx, { moves }) => {
      for (const move of moves) {
        if (!as) break
        for (const channel_id of move.after === null ? [move.id] : [move.id, move.after]) {
          await authorize(trx, {
            guild_id,
            actor_id: as.actor_id,
            permission: Permissions.MANAGE_CHANNELS,
            channel_id,
          })
        }
      }
      await structureErrors(
        applyPositions.execute(trx, {
          ids,
          positions: positions.map((e) => e.position),
          parents: positions.map((e) => e.parent_id ?? null),
          moves: positions.map((e) => e.parent_id !== undefined),
        }),
      )
      await normalizePositions.execute(trx, { guild_id, ids })
      return selectGuildChannels.execute(trx, { guild_id })
    },
    audit: (_channels, { moves }) =>
      moves.map((m) => ({
        guild_id,
        action: 'channel_update',
        target_id: m.id,
        changes: { parent_id: { before: m.before, after: m.after } },
      })),
  })
}
