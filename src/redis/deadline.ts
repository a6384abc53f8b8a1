/** One call being watched by a {@link Deadlines} tracker. */
export interface DeadlineEntry {
  deadline: number
  onTimeout: () => void
}

/** Watches calls for a fixed timeout; see {@link createDeadlines}. */
export interface Deadlines {
  /** Starts watching a call; `onTimeout` runs once if it is still watched when the time is up. */
  start(onTimeout: () => void): DeadlineEntry | undefined
  /** Stops watching; `false` when the call had timed out already (its `onTimeout` ran). */
  finish(entry: DeadlineEntry | undefined): boolean
}

/**
 * A cheap timeout tracker for hot paths: instead of a timer per call, one
 * unref'd interval (every `timeoutMs / 10`, 5–100 ms) sweeps the calls still
 * watched and times out the expired ones, so a call times out between
 * `timeoutMs` and `timeoutMs + tick` after it started. `timeoutMs <= 0` watches nothing.
 */
export function createDeadlines(timeoutMs: number): Deadlines {
  if (timeoutMs <= 0) return { start: () => undefined, finish: () => true }
  const tick = Math.min(100, Math.max(5, Math.floor(timeoutMs / 10)))
  const pending = new Set<DeadlineEntry>()
  let timer: ReturnType<typeof setInterval> | undefined
  const sweep = () => {
    const now = Date.now()
    for (const entry of pending) {
      if (entry.deadline <= now) {
        pending.delete(entry)
        entry.onTimeout()
      }
    }
    if (pending.size === 0 && timer !== undefined) {
      clearInterval(timer)
      timer = undefined
    }
  }
  return {
    start(onTimeout) {
      const entry: DeadlineEntry = { deadline: Date.now() + timeoutMs, onTimeout }
      pending.add(entry)
      if (timer === undefined) {
        timer = setInterval(sweep, tick)
        timer.unref()
      }
      return entry
    },
    finish(entry) {
      return entry === undefined || pending.delete(entry)
    },
  }
}
