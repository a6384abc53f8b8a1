import { type Kysely, sql } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { memberChannelPermissionsSql } from '../permissions/actor-sql.ts'
import { Permissions } from '../permissions/permissions.ts'
import { prepareQuery, rawQuery } from '../sql/index.ts'
import { assertObject, assertOptionalUuid, assertUuid, pageLimit } from '../validation/index.ts'
import {
  afterBound,
  beforeBound,
  MESSAGE_PAGE_DEFAULT,
  MESSAGE_PAGE_MAX,
  PAGE_PLAN_ROWS,
} from './message-sql.ts'
import { type Message, messageColumns } from './messages.ts'
import { bitsSql, dmSql, fillSql, flag, refusal, type Verdict } from './send-statements.ts'

export { type SendMessageInput, sendMessage } from './send-statements.ts'

/** A row of the read statement: the verdict row (`content` = the verdict), then the page. */
type ReadRow = Message

const pageColumns = sql.raw(messageColumns.map((c) => `m.${c}`).join(', '))

type Cursor = 'newest' | 'before' | 'after' | 'between'

/**
 * How a read statement decides: `cached` from the stored permissions alone
 * (verdict `'miss'` when they cannot decide), `fill` with the full rule and a
 * refresh of the stored permissions, `plain` with the full rule only (for a
 * read-only transaction, where `fill` cannot write).
 */
type ReadVariant = 'cached' | 'fill' | 'plain'

const READ_NEEDS = sql.raw(`${Permissions.VIEW_CHANNEL | Permissions.READ_MESSAGE_HISTORY}::int8`)

/** The read check and one page shape, in one statement. */
function readStatement(cursor: Cursor, variant: ReadVariant) {
  const suffix = variant === 'fill' ? '' : `_${variant}`
  return prepareQuery(
    `messages.read_authorized_${cursor}${suffix}`,
    (
      db,
      p: { user_id: string; channel_id: string; before: string; after: string; limit: number },
    ) => {
      const where =
        cursor === 'before'
          ? sql` and m.seq < ${beforeBound(p.channel_id, p.before)}`
          : cursor === 'after'
            ? sql` and m.seq > ${afterBound(p.channel_id, p.after)}`
            : cursor === 'between'
              ? sql` and m.seq > ${afterBound(p.channel_id, p.after)} and m.seq < ${beforeBound(p.channel_id, p.before)}`
              : sql``
      const direction = cursor === 'after' ? sql`asc` : sql`desc`
      // The cached verdict: 'ok' when the user's stored permissions hold
      // VIEW_CHANNEL and READ_MESSAGE_HISTORY and were computed at the
      // channel's current access_version (the statement's snapshot: a read
      // is as of its snapshot, like every read), else 'miss'.
      const decide =
        variant === 'cached'
          ? sql`verdict as materialized (
  select case when exists (
    select 1 from channel_permission_cache a join channels c on c.id = a.channel_id
    where a.channel_id = ${p.channel_id}::uuid and a.user_id = ${p.user_id}::uuid
      and c.access_version = a.access_version and (~a.permissions & ${READ_NEEDS}) = 0
  ) then 'ok' else 'miss' end as verdict
)`
          : sql`ctx as materialized (
  select c.id, c.type, c.access_version from channels c where c.id = ${p.channel_id}::uuid
), perms as materialized (
  select ${memberChannelPermissionsSql(p.user_id, sql`${p.channel_id}::uuid`)} as p
), ${dmSql(p.user_id, p.channel_id)}, ${bitsSql}, verdict as materialized (
  select case
    when ch.id is null then 'no_access'
    when ch.type = 'dm' then case when (select dm.participant from dm) then 'ok' else 'no_access' end
    when not ${flag(sql`perms.p`, Permissions.VIEW_CHANNEL)} then 'no_access'
    when not ${flag(sql`perms.p`, Permissions.READ_MESSAGE_HISTORY)} then 'read_history'
    else 'ok'
  end as verdict
  from perms left join ctx ch on true
)${variant === 'fill' ? sql`, ${fillSql(p.user_id, sql`(select verdict.verdict from verdict) = 'ok'`)}` : sql``}`
      return rawQuery(
        db,
        sql<ReadRow>`with ${decide}
(select null::uuid as id, null::uuid as channel_id, null::uuid as author_id, null::uuid as reply_to,
  verdict.verdict as content, null::timestamptz as created_at, null::timestamptz as edited_at,
  null::timestamptz as deleted_at, null::int8 as seq
from verdict)
union all
(select page.* from (
  select ${pageColumns} from messages m
  where (select verdict.verdict from verdict) = 'ok'
    and m.channel_id = ${p.channel_id}::uuid and m.deleted_at is null${where}
  order by m.seq ${direction}
  limit ${PAGE_PLAN_ROWS}
) page order by page.seq ${direction} limit ${p.limit})`,
      )
    },
  )
}

const readShapes = (variant: ReadVariant) => ({
  newest: readStatement('newest', variant),
  before: readStatement('before', variant),
  after: readStatement('after', variant),
  between: readStatement('between', variant),
})
const readStatements = {
  cached: readShapes('cached'),
  fill: readShapes('fill'),
  plain: readShapes('plain'),
}

/** Input of {@link readChannelMessages}. */
export interface ReadChannelMessagesInput {
  user_id: string
  channel_id: string
  /** Only messages with an id below this one (older). */
  before?: string | null | undefined
  /** Only messages with an id above this one (newer); the oldest such page. */
  after?: string | null | undefined
  /** Page size, 1 to 100; default 50. */
  limit?: number | undefined
}

/**
 * A page of a channel's history, only if the user may read it: in ONE
 * statement, the user's permissions in the channel (`VIEW_CHANNEL` and
 * `READ_MESSAGE_HISTORY`, the same rule as `computePermissions`) or DM
 * participation, and the page. The page is what `listChannelMessages` returns
 * for the same cursors: newest first, keyset on the time-ordered id,
 * soft-deleted messages never, at most `limit` index entries read.
 *
 * The trusted `listChannelMessages` stays for hosts that check elsewhere.
 *
 * @throws {InvalidInputError} for a malformed id or a limit outside 1…100.
 * @throws {PermissionDeniedError} (reason `'missing_permission'`, `permission`
 *   `VIEW_CHANNEL`, also for an unknown channel or a DM the user is not in, or
 *   `READ_MESSAGE_HISTORY`).
 * @example
 * ```ts
 * const page = await readChannelMessages(db, { user_id, channel_id, limit: 50 })
 * const older = await readChannelMessages(db, { user_id, channel_id, before: page.at(-1)?.id })
 * ```
 */
export async function readChannelMessages(
  db: Kysely<DB>,
  input: ReadChannelMessagesInput,
): Promise<Message[]> {
  assertObject(input, 'input')
  assertUuid(input.user_id, 'user_id')
  assertUuid(input.channel_id, 'channel_id')
  const { before, after } = input
  assertOptionalUuid(before, 'before')
  assertOptionalUuid(after, 'after')
  const limit = pageLimit(input.limit, MESSAGE_PAGE_DEFAULT, MESSAGE_PAGE_MAX)
  const cursor: Cursor =
    before != null && after != null
      ? 'between'
      : before != null
        ? 'before'
        : after != null
          ? 'after'
          : 'newest'
  const params = {
    user_id: input.user_id,
    channel_id: input.channel_id,
    before: before ?? '',
    after: after ?? '',
    limit,
  }
  // The stored permissions first (one row and the channel's version); the full
  // rule only when they cannot decide, which also refreshes them.
  // Inside a transaction the full rule runs without storing them (the
  // transaction may be read-only, and a failed statement would abort it); a
  // read-only session or a standby (25006) decides without storing too.
  let rows = await readStatements.cached[cursor].execute(db, params)
  if (rows[0]?.content === 'miss') {
    if (db.isTransaction) {
      rows = await readStatements.plain[cursor].execute(db, params)
    } else {
      try {
        rows = await readStatements.fill[cursor].execute(db, params)
      } catch (error) {
        if ((error as { sqlState?: unknown }).sqlState !== '25006') throw error
        rows = await readStatements.plain[cursor].execute(db, params)
      }
    }
  }
  // The first row is the verdict (in `content`); the page follows, in index
  // order: newest first, except the `after` shape, which reads oldest first.
  const verdict = rows[0]?.content as Verdict | undefined
  if (verdict !== 'ok') throw refusal(verdict ?? 'no_access')
  const page = rows.slice(1) as Message[]
  return cursor === 'after' ? page.reverse() : page
}
