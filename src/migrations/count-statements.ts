const IDENT = /[A-Za-z0-9_$\u0080-\uffff]/
const DOLLAR_TAG = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/

/**
 * Counts the SQL statements in `sql` the way PostgreSQL splits a simple query:
 * on `;` outside string literals (`'…'`, `E'…'`), quoted identifiers, dollar quotes
 * and comments (`--`, nested `/* *\/`). Empty statements and comments do not count.
 * (A SQL-standard `BEGIN ATOMIC … END` body counts as several; it only makes a
 * no-transaction file be refused, never run wrongly.)
 *
 * @example
 * ```ts
 * countStatements("select ';'; select 2;") // 2
 * ```
 */
export function countStatements(sql: string): number {
  let count = 0
  let hasContent = false
  let i = 0
  const n = sql.length
  while (i < n) {
    const ch = sql[i]!
    const next = sql[i + 1]
    if (ch === '-' && next === '-') {
      const end = sql.indexOf('\n', i)
      i = end === -1 ? n : end + 1
      continue
    }
    if (ch === '/' && next === '*') {
      let depth = 1
      i += 2
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++
          i += 2
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--
          i += 2
        } else i++
      }
      continue
    }
    if (ch === ';') {
      if (hasContent) count++
      hasContent = false
      i++
      continue
    }
    if (/\s/.test(ch)) {
      i++
      continue
    }
    hasContent = true
    if (ch === "'") {
      const prev = sql[i - 1]
      const escapes = (prev === 'E' || prev === 'e') && (i < 2 || !IDENT.test(sql[i - 2] ?? ' '))
      i++
      while (i < n) {
        const c = sql[i]
        if (escapes && c === '\\') i += 2
        else if (c === "'" && sql[i + 1] === "'") i += 2
        else if (c === "'") {
          i++
          break
        } else i++
      }
      continue
    }
    if (ch === '"') {
      i++
      while (i < n) {
        if (sql[i] === '"' && sql[i + 1] === '"') i += 2
        else if (sql[i] === '"') {
          i++
          break
        } else i++
      }
      continue
    }
    if (ch === '$' && (i === 0 || !IDENT.test(sql[i - 1]!))) {
      const match = DOLLAR_TAG.exec(sql.slice(i, i + 200))
      if (match) {
        const tag = match[0]
        const end = sql.indexOf(tag, i + tag.length)
        i = end === -1 ? n : end + tag.length
        continue
      }
    }
    i++
  }
  if (hasContent) count++
  return count
}
