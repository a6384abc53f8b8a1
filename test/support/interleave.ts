/**
 * An interleaving harness after PostgreSQL's own isolation tester
 * (src/test/isolation): a spec of sessions, each a list of steps, run step by
 * step in every chosen order. Each session owns one connection (a pool of
 * one, so its backend pid is known); a transaction session holds its
 * transaction open between steps. A step that blocks is detected the way the
 * isolation tester does it, by `pg_isolation_test_session_is_blocked` on the
 * session's backend, never by a sleep: the next step of another session then
 * runs, and the blocked one finishes when what it waits for commits.
 *
 * @example
 * ```ts
 * const h = await createInterleaver(url, ['r', 'w', 'f'])
 * const result = await h.run(
 *   [
 *     { name: 'r', isolation: 'repeatable read', steps: [snap, revoke] },
 *     { name: 'w', isolation: 'read committed', steps: [write] },
 *     { name: 'f', isolation: 'autocommit', steps: [fill] },
 *   ],
 *   ['r.snap', 'w.write', 'f.fill', 'r.revoke', 'r.commit', 'w.commit'],
 * )
 * ```
 */
import type { Kysely } from 'kysely'
import pg from 'pg'
import { createDb, type DB } from '../../src/index.ts'

/** How a session runs its steps. */
export type SessionIsolation = 'autocommit' | 'read committed' | 'repeatable read' | 'serializable'

/** One step: runs on the session's connection (inside its transaction, unless autocommit). */
export interface StepSpec {
  name: string
  run: (db: Kysely<DB>) => Promise<unknown>
}

/** A session: its steps in their order; a transaction session ends with an implicit `commit` step. */
export interface SessionSpec {
  name: string
  isolation: SessionIsolation
  steps: StepSpec[]
}

/** What became of one step. */
export interface StepOutcome {
  step: string
  /** The step was waiting on a lock when the next step of the order ran. */
  blocked: boolean
  error?: unknown
  /** Order in which the step finished (0-based, over the whole run). */
  finished: number
}

/** What one run of one order did. */
export interface RunResult {
  order: string[]
  outcomes: StepOutcome[]
  /** Steps that blocked (the proof that an order really overlapped). */
  blockedSteps: string[]
  /** Steps whose order could not be kept because their session was still blocked. */
  deferred: string[]
}

/** The step names of a session, with the implicit `commit` of a transaction session. */
export function stepNames(session: SessionSpec): string[] {
  const names = session.steps.map((s) => `${session.name}.${s.name}`)
  if (session.isolation !== 'autocommit') names.push(`${session.name}.commit`)
  return names
}

/**
 * Every interleaving of the sessions' step lists that keeps each session's own
 * order (the multinomial count: 3 + 3 + 1 steps give 140 orders).
 */
export function allOrders(lists: string[][]): string[][] {
  const out: string[][] = []
  const idx = lists.map(() => 0)
  const total = lists.reduce((n, l) => n + l.length, 0)
  const cur: string[] = []
  const walk = () => {
    if (cur.length === total) {
      out.push([...cur])
      return
    }
    for (let i = 0; i < lists.length; i++) {
      const list = lists[i] as string[]
      const at = idx[i] as number
      if (at < list.length) {
        cur.push(list[at] as string)
        idx[i] = at + 1
        walk()
        idx[i] = at
        cur.pop()
      }
    }
  }
  walk()
  return out
}

interface Channel {
  db: Kysely<DB>
  pool: pg.Pool
  pid: number
}

type Command = { step: StepSpec | 'commit'; done: (r: { error?: unknown }) => void }

/** A running session: a queue of commands its connection works through. */
class LiveSession {
  private queue: Command[] = []
  private wake: (() => void) | undefined
  private failure: unknown
  /** The loop has returned (committed, or rolled back after a failed step). */
  private ended = false
  readonly finished: Promise<void>
  readonly spec: SessionSpec
  private readonly conn: Channel

  constructor(spec: SessionSpec, conn: Channel) {
    this.spec = spec
    this.conn = conn
    const body =
      spec.isolation === 'autocommit'
        ? this.loop(conn.db)
        : conn.db
            .transaction()
            .setIsolationLevel(spec.isolation)
            .execute((trx) => this.loop(trx))
    this.finished = body.then(
      () => {
        this.ended = true
      },
      (error) => {
        this.ended = true
        this.failure ??= error
      },
    )
  }

  get pid() {
    return this.conn.pid
  }

  private async next(): Promise<Command> {
    for (;;) {
      const cmd = this.queue.shift()
      if (cmd) return cmd
      await new Promise<void>((r) => {
        this.wake = r
      })
    }
  }

  private async loop(db: Kysely<DB>): Promise<void> {
    for (;;) {
      const cmd = await this.next()
      if (cmd.step === 'commit') {
        // Settles once the transaction's COMMIT returned (see `send`).
        cmd.done({})
        return
      }
      try {
        await cmd.step.run(db)
        cmd.done({})
      } catch (error) {
        cmd.done({ error })
        if (this.spec.isolation !== 'autocommit') {
          // The transaction is aborted: leave the callback so Kysely rolls back.
          this.failure = error
          throw error
        }
      }
    }
  }

  /** Queues a command; settles when it finished (a commit: when COMMIT returned). */
  send(step: StepSpec | 'commit'): Promise<{ error?: unknown }> {
    if (this.ended || this.failure !== undefined) {
      return this.finished.then(() =>
        step === 'commit'
          ? { error: this.failure }
          : { error: new Error(`session ${this.spec.name} already ended`) },
      )
    }
    return new Promise<{ error?: unknown }>((resolve) => {
      const done =
        step === 'commit'
          ? () => {
              this.finished.then(() =>
                resolve(this.failure === undefined ? {} : { error: this.failure }),
              )
            }
          : resolve
      this.queue.push({ step, done })
      this.wake?.()
      this.wake = undefined
    })
  }
}

/** The harness: one connection per session name, a control pool, `run` per order. */
export interface Interleaver {
  run(sessions: SessionSpec[], order: string[]): Promise<RunResult>
  close(): Promise<void>
}

/**
 * Opens one single-connection pool per session name and a control connection.
 *
 * @param url the test database.
 * @param names the session names `run` will be given.
 */
export async function createInterleaver(url: string, names: string[]): Promise<Interleaver> {
  // An idle connection ended from outside (the file's database dropped WITH
  // (FORCE) at teardown: 57P01) is an 'error' event of its pool; without a
  // listener it is an uncaught exception that fails the whole run.
  const control = new pg.Pool({ connectionString: url, max: 1 })
  control.on('error', () => {})
  const channels = new Map<string, Channel>()
  for (const name of names) {
    const pool = new pg.Pool({ connectionString: url, max: 1, idleTimeoutMillis: 0 })
    pool.on('error', () => {})
    const db = createDb(pool)
    const { rows } = await pool.query<{ pid: number }>('select pg_backend_pid() as pid')
    channels.set(name, { db, pool, pid: rows[0]?.pid as number })
  }
  const pids = [...channels.values()].map((c) => c.pid)

  const isBlocked = async (pid: number) => {
    const { rows } = await control.query<{ b: boolean }>(
      'select pg_isolation_test_session_is_blocked($1, $2) as b',
      [pid, pids],
    )
    return rows[0]?.b === true
  }

  /** Waits for `p` to settle, or for the session to block: true when it blocked. */
  const settleOrBlock = async (p: Promise<unknown>, pid: number): Promise<boolean> => {
    let settled = false
    p.then(
      () => {
        settled = true
      },
      () => {
        settled = true
      },
    )
    const deadline = Date.now() + 30_000
    for (;;) {
      await new Promise((r) => setImmediate(r))
      if (settled) return false
      if (await isBlocked(pid)) {
        // Settled between the check and now? Then it did not block after all.
        return !settled
      }
      if (settled) return false
      if (Date.now() > deadline) throw new Error('a step neither finished nor blocked in 30 s')
      await new Promise((r) => setTimeout(r, 2))
    }
  }

  return {
    async run(sessions, order) {
      const live = new Map<string, LiveSession>()
      for (const spec of sessions) {
        const ch = channels.get(spec.name)
        if (!ch) throw new Error(`no connection for session ${spec.name}`)
        live.set(spec.name, new LiveSession(spec, ch))
      }
      const outcomes: StepOutcome[] = []
      const blockedSteps: string[] = []
      const deferred: string[] = []
      const pending = new Map<string, Promise<unknown>>()
      let finished = 0
      const issue = async (full: string) => {
        const [sessionName, stepName] = full.split('.') as [string, string]
        const session = live.get(sessionName) as LiveSession
        const step =
          stepName === 'commit'
            ? 'commit'
            : (session.spec.steps.find((s) => s.name === stepName) as StepSpec)
        const outcome: StepOutcome = { step: full, blocked: false, finished: -1 }
        outcomes.push(outcome)
        const p = session.send(step).then((r) => {
          outcome.finished = finished++
          if (r.error !== undefined) outcome.error = r.error
        })
        if (await settleOrBlock(p, session.pid)) {
          outcome.blocked = true
          blockedSteps.push(full)
          pending.set(
            sessionName,
            p.finally(() => pending.delete(sessionName)),
          )
        }
      }
      // Always the earliest step of the order whose session is not blocked:
      // a step behind a blocked one of its own session waits (reported as
      // deferred), and steps of other sessions go first.
      const queue = [...order]
      while (queue.length > 0) {
        const at = queue.findIndex((full) => !pending.has(full.split('.')[0] as string))
        if (at === -1) {
          await Promise.race(pending.values())
          continue
        }
        if (at > 0 && !deferred.includes(queue[0] as string)) deferred.push(queue[0] as string)
        const [full] = queue.splice(at, 1) as [string]
        await issue(full)
      }
      await Promise.all([...pending.values()])
      // An autocommit session has no commit step: end its loop.
      await Promise.all(
        [...live.values()]
          .filter((s) => s.spec.isolation === 'autocommit')
          .map((s) => s.send('commit')),
      )
      await Promise.all([...live.values()].map((s) => s.finished))
      return { order, outcomes, blockedSteps, deferred }
    },
    async close() {
      await Promise.all([...channels.values()].map((c) => c.db.destroy()))
      await control.end()
    },
  }
}
