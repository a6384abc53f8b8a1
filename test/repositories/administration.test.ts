/**
 * Guild administration: acting on behalf of a member (permissions, role
 * hierarchy, check-then-write races), bans, invites and the audit log.
 */
import { sql } from 'kysely'
import type pg from 'pg'
import { describe, expect, it } from 'vitest'
import {
  AUDIT_ACTIONS,
  addChannelMember,
  addGuildMember,
  assignRole,
  auditLogFields,
  banMember,
  ConflictError,
  createChannel,
  createInvite,
  createMessage,
  createRole,
  deleteMessage,
  deleteRole,
  findBan,
  findGuildMember,
  findMessageById,
  InvalidInputError,
  isGuildMember,
  listAuditLog,
  listBans,
  listChannelOverwrites,
  listGuildInvites,
  listMemberRoles,
  NotFoundError,
  PermissionDeniedError,
  Permissions,
  removeGuildMember,
  revokeInvite,
  setChannelOverwrite,
  transferGuildOwnership,
  unassignRole,
  unbanMember,
  updateChannel,
  updateGuild,
  updateRole,
  useInvite,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeDm,
  makeGuild,
  makeMember,
  makeRole,
  makeUser,
  unknownId,
} from '../support/factories.ts'
import { raceAtBarrier } from '../support/race.ts'

const t = useTestDatabase({ max: 20 })
const { KICK_MEMBERS, BAN_MEMBERS, MANAGE_ROLES, MANAGE_MESSAGES, VIEW_CHANNEL } = Permissions

/** A guild with an owner, a moderator (role "mods" at 10) and a member (role "crew" at 5). */
async function setup() {
  const owner = await makeUser(t.db)
  const mod = await makeUser(t.db)
  const member = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  await makeMember(t.db, guild.id, mod.id)
  await makeMember(t.db, guild.id, member.id)
  const mods = await makeRole(t.db, guild.id, {
    name: 'mods',
    position: 10,
    permissions: KICK_MEMBERS | BAN_MEMBERS | MANAGE_ROLES | MANAGE_MESSAGES,
  })
  const crew = await makeRole(t.db, guild.id, { name: 'crew', position: 5, permissions: 0n })
  await t.db
    .insertInto('member_roles')
    .values([
      { guild_id: guild.id, user_id: mod.id, role_id: mods.id },
      { guild_id: guild.id, user_id: member.id, role_id: crew.id },
    ])
    .execute()
  return { owner, mod, member, guild, mods, crew }
}

async function findRole(id: string) {
  return t.db.selectFrom('roles').select('permissions').where('id', '=', id).executeTakeFirst()
}

async function denied(promise: Promise<unknown>): Promise<PermissionDeniedError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(PermissionDeniedError)
  return error as PermissionDeniedError
}

/** Waits until some backend of this database waits for a lock (proof that a race is on). */
async function untilSomeoneWaitsForALock(pool: pg.Pool, what: string) {
  for (let i = 0; i < 600; i++) {
    const { rows } = await pool.query(
      `select count(*)::int as n from pg_stat_activity
       where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
    )
    if (rows[0].n > 0) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`nobody waited for a lock (${what})`)
}

describe('acting as: permissions and role hierarchy', () => {
  it('kicks: needs KICK_MEMBERS and a lower target; the owner is above everyone', async () => {
    const s = await setup()
    const peer = await makeUser(t.db)
    await makeMember(t.db, s.guild.id, peer.id)
    await assignRole(t.db, { guild_id: s.guild.id, user_id: peer.id, role_id: s.mods.id })
    // Equal highest role: refused.
    const equal = await denied(
      removeGuildMember(t.db, { guild_id: s.guild.id, user_id: peer.id }, { actor_id: s.mod.id }),
    )
    expect(equal.reason).toBe('hierarchy')
    // The owner: refused by the hierarchy before the owner rule.
    expect(
      (
        await denied(
          removeGuildMember(
            t.db,
            { guild_id: s.guild.id, user_id: s.owner.id },
            { actor_id: s.mod.id },
          ),
        )
      ).reason,
    ).toBe('hierarchy')
    // A member without KICK_MEMBERS.
    const missing = await denied(
      removeGuildMember(
        t.db,
        { guild_id: s.guild.id, user_id: peer.id },
        { actor_id: s.member.id },
      ),
    )
    expect(missing.reason).toBe('missing_permission')
    expect(missing.permission).toBe(KICK_MEMBERS)
    // A stranger.
    const stranger = await makeUser(t.db)
    expect(
      (
        await denied(
          removeGuildMember(
            t.db,
            { guild_id: s.guild.id, user_id: s.member.id },
            { actor_id: stranger.id },
          ),
        )
      ).reason,
    ).toBe('not_member')
    expect(await isGuildMember(t.db, { guild_id: s.guild.id, user_id: peer.id })).toBe(true)
    // Lower target: kicked, with the entry naming the actor and the reason.
    expect(
      await removeGuildMember(
        t.db,
        { guild_id: s.guild.id, user_id: s.member.id },
        { actor_id: s.mod.id, reason: 'spam' },
      ),
    ).toBe(true)
    // The owner kicks anyone below.
    expect(
      await removeGuildMember(
        t.db,
        { guild_id: s.guild.id, user_id: peer.id },
        { actor_id: s.owner.id },
      ),
    ).toBe(true)
    const log = await listAuditLog(t.db, s.guild.id, { action: 'member_kick' })
    expect(log.map((e) => [e.actor_id, e.target_id, e.reason])).toEqual([
      [s.owner.id, peer.id, null],
      [s.mod.id, s.member.id, 'spam'],
    ])
  })

  it('roles: an actor removes only flags it holds (issue 22: no taking away what one lacks)', async () => {
    const s = await setup()
    const as = { actor_id: s.mod.id }
    // A lower role, made by the owner, with a flag the moderator lacks.
    const lower = await makeRole(t.db, s.guild.id, {
      name: 'lower',
      position: 2,
      permissions: KICK_MEMBERS | Permissions.MANAGE_CHANNELS,
    })
    const refused = await denied(updateRole(t.db, lower.id, { permissions: KICK_MEMBERS }, as))
    expect(refused.reason).toBe('missing_permission')
    expect(refused.permission).toBe(Permissions.MANAGE_CHANNELS)
    expect((await findRole(lower.id))?.permissions).toBe(KICK_MEMBERS | Permissions.MANAGE_CHANNELS)
    // Removing a flag it holds, keeping the one it lacks: allowed.
    const updated = await updateRole(
      t.db,
      lower.id,
      { permissions: Permissions.MANAGE_CHANNELS },
      as,
    )
    expect(updated?.permissions).toBe(Permissions.MANAGE_CHANNELS)
  })

  it("roles: managed only below one's highest role, granting only held flags", async () => {
    const s = await setup()
    const as = { actor_id: s.mod.id }
    expect(
      (
        await denied(
          createRole(t.db, { guild_id: s.guild.id, name: 'x', permissions: 0n, position: 10 }, as),
        )
      ).reason,
    ).toBe('hierarchy')
    const grant = await denied(
      createRole(
        t.db,
        { guild_id: s.guild.id, name: 'x', permissions: Permissions.ADMINISTRATOR, position: 1 },
        as,
      ),
    )
    expect(grant.reason).toBe('missing_permission')
    expect(grant.permission).toBe(Permissions.ADMINISTRATOR)
    const helper = await createRole(
      t.db,
      { guild_id: s.guild.id, name: 'helper', permissions: KICK_MEMBERS, position: 3 },
      as,
    )
    expect((await denied(updateRole(t.db, helper.id, { position: 11 }, as))).reason).toBe(
      'hierarchy',
    )
    expect((await denied(updateRole(t.db, s.mods.id, { name: 'renamed' }, as))).reason).toBe(
      'hierarchy',
    )
    expect(
      (
        await denied(
          assignRole(t.db, { guild_id: s.guild.id, user_id: s.member.id, role_id: s.mods.id }, as),
        )
      ).reason,
    ).toBe('hierarchy')
    // Editing a member at or above oneself: refused, even with a lower role.
    const peer = await makeUser(t.db)
    await makeMember(t.db, s.guild.id, peer.id)
    await assignRole(t.db, { guild_id: s.guild.id, user_id: peer.id, role_id: s.mods.id })
    expect(
      (
        await denied(
          assignRole(t.db, { guild_id: s.guild.id, user_id: peer.id, role_id: helper.id }, as),
        )
      ).reason,
    ).toBe('hierarchy')
    const channel = await makeChannel(t.db, s.guild.id)
    expect(
      (
        await denied(
          setChannelOverwrite(
            t.db,
            { channel_id: channel.id, user_id: peer.id, allow: 0n, deny: VIEW_CHANNEL },
            as,
          ),
        )
      ).reason,
    ).toBe('hierarchy')
    expect(
      (
        await denied(
          setChannelOverwrite(
            t.db,
            { channel_id: channel.id, role_id: s.mods.id, allow: 0n, deny: VIEW_CHANNEL },
            as,
          ),
        )
      ).reason,
    ).toBe('hierarchy')
    // Oneself and @everyone are not hierarchy matters.
    expect(
      await assignRole(t.db, { guild_id: s.guild.id, user_id: s.mod.id, role_id: helper.id }, as),
    ).toBe(true)
    await unassignRole(t.db, { guild_id: s.guild.id, user_id: s.mod.id, role_id: helper.id }, as)
    await setChannelOverwrite(
      t.db,
      { channel_id: channel.id, role_id: s.guild.defaultRole.id, allow: 0n, deny: VIEW_CHANNEL },
      as,
    )
    await t.db
      .deleteFrom('audit_log')
      .where('guild_id', '=', s.guild.id)
      .where('action', 'in', ['member_role_add', 'member_role_remove', 'overwrite_create'])
      .execute()
    expect(
      await assignRole(
        t.db,
        { guild_id: s.guild.id, user_id: s.member.id, role_id: helper.id },
        as,
      ),
    ).toBe(true)
    await updateRole(t.db, helper.id, { name: 'helpers', permissions: 0n }, as)
    expect(
      await unassignRole(
        t.db,
        { guild_id: s.guild.id, user_id: s.member.id, role_id: helper.id },
        as,
      ),
    ).toBe(true)
    expect(await deleteRole(t.db, helper.id, as)).toBe(true)
    const log = await listAuditLog(t.db, s.guild.id, { actor_id: s.mod.id })
    expect(log.map((e) => e.action)).toEqual([
      'role_delete',
      'member_role_remove',
      'role_update',
      'member_role_add',
      'role_create',
    ])
    expect(log[2]!.changes).toEqual({
      name: { before: 'helper', after: 'helpers' },
      permissions: { before: KICK_MEMBERS.toString(), after: '0' },
    })
  })

  it('guild, channels, ownership and moderator deletes need their permissions', async () => {
    const s = await setup()
    const as = { actor_id: s.mod.id }
    expect((await denied(updateGuild(t.db, s.guild.id, { name: 'x' }, as))).permission).toBe(
      Permissions.MANAGE_GUILD,
    )
    expect(
      (await denied(createChannel(t.db, { guild_id: s.guild.id, name: 'c', type: 'text' }, as)))
        .permission,
    ).toBe(Permissions.MANAGE_CHANNELS)
    expect(
      (
        await denied(
          transferGuildOwnership(t.db, { guild_id: s.guild.id, new_owner_id: s.mod.id }, as),
        )
      ).reason,
    ).toBe('not_owner')
    const channel = await createChannel(
      t.db,
      { guild_id: s.guild.id, name: 'general', type: 'text' },
      { actor_id: s.owner.id },
    )
    await updateChannel(t.db, channel.id, { topic: 'hello' }, { actor_id: s.owner.id })
    const message = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: s.member.id,
      content: 'delete me',
    })
    // The author deletes their own without any permission, and without an entry.
    const own = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: s.member.id,
      content: 'mine',
    })
    expect(await deleteMessage(t.db, own.id, { actor_id: s.member.id })).toBe(true)
    // A member without MANAGE_MESSAGES cannot delete someone else's.
    const other = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: s.mod.id,
      content: 'the mod',
    })
    expect(
      (await denied(deleteMessage(t.db, other.id, { actor_id: s.member.id }))).permission,
    ).toBe(MANAGE_MESSAGES)
    // Nor may the moderator where an overwrite takes MANAGE_MESSAGES away.
    await setChannelOverwrite(t.db, {
      channel_id: channel.id,
      role_id: s.mods.id,
      allow: 0n,
      deny: MANAGE_MESSAGES,
    })
    await denied(deleteMessage(t.db, message.id, { actor_id: s.mod.id }))
    await setChannelOverwrite(t.db, {
      channel_id: channel.id,
      role_id: s.mods.id,
      allow: 0n,
      deny: 0n,
    })
    expect(await deleteMessage(t.db, message.id, { actor_id: s.mod.id, reason: 'rude' })).toBe(true)
    expect(await findMessageById(t.db, message.id)).toBeUndefined()
    // DMs: only the author.
    const dm = await makeDm(t.db, s.mod.id, s.member.id)
    const dmMessage = await createMessage(t.db, {
      channel_id: dm.id,
      author_id: s.member.id,
      content: 'hi',
    })
    await denied(deleteMessage(t.db, dmMessage.id, { actor_id: s.mod.id }))
    await transferGuildOwnership(
      t.db,
      { guild_id: s.guild.id, new_owner_id: s.mod.id },
      { actor_id: s.owner.id },
    )
    const log = await listAuditLog(t.db, s.guild.id)
    const actions = log.map((e) => e.action)
    expect(actions.filter((a) => a === 'message_delete')).toHaveLength(1)
    expect(log.find((e) => e.action === 'message_delete')).toMatchObject({
      actor_id: s.mod.id,
      target_id: message.id,
      reason: 'rude',
    })
    expect(log[0]).toMatchObject({
      action: 'owner_transfer',
      actor_id: s.owner.id,
      changes: { owner_id: { before: s.owner.id, after: s.mod.id } },
    })
    expect(actions).toContain('channel_create')
    expect(actions).toContain('channel_update')
    expect(actions.filter((a) => a.startsWith('overwrite_'))).toHaveLength(2)
  })
})

describe('check-then-write races: a revocation never lets the action through', () => {
  it('revocation first (uncommitted), action waits on its locks, then is refused', async () => {
    for (const revoke of ['unassign', 'role permissions', 'actor kicked'] as const) {
      const s = await setup()
      const client = await t.pool.connect()
      try {
        await client.query('begin')
        if (revoke === 'unassign') {
          await client.query('delete from member_roles where user_id = $1 and role_id = $2', [
            s.mod.id,
            s.mods.id,
          ])
        } else if (revoke === 'role permissions') {
          await client.query('update roles set permissions = 0 where id = $1', [s.mods.id])
        } else {
          await client.query('delete from guild_members where guild_id = $1 and user_id = $2', [
            s.guild.id,
            s.mod.id,
          ])
        }
        const kick = removeGuildMember(
          t.db,
          { guild_id: s.guild.id, user_id: s.member.id },
          { actor_id: s.mod.id },
        ).then(
          () => 'kicked',
          (e: unknown) => e,
        )
        await untilSomeoneWaitsForALock(t.pool, revoke)
        await client.query('commit')
        const outcome = await kick
        expect(outcome, revoke).toBeInstanceOf(PermissionDeniedError)
        expect(await isGuildMember(t.db, { guild_id: s.guild.id, user_id: s.member.id })).toBe(true)
        expect(await listAuditLog(t.db, s.guild.id, { action: 'member_kick' })).toEqual([])
      } finally {
        client.release()
      }
    }
  })

  it('action first (uncommitted), the revocation waits for it: one serial order', async () => {
    const s = await setup()
    const revoked = await t.db.transaction().execute(async (trx) => {
      expect(
        await removeGuildMember(
          trx,
          { guild_id: s.guild.id, user_id: s.member.id },
          { actor_id: s.mod.id },
        ),
      ).toBe(true)
      const revocation = unassignRole(t.db, {
        guild_id: s.guild.id,
        user_id: s.mod.id,
        role_id: s.mods.id,
      })
      await untilSomeoneWaitsForALock(t.pool, 'unassign after kick')
      // Wrapped: returning the bare promise would make the transaction wait for it.
      return { revocation }
    })
    expect(await revoked.revocation).toBe(true)
    expect(await isGuildMember(t.db, { guild_id: s.guild.id, user_id: s.member.id })).toBe(false)
    const log = await listAuditLog(t.db, s.guild.id)
    expect(log.map((e) => e.action)).toEqual(['member_role_remove', 'member_kick'])
  })

  it('a new deny overwrite committed while a moderator delete waits refuses it', async () => {
    const s = await setup()
    const channel = await makeChannel(t.db, s.guild.id)
    const message = await createMessage(t.db, {
      channel_id: channel.id,
      author_id: s.member.id,
      content: 'x',
    })
    const client = await t.pool.connect()
    try {
      await client.query('begin')
      await client.query('select 1 from channels where id = $1 for no key update', [channel.id])
      await client.query(
        `insert into channel_overwrites (channel_id, guild_id, role_id, allow, deny) values ($1, $2, $3, 0, $4)`,
        [channel.id, s.guild.id, s.mods.id, MANAGE_MESSAGES.toString()],
      )
      const del = deleteMessage(t.db, message.id, { actor_id: s.mod.id }).then(
        () => 'deleted',
        (e: unknown) => e,
      )
      await untilSomeoneWaitsForALock(t.pool, 'overwrite')
      await client.query('commit')
      expect(await del).toBeInstanceOf(PermissionDeniedError)
      expect(await findMessageById(t.db, message.id)).toBeDefined()
    } finally {
      client.release()
    }
  })
})

describe('bans', () => {
  it('removes membership, roles, overwrites and channel memberships; refuses joins; lapses; unbans', async () => {
    const s = await setup()
    const channel = await makeChannel(t.db, s.guild.id, { is_private: true })
    await t.db
      .insertInto('channel_members')
      .values({ channel_id: channel.id, guild_id: s.guild.id, user_id: s.member.id })
      .execute()
    await setChannelOverwrite(t.db, {
      channel_id: channel.id,
      user_id: s.member.id,
      allow: VIEW_CHANNEL,
      deny: 0n,
    })
    const ban = await banMember(
      t.db,
      { guild_id: s.guild.id, user_id: s.member.id },
      { actor_id: s.mod.id, reason: 'spam' },
    )
    expect(ban).toMatchObject({ reason: 'spam', banned_by: s.mod.id, expires_at: null })
    expect(await isGuildMember(t.db, { guild_id: s.guild.id, user_id: s.member.id })).toBe(false)
    expect(await listMemberRoles(t.db, { guild_id: s.guild.id, user_id: s.member.id })).toEqual([])
    expect(await listChannelOverwrites(t.db, channel.id)).toEqual([])
    const cm = await t.db
      .selectFrom('channel_members')
      .select('user_id')
      .where('user_id', '=', s.member.id)
      .execute()
    expect(cm).toEqual([])
    const refused = await addGuildMember(t.db, {
      guild_id: s.guild.id,
      user_id: s.member.id,
    }).catch((e) => e)
    expect(refused).toBeInstanceOf(ConflictError)
    expect(refused.reason).toBe('banned')
    expect(await findBan(t.db, { guild_id: s.guild.id, user_id: s.member.id })).toMatchObject({
      reason: 'spam',
    })
    // Lapsed: the ban no longer counts anywhere.
    await t.db
      .updateTable('guild_bans')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('user_id', '=', s.member.id)
      .execute()
    expect(await findBan(t.db, { guild_id: s.guild.id, user_id: s.member.id })).toBeUndefined()
    expect(await listBans(t.db, s.guild.id)).toEqual([])
    await addGuildMember(t.db, { guild_id: s.guild.id, user_id: s.member.id })
    // Banned again with an expiry; unban lifts it.
    const until = new Date(Date.now() + 3_600_000)
    expect(
      (await banMember(t.db, { guild_id: s.guild.id, user_id: s.member.id, expires_at: until }))
        .expires_at,
    ).toEqual(until)
    expect(
      await unbanMember(
        t.db,
        { guild_id: s.guild.id, user_id: s.member.id },
        { actor_id: s.mod.id },
      ),
    ).toBe(true)
    expect(await unbanMember(t.db, { guild_id: s.guild.id, user_id: s.member.id })).toBe(false)
    await addGuildMember(t.db, { guild_id: s.guild.id, user_id: s.member.id })
    const actions = (await listAuditLog(t.db, s.guild.id)).map((e) => e.action)
    expect(actions.slice(0, 3)).toEqual(['member_unban', 'member_ban', 'member_ban'])
  })

  it('refuses the owner, higher members, missing permission, bad input; nothing written', async () => {
    const s = await setup()
    const before = await countRows(t.db)
    await expect(
      banMember(t.db, { guild_id: s.guild.id, user_id: s.owner.id }),
    ).rejects.toMatchObject({ reason: 'owner' })
    await denied(
      banMember(t.db, { guild_id: s.guild.id, user_id: s.mod.id }, { actor_id: s.member.id }),
    )
    for (const input of [
      { guild_id: s.guild.id, user_id: 'x' },
      { guild_id: s.guild.id, user_id: s.member.id, expires_at: new Date(Date.now() - 1) },
      { guild_id: s.guild.id, user_id: s.member.id, expires_at: new Date(Number.NaN) },
      { guild_id: s.guild.id, user_id: s.member.id, reason: '' },
      { guild_id: s.guild.id, user_id: s.member.id, reason: 'x'.repeat(513) },
    ]) {
      await expect(banMember(t.db, input)).rejects.toBeInstanceOf(InvalidInputError)
    }
    await expect(
      banMember(t.db, { guild_id: unknownId(), user_id: s.member.id }),
    ).rejects.toBeInstanceOf(NotFoundError)
    expect(await countRows(t.db)).toEqual(before)
  })

  it('bans and kicks racing with joins, role grants, overwrites and channel adds leave nothing behind', async () => {
    const s = await setup()
    const channel = await makeChannel(t.db, s.guild.id, { is_private: true })
    const users = await Promise.all(Array.from({ length: 24 }, () => makeUser(t.db)))
    for (const u of users) await makeMember(t.db, s.guild.id, u.id)
    const settle = (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: unknown) => (e instanceof Error ? e.constructor.name : 'unknown'),
      )
    const outcomes: string[] = []
    await Promise.all(
      users.map(async (u, i) => {
        const remove =
          i % 2 === 0
            ? banMember(t.db, { guild_id: s.guild.id, user_id: u.id }, { actor_id: s.mod.id })
            : removeGuildMember(
                t.db,
                { guild_id: s.guild.id, user_id: u.id },
                { actor_id: s.mod.id },
              )
        const results = await Promise.all([
          settle(remove),
          settle(assignRole(t.db, { guild_id: s.guild.id, user_id: u.id, role_id: s.crew.id })),
          settle(
            setChannelOverwrite(t.db, {
              channel_id: channel.id,
              user_id: u.id,
              allow: VIEW_CHANNEL,
              deny: 0n,
            }),
          ),
          settle(addChannelMember(t.db, { channel_id: channel.id, user_id: u.id })),
          settle(addGuildMember(t.db, { guild_id: s.guild.id, user_id: u.id })),
        ])
        expect(results[0]).toBe('ok')
        outcomes.push(...results.slice(1))
      }),
    )
    const banned = users.filter((_, i) => i % 2 === 0).map((u) => u.id)
    const all = users.map((u) => u.id)
    const left = async (
      table: 'guild_members' | 'member_roles' | 'channel_overwrites',
      ids: string[],
    ) =>
      (
        await t.db
          .selectFrom(table)
          .select('user_id')
          .where('guild_id', '=', s.guild.id)
          .where('user_id', 'in', ids)
          .execute()
      ).length
    // Banned users: nothing at all. Kicked users may have rejoined (addGuildMember
    // after the kick), but then only through a fresh membership.
    expect(await left('guild_members', banned)).toBe(0)
    expect(await left('member_roles', banned)).toBe(0)
    expect(await left('channel_overwrites', banned)).toBe(0)
    const strays = await t.db
      .selectFrom('channel_members as cm')
      .select('cm.user_id')
      .where('cm.channel_id', '=', channel.id)
      .where('cm.user_id', 'in', all)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('guild_members as gm')
              .select('gm.user_id')
              .whereRef('gm.user_id', '=', 'cm.user_id')
              .where('gm.guild_id', '=', s.guild.id),
          ),
        ),
      )
      .execute()
    expect(strays).toEqual([])
    for (const table of ['member_roles', 'channel_overwrites']) {
      const { rows: orphans } = await sql<{ user_id: string }>`select x.user_id
        from ${sql.table(table)} x
        where x.guild_id = ${s.guild.id} and x.user_id is not null
          and not exists (select from guild_members gm
            where gm.guild_id = x.guild_id and gm.user_id = x.user_id)`.execute(t.db)
      expect(orphans).toEqual([])
    }
    // Both sides of the race happened: some racing writes landed, some were refused.
    expect(outcomes.filter((o) => o === 'ok').length).toBeGreaterThan(0)
    expect(outcomes.filter((o) => o !== 'ok').length).toBeGreaterThan(0)
    expect(outcomes.filter((o) => o === 'ConflictError').length).toBeGreaterThan(0)
  })

  it('lists standing bans by keyset', async () => {
    const s = await setup()
    const users = await Promise.all(Array.from({ length: 5 }, () => makeUser(t.db)))
    for (const u of users) await banMember(t.db, { guild_id: s.guild.id, user_id: u.id })
    const first = await listBans(t.db, s.guild.id, { limit: 3 })
    const second = await listBans(t.db, s.guild.id, { limit: 3, after: first.at(-1)!.user_id })
    expect([...first, ...second].map((b) => b.user_id)).toEqual(users.map((u) => u.id).sort())
  })

  it('a join and a ban never interleave (both orders forced with a waiting lock)', async () => {
    const s = await setup()
    // Join first (uncommitted), ban waits, then removes the membership.
    const joiner = await makeUser(t.db)
    const client = await t.pool.connect()
    try {
      await client.query('begin')
      await client.query('insert into guild_members (guild_id, user_id) values ($1, $2)', [
        s.guild.id,
        joiner.id,
      ])
      const ban = banMember(t.db, { guild_id: s.guild.id, user_id: joiner.id })
      await untilSomeoneWaitsForALock(t.pool, 'ban after join')
      await client.query('commit')
      await ban
      expect(await isGuildMember(t.db, { guild_id: s.guild.id, user_id: joiner.id })).toBe(false)
    } finally {
      client.release()
    }
    // Ban first (uncommitted), the join waits, then is refused.
    const late = await makeUser(t.db)
    const outcome = await t.db.transaction().execute(async (trx) => {
      await banMember(trx, { guild_id: s.guild.id, user_id: late.id })
      const join = addGuildMember(t.db, { guild_id: s.guild.id, user_id: late.id }).catch((e) => e)
      await untilSomeoneWaitsForALock(t.pool, 'join after ban')
      return { join }
    })
    expect(await outcome.join).toMatchObject({ reason: 'banned' })
    expect(await isGuildMember(t.db, { guild_id: s.guild.id, user_id: late.id })).toBe(false)
  })
})

describe('invites', () => {
  it('max_uses N with 3N users held at a barrier on the invite: exactly N join, the rest are refused (exhausted)', async () => {
    for (const n of [1, 3, 5]) {
      const s = await setup()
      const invite = await createInvite(t.db, {
        guild_id: s.guild.id,
        inviter_id: s.owner.id,
        max_uses: n,
      })
      const users = await Promise.all(Array.from({ length: 3 * n }, () => makeUser(t.db)))
      // The barrier holds the invite's row: all 3N wait on it, then count their uses one at a time.
      const { results, waiters } = await raceAtBarrier(
        t.pool,
        { text: 'select 1 from guild_invites where code = $1 for update', values: [invite.code] },
        users.map((u) => () => useInvite(t.db, { code: invite.code, user_id: u.id })),
      )
      expect(waiters).toBe(3 * n)
      const joined = results.filter((r) => r.status === 'fulfilled' && r.value.joined)
      const refused = results.filter(
        (r) =>
          r.status === 'rejected' &&
          r.reason instanceof ConflictError &&
          r.reason.reason === 'exhausted',
      )
      expect(joined).toHaveLength(n)
      expect(refused).toHaveLength(2 * n)
      const [row] = await listGuildInvites(t.db, s.guild.id)
      expect(row!.uses).toBe(n)
      const members = await t.db
        .selectFrom('guild_members')
        .select('user_id')
        .where('guild_id', '=', s.guild.id)
        .where(
          'user_id',
          'in',
          users.map((u) => u.id),
        )
        .execute()
      expect(members).toHaveLength(n)
    }
  })

  it('already a member: no use; unknown, revoked, expired, banned: typed refusals', async () => {
    const s = await setup()
    const invite = await createInvite(
      t.db,
      { guild_id: s.guild.id, inviter_id: s.mod.id, max_uses: 2 },
      { actor_id: s.mod.id },
    )
    expect(invite.code).toMatch(/^[A-Za-z0-9_-]{22}$/)
    const again = await useInvite(t.db, { code: invite.code, user_id: s.member.id })
    expect(again.joined).toBe(false)
    expect(again.member.user_id).toBe(s.member.id)
    expect((await listGuildInvites(t.db, s.guild.id))[0]!.uses).toBe(0)
    await expect(
      useInvite(t.db, { code: 'AAAAAAAAAAAAAAAAAAAAAA', user_id: s.member.id }),
    ).rejects.toBeInstanceOf(NotFoundError)
    const banned = await makeUser(t.db)
    await banMember(t.db, { guild_id: s.guild.id, user_id: banned.id })
    await expect(useInvite(t.db, { code: invite.code, user_id: banned.id })).rejects.toMatchObject({
      reason: 'banned',
    })
    const expiring = await createInvite(t.db, {
      guild_id: s.guild.id,
      inviter_id: s.owner.id,
      expires_at: new Date(Date.now() + 60_000),
    })
    await t.db
      .updateTable('guild_invites')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', expiring.id)
      .execute()
    const newcomer = await makeUser(t.db)
    await expect(
      useInvite(t.db, { code: expiring.code, user_id: newcomer.id }),
    ).rejects.toMatchObject({ reason: 'expired' })
    // Revoke: the creator may, without MANAGE_GUILD; a plain member may not.
    const other = await createInvite(t.db, { guild_id: s.guild.id, inviter_id: s.owner.id })
    await denied(revokeInvite(t.db, { code: other.code }, { actor_id: s.member.id }))
    expect(await revokeInvite(t.db, { code: invite.code }, { actor_id: s.mod.id })).toBe(true)
    expect(await revokeInvite(t.db, { code: invite.code })).toBe(false)
    await expect(
      useInvite(t.db, { code: invite.code, user_id: newcomer.id }),
    ).rejects.toMatchObject({ reason: 'revoked' })
    expect(await isGuildMember(t.db, { guild_id: s.guild.id, user_id: newcomer.id })).toBe(false)
    const ok = await useInvite(t.db, { code: other.code, user_id: newcomer.id })
    expect(ok.joined).toBe(true)
    expect(
      await findGuildMember(t.db, { guild_id: s.guild.id, user_id: newcomer.id }),
    ).toBeDefined()
    const log = await listAuditLog(t.db, s.guild.id)
    const entries = log.filter((e) => e.action.startsWith('invite_'))
    expect(entries.map((e) => e.action)).toEqual([
      'invite_revoke',
      'invite_create',
      'invite_create',
      'invite_create',
    ])
    // Never the code.
    expect(JSON.stringify(log)).not.toContain(invite.code)
  })
})

describe('audit log', () => {
  it('a rolled-back change leaves no entry; keyset pages with filters', async () => {
    const s = await setup()
    const failure = new Error('rolled back')
    await expect(
      t.db.transaction().execute(async (trx) => {
        await createRole(trx, { guild_id: s.guild.id, name: 'ghost', permissions: 0n })
        await banMember(trx, { guild_id: s.guild.id, user_id: s.member.id })
        throw failure
      }),
    ).rejects.toBe(failure)
    expect(await listAuditLog(t.db, s.guild.id)).toEqual([])
    expect(await isGuildMember(t.db, { guild_id: s.guild.id, user_id: s.member.id })).toBe(true)
    // A refused change (permission) leaves none either.
    await denied(
      createRole(
        t.db,
        { guild_id: s.guild.id, name: 'x', permissions: 0n },
        { actor_id: s.member.id },
      ),
    )
    expect(await listAuditLog(t.db, s.guild.id)).toEqual([])
    for (let i = 0; i < 7; i++) {
      await createRole(
        t.db,
        { guild_id: s.guild.id, name: `r${i}`, permissions: 0n, position: 1 },
        i % 2 === 0 ? { actor_id: s.mod.id } : undefined,
      )
    }
    await updateGuild(t.db, s.guild.id, { name: 'renamed' })
    const all: string[] = []
    let before: string | undefined
    for (;;) {
      const page = await listAuditLog(t.db, s.guild.id, { limit: 3, ...(before ? { before } : {}) })
      if (page.length === 0) break
      all.push(...page.map((e) => e.id))
      before = page.at(-1)!.id
    }
    expect(all).toHaveLength(8)
    expect([...all].sort().reverse()).toEqual(all)
    const byMod = await listAuditLog(t.db, s.guild.id, { actor_id: s.mod.id })
    expect(byMod).toHaveLength(4)
    expect(byMod.every((e) => e.action === 'role_create' && e.actor_id === s.mod.id)).toBe(true)
    expect(await listAuditLog(t.db, s.guild.id, { action: 'guild_update' })).toHaveLength(1)
    await expect(
      listAuditLog(t.db, s.guild.id, { action: 'nope' as 'guild_update' }),
    ).rejects.toBeInstanceOf(InvalidInputError)
  })

  it('every action is distinct, listable and fits the action CHECK, the message moderation ones included', async () => {
    const s = await setup()
    expect(new Set(AUDIT_ACTIONS).size).toBe(AUDIT_ACTIONS.length)
    for (const action of ['message_delete', 'message_pin', 'message_unpin', 'reactions_remove']) {
      expect(AUDIT_ACTIONS).toContain(action)
    }
    for (const action of AUDIT_ACTIONS) {
      expect(action).toMatch(auditLogFields.action.pattern)
      expect(await listAuditLog(t.db, s.guild.id, { action })).toEqual([])
    }
  })
})
