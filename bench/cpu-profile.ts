/**
 * Attribution of a V8 CPU profile (`Profiler.stop` of node:inspector, or a
 * `.cpuprofile` of `node --cpu-prof`): self time by layer (module path) and by
 * function, for bench/profile.ts.
 */
import type { Profiler } from 'node:inspector'

/** Self time (µs) by layer and by function (`name (file:line)`). */
export interface Attribution {
  /** Sampled time that was not idle, µs. */
  busy: number
  byLayer: Map<string, number>
  byFunction: Map<string, number>
}

/** Layers of pg and postgres.js by file; the files of one package that do one job. */
const LAYERS: [RegExp, string][] = [
  [/node_modules\/pg-protocol\//, 'pg-protocol: wire parsing and serializing'],
  [
    /node_modules\/(pg-types|postgres-date|postgres-array|postgres-interval|postgres-bytea|pg-int8)\//,
    'pg-types: type parsers',
  ],
  [/node_modules\/pg\/lib\/result\.js/, 'pg: Result (row objects, calls the type parsers)'],
  [/node_modules\/pg-pool\//, 'pg-pool'],
  [/node_modules\/pg\//, 'pg: client and query lifecycle'],
  [/node_modules\/postgres\/src\/types\.js/, 'postgres.js: types.js (parsers, serializers)'],
  [/node_modules\/postgres\//, 'postgres.js: connection and query'],
  [/node_modules\/kysely\//, 'kysely'],
  [/node_modules\/drizzle-orm\//, 'drizzle-orm'],
  [/\/src\/(sql|pool)\//, 'guildstore: execution seam (src/sql, src/pool)'],
  [/\/src\//, 'guildstore: other src (validation, repositories, ids)'],
  [/\/bench\//, 'bench harness and parameter mapping'],
]

/** Native functions by job (their url is empty). */
const NATIVE: Record<string, string> = {
  writev: 'native: socket writes (syscall)',
  writeBuffer: 'native: socket writes (syscall)',
  writeUtf8String: 'native: socket writes (syscall)',
  writeLatin1String: 'native: socket writes (syscall)',
  utf8Slice: 'native: Buffer → string (utf8Slice, latin1Slice)',
  latin1Slice: 'native: Buffer → string (utf8Slice, latin1Slice)',
  asciiSlice: 'native: Buffer → string (utf8Slice, latin1Slice)',
  runMicrotasks: 'native: runMicrotasks',
}

/** postgres.js does framing, row decoding and sending in one file: split it by function. */
const POSTGRES_JS_ROWS = new Set(['DataRow', 'RowDescription'])
const POSTGRES_JS_FRAMING = new Set(['data', 'handle'])

/**
 * The layer of a profile node: a package's job, a guildstore directory,
 * Node's internals, V8's pseudo-nodes (GC, program, idle) or native builtins.
 */
export function layerOf(url: string, functionName: string): string {
  if (functionName === '(idle)') return '(idle)'
  if (functionName === '(garbage collector)') return 'V8: garbage collector'
  if (functionName === '(program)') return 'V8/native: (program)'
  if (/node_modules\/postgres\/src\/connection\.js/.test(url)) {
    if (POSTGRES_JS_ROWS.has(functionName)) return 'postgres.js: DataRow (row decoding, objects)'
    if (POSTGRES_JS_FRAMING.has(functionName)) return 'postgres.js: framing (data, handle)'
  }
  for (const [re, layer] of LAYERS) if (re.test(url)) return layer
  if (url.startsWith('node:')) {
    const m = /^node:(internal\/)?([a-z_]+)/.exec(url)
    const area = m?.[2] ?? 'other'
    return `node internals: ${['net', 'stream', 'streams'].includes(area) ? 'net/streams' : area}`
  }
  if (url === '') return NATIVE[functionName] ?? 'V8 builtins and native (other)'
  return 'other'
}

/**
 * Self time per layer and per function of a profile (each sample's time
 * delta goes to the node it hit).
 *
 * @example
 * ```ts
 * const a = attribute(profile)
 * console.log(a.busy / calls, 'µs CPU per call')
 * ```
 */
export function attribute(profile: Profiler.Profile): Attribution {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i: it belongs to the previous sample's node.
    const id = samples[i - 1]
    if (id === undefined) continue
    self.set(id, (self.get(id) ?? 0) + (deltas[i] ?? 0))
  }
  const byLayer = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let busy = 0
  for (const [id, us] of self) {
    const n = nodes.get(id)
    if (!n) continue
    const { url, functionName, lineNumber } = n.callFrame
    const layer = layerOf(url, functionName)
    byLayer.set(layer, (byLayer.get(layer) ?? 0) + us)
    if (layer === '(idle)') continue
    busy += us
    const file = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|bench)\//, '$1/')
    const key = `${functionName || '(anonymous)'} (${file || 'native'}${url ? `:${lineNumber + 1}` : ''})`
    byFunction.set(key, (byFunction.get(key) ?? 0) + us)
  }
  return { busy, byLayer, byFunction }
}
