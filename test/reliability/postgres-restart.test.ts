/**
 * A PostgreSQL server of this file's own is stopped (fast, then immediate) and
 * started again under a write loop of createUser / createGuild / createMessage
 * on ONE pool. Every failed call must be a typed DatabaseUnavailableError (or an
 * UnknownOutcomeError for a write cut off while committing), no
 * multi-statement operation may be left half done, every acknowledged write
 * must survive, and the same pool must serve again after each restart.
 */
import { sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DatabaseUnavailableError,
  GuildstoreError,
  UnknownOutcomeError,
} from '../../src/errors/index.ts'
import { newId } from '../../src/ids/new-id.ts'
import { runMigrations } from '../../src/migrations/index.ts'
import { createPool } from '../../src/pool/create-pool.ts'
import { findOrCreateDmChannel } from '../../src/repositories/dms.ts'
import { sendFriendRequest } from '../../src/repositories/friendships.ts'
import { createGuild } from '../../src/repositories/guilds.ts'
import { createMessage } from '../../src/repositories/messages.ts'
import { createUser } from '../../src/repositories/users.ts'
import { createDb } from '../../src/sql/create-db.ts'
import { sleep, waitFor, watchProcessCrashes } from './support/ports.ts'
import { createPrivatePostgres, type PrivatePostgres } from './support/private-postgres.ts'

let server: PrivatePostgres | undefined
let databaseUrl = ''

beforeAll(async () => {
  server = await createPrivatePostgres()
  await server.start()
  const admin = new pg.Client({ connectionString: server.url })
  await admin.connect()
  try {
    await admin.query('CREATE DATABASE gs_reliability')
  } finally {
    await admin.end()
  }
  databaseUrl = server.urlOf('gs_reliability')
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 })
  try {
    await runMigrations(pool)
  } finally {
    await pool.end()
  }
}, 240_000)

afterAll(async () => {
  await server?.destroy()
}, 90_000)

type Phase = 'up' | 'down'

describe('PostgreSQL stopped and started under a write loop', () => {
  it('every failure is typed, nothing is half-written or lost, the same pool serves after each restart', async () => {
    const crashes = watchProcessCrashes()
    const pool = createPool({
      connectionString: databaseUrl,
      max: 6,
      connectionTimeoutMillis: 2000,
      application_name: 'gs-rel-restart',
    })
    const db = createDb(pool)
    try {
      // A guild channel to post into, made before the faults start.
      const seedOwner = await createUser(db, { username: `seed_${newId().slice(-8)}` })
      const seedGuild = await createGuild(db, { name: 'seed', owner_id: seedOwner.id })
      const channelId = newId()
      await db
        .insertInto('channels')
        .values({ id: channelId, guild_id: seedGuild.id, name: 'general', type: 'text' })
        .execute()

      let phase: Phase = 'up'
      let restarts = 0
      let stopWorkers = false
      const acknowledged = {
        users: [] as string[],
        guilds: [] as string[],
        messages: [] as string[],
        dms: [] as string[],
        friendPairs: [] as [string, string][],
      }
      const failures: unknown[] = []
      const successesAfterRestart = [0, 0, 0]
      let attempts = 0

      const record = (ok: boolean) => {
        if (ok && phase === 'up')
          successesAfterRestart[restarts] = (successesAfterRestart[restarts] ?? 0) + 1
      }
      const call = async <T>(op: () => Promise<T>): Promise<T | undefined> => {
        attempts++
        try {
          const value = await op()
          record(true)
          return value
        } catch (error) {
          failures.push(error)
          await sleep(20)
          return undefined
        }
      }
      const worker = async (w: number) => {
        // Bounded: at most 2 000 iterations per worker, and the phases below end it.
        let previous: string | undefined
        for (let i = 0; i < 2000 && !stopWorkers; i++) {
          const user = await call(() => createUser(db, { username: `w${w}_${newId().slice(-12)}` }))
          if (user) acknowledged.users.push(user.id)
          const guild =
            user && (await call(() => createGuild(db, { name: `g${i}`, owner_id: user.id })))
          if (guild) acknowledged.guilds.push(guild.id)
          const message = await call(() =>
            createMessage(db, {
              channel_id: channelId,
              author_id: seedOwner.id,
              content: `m ${w} ${i}`,
            }),
          )
          if (message) acknowledged.messages.push(message.id)
          // Multi-statement transactions: crossing friend requests (→ accepted) and a DM.
          if (user && previous) {
            const other = previous
            const sent = await call(() =>
              sendFriendRequest(db, { from_user_id: other, to_user_id: user.id }),
            )
            if (sent) {
              const back = await call(() =>
                sendFriendRequest(db, { from_user_id: user.id, to_user_id: other }),
              )
              if (back?.status === 'accepted') acknowledged.friendPairs.push([user.id, other])
            }
            const dm = await call(() =>
              findOrCreateDmChannel(db, { user_id: user.id, other_user_id: other }),
            )
            if (dm) acknowledged.dms.push(dm.channel.id)
          }
          if (user) previous = user.id
        }
      }
      const workers = Array.from({ length: 4 }, (_, w) => worker(w))

      const deadline = Date.now() + 60_000
      const upUntilSuccesses = async (n: number) => {
        phase = 'up'
        await waitFor(
          () => (successesAfterRestart[restarts] ?? 0) >= n || Date.now() > deadline,
          20_000,
          10,
        )
      }
      try {
        await upUntilSuccesses(80)
        for (const mode of ['fast', 'immediate'] as const) {
          phase = 'down'
          await server!.stop(mode)
          await sleep(500)
          await server!.start()
          restarts++
          await upUntilSuccesses(80)
        }
      } finally {
        stopWorkers = true
        await Promise.all(workers)
      }

      // Every failure was typed: a DatabaseUnavailableError (retryable), or an
      // UnknownOutcomeError for a write whose commit was in flight; never a raw driver error.
      for (const error of failures) {
        expect(error).toBeInstanceOf(GuildstoreError)
        expect(
          error instanceof DatabaseUnavailableError || error instanceof UnknownOutcomeError,
          String(error),
        ).toBe(true)
      }
      expect(failures.length).toBeGreaterThan(0)
      // Calls succeeded again after each restart, on the same pool.
      expect(successesAfterRestart[1]).toBeGreaterThanOrEqual(80)
      expect(successesAfterRestart[2]).toBeGreaterThanOrEqual(80)
      expect(crashes.errors).toEqual([])

      // Nothing acknowledged was lost.
      const count = async (table: 'users' | 'guilds' | 'messages' | 'dm_channels', ids: string[]) =>
        Number(
          (
            await db
              .selectFrom(table)
              .select((eb) => eb.fn.countAll<string>().as('n'))
              .where('id', '=', sql<string>`any(${ids}::uuid[])`)
              .executeTakeFirstOrThrow()
          ).n,
        )
      expect(await count('users', acknowledged.users)).toBe(acknowledged.users.length)
      expect(await count('guilds', acknowledged.guilds)).toBe(acknowledged.guilds.length)
      expect(await count('messages', acknowledged.messages)).toBe(acknowledged.messages.length)

      // No half-made guild: every guild has its owner's membership and exactly one default role.
      const broken = await sql<{ id: string }>`
        select g.id from guilds g
         where not exists (select 1 from guild_members m where m.guild_id = g.id and m.user_id = g.owner_id)
            or (select count(*) from roles r where r.guild_id = g.id and r.is_default) <> 1`.execute(
        db,
      )
      expect(broken.rows).toEqual([])
      // No half-made DM: every pair row has its dm channel and both participants, and back.
      const brokenDms = await sql<{ id: string }>`
        select d.id from dm_channels d
         where not exists (select 1 from channels c where c.id = d.id and c.type = 'dm')
            or (select count(*) from dm_participants p
                 where p.channel_id = d.id and p.user_id in (d.user_a, d.user_b)) <> 2
        union all
        select c.id from channels c
         where c.type = 'dm' and not exists (select 1 from dm_channels d where d.id = c.id)`.execute(
        db,
      )
      expect(brokenDms.rows).toEqual([])
      expect(await count('dm_channels', acknowledged.dms)).toBe(new Set(acknowledged.dms).size)
      // No half-made friendship: an accepted row always has its mirror.
      const halfFriends = await sql<{ user_id: string }>`
        select f.user_id from friendships f
         where f.status = 'accepted'
           and not exists (select 1 from friendships g
                            where g.user_id = f.friend_id and g.friend_id = f.user_id
                              and g.status = 'accepted')`.execute(db)
      expect(halfFriends.rows).toEqual([])
      for (const [a, b] of acknowledged.friendPairs) {
        const rows = await db
          .selectFrom('friendships')
          .select('status')
          .where((eb) =>
            eb.or([
              eb.and([eb('user_id', '=', a), eb('friend_id', '=', b)]),
              eb.and([eb('user_id', '=', b), eb('friend_id', '=', a)]),
            ]),
          )
          .execute()
        expect(rows.map((r) => r.status)).toEqual(['accepted', 'accepted'])
      }
      // And no membership or role of a guild that does not exist (FKs, but check anyway).
      const orphans = await sql<{ n: string }>`
        select count(*) as n from roles r where not exists (select 1 from guilds g where g.id = r.guild_id)`.execute(
        db,
      )
      expect(Number(orphans.rows[0]?.n)).toBe(0)

      console.info(
        `[reliability] postgres restart: 2 restarts (fast, immediate), ${attempts} calls, ${failures.length} failed typed, ` +
          `${acknowledged.users.length + acknowledged.guilds.length + acknowledged.messages.length + acknowledged.dms.length + 2 * acknowledged.friendPairs.length} acknowledged writes all present`,
      )
    } finally {
      crashes.stop()
      await db.destroy()
    }
  }, 240_000)
})
