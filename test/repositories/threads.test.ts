import { describe, expect, it } from 'vitest'
import {
  addThreadMember,
  archiveIdleThreads,
  archiveThread,
  ConflictError,
  canAccessChannel,
  createChannel,
  createThread,
  DatabaseUnavailableError,
  deleteChannel,
  joinThread,
  leaveThread,
  listActiveThreads,
  listArchivedThreads,
  listAuditLog,
  listChannelReadStates,
  listGuildChannels,
  markChannelRead,
  NotFoundError,
  PermissionDeniedError,
  Permissions,
  readChannelMessages,
  removeThreadMember,
  searchMessages,
  sendMessage,
  setChannelOverwrite,
  updateChannel,
  updateGuild,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeGuild,
  makeMemberWith,
  makeMessage,
  makeUser,
  unknownId,
} from '../support/factories.ts'
import { BAD_IDS, expectInvalidAndNothingWritten } from '../support/hostile-inputs.ts'
import { raceAtBarrier, waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase({ max: 14 })

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  )

async function setup() {
  const owner = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  const channel = await makeChannel(t.db, guild.id)
  return { owner, guild, channel }
}

const member = (guild_id: string, permissions = 0n) => makeMemberWith(t.db, guild_id, permissions)

/** A deny of VIEW_CHANNEL on a channel for one member. */
const denyView = (channel_id: string, user_id: string) =>
  setChannelOverwrite(t.db, { channel_id, user_id, allow: 0n, deny: Permissions.VIEW_CHANNEL })

const send = (channel_id: string, author_id: string, content = 'hi') =>
  sendMessage(t.db, { channel_id, author_id, content })

describe('createThread', () => {
  it('starts public threads standalone and from a message; the author is the first member; audited', async () => {
    const { owner, guild, channel } = await setup()
    const user = await member(guild.id)
    const standalone = await createThread(
      t.db,
      { channel_id: channel.id, author_id: user.id, name: 'plans' },
      { actor_id: user.id },
    )
    expect(standalone).toMatchObject({
      type: 'public_thread',
      guild_id: guild.id,
      parent_id: channel.id,
      owner_id: user.id,
      auto_archive_minutes: 1440,
      archived_at: null,
      locked: false,
      starter_message_id: null,
    })
    const message = await makeMessage(t.db, channel.id, owner.id)
    const fromMessage = await createThread(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      name: 'about that',
      message_id: message.id,
      auto_archive_minutes: 60,
    })
    expect(fromMessage.starter_message_id).toBe(message.id)
    // One thread per message.
    const again = await rejection(
      createThread(t.db, {
        channel_id: channel.id,
        author_id: owner.id,
        name: 'again',
        message_id: message.id,
      }),
    )
    expect(again).toBeInstanceOf(ConflictError)
    expect((again as ConflictError).reason).toBe('thread_exists')
    const members = await t.db
      .selectFrom('channel_members')
      .select('user_id')
      .where('channel_id', '=', standalone.id)
      .execute()
    expect(members.map((m) => m.user_id)).toEqual([user.id])
    const audit = await listAuditLog(t.db, guild.id)
    expect(audit.find((e) => e.target_id === standalone.id)?.action).toBe('thread_create')
    // A thread is messages' channel like any other: its own gap-free seq.
    const m1 = await send(standalone.id, user.id)
    const m2 = await send(standalone.id, user.id)
    expect([m1.seq, m2.seq]).toEqual([1n, 2n])
    // Threads are not in the guild's channel list.
    expect((await listGuildChannels(t.db, guild.id)).map((c) => c.id)).toEqual([channel.id])
  })

  it('refuses bad input with nothing written, and parents that are not text channels', async () => {
    const { owner, guild, channel } = await setup()
    const base = { channel_id: channel.id, author_id: owner.id, name: 'x' }
    for (const bad of [
      { ...base, name: '' },
      { ...base, name: 'x'.repeat(101) },
      { ...base, auto_archive_minutes: 30 },
      { ...base, auto_archive_minutes: 1440.5 },
      { ...base, private: 'yes' as unknown as boolean },
      { ...base, private: true, message_id: unknownId() },
      ...BAD_IDS.map((id) => ({ ...base, channel_id: id as string })),
      ...BAD_IDS.map((id) => ({ ...base, author_id: id as string })),
    ]) {
      await expectInvalidAndNothingWritten(t.db, () => createThread(t.db, bad))
    }
    await expectInvalidAndNothingWritten(t.db, () =>
      createThread(t.db, { ...base, message_id: unknownId() }),
    )
    const voice = await createChannel(t.db, { guild_id: guild.id, name: 'v', type: 'voice' })
    const category = await createChannel(t.db, { guild_id: guild.id, name: 'c', type: 'category' })
    const thread = await createThread(t.db, base)
    for (const parent of [voice.id, category.id, thread.id]) {
      const error = await rejection(createThread(t.db, { ...base, channel_id: parent }))
      expect(error).toBeInstanceOf(ConflictError)
      expect((error as ConflictError).reason).toBe('parent_not_text')
    }
    expect(
      await rejection(createThread(t.db, { ...base, channel_id: unknownId() })),
    ).toBeInstanceOf(NotFoundError)
    // A thread has no overwrites of its own.
    const overwrite = await rejection(
      setChannelOverwrite(t.db, {
        channel_id: thread.id,
        role_id: guild.defaultRole.id,
        allow: 0n,
        deny: Permissions.VIEW_CHANNEL,
      }),
    )
    expect(overwrite).toBeDefined()
  })

  it('needs CREATE_PUBLIC_THREADS / CREATE_PRIVATE_THREADS in the channel with `as`', async () => {
    const { guild, channel } = await setup()
    await t.db
      .updateTable('roles')
      .set({ permissions: Permissions.VIEW_CHANNEL | Permissions.SEND_MESSAGES })
      .where('id', '=', guild.defaultRole.id)
      .execute()
    const plain = await member(guild.id)
    const creator = await member(guild.id, Permissions.CREATE_PUBLIC_THREADS)
    const before = await countRows(t.db)
    const denied = await rejection(
      createThread(
        t.db,
        { channel_id: channel.id, author_id: plain.id, name: 'x' },
        { actor_id: plain.id },
      ),
    )
    expect(denied).toBeInstanceOf(PermissionDeniedError)
    expect(await countRows(t.db)).toEqual(before)
    await createThread(
      t.db,
      { channel_id: channel.id, author_id: creator.id, name: 'x' },
      { actor_id: creator.id },
    )
    const privateDenied = await rejection(
      createThread(
        t.db,
        { channel_id: channel.id, author_id: creator.id, name: 'p', private: true },
        { actor_id: creator.id },
      ),
    )
    expect(privateDenied).toBeInstanceOf(PermissionDeniedError)
  })
})

describe('thread access', () => {
  it('a public thread follows its parent, also for stored permissions when the parent changes', async () => {
    const { guild, channel } = await setup()
    const user = await member(guild.id)
    const thread = await createThread(t.db, {
      channel_id: channel.id,
      author_id: user.id,
      name: 't',
    })
    const reader = await member(guild.id)
    await send(thread.id, user.id)
    // Stored permissions of the reader and sender in the thread.
    expect(
      await readChannelMessages(t.db, { channel_id: thread.id, user_id: reader.id }),
    ).toHaveLength(1)
    const version = async () =>
      (
        await t.db
          .selectFrom('channels')
          .select('access_version')
          .where('id', '=', thread.id)
          .executeTakeFirstOrThrow()
      ).access_version
    const v0 = await version()
    // A deny on the parent: the thread's version moves, the stored rows are not trusted.
    await denyView(channel.id, reader.id)
    expect(await version()).toBeGreaterThan(v0)
    expect(
      await rejection(readChannelMessages(t.db, { channel_id: thread.id, user_id: reader.id })),
    ).toBeInstanceOf(PermissionDeniedError)
    expect(await canAccessChannel(t.db, { channel_id: thread.id, user_id: reader.id })).toBe(false)
    // The parent made private: the thread too (the sender is not a channel member).
    await t.db
      .updateTable('channels')
      .set({ is_private: true })
      .where('id', '=', channel.id)
      .execute()
    expect(await rejection(send(thread.id, user.id))).toBeInstanceOf(PermissionDeniedError)
  })

  it('sending in a thread needs SEND_MESSAGES_IN_THREADS, not SEND_MESSAGES', async () => {
    const { guild, channel } = await setup()
    const user = await member(guild.id)
    const thread = await createThread(t.db, {
      channel_id: channel.id,
      author_id: user.id,
      name: 't',
    })
    await send(thread.id, user.id)
    await setChannelOverwrite(t.db, {
      channel_id: channel.id,
      user_id: user.id,
      allow: 0n,
      deny: Permissions.SEND_MESSAGES_IN_THREADS,
    })
    const refused = await rejection(send(thread.id, user.id))
    expect(refused).toBeInstanceOf(PermissionDeniedError)
    await send(channel.id, user.id)
    await setChannelOverwrite(t.db, {
      channel_id: channel.id,
      user_id: user.id,
      allow: Permissions.SEND_MESSAGES_IN_THREADS,
      deny: Permissions.SEND_MESSAGES,
    })
    await send(thread.id, user.id)
    expect(await rejection(send(channel.id, user.id))).toBeInstanceOf(PermissionDeniedError)
  })

  it('a private thread: its members and MANAGE_THREADS holders (who view the parent); removal revokes', async () => {
    const { owner, guild, channel } = await setup()
    const author = await member(guild.id)
    const outsider = await member(guild.id)
    const moderator = await member(guild.id, Permissions.MANAGE_THREADS)
    const invited = await member(guild.id)
    const thread = await createThread(t.db, {
      channel_id: channel.id,
      author_id: author.id,
      name: 'secret',
      private: true,
    })
    expect(thread.type).toBe('private_thread')
    await send(thread.id, author.id)
    expect(await rejection(send(thread.id, outsider.id))).toBeInstanceOf(PermissionDeniedError)
    expect(
      await rejection(joinThread(t.db, { thread_id: thread.id, user_id: outsider.id })),
    ).toBeInstanceOf(PermissionDeniedError)
    expect(
      await readChannelMessages(t.db, { channel_id: thread.id, user_id: moderator.id }),
    ).toHaveLength(1)
    await addThreadMember(
      t.db,
      { thread_id: thread.id, user_id: invited.id },
      { actor_id: author.id },
    )
    await send(thread.id, invited.id)
    // The outsider may not add anyone (cannot send in it).
    expect(
      await rejection(
        addThreadMember(
          t.db,
          { thread_id: thread.id, user_id: outsider.id },
          { actor_id: outsider.id },
        ),
      ),
    ).toBeInstanceOf(PermissionDeniedError)
    // Removal needs MANAGE_THREADS with `as`; it revokes the stored permission.
    expect(
      await rejection(
        removeThreadMember(
          t.db,
          { thread_id: thread.id, user_id: invited.id },
          { actor_id: author.id },
        ),
      ),
    ).toBeInstanceOf(PermissionDeniedError)
    expect(
      await removeThreadMember(
        t.db,
        { thread_id: thread.id, user_id: invited.id },
        { actor_id: moderator.id },
      ),
    ).toBe(true)
    expect(await rejection(send(thread.id, invited.id))).toBeInstanceOf(PermissionDeniedError)
    const audit = await listAuditLog(t.db, guild.id)
    expect(audit.map((e) => e.action)).toEqual(
      expect.arrayContaining(['thread_member_add', 'thread_member_remove']),
    )
    // A MANAGE_THREADS holder who cannot view the parent sees nothing.
    await denyView(channel.id, moderator.id)
    expect(await canAccessChannel(t.db, { channel_id: thread.id, user_id: moderator.id })).toBe(
      false,
    )
    expect(await canAccessChannel(t.db, { channel_id: thread.id, user_id: owner.id })).toBe(true)
  })
})

describe('search, read states and mentions in threads', () => {
  it('cover threads under the thread rule', async () => {
    const { owner, guild, channel } = await setup()
    const user = await member(guild.id)
    const outsider = await member(guild.id)
    const open = await createThread(t.db, { channel_id: channel.id, author_id: user.id, name: 'o' })
    const secret = await createThread(t.db, {
      channel_id: channel.id,
      author_id: user.id,
      name: 's',
      private: true,
    })
    await sendMessage(t.db, {
      channel_id: open.id,
      author_id: owner.id,
      content: 'zebra crossing in the open',
      mentions: { user_ids: [user.id] },
    })
    await sendMessage(t.db, {
      channel_id: secret.id,
      author_id: user.id,
      content: 'zebra crossing in secret',
    })
    const found = async (user_id: string) =>
      (await searchMessages(t.db, { user_id, query: 'zebra' })).map((m) => m.channel_id).sort()
    expect(await found(user.id)).toEqual([open.id, secret.id].sort())
    expect(await found(outsider.id)).toEqual([open.id])
    // Read states: the active threads the user joined (not every thread of the guild).
    const states = await listChannelReadStates(t.db, { user_id: user.id, guild_id: guild.id })
    const openState = states.find((s) => s.channel_id === open.id)
    expect(openState).toMatchObject({ unread_count: 1, mention_count: 1 })
    expect(states.map((s) => s.channel_id)).toContain(secret.id)
    const outsiderStates = await listChannelReadStates(t.db, {
      user_id: outsider.id,
      guild_id: guild.id,
    })
    expect(outsiderStates.map((s) => s.channel_id)).toEqual([channel.id])
    await markChannelRead(t.db, {
      user_id: user.id,
      channel_id: open.id,
      message_id: (await listMessages(open.id))[0] ?? '',
    })
    const after = await listChannelReadStates(t.db, { user_id: user.id, guild_id: guild.id })
    expect(after.find((s) => s.channel_id === open.id)).toMatchObject({
      unread_count: 0,
      mention_count: 0,
    })
    // Archived threads leave the list.
    await archiveThread(t.db, { thread_id: secret.id })
    const archived = await listChannelReadStates(t.db, { user_id: user.id, guild_id: guild.id })
    expect(archived.map((s) => s.channel_id)).not.toContain(secret.id)
  })
})

const listMessages = async (channel_id: string) =>
  (
    await t.db
      .selectFrom('messages')
      .select('id')
      .where('channel_id', '=', channel_id)
      .orderBy('seq', 'desc')
      .execute()
  ).map((m) => m.id)

describe('stored permissions of a thread created beside a revocation of its parent', () => {
  const insertThread = `insert into channels (id, guild_id, parent_id, name, type, auto_archive_minutes)
    values (guildstore_uuidv7(), $1, $2, 't', 'public_thread', 60) returning id`

  it('READ COMMITTED: a revocation that waited for the creation bumps the new thread (proof: it waited)', async () => {
    const { guild, channel } = await setup()
    const reader = await member(guild.id)
    const client = await t.pool.connect()
    let threadId = ''
    try {
      await client.query('begin')
      const { rows } = await client.query<{ id: string }>(insertThread, [guild.id, channel.id])
      threadId = rows[0]?.id ?? ''
      const revoking = setChannelOverwrite(t.db, {
        channel_id: channel.id,
        user_id: reader.id,
        allow: 0n,
        deny: Permissions.VIEW_CHANNEL,
      })
      await waitForLockWaiters(client, 1)
      await client.query('commit')
      await revoking
    } finally {
      client.release()
    }
    const row = await t.db
      .selectFrom('channels')
      .select('access_version')
      .where('id', '=', threadId)
      .executeTakeFirstOrThrow()
    expect(row.access_version).toBeGreaterThanOrEqual(1n)
    expect(await canAccessChannel(t.db, { channel_id: threadId, user_id: reader.id })).toBe(false)
  })

  it('REPEATABLE READ: a revocation whose snapshot predates a committed creation fails with 40001', async () => {
    const { guild, channel } = await setup()
    const reader = await member(guild.id)
    const error = await rejection(
      t.db
        .transaction()
        .setIsolationLevel('repeatable read')
        .execute(async (trx) => {
          await trx.selectFrom('channels').select('id').where('id', '=', channel.id).execute()
          await t.pool.query(insertThread, [guild.id, channel.id])
          await setChannelOverwrite(trx, {
            channel_id: channel.id,
            user_id: reader.id,
            allow: 0n,
            deny: Permissions.VIEW_CHANNEL,
          })
        }),
    )
    expect(error).toBeInstanceOf(DatabaseUnavailableError)
    expect((error as DatabaseUnavailableError).sqlState).toBe('40001')
  })
})

describe('thread members', () => {
  it('join, leave, add (who views the parent), remove; idempotent; refused while archived', async () => {
    const { owner, guild, channel } = await setup()
    const thread = await createThread(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      name: 't',
    })
    const user = await member(guild.id)
    const joined = await joinThread(t.db, { thread_id: thread.id, user_id: user.id })
    expect(joined).toMatchObject({ channel_id: thread.id, user_id: user.id })
    expect(await joinThread(t.db, { thread_id: thread.id, user_id: user.id })).toEqual(joined)
    expect(await leaveThread(t.db, { thread_id: thread.id, user_id: user.id })).toBe(true)
    expect(await leaveThread(t.db, { thread_id: thread.id, user_id: user.id })).toBe(false)
    const blind = await member(guild.id)
    await denyView(channel.id, blind.id)
    const cannot = await rejection(
      addThreadMember(t.db, { thread_id: thread.id, user_id: blind.id }),
    )
    expect((cannot as ConflictError).reason).toBe('cannot_view')
    const stranger = await makeUser(t.db)
    const notMember = await rejection(
      addThreadMember(t.db, { thread_id: thread.id, user_id: stranger.id }),
    )
    expect(notMember).toBeInstanceOf(ConflictError)
    expect(
      await rejection(joinThread(t.db, { thread_id: channel.id, user_id: user.id })),
    ).toBeInstanceOf(NotFoundError)
    await archiveThread(t.db, { thread_id: thread.id })
    const archived = await rejection(joinThread(t.db, { thread_id: thread.id, user_id: user.id }))
    expect((archived as ConflictError).reason).toBe('archived')
    for (const bad of BAD_IDS) {
      await expectInvalidAndNothingWritten(t.db, () =>
        joinThread(t.db, { thread_id: bad as string, user_id: user.id }),
      )
    }
  })

  it('the member limit is exact under concurrent joins (proof: lock waiters)', async () => {
    const { owner, guild, channel } = await setup()
    for (const bad of [0, 100_001, 1.5, '5']) {
      await expectInvalidAndNothingWritten(t.db, () =>
        updateGuild(t.db, guild.id, { max_thread_members: bad as number }),
      )
    }
    expect(await updateGuild(t.db, guild.id, { max_thread_members: 5 })).toMatchObject({
      max_thread_members: 5,
    })
    const thread = await createThread(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      name: 't',
    })
    const users = await Promise.all(Array.from({ length: 10 }, () => member(guild.id)))
    // The barrier holds the thread's counter row: every join waits there.
    const race = await raceAtBarrier(
      t.pool,
      {
        text: 'select 1 from guildstore_thread_member_counts where thread_id = $1 for update',
        values: [thread.id],
      },
      users.map((u) => () => joinThread(t.db, { thread_id: thread.id, user_id: u.id })),
    )
    expect(race.waiters).toBeGreaterThanOrEqual(10)
    const ok = race.results.filter((r) => r.status === 'fulfilled')
    const refused = race.results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []))
    expect(ok).toHaveLength(4)
    expect(refused).toHaveLength(6)
    for (const e of refused) expect((e as ConflictError).reason).toBe('thread_member_limit')
    const count = await t.db
      .selectFrom('channel_members')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('channel_id', '=', thread.id)
      .executeTakeFirstOrThrow()
    expect(Number(count.n)).toBe(5)
    // A leave frees a slot.
    await leaveThread(t.db, { thread_id: thread.id, user_id: owner.id })
    const refusedUser = users.find((_, i) => race.results[i]?.status === 'rejected')
    await joinThread(t.db, { thread_id: thread.id, user_id: refusedUser?.id ?? '' })
  })
})

describe('archiving and locking', () => {
  it('a send unarchives; a locked thread takes messages only from MANAGE_THREADS holders', async () => {
    const { guild, channel } = await setup()
    const user = await member(guild.id)
    const moderator = await member(guild.id, Permissions.MANAGE_THREADS)
    const thread = await createThread(t.db, {
      channel_id: channel.id,
      author_id: user.id,
      name: 't',
    })
    await send(thread.id, user.id)
    const archived = await archiveThread(t.db, { thread_id: thread.id }, { actor_id: moderator.id })
    expect(archived?.archived_at).toBeInstanceOf(Date)
    const bystander = await member(guild.id)
    expect(
      await rejection(archiveThread(t.db, { thread_id: thread.id }, { actor_id: bystander.id })),
    ).toBeInstanceOf(PermissionDeniedError)
    await send(thread.id, user.id)
    const active = await t.db
      .selectFrom('channels')
      .select(['archived_at'])
      .where('id', '=', thread.id)
      .executeTakeFirstOrThrow()
    expect(active.archived_at).toBeNull()

    await archiveThread(t.db, { thread_id: thread.id, locked: true }, { actor_id: moderator.id })
    const locked = await rejection(send(thread.id, user.id))
    expect(locked).toBeInstanceOf(PermissionDeniedError)
    const stillArchived = await t.db
      .selectFrom('channels')
      .select(['archived_at', 'locked'])
      .where('id', '=', thread.id)
      .executeTakeFirstOrThrow()
    expect(stillArchived.archived_at).toBeInstanceOf(Date)
    expect(stillArchived.locked).toBe(true)
    await send(thread.id, moderator.id)
    // A moderator unlocks and unarchives; renames and deletes need MANAGE_THREADS.
    await archiveThread(t.db, { thread_id: thread.id, locked: true }, { actor_id: moderator.id })
    const reopened = await archiveThread(
      t.db,
      { thread_id: thread.id, archived: false, locked: false },
      { actor_id: moderator.id },
    )
    expect(reopened).toMatchObject({ archived_at: null, locked: false })
    await send(thread.id, user.id)
    expect(
      await rejection(updateChannel(t.db, thread.id, { name: 'x' }, { actor_id: user.id })),
    ).toBeInstanceOf(PermissionDeniedError)
    await updateChannel(t.db, thread.id, { name: 'renamed' }, { actor_id: moderator.id })
    expect(await rejection(deleteChannel(t.db, thread.id, { actor_id: user.id }))).toBeInstanceOf(
      PermissionDeniedError,
    )
    const audit = await listAuditLog(t.db, guild.id)
    expect(audit.filter((e) => e.action === 'thread_update').length).toBeGreaterThanOrEqual(2)
  })

  it("the thread's owner archives and unarchives it without MANAGE_THREADS, but never locks, unlocks or reopens a locked one", async () => {
    const { guild, channel } = await setup()
    const owner = await member(guild.id)
    const other = await member(guild.id)
    const moderator = await member(guild.id, Permissions.MANAGE_THREADS)
    const thread = await createThread(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      name: 'mine',
    })
    const row = () =>
      t.db
        .selectFrom('channels')
        .select(['archived_at', 'locked', 'access_version'])
        .where('id', '=', thread.id)
        .executeTakeFirstOrThrow()
    const refusal = async (call: () => Promise<unknown>) => {
      const before = await row()
      const auditBefore = (await listAuditLog(t.db, guild.id)).length
      const error = await rejection(call())
      expect(error).toBeInstanceOf(PermissionDeniedError)
      expect(await row()).toEqual(before)
      expect((await listAuditLog(t.db, guild.id)).length).toBe(auditBefore)
      return error as PermissionDeniedError
    }
    // The owner archives and unarchives their own (unlocked) thread; audited.
    const archived = await archiveThread(t.db, { thread_id: thread.id }, { actor_id: owner.id })
    expect(archived?.archived_at).toBeInstanceOf(Date)
    const reopened = await archiveThread(
      t.db,
      { thread_id: thread.id, archived: false },
      { actor_id: owner.id },
    )
    expect(reopened).toMatchObject({ archived_at: null, locked: false })
    const audit = await listAuditLog(t.db, guild.id)
    expect(
      audit.filter((e) => e.action === 'thread_update' && e.actor_id === owner.id),
    ).toHaveLength(2)
    // Not the owner, without MANAGE_THREADS: refused, typed, nothing written.
    const notOwner = await refusal(() =>
      archiveThread(t.db, { thread_id: thread.id }, { actor_id: other.id }),
    )
    expect(notOwner).toMatchObject({
      reason: 'missing_permission',
      permission: Permissions.MANAGE_THREADS,
    })
    // The owner cannot lock (not even while archiving).
    const lock = await refusal(() =>
      archiveThread(t.db, { thread_id: thread.id, locked: true }, { actor_id: owner.id }),
    )
    expect(lock.permission).toBe(Permissions.MANAGE_THREADS)
    // `locked` as it is already changes nothing about the lock: allowed.
    await archiveThread(t.db, { thread_id: thread.id, locked: false }, { actor_id: owner.id })
    expect((await row()).archived_at).toBeInstanceOf(Date)
    // Locked by a moderator (and archived): the owner neither unarchives nor unlocks it.
    await archiveThread(t.db, { thread_id: thread.id, locked: true }, { actor_id: moderator.id })
    await refusal(() =>
      archiveThread(t.db, { thread_id: thread.id, archived: false }, { actor_id: owner.id }),
    )
    await refusal(() =>
      archiveThread(
        t.db,
        { thread_id: thread.id, archived: false, locked: false },
        { actor_id: owner.id },
      ),
    )
    // Nor archives it again once a moderator reopened it still locked.
    await archiveThread(t.db, { thread_id: thread.id, archived: false }, { actor_id: moderator.id })
    await refusal(() => archiveThread(t.db, { thread_id: thread.id }, { actor_id: owner.id }))
    expect(await row()).toMatchObject({ archived_at: null, locked: true })
    // The owner must still see the thread: a deny of VIEW_CHANNEL on the parent refuses them.
    const second = await createThread(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      name: 's',
    })
    await denyView(channel.id, owner.id)
    const hidden = await rejection(
      archiveThread(t.db, { thread_id: second.id }, { actor_id: owner.id }),
    )
    expect(hidden).toMatchObject({ permission: Permissions.VIEW_CHANNEL })
  })

  it('archiveIdleThreads archives threads idle for their auto_archive_minutes only', async () => {
    const { owner, channel } = await setup()
    const hour = await createThread(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      name: 'h',
      auto_archive_minutes: 60,
    })
    const week = await createThread(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      name: 'w',
      auto_archive_minutes: 10080,
    })
    await send(hour.id, owner.id)
    const soon = new Date(Date.now() + 30 * 60_000)
    const later = new Date(Date.now() + 2 * 3600_000)
    await archiveIdleThreads(t.db, { now: soon })
    const state = async (id: string) =>
      (
        await t.db
          .selectFrom('channels')
          .select('archived_at')
          .where('id', '=', id)
          .executeTakeFirstOrThrow()
      ).archived_at
    expect(await state(hour.id)).toBeNull()
    await archiveIdleThreads(t.db, { now: later })
    expect(await state(hour.id)).toEqual(later)
    expect(await state(week.id)).toBeNull()
    await expectInvalidAndNothingWritten(t.db, () =>
      archiveIdleThreads(t.db, { now: new Date('nope') }),
    )
  })

  it('a send that commits before the archiver keeps the thread active (proof: the archiver waited)', async () => {
    const { owner, channel } = await setup()
    const thread = await createThread(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      name: 't',
      auto_archive_minutes: 60,
    })
    const future = new Date(Date.now() + 2 * 3600_000)
    const client = await t.pool.connect()
    try {
      await client.query('begin')
      // A send in flight: holds the thread row with a new last_seq.
      await client.query(
        `insert into messages (id, channel_id, author_id, content) values (guildstore_uuidv7(), $1, $2, 'x')`,
        [thread.id, owner.id],
      )
      const archiver = archiveIdleThreads(t.db, { now: future })
      await waitForLockWaiters(client, 1)
      await client.query('commit')
      expect(await archiver).toBe(0)
    } finally {
      client.release()
    }
    const row = await t.db
      .selectFrom('channels')
      .select('archived_at')
      .where('id', '=', thread.id)
      .executeTakeFirstOrThrow()
    expect(row.archived_at).toBeNull()
  })

  it('a send that comes after the archiver unarchives the thread (proof: the send waited)', async () => {
    const { owner, channel } = await setup()
    const thread = await createThread(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      name: 't',
      auto_archive_minutes: 60,
    })
    await send(thread.id, owner.id)
    const client = await t.pool.connect()
    let sent: Awaited<ReturnType<typeof send>> | undefined
    try {
      await client.query('begin')
      const { rowCount } = await client.query(
        `update channels set archived_at = now() where id = $1 and archived_at is null`,
        [thread.id],
      )
      expect(rowCount).toBe(1)
      const sending = send(thread.id, owner.id)
      await waitForLockWaiters(client, 1)
      await client.query('commit')
      sent = await sending
    } finally {
      client.release()
    }
    expect(sent?.seq).toBe(2n)
    const row = await t.db
      .selectFrom('channels')
      .select('archived_at')
      .where('id', '=', thread.id)
      .executeTakeFirstOrThrow()
    expect(row.archived_at).toBeNull()
  })
})

describe('listing threads', () => {
  it('active threads by keyset, only those the user may access', async () => {
    const { owner, guild, channel } = await setup()
    const user = await member(guild.id)
    const threads = []
    for (let i = 0; i < 5; i++) {
      threads.push(
        await createThread(t.db, { channel_id: channel.id, author_id: owner.id, name: `t${i}` }),
      )
    }
    const hidden = await createThread(t.db, {
      channel_id: channel.id,
      author_id: owner.id,
      name: 'p',
      private: true,
    })
    await archiveThread(t.db, { thread_id: threads[4]?.id ?? '' })
    const first = await listActiveThreads(t.db, { guild_id: guild.id, user_id: user.id, limit: 2 })
    const rest = await listActiveThreads(t.db, {
      guild_id: guild.id,
      user_id: user.id,
      after: first.at(-1)?.id,
    })
    expect([...first, ...rest].map((x) => x.id)).toEqual(threads.slice(0, 4).map((x) => x.id))
    const ownerSees = await listActiveThreads(t.db, { guild_id: guild.id, user_id: owner.id })
    expect(ownerSees.map((x) => x.id)).toContain(hidden.id)
    await expectInvalidAndNothingWritten(t.db, () =>
      listActiveThreads(t.db, { guild_id: guild.id, user_id: user.id, limit: 101 }),
    )
  })

  it('archived threads newest archived first, by keyset on (archived_at, id); private ones for members', async () => {
    const { owner, guild, channel } = await setup()
    const user = await member(guild.id)
    const archived = []
    for (let i = 0; i < 5; i++) {
      const thread = await createThread(t.db, {
        channel_id: channel.id,
        author_id: owner.id,
        name: `t${i}`,
      })
      await archiveThread(t.db, { thread_id: thread.id })
      archived.push(thread)
    }
    const secret = await createThread(t.db, {
      channel_id: channel.id,
      author_id: user.id,
      name: 's',
      private: true,
    })
    await archiveThread(t.db, { thread_id: secret.id })
    const stranger = await member(guild.id)
    const page1 = await listArchivedThreads(t.db, {
      channel_id: channel.id,
      user_id: stranger.id,
      limit: 3,
    })
    const page2 = await listArchivedThreads(t.db, {
      channel_id: channel.id,
      user_id: stranger.id,
      before: page1.at(-1)?.id,
    })
    expect([...page1, ...page2].map((x) => x.id)).toEqual(archived.map((x) => x.id).reverse())
    const mine = await listArchivedThreads(t.db, { channel_id: channel.id, user_id: user.id })
    expect(mine[0]?.id).toBe(secret.id)
    expect(mine).toHaveLength(6)
  })
})
