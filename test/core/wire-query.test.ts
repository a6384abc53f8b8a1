import pg from 'pg'
import { describe, expect, it } from 'vitest'
import {
  ConnectionLostError,
  computePermissions,
  listChannelMessages,
  listChannelReadStates,
  listDmChannels,
  mapDatabaseError,
  newId,
  readChannelMessages,
  searchMessages,
  sendMessage,
  UniqueViolationError,
} from '../../src/index.ts'
import { Permissions } from '../../src/permissions/permissions.ts'
import { createPool } from '../../src/pool/create-pool.ts'
import type { GuildstoreAdapter } from '../../src/sql/execution.ts'
import { createDb } from '../../src/sql/index.ts'
import { prepareQuery } from '../../src/sql/prepared-query.ts'
import { queryFits, runNamed, SKIPS_DESCRIBE } from '../../src/sql/wire-query.ts'
import { useTestDatabase } from '../support/database.ts'
import { makeDm, makeGuildWithMember, makeMessage, makeUser } from '../support/factories.ts'

const t = useTestDatabase()

/** Runs `fn` on one client of the file's pool (guildstore's type parsers), released after. */
async function onClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await t.pool.connect()
  try {
    return await fn(client)
  } finally {
    client.release()
  }
}

/** Counts the Describe messages a client writes. */
function countDescribes(client: pg.PoolClient): { readonly count: number; restore(): void } {
  const connection = (client as unknown as { connection: { describe: (m: unknown) => void } })
    .connection
  const original = connection.describe
  const counter = {
    count: 0,
    restore: () => {
      connection.describe = original
    },
  }
  connection.describe = function (this: unknown, msg: unknown) {
    counter.count++
    return original.call(this, msg)
  }
  return counter
}

/** The pg `import pg from 'pg'` loads (another one under scripts/peer-matrix.ts). */
const pgVersion = (await import('pg/package.json', { with: { type: 'json' } })).default
  .version as string

/** Whether pg's Query closes and syncs after a Bind it could not serialize (newer pg). */
const pgClosesAfterBindError = String(
  (pg.Query.prototype as unknown as { prepare: () => void }).prepare,
).includes('.close(')

const pick = (r: { rows: unknown[]; command: string; rowCount: number | null }) => ({
  rows: r.rows,
  command: r.command,
  rowCount: r.rowCount,
})

describe('pg’s Query without the per-call Describe (src/sql/wire-query.ts)', () => {
  it('runs on the pg it was pointed at, and skips the Describe exactly where pg has what it needs (pg 8.15+)', () => {
    const expected = process.env.GUILDSTORE_PEER_PG_VERSION
    if (expected) expect(pgVersion).toBe(expected)
    const [major, minor] = pgVersion.split('.').map(Number) as [number, number]
    expect(SKIPS_DESCRIBE).toBe(major > 8 || (major === 8 && minor >= 15))
    expect(queryFits(pg)).toBe(SKIPS_DESCRIBE)
  })

  it('queryFits: false, never a throw, for a pg without pg.utils, without a Query method or without its Result fields', () => {
    const utils = { prepareValue: (v: unknown) => v }
    const METHODS = ['prepare', '_getRows', 'handleReadyForQuery', 'handleError']
    const fields = () => ({
      fields: [],
      _parsers: undefined,
      _types: undefined,
      _prebuiltEmptyResultObject: null,
    })
    /** A stand-in for pg's `Query`: these prototype methods, and `_result` from `result()`. */
    const makeQuery = (methods: readonly string[], result: () => unknown) => {
      const Query = class {
        _result = result()
      }
      for (const m of methods) (Query.prototype as unknown as Record<string, unknown>)[m] = () => {}
      return Query
    }
    expect(queryFits({ Query: makeQuery(METHODS, fields), utils })).toBe(true)
    expect(queryFits({ Query: makeQuery(METHODS, fields) })).toBe(false) // pg 8.13, 8.14: no pg.utils
    expect(queryFits({ Query: makeQuery(METHODS, fields), utils: {} })).toBe(false)
    expect(queryFits({ Query: makeQuery(METHODS.slice(1), fields), utils })).toBe(false)
    expect(queryFits({ Query: makeQuery(METHODS, () => ({ fields: [] })), utils })).toBe(false)
    const throwing = () => {
      throw new Error('no')
    }
    expect(queryFits({ Query: makeQuery(METHODS, throwing), utils })).toBe(false)
    expect(queryFits({})).toBe(false)
  })

  it('decodes every hot statement exactly as pg’s own Query does (rows, types, command, rowCount)', async () => {
    const { guild, user, channel, owner } = await makeGuildWithMember(t.db, Permissions.ALL)
    for (let i = 0; i < 12; i++) {
      await makeMessage(t.db, channel.id, i % 2 ? user.id : owner.id, {
        content: `parity word${i} ${i % 3 ? 'common' : 'rare'}`,
      })
    }
    const friend = await makeUser(t.db)
    await makeDm(t.db, user.id, friend.id)
    const captured: { sql: string; parameters: readonly unknown[] }[] = []
    const logged = createDb(t.pool, {
      logParameters: true,
      log: (e) => captured.push({ sql: e.sql, parameters: e.parameters ?? [] }),
    })
    await listChannelMessages(logged, channel.id, { limit: 50 })
    await readChannelMessages(logged, { user_id: user.id, channel_id: channel.id })
    const sent = await sendMessage(logged, {
      channel_id: channel.id,
      author_id: user.id,
      content: 'hot',
    })
    await computePermissions(logged, { guild_id: guild.id, user_id: user.id })
    await computePermissions(logged, {
      guild_id: guild.id,
      user_id: user.id,
      channel_id: channel.id,
    })
    await listChannelReadStates(logged, { user_id: user.id, guild_id: guild.id })
    await listDmChannels(logged, user.id)
    await searchMessages(logged, { user_id: user.id, query: 'common' })
    expect(captured.length).toBeGreaterThanOrEqual(8)

    await onClient(async (client) => {
      await client.query('begin')
      try {
        for (const [i, st] of captured.entries()) {
          const name = `wire_parity_${i}`
          // the message sendMessage inserted exists: its replay inserts another id
          const values = st.parameters.map((v) => (v === sent.id ? newId() : v))
          await client.query('savepoint s')
          const viaPg = await client.query({ name, text: st.sql, values })
          await client.query('rollback to savepoint s')
          // described on its first run here, then from the cached description
          for (let run = 0; run < 2; run++) {
            const viaWire = await runNamed(client, name, st.sql, values)
            await client.query('rollback to savepoint s')
            expect(pick(viaWire), st.sql).toEqual(pick(viaPg))
            expect(viaWire.fields.map((f) => f.name)).toEqual(viaPg.fields.map((f) => f.name))
          }
        }
      } finally {
        await client.query('rollback')
      }
    })
  })

  it('decodes every kind of value as pg does: int8 as bigint, Date, null, json, arrays, bytea', async () => {
    const text = `select 9007199254740993::int8 as big, null::int8 as no_big, now() as at,
      '2024-02-29'::date as day, '{"a":[1,{"b":null}]}'::jsonb as doc, '[1,2]'::json as plain,
      array[1,2,3]::int4[] as ints, array['a',null,'c']::text[] as texts, array[1,2]::int8[] as bigs,
      '\\xdeadbeef'::bytea as bin, 1.50::numeric as num, true as yes, 1.5::float8 as f,
      $1::uuid as id, $2::text as given, $3::timestamptz as stamp, '1 day'::interval as span`
    const values = [newId(), 'x\u0000y'.replace('\u0000', ''), new Date('2024-01-02T03:04:05.678Z')]
    await onClient(async (client) => {
      await client.query('begin') // one now()
      const viaPg = await client.query({ name: 'wire_types', text, values })
      for (let run = 0; run < 3; run++) {
        const viaWire = await runNamed(client, 'wire_types', text, values)
        expect(pick(viaWire)).toEqual(pick(viaPg))
        const row = viaWire.rows[0] as Record<string, unknown>
        expect(row.big).toBe(9007199254740993n)
        expect(row.no_big).toBeNull()
        expect(row.at).toBeInstanceOf(Date)
        expect(row.bigs).toEqual(viaPg.rows[0].bigs)
        expect(Buffer.isBuffer(row.bin)).toBe(true)
        expect(Object.getPrototypeOf(row)).toBe(Object.getPrototypeOf(viaPg.rows[0]))
      }
      await client.query('rollback')
    })
  })

  it('describes a statement once per connection, then sends Bind/Execute/Sync only, over many calls', async () => {
    await onClient(async (client) => {
      const counter = countDescribes(client)
      try {
        const text = 'select g as n, $1::text as label from generate_series(1, $2::int) g'
        for (let i = 0; i < 200; i++) {
          const r = await runNamed(client, 'wire_reuse', text, [`l${i}`, i % 7])
          expect(r.rowCount).toBe(i % 7)
          expect(r.rows).toEqual(
            Array.from({ length: i % 7 }, (_, k) => ({ n: k + 1, label: `l${i}` })),
          )
        }
        // on a pg without the internals it relies on (8.13, 8.14): pg's own Query, a Describe per call
        expect(counter.count).toBe(SKIPS_DESCRIBE ? 1 : 200)
        // pg's own named query on the same client still works (its bookkeeping is intact)
        const own = await client.query({ name: 'wire_reuse', text, values: ['own', 2] })
        expect(own.rows).toEqual([
          { n: 1, label: 'own' },
          { n: 2, label: 'own' },
        ])
        const again = await runNamed(client, 'wire_reuse', text, ['after', 1])
        expect(again.rows).toEqual([{ n: 1, label: 'after' }])
      } finally {
        counter.restore()
      }
    })
  })

  it('reports writes’ command and rowCount as pg does, for statements without rows too', async () => {
    await onClient(async (client) => {
      await client.query('create temporary table wire_writes (id int primary key, v text)')
      const cases: [string, string, unknown[]][] = [
        ['wire_ins', 'insert into wire_writes values ($1, $2)', [1, 'a']],
        ['wire_ins_ret', 'insert into wire_writes values ($1, $2) returning id, v', [2, 'b']],
        ['wire_upd', 'update wire_writes set v = $1 where id <= $2', ['c', 2]],
        ['wire_upd_none', 'update wire_writes set v = $1 where id > $2', ['d', 100]],
        ['wire_sel_none', 'select id, v from wire_writes where id > $1', [100]],
        ['wire_del', 'delete from wire_writes where id = $1', [1]],
      ]
      await client.query('begin')
      for (const [name, text, values] of cases) {
        await client.query('savepoint w')
        const viaPg = await client.query({ name: `${name}_pg`, text, values })
        await client.query('rollback to savepoint w')
        for (let run = 0; run < 2; run++) {
          const viaWire = await runNamed(client, name, text, values)
          await client.query('rollback to savepoint w')
          expect(pick(viaWire), text).toEqual(pick(viaPg))
          expect(viaWire.fields.length).toBe(viaPg.fields.length)
        }
      }
      await client.query('commit')
      const ins = await runNamed(client, 'wire_ins', 'insert into wire_writes values ($1, $2)', [
        5,
        'e',
      ])
      expect(pick(ins)).toEqual({ rows: [], command: 'INSERT', rowCount: 1 })
      const upd = await runNamed(
        client,
        'wire_upd',
        'update wire_writes set v = $1 where id <= $2',
        ['f', 10],
      )
      expect(pick(upd)).toEqual({ rows: [], command: 'UPDATE', rowCount: 1 })
      const none = await runNamed(
        client,
        'wire_sel_none',
        'select id, v from wire_writes where id > $1',
        [100],
      )
      expect(pick(none)).toEqual({ rows: [], command: 'SELECT', rowCount: 0 })
      await client.query('drop table wire_writes')
    })
  })

  it('after a schema change: a compatible one keeps working; a changed result type fails as pg fails, then recovers once re-prepared', async () => {
    await onClient(async (client) => {
      await client.query('create temporary table wire_schema (a int, b text)')
      await client.query("insert into wire_schema values (1, 'one')")
      const explicit = 'select a, b from wire_schema where a >= $1'
      const star = 'select * from wire_schema where a >= $1'
      for (let i = 0; i < 2; i++) {
        expect((await runNamed(client, 'wire_explicit', explicit, [0])).rows).toEqual([
          { a: 1, b: 'one' },
        ])
        await runNamed(client, 'wire_star', star, [0])
      }
      await client.query('alter table wire_schema add column c int default 7')
      // the statement's columns are unchanged: the cached description still holds
      expect((await runNamed(client, 'wire_explicit', explicit, [0])).rows).toEqual([
        { a: 1, b: 'one' },
      ])
      // its result type changed: PostgreSQL refuses (never rows of another shape)
      const wireError = await runNamed(client, 'wire_star', star, [0]).catch((e: unknown) => e)
      expect(wireError).toBeInstanceOf(pg.DatabaseError)
      expect((wireError as pg.DatabaseError).code).toBe('0A000')
      const pgError = await client
        .query({ name: 'wire_star', text: star, values: [0] })
        .catch((e: unknown) => e)
      expect((pgError as pg.DatabaseError).message).toBe((wireError as Error).message)
      // re-prepared, it is described afresh and decodes the new columns
      await client.query('deallocate wire_star')
      const conn = (
        client as unknown as { connection: { parsedStatements: Record<string, string> } }
      ).connection
      delete conn.parsedStatements.wire_star
      expect((await runNamed(client, 'wire_star', star, [0])).rows).toEqual([
        { a: 1, b: 'one', c: 7 },
      ])
      await client.query('drop table wire_schema')
    })
  })

  it('an error inside a transaction: pg’s DatabaseError, the transaction aborted, the connection fine after rollback', async () => {
    const taken = await makeUser(t.db)
    await onClient(async (client) => {
      const text = 'insert into users (id, username, status) values ($1, $2, $3) returning id'
      await client.query('begin')
      const error = await runNamed(client, 'wire_tx', text, [
        newId(),
        taken.username,
        'online',
      ]).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(pg.DatabaseError)
      expect(mapDatabaseError(error)).toBeInstanceOf(UniqueViolationError)
      const aborted = await runNamed(client, 'wire_tx', text, [newId(), 'x', 'online']).catch(
        (e: unknown) => e,
      )
      expect((aborted as pg.DatabaseError).code).toBe('25P02')
      await client.query('rollback')
      const id = newId()
      const ok = await runNamed(client, 'wire_tx', text, [id, `w_${id.slice(-8)}`, 'online'])
      expect(ok.rows).toEqual([{ id }])
    })
    // and through guildstore's own transaction path: the typed error, then the instance works on
    const insert = prepareQuery('test.wire_tx_insert', (db, p: { id: string; username: string }) =>
      db
        .insertInto('users')
        .values({ id: p.id, username: p.username, status: 'online' })
        .returning('id'),
    )
    await expect(
      t.db.transaction().execute(async (trx) => {
        await insert.execute(trx, { id: newId(), username: `ok_${Date.now()}` })
        await insert.execute(trx, { id: newId(), username: taken.username })
      }),
    ).rejects.toBeInstanceOf(UniqueViolationError)
    const id = newId()
    expect(await insert.execute(t.db, { id, username: `after_${id.slice(-8)}` })).toEqual([{ id }])
  })

  // pg before its bind-error fix (8.13 … 8.16 at least: Query.prepare closes and syncs
  // after a failed Bind) leaves the connection waiting and, with pg-protocol 1.7,
  // the half-written Bind in the serializer's shared buffer: its own Query hangs here too.
  it.runIf(pgClosesAfterBindError)(
    'a value pg cannot serialize fails as with pg’s own Query, and nothing is cached from that call',
    async () => {
      const bad = {
        toPostgres() {
          throw new Error('cannot serialize')
        },
      }
      const outcomes = async (run: (values: unknown[]) => Promise<unknown>) => {
        const out: string[] = []
        for (const values of [[bad], ['ok'], ['ok']]) {
          out.push(
            await run(values).then(
              (r) => `rows ${JSON.stringify((r as { rows: unknown[] }).rows)}`,
              (e: Error & { code?: string }) => `error ${e.code ?? e.message}`,
            ),
          )
        }
        return out
      }
      await onClient(async (client) => {
        const text = 'select $1::text as v'
        const viaPg = await outcomes((values) =>
          client.query({ name: 'wire_bad_pg', text, values }),
        )
        const viaWire = await outcomes((values) => runNamed(client, 'wire_bad', text, values))
        expect(viaWire).toEqual(viaPg)
        expect(viaWire[0]).toBe('error cannot serialize')
      })
    },
  )

  it('a connection lost mid-query fails as with pg’s own Query', async () => {
    const lost = async (run: (client: pg.Client) => Promise<unknown>) => {
      const client = new pg.Client({ connectionString: t.url })
      client.on('error', () => {})
      await client.connect()
      const pid = (await client.query('select pg_backend_pid() as pid')).rows[0].pid
      const pending = run(client).catch((e: unknown) => e)
      await new Promise((r) => setTimeout(r, 150))
      await t.pool.query('select pg_terminate_backend($1)', [pid])
      const error = await pending
      await client.end().catch(() => {})
      return error
    }
    const viaWire = await lost((c) => runNamed(c, 'wire_sleep', 'select pg_sleep($1)', [5]))
    const viaPg = await lost((c) =>
      c.query({ name: 'wire_sleep', text: 'select pg_sleep($1)', values: [5] }),
    )
    expect(viaWire).toBeInstanceOf(Error)
    expect(mapDatabaseError(viaWire)).toBeInstanceOf(ConnectionLostError)
    expect(mapDatabaseError(viaWire).constructor).toBe(mapDatabaseError(viaPg).constructor)
  })

  it('guildstore with the wire path on and off (wirePath: false): the same results and typed errors on the direct, write and transaction paths', async () => {
    const wired = createDb(t.pool)
    const plain = createDb(t.pool)
    const execution = (plain.getExecutor().adapter as GuildstoreAdapter).execution as unknown as {
      settings: object
    }
    execution.settings = { ...execution.settings, wirePath: false }
    const { user, channel, owner } = await makeGuildWithMember(t.db, Permissions.ALL)
    const sent = await sendMessage(wired, {
      channel_id: channel.id,
      author_id: user.id,
      content: 'w',
    })
    for (let i = 0; i < 3; i++) {
      expect(await listChannelMessages(wired, channel.id, { limit: 50 })).toEqual(
        await listChannelMessages(plain, channel.id, { limit: 50 }),
      )
      expect(
        await readChannelMessages(wired, { user_id: owner.id, channel_id: channel.id }),
      ).toEqual(await readChannelMessages(plain, { user_id: owner.id, channel_id: channel.id }))
    }
    const insert = prepareQuery('test.wire_opt_in', (db, p: { id: string; username: string }) =>
      db
        .insertInto('users')
        .values({ id: p.id, username: p.username, status: 'online' })
        .returning('id'),
    )
    const taken = await makeUser(t.db)
    await expect(
      insert.execute(wired, { id: newId(), username: taken.username }),
    ).rejects.toBeInstanceOf(UniqueViolationError)
    await expect(
      wired.transaction().execute(async (trx) => {
        await sendMessage(trx, { channel_id: channel.id, author_id: user.id, content: 'in tx' })
        await insert.execute(trx, { id: newId(), username: taken.username })
      }),
    ).rejects.toBeInstanceOf(UniqueViolationError)
    const page = await listChannelMessages(wired, channel.id, { limit: 50 })
    expect(page.map((m) => m.id)).toEqual([sent.id])
  })

  it('searchMessages puts on the wire what raw pg sends for its two statements: two round trips, no transaction, the search unnamed, one Describe fewer', async () => {
    const { user, channel, owner } = await makeGuildWithMember(t.db, Permissions.ALL)
    for (let i = 0; i < 3; i++) {
      await makeMessage(t.db, channel.id, owner.id, { content: `wiretrace ${i}` })
    }
    // One connection for both, so the two traces differ only by the client code.
    const pool = createPool({ connectionString: t.url, max: 1 })
    let sent: string[] = []
    let roundTrips = 0
    pool.on('connect', (client) => {
      const connection = (
        client as unknown as {
          connection: {
            stream: { write: (chunk: unknown, ...rest: unknown[]) => boolean }
            on(event: string, fn: () => void): void
          }
        }
      ).connection
      const stream = connection.stream
      const write = stream.write
      stream.write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
        // every frontend message: a type byte and an int32 length that counts itself
        if (Buffer.isBuffer(chunk)) {
          for (let at = 0; at + 5 <= chunk.length; at += 1 + chunk.readInt32BE(at + 1)) {
            sent.push(String.fromCharCode(chunk[at] as number))
          }
        }
        return write.call(this, chunk, ...rest)
      }
      connection.on('readyForQuery', () => {
        roundTrips++
      })
    })
    const db = createDb(pool)
    try {
      const input = { user_id: user.id, query: 'wiretrace', limit: 25 }
      const trace = async (run: () => Promise<unknown>) => {
        await run() // prepared and described on this connection
        sent = []
        roundTrips = 0
        const result = await run()
        return { sent: sent.join(''), roundTrips, result }
      }
      const viaGuildstore = await trace(() => searchMessages(db, input))
      // raw pg, the same SQL: the first statement named, the search unnamed
      const captured: { sql: string; parameters: readonly unknown[] }[] = []
      await searchMessages(
        createDb(t.pool, {
          logParameters: true,
          log: (e) => captured.push({ sql: e.sql, parameters: e.parameters ?? [] }),
        }),
        input,
      )
      expect(captured).toHaveLength(2)
      const [first, search] = captured as [(typeof captured)[0], (typeof captured)[0]]
      const viaPg = await trace(async () => {
        const ids = (
          await pool.query({ name: 'wire_raw_ids', text: first.sql, values: [...first.parameters] })
        ).rows[0].ids
        const values = search.parameters.map((v) => (Array.isArray(v) ? ids : v))
        return (await pool.query({ text: search.sql, values })).rows
      })
      expect(viaGuildstore.roundTrips).toBe(2)
      expect(viaPg.roundTrips).toBe(2)
      // Bind, [Describe,] Execute, Sync; then Parse, Bind, Describe, Execute, Sync
      expect(viaPg.sent).toBe('BDESPBDES')
      expect(viaGuildstore.sent).toBe(SKIPS_DESCRIBE ? 'BESPBDES' : 'BDESPBDES')
      expect(viaGuildstore.result).toEqual(
        (viaPg.result as Record<string, unknown>[]).map((row) => expect.objectContaining(row)),
      )
      expect((viaGuildstore.result as unknown[]).length).toBe(3)
    } finally {
      await db.destroy()
    }
  })

  it('on a pg.Pool the host passed in: guildstore’s calls and the host’s own named queries share its clients', async () => {
    const host = new pg.Pool({ connectionString: t.url, max: 1 })
    host.on('error', () => {})
    try {
      const db = createDb(host)
      const { user, channel } = await makeGuildWithMember(db, Permissions.ALL)
      const message = await sendMessage(db, {
        channel_id: channel.id,
        author_id: user.id,
        content: 'host',
      })
      for (let i = 0; i < 3; i++) {
        const page = await listChannelMessages(db, channel.id, { limit: 50 })
        expect(page.map((m) => m.id)).toEqual([message.id])
      }
      // the host runs guildstore's statement by its name on the same (single) client, with pg's Query
      const captured: { sql: string; parameters: readonly unknown[] }[] = []
      await listChannelMessages(
        createDb(t.pool, {
          logParameters: true,
          log: (e) => captured.push({ sql: e.sql, parameters: e.parameters ?? [] }),
        }),
        channel.id,
        { limit: 50 },
      )
      const st = captured[0] as { sql: string; parameters: readonly unknown[] }
      const names = await host.query<{ name: string }>(
        'select name from pg_prepared_statements where statement = $1',
        [st.sql],
      )
      const name = names.rows[0]?.name as string
      expect(name).toMatch(/^gs\./)
      const own = await host.query({ name, text: st.sql, values: [...st.parameters] })
      expect(own.rows.map((r) => r.id)).toEqual([message.id])
      const page = await listChannelMessages(db, channel.id, { limit: 50 })
      expect(page.map((m) => m.id)).toEqual([message.id])
    } finally {
      await host.end()
    }
  })
})
