import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import type { ChannelOverwrites, DB } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import { type ActingAs, PermissionDeniedError } from '../errors/permission-denied-error.ts'
import { newId } from '../ids/new-id.ts'
import { type AuthorizeResult, authorize } from '../permissions/authorize.ts'
import { Permissions } from '../permissions/permissions.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { prepareQuery } from '../sql/index.ts'
import { assertInt64, assertObject, assertUuid } from '../validation/index.ts'

/** The columns every overwrite-returning function selects. */
export const channelOverwriteColumns = columnList<ChannelOverwrites>()([
  'id',
  'channel_id',
  'guild_id',
  'role_id',
  'user_id',
  'allow',
  'deny',
  'created_at',
  'updated_at',
])

/**
 * A channel permission overwrite: for one role (the default `@everyone` role
 * included) or one member (exactly one of `role_id` / `user_id`), the `allow`
 * and `deny` bitfields (64-bit `bigint`s of `Permissions` flags).
 */
export type ChannelOverwrite = Projection<ChannelOverwrites, typeof channelOverwriteColumns>

import { type AdministeredRule, administer } from './administer.ts'
import { assertActingAs, auditChanges, lockChannelOfGuild } from './internal.ts'

// The overwrite being replaced or deleted, locked: the bits an actor changes
// are computed from it (Discord's rule, see moderatedBits), and nothing may
// change it before the write that follows in the same transaction.
const selectOverwrite = prepareQuery(
  'channel_overwrites.by_target',
  (db, p: { channel_id: string; role_id: string | null; user_id: string | null }) =>
    db
      .selectFrom('channel_overwrites')
      .select(channelOverwriteColumns)
      .where('channel_id', '=', p.channel_id)
      .where(sql<boolean>`(role_id = ${p.role_id}::uuid or user_id = ${p.user_id}::uuid)`)
      .forUpdate(),
)

type UpsertParams = {
  id: string
  channel_id: string
  guild_id: string
  target_id: string
  allow: bigint
  deny: bigint
}

const upsertRoleOverwrite = prepareQuery('channel_overwrites.upsert_role', (db, p: UpsertParams) =>
  db
    .insertInto('channel_overwrites')
    .values({
      id: p.id,
      channel_id: p.channel_id,
      guild_id: p.guild_id,
      role_id: p.target_id,
      allow: p.allow,
      deny: p.deny,
    })
    .onConflict((oc) =>
      oc.columns(['channel_id', 'role_id']).doUpdateSet({
        allow: sql`excluded.allow`,
        deny: sql`excluded.deny`,
        updated_at: sql`now()`,
      }),
    )
    .returning(channelOverwriteColumns),
)

const upsertMemberOverwrite = prepareQuery(
  'channel_overwrites.upsert_member',
  (db, p: UpsertParams) =>
    db
      .insertInto('channel_overwrites')
      .values({
        id: p.id,
        channel_id: p.channel_id,
        guild_id: p.guild_id,
        user_id: p.target_id,
        allow: p.allow,
        deny: p.deny,
      })
      .onConflict((oc) =>
        oc.columns(['channel_id', 'user_id']).doUpdateSet({
          allow: sql`excluded.allow`,
          deny: sql`excluded.deny`,
          updated_at: sql`now()`,
        }),
      )
      .returning(channelOverwriteColumns),
)

const deleteOverwrite = prepareQuery(
  'channel_overwrites.delete',
  (db, p: { channel_id: string; role_id: string | null; user_id: string | null }) =>
    db
      .deleteFrom('channel_overwrites')
      .where('channel_id', '=', p.channel_id)
      .where(sql<boolean>`(role_id = ${p.role_id}::uuid or user_id = ${p.user_id}::uuid)`)
      .returning(channelOverwriteColumns),
)

const selectOverwrites = prepareQuery(
  'channel_overwrites.list_of_channel',
  (db, p: { channel_id: string }) =>
    db
      .selectFrom('channel_overwrites')
      .select(channelOverwriteColumns)
      .where('channel_id', '=', p.channel_id)
      .orderBy(sql`user_id is not null`)
      .orderBy('created_at')
      .orderBy('id'),
)

/** Identifies one overwrite: a channel and exactly one of a role and a member. */
export interface ChannelOverwriteKey {
  channel_id: string
  /** The role (the default `@everyone` role included) the overwrite is for. */
  role_id?: string | null | undefined
  /** The member the overwrite is for. */
  user_id?: string | null | undefined
}

/** Input of {@link setChannelOverwrite}. */
export interface SetChannelOverwriteInput extends ChannelOverwriteKey {
  /** Flags granted in the channel (64-bit `bigint`). */
  allow: bigint
  /** Flags removed in the channel (64-bit `bigint`); none also in `allow`. */
  deny: bigint
}

function assertOverwriteKey(input: unknown): asserts input is ChannelOverwriteKey {
  assertObject(input, 'input')
  assertUuid(input.channel_id, 'channel_id')
  const hasRole = input.role_id !== undefined && input.role_id !== null
  const hasUser = input.user_id !== undefined && input.user_id !== null
  if (hasRole === hasUser) {
    throw new InvalidInputError('exactly one of role_id and user_id must be given', {
      field: 'role_id',
    })
  }
  if (hasRole) assertUuid(input.role_id, 'role_id')
  else assertUuid(input.user_id, 'user_id')
}

const FIELDS = ['role_id', 'user_id', 'allow', 'deny'] as const

/** An overwrite's two bitfields (an absent overwrite: both `0n`). */
type Bits = { allow: bigint; deny: bigint }
/** An overwrite's key with its absent side as `null`. */
type OverwriteKeyValues = { channel_id: string; role_id: string | null; user_id: string | null }
const NEUTRAL: Bits = { allow: 0n, deny: 0n }

/**
 * Discord's rule for an actor: every bit whose state (allowed, denied or
 * neutral) differs between the overwrite before and after the change must be
 * held by the actor in the channel (`permissions`, computed there by
 * `authorize` after its locks; the owner and administrators hold all). So
 * lifting a deny, or deleting an overwrite, counts as much as granting.
 *
 * @throws {PermissionDeniedError} `'missing_permission'`, `permission`: the
 *   bits changed but not held.
 */
function assertMayChangeBits(permissions: bigint, before: Bits, after: Bits): void {
  // BigInt(): int8 may arrive as a string on a pool without guildstore's parsers.
  const changed = (BigInt(before.allow) ^ after.allow) | (BigInt(before.deny) ^ after.deny)
  const missing = changed & ~permissions
  if (missing !== 0n) {
    throw new PermissionDeniedError(
      'the actor cannot change the state of a permission they do not hold in the channel',
      { reason: 'missing_permission', permission: missing },
    )
  }
}

/**
 * In the transaction of an overwrite change, after the channel's lock: with an
 * actor, `authorize` (`MANAGE_ROLES` in the channel, the hierarchy; its locks
 * come first, in their order), then the overwrite row, locked, and the flags
 * whose state goes from it to `after` checked against what the actor holds.
 *
 * @returns the overwrite as it is before the change (`undefined`: none).
 */
function overwriteRule(guild_id: string, key: OverwriteKeyValues): AdministeredRule {
  return {
    guild_id,
    permission: Permissions.MANAGE_ROLES,
    channel_id: key.channel_id,
    role_ids: key.role_id === null ? [] : [key.role_id],
    target_user_id: key.user_id ?? undefined,
  }
}

/**
 * The overwrite a change replaces (locked by the channel lock), checked
 * against what an authorized actor may change: every flag whose state
 * differs between it and `after`.
 */
async function replacedOverwrite(
  trx: Kysely<DB>,
  actor: AuthorizeResult | undefined,
  key: OverwriteKeyValues,
  after: Bits,
): Promise<ChannelOverwrite | undefined> {
  const before = await selectOverwrite.executeTakeFirst(trx, key)
  if (actor) assertMayChangeBits(actor.permissions, before ?? NEUTRAL, after)
  return before
}

/**
 * Creates or replaces the overwrite of a role (the default `@everyone` role
 * included) or of a member in a guild channel. With `as` (Discord's rule), the
 * actor needs `MANAGE_ROLES` in that channel and may change the state
 * (allowed, denied or neutral) only of flags they hold there (administrators
 * and the owner: any): every flag whose state differs between the overwrite
 * it replaces (none: all neutral) and the new one counts, so lifting a deny
 * needs the flag as much as allowing it, for every target, `@everyone` and
 * the actor's own overwrite included. The role or member must also be below
 * the actor's highest role (`@everyone` is below every role; the actor's own
 * overwrite is not a hierarchy matter, the flag rule still applies). All is
 * checked after locking the channel, the actor's roles and the overwrite, with
 * the write, in one transaction, which also writes the audit entry
 * (`overwrite_create` or `overwrite_update`, target: the channel).
 *
 * `ADMINISTRATOR` may be stored in an overwrite (only by an actor who holds
 * it) but grants nothing: only the guild base grants it (docs/permissions.md).
 *
 * @throws {InvalidInputError} when an id is not a UUID, not exactly one of
 *   `role_id` / `user_id` is given, `allow` / `deny` are not 64-bit `bigint`s or overlap.
 * @throws {NotFoundError} when there is no such guild channel (`entity: 'channel'`).
 * @throws {ForeignKeyViolationError} when the role is not one of the channel's
 *   guild, or the user is not a member of it.
 * @throws {PermissionDeniedError} when the actor may not (see `authorize` reasons;
 *   `'missing_permission'` with `permission`: the changed flags the actor lacks).
 * @example
 * ```ts
 * // Hide #staff from everyone but the moderators:
 * await setChannelOverwrite(db, { channel_id: staff.id, role_id: everyone.id, allow: 0n, deny: Permissions.VIEW_CHANNEL })
 * await setChannelOverwrite(db, { channel_id: staff.id, role_id: mods.id, allow: Permissions.VIEW_CHANNEL, deny: 0n })
 * ```
 */
export async function setChannelOverwrite(
  db: Kysely<DB>,
  input: SetChannelOverwriteInput,
  as?: ActingAs,
): Promise<ChannelOverwrite> {
  assertOverwriteKey(input)
  assertInt64(input.allow, 'allow')
  assertInt64(input.deny, 'deny')
  if ((input.allow & input.deny) !== 0n) {
    throw new InvalidInputError('allow and deny must not share a flag', { field: 'deny' })
  }
  assertActingAs(as)
  const role_id = input.role_id ?? null
  const user_id = input.user_id ?? null
  const { channel_id, allow, deny } = input
  const key = { channel_id, role_id, user_id }
  const target_id = (role_id ?? user_id) as string
  return administer(db, as, {
    lock: (trx) => lockChannelOfGuild(trx, channel_id),
    missing: () => {
      throw new NotFoundError('channel not found', { entity: 'channel' })
    },
    rule: (channel) => overwriteRule(channel.guild_id, key),
    apply: async (trx, channel, actor) => {
      const before = await replacedOverwrite(trx, actor, key, { allow, deny })
      const params = { id: newId(), channel_id, guild_id: channel.guild_id, target_id, allow, deny }
      const row =
        role_id !== null
          ? await upsertRoleOverwrite.executeTakeFirstOrThrow(trx, params)
          : await upsertMemberOverwrite.executeTakeFirstOrThrow(trx, params)
      return { row, before }
    },
    audit: ({ row, before }, channel) => {
      const changes = auditChanges(before, row, FIELDS)
      changes[role_id !== null ? 'role_id' : 'user_id'] = { before: target_id, after: target_id }
      return {
        guild_id: channel.guild_id,
        action: before ? 'overwrite_update' : 'overwrite_create',
        target_id: channel_id,
        changes: before ? changes : auditChanges(null, row, FIELDS),
      }
    },
  }).then((r) => r.row)
}

/**
 * Deletes the overwrite of a role or a member in a channel. With `as`, the
 * actor needs `MANAGE_ROLES` in that channel, must hold every flag the
 * overwrite allows or denies (deleting returns them all to neutral: lifting a
 * deny is changing it), and the role or member must be below their highest
 * role (as for {@link setChannelOverwrite}); checked after locking, the audit
 * entry (`overwrite_delete`) is written in the same transaction.
 *
 * @returns `false` when there was no such overwrite (or channel).
 * @throws {InvalidInputError} when an id is not a UUID or not exactly one of
 *   `role_id` / `user_id` is given.
 * @throws {PermissionDeniedError} when the actor may not (`'missing_permission'`
 *   with `permission`: the overwrite's flags the actor lacks).
 * @example
 * ```ts
 * await deleteChannelOverwrite(db, { channel_id, user_id }, { actor_id: modId })
 * ```
 */
export async function deleteChannelOverwrite(
  db: Kysely<DB>,
  input: ChannelOverwriteKey,
  as?: ActingAs,
): Promise<boolean> {
  assertOverwriteKey(input)
  assertActingAs(as)
  const role_id = input.role_id ?? null
  const user_id = input.user_id ?? null
  const { channel_id } = input
  const key = { channel_id, role_id, user_id }
  return administer(db, as, {
    lock: (trx) => lockChannelOfGuild(trx, channel_id),
    missing: () => undefined,
    rule: (channel) => overwriteRule(channel.guild_id, key),
    apply: async (trx, _channel, actor) => {
      if (actor) await replacedOverwrite(trx, actor, key, NEUTRAL)
      return deleteOverwrite.executeTakeFirst(trx, key)
    },
    audit: (row, channel) =>
      row
        ? {
            guild_id: channel.guild_id,
            action: 'overwrite_delete',
            target_id: channel_id,
            changes: auditChanges(row, null, FIELDS),
          }
        : null,
  }).then((row) => row !== undefined)
}

/**
 * Lists a channel's overwrites: role overwrites first, then member overwrites,
 * each by creation.
 *
 * @throws {InvalidInputError} when `channel_id` is not a UUID.
 * @example
 * ```ts
 * const overwrites = await listChannelOverwrites(db, channel.id)
 * ```
 */
export async function listChannelOverwrites(
  db: Kysely<DB>,
  channel_id: string,
): Promise<ChannelOverwrite[]> {
  assertUuid(channel_id, 'channel_id')
  return selectOverwrites.execute(db, { channel_id })
}

// The channel and its category, locked in id order (as reorderChannels locks a
// guild's channels), so a sync never deadlocks with a reorder or another sync.
const lockChannelAndParent = prepareQuery('channels.lock_with_parent', (db, p: { id: string }) =>
  db
    .selectFrom('channels')
    .select(['id', 'guild_id', 'parent_id', 'type'])
    .where((eb) =>
      eb.or([
        eb('id', '=', p.id),
        eb(
          'id',
          '=',
          eb.selectFrom('channels as child').select('child.parent_id').where('child.id', '=', p.id),
        ),
      ]),
    )
    .where('type', '<>', 'dm')
    .orderBy('id')
    .forNoKeyUpdate(),
)

/** An overwrite's target as one key: `r:<role>` or `u:<user>`. */
const targetKey = (o: { role_id: string | null; user_id: string | null }) =>
  o.role_id !== null ? `r:${o.role_id}` : `u:${o.user_id}`

/** One overwrite a sync changes: what the channel has (`before`) and what its category has (`after`). */
interface SyncChange {
  role_id: string | null
  user_id: string | null
  before: ChannelOverwrite | undefined
  after: ChannelOverwrite | undefined
}

/**
 * Makes a channel's overwrites equal its category's ("sync permissions"):
 * overwrites the category lacks are deleted, the others are created or set to
 * the category's bits, in one transaction that locks the channel and its
 * category (no overwrite of either changes meanwhile). Afterwards
 * `listGuildChannels` lists it with `permissions_synced: true` until one of the
 * two changes. With `as`, the actor needs `MANAGE_ROLES` in the channel, and
 * each overwrite it changes follows {@link setChannelOverwrite}'s rules: every
 * flag whose state changes held in the channel, and the role or member below
 * the actor's highest role. Each change writes its audit entry
 * (`overwrite_create`, `overwrite_update` or `overwrite_delete`).
 *
 * @returns the channel's overwrites afterwards.
 * @throws {InvalidInputError} when `channel_id` is not a UUID.
 * @throws {NotFoundError} when there is no such guild channel (`entity: 'channel'`).
 * @throws {ConflictError} when the channel is in no category (`reason: 'no_category'`).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await updateChannel(db, channel.id, { parent_id: staffCategory.id })
 * await syncChannelPermissions(db, channel.id, { actor_id: adminId })
 * ```
 */
export async function syncChannelPermissions(
  db: Kysely<DB>,
  channel_id: string,
  as?: ActingAs,
): Promise<ChannelOverwrite[]> {
  assertUuid(channel_id, 'channel_id')
  assertActingAs(as)
  return administer(db, as, {
    lock: async (trx) => {
      let rows = await lockChannelAndParent.execute(trx, { id: channel_id })
      let channel = rows.find((r) => r.id === channel_id.toLowerCase())
      if (channel?.parent_id && !rows.some((r) => r.id === channel?.parent_id)) {
        // Moved while we waited for its lock: lock its new category too.
        rows = await lockChannelAndParent.execute(trx, { id: channel_id })
        channel = rows.find((r) => r.id === channel_id.toLowerCase())
      }
      if (!channel?.guild_id) return undefined
      const parent = rows.find((r) => r.id === channel?.parent_id)
      if (!parent) {
        throw new ConflictError('the channel is in no category', { reason: 'no_category' })
      }
      const [own, template] = await Promise.all([
        selectOverwrites.execute(trx, { channel_id }),
        selectOverwrites.execute(trx, { channel_id: parent.id }),
      ])
      const changes = new Map<string, SyncChange>()
      for (const o of own)
        changes.set(targetKey(o), { ...targetOf(o), before: o, after: undefined })
      for (const o of template) {
        const key = targetKey(o)
        changes.set(key, { ...targetOf(o), before: changes.get(key)?.before, after: o })
      }
      const differs = [...changes.values()].filter(
        (c) =>
          BigInt(c.before?.allow ?? 0n) !== BigInt(c.after?.allow ?? 0n) ||
          BigInt(c.before?.deny ?? 0n) !== BigInt(c.after?.deny ?? 0n) ||
          (c.before === undefined) !== (c.after === undefined),
      )
      return { guild_id: channel.guild_id, changes: differs }
    },
    missing: () => {
      throw new NotFoundError('channel not found', { entity: 'channel' })
    },
    rule: ({ guild_id, changes }) => ({
      guild_id,
      permission: Permissions.MANAGE_ROLES,
      channel_id,
      role_ids: changes.flatMap((c) => (c.role_id === null ? [] : [c.role_id])),
    }),
    apply: async (trx, { guild_id, changes }, actor) => {
      for (const c of changes) {
        if (!actor || !as) break
        assertMayChangeBits(actor.permissions, c.before ?? NEUTRAL, bitsOf(c.after))
        if (c.user_id !== null) {
          await authorize(trx, {
            guild_id,
            actor_id: as.actor_id,
            permission: Permissions.MANAGE_ROLES,
            channel_id,
            target_user_id: c.user_id,
          })
        }
      }
      for (const c of changes) {
        const key = { channel_id, role_id: c.role_id, user_id: c.user_id }
        if (c.after === undefined) {
          await deleteOverwrite.executeTakeFirst(trx, key)
          continue
        }
        const params = {
          id: newId(),
          channel_id,
          guild_id,
          target_id: (c.role_id ?? c.user_id) as string,
          allow: BigInt(c.after.allow),
          deny: BigInt(c.after.deny),
        }
        await (c.role_id !== null
          ? upsertRoleOverwrite
          : upsertMemberOverwrite
        ).executeTakeFirstOrThrow(trx, params)
      }
      return selectOverwrites.execute(trx, { channel_id })
    },
    audit: (after, { guild_id, changes }) =>
      changes.map((c) => {
        const now = after.find((o) => targetKey(o) === targetKey(c))
        return {
          guild_id,
          action:
            c.after === undefined
              ? 'overwrite_delete'
              : c.before
                ? 'overwrite_update'
                : 'overwrite_create',
          target_id: channel_id,
          changes: auditChanges(c.before ?? null, now ?? null, FIELDS),
        }
      }),
  })
}

/** The target of an overwrite row. */
const targetOf = (o: ChannelOverwrite) => ({ role_id: o.role_id, user_id: o.user_id })

/** An overwrite's bits (an absent one: neutral). */
const bitsOf = (o: ChannelOverwrite | undefined): Bits =>
  o ? { allow: BigInt(o.allow), deny: BigInt(o.deny) } : NEUTRAL
