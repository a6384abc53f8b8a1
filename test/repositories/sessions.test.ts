import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  createSession,
  deleteExpiredSessions,
  deleteSession,
  deleteUser,
  deleteUserSessions,
  ForeignKeyViolationError,
  findSessionByTokenHash,
  hashToken,
  InvalidInputError,
  type Session,
  UniqueViolationError,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeSession, makeUser, unknownId } from '../support/factories.ts'
import { BAD_IDS, expectInvalidAndNothingWritten } from '../support/hostile-inputs.ts'

const t = useTestDatabase()

const SESSION_KEYS = ['created_at', 'expires_at', 'id', 'ip_address', 'user_agent', 'user_id']
const inAnHour = () => new Date(Date.now() + 3_600_000)
const anHourAgo = () => new Date(Date.now() - 3_600_000)
const newTokenHash = () => hashToken(randomBytes(32).toString('base64url'))

function expectNoTokenHash(session: Session | undefined) {
  expect(session).toBeDefined()
  expect(Object.keys(session as object).sort()).toEqual(SESSION_KEYS)
}

describe('createSession', () => {
  it('creates a session and never returns the token hash', async () => {
    const user = await makeUser(t.db)
    const token_hash = newTokenHash()
    const expires_at = inAnHour()
    const session = await createSession(t.db, {
      user_id: user.id,
      token_hash,
      expires_at,
      ip_address: '192.0.2.10',
      user_agent: 'Mozilla/5.0 (test)',
    })
    expectNoTokenHash(session)
    expect(session.user_id).toBe(user.id)
    expect(session.expires_at).toEqual(expires_at)
    expect(session.ip_address).toBe('192.0.2.10')
    expect(session.user_agent).toBe('Mozilla/5.0 (test)')
    expect(session.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/)
    const raw = await t.db
      .selectFrom('sessions')
      .select('token_hash')
      .where('id', '=', session.id)
      .executeTakeFirst()
    expect(raw?.token_hash).toBe(token_hash)
  })

  it('stores IPv6 addresses and leaves optional fields null', async () => {
    const user = await makeUser(t.db)
    const v6 = await createSession(t.db, {
      user_id: user.id,
      token_hash: newTokenHash(),
      expires_at: inAnHour(),
      ip_address: '2001:db8::1',
    })
    expect(v6.ip_address).toBe('2001:db8::1')
    expect(v6.user_agent).toBeNull()
    const bare = await createSession(t.db, {
      user_id: user.id,
      token_hash: newTokenHash(),
      expires_at: inAnHour(),
    })
    expect(bare.ip_address).toBeNull()
    expect(bare.user_agent).toBeNull()
  })

  it('accepts a user agent of 1024 characters and an empty one', async () => {
    const user = await makeUser(t.db)
    const long = await createSession(t.db, {
      user_id: user.id,
      token_hash: newTokenHash(),
      expires_at: inAnHour(),
      user_agent: 'u'.repeat(1024),
    })
    expect(long.user_agent).toHaveLength(1024)
    const empty = await createSession(t.db, {
      user_id: user.id,
      token_hash: newTokenHash(),
      expires_at: inAnHour(),
      user_agent: '',
    })
    expect(empty.user_agent).toBe('')
  })

  it.each<[string, Record<string, unknown>]>([
    ['a malformed user_id', { user_id: 'nope' }],
    ['a user_id with NUL', { user_id: '0190c8a4-7e1f-7abc-8def-0123456789a\u0000' }],
    ['an uppercase token hash', { token_hash: 'A'.repeat(64) }],
    ['a 63-digit token hash', { token_hash: 'a'.repeat(63) }],
    ['a 65-digit token hash', { token_hash: 'a'.repeat(65) }],
    ['a non-hex token hash', { token_hash: 'g'.repeat(64) }],
    ['a token hash with NUL', { token_hash: `${'a'.repeat(63)}\u0000` }],
    ['an empty token hash', { token_hash: '' }],
    ['a raw token instead of its hash', { token_hash: randomBytes(32).toString('base64url') }],
    ['an invalid Date', { expires_at: new Date('nope') }],
    ['expires_at as a string', { expires_at: '2030-01-01' }],
    ['a missing expires_at', { expires_at: undefined }],
    ['a malformed IP', { ip_address: '999.1.1.1' }],
    ['a hostname as IP', { ip_address: 'example.com' }],
    ['an empty IP', { ip_address: '' }],
    ['an IP with NUL', { ip_address: '10.0.0.1\u0000' }],
    ['an IP with a lone surrogate', { ip_address: '10.0.0.1\ud800' }],
    ['a CIDR block as IP', { ip_address: '10.0.0.0/8' }],
    ['a user agent of 1025 characters', { user_agent: 'u'.repeat(1025) }],
    ['a user agent with NUL', { user_agent: 'Mozilla\u0000' }],
    ['a user agent with a lone surrogate', { user_agent: 'Mozilla\udc00' }],
  ])('refuses %s and writes nothing', async (_name, fields) => {
    const user = await makeUser(t.db)
    await expectInvalidAndNothingWritten(t.db, () =>
      createSession(t.db, {
        user_id: user.id,
        token_hash: newTokenHash(),
        expires_at: inAnHour(),
        ...fields,
      } as never),
    )
  })

  it('refuses a missing input object', async () => {
    await expectInvalidAndNothingWritten(t.db, () => createSession(t.db, null as never))
  })

  it('never puts the token hash in an error message', async () => {
    const user = await makeUser(t.db)
    const bad = `${'a'.repeat(63)}Z`
    const error = await createSession(t.db, {
      user_id: user.id,
      token_hash: bad,
      expires_at: inAnHour(),
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidInputError)
    expect((error as Error).message).not.toContain(bad)
  })

  it('refuses an unknown user with ForeignKeyViolationError', async () => {
    const before = await countRows(t.db)
    await expect(
      createSession(t.db, {
        user_id: unknownId(),
        token_hash: newTokenHash(),
        expires_at: inAnHour(),
      }),
    ).rejects.toBeInstanceOf(ForeignKeyViolationError)
    expect(await countRows(t.db)).toEqual(before)
  })

  it('refuses a duplicate token hash without leaking it', async () => {
    const user = await makeUser(t.db)
    const existing = await makeSession(t.db, user.id)
    const before = await countRows(t.db)
    const error = await createSession(t.db, {
      user_id: user.id,
      token_hash: existing.token_hash,
      expires_at: inAnHour(),
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(UniqueViolationError)
    expect((error as UniqueViolationError).constraint).toBe('sessions_token_hash_key')
    expect((error as UniqueViolationError).columns).toEqual(['token_hash'])
    expect((error as Error).message).not.toContain(existing.token_hash)
    expect(JSON.stringify((error as Error & { cause: unknown }).cause)).not.toContain(
      existing.token_hash,
    )
    expect(await countRows(t.db)).toEqual(before)
  })
})

describe('findSessionByTokenHash', () => {
  it('finds an unexpired session by the hash of its token', async () => {
    const user = await makeUser(t.db)
    const made = await makeSession(t.db, user.id, { ip_address: '10.1.2.3' })
    const found = await findSessionByTokenHash(t.db, hashToken(made.token))
    expectNoTokenHash(found)
    expect(found?.id).toBe(made.id)
    expect(found?.user_id).toBe(user.id)
    expect(found?.ip_address).toBe('10.1.2.3')
  })

  it('does not find an expired session', async () => {
    const user = await makeUser(t.db)
    const made = await makeSession(t.db, user.id, { expires_at: anHourAgo() })
    expect(await findSessionByTokenHash(t.db, made.token_hash)).toBeUndefined()
    const justNow = await makeSession(t.db, user.id, { expires_at: new Date(Date.now() - 1) })
    expect(await findSessionByTokenHash(t.db, justNow.token_hash)).toBeUndefined()
  })

  it('returns undefined for an unknown hash', async () => {
    expect(await findSessionByTokenHash(t.db, newTokenHash())).toBeUndefined()
  })

  it.each(['', 'A'.repeat(64), 'a'.repeat(63), `${'a'.repeat(63)}\u0000`, '\ud800', 64, null])(
    'refuses %j',
    async (hash) => {
      await expectInvalidAndNothingWritten(t.db, () => findSessionByTokenHash(t.db, hash as string))
    },
  )
})

describe('deleteSession / deleteUserSessions / deleteExpiredSessions', () => {
  it('deletes one session', async () => {
    const user = await makeUser(t.db)
    const a = await makeSession(t.db, user.id)
    const b = await makeSession(t.db, user.id)
    expect(await deleteSession(t.db, a.id)).toBe(true)
    expect(await deleteSession(t.db, a.id)).toBe(false)
    expect(await findSessionByTokenHash(t.db, a.token_hash)).toBeUndefined()
    expect((await findSessionByTokenHash(t.db, b.token_hash))?.id).toBe(b.id)
    expect(await deleteSession(t.db, unknownId())).toBe(false)
  })

  it("deletes all of one user's sessions and returns the count", async () => {
    const user = await makeUser(t.db)
    const other = await makeUser(t.db)
    await makeSession(t.db, user.id)
    await makeSession(t.db, user.id)
    await makeSession(t.db, user.id, { expires_at: anHourAgo() })
    const kept = await makeSession(t.db, other.id)
    expect(await deleteUserSessions(t.db, user.id)).toBe(3)
    expect(await deleteUserSessions(t.db, user.id)).toBe(0)
    expect((await findSessionByTokenHash(t.db, kept.token_hash))?.id).toBe(kept.id)
  })

  it('deletes exactly the expired sessions and returns the count', async () => {
    await deleteExpiredSessions(t.db) // leftovers of earlier tests in this file
    const user = await makeUser(t.db)
    await makeSession(t.db, user.id, { expires_at: anHourAgo() })
    await makeSession(t.db, user.id, { expires_at: new Date(Date.now() - 86_400_000) })
    await makeSession(t.db, user.id, { expires_at: new Date(Date.now() - 10) })
    const live = await makeSession(t.db, user.id)
    expect(await deleteExpiredSessions(t.db)).toBe(3)
    expect(await deleteExpiredSessions(t.db)).toBe(0)
    expect((await findSessionByTokenHash(t.db, live.token_hash))?.id).toBe(live.id)
  })

  it.each(BAD_IDS)('refuses id %j', async (id) => {
    await expectInvalidAndNothingWritten(t.db, () => deleteSession(t.db, id as string))
    await expectInvalidAndNothingWritten(t.db, () => deleteUserSessions(t.db, id as string))
  })

  it("goes with its user's account", async () => {
    const user = await makeUser(t.db)
    const session = await makeSession(t.db, user.id)
    await deleteUser(t.db, user.id)
    expect(await findSessionByTokenHash(t.db, session.token_hash)).toBeUndefined()
    const left = await t.db
      .selectFrom('sessions')
      .select('id')
      .where('user_id', '=', user.id)
      .execute()
    expect(left).toEqual([])
  })

  it('rolls back with the caller transaction', async () => {
    const user = await makeUser(t.db)
    const kept = await makeSession(t.db, user.id)
    const before = await countRows(t.db)
    await expect(
      t.db.transaction().execute(async (trx) => {
        await createSession(trx, {
          user_id: user.id,
          token_hash: newTokenHash(),
          expires_at: inAnHour(),
        })
        expect(await deleteUserSessions(trx, user.id)).toBe(2)
        throw new Error('rollback')
      }),
    ).rejects.toThrow('rollback')
    expect(await countRows(t.db)).toEqual(before)
    expect((await findSessionByTokenHash(t.db, kept.token_hash))?.id).toBe(kept.id)
  })
})
