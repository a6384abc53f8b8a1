/**
 * Secrets never leak: no returned row (deeply) carries password_hash,
 * mfa_secret or token_hash except findUserCredentials; errors for duplicates
 * carry no values (message, String, JSON, util.inspect with its cause); the
 * log hook carries no parameter values unless asked to.
 */
import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import * as gs from '../../src/index.ts'
import { createDb, type QueryLogEntry, UniqueViolationError } from '../../src/index.ts'
import { useTestDatabase } from '../support/database.ts'

const t = useTestDatabase()

const FORBIDDEN = ['password_hash', 'mfa_secret', 'token_hash']

/** Paths of forbidden keys anywhere in `value`. */
function forbiddenKeys(value: unknown, path = '$', seen = new Set<unknown>()): string[] {
  if (value === null || typeof value !== 'object' || seen.has(value)) return []
  seen.add(value)
  const found: string[] = []
  for (const [key, child] of Object.entries(value)) {
    if (FORBIDDEN.includes(key)) found.push(`${path}.${key}`)
    found.push(...forbiddenKeys(child, `${path}.${key}`, seen))
  }
  return found
}

const secret = (label: string) => `SECRET_${label}_${randomBytes(8).toString('hex')}`

describe('secrets', () => {
  it('no function returning users, sessions or DM rows carries a secret column', async () => {
    const db = t.db
    const passwordA = secret('pw')
    const a = await gs.createUser(db, {
      username: `sa_${randomBytes(4).toString('hex')}`,
      email: `${randomBytes(4).toString('hex')}@example.test`,
      password_hash: passwordA,
    })
    const b = await gs.createUser(db, {
      username: `sb_${randomBytes(4).toString('hex')}`,
      password_hash: secret('pw'),
    })
    const c = await gs.createUser(db, { username: `sc_${randomBytes(4).toString('hex')}` })
    await gs.setUserMfaSecret(db, a.id, secret('mfa'))
    await gs.setUserMfaSecret(db, b.id, secret('mfa'))
    const tokenHash = gs.hashToken(secret('token'))
    const results: Record<string, unknown> = {}
    results.createUser = a
    results.createSession = await gs.createSession(db, {
      user_id: a.id,
      token_hash: tokenHash,
      expires_at: new Date(Date.now() + 60_000),
      user_agent: 'ua',
    })
    results.findSessionByTokenHash = await gs.findSessionByTokenHash(db, tokenHash)
    expect(results.findSessionByTokenHash).toBeDefined()
    results.findUserById = await gs.findUserById(db, a.id)
    results.findUserByUsername = await gs.findUserByUsername(db, a.username)
    results.findUserByEmail = await gs.findUserByEmail(db, a.email!)
    results.findUsersByIds = await gs.findUsersByIds(db, [a.id, b.id, c.id])
    results.updateUser = await gs.updateUser(db, a.id, { display_name: 'Ada' })
    results.updateUserStatus = await gs.updateUserStatus(db, a.id, 'online')
    results.sendFriendRequest = await gs.sendFriendRequest(db, {
      from_user_id: a.id,
      to_user_id: b.id,
    })
    results.listFriendRequests = await gs.listFriendRequests(db, b.id)
    results.acceptFriendRequest = await gs.acceptFriendRequest(db, {
      user_id: b.id,
      requester_id: a.id,
    })
    results.listFriends = await gs.listFriends(db, a.id)
    await gs.sendFriendRequest(db, { from_user_id: c.id, to_user_id: a.id })
    results.listFriendRequestsPending = await gs.listFriendRequests(db, a.id)
    results.findOrCreateDmChannel = await gs.findOrCreateDmChannel(db, {
      user_id: a.id,
      other_user_id: b.id,
    })
    const dm = (results.findOrCreateDmChannel as { channel: { id: string } }).channel
    const msg = await gs.createMessage(db, { channel_id: dm.id, author_id: a.id, content: 'hi' })
    results.listDmChannelsA = await gs.listDmChannels(db, a.id)
    results.listDmChannelsB = await gs.listDmChannels(db, b.id)
    await gs.markDmRead(db, { channel_id: dm.id, user_id: b.id, message_id: msg.id })
    const guild = await gs.createGuild(db, { name: 'g', owner_id: a.id })
    results.createGuild = guild
    results.addGuildMember = await gs.addGuildMember(db, { guild_id: guild.id, user_id: b.id })
    results.listGuildMembers = await gs.listGuildMembers(db, guild.id)
    results.findGuildMember = await gs.findGuildMember(db, { guild_id: guild.id, user_id: b.id })
    results.blockUser = await gs.blockUser(db, { user_id: c.id, blocked_user_id: a.id })
    results.transferGuildOwnership = await gs.transferGuildOwnership(db, {
      guild_id: guild.id,
      new_owner_id: b.id,
    })

    expect(forbiddenKeys(results)).toEqual([])
    // Nor any secret value anywhere, whatever the key.
    const text = inspect(results, { depth: 10 })
    expect(text).not.toContain('SECRET_')
    expect(text).not.toContain(tokenHash)

    // The one exception returns exactly the credentials.
    const creds = await gs.findUserCredentials(db, a.username)
    expect(creds?.password_hash).toBe(passwordA)
    expect(creds).toHaveProperty('mfa_secret')
    expect(forbiddenKeys(creds).sort()).toEqual(['$.mfa_secret', '$.password_hash'])
  })

  it('duplicate username / email / token_hash errors carry no values (message, String, JSON, inspect with cause)', async () => {
    const db = t.db
    const username = `dupe_${randomBytes(5).toString('hex')}`
    const email = `${randomBytes(6).toString('hex')}@dupe.test`
    const user = await gs.createUser(db, { username, email })
    const tokenHash = gs.hashToken(secret('token'))
    await gs.createSession(db, {
      user_id: user.id,
      token_hash: tokenHash,
      expires_at: new Date(Date.now() + 60_000),
    })

    const cases: [string, string, () => Promise<unknown>][] = [
      ['username', username, () => gs.createUser(db, { username: username.toUpperCase() })],
      [
        'email',
        email,
        () =>
          gs.createUser(db, {
            username: `x_${randomBytes(4).toString('hex')}`,
            email: email.toUpperCase(),
          }),
      ],
      [
        'email (update)',
        email,
        async () => {
          const other = await gs.createUser(db, { username: `y_${randomBytes(4).toString('hex')}` })
          return gs.updateUser(db, other.id, { email })
        },
      ],
      [
        'token_hash',
        tokenHash,
        () =>
          gs.createSession(db, {
            user_id: user.id,
            token_hash: tokenHash,
            expires_at: new Date(Date.now() + 60_000),
          }),
      ],
    ]
    for (const [what, value, call] of cases) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error, what).toBeInstanceOf(UniqueViolationError)
      const renderings = [
        (error as Error).message,
        String(error),
        JSON.stringify(error),
        inspect(error, { depth: 10 }),
      ]
      for (const text of renderings) {
        expect(text.toLowerCase(), `${what}: ${text.slice(0, 300)}`).not.toContain(
          value.toLowerCase(),
        )
      }
    }
  })

  it('the log hook carries no parameter values by default, and does with logParameters: true', async () => {
    const quiet: QueryLogEntry[] = []
    const loud: QueryLogEntry[] = []
    // Same pool as the file's db; never destroyed here (that would end the shared pool).
    const quietDb = createDb(t.pool, { log: (e) => quiet.push(e) })
    const loudDb = createDb(t.pool, { log: (e) => loud.push(e), logParameters: true })
    const pw = secret('pw')
    const mfa = secret('mfa')
    const username = `log_${randomBytes(4).toString('hex')}`
    const u = await gs.createUser(quietDb, { username, password_hash: pw })
    await gs.setUserMfaSecret(quietDb, u.id, mfa)
    await gs.findUserCredentials(quietDb, username)
    await gs.createUser(quietDb, { username, password_hash: pw }).catch(() => {})
    expect(quiet.length).toBeGreaterThanOrEqual(4)
    expect(quiet.some((e) => e.level === 'error')).toBe(true)
    const quietText = inspect(quiet, { depth: 10 })
    expect(quietText).not.toContain(pw)
    expect(quietText).not.toContain(mfa)
    expect(quietText).not.toContain(username)
    expect(quiet.every((e) => e.parameters === undefined)).toBe(true)

    const pw2 = secret('pw')
    await gs.createUser(loudDb, {
      username: `log2_${randomBytes(4).toString('hex')}`,
      password_hash: pw2,
    })
    expect(inspect(loud, { depth: 10 })).toContain(pw2)
  })
})
