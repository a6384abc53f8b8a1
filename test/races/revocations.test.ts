/**
 * The interleaving matrix of issue 22 (test/support/revocation-matrix.ts):
 * every change that can revoke × every concurrent writer × caller isolation
 * levels × every order of their steps, with the victim's sends and reads
 * (which fill the stored permissions) at each point of the order.
 *
 * CI runs a seeded sample (GUILDSTORE_RACE_SAMPLE cells, default 160, seed
 * GUILDSTORE_RACE_SEED); GUILDSTORE_RACE_FULL=1 (`node scripts/race-matrix.ts`)
 * runs every cell; GUILDSTORE_RACE_FILTER narrows by a regular expression on
 * "revocation × writer × level"; GUILDSTORE_RACE_BEFORE=0008 builds the
 * database from the migrations before 0008, to show what the matrix catches there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestDatabase } from '../../src/testing/index.ts'
import { createInterleaver, type Interleaver } from '../support/interleave.ts'
import {
  allCells,
  ISOLATIONS,
  REVOCATIONS,
  raceDatabase,
  runCell,
  sampleCells,
  WRITERS,
} from '../support/revocation-matrix.ts'

const filter = process.env.GUILDSTORE_RACE_FILTER
const cells = allCells().filter(
  (c) =>
    !filter || new RegExp(filter).test(`${c.revocation.name} × ${c.writer.name} × ${c.isolation}`),
)
const full = process.env.GUILDSTORE_RACE_FULL === '1'
const seed = Number(process.env.GUILDSTORE_RACE_SEED ?? 20261207)
// GUILDSTORE_RACE_SHARD=i/n: the i-th of n interleaved slices (scripts/race-matrix.ts runs them side by side).
const [shard, shards] = (process.env.GUILDSTORE_RACE_SHARD ?? '0/1').split('/').map(Number) as [
  number,
  number,
]
const sample = (
  full ? cells : sampleCells(cells, Number(process.env.GUILDSTORE_RACE_SAMPLE ?? 160), seed)
).filter((_, i) => i % shards === shard)

describe('revocations × writers × isolation levels × orders', () => {
  let t: TestDatabase
  let h: Interleaver
  beforeAll(async () => {
    t = await raceDatabase()
    h = await createInterleaver(t.url, ['r', 'w', 'f'])
  })
  afterAll(async () => {
    await h?.close()
    await t?.drop()
  })

  // A full shard runs for tens of minutes: 2 s a cell is room for a loaded box.
  it(`holds on ${sample.length} of ${cells.length} cells (seed ${seed})`, {
    timeout: Math.max(1_800_000, sample.length * 2_000),
  }, async () => {
    const failures: string[] = []
    let overlapped = 0
    let deferred = 0
    for (const [i, cell] of sample.entries()) {
      if (full && i > 0 && i % 500 === 0) {
        process.stderr.write(
          `[races] shard ${shard}/${shards}: ${i} of ${sample.length} cells, ${failures.length} failing\n`,
        )
      }
      const { wrong, result } = await runCell(t.db, h, cell)
      if (result.blockedSteps.length > 0) overlapped++
      if (result.deferred.length > 0) deferred++
      if (wrong.length > 0) {
        const line = `${cell.revocation.name} × ${cell.writer.name} × ${cell.isolation} × [${cell.order.join(' ')}]: ${wrong.join('; ')}`
        failures.push(line)
        // A full shard runs for tens of minutes: say which cell failed as soon as it does.
        if (full) process.stderr.write(`[races] shard ${shard}/${shards} failed: ${line}\n`)
      }
    }
    const revocations = REVOCATIONS.length
    const writers = WRITERS.length
    console.log(
      `[races] matrix: ${revocations} revocations × ${writers} writers × ${ISOLATIONS.length} levels = ` +
        `${cells.length} cells${filter ? ` (filtered by /${filter}/)` : ''} (orders: 30 under READ COMMITTED, 140 under the snapshot levels); ` +
        `ran ${sample.length}, ${overlapped} with a blocked step, ${deferred} with a deferred step, ` +
        `${failures.length} failed`,
    )
    if (failures.length > 0) console.log(failures.slice(0, 40).join('\n'))
    // The race ran: steps really waited on each other's locks.
    expect(overlapped).toBeGreaterThan(0)
    expect(failures).toEqual([])
  })
})
