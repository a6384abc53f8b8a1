import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createPool, InvalidInputError } from '../../src/index.ts'
import { testDatabaseUrl } from '../support/env.ts'

const LIBPQ_ENV = ['DATABASE_URL', 'PGHOST', 'PGUSER', 'PGDATABASE'] as const

describe('createPool without any database settings', () => {
  const saved: Partial<Record<(typeof LIBPQ_ENV)[number], string | undefined>> = {}
  beforeEach(() => {
    for (const key of LIBPQ_ENV) {
      saved[key] = process.env[key]
      delete process.env[key]
    }
  })
  afterEach(() => {
    for (const key of LIBPQ_ENV) {
      if (saved[key] === undefined) delete process.env[key]
      else process.env[key] = saved[key]
    }
  })

  it('says that DATABASE_URL or a connectionString is missing (0.1.0: "no PostgreSQL user name specified" on first query)', () => {
    let error: unknown
    try {
      createPool()
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(InvalidInputError)
    expect((error as InvalidInputError).field).toBe('connectionString')
    expect((error as Error).message).toContain('DATABASE_URL')
    expect((error as Error).message).toContain('connectionString')
    expect(() => createPool({ max: 2 })).toThrow(/DATABASE_URL/)
  })

  it('accepts explicit libpq-style fields or DATABASE_URL', async () => {
    const url = new URL(testDatabaseUrl())
    const byFields = createPool({
      host: url.hostname,
      port: Number(url.port || 5432),
      user: url.username || 'postgres',
      database: url.pathname.slice(1),
    })
    try {
      expect((await byFields.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    } finally {
      await byFields.end()
    }
    process.env.DATABASE_URL = testDatabaseUrl()
    const byEnv = createPool()
    await byEnv.end()
  })
})

describe('createPool({ schema })', () => {
  it('starts every connection with search_path set to the schema, keeping other startup options', async () => {
    const pool = createPool({
      connectionString: testDatabaseUrl(),
      schema: 'chat_x',
      options: '-c statement_timeout=12345',
      max: 2,
    })
    try {
      const clients = await Promise.all([pool.connect(), pool.connect()])
      for (const client of clients) {
        const { rows } = await client.query(
          "SELECT current_setting('search_path') AS path, current_setting('statement_timeout') AS timeout",
        )
        expect(rows[0]).toEqual({ path: '"chat_x"', timeout: '12345ms' })
        client.release()
      }
    } finally {
      await pool.end()
    }
  })

  it.each(['Chat', 'a b', 'x;drop', 'pg_temp', '', 'information_schema', 'a'.repeat(64)])(
    'refuses the schema name %j with InvalidInputError, before connecting',
    (schema) => {
      expect(() =>
        createPool({ connectionString: 'postgres://nobody@127.0.0.1:1/x', schema }),
      ).toThrow(InvalidInputError)
    },
  )
})
