/**
 * Builds the benchmark data set into its own database, `guildstore_bench`, on
 * the server of BENCH_DATABASE_URL / TEST_DATABASE_URL (else the local server).
 *
 *   node bench/generate.ts [--messages 10000000] [--rebuild]
 *
 * Everything is generated inside PostgreSQL (`INSERT … SELECT generate_series`):
 * no row crosses the wire. Messages are loaded with the table's secondary
 * indexes and foreign keys dropped (re-created afterwards, identical definitions,
 * checked), in chunks over two connections. A marker table (`bench.meta`) records
 * the parameters; a later run with the same parameters reuses the data set.
 */
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { runMigrations } from '../src/migrations/index.ts'
import { DEFAULT_PERMISSIONS, Permissions } from '../src/permissions/permissions.ts'
import { COMMON, RARE } from './vocabulary.ts'

/** Size of the data set. */
export interface DatasetParams {
  users: number
  guilds: number
  channels: number
  messages: number
  dmPairs: number
  friendships: number
}

export const DEFAULT_PARAMS: DatasetParams = {
  users: 10_000,
  guilds: 200,
  channels: 2_000,
  messages: 1_000_000,
  dmPairs: 5_000,
  friendships: 20_000,
}

/** Bump when the generator's output changes, so old data sets are rebuilt. */
const GENERATOR_VERSION = 5
/** Distinct message texts; messages draw from this pool. */
const CONTENT_POOL = 100_000
/** Share of messages sent in DMs. */
const DM_SHARE = 0.05
/** Share of guild messages that go to the busiest channel outright (it also gets a tail share). */
const HEAD_SHARE = 0.2
/** Members of a private channel (the first N members of its guild). */
const PRIVATE_MEMBERS = 40
/** Messages per INSERT chunk. */
const CHUNK = 100_000

/** What the bench needs to know about the built data set. */
export interface DatasetInfo {
  url: string
  params: DatasetParams
  reused: boolean
  buildSeconds: number
  /** The busiest channel: id, guild, live message count. */
  busiest: { channel_id: string; guild_id: string; live_messages: number; share: number }
  /** A member (not owner, no admin role) of the busiest guild: for reads, search, permissions. */
  member_id: string
  /** The user with most DMs. */
  dm_user_id: string
  dm_user_dm_count: number
  /** An existing DM pair of dm_user_id (not blocked). */
  dm_other_user_id: string
  /** A private channel of the busiest guild where member_id is a channel member. */
  private_channel_id: string
  /** A quiet text channel of the busiest guild, where the write scenarios insert (cleaned after). */
  write_channel_id: string
  /** The newest generated message id: the bench deletes what it wrote above it. */
  max_message_id: string
  counts: Record<string, number>
  tableSizes: Record<string, string>
}

/** The admin URL (any database on the server). */
export function adminUrl(env = process.env): string {
  return (
    env.BENCH_DATABASE_URL ?? env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
  )
}

/** The bench database's name (`BENCH_DATABASE` overrides it, e.g. for a small side data set). */
export const BENCH_DATABASE = process.env.BENCH_DATABASE ?? 'guildstore_bench'

function withDatabase(url: string, database: string): string {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

const log = (msg: string) => process.stderr.write(`[generate] ${msg}\n`)

function elapsed(start: number): string {
  return `${((performance.now() - start) / 1000).toFixed(1)}s`
}

async function migrationsChecksum(): Promise<string> {
  const dir = fileURLToPath(new URL('../migrations/', import.meta.url))
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort()
  const h = createHash('sha1')
  for (const f of files) h.update(f).update(await readFile(dir + f))
  return h.digest('hex').slice(0, 16)
}

/** SQL expression: a UUIDv7 whose 48-bit timestamp is `ms` (like guildstore_uuidv7(), at a given time). */
function uuidAt(ms: string): string {
  return `encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing substring(int8send((${ms})::bigint) from 3) from 1 for 6), 52, 1), 53, 1), 'hex')::uuid`
}

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: 'guildstore-bench-gen' })
  await c.connect()
  await c.query(
    "set maintenance_work_mem = '512MB'; set work_mem = '128MB'; set synchronous_commit = off",
  )
  return c
}

/**
 * Returns the bench database, building it when it is missing, was built with
 * other parameters, or `rebuild` is set.
 */
export async function ensureDataset(
  options: { params?: Partial<DatasetParams>; rebuild?: boolean } = {},
): Promise<DatasetInfo> {
  const params = { ...DEFAULT_PARAMS, ...options.params }
  const admin = adminUrl()
  const url = withDatabase(admin, BENCH_DATABASE)
  const marker = JSON.stringify({
    ...params,
    generator: GENERATOR_VERSION,
    migrations: await migrationsChecksum(),
  })

  if (!options.rebuild) {
    const existing = await readMarker(url)
    if (existing?.marker === marker) {
      log(`reusing ${BENCH_DATABASE} (same parameters; --rebuild to force)`)
      return { ...(existing.info as DatasetInfo), url, reused: true }
    }
    if (existing) log('existing data set has other parameters: rebuilding')
  }

  const start = performance.now()
  const a = new pg.Client({ connectionString: admin })
  await a.connect()
  try {
    await a.query(`drop database if exists ${BENCH_DATABASE} with (force)`)
    await a.query(`create database ${BENCH_DATABASE}`)
  } finally {
    await a.end()
  }
  const mpool = new pg.Pool({ connectionString: url, max: 1 })
  try {
    await runMigrations(mpool)
  } finally {
    await mpool.end()
  }
  log(`created and migrated ${BENCH_DATABASE} (${elapsed(start)})`)

  const c1 = await connect(url)
  const c2 = await connect(url)
  try {
    await build(c1, c2, params, start)
    const info = await describe(c1, params)
    const buildSeconds = (performance.now() - start) / 1000
    const full = { ...info, url, params, reused: false, buildSeconds }
    await c1.query('create table bench.meta (marker text not null, info jsonb not null)')
    await c1.query('insert into bench.meta values ($1, $2)', [marker, JSON.stringify(full)])
    log(`done in ${buildSeconds.toFixed(1)}s`)
    return full
  } finally {
    await c1.end()
    await c2.end()
  }
}

async function readMarker(url: string): Promise<{ marker: string; info: unknown } | undefined> {
  const c = new pg.Client({ connectionString: url })
  try {
    await c.connect()
  } catch {
    return undefined // no such database
  }
  try {
    const r = await c.query('select marker, info from bench.meta limit 1')
    return r.rows[0]
  } catch {
    return undefined
  } finally {
    await c.end()
  }
}

async function build(c1: pg.Client, c2: pg.Client, p: DatasetParams, start: number) {
  const step = async (label: string, fn: () => Promise<unknown>) => {
    const t = performance.now()
    await fn()
    log(`${label} (${elapsed(t)}, total ${elapsed(start)})`)
  }
  const U = p.users
  const G = p.guilds
  const C = Math.max(p.channels, G)
  const D = p.dmPairs
  const N = p.messages
  // Time line: users, guilds, channels and DMs are made in the year before the
  // messages; messages span the year that ends one hour before the build.
  const end = Date.now() - 3_600_000
  const span = 365 * 86_400_000
  const t0 = end - span
  const msgStep = Math.max(1, Math.floor(span / N))
  const tUsers = t0 - 400 * 86_400_000

  await c1.query('create schema bench')

  await step(`users: ${U}`, async () => {
    await c1.query(`
      create table bench.u as
        select i as idx, ${tUsers} + i::bigint * 60000 as ts, null::uuid as id from generate_series(0, ${U - 1}) i;
      update bench.u set id = ${uuidAt('ts')};
      alter table bench.u add primary key (idx);
      insert into users (id, username, email, password_hash, display_name, status, created_at, updated_at)
      select id, 'user' || idx, 'user' || idx || '@example.com',
        '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$' || md5(idx::text),
        'User ' || idx, (array['online','away','busy','offline'])[1 + idx % 4]::user_status,
        to_timestamp(ts / 1000.0), to_timestamp(ts / 1000.0)
      from bench.u;`)
  })

  // Guild g: members are the users (off + k) % U, k < size; the owner is k = 0.
  // Sizes are skewed: guild 0 is the biggest.
  await step(`guilds: ${G}, members, roles`, async () => {
    const maxSize = Math.min(Math.floor(U / 2), 5000)
    const tg = tUsers + U * 60000
    await c1.query(`
      create table bench.g as
        select g as idx, (g * 7919) % ${U} as off,
          least(${U}, greatest(30, floor(${maxSize} / power(g + 1, 0.8))::int)) as size,
          ${tg} + g::bigint * 3600000 as ts, null::uuid as id
        from generate_series(0, ${G - 1}) g;
      update bench.g set id = ${uuidAt('ts')};
      alter table bench.g add primary key (idx);
      insert into guilds (id, name, owner_id, created_at, updated_at)
      select g.id, 'Guild ' || g.idx, u.id, to_timestamp(g.ts / 1000.0), to_timestamp(g.ts / 1000.0)
      from bench.g g join bench.u u on u.idx = g.off;
      -- Generated members are never banned: skip the per-row ban-lock trigger
      -- (migration 0004), whose advisory locks would exhaust the lock table.
      set session_replication_role = replica;
      insert into guild_members (guild_id, user_id, joined_at)
      select g.id, u.id, to_timestamp((g.ts + k * 1000) / 1000.0)
      from bench.g g cross join lateral generate_series(0, g.size - 1) k
      join bench.u u on u.idx = (g.off + k) % ${U};
      set session_replication_role = origin;
      create table bench.r as
        select g.idx as guild_idx, r.kind, r.position, r.perms, r.name, ${uuidAt('g.ts + r.position')} as id, g.id as guild_id, g.ts
        from bench.g g cross join (values
          ('default', 0, ${DEFAULT_PERMISSIONS}::bigint, '@everyone'),
          ('member', 1, ${DEFAULT_PERMISSIONS | Permissions.EMBED_LINKS | Permissions.ADD_REACTIONS | Permissions.STREAM}::bigint, 'Member'),
          ('moderator', 2, ${DEFAULT_PERMISSIONS | Permissions.MANAGE_MESSAGES | Permissions.KICK_MEMBERS | Permissions.MUTE_MEMBERS | Permissions.MODERATE_MEMBERS}::bigint, 'Moderator'),
          ('admin', 3, ${Permissions.ADMINISTRATOR}::bigint, 'Admin')
        ) as r(kind, position, perms, name);
      insert into roles (id, guild_id, name, permissions, position, is_default, created_at)
      select id, guild_id, name, perms, position, kind = 'default', to_timestamp(ts / 1000.0) from bench.r;
      insert into member_roles (guild_id, user_id, role_id)
      select g.id, u.id, r.id
      from bench.g g cross join lateral generate_series(1, g.size - 1) k
      join bench.u u on u.idx = (g.off + k) % ${U}
      join bench.r r on r.guild_idx = g.idx and (
        (r.kind = 'member' and k % 5 = 1) or (r.kind = 'moderator' and k % 23 = 2) or (r.kind = 'admin' and k % 97 = 3));`)
  })

  // Channel c belongs to guild c % G at position c / G. Position 0 is #general;
  // position 2 is private (channel_members: the guild's first PRIVATE_MEMBERS
  // members); position 3 is a voice channel.
  await step(`channels: ${C}`, async () => {
    const tc = tUsers + U * 60000 + G * 3600000
    await c1.query(`
      create table bench.c as
        select c as idx, c % ${G} as guild_idx, c / ${G} as position,
          ${tc} + c::bigint * 1000 as ts, null::uuid as id
        from generate_series(0, ${C - 1}) c;
      update bench.c set id = ${uuidAt('ts')};
      insert into channels (id, guild_id, name, type, topic, position, is_private, created_at, updated_at)
      select c.id, g.id,
        case c.position when 0 then 'general' when 1 then 'random' else 'channel-' || c.position end,
        (case when c.position = 3 then 'voice' else 'text' end)::channel_type,
        case when c.position = 0 then 'General chat' end,
        c.position, c.position = 2, to_timestamp(c.ts / 1000.0), to_timestamp(c.ts / 1000.0)
      from bench.c c join bench.g g on g.idx = c.guild_idx;
      insert into channel_members (channel_id, guild_id, user_id, added_at)
      select c.id, g.id, u.id, to_timestamp(c.ts / 1000.0)
      from bench.c c join bench.g g on g.idx = c.guild_idx
      cross join lateral generate_series(0, least(g.size, ${PRIVATE_MEMBERS}) - 1) k
      join bench.u u on u.idx = (g.off + k) % ${U}
      where c.position = 2;`)
  })

  // DM pairs: one side skewed towards low user indexes (power users with many DMs).
  await step(`dm pairs: ${D}`, async () => {
    const td = tUsers + U * 60000 + G * 3600000 + C * 1000
    await c1.query(`
      create table bench.dm as
        select (row_number() over (order by r) - 1)::int as idx, x as a_idx, y as b_idx,
          least(x, y) as lo, greatest(x, y) as hi,
          ${td} + (row_number() over (order by r))::bigint * 1000 as ts, null::uuid as id
        from (
          select distinct on (least(x, y), greatest(x, y)) x, y, random() as r
          from (select floor(${U} * power(random(), 2))::int as x, floor(${U} * random())::int as y
                from generate_series(1, ${Math.ceil(D * 1.5) + 100})) t
          where x <> y
        ) d
        order by r
        limit ${D};
      update bench.dm set id = ${uuidAt('ts')};
      insert into channels (id, type, created_at, updated_at)
      select id, 'dm', to_timestamp(ts / 1000.0), to_timestamp(ts / 1000.0) from bench.dm;
      insert into dm_channels (id, user_a, user_b, created_at)
      select d.id, least(a.id, b.id), greatest(a.id, b.id), to_timestamp(d.ts / 1000.0)
      from bench.dm d join bench.u a on a.idx = d.a_idx join bench.u b on b.idx = d.b_idx;
      insert into dm_participants (channel_id, user_id, joined_at)
      select d.id, u.id, to_timestamp(d.ts / 1000.0)
      from bench.dm d join bench.u u on u.idx in (d.a_idx, d.b_idx);`)
  })

  // Friendships: accepted pairs (two rows), pending requests, a few blocks; never
  // between a DM pair (a block there would refuse findOrCreateDmChannel); half the
  // DM pairs are friends.
  await step(`friendships: ${p.friendships} accepted pairs + pending + blocked`, async () => {
    const pending = Math.floor(p.friendships / 8)
    const blocked = Math.floor(p.friendships / 50)
    const total = p.friendships + pending + blocked
    await c1.query(`
      create table bench.fp as
        select (row_number() over (order by r))::int as n, x, y from (
          select distinct on (least(x, y), greatest(x, y)) x, y, random() as r
          from (select floor(${U} * power(random(), 1.5))::int as x, floor(${U} * random())::int as y
                from generate_series(1, ${Math.ceil(total * 1.3) + 100})) t
          where x <> y and not exists (
            select 1 from bench.dm d where d.lo = least(t.x, t.y) and d.hi = greatest(t.x, t.y))
        ) d order by r limit ${total};
      insert into bench.fp (n, x, y)
        select ${total} + idx + 1, a_idx, b_idx from bench.dm where idx % 2 = 0;
      insert into friendships (user_id, friend_id, status, created_at, updated_at)
      select a.id, b.id, s.status::friendship_status, now() - interval '30 days', now() - interval '30 days'
      from bench.fp f
      cross join lateral (
        select f.x as from_idx, f.y as to_idx,
          case when f.n <= ${p.friendships} or f.n > ${total} then 'accepted'
               when f.n <= ${p.friendships + pending} then 'pending' else 'blocked' end as status
        union all
        select f.y, f.x, 'accepted' where f.n <= ${p.friendships} or f.n > ${total}
      ) s
      join bench.u a on a.idx = s.from_idx join bench.u b on b.idx = s.to_idx;`)
  })

  await step(`content pool: ${CONTENT_POOL} texts`, async () => {
    const arr = (words: readonly string[]) =>
      `array[${words.map((w) => `'${w.replaceAll("'", "''")}'`).join(',')}]`
    await c1.query(`
      create table bench.content as
        select c as idx, (
          select string_agg(case when w.k > 0 and random() < 0.0002
              then v.rare[1 + floor(random() * cardinality(v.rare))::int]
              when random() < 0.15 then 'term' || floor(random() * 2000)::int
              else v.common[1 + floor(cardinality(v.common) * power(random(), 3))::int] end, ' ')
          from generate_series(1, 3 + c % 15) w(k)
        ) as content
        from generate_series(0, ${CONTENT_POOL - 1}) c,
          (select ${arr(COMMON)} as common, ${arr(RARE)} as rare) v;
      alter table bench.content add primary key (idx);`)
  })

  // Message targets: key >= 0 is a guild text channel ranked by busyness
  // (#general of the biggest guild first), key < 0 a DM (-1 - dm index).
  await c1.query(`
    create table bench.mc as
      select (row_number() over (order by c.position, c.guild_idx) - 1)::int as key, c.id as channel_id,
        g.off, case when c.position = 2 then least(g.size, ${PRIVATE_MEMBERS}) else g.size end as size,
        null::int as a_idx, null::int as b_idx
      from bench.c c join bench.g g on g.idx = c.guild_idx
      where c.position <> 3;
    insert into bench.mc select -1 - idx, id, null, null, a_idx, b_idx from bench.dm;
    alter table bench.mc add primary key (key);
    analyze bench.mc; analyze bench.u; analyze bench.content;`)
  const T = (
    await c1.query<{ n: number }>('select count(*)::int as n from bench.mc where key >= 0')
  ).rows[0]!.n

  // Load messages with only the table, then build the indexes and foreign keys.
  const indexes = await c1.query<{ indexname: string; indexdef: string }>(
    "select indexname, indexdef from pg_indexes where schemaname = 'public' and tablename = 'messages' order by indexname",
  )
  const fks = await c1.query<{ conname: string; rel: string; def: string }>(
    `select conname, conrelid::regclass::text as rel, pg_get_constraintdef(oid) as def from pg_constraint
     where contype = 'f' and (conrelid = 'messages'::regclass or confrelid = 'messages'::regclass) order by conname`,
  )
  for (const fk of fks.rows) await c1.query(`alter table ${fk.rel} drop constraint ${fk.conname}`)
  await c1.query('alter table messages drop constraint messages_pkey')
  for (const ix of indexes.rows) {
    if (ix.indexname !== 'messages_pkey') await c1.query(`drop index ${ix.indexname}`)
  }

  const chunks: Array<[number, number]> = []
  for (let lo = 0; lo < N; lo += CHUNK) chunks.push([lo, Math.min(N, lo + CHUNK)])
  let done = 0
  const tMsg = performance.now()
  const insertChunk = (lo: number, hi: number) => `
    insert into messages (id, channel_id, author_id, content, created_at, edited_at, deleted_at, seq)
    select ${uuidAt('s.ts')}, mc.channel_id, u.id, ct.content, to_timestamp(s.ts / 1000.0),
      case when s.r5 < 0.03 then to_timestamp(s.ts / 1000.0) + interval '5 minutes' end,
      case when s.r5 >= 0.99 then to_timestamp(s.ts / 1000.0) + interval '1 hour' end,
      -- The position is supplied (the global row number: unique, in id order), so the
      -- channel-counter trigger does not run: two loaders taking channel row locks in
      -- different orders would deadlock. channels.last_seq is set after the load.
      s.i + 1
    from (
      select i, ${t0}::bigint + i::bigint * ${msgStep} as ts,
        random() as r1, random() as r2, random() as r3, random() as r4, random() as r5
      from generate_series(${lo}, ${hi - 1}) i
    ) s
    join bench.mc mc on mc.key = case
      when s.r1 < ${DM_SHARE} then -1 - floor(${D} * s.r2 * s.r2)::int
      when s.r2 < ${HEAD_SHARE} then 0
      else floor(${T} * power((s.r2 - ${HEAD_SHARE}) / ${1 - HEAD_SHARE}, 3))::int end
    join bench.u u on u.idx = case
      when mc.a_idx is not null then (case when s.r3 < 0.5 then mc.a_idx else mc.b_idx end)
      else (mc.off + floor(s.r3 * mc.size)::int) % ${U} end
    join bench.content ct on ct.idx = floor(s.r4 * ${CONTENT_POOL})::int`
  const worker = async (c: pg.Client) => {
    for (;;) {
      const chunk = chunks.shift()
      if (!chunk) return
      await c.query(insertChunk(chunk[0], chunk[1]))
      done += chunk[1] - chunk[0]
      const rate = done / ((performance.now() - tMsg) / 1000)
      log(
        `messages ${done}/${N} (${Math.round((100 * done) / N)}%, ${Math.round(rate)}/s, total ${elapsed(start)})`,
      )
    }
  }
  await Promise.all([worker(c1), worker(c2)])
  await c1.query(`update channels c set last_seq = m.last_seq
    from (select channel_id, max(seq) as last_seq from messages group by channel_id) m
    where c.id = m.channel_id`)

  await step('primary key', () =>
    c1.query(
      'create unique index messages_pkey on messages (id); alter table messages add constraint messages_pkey primary key using index messages_pkey',
    ),
  )
  await step('replies (1% of messages answer the previous one in their channel)', () =>
    c1.query(`
      update messages m set reply_to = x.prev
      from (select id, lag(id) over (partition by channel_id order by id) as prev, random() as r from messages) x
      where x.r < 0.01 and x.prev is not null and m.id = x.id`),
  )
  await step('secondary indexes (2 connections)', async () => {
    const rest = indexes.rows.filter((i) => i.indexname !== 'messages_pkey')
    const gin = rest.filter((i) => /using gin/i.test(i.indexdef))
    const btree = rest.filter((i) => !/using gin/i.test(i.indexdef))
    const run = async (c: pg.Client, list: typeof rest) => {
      for (const ix of list) {
        const t = performance.now()
        await c.query(ix.indexdef)
        log(`  ${ix.indexname} (${elapsed(t)})`)
      }
    }
    await Promise.all([run(c1, gin), run(c2, btree)])
  })
  await step('foreign keys', async () => {
    for (const fk of fks.rows) {
      await c1.query(`alter table ${fk.rel} add constraint ${fk.conname} ${fk.def}`)
    }
  })
  const after = await c1.query<{ indexname: string; indexdef: string }>(
    "select indexname, indexdef from pg_indexes where schemaname = 'public' and tablename = 'messages' order by indexname",
  )
  if (JSON.stringify(after.rows) !== JSON.stringify(indexes.rows)) {
    throw new Error('messages indexes differ from the migrated schema after the load')
  }

  await step('DM read markers', () =>
    c1.query(`
      update dm_participants p set last_read_message_id = x.mid
      from (select m.channel_id, percentile_disc(0.8) within group (order by m.id) as mid
            from messages m join bench.dm d on d.id = m.channel_id
            where m.deleted_at is null group by m.channel_id) x
      where p.channel_id = x.channel_id and hashtext(p.user_id::text) % 10 <> 0`),
  )
  await step('vacuum analyze', () => c1.query('vacuum (analyze) '))
}

async function describe(
  c: pg.Client,
  p: DatasetParams,
): Promise<Omit<DatasetInfo, 'url' | 'params' | 'reused' | 'buildSeconds'>> {
  const one = async <T>(q: string): Promise<T> => (await c.query(q)).rows[0] as T
  const busiest = await one<{ channel_id: string; guild_id: string; live_messages: number }>(`
    select m.channel_id, c.guild_id, count(*)::int as live_messages from messages m join channels c on c.id = m.channel_id
    where m.deleted_at is null group by 1, 2 order by 3 desc limit 1`)
  const total = await one<{ n: number }>(
    'select count(*)::int as n from messages where deleted_at is null',
  )
  // A plain member of the biggest guild (k = 6: Member role only) who is also in the private channel.
  const member = await one<{ id: string }>(`
    select u.id from bench.g g join bench.u u on u.idx = (g.off + 6) % ${p.users} where g.idx = 0`)
  const priv = await one<{ id: string }>(
    'select c.id from bench.c c where c.guild_idx = 0 and c.position = 2',
  )
  const write = await one<{ id: string }>(`
    select c.id from bench.c c where c.guild_idx = 0 and c.position = (select max(position) from bench.c where guild_idx = 0 and position not in (2, 3))`)
  const dmUser = await one<{ user_id: string; n: number }>(`
    select user_id, count(*)::int as n from dm_participants group by 1 order by 2 desc limit 1`)
  const other = await one<{ id: string }>(`
    select case when d.user_a = '${dmUser.user_id}' then d.user_b else d.user_a end as id
    from dm_channels d join dm_participants p on p.channel_id = d.id and p.user_id = '${dmUser.user_id}'
    where not exists (select 1 from friendships f where f.status = 'blocked'
      and ((f.user_id = d.user_a and f.friend_id = d.user_b) or (f.user_id = d.user_b and f.friend_id = d.user_a)))
    order by d.id limit 1`)
  const max = await one<{ id: string }>('select id from messages order by id desc limit 1')
  const counts: Record<string, number> = {}
  for (const t of [
    'users',
    'guilds',
    'guild_members',
    'roles',
    'member_roles',
    'channels',
    'channel_members',
    'messages',
    'dm_channels',
    'dm_participants',
    'friendships',
  ]) {
    counts[t] = (await one<{ n: number }>(`select count(*)::int as n from ${t}`)).n
  }
  const sizes = await c.query<{ name: string; size: string }>(`
    select relname as name, pg_size_pretty(pg_total_relation_size(oid)) as size from pg_class
    where relname in ('messages', 'messages_search_idx', 'messages_channel_id_id_live_idx', 'messages_pkey')`)
  const tableSizes: Record<string, string> = {}
  for (const r of sizes.rows) tableSizes[r.name] = r.size
  tableSizes.database = (
    await one<{ s: string }>('select pg_size_pretty(pg_database_size(current_database())) as s')
  ).s
  return {
    busiest: { ...busiest, share: busiest.live_messages / total.n },
    member_id: member.id,
    dm_user_id: dmUser.user_id,
    dm_user_dm_count: dmUser.n,
    dm_other_user_id: other.id,
    private_channel_id: priv.id,
    write_channel_id: write.id,
    max_message_id: max.id,
    counts,
    tableSizes,
  }
}

/** Parses `--messages N`, `--users N`, … and `--rebuild`. */
export function parseDatasetArgs(argv: string[]): {
  params: Partial<DatasetParams>
  rebuild: boolean
} {
  const params: Partial<DatasetParams> = {}
  const keys: Record<string, keyof DatasetParams> = {
    '--messages': 'messages',
    '--users': 'users',
    '--guilds': 'guilds',
    '--channels': 'channels',
    '--dm-pairs': 'dmPairs',
    '--friendships': 'friendships',
  }
  for (let i = 0; i < argv.length; i++) {
    const key = keys[argv[i] as string]
    if (key) {
      const n = Number(argv[++i])
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${argv[i - 1]} needs a positive integer`)
      params[key] = n
    }
  }
  return { params, rebuild: argv.includes('--rebuild') }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { params, rebuild } = parseDatasetArgs(process.argv.slice(2))
  const info = await ensureDataset({ params, rebuild })
  console.log(JSON.stringify(info, null, 2))
}
