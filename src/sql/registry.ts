/**
 * The registry of labelled queries: every {@link prepareQuery} and
 * {@link dynamicQuery} call adds its query here at import, under its label.
 * It decides nothing about execution; it exists so that a label is unique in
 * the process and so that tools (the query snapshots,
 * `scripts/query-snapshots.ts`) can list every query without a database.
 */
import type { StatementKind } from './statement-kind.ts'

/** What the registry keeps of a labelled query. */
export interface RegisteredQuery {
  /** `entity.action`. */
  readonly label: string
  /** The prepared statement's name; `undefined` for a dynamic query (sent unnamed). */
  readonly name: string | undefined
  /** Whether it only reads. */
  readonly kind: StatementKind
  /** Its SQL: one text for a prepared query, one per example shape for a dynamic one. */
  readonly statements: readonly string[]
}

/** `entity.action`: lowercase words, at least two, dot-separated. */
const LABEL = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/
/** Longest label: `gs.` + label fits PostgreSQL's 63-byte names. */
export const MAX_LABEL_LENGTH = 60

const queries = new Map<string, RegisteredQuery>()

/**
 * Adds a query under its label.
 *
 * @throws {Error} when the label is malformed or taken.
 */
export function registerQuery(query: RegisteredQuery): void {
  if (!LABEL.test(query.label) || query.label.length > MAX_LABEL_LENGTH) {
    throw new Error(
      `query label ${JSON.stringify(query.label)} must be lowercase "entity.action" words, at most ${MAX_LABEL_LENGTH} characters`,
    )
  }
  if (queries.has(query.label)) {
    throw new Error(`query label "${query.label}" is declared twice`)
  }
  queries.set(query.label, query)
}

/**
 * Every query registered so far (by the modules imported so far), sorted by label.
 *
 * @example
 * ```ts
 * await import('guildstore') // importing the package registers every repository query
 * for (const q of registeredQueries()) console.log(q.label, q.statements)
 * ```
 */
export function registeredQueries(): RegisteredQuery[] {
  return [...queries.values()].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0))
}
