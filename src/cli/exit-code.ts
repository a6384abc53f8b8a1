/**
 * Exit codes of the `guildstore` CLI.
 *
 * @example
 * ```ts
 * if ((await main(['status'], io)) === ExitCode.Pending) console.error('run guildstore migrate')
 * ```
 */
export const ExitCode = {
  /** Done; for `status`, everything is applied. */
  Success: 0,
  /** An error: database unreachable, a migration failed, unreadable migrations directory, … */
  Error: 1,
  /** Bad command line: unknown command or option, missing argument, no database URL, invalid name. */
  Usage: 2,
  /** `status` found pending migrations. */
  Pending: 3,
  /** An applied migration's file changed (checksum) or is missing (`status` and `migrate`). */
  Changed: 4,
} as const

/** One of the {@link ExitCode} values. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]
