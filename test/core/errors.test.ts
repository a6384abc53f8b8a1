import { describe, expect, it } from 'vitest'
import {
  CheckViolationError,
  ConflictError,
  createDb,
  createPool,
  DatabaseUnavailableError,
  ForeignKeyViolationError,
  findUserById,
  GuildstoreError,
  InvalidInputError,
  mapDatabaseError,
  NotFoundError,
  newId,
  QueryError,
  UniqueViolationError,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeUser } from '../support/factories.ts'
import { freePort } from '../support/local-servers.ts'

const t = useTestDatabase()

/** Runs SQL on the test database and returns the mapped error it raised. */
async function mapped(text: string, values: unknown[] = []): Promise<GuildstoreError> {
  try {
    await t.pool.query(text, values)
  } catch (error) {
    return mapDatabaseError(error)
  }
  throw new Error('expected the query to fail')
}

describe('mapDatabaseError', () => {
  it('maps 23505 to UniqueViolationError with constraint, table and columns, and no values', async () => {
    const user = await makeUser(t.db, { email: 'Secret.Person@example.test' })
    const err = await mapped('INSERT INTO users (username, email) VALUES ($1, $2)', [
      `x${user.username}`,
      'secret.person@EXAMPLE.test',
    ])
    expect(err).toBeInstanceOf(UniqueViolationError)
    expect(err).toMatchObject({
      constraint: 'users_email_identity_key',
      table: 'users',
      columns: ['email'],
      code: 'UNIQUE_VIOLATION',
    })
    expect(err.message).not.toMatch(/secret/i)
    expect(JSON.stringify((err.cause as { detail?: string }).detail)).not.toMatch(/secret/i)
    expect(err.cause).toBeInstanceOf(Error)
  })

  it('maps 23503 to ForeignKeyViolationError', async () => {
    const err = await mapped(
      'INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, $2, now())',
      ['01890000-0000-7000-8000-000000000000', 'a'.repeat(64)],
    )
    expect(err).toBeInstanceOf(ForeignKeyViolationError)
    expect(err).toMatchObject({ table: 'sessions', constraint: 'sessions_user_id_fkey' })
  })

  it('maps check and not-null violations to CheckViolationError', async () => {
    expect(await mapped("INSERT INTO users (username) VALUES ('x')")).toBeInstanceOf(
      CheckViolationError,
    )
    expect(await mapped('INSERT INTO users (username) VALUES (NULL)')).toBeInstanceOf(
      CheckViolationError,
    )
  })

  it('maps class 22 to InvalidInputError without echoing the value', async () => {
    const bad = await mapped('SELECT $1::uuid', ['secret-not-a-uuid'])
    expect(bad).toBeInstanceOf(InvalidInputError)
    expect(bad.message).toContain('22P02')
    expect(bad.message).not.toContain('secret')
    expect(String((bad.cause as Error).message)).not.toContain('secret')
    expect(await mapped("SELECT convert_from('\\xff'::bytea, 'UTF8')")).toMatchObject({
      code: 'INVALID_INPUT',
    })
    expect(await mapped('SELECT 2147483647::int4 + 1')).toBeInstanceOf(InvalidInputError)
  })

  it('maps statement timeouts and cancellations to DatabaseUnavailableError', async () => {
    const client = await t.pool.connect()
    try {
      await client.query("SET statement_timeout = '50ms'")
      const err = await client.query('SELECT pg_sleep(1)').catch(mapDatabaseError)
      expect(err).toBeInstanceOf(DatabaseUnavailableError)
      expect(err).toMatchObject({ sqlState: '57014', retryable: true })
    } finally {
      await client.query('RESET statement_timeout')
      client.release()
    }
  })

  it('maps connection errors and other SQLSTATEs', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
      code: 'ECONNREFUSED',
    })
    expect(mapDatabaseError(refused)).toBeInstanceOf(DatabaseUnavailableError)
    expect(mapDatabaseError(new Error('Connection terminated unexpectedly'))).toBeInstanceOf(
      DatabaseUnavailableError,
    )
    const timeout = mapDatabaseError(new Error('timeout exceeded when trying to connect'))
    expect(timeout.message).toBe('timed out acquiring a database connection from the pool')
    const syntax = mapDatabaseError(
      Object.assign(new Error('syntax error at or near "x"'), { code: '42601' }),
    )
    expect(syntax).toBeInstanceOf(QueryError)
    expect((syntax as QueryError).sqlState).toBe('42601')
  })

  it('"database unavailable" names the host and port it could not reach, never the password', async () => {
    const port = await freePort()
    const pool = createPool({
      connectionString: `postgres://app:s3cr3t-pw@127.0.0.1:${port}/guildstore`,
      connectionTimeoutMillis: 30_000,
    })
    const db = createDb(pool)
    try {
      const error = await findUserById(db, newId()).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(DatabaseUnavailableError)
      expect((error as Error).message).toBe(`database unavailable (ECONNREFUSED 127.0.0.1:${port})`)
      expect((error as DatabaseUnavailableError).retryable).toBe(true)
      expect(JSON.stringify(error)).not.toContain('s3cr3t')
      expect(String((error as Error).stack)).not.toContain('s3cr3t')
    } finally {
      await db.destroy()
    }
  })

  it('names the target of DNS failures and of every address tried (AggregateError)', () => {
    const dns = Object.assign(new Error('getaddrinfo ENOTFOUND db.internal'), {
      code: 'ENOTFOUND',
      hostname: 'db.internal',
    })
    expect(mapDatabaseError(dns).message).toBe('database unavailable (ENOTFOUND db.internal)')
    const both = Object.assign(new AggregateError([], ''), {
      code: 'ECONNREFUSED',
      errors: [
        Object.assign(new Error('x'), { address: '::1', port: 5432 }),
        Object.assign(new Error('y'), { address: '127.0.0.1', port: 5432 }),
      ],
    })
    expect(mapDatabaseError(both).message).toBe(
      'database unavailable (ECONNREFUSED [::1]:5432, 127.0.0.1:5432)',
    )
  })

  it('passes guildstore errors through and keeps the tree small', () => {
    const own = new ConflictError('blocked', { reason: 'blocked' })
    expect(mapDatabaseError(own)).toBe(own)
    for (const E of [InvalidInputError, NotFoundError, ConflictError, QueryError]) {
      expect(new E('x')).toBeInstanceOf(GuildstoreError)
    }
    expect(new UniqueViolationError('x')).toBeInstanceOf(GuildstoreError)
    expect(new NotFoundError('x').name).toBe('NotFoundError')
    expect(mapDatabaseError('weird')).toBeInstanceOf(QueryError)
  })
})
