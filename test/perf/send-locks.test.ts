/**
 * How many relations a warm send locks at its peak (issue 23, the feed's cost
 * with 16 senders; migration 0028).
 *
 * A PostgreSQL 15 backend holds at most 16 weak relation locks in its own
 * fast-path slots; past that (and, once 16 are taken, for any new lock mode
 * even on a relation already there) locks go to the shared lock table, whose
 * partition for a relation is the same for every backend: senders that lock
 * the same relations queue on one LWLock (LockManager). An INSERT holds
 * RowExclusiveLock on every index of its table until the statement ends, and
 * the foreign-key checks run just before that end, so the peak is at those
 * checks.
 *
 * The probe: an AFTER INSERT row trigger on guildstore_events, created in this
 * file's database only, that fires after the send's foreign-key checks (its
 * event row is queued after the message row) and stores in a transaction-local
 * setting the relations its backend holds locks on (pg_locks, its own pid,
 * pg_locks itself left out) and which of them are not fast path. The send runs
 * in a transaction on one connection, after 20 sends of each variant, so its
 * statements run their generic plans as in production.
 *
 * A budget, not yet the target: the target is the 16 slots with no lock in the
 * shared table (docs/architecture.md, "Locks per send"). Before 0028 the plain
 * send held 22 relations at its peak (9 in the shared table). The test fails
 * when a change makes a send lock more relations than the budget.
 */
import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DB } from '../../codegen/db.ts'
import { createDb, newId, Permissions, sendMessage } from '../../src/index.ts'
import { guildstoreTypeParsers } from '../../src/pool/create-pool.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeGuildWithMember } from '../support/factories.ts'

const t = useTestDatabase({ max: 2 })
const { VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY } = Permissions

/** Relations a warm send may lock at its peak (before migration 0028 and the reply statement: 22, 26, 22, 30). */
const BUDGET = { plain: 20, reply: 20, nonce: 20, mentions: 28 } as const

const PROBE = `
create function test_lock_probe() returns trigger language plpgsql as $$
begin
  perform set_config('test.lock_peak', (
    select json_build_object(
      'relations', count(distinct l.relation),
      'shared', coalesce(json_agg(distinct l.relation::regclass::text) filter (where not l.fastpath), '[]'),
      'all', json_agg(distinct l.relation::regclass::text))::text
    from pg_locks l
    where l.pid = pg_backend_pid() and l.locktype = 'relation' and l.relation <> 'pg_locks'::regclass), true);
  return null;
end $$;
create trigger zz_test_lock_probe after insert on guildstore_events
  for each row execute function test_lock_probe();`

interface Peak {
  relations: number
  shared: string[]
  all: string[]
}

let pool: pg.Pool
let db: Kysely<DB>
let w: Awaited<ReturnType<typeof makeGuildWithMember>>
let target: string

beforeAll(async () => {
  await sql.raw(PROBE).execute(t.db)
  w = await makeGuildWithMember(t.db, VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY)
  // One connection: the warm-up's plans are the measured send's.
  pool = new pg.Pool({ connectionString: t.url, max: 1, types: guildstoreTypeParsers })
  db = createDb(pool)
  target = (await sendMessage(db, { channel_id: w.channel.id, author_id: w.user.id, content: 't' }))
    .id
  for (let i = 0; i < 20; i++) {
    for (const input of variants()) await sendMessage(db, input.input)
  }
})

afterAll(async () => {
  await db?.destroy()
})

function variants() {
  const base = { channel_id: w.channel.id, author_id: w.user.id, content: 'lock probe' }
  return [
    { name: 'plain' as const, input: base },
    { name: 'reply' as const, input: { ...base, reply_to: target } },
    { name: 'nonce' as const, input: { ...base, nonce: `n${newId().slice(-20)}` } },
    {
      name: 'mentions' as const,
      input: { ...base, reply_to: target, mentions: { user_ids: [w.owner.id] } },
    },
  ]
}

async function peakOf(input: Parameters<typeof sendMessage>[1]): Promise<Peak> {
  return db.transaction().execute(async (trx) => {
    await sendMessage(trx, input)
    const { rows } = await sql<{
      v: string
    }>`select current_setting('test.lock_peak', true) as v`.execute(trx)
    return JSON.parse(rows[0]?.v ?? 'null') as Peak
  })
}

describe('the relations a warm send locks at its peak', () => {
  it.each(['plain', 'reply', 'nonce', 'mentions'] as const)(
    '%s: within the budget, the feed and its foreign-key checks included',
    async (name) => {
      const v = variants().find((x) => x.name === name)
      const peak = await peakOf(v?.input as Parameters<typeof sendMessage>[1])
      const detail = JSON.stringify(peak)
      // The probe saw the send's own locks: its tables and the feed's.
      expect(peak.all, detail).toEqual(
        expect.arrayContaining([
          'messages',
          'guildstore_events',
          'users',
          'channel_permission_cache',
        ]),
      )
      expect(peak.relations, detail).toBeLessThanOrEqual(BUDGET[name])
    },
  )
})
