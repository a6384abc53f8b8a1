import type { Compilable, Kysely } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { compilerDb } from './compiler.ts'
import { registerQuery } from './registry.ts'
import { statementKind } from './statement-kind.ts'

/**
 * Declares a query whose SQL depends on its input (a patch that sets only the
 * given columns, a search planned with its actual values), so it cannot be a
 * prepared query. The returned function builds it per call; run the builder
 * inside `mapErrors(…)`. `examples` are argument lists whose SQL the query
 * snapshots (`codegen/sql/`) show, one per shape worth reviewing; the label
 * shares the prepared queries' namespace.
 *
 * @throws {Error} when the label is malformed or already declared.
 * @example
 * ```ts
 * const updateProfile = dynamicQuery(
 *   'users.update_profile',
 *   (db, id: string, set: { display_name?: string | null }) =>
 *     db.updateTable('users').set(set).where('id', '=', id).returning(userColumns),
 *   [[ZERO_UUID, { display_name: 'x' }]],
 * )
 * const row = await mapErrors(updateProfile(db, id, set).executeTakeFirst())
 * ```
 */
export function dynamicQuery<A extends unknown[], Q extends Compilable<unknown>>(
  label: string,
  build: (db: Kysely<DB>, ...args: A) => Q,
  examples: readonly A[],
): (db: Kysely<DB>, ...args: A) => Q {
  const compiled = () => examples.map((args) => build(compilerDb(), ...args).compile())
  registerQuery({
    label,
    name: undefined,
    get kind() {
      return compiled().some((c) => statementKind(c.query) === 'write') ? 'write' : 'read'
    },
    get statements() {
      return compiled().map((c) => c.sql)
    },
  })
  return build
}
