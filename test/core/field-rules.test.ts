/**
 * The field rules the code validates (`defineFields` in each entity module)
 * agree with the CHECK constraints the migrations declare, read from
 * `pg_constraint` of a migrated database: nothing here names a table, so a
 * new migration's CHECKs are covered as soon as it lands.
 *
 * - every length / range / pattern CHECK on a column has a field rule, with
 *   the same bounds (a bound the CHECK leaves open may be tighter in code:
 *   `users.email`'s `LIKE '_%@_%'` implies 3 characters);
 * - an integer rule without an upper bound in the CHECK stops at the column
 *   type's largest value;
 * - every field rule stands for a CHECK (no stale rule).
 */
import { sql } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import { declaredFieldRules, type FieldRule } from '../../src/validation/index.ts'
import { useTestDatabase } from '../support/database.ts'

const t = useTestDatabase()

interface CheckRow {
  table: string
  name: string
  def: string
}
interface ColumnRow {
  table: string
  column: string
  type: string
}

/** What the CHECKs say about one column. */
interface ColumnCheck {
  constraints: Set<string>
  textMin?: number
  textMax?: number
  min?: bigint
  max?: bigint
  pattern?: string
}

const TYPE_MAX: Record<string, bigint> = {
  smallint: 32_767n,
  integer: 2_147_483_647n,
  bigint: 9_223_372_036_854_775_807n,
}

/** Splits `a AND b AND (c)` at the top level (outside parentheses and quotes). */
function conjuncts(expr: string): string[] {
  let e = expr.trim()
  while (e.startsWith('(') && closes(e) === e.length - 1) e = e.slice(1, -1).trim()
  const parts: string[] = []
  let depth = 0
  let quoted = false
  let start = 0
  for (let i = 0; i < e.length; i++) {
    const c = e[i]
    if (c === "'") quoted = !quoted
    if (quoted) continue
    if (c === '(') depth++
    if (c === ')') depth--
    if (depth === 0 && e.startsWith(' AND ', i)) {
      parts.push(e.slice(start, i))
      start = i + 5
    }
  }
  parts.push(e.slice(start))
  return parts.length === 1 ? [unwrap(parts[0] as string)] : parts.flatMap(conjuncts)
}
function unwrap(s: string): string {
  let e = s.trim()
  while (e.startsWith('(') && closes(e) === e.length - 1) e = e.slice(1, -1).trim()
  return e
}
/** Index of the parenthesis closing the one at 0. */
function closes(e: string): number {
  let depth = 0
  for (let i = 0; i < e.length; i++) {
    if (e[i] === '(') depth++
    if (e[i] === ')' && --depth === 0) return i
  }
  return -1
}

const LENGTH = /^char_length\(\(?"?(\w+)"?\)?(?:::\w+)?\)\s*(>=|<=|>|<)\s*(\d+)$/
const RANGE = /^"?(\w+)"?\s*(>=|<=|>|<)\s*\(?(-?\d+)\)?(?:::\w+)?$/
const MATCHES = /^"?(\w+)"?\s*~\s*'((?:[^']|'')*)'::text$/

let checks: CheckRow[] = []
let columns: ColumnRow[] = []
const byColumn = new Map<string, ColumnCheck>()
const structural: string[] = []

beforeAll(async () => {
  // Every module that declares field rules is reachable from the public entry point.
  await import('../../src/index.ts')
  checks = (
    await sql<CheckRow>`select c.relname as table, con.conname as name, pg_get_constraintdef(con.oid) as def
      from pg_constraint con join pg_class c on c.oid = con.conrelid
      where con.contype = 'c' and c.relnamespace = current_schema()::regnamespace
      order by 1, 2`.execute(t.db)
  ).rows
  columns = (
    await sql<ColumnRow>`select c.relname as table, a.attname as column, format_type(a.atttypid, null) as type
      from pg_attribute a join pg_class c on c.oid = a.attrelid
      where c.relnamespace = current_schema()::regnamespace and c.relkind = 'r'
        and a.attnum > 0 and not a.attisdropped`.execute(t.db)
  ).rows
  for (const check of checks) {
    // A CHECK added NOT VALID still holds every write from then on.
    const body = check.def.replace(/^CHECK\s*/, '').replace(/\s+NOT VALID$/, '')
    for (const part of conjuncts(body)) {
      const at = (column: string) => {
        const key = `${check.table}.${column}`
        const entry = byColumn.get(key) ?? { constraints: new Set<string>() }
        entry.constraints.add(check.name)
        byColumn.set(key, entry)
        return entry
      }
      let m = LENGTH.exec(part)
      if (m) {
        const [, column, op, n] = m as unknown as [string, string, string, string]
        const e = at(column)
        const v = Number(n)
        if (op === '>=') e.textMin = v
        else if (op === '>') e.textMin = v + 1
        else if (op === '<=') e.textMax = v
        else e.textMax = v - 1
        continue
      }
      m = RANGE.exec(part)
      if (m) {
        const [, column, op, n] = m as unknown as [string, string, string, string]
        const e = at(column)
        const v = BigInt(n)
        if (op === '>=') e.min = v
        else if (op === '>') e.min = v + 1n
        else if (op === '<=') e.max = v
        else e.max = v - 1n
        continue
      }
      m = MATCHES.exec(part)
      if (m) {
        at(m[1] as string).pattern = (m[2] as string).replaceAll("''", "'")
        continue
      }
      structural.push(`${check.name}: ${part}`)
    }
  }
})

function ruleOf(table: string, column: string): FieldRule | undefined {
  return declaredFieldRules().get(table)?.[column]
}

describe('field rules agree with the CHECK constraints of the migrations', () => {
  it('reads the CHECKs from the catalog', () => {
    // The released schema alone has 23 CHECKs; later migrations only add.
    expect(checks.length).toBeGreaterThanOrEqual(23)
    expect(byColumn.size).toBeGreaterThanOrEqual(19)
    console.log(
      `[field rules] ${checks.length} CHECKs, ${byColumn.size} column rules compared; structural (not field rules): ${structural.join(' | ')}`,
    )
  })

  it('every length, range and pattern CHECK has a field rule with the same bounds', () => {
    const problems: string[] = []
    for (const [key, check] of byColumn) {
      const [table, column] = key.split('.') as [string, string]
      const rule = ruleOf(table, column)
      const where = `${key} (${[...check.constraints].join(', ')})`
      if (!rule) {
        problems.push(`${where}: no field rule (defineFields('${table}', { ${column}: … }))`)
        continue
      }
      if (check.textMin !== undefined || check.textMax !== undefined) {
        if (rule.type !== 'text') {
          problems.push(`${where}: a length CHECK, but the rule is ${rule.type}`)
          continue
        }
        if (check.textMax !== undefined && rule.max !== check.textMax) {
          problems.push(`${where}: CHECK max ${check.textMax}, rule max ${rule.max}`)
        }
        if (check.textMax === undefined) problems.push(`${where}: a length CHECK without a maximum`)
        if (check.textMin !== undefined && rule.min !== check.textMin) {
          problems.push(`${where}: CHECK min ${check.textMin}, rule min ${rule.min}`)
        }
        if (check.textMin === undefined && rule.min < 0) problems.push(`${where}: negative min`)
      }
      if (check.min !== undefined || check.max !== undefined) {
        const type = columns.find((c) => c.table === table && c.column === column)?.type ?? '?'
        const typeMax = TYPE_MAX[type]
        if (rule.type !== 'integer' && rule.type !== 'int64') {
          problems.push(`${where}: a range CHECK, but the rule is ${rule.type}`)
          continue
        }
        const expectedType = type === 'bigint' ? 'int64' : 'integer'
        if (rule.type !== expectedType) {
          problems.push(
            `${where}: a ${type} column needs an ${expectedType} rule, not ${rule.type}`,
          )
        }
        const min = BigInt(rule.min)
        const max = BigInt(rule.max)
        if (check.min !== undefined && min !== check.min) {
          problems.push(`${where}: CHECK min ${check.min}, rule min ${min}`)
        }
        const checkMax = check.max ?? typeMax
        if (checkMax === undefined) problems.push(`${where}: unknown maximum of type ${type}`)
        else if (max !== checkMax) problems.push(`${where}: maximum ${checkMax}, rule max ${max}`)
      }
      if (check.pattern !== undefined) {
        if (rule.type !== 'pattern')
          problems.push(`${where}: a pattern CHECK, but the rule is ${rule.type}`)
        else if (rule.pattern.source !== check.pattern || rule.pattern.flags !== '') {
          problems.push(
            `${where}: CHECK ~ '${check.pattern}', rule /${rule.pattern.source}/${rule.pattern.flags}`,
          )
        }
      }
    }
    expect(problems).toEqual([])
  })

  it('every field rule stands for a CHECK on an existing column', () => {
    const problems: string[] = []
    let rules = 0
    for (const [table, fields] of declaredFieldRules()) {
      for (const column of Object.keys(fields)) {
        rules++
        if (!columns.some((c) => c.table === table && c.column === column)) {
          problems.push(`${table}.${column}: no such column`)
        } else if (!byColumn.has(`${table}.${column}`)) {
          problems.push(`${table}.${column}: a field rule without a CHECK`)
        }
      }
    }
    expect(rules).toBeGreaterThanOrEqual(19)
    expect(problems).toEqual([])
  })

  it('the comparison itself catches a disagreement', () => {
    // A rule one character looser than its CHECK must be reported: parse a
    // CHECK the same way and compare it with a deliberately wrong rule.
    const parts = conjuncts('((char_length(name) >= 1) AND (char_length(name) <= 100))')
    expect(parts).toEqual(['char_length(name) >= 1', 'char_length(name) <= 100'])
    const m = LENGTH.exec(parts[1] as string)
    expect(m?.[3]).toBe('100')
    const rule = ruleOf('guilds', 'name')
    expect(rule).toEqual({ type: 'text', min: 1, max: 100 })
    expect({ ...rule, max: 101 }).not.toEqual(rule)
  })
})
