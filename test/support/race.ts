/** Anything that runs a query: a pool or a checked-out client. */
interface Queryable {
  query<R extends object>(text: string, values?: unknown[]): Promise<{ rows: R[] }>
}

/**
 * Waits until at least `n` backends of this database wait on a lock (a row
 * lock, a transaction id, an advisory lock): proof that concurrent calls really
 * overlap before the barrier holding them is released. Pass the barrier's own
 * client when the pool is busy with the waiters (the activity snapshot is
 * cleared on each poll, so it works inside that client's transaction).
 */
export async function waitForLockWaiters(on: Queryable, n: number, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    await on.query('select pg_stat_clear_snapshot()')
    const { rows } = await on.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
       where datname = current_database() and wait_event_type = 'Lock'`,
    )
    const waiting = rows[0]?.n ?? 0
    if (waiting >= n) return waiting
    if (Date.now() > deadline) throw new Error(`only ${waiting} of ${n} lock waiters appeared`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
