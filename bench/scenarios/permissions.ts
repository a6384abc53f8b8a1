/** Permission computation. */
import { computePermissions } from '../../src/permissions/compute-permissions.ts'
import * as dz from '../drizzle-queries.ts'
import { at, type BenchContext, type ScenarioDef, scenario } from './context.ts'

export function permissionScenarios(ctx: BenchContext): ScenarioDef[] {
  return [
    scenario({
      name: 'computePermissions (channel, 64 members)',
      iterations: 2000,
      args: (i) => ({ guild_id: ctx.guild, user_id: at(ctx.members, i), channel_id: ctx.busiest }),
      guildstore: (db, a) => computePermissions(db, a),
      drizzle: (a) => dz.computePermissions(ctx.ddb, a),
    }),
  ]
}
