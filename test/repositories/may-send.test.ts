/**
 * Issue 11, item 4: the documented way to decide "may send here" (README, the
 * createMessage JSDoc) must refuse a blocked DM pair. On 0.1.0 the guidance was
 * "check canAccessChannel, then createMessage", and canAccessChannel grants a
 * DM to both participants whatever blocks stand: a blocked user kept posting.
 */

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import {
  blockUser,
  ConflictError,
  canAccessChannel,
  computePermissions,
  createMessage,
  type DB,
  findOrCreateDmChannel,
  hasPermission,
  lockUserPair,
  Permissions,
  unblockUser,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuild, makeMember, makeUser } from '../support/factories.ts'

const t = useTestDatabase()

/** The README's recipe for a DM, verbatim: lock the pair, find the DM (refuses a block), post. */
async function sendDm(db: Kysely<DB>, me: string, them: string, content: string) {
  return db.transaction().execute(async (trx) => {
    await lockUserPair(trx, me, them)
    const { channel } = await findOrCreateDmChannel(trx, { user_id: me, other_user_id: them })
    return createMessage(trx, { channel_id: channel.id, author_id: me, content })
  })
}

/** The README's recipe for a guild channel. */
async function maySendInGuild(
  db: Kysely<DB>,
  guild_id: string,
  channel_id: string,
  user_id: string,
) {
  const perms = await computePermissions(db, { guild_id, user_id, channel_id })
  return hasPermission(perms, Permissions.SEND_MESSAGES)
}

async function waitUntilWaitingOnAdvisoryLock(): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'`.execute(
      t.db,
    )
    if (rows[0]!.n > 0) return
    if (Date.now() > deadline) throw new Error('nobody waited on the pair lock within 60 s')
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('"may send here" as documented', () => {
  it('is what the reference (docs/reference.md) and the createMessage JSDoc say (the recipe these tests run)', () => {
    const root = join(import.meta.dirname, '..', '..')
    // The README's long reference moved to docs/reference.md (0.2.0).
    const readme = readFileSync(join(root, 'docs', 'reference.md'), 'utf8')
    const section = readme.slice(readme.indexOf('**May this user send here?**'))
    expect(section.length).toBeLessThan(readme.length)
    const recipe = section.slice(0, section.indexOf('\n\n**', 10))
    for (const name of [
      'SEND_MESSAGES',
      'lockUserPair(trx, me, them)',
      'findOrCreateDmChannel(trx',
      "'blocked'",
      'createMessage(trx',
    ]) {
      expect(recipe).toContain(name)
    }
    expect(recipe).toMatch(/`canAccessChannel` answers "may read"/)
    const source = readFileSync(join(root, 'src', 'repositories', 'messages.ts'), 'utf8')
    expect(source).toContain('`lockUserPair(trx, me, them)`')
    expect(source).not.toContain('call `canAccessChannel` /\n * `computePermissions` first')
  })

  it('refuses a blocked pair in an existing DM (either direction), while history stays readable', async () => {
    const ada = await makeUser(t.db)
    const bob = await makeUser(t.db)
    const first = await sendDm(t.db, ada.id, bob.id, 'hi')
    for (const [blocker, blocked] of [
      [bob.id, ada.id],
      [ada.id, bob.id],
    ] as const) {
      await blockUser(t.db, { user_id: blocker, blocked_user_id: blocked })
      // canAccessChannel alone still says yes: it answers "may read" (the 0.1.0 hole).
      expect(await canAccessChannel(t.db, { channel_id: first.channel_id, user_id: ada.id })).toBe(
        true,
      )
      const before = await countRows(t.db, ['messages'])
      for (const [me, them] of [
        [ada.id, bob.id],
        [bob.id, ada.id],
      ] as const) {
        const error = await sendDm(t.db, me, them, 'still here?').catch((e: unknown) => e)
        expect(error).toBeInstanceOf(ConflictError)
        expect(error).toMatchObject({ reason: 'blocked' })
      }
      expect(await countRows(t.db, ['messages'])).toEqual(before)
      await unblockUser(t.db, { user_id: blocker, blocked_user_id: blocked })
    }
    // Unblocked: the same channel again.
    expect((await sendDm(t.db, bob.id, ada.id, 'ok')).channel_id).toBe(first.channel_id)
  })

  it('a block committed while a send waits on the pair lock refuses that send', async () => {
    const ada = await makeUser(t.db)
    const bob = await makeUser(t.db)
    await sendDm(t.db, ada.id, bob.id, 'hi')
    const before = await countRows(t.db, ['messages'])
    let send: Promise<unknown> | undefined
    await t.db.transaction().execute(async (trx) => {
      await blockUser(trx, { user_id: bob.id, blocked_user_id: ada.id })
      send = sendDm(t.db, ada.id, bob.id, 'sneaky')
      send.catch(() => {})
      await waitUntilWaitingOnAdvisoryLock()
    })
    const error = await send!.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConflictError)
    expect(await countRows(t.db, ['messages'])).toEqual(before)
  })

  it('a send holding the pair lock commits before a concurrent block takes effect', async () => {
    const ada = await makeUser(t.db)
    const bob = await makeUser(t.db)
    let block: Promise<unknown> | undefined
    const message = await t.db.transaction().execute(async (trx) => {
      await lockUserPair(trx, ada.id, bob.id)
      const { channel } = await findOrCreateDmChannel(trx, {
        user_id: ada.id,
        other_user_id: bob.id,
      })
      block = blockUser(t.db, { user_id: bob.id, blocked_user_id: ada.id })
      await waitUntilWaitingOnAdvisoryLock()
      return createMessage(trx, { channel_id: channel.id, author_id: ada.id, content: 'in time' })
    })
    await block
    expect(message.content).toBe('in time')
    await expect(sendDm(t.db, ada.id, bob.id, 'too late')).rejects.toBeInstanceOf(ConflictError)
  })

  it('guild channel: SEND_MESSAGES from computePermissions, 0n without view access', async () => {
    const owner = await makeUser(t.db)
    const member = await makeUser(t.db)
    const stranger = await makeUser(t.db)
    const guild = await makeGuild(t.db, owner.id)
    await makeMember(t.db, guild.id, member.id)
    const pub = await makeChannel(t.db, guild.id)
    const priv = await makeChannel(t.db, guild.id, { is_private: true })
    expect(await maySendInGuild(t.db, guild.id, pub.id, member.id)).toBe(true)
    expect(await maySendInGuild(t.db, guild.id, priv.id, member.id)).toBe(false)
    expect(await maySendInGuild(t.db, guild.id, pub.id, stranger.id)).toBe(false)
    expect(await maySendInGuild(t.db, guild.id, priv.id, owner.id)).toBe(true)
  })
})
