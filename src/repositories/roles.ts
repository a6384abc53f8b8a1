import { type Kysely, sql } from 'kysely'
import type { DB, MemberRoles, Roles } from '../../codegen/db.ts'
import { ConflictError } from '../errors/conflict-error.ts'
import type { ActingAs } from '../errors/permission-denied-error.ts'
import { newId } from '../ids/new-id.ts'
import { MIN_UUID } from '../ids/uuid-bounds.ts'
import { Permissions } from '../permissions/permissions.ts'
import { columnList, type Projection } from '../sql/columns.ts'
import { dynamicQuery, mapErrors, prepareQuery } from '../sql/index.ts'
import {
  assertIdKey,
  assertInRange,
  assertInt64,
  assertObject,
  assertText,
  assertUuid,
  defineFields,
  integer,
  text,
} from '../validation/index.ts'
import { type AdministeredRule, administer, updateAudit } from './administer.ts'
import { assertActingAs, auditChanges } from './internal.ts'
import type { GuildMemberKey } from './members.ts'

/** The role fields an audit entry records. */
const ROLE_FIELDS = ['name', 'permissions', 'position'] as const

// Locks the role against concurrent changes for the rest of the transaction.
const lockRole = prepareQuery('roles.lock_for_update', (db, p: { id: string }) =>
  db.selectFrom('roles').select(roleColumns).where('id', '=', p.id).forUpdate(),
)

/** The columns every role-returning function selects. */
export const roleColumns = columnList<Roles>()([
  'id',
  'guild_id',
  'name',
  'permissions',
  'position',
  'is_default',
  'created_at',
])

/** A guild role; `permissions` is a 64-bit `bigint` bitfield of {@link Permissions} flags. */
export type Role = Projection<Roles, typeof roleColumns>

/** The columns of a role assignment. */
export const memberRoleColumns = columnList<MemberRoles>()(['guild_id', 'user_id', 'role_id'])

/** A role assignment: `role_id` held by `user_id` in `guild_id`. */
export type MemberRole = Projection<MemberRoles, typeof memberRoleColumns>

/** Rules of the `roles` columns (the CHECKs of the schema; `position` is an `integer`). */
export const roleFields = defineFields('roles', { name: text(1, 100), position: integer() })

const NAME = roleFields.name

const insertRole = prepareQuery(
  'roles.insert',
  (db, p: { id: string; guild_id: string; name: string; permissions: bigint; position: number }) =>
    db
      .insertInto('roles')
      .values({
        id: p.id,
        guild_id: p.guild_id,
        name: p.name,
        permissions: p.permissions,
        position: p.position,
        is_default: false,
      })
      .returning(roleColumns),
)

const selectRole = prepareQuery('roles.by_id', (db, p: { id: string }) =>
  db.selectFrom('roles').select(roleColumns).where('id', '=', p.id),
)

// Reads is_default and deletes in one statement; the default role is never deleted.
const deleteRoleById = prepareQuery('roles.delete', (db, p: { id: string }) =>
  db
    .with('r', (db) => db.selectFrom('roles').select('is_default').where('id', '=', p.id))
    .with('d', (db) =>
      db.deleteFrom('roles').where('id', '=', p.id).where('is_default', '=', false).returning('id'),
    )
    .selectNoFrom((eb) => [
      eb.selectFrom('r').select('r.is_default').as('is_default'),
      eb.exists(eb.selectFrom('d').select('d.id')).as('deleted'),
    ]),
)

const selectGuildRoles = prepareQuery('roles.list_of_guild', (db, p: { guild_id: string }) =>
  db
    .selectFrom('roles')
    .select(roleColumns)
    .where('guild_id', '=', p.guild_id)
    .orderBy('position')
    .orderBy('id'),
)

// The default role is refused in the same statement; a role of another guild or
// a user who is not a member fails the composite foreign keys of member_roles.
const insertAssignment = prepareQuery(
  'member_roles.insert',
  (db, p: { guild_id: string; user_id: string; role_id: string }) =>
    db
      .with('r', (db) =>
        db
          .selectFrom('roles')
          .select('is_default')
          .where('id', '=', p.role_id)
          .where('guild_id', '=', p.guild_id),
      )
      .with('i', (db) =>
        db
          .insertInto('member_roles')
          .columns(['guild_id', 'user_id', 'role_id'])
          .expression(
            db
              .selectNoFrom([
                sql<string>`${p.guild_id}::uuid`.as('guild_id'),
                sql<string>`${p.user_id}::uuid`.as('user_id'),
                sql<string>`${p.role_id}::uuid`.as('role_id'),
              ])
              .where(sql<boolean>`not coalesce((select r.is_default from r), false)`),
          )
          .onConflict((oc) => oc.doNothing())
          .returning('role_id'),
      )
      .selectNoFrom((eb) => [
        eb.selectFrom('r').select('r.is_default').as('is_default'),
        eb.exists(eb.selectFrom('i').select('i.role_id')).as('inserted'),
      ]),
)

const deleteAssignment = prepareQuery(
  'member_roles.delete',
  (db, p: { guild_id: string; user_id: string; role_id: string }) =>
    db
      .deleteFrom('member_roles')
      .where('guild_id', '=', p.guild_id)
      .where('user_id', '=', p.user_id)
      .where('role_id', '=', p.role_id),
)

const selectMemberRoles = prepareQuery(
  'member_roles.list_of_member',
  (db, p: { guild_id: string; user_id: string }) =>
    db
      .selectFrom('member_roles as mr')
      .innerJoin('roles as r', (join) =>
        join.onRef('r.id', '=', 'mr.role_id').onRef('r.guild_id', '=', 'mr.guild_id'),
      )
      .select(roleColumns.map((c) => `r.${c}` as const))
      .where('mr.guild_id', '=', p.guild_id)
      .where('mr.user_id', '=', p.user_id)
      .orderBy('r.position')
      .orderBy('r.id'),
)

/** The columns {@link updateRole} may set. */
type RoleSet = { name?: string; permissions?: bigint; position?: number }

// Sets only the patched columns: one shape per combination, sent unnamed.
const updateRoleColumns = dynamicQuery(
  'roles.update',
  (db, id: string, set: RoleSet) =>
    db.updateTable('roles').set(set).where('id', '=', id).returning(roleColumns),
  [[MIN_UUID, { name: '', permissions: 0n, position: 0 }]],
)

/** Input of {@link createRole}. */
export interface CreateRoleInput {
  guild_id: string
  /** 1 to 100 characters. */
  name: string
  /** OR of `Permissions` flags: a signed 64-bit `bigint`. */
  permissions: bigint
  /** 0 to 2^31-1; default 0. */
  position?: number | undefined
}

/**
 * Creates a (non-default) role in a guild.
 *
 * @throws {InvalidInputError} when an id is not a UUID, `name` is not 1–100
 *   characters, `permissions` is not a 64-bit `bigint` or `position` not an integer 0–2^31-1.
 * @throws {ForeignKeyViolationError} when the guild does not exist.
 * Writes the audit entry (`role_create`) in the same transaction. With `as`,
 * the actor needs `MANAGE_ROLES`, may only grant flags they hold, and the
 * position must be below their highest role (the owner: any).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * const mod = await createRole(db, {
 *   guild_id, name: 'mod', permissions: Permissions.MANAGE_MESSAGES | Permissions.MODERATE_MEMBERS,
 * })
 * ```
 */
export async function createRole(
  db: Kysely<DB>,
  input: CreateRoleInput,
  as?: ActingAs,
): Promise<Role> {
  assertObject(input, 'input')
  assertUuid(input.guild_id, 'guild_id')
  assertText(input.name, 'name', NAME)
  assertInt64(input.permissions, 'permissions')
  const position = input.position ?? 0
  assertInRange(position, 'position', roleFields.position)
  assertActingAs(as)
  const { guild_id, name, permissions } = input
  return administer(db, as, {
    rule: () => ({
      guild_id,
      permission: Permissions.MANAGE_ROLES,
      positions: [position],
      grants: permissions,
    }),
    apply: (trx) =>
      insertRole.executeTakeFirstOrThrow(trx, {
        id: newId(),
        guild_id,
        name,
        permissions,
        position,
      }),
    audit: (row) => ({
      guild_id,
      action: 'role_create',
      target_id: row.id,
      changes: auditChanges(null, row, ROLE_FIELDS),
    }),
  })
}

/** Patch of {@link updateRole}. */
export interface UpdateRolePatch {
  name?: string | undefined
  permissions?: bigint | undefined
  position?: number | undefined
}

/**
 * Updates a role's name, permissions or position (the default role's too: its
 * permissions are what every member has). An empty patch returns the role as it is.
 *
 * @throws {InvalidInputError} when a field is invalid (see {@link createRole}).
 * Writes the audit entry (`role_update`, changed fields) in the same
 * transaction. With `as`: `MANAGE_ROLES`, the role and its new position below
 * the actor's highest role, and every flag the patch adds or removes held by
 * the actor (administrators hold all).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await updateRole(db, everyone.id, { permissions: everyone.permissions & ~Permissions.SEND_MESSAGES })
 * ```
 */
export async function updateRole(
  db: Kysely<DB>,
  id: string,
  patch: UpdateRolePatch,
  as?: ActingAs,
): Promise<Role | undefined> {
  assertUuid(id, 'id')
  assertObject(patch, 'patch')
  const set: RoleSet = {}
  if (patch.name !== undefined) {
    assertText(patch.name, 'name', NAME)
    set.name = patch.name
  }
  if (patch.permissions !== undefined) {
    assertInt64(patch.permissions, 'permissions')
    set.permissions = patch.permissions
  }
  if (patch.position !== undefined) {
    assertInRange(patch.position, 'position', roleFields.position)
    set.position = patch.position
  }
  assertActingAs(as)
  if (Object.keys(set).length === 0 && !as) return selectRole.executeTakeFirst(db, { id })
  return administer(db, as, {
    lock: (trx) => lockRole.executeTakeFirst(trx, { id }),
    missing: () => undefined,
    rule: (before) => ({
      guild_id: before.guild_id,
      permission: Permissions.MANAGE_ROLES,
      role_ids: [id],
      positions: set.position === undefined ? [] : [set.position],
      // Every flag whose state changes, added or removed: an actor may not
      // take away what it does not hold either (Discord's rule, as for overwrites).
      grants: set.permissions === undefined ? 0n : set.permissions ^ BigInt(before.permissions),
    }),
    apply: async (trx, before) =>
      Object.keys(set).length === 0
        ? before
        : mapErrors(updateRoleColumns(trx, id, set).executeTakeFirst()),
    audit: (row, before) =>
      updateAudit(before, row, ROLE_FIELDS, {
        guild_id: before.guild_id,
        action: 'role_update',
        target_id: id,
      }),
  })
}

/**
 * Deletes a role; its assignments go with it.
 *
 * @returns `false` when there was no such role.
 * @throws {InvalidInputError} when `id` is not a UUID.
 * @throws {ConflictError} when it is the guild's default role (`reason: 'default_role'`).
 * Writes the audit entry (`role_delete`) in the same transaction. With `as`:
 * `MANAGE_ROLES` and the role below the actor's highest role.
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await deleteRole(db, role.id)
 * ```
 */
export async function deleteRole(db: Kysely<DB>, id: string, as?: ActingAs): Promise<boolean> {
  assertUuid(id, 'id')
  assertActingAs(as)
  return administer(db, as, {
    lock: (trx) => lockRole.executeTakeFirst(trx, { id }),
    missing: () => false,
    rule: (before) => ({
      guild_id: before.guild_id,
      permission: Permissions.MANAGE_ROLES,
      role_ids: [id],
    }),
    apply: async (trx) => {
      const row = await deleteRoleById.executeTakeFirst(trx, { id })
      if (row?.is_default === true) {
        throw new ConflictError("a guild's default role cannot be deleted", {
          reason: 'default_role',
        })
      }
      return row?.deleted === true
    },
    audit: (deleted, before) =>
      deleted
        ? {
            guild_id: before.guild_id,
            action: 'role_delete',
            target_id: id,
            changes: auditChanges(before, null, ROLE_FIELDS),
          }
        : null,
  })
}

/**
 * Lists a guild's roles (the default role included) by position, then id.
 *
 * @throws {InvalidInputError} when `guild_id` is not a UUID.
 * @example
 * ```ts
 * const roles = await listGuildRoles(db, guild_id)
 * ```
 */
export async function listGuildRoles(db: Kysely<DB>, guild_id: string): Promise<Role[]> {
  assertUuid(guild_id, 'guild_id')
  return selectGuildRoles.execute(db, { guild_id })
}

/** What an actor needs to give or take a role: MANAGE_ROLES, the role below its highest, and the member too. */
const assignmentRule = ({ guild_id, user_id, role_id }: RoleAssignment): AdministeredRule => ({
  guild_id,
  permission: Permissions.MANAGE_ROLES,
  role_ids: [role_id],
  target_user_id: user_id,
})

/** Identifies one role assignment. */
export interface RoleAssignment {
  guild_id: string
  user_id: string
  role_id: string
}

/** The fields of a {@link RoleAssignment}, in validation order. */
const ASSIGNMENT_KEY = ['guild_id', 'user_id', 'role_id'] as const

/**
 * Assigns a role to a member; idempotent.
 *
 * @returns `true` when the assignment was made, `false` when it already existed.
 * @throws {InvalidInputError} when an id is not a UUID.
 * @throws {ConflictError} for the guild's default role, which every member has
 *   implicitly (`reason: 'default_role'`).
 * @throws {ForeignKeyViolationError} when the role does not exist or belongs to
 *   another guild, or the user is not a member of the guild (composite foreign keys).
 * Writes the audit entry (`member_role_add`, target: the member) in the same
 * transaction. With `as`: `MANAGE_ROLES`, the role below the actor's highest
 * role, and the member too (unless it is the actor).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await assignRole(db, { guild_id, user_id, role_id: mod.id })
 * ```
 */
export async function assignRole(
  db: Kysely<DB>,
  input: RoleAssignment,
  as?: ActingAs,
): Promise<boolean> {
  assertIdKey(input, ASSIGNMENT_KEY)
  assertActingAs(as)
  const { guild_id, user_id, role_id } = input
  return administer(db, as, {
    rule: () => assignmentRule(input),
    apply: async (trx) => {
      const row = await insertAssignment.executeTakeFirst(trx, { guild_id, user_id, role_id })
      if (row?.is_default === true) {
        throw new ConflictError('the default role is implicit and cannot be assigned', {
          reason: 'default_role',
        })
      }
      return row?.inserted === true
    },
    audit: (added) =>
      added
        ? {
            guild_id,
            action: 'member_role_add',
            target_id: user_id,
            changes: { role_id: { before: null, after: role_id.toLowerCase() } },
          }
        : null,
  })
}

/**
 * Removes a role from a member.
 *
 * @returns `false` when the member did not have it.
 * @throws {InvalidInputError} when an id is not a UUID.
 * Writes the audit entry (`member_role_remove`) in the same transaction. With
 * `as`: `MANAGE_ROLES`, the role below the actor's highest role, and the
 * member too (unless it is the actor).
 * @throws {PermissionDeniedError} when the actor may not (`reason`).
 * @example
 * ```ts
 * await unassignRole(db, { guild_id, user_id, role_id: mod.id })
 * ```
 */
export async function unassignRole(
  db: Kysely<DB>,
  input: RoleAssignment,
  as?: ActingAs,
): Promise<boolean> {
  assertIdKey(input, ASSIGNMENT_KEY)
  assertActingAs(as)
  const { guild_id, user_id, role_id } = input
  return administer(db, as, {
    rule: () => assignmentRule(input),
    apply: async (trx) =>
      (await deleteAssignment.executeAffected(trx, { guild_id, user_id, role_id })) > 0,
    audit: (removed) =>
      removed
        ? {
            guild_id,
            action: 'member_role_remove',
            target_id: user_id,
            changes: { role_id: { before: role_id.toLowerCase(), after: null } },
          }
        : null,
  })
}

/**
 * Lists the roles assigned to a member, by position, then id. The default role,
 * which every member has implicitly, is not listed.
 *
 * @throws {InvalidInputError} when an id is not a UUID.
 * @example
 * ```ts
 * const roles = await listMemberRoles(db, { guild_id, user_id })
 * ```
 */
export async function listMemberRoles(db: Kysely<DB>, input: GuildMemberKey): Promise<Role[]> {
  assertIdKey(input, ['guild_id', 'user_id'])
  return selectMemberRoles.execute(db, { guild_id: input.guild_id, user_id: input.user_id })
}
