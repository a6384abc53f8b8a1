import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { hashToken, newId } from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'

const t = useTestDatabase()
const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe('ids', () => {
  it('newId makes UUIDv7 strings that sort in creation order', () => {
    const ids = Array.from({ length: 2000 }, () => newId())
    for (const id of ids) expect(id).toMatch(V7)
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('the database default makes UUIDv7 too, ordered with the library’s', async () => {
    const before = newId()
    await new Promise((r) => setTimeout(r, 2))
    const { rows } = await t.pool.query(
      'SELECT guildstore_uuidv7()::text AS id FROM generate_series(1, 50)',
    )
    const ids = rows.map((r) => r.id as string)
    for (const id of ids) expect(id).toMatch(V7)
    expect(ids[0]! > before).toBe(true)
    const user = await t.db
      .insertInto('users')
      .values({ username: 'dflt_id' })
      .returning('id')
      .executeTakeFirstOrThrow()
    expect(user.id).toMatch(V7)
  })

  it('hashToken is the SHA-256 hex of the token', () => {
    expect(hashToken('refresh-token')).toBe(
      createHash('sha256').update('refresh-token').digest('hex'),
    )
    expect(hashToken('a')).toMatch(/^[0-9a-f]{64}$/)
  })
})
