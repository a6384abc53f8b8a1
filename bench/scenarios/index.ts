/**
 * Every bench scenario module, in report order. A new module: write
 * `bench/scenarios/<area>.ts` exporting `(ctx) => ScenarioDef[]` and list it here.
 */
import type { BenchContext, ScenarioDef } from './context.ts'
import { dmScenarios } from './dms.ts'
import { messageScenarios } from './messages.ts'
import { permissionScenarios } from './permissions.ts'
import { searchScenarios } from './search.ts'

/** All scenarios, built from the context. */
export function allScenarios(ctx: BenchContext): ScenarioDef[] {
  return [
    ...messageScenarios(ctx),
    ...permissionScenarios(ctx),
    ...searchScenarios(ctx),
    ...dmScenarios(ctx),
  ]
}
