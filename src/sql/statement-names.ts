import { createHash } from 'node:crypto'

const names = new Map<string, string>()

/**
 * Registers a SQL text as a named prepared statement and returns its name,
 * `gs_` and 20 hex digits of the text's SHA-1 (so one text has one name in
 * every process, and two texts never share one).
 */
export function registerStatement(sql: string): string {
  let name = names.get(sql)
  if (!name) {
    name = `gs_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`
    names.set(sql, name)
  }
  return name
}

/** The prepared-statement name of a registered SQL text, if it is one. */
export function statementName(sql: string): string | undefined {
  return names.get(sql)
}
