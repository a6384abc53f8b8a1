import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { InvalidInputError, newId, UniqueViolationError } from '../../src/index.ts'
import { inTransaction } from '../../src/sql/index.ts'
import { prepareQuery } from '../../src/sql/prepared-query.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeUser } from '../support/factories.ts'

const t = useTestDatabase()

const byIds = prepareQuery('test.users_by_ids', (db, p: { ids: string[] }) =>
  db
    .selectFrom('users')
    .select(['id', 'username'])
    .where('id', '=', sql<string>`any(${p.ids}::uuid[])`)
    .orderBy('username'),
)
const insertUser = prepareQuery('test.users_insert', (db, p: { id: string; username: string }) =>
  db
    .insertInto('users')
    .values({ id: p.id, username: p.username, status: 'online' })
    .returning(['id', 'status']),
)

describe('prepareQuery', () => {
  it('binds each call’s values into SQL built once, keeping constants', async () => {
    expect(insertUser.sql).toBe(
      'insert into "users" ("id", "username", "status") values ($1, $2, $3) returning "id", "status"',
    )
    const id = newId()
    const row = await insertUser.executeTakeFirst(t.db, { id, username: `p_${id.slice(-8)}` })
    expect(row).toEqual({ id, status: 'online' })
    const a = await makeUser(t.db)
    const b = await makeUser(t.db)
    const rows = await byIds.execute(t.db, { ids: [a.id, b.id, newId()] })
    expect(rows.map((r) => r.id).sort()).toEqual([a.id, b.id].sort())
  })

  it('maps driver errors to the typed tree', async () => {
    const user = await makeUser(t.db)
    await expect(
      insertUser.execute(t.db, { id: newId(), username: user.username.toUpperCase() }),
    ).rejects.toBeInstanceOf(UniqueViolationError)
    await expect(byIds.execute(t.db, { ids: ['not-a-uuid'] })).rejects.toBeInstanceOf(
      InvalidInputError,
    )
  })

  it('runs inside a caller’s transaction and rolls back with it', async () => {
    const before = await countRows(t.db, ['users'])
    await expect(
      t.db.transaction().execute(async (trx) => {
        await inTransaction(trx, async (inner) => {
          expect(inner).toBe(trx)
          await insertUser.execute(inner, { id: newId(), username: `tx_${Date.now()}` })
        })
        throw new Error('abort')
      }),
    ).rejects.toThrow('abort')
    expect(await countRows(t.db, ['users'])).toEqual(before)
  })
})
