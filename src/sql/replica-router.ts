import type pg from 'pg'
import { InvalidInputError } from '../errors/index.ts'
import { parseLsn } from './lsn.ts'

/** How reads are spread over replicas; see `createDb`'s `replicas` options. */
export interface ReplicaSettings {
  /**
   * A replica whose replay is further behind the primary than this, in
   * milliseconds, is skipped. Default 1000.
   */
  maxLagMs: number
  /**
   * After a write through a `db` (or with a consistency token), how long a read
   * waits for a replica to replay past that write before it goes to the
   * primary instead, in milliseconds. Default 250; `0` checks the replica
   * once and never waits.
   */
  readYourWritesTimeoutMs: number
  /** How often replicas' health and replay position are checked, in milliseconds. Default 200. */
  checkIntervalMs: number
  /**
   * The longest a read (or a health check) may take on a replica, connecting
   * included, in milliseconds. Past it the replica is marked down (its
   * connection destroyed, the heartbeat tries it again) and the read runs on
   * the primary. Default 2000.
   */
  readTimeoutMs: number
}

/** Counters of a replica router, for metrics and tests; see `replicaStats`. */
export interface ReplicaStats {
  /** Reads a replica served. */
  replicaReads: number
  /** Of those, reads that first waited for the replica to replay past the caller's last write. */
  waitedReads: number
  /** Reads that went to the primary, by reason. */
  primaryReads: {
    /** Every replica was down (or not a standby). */
    down: number
    /** Every live replica lagged beyond `maxLagMs`. */
    lagging: number
    /** No replica replayed the caller's last write within `readYourWritesTimeoutMs`. */
    notReplayed: number
    /** A replica failed the read (connection lost, recovery conflict…): it was run again on the primary. */
    error: number
    /** A replica did not answer within `readTimeoutMs` (hung, stopped, cut off): marked down, the read run again on the primary. */
    timeout: number
  }
}

interface ReplicaState {
  readonly pool: pg.Pool
  /** Known healthy: answered its last check as a standby. */
  healthy: boolean
  /** The last known replay position. */
  replay: bigint
  refreshing: Promise<void> | undefined
}

/** Node/pg errors that mean a server cannot be reached (the replica is then skipped until a check passes). */
const CONNECTION_FAILURE =
  /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|Connection terminated|timeout exceeded when trying to connect|terminating connection|the database system is (shutting down|starting up)|Client has encountered a connection error/i

/**
 * The primary's WAL *insert* position: past every record inserted so far,
 * including the commit record of an asynchronous commit
 * (`synchronous_commit = off`), which `pg_current_wal_lsn()` (the write
 * position) does not yet cover.
 */
const LSN_QUERY = 'SELECT pg_current_wal_insert_lsn()::text AS lsn'
const REPLAY_QUERY = 'SELECT pg_is_in_recovery() AS recovery, pg_last_wal_replay_lsn()::text AS lsn'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Anything that runs a query: a pool or a checked-out client. */
export type Queryable = Pick<pg.Pool, 'query'>

/** A replica did not answer within `readTimeoutMs`. */
class ReplicaTimeout extends Error {
  constructor(ms: number) {
    super(`the replica did not answer within ${ms} ms`)
  }
}

/**
 * Closes a client whose server does not answer: handed back to the pool as
 * broken (the pool drops it) and its socket destroyed at once, since a polite
 * close waits for a server that may never answer.
 */
function destroyClient(client: pg.PoolClient): void {
  try {
    client.release(new Error('replica read timed out'))
  } catch {
    // already released
  }
  ;(
    client as unknown as { connection?: { stream?: { destroy(): void } } }
  ).connection?.stream?.destroy()
}

/**
 * Routes reads to replicas: tracks each replica's health and replay position
 * (a heartbeat every `checkIntervalMs`, started on first use and unref'd),
 * estimates their lag in time from samples of the primary's WAL position, and
 * picks a replica for a read, waiting (bounded) for one to replay past a
 * required position. Shared by every `db` made from one `createDb` call.
 */
export class ReplicaRouter {
  readonly primary: pg.Pool
  readonly settings: ReplicaSettings
  readonly stats: ReplicaStats = {
    replicaReads: 0,
    waitedReads: 0,
    primaryReads: { down: 0, lagging: 0, notReplayed: 0, error: 0, timeout: 0 },
  }
  readonly #replicas: ReplicaState[]
  /** Primary WAL positions and when they were seen, oldest first. */
  #samples: Array<{ lsn: bigint; at: number }> = []
  #started: Promise<void> | undefined
  #timer: ReturnType<typeof setInterval> | undefined
  #checking = false
  #next = 0
  #closed = false
  /** The highest primary WAL position seen (heartbeat samples and positions read after writes). */
  #highest = 0n

  constructor(primary: pg.Pool, replicas: readonly pg.Pool[], settings: Partial<ReplicaSettings>) {
    this.primary = primary
    this.settings = {
      maxLagMs: checkMs(settings.maxLagMs, 'maxLagMs', 1000),
      readYourWritesTimeoutMs: checkMs(
        settings.readYourWritesTimeoutMs,
        'readYourWritesTimeoutMs',
        250,
      ),
      checkIntervalMs: checkMs(settings.checkIntervalMs, 'checkIntervalMs', 200, 1),
      readTimeoutMs: checkMs(settings.readTimeoutMs, 'readTimeoutMs', 2000, 1),
    }
    this.#replicas = replicas.map((pool) => ({
      pool,
      healthy: false,
      replay: 0n,
      refreshing: undefined,
    }))
  }

  /** The replica pools, in the order given. */
  get pools(): pg.Pool[] {
    return this.#replicas.map((r) => r.pool)
  }

  /** Starts the heartbeat (once) and resolves after the first check. */
  ready(): Promise<void> {
    if (!this.#started) {
      this.#started = this.#check()
      this.#timer = setInterval(() => void this.#check(), this.settings.checkIntervalMs)
      this.#timer.unref?.()
    }
    return this.#started
  }

  /** Stops the heartbeat. The pools are the caller's (replicas) or the db's (primary). */
  close(): void {
    this.#closed = true
    if (this.#timer) clearInterval(this.#timer)
  }

  /**
   * The primary's current WAL insert position through `queryable` (a client
   * after a commit, or the pool); remembered as the highest position known.
   */
  async currentLsn(queryable: Queryable): Promise<bigint> {
    const result = await queryable.query<{ lsn: string }>(LSN_QUERY)
    const lsn = parseLsn(result.rows[0]?.lsn, 'lsn')
    if (lsn > this.#highest) this.#highest = lsn
    return lsn
  }

  /** The highest primary WAL position this router has seen: a position at or below it certainly exists. */
  get highestKnown(): bigint {
    return this.#highest
  }

  /**
   * Runs a read on a replica that can serve it (healthy, within `maxLagMs`,
   * replayed past `floor`), else through `primary` (default: `run` on the
   * primary pool). The replica gets `readTimeoutMs` to answer; one that fails
   * the read or does not answer in time is skipped and the read runs again on
   * the primary, so a replica's error or hang never reaches the caller.
   */
  async read<T>(
    floor: bigint | undefined,
    run: (queryable: Queryable) => Promise<T>,
    primary: () => Promise<T> = () => run(this.primary),
  ): Promise<T> {
    const chosen = await this.choose(floor)
    if (!chosen) return primary()
    const state = this.#replicas.find((r) => r.pool === chosen.pool) as ReplicaState
    try {
      const result = await this.#bounded(state, run)
      this.stats.replicaReads++
      if (chosen.waited) this.stats.waitedReads++
      return result
    } catch (error) {
      this.#failed(state, error)
      return primary()
    }
  }

  /** Counts a failed read on a replica; the replica is skipped until a check passes when it looks down or hung. */
  #failed(state: ReplicaState, error: unknown): void {
    if (error instanceof ReplicaTimeout) {
      this.stats.primaryReads.timeout++
      state.healthy = false
      return
    }
    this.stats.primaryReads.error++
    const message =
      error instanceof Error ? `${error.message} ${String((error as { code?: unknown }).code)}` : ''
    if (CONNECTION_FAILURE.test(message)) state.healthy = false
  }

  /**
   * Runs `run` on a client of the replica's pool within `readTimeoutMs`
   * (taking the client included). Past it: rejects with a {@link ReplicaTimeout}
   * and destroys the client, so a hung server keeps neither the caller nor a
   * pool slot.
   */
  async #bounded<T>(state: ReplicaState, run: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const ms = this.settings.readTimeoutMs
    let expired = false
    let client: pg.PoolClient | undefined
    const work = state.pool.connect().then((taken) => {
      if (expired) {
        taken.release()
        throw new ReplicaTimeout(ms)
      }
      client = taken
      return run(taken)
    })
    let timer: ReturnType<typeof setTimeout> | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        expired = true
        reject(new ReplicaTimeout(ms))
      }, ms)
    })
    try {
      const result = await Promise.race([work, deadline])
      client?.release()
      return result
    } catch (error) {
      if (expired) {
        work.catch(() => {}) // it settles when the socket is destroyed (or the server wakes)
        if (client) destroyClient(client)
      } else {
        client?.release(error instanceof Error ? error : new Error(String(error)))
      }
      throw error
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Picks a replica for a read that must see everything up to `floor`, or
   * `undefined` for the primary (counted by reason).
   */
  async choose(floor: bigint | undefined): Promise<{ pool: pg.Pool; waited: boolean } | undefined> {
    await this.ready()
    const now = Date.now()
    const live = this.#replicas.filter((r) => r.healthy)
    if (live.length === 0) {
      this.stats.primaryReads.down++
      return undefined
    }
    const usable = live.filter((r) => this.lagMs(r, now) <= this.settings.maxLagMs)
    if (usable.length === 0) {
      this.stats.primaryReads.lagging++
      return undefined
    }
    if (floor === undefined) return { pool: this.#pick(usable).pool, waited: false }
    const replayed = usable.filter((r) => r.replay >= floor)
    if (replayed.length > 0) return { pool: this.#pick(replayed).pool, waited: false }
    // Wait (bounded) for the most advanced one to replay past the floor.
    const target = usable.reduce((a, b) => (b.replay > a.replay ? b : a))
    const deadline = now + this.settings.readYourWritesTimeoutMs
    for (;;) {
      // a replica that does not answer cannot hold the read past the bound
      const left = Math.max(1, deadline - Date.now())
      await Promise.race([this.#refresh(target), sleep(left)])
      if (!target.healthy) break
      if (target.replay >= floor) return { pool: target.pool, waited: true }
      const remaining = deadline - Date.now()
      if (remaining <= 0) break
      await sleep(Math.min(5, remaining))
    }
    this.stats.primaryReads.notReplayed++
    return undefined
  }

  /** How far behind the primary a replica is, in milliseconds: the age of the oldest primary position it has not replayed. */
  lagMs(replica: { replay: bigint }, now = Date.now()): number {
    for (const sample of this.#samples) {
      if (sample.lsn > replica.replay) return now - sample.at
    }
    return 0
  }

  /** The current state of each replica, for tests and metrics. */
  snapshot(): Array<{ healthy: boolean; replay: bigint; lagMs: number }> {
    const now = Date.now()
    return this.#replicas.map((r) => ({
      healthy: r.healthy,
      replay: r.replay,
      lagMs: this.lagMs(r, now),
    }))
  }

  #pick<R>(candidates: R[]): R {
    this.#next = (this.#next + 1) % 1_000_000
    return candidates[this.#next % candidates.length] as R
  }

  async #check(): Promise<void> {
    if (this.#closed || this.#checking) return
    this.#checking = true
    try {
      const at = Date.now()
      try {
        const lsn = await this.currentLsn(this.primary)
        const last = this.#samples.at(-1)
        if (!last || lsn > last.lsn) this.#samples.push({ lsn, at })
        // keep enough history to tell a lag beyond the bound
        const keepAfter = at - (this.settings.maxLagMs * 2 + this.settings.checkIntervalMs * 2)
        while (this.#samples.length > 1 && (this.#samples[0]?.at ?? at) < keepAfter) {
          this.#samples.shift()
        }
      } catch {
        // the primary's own errors surface on the primary's queries
      }
      await Promise.all(this.#replicas.map((r) => this.#refresh(r)))
    } finally {
      this.#checking = false
    }
  }

  /** Asks a replica for its replay position (one request in flight per replica, bounded by `readTimeoutMs`). */
  #refresh(replica: ReplicaState): Promise<void> {
    if (!replica.refreshing) {
      replica.refreshing = (async () => {
        try {
          const result = await this.#bounded(replica, (client) =>
            client.query<{ recovery: boolean; lsn: string | null }>(REPLAY_QUERY),
          )
          const row = result.rows[0]
          if (!row?.recovery || row.lsn === null) {
            replica.healthy = false // promoted, or not a standby at all: never read from it
            return
          }
          const replay = parseLsn(row.lsn, 'lsn')
          if (replay > replica.replay) replica.replay = replay
          replica.healthy = true
        } catch {
          replica.healthy = false
        } finally {
          replica.refreshing = undefined
        }
      })()
    }
    return replica.refreshing
  }
}

function checkMs(value: unknown, field: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 3_600_000) {
    throw new InvalidInputError(`${field} must be an integer from ${min} to 3600000`, { field })
  }
  return value
}
