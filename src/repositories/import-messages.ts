import { randomFillSync } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { type Kysely, sql } from 'kysely'
import type pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import type { DB } from '../../codegen/db.ts'
import { InvalidInputError } from '../errors/invalid-input-error.ts'
import { NotFoundError } from '../errors/not-found-error.ts'
import { withPgClient } from '../sql/execution.ts'
import { inTransaction, prepareQuery, rawQuery } from '../sql/index.ts'
import {
  assertDate,
  assertObject,
  assertOptionalUuid,
  assertText,
  assertUuid,
} from '../validation/index.ts'
import { insertMentionRowsSql } from './message-sql.ts'
import {
  type MessageMentionsInput,
  messageFields,
  type ValidMentions,
  validateMentions,
} from './messages.ts'

/**
 * One message of a history import ({@link importMessages}): a message from
 * another chat, or a back-fill, with the time it was first posted.
 *
 * @example
 * ```ts
 * const row: ImportMessageInput = {
 *   channel_id, author_id, content: 'first!', created_at: new Date('2019-03-01T10:00:00Z'),
 *   mentions: { user_ids: [ada.id] },
 * }
 * ```
 */
export interface ImportMessageInput {
  /**
   * The message's id (a UUID not used by another message). Default: a new
   * UUIDv7 carrying `created_at`'s millisecond, so ids sort by time like
   * those of messages sent live.
   */
  id?: string | null | undefined
  channel_id: string
  author_id: string
  /** 1 to 4000 characters (code points), no NUL, well-formed Unicode. */
  content: string
  /**
   * When the message was posted (kept as `created_at`; between 1970 and
   * 9999). Positions follow it: see {@link importMessages}.
   */
  created_at: Date
  /**
   * A message of the same channel: a live message already there, or one of
   * this import that comes before this one (by `created_at`, then `id`).
   */
  reply_to?: string | null | undefined
  /** Whom the message mentions, as for `createMessage` (stored as `sendMessage` stores them). */
  mentions?: MessageMentionsInput | null | undefined
}

/**
 * Options of {@link importMessages}.
 *
 * @example
 * ```ts
 * await importMessages(db, rows, { method: 'insert' }) // no COPY (e.g. behind a proxy without it)
 * ```
 */
export interface ImportMessagesOptions {
  /**
   * How the rows reach the table: `'copy'` (`COPY … FROM STDIN`, the fast
   * path) or `'insert'` (multi-row `INSERT … SELECT FROM unnest(…)` in
   * batches). Default: `'copy'` on a `createDb` instance over a PostgreSQL
   * server, `'insert'` on an embedded PGlite (whose socket server has no COPY
   * FROM STDIN) or a Kysely instance guildstore did not make.
   */
  method?: 'copy' | 'insert' | undefined
}

/**
 * What {@link importMessages} returns.
 *
 * @example
 * ```ts
 * const { imported } = await importMessages(db, rows) // imported === rows.length
 * ```
 */
export interface ImportMessagesResult {
  /** The number of messages written. */
  imported: number
}

/**
 * The rows, validated, held by column (no object per row; row `i` is the
 * caller's `rows[i]`). What is read from a caller's row is read once, here:
 * the caller may change its objects while the import runs.
 */
interface ImportBatch {
  size: number
  /** Distinct channel ids, lower-cased, sorted (the order channels are written in). */
  channels: string[]
  /** Row → index into `channels`. */
  channel: Uint32Array
  /** Distinct author ids, lower-cased. */
  authors: string[]
  /** Row → index into `authors`. */
  author: Uint32Array
  /** `created_at` in milliseconds. */
  ms: Float64Array
  contents: string[]
  /** Given ids, lower-cased; `undefined` for a new one ({@link rowId}). */
  ids: (string | undefined)[]
  /** `reply_to` (lower-cased) of the rows that have one, by row. */
  replies: Map<number, string>
  mentions: Map<number, ValidMentions>
  /** Three random words per row, for new ids ({@link writeId}). */
  random: Uint32Array
}

/** `created_at` bounds: UUIDv7 time starts in 1970; `timestamptz` output stays four-digit. */
const CREATED_MIN = 0
const CREATED_MAX = Date.UTC(10000, 0, 1) - 1
const DAY = 86_400_000
/** Rows per statement on the `'insert'` route, and mention rows per statement on both. */
const BATCH = 5000
/** Bytes of COPY text per chunk handed to the socket. */
const COPY_CHUNK = 1 << 20
/** Bytes of a COPY line besides its content: four ids, a timestamp, a position, separators. */
const LINE_FIXED = 256

const CONTENT = messageFields.content

const selectChannels = prepareQuery('messages.import_channels', (db, p: { ids: string[] }) =>
  rawQuery(
    db,
    sql<{ id: string; guild_id: string | null; category: boolean }>`select c.id, c.guild_id,
  c.type::text = 'category' as category
from channels c where c.id = any(${p.ids}::uuid[])`,
  ),
)

const selectUsers = prepareQuery('messages.import_users', (db, p: { ids: string[] }) =>
  rawQuery(db, sql<{ id: string }>`select u.id from users u where u.id = any(${p.ids}::uuid[])`),
)

const selectRoles = prepareQuery('messages.import_roles', (db, p: { ids: string[] }) =>
  rawQuery(
    db,
    sql<{
      id: string
      guild_id: string
    }>`select r.id, r.guild_id from roles r where r.id = any(${p.ids}::uuid[])`,
  ),
)

const selectReplyTargets = prepareQuery(
  'messages.import_reply_targets',
  (db, p: { ids: string[] }) =>
    rawQuery(
      db,
      sql<{ id: string; channel_id: string }>`select m.id, m.channel_id from messages m
where m.id = any(${p.ids}::uuid[]) and m.deleted_at is null`,
    ),
)

const selectEmbedded = prepareQuery('messages.import_server', (db, _p: object) =>
  rawQuery(db, sql<{ embedded: boolean }>`select strpos(version(), 'emscripten') > 0 as embedded`),
)

// Each channel's positions for the import, taken in one statement: the counter
// moves by the channel's row count (the rows then carry their seq, so the
// messages_seq row trigger does not run), with the same UPDATE the trigger
// makes (archived_at cleared; 0022's forum trigger refuses a forum). The
// channel rows are locked in id order (deadlock-free against another import),
// until the transaction ends, as a send locks its channel.
const reservePositions = prepareQuery(
  'messages.import_positions',
  (db, p: { ids: string[]; counts: number[] }) =>
    rawQuery(
      db,
      sql<{ id: string; last_seq: string }>`with locked as (
  select c.id from channels c where c.id = any(${p.ids}::uuid[]) order by c.id for no key update
)
update channels c set last_seq = c.last_seq + n.count, archived_at = null
from locked l join unnest(${p.ids}::uuid[], ${p.counts}::int8[]) as n(id, count) on n.id = l.id
where c.id = l.id and c.type::text <> 'category'
returning c.id, c.last_seq::text as last_seq`,
    ),
)

// The 'insert' route: one multi-row statement per batch, each row with its seq.
const insertBatch = prepareQuery(
  'messages.import_insert',
  (
    db,
    p: {
      ids: string[]
      channel_ids: string[]
      author_ids: string[]
      reply_tos: (string | null)[]
      contents: string[]
      created_ats: string[]
      seqs: string[]
    },
  ) =>
    rawQuery(
      db,
      sql`insert into messages (id, channel_id, author_id, reply_to, content, created_at, seq)
select r.id, r.channel_id, r.author_id, r.reply_to, r.content, r.created_at, r.seq
from unnest(${p.ids}::uuid[], ${p.channel_ids}::uuid[], ${p.author_ids}::uuid[],
  ${p.reply_tos}::uuid[], ${p.contents}::text[], ${p.created_ats}::timestamptz[], ${p.seqs}::int8[])
  as r(id, channel_id, author_id, reply_to, content, created_at, seq)`,
    ),
)

// Mention rows copy their message's channel_id, seq and author_id, as sendMessage's do.
const insertMentions = prepareQuery(
  'messages.import_mentions',
  (
    db,
    p: {
      message_ids: string[]
      user_ids: (string | null)[]
      role_ids: (string | null)[]
      everyone: boolean[]
    },
  ) =>
    rawQuery(
      db,
      insertMentionRowsSql(
        'm',
        sql`unnest(${p.message_ids}::uuid[], ${p.user_ids}::uuid[], ${p.role_ids}::uuid[], ${p.everyone}::bool[])
  as t(message_id, user_id, role_id, everyone)
join messages m on m.id = t.message_id`,
      ),
    ),
)

/** Gives an InvalidInputError of row `index` the row's name (`rows[i].field`). */
function atRow(index: number, error: unknown): unknown {
  if (!(error instanceof InvalidInputError)) return error
  const field = `rows[${index}].${error.field ?? 'input'}`
  return new InvalidInputError(`rows[${index}].${error.message}`, { field, cause: error })
}

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1')
const DASH = 0x2d

/** Writes the low `digits` hex digits of `value` (an unsigned 32-bit integer) at `at`. */
function writeHex(buf: Buffer, at: number, value: number, digits: number): void {
  for (let d = at + digits - 1; d >= at; d--) {
    buf[d] = HEX_DIGITS[value & 15] as number
    value >>>= 4
  }
}

/**
 * Writes, at `at`, a UUIDv7 whose time is `ms` (48 bits), then version 7, 12
 * random bits, the variant, 62 random bits (three words of `random` from
 * `r`): 36 bytes, no string made.
 */
function writeId(buf: Buffer, at: number, ms: number, random: Uint32Array, r: number): void {
  writeHex(buf, at, Math.floor(ms / 0x10000), 8)
  buf[at + 8] = DASH
  writeHex(buf, at + 9, ms % 0x10000, 4)
  buf[at + 13] = DASH
  writeHex(buf, at + 14, 0x7000 | ((random[r] ?? 0) & 0xfff), 4)
  buf[at + 18] = DASH
  const b = random[r + 1] ?? 0
  writeHex(buf, at + 19, 0x8000 | (b & 0x3fff), 4)
  buf[at + 23] = DASH
  writeHex(buf, at + 24, b >>> 16, 4)
  writeHex(buf, at + 28, random[r + 2] ?? 0, 8)
}

const ID_SCRATCH = Buffer.alloc(36)

/** Row `i`'s id: the given one, or its new one as {@link writeId} writes it (kept once made). */
function rowId(b: ImportBatch, i: number): string {
  let id = b.ids[i]
  if (id === undefined) {
    writeId(ID_SCRATCH, 0, b.ms[i] as number, b.random, 3 * i)
    id = ID_SCRATCH.toString('latin1')
    b.ids[i] = id
  }
  return id
}

/**
 * The index of `value` (a UUID, checked the first time it is met) in
 * `list`, lower-cased; `seen` maps every spelling met to it, so a million rows
 * naming one channel check its id once.
 */
function internId(value: unknown, field: string, seen: Map<string, number>, list: string[]) {
  if (typeof value === 'string') {
    const known = seen.get(value)
    if (known !== undefined) return known
  }
  assertUuid(value, field)
  const lower = value.toLowerCase()
  let index = seen.get(lower)
  if (index === undefined) {
    index = list.length
    list.push(lower)
    seen.set(lower, index)
  }
  seen.set(value, index)
  return index
}

/**
 * Validates every row (nothing is written on any error). New ids carry their
 * row's time and are random after it (74 bits), so only given ids are checked
 * for repeats here (the primary key refuses the rest).
 */
function validateRows(rows: readonly ImportMessageInput[]): ImportBatch {
  const size = rows.length
  const random = new Uint32Array(3 * size)
  randomFillSync(random)
  const b: ImportBatch = {
    size,
    channels: [],
    channel: new Uint32Array(size),
    authors: [],
    author: new Uint32Array(size),
    ms: new Float64Array(size),
    contents: new Array<string>(size),
    ids: new Array<string | undefined>(size),
    replies: new Map(),
    mentions: new Map(),
    random,
  }
  const channelSeen = new Map<string, number>()
  const authorSeen = new Map<string, number>()
  const given = new Set<string>()
  let index = 0
  try {
    for (; index < size; index++) {
      const row = rows[index] as ImportMessageInput
      assertObject(row, 'input')
      const { id, reply_to, content, created_at } = row
      assertOptionalUuid(id, 'id')
      b.channel[index] = internId(row.channel_id, 'channel_id', channelSeen, b.channels)
      b.author[index] = internId(row.author_id, 'author_id', authorSeen, b.authors)
      assertOptionalUuid(reply_to, 'reply_to')
      assertText(content, 'content', CONTENT)
      assertDate(created_at, 'created_at')
      const ms = created_at.getTime()
      if (ms < CREATED_MIN || ms > CREATED_MAX) {
        throw new InvalidInputError('created_at must be between 1970 and 9999', {
          field: 'created_at',
        })
      }
      b.ms[index] = ms
      b.contents[index] = content
      if (reply_to) b.replies.set(index, reply_to.toLowerCase())
      const mentions = validateMentions(row.mentions)
      if (mentions) b.mentions.set(index, mentions)
      if (id) {
        const lower = id.toLowerCase()
        if (given.has(lower)) {
          throw new InvalidInputError('id is the id of an earlier row', { field: 'id' })
        }
        given.add(lower)
        b.ids[index] = lower
      }
    }
  } catch (error) {
    throw atRow(index, error)
  }
  // Channels in id order: renumber the rows' channel indexes.
  const sorted = [...b.channels].sort()
  const place = new Map(sorted.map((id, k) => [id, k]))
  const rank = b.channels.map((id) => place.get(id) as number)
  if (rank.some((r, k) => r !== k)) {
    for (let i = 0; i < size; i++) b.channel[i] = rank[b.channel[i] as number] as number
    b.channels = sorted
  }
  return b
}

/**
 * The rows' write order: by channel (id), then `created_at`, then id. Input
 * already in that order (checked in one pass) is not sorted.
 */
function writeOrder(b: ImportBatch): ArrayLike<number> {
  const { channel, ms } = b
  const compare = (x: number, y: number) => {
    const c =
      (channel[x] as number) - (channel[y] as number) || (ms[x] as number) - (ms[y] as number)
    if (c !== 0) return c
    const a = rowId(b, x)
    const z = rowId(b, y)
    return a < z ? -1 : a > z ? 1 : 0
  }
  let sorted = true
  for (let i = 1; i < b.size && sorted; i++) sorted = compare(i - 1, i) < 0
  const order = Array.from({ length: b.size }, (_, i) => i)
  return sorted ? order : order.sort(compare)
}

/** The first row (in input order) for which `bad` holds, or -1. */
function firstRow(b: ImportBatch, bad: (i: number) => boolean): number {
  for (let i = 0; i < b.size; i++) if (bad(i)) return i
  return -1
}

/**
 * Checks what the rows name against the database, one query per kind:
 * channels (existing, not a category), authors, mentioned users and roles (of
 * the channel's guild), reply targets (live messages of the same channel, or
 * earlier rows of this import). Rows are scanned only to name the first bad
 * one.
 */
async function checkReferences(
  trx: Kysely<DB>,
  b: ImportBatch,
  order: ArrayLike<number>,
): Promise<void> {
  const channels = new Map(
    (await selectChannels.execute(trx, { ids: b.channels })).map((c) => [c.id, c]),
  )
  const channelOf = (i: number) => b.channels[b.channel[i] as number] as string
  if (channels.size < b.channels.length) {
    const i = firstRow(b, (i) => !channels.has(channelOf(i)))
    throw new NotFoundError(`rows[${i}].channel_id names no channel`, { entity: 'channel' })
  }
  if (b.channels.some((id) => channels.get(id)?.category)) {
    const i = firstRow(b, (i) => channels.get(channelOf(i))?.category === true)
    throw new InvalidInputError(`rows[${i}].channel_id is a category: it holds no messages`, {
      field: `rows[${i}].channel_id`,
    })
  }
  const userIds = new Set(b.authors)
  const roleIds = new Set<string>()
  for (const m of b.mentions.values()) {
    for (const u of m.user_ids) userIds.add(u)
    for (const r of m.role_ids) roleIds.add(r)
  }
  const users = new Set((await selectUsers.execute(trx, { ids: [...userIds] })).map((u) => u.id))
  if (b.authors.some((id) => !users.has(id))) {
    const i = firstRow(b, (i) => !users.has(b.authors[b.author[i] as number] as string))
    throw new NotFoundError(`rows[${i}].author_id names no user`, { entity: 'user' })
  }
  for (const [i, m] of b.mentions) {
    if (m.user_ids.some((u) => !users.has(u))) {
      throw new InvalidInputError(`rows[${i}].mentions.user_ids must be existing users`, {
        field: `rows[${i}].mentions.user_ids`,
      })
    }
  }
  if (roleIds.size > 0) {
    const roles = new Map(
      (await selectRoles.execute(trx, { ids: [...roleIds] })).map((r) => [r.id, r.guild_id]),
    )
    for (const [i, m] of b.mentions) {
      const guild = channels.get(channelOf(i))?.guild_id ?? undefined
      if (m.role_ids.some((id) => roles.get(id) !== guild)) {
        throw new InvalidInputError(
          `rows[${i}].mentions.role_ids must be roles of this channel's guild`,
          { field: `rows[${i}].mentions.role_ids` },
        )
      }
    }
  }
  if (b.replies.size > 0) await checkReplies(trx, b, order)
}

/** Reply targets: a live message of the row's channel, or an earlier row (in write order) of it. */
async function checkReplies(trx: Kysely<DB>, b: ImportBatch, order: ArrayLike<number>) {
  const targets = new Set(b.replies.values())
  const place = new Uint32Array(b.size)
  const within = new Map<string, number>()
  for (let p = 0; p < b.size; p++) {
    const i = order[p] as number
    place[i] = p
    const id = b.ids[i]
    if (id !== undefined && targets.has(id)) within.set(id, i)
  }
  const outside = [...targets].filter((id) => !within.has(id))
  const live = new Map(
    outside.length === 0
      ? []
      : (await selectReplyTargets.execute(trx, { ids: outside })).map((m) => [m.id, m.channel_id]),
  )
  for (const [i, target] of b.replies) {
    const t = within.get(target)
    const ok =
      t === undefined
        ? live.get(target) === b.channels[b.channel[i] as number]
        : b.channel[t] === b.channel[i] && (place[t] as number) < (place[i] as number)
    if (!ok) {
      throw new InvalidInputError(
        `rows[${i}].reply_to must be a live message of the same channel, or an earlier one (by created_at, id) of this import`,
        { field: `rows[${i}].reply_to` },
      )
    }
  }
}

/**
 * Takes each channel's positions for its rows ({@link reservePositions});
 * returns, by channel index, the position before its first row (a `bigint`
 * only beyond 2^53).
 */
async function takePositions(trx: Kysely<DB>, b: ImportBatch): Promise<(number | bigint)[]> {
  const perChannel = new Uint32Array(b.channels.length)
  for (let i = 0; i < b.size; i++) {
    const c = b.channel[i] as number
    perChannel[c] = (perChannel[c] as number) + 1
  }
  const counts = [...perChannel]
  const taken = new Map(
    (await reservePositions.execute(trx, { ids: b.channels, counts })).map((c) => [
      c.id,
      BigInt(c.last_seq),
    ]),
  )
  return b.channels.map((id, k) => {
    const last = taken.get(id)
    if (last === undefined) {
      // checkReferences saw it a moment ago: deleted (or made a category) since
      const i = firstRow(b, (i) => b.channel[i] === k)
      throw new NotFoundError(`rows[${i}].channel_id names no channel that holds messages`, {
        entity: 'channel',
      })
    }
    const before = last - BigInt(counts[k] as number)
    return last <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(before) : before
  })
}

/**
 * The positions of the rows, asked for in write order: `next(i)` is row `i`'s
 * (a `bigint` only beyond 2^53).
 */
function positions(b: ImportBatch, before: (number | bigint)[]) {
  let current = -1
  let base: number | bigint = 0
  let k = 0
  return (i: number): number | bigint => {
    const c = b.channel[i] as number
    if (c !== current) {
      current = c
      base = before[c] as number | bigint
      k = 0
    }
    k++
    return typeof base === 'number' ? base + k : base + BigInt(k)
  }
}

/** By ASCII code: the letter COPY text escapes it with after a backslash, else 0. */
const COPY_ESCAPE = new Uint8Array(128)
for (const [c, e] of ['\\\\', '\nn', '\rr', '\tt']) {
  COPY_ESCAPE[(c as string).charCodeAt(0)] = (e as string).charCodeAt(0)
}
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/**
 * Writes `text` as COPY text (backslash, newline, carriage return and tab
 * escaped; UTF-8) at `at`, returning the bytes written: ASCII byte by byte,
 * from the first other character on through `Buffer#write`. At most 3 bytes
 * per UTF-16 unit.
 */
function writeCopyText(buf: Buffer, at: number, text: string): number {
  const start = at
  for (let j = 0; j < text.length; j++) {
    const c = text.charCodeAt(j)
    if (c >= 0x80) {
      const rest = text.slice(j).replace(/[\\\n\r\t]/g, (x) => COPY_ESCAPES[x] ?? x)
      return at - start + buf.write(rest, at, 'utf8')
    }
    const e = COPY_ESCAPE[c] as number
    if (e === 0) buf[at++] = c
    else {
      buf[at++] = 0x5c
      buf[at++] = e
    }
  }
  return at - start
}

/** Copies `bytes` (a few dozen) to `at`; returns their length. */
function put(buf: Buffer, at: number, bytes: Uint8Array): number {
  for (let j = 0; j < bytes.length; j++) buf[at + j] = bytes[j] as number
  return bytes.length
}

/** Writes a non-negative safe integer in decimal at `at`; returns the digits written. */
function writeDecimal(buf: Buffer, at: number, value: number): number {
  let digits = 1
  for (let v = value; v >= 10; v = Math.floor(v / 10)) digits++
  for (let d = at + digits - 1, v = value; d >= at; d--, v = Math.floor(v / 10)) {
    buf[d] = 48 + (v % 10)
  }
  return digits
}

/**
 * `created_at` as COPY text (`YYYY-MM-DDTHH:MM:SS.mmmZ`, 24 bytes) at `at`:
 * the date part is formatted once per day met (rows come in time order), the
 * time of day digit by digit.
 */
function timestampWriter(): (buf: Buffer, at: number, ms: number) => number {
  let day = Number.NaN
  const date = Buffer.alloc(11)
  const two = (buf: Buffer, at: number, v: number) => {
    buf[at] = 48 + Math.floor(v / 10)
    buf[at + 1] = 48 + (v % 10)
  }
  return (buf, at, ms) => {
    const d = Math.floor(ms / DAY)
    if (d !== day) {
      day = d
      date.write(new Date(d * DAY).toISOString().slice(0, 11), 'latin1')
    }
    put(buf, at, date)
    let t = ms - d * DAY
    const milli = t % 1000
    t = (t - milli) / 1000
    two(buf, at + 11, Math.floor(t / 3600))
    buf[at + 13] = 0x3a
    two(buf, at + 14, Math.floor(t / 60) % 60)
    buf[at + 16] = 0x3a
    two(buf, at + 17, t % 60)
    buf[at + 19] = 0x2e
    buf[at + 20] = 48 + Math.floor(milli / 100)
    two(buf, at + 21, milli % 100)
    buf[at + 23] = 0x5a
    return 24
  }
}

const NULL_FIELD = Buffer.from('\\N\t', 'latin1')

/**
 * The rows as COPY text, in write order, in chunks of about
 * {@link COPY_CHUNK} bytes written straight into buffers (no string per line
 * or per new id), made one chunk ahead of the socket: the server parses a
 * chunk while the next one is made.
 */
function* copyChunks(
  b: ImportBatch,
  order: ArrayLike<number>,
  before: (number | bigint)[],
): Generator<Buffer> {
  const channels = b.channels.map((id) => Buffer.from(`\t${id}\t`, 'latin1'))
  const authors = b.authors.map((id) => Buffer.from(`${id}\t`, 'latin1'))
  const timestamp = timestampWriter()
  const next = positions(b, before)
  let buf = Buffer.allocUnsafe(COPY_CHUNK)
  let at = 0
  for (let p = 0; p < b.size; p++) {
    const i = order[p] as number
    const content = b.contents[i] as string
    const room = LINE_FIXED + 3 * content.length
    if (at + room > buf.length) {
      yield buf.subarray(0, at)
      buf = Buffer.allocUnsafe(Math.max(COPY_CHUNK, room))
      at = 0
    }
    const id = b.ids[i]
    if (id === undefined) {
      writeId(buf, at, b.ms[i] as number, b.random, 3 * i)
      at += 36
    } else at += writeCopyText(buf, at, id)
    at += put(buf, at, channels[b.channel[i] as number] as Buffer)
    at += put(buf, at, authors[b.author[i] as number] as Buffer)
    const reply = b.replies.size > 0 ? b.replies.get(i) : undefined
    if (reply === undefined) at += put(buf, at, NULL_FIELD)
    else {
      at += writeCopyText(buf, at, reply)
      buf[at++] = 0x09
    }
    at += writeCopyText(buf, at, content)
    buf[at++] = 0x09
    at += timestamp(buf, at, b.ms[i] as number)
    buf[at++] = 0x09
    const seq = next(i)
    at +=
      typeof seq === 'number' ? writeDecimal(buf, at, seq) : buf.write(String(seq), at, 'latin1')
    buf[at++] = 0x0a
  }
  if (at > 0) yield buf.subarray(0, at)
}

/** One COPY into messages, each row with its position (so no row trigger numbers it). */
async function copyMessages(
  client: pg.PoolClient,
  b: ImportBatch,
  order: ArrayLike<number>,
  before: (number | bigint)[],
): Promise<void> {
  const target = client.query(
    copyFrom(
      'copy messages (id, channel_id, author_id, reply_to, content, created_at, seq) from stdin',
    ),
  )
  await pipeline(Readable.from(copyChunks(b, order, before), { objectMode: false }), target)
}

/**
 * The `'insert'` route: batches of {@link BATCH} rows, each one statement,
 * the next batch built while the server runs the one before.
 */
async function insertMessages(
  trx: Kysely<DB>,
  b: ImportBatch,
  order: ArrayLike<number>,
  before: (number | bigint)[],
): Promise<void> {
  const empty = () => ({
    ids: [] as string[],
    channel_ids: [] as string[],
    author_ids: [] as string[],
    reply_tos: [] as (string | null)[],
    contents: [] as string[],
    created_ats: [] as string[],
    seqs: [] as string[],
  })
  let running: Promise<unknown> | undefined
  const send = async (batch: ReturnType<typeof empty>) => {
    await running
    running = insertBatch.execute(trx, batch)
    // let it reach the socket before the next batch is built
    await new Promise((resolve) => setImmediate(resolve))
  }
  const next = positions(b, before)
  let p = empty()
  for (let k = 0; k < b.size; k++) {
    const i = order[k] as number
    p.ids.push(rowId(b, i))
    p.channel_ids.push(b.channels[b.channel[i] as number] as string)
    p.author_ids.push(b.authors[b.author[i] as number] as string)
    p.reply_tos.push(b.replies.get(i) ?? null)
    p.contents.push(b.contents[i] as string)
    p.created_ats.push(new Date(b.ms[i] as number).toISOString())
    p.seqs.push(String(next(i)))
    if (p.ids.length === BATCH) {
      await send(p)
      p = empty()
    }
  }
  if (p.ids.length > 0) await send(p)
  await running
}

/** The mention rows, in write order, in batches of {@link BATCH}. */
async function writeMentions(
  trx: Kysely<DB>,
  b: ImportBatch,
  order: ArrayLike<number>,
): Promise<void> {
  const p = {
    message_ids: [] as string[],
    user_ids: [] as (string | null)[],
    role_ids: [] as (string | null)[],
    everyone: [] as boolean[],
  }
  const add = (
    message_id: string,
    user_id: string | null,
    role_id: string | null,
    all: boolean,
  ) => {
    p.message_ids.push(message_id)
    p.user_ids.push(user_id)
    p.role_ids.push(role_id)
    p.everyone.push(all)
  }
  const flush = async () => {
    if (p.message_ids.length === 0) return
    await insertMentions.execute(trx, p)
    for (const list of Object.values(p)) list.length = 0
  }
  for (let k = 0; k < b.size; k++) {
    const i = order[k] as number
    const m = b.mentions.get(i)
    if (!m) continue
    const id = rowId(b, i)
    for (const u of m.user_ids) add(id, u, null, false)
    for (const role of m.role_ids) add(id, null, role, false)
    if (m.everyone) add(id, null, null, true)
    if (p.message_ids.length >= BATCH) await flush()
  }
  await flush()
}

/**
 * Imports message history (from another chat, or a back-fill) in one
 * transaction, through `COPY`.
 *
 * - **Positions**: each channel's imported messages get the positions after
 *   its existing ones, in (`created_at`, `id`) order. They are taken in one
 *   statement before the rows are written: each channel's counter moves by
 *   its row count (the `UPDATE` a send makes: a thread is unarchived, a forum
 *   refuses), the channel rows locked in id order, and every row is written
 *   with its `seq`, so the numbering row trigger does not run (0020). The
 *   channel row stays locked until commit as for a send: a concurrent
 *   `sendMessage` to that channel waits and lands after the import, and a
 *   reader never sees a gap or a reorder.
 * - **Cost** (issue 23): validation and reference checks make nothing per row
 *   but the check (one query per kind of reference); input already in write
 *   order is not sorted; the COPY text is written into 1 MiB buffers (new ids
 *   and timestamps as bytes, no string per line), each made while the server
 *   parses the one before. See BENCHMARKS.md, "importMessages after profiling".
 * - **Validation first**: every row is checked before anything is written
 *   (fields, duplicate ids, then in the database: channels, authors,
 *   mentioned users and roles, reply targets); any error names the row index
 *   (`rows[i]`) and nothing is written. The rows are trusted like
 *   `createMessage`'s: no permission check, no slowmode, no timeout.
 * - **Mentions** are stored as `sendMessage` stores them (`message_mentions`
 *   rows with the message's channel, position and author).
 * - Many channels in one call are fine; rows are sent grouped by channel
 *   (channels in id order).
 *
 * Inside a caller's transaction it writes there (the channel rows stay locked
 * until that transaction ends). Under REPEATABLE READ or SERIALIZABLE it is
 * correct or refuses: a send to one of the channels committed after the
 * caller's snapshot makes it fail with a retryable `DatabaseUnavailableError`
 * (40001), as two sends do.
 *
 * @returns how many messages were written (all of `rows`).
 * @throws {InvalidInputError} for a malformed row (naming `rows[i]` and the
 *   field), a duplicate id, a category channel, a mention of an unknown user
 *   or of a role not of the channel's guild, a `reply_to` that is not a
 *   message of the same channel. Nothing is written.
 * @throws {NotFoundError} when a channel (`entity: 'channel'`) or an author
 *   (`'user'`) does not exist. Nothing is written.
 * @throws {UniqueViolationError} when a given id is already a message's.
 * @example
 * ```ts
 * const { imported } = await importMessages(db, exported.map((m) => ({
 *   channel_id, author_id: users.get(m.author), content: m.text, created_at: new Date(m.ts),
 * })))
 * ```
 */
export async function importMessages(
  db: Kysely<DB>,
  rows: readonly ImportMessageInput[],
  options: ImportMessagesOptions = {},
): Promise<ImportMessagesResult> {
  if (!Array.isArray(rows)) throw new InvalidInputError('rows must be an array', { field: 'rows' })
  assertObject(options, 'options')
  const method = options.method
  if (method !== undefined && method !== 'copy' && method !== 'insert') {
    throw new InvalidInputError("options.method must be 'copy' or 'insert'", {
      field: 'options.method',
    })
  }
  const valid = validateRows(rows)
  if (valid.size === 0) return { imported: 0 }
  const order = writeOrder(valid)
  return inTransaction(db, async (trx) => {
    await checkReferences(trx, valid, order)
    // The route is known before a position is taken: a refusal writes nothing.
    const copied =
      method !== 'insert' &&
      !(await selectEmbedded.executeTakeFirst(trx, {}))?.embedded &&
      (await withPgClient(trx, async (client) =>
        copyMessages(client, valid, order, await takePositions(trx, valid)),
      )) !== undefined
    if (!copied) {
      if (method === 'copy') {
        throw new InvalidInputError(
          "options.method 'copy' needs a createDb instance over PostgreSQL",
          {
            field: 'options.method',
          },
        )
      }
      await insertMessages(trx, valid, order, await takePositions(trx, valid))
    }
    if (valid.mentions.size > 0) await writeMentions(trx, valid, order)
    return { imported: valid.size }
  })
}
