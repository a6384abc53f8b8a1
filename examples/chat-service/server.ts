/**
 * A small chat HTTP service on guildstore, with node:http only.
 *
 *   POST   /register                 { username, password, email? }     → 201 { user }
 *   POST   /login                    { username, password }             → 200 { token, user_id, expires_at }
 *   DELETE /session                                                     → 204
 *   GET    /me                                                          → 200 { user }
 *   POST   /guilds                   { name }                           → 201 { guild, channel }
 *   POST   /guilds/:id/invites       { max_uses?, max_age_seconds? }    → 201 { invite }
 *   POST   /invites/:code                                               → 200 { guild_id, joined }
 *   GET    /guilds/:id/channels                                         → 200 { channels }
 *   GET    /guilds/:id/read-states                                      → 200 { read_states, unread_cap }
 *   POST   /guilds/:id/channels      { name, topic?, private? }         → 201 { channel }   (MANAGE_CHANNELS)
 *   GET    /guilds/:id/members                                          → 200 { members, roles }
 *   POST   /guilds/:id/roles         { name, manage_messages? }         → 201 { role }      (MANAGE_ROLES)
 *   PUT    /guilds/:id/members/:user/roles/:role                        → 204               (MANAGE_ROLES)
 *   GET    /channels/:id/settings                                       → 200 { read_only, is_private, can_manage }
 *   PUT    /channels/:id/read-only   { read_only }                      → 204               (an @everyone overwrite)
 *   PUT    /channels/:id/members/:user                                  → 204               (private channels)
 *   POST   /channels/:id/messages    { content, reply_to? }             → 201 { message }   (@name mentions)
 *   GET    /channels/:id/messages    ?before=&after=&limit=             → 200 { messages, reactions, pinned }
 *   GET    /channels/:id/pins                                           → 200 { messages }
 *   GET    /messages/:id                                                → 200 { message, reactions, pinned, channel }
 *   PATCH  /messages/:id             { content }                        → 200 { message }   (the author only)
 *   DELETE /messages/:id                                                → 204               (author or MANAGE_MESSAGES)
 *   GET    /messages/:id/edits                                          → 200 { edits }
 *   PUT    /messages/:id/reactions/:emoji                               → 204
 *   DELETE /messages/:id/reactions/:emoji                               → 204
 *   PUT    /messages/:id/pin                                            → 204               (MANAGE_MESSAGES)
 *   DELETE /messages/:id/pin                                            → 204               (MANAGE_MESSAGES)
 *   POST   /channels/:id/read        { message_id }                     → 204
 *   GET    /events                   (text/event-stream, Last-Event-ID) → the user's change feed
 *   GET    /channels/:id/events      (text/event-stream)                → message_created, … (one channel, no resume)
 *   GET    /search                   ?q=&guild_id=&before=&limit=       → 200 { messages, channels }
 *   GET    /guilds                                                      → 200 { guilds }
 *   GET    /users/:id                                                   → 200 { user: { id, username, display_name } }
 *   GET    /  /app.js  /style.css    the web chat page (public/, no build step)
 *
 * Everything but /register, /login and the page needs `Authorization: Bearer <token>`.
 * Login attempts are rate-limited per client address (429 + Retry-After).
 * With Redis, messages are fanned out through Redis pub/sub, so any number of
 * service instances can serve the same channel's event streams; each instance
 * holds one subscriber connection and one Redis subscription per channel it
 * streams. Without Redis (no `redis` option) it runs in single-process mode:
 * events fan out inside this process and login limiting counts in memory.
 *
 * GET /events is guildstore's change feed (`subscribeEvents`): every change the
 * user may see (messages, edits, reactions, pins, channels, overwrites, members,
 * roles, their own read markers), in commit order, each with an `id:` that is the
 * feed token. A browser that reconnects sends it back as `Last-Event-ID` and
 * misses nothing, even when it was away while the changes happened. With Redis,
 * every write request publishes a hint (`publishEventHint`) so every instance's
 * dispatcher reads at once; without, the dispatcher's poll of the feed's head
 * (every 100 ms) wakes it. Either way hints only wake: nothing is lost with them.
 *
 * In your own service, import from 'guildstore' instead of '../../src/index.ts'.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Redis } from 'ioredis'
import type { Kysely } from 'kysely'
import {
  addChannelMember,
  addReaction,
  assignRole,
  type ChannelEvent,
  ConflictError,
  canAccessChannel,
  computePermissions,
  createChannel,
  createGuild,
  createInvite,
  createRateLimiter,
  createRole,
  createSession,
  createUser,
  type DB,
  deleteChannelOverwrite,
  deleteMessage,
  deleteSession,
  ForeignKeyViolationError,
  findChannelById,
  findMessageById,
  findSessionByTokenHash,
  findUserById,
  findUserByUsername,
  findUserCredentials,
  findUsersByIds,
  hashToken,
  hasPermission,
  InvalidInputError,
  listChannelOverwrites,
  listChannelReadStates,
  listGuildMembers,
  listGuildRoles,
  listGuildsForUser,
  listMessageEdits,
  listPinnedMessages,
  listReactions,
  listVisibleChannels,
  type Message,
  markChannelRead,
  NotFoundError,
  PermissionDeniedError,
  Permissions,
  pinMessage,
  publishChannelEvent,
  publishEventHint,
  ResyncRequiredError,
  readChannelMessages,
  removeReaction,
  searchMessages,
  sendMessage,
  setChannelOverwrite,
  subscribeChannelEvents,
  subscribeEvents,
  UNREAD_COUNT_CAP,
  UniqueViolationError,
  unpinMessage,
  updateMessage,
  useInvite,
} from '../../src/index.ts'
import { hashPassword, verifyPassword } from './passwords.ts'

/** Options of {@link createChatService}. */
export interface ChatServiceOptions {
  db: Kysely<DB>
  /** Commands and publishing. Without it: single-process mode (events and login limits in memory). */
  redis?: Redis
  /** A dedicated connection for subscriptions (e.g. `redis.duplicate()`); needed with `redis`. */
  subscriber?: Redis
  /** 0 picks a free port. */
  port: number
  /** Default `127.0.0.1`. */
  host?: string
  /** Login attempts per client address and window. Default 5 per minute. */
  loginLimit?: { limit: number; windowMs: number }
  /** Session lifetime. Default 30 days. */
  sessionTtlMs?: number
  /** SSE keep-alive comment interval. Default 15 s. */
  heartbeatMs?: number
  /** Told about unexpected errors (the client gets a bare 500). Default `console.error`. */
  onError?: (error: unknown) => void
}

/** Thrown by {@link createChatService} when its port is taken. */
export class PortInUseError extends Error {
  override name = 'PortInUseError'
  readonly port: number
  constructor(port: number, host: string) {
    super(
      `port ${port} on ${host} is already in use (another chat example?). Set PORT to a free port, e.g. PORT=${port + 1}, or PORT=0 to pick one.`,
    )
    this.port = port
  }
}

/** How the service fans out events: Redis pub/sub, or in this process. */
interface EventBus {
  publish(channelId: string, event: ChannelEvent): Promise<void>
  subscribe(channelId: string, handler: (event: ChannelEvent) => void): Promise<() => Promise<void>>
}

function inProcessBus(): EventBus {
  const handlers = new Map<string, Set<(event: ChannelEvent) => void>>()
  return {
    async publish(channelId, event) {
      // Through JSON, as over Redis, so both modes hand listeners the same shapes.
      const copy = JSON.parse(toJson(event)) as ChannelEvent
      for (const handler of handlers.get(channelId) ?? []) handler(copy)
    },
    async subscribe(channelId, handler) {
      let set = handlers.get(channelId)
      if (!set) {
        set = new Set()
        handlers.set(channelId, set)
      }
      set.add(handler)
      const current = set
      return async () => {
        current.delete(handler)
        if (current.size === 0 && handlers.get(channelId) === current) handlers.delete(channelId)
      }
    },
  }
}

/** A fixed-window counter in memory: the single-process stand-in for `createRateLimiter`. */
function inMemoryLimiter(limit: number, windowMs: number) {
  const windows = new Map<string, { used: number; resetAt: number }>()
  return {
    async consume(subject: string): Promise<{ allowed: boolean; retryAfterMs: number }> {
      const now = Date.now()
      for (const [key, w] of windows) if (w.resetAt <= now) windows.delete(key)
      const window = windows.get(subject) ?? { used: 0, resetAt: now + windowMs }
      windows.set(subject, window)
      if (window.used >= limit) return { allowed: false, retryAfterMs: window.resetAt - now }
      window.used += 1
      return { allowed: true, retryAfterMs: 0 }
    },
    async reset(subject: string): Promise<void> {
      windows.delete(subject)
    },
  }
}

const PUBLIC_DIR = new URL('./public/', import.meta.url)
const STATIC_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
}

/** A running chat service. */
export interface ChatService {
  /** `http://host:port`, without a trailing slash. */
  url: string
  /** `redis` (events over Redis pub/sub) or `single-process` (events and login limits in memory). */
  mode: 'redis' | 'single-process'
  /** Ends every event stream and subscription and stops the server. Leaves `db` and Redis open. */
  close(): Promise<void>
}

/** An HTTP error with a status and a message for the client. */
class HttpError extends Error {
  readonly status: number
  readonly headers: Record<string, string>
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.status = status
    this.headers = headers
  }
}

const MAX_BODY_BYTES = 64 * 1024
const MIN_PASSWORD_LENGTH = 8
const MAX_PASSWORD_LENGTH = 1024

/** JSON that also writes bigints (role permissions) as decimal strings. */
const toJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v))

function send(res: ServerResponse, status: number, body?: unknown, headers = {}): void {
  if (body === undefined) {
    res.writeHead(status, headers).end()
    return
  }
  const text = toJson(body)
  res
    .writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      ...headers,
    })
    .end(text)
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'request body too large')
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return {}
  let body: unknown
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new HttpError(400, 'request body is not valid JSON')
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'request body must be a JSON object')
  }
  return body as Record<string, unknown>
}

const str = (body: Record<string, unknown>, field: string): string => {
  const value = body[field]
  if (typeof value !== 'string') throw new HttpError(400, `${field} must be a string`)
  return value
}
const optionalStr = (body: Record<string, unknown>, field: string): string | undefined =>
  body[field] === undefined || body[field] === null ? undefined : str(body, field)

const optionalInt = (params: URLSearchParams, field: string): number | undefined => {
  const value = params.get(field)
  if (value === null) return undefined
  if (!/^\d{1,4}$/.test(value)) throw new HttpError(400, `${field} must be an integer`)
  return Number(value)
}

/** The client's address, unmapped (`::ffff:127.0.0.1` → `127.0.0.1`). */
const clientAddress = (req: IncomingMessage): string =>
  (req.socket.remoteAddress ?? '0.0.0.0').replace(/^::ffff:(?=\d+\.)/, '')

/**
 * The example's username rule on top of guildstore's identity rule (2–32 characters,
 * no `@`, no control characters, no leading or trailing space; unique under NFKC and
 * case folding, docs/identity.md): no whitespace inside either, because a mention is
 * `@name` up to the next space.
 */
function assertExampleUsername(username: string): void {
  if (/\s/u.test(username)) {
    throw new HttpError(400, 'username must not contain spaces (mentions are written @name)')
  }
}

/** The distinct `@name` tokens of a message (at most 20), trailing punctuation dropped. */
export function mentionedNames(content: string): string[] {
  const names = new Set<string>()
  for (const match of content.matchAll(/(?<![\p{L}\p{N}_])@([^\s@]{1,40})/gu)) {
    const name = (match[1] ?? '').replace(/[.,!?:;)\]}'"]+$/u, '')
    if (name.length >= 2) names.add(name)
    if (names.size === 20) break
  }
  return [...names]
}

/** The most recent `max_age_seconds` an invite may have: 7 days. */
const MAX_INVITE_AGE_SECONDS = 7 * 24 * 60 * 60

/** Maps guildstore's typed errors to HTTP statuses. Messages carry no values. */
function httpError(error: unknown): HttpError | undefined {
  if (error instanceof HttpError) return error
  if (error instanceof InvalidInputError) return new HttpError(400, error.message)
  if (error instanceof NotFoundError) return new HttpError(404, error.message)
  if (error instanceof UniqueViolationError) return new HttpError(409, 'already exists')
  if (error instanceof ConflictError) return new HttpError(409, error.message)
  // The channel is hidden from this user, or they may not send there: 404 when they
  // cannot even see it (no existence leak), else 403.
  if (error instanceof PermissionDeniedError) {
    return error.permission === Permissions.VIEW_CHANNEL
      ? new HttpError(404, 'channel not found')
      : new HttpError(403, 'missing permission')
  }
  if (error instanceof ForeignKeyViolationError) return new HttpError(404, 'not found')
  return undefined
}

/**
 * Starts the chat service.
 *
 * @example
 * ```ts
 * const redis = createRedis()
 * const service = await createChatService({ db, redis, subscriber: redis.duplicate(), port: 3000 })
 * console.log(service.url)
 * await service.close()
 * ```
 */
export async function createChatService(options: ChatServiceOptions): Promise<ChatService> {
  const { db, redis, subscriber } = options
  const sessionTtlMs = options.sessionTtlMs ?? 30 * 24 * 60 * 60 * 1000
  const heartbeatMs = options.heartbeatMs ?? 15_000
  const onError = options.onError ?? ((error: unknown) => console.error(error))
  const loginLimit = options.loginLimit?.limit ?? 5
  const loginWindowMs = options.loginLimit?.windowMs ?? 60_000
  if (redis && !subscriber)
    throw new Error('createChatService: `subscriber` is needed with `redis`')
  const loginLimiter = redis
    ? createRateLimiter(redis, { category: 'login', limit: loginLimit, windowMs: loginWindowMs })
    : inMemoryLimiter(loginLimit, loginWindowMs)
  const bus: EventBus =
    redis && subscriber
      ? {
          async publish(channelId, event) {
            await publishChannelEvent(redis, channelId, event)
          },
          subscribe: (channelId, handler) => subscribeChannelEvents(subscriber, channelId, handler),
        }
      : inProcessBus()

  // --- server-sent events: one Redis subscription per channel with listeners --
  interface Stream {
    clients: Set<ServerResponse>
    ready: Promise<() => Promise<void>>
  }
  const streams = new Map<string, Stream>()

  const broadcast = (channelId: string, event: ChannelEvent) => {
    const frame = `event: ${event.type}\ndata: ${toJson(event)}\n\n`
    for (const client of streams.get(channelId)?.clients ?? []) client.write(frame)
  }

  async function openStream(channelId: string, res: ServerResponse): Promise<void> {
    let stream = streams.get(channelId)
    if (!stream) {
      const created: Stream = {
        clients: new Set(),
        ready: bus.subscribe(channelId, (event) => broadcast(channelId, event)),
      }
      streams.set(channelId, created)
      created.ready.catch(() => streams.delete(channelId))
      stream = created
    }
    stream.clients.add(res)
    const current = stream
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs)
    heartbeat.unref()
    res.on('close', () => {
      clearInterval(heartbeat)
      current.clients.delete(res)
      if (current.clients.size === 0 && streams.get(channelId) === current) {
        streams.delete(channelId)
        current.ready.then((stop) => stop()).catch(onError)
      }
    })
    await current.ready
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    })
    // Headers and this first comment go out once the subscription stands, so a
    // client that sees them will not miss an event published afterwards.
    res.write(`retry: 3000\n: subscribed to ${channelId}\n\n`)
  }

  // --- the change feed over server-sent events (guildstore's subscribeEvents) --
  const feeds = new Set<{ res: ServerResponse; close: () => Promise<void> }>()

  async function openFeed(userId: string, after: string | undefined, res: ServerResponse) {
    const start = (from: string | undefined) =>
      subscribeEvents(db, redis ?? null, { user_id: userId, after: from })
    let sub: ReturnType<typeof start> | undefined
    let resync = false
    try {
      sub = start(after)
      await sub.ready()
    } catch (error) {
      // A token past retention (or not one of ours): start at the head and
      // tell the page to reload what it shows (Discord's op 9, Matrix's limited).
      if (!(error instanceof ResyncRequiredError || error instanceof InvalidInputError)) throw error
      await sub?.close()
      sub = start(undefined)
      await sub.ready()
      resync = true
    }
    const feed = { res, close: () => sub.close() }
    feeds.add(feed)
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs)
    heartbeat.unref()
    res.on('close', () => {
      clearInterval(heartbeat)
      feeds.delete(feed)
      sub.close().catch(onError)
    })
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    })
    // The first frame carries the start token: a page that saw it and then
    // reconnects with it misses nothing committed after it.
    res.write(
      `retry: 1000\nid: ${sub.token()}\nevent: ${resync ? 'resync' : 'ready'}\ndata: {}\n\n`,
    )
    for await (const event of sub) {
      if (res.destroyed) break
      res.write(`id: ${sub.token()}\nevent: ${event.type}\ndata: ${toJson(event)}\n\n`)
    }
  }

  // --- authentication -------------------------------------------------------
  async function authenticate(
    req: IncomingMessage,
  ): Promise<{ userId: string; sessionId: string }> {
    const match = /^Bearer ([A-Za-z0-9_-]{20,200})$/.exec(req.headers.authorization ?? '')
    if (!match?.[1]) throw new HttpError(401, 'missing or malformed bearer token')
    const session = await findSessionByTokenHash(db, hashToken(match[1]))
    if (!session) throw new HttpError(401, 'invalid or expired token')
    return { userId: session.user_id, sessionId: session.id }
  }

  /** The channel, when it exists and `userId` may see it; else 404 (no existence leak). */
  async function accessibleChannel(channelId: string, userId: string) {
    const allowed = await canAccessChannel(db, { channel_id: channelId, user_id: userId })
    const channel = allowed ? await findChannelById(db, channelId) : undefined
    if (!channel) throw new HttpError(404, 'channel not found')
    return channel
  }

  async function requireGuildPermission(guildId: string, userId: string, flag: bigint) {
    const perms = await computePermissions(db, { guild_id: guildId, user_id: userId })
    if (perms === 0n) throw new HttpError(404, 'guild not found')
    if (!hasPermission(perms, flag)) throw new HttpError(403, 'missing permission')
  }

  async function isMemberOf(guildId: string, userId: string): Promise<boolean> {
    return (await computePermissions(db, { guild_id: guildId, user_id: userId })) !== 0n
  }

  async function everyoneRole(guildId: string): Promise<string> {
    const role = (await listGuildRoles(db, guildId)).find((r) => r.is_default)
    if (!role) throw new HttpError(404, 'guild not found')
    return role.id
  }

  /** Whether @everyone may not send here, whether it is private, and whether the user may change that. */
  async function channelSettings(
    channel: { id: string; guild_id: string | null; is_private: boolean },
    userId: string,
  ) {
    if (!channel.guild_id) return { read_only: false, is_private: true, can_manage: false }
    const everyone = await everyoneRole(channel.guild_id)
    const overwrites = await listChannelOverwrites(db, channel.id)
    const forEveryone = overwrites.find((o) => o.role_id === everyone)
    const perms = await computePermissions(db, {
      guild_id: channel.guild_id,
      user_id: userId,
      channel_id: channel.id,
    })
    return {
      read_only: forEveryone ? hasPermission(forEveryone.deny, Permissions.SEND_MESSAGES) : false,
      is_private: channel.is_private,
      can_manage: hasPermission(perms, Permissions.MANAGE_ROLES),
    }
  }

  /** A live message the user may read (its channel visible to them), else 404. */
  async function visibleMessage(messageId: string, userId: string) {
    const message = await findMessageById(db, messageId)
    if (!message || message.deleted_at) throw new HttpError(404, 'message not found')
    const channel = await accessibleChannel(message.channel_id, userId)
    return { message, channel }
  }

  /** What the page shows next to messages: reaction counts (with `me`) and which are pinned. */
  async function decorations(channelId: string, messages: readonly Message[], userId: string) {
    const reactions =
      messages.length > 0
        ? await listReactions(db, { message_ids: messages.map((m) => m.id), viewer_id: userId })
        : []
    const pinnedIds = new Set((await listPinnedMessages(db, channelId)).map((m) => m.id))
    return { reactions, pinned: messages.filter((m) => pinnedIds.has(m.id)).map((m) => m.id) }
  }

  // --- routes ---------------------------------------------------------------
  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const path = url.pathname.split('/').filter(Boolean)
    const method = req.method ?? 'GET'
    const at = (m: string, ...parts: string[]) =>
      method === m &&
      path.length === parts.length &&
      parts.every((part, i) => part === '*' || part === path[i])

    if (at('GET', 'favicon.ico')) return send(res, 204)
    const asset = method === 'GET' ? STATIC_FILES[url.pathname] : undefined
    if (asset) {
      const body = await readFile(new URL(asset.file, PUBLIC_DIR))
      res
        .writeHead(200, {
          'content-type': asset.type,
          'content-length': body.length,
          'cache-control': 'no-cache',
          'x-content-type-options': 'nosniff',
          'content-security-policy':
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
        })
        .end(body)
      return
    }

    if (at('POST', 'register')) {
      const body = await readJson(req)
      const password = str(body, 'password')
      if (password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
        throw new HttpError(
          400,
          `password must be ${MIN_PASSWORD_LENGTH}–${MAX_PASSWORD_LENGTH} characters`,
        )
      }
      const username = str(body, 'username')
      assertExampleUsername(username)
      const user = await createUser(db, {
        username,
        email: optionalStr(body, 'email'),
        password_hash: await hashPassword(password),
      })
      return send(res, 201, { user })
    }

    if (at('POST', 'login')) {
      const address = clientAddress(req)
      const limit = await loginLimiter.consume(address)
      if (!limit.allowed) {
        const seconds = Math.max(1, Math.ceil(limit.retryAfterMs / 1000))
        throw new HttpError(429, 'too many login attempts', { 'retry-after': String(seconds) })
      }
      const body = await readJson(req)
      const username = str(body, 'username')
      const password = str(body, 'password')
      // A malformed username is just a wrong one: same answer, same time.
      const credentials = await findUserCredentials(db, username).catch((error: unknown) => {
        if (error instanceof InvalidInputError) return undefined
        throw error
      })
      const ok = await verifyPassword(password, credentials?.password_hash ?? undefined)
      if (!ok || !credentials) throw new HttpError(401, 'wrong username or password')
      await loginLimiter.reset(address)
      const token = randomBytes(32).toString('base64url')
      const session = await createSession(db, {
        user_id: credentials.id,
        token_hash: hashToken(token),
        expires_at: new Date(Date.now() + sessionTtlMs),
        ip_address: address,
        user_agent: req.headers['user-agent']?.slice(0, 1024) ?? null,
      })
      return send(res, 200, { token, user_id: credentials.id, expires_at: session.expires_at })
    }

    const me = await authenticate(req)

    if (at('DELETE', 'session')) {
      await deleteSession(db, me.sessionId)
      return send(res, 204)
    }

    if (at('GET', 'me')) {
      return send(res, 200, { user: await findUserById(db, me.userId) })
    }

    if (at('GET', 'guilds')) {
      return send(res, 200, { guilds: await listGuildsForUser(db, me.userId) })
    }

    if (at('GET', 'users', '*')) {
      const user = await findUserById(db, path[1] as string)
      if (!user) throw new HttpError(404, 'user not found')
      // A public profile: no email, no status details.
      return send(res, 200, {
        user: { id: user.id, username: user.username, display_name: user.display_name },
      })
    }

    if (at('POST', 'guilds')) {
      const body = await readJson(req)
      const guild = await createGuild(db, { name: str(body, 'name'), owner_id: me.userId })
      const channel = await createChannel(db, { guild_id: guild.id, name: 'general', type: 'text' })
      return send(res, 201, { guild, channel })
    }

    if (at('POST', 'guilds', '*', 'invites')) {
      // A shareable invite of guildstore's: an unguessable code, optional use limit and
      // expiry; `as` checks the creator's CREATE_INSTANT_INVITE and writes the audit entry.
      const guildId = path[1] as string
      const body = await readJson(req)
      const maxUses = body.max_uses ?? null
      const maxAge = body.max_age_seconds ?? null
      if (maxUses !== null && (typeof maxUses !== 'number' || !Number.isInteger(maxUses))) {
        throw new HttpError(400, 'max_uses must be an integer')
      }
      if (
        maxAge !== null &&
        (typeof maxAge !== 'number' ||
          !Number.isInteger(maxAge) ||
          maxAge < 1 ||
          maxAge > MAX_INVITE_AGE_SECONDS)
      ) {
        throw new HttpError(400, `max_age_seconds must be 1 to ${MAX_INVITE_AGE_SECONDS}`)
      }
      const invite = await createInvite(
        db,
        {
          guild_id: guildId,
          inviter_id: me.userId,
          max_uses: maxUses,
          expires_at: maxAge === null ? null : new Date(Date.now() + maxAge * 1000),
        },
        { actor_id: me.userId },
      )
      return send(res, 201, { invite })
    }

    if (at('POST', 'invites', '*')) {
      // useInvite refuses an unknown, revoked, expired or used-up code and a banned user.
      const { member, joined } = await useInvite(db, {
        code: decodeURIComponent(path[1] as string),
        user_id: me.userId,
      })
      return send(res, 200, { guild_id: member.guild_id, joined })
    }

    if (at('GET', 'guilds', '*', 'channels')) {
      const guildId = path[1] as string
      const channels = await listVisibleChannels(db, { guild_id: guildId, user_id: me.userId })
      return send(res, 200, { channels })
    }

    if (at('GET', 'guilds', '*', 'read-states')) {
      // The caller's own markers and counts, for the channels of the guild they can see.
      const readStates = await listChannelReadStates(db, {
        user_id: me.userId,
        guild_id: path[1] as string,
      })
      // Counts equal to the cap mean "this many or more" (the page shows "99+").
      return send(res, 200, { read_states: readStates, unread_cap: UNREAD_COUNT_CAP })
    }

    if (at('POST', 'guilds', '*', 'channels')) {
      const guildId = path[1] as string
      await requireGuildPermission(guildId, me.userId, Permissions.MANAGE_CHANNELS)
      const body = await readJson(req)
      const channel = await createChannel(
        db,
        {
          guild_id: guildId,
          name: str(body, 'name'),
          type: 'text',
          topic: optionalStr(body, 'topic'),
          // A private channel: only its members (and the owner and administrators) see it.
          is_private: body.private === true,
        },
        // As the caller: guildstore checks MANAGE_CHANNELS and writes the audit entry.
        { actor_id: me.userId },
      )
      return send(res, 201, { channel })
    }

    if (at('GET', 'guilds', '*', 'members')) {
      const guildId = path[1] as string
      if (!(await isMemberOf(guildId, me.userId))) throw new HttpError(404, 'guild not found')
      const members = await listGuildMembers(db, guildId, { limit: 100 })
      const users = await findUsersByIds(
        db,
        members.map((m) => m.user_id),
      )
      const roles = await listGuildRoles(db, guildId)
      return send(res, 200, {
        members: users.map((u) => ({ user_id: u.id, username: u.username })),
        roles: roles.map((r) => ({ id: r.id, name: r.name, is_default: r.is_default })),
      })
    }

    if (at('POST', 'guilds', '*', 'roles')) {
      const body = await readJson(req)
      // createRole with `as` checks MANAGE_ROLES and the hierarchy, and writes the audit entry.
      const role = await createRole(
        db,
        {
          guild_id: path[1] as string,
          name: str(body, 'name'),
          permissions: body.manage_messages === true ? Permissions.MANAGE_MESSAGES : 0n,
        },
        { actor_id: me.userId },
      )
      return send(res, 201, { role: { id: role.id, name: role.name, is_default: role.is_default } })
    }

    if (at('PUT', 'guilds', '*', 'members', '*', 'roles', '*')) {
      await assignRole(
        db,
        { guild_id: path[1] as string, user_id: path[3] as string, role_id: path[5] as string },
        { actor_id: me.userId },
      )
      return send(res, 204)
    }

    if (at('GET', 'channels', '*', 'settings')) {
      const channel = await accessibleChannel(path[1] as string, me.userId)
      return send(res, 200, await channelSettings(channel, me.userId))
    }

    if (at('PUT', 'channels', '*', 'read-only')) {
      const channel = await accessibleChannel(path[1] as string, me.userId)
      if (!channel.guild_id) throw new HttpError(400, 'a direct message has no settings')
      const everyone = await everyoneRole(channel.guild_id)
      const body = await readJson(req)
      const as = { actor_id: me.userId, reason: 'read-only toggle' }
      // An @everyone overwrite that denies SEND_MESSAGES; `as` needs MANAGE_ROLES here.
      if (body.read_only === true) {
        await setChannelOverwrite(
          db,
          { channel_id: channel.id, role_id: everyone, allow: 0n, deny: Permissions.SEND_MESSAGES },
          as,
        )
      } else {
        await deleteChannelOverwrite(db, { channel_id: channel.id, role_id: everyone }, as)
      }
      return send(res, 204)
    }

    if (at('PUT', 'channels', '*', 'members', '*')) {
      const channel = await accessibleChannel(path[1] as string, me.userId)
      await addChannelMember(
        db,
        { channel_id: channel.id, user_id: path[3] as string },
        { actor_id: me.userId },
      )
      return send(res, 204)
    }

    if (at('POST', 'channels', '*', 'messages')) {
      const body = await readJson(req)
      const content = str(body, 'content')
      // `@name` mentions: the names that are users (found under the identity rule, so
      // `@ADA` is ada) become the message's mentions, which light the mention badges.
      const mentioned = await Promise.all(
        mentionedNames(content).map((name) => findUserByUsername(db, name).catch(() => undefined)),
      )
      const userIds = [...new Set(mentioned.flatMap((u) => (u ? [u.id] : [])))]
      // One statement checks (view + send, overwrites, bans; DM: participant and no
      // block) and inserts: no window between the check and the write.
      const message = await sendMessage(db, {
        channel_id: path[1] as string,
        author_id: me.userId,
        content,
        reply_to: optionalStr(body, 'reply_to'),
        mentions: userIds.length > 0 ? { user_ids: userIds } : undefined,
      })
      await bus.publish(message.channel_id, { type: 'message_created', message })
      return send(res, 201, { message })
    }

    if (at('GET', 'channels', '*', 'messages')) {
      const messages = await readChannelMessages(db, {
        user_id: me.userId,
        channel_id: path[1] as string,
        before: url.searchParams.get('before') ?? undefined,
        after: url.searchParams.get('after') ?? undefined,
        limit: optionalInt(url.searchParams, 'limit'),
      })
      return send(res, 200, {
        messages,
        ...(await decorations(path[1] as string, messages, me.userId)),
      })
    }

    if (at('GET', 'channels', '*', 'pins')) {
      const channel = await accessibleChannel(path[1] as string, me.userId)
      return send(res, 200, { messages: await listPinnedMessages(db, channel.id) })
    }

    if (at('GET', 'messages', '*')) {
      const { message, channel } = await visibleMessage(path[1] as string, me.userId)
      return send(res, 200, {
        message,
        channel: { id: channel.id, name: channel.name, guild_id: channel.guild_id },
        ...(await decorations(channel.id, [message], me.userId)),
      })
    }

    if (at('PATCH', 'messages', '*')) {
      const { message } = await visibleMessage(path[1] as string, me.userId)
      if (message.author_id !== me.userId) throw new HttpError(403, 'only the author may edit')
      const body = await readJson(req)
      // updateMessage keeps the previous version (listMessageEdits) and sets edited_at.
      const updated = await updateMessage(db, message.id, { content: str(body, 'content') })
      if (!updated) throw new HttpError(404, 'message not found')
      await bus.publish(updated.channel_id, { type: 'message_updated', message: updated })
      return send(res, 200, { message: updated })
    }

    if (at('DELETE', 'messages', '*')) {
      const { message } = await visibleMessage(path[1] as string, me.userId)
      // As the caller: the author deletes freely, anyone else needs MANAGE_MESSAGES.
      if (await deleteMessage(db, message.id, { actor_id: me.userId })) {
        await bus.publish(message.channel_id, {
          type: 'message_deleted',
          channel_id: message.channel_id,
          message_id: message.id,
        })
      }
      return send(res, 204)
    }

    if (at('GET', 'messages', '*', 'edits')) {
      const { message } = await visibleMessage(path[1] as string, me.userId)
      return send(res, 200, { edits: await listMessageEdits(db, message.id) })
    }

    if (
      at('PUT', 'messages', '*', 'reactions', '*') ||
      at('DELETE', 'messages', '*', 'reactions', '*')
    ) {
      const { message } = await visibleMessage(path[1] as string, me.userId)
      const reaction = {
        message_id: message.id,
        user_id: me.userId,
        emoji: decodeURIComponent(path[3] as string),
      }
      const changed =
        method === 'PUT' ? await addReaction(db, reaction) : await removeReaction(db, reaction)
      if (changed) await bus.publish(message.channel_id, { type: 'message_updated', message })
      return send(res, 204)
    }

    if (at('PUT', 'messages', '*', 'pin') || at('DELETE', 'messages', '*', 'pin')) {
      const { message } = await visibleMessage(path[1] as string, me.userId)
      // As the caller: MANAGE_MESSAGES in the channel, checked with the change.
      const as = { actor_id: me.userId }
      const changed =
        method === 'PUT'
          ? await pinMessage(db, { message_id: message.id }, as)
          : await unpinMessage(db, { message_id: message.id }, as)
      if (changed) await bus.publish(message.channel_id, { type: 'message_updated', message })
      return send(res, 204)
    }

    if (at('POST', 'channels', '*', 'read')) {
      // markChannelRead checks no permission: only a channel the caller can see (else 404).
      const channel = await accessibleChannel(path[1] as string, me.userId)
      const body = await readJson(req)
      await markChannelRead(db, {
        channel_id: channel.id,
        user_id: me.userId,
        message_id: str(body, 'message_id'),
      })
      return send(res, 204)
    }

    if (at('GET', 'events')) {
      const header = req.headers['last-event-id']
      const after = (Array.isArray(header) ? header[0] : header) || url.searchParams.get('after')
      return openFeed(me.userId, after || undefined, res)
    }

    if (at('GET', 'channels', '*', 'events')) {
      const channel = await accessibleChannel(path[1] as string, me.userId)
      return openStream(channel.id, res)
    }

    if (at('GET', 'search')) {
      const messages = await searchMessages(db, {
        user_id: me.userId,
        query: url.searchParams.get('q') ?? '',
        guild_id: url.searchParams.get('guild_id') ?? undefined,
        before: url.searchParams.get('before') ?? undefined,
        limit: optionalInt(url.searchParams, 'limit'),
      })
      // The channels the hits are in (searchMessages only returns channels the user can read).
      const channelIds = [...new Set(messages.map((m) => m.channel_id))]
      const channels = (await Promise.all(channelIds.map((id) => findChannelById(db, id)))).flatMap(
        (c) => (c ? [{ id: c.id, name: c.name, guild_id: c.guild_id }] : []),
      )
      return send(res, 200, { messages, channels })
    }

    throw new HttpError(404, 'no such route')
  }

  const server = createServer((req, res) => {
    route(req, res)
      .then(() => {
        // A write committed: wake every instance's feed readers now. Only a
        // hint: a lost one delays the event by one poll and never loses it.
        if (redis && req.method !== 'GET' && res.statusCode < 400) {
          publishEventHint(redis).catch(() => {})
        }
      })
      .catch((error: unknown) => {
        const known = httpError(error)
        if (!known) onError(error)
        if (res.headersSent) {
          res.end()
          return
        }
        const status = known?.status ?? 500
        send(res, status, { error: known?.message ?? 'internal error' }, known?.headers ?? {})
      })
  })
  const listenHost = options.host ?? '127.0.0.1'
  server.listen(options.port, listenHost)
  try {
    await once(server, 'listening')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new PortInUseError(options.port, listenHost)
    }
    throw error
  }
  const { address, port } = server.address() as AddressInfo
  const host = address.includes(':') ? `[${address}]` : address

  return {
    url: `http://${host}:${port}`,
    mode: redis ? 'redis' : 'single-process',
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      const stops: Promise<void>[] = []
      for (const stream of streams.values()) {
        for (const client of stream.clients) client.end()
        stops.push(stream.ready.then((stop) => stop()).catch(() => {}))
      }
      streams.clear()
      for (const feed of feeds) {
        feed.res.end()
        stops.push(feed.close().catch(() => {}))
      }
      feeds.clear()
      server.closeAllConnections()
      await Promise.all([closed, ...stops])
    },
  }
}
