import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import type {
  ChannelNotificationSettings as ChannelNotificationSettingsTable,
  DB,
  GuildNotificationSettings as GuildNotificationSettingsTable,
} from '../../codegen/db.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { prepareQuery } from '../sql/index.ts'
import {
  assertBoolean,
  assertDate,
  assertObject,
  assertOneOf,
  assertOptionalUuid,
  assertUuid,
} from '../validation/index.ts'

/** How much of a channel's activity notifies a user (Discord's levels). */
export const NOTIFICATION_LEVELS = ['all', 'mentions', 'nothing'] as const

/** A notification level: every message, only mentions, or nothing. */
export type NotificationLevel = (typeof NOTIFICATION_LEVELS)[number]

/** The columns of a user's settings for a guild. */
export const guildNotificationColumns = columnList<GuildNotificationSettingsTable>()([
  'guild_id',
  'user_id',
  'level',
  'suppress_everyone',
  'suppress_roles',
  'muted',
  'muted_until',
  'updated_at',
])

/** A user's notification settings for a guild (`muted_until`: when a mute ends; `null`: until unmuted). */
export type GuildNotificationSetting = Omit<
  Projection<GuildNotificationSettingsTable, typeof guildNotificationColumns>,
  'level'
> & { level: NotificationLevel }

/** The columns of a user's override for one channel. */
export const channelNotificationColumns = columnList<ChannelNotificationSettingsTable>()([
  'channel_id',
  'user_id',
  'level',
  'muted',
  'muted_until',
  'updated_at',
])

/** A user's override for one channel (`level: null`: the guild's level). */
export type ChannelNotificationSetting = Omit<
  Projection<ChannelNotificationSettingsTable, typeof channelNotificationColumns>,
  'level'
> & { level: NotificationLevel | null }

/** Input of {@link setGuildNotificationSettings}: the fields given are set, the others kept. */
export interface SetGuildNotificationSettingsInput {
  guild_id: string
  user_id: string
  level?: NotificationLevel | undefined
  /** `@everyone` mentions count for nothing. */
  suppress_everyone?: boolean | undefined
  /** Role mentions count for nothing. */
  suppress_roles?: boolean | undefined
  muted?: boolean | undefined
  /** When the mute ends by itself; `null`: until unmuted. */
  muted_until?: Date | null | undefined
}

/** Input of {@link setChannelNotificationSettings}: the fields given are set, the others kept. */
export interface SetChannelNotificationSettingsInput {
  channel_id: string
  user_id: string
  /** `null`: follow the guild's level again (for a thread: its parent channel's, else the guild's). */
  level?: NotificationLevel | null | undefined
  muted?: boolean | undefined
  muted_until?: Date | null | undefined
}

/** What {@link getNotificationSettings} returns. */
export interface NotificationSettings {
  /** The guild's settings (the defaults when the user never changed one); `null` for DMs. */
  guild: GuildNotificationSetting | null
  /** The user's channel overrides: of the guild's channels, or of their DMs. */
  channels: ChannelNotificationSetting[]
}

interface SetParams {
  /** The names of the fields to set. */
  fields: string[]
  level: string | null
  suppress_everyone: boolean | null
  suppress_roles: boolean | null
  muted: boolean | null
  muted_until: Date | null
}

// Per field: a field that is not in `fields` keeps its stored value, so two
// devices that change different fields at once both keep their change (the
// row lock of ON CONFLICT orders them; each writes only its own fields).
/** `column`: the new value when the patch names it, else the stored one. */
const givenOrKept = <T>(table: string, column: string, fields: string[]) =>
  sql<T>`case when ${sql.lit(column)} = any(${fields}::text[]) then ${sql.ref(`excluded.${column}`)} else ${sql.ref(`${table}.${column}`)} end`

const upsertGuildSettings = prepareQuery(
  'notification_settings.set_guild',
  (db, p: SetParams & { guild_id: string; user_id: string }) =>
    db
      .insertInto('guild_notification_settings')
      .values({
        guild_id: p.guild_id,
        user_id: p.user_id,
        level: sql`coalesce(${p.level}::text, 'all')`,
        suppress_everyone: sql`coalesce(${p.suppress_everyone}::bool, false)`,
        suppress_roles: sql`coalesce(${p.suppress_roles}::bool, false)`,
        muted: sql`coalesce(${p.muted}::bool, false)`,
        muted_until: p.muted_until,
      })
      .onConflict((oc) =>
        oc.columns(['guild_id', 'user_id']).doUpdateSet({
          level: givenOrKept('guild_notification_settings', 'level', p.fields),
          suppress_everyone: givenOrKept(
            'guild_notification_settings',
            'suppress_everyone',
            p.fields,
          ),
          suppress_roles: givenOrKept('guild_notification_settings', 'suppress_roles', p.fields),
          muted: givenOrKept('guild_notification_settings', 'muted', p.fields),
          muted_until: givenOrKept('guild_notification_settings', 'muted_until', p.fields),
          updated_at: sql`now()`,
        }),
      )
      .returning(guildNotificationColumns),
)

const upsertChannelSettings = prepareQuery(
  'notification_settings.set_channel',
  (db, p: SetParams & { channel_id: string; user_id: string }) =>
    db
      .insertInto('channel_notification_settings')
      .values({
        channel_id: p.channel_id,
        user_id: p.user_id,
        level: p.level,
        muted: sql`coalesce(${p.muted}::bool, false)`,
        muted_until: p.muted_until,
      })
      .onConflict((oc) =>
        oc.columns(['channel_id', 'user_id']).doUpdateSet({
          level: givenOrKept('channel_notification_settings', 'level', p.fields),
          muted: givenOrKept('channel_notification_settings', 'muted', p.fields),
          muted_until: givenOrKept('channel_notification_settings', 'muted_until', p.fields),
          updated_at: sql`now()`,
        }),
      )
      .returning(channelNotificationColumns),
)

const selectGuildSettings = prepareQuery(
  'notification_settings.guild',
  (db, p: { guild_id: string; user_id: string }) =>
    db
      .selectFrom('guild_notification_settings')
      .select(guildNotificationColumns)
      .where('guild_id', '=', p.guild_id)
      .where('user_id', '=', p.user_id),
)

const selectGuildChannelSettings = prepareQuery(
  'notification_settings.guild_channels',
  (db, p: { guild_id: string; user_id: string }) =>
    db
      .selectFrom('channel_notification_settings as s')
      .innerJoin('channels as c', 'c.id', 's.channel_id')
      .select(channelNotificationColumns.map((c) => `s.${c}` as const))
      .where('c.guild_id', '=', p.guild_id)
      .where('s.user_id', '=', p.user_id)
      .orderBy('s.channel_id'),
)

const selectDmChannelSettings = prepareQuery(
  'notification_settings.dm_channels',
  (db, p: { user_id: string }) =>
    db
      .selectFrom('channel_notification_settings as s')
      .innerJoin('channels as c', 'c.id', 's.channel_id')
      .select(channelNotificationColumns.map((c) => `s.${c}` as const))
      .where('c.type', '=', 'dm')
      .where('s.user_id', '=', p.user_id)
      .orderBy('s.channel_id'),
)

/** Validates the shared fields of a patch and lists the ones given. */
function patchParams(
  input: {
    level?: unknown
    suppress_everyone?: unknown
    suppress_roles?: unknown
    muted?: unknown
    muted_until?: unknown
  },
  levelNullable: boolean,
): SetParams {
  const fields: string[] = []
  let level: string | null = null
  if (input.level !== undefined && !(levelNullable && input.level === null)) {
    assertOneOf(input.level, 'level', NOTIFICATION_LEVELS)
    level = input.level
  }
  if (input.level !== undefined) fields.push('level')
  const flag = (name: 'suppress_everyone' | 'suppress_roles' | 'muted') => {
    const v = input[name]
    if (v === undefined) return null
    assertBoolean(v, name)
    fields.push(name)
    return v
  }
  const suppress_everyone = flag('suppress_everyone')
  const suppress_roles = flag('suppress_roles')
  const muted = flag('muted')
  let muted_until: Date | null = null
  if (input.muted_until !== undefined) {
    if (input.muted_until !== null) {
      assertDate(input.muted_until, 'muted_until')
      muted_until = input.muted_until
    }
    fields.push('muted_until')
  }
  if (fields.length === 0) {
    throw new InvalidInputError('give at least one setting to change', { field: 'input' })
  }
  return { fields, level, suppress_everyone, suppress_roles, muted, muted_until }
}

/**
 * Sets a member's notification settings for a guild: only the fields given
 * change, so two devices that change different fields at once both keep
 * theirs (the last writer wins per field). A mute with `muted_until` ends by
 * itself at that time, with no write. listChannelReadStates applies them
 * (docs/read-state.md, "Notification settings").
 *
 * @throws {InvalidInputError} when an id is malformed, a field is invalid, or no field is given.
 * @throws {ForeignKeyViolationError} when the user is not a member of the guild.
 * @example
 * ```ts
 * await setGuildNotificationSettings(db, { guild_id, user_id: me, suppress_everyone: true })
 * await setGuildNotificationSettings(db, { guild_id, user_id: me, muted: true, muted_until: new Date(Date.now() + 3_600_000) })
 * ```
 */
export async function setGuildNotificationSettings(
  db: Kysely<DB>,
  input: SetGuildNotificationSettingsInput,
): Promise<GuildNotificationSetting> {
  assertObject(input, 'input')
  assertUuid(input.guild_id, 'guild_id')
  assertUuid(input.user_id, 'user_id')
  const params = patchParams(input, false)
  return (await upsertGuildSettings.executeTakeFirstOrThrow(db, {
    ...params,
    guild_id: input.guild_id,
    user_id: input.user_id,
  })) as GuildNotificationSetting
}

/**
 * Sets a user's override for one channel (a guild channel, a thread or a DM):
 * its level (`null` follows the guild's again; for a thread, its parent
 * channel's, else the guild's) and a mute with an optional end. Only the
 * fields given change. A thread without an override of its own follows its
 * parent channel's, and a muted parent mutes its threads
 * (docs/read-state.md, "Notification settings").
 *
 * @throws {InvalidInputError} when an id is malformed, a field is invalid, or no field is given.
 * @throws {ForeignKeyViolationError} when the channel or the user does not exist.
 * @example
 * ```ts
 * await setChannelNotificationSettings(db, { channel_id, user_id: me, level: 'mentions' })
 * await setChannelNotificationSettings(db, { channel_id: thread.id, user_id: me, level: 'all' })
 * ```
 */
export async function setChannelNotificationSettings(
  db: Kysely<DB>,
  input: SetChannelNotificationSettingsInput,
): Promise<ChannelNotificationSetting> {
  assertObject(input, 'input')
  assertUuid(input.channel_id, 'channel_id')
  assertUuid(input.user_id, 'user_id')
  const params = patchParams(input, true)
  return (await upsertChannelSettings.executeTakeFirstOrThrow(db, {
    ...params,
    channel_id: input.channel_id,
    user_id: input.user_id,
  })) as ChannelNotificationSetting
}

/**
 * A user's notification settings: for a guild (its settings, the defaults when
 * never changed, and the user's overrides of its channels), or without
 * `guild_id` the overrides of their DMs.
 *
 * @throws {InvalidInputError} for a malformed id.
 * @example
 * ```ts
 * const { guild, channels } = await getNotificationSettings(db, { user_id: me, guild_id })
 * ```
 */
export async function getNotificationSettings(
  db: Kysely<DB>,
  input: { user_id: string; guild_id?: string | null | undefined },
): Promise<NotificationSettings> {
  assertObject(input, 'input')
  assertUuid(input.user_id, 'user_id')
  assertOptionalUuid(input.guild_id, 'guild_id')
  const { user_id, guild_id } = input
  if (guild_id == null) {
    const channels = await selectDmChannelSettings.execute(db, { user_id })
    return { guild: null, channels: channels as ChannelNotificationSetting[] }
  }
  const [stored, channels] = await Promise.all([
    selectGuildSettings.executeTakeFirst(db, { guild_id, user_id }),
    selectGuildChannelSettings.execute(db, { guild_id, user_id }),
  ])
  const guild = (stored as GuildNotificationSetting | undefined) ?? {
    guild_id: guild_id.toLowerCase(),
    user_id: user_id.toLowerCase(),
    level: 'all' as const,
    suppress_everyone: false,
    suppress_roles: false,
    muted: false,
    muted_until: null,
    updated_at: new Date(0),
  }
  return { guild, channels: channels as ChannelNotificationSetting[] }
}
