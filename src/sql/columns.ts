import type { Selectable } from 'kysely'

/**
 * Columns that hold secrets. They are never part of a default projection:
 * `columnList` (src/sql/columns.ts) refuses them at compile time.
 */
export type SecretColumn = 'password_hash' | 'mfa_secret' | 'token_hash'

/**
 * Declares an entity's default projection: the explicit column list its
 * queries select (never `selectAll()`, so a column added later never leaks).
 * Each entry must be a column of the generated table type `T` and not a
 * {@link SecretColumn}: either is a compile-time error. Derive the row type
 * from the list with {@link Projection}.
 *
 * @example
 * ```ts
 * export const guildColumns = columnList<Guilds>()(['id', 'name', 'owner_id', 'created_at', 'updated_at'])
 * export type Guild = Projection<Guilds, typeof guildColumns>
 * ```
 */
export function columnList<T>() {
  return <const C extends readonly Exclude<keyof T & string, SecretColumn>[]>(columns: C): C =>
    columns
}

/** The row a column list of table `T` selects. */
export type Projection<T, C extends readonly (keyof T & string)[]> = Pick<
  Selectable<T>,
  C[number] & keyof Selectable<T>
>
