import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { MigrationLockTimeoutError } from './migration-errors.ts'
import type { MigrationLogger } from './migration-info.ts'

/** The session-level advisory lock key every guildstore runner takes: the bytes of `"guildsto"`. */
export const MIGRATION_LOCK_KEY = '7454980672444396655'

/**
 * Takes the session-level migration advisory lock on `client`, waiting for other runners.
 *
 * It polls `pg_try_advisory_lock` instead of blocking in `pg_advisory_lock`: a session
 * blocked in `pg_advisory_lock` holds a snapshot, and the lock holder's
 * `CREATE INDEX CONCURRENTLY` waits for every older snapshot, so the two would deadlock.
 * The lock is session-level: it survives the per-file transactions and is released by
 * {@link releaseMigrationLock} or when the connection ends (a crashed runner never leaves it held).
 *
 * @throws MigrationLockTimeoutError when `lockTimeoutMs` (> 0) passes first.
 * @example
 * ```ts
 * await acquireMigrationLock(client, { lockTimeoutMs: 60_000 })
 * try { … } finally { await releaseMigrationLock(client) }
 * ```
 */
export async function acquireMigrationLock(
  client: pg.PoolClient,
  options: { lockTimeoutMs?: number | undefined; logger?: MigrationLogger | undefined } = {},
): Promise<void> {
  const timeout = options.lockTimeoutMs ?? 0
  const started = performance.now()
  let delay = 25
  let logged = false
  for (;;) {
    const result = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1::bigint) AS locked',
      [MIGRATION_LOCK_KEY],
    )
    if (result.rows[0]?.locked) return
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

/**
 * Releases the migration lock taken by {@link acquireMigrationLock}.
 *
 * @throws the driver error when the connection is gone (the lock went with it).
 * @example
 * ```ts
 * await releaseMigrationLock(client)
 * ```
 */
export async function releaseMigrationLock(client: pg.PoolClient): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY])
}
