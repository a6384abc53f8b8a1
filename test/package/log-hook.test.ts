import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createDb,
  createPool,
  createUser,
  findUserByUsername,
  GuildstoreError,
  InvalidInputError,
  type QueryLogEntry,
} from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'

const t = useTestDatabase()

/** A db on the test database whose log hook records every entry. */
function loggedDb(options: { logParameters?: boolean } = {}) {
  const entries: QueryLogEntry[] = []
  const db = createDb(createPool({ connectionString: t.url, max: 2 }), {
    ...options,
    log: (entry) => entries.push(entry),
  })
  return { db, entries }
}

const secret = () => `s3cret_${randomBytes(8).toString('hex')}`

describe('createDb({ log })', () => {
  let quiet: ReturnType<typeof loggedDb>
  let verbose: ReturnType<typeof loggedDb>
  beforeAll(() => {
    quiet = loggedDb()
    verbose = loggedDb({ logParameters: true })
  })
  afterAll(async () => {
    await quiet.db.destroy()
    await verbose.db.destroy()
  })

  it('reports each query with its SQL and duration, and no parameter values by default', async () => {
    const value = secret()
    quiet.entries.length = 0
    const rows = await quiet.db
      .selectFrom('users')
      .select('id')
      .where('username', '=', value)
      .execute()
    expect(rows).toEqual([])
    expect(quiet.entries).toHaveLength(1)
    const [entry] = quiet.entries
    expect(entry?.level).toBe('query')
    expect(entry?.sql).toMatch(/^select "id" from "users" where "username" = \$1$/)
    expect(typeof entry?.durationMs).toBe('number')
    expect(entry?.durationMs).toBeGreaterThanOrEqual(0)
    expect(entry && 'parameters' in entry).toBe(false)
    expect(entry?.error).toBeUndefined()
    expect(JSON.stringify(quiet.entries)).not.toContain(value)
  })

  it('includes the bound values only with logParameters: true', async () => {
    const value = secret()
    verbose.entries.length = 0
    await verbose.db.selectFrom('users').select('id').where('username', '=', value).execute()
    expect(verbose.entries).toHaveLength(1)
    expect(verbose.entries[0]?.parameters).toEqual([value])
  })

  it('reports a failed query as level "error" with the mapped error and no values', async () => {
    const value = `not-a-uuid-${secret()}`
    quiet.entries.length = 0
    await expect(
      quiet.db.selectFrom('users').select('id').where('id', '=', value).execute(),
    ).rejects.toThrow()
    expect(quiet.entries).toHaveLength(1)
    const [entry] = quiet.entries
    expect(entry?.level).toBe('error')
    expect(entry?.sql).toContain('where "id" = $1')
    expect(entry?.error).toBeInstanceOf(InvalidInputError)
    expect(entry?.error).toBeInstanceOf(GuildstoreError)
    expect(entry?.durationMs).toBeGreaterThanOrEqual(0)
    expect(entry?.error?.message).not.toContain(value)
    expect(JSON.stringify(entry)).not.toContain(value)
  })

  it("sees the repository functions' queries, without their secrets", async () => {
    const username = `u_${randomBytes(6).toString('hex')}`
    const password_hash = `$scrypt$${secret()}`
    quiet.entries.length = 0
    const user = await createUser(quiet.db, { username, password_hash })
    expect(user.username).toBe(username)
    expect(await findUserByUsername(quiet.db, username)).toMatchObject({ id: user.id })
    expect(quiet.entries.length).toBeGreaterThanOrEqual(2)
    expect(quiet.entries.some((e) => /insert into "?users"?/i.test(e.sql))).toBe(true)
    expect(quiet.entries.every((e) => e.level === 'query')).toBe(true)
    const logged = JSON.stringify(quiet.entries)
    expect(logged).not.toContain(password_hash)
    expect(logged).not.toContain(username)
  })

  it('reports raw SQL run through the same db', async () => {
    quiet.entries.length = 0
    await sql`select ${secret()}::text as x`.execute(quiet.db)
    expect(quiet.entries).toHaveLength(1)
    expect(quiet.entries[0]?.sql).toBe('select $1::text as x')
  })
})

describe('a failing log hook', () => {
  it('never fails a query nor changes its error', async () => {
    const db = createDb(createPool({ connectionString: t.url, max: 1 }), {
      log: () => {
        throw new Error('logger broke')
      },
    })
    try {
      const user = await createUser(db, { username: `hook_${randomBytes(4).toString('hex')}` })
      expect(user.id).toBeTypeOf('string')
      await expect(sql`SELECT 1/0`.execute(db)).rejects.toThrow(/division by zero/)
      await expect(findUserByUsername(db, 'x')).rejects.toBeInstanceOf(InvalidInputError)
    } finally {
      await db.destroy()
    }
  })
})
