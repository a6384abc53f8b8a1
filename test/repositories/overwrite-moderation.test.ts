/**
 * Issue 22, defects 4 and 5, as a hostile member would try them:
 * - a moderator may change the state (allowed, denied, neutral) of a flag in an
 *   overwrite only if it holds that flag in the channel (Discord's rule), so it
 *   cannot lift a deny it is under, by set or by delete, on its own overwrite,
 *   on @everyone's or on anyone's;
 * - an overwrite's ADMINISTRATOR grants nothing.
 */
import { describe, expect, it } from 'vitest'
import {
  computePermissions,
  createMessage,
  deleteChannelOverwrite,
  deleteMessage,
  findMessageById,
  hasPermission,
  listAuditLog,
  listChannelOverwrites,
  PermissionDeniedError,
  Permissions,
  sendMessage,
  setChannelOverwrite,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuild, makeMember, makeRole, makeUser } from '../support/factories.ts'
import { waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase()
const {
  VIEW_CHANNEL,
  SEND_MESSAGES,
  READ_MESSAGE_HISTORY,
  ADD_REACTIONS,
  MANAGE_ROLES,
  MANAGE_MESSAGES,
  MANAGE_GUILD,
  ADMINISTRATOR,
} = Permissions
const BASE = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | ADD_REACTIONS

/** An owner, a moderator (role `mods`: MANAGE_ROLES, position 5) and a plain member. */
async function setup() {
  const owner = await makeUser(t.db)
  const mod = await makeUser(t.db)
  const member = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  await t.db
    .updateTable('roles')
    .set({ permissions: BASE })
    .where('id', '=', guild.defaultRole.id)
    .execute()
  await makeMember(t.db, guild.id, mod.id)
  await makeMember(t.db, guild.id, member.id)
  const mods = await makeRole(t.db, guild.id, {
    permissions: MANAGE_ROLES,
    position: 5,
    name: 'mods',
  })
  await t.db
    .insertInto('member_roles')
    .values({ guild_id: guild.id, user_id: mod.id, role_id: mods.id })
    .execute()
  const channel = await makeChannel(t.db, guild.id)
  const as = { actor_id: mod.id }
  return { owner, mod, member, guild, mods, channel, everyone: guild.defaultRole, as }
}

const perms = (s: { guild: { id: string }; channel: { id: string } }, user_id: string) =>
  computePermissions(t.db, { guild_id: s.guild.id, user_id, channel_id: s.channel.id })

/** Asserts a refusal for `missing` flags, with nothing written (overwrites, audit log, cache). */
async function refused(call: () => Promise<unknown>, missing: bigint) {
  const before = await countRows(t.db, ['channel_overwrites', 'audit_log', 'channels'])
  const overwrites = await t.db.selectFrom('channel_overwrites').selectAll().execute()
  const err = await call().catch((e: unknown) => e)
  expect(err).toBeInstanceOf(PermissionDeniedError)
  expect((err as PermissionDeniedError).reason).toBe('missing_permission')
  expect((err as PermissionDeniedError).permission).toBe(missing)
  expect(await countRows(t.db, ['channel_overwrites', 'audit_log', 'channels'])).toEqual(before)
  expect(await t.db.selectFrom('channel_overwrites').selectAll().execute()).toEqual(overwrites)
}

describe('a moderator cannot lift a deny it is under', () => {
  it('muted by its own member overwrite: neither delete nor empty nor allow it', async () => {
    const s = await setup()
    const own = { channel_id: s.channel.id, user_id: s.mod.id }
    await setChannelOverwrite(t.db, { ...own, allow: 0n, deny: SEND_MESSAGES })
    expect(await perms(s, s.mod.id)).toBe((BASE | MANAGE_ROLES) & ~SEND_MESSAGES)
    await refused(() => deleteChannelOverwrite(t.db, own, s.as), SEND_MESSAGES)
    await refused(
      () => setChannelOverwrite(t.db, { ...own, allow: 0n, deny: 0n }, s.as),
      SEND_MESSAGES,
    )
    await refused(
      () => setChannelOverwrite(t.db, { ...own, allow: SEND_MESSAGES, deny: 0n }, s.as),
      SEND_MESSAGES,
    )
    // Still muted, through the public send.
    const send = sendMessage(t.db, { channel_id: s.channel.id, author_id: s.mod.id, content: 'x' })
    expect(await send.catch((e: unknown) => e)).toBeInstanceOf(PermissionDeniedError)
    // Flags it holds it may still change on its own overwrite (the SEND deny kept).
    const row = await setChannelOverwrite(
      t.db,
      { ...own, allow: 0n, deny: SEND_MESSAGES | ADD_REACTIONS },
      s.as,
    )
    expect(row.deny).toBe(SEND_MESSAGES | ADD_REACTIONS)
  })

  it('announcements (@everyone denied SEND): the moderator cannot open them to everyone', async () => {
    const s = await setup()
    const key = { channel_id: s.channel.id, role_id: s.everyone.id }
    await setChannelOverwrite(t.db, { ...key, allow: 0n, deny: SEND_MESSAGES })
    await refused(() => deleteChannelOverwrite(t.db, key, s.as), SEND_MESSAGES)
    await refused(
      () => setChannelOverwrite(t.db, { ...key, allow: 0n, deny: 0n }, s.as),
      SEND_MESSAGES,
    )
    // A change that leaves SEND denied touches only flags the moderator holds.
    await setChannelOverwrite(
      t.db,
      { ...key, allow: 0n, deny: SEND_MESSAGES | ADD_REACTIONS },
      s.as,
    )
    expect(await perms(s, s.member.id)).toBe(BASE & ~(SEND_MESSAGES | ADD_REACTIONS))
    // A moderator who holds SEND in the channel (its role's allow) may lift it: Discord's rule.
    await setChannelOverwrite(t.db, {
      channel_id: s.channel.id,
      role_id: s.mods.id,
      allow: SEND_MESSAGES | ADD_REACTIONS,
      deny: 0n,
    })
    expect(await deleteChannelOverwrite(t.db, key, s.as)).toBe(true)
    expect(await perms(s, s.member.id)).toBe(BASE)
    const [entry] = await listAuditLog(t.db, s.guild.id, { actor_id: s.mod.id })
    expect(entry).toMatchObject({ action: 'overwrite_delete', actor_id: s.mod.id })
  })

  it('any target: a flag the moderator lacks stays as it is, granted or denied', async () => {
    const s = await setup()
    const key = { channel_id: s.channel.id, user_id: s.member.id }
    // The owner lets the member manage the guild here; the moderator lacks MANAGE_GUILD.
    await setChannelOverwrite(t.db, { ...key, allow: MANAGE_GUILD, deny: 0n })
    await refused(() => deleteChannelOverwrite(t.db, key, s.as), MANAGE_GUILD)
    await refused(
      () => setChannelOverwrite(t.db, { ...key, allow: 0n, deny: 0n }, s.as),
      MANAGE_GUILD,
    )
    await refused(
      () => setChannelOverwrite(t.db, { ...key, allow: 0n, deny: MANAGE_GUILD }, s.as),
      MANAGE_GUILD,
    )
    // Allow → neutral of a held flag, the lacking one unchanged: fine.
    await setChannelOverwrite(t.db, { ...key, allow: MANAGE_GUILD | VIEW_CHANNEL, deny: 0n })
    const row = await setChannelOverwrite(t.db, { ...key, allow: MANAGE_GUILD, deny: 0n }, s.as)
    expect(row.allow).toBe(MANAGE_GUILD)
    // The owner holds every flag.
    expect(await deleteChannelOverwrite(t.db, key, { actor_id: s.owner.id })).toBe(true)
    expect(await listChannelOverwrites(t.db, s.channel.id)).toEqual([])
  })

  it('the check sees a revocation that commits while the change waits for the channel', async () => {
    const s = await setup()
    // The moderator holds SEND through its role's allow, so it may lift @everyone's deny…
    await setChannelOverwrite(t.db, {
      channel_id: s.channel.id,
      role_id: s.mods.id,
      allow: SEND_MESSAGES,
      deny: 0n,
    })
    const key = { channel_id: s.channel.id, role_id: s.everyone.id }
    await setChannelOverwrite(t.db, { ...key, allow: 0n, deny: SEND_MESSAGES })
    const client = await t.pool.connect()
    try {
      // …until the owner mutes it; that transaction holds the channel while the
      // moderator's delete waits for it.
      await client.query('begin')
      await client.query('select 1 from channels where id = $1 for no key update', [s.channel.id])
      await client.query(
        `insert into channel_overwrites (channel_id, guild_id, user_id, allow, deny) values ($1, $2, $3, 0, $4)`,
        [s.channel.id, s.guild.id, s.mod.id, SEND_MESSAGES.toString()],
      )
      const lift = deleteChannelOverwrite(t.db, key, s.as).catch((e: unknown) => e)
      await waitForLockWaiters(client, 1)
      await client.query('commit')
      const err = await lift
      expect(err).toBeInstanceOf(PermissionDeniedError)
      expect((err as PermissionDeniedError).permission).toBe(SEND_MESSAGES)
    } finally {
      client.release()
    }
    expect(await perms(s, s.member.id)).toBe(BASE & ~SEND_MESSAGES)
  })

  it("inside a caller's REPEATABLE READ transaction the refusal writes nothing either", async () => {
    const s = await setup()
    const own = { channel_id: s.channel.id, user_id: s.mod.id }
    await setChannelOverwrite(t.db, { ...own, allow: 0n, deny: SEND_MESSAGES })
    const err = await t.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute((trx) => deleteChannelOverwrite(trx, own, s.as))
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PermissionDeniedError)
    expect(await listChannelOverwrites(t.db, s.channel.id)).toHaveLength(1)
  })
})

describe("an overwrite's ADMINISTRATOR grants nothing", () => {
  it('a member given allow ADMINISTRATOR gains no flag and cannot moderate', async () => {
    const s = await setup()
    const message = await createMessage(t.db, {
      channel_id: s.channel.id,
      author_id: s.owner.id,
      content: "the owner's",
    })
    await setChannelOverwrite(t.db, {
      channel_id: s.channel.id,
      user_id: s.member.id,
      allow: ADMINISTRATOR,
      deny: 0n,
    })
    const p = await perms(s, s.member.id)
    expect(p).toBe(BASE)
    expect(hasPermission(p, MANAGE_MESSAGES)).toBe(false)
    const del = await deleteMessage(t.db, message.id, { actor_id: s.member.id }).catch(
      (e: unknown) => e,
    )
    expect(del).toBeInstanceOf(PermissionDeniedError)
    expect(await findMessageById(t.db, message.id)).toBeDefined()
    // Nor may it manage overwrites (no MANAGE_ROLES), nor hide the channel from others.
    const hide = { channel_id: s.channel.id, role_id: s.everyone.id, allow: 0n, deny: VIEW_CHANNEL }
    await refused(() => setChannelOverwrite(t.db, hide, { actor_id: s.member.id }), MANAGE_ROLES)
    // What the authorized calls store is the stripped value.
    await sendMessage(t.db, { channel_id: s.channel.id, author_id: s.member.id, content: 'hi' })
    const stored = await t.db
      .selectFrom('channel_permission_cache')
      .select('permissions')
      .where('channel_id', '=', s.channel.id)
      .where('user_id', '=', s.member.id)
      .executeTakeFirstOrThrow()
    expect(BigInt(stored.permissions)).toBe(BASE)
  })

  it('a role overwrite allowing ADMINISTRATOR and MANAGE_MESSAGES gives MANAGE_MESSAGES only', async () => {
    const s = await setup()
    const helpers = await makeRole(t.db, s.guild.id, { permissions: 0n, position: 2 })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: s.guild.id, user_id: s.member.id, role_id: helpers.id })
      .execute()
    const key = { channel_id: s.channel.id, role_id: helpers.id }
    await setChannelOverwrite(t.db, { ...key, allow: ADMINISTRATOR | MANAGE_MESSAGES, deny: 0n })
    expect(await perms(s, s.member.id)).toBe(BASE | MANAGE_MESSAGES)
    // Only an actor who holds a flag may change it: the moderator holds neither.
    await refused(() => deleteChannelOverwrite(t.db, key, s.as), ADMINISTRATOR | MANAGE_MESSAGES)
    // A real administrator (guild base) still has everything.
    const admins = await makeRole(t.db, s.guild.id, { permissions: ADMINISTRATOR, position: 7 })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: s.guild.id, user_id: s.member.id, role_id: admins.id })
      .execute()
    expect(await perms(s, s.member.id)).toBe(Permissions.ALL)
    const other = await makeChannel(t.db, s.guild.id)
    await setChannelOverwrite(t.db, {
      channel_id: other.id,
      role_id: s.everyone.id,
      allow: 0n,
      deny: VIEW_CHANNEL,
    })
    expect(
      await computePermissions(t.db, {
        guild_id: s.guild.id,
        user_id: s.member.id,
        channel_id: other.id,
      }),
    ).toBe(Permissions.ALL)
  })
})
