import { sql } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  createAttachment,
  createDb,
  deleteAttachment,
  deleteMessage,
  ForeignKeyViolationError,
  listAttachmentsByMessageIds,
  NotFoundError,
  purgeDeletedMessages,
  purgeDeletedMessagesWithAttachments,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuild, makeMessage, makeUser, unknownId } from '../support/factories.ts'
import { expectInvalidAndNothingWritten } from '../support/hostile-inputs.ts'
import { waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase()

let author: { id: string }
let channel: { id: string }

beforeAll(async () => {
  author = await makeUser(t.db)
  const guild = await makeGuild(t.db, author.id)
  channel = await makeChannel(t.db, guild.id)
})

const valid = (message_id: string) => ({
  message_id,
  filename: 'cat.png',
  s3_key: `uploads/${unknownId()}`,
  size: 48_213,
  content_type: 'image/png',
})

describe('createAttachment', () => {
  it('records an attachment; size comes back as a bigint', async () => {
    const m = await makeMessage(t.db, channel.id, author.id)
    const input = valid(m.id)
    const a = await createAttachment(t.db, input)
    expect(a).toMatchObject({
      message_id: m.id,
      filename: 'cat.png',
      s3_key: input.s3_key,
      size: 48_213n,
      content_type: 'image/png',
    })
    expect(a.created_at).toBeInstanceOf(Date)
    expect(Object.keys(a).sort()).toEqual(
      ['content_type', 'created_at', 'filename', 'id', 'message_id', 's3_key', 'size'].sort(),
    )
  })

  it('accepts a bigint size up to the int64 maximum, size 0, and no content_type', async () => {
    const m = await makeMessage(t.db, channel.id, author.id)
    const big = await createAttachment(t.db, { ...valid(m.id), size: 9_223_372_036_854_775_807n })
    expect(big.size).toBe(9_223_372_036_854_775_807n)
    const empty = await createAttachment(t.db, {
      message_id: m.id,
      filename: '📄'.repeat(255),
      s3_key: 'k'.repeat(1024),
      size: 0,
    })
    expect(empty).toMatchObject({ size: 0n, content_type: null })
  })

  it.each([
    ['a negative size', { size: -1 }],
    ['a fractional size', { size: 1.5 }],
    ['NaN', { size: Number.NaN }],
    ['an unsafe integer', { size: 2 ** 60 }],
    ['a bigint beyond int64', { size: 9_223_372_036_854_775_808n }],
    ['a negative bigint', { size: -1n }],
    ['a size string', { size: '12' }],
    ['an empty filename', { filename: '' }],
    ['a 256-character filename', { filename: 'f'.repeat(256) }],
    ['a NUL in the filename', { filename: 'a\u0000.png' }],
    ['a lone surrogate in the filename', { filename: 'a\uDC00.png' }],
    ['an empty s3_key', { s3_key: '' }],
    ['a 1025-character s3_key', { s3_key: 'k'.repeat(1025) }],
    ['an empty content_type', { content_type: '' }],
    ['a 256-character content_type', { content_type: 'x'.repeat(256) }],
    ['a malformed message id', { message_id: 'm-1' }],
  ])('refuses %s with InvalidInputError and writes nothing', async (_name, override) => {
    const m = await makeMessage(t.db, channel.id, author.id)
    await expectInvalidAndNothingWritten(t.db, () =>
      createAttachment(t.db, {
        ...valid(m.id),
        ...(override as object),
      } as Parameters<typeof createAttachment>[1]),
    )
  })

  it('refuses an unknown message (foreign key) and a soft-deleted one (NotFoundError)', async () => {
    const m = await makeMessage(t.db, channel.id, author.id, { deleted_at: new Date() })
    const before = await countRows(t.db)
    await expect(createAttachment(t.db, valid(unknownId()))).rejects.toBeInstanceOf(
      ForeignKeyViolationError,
    )
    await expect(createAttachment(t.db, valid(m.id))).rejects.toBeInstanceOf(NotFoundError)
    expect(await countRows(t.db)).toEqual(before)
  })
})

describe('listAttachmentsByMessageIds', () => {
  it('returns the attachments of a 50-message page in one query, by message id then id', async () => {
    const messages = []
    for (let i = 0; i < 50; i++) messages.push(await makeMessage(t.db, channel.id, author.id))
    const expected: Array<{ id: string; message_id: string }> = []
    // Attachments created in shuffled message order, 0–2 per message.
    for (const m of [...messages].reverse()) {
      const n = Number.parseInt(m.id.slice(-1), 16) % 3
      for (let k = 0; k < n; k++) {
        const a = await createAttachment(t.db, valid(m.id))
        expected.push({ id: a.id, message_id: m.id })
      }
    }
    expected.sort((x, y) =>
      x.message_id === y.message_id ? (x.id < y.id ? -1 : 1) : x.message_id < y.message_id ? -1 : 1,
    )
    const queries: string[] = []
    const db = createDb(t.pool, { log: (e) => queries.push(e.sql) })
    const got = await listAttachmentsByMessageIds(
      db,
      messages.map((m) => m.id),
    )
    expect(queries).toHaveLength(1)
    expect(queries[0]).toContain('= any(')
    expect(got.map((a) => ({ id: a.id, message_id: a.message_id }))).toEqual(expected)
    expect(got.every((a) => typeof a.size === 'bigint')).toBe(true)
  })

  it('leaves out attachments of soft-deleted messages, and unknown ids are ignored', async () => {
    const live = await makeMessage(t.db, channel.id, author.id)
    const gone = await makeMessage(t.db, channel.id, author.id)
    const a = await createAttachment(t.db, valid(live.id))
    await createAttachment(t.db, valid(gone.id))
    expect(await deleteMessage(t.db, gone.id)).toBe(true)
    const got = await listAttachmentsByMessageIds(t.db, [live.id, gone.id, unknownId()])
    expect(got.map((x) => x.id)).toEqual([a.id])
  })

  it('returns [] for no ids without a query', async () => {
    const queries: string[] = []
    const db = createDb(t.pool, { log: (e) => queries.push(e.sql) })
    expect(await listAttachmentsByMessageIds(db, [])).toEqual([])
    expect(queries).toEqual([])
  })

  it('refuses a non-array or a malformed id', async () => {
    await expectInvalidAndNothingWritten(t.db, () =>
      listAttachmentsByMessageIds(t.db, [unknownId(), 'x']),
    )
    await expectInvalidAndNothingWritten(t.db, () =>
      listAttachmentsByMessageIds(t.db, unknownId() as unknown as string[]),
    )
  })
})

describe('deleteAttachment', () => {
  it('returns the deleted row once, then undefined', async () => {
    const m = await makeMessage(t.db, channel.id, author.id)
    const a = await createAttachment(t.db, valid(m.id))
    expect(await deleteAttachment(t.db, a.id)).toEqual(a)
    expect(await deleteAttachment(t.db, a.id)).toBeUndefined()
    expect(await listAttachmentsByMessageIds(t.db, [m.id])).toEqual([])
  })

  it('refuses a malformed id', async () => {
    await expectInvalidAndNothingWritten(t.db, () => deleteAttachment(t.db, 'nope'))
  })
})

describe('cascades', () => {
  it('a hard purge removes the attachments of purged messages', async () => {
    const m = await makeMessage(t.db, channel.id, author.id)
    const a = await createAttachment(t.db, valid(m.id))
    await t.db
      .updateTable('messages')
      .set({ deleted_at: new Date(Date.now() - 86_400_000) })
      .where('id', '=', m.id)
      .execute()
    expect(await purgeDeletedMessages(t.db, { older_than: new Date() })).toBeGreaterThanOrEqual(1)
    const left = await t.db
      .selectFrom('message_attachments')
      .select('id')
      .where('id', '=', a.id)
      .execute()
    expect(left).toEqual([])
  })

  it('deleting a channel removes its attachments', async () => {
    const guild = await makeGuild(t.db, author.id)
    const ch = await makeChannel(t.db, guild.id)
    const m = await makeMessage(t.db, ch.id, author.id)
    const a = await createAttachment(t.db, valid(m.id))
    await t.db.deleteFrom('channels').where('id', '=', ch.id).execute()
    expect(await deleteAttachment(t.db, a.id)).toBeUndefined()
  })
})

describe('purgeDeletedMessagesWithAttachments', () => {
  // Soft-deleted long ago, purged with a cutoff in the past: other tests' rows stay out.
  const LONG_AGO = new Date('2000-01-01T00:00:00Z')
  const CUTOFF = new Date('2000-06-01T00:00:00Z')
  const softDeleteLongAgo = (id: string) =>
    t.db.updateTable('messages').set({ deleted_at: LONG_AGO }).where('id', '=', id).execute()

  it('returns every attachment row it deleted (the ones listAttachmentsByMessageIds hides)', async () => {
    const doomed = await makeMessage(t.db, channel.id, author.id)
    const alsoDoomed = await makeMessage(t.db, channel.id, author.id)
    const live = await makeMessage(t.db, channel.id, author.id)
    const files = [
      await createAttachment(t.db, valid(doomed.id)),
      await createAttachment(t.db, valid(doomed.id)),
      await createAttachment(t.db, valid(alsoDoomed.id)),
    ]
    const kept = await createAttachment(t.db, valid(live.id))
    await softDeleteLongAgo(doomed.id)
    await softDeleteLongAgo(alsoDoomed.id)
    // What 0.1.0 offered for finding the keys before a purge: nothing.
    expect(await listAttachmentsByMessageIds(t.db, [doomed.id, alsoDoomed.id])).toEqual([])

    const before = await countRows(t.db, ['messages', 'message_attachments'])
    const result = await purgeDeletedMessagesWithAttachments(t.db, { older_than: CUTOFF })
    expect(result.purged).toBe(2)
    const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id)
    expect([...result.attachments].sort(byId)).toEqual([...files].sort(byId))
    expect(result.attachments.map((a) => typeof a.size)).toEqual(['bigint', 'bigint', 'bigint'])
    expect(await countRows(t.db, ['messages', 'message_attachments'])).toEqual({
      messages: before.messages! - 2,
      message_attachments: before.message_attachments! - 3,
    })
    expect(await listAttachmentsByMessageIds(t.db, [live.id])).toEqual([kept])
    expect(await purgeDeletedMessagesWithAttachments(t.db, { older_than: CUTOFF })).toEqual({
      purged: 0,
      attachments: [],
    })
  })

  it('returns an attachment whose insert was in flight when the purge started', async () => {
    const m = await makeMessage(t.db, channel.id, author.id)
    let purge: ReturnType<typeof purgeDeletedMessagesWithAttachments> | undefined
    let inserted: { id: string; s3_key: string } | undefined
    await t.db.transaction().execute(async (trx) => {
      // The insert passed its "message is live" check and holds the foreign key's lock…
      inserted = await createAttachment(trx, valid(m.id))
      // …the message is soft-deleted meanwhile (no conflict with that lock)…
      await softDeleteLongAgo(m.id)
      // …and the purge starts: it must wait for this insert, then see it.
      purge = purgeDeletedMessagesWithAttachments(t.db, { older_than: CUTOFF })
      purge.catch(() => {})
      const deadline = Date.now() + 60_000
      for (;;) {
        const { rows } = await sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'
            and query ilike '%from "messages"%for update%'`.execute(t.db)
        if (rows[0]!.n > 0) break
        if (Date.now() > deadline) throw new Error('the purge never waited for the insert')
        await new Promise((r) => setTimeout(r, 10))
      }
    })
    const result = await purge!
    expect(result.purged).toBe(1)
    expect(result.attachments.map((a) => a.s3_key)).toEqual([inserted!.s3_key])
    expect(
      await t.db
        .selectFrom('message_attachments')
        .select('id')
        .where('message_id', '=', m.id)
        .execute(),
    ).toEqual([])
  })

  it('an attachment insert waiting on the message while a purge deletes it fails on the foreign key', async () => {
    const m = await makeMessage(t.db, channel.id, author.id)
    let insert: Promise<unknown> | undefined
    const result = await t.db.transaction().execute(async (trx) => {
      // Hold the live message's row: the insert passes its "not soft-deleted"
      // check on its snapshot, then its foreign-key check waits on this lock…
      await sql`select 1 from messages where id = ${m.id} for update`.execute(trx)
      insert = createAttachment(t.db, valid(m.id)).catch((e: unknown) => e)
      expect(await waitForLockWaiters(t.pool, 1)).toBe(1)
      // …while the message is soft-deleted and purged under that lock.
      await trx
        .updateTable('messages')
        .set({ deleted_at: LONG_AGO })
        .where('id', '=', m.id)
        .execute()
      return purgeDeletedMessagesWithAttachments(trx, { older_than: CUTOFF })
    })
    expect(result).toEqual({ purged: 1, attachments: [] })
    expect(await insert).toBeInstanceOf(ForeignKeyViolationError)
    expect(await listAttachmentsByMessageIds(t.db, [m.id])).toEqual([])
  })

  it.each([new Date('nope'), '2020-01-01', null, undefined, 0])(
    'refuses older_than %j and writes nothing',
    async (older_than) => {
      await expectInvalidAndNothingWritten(t.db, () =>
        purgeDeletedMessagesWithAttachments(t.db, { older_than: older_than as Date }),
      )
    },
  )
})
