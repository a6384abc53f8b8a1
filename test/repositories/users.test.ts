import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import {
  createUser,
  deleteUser,
  findUserByEmail,
  findUserById,
  findUserByUsername,
  findUserCredentials,
  findUsersByIds,
  InvalidInputError,
  newId,
  sendFriendRequest,
  setUserMfaSecret,
  setUserPassword,
  UniqueViolationError,
  type User,
  updateUser,
  updateUserStatus,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeGuild,
  makeSession,
  makeUser,
  randomEmail,
  randomUsername,
  unknownId,
  v4Id,
} from '../support/factories.ts'
import { BAD_IDS, expectInvalidAndNothingWritten } from '../support/hostile-inputs.ts'

const t = useTestDatabase()

const USER_KEYS = [
  'avatar_url',
  'created_at',
  'display_name',
  'email',
  'id',
  'status',
  'updated_at',
  'username',
]

/** The exact keys of a returned user: never a secret column. */
function expectPublicUser(user: User | undefined) {
  expect(user).toBeDefined()
  const keys = Object.keys(user as object).sort()
  expect(keys).toEqual(USER_KEYS)
  expect(keys).not.toContain('password_hash')
  expect(keys).not.toContain('mfa_secret')
}

/** Reads a user row including its secrets, straight from the table. */
const rawUser = (id: string) =>
  t.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()

describe('createUser', () => {
  it('creates a user with a UUIDv7 id and the default status', async () => {
    const username = randomUsername()
    const email = randomEmail()
    const user = await createUser(t.db, {
      username,
      email,
      password_hash: '$argon2id$v=19$hash',
      display_name: 'Ada',
    })
    expectPublicUser(user)
    expect(user.username).toBe(username)
    expect(user.email).toBe(email)
    expect(user.display_name).toBe('Ada')
    expect(user.avatar_url).toBeNull()
    expect(user.status).toBe('offline')
    expect(user.created_at).toBeInstanceOf(Date)
    expect(user.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    const raw = await rawUser(user.id)
    expect(raw?.password_hash).toBe('$argon2id$v=19$hash')
    expect(raw?.mfa_secret).toBeNull()
  })

  it('creates a user from a username alone', async () => {
    const user = await createUser(t.db, { username: randomUsername() })
    expect(user.email).toBeNull()
    expect(user.display_name).toBeNull()
    expect((await rawUser(user.id))?.password_hash).toBeNull()
  })

  it.each(['online', 'away', 'busy', 'offline'] as const)(
    'round-trips status %s',
    async (status) => {
      const user = await createUser(t.db, { username: randomUsername(), status })
      expect(user.status).toBe(status)
      expect((await findUserById(t.db, user.id))?.status).toBe(status)
    },
  )

  it('counts the username length in code points, as PostgreSQL does', async () => {
    const emoji = '😀'.repeat(32) // 64 UTF-16 units, 32 characters
    const user = await createUser(t.db, { username: emoji })
    expect(user.username).toBe(emoji)
    await expectInvalidAndNothingWritten(t.db, () =>
      createUser(t.db, { username: '😀'.repeat(33) }),
    )
  })

  it('accepts the boundary lengths', async () => {
    const local = randomUsername()
    const user = await createUser(t.db, {
      username: randomBytes(1).toString('hex'),
      display_name: 'd'.repeat(64),
      email: `${local}${'e'.repeat(320 - local.length - 2)}@x`,
    })
    expect(user.username).toHaveLength(2)
    expect(user.display_name).toHaveLength(64)
    expect(user.email).toHaveLength(320)
  })

  it.each<[string, Record<string, unknown>]>([
    ['empty username', { username: '' }],
    ['1-character username', { username: 'a' }],
    ['33-character username', { username: 'a'.repeat(33) }],
    ['username with NUL', { username: 'ab\u0000c' }],
    ['username with a lone surrogate', { username: 'ab\ud800c' }],
    ['username with a control character', { username: 'ab\u0007c' }],
    ['username with leading whitespace', { username: ' abc' }],
    ['username with trailing whitespace', { username: 'abc\t' }],
    ['whitespace-only username', { username: '    ' }],
    ['username not a string', { username: 42 }],
    ['missing username', { username: undefined }],
    ['email without @', { email: 'example.com' }],
    ['email with @ first', { email: '@example.com' }],
    ['email with @ last', { email: 'ada@' }],
    ['email of 321 characters', { email: `${'e'.repeat(309)}@example.com` }],
    ['email with NUL', { email: 'a\u0000@example.com' }],
    ['email with a lone surrogate', { email: 'a\udc00@example.com' }],
    ['empty password_hash', { password_hash: '' }],
    ['password_hash of 1025 characters', { password_hash: 'h'.repeat(1025) }],
    ['password_hash with NUL', { password_hash: 'h\u0000' }],
    ['empty display_name', { display_name: '' }],
    ['display_name of 65 characters', { display_name: 'd'.repeat(65) }],
    ['display_name with a lone surrogate', { display_name: '\ud83d' }],
    ['unknown status', { status: 'invisible' }],
    ['status of the wrong case', { status: 'ONLINE' }],
    ['null status', { status: null }],
  ])('refuses %s', async (_name, fields) => {
    await expectInvalidAndNothingWritten(t.db, () =>
      createUser(t.db, { username: randomUsername(), ...fields } as never),
    )
  })

  it('refuses a missing input object', async () => {
    await expectInvalidAndNothingWritten(t.db, () => createUser(t.db, undefined as never))
    await expectInvalidAndNothingWritten(t.db, () => createUser(t.db, null as never))
  })

  it('refuses a duplicate username in any letter case', async () => {
    const existing = await makeUser(t.db, { username: `Ada_${randomUsername()}` })
    const before = await countRows(t.db)
    const error = await createUser(t.db, { username: existing.username.toUpperCase() }).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(UniqueViolationError)
    const unique = error as UniqueViolationError
    expect(unique.constraint).toBe('users_username_identity_key')
    expect(unique.table).toBe('users')
    expect(unique.columns).toEqual(['username'])
    expect(unique.message).not.toContain(existing.username.toUpperCase())
    expect(String((unique.cause as { detail?: string }).detail)).not.toContain(
      existing.username.toUpperCase(),
    )
    expect(await countRows(t.db)).toEqual(before)
  })

  it('refuses a duplicate email in any letter case', async () => {
    const existing = await makeUser(t.db)
    const before = await countRows(t.db)
    const error = await createUser(t.db, {
      username: randomUsername(),
      email: existing.email!.toUpperCase(),
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(UniqueViolationError)
    expect((error as UniqueViolationError).constraint).toBe('users_email_identity_key')
    expect((error as UniqueViolationError).columns).toEqual(['email'])
    expect((error as Error).message).not.toContain(existing.email!.toUpperCase())
    expect(await countRows(t.db)).toEqual(before)
  })

  it('lets several users have no email', async () => {
    await createUser(t.db, { username: randomUsername() })
    const second = await createUser(t.db, { username: randomUsername(), email: null })
    expect(second.email).toBeNull()
  })
})

describe('findUserById / findUserByUsername / findUserByEmail', () => {
  it('finds by id, any UUID version and letter case', async () => {
    const made = await makeUser(t.db)
    const found = await findUserById(t.db, made.id.toUpperCase())
    expectPublicUser(found)
    expect(found?.id).toBe(made.id)
    expect(await findUserById(t.db, unknownId())).toBeUndefined()
    expect(await findUserById(t.db, v4Id())).toBeUndefined()
  })

  it('finds by username case-insensitively', async () => {
    const made = await makeUser(t.db, { username: `MiXeD_${randomUsername()}` })
    const lower = await findUserByUsername(t.db, made.username.toLowerCase())
    const upper = await findUserByUsername(t.db, made.username.toUpperCase())
    expectPublicUser(lower)
    expect(lower?.id).toBe(made.id)
    expect(upper?.id).toBe(made.id)
    expect(await findUserByUsername(t.db, randomUsername())).toBeUndefined()
  })

  it('finds by email case-insensitively', async () => {
    const made = await makeUser(t.db, { email: `Ada.${randomEmail()}` })
    const found = await findUserByEmail(t.db, made.email!.toUpperCase())
    expectPublicUser(found)
    expect(found?.id).toBe(made.id)
    expect(await findUserByEmail(t.db, randomEmail())).toBeUndefined()
  })

  it('uses the identity-key expression indexes', async () => {
    await makeUser(t.db)
    await sql`set enable_seqscan = off`.execute(t.db)
    try {
      const byName = await sql<{
        'QUERY PLAN': string
      }>`explain select id from users where guildstore_identity_key(username) = guildstore_identity_key(${'x'}::text)`.execute(
        t.db,
      )
      const byEmail = await sql<{
        'QUERY PLAN': string
      }>`explain select id from users where guildstore_identity_key(email) = guildstore_identity_key(${'x@y'}::text)`.execute(
        t.db,
      )
      expect(byName.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain(
        'users_username_identity_key',
      )
      expect(byEmail.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain(
        'users_email_identity_key',
      )
    } finally {
      await sql`reset enable_seqscan`.execute(t.db)
    }
  })

  it.each(BAD_IDS)('findUserById refuses %j', async (id) => {
    await expectInvalidAndNothingWritten(t.db, () => findUserById(t.db, id as string))
  })

  it.each(['', 'a', 'a'.repeat(33), 'ab\u0000', 'ab\ud800', 7])(
    'findUserByUsername refuses %j',
    async (username) => {
      await expectInvalidAndNothingWritten(t.db, () => findUserByUsername(t.db, username as string))
    },
  )

  it.each(['', 'ab', `${'e'.repeat(321)}`, 'a\u0000@b', 'a\udfff@b', null])(
    'findUserByEmail refuses %j',
    async (email) => {
      await expectInvalidAndNothingWritten(t.db, () => findUserByEmail(t.db, email as string))
    },
  )
})

describe('findUsersByIds', () => {
  it('finds several users in one call; unknown ids left out, duplicates once', async () => {
    const a = await makeUser(t.db)
    const b = await makeUser(t.db)
    const found = await findUsersByIds(t.db, [a.id, b.id.toUpperCase(), a.id, unknownId()])
    expect(found.map((u) => u.id).sort()).toEqual([a.id, b.id].sort())
    for (const user of found) expectPublicUser(user)
  })

  it('returns [] for no ids', async () => {
    expect(await findUsersByIds(t.db, [])).toEqual([])
  })

  it('finds 5 000 users', async () => {
    const prefix = randomUsername()
    const inserted = await sql<{ id: string }>`
      insert into users (username)
      select ${prefix} || '_' || g from generate_series(1, 5000) g
      returning id`.execute(t.db)
    const ids = inserted.rows.map((r) => r.id)
    expect(ids).toHaveLength(5000)
    const found = await findUsersByIds(t.db, ids)
    expect(found).toHaveLength(5000)
    expect(new Set(found.map((u) => u.id))).toEqual(new Set(ids))
    expectPublicUser(found[0])
  })

  it('refuses 100 000 ids with a typed error', async () => {
    const ids = Array.from({ length: 100_000 }, () => newId())
    await expectInvalidAndNothingWritten(t.db, () => findUsersByIds(t.db, ids))
  })

  it('refuses 10 001 ids and accepts 10 000', async () => {
    const ids = Array.from({ length: 10_001 }, () => newId())
    await expectInvalidAndNothingWritten(t.db, () => findUsersByIds(t.db, ids))
    expect(await findUsersByIds(t.db, ids.slice(1))).toEqual([])
  })

  it.each(BAD_IDS)('refuses an array holding %j', async (bad) => {
    await expectInvalidAndNothingWritten(t.db, () => findUsersByIds(t.db, [newId(), bad as string]))
  })

  it.each([null, undefined, 'x', {}])('refuses a non-array %j', async (ids) => {
    await expectInvalidAndNothingWritten(t.db, () => findUsersByIds(t.db, ids as never))
  })
})

describe('findUserCredentials', () => {
  it('finds the secrets by username or email, case-insensitively', async () => {
    const made = await makeUser(t.db, { mfa_secret: 'totp-secret' })
    for (const login of [
      made.username,
      made.username.toUpperCase(),
      made.email!,
      made.email!.toUpperCase(),
    ]) {
      const creds = await findUserCredentials(t.db, login)
      expect(creds).toEqual({
        id: made.id,
        password_hash: made.password_hash,
        mfa_secret: 'totp-secret',
      })
      expect(Object.keys(creds!).sort()).toEqual(['id', 'mfa_secret', 'password_hash'])
    }
  })

  it('returns undefined for an unknown login', async () => {
    expect(await findUserCredentials(t.db, randomUsername())).toBeUndefined()
    expect(await findUserCredentials(t.db, randomEmail())).toBeUndefined()
  })

  it("cannot be taken over by a username shaped like another account's email", async () => {
    const login = `${randomUsername()}@corp.example`
    const owner = await makeUser(t.db, { email: login })
    // Refused before the database (InvalidInputError) and by it (CHECK users_username_no_at).
    await expectInvalidAndNothingWritten(t.db, () => createUser(t.db, { username: login }))
    await expect(makeUser(t.db, { username: login })).rejects.toMatchObject({
      code: '23514',
      constraint: 'users_username_no_at',
    })
    expect((await findUserCredentials(t.db, login))?.id).toBe(owner.id)
    expect((await findUserCredentials(t.db, login.toUpperCase()))?.id).toBe(owner.id)
  })

  it.each(['', 'x'.repeat(321), 'ab\u0000', '\udc00ab', 5])('refuses %j', async (login) => {
    await expectInvalidAndNothingWritten(t.db, () => findUserCredentials(t.db, login as string))
  })
})

describe('updateUser', () => {
  it('sets fields, clears with null and advances updated_at', async () => {
    const made = await makeUser(t.db, { avatar_url: 'https://cdn.test/a.png' })
    const email = randomEmail()
    const updated = await updateUser(t.db, made.id, {
      display_name: 'New Name',
      email,
      avatar_url: null,
    })
    expectPublicUser(updated)
    expect(updated?.display_name).toBe('New Name')
    expect(updated?.email).toBe(email)
    expect(updated?.avatar_url).toBeNull()
    expect(updated?.username).toBe(made.username)
    expect(updated!.updated_at.getTime()).toBeGreaterThan(made.updated_at.getTime())
    const again = await updateUser(t.db, made.id, { avatar_url: 'https://cdn.test/b.png' })
    expect(again?.avatar_url).toBe('https://cdn.test/b.png')
    expect(again?.display_name).toBe('New Name')
  })

  it('returns the current row unchanged for an empty patch', async () => {
    const made = await makeUser(t.db)
    const same = await updateUser(t.db, made.id, {})
    expectPublicUser(same)
    expect(same?.updated_at).toEqual(made.updated_at)
    expect(same?.display_name).toBe(made.display_name)
  })

  it('never writes fields outside the patch rules (secrets, username)', async () => {
    const made = await makeUser(t.db)
    const result = await updateUser(t.db, made.id, {
      password_hash: 'x',
      mfa_secret: 'y',
      username: 'changed',
    } as never)
    expect(result?.username).toBe(made.username)
    const raw = await rawUser(made.id)
    expect(raw?.password_hash).toBe(made.password_hash)
    expect(raw?.mfa_secret).toBeNull()
  })

  it('returns undefined for an unknown user', async () => {
    expect(await updateUser(t.db, unknownId(), { display_name: 'x' })).toBeUndefined()
    expect(await updateUser(t.db, unknownId(), {})).toBeUndefined()
  })

  it('refuses an email taken in another letter case', async () => {
    const other = await makeUser(t.db)
    const made = await makeUser(t.db)
    const error = await updateUser(t.db, made.id, { email: other.email!.toUpperCase() }).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(UniqueViolationError)
    expect((error as UniqueViolationError).columns).toEqual(['email'])
    expect((await rawUser(made.id))?.email).toBe(made.email)
  })

  it.each<[string, Record<string, unknown>]>([
    ['empty display_name', { display_name: '' }],
    ['display_name of 65 characters', { display_name: 'x'.repeat(65) }],
    ['display_name with NUL', { display_name: 'a\u0000' }],
    ['email without @', { email: 'nope' }],
    ['email of 321 characters', { email: `${'e'.repeat(309)}@example.com` }],
    ['empty avatar_url', { avatar_url: '' }],
    ['avatar_url of 2049 characters', { avatar_url: `https://x/${'a'.repeat(2039)}` }],
    ['avatar_url with a lone surrogate', { avatar_url: 'https://x/\ud800' }],
    ['display_name not a string', { display_name: 5 }],
  ])('refuses %s and writes nothing', async (_name, patch) => {
    const made = await makeUser(t.db)
    await expectInvalidAndNothingWritten(t.db, () => updateUser(t.db, made.id, patch as never))
    expect(await rawUser(made.id)).toEqual(made)
  })

  it.each(BAD_IDS)('refuses id %j', async (id) => {
    await expectInvalidAndNothingWritten(t.db, () =>
      updateUser(t.db, id as string, { display_name: 'x' }),
    )
  })

  it('refuses a missing patch', async () => {
    const made = await makeUser(t.db)
    await expectInvalidAndNothingWritten(t.db, () => updateUser(t.db, made.id, null as never))
  })
})

describe('updateUserStatus', () => {
  it.each(['online', 'away', 'busy', 'offline'] as const)('sets %s', async (status) => {
    const made = await makeUser(t.db, { status: status === 'online' ? 'offline' : 'online' })
    const updated = await updateUserStatus(t.db, made.id, status)
    expectPublicUser(updated)
    expect(updated?.status).toBe(status)
    expect((await rawUser(made.id))?.status).toBe(status)
  })

  it('returns undefined for an unknown user', async () => {
    expect(await updateUserStatus(t.db, unknownId(), 'away')).toBeUndefined()
  })

  it.each(['invisible', '', 'Online', 'online\u0000', null])(
    'refuses status %j',
    async (status) => {
      const made = await makeUser(t.db)
      await expectInvalidAndNothingWritten(t.db, () =>
        updateUserStatus(t.db, made.id, status as never),
      )
      expect((await rawUser(made.id))?.status).toBe('offline')
    },
  )

  it.each(BAD_IDS)('refuses id %j', async (id) => {
    await expectInvalidAndNothingWritten(t.db, () => updateUserStatus(t.db, id as string, 'online'))
  })
})

describe('setUserPassword / setUserMfaSecret', () => {
  it('replaces the password hash', async () => {
    const made = await makeUser(t.db)
    expect(await setUserPassword(t.db, made.id, '$argon2id$new')).toBe(true)
    expect((await rawUser(made.id))?.password_hash).toBe('$argon2id$new')
    expect((await findUserCredentials(t.db, made.username))?.password_hash).toBe('$argon2id$new')
    expect(await setUserPassword(t.db, unknownId(), '$argon2id$new')).toBe(false)
  })

  it.each(['', 'h'.repeat(1025), 'secret\u0000hash', 'secret\ud800', null])(
    'refuses password hash %#',
    async (hash) => {
      const made = await makeUser(t.db)
      const error = await setUserPassword(t.db, made.id, hash as string).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(InvalidInputError)
      if (typeof hash === 'string' && hash.length > 0) {
        expect((error as Error).message).not.toContain(hash)
      }
      expect((await rawUser(made.id))?.password_hash).toBe(made.password_hash)
    },
  )

  it('sets and clears the MFA secret', async () => {
    const made = await makeUser(t.db)
    expect(await setUserMfaSecret(t.db, made.id, 'JBSWY3DPEHPK3PXP')).toBe(true)
    expect((await rawUser(made.id))?.mfa_secret).toBe('JBSWY3DPEHPK3PXP')
    expect(await setUserMfaSecret(t.db, made.id, null)).toBe(true)
    expect((await rawUser(made.id))?.mfa_secret).toBeNull()
    expect(await setUserMfaSecret(t.db, unknownId(), 'x')).toBe(false)
  })

  it.each(['', 's'.repeat(1025), 'se\u0000cret', '\udbff', 12])(
    'refuses MFA secret %#',
    async (secret) => {
      const made = await makeUser(t.db, { mfa_secret: 'before' })
      await expectInvalidAndNothingWritten(t.db, () =>
        setUserMfaSecret(t.db, made.id, secret as string),
      )
      expect((await rawUser(made.id))?.mfa_secret).toBe('before')
    },
  )

  it.each(BAD_IDS)('refuses id %j', async (id) => {
    await expectInvalidAndNothingWritten(t.db, () => setUserPassword(t.db, id as string, 'h'))
    await expectInvalidAndNothingWritten(t.db, () => setUserMfaSecret(t.db, id as string, null))
  })
})

describe('deleteUser', () => {
  it('deletes and cascades to sessions, friendships and owned guilds', async () => {
    const user = await makeUser(t.db)
    const friend = await makeUser(t.db)
    await makeSession(t.db, user.id)
    await makeSession(t.db, user.id)
    await t.db
      .insertInto('friendships')
      .values([
        { user_id: user.id, friend_id: friend.id, status: 'accepted' },
        { user_id: friend.id, friend_id: user.id, status: 'accepted' },
      ])
      .execute()
    const guild = await makeGuild(t.db, user.id)

    expect(await deleteUser(t.db, user.id)).toBe(true)
    expect(await findUserById(t.db, user.id)).toBeUndefined()
    const sessions = await t.db
      .selectFrom('sessions')
      .select('id')
      .where('user_id', '=', user.id)
      .execute()
    expect(sessions).toEqual([])
    const friendships = await t.db
      .selectFrom('friendships')
      .select('user_id')
      .where((eb) => eb.or([eb('user_id', '=', user.id), eb('friend_id', '=', user.id)]))
      .execute()
    expect(friendships).toEqual([])
    const guilds = await t.db.selectFrom('guilds').select('id').where('id', '=', guild.id).execute()
    expect(guilds).toEqual([])
    expect(await findUserById(t.db, friend.id)).toBeDefined()
    expect(await deleteUser(t.db, user.id)).toBe(false)
  })

  it.each(BAD_IDS)('refuses id %j', async (id) => {
    await expectInvalidAndNothingWritten(t.db, () => deleteUser(t.db, id as string))
  })
})

describe('in a caller transaction', () => {
  it('leaves nothing behind when the caller rolls back', async () => {
    const before = await countRows(t.db)
    const other = await makeUser(t.db)
    const afterSetup = await countRows(t.db)
    expect(afterSetup.users).toBe(before.users! + 1)
    await expect(
      t.db.transaction().execute(async (trx) => {
        const user = await createUser(trx, { username: randomUsername(), email: randomEmail() })
        await updateUser(trx, user.id, { display_name: 'In Trx' })
        await sendFriendRequest(trx, { from_user_id: user.id, to_user_id: other.id })
        expect((await countRows(trx)).friendships).toBe(before.friendships! + 1)
        throw new Error('rollback')
      }),
    ).rejects.toThrow('rollback')
    expect(await countRows(t.db)).toEqual(afterSetup)
  })

  it('commits with the caller', async () => {
    const user = await t.db
      .transaction()
      .execute(async (trx) => createUser(trx, { username: randomUsername() }))
    expect((await findUserById(t.db, user.id))?.username).toBe(user.username)
  })
})
