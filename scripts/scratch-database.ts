import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { runMigrations } from '../src/migrations/index.ts'

/** The admin URL scripts connect to: CODEGEN_DATABASE_URL, TEST_DATABASE_URL, DATABASE_URL, or the local server. */
export function adminUrl(env = process.env): string {
  return (
    env.CODEGEN_DATABASE_URL ??
    env.TEST_DATABASE_URL ??
    env.DATABASE_URL ??
    'postgres://postgres@127.0.0.1:5432/postgres'
  )
}

/** Replaces the database name of a PostgreSQL URL. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** Creates a fresh database, applies guildstore's migrations to it, and returns its URL and a drop function. */
export async function createScratchDatabase(
  prefix: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = adminUrl()
  const name = `${prefix}_${randomBytes(6).toString('hex')}`
  const client = new pg.Client({ connectionString: admin })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE ${name}`)
  } finally {
    await client.end()
  }
  const url = withDatabase(admin, name)
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  try {
    await runMigrations(pool)
  } finally {
    await pool.end()
  }
  return {
    url,
    async drop() {
      const c = new pg.Client({ connectionString: admin })
      await c.connect()
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await c.end()
      }
    },
  }
}
