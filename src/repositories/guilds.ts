import { type Kysely, sql } from 'kysely'
import type { DB, Guilds } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import type { ActingAs } from '../errors/permission-denied-error.ts'
import { newId } from '../ids/new-id.ts'
import { DEFAULT_PERMISSIONS, Permissions } from '../permissions/permissions.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { prepareQuery } from '../sql/index.ts'
import {
  assertInRange,
  assertObject,
  assertText,
  assertUuid,
  defineFields,
  integer,
  text,
} from '../validation/index.ts'
import { administer, updateAudit } from './administer.ts'
import { assertActingAs, auditChanges } from './internal.ts'

/** The columns every guild-returning function selects. */
export const guildColumns = columnList<Guilds>()([
  'id',
  'name',
  'owner_id',
  'max_pins_per_channel',
  'max_emojis_static',
  'max_emojis_animated',
  'max_channels',
  'max_channels_per_category',
  'max_thread_members',
  'created_at',
  'updated_at',
])

/** A guild (server). */
export type Guild = Projection<Guilds, typeof guildColumns>

/** Length rules of the `guilds` columns (the CHECKs of the schema). */
export const guildFields = defineFields('guilds', {
  name: text(1, 100),
  max_pins_per_channel: integer(1, 250),
  max_emojis_static: integer(0, 250),
  max_emojis_animated: integer(0, 250),
  max_channels: integer(1, 10_000),
  max_channels_per_category: integer(1, 1000),
  max_thread_members: integer(1, 100_000),
})

/** The settings {@link updateGuild} sets, in audit order. */
const SETTINGS = [
  'name',
  'max_pins_per_channel',
  'max_emojis_static',
  'max_emojis_animated',
  'max_channels',
  'max_channels_per_category',
  'max_thread_members',
] as const

type Settings = { name: string | null } & Record<
  Exclude<(typeof SETTINGS)[number], 'name'>,
  number | null
>

const NAME = guildFields.name

/** The guild, the owner's membership and the default role: one statement, so atomic. */
const insertGuild = prepareQuery(
  'guilds.insert',
  (db, p: { id: string; name: string; owner_id: string; role_id: string }) =>
    db
      .with('g', (db) =>
        db
          .insertInto('guilds')
          .values({ id: p.id, name: p.name, owner_id: p.owner_id })
          .returning(guildColumns),
      )
      .with('m', (db) =>
        db
          .insertInto('guild_members')
          .columns(['guild_id', 'user_id'])
          .expression(db.selectFrom('g').select(['g.id', 'g.owner_id'])),
      )
      .with('r', (db) =>
        db
          .insertInto('roles')
          .columns(['id', 'guild_id', 'name', 'permissions', 'position', 'is_default'])
          .expression(
            db
              .selectFrom('g')
              .select([
                sql<string>`${p.role_id}::uuid`.as('id'),
                'g.id as guild_id',
                sql<string>`'@everyone'`.as('name'),
                sql<bigint>`${sql.raw(`${DEFAULT_PERMISSIONS}`)}::int8`.as('permissions'),
                sql<number>`0`.as('position'),
                sql<boolean>`true`.as('is_default'),
              ]),
          ),
      )
      .selectFrom('g')
      .select(guildColumns),
)

const selectGuild = prepareQuery('guilds.by_id', (db, p: { id: string }) =>
  db.selectFrom('guilds').select(guildColumns).where('id', '=', p.id),
)

const selectGuildsForUser = prepareQuery('guilds.list_for_user', (db, p: { user_id: string }) =>
  db
    .selectFrom('guilds as g')
    .innerJoin('guild_members as gm', 'gm.guild_id', 'g.id')
    .select(guildColumns.map((c) => `g.${c}` as const))
    .where('gm.user_id', '=', p.user_id)
    .orderBy('g.name')
    .orderBy('g.id'),
)

// The patched settings; a null parameter keeps the column as it is.
const updateGuildSettings = prepareQuery('guilds.update', (db, p: { id: string } & Settings) =>
  db
    .updateTable('guilds')
    .set({
      name: sql`coalesce(${p.name}::text, name)`,
      max_pins_per_channel: sql`coalesce(${p.max_pins_per_channel}::int4, max_pins_per_channel)`,
      max_emojis_static: sql`coalesce(${p.max_emojis_static}::int4, max_emojis_static)`,
      max_emojis_animated: sql`coalesce(${p.max_emojis_animated}::int4, max_emojis_animated)`,
      max_channels: sql`coalesce(${p.max_channels}::int4, max_channels)`,
      max_channels_per_category: sql`coalesce(${p.max_channels_per_category}::int4, max_channels_per_category)`,
      max_thread_members: sql`coalesce(${p.max_thread_members}::int4, max_thread_members)`,
      updated_at: sql`now()`,
    })
    .where('id', '=', p.id)
    .returning(guildColumns),
)

const deleteGuildById = prepareQuery('guilds.delete', (db, p: { id: string }) =>
  db.deleteFrom('guilds').where('id', '=', p.id),
)

const lockGuild = prepareQuery('guilds.lock', (db, p: { id: string }) =>
  db
    .selectFrom('guilds')
    .select(['id', 'owner_id', ...SETTINGS])
    .where('id', '=', p.id)
    .forUpdate(),
)

const setOwnerIfMember = prepareQuery(
  'guilds.set_owner_if_member',
  (db, p: { id: string; owner_id: string }) =>
    db
      .updateTable('guilds')
      .set({ owner_id: p.owner_id, updated_at: sql`now()` })
      .where('id', '=', p.id)
      .where(({ exists, selectFrom }) =>
        exists(
          selectFrom('guild_members')
            .select(sql`1`.as('one'))
            .where('guild_id', '=', p.id)
            .where('user_id', '=', p.owner_id)
            // Keeps the new owner's membership from being deleted until we commit.
            .forKeyShare(),
        ),
      )
      .returning(guildColumns),
)

/** Input of {@link createGuild}. */
export interface CreateGuildInput {
  /** 1 to 100 characters. */
  name: string
  owner_id: string
}

/**
 * Creates a guild together with its owner's membership and its default
 * `@everyone` role (`is_default`, position 0, `DEFAULT_PERMISSIONS`), atomically:
 * one statement of data-modifying CTEs, so one round trip and all or nothing.
 * Inside a caller's transaction it is part of that transaction.
 *
 * @throws {InvalidInputError} when `name` is not 1–100 characters or `owner_id` is not a UUID.
 * @throws {ForeignKeyViolationError} when the owner does not exist (nothing is written).
 * @example
 * ```ts
 * const guild = await createGuild(db, { name: 'Rustaceans', owner_id: user.id })
 * // with g as (insert into guilds … returning …), m as (insert into guild_members …),
 * //   r as (insert into roles …) select … from g
 * ```
 */
export async function createGuild(db: Kysely<DB>, input: CreateGuildInput): Promise<Guild> {
  assertObject(input, 'input')
  assertText(input.name, 'name', NAME)
  assertUuid(input.owner_id, 'owner_id')
  return insertGuild.executeTakeFirstOrThrow(db, {
    id: newId(),
    name: input.name,
    owner_id: input.owner_id,
    role_id: newId(),
  })
}

/**
 * Finds a guild by id.
 *
 * @throws {InvalidInputError} when `id` is not a UUID.
 * @example
 * ```ts
 * const guild = await findGuildById(db, id)
 * ```
 */
export async function findGuildById(db: Kysely<DB>, id: string): Promise<Guild | undefined> {
  assertUuid(id, 'id')
  return selectGuild.executeTakeFirst(db, { id })
}

/**
 * Lists the guilds a user is a member of (owned ones included), by name, then id.
 *
 * @throws {InvalidInputError} when `user_id` is not a UUID.
 * @example
 * ```ts
 * const guilds = await listGuildsForUser(db, user.id)
 * ```
 */
export async function listGuildsForUser(db: Kysely<DB>, user_id: string): Promise<Guild[]> {
  assertUuid(user_id, 'user_id')
  return selectGuildsForUser.execute(db, { user_id })
}

/** Patch of {@link updateGuild}. */
export interface UpdateGuildPatch {
  /** 1 to 100 characters. */
  name?: string | undefined
  /**
   * How many pinned messages each channel of the guild holds at most: 1 to
   * 250 (default 50). Lowering it keeps existing pins and refuses new ones.
   */
  max_pins_per_channel?: number | undefined
  /**
   * How many static custom emojis the guild holds at most: 0 to 250 (default
   * 50). Lowering it keeps existing emojis and refuses new ones.
   */
  max_emojis_static?: number | undefined
  /** The same for animated custom emojis: 0 to 250 (default 50). */
  max_emojis_animated?: number | undefined
  /** How many channels (categories included) the guild holds at most: 1 to 10000 (default 500, Discord's). */
  max_channels?: number | undefined
  /** How many channels each category holds at most: 1 to 1000 (default 50, Discord's). */
  max_channels_per_category?: number | undefined
  /** How many members each thread holds at most: 1 to 100000 (default 1000, Discord's). */
  max_thread_members?: number | undefined
}

/**
 * Updates a guild's name, pin cap or emoji caps (and `updated_at`). An empty patch
 * changes nothing and returns the guild as it is.
 *
 * @throws {InvalidInputError} when `id` is not a UUID, `name` is not 1–100
 *   characters or a cap is out of its range.
 * Writes the audit entry (`guild_update`) in the same transaction. With `as`,
 * the actor needs `MANAGE_GUILD`.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * const guild = await updateGuild(db, id, { name: 'New name' })
 * ```
 */
export async function updateGuild(
  db: Kysely<DB>,
  id: string,
  patch: UpdateGuildPatch,
  as?: ActingAs,
): Promise<Guild | undefined> {
  assertUuid(id, 'id')
  assertObject(patch, 'patch')
  if (patch.name !== undefined) assertText(patch.name, 'name', NAME)
  const settings: Settings = {
    name: patch.name ?? null,
    max_pins_per_channel: null,
    max_emojis_static: null,
    max_emojis_animated: null,
    max_channels: null,
    max_channels_per_category: null,
    max_thread_members: null,
  }
  for (const cap of SETTINGS) {
    if (cap === 'name') continue
    const value: unknown = patch[cap]
    if (value === undefined) continue
    assertInRange(value, cap, guildFields[cap])
    settings[cap] = value
  }
  assertActingAs(as)
  const empty = SETTINGS.every((field) => settings[field] === null)
  if (empty && !as) return selectGuild.executeTakeFirst(db, { id })
  return administer(db, as, {
    lock: (trx) => lockGuild.executeTakeFirst(trx, { id }),
    missing: () => undefined,
    rule: () => ({ guild_id: id, permission: Permissions.MANAGE_GUILD }),
    apply: (trx) =>
      empty
        ? selectGuild.executeTakeFirst(trx, { id })
        : updateGuildSettings.executeTakeFirst(trx, { id, ...settings }),
    audit: (row, before) =>
      updateAudit(before, row, SETTINGS, { guild_id: id, action: 'guild_update', target_id: id }),
  })
}

/**
 * Deletes a guild; its members, roles, role assignments, channels and their
 * messages go with it (ON DELETE CASCADE).
 *
 * @throws {InvalidInputError} when `id` is not a UUID.
 * @example
 * ```ts
 * const deleted = await deleteGuild(db, id) // false when there was none
 * ```
 */
export async function deleteGuild(db: Kysely<DB>, id: string): Promise<boolean> {
  assertUuid(id, 'id')
  return (await deleteGuildById.executeAffected(db, { id })) > 0
}

/** Input of {@link transferGuildOwnership}. */
export interface TransferGuildOwnershipInput {
  guild_id: string
  new_owner_id: string
}

/**
 * Makes another member the guild's owner. Locks the guild row (`FOR UPDATE`)
 * and the new owner's membership (`FOR KEY SHARE`) in one transaction, so a
 * concurrent transfer or removal cannot interleave. Transferring to the
 * current owner is allowed and changes nothing but `updated_at`.
 *
 * @throws {InvalidInputError} when an id is not a UUID.
 * @throws {NotFoundError} when the guild does not exist (`entity: 'guild'`).
 * @throws {ConflictError} when the new owner is not a member (`reason: 'not_member'`).
 * Writes the audit entry (`owner_transfer`) in the same transaction. With `as`,
 * only the current owner may transfer (`reason: 'not_owner'`).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * const guild = await transferGuildOwnership(db, { guild_id, new_owner_id: member.id })
 * ```
 */
export async function transferGuildOwnership(
  db: Kysely<DB>,
  input: TransferGuildOwnershipInput,
  as?: ActingAs,
): Promise<Guild> {
  assertObject(input, 'input')
  const { guild_id, new_owner_id } = input
  assertUuid(guild_id, 'guild_id')
  assertUuid(new_owner_id, 'new_owner_id')
  assertActingAs(as)
  return administer(db, as, {
    lock: (trx) => lockGuild.executeTakeFirst(trx, { id: guild_id }),
    missing: () => {
      throw new NotFoundError('guild not found', { entity: 'guild' })
    },
    rule: () => ({ guild_id, permission: 0n, owner_only: true }),
    apply: async (trx) => {
      const guild = await setOwnerIfMember.executeTakeFirst(trx, {
        id: guild_id,
        owner_id: new_owner_id,
      })
      if (!guild) {
        throw new ConflictError('the new owner must be a member of the guild', {
          reason: 'not_member',
        })
      }
      return guild
    },
    audit: (guild, locked) => {
      const changes = auditChanges(locked, guild, ['owner_id'])
      if (Object.keys(changes).length === 0) return null
      return { guild_id, action: 'owner_transfer', target_id: guild.owner_id, changes }
    },
  })
}
