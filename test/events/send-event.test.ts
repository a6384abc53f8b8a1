/**
 * sendMessage writes its message's change-feed event in its own statement
 * (issue 23, migration 0027): exactly one event per send, with the payload the
 * feed's trigger writes for a plain insert; the trigger still captures every
 * other insert into messages, also in the same transaction as a send (before,
 * after, and nested in it through a host's trigger); a rollback leaves none.
 */
import { type Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { sendMessageByTrigger } from '../../bench/send-trigger-route.ts'
import type { DB } from '../../codegen/db.ts'
import {
  findOrCreateDmChannel,
  newId,
  PermissionDeniedError,
  Permissions,
  sendMessage,
  setChannelOverwrite,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeChannel, makeGuildWithMember, makeUser } from '../support/factories.ts'

const t = useTestDatabase()
const { VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY } = Permissions
const BASE = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY

interface EventRow {
  type: string
  guild_id: string | null
  channel_id: string | null
  user_id: string | null
  data: Record<string, unknown>
}

/** The events naming `message_id` (any kind), in position order. */
async function eventsOf(db: Kysely<DB>, message_id: string): Promise<EventRow[]> {
  const { rows } = await sql<EventRow>`select type, guild_id, channel_id, user_id, data
    from guildstore_events where data->>'message_id' = ${message_id} order by position`.execute(db)
  return rows
}

/** A host's plain INSERT of one message (its seq from the position trigger). */
async function plainInsert(
  db: Kysely<DB>,
  channel_id: string,
  author_id: string,
  content = 'plain',
) {
  const id = newId()
  await sql`insert into messages (id, channel_id, author_id, content)
    values (${id}::uuid, ${channel_id}::uuid, ${author_id}::uuid, ${content})`.execute(db)
  return id
}

/** The event the trigger's statement writes for a message row, built from the row. */
const expected = (
  m: { id: string; channel_id: string; author_id: string; seq: bigint },
  guild_id: string | null,
) => ({
  type: 'message_created',
  guild_id,
  channel_id: m.channel_id,
  user_id: null,
  data: { message_id: m.id, seq: String(m.seq), author_id: m.author_id },
})

/** The value of the setting the send arms, as this transaction sees it now. */
const marker = async (db: Kysely<DB>) =>
  (
    await sql<{
      v: string | null
    }>`select current_setting('guildstore.message_event', true) as v`.execute(db)
  ).rows[0]?.v

describe('a send writes its event in its statement', () => {
  it('one event per send on every statement (full, cached, nonce, references), as the trigger writes it', async () => {
    const w = await makeGuildWithMember(t.db, BASE)
    const target = await plainInsert(t.db, w.channel.id, w.owner.id)
    const sends = [
      { content: 'full path (first send)' },
      { content: 'cached path' },
      { content: 'cached, nonce', nonce: `n-${newId().slice(-8)}` },
      { content: 'cached, refs', reply_to: target, mentions: { user_ids: [w.owner.id] } },
      { content: 'cached, refs, nonce', reply_to: target, nonce: `m-${newId().slice(-8)}` },
    ]
    for (const input of sends) {
      const m = await sendMessage(t.db, {
        channel_id: w.channel.id,
        author_id: w.user.id,
        ...input,
      })
      expect(await eventsOf(t.db, m.id)).toEqual([expected(m, w.guild.id)])
    }
    // The same send through the trigger (the statements before 0027): the same row, field for field.
    const fromStatement = await sendMessage(t.db, {
      channel_id: w.channel.id,
      author_id: w.user.id,
      content: 'route: statement',
    })
    const fromTrigger = await sendMessageByTrigger(t.db, {
      channel_id: w.channel.id,
      author_id: w.user.id,
      content: 'route: trigger',
    })
    const [a] = await eventsOf(t.db, fromStatement.id)
    const [b] = await eventsOf(t.db, fromTrigger.id)
    const neutral = (e: EventRow | undefined, m: { id: string; seq: bigint }) => ({
      ...e,
      data: {
        ...e?.data,
        message_id: e?.data.message_id === m.id,
        seq: e?.data.seq === String(m.seq),
      },
    })
    expect(neutral(a, fromStatement)).toEqual(neutral(b, fromTrigger))
    expect(Object.keys(a?.data ?? {})).toEqual(Object.keys(b?.data ?? {}))
    expect((await eventsOf(t.db, fromTrigger.id)).length).toBe(1)
  })

  it('a DM send: one event, no guild', async () => {
    const a = await makeUser(t.db)
    const b = await makeUser(t.db)
    const { channel: dm } = await findOrCreateDmChannel(t.db, {
      user_id: a.id,
      other_user_id: b.id,
    })
    for (const content of ['first', 'second']) {
      const m = await sendMessage(t.db, { channel_id: dm.id, author_id: a.id, content })
      expect(await eventsOf(t.db, m.id)).toEqual([expected(m, null)])
    }
  })

  it("a host's plain INSERT before and after a send in one transaction gets its event; the send one", async () => {
    const w = await makeGuildWithMember(t.db, BASE)
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.user.id, content: 'warm' })
    for (const level of ['read committed', 'repeatable read', 'serializable'] as const) {
      const ids = await t.db
        .transaction()
        .setIsolationLevel(level)
        .execute(async (trx) => {
          const before = await plainInsert(trx, w.channel.id, w.owner.id, 'before')
          const sent = await sendMessage(trx, {
            channel_id: w.channel.id,
            author_id: w.user.id,
            content: level,
          })
          expect(await marker(trx)).toBe('')
          const after = await plainInsert(trx, w.channel.id, w.owner.id, 'after')
          const again = await sendMessage(trx, {
            channel_id: w.channel.id,
            author_id: w.user.id,
            content: 'again',
          })
          const last = await plainInsert(trx, w.channel.id, w.owner.id, 'last')
          return { before, sent: sent.id, after, again: again.id, last }
        })
      for (const id of Object.values(ids)) {
        expect(
          (await eventsOf(t.db, id)).map((e) => e.type),
          `${level}: ${id}`,
        ).toEqual(['message_created'])
      }
    }
  })

  it('a refused send and a nonce replay write nothing and leave the next plain INSERT its event', async () => {
    const w = await makeGuildWithMember(t.db, BASE)
    const hidden = await makeChannel(t.db, w.guild.id)
    await setChannelOverwrite(t.db, {
      channel_id: hidden.id,
      role_id: w.guild.defaultRole.id,
      allow: 0n,
      deny: VIEW_CHANNEL,
    })
    const nonce = `r-${newId().slice(-8)}`
    const first = await sendMessage(t.db, {
      channel_id: w.channel.id,
      author_id: w.user.id,
      content: 'n',
      nonce,
    })
    const ids = await t.db.transaction().execute(async (trx) => {
      await expect(
        sendMessage(trx, { channel_id: hidden.id, author_id: w.user.id, content: 'refused' }),
      ).rejects.toBeInstanceOf(PermissionDeniedError)
      const afterRefusal = await plainInsert(trx, w.channel.id, w.owner.id)
      const replay = await sendMessage(trx, {
        channel_id: w.channel.id,
        author_id: w.user.id,
        content: 'n',
        nonce,
      })
      expect(replay.id).toBe(first.id)
      const afterReplay = await plainInsert(trx, w.channel.id, w.owner.id)
      return { afterRefusal, afterReplay }
    })
    expect((await eventsOf(t.db, first.id)).length).toBe(1)
    expect((await eventsOf(t.db, ids.afterRefusal)).length).toBe(1)
    expect((await eventsOf(t.db, ids.afterReplay)).length).toBe(1)
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from guildstore_events
      where channel_id = ${hidden.id}::uuid and type = 'message_created'`.execute(t.db)
    expect(rows[0]?.n).toBe(0)
  })

  it('a rollback leaves no event of the send nor of the plain INSERT beside it', async () => {
    const w = await makeGuildWithMember(t.db, BASE)
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.user.id, content: 'warm' })
    const seen: string[] = []
    await expect(
      t.db.transaction().execute(async (trx) => {
        const m = await sendMessage(trx, {
          channel_id: w.channel.id,
          author_id: w.user.id,
          content: 'gone',
        })
        seen.push(m.id, await plainInsert(trx, w.channel.id, w.owner.id))
        expect((await eventsOf(trx, m.id)).length).toBe(1)
        throw new Error('roll back')
      }),
    ).rejects.toThrow('roll back')
    expect(seen).toHaveLength(2)
    for (const id of seen) expect(await eventsOf(t.db, id)).toEqual([])
  })

  it("an insert nested in the send by a host's trigger is captured by the trigger", async () => {
    const w = await makeGuildWithMember(t.db, BASE)
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.user.id, content: 'warm' })
    // A host's BEFORE trigger that echoes a message while the send's insert runs (armed).
    await sql`create function host_echo() returns trigger language plpgsql as $$
      begin
        if NEW.content = 'echo me' then
          insert into messages (id, channel_id, author_id, content)
          values (gen_random_uuid(), NEW.channel_id, NEW.author_id, 'echoed');
        end if;
        return NEW;
      end $$`.execute(t.db)
    await sql`create trigger host_echo before insert on messages for each row execute function host_echo()`.execute(
      t.db,
    )
    try {
      const m = await sendMessage(t.db, {
        channel_id: w.channel.id,
        author_id: w.user.id,
        content: 'echo me',
      })
      expect(await eventsOf(t.db, m.id)).toEqual([expected(m, w.guild.id)])
      const { rows } = await sql<{ id: string }>`select id from messages
        where channel_id = ${w.channel.id}::uuid and content = 'echoed'`.execute(t.db)
      expect(rows).toHaveLength(1)
      expect((await eventsOf(t.db, rows[0]?.id as string)).map((e) => e.type)).toEqual([
        'message_created',
      ])
    } finally {
      await sql`drop trigger host_echo on messages`.execute(t.db)
      await sql`drop function host_echo()`.execute(t.db)
    }
  })

  it('a session-level SET of the setting does not make the trigger skip', async () => {
    const w = await makeGuildWithMember(t.db, BASE)
    const id = await t.db.connection().execute(async (c) => {
      await sql`set guildstore.message_event = 'armed'`.execute(c)
      try {
        return await plainInsert(c, w.channel.id, w.owner.id)
      } finally {
        await sql`reset guildstore.message_event`.execute(c)
      }
    })
    expect((await eventsOf(t.db, id)).length).toBe(1)
  })
})
