/**
 * Takes the SQL a guildstore function sends (through `createDb(pool, { log })`)
 * and turns it into a raw-pg statement with the IDENTICAL text, run as a named
 * prepared statement, whose parameters come from the scenario's arguments.
 */
import { createHash } from 'node:crypto'
import type { Kysely } from 'kysely'
import type pg from 'pg'
import type { DB } from '../codegen/db.ts'
import { newId } from '../src/ids/new-id.ts'
import { createDb } from '../src/sql/create-db.ts'

export interface Captured {
  sql: string
  parameters: readonly unknown[]
}

type Slot = { arg: string } | { value: unknown } | { fresh: true }

/** A statement as the raw contender runs it. */
export interface RawStatement {
  name: string
  sql: string
  /** The probe call's parameters (for EXPLAIN). */
  probe: readonly unknown[]
  /** Parameters for a call with these arguments (fresh ids where guildstore makes one). */
  params(args: Record<string, unknown>): unknown[]
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i

/** Runs `call` on a logging executor and returns the statements it sent. */
export async function captureSql(
  pool: pg.Pool,
  call: (db: Kysely<DB>) => Promise<unknown>,
): Promise<Captured[]> {
  const out: Captured[] = []
  const db = createDb(pool, {
    logParameters: true,
    log: (e) => out.push({ sql: e.sql, parameters: e.parameters ?? [] }),
  })
  await call(db)
  return out
}

/**
 * Maps each captured parameter to the argument it came from (by value), to a
 * fresh UUIDv7 (an id guildstore generates per call, when `freshIds`), or to a
 * constant. Argument values must be distinct from each other for the mapping to
 * be unambiguous.
 */
export function toRawStatement(
  captured: Captured,
  probeArgs: Record<string, unknown>,
  options: { freshIds?: boolean } = {},
): RawStatement {
  const entries = Object.entries(probeArgs)
  const slots: Slot[] = captured.parameters.map((v) => {
    const hit = entries.find(([, a]) => a !== null && a !== undefined && a === v)
    if (hit) return { arg: hit[0] }
    if (options.freshIds && typeof v === 'string' && UUID_V7.test(v)) return { fresh: true }
    return { value: v }
  })
  const name = `bench_${createHash('sha1').update(captured.sql).digest('hex').slice(0, 20)}`
  return {
    name,
    sql: captured.sql,
    probe: captured.parameters,
    params(args) {
      const values = new Array<unknown>(slots.length)
      for (let i = 0; i < slots.length; i++) {
        const s = slots[i] as Slot
        values[i] = 'arg' in s ? args[s.arg] : 'fresh' in s ? newId() : s.value
      }
      return values
    },
  }
}

/** One call of the raw contender: a named prepared statement on the pool. */
export function runRaw(pool: pg.Pool, st: RawStatement, args: Record<string, unknown>) {
  return pool.query({ name: st.name, text: st.sql, values: st.params(args) })
}
