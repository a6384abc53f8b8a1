/**
 * A 0.1.0 database (only 0001 applied, with private channels, channel members,
 * roles with and without VIEW_CHANNEL, an administrator) upgraded to the
 * current migrations answers every access question exactly as 0.1.0's rule did.
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  canAccessChannel,
  computePermissions,
  createDb,
  defaultMigrationsDirectory,
  listVisibleChannels,
  newId,
  Permissions,
  runMigrations,
} from '../../src/index.ts'
import { createFreshDatabase, type FreshDatabase } from './fixtures/database.ts'

const { VIEW_CHANNEL, SEND_MESSAGES, ADMINISTRATOR } = Permissions

describe('upgrading a 0.1.0 database', () => {
  let fresh: FreshDatabase
  let dir: string
  beforeEach(async () => {
    fresh = await createFreshDatabase()
    dir = await mkdtemp(join(tmpdir(), 'gs-0001-'))
  })
  afterEach(async () => {
    await fresh.drop()
    await rm(dir, { recursive: true, force: true })
  })

  it('private channels and permissions behave exactly as before', async () => {
    await copyFile(
      join(defaultMigrationsDirectory(), '0001_initial_schema.sql'),
      join(dir, '0001_initial_schema.sql'),
    )
    const pool = fresh.pool()
    await runMigrations(pool, { directory: dir })
    // 0.1.0 data, by plain SQL.
    const [owner, admin, viewer, blind, outsider] = Array.from({ length: 5 }, () => newId()) as [
      string,
      string,
      string,
      string,
      string,
    ]
    const guild = newId()
    const everyone = newId()
    const adminRole = newId()
    const viewRole = newId()
    const q = (text: string, values: unknown[]) => pool.query(text, values)
    for (const [i, id] of [owner, admin, viewer, blind, outsider].entries()) {
      await q('insert into users (id, username) values ($1, $2)', [id, `user${i}`])
    }
    await q(`insert into guilds (id, name, owner_id) values ($1, 'g', $2)`, [guild, owner])
    for (const id of [owner, admin, viewer, blind]) {
      await q('insert into guild_members (guild_id, user_id) values ($1, $2)', [guild, id])
    }
    await q(
      `insert into roles (id, guild_id, name, permissions, position, is_default) values
       ($1, $2, '@everyone', $3, 0, true), ($4, $2, 'admin', $5, 2, false), ($6, $2, 'view', $7, 1, false)`,
      [
        everyone,
        guild,
        SEND_MESSAGES.toString(),
        adminRole,
        ADMINISTRATOR.toString(),
        viewRole,
        VIEW_CHANNEL.toString(),
      ],
    )
    await q(
      'insert into member_roles (guild_id, user_id, role_id) values ($1, $2, $3), ($1, $4, $5)',
      [guild, admin, adminRole, viewer, viewRole],
    )
    const open = newId()
    const privateWithViewer = newId()
    const privateWithBlind = newId()
    await q(
      `insert into channels (id, guild_id, name, type, is_private) values
       ($1, $4, 'open', 'text', false), ($2, $4, 'p1', 'text', true), ($3, $4, 'p2', 'text', true)`,
      [open, privateWithViewer, privateWithBlind, guild],
    )
    await q(
      'insert into channel_members (channel_id, user_id) values ($1, $2), ($3, $4), ($3, $5)',
      [privateWithViewer, viewer, privateWithBlind, blind, outsider],
    )

    // 0.1.0's rule: owner/admin see all; else VIEW_CHANNEL in the base, and a
    // private channel needs channel membership.
    const expected: Record<string, string[]> = {
      [owner]: [open, privateWithViewer, privateWithBlind],
      [admin]: [open, privateWithViewer, privateWithBlind],
      [viewer]: [open, privateWithViewer],
      [blind]: [],
      [outsider]: [],
    }

    const { applied } = await runMigrations(pool)
    expect(applied.length).toBeGreaterThan(0)
    const db = createDb(pool)
    for (const [user, want] of Object.entries(expected)) {
      const visible = (await listVisibleChannels(db, { guild_id: guild, user_id: user }))
        .map((c) => c.id)
        .sort()
      expect(visible).toEqual([...want].sort())
      for (const channel of [open, privateWithViewer, privateWithBlind]) {
        expect(await canAccessChannel(db, { channel_id: channel, user_id: user })).toBe(
          want.includes(channel),
        )
        const perms = await computePermissions(db, {
          guild_id: guild,
          user_id: user,
          channel_id: channel,
        })
        // Where the channel is visible, the permissions are 0.1.0's exactly.
        if (want.includes(channel)) {
          expect(perms).toBe(
            user === owner || user === admin ? Permissions.ALL : SEND_MESSAGES | VIEW_CHANNEL,
          )
        } else {
          expect(perms).toBe(0n)
        }
      }
    }
    await db.destroy()
  })
})
