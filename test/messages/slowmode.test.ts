/**
 * Slowmode (issue 25, item 3; migration 0012): `channels.rate_limit_per_user`,
 * decided by sendMessage in its one statement, on the cached and the full
 * path: a typed RateLimitedError with retry_after_ms, exactly one of 16
 * concurrent sends by one member in one window (with proof that they queued),
 * MANAGE_MESSAGES / MANAGE_CHANNELS bypass it, positions stay gap-free, and
 * the trusted createMessage is not subject to it.
 */
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import {
  createChannel,
  createMessage,
  InvalidInputError,
  Permissions,
  RateLimitedError,
  sendMessage,
  updateChannel,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeGuild, makeMember, makeRole, makeUser } from '../support/factories.ts'
import { waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase({ max: 24 })

async function setup(rate: number) {
  const owner = await makeUser(t.db)
  const member = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  await makeMember(t.db, guild.id, member.id)
  const channel = await createChannel(t.db, {
    guild_id: guild.id,
    name: 'slow',
    type: 'text',
    rate_limit_per_user: rate,
  })
  return { owner, member, guild, channel }
}

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  )

async function positions(channel_id: string) {
  const r = await sql<{
    seq: string
  }>`select seq::text from messages where channel_id = ${channel_id}
    order by seq`.execute(t.db)
  return r.rows.map((x) => Number(x.seq))
}

describe('slowmode', () => {
  it('refuses a second send within the window with retry_after_ms, and keeps positions gap-free', async () => {
    const s = await setup(60)
    expect(s.channel.rate_limit_per_user).toBe(60)
    await sendMessage(t.db, { channel_id: s.channel.id, author_id: s.member.id, content: 'one' })
    // The second: refused on the cached path (stored permissions), then on the full one.
    const e = await rejection(
      sendMessage(t.db, { channel_id: s.channel.id, author_id: s.member.id, content: 'two' }),
    )
    expect(e).toBeInstanceOf(RateLimitedError)
    const ms = (e as RateLimitedError).retry_after_ms
    expect(ms).toBeGreaterThan(50_000)
    expect(ms).toBeLessThanOrEqual(60_000)
    // Another member is not slowed by it; the refused send left no gap.
    const other = await makeUser(t.db)
    await makeMember(t.db, s.guild.id, other.id)
    await sendMessage(t.db, { channel_id: s.channel.id, author_id: other.id, content: 'other' })
    expect(await positions(s.channel.id)).toEqual([1, 2])
  })

  it('lets the next send through once the window has passed', async () => {
    const s = await setup(1)
    await sendMessage(t.db, { channel_id: s.channel.id, author_id: s.member.id, content: 'a' })
    expect(
      await rejection(
        sendMessage(t.db, { channel_id: s.channel.id, author_id: s.member.id, content: 'b' }),
      ),
    ).toBeInstanceOf(RateLimitedError)
    // A clock, not a race: the window is one second.
    await new Promise((r) => setTimeout(r, 1_100))
    await sendMessage(t.db, { channel_id: s.channel.id, author_id: s.member.id, content: 'c' })
    expect(await positions(s.channel.id)).toEqual([1, 2])
  })

  it('is bypassed by MANAGE_MESSAGES or MANAGE_CHANNELS, and by the trusted createMessage', async () => {
    const s = await setup(600)
    for (const permission of [Permissions.MANAGE_MESSAGES, Permissions.MANAGE_CHANNELS]) {
      const mod = await makeUser(t.db)
      await makeMember(t.db, s.guild.id, mod.id)
      const role = await makeRole(t.db, s.guild.id, { permissions: permission })
      await t.db
        .insertInto('member_roles')
        .values({ guild_id: s.guild.id, user_id: mod.id, role_id: role.id })
        .execute()
      for (let i = 0; i < 3; i++) {
        await sendMessage(t.db, { channel_id: s.channel.id, author_id: mod.id, content: `m${i}` })
      }
    }
    for (let i = 0; i < 3; i++) {
      await createMessage(t.db, {
        channel_id: s.channel.id,
        author_id: s.member.id,
        content: `t${i}`,
      })
    }
    expect(await positions(s.channel.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
  })

  for (const path of ['cached', 'full'] as const) {
    it(`16 concurrent sends by one member in one window give exactly one message (${path} path)`, async () => {
      const s = await setup(path === 'cached' ? 0 : 120)
      if (path === 'cached') {
        // Stored permissions first (slowmode off), then slowmode on: the sends decide from the stored row.
        await sendMessage(t.db, {
          channel_id: s.channel.id,
          author_id: s.member.id,
          content: 'fill',
        })
        await updateChannel(t.db, s.channel.id, { rate_limit_per_user: 120 })
      }
      const before = (await positions(s.channel.id)).length
      const client = await t.pool.connect()
      try {
        // Hold the channel row, as a send in progress does: the 16 queue behind it.
        await client.query('begin')
        await client.query('select 1 from channels where id = $1 for no key update', [s.channel.id])
        const sends = Array.from({ length: 16 }, (_, i) =>
          sendMessage(t.db, {
            channel_id: s.channel.id,
            author_id: s.member.id,
            content: `r${i}`,
          }).then(
            () => 'sent' as const,
            (e: unknown) => e,
          ),
        )
        expect(await waitForLockWaiters(client, 16)).toBeGreaterThanOrEqual(16)
        await client.query('commit')
        const results = await Promise.all(sends)
        expect(results.filter((r) => r === 'sent')).toHaveLength(1)
        for (const r of results.filter((x) => x !== 'sent'))
          expect(r).toBeInstanceOf(RateLimitedError)
      } finally {
        client.release()
      }
      const after = await positions(s.channel.id)
      expect(after).toHaveLength(before + 1)
      expect(after).toEqual(after.map((_, i) => i + 1))
    })
  }

  it('validates rate_limit_per_user (0 to 21600, whole seconds) and audits a change', async () => {
    const s = await setup(0)
    for (const bad of [-1, 21_601, 1.5, Number.NaN, '5' as unknown as number]) {
      expect(
        await rejection(updateChannel(t.db, s.channel.id, { rate_limit_per_user: bad })),
      ).toBeInstanceOf(InvalidInputError)
      expect(
        await rejection(
          createChannel(t.db, {
            guild_id: s.guild.id,
            name: 'x',
            type: 'text',
            rate_limit_per_user: bad,
          }),
        ),
      ).toBeInstanceOf(InvalidInputError)
    }
    const updated = await updateChannel(t.db, s.channel.id, { rate_limit_per_user: 21_600 })
    expect(updated?.rate_limit_per_user).toBe(21_600)
    const entry = await sql<{ changes: unknown }>`select changes from audit_log
      where target_id = ${s.channel.id} and action = 'channel_update'`.execute(t.db)
    expect(entry.rows[0]?.changes).toEqual({ rate_limit_per_user: { before: 0, after: 21_600 } })
  })
})
