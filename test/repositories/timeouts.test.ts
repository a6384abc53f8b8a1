/**
 * Member timeouts (issue 25, item 2; migration 0011): only VIEW_CHANNEL and
 * READ_MESSAGE_HISTORY while timed out, the owner and administrators exempt,
 * the end by time with no write, stored permissions that never let a
 * timed-out member send nor keep a lifted timeout in force, the actor rules
 * and the audit entry. The races of a timeout against sends, fills and the
 * other writers are rows of the interleaving matrix (test/races).
 */
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import {
  ConflictError,
  computePermissions,
  InvalidInputError,
  listAuditLog,
  NotFoundError,
  PermissionDeniedError,
  Permissions,
  readChannelMessages,
  sendMessage,
  TIMEOUT_MAX_MS,
  timeoutMember,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuild, makeMember, makeRole, makeUser } from '../support/factories.ts'
import { waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase({ max: 8 })
const { VIEW_CHANNEL, READ_MESSAGE_HISTORY, SEND_MESSAGES, MODERATE_MEMBERS, ADMINISTRATOR } =
  Permissions
const inAnHour = () => new Date(Date.now() + 3_600_000)

async function setup() {
  const owner = await makeUser(t.db)
  const mod = await makeUser(t.db)
  const member = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  await makeMember(t.db, guild.id, mod.id)
  await makeMember(t.db, guild.id, member.id)
  const mods = await makeRole(t.db, guild.id, { position: 10, permissions: MODERATE_MEMBERS })
  await t.db
    .insertInto('member_roles')
    .values({ guild_id: guild.id, user_id: mod.id, role_id: mods.id })
    .execute()
  const channel = await makeChannel(t.db, guild.id)
  return { owner, mod, member, guild, channel }
}

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  )

describe('timeoutMember', () => {
  it('leaves only VIEW_CHANNEL and READ_MESSAGE_HISTORY: sends refused, reads allowed', async () => {
    const s = await setup()
    const key = { guild_id: s.guild.id, user_id: s.member.id }
    // A send first: its permissions are stored (with SEND_MESSAGES).
    await sendMessage(t.db, { channel_id: s.channel.id, author_id: s.member.id, content: 'before' })
    const row = await timeoutMember(t.db, { ...key, until: inAnHour() })
    expect(row.communication_disabled_until).toBeInstanceOf(Date)
    const perms = await computePermissions(t.db, { ...key, channel_id: s.channel.id })
    expect(perms).toBe(VIEW_CHANNEL | READ_MESSAGE_HISTORY)
    expect(await computePermissions(t.db, key)).toBe(VIEW_CHANNEL | READ_MESSAGE_HISTORY)
    const refused = await rejection(
      sendMessage(t.db, { channel_id: s.channel.id, author_id: s.member.id, content: 'during' }),
    )
    expect(refused).toBeInstanceOf(PermissionDeniedError)
    expect((refused as PermissionDeniedError).permission).toBe(SEND_MESSAGES)
    const page = await readChannelMessages(t.db, { user_id: s.member.id, channel_id: s.channel.id })
    expect(page.map((m) => m.content)).toEqual(['before'])
    // Lifted: sends again at once (the stored reduced bits do not keep it in force).
    await timeoutMember(t.db, { ...key, until: null })
    await sendMessage(t.db, { channel_id: s.channel.id, author_id: s.member.id, content: 'after' })
  })

  it('ends by time alone, with no write', async () => {
    const s = await setup()
    const key = { guild_id: s.guild.id, user_id: s.member.id }
    await timeoutMember(t.db, { ...key, until: new Date(Date.now() + 1_500) })
    const before = await sql<{ xmin: string }>`select xmin::text from guild_members
      where guild_id = ${s.guild.id} and user_id = ${s.member.id}`.execute(t.db)
    expect(
      await rejection(
        sendMessage(t.db, { channel_id: s.channel.id, author_id: s.member.id, content: 'x' }),
      ),
    ).toBeInstanceOf(PermissionDeniedError)
    // The time the timeout ends: a clock, not a race.
    await new Promise((r) => setTimeout(r, 1_700))
    await sendMessage(t.db, { channel_id: s.channel.id, author_id: s.member.id, content: 'free' })
    const after = await sql<{ xmin: string }>`select xmin::text from guild_members
      where guild_id = ${s.guild.id} and user_id = ${s.member.id}`.execute(t.db)
    expect(after.rows[0]?.xmin).toBe(before.rows[0]?.xmin)
  })

  it('exempts the owner and administrators, and refuses to time them out', async () => {
    const s = await setup()
    const admin = await makeUser(t.db)
    await makeMember(t.db, s.guild.id, admin.id)
    const admins = await makeRole(t.db, s.guild.id, { position: 5, permissions: ADMINISTRATOR })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: s.guild.id, user_id: admin.id, role_id: admins.id })
      .execute()
    for (const user_id of [s.owner.id, admin.id]) {
      const e = await rejection(
        timeoutMember(t.db, { guild_id: s.guild.id, user_id, until: inAnHour() }),
      )
      expect(e).toBeInstanceOf(ConflictError)
      expect((e as ConflictError).reason).toBe('exempt')
      // Set by plain SQL anyway: still exempt.
      await sql`update guild_members set communication_disabled_until = now() + interval '1 hour'
        where guild_id = ${s.guild.id} and user_id = ${user_id}`.execute(t.db)
      expect(await computePermissions(t.db, { guild_id: s.guild.id, user_id })).toBe(
        Permissions.ALL,
      )
      await sendMessage(t.db, {
        channel_id: s.channel.id,
        author_id: user_id,
        content: 'still here',
      })
    }
  })

  it('validates its input and writes nothing on refusal', async () => {
    const s = await setup()
    const key = { guild_id: s.guild.id, user_id: s.member.id }
    const before = await countRows(t.db, ['guild_members', 'audit_log'])
    for (const until of [
      new Date(Date.now() - 1_000),
      new Date(Date.now() + TIMEOUT_MAX_MS + 60_000),
      new Date(Number.NaN),
      'tomorrow' as unknown as Date,
    ]) {
      expect(await rejection(timeoutMember(t.db, { ...key, until }))).toBeInstanceOf(
        InvalidInputError,
      )
    }
    expect(
      await rejection(timeoutMember(t.db, { guild_id: s.guild.id, user_id: 'nope', until: null })),
    ).toBeInstanceOf(InvalidInputError)
    const stranger = await makeUser(t.db)
    expect(
      await rejection(
        timeoutMember(t.db, { guild_id: s.guild.id, user_id: stranger.id, until: inAnHour() }),
      ),
    ).toBeInstanceOf(NotFoundError)
    expect(await countRows(t.db, ['guild_members', 'audit_log'])).toEqual(before)
  })

  it('acting as a member: MODERATE_MEMBERS, the hierarchy, and the audit entry', async () => {
    const s = await setup()
    const until = inAnHour()
    // A plain member may not.
    const plain = await rejection(
      timeoutMember(
        t.db,
        { guild_id: s.guild.id, user_id: s.mod.id, until },
        { actor_id: s.member.id },
      ),
    )
    expect(plain).toBeInstanceOf(PermissionDeniedError)
    expect((plain as PermissionDeniedError).permission).toBe(MODERATE_MEMBERS)
    // The moderator may, on a member below it.
    await timeoutMember(
      t.db,
      { guild_id: s.guild.id, user_id: s.member.id, until },
      { actor_id: s.mod.id, reason: 'spam' },
    )
    const [entry] = await listAuditLog(t.db, s.guild.id, { action: 'member_timeout' })
    expect(entry?.actor_id).toBe(s.mod.id)
    expect(entry?.target_id).toBe(s.member.id)
    expect(entry?.reason).toBe('spam')
    expect(entry?.changes).toEqual({
      communication_disabled_until: { before: null, after: until.toISOString() },
    })
    // Not on the owner (above everyone).
    const up = await rejection(
      timeoutMember(
        t.db,
        { guild_id: s.guild.id, user_id: s.owner.id, until },
        { actor_id: s.mod.id },
      ),
    )
    expect(up).toBeInstanceOf(PermissionDeniedError)
    expect((up as PermissionDeniedError).reason).toBe('hierarchy')
    // A timed-out moderator moderates nothing.
    await timeoutMember(t.db, { guild_id: s.guild.id, user_id: s.mod.id, until })
    const muted = await rejection(
      timeoutMember(
        t.db,
        { guild_id: s.guild.id, user_id: s.member.id, until: null },
        { actor_id: s.mod.id },
      ),
    )
    expect(muted).toBeInstanceOf(PermissionDeniedError)
  })

  it('a send whose stored permissions predate a timeout waits for it and is refused', async () => {
    const s = await setup()
    const key = { guild_id: s.guild.id, user_id: s.member.id }
    await sendMessage(t.db, { channel_id: s.channel.id, author_id: s.member.id, content: 'stored' })
    // The timeout, uncommitted: it holds the guild's channel rows.
    const client = await t.pool.connect()
    try {
      await client.query('begin')
      await client.query(
        `update guild_members set communication_disabled_until = now() + interval '1 hour'
         where guild_id = $1 and user_id = $2`,
        [s.guild.id, s.member.id],
      )
      const sends = Array.from({ length: 4 }, (_, i) =>
        rejection(
          sendMessage(t.db, { channel_id: s.channel.id, author_id: s.member.id, content: `r${i}` }),
        ),
      )
      // Proof the sends really wait on the timeout's lock.
      expect(await waitForLockWaiters(client, 4)).toBeGreaterThanOrEqual(4)
      await client.query('commit')
      for (const e of await Promise.all(sends)) expect(e).toBeInstanceOf(PermissionDeniedError)
    } finally {
      client.release()
    }
    const n = await sql<{ n: number }>`select count(*)::int as n from messages
      where channel_id = ${s.channel.id}`.execute(t.db)
    expect(n.rows[0]?.n).toBe(1)
    expect(await computePermissions(t.db, { ...key, channel_id: s.channel.id })).toBe(
      VIEW_CHANNEL | READ_MESSAGE_HISTORY,
    )
  })
})
