import { createTestDatabase, type TestDatabase } from '../src/testing/index.ts'

/** The server scripts use: CODEGEN_DATABASE_URL, TEST_DATABASE_URL, DATABASE_URL, or the local one. */
export function adminUrl(env = process.env): string {
  return (
    env.CODEGEN_DATABASE_URL ??
    env.TEST_DATABASE_URL ??
    env.DATABASE_URL ??
    'postgres://postgres@127.0.0.1:5432/postgres'
  )
}

/** A fresh database with guildstore's migrations applied (a clone of the migrated template). */
export function createScratchDatabase(): Promise<TestDatabase> {
  return createTestDatabase({ url: adminUrl(), pool: { max: 1 } })
}
