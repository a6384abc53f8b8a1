import type { OperationNode } from 'kysely'

/**
 * Whether a statement only reads (`'read'`: a plain SELECT, safe on a replica)
 * or may write or lock (`'write'`: INSERT/UPDATE/DELETE/MERGE, a SELECT with a
 * data-modifying CTE, a row lock such as `FOR UPDATE`, an advisory lock).
 */
export type StatementKind = 'read' | 'write'

const WRITING_NODES = new Set([
  'InsertQueryNode',
  'UpdateQueryNode',
  'DeleteQueryNode',
  'MergeQueryNode',
])
const LOCKING_MODIFIERS = new Set(['ForUpdate', 'ForNoKeyUpdate', 'ForShare', 'ForKeyShare'])
/** Raw SQL that writes or locks. */
const WRITING_SQL =
  /\b(insert|update|delete|merge|for\s+(no\s+key\s+update|share|key\s+share)|pg_advisory\w*lock\w*|nextval|setval)\b/i

/**
 * Classifies a compiled query by walking its operation-node tree: a writing
 * node, a row-lock modifier or raw SQL that writes or locks anywhere in it
 * (a CTE, a subquery) makes it a `'write'`.
 *
 * @example
 * ```ts
 * statementKind(db.selectFrom('users').select('id').toOperationNode()) // 'read'
 * ```
 */
export function statementKind(node: OperationNode): StatementKind {
  return writes(node) ? 'write' : 'read'
}

function writes(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(writes)
  if (typeof value !== 'object' || value === null) return false
  const node = value as { kind?: unknown; modifier?: unknown; sqlFragments?: unknown }
  if (typeof node.kind === 'string') {
    if (WRITING_NODES.has(node.kind)) return true
    if (node.kind === 'SelectModifierNode' && LOCKING_MODIFIERS.has(node.modifier as string)) {
      return true
    }
    if (
      node.kind === 'RawNode' &&
      Array.isArray(node.sqlFragments) &&
      WRITING_SQL.test(node.sqlFragments.join(' '))
    ) {
      return true
    }
  }
  return Object.values(value).some(writes)
}
