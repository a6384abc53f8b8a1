/**
 * The hot paths of issue 28 with their four contenders, shared by
 * bench/contenders.ts and bench/profile.ts: guildstore's function, raw `pg`
 * and raw postgres.js running the SQL guildstore sends (captured by
 * bench/prepare.ts, each as a prepared statement), and Drizzle (on
 * node-postgres or on postgres.js) where bench/drizzle-queries.ts has the
 * operation.
 *
 * Every contender parses int8 as `bigint`: guildstore's and the raw pg pool
 * through `guildstoreTypeParsers`, postgres.js through `postgres.BigInt`.
 */

import type { NodePgDatabase } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePostgresJs } from 'drizzle-orm/postgres-js'
import pg from 'pg'
import { createPool, guildstoreTypeParsers } from '../src/pool/create-pool.ts'
import { readChannelMessages, sendMessage } from '../src/repositories/authorized-messages.ts'
import { listChannelReadStates } from '../src/repositories/read-states.ts'
import { createDb } from '../src/sql/create-db.ts'
import { type DatasetInfo, ensureDataset, parseDatasetArgs } from './generate.ts'
import type { Contender } from './harness.ts'
import { type PostgresJs, postgresJs, runPostgresJs } from './postgres-js.ts'
import { prepareScenario, runChain } from './prepare.ts'
import {
  at,
  type BenchContext,
  loadContext,
  type ScenarioDef,
  scenario,
} from './scenarios/context.ts'
import { allScenarios } from './scenarios/index.ts'

/** The contenders' names, in table order. */
export const GUILDSTORE = 'guildstore'
export const RAW_PG = 'raw pg'
export const RAW_POSTGRES_JS = 'raw postgres.js'
export const DRIZZLE_PG = 'drizzle (node-postgres)'
export const DRIZZLE_POSTGRES_JS = 'drizzle (postgres.js)'

/** One hot path and its contenders (by name). */
export interface HotPath {
  name: string
  /** It inserts messages into the write channel (cleaned by {@link HotBench.cleanWrites}). */
  write: boolean
  contenders: Contender[]
}

/** The data set, the clients and the hot paths. */
export interface HotBench {
  data: DatasetInfo
  paths: HotPath[]
  /** Deletes the messages the write paths inserted; returns how many. */
  cleanWrites(): Promise<number>
  /** Ends the clients of a Drizzle variant (the one not kept). */
  dropDrizzle(name: string): Promise<void>
  close(): Promise<void>
}

/** The bench's names for the scenarios of bench/scenarios/ it reuses (by name prefix). */
const REUSED: Record<string, string> = {
  'listChannelMessages: newest page': 'history: newest page (50 rows)',
  'listChannelMessages: page at 50% depth': 'history: page at 50% depth (before)',
  computePermissions: 'computePermissions (channel)',
  listDmChannels: 'listDmChannels',
  searchMessages: 'searchMessages (6 queries, rotating)',
}

/** The hot paths bench/scenarios/ lacks (no Drizzle counterpart). */
function extraScenarios(ctx: BenchContext): ScenarioDef[] {
  const none = () => Promise.reject(new Error('no Drizzle counterpart'))
  return [
    scenario({
      name: 'sendMessage (stored permissions)',
      iterations: 2000,
      write: true,
      freshIds: true,
      args: (i) => ({
        channel_id: ctx.data.write_channel_id,
        author_id: ctx.data.member_id,
        content: at(ctx.contents, i),
      }),
      guildstore: (db, a) => sendMessage(db, a),
      drizzle: none,
    }),
    scenario({
      name: 'readChannelMessages: newest page (50 rows)',
      iterations: 2000,
      args: (i) => ({ user_id: at(ctx.members, i), channel_id: ctx.busiest, limit: 50 }),
      guildstore: (db, a) => readChannelMessages(db, a),
      drizzle: none,
    }),
    scenario({
      name: 'listChannelReadStates (guild)',
      iterations: 1000,
      args: (i) => ({ user_id: at(ctx.members, i), guild_id: ctx.guild }),
      guildstore: (db, a) => listChannelReadStates(db, a),
      drizzle: none,
    }),
  ]
}

const log = (msg: string) => process.stderr.write(`[bench:hot] ${msg}\n`)

/**
 * Builds (or reuses) the data set and prepares every hot path: each
 * guildstore call runs once per argument set first (it stores the callers'
 * permissions, so the captured statement is the steady-state one), then its
 * SQL is captured. `drizzles` lists the Drizzle variants to build.
 *
 * @example
 * ```ts
 * const bench = await setUpHotPaths({ argv, pool: 16, drizzles: [DRIZZLE_PG] })
 * ```
 */
export async function setUpHotPaths(options: {
  argv: string[]
  pool: number
  drizzles: readonly string[]
  only?: string | undefined
}): Promise<HotBench> {
  const { argv, pool: max } = options
  const data = await ensureDataset(parseDatasetArgs(argv))
  const gsPool = createPool({
    connectionString: data.url,
    max,
    application_name: 'bench-guildstore',
  })
  const rawPool = new pg.Pool({
    connectionString: data.url,
    max,
    types: guildstoreTypeParsers,
    application_name: 'bench-raw-pg',
  })
  const capturePool = createPool({ connectionString: data.url, max: 2 })
  const sql = postgresJs(data.url, max, 'bench-raw-postgres-js')
  const dzPool = new pg.Pool({
    connectionString: data.url,
    max,
    types: guildstoreTypeParsers,
    application_name: 'bench-drizzle-pg',
  })
  let dzSql: PostgresJs | undefined = postgresJs(data.url, max, 'bench-drizzle-postgres-js')
  for (const p of [rawPool, dzPool]) p.on('error', () => {})
  const db = createDb(gsPool)
  const ddbPg = drizzlePg({ client: dzPool })
  const ddbJs = drizzlePostgresJs({ client: dzSql }) as unknown as NodePgDatabase<
    Record<string, never>
  >
  const ctx = await loadContext(rawPool, data, ddbPg)
  const variants = new Map<string, BenchContext>([
    [DRIZZLE_PG, ctx],
    [DRIZZLE_POSTGRES_JS, { ...ctx, ddb: ddbJs }],
  ])

  const pick = (c: BenchContext): { def: ScenarioDef; name: string; drizzle: boolean }[] => [
    ...Object.entries(REUSED).flatMap(([prefix, name]) => {
      const def = allScenarios(c).find((d) => d.name.startsWith(prefix) && !d.concurrency)
      return def ? [{ def, name, drizzle: true }] : []
    }),
    ...extraScenarios(c).map((def) => ({ def, name: def.name, drizzle: false })),
  ]
  const wanted = (name: string) =>
    !options.only || name.toLowerCase().includes(options.only.toLowerCase())
  const byVariant = new Map(options.drizzles.map((v) => [v, pick(variants.get(v) as BenchContext)]))
  const paths: HotPath[] = []
  const base = pick(ctx)
  for (const [k, { def, name, drizzle }] of base.entries()) {
    if (!wanted(name)) continue
    // Steady state: every argument set once (stored permissions, plan cache).
    for (let i = 0; i < 64; i++) await def.guildstore(db, def.args(i))
    const p = await prepareScenario(def, { db, capturePool, rawPool, iterations: (n) => n })
    const [gs, rawPg] = p.scenario.contenders as [Contender, Contender]
    const rawArgs = def.rawArgs ?? ((a) => a)
    // What guildstore sends unnamed (the search, planned per call) the raw contenders do too.
    const unnamed = def.unnamed ? p.raw : undefined
    const contenders: Contender[] = [
      gs,
      unnamed
        ? {
            name: RAW_PG,
            run: (i) =>
              runChain(p.statements, rawArgs(def.args(i)), async (st, values) => {
                const config = {
                  text: st.sql,
                  values,
                  ...(st === unnamed ? {} : { name: st.name }),
                }
                return (await rawPool.query(config)).rows
              }),
          }
        : rawPg,
      {
        name: RAW_POSTGRES_JS,
        run: (i) => runPostgresJs(sql, p.statements, rawArgs(def.args(i)), unnamed),
      },
    ]
    if (drizzle) {
      for (const [v, defs] of byVariant) {
        const d = defs[k]?.def as ScenarioDef
        contenders.push({ name: v, run: (i) => d.drizzle(d.args(i)) })
      }
    }
    paths.push({ name, write: def.write ?? false, contenders })
    log(`prepared ${name} (${p.statements.length} statement(s))`)
  }

  return {
    data,
    paths,
    async cleanWrites() {
      const r = await rawPool.query('delete from messages where channel_id = $1 and id > $2', [
        data.write_channel_id,
        data.max_message_id,
      ])
      return r.rowCount ?? 0
    },
    async dropDrizzle(name) {
      for (const path of paths) path.contenders = path.contenders.filter((c) => c.name !== name)
      if (name === DRIZZLE_PG) await dzPool.end()
      if (name === DRIZZLE_POSTGRES_JS) {
        await dzSql?.end()
        dzSql = undefined
      }
    },
    async close() {
      await Promise.all([
        db.destroy(),
        rawPool.end(),
        capturePool.end(),
        sql.end(),
        dzSql?.end(),
        dzPool.ended ? undefined : dzPool.end(),
      ])
    },
  }
}
