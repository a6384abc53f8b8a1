import { redactUrlsIn } from './redact-url.ts'

/** A stream the CLI writes text to (`process.stdout`, or a string sink in tests). */
export interface CliOutput {
  write(chunk: string): unknown
}

/** What {@link main} reads and writes instead of touching `process`. */
export interface CliIo {
  /** Results: the status table, `--json` documents. */
  stdout: CliOutput
  /** Logs, warnings and human-readable errors. */
  stderr: CliOutput
  /** Environment, for `DATABASE_URL`. */
  env: Record<string, string | undefined>
  /** The directory `./migrations` and relative `--dir` paths are resolved from. Default: `process.cwd()`. */
  cwd?: string
}

/** Redacts connection URLs in every string of a JSON value, keeping its shape. */
function redactStrings(value: unknown): unknown {
  if (typeof value === 'string') return redactUrlsIn(value)
  if (Array.isArray(value)) return value.map(redactStrings)
  if (value instanceof Date) return value
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactStrings(v)]))
  }
  return value
}

/** How a command writes: results on stdout, logs on stderr, URLs always redacted by parsing. */
export interface Reporter {
  /** Human-readable result text on stdout. */
  out(text: string): void
  /** One JSON document on stdout (valid JSON; URLs inside strings redacted). */
  json(document: unknown): void
  /** One `guildstore: …` log line on stderr. */
  log(text: string): void
  /** Raw text on stderr. */
  err(text: string): void
}

/**
 * Makes the {@link Reporter} of one CLI run.
 *
 * @example
 * ```ts
 * reporter(io).log('migrating …')
 * ```
 */
export function reporter(io: CliIo): Reporter {
  return {
    out: (text) => io.stdout.write(redactUrlsIn(text)),
    json: (document) => io.stdout.write(`${JSON.stringify(redactStrings(document))}\n`),
    log: (text) => io.stderr.write(`guildstore: ${redactUrlsIn(text)}\n`),
    err: (text) => io.stderr.write(redactUrlsIn(text)),
  }
}
