/**
 * Live delivery (issue 23 items 5 and 8): subscribeEvents over LISTEN/NOTIFY,
 * Redis hints and a timer; one read per wake-up per process; a slow consumer
 * bounded; away for 10,000 events; a writer killed between commit and hint;
 * Redis stopped and restarted mid-stream.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Redis } from 'ioredis'
import { sql } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'
import {
  createDb,
  createPool,
  createRedis,
  type EventSubscription,
  type GuildstoreEvent,
  InvalidInputError,
  listEvents,
  Permissions,
  publishEventHint,
  purgeEvents,
  ResyncRequiredError,
  removeGuildMember,
  sendMessage,
  setChannelOverwrite,
  subscribeEvents,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeChannel, makeDm, makeGuildWithMember, makeUser } from '../support/factories.ts'
import { freePort, type OwnRedisServer, ownRedisServer, waitFor } from '../support/local-servers.ts'

const t = useTestDatabase({ max: 6 })
const open: EventSubscription[] = []
afterAll(async () => {
  await Promise.all(open.map((s) => s.close()))
})

const { VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY } = Permissions

/** Collects what a subscription yields, in the background. */
function collect(sub: EventSubscription) {
  open.push(sub)
  const got: GuildstoreEvent[] = []
  let failure: unknown
  const done = (async () => {
    try {
      for await (const e of sub) got.push(e)
    } catch (error) {
      failure = error
    }
  })()
  return { got, done, failure: () => failure }
}

const contents = (events: GuildstoreEvent[]) =>
  events.map((e) => (e.data as { message?: { content: string } | null }).message?.content)

/**
 * `count` messages `<prefix> 1` … `<prefix> count` into one channel, in one
 * transaction of 100-row INSERT … SELECT statements: one event each (a
 * statement of more than 100 rows into a channel writes one messages_imported).
 */
async function insertMessages(channel: string, author: string, prefix: string, count: number) {
  await t.db.transaction().execute(async (trx) => {
    for (let at = 0; at < count; at += 100) {
      await sql`insert into messages (channel_id, author_id, content)
        select ${channel}::uuid, ${author}::uuid, ${prefix} || ' ' || (${at}::int + g)
        from generate_series(1, 100) g`.execute(trx)
    }
  })
}

async function world() {
  return makeGuildWithMember(t.db, VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY)
}

describe('subscribeEvents', () => {
  it('delivers every event once, in order, woken by NOTIFY; token() resumes with listEvents', async () => {
    const w = await world()
    const sub = subscribeEvents(t.db, null, { user_id: w.user.id, poll_ms: 60_000, listen: true })
    await sub.ready()
    const c = collect(sub)
    for (let i = 0; i < 20; i++) {
      await t.db.transaction().execute(async (trx) => {
        await sql`select set_config('guildstore.event_notify', 'on', true)`.execute(trx)
        await sendMessage(trx, {
          channel_id: w.channel.id,
          author_id: w.owner.id,
          content: `n${i}`,
        })
      })
    }
    // The timer is a minute: only the NOTIFY hint can have woken it this soon.
    await waitFor(() => c.got.length === 20, 30_000)
    expect(contents(c.got)).toEqual(Array.from({ length: 20 }, (_, i) => `n${i}`))
    const token = sub.token()
    await t.db.transaction().execute(async (trx) => {
      await sql`select set_config('guildstore.event_notify', 'on', true)`.execute(trx)
      await sendMessage(trx, { channel_id: w.channel.id, author_id: w.owner.id, content: 'later' })
    })
    await waitFor(() => c.got.length === 21, 30_000)
    const page = await listEvents(t.db, { user_id: w.user.id, after: token })
    expect(contents(page.events)).toEqual(['later'])
    await sub.close()
    await c.done
  }, 60_000)

  it('without any hint, the head poll delivers within a few poll periods', async () => {
    const w = await world()
    const sub = subscribeEvents(t.db, null, { user_id: w.user.id })
    await sub.ready()
    const c = collect(sub)
    const sent = Date.now()
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.owner.id, content: 'polled' })
    await waitFor(() => c.got.length === 1, 30_000)
    expect(contents(c.got)).toEqual(['polled'])
    expect(Date.now() - sent).toBeLessThan(10_000)
    await sub.close()
  }, 60_000)

  it('a writer in flight holds delivery back; its commit, which moves no head, is delivered by the poll', async () => {
    const w = await world()
    const other = await makeChannel(t.db, w.guild.id)
    const sub = subscribeEvents(t.db, null, { user_id: w.user.id, poll_ms: 50 })
    await sub.ready()
    const c = collect(sub)
    const headNow = async () =>
      (
        await sql<{
          head: string
        }>`select last_value::text as head from guildstore_event_positions`.execute(t.db)
      ).rows[0]?.head
    let release!: () => void
    const held = new Promise<void>((r) => {
      release = r
    })
    let wrote!: () => void
    const written = new Promise<void>((r) => {
      wrote = r
    })
    const a = t.db.transaction().execute(async (trx) => {
      await sendMessage(trx, { channel_id: w.channel.id, author_id: w.owner.id, content: 'A' })
      wrote()
      await held
    })
    let head: string | undefined
    try {
      await written
      await sendMessage(t.db, { channel_id: other.id, author_id: w.owner.id, content: 'B' })
      head = await headNow()
      await new Promise((r) => setTimeout(r, 500)) // about ten looks at the head
      expect(c.got).toEqual([]) // B committed, held back behind A
    } finally {
      release()
      await a
    }
    await waitFor(() => c.got.length === 2, 10_000)
    expect(contents(c.got)).toEqual(['A', 'B'])
    expect(await headNow()).toBe(head) // no position was taken after A's commit
    await sub.close()
  }, 60_000)

  it('the shared read gives each subscriber exactly what listEvents gives that user (access, revocation, kick)', async () => {
    const w = await world()
    const secret = await makeChannel(t.db, w.guild.id)
    const outsider = await makeUser(t.db)
    const users = [w.owner.id, w.user.id, outsider.id]
    const start = (await listEvents(t.db, { user_id: w.user.id })).next
    const send = (channel_id: string, content: string) =>
      sendMessage(t.db, { channel_id, author_id: w.owner.id, content })
    await send(secret.id, 's1')
    await send(w.channel.id, 'p1')
    await setChannelOverwrite(t.db, {
      channel_id: secret.id,
      user_id: w.user.id,
      allow: 0n,
      deny: VIEW_CHANNEL,
    })
    await send(secret.id, 's2')
    await send(w.channel.id, 'p2')
    await removeGuildMember(
      t.db,
      { guild_id: w.guild.id, user_id: w.user.id },
      { actor_id: w.owner.id },
    )
    await send(w.channel.id, 'p3')
    // Subscribed after the writes, so the shared read sees the same state as listEvents.
    const subs = users.map((user_id) => subscribeEvents(t.db, null, { user_id, after: start }))
    const collected = subs.map(collect)
    const expected = await Promise.all(
      users.map(async (user_id) => {
        const events: GuildstoreEvent[] = []
        let token = start
        for (;;) {
          const page = await listEvents(t.db, { user_id, after: token })
          events.push(...page.events)
          if (page.next === token) return events
          token = page.next
        }
      }),
    )
    await waitFor(
      () => collected.every((c, i) => c.got.length >= (expected[i] as GuildstoreEvent[]).length),
      30_000,
    )
    await new Promise((r) => setTimeout(r, 300)) // nothing more arrives
    collected.forEach((c, i) => {
      expect(c.got.map((e) => e.position)).toEqual(expected[i]?.map((e) => e.position))
    })
    // Access at read time: the kicked member reads only their removal.
    expect(collected[1]?.got.map((e) => e.type)).toEqual(['member_removed'])
    expect(collected[2]?.got).toEqual([])
    expect(contents(collected[0]?.got ?? []).filter(Boolean)).toEqual([
      's1',
      'p1',
      's2',
      'p2',
      'p3',
    ])
    await Promise.all(subs.map((s) => s.close()))
  }, 60_000)

  it('one read per wake-up per process, whatever the number of subscribers', async () => {
    const w = await world()
    let reads = 0
    const pool = createPool({ connectionString: t.url, max: 3 })
    const db = createDb(pool, {
      log: (entry) => {
        if (entry.sql.includes('x.user_id = u.id')) reads++
      },
    })
    try {
      const subs = Array.from({ length: 50 }, () =>
        subscribeEvents(db, null, { user_id: w.user.id, poll_ms: 100 }),
      )
      await Promise.all(subs.map((s) => s.ready()))
      const collected = subs.map(collect)
      reads = 0
      await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.owner.id, content: 'fan' })
      await waitFor(() => collected.every((c) => c.got.length === 1), 30_000)
      expect(reads).toBeGreaterThanOrEqual(1)
      expect(reads).toBeLessThanOrEqual(3) // 50 subscribers, one statement per wake-up
      await Promise.all(subs.map((s) => s.close()))
    } finally {
      await db.destroy()
    }
  }, 60_000)

  it('a subscriber away for 10,000 events resumes: each exactly once, in order', async () => {
    const w = await world()
    const token = (await listEvents(t.db, { user_id: w.user.id })).next
    await insertMessages(w.channel.id, w.owner.id, 'away', 10_000)
    const sub = subscribeEvents(t.db, null, { user_id: w.user.id, after: token, buffer: 2000 })
    const c = collect(sub)
    await waitFor(() => c.got.length >= 10_000, 120_000, 50)
    expect(c.got).toHaveLength(10_000)
    expect(contents(c.got)).toEqual(Array.from({ length: 10_000 }, (_, i) => `away ${i + 1}`))
    await sub.close()
  }, 180_000)

  it('a slow consumer is bounded: reading pauses at its buffer, then resumes by position', async () => {
    const w = await world()
    const token = (await listEvents(t.db, { user_id: w.user.id })).next
    const sub = subscribeEvents(t.db, null, {
      user_id: w.user.id,
      after: token,
      buffer: 50,
      poll_ms: 50,
    })
    open.push(sub)
    await insertMessages(w.channel.id, w.owner.id, 'slow', 1000)
    const held = () => (sub as unknown as { held: number }).held
    await waitFor(() => held() >= 50, 30_000)
    // Several more timer ticks: it does not grow past the cap plus one page.
    await new Promise((r) => setTimeout(r, 500))
    expect(held()).toBeLessThanOrEqual(50 + 200)
    const got: GuildstoreEvent[] = []
    for await (const e of sub) {
      got.push(e)
      expect(held()).toBeLessThanOrEqual(50 + 200)
      if (got.length === 1000) break
    }
    expect(contents(got)).toEqual(Array.from({ length: 1000 }, (_, i) => `slow ${i + 1}`))
    await sub.close()
  }, 120_000)

  it('subscribers at different positions and with different access share one page: each gets exactly its own events, the objects shared and frozen', async () => {
    const w = await world()
    const secret = await makeChannel(t.db, w.guild.id)
    await setChannelOverwrite(t.db, {
      channel_id: secret.id,
      user_id: w.user.id,
      allow: 0n,
      deny: VIEW_CHANNEL,
    })
    const dmPartner = await makeUser(t.db)
    const dm = await makeDm(t.db, w.user.id, dmPartner.id)
    const send = (channel_id: string, author_id: string, content: string) =>
      sendMessage(t.db, { channel_id, author_id, content })
    const start = (await listEvents(t.db, { user_id: w.user.id })).next
    await send(w.channel.id, w.owner.id, 'a1')
    await send(secret.id, w.owner.id, 's1')
    const middle = (await listEvents(t.db, { user_id: w.user.id })).next
    await send(dm.id, dmPartner.id, 'd1')
    await send(w.channel.id, w.owner.id, 'a2')
    await send(secret.id, w.owner.id, 's2')
    // Owner from the start, owner from the middle (a binary search into the
    // page), the member twice (per event and in batches), the DM partner.
    const specs = [
      { user_id: w.owner.id, after: start },
      { user_id: w.owner.id, after: middle },
      { user_id: w.user.id, after: start },
      { user_id: w.user.id, after: start },
      { user_id: dmPartner.id, after: start },
    ]
    const subs = specs.map((s) => subscribeEvents(t.db, null, { ...s, poll_ms: 50 }))
    open.push(...subs)
    const expected = await Promise.all(
      specs.map(async ({ user_id, after }) => {
        const events: GuildstoreEvent[] = []
        let token = after
        for (;;) {
          const page = await listEvents(t.db, { user_id, after: token })
          events.push(...page.events)
          if (page.next === token) return events
          token = page.next
        }
      }),
    )
    const got: GuildstoreEvent[][] = specs.map(() => [])
    const batches: (readonly GuildstoreEvent[])[] = []
    const loops = subs.map(async (sub, i) => {
      if (i === 3) {
        for await (const batch of sub.batches()) {
          expect(batch.length).toBeGreaterThan(0)
          batches.push(batch)
          got[i]?.push(...batch)
        }
      } else for await (const e of sub) got[i]?.push(e)
    })
    await waitFor(
      () => got.every((g, i) => g.length >= (expected[i] as GuildstoreEvent[]).length),
      30_000,
    )
    await new Promise((r) => setTimeout(r, 300)) // nothing more arrives
    got.forEach((g, i) => {
      expect(g).toEqual(expected[i])
    })
    expect(contents(got[0] ?? [])).toEqual(['a1', 's1', 'a2', 's2'])
    expect(contents(got[1] ?? [])).toEqual(['a2', 's2'])
    expect(contents(got[2] ?? []).filter(Boolean)).toEqual(['a1', 'd1', 'a2'])
    expect(contents(got[4] ?? []).filter(Boolean)).toEqual(['d1'])
    // One object per event, whoever receives it; frozen, with its data.
    const a2 = (g: GuildstoreEvent[] | undefined) =>
      g?.find((e) => contents([e])[0] === 'a2') as GuildstoreEvent
    expect(a2(got[0])).toBe(a2(got[1]))
    expect(a2(got[2])).toBe(a2(got[3]))
    expect(a2(got[0])).toBe(a2(got[2]))
    expect(Object.isFrozen(a2(got[0]))).toBe(true)
    expect(Object.isFrozen(a2(got[0]).data)).toBe(true)
    expect(batches.every((b) => Object.isFrozen(b))).toBe(true)
    expect(subs[3]?.token()).toBe(subs[2]?.token())
    await Promise.all(subs.map((s) => s.close()))
    await Promise.all(loops)
  }, 60_000)

  it('batches(): everything held in one step, each event once, in order; token() after the last; per-event iteration on the same subscription continues after it', async () => {
    const w = await world()
    const token = (await listEvents(t.db, { user_id: w.user.id })).next
    await insertMessages(w.channel.id, w.owner.id, 'b', 500)
    const sub = subscribeEvents(t.db, null, { user_id: w.user.id, after: token, buffer: 100 })
    open.push(sub)
    const got: GuildstoreEvent[] = []
    let steps = 0
    for await (const batch of sub.batches()) {
      steps++
      // The buffer bounds a batch: at most the cap plus one page of 200.
      expect(batch.length).toBeLessThanOrEqual(100 + 200)
      expect(() => (batch as GuildstoreEvent[]).push(batch[0] as GuildstoreEvent)).toThrow()
      got.push(...batch)
      // token() is the token after the batch's last event.
      const page = await listEvents(t.db, { user_id: w.user.id, after: sub.token(), limit: 1 })
      expect(contents(page.events)).toEqual(got.length < 500 ? [`b ${got.length + 1}`] : [])
      if (got.length >= 300) break
    }
    expect(steps).toBeLessThan(300)
    // The rest, per event, from the same subscription.
    for await (const e of sub) {
      got.push(e)
      if (got.length === 500) break
    }
    expect(contents(got)).toEqual(Array.from({ length: 500 }, (_, i) => `b ${i + 1}`))
    const rest = await listEvents(t.db, { user_id: w.user.id, after: sub.token() })
    expect(rest.events).toEqual([])
    await sub.close()
    // Closed: both iterators are done at once.
    expect(await sub.batches()[Symbol.asyncIterator]().next()).toEqual({
      done: true,
      value: undefined,
    })
    expect(await sub[Symbol.asyncIterator]().next()).toEqual({ done: true, value: undefined })
  }, 120_000)

  it('a slow consumer of batches() is bounded too', async () => {
    const w = await world()
    const token = (await listEvents(t.db, { user_id: w.user.id })).next
    const sub = subscribeEvents(t.db, null, {
      user_id: w.user.id,
      after: token,
      buffer: 50,
      poll_ms: 50,
    })
    open.push(sub)
    await insertMessages(w.channel.id, w.owner.id, 'sb', 1000)
    const held = () => (sub as unknown as { held: number }).held
    await waitFor(() => held() >= 50, 30_000)
    await new Promise((r) => setTimeout(r, 500))
    expect(held()).toBeLessThanOrEqual(50 + 200)
    const got: GuildstoreEvent[] = []
    for await (const batch of sub.batches()) {
      expect(batch.length).toBeLessThanOrEqual(50 + 200)
      got.push(...batch)
      await new Promise((r) => setTimeout(r, 20)) // slow
      expect(held()).toBeLessThanOrEqual(50 + 200)
      if (got.length === 1000) break
    }
    expect(contents(got)).toEqual(Array.from({ length: 1000 }, (_, i) => `sb ${i + 1}`))
    await sub.close()
  }, 120_000)

  it('a token older than retention: the iterator throws ResyncRequiredError', async () => {
    const w = await world()
    const token = (await listEvents(t.db, { user_id: w.user.id })).next
    await sendMessage(t.db, { channel_id: w.channel.id, author_id: w.owner.id, content: 'gone' })
    await purgeEvents(t.db, { older_than: new Date(Date.now() + 60_000) })
    const c = collect(subscribeEvents(t.db, null, { user_id: w.user.id, after: token }))
    await c.done
    expect(c.failure()).toBeInstanceOf(ResyncRequiredError)
    expect(c.got).toEqual([])
  }, 60_000)

  it('refuses bad input typed', () => {
    const user_id = '01a250e3-4238-7fd1-97bc-cbb354bd6f07'
    for (const input of [
      { user_id: 'x' },
      { user_id, after: 'nope' },
      { user_id, buffer: 0 },
      { user_id, poll_ms: 1 },
      { user_id, listen: 'yes' },
      { user_id, namespace: 'a b' },
    ]) {
      expect(() => subscribeEvents(t.db, null, input as never)).toThrow(InvalidInputError)
    }
  })
})

describe('failures on the hint path', () => {
  let server: OwnRedisServer | undefined
  let redis: Redis | undefined
  afterAll(async () => {
    redis?.disconnect()
    await server?.stop('SIGKILL')
  })

  it('a writer SIGKILLed between its commit and its hint: the timer delivers the event', async () => {
    const w = await world()
    const sub = subscribeEvents(t.db, null, { user_id: w.user.id, listen: false, poll_ms: 300 })
    await sub.ready()
    const c = collect(sub)
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL('./support/commit-then-hang.ts', import.meta.url))],
      {
        env: { ...process.env, URL: t.url, CHANNEL: w.channel.id, AUTHOR: w.owner.id },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    let out = ''
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
    })
    await waitFor(() => out.includes('committed'), 60_000)
    // Killed after COMMIT returned, before it could publish its hint.
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
    await waitFor(() => c.got.length === 1, 30_000)
    expect(contents(c.got)).toEqual(['from the child'])
    await sub.close()
  }, 90_000)

  it('Redis stopped and restarted mid-stream: every event once, in order', async () => {
    const w = await world()
    server = ownRedisServer(await freePort())
    await server.start()
    redis = createRedis({ url: server.url })
    redis.on('error', () => {})
    const sub = subscribeEvents(t.db, redis, {
      user_id: w.user.id,
      listen: false,
      poll_ms: 200,
    })
    await sub.ready()
    const c = collect(sub)
    let n = 0
    const burst = async (count: number) => {
      for (let i = 0; i < count; i++) {
        await sendMessage(t.db, {
          channel_id: w.channel.id,
          author_id: w.owner.id,
          content: `r${n++}`,
        })
        // A hint only: not awaited, it may fail (after its 1 s timeout) while Redis is down.
        void publishEventHint(redis as Redis).catch(() => {})
      }
    }
    await burst(50)
    await waitFor(() => c.got.length === 50, 30_000)
    await server.stop('SIGKILL')
    await burst(50)
    await waitFor(() => c.got.length === 100, 30_000)
    await server.start()
    await burst(50)
    await waitFor(() => c.got.length === 150, 30_000)
    expect(contents(c.got)).toEqual(Array.from({ length: 150 }, (_, i) => `r${i}`))
    await sub.close()
  }, 120_000)
})
