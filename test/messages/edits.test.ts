import { beforeAll, describe, expect, it } from 'vitest'
import {
  deleteMessage,
  InvalidInputError,
  listMessageEdits,
  purgeDeletedMessages,
  updateMessage,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuild, makeMessage, makeUser, unknownId } from '../support/factories.ts'
import { fulfilled, raceAtBarrier } from '../support/race.ts'

const t = useTestDatabase({ max: 24 })

let author: { id: string }
let channel: { id: string }

beforeAll(async () => {
  author = await makeUser(t.db)
  const guild = await makeGuild(t.db, author.id)
  channel = await makeChannel(t.db, guild.id)
})

describe('edit history', () => {
  it('keeps every previous version, oldest first, with when it was replaced', async () => {
    const m = await makeMessage(t.db, channel.id, author.id, { content: 'v1' })
    expect(await listMessageEdits(t.db, m.id)).toEqual([])
    const e2 = await updateMessage(t.db, m.id, { content: 'v2' })
    const e3 = await updateMessage(t.db, m.id, { content: 'v3' })
    // The same content again is not a new version.
    await updateMessage(t.db, m.id, { content: 'v3' })
    const edits = await listMessageEdits(t.db, m.id)
    expect(edits.map((e) => [e.version, e.content])).toEqual([
      [1, 'v1'],
      [2, 'v2'],
    ])
    expect(edits[0]!.replaced_at).toEqual(e2!.edited_at)
    expect(edits[1]!.replaced_at).toEqual(e3!.edited_at)
    expect(edits.every((e) => e.message_id === m.id)).toBe(true)
  })

  it('records each of 50 edits (23 at once held at a barrier on the row) exactly once, each with its own predecessor', async () => {
    const m = await makeMessage(t.db, channel.id, author.id, { content: 'start' })
    const contents = Array.from({ length: 50 }, (_, i) => `edit ${i}`)
    // The barrier holds the message's row: 23 edits (the pool of 24 less the
    // barrier) queue on it, the rest queue for a connection and follow.
    const race = await raceAtBarrier(
      t.pool,
      { text: 'select 1 from messages where id = $1 for update', values: [m.id] },
      contents.map((content) => () => updateMessage(t.db, m.id, { content })),
      23,
    )
    expect(race.waiters).toBe(23)
    fulfilled(race.results)
    const edits = await listMessageEdits(t.db, m.id)
    expect(edits.map((e) => e.version)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
    // The chain is consistent: the versions are 'start' then 49 of the edits,
    // and the current content is the one edit not in the history.
    expect(edits[0]!.content).toBe('start')
    const current = await t.db
      .selectFrom('messages')
      .select('content')
      .where('id', '=', m.id)
      .executeTakeFirstOrThrow()
    const seen = new Set([...edits.slice(1).map((e) => e.content), current.content])
    expect(seen).toEqual(new Set(contents))
  })

  it('a soft-deleted message shows no history; a purge removes it', async () => {
    const m = await makeMessage(t.db, channel.id, author.id, { content: 'a' })
    await updateMessage(t.db, m.id, { content: 'b' })
    await deleteMessage(t.db, m.id)
    expect(await listMessageEdits(t.db, m.id)).toEqual([])
    await t.db
      .updateTable('messages')
      .set({ deleted_at: new Date(Date.now() - 60_000) })
      .where('id', '=', m.id)
      .execute()
    await purgeDeletedMessages(t.db, { older_than: new Date() })
    const left = await t.db
      .selectFrom('message_edits')
      .select('version')
      .where('message_id', '=', m.id)
      .execute()
    expect(left).toEqual([])
  })

  it('a refused edit records nothing; bad ids are InvalidInputError', async () => {
    const m = await makeMessage(t.db, channel.id, author.id, { content: 'x' })
    const before = await countRows(t.db)
    await expect(updateMessage(t.db, m.id, { content: '' })).rejects.toBeInstanceOf(
      InvalidInputError,
    )
    expect(await updateMessage(t.db, unknownId(), { content: 'y' })).toBeUndefined()
    expect(await countRows(t.db)).toEqual(before)
    await expect(listMessageEdits(t.db, 'nope')).rejects.toBeInstanceOf(InvalidInputError)
  })
})
