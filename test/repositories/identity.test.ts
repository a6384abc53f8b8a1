/**
 * The identity rule of usernames and emails (migration 0002, docs/identity.md):
 * NFKC, default-ignorables removed, full Unicode case folding, in one SQL
 * function that uniqueness and every lookup use. Each pair below made two
 * accounts on 0.1.0 (unique only up to lower()).
 */
import { randomBytes } from 'node:crypto'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'
import {
  CheckViolationError,
  createUser,
  defaultMigrationsDirectory,
  findUserByEmail,
  findUserByUsername,
  findUserCredentials,
  InvalidInputError,
  MigrationFailedError,
  migrationStatus,
  runMigrations,
  UniqueViolationError,
  updateUser,
} from '../../src/index.ts'
import { createFreshDatabase, type FreshDatabase } from '../migrations/fixtures/database.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import { makeUser } from '../support/factories.ts'

const t = useTestDatabase()

/** A short random ASCII tag, so tests never share names; lower case, so it folds to itself. */
const tag = () => randomBytes(4).toString('hex')

const NFC_JOSE = 'Jos\u00e9'
const NFD_JOSE = 'Jose\u0301'

/** The five pairs of the issue: identical or case-equal under full Unicode case folding. */
const PAIRS: Array<[string, string, string]> = [
  ['NFC vs NFD José', NFC_JOSE, NFD_JOSE],
  ['sam / ſam (long s)', 'sam', '\u017fam'],
  ['σ / ς (final sigma)', '\u03c3', '\u03c2'],
  ['kilic / KıLIC (dotless i)', 'kilic', 'K\u0131LIC'],
  ['strasse / STRAßE (sharp s)', 'strasse', 'STRA\u00dfE'],
]

/** More that must collide: compatibility forms, Kelvin sign, invisible padding, capital sharp s. */
const MORE_PAIRS: Array<[string, string, string]> = [
  ['fullwidth letters', 'ada', '\uff21\uff24\uff21'],
  ['Kelvin sign', 'kate', '\u212aate'],
  ['soft hyphen inside', 'admin', 'ad\u00admin'],
  ['zero-width space inside', 'admin', 'ad\u200bmin'],
  ['capital sharp s', 'strasse', 'stra\u1e9ee'],
  ['ligature fi', 'fin', '\ufb01n'],
]

async function expectInvalid(run: () => Promise<unknown>) {
  const before = await countRows(t.db, ['users'])
  await expect(run()).rejects.toBeInstanceOf(InvalidInputError)
  expect(await countRows(t.db, ['users'])).toEqual(before)
}

describe('identity rule: uniqueness', () => {
  it.each([...PAIRS, ...MORE_PAIRS])('usernames collide: %s', async (_label, a, b) => {
    const prefix = `x${tag()}_`
    for (const [first, second] of [
      [a, b],
      [b, a],
    ] as const) {
      const p = `${prefix}${first === a ? 'f' : 'r'}`
      const made = await createUser(t.db, { username: `${p}${first}` })
      const before = await countRows(t.db, ['users'])
      const error = await createUser(t.db, { username: `${p}${second}` }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(UniqueViolationError)
      expect(error).toMatchObject({
        constraint: 'users_username_identity_key',
        columns: ['username'],
      })
      expect(await countRows(t.db, ['users'])).toEqual(before)
      // …and the other spelling finds the account.
      expect((await findUserByUsername(t.db, `${p}${second}`))?.id).toBe(made.id)
    }
  })

  it.each([...PAIRS, ...MORE_PAIRS])('emails collide: %s', async (_label, a, b) => {
    const domain = `${tag()}.example.test`
    const made = await createUser(t.db, { username: `e${tag()}`, email: `${a}@${domain}` })
    const before = await countRows(t.db, ['users'])
    const error = await createUser(t.db, {
      username: `e${tag()}`,
      email: `${b}@${domain.toUpperCase()}`,
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(UniqueViolationError)
    expect(error).toMatchObject({ constraint: 'users_email_identity_key', columns: ['email'] })
    expect(await countRows(t.db, ['users'])).toEqual(before)
    expect((await findUserByEmail(t.db, `${b}@${domain}`))?.id).toBe(made.id)

    // updateUser: the same rule refuses taking it over, and writes nothing.
    const other = await createUser(t.db, { username: `e${tag()}`, email: `${tag()}@${domain}` })
    const updateError = await updateUser(t.db, other.id, { email: `${b}@${domain}` }).catch(
      (e: unknown) => e,
    )
    expect(updateError).toBeInstanceOf(UniqueViolationError)
    expect(updateError).toMatchObject({ columns: ['email'] })
    expect((await findUserByEmail(t.db, other.email!))?.id).toBe(other.id)
  })

  it('keeps genuinely different names apart (dotted İ is not i, ö is not o)', async () => {
    const p = `x${tag()}_`
    await createUser(t.db, { username: `${p}i` })
    await createUser(t.db, { username: `${p}\u0130` })
    await createUser(t.db, { username: `${p}o` })
    await createUser(t.db, { username: `${p}\u00f6` })
    expect((await findUserByUsername(t.db, `${p}O`))?.username).toBe(`${p}o`)
    expect((await findUserByUsername(t.db, `${p}\u00d6`))?.username).toBe(`${p}\u00f6`)
  })
})

describe('identity rule: lookups', () => {
  it('logs in with the NFC form of a name registered in NFD, and the other way round', async () => {
    const p = `x${tag()}_`
    const nfd = await makeUser(t.db, { username: `${p}${NFD_JOSE}`, mfa_secret: 's1' })
    expect((await findUserCredentials(t.db, `${p}${NFC_JOSE}`))?.id).toBe(nfd.id)
    expect((await findUserByUsername(t.db, `${p}${NFC_JOSE}`))?.id).toBe(nfd.id)
    expect((await findUserByUsername(t.db, `${p}JOSÉ`))?.id).toBe(nfd.id)

    const q = `y${tag()}_`
    const nfc = await makeUser(t.db, { username: `${q}${NFC_JOSE}` })
    expect((await findUserCredentials(t.db, `${q}${NFD_JOSE}`))?.id).toBe(nfc.id)
    expect((await findUserByUsername(t.db, `${q}${NFD_JOSE}`))?.id).toBe(nfc.id)
  })

  it('finds every pair member by the other spelling, via username and credentials', async () => {
    for (const [, a, b] of PAIRS) {
      const p = `x${tag()}_`
      const made = await makeUser(t.db, { username: `${p}${a}` })
      expect((await findUserByUsername(t.db, `${p}${b}`))?.id).toBe(made.id)
      expect((await findUserCredentials(t.db, `${p}${b}`))?.id).toBe(made.id)
    }
  })

  it('matches emails under the same rule (case, NFKC, sharp s)', async () => {
    const domain = `${tag()}.example.test`
    const made = await makeUser(t.db, { email: `Stra\u00dfe.${NFD_JOSE}@${domain}` })
    for (const login of [
      `STRASSE.${NFC_JOSE}@${domain.toUpperCase()}`,
      `strasse.jos\u00e9@${domain}`,
      `\uff33trasse.jos\u00c9@${domain}`,
    ]) {
      expect((await findUserByEmail(t.db, login))?.id).toBe(made.id)
      expect((await findUserCredentials(t.db, login))?.id).toBe(made.id)
    }
  })
})

describe('usernames cannot look like an email', () => {
  it.each([
    'ceo@corp.example',
    'ceo\uff20corp.example', // fullwidth commercial at: NFKC '@'
    'ceo\ufe6bcorp.example', // small commercial at: NFKC '@'
    '@ceo',
  ])('createUser refuses %j, and the database does too', async (username) => {
    await expectInvalid(() => createUser(t.db, { username }))
    const before = await countRows(t.db, ['users'])
    const error = await makeUser(t.db, { username }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: '23514', constraint: 'users_username_no_at' })
    expect(await countRows(t.db, ['users'])).toEqual(before)
  })

  it("findUserCredentials with an email login finds the email's owner only", async () => {
    const login = `ceo${tag()}@corp.example`
    const owner = await makeUser(t.db, { email: login })
    // A squatter can only get as close as a username without '@'.
    const squatter = await createUser(t.db, { username: login.replace('@', '_') })
    expect((await findUserCredentials(t.db, login))?.id).toBe(owner.id)
    expect((await findUserCredentials(t.db, login.replace('@', '_')))?.id).toBe(squatter.id)
  })

  it('updateUser cannot set a username at all (not part of the patch)', async () => {
    const made = await makeUser(t.db)
    const result = await updateUser(t.db, made.id, { username: 'x@y.z' } as never)
    expect(result?.username).toBe(made.username)
  })

  it('maps the CHECK to CheckViolationError through the library', async () => {
    // Only reachable by bypassing createUser's validation: through the mapping of a raw query.
    const { mapDatabaseError } = await import('../../src/index.ts')
    const error = await sql`insert into users (username) values (${'a@b'})`
      .execute(t.db)
      .catch((e: unknown) => mapDatabaseError(e))
    expect(error).toBeInstanceOf(CheckViolationError)
  })
})

describe('schema', () => {
  it('replaced the lower() indexes by identity-key indexes, on an IMMUTABLE function', async () => {
    const indexes = await sql<{ indexname: string; indexdef: string }>`
      select indexname, indexdef from pg_indexes where tablename = 'users' order by indexname`.execute(
      t.db,
    )
    const names = indexes.rows.map((r) => r.indexname)
    expect(names).toContain('users_username_identity_key')
    expect(names).toContain('users_email_identity_key')
    expect(names).not.toContain('users_username_lower_key')
    expect(names).not.toContain('users_email_lower_key')
    for (const row of indexes.rows.filter((r) => r.indexname.endsWith('_identity_key'))) {
      expect(row.indexdef).toMatch(
        /^CREATE UNIQUE INDEX .*\(guildstore_identity_key\((username|email)\)\)$/,
      )
    }
    const fn = await sql<{ provolatile: string }>`
      select provolatile from pg_proc where proname = 'guildstore_identity_key'`.execute(t.db)
    expect(fn.rows).toEqual([{ provolatile: 'i' }])
  })
})

describe('migration 0002 on existing rows', () => {
  const dirs: string[] = []
  const dbs: FreshDatabase[] = []
  afterAll(async () => {
    await Promise.all(dbs.map((d) => d.drop()))
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  })

  /** A fresh database at 0001 only, and a directory that holds 0001 and 0002. */
  async function at0001(): Promise<{ db: FreshDatabase; only1: string; upTo2: string }> {
    const db = await createFreshDatabase()
    dbs.push(db)
    const only1 = await mkdtemp(join(tmpdir(), 'gs-0001-'))
    const upTo2 = await mkdtemp(join(tmpdir(), 'gs-0002-'))
    dirs.push(only1, upTo2)
    const src = defaultMigrationsDirectory()
    await cp(join(src, '0001_initial_schema.sql'), join(only1, '0001_initial_schema.sql'))
    await cp(join(src, '0001_initial_schema.sql'), join(upTo2, '0001_initial_schema.sql'))
    await cp(
      join(src, '0002_identity_and_channel_members.sql'),
      join(upTo2, '0002_identity_and_channel_members.sql'),
    )
    await runMigrations(db.pool(), { directory: only1 })
    return { db, only1, upTo2 }
  }

  const insertUsers = (db: FreshDatabase, names: string[]) =>
    db.query<{ id: string }>(
      'INSERT INTO users (username) SELECT unnest($1::text[]) ORDER BY 1 RETURNING id',
      [names],
    )

  it('fails with a message naming the colliding users, and applies nothing', async () => {
    const { db, upTo2 } = await at0001()
    const rows = await insertUsers(db, ['sam', '\u017fam', 'kilic', 'K\u0131LIC', 'someone'])
    const error = await runMigrations(db.pool(), { directory: upTo2 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MigrationFailedError)
    const message = (error as Error).message
    expect(message).toContain('0002_identity_and_channel_members.sql')
    expect(message).toContain('usernames that are the same under the identity rule')
    const byName = await db.query<{ id: string; username: string }>(
      'SELECT id, username FROM users',
    )
    const id = (name: string) => byName.find((r) => r.username === name)!.id
    expect(message).toContain(id('sam'))
    expect(message).toContain(id('\u017fam'))
    expect(message).toContain(id('kilic'))
    expect(message).not.toContain(id('someone'))
    expect(rows).toHaveLength(5)
    // Rolled back: still at 0001 with the old indexes.
    expect((await migrationStatus(db.pool(), { directory: upTo2 })).map((m) => m.state)).toEqual([
      'applied',
      'pending',
    ])
    const idx = await db.query<{ indexname: string }>(
      "SELECT indexname FROM pg_indexes WHERE tablename = 'users' AND indexname LIKE '%lower_key'",
    )
    expect(idx).toHaveLength(2)

    // Resolve (rename one of each group) and it applies.
    await db.query("UPDATE users SET username = 'sam2' WHERE username = '\u017fam'")
    await db.query("UPDATE users SET username = 'kilic2' WHERE username = 'K\u0131LIC'")
    const { applied } = await runMigrations(db.pool(), { directory: upTo2 })
    expect(applied.map((m) => m.file)).toEqual(['0002_identity_and_channel_members.sql'])
  })

  it('fails on an existing username containing @ (or ＠), and on colliding emails', async () => {
    const { db, upTo2 } = await at0001()
    const [squatter] = await insertUsers(db, ['ceo\uff20corp.example'])
    const first = await runMigrations(db.pool(), { directory: upTo2 }).catch((e: unknown) => e)
    expect(first).toBeInstanceOf(MigrationFailedError)
    expect((first as Error).message).toContain('usernames must not contain "@"')
    expect((first as Error).message).toContain(squatter!.id)
    await db.query('DELETE FROM users')

    await db.query(
      "INSERT INTO users (username, email) VALUES ('a1', 'Stra\u00dfe@x.test'), ('a2', 'STRASSE@x.test')",
    )
    const second = await runMigrations(db.pool(), { directory: upTo2 }).catch((e: unknown) => e)
    expect(second).toBeInstanceOf(MigrationFailedError)
    expect((second as Error).message).toContain('emails that are the same under the identity rule')
  })

  it('back-fills channel_members.guild_id and drops memberships that leaked past a removal', async () => {
    const { db, upTo2 } = await at0001()
    const [owner, kept, leaked] = await insertUsers(db, ['owner', 'kept', 'leaked'])
    const [guild] = await db.query<{ id: string }>(
      'INSERT INTO guilds (name, owner_id) VALUES ($1, $2) RETURNING id',
      ['g', owner!.id],
    )
    await db.query(
      'INSERT INTO guild_members (guild_id, user_id) VALUES ($1, $2), ($1, $3), ($1, $4)',
      [guild!.id, owner!.id, kept!.id, leaked!.id],
    )
    const [channel] = await db.query<{ id: string }>(
      "INSERT INTO channels (guild_id, name, is_private) VALUES ($1, 'staff', true) RETURNING id",
      [guild!.id],
    )
    await db.query(
      'INSERT INTO channel_members (channel_id, user_id) VALUES ($1, $2), ($1, $3), ($1, $4)',
      [channel!.id, owner!.id, kept!.id, leaked!.id],
    )
    // What the 0.1.0 race left: the membership gone, the channel membership not.
    await db.query('DELETE FROM guild_members WHERE user_id = $1', [leaked!.id])

    await runMigrations(db.pool(), { directory: upTo2 })
    const rows = await db.query<{ user_id: string; guild_id: string }>(
      'SELECT user_id, guild_id FROM channel_members ORDER BY user_id',
    )
    expect(rows).toEqual(
      [owner!.id, kept!.id].sort().map((user_id) => ({ user_id, guild_id: guild!.id })),
    )
    // Rejoining does not bring the leaked access back.
    await db.query('INSERT INTO guild_members (guild_id, user_id) VALUES ($1, $2)', [
      guild!.id,
      leaked!.id,
    ])
    expect(
      await db.query('SELECT 1 FROM channel_members WHERE user_id = $1', [leaked!.id]),
    ).toEqual([])
  })
})
