/**
 * Turns a scenario into three contenders: captures the SQL guildstore sends
 * (on a logging executor), maps the scenario's arguments onto its parameters
 * for raw pg, and checks the mapping reproduces the capture.
 */
import type { Kysely } from 'kysely'
import type pg from 'pg'
import type { DB } from '../codegen/db.ts'
import { type Captured, captureSql, type RawStatement, runRaw, toRawStatement } from './capture.ts'
import type { Contender, Scenario } from './harness.ts'
import type { ScenarioDef } from './scenarios/context.ts'

/** A scenario ready to measure. */
export interface PreparedScenario {
  scenario: Scenario
  /** The measured (last) statement as raw pg runs it. */
  raw: RawStatement
  /** Every statement guildstore sent, in order (one, or several for a `multi` scenario). */
  statements: RawStatement[]
  explainParams: readonly unknown[]
  def: ScenarioDef
}

/** The executors and sizes preparation needs. */
export interface PrepareEnv {
  /** The measured guildstore executor. */
  db: Kysely<DB>
  /** A pool for the capturing (logging) executor. */
  capturePool: pg.Pool
  /** The raw contender's pool. */
  rawPool: pg.Pool
  /** Iterations per round for a scenario's nominal count (smaller with --quick). */
  iterations: (n: number) => number
}

export async function prepareScenario(
  def: ScenarioDef,
  env: PrepareEnv,
): Promise<PreparedScenario> {
  const probe = def.args(0)
  const captured: Captured[] = await captureSql(env.capturePool, (cdb) =>
    def.guildstore(cdb, probe),
  )
  if (captured.length !== 1 && !def.multi) {
    throw new Error(`${def.name}: expected one statement, captured ${captured.length}`)
  }
  const rawArgs = def.rawArgs ?? ((a) => a)
  const statements = captured.map((c) =>
    toRawStatement(c, rawArgs(probe), { freshIds: def.freshIds ?? false }),
  )
  // The last statement is the one measured and explained; earlier ones feed it.
  const raw = statements.at(-1) as RawStatement
  // The mapping must reproduce the captured parameters for the probe call.
  const check = raw.params(rawArgs(probe))
  const same = check.every(
    (v, i) => v === raw.probe[i] || (def.freshIds && typeof v === 'string' && v.length === 36),
  )
  if (!same) throw new Error(`${def.name}: raw parameter mapping does not reproduce the capture`)
  const { db, rawPool } = env
  const contenders: Contender[] = [
    { name: 'guildstore', run: (i) => def.guildstore(db, def.args(i)) },
    {
      name: 'raw pg',
      run:
        statements.length === 1
          ? (i) => runRaw(rawPool, raw, rawArgs(def.args(i)))
          : (i) =>
              runChain(statements, rawArgs(def.args(i)), async (st, values) => {
                return (await rawPool.query({ name: st.name, text: st.sql, values })).rows
              }),
    },
    { name: 'drizzle', run: (i) => def.drizzle(def.args(i)) },
  ]
  const scenario: Scenario = {
    name: def.name,
    concurrency: def.concurrency ?? 1,
    iterations: env.iterations(def.iterations),
    contenders,
  }
  if (def.note) scenario.note = def.note
  return { scenario, raw, statements, explainParams: raw.probe, def }
}

/**
 * Runs a scenario's statements in order with one client's `exec`, feeding the
 * `ids` array a statement returns into the array-valued parameter of the next
 * (as guildstore's search does).
 *
 * @example
 * ```ts
 * await runChain(p.statements, args, async (st, values) => (await pool.query({ name: st.name, text: st.sql, values })).rows)
 * ```
 */
export async function runChain(
  statements: readonly RawStatement[],
  args: Record<string, unknown>,
  exec: (st: RawStatement, values: unknown[]) => Promise<readonly unknown[]>,
): Promise<void> {
  let ids: unknown
  for (const st of statements) {
    const values = st.params(args).map((v) => (Array.isArray(v) && ids ? ids : v))
    const rows = await exec(st, values)
    ids = (rows[0] as { ids?: unknown } | undefined)?.ids
  }
}
