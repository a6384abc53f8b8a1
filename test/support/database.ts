import { type Kysely, sql } from 'kysely'
import type pg from 'pg'
import { afterAll, beforeAll } from 'vitest'
import type { DB } from '../../src/index.ts'
import { createTestDatabase, type TestDatabase } from '../../src/testing/index.ts'
import { testDatabaseUrl } from './env.ts'

/** The database of one test file: read its fields inside tests and hooks. */
export interface FileDatabase {
  readonly db: Kysely<DB>
  readonly pool: pg.Pool
  readonly url: string
  readonly name: string
}

/**
 * Gives the calling test file its own database, cloned from the migrated
 * template before its tests and dropped after them.
 *
 * @example
 * ```ts
 * const t = useTestDatabase()
 * it('works', async () => { await createUser(t.db, { username: 'ada' }) })
 * ```
 */
export function useTestDatabase(options: { fixtures?: string[]; max?: number } = {}): FileDatabase {
  let current: TestDatabase | undefined
  beforeAll(async () => {
    current = await createTestDatabase({
      url: testDatabaseUrl(),
      ...(options.fixtures ? { fixtures: options.fixtures } : {}),
      pool: { max: options.max ?? 10 },
    })
  })
  afterAll(async () => {
    await current?.drop()
  })
  const get = (): TestDatabase => {
    if (!current) throw new Error('useTestDatabase: read it inside a test or hook')
    return current
  }
  return {
    get db() {
      return get().db
    },
    get pool() {
      return get().pool
    },
    get url() {
      return get().url
    },
    get name() {
      return get().name
    },
  }
}

/** Every table of the schema: the default of {@link countRows}. */
export const ALL_TABLES: readonly (keyof DB)[] = [
  'users',
  'sessions',
  'guilds',
  'guild_members',
  'roles',
  'member_roles',
  'channels',
  'channel_members',
  'messages',
  'message_attachments',
  'dm_channels',
  'dm_participants',
  'friendships',
  'channel_read_states',
  'message_mentions',
]

/** Counts the rows of each named table in one round trip: for asserting that nothing was written. */
export async function countRows(
  db: Kysely<DB>,
  tables: readonly (keyof DB)[] = ALL_TABLES,
): Promise<Record<string, number>> {
  // Table names come from the typed list above, never from input.
  const { rows } = await sql<Record<string, string>>`select ${sql.raw(
    tables.map((table) => `(select count(*) from "${table}") as "${table}"`).join(', '),
  )}`.execute(db)
  const row = rows[0] ?? {}
  return Object.fromEntries(tables.map((table) => [table, Number(row[table])]))
}
