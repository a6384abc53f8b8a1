/**
 * Issue 11, item 1: a removed member must not keep a private channel.
 *
 * On 0.1.0 removeGuildMember deleted the user's channel_members rows in a CTE
 * of its own statement, on a snapshot taken before a concurrent
 * addChannelMember committed: the row survived and granted the channel again
 * after a rejoin. Since migration 0002 the row carries guild_id with a foreign
 * key to guild_members ON DELETE CASCADE, so no interleaving can leave it.
 *
 * The first two tests force the interleaving (no timing): one side holds its
 * transaction open until pg_stat_activity shows the other side waiting on its
 * lock, then commits.
 */
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import {
  addChannelMember,
  addGuildMember,
  ConflictError,
  canAccessChannel,
  removeGuildMember,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuild, makeMember, makeUser } from '../support/factories.ts'
import { lockTables, raceAtBarrier } from '../support/race.ts'

const t = useTestDatabase({ max: 12 })

async function setup() {
  const owner = await makeUser(t.db)
  const user = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  await makeMember(t.db, guild.id, user.id)
  const channel = await makeChannel(t.db, guild.id, { is_private: true })
  return { owner, user, guild, channel }
}

/** Resolves once a backend of this database waits on a lock in a statement matching `like`. */
async function waitUntilBlocked(like: string): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and query ilike ${like}`.execute(
      t.db,
    )
    if (rows[0]!.n > 0) return
    if (Date.now() > deadline) throw new Error(`no backend blocked on ${like} within 60 s`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const leftover = async (channel_id: string, user_id: string) =>
  (
    await t.db
      .selectFrom('channel_members')
      .select('user_id')
      .where('channel_id', '=', channel_id)
      .where('user_id', '=', user_id)
      .execute()
  ).length

describe('removeGuildMember racing addChannelMember', () => {
  it('add in a caller transaction that commits while the removal waits: no row is left', async () => {
    const { user, guild, channel } = await setup()
    let removal: Promise<boolean> | undefined
    await t.db.transaction().execute(async (trx) => {
      await addChannelMember(trx, { channel_id: channel.id, user_id: user.id })
      // The removal starts now and must wait for our lock on the channel row
      // (it locks the guild's channels before the membership)…
      removal = removeGuildMember(t.db, { guild_id: guild.id, user_id: user.id })
      removal.catch(() => {})
      await waitUntilBlocked('%from "channels" where "guild_id"%for no key update%')
      // …and we commit while it waits: the interleaving that leaked on 0.1.0.
    })
    expect(await removal).toBe(true)
    expect(await leftover(channel.id, user.id)).toBe(0)
    // Rejoining gives no access to the private channel.
    await addGuildMember(t.db, { guild_id: guild.id, user_id: user.id })
    expect(await canAccessChannel(t.db, { channel_id: channel.id, user_id: user.id })).toBe(false)
  }, 120_000)

  it('removal in a caller transaction that commits while the add waits: the add is refused', async () => {
    const { user, guild, channel } = await setup()
    let add: Promise<unknown> | undefined
    await t.db.transaction().execute(async (trx) => {
      expect(await removeGuildMember(trx, { guild_id: guild.id, user_id: user.id })).toBe(true)
      add = addChannelMember(t.db, { channel_id: channel.id, user_id: user.id })
      add.catch(() => {})
      // The add waits on the channel row, which the removal locked (it bumps
      // the guild's channels, migration 0006) before the membership.
      await waitUntilBlocked('%from "channels"%for no key update%')
    })
    const error = await add!.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConflictError)
    expect(error).toMatchObject({ reason: 'not_member' })
    expect(await leftover(channel.id, user.id)).toBe(0)
  }, 120_000)

  it('a row that would outlive the membership is refused by the foreign key itself', async () => {
    const { owner, user, guild, channel } = await setup()
    await removeGuildMember(t.db, { guild_id: guild.id, user_id: user.id })
    await expect(
      t.db
        .insertInto('channel_members')
        .values({ channel_id: channel.id, guild_id: guild.id, user_id: user.id })
        .execute(),
    ).rejects.toMatchObject({ code: '23503', constraint: 'channel_members_guild_member_fkey' })
    // …and a guild_id that is not the channel's is refused too.
    const other = await makeGuild(t.db, owner.id)
    await makeMember(t.db, other.id, user.id)
    await expect(
      t.db
        .insertInto('channel_members')
        .values({ channel_id: channel.id, guild_id: other.id, user_id: user.id })
        .execute(),
    ).rejects.toMatchObject({ code: '23503', constraint: 'channel_members_channel_guild_fkey' })
  }, 120_000)

  it('100 pairs held at a barrier together leave no row behind a removed member', async () => {
    const rounds = 100
    const cases = await Promise.all(Array.from({ length: rounds }, () => setup()))
    for (const { user, guild, channel } of cases) {
      // Both wait at their first lock of the channel, then go together.
      const { results, waiters } = await raceAtBarrier<unknown>(t.pool, lockTables('channels'), [
        () => addChannelMember(t.db, { channel_id: channel.id, user_id: user.id }),
        () => removeGuildMember(t.db, { guild_id: guild.id, user_id: user.id }),
      ])
      expect(waiters).toBe(2)
      const [add, removal] = results as [
        PromiseSettledResult<unknown>,
        PromiseSettledResult<unknown>,
      ]
      expect(removal).toEqual({ status: 'fulfilled', value: true })
      if (add.status === 'rejected') expect(add.reason).toBeInstanceOf(ConflictError)
    }
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from channel_members cm
      where not exists (
        select 1 from guild_members gm where gm.guild_id = cm.guild_id and gm.user_id = cm.user_id
      )`.execute(t.db)
    expect(rows[0]!.n).toBe(0)
    for (const { user, channel } of cases) expect(await leftover(channel.id, user.id)).toBe(0)
  }, 120_000)
})
