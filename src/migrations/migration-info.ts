import type { MigrationSet } from './history-table.ts'

/**
 * Where a migration stands against a database: `applied` (recorded, file unchanged),
 * `pending` (file not applied yet), `changed` (recorded, but the file's checksum differs),
 * `missing` (recorded as applied, but the file is gone).
 */
export type MigrationState = 'applied' | 'pending' | 'changed' | 'missing'

/** One migration as {@link migrationStatus} and {@link runMigrations} report it. */
export interface MigrationInfo {
  /** Which set it belongs to: guildstore's own shipped files, or the host's directory. */
  set: MigrationSet
  /** The file's number, e.g. `2` for `0002_add_foo.sql`. */
  version: number
  /** The name part of the file, e.g. `add_foo`. */
  name: string
  /** The file name, e.g. `0002_add_foo.sql` (reconstructed from the history for a `missing` one). */
  file: string
  /** SHA-256 hex of the file's bytes; for a `missing` migration, the recorded checksum. */
  checksum: string
  state: MigrationState
  /** For `changed`: the checksum recorded when the file was applied. */
  recordedChecksum?: string | undefined
  /** When the migration was applied (not for `pending`). */
  appliedAt?: Date | undefined
  /** How long applying it took, in milliseconds (not for `pending`). */
  durationMs?: number | undefined
}

/** Receives one line per applied migration. guildstore never logs to stdout by itself. */
export interface MigrationLogger {
  info(message: string, meta?: object): void
}
