import { randomInt } from 'node:crypto'
import type { Kysely } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  banMember,
  blockUser,
  ConflictError,
  computePermissions,
  createMessage,
  type DB,
  InvalidInputError,
  listChannelMessages,
  listMessageMentions,
  PermissionDeniedError,
  Permissions,
  readChannelMessages,
  sendMessage,
  setChannelOverwrite,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeDm,
  makeGuild,
  makeGuildWithMember,
  makeMember,
  makeMessage,
  makeRole,
  makeUser,
  unknownId,
} from '../support/factories.ts'
import { fulfilled, lockTables, raceAtBarrier, waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase({ max: 24 })

const { VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY, MENTION_EVERYONE, ADMINISTRATOR } =
  Permissions

let owner: { id: string }
let member: { id: string }
let guild: { id: string; defaultRole: { id: string } }
let channel: { id: string }

beforeAll(async () => {
  owner = await makeUser(t.db)
  member = await makeUser(t.db)
  guild = await makeGuild(t.db, owner.id)
  await makeMember(t.db, guild.id, member.id)
  channel = await makeChannel(t.db, guild.id)
})

/** Asserts that `call` is refused with `type` (and `check`) and that nothing was written. */
async function expectRefused(
  call: () => Promise<unknown>,
  type: new (...args: never[]) => Error,
  check: (err: never) => void = () => {},
) {
  const before = await countRows(t.db)
  const err = await call().catch((e: unknown) => e)
  expect(err).toBeInstanceOf(type)
  check(err as never)
  expect(await countRows(t.db)).toEqual(before)
}

const missing = (flag: bigint) => (err: PermissionDeniedError) => {
  expect(err.reason).toBe('missing_permission')
  expect(err.permission).toBe(flag)
}

/** A guild whose default role has exactly `perms`, with a member. */
const guildWith = (perms: bigint) => makeGuildWithMember(t.db, perms)

describe('sendMessage', () => {
  it('inserts for a member who may view and send, and returns the message', async () => {
    const m = await sendMessage(t.db, {
      channel_id: channel.id,
      author_id: member.id,
      content: 'hi',
    })
    expect(m).toMatchObject({ channel_id: channel.id, author_id: member.id, content: 'hi' })
    expect(m).not.toHaveProperty('verdict')
    expect(m).not.toHaveProperty('stale')
    expect(m).not.toHaveProperty('search')
    const reply = await sendMessage(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      content: 're',
      reply_to: m.id,
    })
    expect(reply.reply_to).toBe(m.id)
    expect((await listChannelMessages(t.db, channel.id, { limit: 2 })).map((x) => x.id)).toEqual([
      reply.id,
      m.id,
    ])
  })

  it('refuses, writing nothing: not a member, unknown channel, no VIEW, no SEND, private', async () => {
    const stranger = await makeUser(t.db)
    await expectRefused(
      () => sendMessage(t.db, { channel_id: channel.id, author_id: stranger.id, content: 'x' }),
      PermissionDeniedError,
      missing(VIEW_CHANNEL),
    )
    await expectRefused(
      () => sendMessage(t.db, { channel_id: unknownId(), author_id: member.id, content: 'x' }),
      PermissionDeniedError,
      missing(VIEW_CHANNEL),
    )
    const noView = await guildWith(SEND_MESSAGES)
    await expectRefused(
      () =>
        sendMessage(t.db, {
          channel_id: noView.channel.id,
          author_id: noView.user.id,
          content: 'x',
        }),
      PermissionDeniedError,
      missing(VIEW_CHANNEL),
    )
    const noSend = await guildWith(VIEW_CHANNEL | READ_MESSAGE_HISTORY)
    await expectRefused(
      () =>
        sendMessage(t.db, {
          channel_id: noSend.channel.id,
          author_id: noSend.user.id,
          content: 'x',
        }),
      PermissionDeniedError,
      missing(SEND_MESSAGES),
    )
    // The owner of that guild may (owner: every permission).
    await sendMessage(t.db, {
      channel_id: noSend.channel.id,
      author_id: noSend.owner.id,
      content: 'owner',
    })
    const priv = await makeChannel(t.db, guild.id, { is_private: true })
    await expectRefused(
      () => sendMessage(t.db, { channel_id: priv.id, author_id: member.id, content: 'x' }),
      PermissionDeniedError,
      missing(VIEW_CHANNEL),
    )
    await t.db
      .insertInto('channel_members')
      .values({ channel_id: priv.id, guild_id: guild.id, user_id: member.id })
      .execute()
    await sendMessage(t.db, { channel_id: priv.id, author_id: member.id, content: 'in' })
  })

  it('mentioning @everyone needs MENTION_EVERYONE', async () => {
    await expectRefused(
      () =>
        sendMessage(t.db, {
          channel_id: channel.id,
          author_id: member.id,
          content: '@everyone',
          mentions: { everyone: true, user_ids: [owner.id] },
        }),
      PermissionDeniedError,
      missing(MENTION_EVERYONE),
    )
    const role = await makeRole(t.db, guild.id, { permissions: MENTION_EVERYONE })
    await t.db
      .insertInto('member_roles')
      .values({ guild_id: guild.id, user_id: member.id, role_id: role.id })
      .execute()
    const m = await sendMessage(t.db, {
      channel_id: channel.id,
      author_id: member.id,
      content: '@everyone',
      mentions: { everyone: true },
    })
    expect(m.content).toBe('@everyone')
    await t.db.deleteFrom('member_roles').where('role_id', '=', role.id).execute()
  })

  it('stores mentions like createMessage; an unknown mentioned user is InvalidInputError, nothing written', async () => {
    const m = await sendMessage(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      content: 'hey @member @everyone',
      mentions: { user_ids: [member.id, member.id.toUpperCase()], everyone: true },
    })
    const stored = await listMessageMentions(t.db, [m.id])
    expect(stored.map((x) => [x.user_id, x.everyone])).toEqual([
      [member.id, false],
      [null, true],
    ])
    await expectRefused(
      () =>
        sendMessage(t.db, {
          channel_id: channel.id,
          author_id: owner.id,
          content: 'x',
          mentions: { user_ids: [unknownId()] },
        }),
      InvalidInputError,
      (err: InvalidInputError) => expect(err.field).toBe('mentions.user_ids'),
    )
  })

  it('50 sends by different members to one channel (23 at once held at a barrier on messages) all land, each with its own position', async () => {
    const c = await makeChannel(t.db, guild.id)
    const authors = [owner, member]
    for (let i = 0; i < 8; i++) {
      const u = await makeUser(t.db)
      await makeMember(t.db, guild.id, u.id)
      authors.push(u)
    }
    // 23 sends (the pool of 24 less the barrier) wait to insert at the table
    // lock, the rest queue for a connection and follow.
    const race = await raceAtBarrier(
      t.pool,
      lockTables('messages'),
      Array.from(
        { length: 50 },
        (_, i) => () =>
          sendMessage(t.db, {
            channel_id: c.id,
            author_id: authors[i % authors.length]!.id,
            content: `c${i}`,
          }),
      ),
      23,
    )
    expect(race.waiters).toBe(23)
    const sent = fulfilled(race.results)
    expect(new Set(sent.map((m) => m.seq)).size).toBe(50)
    expect((await listChannelMessages(t.db, c.id, { limit: 100 })).length).toBe(50)
  })

  it('a reply_to that is not a live message of the channel: InvalidInputError, nothing written', async () => {
    const elsewhere = await makeChannel(t.db, guild.id)
    const other = await makeMessage(t.db, elsewhere.id, owner.id)
    for (const reply_to of [other.id, unknownId()]) {
      await expectRefused(
        () =>
          sendMessage(t.db, {
            channel_id: channel.id,
            author_id: member.id,
            content: 'x',
            reply_to,
          }),
        InvalidInputError,
      )
    }
  })

  it('validates before the database: ids, content, mentions', async () => {
    const base = { channel_id: channel.id, author_id: member.id, content: 'x' }
    const bad: unknown[] = [
      { ...base, channel_id: 'nope' },
      { ...base, author_id: 1 },
      { ...base, content: '' },
      { ...base, content: 'a\u0000b' },
      { ...base, reply_to: 'x' },
      { ...base, mentions: 'all' },
      { ...base, mentions: { everyone: 'yes' } },
      { ...base, mentions: { user_ids: ['x'] } },
      { ...base, mentions: { role_ids: Array.from({ length: 101 }, () => unknownId()) } },
      null,
    ]
    for (const input of bad) {
      await expectRefused(() => sendMessage(t.db, input as never), InvalidInputError)
    }
  })

  it('in a DM: a participant sends; a stranger may not; a block either way is ConflictError blocked', async () => {
    const a = await makeUser(t.db)
    const b = await makeUser(t.db)
    const dm = await makeDm(t.db, a.id, b.id)
    const m = await sendMessage(t.db, { channel_id: dm.id, author_id: a.id, content: 'hey' })
    expect(m.channel_id).toBe(dm.id)
    await expectRefused(
      () => sendMessage(t.db, { channel_id: dm.id, author_id: owner.id, content: 'x' }),
      PermissionDeniedError,
      missing(VIEW_CHANNEL),
    )
    await blockUser(t.db, { user_id: b.id, blocked_user_id: a.id })
    for (const author of [a, b]) {
      await expectRefused(
        () => sendMessage(t.db, { channel_id: dm.id, author_id: author.id, content: 'x' }),
        ConflictError,
        (err: ConflictError) => expect(err.reason).toBe('blocked'),
      )
    }
    // Reading the history stays possible.
    expect((await readChannelMessages(t.db, { user_id: a.id, channel_id: dm.id })).length).toBe(1)
  })
})

describe('readChannelMessages', () => {
  it('returns exactly what listChannelMessages returns, for every cursor shape', async () => {
    const c = await makeChannel(t.db, guild.id)
    const made = []
    for (let i = 0; i < 12; i++)
      made.push(
        await createMessage(t.db, { channel_id: c.id, author_id: owner.id, content: `m${i}` }),
      )
    await t.db
      .updateTable('messages')
      .set({ deleted_at: new Date() })
      .where('id', '=', made[5]!.id)
      .execute()
    const shapes = [
      {},
      { limit: 5 },
      { before: made[8]!.id, limit: 4 },
      { after: made[2]!.id, limit: 4 },
      { after: made[1]!.id, before: made[9]!.id },
      { before: made[0]!.id },
    ]
    for (const shape of shapes) {
      const expected = await listChannelMessages(t.db, c.id, shape)
      const got = await readChannelMessages(t.db, {
        user_id: member.id,
        channel_id: c.id,
        ...shape,
      })
      expect(got, JSON.stringify(shape)).toEqual(expected)
    }
  })

  it('refuses without VIEW_CHANNEL or READ_MESSAGE_HISTORY, an unknown channel, a DM stranger', async () => {
    const noHistory = await guildWith(VIEW_CHANNEL | SEND_MESSAGES)
    await makeMessage(t.db, noHistory.channel.id, noHistory.owner.id)
    await expectRefused(
      () =>
        readChannelMessages(t.db, { user_id: noHistory.user.id, channel_id: noHistory.channel.id }),
      PermissionDeniedError,
      missing(READ_MESSAGE_HISTORY),
    )
    const noView = await guildWith(READ_MESSAGE_HISTORY)
    await expectRefused(
      () => readChannelMessages(t.db, { user_id: noView.user.id, channel_id: noView.channel.id }),
      PermissionDeniedError,
      missing(VIEW_CHANNEL),
    )
    await expectRefused(
      () => readChannelMessages(t.db, { user_id: member.id, channel_id: unknownId() }),
      PermissionDeniedError,
      missing(VIEW_CHANNEL),
    )
    const a = await makeUser(t.db)
    const b = await makeUser(t.db)
    const dm = await makeDm(t.db, a.id, b.id)
    await expectRefused(
      () => readChannelMessages(t.db, { user_id: owner.id, channel_id: dm.id }),
      PermissionDeniedError,
      missing(VIEW_CHANNEL),
    )
    expect(await readChannelMessages(t.db, { user_id: b.id, channel_id: dm.id })).toEqual([])
  })
})

describe('agreement with computePermissions over randomized worlds', () => {
  it('send and read are allowed exactly when computePermissions says so', async () => {
    const flags = [VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY, MENTION_EVERYONE]
    const randomPerms = () => {
      let p = 0n
      for (const f of flags) if (randomInt(3) > 0) p |= f
      if (randomInt(12) === 0) p |= ADMINISTRATOR
      return p
    }
    let cases = 0
    let overwrites = 0
    let allowedSends = 0
    let refusedSends = 0
    for (let w = 0; w < 8; w++) {
      const o = await makeUser(t.db)
      const g = await makeGuild(t.db, o.id)
      await t.db
        .updateTable('roles')
        .set({ permissions: randomPerms() })
        .where('id', '=', g.defaultRole.id)
        .execute()
      const roles = []
      for (let i = 0; i < 3; i++)
        roles.push(await makeRole(t.db, g.id, { permissions: randomPerms() }))
      const users = [o]
      const members = new Set([o.id])
      for (let i = 0; i < 5; i++) {
        const u = await makeUser(t.db)
        if (i < 4) {
          await makeMember(t.db, g.id, u.id)
          members.add(u.id)
          for (const r of roles) {
            if (randomInt(3) === 0) {
              await t.db
                .insertInto('member_roles')
                .values({ guild_id: g.id, user_id: u.id, role_id: r.id })
                .execute()
            }
          }
        }
        users.push(u)
      }
      const channels = [
        await makeChannel(t.db, g.id),
        await makeChannel(t.db, g.id, { is_private: true }),
      ]
      for (const u of users) {
        // Only guild members can be channel members (foreign key of migration 0002).
        if (members.has(u.id) && randomInt(2) === 0) {
          await t.db
            .insertInto('channel_members')
            .values({ channel_id: channels[1]!.id, guild_id: g.id, user_id: u.id })
            .execute()
        }
      }
      // Overwrites (Discord's order: @everyone, roles, member), random allow/deny.
      const overwrite = async (
        channel_id: string,
        target: { role_id?: string; user_id?: string },
      ) => {
        const allow = randomPerms() & ~ADMINISTRATOR
        const deny = randomPerms() & ~ADMINISTRATOR & ~allow
        await t.db
          .insertInto('channel_overwrites')
          .values({ channel_id, guild_id: g.id, allow, deny, ...target })
          .execute()
        overwrites++
      }
      for (const c of channels) {
        if (randomInt(2) === 0) await overwrite(c.id, { role_id: g.defaultRole.id })
        for (const r of roles) if (randomInt(3) === 0) await overwrite(c.id, { role_id: r.id })
        for (const u of users.slice(1, 5))
          if (randomInt(4) === 0) await overwrite(c.id, { user_id: u.id })
      }
      // A banned member (the ban removes the membership).
      if (randomInt(2) === 0) await banMember(t.db, { guild_id: g.id, user_id: users[1]!.id })
      for (const u of users) {
        for (const c of channels) {
          const perms = await computePermissions(t.db, {
            guild_id: g.id,
            user_id: u.id,
            channel_id: c.id,
          })
          const has = (f: bigint) => (perms & f) === f
          for (const everyone of [false, true]) {
            cases++
            const expectSend =
              has(VIEW_CHANNEL) && has(SEND_MESSAGES) && (!everyone || has(MENTION_EVERYONE))
            const sent = await sendMessage(t.db, {
              channel_id: c.id,
              author_id: u.id,
              content: 'agree',
              mentions: { everyone },
            }).then(
              () => true,
              (e: unknown) => {
                expect(e).toBeInstanceOf(PermissionDeniedError)
                return false
              },
            )
            expect(sent, `send perms=${perms} everyone=${everyone}`).toBe(expectSend)
            if (sent) allowedSends++
            else refusedSends++
          }
          cases++
          const read = await readChannelMessages(t.db, { user_id: u.id, channel_id: c.id }).then(
            () => true,
            (e: unknown) => {
              expect(e).toBeInstanceOf(PermissionDeniedError)
              return false
            },
          )
          expect(read, `read perms=${perms}`).toBe(has(VIEW_CHANNEL) && has(READ_MESSAGE_HISTORY))
        }
      }
    }
    expect(cases).toBeGreaterThanOrEqual(280)
    expect(overwrites).toBeGreaterThan(10)
    // Both outcomes were exercised.
    expect(allowedSends).toBeGreaterThan(10)
    expect(refusedSends).toBeGreaterThan(10)
  }, 120_000)
})

describe('a revocation racing sends', () => {
  it('sends waiting on an uncommitted revocation are refused once it commits', async () => {
    const w = await guildWith(VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY)
    const revoker = await t.pool.connect()
    let results: PromiseSettledResult<unknown>[]
    try {
      await revoker.query('begin')
      await revoker.query('update roles set permissions = $1 where id = $2', [
        VIEW_CHANNEL | READ_MESSAGE_HISTORY,
        w.guild.defaultRole.id,
      ])
      const sends = Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          sendMessage(t.db, { channel_id: w.channel.id, author_id: w.user.id, content: `r${i}` }),
        ),
      )
      expect(await waitForLockWaiters(revoker, 20)).toBeGreaterThanOrEqual(20)
      await revoker.query('commit')
      results = await sends
    } catch (error) {
      await revoker.query('rollback')
      throw error
    } finally {
      revoker.release()
    }
    for (const r of results) {
      expect(r.status).toBe('rejected')
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(PermissionDeniedError)
    }
    expect(await listChannelMessages(t.db, w.channel.id)).toEqual([])
  })

  it('a channel made private while sends wait on it refuses them', async () => {
    const w = await guildWith(VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY)
    const revoker = await t.pool.connect()
    let results: PromiseSettledResult<unknown>[]
    try {
      await revoker.query('begin')
      await revoker.query(
        'update channels set is_private = true, updated_at = now() where id = $1',
        [w.channel.id],
      )
      const sends = Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          sendMessage(t.db, { channel_id: w.channel.id, author_id: w.user.id, content: `p${i}` }),
        ),
      )
      expect(await waitForLockWaiters(revoker, 10)).toBeGreaterThanOrEqual(10)
      await revoker.query('commit')
      results = await sends
    } catch (error) {
      await revoker.query('rollback')
      throw error
    } finally {
      revoker.release()
    }
    for (const r of results) {
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(PermissionDeniedError)
    }
    expect(await listChannelMessages(t.db, w.channel.id)).toEqual([])
  })

  // Administrative revocations (0004) held uncommitted while sends arrive: the
  // sends wait on a row the revocation holds and are refused once it commits.
  const adminRevocations: [
    string,
    (trx: Kysely<DB>, w: Awaited<ReturnType<typeof guildWith>>) => Promise<unknown>,
  ][] = [
    [
      'an overwrite denying SEND_MESSAGES to @everyone',
      (trx, w) =>
        setChannelOverwrite(trx, {
          channel_id: w.channel.id,
          role_id: w.guild.defaultRole.id,
          allow: 0n,
          deny: SEND_MESSAGES,
        }),
    ],
    [
      'an overwrite denying VIEW_CHANNEL to the member',
      (trx, w) =>
        setChannelOverwrite(trx, {
          channel_id: w.channel.id,
          user_id: w.user.id,
          allow: 0n,
          deny: VIEW_CHANNEL,
        }),
    ],
    ['a ban', (trx, w) => banMember(trx, { guild_id: w.guild.id, user_id: w.user.id })],
  ]
  for (const [name, revoke] of adminRevocations) {
    it(`sends racing ${name} are refused once it commits`, async () => {
      const w = await guildWith(VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY)
      const watcher = await t.pool.connect()
      let release!: () => void
      const gate = new Promise<void>((r) => {
        release = r
      })
      let applied!: () => void
      const done = new Promise<void>((r) => {
        applied = r
      })
      try {
        const revoking = t.db.transaction().execute(async (trx) => {
          await revoke(trx, w)
          applied()
          await gate
        })
        await done
        const sends = Promise.allSettled(
          Array.from({ length: 8 }, (_, i) =>
            sendMessage(t.db, { channel_id: w.channel.id, author_id: w.user.id, content: `a${i}` }),
          ),
        )
        expect(await waitForLockWaiters(watcher, 8)).toBeGreaterThanOrEqual(8)
        release()
        await revoking
        for (const r of await sends) {
          expect(r.status).toBe('rejected')
          expect((r as PromiseRejectedResult).reason).toBeInstanceOf(PermissionDeniedError)
        }
      } finally {
        release()
        watcher.release()
      }
      expect(await listChannelMessages(t.db, w.channel.id)).toEqual([])
    })
  }

  /**
   * The hard case: the sends take their snapshot while the revocation is
   * written but not committed, so their permission computation sees the old
   * grant. Every revocation, by plain SQL too, bumps the channel's
   * access_version (migration 0006); the sends wait on that row, see the new
   * version once the revocation commits, run again and are refused.
   */
  type World = Awaited<ReturnType<typeof guildWith>> & {
    role: { id: string }
    privateChannel: { id: string }
    /** Not assigned; its overwrite denies SEND_MESSAGES in `channel`. */
    muted: { id: string }
  }
  const revocations: [string, (w: World) => [string, unknown[]], (w: World) => string][] = [
    [
      'role permissions lowered',
      (w) => ['update roles set permissions = 0 where id = $1', [w.role.id]],
      (w) => w.channel.id,
    ],
    [
      'role unassigned',
      (w) => ['delete from member_roles where role_id = $1', [w.role.id]],
      (w) => w.channel.id,
    ],
    ['role deleted', (w) => ['delete from roles where id = $1', [w.role.id]], (w) => w.channel.id],
    [
      'member removed',
      (w) => [
        'delete from guild_members where guild_id = $1 and user_id = $2',
        [w.guild.id, w.user.id],
      ],
      (w) => w.channel.id,
    ],
    [
      'ownership transferred away from the author',
      (w) => ['update guilds set owner_id = $2 where id = $1', [w.guild.id, w.owner.id]],
      (w) => w.channel.id,
    ],
    [
      'removed from a private channel',
      (w) => [
        'delete from channel_members where channel_id = $1 and user_id = $2',
        [w.privateChannel.id, w.user.id],
      ],
      (w) => w.privateChannel.id,
    ],
    [
      'a role with a deny overwrite assigned (migration 0007)',
      (w) => [
        'insert into member_roles (guild_id, user_id, role_id) values ($1, $2, $3)',
        [w.guild.id, w.user.id, w.muted.id],
      ],
      (w) => w.channel.id,
    ],
    [
      'the channel made private (migration 0007)',
      (w) => ['update channels set is_private = true where id = $1', [w.channel.id]],
      (w) => w.channel.id,
    ],
    [
      'a member overwrite denying SEND_MESSAGES',
      (w) => [
        `insert into channel_overwrites (channel_id, guild_id, user_id, allow, deny)
         values ($1, $2, $3, 0, $4)`,
        [w.channel.id, w.guild.id, w.user.id, SEND_MESSAGES],
      ],
      (w) => w.channel.id,
    ],
  ]
  for (const [name, revocation, target] of revocations) {
    it(`sends whose snapshot predates the revocation's commit are refused: ${name}`, async () => {
      // The default role may view; SEND comes from an assigned role. For the
      // ownership case the author owns the guild and the role grants nothing.
      const base = await guildWith(VIEW_CHANNEL | READ_MESSAGE_HISTORY)
      const role = await makeRole(t.db, base.guild.id, { permissions: SEND_MESSAGES })
      await t.db
        .insertInto('member_roles')
        .values({ guild_id: base.guild.id, user_id: base.user.id, role_id: role.id })
        .execute()
      const privateChannel = await makeChannel(t.db, base.guild.id, { is_private: true })
      await t.db
        .insertInto('channel_members')
        .values({ channel_id: privateChannel.id, user_id: base.user.id, guild_id: base.guild.id })
        .execute()
      const muted = await makeRole(t.db, base.guild.id, { permissions: 0n })
      await setChannelOverwrite(t.db, {
        channel_id: base.channel.id,
        role_id: muted.id,
        allow: 0n,
        deny: SEND_MESSAGES,
      })
      const w: World = { ...base, role, privateChannel, muted }
      if (name.startsWith('ownership')) {
        await t.db
          .updateTable('roles')
          .set({ permissions: 0n })
          .where('guild_id', '=', w.guild.id)
          .execute()
        await t.db
          .updateTable('guilds')
          .set({ owner_id: w.user.id })
          .where('id', '=', w.guild.id)
          .execute()
      }
      const channel_id = target(w)
      // Allowed before the revocation.
      await sendMessage(t.db, { channel_id, author_id: w.user.id, content: 'before' })
      const [text, values] = revocation(w)
      const revoker = await t.pool.connect()
      let results: PromiseSettledResult<unknown>[]
      try {
        await revoker.query('begin')
        await revoker.query(text, values)
        const sends = Promise.allSettled(
          Array.from({ length: 6 }, (_, i) =>
            sendMessage(t.db, { channel_id, author_id: w.user.id, content: `late ${i}` }),
          ),
        )
        // Each send has its snapshot (taken before the commit below) and waits
        // on the channel row the revocation holds.
        expect(await waitForLockWaiters(revoker, 6)).toBeGreaterThanOrEqual(6)
        await revoker.query('commit')
        results = await sends
      } catch (error) {
        await revoker.query('rollback')
        throw error
      } finally {
        revoker.release()
      }
      for (const r of results) {
        expect(r.status).toBe('rejected')
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(PermissionDeniedError)
      }
      expect((await listChannelMessages(t.db, channel_id)).map((m) => m.content)).toEqual([
        'before',
      ])
    })
  }

  it('DM sends whose snapshot predates a block or a removal are refused once it commits', async () => {
    for (const revoke of ['block', 'leave'] as const) {
      const a = await makeUser(t.db)
      const b = await makeUser(t.db)
      const dm = await makeDm(t.db, a.id, b.id)
      await sendMessage(t.db, { channel_id: dm.id, author_id: a.id, content: 'before' })
      const revoker = await t.pool.connect()
      let results: PromiseSettledResult<unknown>[]
      try {
        await revoker.query('begin')
        if (revoke === 'block') {
          await revoker.query(
            `insert into friendships (user_id, friend_id, status) values ($1, $2, 'blocked')`,
            [b.id, a.id],
          )
        } else {
          await revoker.query(
            'delete from dm_participants where channel_id = $1 and user_id = $2',
            [dm.id, a.id],
          )
        }
        const sends = Promise.allSettled(
          Array.from({ length: 4 }, (_, i) =>
            sendMessage(t.db, { channel_id: dm.id, author_id: a.id, content: `late ${i}` }),
          ),
        )
        expect(await waitForLockWaiters(revoker, 4)).toBeGreaterThanOrEqual(4)
        await revoker.query('commit')
        results = await sends
      } catch (error) {
        await revoker.query('rollback')
        throw error
      } finally {
        revoker.release()
      }
      for (const r of results) {
        const reason = (r as PromiseRejectedResult).reason
        if (revoke === 'block') {
          expect(reason).toBeInstanceOf(ConflictError)
          expect((reason as ConflictError).reason).toBe('blocked')
        } else {
          expect(reason).toBeInstanceOf(PermissionDeniedError)
        }
      }
      expect((await listChannelMessages(t.db, dm.id)).map((m) => m.content)).toEqual(['before'])
    }
  })

  it('no send commits after a revocation under a storm of concurrent sends (10 rounds)', async () => {
    let landedBefore = 0
    let refusedAfter = 0
    for (let round = 0; round < 10; round++) {
      const base = await guildWith(VIEW_CHANNEL | READ_MESSAGE_HISTORY)
      const role = await makeRole(t.db, base.guild.id, { permissions: SEND_MESSAGES })
      await t.db
        .insertInto('member_roles')
        .values({ guild_id: base.guild.id, user_id: base.user.id, role_id: role.id })
        .execute()
      let refused = 0
      // Each sender sends until it is refused (after the revocation below).
      const sender = async (k: number) => {
        for (let i = 0; ; i++) {
          try {
            await sendMessage(t.db, {
              channel_id: base.channel.id,
              author_id: base.user.id,
              content: `s${k}.${i}`,
            })
          } catch (error) {
            expect(error).toBeInstanceOf(PermissionDeniedError)
            refused++
            return
          }
        }
      }
      const senders = Array.from({ length: 6 }, (_, k) => sender(k))
      // Let sends land, then revoke; the revocation reads the channel's last
      // position while it holds the channel row, so every message committed
      // after the revocation has a larger position.
      while ((await listChannelMessages(t.db, base.channel.id, { limit: 5 })).length < 5) {
        await new Promise((r) => setTimeout(r, 5))
      }
      const cut = await t.db.transaction().execute(async (trx) => {
        await trx.deleteFrom('member_roles').where('role_id', '=', role.id).execute()
        const row = await trx
          .selectFrom('channels')
          .select('last_seq')
          .where('id', '=', base.channel.id)
          .executeTakeFirstOrThrow()
        return BigInt(row.last_seq)
      })
      await Promise.all(senders)
      const rows = await t.db
        .selectFrom('messages')
        .select(['seq'])
        .where('channel_id', '=', base.channel.id)
        .execute()
      expect(rows.every((r) => BigInt(r.seq) <= cut)).toBe(true)
      landedBefore += rows.length
      refusedAfter += refused
    }
    // The race ran: sends landed before each revocation and were refused after it.
    expect(landedBefore).toBeGreaterThanOrEqual(50)
    expect(refusedAfter).toBe(10 * 6)
  })
})
