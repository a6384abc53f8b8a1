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

const tableLists = new WeakMap<Kysely<DB>, Promise<string[]>>()

/** Every table of the database's current schema, from the catalog (once per `db` instance). */
function schemaTables(db: Kysely<DB>): Promise<string[]> {
  let list = tableLists.get(db)
  if (!list) {
    list = sql<{ name: string }>`select c.relname as name from pg_class c
      where c.relkind in ('r', 'p') and c.relnamespace = current_schema()::regnamespace
      order by c.relname`
      .execute(db)
      .then((r) => r.rows.map((row) => row.name))
    tableLists.set(db, list)
  }
  return list
}

/**
 * Counts the rows of tables: for asserting that nothing was written. By
 * default every table of the database's schema, as the catalog lists it now
 * (so a table a new migration adds is counted without a list to keep);
 * `tables` narrows it. The table names are read once per `db` instance.
 */
export async function countRows(
  db: Kysely<DB>,
  tables?: readonly (keyof DB)[],
): Promise<Record<string, number>> {
  const names = tables ?? (await schemaTables(db))
  // Table names are the catalog's own (or typed names), quoted as identifiers.
  const { rows } = await sql<Record<string, string>>`select ${sql.join(
    names.map((table) => sql`(select count(*) from ${sql.table(table)}) as ${sql.ref(table)}`),
  )}`.execute(db)
  const row = rows[0] ?? {}
  return Object.fromEntries(names.map((table) => [table, Number(row[table])]))
}
