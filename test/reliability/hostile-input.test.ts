/**
 * Hostile input through every public repository function that takes a string
 * or an id, table-driven: each (function, slot) is tried with every input of
 * its kind. The outcome must be a typed InvalidInputError (malformed ids
 * always), or the call succeeds and a stored text comes back verbatim. Never a
 * raw driver error, and a refused call writes nothing (row counts unchanged).
 */
import { sql } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import * as gs from '../../src/index.ts'
import {
  ConflictError,
  ForeignKeyViolationError,
  GuildstoreError,
  InvalidInputError,
  NotFoundError,
  PermissionDeniedError,
  UniqueViolationError,
} from '../../src/index.ts'
import { countRows, useTestDatabase } from '../support/database.ts'
import {
  makeChannel,
  makeDm,
  makeGuild,
  makeMember,
  makeMessage,
  makeRole,
  makeSession,
  makeUser,
  unknownId,
} from '../support/factories.ts'
import { ID_INPUTS, TEXT_INPUTS } from '../support/hostile-inputs.ts'

const t = useTestDatabase()

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
type Kind = 'text' | 'id'
/** Authorized operations: a well-formed id of a user who may not act there is refused. */
const AUTHORIZED = new Set(['sendMessage', 'readChannelMessages', 'joinThread'])

interface Slot {
  fn: string
  slot: string
  kind: Kind
  /** A write: counts may change when it succeeds. */
  writes?: boolean
  /** `null` / `undefined` are valid values of this id slot. */
  optional?: boolean
  /** The call with `value` in this slot. */
  call: (value: unknown) => Promise<unknown>
  /** For a stored text: where to read it back. */
  stored?: {
    table:
      | 'users'
      | 'guilds'
      | 'roles'
      | 'channels'
      | 'messages'
      | 'message_attachments'
      | 'sessions'
      | 'guild_emojis'
      | 'forum_tags'
    column: string
    id: (result: unknown) => string
  }
}

// biome-ignore lint/suspicious/noExplicitAny: hostile values are deliberately untyped
const anyFn = gs as unknown as Record<string, (...args: any[]) => Promise<unknown>>

let world: {
  owner: { id: string }
  member: { id: string }
  guild: { id: string }
  channel: { id: string }
  role: { id: string }
  message: { id: string }
  attachment: { id: string }
  dm: { id: string }
  outsider: { id: string }
  invite: { code: string }
  emoji: { id: string }
  thread: { id: string }
  forum: { id: string }
  /** Forums with room for the tags the slots create (20 each). */
  forums: { id: string }[]
  post: { id: string }
  tag: { id: string }
}

const tried: Record<string, number> = {}
const outcomes = { resolved: 0, invalidInput: 0, otherTyped: 0 }
let seq = 0
const uniq = () => `h${(seq++).toString(36)}_${Math.random().toString(36).slice(2, 8)}`

beforeAll(async () => {
  const owner = await makeUser(t.db)
  const member = await makeUser(t.db)
  const guild = await makeGuild(t.db, owner.id)
  await makeMember(t.db, guild.id, member.id)
  const channel = await makeChannel(t.db, guild.id)
  const role = await makeRole(t.db, guild.id)
  const message = await makeMessage(t.db, channel.id, owner.id, { content: 'findable words here' })
  await makeSession(t.db, owner.id)
  const attachment = await t.db
    .insertInto('message_attachments')
    .values({ message_id: message.id, filename: 'a.png', s3_key: `k/${uniq()}`, size: 1n })
    .returning('id')
    .executeTakeFirstOrThrow()
  const dm = await makeDm(t.db, owner.id, member.id)
  const outsider = await makeUser(t.db)
  const invite = await gs.createInvite(t.db, { guild_id: guild.id, inviter_id: owner.id })
  // Room for every emoji the slots below may create.
  await gs.updateGuild(t.db, guild.id, { max_emojis_static: 250 })
  const emoji = await gs.createGuildEmoji(t.db, {
    guild_id: guild.id,
    name: 'world',
    storage_key: 'emojis/world.png',
    creator_id: owner.id,
  })
  const forum = await gs.createChannel(t.db, { guild_id: guild.id, name: 'forum', type: 'forum' })
  const tag = await gs.createForumTag(t.db, { channel_id: forum.id, name: 'world' })
  const forums = []
  for (let i = 0; i < 12; i++) {
    forums.push(
      await gs.createChannel(t.db, { guild_id: guild.id, name: `tags${i}`, type: 'forum' }),
    )
  }
  const post = await gs.createThread(t.db, {
    channel_id: forum.id,
    author_id: owner.id,
    name: 'post',
    content: 'first',
  })
  const thread = await gs.createThread(t.db, {
    channel_id: channel.id,
    author_id: owner.id,
    name: 'world',
  })
  world = {
    owner,
    member,
    guild,
    channel,
    role,
    message,
    attachment,
    dm,
    outsider,
    invite,
    emoji,
    thread,
    forum,
    forums,
    post,
    tag,
  }
})

const W = () => world

/**
 * One subscribeEvents call, closed at once: it checks its input before it
 * subscribes (a throw, not a rejection; a rejection here).
 */
async function subscribeOnce(db: unknown, input: Record<string, unknown>): Promise<string> {
  const subscribe = anyFn.subscribeEvents as unknown as (...args: unknown[]) => gs.EventSubscription
  const subscription = subscribe(db, null, input)
  try {
    await subscription.ready()
  } finally {
    await subscription.close()
  }
  return subscription.token()
}
const idOf = (r: unknown) => (r as { id: string }).id

/** Every (function, slot) that takes a string or an id. */
function slots(): Slot[] {
  const s: Slot[] = []
  const id = (
    fn: string,
    slot: string,
    call: (v: unknown) => Promise<unknown>,
    more: Partial<Slot> = {},
  ) => s.push({ fn, slot, kind: 'id', call, ...more })
  const text = (
    fn: string,
    slot: string,
    call: (v: unknown) => Promise<unknown>,
    more: Partial<Slot> = {},
  ) => s.push({ fn, slot, kind: 'text', call, ...more })
  const f = anyFn
  const db = () => t.db
  // users
  text('createUser', 'username', (v) => f.createUser!(db(), { username: v }), {
    writes: true,
    stored: { table: 'users', column: 'username', id: idOf },
  })
  text('createUser', 'email', (v) => f.createUser!(db(), { username: uniq(), email: v }), {
    writes: true,
    stored: { table: 'users', column: 'email', id: idOf },
  })
  text(
    'createUser',
    'display_name',
    (v) => f.createUser!(db(), { username: uniq(), display_name: v }),
    {
      writes: true,
      stored: { table: 'users', column: 'display_name', id: idOf },
    },
  )
  text(
    'createUser',
    'password_hash',
    (v) => f.createUser!(db(), { username: uniq(), password_hash: v }),
    {
      writes: true,
      stored: { table: 'users', column: 'password_hash', id: idOf },
    },
  )
  text('createUser', 'status', (v) => f.createUser!(db(), { username: uniq(), status: v }), {
    writes: true,
  })
  id('findUserById', 'id', (v) => f.findUserById!(db(), v))
  text('findUserByUsername', 'username', (v) => f.findUserByUsername!(db(), v))
  text('findUserByEmail', 'email', (v) => f.findUserByEmail!(db(), v))
  id('findUsersByIds', 'ids[0]', (v) => f.findUsersByIds!(db(), [W().owner.id, v]))
  text('findUserCredentials', 'usernameOrEmail', (v) => f.findUserCredentials!(db(), v))
  id('updateUser', 'id', (v) => f.updateUser!(db(), v, { display_name: 'x' }), { writes: true })
  text(
    'updateUser',
    'display_name',
    (v) => f.updateUser!(db(), W().member.id, { display_name: v }),
    {
      writes: true,
      stored: { table: 'users', column: 'display_name', id: idOf },
    },
  )
  text('updateUser', 'email', (v) => f.updateUser!(db(), W().member.id, { email: v }), {
    writes: true,
    stored: { table: 'users', column: 'email', id: idOf },
  })
  text('updateUser', 'avatar_url', (v) => f.updateUser!(db(), W().member.id, { avatar_url: v }), {
    writes: true,
    stored: { table: 'users', column: 'avatar_url', id: idOf },
  })
  id('updateUserStatus', 'id', (v) => f.updateUserStatus!(db(), v, 'online'), { writes: true })
  text('updateUserStatus', 'status', (v) => f.updateUserStatus!(db(), W().member.id, v), {
    writes: true,
  })
  id('setUserPassword', 'id', (v) => f.setUserPassword!(db(), v, 'hash'), { writes: true })
  text('setUserPassword', 'password_hash', (v) => f.setUserPassword!(db(), W().member.id, v), {
    writes: true,
  })
  id('setUserMfaSecret', 'id', (v) => f.setUserMfaSecret!(db(), v, 'secret'), { writes: true })
  text('setUserMfaSecret', 'secret', (v) => f.setUserMfaSecret!(db(), W().member.id, v), {
    writes: true,
  })
  id('deleteUser', 'id', (v) => f.deleteUser!(db(), v), { writes: true })
  // sessions
  const expires = () => new Date(Date.now() + 60_000)
  id(
    'createSession',
    'user_id',
    (v) =>
      f.createSession!(db(), {
        user_id: v,
        token_hash: gs.hashToken(uniq()),
        expires_at: expires(),
      }),
    { writes: true },
  )
  text(
    'createSession',
    'token_hash',
    (v) => f.createSession!(db(), { user_id: W().owner.id, token_hash: v, expires_at: expires() }),
    { writes: true },
  )
  text(
    'createSession',
    'ip_address',
    (v) =>
      f.createSession!(db(), {
        user_id: W().owner.id,
        token_hash: gs.hashToken(uniq()),
        expires_at: expires(),
        ip_address: v,
      }),
    { writes: true },
  )
  text(
    'createSession',
    'user_agent',
    (v) =>
      f.createSession!(db(), {
        user_id: W().owner.id,
        token_hash: gs.hashToken(uniq()),
        expires_at: expires(),
        user_agent: v,
      }),
    { writes: true, stored: { table: 'sessions', column: 'user_agent', id: idOf } },
  )
  text('findSessionByTokenHash', 'token_hash', (v) => f.findSessionByTokenHash!(db(), v))
  id('deleteSession', 'id', (v) => f.deleteSession!(db(), v), { writes: true })
  id('deleteUserSessions', 'user_id', (v) => f.deleteUserSessions!(db(), v), { writes: true })
  // guilds
  text('createGuild', 'name', (v) => f.createGuild!(db(), { name: v, owner_id: W().owner.id }), {
    writes: true,
    stored: { table: 'guilds', column: 'name', id: idOf },
  })
  id('createGuild', 'owner_id', (v) => f.createGuild!(db(), { name: 'g', owner_id: v }), {
    writes: true,
  })
  id('findGuildById', 'id', (v) => f.findGuildById!(db(), v))
  id('listGuildsForUser', 'user_id', (v) => f.listGuildsForUser!(db(), v))
  id('updateGuild', 'id', (v) => f.updateGuild!(db(), v, { name: 'n' }), { writes: true })
  text('updateGuild', 'name', (v) => f.updateGuild!(db(), W().guild.id, { name: v }), {
    writes: true,
    stored: { table: 'guilds', column: 'name', id: idOf },
  })
  id('deleteGuild', 'id', (v) => f.deleteGuild!(db(), v), { writes: true })
  id(
    'transferGuildOwnership',
    'guild_id',
    (v) => f.transferGuildOwnership!(db(), { guild_id: v, new_owner_id: W().owner.id }),
    { writes: true },
  )
  id(
    'transferGuildOwnership',
    'new_owner_id',
    (v) => f.transferGuildOwnership!(db(), { guild_id: W().guild.id, new_owner_id: v }),
    { writes: true },
  )
  // members
  for (const fn of ['addGuildMember', 'removeGuildMember', 'findGuildMember', 'isGuildMember']) {
    const writes = fn === 'addGuildMember' || fn === 'removeGuildMember'
    id(fn, 'guild_id', (v) => f[fn]!(db(), { guild_id: v, user_id: W().member.id }), { writes })
    id(fn, 'user_id', (v) => f[fn]!(db(), { guild_id: W().guild.id, user_id: v }), { writes })
  }
  id('listGuildMembers', 'guild_id', (v) => f.listGuildMembers!(db(), v))
  id('listGuildMembers', 'after', (v) => f.listGuildMembers!(db(), W().guild.id, { after: v }), {
    optional: true,
  })
  // roles
  text(
    'createRole',
    'name',
    (v) => f.createRole!(db(), { guild_id: W().guild.id, name: v, permissions: 0n }),
    {
      writes: true,
      stored: { table: 'roles', column: 'name', id: idOf },
    },
  )
  id(
    'createRole',
    'guild_id',
    (v) => f.createRole!(db(), { guild_id: v, name: 'r', permissions: 0n }),
    { writes: true },
  )
  id('updateRole', 'id', (v) => f.updateRole!(db(), v, { name: 'r' }), { writes: true })
  text('updateRole', 'name', (v) => f.updateRole!(db(), W().role.id, { name: v }), {
    writes: true,
    stored: { table: 'roles', column: 'name', id: idOf },
  })
  id('deleteRole', 'id', (v) => f.deleteRole!(db(), v), { writes: true })
  id('listGuildRoles', 'guild_id', (v) => f.listGuildRoles!(db(), v))
  for (const fn of ['assignRole', 'unassignRole']) {
    const base = () => ({ guild_id: W().guild.id, user_id: W().member.id, role_id: W().role.id })
    for (const key of ['guild_id', 'user_id', 'role_id']) {
      id(fn, key, (v) => f[fn]!(db(), { ...base(), [key]: v }), { writes: true })
    }
  }
  id('listMemberRoles', 'guild_id', (v) =>
    f.listMemberRoles!(db(), { guild_id: v, user_id: W().member.id }),
  )
  id('listMemberRoles', 'user_id', (v) =>
    f.listMemberRoles!(db(), { guild_id: W().guild.id, user_id: v }),
  )
  const perms = () => ({
    guild_id: W().guild.id,
    user_id: W().member.id,
    channel_id: W().channel.id,
  })
  for (const key of ['guild_id', 'user_id', 'channel_id']) {
    id('computePermissions', key, (v) => f.computePermissions!(db(), { ...perms(), [key]: v }), {
      optional: key === 'channel_id',
    })
  }
  // channels
  text(
    'createChannel',
    'name',
    (v) => f.createChannel!(db(), { guild_id: W().guild.id, name: v, type: 'text' }),
    {
      writes: true,
      stored: { table: 'channels', column: 'name', id: idOf },
    },
  )
  text(
    'createChannel',
    'topic',
    (v) => f.createChannel!(db(), { guild_id: W().guild.id, name: 'c', type: 'text', topic: v }),
    { writes: true, stored: { table: 'channels', column: 'topic', id: idOf } },
  )
  text(
    'createChannel',
    'type',
    (v) => f.createChannel!(db(), { guild_id: W().guild.id, name: 'c', type: v }),
    {
      writes: true,
    },
  )
  id(
    'createChannel',
    'guild_id',
    (v) => f.createChannel!(db(), { guild_id: v, name: 'c', type: 'text' }),
    { writes: true },
  )
  id('findChannelById', 'id', (v) => f.findChannelById!(db(), v))
  id('listGuildChannels', 'guild_id', (v) => f.listGuildChannels!(db(), v))
  id('updateChannel', 'id', (v) => f.updateChannel!(db(), v, { name: 'c' }), { writes: true })
  text('updateChannel', 'name', (v) => f.updateChannel!(db(), W().channel.id, { name: v }), {
    writes: true,
    stored: { table: 'channels', column: 'name', id: idOf },
  })
  text('updateChannel', 'topic', (v) => f.updateChannel!(db(), W().channel.id, { topic: v }), {
    writes: true,
    stored: { table: 'channels', column: 'topic', id: idOf },
  })
  id('deleteChannel', 'id', (v) => f.deleteChannel!(db(), v), { writes: true })
  // categories (0.3)
  id(
    'createChannel',
    'parent_id',
    (v) =>
      f.createChannel!(db(), { guild_id: W().guild.id, name: 'c', type: 'text', parent_id: v }),
    { writes: true, optional: true },
  )
  id(
    'updateChannel',
    'parent_id',
    (v) => f.updateChannel!(db(), W().channel.id, { parent_id: v }),
    {
      writes: true,
      optional: true,
    },
  )
  id(
    'reorderChannels',
    'guild_id',
    (v) => f.reorderChannels!(db(), v, [{ id: W().channel.id, position: 0 }]),
    {
      writes: true,
    },
  )
  id(
    'reorderChannels',
    'positions[0].id',
    (v) => f.reorderChannels!(db(), W().guild.id, [{ id: v, position: 0 }]),
    {
      writes: true,
    },
  )
  id(
    'reorderChannels',
    'positions[0].parent_id',
    (v) =>
      f.reorderChannels!(db(), W().guild.id, [{ id: W().channel.id, position: 0, parent_id: v }]),
    { writes: true, optional: true },
  )
  id('syncChannelPermissions', 'channel_id', (v) => f.syncChannelPermissions!(db(), v), {
    writes: true,
  })
  for (const fn of [
    'addChannelMember',
    'removeChannelMember',
    'isChannelMember',
    'canAccessChannel',
  ]) {
    const writes = fn === 'addChannelMember' || fn === 'removeChannelMember'
    id(fn, 'channel_id', (v) => f[fn]!(db(), { channel_id: v, user_id: W().member.id }), { writes })
    id(fn, 'user_id', (v) => f[fn]!(db(), { channel_id: W().channel.id, user_id: v }), { writes })
  }
  id('listChannelMembers', 'channel_id', (v) => f.listChannelMembers!(db(), v))
  id('listVisibleChannels', 'guild_id', (v) =>
    f.listVisibleChannels!(db(), { guild_id: v, user_id: W().member.id }),
  )
  id('listVisibleChannels', 'user_id', (v) =>
    f.listVisibleChannels!(db(), { guild_id: W().guild.id, user_id: v }),
  )
  // messages
  text(
    'createMessage',
    'content',
    (v) =>
      f.createMessage!(db(), { channel_id: W().channel.id, author_id: W().owner.id, content: v }),
    { writes: true, stored: { table: 'messages', column: 'content', id: idOf } },
  )
  for (const key of ['channel_id', 'author_id', 'reply_to']) {
    id(
      'createMessage',
      key,
      (v) =>
        f.createMessage!(db(), {
          channel_id: W().channel.id,
          author_id: W().owner.id,
          content: 'c',
          [key]: v,
        }),
      { writes: true, optional: key === 'reply_to' },
    )
  }
  for (const key of ['user_ids', 'role_ids']) {
    id(
      'createMessage',
      `mentions.${key}[0]`,
      (v) =>
        f.createMessage!(db(), {
          channel_id: W().channel.id,
          author_id: W().owner.id,
          content: 'c',
          mentions: { [key]: [v] },
        }),
      { writes: true },
    )
  }
  // importMessages: one row, each slot hostile in turn
  const importOne = async (row: Record<string, unknown>) => {
    const id = gs.newId()
    await f.importMessages!(db(), [
      {
        id,
        channel_id: W().channel.id,
        author_id: W().owner.id,
        content: 'c',
        created_at: new Date(0),
        ...row,
      },
    ])
    return { id, content: row.content }
  }
  text('importMessages', 'rows[0].content', (v) => importOne({ content: v }), {
    writes: true,
    stored: { table: 'messages', column: 'content', id: idOf },
  })
  for (const key of ['id', 'channel_id', 'author_id', 'reply_to']) {
    id('importMessages', `rows[0].${key}`, (v) => importOne({ [key]: v }), {
      writes: true,
      optional: key === 'reply_to' || key === 'id',
    })
  }
  for (const key of ['user_ids', 'role_ids']) {
    id(
      'importMessages',
      `rows[0].mentions.${key}[0]`,
      (v) => importOne({ mentions: { [key]: [v] } }),
      {
        writes: true,
      },
    )
  }
  id('listMessageMentions', 'message_ids[0]', (v) => f.listMessageMentions!(db(), [v]))
  const mark = () => ({
    channel_id: W().channel.id,
    user_id: W().member.id,
    message_id: W().message.id,
  })
  for (const key of ['channel_id', 'user_id', 'message_id']) {
    id('markChannelRead', key, (v) => f.markChannelRead!(db(), { ...mark(), [key]: v }), {
      writes: true,
    })
  }
  // The change feed (migration 0019).
  id('listEvents', 'user_id', (v) => f.listEvents!(db(), { user_id: v }))
  text('listEvents', 'after', (v) => f.listEvents!(db(), { user_id: W().member.id, after: v }))
  id('subscribeEvents', 'user_id', (v) => subscribeOnce(db(), { user_id: v }))
  text('subscribeEvents', 'after', (v) => subscribeOnce(db(), { user_id: W().member.id, after: v }))
  text('subscribeEvents', 'namespace', (v) =>
    subscribeOnce(db(), { user_id: W().member.id, namespace: v }),
  )
  const event = () => ({ type: 'app.hostile', user_id: W().member.id, data: { n: 1 } })
  for (const key of ['guild_id', 'channel_id', 'user_id']) {
    id('appendEvent', key, (v) => f.appendEvent!(db(), { ...event(), [key]: v }), {
      writes: true,
      optional: key !== 'user_id',
    })
  }
  text('appendEvent', 'type', (v) => f.appendEvent!(db(), { ...event(), type: v }), {
    writes: true,
  })
  text('appendEvent', 'data.note', (v) => f.appendEvent!(db(), { ...event(), data: { note: v } }), {
    writes: true,
  })
  id('listChannelReadStates', 'user_id', (v) =>
    f.listChannelReadStates!(db(), { user_id: v, guild_id: W().guild.id }),
  )
  id(
    'listChannelReadStates',
    'guild_id',
    (v) => f.listChannelReadStates!(db(), { user_id: W().member.id, guild_id: v }),
    { optional: true },
  )
  id('findMessageById', 'id', (v) => f.findMessageById!(db(), v))
  id('listChannelMessages', 'channel_id', (v) => f.listChannelMessages!(db(), v))
  id(
    'listChannelMessages',
    'before',
    (v) => f.listChannelMessages!(db(), W().channel.id, { before: v }),
    { optional: true },
  )
  id(
    'listChannelMessages',
    'after',
    (v) => f.listChannelMessages!(db(), W().channel.id, { after: v }),
    { optional: true },
  )
  id('updateMessage', 'id', (v) => f.updateMessage!(db(), v, { content: 'c' }), { writes: true })
  text('updateMessage', 'content', (v) => f.updateMessage!(db(), W().message.id, { content: v }), {
    writes: true,
    stored: { table: 'messages', column: 'content', id: idOf },
  })
  id('deleteMessage', 'id', (v) => f.deleteMessage!(db(), v), { writes: true })
  text('searchMessages', 'query', (v) =>
    f.searchMessages!(db(), { user_id: W().owner.id, query: v }),
  )
  id('searchMessages', 'user_id', (v) => f.searchMessages!(db(), { user_id: v, query: 'findable' }))
  id(
    'searchMessages',
    'guild_id',
    (v) => f.searchMessages!(db(), { user_id: W().owner.id, query: 'findable', guild_id: v }),
    {
      optional: true,
    },
  )
  id('searchMessages', 'channel_ids[0]', (v) =>
    f.searchMessages!(db(), { user_id: W().owner.id, query: 'findable', channel_ids: [v] }),
  )
  id(
    'searchMessages',
    'before',
    (v) => f.searchMessages!(db(), { user_id: W().owner.id, query: 'findable', before: v }),
    {
      optional: true,
    },
  )
  // attachments
  const att = () => ({
    message_id: W().message.id,
    filename: 'f.txt',
    s3_key: `k/${uniq()}`,
    size: 1,
  })
  for (const key of ['filename', 's3_key', 'content_type']) {
    text('createAttachment', key, (v) => f.createAttachment!(db(), { ...att(), [key]: v }), {
      writes: true,
      stored: { table: 'message_attachments', column: key, id: idOf },
    })
  }
  id(
    'createAttachment',
    'message_id',
    (v) => f.createAttachment!(db(), { ...att(), message_id: v }),
    { writes: true },
  )
  id('listAttachmentsByMessageIds', 'message_ids[0]', (v) =>
    f.listAttachmentsByMessageIds!(db(), [v]),
  )
  id('deleteAttachment', 'id', (v) => f.deleteAttachment!(db(), v), { writes: true })
  // dms
  id(
    'findOrCreateDmChannel',
    'user_id',
    (v) => f.findOrCreateDmChannel!(db(), { user_id: v, other_user_id: W().member.id }),
    {
      writes: true,
    },
  )
  id(
    'findOrCreateDmChannel',
    'other_user_id',
    (v) => f.findOrCreateDmChannel!(db(), { user_id: W().owner.id, other_user_id: v }),
    { writes: true },
  )
  id('listDmChannels', 'user_id', (v) => f.listDmChannels!(db(), v))
  const read = () => ({ channel_id: W().dm.id, user_id: W().owner.id, message_id: W().message.id })
  for (const key of ['channel_id', 'user_id', 'message_id']) {
    id('markDmRead', key, (v) => f.markDmRead!(db(), { ...read(), [key]: v }), { writes: true })
  }
  // friendships
  const pairFns: [string, string, string][] = [
    ['sendFriendRequest', 'from_user_id', 'to_user_id'],
    ['acceptFriendRequest', 'user_id', 'requester_id'],
    ['removeFriendship', 'user_id', 'other_user_id'],
    ['blockUser', 'user_id', 'blocked_user_id'],
    ['unblockUser', 'user_id', 'blocked_user_id'],
    ['isBlocked', 'user_id', 'other_user_id'],
  ]
  for (const [fn, a, b] of pairFns) {
    const writes = fn !== 'isBlocked'
    id(fn, a, (v) => f[fn]!(db(), { [a]: v, [b]: W().member.id }), { writes })
    id(fn, b, (v) => f[fn]!(db(), { [a]: W().owner.id, [b]: v }), { writes })
  }
  id('listFriends', 'user_id', (v) => f.listFriends!(db(), v))
  id('listFriendRequests', 'user_id', (v) => f.listFriendRequests!(db(), v))
  // overwrites
  const ow = () => ({ channel_id: W().channel.id, role_id: W().role.id, allow: 0n, deny: 0n })
  for (const key of ['channel_id', 'role_id']) {
    id('setChannelOverwrite', key, (v) => f.setChannelOverwrite!(db(), { ...ow(), [key]: v }), {
      writes: true,
    })
    id(
      'deleteChannelOverwrite',
      key,
      (v) => f.deleteChannelOverwrite!(db(), { ...ow(), [key]: v }),
      {
        writes: true,
      },
    )
  }
  id(
    'setChannelOverwrite',
    'user_id',
    (v) =>
      f.setChannelOverwrite!(db(), {
        channel_id: W().channel.id,
        user_id: v,
        allow: 0n,
        deny: 0n,
      }),
    { writes: true },
  )
  id(
    'deleteChannelOverwrite',
    'user_id',
    (v) => f.deleteChannelOverwrite!(db(), { channel_id: W().channel.id, user_id: v }),
    { writes: true },
  )
  id('listChannelOverwrites', 'channel_id', (v) => f.listChannelOverwrites!(db(), v))
  // bans
  const ban = () => ({ guild_id: W().guild.id, user_id: W().outsider.id })
  for (const fn of ['banMember', 'unbanMember', 'findBan']) {
    const writes = fn !== 'findBan'
    for (const key of ['guild_id', 'user_id']) {
      id(fn, key, (v) => f[fn]!(db(), { ...ban(), [key]: v }), { writes })
    }
  }
  text('banMember', 'reason', (v) => f.banMember!(db(), { ...ban(), reason: v }), { writes: true })
  id('listBans', 'guild_id', (v) => f.listBans!(db(), v))
  id('listBans', 'after', (v) => f.listBans!(db(), W().guild.id, { after: v }), { optional: true })
  // invites
  for (const key of ['guild_id', 'inviter_id']) {
    id(
      'createInvite',
      key,
      (v) => f.createInvite!(db(), { guild_id: W().guild.id, inviter_id: W().owner.id, [key]: v }),
      { writes: true },
    )
  }
  text('useInvite', 'code', (v) => f.useInvite!(db(), { code: v, user_id: W().member.id }), {
    writes: true,
  })
  id('useInvite', 'user_id', (v) => f.useInvite!(db(), { code: W().invite.code, user_id: v }), {
    writes: true,
  })
  text('revokeInvite', 'code', (v) => f.revokeInvite!(db(), { code: v }), { writes: true })
  id('listGuildInvites', 'guild_id', (v) => f.listGuildInvites!(db(), v))
  // audit log
  id('listAuditLog', 'guild_id', (v) => f.listAuditLog!(db(), v))
  for (const key of ['before', 'actor_id']) {
    id('listAuditLog', key, (v) => f.listAuditLog!(db(), W().guild.id, { [key]: v }), {
      optional: true,
    })
  }
  text('listAuditLog', 'action', (v) => f.listAuditLog!(db(), W().guild.id, { action: v }))
  // custom emojis (0.3)
  const emoji = () => ({
    guild_id: W().guild.id,
    name: uniq(),
    storage_key: `emojis/${uniq()}`,
    creator_id: W().owner.id,
  })
  for (const key of ['guild_id', 'creator_id']) {
    id('createGuildEmoji', key, (v) => f.createGuildEmoji!(db(), { ...emoji(), [key]: v }), {
      writes: true,
    })
  }
  id(
    'createGuildEmoji',
    'role_ids[0]',
    (v) => f.createGuildEmoji!(db(), { ...emoji(), role_ids: [v] }),
    { writes: true },
  )
  text('createGuildEmoji', 'name', (v) => f.createGuildEmoji!(db(), { ...emoji(), name: v }), {
    writes: true,
    stored: { table: 'guild_emojis', column: 'name', id: idOf },
  })
  text(
    'createGuildEmoji',
    'storage_key',
    (v) => f.createGuildEmoji!(db(), { ...emoji(), storage_key: v }),
    { writes: true, stored: { table: 'guild_emojis', column: 'storage_key', id: idOf } },
  )
  id(
    'updateGuildEmoji',
    'emoji_id',
    (v) => f.updateGuildEmoji!(db(), { emoji_id: v, name: 'ok' }),
    {
      writes: true,
    },
  )
  id(
    'updateGuildEmoji',
    'role_ids[0]',
    (v) => f.updateGuildEmoji!(db(), { emoji_id: W().emoji.id, role_ids: [v] }),
    { writes: true },
  )
  text(
    'updateGuildEmoji',
    'name',
    (v) => f.updateGuildEmoji!(db(), { emoji_id: W().emoji.id, name: v }),
    { writes: true, stored: { table: 'guild_emojis', column: 'name', id: idOf } },
  )
  id('deleteGuildEmoji', 'emoji_id', (v) => f.deleteGuildEmoji!(db(), { emoji_id: v }), {
    writes: true,
  })
  id('listGuildEmojis', 'guild_id', (v) => f.listGuildEmojis!(db(), v))
  // threads (0.3)
  const newThread = () => ({ channel_id: W().channel.id, author_id: W().owner.id, name: 't' })
  text('createThread', 'name', (v) => f.createThread!(db(), { ...newThread(), name: v }), {
    writes: true,
    stored: { table: 'channels', column: 'name', id: idOf },
  })
  for (const key of ['channel_id', 'author_id', 'message_id']) {
    id('createThread', key, (v) => f.createThread!(db(), { ...newThread(), [key]: v }), {
      writes: true,
      optional: key === 'message_id',
    })
  }
  const threadMember = () => ({ thread_id: W().thread.id, user_id: W().member.id })
  for (const fn of ['joinThread', 'leaveThread', 'addThreadMember', 'removeThreadMember']) {
    for (const key of ['thread_id', 'user_id']) {
      id(fn, key, (v) => f[fn]!(db(), { ...threadMember(), [key]: v }), { writes: true })
    }
  }
  for (const key of ['guild_id', 'user_id', 'after']) {
    const input = () => ({ guild_id: W().guild.id, user_id: W().member.id })
    id('listActiveThreads', key, (v) => f.listActiveThreads!(db(), { ...input(), [key]: v }), {
      optional: key === 'after',
    })
  }
  for (const key of ['channel_id', 'user_id', 'before']) {
    const input = () => ({ channel_id: W().channel.id, user_id: W().member.id })
    id('listArchivedThreads', key, (v) => f.listArchivedThreads!(db(), { ...input(), [key]: v }), {
      optional: key === 'before',
    })
  }
  // forums (0.3)
  let tagCalls = 0
  const newTag = () => ({
    channel_id: (W().forums[Math.floor(tagCalls++ / 19) % W().forums.length] as { id: string }).id,
    name: uniq().slice(0, 20),
  })
  text('createForumTag', 'name', (v) => f.createForumTag!(db(), { ...newTag(), name: v }), {
    writes: true,
    stored: { table: 'forum_tags', column: 'name', id: idOf },
  })
  text('createForumTag', 'emoji', (v) => f.createForumTag!(db(), { ...newTag(), emoji: v }), {
    writes: true,
    stored: { table: 'forum_tags', column: 'emoji', id: idOf },
  })
  id(
    'createForumTag',
    'channel_id',
    (v) => f.createForumTag!(db(), { ...newTag(), channel_id: v }),
    {
      writes: true,
    },
  )
  id('updateForumTag', 'tag_id', (v) => f.updateForumTag!(db(), { tag_id: v, name: 'ok' }), {
    writes: true,
  })
  text('updateForumTag', 'name', (v) => f.updateForumTag!(db(), { tag_id: W().tag.id, name: v }), {
    writes: true,
    stored: { table: 'forum_tags', column: 'name', id: idOf },
  })
  text(
    'updateForumTag',
    'emoji',
    (v) => f.updateForumTag!(db(), { tag_id: W().tag.id, emoji: v }),
    { writes: true, stored: { table: 'forum_tags', column: 'emoji', id: idOf } },
  )
  // An unknown tag for a valid id: the world's tag must survive.
  id('deleteForumTag', 'tag_id', (v) => f.deleteForumTag!(db(), { tag_id: v }), {
    writes: true,
  })
  id('listForumPosts', 'tag_ids[0]', (v) =>
    f.listForumPosts!(db(), { channel_id: W().forum.id, user_id: W().member.id, tag_ids: [v] }),
  )
  id('setPostTags', 'thread_id', (v) => f.setPostTags!(db(), { thread_id: v, tag_ids: [] }), {
    writes: true,
  })
  id(
    'setPostTags',
    'tag_ids[0]',
    (v) => f.setPostTags!(db(), { thread_id: W().post.id, tag_ids: [v] }),
    { writes: true },
  )
  text(
    'createThread',
    'content',
    (v) =>
      f.createThread!(db(), {
        channel_id: W().forum.id,
        author_id: W().owner.id,
        name: 'p',
        content: v,
      }),
    { writes: true },
  )
  for (const key of ['channel_id', 'user_id', 'before']) {
    const input = () => ({ channel_id: W().forum.id, user_id: W().member.id })
    id('listForumPosts', key, (v) => f.listForumPosts!(db(), { ...input(), [key]: v }), {
      optional: key === 'before',
    })
  }
  id('archiveThread', 'thread_id', (v) => f.archiveThread!(db(), { thread_id: v }), {
    writes: true,
  })
  // acting as: the actor's id and reason of every administrative function
  const acting: [string, () => unknown[]][] = [
    ['createRole', () => [{ guild_id: W().guild.id, name: 'r', permissions: 0n }]],
    ['updateRole', () => [W().role.id, { name: 'r' }]],
    [
      'assignRole',
      () => [{ guild_id: W().guild.id, user_id: W().member.id, role_id: W().role.id }],
    ],
    ['createChannel', () => [{ guild_id: W().guild.id, name: 'c', type: 'text' }]],
    ['updateChannel', () => [W().channel.id, { topic: 't' }]],
    ['reorderChannels', () => [W().guild.id, [{ id: W().channel.id, position: 0 }]]],
    ['updateGuild', () => [W().guild.id, { name: 'g' }]],
    ['setChannelOverwrite', () => [ow()]],
    ['banMember', () => [ban()]],
    ['unbanMember', () => [ban()]],
    ['createInvite', () => [{ guild_id: W().guild.id, inviter_id: W().owner.id }]],
    ['revokeInvite', () => [{ code: W().invite.code }]],
    // An unknown message: the world's message must survive the valid calls.
    ['deleteMessage', () => [unknownId()]],
    ['removeGuildMember', () => [ban()]],
    ['createGuildEmoji', () => [emoji()]],
    ['updateGuildEmoji', () => [{ emoji_id: W().emoji.id, name: uniq() }]],
    // An unknown emoji: the world's emoji must survive the valid calls.
    ['deleteGuildEmoji', () => [{ emoji_id: unknownId() }]],
    ['createThread', () => [newThread()]],
    ['addThreadMember', () => [threadMember()]],
    ['removeThreadMember', () => [{ thread_id: W().thread.id, user_id: unknownId() }]],
    ['archiveThread', () => [{ thread_id: W().thread.id }]],
    ['createForumTag', () => [newTag()]],
    ['setPostTags', () => [{ thread_id: W().post.id, tag_ids: [W().tag.id] }]],
    ['updateForumTag', () => [{ tag_id: W().tag.id, name: uniq().slice(0, 20) }]],
    // An unknown tag: the world's tag must survive the valid calls.
    ['deleteForumTag', () => [{ tag_id: unknownId() }]],
  ]
  for (const [fn, args] of acting) {
    id(fn, 'as.actor_id', (v) => f[fn]!(db(), ...args(), { actor_id: v }), { writes: true })
    text(fn, 'as.reason', (v) => f[fn]!(db(), ...args(), { actor_id: W().owner.id, reason: v }), {
      writes: true,
    })
  }
  // reactions, pins, edit history (0.2)
  const reaction = () => ({ message_id: W().message.id, user_id: W().member.id, emoji: '👍' })
  for (const fn of ['addReaction', 'removeReaction']) {
    id(fn, 'message_id', (v) => f[fn]!(db(), { ...reaction(), message_id: v }), { writes: true })
    id(fn, 'user_id', (v) => f[fn]!(db(), { ...reaction(), user_id: v }), { writes: true })
    text(fn, 'emoji', (v) => f[fn]!(db(), { ...reaction(), emoji: v }), { writes: true })
  }
  id('removeReactions', 'message_id', (v) => f.removeReactions!(db(), { message_id: v }), {
    writes: true,
  })
  text(
    'removeReactions',
    'emoji',
    (v) => f.removeReactions!(db(), { message_id: W().message.id, emoji: v }),
    { writes: true },
  )
  id(
    'removeReactions',
    'as.actor_id',
    (v) => f.removeReactions!(db(), { message_id: W().message.id }, { actor_id: v }),
    { writes: true },
  )
  text(
    'removeReactions',
    'as.reason',
    (v) =>
      f.removeReactions!(
        db(),
        { message_id: W().message.id },
        { actor_id: W().owner.id, reason: v },
      ),
    { writes: true },
  )
  id('listReactions', 'message_ids[0]', (v) => f.listReactions!(db(), { message_ids: [v] }))
  id(
    'listReactions',
    'viewer_id',
    (v) => f.listReactions!(db(), { message_ids: [W().message.id], viewer_id: v }),
    { optional: true },
  )
  id('listReactionUsers', 'message_id', (v) =>
    f.listReactionUsers!(db(), { message_id: v, emoji: '👍' }),
  )
  text('listReactionUsers', 'emoji', (v) =>
    f.listReactionUsers!(db(), { message_id: W().message.id, emoji: v }),
  )
  id(
    'listReactionUsers',
    'after',
    (v) => f.listReactionUsers!(db(), { message_id: W().message.id, emoji: '👍', after: v }),
    { optional: true },
  )
  for (const fn of ['pinMessage', 'unpinMessage']) {
    id(fn, 'message_id', (v) => f[fn]!(db(), { message_id: v }), { writes: true })
    id(fn, 'as.actor_id', (v) => f[fn]!(db(), { message_id: W().message.id }, { actor_id: v }), {
      writes: true,
    })
  }
  id('listPinnedMessages', 'channel_id', (v) => f.listPinnedMessages!(db(), v))
  id('listMessageEdits', 'message_id', (v) => f.listMessageEdits!(db(), v))
  // authorized send and read (0.2)
  const send = () => ({ channel_id: W().channel.id, author_id: W().owner.id, content: 'c' })
  text('sendMessage', 'content', (v) => f.sendMessage!(db(), { ...send(), content: v }), {
    writes: true,
    stored: { table: 'messages', column: 'content', id: idOf },
  })
  for (const key of ['channel_id', 'author_id', 'reply_to']) {
    id('sendMessage', key, (v) => f.sendMessage!(db(), { ...send(), [key]: v }), {
      writes: true,
      optional: key === 'reply_to',
    })
  }
  id(
    'sendMessage',
    'mentions.user_ids[0]',
    (v) => f.sendMessage!(db(), { ...send(), mentions: { user_ids: [v] } }),
    { writes: true },
  )
  const readInput = () => ({ user_id: W().owner.id, channel_id: W().channel.id })
  for (const key of ['user_id', 'channel_id', 'before', 'after']) {
    id(
      'readChannelMessages',
      key,
      (v) => f.readChannelMessages!(db(), { ...readInput(), [key]: v }),
      {
        optional: key === 'before' || key === 'after',
      },
    )
  }
  return s
}

/** All row counts in one round trip, comparable as a string. */
const counts = async (): Promise<string> => JSON.stringify(await countRows(t.db))

const isValidId = (v: unknown, optional: boolean) =>
  (typeof v === 'string' && UUID.test(v)) || (optional && (v === null || v === undefined))

describe('hostile input through every public function', () => {
  it('each (function, slot) × each hostile input: typed InvalidInputError or stored verbatim; never a raw error; a refusal writes nothing', async () => {
    const problems: string[] = []
    const all = slots()
    for (const slot of all) {
      const inputs = slot.kind === 'text' ? TEXT_INPUTS : ID_INPUTS
      for (const [label, value] of Object.entries(inputs)) {
        const key = `${slot.fn}`
        tried[key] = (tried[key] ?? 0) + 1
        const before = await counts()
        let result: unknown
        let error: unknown
        try {
          result = await slot.call(value)
        } catch (e) {
          error = e
        }
        const where = `${slot.fn}(${slot.slot} = ${label})`
        if (error !== undefined) {
          const after = await counts()
          if (after !== before) problems.push(`${where}: refused but row counts changed`)
          if (!(error instanceof GuildstoreError)) {
            problems.push(`${where}: raw error ${String(error).slice(0, 200)}`)
            continue
          }
          if (error instanceof InvalidInputError) outcomes.invalidInput++
          else outcomes.otherTyped++
          const valid = slot.kind === 'id' && isValidId(value, slot.optional === true)
          const acceptable =
            error instanceof InvalidInputError ||
            (valid &&
              (error instanceof NotFoundError ||
                error instanceof ForeignKeyViolationError ||
                error instanceof ConflictError ||
                // an actor, or the user of an authorized operation, who may not act
                ((slot.slot === 'as.actor_id' || AUTHORIZED.has(slot.fn)) &&
                  error instanceof PermissionDeniedError))) ||
            (slot.kind === 'text' && error instanceof UniqueViolationError && slot.writes)
          if (!acceptable) problems.push(`${where}: ${error.name}: ${error.message}`)
          continue
        }
        outcomes.resolved++
        if (slot.kind === 'id' && !isValidId(value, slot.optional === true)) {
          problems.push(`${where}: a malformed id was accepted`)
        }
        if (!slot.writes && (await counts()) !== before)
          problems.push(`${where}: a read changed row counts`)
        if (slot.stored && result && typeof result === 'object') {
          const returned = (result as Record<string, unknown>)[slot.stored.column]
          if (slot.stored.column !== 'password_hash' && returned !== value) {
            problems.push(`${where}: returned ${slot.stored.column} is not verbatim`)
          }
          const { rows } = await sql<{
            v: unknown
          }>`select ${sql.ref(slot.stored.column)} as v from ${sql.table(
            slot.stored.table,
          )} where id = ${slot.stored.id(result)}`.execute(t.db)
          if (rows[0]?.v !== value)
            problems.push(`${where}: stored ${slot.stored.column} is not verbatim`)
        }
      }
    }
    const lines = Object.entries(tried).map(([fn, n]) => `${fn}: ${n}`)
    console.info(
      `[reliability] hostile input: ${Object.values(tried).reduce((a, b) => a + b, 0)} calls over ${
        Object.keys(tried).length
      } functions / ${all.length} slots (${outcomes.resolved} resolved, ${outcomes.invalidInput} InvalidInputError, ${
        outcomes.otherTyped
      } other typed)\n  ${lines.join('\n  ')}`,
    )
    expect(problems).toEqual([])
    expect(Object.keys(tried).length).toBeGreaterThanOrEqual(75)
  }, 300_000) // generous: this ran 80 s with both cores loaded

  it('hostile numbers, bigints and dates (limits, positions, sizes, permissions, expiries): typed refusal or accepted, never raw', async () => {
    const NUMBERS: Record<string, unknown> = {
      nan: Number.NaN,
      negative: -1,
      zero: 0,
      fraction: 1.5,
      huge: 1e12,
      infinity: Number.POSITIVE_INFINITY,
      numericString: '10',
      bigintOverflow: 2n ** 64n,
      bigintNegative: -(2n ** 63n) - 1n,
      nullValue: null,
      object: {},
    }
    const DATES: Record<string, unknown> = {
      invalidDate: new Date('not a date'),
      isoString: '2030-01-01T00:00:00Z',
      number: Date.now(),
      farFuture: new Date(8.64e15),
      farPast: new Date(-8.64e15),
      nullValue: null,
    }
    const w = world
    const f = anyFn
    const slotsN: [string, (v: unknown) => Promise<unknown>][] = [
      ['subscribeEvents.buffer', (v) => subscribeOnce(t.db, { user_id: w.member.id, buffer: v })],
      ['subscribeEvents.poll_ms', (v) => subscribeOnce(t.db, { user_id: w.member.id, poll_ms: v })],
      [
        'listChannelMessages.limit',
        (v) => f.listChannelMessages!(t.db, w.channel.id, { limit: v }),
      ],
      ['listGuildMembers.limit', (v) => f.listGuildMembers!(t.db, w.guild.id, { limit: v })],
      [
        'listReactionUsers.limit',
        (v) => f.listReactionUsers!(t.db, { message_id: w.message.id, emoji: '👍', limit: v }),
      ],
      [
        'readChannelMessages.limit',
        (v) =>
          f.readChannelMessages!(t.db, { user_id: w.owner.id, channel_id: w.channel.id, limit: v }),
      ],
      [
        'searchMessages.limit',
        (v) => f.searchMessages!(t.db, { user_id: w.owner.id, query: 'x', limit: v }),
      ],
      [
        'createRole.permissions',
        (v) => f.createRole!(t.db, { guild_id: w.guild.id, name: 'r', permissions: v }),
      ],
      [
        'createRole.position',
        (v) =>
          f.createRole!(t.db, { guild_id: w.guild.id, name: 'r', permissions: 0n, position: v }),
      ],
      ['updateRole.permissions', (v) => f.updateRole!(t.db, w.role.id, { permissions: v })],
      [
        'createChannel.position',
        (v) =>
          f.createChannel!(t.db, { guild_id: w.guild.id, name: 'c', type: 'text', position: v }),
      ],
      ['updateChannel.position', (v) => f.updateChannel!(t.db, w.channel.id, { position: v })],
      [
        'setChannelOverwrite.allow',
        (v) =>
          f.setChannelOverwrite!(t.db, {
            channel_id: w.channel.id,
            role_id: w.role.id,
            allow: v,
            deny: 0n,
          }),
      ],
      [
        'setChannelOverwrite.deny',
        (v) =>
          f.setChannelOverwrite!(t.db, {
            channel_id: w.channel.id,
            role_id: w.role.id,
            allow: 0n,
            deny: v,
          }),
      ],
      [
        'createInvite.max_uses',
        (v) => f.createInvite!(t.db, { guild_id: w.guild.id, inviter_id: w.owner.id, max_uses: v }),
      ],
      ['listBans.limit', (v) => f.listBans!(t.db, w.guild.id, { limit: v })],
      ['listEvents.limit', (v) => f.listEvents!(t.db, { user_id: w.member.id, limit: v })],
      ['purgeEvents.batch', (v) => f.purgeEvents!(t.db, { older_than: new Date(0), batch: v })],
      ['listAuditLog.limit', (v) => f.listAuditLog!(t.db, w.guild.id, { limit: v })],
      [
        'createAttachment.size',
        (v) =>
          f.createAttachment!(t.db, {
            message_id: w.message.id,
            filename: 'f',
            s3_key: `k/${uniq()}`,
            size: v,
          }),
      ],
    ]
    const slotsD: [string, (v: unknown) => Promise<unknown>][] = [
      [
        'createSession.expires_at',
        (v) =>
          f.createSession!(t.db, {
            user_id: w.owner.id,
            token_hash: gs.hashToken(uniq()),
            expires_at: v,
          }),
      ],
      ['purgeDeletedMessages.older_than', (v) => f.purgeDeletedMessages!(t.db, { older_than: v })],
      ['purgeEvents.older_than', (v) => f.purgeEvents!(t.db, { older_than: v })],
      [
        'purgeDeletedMessagesWithAttachments.older_than',
        (v) => f.purgeDeletedMessagesWithAttachments!(t.db, { older_than: v }),
      ],
      [
        'createInvite.expires_at',
        (v) =>
          f.createInvite!(t.db, { guild_id: w.guild.id, inviter_id: w.owner.id, expires_at: v }),
      ],
      [
        'importMessages.rows[0].created_at',
        (v) =>
          f.importMessages!(t.db, [
            { channel_id: w.channel.id, author_id: w.owner.id, content: 'c', created_at: v },
          ]),
      ],
      [
        'banMember.expires_at',
        (v) => f.banMember!(t.db, { guild_id: w.guild.id, user_id: w.outsider.id, expires_at: v }),
      ],
    ]
    const problems: string[] = []
    let calls = 0
    for (const [slots, inputs] of [
      [slotsN, NUMBERS],
      [slotsD, DATES],
    ] as const) {
      for (const [name, call] of slots) {
        for (const [label, value] of Object.entries(inputs)) {
          calls++
          const before = await counts()
          try {
            await call(value)
          } catch (error) {
            if (!(error instanceof InvalidInputError)) {
              problems.push(
                `${name}(${label}): ${error instanceof GuildstoreError ? error.name : 'raw'} ${String(error).slice(0, 160)}`,
              )
            }
            if ((await counts()) !== before)
              problems.push(`${name}(${label}): refused but counts changed`)
          }
        }
      }
    }
    console.info(
      `[reliability] hostile numbers/dates: ${calls} calls over ${slotsN.length + slotsD.length} slots`,
    )
    expect(problems).toEqual([])
  })

  it('LIKE wildcards in lookups match only themselves', async () => {
    await makeUser(t.db, { username: 'wild_card_user', email: 'wild@example.test' })
    // Not found, or refused as malformed: never a match of another user.
    const none = async (lookup: Promise<unknown>) => {
      const outcome = await lookup.catch((error: unknown) => {
        expect(error).toBeInstanceOf(InvalidInputError)
        return undefined
      })
      expect(outcome).toBeUndefined()
    }
    for (const pattern of ['%', '%%', '_%', 'wild%', 'wild_card_use_', '%user']) {
      await none(gs.findUserByUsername(t.db, pattern))
      await none(gs.findUserCredentials(t.db, pattern))
    }
    for (const pattern of ['%@%', 'wild@%', '_ild@example.test', '%@example.test']) {
      await none(gs.findUserByEmail(t.db, pattern))
      await none(gs.findUserCredentials(t.db, pattern))
    }
    expect((await gs.findUserByUsername(t.db, 'WILD_CARD_USER'))?.username).toBe('wild_card_user')
  })

  it('uppercase UUIDs are valid ids: lookups with them find the row', async () => {
    const w = world
    expect((await gs.findUserById(t.db, w.owner.id.toUpperCase()))?.id).toBe(w.owner.id)
    expect((await gs.findGuildById(t.db, w.guild.id.toUpperCase()))?.id).toBe(w.guild.id)
    expect((await gs.findChannelById(t.db, w.channel.id.toUpperCase()))?.id).toBe(w.channel.id)
    expect((await gs.findUsersByIds(t.db, [w.member.id.toUpperCase()])).map((u) => u.id)).toEqual([
      w.member.id,
    ])
    expect(
      await gs.isGuildMember(t.db, {
        guild_id: w.guild.id.toUpperCase(),
        user_id: w.member.id.toUpperCase(),
      }),
    ).toBe(true)
  })

  it('findUsersByIds with 100 000 ids: typed InvalidInputError (or an answer), never a raw error, in bounded time', async () => {
    const ids = Array.from({ length: 100_000 }, () => unknownId())
    ids[0] = world.owner.id
    const started = Date.now()
    const outcome = await gs.findUsersByIds(t.db, ids).then(
      (users) => ({ users }),
      (error: unknown) => ({ error }),
    )
    expect(Date.now() - started).toBeLessThan(30_000)
    if ('error' in outcome) expect(outcome.error).toBeInstanceOf(InvalidInputError)
    else expect(outcome.users.map((u) => u.id)).toEqual([world.owner.id])
    // And the largest accepted batch works.
    const big = Array.from({ length: 10_000 }, () => unknownId())
    big[5000] = world.member.id
    expect((await gs.findUsersByIds(t.db, big)).map((u) => u.id)).toEqual([world.member.id])
  })

  it('the tables are all still there', async () => {
    const { rows } = await sql<{
      n: number
    }>`select count(*)::int as n from information_schema.tables where table_schema = 'public' and table_name = 'users'`.execute(
      t.db,
    )
    expect(rows[0]?.n).toBe(1)
  })
})
