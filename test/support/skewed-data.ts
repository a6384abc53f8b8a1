/**
 * Skewed data for plan-stability checks (test/perf/plan-stability.test.ts and
 * bench/plan-stability.ts): one guild whose first channel holds most of the
 * messages, all unread by one member (`reader`), many small channels read to
 * their end, and a user with many DMs (`dmUser`). Built with a few
 * generate_series statements, never one call per row. Autovacuum is switched
 * off on every table first, so the tables stay un-analyzed until the caller
 * runs ANALYZE: the "before" state of a freshly loaded (or freshly restored)
 * database.
 */
import type { Kysely } from 'kysely'
import type pg from 'pg'
import type { DB } from '../../src/index.ts'
import { createGuild } from '../../src/index.ts'

/** Sizes of {@link seedSkewedData}. */
export interface SkewedSizes {
  /** Messages of the big channel (all unread by the reader). */
  bigMessages: number
  /** Channels besides the big one. */
  smallChannels: number
  /** Messages of each small channel. */
  smallMessages: number
  /** Guild members besides the owner and the reader. */
  members: number
  /** DMs of the DM-heavy user. */
  dms: number
  /** Messages of each DM. */
  dmMessages: number
}

/** What {@link seedSkewedData} made. */
export interface SkewedData {
  guild_id: string
  owner_id: string
  /** A plain member (the Member role) with the big channel's whole backlog unread. */
  reader_id: string
  /** A member who posts (sendMessage's author). */
  author_id: string
  /** The user with many DMs. */
  dm_user_id: string
  big_channel_id: string
  small_channel_id: string
  member_role_id: string
  /** Message ids of the big channel: oldest, middle, newest. */
  big_oldest_id: string
  big_middle_id: string
  big_newest_id: string
  /** A word in about one message of 500 ('rareword'), one in every message ('common'). */
  rare_term: string
  common_term: string
}

/** SQL: a UUIDv7 whose 48-bit timestamp is `ms` (time-ordered ids, as guildstore_uuidv7() makes). */
function uuidAt(ms: string): string {
  return `encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing substring(int8send((${ms})::bigint) from 3) from 1 for 6), 52, 1), 53, 1), 'hex')::uuid`
}

/**
 * The sizes of the test and the benchmark: the issue's backlog (60 000 unread
 * messages in one channel), 60 small channels, 1 000 members. Smaller sets do
 * not show every pathology (at 20 000 messages and 200 members the plan cache
 * of the old read-state list still chose its generic plan). Seeds in about 5 s.
 */
export const SKEWED_SIZES: SkewedSizes = {
  bigMessages: 60_000,
  smallChannels: 60,
  smallMessages: 100,
  members: 1000,
  dms: 400,
  dmMessages: 20,
}

/**
 * Loads the skewed data set into an empty migrated database (`pool` and `db`
 * of the same database). Switches autovacuum off on every table of the schema.
 */
export async function seedSkewedData(
  pool: pg.Pool,
  db: Kysely<DB>,
  sizes: SkewedSizes,
): Promise<SkewedData> {
  const c = await pool.connect()
  try {
    const tables = await c.query<{ name: string }>(
      `select quote_ident(relname) as name from pg_class
       where relkind = 'r' and relnamespace = current_schema()::regnamespace`,
    )
    for (const t of tables.rows) {
      await c.query(`alter table ${t.name} set (autovacuum_enabled = false)`)
    }
    const U = sizes.members + 2
    const t0 = Date.now() - 30 * 86_400_000
    // Users 0 (owner), 1 (reader), 2.. (members); user 2 is also the DM-heavy one.
    const users = await c.query<{ id: string }>(
      `insert into users (id, username, email, display_name)
       select ${uuidAt(`${t0 - 86_400_000} + i`)}, 'skew' || i, 'skew' || i || '@example.com', 'Skew ' || i
       from generate_series(0, $1::int - 1) i
       returning id`,
      [U + sizes.dms],
    )
    const ids = users.rows.map((r) => r.id).sort()
    const owner_id = ids[0] as string
    const reader_id = ids[1] as string
    const author_id = ids[3] as string
    const dm_user_id = ids[2] as string
    const guild = await createGuild(db, { name: 'Skewed', owner_id })
    await c.query('create temp table skew_users (idx int primary key, id uuid not null)')
    await c.query(
      'insert into skew_users select i - 1, id from unnest($1::uuid[]) with ordinality as u(id, i)',
      [ids],
    )
    await c.query(
      `insert into guild_members (guild_id, user_id)
       select $1, id from skew_users where idx between 1 and $2`,
      [guild.id, U - 1],
    )
    const role = await c.query<{ id: string }>(
      `insert into roles (guild_id, name, permissions, position) values ($1, 'Member', 0, 1) returning id`,
      [guild.id],
    )
    const member_role_id = role.rows[0]?.id as string
    await c.query(
      `insert into member_roles (guild_id, user_id, role_id)
       select $1, id, $2 from skew_users where idx between 1 and $3`,
      [guild.id, member_role_id, U - 1],
    )
    // Channel 0 is the big one; 1..smallChannels the small ones.
    const channels = await c.query<{ id: string; position: number }>(
      `insert into channels (id, guild_id, name, position)
       select ${uuidAt(`${t0} + i`)}, $1, 'ch-' || i, i from generate_series(0, $2::int) i
       returning id, position`,
      [guild.id, sizes.smallChannels],
    )
    const byPosition = channels.rows.sort((a, b) => a.position - b.position)
    const big_channel_id = byPosition[0]?.id as string
    const small_channel_id = byPosition[1]?.id as string
    // Messages: time-ordered ids, authors among the members (never the reader),
    // every 500th has the rare word. Positions are given (in id order), so the
    // per-row counter trigger does not run (60 000 updates of one channel row
    // in one transaction cost minutes); channels.last_seq is set after.
    const content = `'common word ' || i || case when i % 500 = 7 then ' rareword' else '' end`
    const author = `(select id from skew_users where idx = 2 + i % ${sizes.members})`
    await c.query(
      `insert into messages (id, channel_id, author_id, content, created_at, seq)
       select ${uuidAt(`${t0 + 3_600_000} + i * 10`)}, $1, ${author}, ${content},
         to_timestamp((${t0 + 3_600_000} + i * 10) / 1000.0), i
       from generate_series(1, $2::int) i`,
      [big_channel_id, sizes.bigMessages],
    )
    await c.query(
      `insert into messages (id, channel_id, author_id, content, created_at, seq)
       select ${uuidAt(`${t0 + 7_200_000} + ch.position * 100000 + i * 10`)}, ch.id, ${author}, ${content},
         to_timestamp((${t0 + 7_200_000} + ch.position * 100000 + i * 10) / 1000.0), i
       from channels ch cross join generate_series(1, $2::int) i
       where ch.guild_id = $1 and ch.position > 0`,
      [guild.id, sizes.smallMessages],
    )
    // Mentions in the big channel: the reader every 50th message, the Member
    // role every 100th, @everyone every 200th (channel_id, seq and author_id
    // copied from the message, as sendMessage writes them).
    await c.query(
      `insert into message_mentions (message_id, channel_id, seq, author_id, user_id, role_id, everyone)
       select m.id, m.channel_id, m.seq, m.author_id, t.user_id, t.role_id, t.everyone
       from messages m cross join lateral (
         select $2::uuid as user_id, null::uuid as role_id, false as everyone where m.seq % 50 = 0
         union all select null, $3::uuid, false where m.seq % 100 = 0
         union all select null, null, true where m.seq % 200 = 0
       ) t
       where m.channel_id = $1`,
      [big_channel_id, reader_id, member_role_id],
    )
    // The reader has read every small channel to its end, and never the big one.
    await c.query(
      `insert into channel_read_states (user_id, channel_id, last_read_seq, last_read_message_id)
       select $1, m.channel_id, m.seq, m.id
       from (select distinct on (channel_id) channel_id, seq, id from messages
             where channel_id in (select id from channels where guild_id = $2 and position > 0)
             order by channel_id, seq desc) m`,
      [reader_id, guild.id],
    )
    // DMs of the DM-heavy user with users beyond the guild's.
    await c.query(
      `create temp table skew_dms as
       select k, ${uuidAt(`${t0 + 86_400_000} + k`)} as id, u.id as other
       from generate_series(1, $1::int) k join skew_users u on u.idx = ${U} + k - 1`,
      [sizes.dms],
    )
    await c.query(`insert into channels (id, type) select id, 'dm' from skew_dms`)
    await c.query(
      `insert into dm_channels (id, user_a, user_b)
       select id, least($1::uuid, other), greatest($1::uuid, other) from skew_dms`,
      [dm_user_id],
    )
    await c.query(
      `insert into dm_participants (channel_id, user_id)
       select id, $1::uuid from skew_dms union all select id, other from skew_dms`,
      [dm_user_id],
    )
    await c.query(
      `insert into messages (id, channel_id, author_id, content, created_at, seq)
       select ${uuidAt(`${t0 + 2 * 86_400_000} + d.k * 1000 + i`)}, d.id,
         case when i % 2 = 0 then $1::uuid else d.other end, ${content},
         to_timestamp((${t0 + 2 * 86_400_000} + d.k * 1000 + i) / 1000.0), i
       from skew_dms d cross join generate_series(1, $2::int) i`,
      [dm_user_id, sizes.dmMessages],
    )
    await c.query(`update channels c set last_seq = m.last_seq
      from (select channel_id, max(seq) as last_seq from messages group by channel_id) m
      where c.id = m.channel_id`)
    // The DM user has read half of their DMs to the end.
    await c.query(
      `insert into channel_read_states (user_id, channel_id, last_read_seq, last_read_message_id)
       select $1, m.channel_id, m.seq, m.id
       from (select distinct on (channel_id) channel_id, seq, id from messages
             where channel_id in (select id from skew_dms where k % 2 = 0)
             order by channel_id, seq desc) m`,
      [dm_user_id],
    )
    const big = await c.query<{ oldest: string; middle: string; newest: string }>(
      `select (select id from messages where channel_id = $1 order by seq limit 1) as oldest,
         (select id from messages where channel_id = $1 order by seq offset $2 limit 1) as middle,
         (select id from messages where channel_id = $1 order by seq desc limit 1) as newest`,
      [big_channel_id, Math.floor(sizes.bigMessages / 2)],
    )
    const b = big.rows[0] as { oldest: string; middle: string; newest: string }
    await c.query('drop table skew_users, skew_dms')
    return {
      guild_id: guild.id,
      owner_id,
      reader_id,
      author_id,
      dm_user_id,
      big_channel_id,
      small_channel_id,
      member_role_id,
      big_oldest_id: b.oldest,
      big_middle_id: b.middle,
      big_newest_id: b.newest,
      rare_term: 'rareword',
      common_term: 'common',
    }
  } finally {
    c.release()
  }
}
