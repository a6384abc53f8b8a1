/**
 * SQL literals of bound values, for `EXECUTE name(…)` of a captured prepared
 * statement (bench/explain.ts, test/perf/plan-stability.test.ts).
 */

/** A value as a SQL literal: NULL, a number, a boolean, or a quoted string (arrays as '{…}'). */
export function sqlLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'NULL'
  if (typeof v === 'number' || typeof v === 'bigint') return String(v)
  if (typeof v === 'boolean') return v ? 'true' : 'false'
  if (v instanceof Date) return quote(v.toISOString())
  if (Array.isArray(v)) {
    return quote(
      `{${v.map((x) => (x === null ? 'NULL' : `"${String(x).replace(/["\\]/g, '\\$&')}"`)).join(',')}}`,
    )
  }
  return quote(String(v))
}

function quote(s: string): string {
  return `'${s.replaceAll("'", "''")}'`
}
