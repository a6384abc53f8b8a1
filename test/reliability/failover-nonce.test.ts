/**
 * Exactly-once creates with a client nonce (issue 26, migration 0010): a
 * retry of `sendMessage` / `createMessage` with the same (channel, author,
 * nonce) within 24 hours returns the ORIGINAL message and writes nothing — on
 * every statement path (full rule, stored permissions, with references), under
 * concurrent retries held back by a lock until all of them wait, and inside a
 * caller's REPEATABLE READ transaction. Older than 24 hours, a nonce is
 * forgotten.
 */
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { createMessage, InvalidInputError, Permissions, sendMessage } from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeGuildWithMember, makeMessage, makeUser } from '../support/factories.ts'
import { waitForLockWaiters } from '../support/race.ts'

const t = useTestDatabase({ max: 16 })
const { VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY } = Permissions
const ALLOWED = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY

const withNonce = async (nonce: string) =>
  Number(
    (
      await sql<{ n: string }>`select count(*) as n from messages where nonce = ${nonce}`.execute(
        t.db,
      )
    ).rows[0]?.n,
  )
const nonceOf = () => `n${Math.random().toString(36).slice(2, 14)}`

/**
 * Runs `n` calls of one nonce while a transaction holds the channel row, waits
 * until all `n` wait on a lock (the race really runs), lets them go, and
 * expects one message that every call returned.
 */
async function expectOneMessage(
  channel_id: string,
  n: number,
  call: () => Promise<{ id: string }>,
) {
  const holder = await t.pool.connect()
  let results: PromiseSettledResult<{ id: string }>[]
  try {
    await holder.query('begin')
    await holder.query('select 1 from channels where id = $1 for update', [channel_id])
    const calls = Promise.allSettled(Array.from({ length: n }, call))
    expect(await waitForLockWaiters(holder, n)).toBeGreaterThanOrEqual(n)
    await holder.query('commit')
    results = await calls
  } finally {
    holder.release()
  }
  const ids = results.map((r) => (r.status === 'fulfilled' ? r.value.id : String(r.reason)))
  expect(results.every((r) => r.status === 'fulfilled')).toBe(true)
  expect(new Set(ids).size).toBe(1)
  const rows = await t.db
    .selectFrom('messages')
    .select('id')
    .where('id', '=', ids[0] as string)
    .execute()
  expect(rows).toHaveLength(1)
}

describe('sendMessage with a nonce', () => {
  it('a retry returns the original message and writes nothing: full path, stored-permission path, with references', async () => {
    const w = await makeGuildWithMember(t.db, ALLOWED)
    const input = { channel_id: w.channel.id, author_id: w.user.id, content: 'once', nonce: 'a1' }
    const first = await sendMessage(t.db, input) // no stored permissions yet: the full rule
    const before = await countRows(t.db)
    const again = await sendMessage(t.db, input) // stored permissions decide now
    expect(again).toEqual(first)
    // even with other content: the nonce decides, the original comes back
    expect(await sendMessage(t.db, { ...input, content: 'changed' })).toEqual(first)
    expect(await countRows(t.db)).toEqual(before)
    // with a reply and mentions (the other statement shape)
    const refs = {
      ...input,
      nonce: 'a2',
      reply_to: first.id,
      mentions: { user_ids: [w.owner.id] },
    }
    const withRefs = await sendMessage(t.db, refs)
    const mid = await countRows(t.db)
    expect(await sendMessage(t.db, refs)).toEqual(withRefs)
    expect(await countRows(t.db)).toEqual(mid)
    expect(await withNonce('a2')).toBe(1)
    // the same nonce of another author, or in another channel, is another message
    const other = await sendMessage(t.db, { ...input, author_id: w.owner.id })
    expect(other.id).not.toBe(first.id)
    // no nonce: every call is a new message, as before
    const plainA = await sendMessage(t.db, { ...input, nonce: undefined })
    const plainB = await sendMessage(t.db, { ...input, nonce: null })
    expect(plainA.id).not.toBe(plainB.id)
  })

  it('a retry after the permission was revoked still gets the original (nothing new is written)', async () => {
    const w = await makeGuildWithMember(t.db, ALLOWED)
    const input = { channel_id: w.channel.id, author_id: w.user.id, content: 'x', nonce: 'rv' }
    const first = await sendMessage(t.db, input)
    await t.db
      .updateTable('roles')
      .set({ permissions: VIEW_CHANNEL })
      .where('id', '=', w.guild.defaultRole.id)
      .execute()
    expect(await sendMessage(t.db, input)).toEqual(first)
    expect(await withNonce('rv')).toBe(1)
  })

  it('concurrent retries of one nonce (all held on the channel lock until every one waits): one message, all get it', async () => {
    const w = await makeGuildWithMember(t.db, ALLOWED)
    // fill the stored permissions first, so the sends race on the cached path too
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.user.id, content: 'warm' })
    const nonce = nonceOf()
    const input = { channel_id: w.channel.id, author_id: w.user.id, content: 'race', nonce }
    await expectOneMessage(w.channel.id, 8, () => sendMessage(t.db, input))
    expect(await withNonce(nonce)).toBe(1)
  })

  it('refuses a malformed nonce before writing anything', async () => {
    const w = await makeGuildWithMember(t.db, ALLOWED)
    const before = await countRows(t.db)
    for (const nonce of ['', 'x'.repeat(26), 42, {}, 'a\u0000b', '\ud800']) {
      const input = { channel_id: w.channel.id, author_id: w.user.id, content: 'x', nonce }
      await expect(sendMessage(t.db, input as never)).rejects.toBeInstanceOf(InvalidInputError)
      await expect(createMessage(t.db, input as never)).rejects.toBeInstanceOf(InvalidInputError)
    }
    expect(await countRows(t.db)).toEqual(before)
    // 25 characters (code points) is the longest
    const longest = '😀'.repeat(25)
    const ok = await sendMessage(t.db, {
      channel_id: w.channel.id,
      author_id: w.user.id,
      content: 'x',
      nonce: longest,
    })
    expect(ok.id).toBeDefined()
  })
})

describe('createMessage with a nonce', () => {
  it('a retry returns the original, its mentions are not written twice', async () => {
    const w = await makeGuildWithMember(t.db, ALLOWED)
    const input = {
      channel_id: w.channel.id,
      author_id: w.user.id,
      content: 'hi',
      nonce: 'c1',
      mentions: { user_ids: [w.owner.id] },
    }
    const first = await createMessage(t.db, input)
    const before = await countRows(t.db)
    expect(await createMessage(t.db, input)).toEqual(first)
    expect(await countRows(t.db)).toEqual(before)
  })

  it('concurrent creates of one nonce, held on the channel lock: one message', async () => {
    const w = await makeGuildWithMember(t.db, ALLOWED)
    const nonce = nonceOf()
    const input = { channel_id: w.channel.id, author_id: w.user.id, content: 'c', nonce }
    await expectOneMessage(w.channel.id, 6, () => createMessage(t.db, input))
    expect(await withNonce(nonce)).toBe(1)
  })

  it('inside a caller’s REPEATABLE READ transaction a retry returns the original too', async () => {
    const w = await makeGuildWithMember(t.db, ALLOWED)
    const input = { channel_id: w.channel.id, author_id: w.user.id, content: 'rr', nonce: 'rr1' }
    const first = await createMessage(t.db, input)
    const inside = await t.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (trx) => ({
        created: await createMessage(trx, input),
        sent: await sendMessage(trx, input),
      }))
    expect(inside.created).toEqual(first)
    expect(inside.sent).toEqual(first)
    expect(await withNonce('rr1')).toBe(1)
  })

  it('a nonce is remembered 24 hours: an older match is forgotten and the create is new', async () => {
    const w = await makeGuildWithMember(t.db, ALLOWED)
    const author = await makeUser(t.db)
    const old = await makeMessage(t.db, w.channel.id, author.id, {
      nonce: 'old',
      created_at: new Date(Date.now() - 25 * 3600_000),
    })
    const fresh = await createMessage(t.db, {
      channel_id: w.channel.id,
      author_id: author.id,
      content: 'new',
      nonce: 'old',
    })
    expect(fresh.id).not.toBe(old.id)
    const rows = await t.db
      .selectFrom('messages')
      .select(['id', 'nonce'])
      .where('id', 'in', [old.id, fresh.id])
      .execute()
    expect(Object.fromEntries(rows.map((r) => [r.id, r.nonce]))).toEqual({
      [old.id]: null,
      [fresh.id]: 'old',
    })
    // and a retry of the new one returns it
    expect(
      (
        await createMessage(t.db, {
          channel_id: w.channel.id,
          author_id: author.id,
          content: 'again',
          nonce: 'old',
        })
      ).id,
    ).toBe(fresh.id)
  })
})
