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

/** A validated row, ids lower-cased, in import order. */
interface ImportRow {
  index: number
  id: string
  channel_id: string
  author_id: string
  reply_to: string | null
  content: string
  created_at: Date
  /** `created_at` in milliseconds. */
  ms: number
  mentions: ValidMentions | undefined
}

/** `created_at` bounds: UUIDv7 time starts in 1970; `timestamptz` output stays four-digit. */
const CREATED_MIN = 0
const CREATED_MAX = Date.UTC(10000, 0, 1) - 1
/** Rows per statement on the `'insert'` route, and mention rows per statement on both. */
const BATCH = 5000
/** Bytes of COPY text sent per write. */
const COPY_CHUNK = 1 << 16

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

// The 'insert' route: one multi-row statement per batch, rows in the order
// given (ordinality), so the messages_seq trigger numbers them in that order.
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
      created_ats: Date[]
    },
  ) =>
    rawQuery(
      db,
      sql`insert into messages (id, channel_id, author_id, reply_to, content, created_at)
select r.id, r.channel_id, r.author_id, r.reply_to, r.content, r.created_at
from unnest(${p.ids}::uuid[], ${p.channel_ids}::uuid[], ${p.author_ids}::uuid[],
  ${p.reply_tos}::uuid[], ${p.contents}::text[], ${p.created_ats}::timestamptz[])
  with ordinality as r(id, channel_id, author_id, reply_to, content, created_at, n)
order by r.n`,
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

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))
const hex16 = (x: number) => `${HEX[(x >>> 8) & 255]}${HEX[x & 255]}`
const hex32 = (x: number) => `${hex16(x >>> 16)}${hex16(x & 0xffff)}`

/**
 * A UUIDv7 whose time is `ms` (48 bits), then version 7, 12 random bits, the
 * variant, 62 random bits (three words of `random` from `at`). Formatted
 * here, without an object per id: a million of them are made in one call.
 */
function idAt(ms: number, random: Uint32Array, at: number): string {
  const a = (random[at] ?? 0) & 0xfff
  const b = random[at + 1] ?? 0
  const c = random[at + 2] ?? 0
  const time = `${hex32(Math.floor(ms / 0x10000))}-${hex16(ms % 0x10000)}`
  return `${time}-7${(a >>> 8).toString(16)}${HEX[a & 255]}-${hex16(0x8000 | (b & 0x3fff))}-${hex16(b >>> 16)}${hex32(c)}`
}

/** Validates row `index`; a row without an id gets one from `random` (see {@link idAt}). */
function validateRow(row: ImportMessageInput, index: number, random: Uint32Array): ImportRow {
  assertObject(row, 'input')
  assertOptionalUuid(row.id, 'id')
  assertUuid(row.channel_id, 'channel_id')
  assertUuid(row.author_id, 'author_id')
  assertOptionalUuid(row.reply_to, 'reply_to')
  assertText(row.content, 'content', CONTENT)
  assertDate(row.created_at, 'created_at')
  const ms = row.created_at.getTime()
  if (ms < CREATED_MIN || ms > CREATED_MAX) {
    throw new InvalidInputError('created_at must be between 1970 and 9999', {
      field: 'created_at',
    })
  }
  return {
    index,
    id: row.id ? row.id.toLowerCase() : idAt(ms, random, 3 * index),
    channel_id: row.channel_id.toLowerCase(),
    author_id: row.author_id.toLowerCase(),
    reply_to: row.reply_to ? row.reply_to.toLowerCase() : null,
    content: row.content,
    created_at: row.created_at,
    ms,
    mentions: validateMentions(row.mentions),
  }
}

/**
 * Validates every row (nothing is written on any error) and orders them by
 * channel, then time, then id. New ids carry their row's time and are random
 * after it (74 bits), so only given ids are checked for repeats here (the
 * primary key refuses the rest).
 */
function validateRows(rows: readonly ImportMessageInput[]): ImportRow[] {
  const random = new Uint32Array(3 * rows.length)
  randomFillSync(random)
  const byChannel = new Map<string, ImportRow[]>()
  const given = new Set<string>()
  let index = 0
  try {
    for (; index < rows.length; index++) {
      const input = rows[index] as ImportMessageInput
      const row = validateRow(input, index, random)
      if (input.id) {
        if (given.has(row.id)) {
          throw new InvalidInputError('id is the id of an earlier row', { field: 'id' })
        }
        given.add(row.id)
      }
      const list = byChannel.get(row.channel_id)
      if (list) list.push(row)
      else byChannel.set(row.channel_id, [row])
    }
  } catch (error) {
    throw atRow(index, error)
  }
  const out: ImportRow[] = []
  for (const channel of [...byChannel.keys()].sort()) {
    const list = byChannel.get(channel) as ImportRow[]
    list.sort((x, y) => x.ms - y.ms || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
    for (const row of list) out.push(row)
  }
  return out
}

/** The first row (in input order) for which `bad` holds. */
function firstRow(rows: readonly ImportRow[], bad: (row: ImportRow) => boolean) {
  let first: ImportRow | undefined
  for (const row of rows) if (bad(row) && (!first || row.index < first.index)) first = row
  return first
}

/**
 * Checks what the rows name against the database: channels (existing, not a
 * category), authors, mentioned users and roles (of the channel's guild),
 * reply targets (live messages of the same channel, or earlier rows of this import).
 */
async function checkReferences(trx: Kysely<DB>, rows: readonly ImportRow[]): Promise<void> {
  const distinct = (values: Iterable<string>) => [...new Set(values)]
  const channels = new Map(
    (await selectChannels.execute(trx, { ids: distinct(rows.map((r) => r.channel_id)) })).map(
      (c) => [c.id, c],
    ),
  )
  const missing = firstRow(rows, (r) => !channels.has(r.channel_id))
  if (missing) {
    throw new NotFoundError(`rows[${missing.index}].channel_id names no channel`, {
      entity: 'channel',
    })
  }
  const category = firstRow(rows, (r) => channels.get(r.channel_id)?.category === true)
  if (category) {
    throw new InvalidInputError(
      `rows[${category.index}].channel_id is a category: it holds no messages`,
      {
        field: `rows[${category.index}].channel_id`,
      },
    )
  }
  const userIds = distinct(rows.flatMap((r) => [r.author_id, ...(r.mentions?.user_ids ?? [])]))
  const users = new Set((await selectUsers.execute(trx, { ids: userIds })).map((u) => u.id))
  const author = firstRow(rows, (r) => !users.has(r.author_id))
  if (author) {
    throw new NotFoundError(`rows[${author.index}].author_id names no user`, { entity: 'user' })
  }
  const mentioned = firstRow(rows, (r) => r.mentions?.user_ids.some((u) => !users.has(u)) === true)
  if (mentioned) {
    throw new InvalidInputError(
      `rows[${mentioned.index}].mentions.user_ids must be existing users`,
      {
        field: `rows[${mentioned.index}].mentions.user_ids`,
      },
    )
  }
  const roleIds = distinct(rows.flatMap((r) => r.mentions?.role_ids ?? []))
  if (roleIds.length > 0) {
    const roles = new Map(
      (await selectRoles.execute(trx, { ids: roleIds })).map((r) => [r.id, r.guild_id]),
    )
    const role = firstRow(
      rows,
      (r) =>
        r.mentions?.role_ids.some(
          (id) => roles.get(id) !== (channels.get(r.channel_id)?.guild_id ?? undefined),
        ) === true,
    )
    if (role) {
      throw new InvalidInputError(
        `rows[${role.index}].mentions.role_ids must be roles of this channel's guild`,
        { field: `rows[${role.index}].mentions.role_ids` },
      )
    }
  }
  const channelOf = new Map(rows.map((r) => [r.id, r.channel_id]))
  // `rows` is in write order: a reply within the import must name an earlier row.
  const order = new Map(rows.map((r, i) => [r.id, i]))
  const outside = distinct(
    rows.flatMap((r) => (r.reply_to !== null && !channelOf.has(r.reply_to) ? [r.reply_to] : [])),
  )
  if (outside.length > 0) {
    for (const m of await selectReplyTargets.execute(trx, { ids: outside })) {
      channelOf.set(m.id, m.channel_id)
    }
  }
  const reply = firstRow(
    rows,
    (r) =>
      r.reply_to !== null &&
      (channelOf.get(r.reply_to) !== r.channel_id ||
        (order.get(r.reply_to) ?? -1) >= (order.get(r.id) ?? 0)),
  )
  if (reply) {
    throw new InvalidInputError(
      `rows[${reply.index}].reply_to must be a live message of the same channel, or an earlier one (by created_at, id) of this import`,
      { field: `rows[${reply.index}].reply_to` },
    )
  }
}

const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' }
const escapeCopy = (value: string) => value.replace(/[\\\n\r\t]/g, (c) => COPY_ESCAPES[c] ?? c)

/** The rows as COPY text, in chunks of about {@link COPY_CHUNK} characters. */
function* copyText(rows: readonly ImportRow[]): Generator<string> {
  let chunk = ''
  for (const r of rows) {
    chunk += `${r.id}\t${r.channel_id}\t${r.author_id}\t${r.reply_to ?? '\\N'}\t${escapeCopy(r.content)}\t${r.created_at.toISOString()}\n`
    if (chunk.length >= COPY_CHUNK) {
      yield chunk
      chunk = ''
    }
  }
  if (chunk.length > 0) yield chunk
}

/** One COPY into messages, the rows in order: the messages_seq trigger numbers them as they come. */
async function copyMessages(client: pg.PoolClient, rows: readonly ImportRow[]): Promise<void> {
  const target = client.query(
    copyFrom('copy messages (id, channel_id, author_id, reply_to, content, created_at) from stdin'),
  )
  await pipeline(Readable.from(copyText(rows)), target)
}

/** The `'insert'` route: batches of {@link BATCH} rows, each one statement. */
async function insertMessages(trx: Kysely<DB>, rows: readonly ImportRow[]): Promise<void> {
  for (let at = 0; at < rows.length; at += BATCH) {
    const batch = rows.slice(at, at + BATCH)
    await insertBatch.execute(trx, {
      ids: batch.map((r) => r.id),
      channel_ids: batch.map((r) => r.channel_id),
      author_ids: batch.map((r) => r.author_id),
      reply_tos: batch.map((r) => r.reply_to),
      contents: batch.map((r) => r.content),
      created_ats: batch.map((r) => r.created_at),
    })
  }
}

/** The mention rows, in batches of {@link BATCH}. */
async function writeMentions(trx: Kysely<DB>, rows: readonly ImportRow[]): Promise<void> {
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
  for (const r of rows) {
    if (!r.mentions) continue
    for (const u of r.mentions.user_ids) add(r.id, u, null, false)
    for (const role of r.mentions.role_ids) add(r.id, null, role, false)
    if (r.mentions.everyone) add(r.id, null, null, true)
    if (p.message_ids.length >= BATCH) await flush()
  }
  await flush()
}

/**
 * Imports message history (from another chat, or a back-fill) in one
 * transaction, through `COPY`.
 *
 * - **Positions**: each channel's imported messages get the positions after
 *   its existing ones, in (`created_at`, `id`) order. They are numbered by the
 *   same trigger as every insert (migration 0020: one counter read and one
 *   counter write per channel and statement, so the cost is linear in the
 *   rows), and the channel row stays locked until commit as for a send: a
 *   concurrent `sendMessage` to that channel waits and lands after the
 *   import, and a reader never sees a gap or a reorder.
 * - **Validation first**: every row is checked before anything is written
 *   (fields, duplicate ids, then in the database: channels, authors,
 *   mentioned users and roles, reply targets); any error names the row index
 *   (`rows[i]`) and nothing is written. The rows are trusted like
 *   `createMessage`'s: no permission check, no slowmode, no timeout.
 * - **Mentions** are stored as `sendMessage` stores them (`message_mentions`
 *   rows with the message's channel, position and author).
 * - Many channels in one call are fine; rows are sent grouped by channel.
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
  if (valid.length === 0) return { imported: 0 }
  return inTransaction(db, async (trx) => {
    await checkReferences(trx, valid)
    const copied =
      method !== 'insert' &&
      !(await selectEmbedded.executeTakeFirst(trx, {}))?.embedded &&
      (await withPgClient(trx, (client) => copyMessages(client, valid))) !== undefined
    if (!copied) {
      if (method === 'copy') {
        throw new InvalidInputError(
          "options.method 'copy' needs a createDb instance over PostgreSQL",
          {
            field: 'options.method',
          },
        )
      }
      await insertMessages(trx, valid)
    }
    await writeMentions(trx, valid)
    return { imported: valid.length }
  })
}
