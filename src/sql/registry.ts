/**
 * The registry of labelled prepared queries: every {@link prepareQuery} call
 * adds its query here at import, under its label. It decides nothing about
 * execution; it exists so that a label is unique in the process and so that
 * tools (the query snapshots, `scripts/query-snapshots.ts`) can list every query.
 */

/** What the registry keeps of a prepared query. */
export interface RegisteredQuery {
  readonly label: string
  readonly name: string
  readonly sql: string
  readonly kind: 'read' | 'write'
}

const queries = new Map<string, RegisteredQuery>()

/**
 * Adds a query under its label.
 *
 * @throws {Error} when the label is taken.
 */
export function registerQuery(query: RegisteredQuery): void {
  if (queries.has(query.label)) {
    throw new Error(`prepareQuery label "${query.label}" is declared twice`)
  }
  queries.set(query.label, query)
}

/**
 * Every query registered so far (by the modules imported so far), sorted by label.
 *
 * @example
 * ```ts
 * await import('guildstore') // registers every repository query
 * for (const q of registeredQueries()) console.log(q.name, q.sql)
 * ```
 */
export function registeredQueries(): RegisteredQuery[] {
  return [...queries.values()].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0))
}
