/**
 * What every bench scenario module receives: the data set, the inputs read
 * from it once, and the drizzle executor. guildstore's executor is NOT here:
 * each scenario's `guildstore` function takes it as its first argument, so the
 * runner can pass a logging one to capture the SQL and the measured one after.
 */
import type { NodePgDatabase } from 'drizzle-orm/node-postgres'
import type { Kysely } from 'kysely'
import type pg from 'pg'
import type { DB } from '../../codegen/db.ts'
import type { DatasetInfo } from '../generate.ts'

/** One bench scenario: a guildstore function against raw pg and drizzle. */
export interface ScenarioDef<A extends Record<string, unknown> = Record<string, unknown>> {
  name: string
  concurrency?: number
  iterations: number
  args: (i: number) => A
  /** Arguments as the SQL sees them (keys for the raw parameter mapping); default `args`. */
  rawArgs?: (a: A) => Record<string, unknown>
  /** The guildstore call, on the executor it is given. */
  guildstore: (db: Kysely<DB>, a: A) => Promise<unknown>
  drizzle: (a: A) => Promise<unknown>
  freshIds?: boolean
  write?: boolean
  /** guildstore sends this statement unnamed (planned per call). */
  unnamed?: boolean
  /**
   * guildstore sends several statements; the raw contender runs the same ones in
   * order, each named, feeding an `ids` array a statement returns into the
   * array-valued parameter of the next.
   */
  multi?: boolean
  note?: string
}

/** Declares a scenario with typed arguments (erased to the common shape). */
export function scenario<A extends Record<string, unknown>>(def: ScenarioDef<A>): ScenarioDef {
  return def as unknown as ScenarioDef
}

/** The inputs the scenarios draw from. */
export interface BenchContext {
  data: DatasetInfo
  /** The drizzle contender's executor. */
  ddb: NodePgDatabase<Record<string, never>>
  busiest: string
  guild: string
  live: number
  /** 64 `before` cursors at 50% / 90% of the busiest channel's history. */
  cursors50: string[]
  cursors90: string[]
  /** 64 members of the busiest guild. */
  members: string[]
  /** 32 DM partners of the data set's DM user (no block between them). */
  partners: string[]
  searches: readonly string[]
  contents: readonly string[]
}

/** `list[i]`, wrapping around. */
export const at = <T>(list: readonly T[], i: number): T => list[i % list.length] as T

/** Reads the scenarios' inputs from the data set (plain pg, before any measurement). */
export async function loadContext(
  rawPool: pg.Pool,
  data: DatasetInfo,
  ddb: NodePgDatabase<Record<string, never>>,
): Promise<BenchContext> {
  const busiest = data.busiest.channel_id
  const guild = data.busiest.guild_id
  const live = data.busiest.live_messages
  /** 64 cursors around a depth (fraction of the busiest channel's history, from the newest). */
  const cursorsAt = async (depth: number): Promise<string[]> => {
    const start = Math.floor(live * depth)
    const r = await rawPool.query<{ id: string }>(
      `select id from (select id, row_number() over (order by id desc) as rn from messages
         where channel_id = $1 and deleted_at is null) x where rn = any($2::int[]) order by rn`,
      [busiest, Array.from({ length: 64 }, (_, k) => start + k * 37)],
    )
    return r.rows.map((x) => x.id)
  }
  const members = (
    await rawPool.query<{ user_id: string }>(
      'select user_id from guild_members where guild_id = $1 order by joined_at limit 64',
      [guild],
    )
  ).rows.map((r) => r.user_id)
  const partners = (
    await rawPool.query<{ other: string }>(
      `select case when d.user_a = $1 then d.user_b else d.user_a end as other
       from dm_channels d join dm_participants p on p.channel_id = d.id and p.user_id = $1
       where not exists (select 1 from friendships f where f.status = 'blocked'
         and ((f.user_id = d.user_a and f.friend_id = d.user_b) or (f.user_id = d.user_b and f.friend_id = d.user_a)))
       order by d.id limit 32`,
      [data.dm_user_id],
    )
  ).rows.map((r) => r.other)
  return {
    data,
    ddb,
    busiest,
    guild,
    live,
    cursors50: await cursorsAt(0.5),
    cursors90: await cursorsAt(0.9),
    members,
    partners,
    searches: [
      'deploy',
      'xylophone',
      'coffee pizza',
      '"merge branch"',
      'database -cache',
      'quokka or narwhal',
    ],
    contents: Array.from(
      { length: 97 },
      (_, k) => `bench message ${k}: the deploy went fine, coffee later?`,
    ),
  }
}
