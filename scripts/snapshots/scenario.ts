import type { Kysely } from 'kysely'
import type { DB } from '../../src/index.ts'

/** One module's query-snapshot scenario (see scripts/query-snapshots.ts). */
export interface SnapshotScenario {
  /** Output name: codegen/sql/<module>.sql. */
  module: string
  /**
   * Calls every exported function of the module at least once, each inside
   * `capture(name, fn)`. Make the scenario deterministic: the same function
   * calls in the same order every run (values may be random: only SQL text
   * is recorded). A name containing `(throws)` may reject.
   */
  run(ctx: {
    db: Kysely<DB>
    capture(name: string, fn: () => Promise<unknown>): Promise<void>
  }): Promise<void>
}
