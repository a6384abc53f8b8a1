/** Direct messages: the conversation list and find-or-create. */
import { findOrCreateDmChannel, listDmChannels } from '../../src/repositories/dms.ts'
import * as dz from '../drizzle-queries.ts'
import { at, type BenchContext, type ScenarioDef, scenario } from './context.ts'

export function dmScenarios(ctx: BenchContext): ScenarioDef[] {
  const { data, ddb } = ctx
  return [
    scenario({
      name: `listDmChannels (user with ${data.dm_user_dm_count} DMs)`,
      iterations: 1000,
      args: () => ({ user_id: data.dm_user_id }),
      guildstore: (db, a) => listDmChannels(db, a.user_id),
      drizzle: (a) => dz.listDmChannels(ddb, a.user_id),
    }),
    scenario({
      name: 'findOrCreateDmChannel: existing pair',
      iterations: 2000,
      freshIds: true,
      args: (i) => {
        const other = at(ctx.partners, i)
        const me = data.dm_user_id
        const [a, b] = me < other ? [me, other] : [other, me]
        return { user_id: me, other_user_id: other, a, b }
      },
      rawArgs: (a) => ({ a: a.a, b: a.b }),
      guildstore: (db, a) =>
        findOrCreateDmChannel(db, { user_id: a.user_id, other_user_id: a.other_user_id }),
      drizzle: (a) =>
        dz.findOrCreateDmChannel(ddb, { user_id: a.user_id, other_user_id: a.other_user_id }),
    }),
  ]
}
