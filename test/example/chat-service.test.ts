import { randomBytes, randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ChatService, createChatService } from '../../examples/chat-service/server.ts'
import {
  createMessage,
  createRateLimiter,
  createRedis,
  findUserCredentials,
  Permissions,
  setChannelOverwrite,
  UNREAD_COUNT_CAP,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { testRedisUrl } from '../support/env.ts'

const t = useTestDatabase()
const namespace = `gs_test_chat_${randomBytes(6).toString('hex')}`
const LOGIN_LIMIT = { limit: 3, windowMs: 60_000 }
const PASSWORD = 'correct horse battery staple'

let redis: Redis
let subscriber: Redis
let service: ChatService

/** Calls the service; returns the status, headers and the parsed JSON body. */
async function call(
  method: string,
  path: string,
  options: { token?: string; body?: unknown } = {},
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field
): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${service.url}${path}`, {
    method,
    headers: {
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined }
}

/** An open event stream: `next()` resolves with the next SSE event that matches. */
function openEvents(channelId: string, token: string) {
  return openStream(`/channels/${channelId}/events`, token)
}

/** The change feed (GET /events), resumed from `lastEventId` when given. */
function openFeed(token: string, lastEventId?: string) {
  return openStream('/events', token, lastEventId ? { 'last-event-id': lastEventId } : {})
}

async function openStream(path: string, token: string, headers: Record<string, string> = {}) {
  const controller = new AbortController()
  const res = await fetch(`${service.url}${path}`, {
    headers: { authorization: `Bearer ${token}`, ...headers },
    signal: controller.signal,
  })
  let lastId: string | undefined
  const reader = res.body?.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  const frames: string[] = []
  async function nextFrame(deadline: number): Promise<string> {
    for (;;) {
      const frame = frames.shift()
      if (frame !== undefined) return frame
      if (!reader) throw new Error('no body')
      const chunk = await Promise.race([
        reader.read(),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('no event in time')), deadline - Date.now()),
        ),
      ])
      if (chunk.done) throw new Error('stream ended')
      buffer += decoder.decode(chunk.value, { stream: true })
      const parts = buffer.split('\n\n')
      buffer = parts.pop() ?? ''
      frames.push(...parts)
    }
  }
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    /** The first frame (a comment): it arrives once the subscription stands. */
    async ready(): Promise<string> {
      return nextFrame(Date.now() + 5000)
    },
    // biome-ignore lint/suspicious/noExplicitAny: event payloads are asserted field by field
    async next(type: string, timeoutMs = 30_000): Promise<any> {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const frame = await nextFrame(deadline)
        const lines = frame.split('\n')
        const event = lines.find((l) => l.startsWith('event: '))?.slice(7)
        const data = lines.find((l) => l.startsWith('data: '))?.slice(6)
        lastId = lines.find((l) => l.startsWith('id: '))?.slice(4) ?? lastId
        if (event === type && data) return JSON.parse(data)
      }
    },
    /** The `id:` of the last frame read (the feed's token). */
    lastId: () => lastId,
    close() {
      controller.abort()
    },
  }
}

const numsub = async (channelId: string): Promise<number> => {
  const reply = (await redis.call('PUBSUB', 'NUMSUB', `${namespace}:channel:${channelId}`)) as [
    string,
    number,
  ]
  return Number(reply[1])
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

beforeAll(async () => {
  redis = createRedis({ url: testRedisUrl(), namespace })
  subscriber = redis.duplicate()
  service = await createChatService({
    db: t.db,
    redis,
    subscriber,
    port: 0,
    loginLimit: LOGIN_LIMIT,
    onError: (error) => {
      throw error
    },
  })
})

afterAll(async () => {
  await service?.close()
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await redis.del(...keys)
  } while (cursor !== '0')
  redis?.disconnect()
  subscriber?.disconnect()
})

describe('examples/chat-service', () => {
  const ada = { username: `ada_${randomBytes(4).toString('hex')}`, token: '', id: '' }
  const grace = { username: `grace_${randomBytes(4).toString('hex')}`, token: '', id: '' }
  let guildId = ''
  let channelId = ''

  it('registers users with scrypt password hashes and refuses duplicates and weak passwords', async () => {
    for (const user of [ada, grace]) {
      const r = await call('POST', '/register', {
        body: { username: user.username, password: PASSWORD },
      })
      expect(r.status).toBe(201)
      expect(r.body.user.username).toBe(user.username)
      expect(r.body.user).not.toHaveProperty('password_hash')
      user.id = r.body.user.id
    }
    const stored = await findUserCredentials(t.db, ada.username)
    expect(stored?.password_hash).toMatch(/^scrypt\$16384\$8\$1\$[\w-]{22}\$[\w-]{43}$/)
    expect(stored?.password_hash).not.toContain(PASSWORD)

    const before = await countRows(t.db, ['users'])
    const duplicate = await call('POST', '/register', {
      body: { username: ada.username.toUpperCase(), password: PASSWORD },
    })
    expect(duplicate.status).toBe(409)
    const weak = await call('POST', '/register', {
      body: { username: 'weakling', password: 'short' },
    })
    expect(weak.status).toBe(400)
    const badName = await call('POST', '/register', { body: { username: '', password: PASSWORD } })
    expect(badName.status).toBe(400)
    // Issue 27: a space would break `@name` mentions; `@` is the library's own rule.
    for (const username of ['ada lovelace', 'ada@home', ' ada']) {
      const refused = await call('POST', '/register', { body: { username, password: PASSWORD } })
      expect(refused.status, username).toBe(400)
    }
    expect(await countRows(t.db, ['users'])).toEqual(before)
  })

  it('logs in with a random bearer token; a wrong password or unknown user is 401', async () => {
    for (const user of [ada, grace]) {
      const r = await call('POST', '/login', {
        body: { username: user.username, password: PASSWORD },
      })
      expect(r.status).toBe(200)
      expect(r.body.token).toMatch(/^[\w-]{43}$/)
      expect(r.body.user_id).toBe(user.id)
      user.token = r.body.token
    }
    expect(ada.token).not.toBe(grace.token)
    const sessions = await t.db.selectFrom('sessions').select('token_hash').execute()
    expect(sessions.map((s) => s.token_hash)).not.toContain(ada.token)

    const me = await call('GET', '/me', { token: ada.token })
    expect(me.status).toBe(200)
    expect(me.body.user.id).toBe(ada.id)
    expect((await call('GET', '/me')).status).toBe(401)
    expect((await call('GET', '/me', { token: 'x'.repeat(43) })).status).toBe(401)

    const wrong = await call('POST', '/login', {
      body: { username: ada.username, password: 'nope nope nope' },
    })
    expect(wrong.status).toBe(401)
    expect(JSON.stringify(wrong.body)).not.toContain(ada.username)
    const unknown = await call('POST', '/login', {
      body: { username: 'nobody_here', password: PASSWORD },
    })
    expect(unknown.status).toBe(401)
    expect(unknown.body).toEqual(wrong.body)
  })

  it(`rate-limits login attempts: 429 with Retry-After after ${LOGIN_LIMIT.limit} tries`, async () => {
    const limiter = createRateLimiter(redis, { category: 'login', ...LOGIN_LIMIT })
    await limiter.reset('127.0.0.1')
    const statuses: number[] = []
    for (let i = 0; i < LOGIN_LIMIT.limit + 1; i++) {
      const r = await call('POST', '/login', {
        body: { username: ada.username, password: `wrong ${i}` },
      })
      statuses.push(r.status)
      if (r.status === 429) expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    }
    expect(statuses).toEqual([401, 401, 401, 429])
    // Even the right password waits now.
    const right = await call('POST', '/login', {
      body: { username: ada.username, password: PASSWORD },
    })
    expect(right.status).toBe(429)
    await limiter.reset('127.0.0.1')
    const again = await call('POST', '/login', {
      body: { username: ada.username, password: PASSWORD },
    })
    expect(again.status).toBe(200)
  })

  it('creates a guild and channels; only members see them', async () => {
    const created = await call('POST', '/guilds', { token: ada.token, body: { name: 'Engines' } })
    expect(created.status).toBe(201)
    guildId = created.body.guild.id
    expect(created.body.channel.name).toBe('general')
    const random = await call('POST', `/guilds/${guildId}/channels`, {
      token: ada.token,
      body: { name: 'random', topic: 'anything' },
    })
    expect(random.status).toBe(201)
    channelId = random.body.channel.id

    // grace is not a member: the guild and its channels do not exist for her.
    expect(
      (await call('GET', `/channels/${channelId}/messages`, { token: grace.token })).status,
    ).toBe(404)
    expect(
      (
        await call('POST', `/channels/${channelId}/messages`, {
          token: grace.token,
          body: { content: 'hi' },
        })
      ).status,
    ).toBe(404)
    const sneaky = await call('POST', `/guilds/${guildId}/channels`, {
      token: grace.token,
      body: { name: 'x' },
    })
    expect(sneaky.status).toBe(404)

    // Knowing a guild's id is not enough to join (issue 27): only an invite of guildstore's.
    expect((await call('POST', `/guilds/${guildId}/join`, { token: grace.token })).status).toBe(404)
    expect((await call('POST', `/invites/${guildId}`, { token: grace.token })).status).toBe(404)
    const invite = await call('POST', `/guilds/${guildId}/invites`, {
      token: ada.token,
      body: { max_uses: 1, max_age_seconds: 3600 },
    })
    expect(invite.status).toBe(201)
    expect(invite.body.invite.code).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(invite.body.invite.max_uses).toBe(1)
    const expiresIn = new Date(invite.body.invite.expires_at).getTime() - Date.now()
    expect(expiresIn).toBeGreaterThan(3_500_000)
    expect(expiresIn).toBeLessThanOrEqual(3_600_000)
    const joined = await call('POST', `/invites/${invite.body.invite.code}`, { token: grace.token })
    expect(joined.status).toBe(200)
    expect(joined.body).toEqual({ guild_id: guildId, joined: true })
    const visible = await call('GET', `/guilds/${guildId}/channels`, { token: grace.token })
    expect(visible.body.channels.map((c: { name: string }) => c.name).sort()).toEqual([
      'general',
      'random',
    ])
    // A plain member may not create channels (no MANAGE_CHANNELS).
    const denied = await call('POST', `/guilds/${guildId}/channels`, {
      token: grace.token,
      body: { name: 'x' },
    })
    expect(denied.status).toBe(403)
    expect(await countRows(t.db, ['channels'])).toEqual({ channels: 2 })
  })

  it('posts, pages and searches messages', async () => {
    for (const content of ['one', 'two: find the needle', 'three', 'four']) {
      const r = await call('POST', `/channels/${channelId}/messages`, {
        token: ada.token,
        body: { content },
      })
      expect(r.status).toBe(201)
      expect(r.body.message.author_id).toBe(ada.id)
    }
    const tooLong = await call('POST', `/channels/${channelId}/messages`, {
      token: ada.token,
      body: { content: 'x'.repeat(4001) },
    })
    expect(tooLong.status).toBe(400)

    const page1 = await call('GET', `/channels/${channelId}/messages?limit=3`, {
      token: grace.token,
    })
    expect(page1.status).toBe(200)
    expect(page1.body.messages.map((m: { content: string }) => m.content)).toEqual([
      'four',
      'three',
      'two: find the needle',
    ])
    const last = page1.body.messages.at(-1).id
    const page2 = await call('GET', `/channels/${channelId}/messages?limit=3&before=${last}`, {
      token: grace.token,
    })
    expect(page2.body.messages.map((m: { content: string }) => m.content)).toEqual(['one'])
    expect(
      (await call('GET', `/channels/${channelId}/messages?before=nope`, { token: grace.token }))
        .status,
    ).toBe(400)

    const hits = await call('GET', `/search?q=needle&guild_id=${guildId}`, { token: grace.token })
    expect(hits.status).toBe(200)
    expect(hits.body.messages.map((m: { content: string }) => m.content)).toEqual([
      'two: find the needle',
    ])
  })

  it('fans message_created out to every event stream through one Redis subscription', async () => {
    const stranger = await call('POST', '/register', {
      body: { username: `eve_${randomBytes(3).toString('hex')}`, password: PASSWORD },
    })
    const eveLogin = await call('POST', '/login', {
      body: { username: stranger.body.user.username, password: PASSWORD },
    })
    const forbidden = await openEvents(channelId, eveLogin.body.token)
    expect(forbidden.status).toBe(404)

    const first = await openEvents(channelId, grace.token)
    const second = await openEvents(channelId, ada.token)
    try {
      expect(first.status).toBe(200)
      expect(first.contentType).toMatch(/^text\/event-stream/)
      await first.ready()
      await second.ready()
      expect(await numsub(channelId)).toBe(1)

      const posted = await call('POST', `/channels/${channelId}/messages`, {
        token: ada.token,
        body: { content: 'live!' },
      })
      expect(posted.status).toBe(201)
      const [a, b] = await Promise.all([
        first.next('message_created'),
        second.next('message_created'),
      ])
      expect(a).toEqual({ type: 'message_created', message: posted.body.message })
      expect(b).toEqual(a)
    } finally {
      first.close()
      second.close()
    }
    await waitFor(async () => (await numsub(channelId)) === 0)
  })

  it('GET /events: the change feed, resumed from Last-Event-ID with nothing missed and nothing twice', async () => {
    const feed = await openFeed(grace.token)
    let token: string | undefined
    try {
      expect(feed.status).toBe(200)
      expect(feed.contentType).toMatch(/^text\/event-stream/)
      await feed.next('ready')
      const posted = await call('POST', `/channels/${channelId}/messages`, {
        token: ada.token,
        body: { content: 'on the feed' },
      })
      const created = await feed.next('message_created')
      expect(created).toMatchObject({
        type: 'message_created',
        channel_id: channelId,
        data: { message_id: posted.body.message.id, message: { content: 'on the feed' } },
      })
      token = feed.lastId()
      expect(token).toBeTruthy()
    } finally {
      feed.close()
    }
    // Away: a message, an edit and a new channel happen without Grace.
    const away = await call('POST', `/channels/${channelId}/messages`, {
      token: ada.token,
      body: { content: 'while away' },
    })
    await call('PATCH', `/messages/${away.body.message.id}`, {
      token: ada.token,
      body: { content: 'while away (edited)' },
    })
    const made = await call('POST', `/guilds/${guildId}/channels`, {
      token: ada.token,
      body: { name: `feed-${randomBytes(3).toString('hex')}` },
    })
    expect(made.status).toBe(201)
    const resumed = await openFeed(grace.token, token)
    try {
      await resumed.next('ready')
      const again = await resumed.next('message_created')
      // The first event after the token is the one sent while away, not the one already seen.
      expect(again.data.message_id).toBe(away.body.message.id)
      expect((await resumed.next('message_edited')).data.message_id).toBe(away.body.message.id)
      expect((await resumed.next('channel_created')).data.channel.id).toBe(made.body.channel.id)
    } finally {
      resumed.close()
    }
    // A token the feed never gave: a resync frame from the head, not an error.
    const stale = await openFeed(grace.token, 'not-a-token')
    try {
      expect(stale.status).toBe(200)
      await stale.next('resync')
    } finally {
      stale.close()
    }
  })

  it('read states: unread counts rise when another user posts and drop to 0 once marked read', async () => {
    interface ReadState {
      channel_id: string
      last_message_id: string | null
      last_read_message_id: string | null
      unread_count: number
      mention_count: number
    }
    const readStates = async (token: string): Promise<Map<string, ReadState>> => {
      const r = await call('GET', `/guilds/${guildId}/read-states`, { token })
      expect(r.status).toBe(200)
      expect(r.body.unread_cap).toBe(UNREAD_COUNT_CAP)
      return new Map(r.body.read_states.map((s: ReadState) => [s.channel_id, s]))
    }
    const before = (await readStates(grace.token)).get(channelId)
    expect(before?.last_read_message_id).toBeNull()
    const unreadBefore = before?.unread_count ?? -1
    expect(unreadBefore).toBeGreaterThan(0)

    const posted: string[] = []
    for (const content of ['unread one', 'unread two']) {
      const r = await call('POST', `/channels/${channelId}/messages`, {
        token: ada.token,
        body: { content },
      })
      posted.push(r.body.message.id)
    }
    // A mention of Grace (the example posts none; the library stores them).
    const mention = await createMessage(t.db, {
      channel_id: channelId,
      author_id: ada.id,
      content: 'hey grace',
      mentions: { user_ids: [grace.id] },
    })
    const after = (await readStates(grace.token)).get(channelId)
    expect(after).toMatchObject({
      last_message_id: mention.id,
      unread_count: unreadBefore + 3,
      mention_count: 1,
    })
    // Only the caller's own state: Ada's own messages are never unread for her.
    expect((await readStates(ada.token)).get(channelId)?.unread_count).toBe(0)

    const marked = await call('POST', `/channels/${channelId}/read`, {
      token: grace.token,
      body: { message_id: mention.id },
    })
    expect(marked.status).toBe(204)
    expect((await readStates(grace.token)).get(channelId)).toMatchObject({
      last_read_message_id: mention.id,
      unread_count: 0,
      mention_count: 0,
    })
    // An older message does not move the marker back.
    const older = await call('POST', `/channels/${channelId}/read`, {
      token: grace.token,
      body: { message_id: posted[0] },
    })
    expect(older.status).toBe(204)
    expect((await readStates(grace.token)).get(channelId)).toMatchObject({
      last_read_message_id: mention.id,
      unread_count: 0,
    })
    const more = await call('POST', `/channels/${channelId}/messages`, {
      token: ada.token,
      body: { content: 'one more' },
    })
    expect((await readStates(grace.token)).get(channelId)?.unread_count).toBe(1)

    // Bad input: 400 through the usual mapping, nothing written.
    const generalId = [...(await readStates(grace.token)).keys()].find((id) => id !== channelId)
    const rowsBefore = await t.db.selectFrom('channel_read_states').selectAll().execute()
    const badMarks: [string | undefined, unknown][] = [
      [channelId, {}],
      [channelId, { message_id: 42 }],
      [channelId, { message_id: 'nope' }],
      [generalId, { message_id: more.body.message.id }], // a message of another channel
    ]
    for (const [target, body] of badMarks) {
      const r = await call('POST', `/channels/${target}/read`, { token: grace.token, body })
      expect(r.status).toBe(400)
    }
    expect(
      (await call('POST', '/channels/nope/read', { token: grace.token, body: {} })).status,
    ).toBe(400)
    expect(
      (
        await call('POST', `/channels/${channelId}/read`, {
          body: { message_id: more.body.message.id },
        })
      ).status,
    ).toBe(401)

    // A channel hidden from Grace: 404 on mark, absent from her read states, nothing written.
    const secret = await call('POST', `/guilds/${guildId}/channels`, {
      token: ada.token,
      body: { name: 'secret' },
    })
    const secretId = secret.body.channel.id
    await setChannelOverwrite(t.db, {
      channel_id: secretId,
      user_id: grace.id,
      allow: 0n,
      deny: Permissions.VIEW_CHANNEL,
    })
    const hidden = await call('POST', `/channels/${secretId}/messages`, {
      token: ada.token,
      body: { content: 'for ada only' },
    })
    expect(hidden.status).toBe(201)
    const denied = await call('POST', `/channels/${secretId}/read`, {
      token: grace.token,
      body: { message_id: hidden.body.message.id },
    })
    expect(denied.status).toBe(404)
    expect(denied.body).toEqual({ error: 'channel not found' })
    // A channel that does not exist: the same 404 (no existence leak).
    const unknownChannel = await call('POST', `/channels/${randomUUID()}/read`, {
      token: grace.token,
      body: { message_id: hidden.body.message.id },
    })
    expect(unknownChannel.status).toBe(404)
    expect(unknownChannel.body).toEqual(denied.body)
    expect(await t.db.selectFrom('channel_read_states').selectAll().execute()).toEqual(rowsBefore)
    expect((await readStates(grace.token)).has(secretId)).toBe(false)
    expect((await readStates(ada.token)).get(secretId)?.unread_count).toBe(0)

    // Not a member: no read states at all, and 404 on mark.
    const outsider = await call('POST', '/register', {
      body: { username: `mallory_${randomBytes(3).toString('hex')}`, password: PASSWORD },
    })
    const outsiderLogin = await call('POST', '/login', {
      body: { username: outsider.body.user.username, password: PASSWORD },
    })
    const outsiderStates = await call('GET', `/guilds/${guildId}/read-states`, {
      token: outsiderLogin.body.token,
    })
    expect(outsiderStates.status).toBe(200)
    expect(outsiderStates.body.read_states).toEqual([])
    const outsiderMark = await call('POST', `/channels/${channelId}/read`, {
      token: outsiderLogin.body.token,
      body: { message_id: more.body.message.id },
    })
    expect(outsiderMark.status).toBe(404)
    expect(await t.db.selectFrom('channel_read_states').selectAll().execute()).toEqual(rowsBefore)
    expect((await call('GET', '/guilds/nope/read-states', { token: grace.token })).status).toBe(400)
  })

  it('@name mentions light the mention count; reactions, pins, edits with history, deletes', async () => {
    const post = (token: string, content: string) =>
      call('POST', `/channels/${channelId}/messages`, { token, body: { content } })
    const mentionsOf = async () =>
      (
        await call('GET', `/guilds/${guildId}/read-states`, { token: grace.token })
      ).body.read_states.find((s: { channel_id: string }) => s.channel_id === channelId)
        .mention_count
    const mentionsBefore = await mentionsOf()
    // The identity rule finds GRACE as grace; trailing punctuation is not part of the name.
    const hello = await post(ada.token, `hi @${grace.username.toUpperCase()}, and @nobody_here`)
    expect(hello.status).toBe(201)
    const mentions = await t.db
      .selectFrom('message_mentions')
      .select('user_id')
      .where('message_id', '=', hello.body.message.id)
      .execute()
    expect(mentions).toEqual([{ user_id: grace.id }])
    expect(await mentionsOf()).toBe(mentionsBefore + 1)

    // Reactions: grace adds 👍 twice (idempotent) and ❤️; ada adds 👍.
    const id = hello.body.message.id
    const react = (token: string, method: string, emoji: string) =>
      call(method, `/messages/${id}/reactions/${encodeURIComponent(emoji)}`, { token })
    expect((await react(grace.token, 'PUT', '👍')).status).toBe(204)
    expect((await react(grace.token, 'PUT', '👍')).status).toBe(204)
    expect((await react(grace.token, 'PUT', '❤️')).status).toBe(204)
    expect((await react(ada.token, 'PUT', '👍')).status).toBe(204)
    expect((await react(ada.token, 'PUT', 'not an emoji')).status).toBe(400)
    const seen = await call('GET', `/messages/${id}`, { token: grace.token })
    expect(seen.status).toBe(200)
    expect(
      seen.body.reactions.map((r: { emoji: string; count: number; me: boolean }) => [
        r.emoji,
        r.count,
        r.me,
      ]),
    ).toEqual(
      expect.arrayContaining([
        ['👍', 2, true],
        ['❤️', 1, true],
      ]),
    )
    expect((await react(grace.token, 'DELETE', '❤️')).status).toBe(204)
    const page = await call('GET', `/channels/${channelId}/messages?limit=5`, {
      token: grace.token,
    })
    expect(
      page.body.reactions.filter((r: { message_id: string }) => r.message_id === id),
    ).toHaveLength(1)

    // Pins need MANAGE_MESSAGES: the owner may, a plain member may not.
    expect((await call('PUT', `/messages/${id}/pin`, { token: grace.token })).status).toBe(403)
    expect((await call('PUT', `/messages/${id}/pin`, { token: ada.token })).status).toBe(204)
    expect((await call('GET', `/messages/${id}`, { token: grace.token })).body.pinned).toEqual([id])
    const pins = await call('GET', `/channels/${channelId}/pins`, { token: grace.token })
    expect(pins.body.messages.map((m: { id: string }) => m.id)).toEqual([id])
    expect((await call('DELETE', `/messages/${id}/pin`, { token: ada.token })).status).toBe(204)

    // Edits: the author only; the previous version is kept.
    const edit = (token: string, content: string) =>
      call('PATCH', `/messages/${id}`, { token, body: { content } })
    expect((await edit(grace.token, 'hijacked')).status).toBe(403)
    const edited = await edit(ada.token, 'hi grace, zebracorn (edited)')
    expect(edited.status).toBe(200)
    expect(edited.body.message.edited_at).not.toBeNull()
    const edits = await call('GET', `/messages/${id}/edits`, { token: grace.token })
    expect(edits.body.edits.map((e: { content: string }) => e.content)).toEqual([
      `hi @${grace.username.toUpperCase()}, and @nobody_here`,
    ])

    // Deletes: not someone else's (no MANAGE_MESSAGES), one's own yes; then it is gone.
    const graces = await post(grace.token, 'mine to delete')
    expect(
      (await call('DELETE', `/messages/${graces.body.message.id}`, { token: grace.token })).status,
    ).toBe(204)
    expect((await call('DELETE', `/messages/${id}`, { token: grace.token })).status).toBe(403)
    expect(
      (await call('GET', `/messages/${graces.body.message.id}`, { token: ada.token })).status,
    ).toBe(404)
    const after = await call('GET', `/channels/${channelId}/messages?limit=5`, { token: ada.token })
    expect(after.body.messages.map((m: { content: string }) => m.content)).not.toContain(
      'mine to delete',
    )

    // Search hits say which channel they are in.
    const hits = await call('GET', `/search?q=zebracorn&guild_id=${guildId}`, {
      token: grace.token,
    })
    expect(hits.body.messages.map((m: { id: string }) => m.id)).toEqual([id])
    expect(hits.body.channels).toEqual([{ id: channelId, name: 'random', guild_id: guildId }])
  })

  it('private channels, a read-only overwrite and a moderator role, each checked as the caller', async () => {
    const names = async (token: string) =>
      (await call('GET', `/guilds/${guildId}/channels`, { token })).body.channels.map(
        (c: { name: string }) => c.name,
      )
    // A private channel: grace (a plain member) neither sees it nor may add herself.
    const secret = await call('POST', `/guilds/${guildId}/channels`, {
      token: ada.token,
      body: { name: 'secret', private: true },
    })
    expect(secret.status).toBe(201)
    expect(secret.body.channel.is_private).toBe(true)
    const secretId = secret.body.channel.id
    expect(await names(grace.token)).not.toContain('secret')
    expect(
      (await call('PUT', `/channels/${secretId}/members/${grace.id}`, { token: grace.token }))
        .status,
    ).toBe(404)
    expect(
      (await call('PUT', `/channels/${secretId}/members/${grace.id}`, { token: ada.token })).status,
    ).toBe(204)
    expect(await names(grace.token)).toContain('secret')

    // Read-only: an @everyone overwrite denying SEND_MESSAGES; only a manager may set it.
    const readOnly = (token: string, read_only: boolean) =>
      call('PUT', `/channels/${channelId}/read-only`, { token, body: { read_only } })
    expect((await readOnly(grace.token, true)).status).toBe(403)
    expect((await readOnly(ada.token, true)).status).toBe(204)
    const settings = await call('GET', `/channels/${channelId}/settings`, { token: grace.token })
    expect(settings.body).toEqual({ read_only: true, is_private: false, can_manage: false })
    const before = await countRows(t.db, ['messages'])
    const refused = await call('POST', `/channels/${channelId}/messages`, {
      token: grace.token,
      body: { content: 'may I?' },
    })
    expect(refused.status).toBe(403)
    expect(await countRows(t.db, ['messages'])).toEqual(before)
    expect((await readOnly(ada.token, false)).status).toBe(204)
    const allowed = await call('POST', `/channels/${channelId}/messages`, {
      token: grace.token,
      body: { content: 'now I may' },
    })
    expect(allowed.status).toBe(201)

    // A moderator role: grace may pin only once ada gives it to her; she may not make roles.
    const id = allowed.body.message.id
    expect((await call('PUT', `/messages/${id}/pin`, { token: grace.token })).status).toBe(403)
    expect(
      (await call('POST', `/guilds/${guildId}/roles`, { token: grace.token, body: { name: 'me' } }))
        .status,
    ).toBe(403)
    const mods = await call('POST', `/guilds/${guildId}/roles`, {
      token: ada.token,
      body: { name: 'mods', manage_messages: true },
    })
    expect(mods.status).toBe(201)
    expect(
      (
        await call('PUT', `/guilds/${guildId}/members/${grace.id}/roles/${mods.body.role.id}`, {
          token: ada.token,
        })
      ).status,
    ).toBe(204)
    expect((await call('PUT', `/messages/${id}/pin`, { token: grace.token })).status).toBe(204)
    const members = await call('GET', `/guilds/${guildId}/members`, { token: grace.token })
    expect(members.body.members.map((m: { username: string }) => m.username).sort()).toEqual(
      [ada.username, grace.username].sort(),
    )
    expect(members.body.roles.map((r: { name: string }) => r.name)).toContain('mods')
  })

  it('close() ends open streams and stops listening', async () => {
    const stream = await openEvents(channelId, grace.token)
    await stream.ready()
    await service.close()
    await expect(stream.next('message_created', 2000)).rejects.toThrow()
    await expect(fetch(`${service.url}/me`)).rejects.toThrow()
    await waitFor(async () => (await numsub(channelId)) === 0)
  })
})
