/**
 * PROTOTYPE (bench only) of a cheaper `withNamedStatements` for
 * src/db/create-db.ts: plain wrapper objects made once per pooled client,
 * instead of a Proxy whose `get` trap runs (and `bind`s a new function) on every
 * property access of every query.
 */
import { Kysely, PostgresDialect } from 'kysely'
import type pg from 'pg'
import type { DB } from '../../codegen/db.ts'
import { statementName } from '../../src/sql/statement-names.ts'

type QueryFn = (config: unknown, values?: unknown[]) => Promise<unknown>

export function withNamedStatementsFast(pool: pg.Pool): pg.Pool {
  const wrapped = new WeakMap<pg.PoolClient, pg.PoolClient>()
  const wrap = (client: pg.PoolClient): pg.PoolClient => {
    let w = wrapped.get(client)
    if (!w) {
      const query = client.query.bind(client) as unknown as QueryFn
      w = {
        query: (sql: unknown, values?: unknown[]) => {
          const name = typeof sql === 'string' ? statementName(sql) : undefined
          return name ? query({ name, text: sql, values }) : query(sql, values)
        },
        release: (err?: Error | boolean) => client.release(err),
        get processID() {
          return (client as unknown as { processID: number }).processID
        },
      } as unknown as pg.PoolClient
      wrapped.set(client, w)
    }
    return w
  }
  return {
    connect: async () => wrap(await pool.connect()),
    end: () => pool.end(),
    get options() {
      return pool.options
    },
    Client: (pool as unknown as { Client: unknown }).Client,
  } as unknown as pg.Pool
}

export function createDbFast(pool: pg.Pool): Kysely<DB> {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool: withNamedStatementsFast(pool) }) })
}
