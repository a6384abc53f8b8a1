import { InvalidInputError } from '../errors/index.ts'

/** Version of the JSON envelope guildstore writes to Redis. */
export const WIRE_VERSION = 1

/** How a wire string is turned back into the value it was before publishing. */
export type ReviveKind = 'date' | 'bigint'

/** One value to revive: where it sits (object keys and array indexes) and what it was. */
export type RevivePath = [path: Array<string | number>, kind: ReviveKind]

/**
 * The JSON envelope of every value guildstore stores or publishes:
 * `{ v: 1, <field>: value, revive?: [[path, 'date' | 'bigint'], …] }`.
 * Dates travel as ISO-8601 strings and bigints as decimal strings; `revive`
 * lists where they were, so a reader gets back exactly what was written.
 */
export type WireEnvelope<Field extends string> = { v: 1; revive?: RevivePath[] } & {
  [K in Field]: unknown
}

/** A payload read from Redis that is not a well-formed guildstore envelope. */
export class MalformedPayloadError extends Error {
  override name = 'MalformedPayloadError'
}

const MAX_DEPTH = 64

function toWire(
  value: unknown,
  path: Array<string | number>,
  revive: RevivePath[],
  depth: number,
): unknown {
  if (depth > MAX_DEPTH) {
    throw new InvalidInputError(`value is nested deeper than ${MAX_DEPTH} levels (or circular)`, {
      field: 'data',
    })
  }
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : null
  if (typeof value === 'bigint') {
    revive.push([[...path], 'bigint'])
    return value.toString()
  }
  if (value instanceof Date) {
    const time = value.getTime()
    if (Number.isNaN(time)) {
      throw new InvalidInputError('value contains an invalid Date', {
        field: path.join('.') || 'data',
      })
    }
    revive.push([[...path], 'date'])
    return value.toISOString()
  }
  if (typeof value !== 'object') return undefined // undefined, function, symbol: dropped as JSON does
  if (Array.isArray(value)) {
    return value.map((item, index) => {
      path.push(index)
      const out = toWire(item, path, revive, depth + 1)
      path.pop()
      return out === undefined ? null : out
    })
  }
  const withToJson = value as { toJSON?: unknown }
  if (typeof withToJson.toJSON === 'function') {
    return toWire((withToJson.toJSON as () => unknown)(), path, revive, depth + 1)
  }
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    path.push(key)
    const item = toWire((value as Record<string, unknown>)[key], path, revive, depth + 1)
    path.pop()
    // defineProperty: a `__proto__` key stays an own field instead of setting the prototype.
    if (item !== undefined) {
      Object.defineProperty(out, key, {
        value: item,
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
  }
  return out
}

/**
 * Serialises `value` into the versioned envelope under `field`, keeping track of
 * Date and bigint values so {@link decodeEnvelope} restores them.
 *
 * @throws {InvalidInputError} On an invalid Date, or nesting deeper than 64 levels (a cycle).
 */
export function encodeEnvelope(field: string, value: unknown): string {
  const revive: RevivePath[] = []
  const wire = toWire(value, [], revive, 0)
  const envelope: Record<string, unknown> = { v: WIRE_VERSION, [field]: wire }
  if (revive.length > 0) envelope.revive = revive
  return JSON.stringify(envelope)
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null

function reviveOne(root: Record<string, unknown>, field: string, entry: unknown): void {
  if (!Array.isArray(entry) || entry.length !== 2 || !Array.isArray(entry[0])) {
    throw new MalformedPayloadError('malformed revive entry')
  }
  const [path, kind] = entry as [unknown[], unknown]
  let parent: unknown = root
  let key: string | number = field
  for (const segment of path) {
    if (!isRecord(parent) || !Object.hasOwn(parent, key)) {
      throw new MalformedPayloadError('revive path does not exist')
    }
    parent = (parent as Record<string | number, unknown>)[key]
    if (typeof segment !== 'string' && typeof segment !== 'number') {
      throw new MalformedPayloadError('malformed revive path')
    }
    key = segment
  }
  if (!isRecord(parent) || !Object.hasOwn(parent, key)) {
    throw new MalformedPayloadError('revive path does not exist')
  }
  const container = parent as Record<string | number, unknown>
  const raw = container[key]
  if (typeof raw !== 'string') throw new MalformedPayloadError('revived value is not a string')
  if (kind === 'date') {
    const date = new Date(raw)
    if (Number.isNaN(date.getTime())) throw new MalformedPayloadError('invalid date')
    container[key] = date
  } else if (kind === 'bigint') {
    if (!/^-?\d+$/.test(raw)) throw new MalformedPayloadError('invalid bigint')
    container[key] = BigInt(raw)
  } else {
    throw new MalformedPayloadError('unknown revive kind')
  }
}

/**
 * Parses an envelope written by {@link encodeEnvelope} and returns the value under
 * `field` with its Date and bigint values restored.
 *
 * @throws {MalformedPayloadError} When the text is not JSON, not version 1, or the revive list does not fit.
 */
export function decodeEnvelope(raw: string, field: string): unknown {
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    throw new MalformedPayloadError('payload is not JSON')
  }
  if (!isRecord(parsed)) throw new MalformedPayloadError('payload is not an object')
  if (parsed.v !== WIRE_VERSION) throw new MalformedPayloadError('unsupported envelope version')
  if (!Object.hasOwn(parsed, field)) throw new MalformedPayloadError(`envelope has no ${field}`)
  const revive = parsed.revive
  if (revive !== undefined) {
    if (!Array.isArray(revive)) throw new MalformedPayloadError('malformed revive list')
    for (const entry of revive) reviveOne(parsed, field, entry)
  }
  return parsed[field]
}
