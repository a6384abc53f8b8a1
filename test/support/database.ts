import type { Kysely } from 'kysely'
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

/** Counts the rows of each named table: for asserting that nothing was written. */
export async function countRows(
  db: Kysely<DB>,
  tables: readonly (keyof DB)[] = [
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
  ],
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (const table of tables) {
    const row = await db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow()
    counts[table] = Number(row.n)
  }
  return counts
}
