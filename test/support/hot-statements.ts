/**
 * The hot paths of guildstore, as calls on the skewed data set of
 * ./skewed-data.ts: what bench/plan-stability.ts times and
 * test/perf/plan-stability.test.ts weighs (buffers of each statement's plan).
 */
import type { Kysely } from 'kysely'
import type { DB } from '../../src/index.ts'
import {
  computePermissions,
  listChannelMessages,
  listChannelReadStates,
  listDmChannels,
  readChannelMessages,
  searchMessages,
  sendMessage,
} from '../../src/index.ts'
import type { SkewedData } from './skewed-data.ts'

/** One hot call. `write`: it writes (EXPLAIN runs it in a rolled-back transaction). */
export interface HotCall {
  name: string
  write?: boolean
  run: (db: Kysely<DB>, d: SkewedData) => Promise<unknown>
}

export const HOT_CALLS: readonly HotCall[] = [
  {
    name: 'listChannelMessages newest',
    run: (db, d) => listChannelMessages(db, d.big_channel_id, { limit: 50 }),
  },
  {
    name: 'listChannelMessages before',
    run: (db, d) => listChannelMessages(db, d.big_channel_id, { before: d.big_middle_id }),
  },
  {
    name: 'listChannelMessages after',
    run: (db, d) => listChannelMessages(db, d.big_channel_id, { after: d.big_middle_id }),
  },
  {
    name: 'listChannelMessages around (between)',
    run: (db, d) =>
      listChannelMessages(db, d.big_channel_id, {
        after: d.big_oldest_id,
        before: d.big_middle_id,
      }),
  },
  {
    name: 'readChannelMessages newest',
    run: (db, d) => readChannelMessages(db, { user_id: d.reader_id, channel_id: d.big_channel_id }),
  },
  {
    name: 'readChannelMessages before',
    run: (db, d) =>
      readChannelMessages(db, {
        user_id: d.reader_id,
        channel_id: d.big_channel_id,
        before: d.big_middle_id,
      }),
  },
  {
    name: 'sendMessage',
    write: true,
    run: (db, d) =>
      sendMessage(db, { channel_id: d.big_channel_id, author_id: d.author_id, content: 'hot' }),
  },
  {
    name: 'computePermissions guild',
    run: (db, d) => computePermissions(db, { guild_id: d.guild_id, user_id: d.reader_id }),
  },
  {
    name: 'computePermissions channel',
    run: (db, d) =>
      computePermissions(db, {
        guild_id: d.guild_id,
        user_id: d.reader_id,
        channel_id: d.big_channel_id,
      }),
  },
  {
    name: 'listChannelReadStates guild',
    run: (db, d) => listChannelReadStates(db, { user_id: d.reader_id, guild_id: d.guild_id }),
  },
  {
    name: 'listChannelReadStates DMs',
    run: (db, d) => listChannelReadStates(db, { user_id: d.dm_user_id }),
  },
  {
    name: 'listDmChannels',
    run: (db, d) => listDmChannels(db, d.dm_user_id),
  },
  {
    name: 'searchMessages rare word',
    run: (db, d) => searchMessages(db, { user_id: d.reader_id, query: d.rare_term }),
  },
  {
    name: 'searchMessages common word',
    run: (db, d) =>
      searchMessages(db, { user_id: d.reader_id, query: d.common_term, guild_id: d.guild_id }),
  },
]
