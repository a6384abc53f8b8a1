/**
 * The folder layering of `src/` (see docs/architecture.md): no folder imports
 * a folder that imports it back, directly or through others. Imports are read
 * with TypeScript's own pre-processor (comments and strings are not imports).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const src = join(root, 'src')

/** `src/<folder>/…` → `<folder>`; a file directly in src/ → `(root)`; outside src/ → undefined. */
function folderOf(file: string): string | undefined {
  const rel = relative(src, file)
  if (rel.startsWith('..')) return undefined
  const parts = rel.split('/')
  return parts.length > 1 ? (parts[0] as string) : '(root)'
}

/** Folder → folders it imports (relative imports only; packages are not folders of src). */
function folderGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>()
  const files = readdirSync(src, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(src, f))
  for (const file of files) {
    const from = folderOf(file) as string
    const edges = graph.get(from) ?? new Map<string, string>()
    graph.set(from, edges)
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
    for (const imported of info.importedFiles) {
      if (!imported.fileName.startsWith('.')) continue
      const to = folderOf(resolve(dirname(file), imported.fileName))
      if (to && to !== from && !edges.has(to)) edges.set(to, relative(root, file))
    }
  }
  return graph
}

/** A cycle through folders, as a path `a → b → a`, or undefined. */
function findCycle(graph: Map<string, Map<string, string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined
    if (state.get(node) === 'open') return [...path.slice(path.indexOf(node)), node]
    state.set(node, 'open')
    path.push(node)
    for (const next of graph.get(node)?.keys() ?? []) {
      const cycle = visit(next)
      if (cycle) return cycle
    }
    path.pop()
    state.set(node, 'done')
    return undefined
  }
  for (const node of [...graph.keys()].sort()) {
    const cycle = visit(node)
    if (cycle) return cycle
  }
  return undefined
}

describe('src/ folder layering', () => {
  const graph = folderGraph()

  it('reads the imports of every folder', () => {
    for (const folder of ['sql', 'repositories', 'errors', 'validation']) {
      expect(graph.has(folder)).toBe(true)
    }
    // The repositories build on the execution seam and the validators.
    expect([...(graph.get('repositories')?.keys() ?? [])]).toEqual(
      expect.arrayContaining(['sql', 'validation', 'errors']),
    )
  })

  it('has no folder that imports a folder importing it back', () => {
    const cycle = findCycle(graph)
    const explain = cycle
      ?.slice(1)
      .map((to, i) => `${cycle[i]} → ${to} (${graph.get(cycle[i] as string)?.get(to)})`)
      .join(', ')
    expect(explain).toBeUndefined()
  })

  it('the check finds a cycle when there is one', () => {
    const g = new Map([
      ['a', new Map([['b', 'x.ts']])],
      ['b', new Map([['c', 'y.ts']])],
      ['c', new Map([['a', 'z.ts']])],
    ])
    expect(findCycle(g)).toEqual(['a', 'b', 'c', 'a'])
  })
})
