/**
 * Small row factories for tests: random values, direct inserts, so tests never
 * share rows and nothing needs cleaning up. They write through Kysely, not the
 * repository functions, so a repository bug cannot hide in its own fixtures.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import type { Insertable, Kysely } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { DEFAULT_PERMISSIONS, hashToken, newId } from '../../src/index.ts'

const rand = (n = 6) => randomBytes(n).toString('hex')

export const randomUsername = () => `u_${rand(6)}`
export const randomEmail = () => `${rand(5)}@example.test`

export async function makeUser(db: Kysely<DB>, overrides: Partial<Insertable<DB['users']>> = {}) {
  return db
    .insertInto('users')
    .values({
      id: newId(),
      username: randomUsername(),
      email: randomEmail(),
      password_hash: `$argon2id$v=19$${rand(16)}`,
      display_name: `User ${rand(2)}`,
      ...overrides,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
}

export async function makeSession(
  db: Kysely<DB>,
  userId: string,
  overrides: Partial<Insertable<DB['sessions']>> = {},
) {
  const token = rand(32)
  const row = await db
    .insertInto('sessions')
    .values({
      id: newId(),
      user_id: userId,
      token_hash: hashToken(token),
      expires_at: new Date(Date.now() + 3_600_000),
      ...overrides,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  return { ...row, token }
}

/** A guild with its owner's membership and its default role, as createGuild makes it. */
export async function makeGuild(
  db: Kysely<DB>,
  ownerId: string,
  overrides: Partial<Insertable<DB['guilds']>> = {},
) {
  const guild = await db
    .insertInto('guilds')
    .values({ id: newId(), name: `Guild ${rand(3)}`, owner_id: ownerId, ...overrides })
    .returningAll()
    .executeTakeFirstOrThrow()
  await db.insertInto('guild_members').values({ guild_id: guild.id, user_id: ownerId }).execute()
  const defaultRole = await db
    .insertInto('roles')
    .values({
      id: newId(),
      guild_id: guild.id,
      name: '@everyone',
      permissions: DEFAULT_PERMISSIONS,
      position: 0,
      is_default: true,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  return { ...guild, defaultRole }
}

export async function makeMember(db: Kysely<DB>, guildId: string, userId: string) {
  return db
    .insertInto('guild_members')
    .values({ guild_id: guildId, user_id: userId })
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** A new user who is a member of the guild, with an extra role giving `permissions` (none when 0n). */
export async function makeMemberWith(db: Kysely<DB>, guildId: string, permissions = 0n) {
  const user = await makeUser(db)
  await makeMember(db, guildId, user.id)
  if (permissions !== 0n) {
    const role = await makeRole(db, guildId, { permissions })
    await db
      .insertInto('member_roles')
      .values({ guild_id: guildId, user_id: user.id, role_id: role.id })
      .execute()
  }
  return user
}

export async function makeRole(
  db: Kysely<DB>,
  guildId: string,
  overrides: Partial<Insertable<DB['roles']>> = {},
) {
  return db
    .insertInto('roles')
    .values({ id: newId(), guild_id: guildId, name: `role-${rand(3)}`, position: 1, ...overrides })
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** A custom emoji of a guild (direct insert; no roles). */
export async function makeEmoji(
  db: Kysely<DB>,
  guildId: string,
  creatorId: string,
  overrides: Partial<Insertable<DB['guild_emojis']>> = {},
) {
  return db
    .insertInto('guild_emojis')
    .values({
      id: newId(),
      guild_id: guildId,
      name: `e_${rand(4)}`,
      storage_key: `emojis/${rand(8)}.png`,
      creator_id: creatorId,
      ...overrides,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
}

export async function makeChannel(
  db: Kysely<DB>,
  guildId: string,
  overrides: Partial<Insertable<DB['channels']>> = {},
) {
  // Without the internal counters (last_seq, access_version) and the thread
  // columns (migration 0021), as findChannelById returns it.
  const {
    last_seq: _counter,
    access_version: _version,
    owner_id: _owner,
    starter_message_id: _starter,
    auto_archive_minutes: _minutes,
    archived_at: _archived,
    locked: _locked,
    last_message_at: _lastMessageAt,
    ...channel
  } = await db
    .insertInto('channels')
    .values({ id: newId(), guild_id: guildId, name: `chan-${rand(3)}`, type: 'text', ...overrides })
    .returningAll()
    .executeTakeFirstOrThrow()
  return channel
}

export async function makeMessage(
  db: Kysely<DB>,
  channelId: string,
  authorId: string,
  overrides: Partial<Insertable<DB['messages']>> = {},
) {
  return db
    .insertInto('messages')
    .values({
      id: newId(),
      channel_id: channelId,
      author_id: authorId,
      content: `hello ${rand(4)}`,
      ...overrides,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
}

/**
 * A guild whose default role (@everyone) has exactly `permissions`, with its
 * owner, one plain member (`user`) and one public text channel.
 */
export async function makeGuildWithMember(db: Kysely<DB>, permissions: bigint) {
  const owner = await makeUser(db)
  const guild = await makeGuild(db, owner.id)
  await db
    .updateTable('roles')
    .set({ permissions })
    .where('id', '=', guild.defaultRole.id)
    .execute()
  const user = await makeUser(db)
  await makeMember(db, guild.id, user.id)
  const channel = await makeChannel(db, guild.id)
  return { owner, guild, user, channel }
}

/** A DM between two users: its channels row, its pair row and both participants. */
export async function makeDm(db: Kysely<DB>, userA: string, userB: string) {
  const [a, b] = userA < userB ? [userA, userB] : [userB, userA]
  const id = newId()
  await db.insertInto('channels').values({ id, type: 'dm' }).execute()
  const dm = await db
    .insertInto('dm_channels')
    .values({ id, user_a: a, user_b: b })
    .returningAll()
    .executeTakeFirstOrThrow()
  await db
    .insertInto('dm_participants')
    .values([
      { channel_id: id, user_id: a },
      { channel_id: id, user_id: b },
    ])
    .execute()
  return dm
}

/** A UUID that names no row. */
export const unknownId = () => newId()
/** A valid UUID of another version, for tests that ids need not be v7. */
export const v4Id = () => randomUUID()
