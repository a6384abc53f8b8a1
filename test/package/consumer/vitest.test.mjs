// guildstore/testing under vitest, as a host service's test file would use it.
import { fileURLToPath } from 'node:url'
import { createUser, findUserByUsername, findUsersByIds } from 'guildstore'
import { createTestDatabase } from 'guildstore/testing'
import { afterAll, beforeAll, expect, test } from 'vitest'

let t
beforeAll(async () => {
  t = await createTestDatabase({
    fixtures: [fileURLToPath(new URL('./fixture.sql', import.meta.url))],
  })
})
afterAll(async () => {
  await t?.drop()
})

test('the fixture rows are in the fresh database', async () => {
  const ada = await findUserByUsername(t.db, 'fixture_ada')
  expect(ada).toMatchObject({ display_name: 'Ada (fixture)' })
  expect(ada).not.toHaveProperty('password_hash')
})

test('writes land in this database only', async () => {
  const user = await createUser(t.db, { username: 'vitest_user' })
  expect(await findUsersByIds(t.db, [user.id])).toMatchObject([{ username: 'vitest_user' }])
  const { rows } = await t.pool.query(
    'SELECT current_database() AS name, count(*)::int AS n FROM users',
  )
  expect(rows[0]).toEqual({ name: t.name, n: 2 })
})
