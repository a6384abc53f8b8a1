// guildstore/testing under Node's own test runner: `node --test node-test.mjs`.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createUser, findUserByUsername, findUsersByIds } from 'guildstore'
import { createTestDatabase } from 'guildstore/testing'

let t
before(async () => {
  t = await createTestDatabase({
    fixtures: [fileURLToPath(new URL('./fixture.sql', import.meta.url))],
  })
})
after(async () => {
  await t?.drop()
})

test('the fixture rows are in the fresh database', async () => {
  const ada = await findUserByUsername(t.db, 'fixture_ada')
  assert.equal(ada?.display_name, 'Ada (fixture)')
  assert.equal('password_hash' in ada, false)
})

test('writes land in this database only', async () => {
  const user = await createUser(t.db, { username: 'node_test_user' })
  const [found] = await findUsersByIds(t.db, [user.id])
  assert.equal(found?.username, 'node_test_user')
  const { rows } = await t.pool.query(
    'SELECT current_database() AS name, count(*)::int AS n FROM users',
  )
  assert.deepEqual(rows[0], { name: t.name, n: 2 })
})
