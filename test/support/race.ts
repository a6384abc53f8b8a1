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

/** A pool the barrier can check a client out of. */
interface ClientSource {
  connect(): Promise<Queryable & { release(): void }>
}

/** What {@link raceAtBarrier} saw: each call's outcome, and the lock waiters counted. */
export interface BarrierRace<T> {
  results: PromiseSettledResult<T>[]
  /** Backends seen waiting on a lock while the barrier held (at least the `waiters` asked for). */
  waiters: number
}

/**
 * Runs `calls` at once behind a barrier: a separate connection opens a
 * transaction and runs `hold` (a row lock, an advisory lock, `LOCK TABLE`…),
 * the calls start, and the barrier commits only once `waiters` backends wait
 * on a lock, so those calls were provably in flight together when it let them
 * go. Rolls the barrier back (and rethrows) when the waiters never appear.
 * `waiters` defaults to `calls.length`; pass fewer when one call wins the lock
 * without waiting, or when the pool (less the barrier) has fewer connections
 * than there are calls.
 *
 * @example
 * ```ts
 * const { results, waiters } = await raceAtBarrier(t.pool, lockTables('messages'), calls)
 * expect(waiters).toBeGreaterThanOrEqual(calls.length)
 * ```
 */
export async function raceAtBarrier<T>(
  pool: ClientSource,
  hold: string | { text: string; values: unknown[] },
  calls: ReadonlyArray<() => Promise<T>>,
  waiters: number = calls.length,
): Promise<BarrierRace<T>> {
  const barrier = await pool.connect()
  let pending: Promise<PromiseSettledResult<T>[]> | undefined
  try {
    await barrier.query('begin')
    if (typeof hold === 'string') await barrier.query(hold)
    else await barrier.query(hold.text, hold.values)
    pending = Promise.allSettled(calls.map((call) => call()))
    const seen = await waitForLockWaiters(barrier, waiters)
    await barrier.query('commit')
    return { results: await pending, waiters: seen }
  } catch (error) {
    // Let the held calls go before the error surfaces.
    await barrier.query('rollback').catch(() => {})
    await pending
    throw error
  } finally {
    barrier.release()
  }
}

/**
 * The barrier statement that stops every writer of `tables` (and every
 * `FOR UPDATE`/`FOR SHARE`/foreign-key check on them) while plain reads go on:
 * `LOCK TABLE … IN EXCLUSIVE MODE`. A check-then-write call reads, then waits
 * at its first write, so all the calls read before any of them writes.
 */
export function lockTables(...tables: string[]): string {
  return `lock table ${tables.map((t) => `"${t}"`).join(', ')} in exclusive mode`
}

/** The rejections of a settled race, with their reasons. */
export function rejections<T>(results: PromiseSettledResult<T>[]): unknown[] {
  return results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []))
}

/** The values of a settled race; throws the first rejection when any call failed. */
export function fulfilled<T>(results: PromiseSettledResult<T>[]): T[] {
  return results.map((r) => {
    if (r.status === 'rejected') throw r.reason
    return r.value
  })
}

/**
 * Runs `calls` at once and records when each started and settled
 * (`performance.now()`), for racing servers without lock waiters to count
 * (Redis): the windows overlapped when the last start came before the first
 * end, which {@link windowsOverlap} checks.
 */
export async function timedRace<T>(
  calls: ReadonlyArray<() => Promise<T>>,
): Promise<{ results: PromiseSettledResult<T>[]; starts: number[]; ends: number[] }> {
  const starts: number[] = []
  const ends: number[] = []
  const results = await Promise.allSettled(
    calls.map(async (call, i) => {
      starts[i] = performance.now()
      try {
        return await call()
      } finally {
        ends[i] = performance.now()
      }
    }),
  )
  return { results, starts, ends }
}

/** Whether every window of a {@link timedRace} overlapped every other: max(start) < min(end). */
export function windowsOverlap(race: { starts: number[]; ends: number[] }): boolean {
  return Math.max(...race.starts) < Math.min(...race.ends)
}

/**
 * Polls `check` every 10 ms until it returns true: for waits that show in no
 * lock table (a runner polling a try-lock logs that it waits). Throws naming
 * `what` after `timeoutMs`.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}
