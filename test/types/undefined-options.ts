/**
 * Issue 27, item 2: a caller that passes `undefined` for an absent option, as
 * `{ before: page.at(-1)?.id }` does. test/package/option-bags.test.ts compiles
 * this file with `exactOptionalPropertyTypes` and `strict` (as `tsc --init` sets
 * them) and runs it: every call must type-check and behave as if the field were
 * left out.
 */
import type { Kysely } from 'kysely'
import type pg from 'pg'
import {
  createAttachment,
  createChannel,
  createDb,
  createGuild,
  createMessage,
  createUser,
  type DB,
  listChannelMessages,
  listChannelReadStates,
  listReactions,
  listReactionUsers,
  migrationStatus,
  readChannelMessages,
  removeReactions,
  runMigrations,
  sendMessage,
} from '../../src/index.ts'

const absent: string | undefined = undefined as string | undefined
const absentNumber: number | undefined = undefined as number | undefined

/** What the calls returned, for the test to compare with the same calls without the fields. */
export interface UndefinedOptionsOutcome {
  pageContents: string[]
  readContents: string[]
  replyTo: string | null
  attachmentType: string | null
  readStates: number
  reactions: number
  reactionUsers: number
  removed: number
  applied: number
  pending: number
}

export async function passUndefinedEverywhere(
  db: Kysely<DB>,
  pool: pg.Pool,
  suffix: string,
): Promise<UndefinedOptionsOutcome> {
  const ada = await createUser(db, { username: `ada_${suffix}`, email: absent })
  const guild = await createGuild(db, { name: 'Engines', owner_id: ada.id })
  const channel = await createChannel(db, { guild_id: guild.id, name: 'general', type: 'text' })
  const first = await createMessage(db, {
    channel_id: channel.id,
    author_id: ada.id,
    content: 'first',
    reply_to: absent,
    mentions: { user_ids: undefined, role_ids: undefined, everyone: undefined },
  })
  const second = await sendMessage(db, {
    channel_id: channel.id,
    author_id: ada.id,
    content: 'second',
    reply_to: absent,
    mentions: undefined,
  })
  const attachment = await createAttachment(db, {
    message_id: second.id,
    filename: 'a.txt',
    s3_key: `k/${suffix}`,
    size: 1,
    content_type: absent,
  })
  const page = await listChannelMessages(db, channel.id, {
    before: absent,
    after: absent,
    limit: absentNumber,
  })
  const read = await readChannelMessages(db, {
    user_id: ada.id,
    channel_id: channel.id,
    before: absent,
    after: absent,
    limit: absentNumber,
  })
  const readStates = await listChannelReadStates(db, { user_id: ada.id, guild_id: guild.id })
  const reactions = await listReactions(db, { message_ids: [first.id], viewer_id: absent })
  const reactionUsers = await listReactionUsers(db, {
    message_id: first.id,
    emoji: '👍',
    after: absent,
    limit: absentNumber,
  })
  const removed = await removeReactions(db, { message_id: first.id, emoji: absent })
  const plain = createDb(pool, {
    log: undefined,
    logParameters: undefined,
    preparedStatements: undefined,
    plugins: undefined,
    replicas: undefined,
    replicaMaxLagMs: undefined,
    readYourWritesTimeoutMs: undefined,
    replicaCheckIntervalMs: undefined,
  })
  const again = await listChannelMessages(plain, channel.id, { limit: absentNumber })
  const { applied } = await runMigrations(pool, {
    schema: absent,
    directory: absent,
    hostDirectory: absent,
    logger: undefined,
    lock: undefined,
    lockTimeoutMs: absentNumber,
  })
  const status = await migrationStatus(pool, {
    schema: absent,
    directory: absent,
    hostDirectory: absent,
  })
  return {
    pageContents: page.map((m) => m.content),
    readContents: read.map((m) => m.content).concat(again.map((m) => m.content)),
    replyTo: first.reply_to,
    attachmentType: attachment.content_type,
    readStates: readStates.length,
    reactions: reactions.length,
    reactionUsers: reactionUsers.length,
    removed,
    applied: applied.length,
    pending: status.filter((s) => s.state === 'pending').length,
  }
}
