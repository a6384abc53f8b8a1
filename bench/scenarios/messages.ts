/** Message history pages and message creation. */
import { createMessage, listChannelMessages } from '../../src/repositories/messages.ts'
import * as dz from '../drizzle-queries.ts'
import { at, type BenchContext, type ScenarioDef, scenario } from './context.ts'

export function messageScenarios(ctx: BenchContext): ScenarioDef[] {
  const { ddb, busiest, data } = ctx
  const page = (name: string, cursors: readonly string[]) =>
    scenario({
      name,
      iterations: 2000,
      args: (i) => ({ channel_id: busiest, before: at(cursors, i), limit: 50 }),
      guildstore: (db, a) => listChannelMessages(db, a.channel_id, { before: a.before, limit: 50 }),
      drizzle: (a) => dz.listBefore(ddb, a.channel_id, a.before, 50),
    })
  const newest = (name: string, concurrency: number, iterations: number) =>
    scenario({
      name,
      ...(concurrency > 1 ? { concurrency } : {}),
      iterations,
      args: () => ({ channel_id: busiest, limit: 50 }),
      guildstore: (db, a) => listChannelMessages(db, a.channel_id, { limit: 50 }),
      drizzle: (a) => dz.listNewest(ddb, a.channel_id, 50),
    })
  const create = (name: string, concurrency: number, iterations: number) =>
    scenario({
      name,
      ...(concurrency > 1 ? { concurrency } : {}),
      iterations,
      write: true,
      freshIds: true,
      args: (i) => ({
        channel_id: data.write_channel_id,
        author_id: data.member_id,
        content: at(ctx.contents, i),
      }),
      guildstore: (db, a) => createMessage(db, a),
      drizzle: (a) => dz.createMessage(ddb, a),
    })
  return [
    newest('listChannelMessages: newest page (busiest channel)', 1, 2000),
    page('listChannelMessages: page at 50% depth (before)', ctx.cursors50),
    page('listChannelMessages: page at 90% depth (before)', ctx.cursors90),
    newest('listChannelMessages: newest page, 16 concurrent', 16, 4000),
    create('createMessage: one at a time', 1, 2000),
    create('createMessage: 16 concurrent', 16, 4000),
  ]
}
