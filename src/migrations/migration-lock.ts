import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { mapDatabaseError } from '../errors/map-database-error.ts'
import { MigrationLockTimeoutError } from './migration-errors.ts'
import type { MigrationLogger } from './migration-info.ts'

/** The advisory lock key every guildstore runner takes for a whole run: the bytes of `"guildsto"`. */
export const MIGRATION_LOCK_KEY = '7454980672444396655'

/**
 * The advisory lock key each migration file's transaction takes before it re-checks the
 * history, so a file still running in a dead runner's transaction is waited for, never
 * applied twice.
 */
export const MIGRATION_FILE_LOCK_KEY = '7454980672444396656'

/** The run-level migration lock, held until {@link MigrationLock.release}. */
export interface MigrationLock {
  /** Ends the lock's transaction and closes its connection. Never throws. */
  release(): Promise<void>
}

/**
 * Takes the run-level migration lock: a transaction-level advisory lock held by an
 * open transaction on a connection of its own (made with the pool's settings).
 *
 * Transaction-level, so it can never outlive the runner, even through a
 * transaction-mode pooler (PgBouncer `pool_mode = transaction`): a session-level lock
 * would stay on the server connection the pooler hands to the next client, while an
 * open transaction pins the server connection to this runner and ends with it (the
 * pooler rolls back or closes a server connection whose client left mid-transaction).
 * It polls `pg_try_advisory_xact_lock` in a READ COMMITTED transaction instead of
 * blocking in `pg_advisory_xact_lock`: a blocked session holds a snapshot, and the
 * holder's `CREATE INDEX CONCURRENTLY` waits for every older snapshot (a deadlock);
 * between polls the transaction holds none. The same key as 0.1.0's session lock, so
 * an old and a new runner exclude each other too.
 *
 * @throws MigrationLockTimeoutError when `lockTimeoutMs` (> 0) passes first.
 * @throws DatabaseUnavailableError when the connection cannot be made or is lost.
 * @example
 * ```ts
 * const lock = await acquireMigrationLock(pool, { lockTimeoutMs: 60_000 })
 * try { … } finally { await lock.release() }
 * ```
 */
export async function acquireMigrationLock(
  pool: pg.Pool,
  options: { lockTimeoutMs?: number | undefined; logger?: MigrationLogger | undefined } = {},
): Promise<MigrationLock> {
  const client = new pg.Client(pool.options as pg.ClientConfig)
  // A connection lost between two polls must not be an unhandled 'error' event:
  // the next query fails instead.
  client.on('error', () => {})
  const release = async () => {
    await client.query('ROLLBACK').catch(() => {})
    await client.end().catch(() => {})
  }
  try {
    await client.connect()
    const timeout = options.lockTimeoutMs ?? 0
    const started = performance.now()
    let delay = 25
    let logged = false
    for (;;) {
      // One simple-protocol round trip (no parameters; the key is a constant). A failed
      // poll's transaction ends at once (ROLLBACK below): a CREATE INDEX CONCURRENTLY of
      // the holder waits for every transaction that had a snapshot when it started, so
      // a waiter must never keep one open. The held transaction keeps no snapshot either:
      // an extended-protocol query would leave its portal's snapshot open until the next.
      const results = (await client.query(
        `BEGIN ISOLATION LEVEL READ COMMITTED;
         SET LOCAL idle_in_transaction_session_timeout = 0;
         SET LOCAL statement_timeout = 0;
         SELECT pg_try_advisory_xact_lock(${MIGRATION_LOCK_KEY}::bigint) AS locked`,
      )) as unknown as pg.QueryResult<{ locked: boolean }>[]
      if (results.at(-1)?.rows[0]?.locked) return { release }
      await client.query('ROLLBACK')
      const waited = performance.now() - started
      if (timeout > 0 && waited >= timeout) throw new MigrationLockTimeoutError(timeout)
      if (!logged) {
        options.logger?.info('waiting for the migration lock held by another runner')
        logged = true
      }
      const pause = Math.min(delay, timeout > 0 ? Math.max(1, timeout - waited) : delay)
      await sleep(pause + Math.random() * 10)
      delay = Math.min(delay * 2, 500)
    }
  } catch (err) {
    await release()
    throw mapDatabaseError(err)
  }
}

/**
 * The run lock for a pool of one connection (`max: 1`, e.g. an embedded single-connection
 * server), which cannot spare a connection for {@link acquireMigrationLock}: 0.1.0's
 * session-level advisory lock on the migration connection itself, polled with
 * `pg_try_advisory_lock`. Released by {@link MigrationLock.release} or when the session
 * ends: sound on a direct connection, not behind a transaction-mode pooler.
 *
 * @throws MigrationLockTimeoutError when `lockTimeoutMs` (> 0) passes first.
 * @example
 * ```ts
 * const lock = await acquireSessionMigrationLock(client, {})
 * ```
 */
export async function acquireSessionMigrationLock(
  client: pg.PoolClient,
  options: { lockTimeoutMs?: number | undefined; logger?: MigrationLogger | undefined } = {},
): Promise<MigrationLock> {
  const timeout = options.lockTimeoutMs ?? 0
  const started = performance.now()
  let delay = 25
  let logged = false
  for (;;) {
    // Polls instead of blocking: a session blocked in pg_advisory_lock holds a snapshot,
    // which the holder's CREATE INDEX CONCURRENTLY would wait for (a deadlock).
    const result = await client.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_lock(${MIGRATION_LOCK_KEY}::bigint) AS locked`,
    )
    if (result.rows[0]?.locked) {
      return {
        release: async () => {
          await client
            .query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY}::bigint)`)
            .catch(() => {})
        },
      }
    }
    const waited = performance.now() - started
    if (timeout > 0 && waited >= timeout) throw new MigrationLockTimeoutError(timeout)
    if (!logged) {
      options.logger?.info('waiting for the migration lock held by another runner')
      logged = true
    }
    const pause = Math.min(delay, timeout > 0 ? Math.max(1, timeout - waited) : delay)
    await sleep(pause + Math.random() * 10)
    delay = Math.min(delay * 2, 500)
  }
}
