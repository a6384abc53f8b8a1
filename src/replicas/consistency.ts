import type { Kysely } from 'kysely'
import type { DB } from '../../codegen/db.ts'
import { InvalidInputError } from '../errors/index.ts'
import { ConsistencyFloor, Execution, GuildstoreAdapter } from '../sql/execution.ts'
import { formatLsn, parseLsn } from '../sql/lsn.ts'
import type { ReplicaStats } from '../sql/replica-router.ts'

function executionOf(db: Kysely<DB>): Execution | undefined {
  const adapter = db.getExecutor().adapter
  return adapter instanceof GuildstoreAdapter ? adapter.execution : undefined
}

/**
 * The read-your-writes token of a `db` made with replicas: the primary's WAL
 * position after its last write (PostgreSQL `pg_lsn` text, e.g. `'0/16B3748'`),
 * or the token it was made with; `undefined` before any. Hand it to the
 * client (a session field, a header, a cookie) and back to
 * {@link withConsistencyToken} on its next request, in any process: reads
 * there will not see data older than this write. It carries no secret.
 *
 * @example
 * ```ts
 * const db = withConsistencyToken(rootDb, req.session.gsToken)
 * await sendMessage(db, input)
 * req.session.gsToken = consistencyToken(db)
 * ```
 */
export function consistencyToken(db: Kysely<DB>): string | undefined {
  const lsn = executionOf(db)?.floor.token
  return lsn === undefined ? undefined : formatLsn(lsn)
}

/**
 * An instance on the same pools as `db` (made by `createDb` with replicas)
 * whose reads see at least everything up to `token` (from
 * {@link consistencyToken}, possibly of another process): a replica serves
 * them only once it has replayed that far, waiting up to
 * `readYourWritesTimeoutMs`, else the primary does. Its own writes raise its
 * token further. Cheap enough to make per request; do not `destroy()` it (the
 * pools belong to `db`). Without a token it starts with none; without
 * replicas, or on a transaction, it returns `db` itself.
 *
 * The token is not trusted: before the first read it is checked against the
 * primary's WAL position (free when the heartbeat has already seen a position
 * that high, else one round trip to the primary) and **clamped** to that
 * position when beyond it — a token from a forged or foreign source (or one
 * whose writes a failover lost) then costs one check and never holds reads
 * back nor flows into the tokens this instance hands out after a read or a
 * write. Until that check, `consistencyToken` echoes the token as given.
 *
 * @throws {InvalidInputError} When `token` is not a WAL position (`'0/16B3748'`), or `db` is not an instance `createDb` made.
 * @example
 * ```ts
 * app.use((req, _res, next) => {
 *   req.db = withConsistencyToken(db, req.get('x-gs-token'))
 *   next()
 * })
 * ```
 */
export function withConsistencyToken(db: Kysely<DB>, token: string | undefined): Kysely<DB> {
  const lsn = token === undefined ? undefined : parseLsn(token, 'token')
  const execution = executionOf(db)
  if (!execution) {
    throw new InvalidInputError('db must be an instance made by createDb', { field: 'db' })
  }
  if (!execution.router || db.isTransaction || !execution.spawn) return db
  const child = new Execution(execution.pool, execution.settings, {
    router: execution.router,
    floor: new ConsistencyFloor(undefined, lsn),
    ownsPools: false,
  })
  child.spawn = execution.spawn
  return execution.spawn(child)
}

/** A replica's state as {@link replicaStats} reports it. */
export interface ReplicaState {
  /** Answered its last check as a standby. */
  healthy: boolean
  /** How far its replay is behind the primary, in milliseconds (estimated from the primary's WAL position over time). */
  lagMs: number
  /** The last known replay position (`pg_lsn` text). */
  replayLsn: string
}

/**
 * Counters and replica states of a `db` made with replicas (shared by every
 * instance made from one `createDb` call), for metrics; `undefined` without replicas.
 *
 * @example
 * ```ts
 * const stats = replicaStats(db)
 * metrics.gauge('db.replica_reads', stats?.replicaReads ?? 0)
 * ```
 */
export function replicaStats(
  db: Kysely<DB>,
): (ReplicaStats & { replicas: ReplicaState[] }) | undefined {
  const router = executionOf(db)?.router
  if (!router) return undefined
  return {
    replicaReads: router.stats.replicaReads,
    waitedReads: router.stats.waitedReads,
    primaryReads: { ...router.stats.primaryReads },
    replicas: router.snapshot().map((r) => ({
      healthy: r.healthy,
      lagMs: r.lagMs,
      replayLsn: formatLsn(r.replay),
    })),
  }
}
