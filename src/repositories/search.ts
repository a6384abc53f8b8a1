import { type Kysely, sql } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { MAX_UUID } from '../ids/uuid-bounds.ts'
import { accessibleChannelIdsSql } from '../permissions/access-sql.ts'
import { prepareQuery } from '../sql/index.ts'
import {
  assertObject,
  assertOptionalUuid,
  assertText,
  assertUuid,
  assertUuidArray,
  pageLimit,
} from '../validation/index.ts'
import { type Message, messageColumns } from './messages.ts'

/** Default page size of {@link searchMessages}. */
export const SEARCH_PAGE_DEFAULT = 25
/** Largest page size of {@link searchMessages}. */
export const SEARCH_PAGE_MAX = 100
/** Length rule of a search query. */
const QUERY = { min: 1, max: 256 } as const
/** Most channel ids a caller may pass to narrow a search. */
const MAX_CHANNEL_IDS = 1000

// Step 1 (a named prepared statement): the ids of the channels the user may
// search, narrowed by guild_id / channel_ids when given (NULL: no narrowing).
const selectSearchableChannelIds = prepareQuery(
  'search.searchable_channel_ids',
  (db, p: { user_id: string; guild_id: string | null; channel_ids: string[] | null }) =>
    db.selectNoFrom(
      sql<string[]>`array(${accessibleChannelIdsSql({
        userId: p.user_id,
        guildId: p.guild_id,
        channelIds: p.channel_ids,
        nullable: true,
      })})`.as('ids'),
    ),
)

// Step 2 (built once, sent unnamed on purpose: planned with the actual terms and ids).
const searchInChannels = prepareQuery(
  'search.messages',
  (db, p: { query: string; channel_ids: readonly string[]; before: string; limit: number }) =>
    db
      .selectFrom('messages')
      .select(messageColumns)
      .where(sql<boolean>`search @@ websearch_to_tsquery('simple', ${p.query})`)
      .where('deleted_at', 'is', null)
      .where(sql<boolean>`channel_id = any(${p.channel_ids}::uuid[])`)
      .where(sql<boolean>`id < ${p.before}::uuid`)
      .orderBy('id', 'desc')
      .limit(p.limit),
  { unnamed: true },
)

/** Input of {@link searchMessages}. */
export interface SearchMessagesInput {
  /** Whose access decides which channels are searched. */
  user_id: string
  /** Web-search syntax (`"exact phrase"`, `-not`, `or`), 1 to 256 characters. */
  query: string
  /** Only this guild's channels (so no DMs). */
  guild_id?: string | null | undefined
  /** Only these channels: intersected with the ones the user may access, never trusted. */
  channel_ids?: readonly string[] | null | undefined
  /** Keyset: only messages older than this message id (the previous page's last id). */
  before?: string | null | undefined
  /** Page size, 1 to 100; default 25. */
  limit?: number | undefined
}

/**
 * Full-text search over the messages a user may read: newest first, in pages.
 *
 * `query` is parsed with `websearch_to_tsquery('simple', …)` (the configuration
 * of the `messages.search` column), so odd syntax (unbalanced quotes, a lone
 * `-`, `or or`, only symbols) is never an error: it matches what it can, or
 * nothing. Only channels the user may access are searched — the same access
 * rule as `canAccessChannel` — and `channel_ids` / `guild_id` only narrow that
 * set. Soft-deleted messages never appear.
 *
 * Two statements: first the ids of the channels the user may access (a
 * prepared statement over their memberships and DM participations; none → `[]`
 * without a second query), then the search with those ids bound as one
 * `uuid[]`. The search is sent unnamed on purpose, so PostgreSQL plans it with
 * the actual search terms and channel ids and can use their statistics (a GIN
 * bitmap scan of `messages_search_idx` for selective terms, a backward scan of
 * the primary key for very common ones). Bound inside one statement, the ids
 * could not be estimated and the plan was 3× slower (see BENCHMARKS.md).
 *
 * @throws {InvalidInputError} when an id is not a UUID, `query` is not 1–256
 *   characters (or holds a NUL or a lone surrogate), `channel_ids` is not an
 *   array of at most 1000 UUIDs or `limit` is not an integer 1–100.
 * @example
 * ```ts
 * const page1 = await searchMessages(db, { user_id, query: '"release notes" -draft' })
 * const page2 = await searchMessages(db, { user_id, query: '"release notes" -draft', before: page1.at(-1)?.id })
 * ```
 */
export async function searchMessages(
  db: Kysely<DB>,
  input: SearchMessagesInput,
): Promise<Message[]> {
  assertObject(input, 'input')
  assertUuid(input.user_id, 'user_id')
  assertText(input.query, 'query', QUERY)
  assertOptionalUuid(input.guild_id, 'guild_id')
  if (input.channel_ids != null) assertUuidArray(input.channel_ids, 'channel_ids', MAX_CHANNEL_IDS)
  assertOptionalUuid(input.before, 'before')
  const limit = pageLimit(input.limit, SEARCH_PAGE_DEFAULT, SEARCH_PAGE_MAX)

  const channelRow = await selectSearchableChannelIds.executeTakeFirst(db, {
    user_id: input.user_id,
    guild_id: input.guild_id ?? null,
    channel_ids: input.channel_ids == null ? null : [...input.channel_ids],
  })
  const channelIds = channelRow?.ids ?? []
  if (channelIds.length === 0) return []
  return searchInChannels.execute(db, {
    query: input.query,
    channel_ids: channelIds,
    before: input.before ?? MAX_UUID,
    limit,
  })
}
