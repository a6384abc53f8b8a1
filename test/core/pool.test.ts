import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { createDb, createPool, findUserByUsername } from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'

const t = useTestDatabase()

describe('createPool', () => {
  it('has the documented defaults, each overridable', async () => {
    const pool = createPool({ connectionString: t.url })
    try {
      expect(pool.options.max).toBe(20)
      expect(pool.options.connectionTimeoutMillis).toBe(30_000)
      expect(pool.options.idleTimeoutMillis).toBe(600_000)
    } finally {
      await pool.end()
    }
    const custom = createPool({ connectionString: t.url, max: 3, idleTimeoutMillis: 1000 })
    try {
      expect(custom.options.max).toBe(3)
      expect(custom.options.idleTimeoutMillis).toBe(1000)
    } finally {
      await custom.end()
    }
  })

  it('takes DATABASE_URL by default', async () => {
    const saved = process.env.DATABASE_URL
    process.env.DATABASE_URL = t.url
    try {
      const pool = createPool()
      try {
        const { rows } = await pool.query('SELECT current_database() AS db')
        expect(rows[0].db).toBe(t.name)
      } finally {
        await pool.end()
      }
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL
      else process.env.DATABASE_URL = saved
    }
  })

  it('treats an option given as undefined as absent (defaults and DATABASE_URL stay)', async () => {
    const saved = process.env.DATABASE_URL
    process.env.DATABASE_URL = t.url
    try {
      const pool = createPool({
        max: undefined,
        connectionString: undefined,
        idleTimeoutMillis: undefined,
      })
      try {
        expect(pool.options.max).toBe(20)
        expect(pool.options.idleTimeoutMillis).toBe(600_000)
        const { rows } = await pool.query('SELECT current_database() AS db')
        expect(rows[0].db).toBe(t.name)
      } finally {
        await pool.end()
      }
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL
      else process.env.DATABASE_URL = saved
    }
  })

  it('parses int8 to bigint on its own pool only, never through pg’s global parsers', async () => {
    const pool = createPool({ connectionString: t.url, max: 1 })
    const plain = new pg.Pool({ connectionString: t.url, max: 1 })
    try {
      const big = '9007199254740993' // 2^53 + 1: a Number would lose it
      const ours = await pool.query(`SELECT ${big}::int8 AS v, 7::int4 AS i`)
      expect(ours.rows[0].v).toBe(9007199254740993n)
      expect(ours.rows[0].i).toBe(7)
      const theirs = await plain.query(`SELECT ${big}::int8 AS v`)
      expect(theirs.rows[0].v).toBe(big)
      expect(pg.types.getTypeParser(20, 'text')('5')).toBe('5')
    } finally {
      await Promise.all([pool.end(), plain.end()])
    }
  })

  it('survives an idle connection’s error and reports it to onIdleError', async () => {
    const seen: Error[] = []
    const pool = createPool({
      connectionString: t.url,
      max: 2,
      application_name: 'gs_idle_error_test',
      onIdleError: (e) => seen.push(e),
    })
    try {
      await pool.query('SELECT 1')
      expect(pool.idleCount).toBe(1)
      await t.pool.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'gs_idle_error_test'`,
      )
      for (let i = 0; i < 50 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20))
      expect(seen.length).toBe(1)
      const { rows } = await pool.query('SELECT 2 AS two')
      expect(rows[0].two).toBe(2)
    } finally {
      await pool.end()
    }
  })
})

/** The names of the statements prepared on the pool's (one) connection. */
async function preparedNames(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ name: string }>('SELECT name FROM pg_prepared_statements')
  return rows.map((r) => r.name)
}

describe('createDb', () => {
  it('runs guildstore’s static queries as named prepared statements', async () => {
    const pool = createPool({ connectionString: t.url, max: 1 })
    const db = createDb(pool)
    try {
      const { prepareQuery } = await import('../../src/sql/prepared-query.ts')
      const q = prepareQuery('test.named_statement', (d, p: { n: number }) =>
        d.selectFrom('users').select('id').where('username', '=', 'x').limit(p.n),
      )
      expect(q.sql).toBe('select "id" from "users" where "username" = $1 limit $2')
      await q.execute(db, { n: 1 })
      await q.execute(db, { n: 2 })
      expect(await preparedNames(pool)).toContain(q.name)
    } finally {
      await db.destroy()
    }
  })

  it('destroy() ends the pool even when every query went straight to it', async () => {
    const pool = createPool({ connectionString: t.url, max: 2 })
    const db = createDb(pool)
    expect(await findUserByUsername(db, 'nobody-here')).toBeUndefined()
    expect(pool.totalCount).toBe(1)
    await db.destroy()
    expect(pool.ended).toBe(true)
    expect(pool.totalCount).toBe(0)
    // A second destroy is a no-op, not "Called end on pool more than once".
    await db.destroy()
  })

  it('sends a query declared unnamed without a name, on the pool and in a transaction', async () => {
    const pool = createPool({ connectionString: t.url, max: 1 })
    const db = createDb(pool)
    try {
      const { prepareQuery } = await import('../../src/sql/prepared-query.ts')
      const { registeredQueries } = await import('../../src/sql/registry.ts')
      const q = prepareQuery(
        'test.built_once_sent_unnamed',
        (d, p: { name: string }) =>
          d.selectFrom('users').select('id').where('username', '=', p.name),
        { unnamed: true },
      )
      expect(q.sql).toBe('select "id" from "users" where "username" = $1')
      expect(registeredQueries().find((r) => r.label === q.label)?.name).toBeUndefined()
      expect(await q.execute(db, { name: 'nobody' })).toEqual([])
      await db.transaction().execute((trx) => q.execute(trx, { name: 'nobody' }))
      expect(await preparedNames(pool)).not.toContain(q.name)
    } finally {
      await db.destroy()
    }
  })

  it('can run without prepared statements (for transaction-mode poolers)', async () => {
    const pool = createPool({ connectionString: t.url, max: 1 })
    const db = createDb(pool, { preparedStatements: false })
    try {
      const { prepareQuery } = await import('../../src/sql/prepared-query.ts')
      const q = prepareQuery('test.unnamed_statement', (d, p: { name: string }) =>
        d.selectFrom('users').select('id').where('username', '=', p.name),
      )
      expect(await q.execute(db, { name: 'nobody' })).toEqual([])
      expect(await preparedNames(pool)).not.toContain(q.name)
    } finally {
      await db.destroy()
    }
  })
})
