/**
 * The raw postgres.js contender (issue 28): a `postgres()` client whose int8
 * parser is `BigInt` (as guildstore's pools: `guildstoreTypeParsers`), running
 * a captured statement as a prepared statement (`unsafe(sql, values, { prepare: true })`).
 */
import postgres from 'postgres'
import type { RawStatement } from './capture.ts'
import { runChain } from './prepare.ts'

/** A postgres.js client. */
export type PostgresJs = postgres.Sql<{ bigint: bigint }>

/**
 * A postgres.js client of `max` connections with int8 → `bigint` (postgres.js's
 * own `postgres.BigInt` type: `BigInt(text)`, as guildstore's parser does),
 * every other type at postgres.js's defaults.
 *
 * @example
 * ```ts
 * const sql = postgresJs(url, 16, 'bench-postgres-js')
 * ```
 */
export function postgresJs(url: string, max: number, application_name: string): PostgresJs {
  return postgres(url, {
    max,
    prepare: true,
    types: { bigint: postgres.BigInt },
    connection: { application_name },
    onnotice: () => {},
  })
}

/**
 * Runs a scenario's captured statements on postgres.js, each prepared except
 * `unnamed` (sent unprepared, planned per call, as guildstore sends its
 * search), feeding one statement's `ids` into the next (see {@link runChain}).
 *
 * @example
 * ```ts
 * await runPostgresJs(sql, p.statements, args)
 * ```
 */
export function runPostgresJs(
  sql: PostgresJs,
  statements: readonly RawStatement[],
  args: Record<string, unknown>,
  unnamed?: RawStatement,
): Promise<unknown> {
  const run = (st: RawStatement, values: unknown[]) =>
    sql.unsafe(st.sql, values as postgres.ParameterOrJSON<never>[], { prepare: st !== unnamed })
  if (statements.length === 1) {
    const st = statements[0] as RawStatement
    return run(st, st.params(args))
  }
  return runChain(statements, args, run)
}
