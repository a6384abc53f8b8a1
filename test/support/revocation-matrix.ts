/**
 * The revocation matrix of issue 22: every change that can revoke × every
 * concurrent writer × caller isolation levels × every order of their steps,
 * with a victim's sends and reads (which fill the stored permissions) at each
 * point of the order. Oracle: once both transactions ended, every send and
 * read of the victim agrees with computePermissions (or, in a DM, the DM rule)
 * on a fresh snapshot, and no step failed with an untyped error.
 *
 * CI runs a seeded sample (GUILDSTORE_RACE_SAMPLE runs, default 160, seed
 * GUILDSTORE_RACE_SEED); `node scripts/race-matrix.ts` runs all of it.
 * GUILDSTORE_RACE_BEFORE=0008 builds the database from the migrations before
 * 0008 (the 0.2 triggers), to show what the matrix catches there.
 */
import { cpSync, mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Kysely, sql } from 'kysely'
import {
  addGuildMember,
  assignRole,
  banMember,
  blockUser,
  computePermissions,
  createChannel,
  createThread,
  type DB,
  defaultMigrationsDirectory,
  deleteChannelOverwrite,
  deleteRole,
  findOrCreateDmChannel,
  GuildstoreError,
  hasPermission,
  isGuildMember,
  listEvents,
  Permissions,
  readChannelMessages,
  removeChannelMember,
  removeGuildMember,
  removeThreadMember,
  sendMessage,
  setChannelOverwrite,
  timeoutMember,
  transferGuildOwnership,
  unassignRole,
  updateChannel,
  updateRole,
} from '../../src/index.ts'
import { createTestDatabase, type TestDatabase } from '../../src/testing/index.ts'
import { testDatabaseUrl } from './env.ts'
import { makeChannel, makeDm, makeGuild, makeMember, makeRole, makeUser } from './factories.ts'
import {
  allOrders,
  type Interleaver,
  type RunResult,
  type SessionIsolation,
  type SessionSpec,
  stepNames,
} from './interleave.ts'

const { VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY } = Permissions
const NO_SEND = Permissions.VIEW_CHANNEL | Permissions.READ_MESSAGE_HISTORY

/** The world of one run. */
interface World {
  guild: string
  everyone: string
  owner: string
  victim: string
  /** Another user (no guild membership): the target of row-moving UPDATEs. */
  spare: string
  /** Another member of the guild: the target of a moved private-channel membership. */
  spareMember: string
  /** Users the victim has or may get a DM with. */
  dmPartner: string
  newDmPartner: string
  speaker: string
  muted: string
  c1: string
  c2: string
  p1: string
  /** A private thread of c1 (migration 0021) with the victim as a member; c1 also has a public one. */
  pt1: string
  dm: string
  /** The victim's change-feed token when the world was made (migration 0019). */
  feedToken: string
  overwrite?: { channel_id: string; user_id: string }
}

interface Revocation {
  name: string
  /** A host's plain SQL, not a guildstore call: its driver errors are not guildstore's to type. */
  plainSql?: boolean
  /** Changes the world before the run so that `revoke` takes something away. */
  setup?: (db: Kysely<DB>, w: World) => Promise<void>
  revoke: (db: Kysely<DB>, w: World) => Promise<unknown>
}

interface Writer {
  name: string
  write: (db: Kysely<DB>, w: World) => Promise<unknown>
  /**
   * The writer's own rules, checked once both transactions ended (before the
   * oracle's calls): `accepted` when its write and its commit succeeded,
   * `since` the feed's last position before the run. Returns what went wrong.
   */
  check?: (db: Kysely<DB>, w: World, run: { accepted: boolean; since: string }) => Promise<string[]>
}

/** The content of a racing writer's send (`sendWriter`): how its message is found. */
const RACED = 'raced send'

/**
 * The victim's `sendMessage` into `channel` as the racing writer (since 0027
 * a send writes its `message_created` in its own statement). Its rules: a
 * refused send (the write or its commit failed) leaves neither message nor
 * event; an accepted one has exactly one `message_created`; and when the
 * victim may no longer send there, its event comes before (in feed order)
 * every event the revocation wrote, so no reader of the feed sees the
 * message after the revocation event it received.
 */
function sendWriter(name: string, channel: (w: World) => string): Writer {
  return {
    name,
    write: (db, w) =>
      sendMessage(db, { channel_id: channel(w), author_id: w.victim, content: RACED }),
    check: async (db, w, { accepted, since }) => {
      const wrong: string[] = []
      const messages = await db
        .selectFrom('messages')
        .select('id')
        .where('channel_id', '=', channel(w))
        .where('author_id', '=', w.victim)
        .where('content', '=', RACED)
        .execute()
      const { rows: events } = await sql<{
        position: string
        type: string
        message_id: string | null
        found: boolean
      }>`select e.position::text as position, e.type, e.data ->> 'message_id' as message_id,
          exists (select from messages m where m.id = (e.data ->> 'message_id')::uuid) as found
        from guildstore_events e where e.position > ${since}::int8 order by e.position`.execute(db)
      // Messages are never removed here: an event without its message is a rolled-back send's.
      for (const e of events) {
        if (e.type === 'message_created' && !e.found)
          wrong.push(`send: a message_created without its message (${e.message_id})`)
      }
      if (!accepted) {
        if (messages.length > 0) wrong.push(`send: refused, yet ${messages.length} message(s)`)
        return wrong
      }
      const id = messages[0]?.id
      if (messages.length !== 1 || id === undefined) {
        wrong.push(`send: accepted, with ${messages.length} message(s)`)
        return wrong
      }
      const own = events.filter((e) => e.type === 'message_created' && e.message_id === id)
      if (own.length !== 1) wrong.push(`send: accepted, with ${own.length} message_created`)
      const sent = own[0]
      if (sent && !(await wouldSend(db, w, channel(w)))) {
        // Every other event of the run but the victim's sends is the revocation's.
        const revoked = events.find((e) => e.type !== 'message_created')
        if (revoked && BigInt(revoked.position) < BigInt(sent.position))
          wrong.push(
            `feed: the accepted send's message_created after the revocation's ${revoked.type}`,
          )
      }
      return wrong
    },
  }
}

/** @everyone without SEND; the victim sends through the `speaker` role only. */
const speakerOnly = async (db: Kysely<DB>, w: World) => {
  await db.updateTable('roles').set({ permissions: NO_SEND }).where('id', '=', w.everyone).execute()
  await db
    .insertInto('member_roles')
    .values({ guild_id: w.guild, user_id: w.victim, role_id: w.speaker })
    .execute()
}

export const REVOCATIONS: Revocation[] = [
  {
    name: 'role bits lost',
    revoke: (db, w) => updateRole(db, w.everyone, { permissions: NO_SEND }),
  },
  { name: 'role deleted', setup: speakerOnly, revoke: (db, w) => deleteRole(db, w.speaker) },
  {
    name: 'role unassigned',
    setup: speakerOnly,
    revoke: (db, w) =>
      unassignRole(db, { guild_id: w.guild, user_id: w.victim, role_id: w.speaker }),
  },
  {
    name: 'member removed',
    revoke: (db, w) => removeGuildMember(db, { guild_id: w.guild, user_id: w.victim }),
  },
  { name: 'banned', revoke: (db, w) => banMember(db, { guild_id: w.guild, user_id: w.victim }) },
  {
    name: 'ownership transferred',
    setup: async (db, w) => {
      await db
        .updateTable('roles')
        .set({ permissions: NO_SEND })
        .where('id', '=', w.everyone)
        .execute()
      await db.updateTable('guilds').set({ owner_id: w.victim }).where('id', '=', w.guild).execute()
    },
    revoke: (db, w) => transferGuildOwnership(db, { guild_id: w.guild, new_owner_id: w.owner }),
  },
  {
    name: 'overwrite set',
    revoke: (db, w) =>
      setChannelOverwrite(db, {
        channel_id: w.c1,
        role_id: w.everyone,
        allow: 0n,
        deny: SEND_MESSAGES,
      }),
  },
  {
    name: 'overwrite deleted',
    setup: async (db, w) => {
      await db
        .updateTable('roles')
        .set({ permissions: NO_SEND })
        .where('id', '=', w.everyone)
        .execute()
      await db
        .insertInto('channel_overwrites')
        .values({ channel_id: w.c1, guild_id: w.guild, user_id: w.victim, allow: SEND_MESSAGES })
        .execute()
    },
    revoke: (db, w) => deleteChannelOverwrite(db, { channel_id: w.c1, user_id: w.victim }),
  },
  {
    name: 'channel made private',
    revoke: (db, w) => updateChannel(db, w.c1, { is_private: true }),
  },
  {
    name: 'private member removed',
    revoke: (db, w) => removeChannelMember(db, { channel_id: w.p1, user_id: w.victim }),
  },
  {
    name: 'thread member removed',
    revoke: (db, w) => removeThreadMember(db, { thread_id: w.pt1, user_id: w.victim }),
  },
  {
    name: 'DM block',
    revoke: async (db, w) => {
      await blockUser(db, { user_id: w.dmPartner, blocked_user_id: w.victim })
      await blockUser(db, { user_id: w.newDmPartner, blocked_user_id: w.victim })
    },
  },
  {
    name: 'DM participant removed',
    plainSql: true,
    revoke: (db, w) => sql`delete from dm_participants where user_id = ${w.victim}`.execute(db),
  },
  {
    name: 'assignment moved (UPDATE member_roles)',
    plainSql: true,
    setup: speakerOnly,
    revoke: (db, w) =>
      sql`update member_roles set role_id = ${w.muted} where user_id = ${w.victim} and role_id = ${w.speaker}`.execute(
        db,
      ),
  },
  {
    name: 'membership moved (UPDATE guild_members)',
    plainSql: true,
    // Rows that reference the membership would refuse the move (no ON UPDATE CASCADE).
    setup: async (db, w) => {
      await db.deleteFrom('channel_members').where('user_id', '=', w.victim).execute()
    },
    revoke: (db, w) =>
      sql`update guild_members set user_id = ${w.spare} where guild_id = ${w.guild} and user_id = ${w.victim}`.execute(
        db,
      ),
  },
  {
    name: 'private member moved (UPDATE channel_members)',
    plainSql: true,
    revoke: (db, w) =>
      sql`update channel_members set user_id = ${w.spareMember} where channel_id = ${w.p1} and user_id = ${w.victim}`.execute(
        db,
      ),
  },
  {
    name: 'DM participant moved (UPDATE dm_participants)',
    plainSql: true,
    revoke: (db, w) =>
      sql`update dm_participants set user_id = ${w.spare} where user_id = ${w.victim}`.execute(db),
  },
  {
    name: 'timed out',
    revoke: (db, w) =>
      timeoutMember(db, {
        guild_id: w.guild,
        user_id: w.victim,
        until: new Date(Date.now() + 3_600_000),
      }),
  },
  {
    name: 'denied role assigned',
    setup: async (db, w) => {
      await db
        .insertInto('channel_overwrites')
        .values({ channel_id: w.c1, guild_id: w.guild, role_id: w.muted, deny: SEND_MESSAGES })
        .execute()
    },
    revoke: (db, w) => assignRole(db, { guild_id: w.guild, user_id: w.victim, role_id: w.muted }),
  },
]

export const WRITERS: Writer[] = [
  {
    name: 'channel created',
    write: (db, w) => createChannel(db, { guild_id: w.guild, name: 'fresh', type: 'text' }),
  },
  {
    // A thread of c1: its stored permissions must meet every revocation of c1.
    name: 'thread created',
    write: (db, w) => createThread(db, { channel_id: w.c1, author_id: w.owner, name: 'fresh' }),
  },
  {
    name: 'deny overwrite created',
    write: (db, w) =>
      setChannelOverwrite(db, {
        channel_id: w.c2,
        role_id: w.muted,
        allow: 0n,
        deny: SEND_MESSAGES,
      }),
  },
  {
    name: 'role assigned',
    write: (db, w) => assignRole(db, { guild_id: w.guild, user_id: w.victim, role_id: w.muted }),
  },
  {
    name: 'member joined',
    write: (db, w) => addGuildMember(db, { guild_id: w.guild, user_id: w.victim }),
  },
  {
    name: 'timeout lifted',
    write: (db, w) => timeoutMember(db, { guild_id: w.guild, user_id: w.victim, until: null }),
  },
  {
    name: 'DM created',
    write: (db, w) =>
      findOrCreateDmChannel(db, { user_id: w.victim, other_user_id: w.newDmPartner }),
  },
  sendWriter('message sent', (w) => w.c1),
  // A private thread of c1: c1's revocations, and the thread's own membership.
  sendWriter('message sent in a private thread', (w) => w.pt1),
  // The private channel p1: the guild's revocations, and its own membership
  // (private member removed, moved by a plain UPDATE).
  sendWriter('message sent in a private channel', (w) => w.p1),
  sendWriter('DM message sent', (w) => w.dm),
]

export const ISOLATIONS: Exclude<SessionIsolation, 'autocommit'>[] = [
  'read committed',
  'repeatable read',
  'serializable',
]

/** The victim's channels now: the guild's and its DMs. */
async function victimChannels(db: Kysely<DB>, w: World) {
  const guild = await db
    .selectFrom('channels')
    .select('id')
    .where('guild_id', '=', w.guild)
    .execute()
  const dms = await db
    .selectFrom('dm_channels')
    .select(['id', 'user_a', 'user_b'])
    .where((eb) => eb.or([eb('user_a', '=', w.victim), eb('user_b', '=', w.victim)]))
    .execute()
  return { guild: guild.map((c) => c.id), dms }
}

async function trySend(db: Kysely<DB>, w: World, channel_id: string) {
  try {
    await sendMessage(db, { channel_id, author_id: w.victim, content: 'x' })
    return true
  } catch (error) {
    if (!(error instanceof GuildstoreError)) throw error
    return false
  }
}

/** Whether the victim may send into `channel_id` now: a send, rolled back. */
async function wouldSend(db: Kysely<DB>, w: World, channel_id: string): Promise<boolean> {
  const rollback = new Error('rollback')
  let sent = false
  await db
    .transaction()
    .execute(async (trx) => {
      sent = await trySend(trx, w, channel_id)
      throw rollback
    })
    .catch((error: unknown) => {
      if (error !== rollback) throw error
    })
  return sent
}

async function tryRead(db: Kysely<DB>, w: World, channel_id: string) {
  try {
    await readChannelMessages(db, { user_id: w.victim, channel_id, limit: 1 })
    return true
  } catch (error) {
    if (!(error instanceof GuildstoreError)) throw error
    return false
  }
}

/** The victim sends and reads everywhere it may have been (this fills the stored permissions). */
async function fill(db: Kysely<DB>, w: World) {
  const { guild, dms } = await victimChannels(db, w)
  for (const id of [...guild, ...dms.map((d) => d.id)]) {
    await trySend(db, w, id)
    await tryRead(db, w, id)
  }
}

/** Disagreements between the victim's calls and the rule on a fresh snapshot. */
async function oracle(db: Kysely<DB>, w: World): Promise<string[]> {
  const wrong: string[] = []
  const { guild, dms } = await victimChannels(db, w)
  for (const id of guild) {
    const perms = await computePermissions(db, {
      guild_id: w.guild,
      user_id: w.victim,
      channel_id: id,
    })
    const view = hasPermission(perms, VIEW_CHANNEL)
    const send = await trySend(db, w, id)
    const read = await tryRead(db, w, id)
    if (send !== (view && hasPermission(perms, SEND_MESSAGES)))
      wrong.push(`guild channel send=${send}, rule ${perms}`)
    if (read !== (view && hasPermission(perms, READ_MESSAGE_HISTORY)))
      wrong.push(`guild channel read=${read}, rule ${perms}`)
  }
  for (const dm of dms) {
    const other = dm.user_a === w.victim ? dm.user_b : dm.user_a
    const participant = await db
      .selectFrom('dm_participants')
      .select('user_id')
      .where('channel_id', '=', dm.id)
      .where('user_id', '=', w.victim)
      .executeTakeFirst()
    const blocked = await db
      .selectFrom('friendships')
      .select('status')
      .where('status', '=', 'blocked')
      .where((eb) =>
        eb.or([
          eb.and([eb('user_id', '=', w.victim), eb('friend_id', '=', other)]),
          eb.and([eb('user_id', '=', other), eb('friend_id', '=', w.victim)]),
        ]),
      )
      .executeTakeFirst()
    const send = await trySend(db, w, dm.id)
    const read = await tryRead(db, w, dm.id)
    if (send !== (participant !== undefined && blocked === undefined))
      wrong.push(`DM send=${send}, participant=${participant !== undefined}, blocked=${!!blocked}`)
    if (read !== (participant !== undefined)) wrong.push(`DM read=${read}`)
  }
  const bannedMembers = await sql<{ n: number }>`select count(*)::int as n from guild_members m
    join guild_bans b on b.guild_id = m.guild_id and b.user_id = m.user_id
    where b.expires_at is null or b.expires_at > now()`.execute(db)
  if ((bannedMembers.rows[0]?.n ?? 0) > 0) wrong.push('a banned user is a member')
  wrong.push(...(await feedOracle(db, w)))
  return wrong
}

/**
 * The change feed agrees with the rule on the same fresh snapshot: every event
 * the victim reads from the world's start is their own, of a guild they are a
 * member of (and a channel they may view), or of a DM they take part in; and
 * positions only grow.
 */
async function feedOracle(db: Kysely<DB>, w: World): Promise<string[]> {
  const wrong: string[] = []
  let token = w.feedToken
  let last = -1n
  for (;;) {
    const page = await listEvents(db, { user_id: w.victim, after: token, limit: 1000 })
    for (const e of page.events) {
      if (BigInt(e.position) <= last) wrong.push(`feed: ${e.type} out of order`)
      last = BigInt(e.position)
      if (e.user_id === w.victim) continue
      if (e.guild_id !== null) {
        const member = await isGuildMember(db, { guild_id: e.guild_id, user_id: w.victim })
        if (!member) wrong.push(`feed: ${e.type} of a guild the victim is not in`)
        else if (e.channel_id !== null) {
          const perms = await computePermissions(db, {
            guild_id: e.guild_id,
            user_id: w.victim,
            channel_id: e.channel_id,
          })
          if (!hasPermission(perms, VIEW_CHANNEL))
            wrong.push(`feed: ${e.type} of a channel the victim cannot view`)
        }
      } else if (e.channel_id !== null) {
        const participant = await db
          .selectFrom('dm_participants')
          .select('user_id')
          .where('channel_id', '=', e.channel_id)
          .where('user_id', '=', w.victim)
          .executeTakeFirst()
        if (!participant) wrong.push(`feed: ${e.type} of a DM the victim is not in`)
      } else wrong.push(`feed: ${e.type} of another user's stream`)
    }
    if (page.next === token) return wrong
    token = page.next
  }
}

async function makeWorld(db: Kysely<DB>): Promise<World> {
  const owner = await makeUser(db)
  const victim = await makeUser(db)
  const spare = await makeUser(db)
  const spareMember = await makeUser(db)
  const dmPartner = await makeUser(db)
  const newDmPartner = await makeUser(db)
  const guild = await makeGuild(db, owner.id)
  await makeMember(db, guild.id, victim.id)
  await makeMember(db, guild.id, spareMember.id)
  const speaker = await makeRole(db, guild.id, {
    permissions: VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY,
  })
  const muted = await makeRole(db, guild.id, { permissions: 0n })
  const c1 = await makeChannel(db, guild.id)
  const c2 = await makeChannel(db, guild.id)
  const p1 = await makeChannel(db, guild.id, { is_private: true })
  await db
    .insertInto('channel_members')
    .values({ channel_id: p1.id, guild_id: guild.id, user_id: victim.id })
    .execute()
  const thread = (type: 'public_thread' | 'private_thread') =>
    makeChannel(db, guild.id, { type, parent_id: c1.id, auto_archive_minutes: 1440 })
  await thread('public_thread')
  const pt1 = await thread('private_thread')
  await db
    .insertInto('channel_members')
    .values({ channel_id: pt1.id, guild_id: guild.id, user_id: victim.id })
    .execute()
  const dm = await makeDm(db, victim.id, dmPartner.id)
  return {
    guild: guild.id,
    everyone: guild.defaultRole.id,
    owner: owner.id,
    victim: victim.id,
    spare: spare.id,
    spareMember: spareMember.id,
    dmPartner: dmPartner.id,
    newDmPartner: newDmPartner.id,
    speaker: speaker.id,
    muted: muted.id,
    c1: c1.id,
    c2: c2.id,
    p1: p1.id,
    pt1: pt1.id,
    dm: dm.id,
    feedToken: (await listEvents(db, { user_id: victim.id })).next,
  }
}

/** One cell of the matrix: a revocation, a writer, an isolation level, an order. */
export interface Cell {
  revocation: Revocation
  writer: Writer
  isolation: Exclude<SessionIsolation, 'autocommit'>
  order: string[]
}

function sessionsFor(cell: Omit<Cell, 'order'>, w: World): SessionSpec[] {
  // Under READ COMMITTED a transaction has no snapshot of its own to take:
  // the `snap` step exists only under the snapshot levels.
  const snap =
    cell.isolation === 'read committed'
      ? []
      : [{ name: 'snap', run: (db: Kysely<DB>) => sql`select 1`.execute(db) }]
  return [
    {
      name: 'r',
      isolation: cell.isolation,
      steps: [...snap, { name: 'revoke', run: (db) => cell.revocation.revoke(db, w) }],
    },
    {
      name: 'w',
      isolation: cell.isolation,
      steps: [...snap, { name: 'write', run: (db) => cell.writer.write(db, w) }],
    },
    { name: 'f', isolation: 'autocommit', steps: [{ name: 'fill', run: (db) => fill(db, w) }] },
  ]
}

/** Every cell of the matrix, in a fixed order. */
export function allCells(): Cell[] {
  const cells: Cell[] = []
  const dummy = {} as World
  for (const revocation of REVOCATIONS)
    for (const writer of WRITERS)
      for (const isolation of ISOLATIONS) {
        const lists = sessionsFor({ revocation, writer, isolation }, dummy).map(stepNames)
        for (const order of allOrders(lists)) cells.push({ revocation, writer, isolation, order })
      }
  return cells
}

/** A seeded sample (mulberry32), the same cells for the same seed. */
export function sampleCells(cells: Cell[], n: number, seed: number): Cell[] {
  let a = seed >>> 0
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const copy = [...cells]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    ;[copy[i], copy[j]] = [copy[j] as Cell, copy[i] as Cell]
  }
  return copy.slice(0, Math.min(n, copy.length))
}

/** Runs one cell in a new world; returns what went wrong (empty: it held). */
export async function runCell(
  db: Kysely<DB>,
  h: Interleaver,
  cell: Cell,
): Promise<{ wrong: string[]; result: RunResult }> {
  const w = await makeWorld(db)
  await cell.revocation.setup?.(db, w)
  // The feed's last position before the run, for a writer's own rules.
  const since = cell.writer.check
    ? ((
        await sql<{ p: string }>`select coalesce(max(position), 0)::text as p
          from guildstore_events`.execute(db)
      ).rows[0]?.p ?? '0')
    : '0'
  const result = await h.run(sessionsFor(cell, w), cell.order)
  const wrong: string[] = []
  for (const o of result.outcomes) {
    const plain = o.step.startsWith('r.') && cell.revocation.plainSql
    // COMMIT is the caller's own statement, not a guildstore call: under
    // SERIALIZABLE it may refuse with 40001 (the transaction rolled back and is
    // to be retried; the oracle below still checks what was left). Any other
    // error there, and any untyped error of a guildstore call, is wrong.
    const refusedCommit = o.step.endsWith('.commit') && sqlState(o.error) === '40001'
    if (
      o.error !== undefined &&
      !plain &&
      !refusedCommit &&
      !(o.error instanceof GuildstoreError)
    ) {
      wrong.push(`${o.step}: untyped error ${String(o.error)}`)
    }
  }
  if (cell.writer.check) {
    const failed = (step: string) =>
      result.outcomes.some((o) => o.step === step && o.error !== undefined)
    const accepted = !failed('w.write') && !failed('w.commit')
    wrong.push(...(await cell.writer.check(db, w, { accepted, since })))
  }
  wrong.push(...(await oracle(db, w)))
  return { wrong, result }
}

/** The SQLSTATE of a driver error, if it has one. */
function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === 'string' ? code : undefined
}

/** The database of this file: from the migrations before GUILDSTORE_RACE_BEFORE when set. */
export async function raceDatabase(): Promise<TestDatabase> {
  const before = process.env.GUILDSTORE_RACE_BEFORE
  let migrationsDirectory: string | undefined
  if (before) {
    migrationsDirectory = mkdtempSync(join(tmpdir(), 'guildstore-race-'))
    for (const f of readdirSync(defaultMigrationsDirectory())) {
      if (f.endsWith('.sql') && f < before)
        cpSync(join(defaultMigrationsDirectory(), f), join(migrationsDirectory, f))
    }
  }
  return createTestDatabase({
    url: testDatabaseUrl(),
    pool: { max: 4 },
    ...(migrationsDirectory ? { migrationsDirectory } : {}),
  })
}
