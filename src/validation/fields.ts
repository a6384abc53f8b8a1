/**
 * Field rules: the lengths and ranges of an entity's columns, declared once in
 * the entity's module with {@link defineFields} and used both by its
 * validators and by the test that compares them with the CHECK constraints of
 * the migrations (`test/core/field-rules.test.ts`).
 */
import type { TextRule } from './validate.ts'

/** An integer range (`integer`: a JS number; `bigint`: a PostgreSQL int8). */
export interface IntegerRule {
  /** Smallest allowed value. */
  min: number
  /** Largest allowed value. */
  max: number
}

/** Largest PostgreSQL `integer`. */
export const INT32_MAX = 2_147_483_647
/** Largest PostgreSQL `bigint`. */
export const INT64_MAX = 9_223_372_036_854_775_807n
/** Smallest PostgreSQL `bigint`. */
export const INT64_MIN = -9_223_372_036_854_775_808n

/** A `bigint` range (a PostgreSQL `bigint` column). */
export interface Int64Rule {
  /** Smallest allowed value. */
  min: bigint
  /** Largest allowed value. */
  max: bigint
}

/** One column's rule: a text length, an integer or int64 range, or a regular expression. */
export type FieldRule =
  | ({ type: 'text' } & Required<TextRule>)
  | ({ type: 'integer' } & IntegerRule)
  | ({ type: 'int64' } & Int64Rule)
  | { type: 'pattern'; pattern: RegExp }

/** A text rule: `min` to `max` characters (code points, as `char_length` counts). */
export function text(min: number, max: number): { type: 'text'; min: number; max: number } {
  return { type: 'text', min, max }
}

/** An integer rule: `min` to `max` (defaults: 0 to the largest `integer`). */
export function integer(
  min = 0,
  max: number = INT32_MAX,
): { type: 'integer'; min: number; max: number } {
  return { type: 'integer', min, max }
}

/** An int64 rule: `min` to `max` (defaults: 0 to the largest `bigint`). */
export function int64(
  min = 0n,
  max: bigint = INT64_MAX,
): { type: 'int64'; min: bigint; max: bigint } {
  return { type: 'int64', min, max }
}

/** A pattern rule: the whole value matches `pattern` (the schema's `~` CHECK). */
export function pattern(value: RegExp): { type: 'pattern'; pattern: RegExp } {
  return { type: 'pattern', pattern: value }
}

const tables = new Map<string, Readonly<Record<string, FieldRule>>>()

/**
 * Declares the field rules of a table's columns and returns them (frozen).
 * The rules are also kept by table name for {@link declaredFieldRules}.
 *
 * @example
 * ```ts
 * export const guildFields = defineFields('guilds', { name: text(1, 100) })
 * assertText(input.name, 'name', guildFields.name)
 * ```
 */
export function defineFields<const R extends Record<string, FieldRule>>(
  table: string,
  rules: R,
): Readonly<R> {
  const frozen = Object.freeze({ ...rules })
  tables.set(table, { ...tables.get(table), ...frozen })
  return frozen
}

/**
 * Every table's declared field rules (of the entity modules imported so far).
 *
 * @example
 * ```ts
 * declaredFieldRules().get('users')?.username // { type: 'text', min: 2, max: 32 }
 * ```
 */
export function declaredFieldRules(): ReadonlyMap<string, Readonly<Record<string, FieldRule>>> {
  return tables
}
