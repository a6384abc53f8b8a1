import type { HistoryRow } from './history-table.ts'
import type { MigrationFile } from './migration-files.ts'
import type { MigrationInfo } from './migration-info.ts'

/**
 * The file name a history row had, for a migration whose file is gone.
 *
 * @example
 * ```ts
 * historyFileName({ version: 2, name: 'add_foo' }) // '0002_add_foo.sql'
 * ```
 */
export const historyFileName = (row: { version: number; name: string }): string =>
  `${String(row.version).padStart(4, '0')}_${row.name}.sql`

/**
 * Joins the files and the history into one list, by version: `applied`, `pending`,
 * `changed` (checksum differs) or `missing` (recorded, no file).
 *
 * @example
 * ```ts
 * compareHistory(files, history).filter((m) => m.state === 'pending')
 * ```
 */
export function compareHistory(files: MigrationFile[], history: HistoryRow[]): MigrationInfo[] {
  const fileByVersion = new Map(files.map((f) => [f.version, f]))
  const rowByVersion = new Map(history.map((r) => [r.version, r]))
  const versions = [...new Set([...fileByVersion.keys(), ...rowByVersion.keys()])].sort(
    (a, b) => a - b,
  )
  return versions.map((version): MigrationInfo => {
    const file = fileByVersion.get(version)
    const row = rowByVersion.get(version)
    if (file && !row) {
      return {
        version,
        name: file.name,
        file: file.file,
        checksum: file.checksum,
        state: 'pending',
      }
    }
    if (!file && row) {
      return {
        version,
        name: row.name,
        file: historyFileName(row),
        checksum: row.checksum,
        state: 'missing',
        appliedAt: row.appliedAt,
        durationMs: row.durationMs,
      }
    }
    const f = file!
    const r = row!
    return {
      version,
      name: f.name,
      file: f.file,
      checksum: f.checksum,
      state: f.checksum === r.checksum ? 'applied' : 'changed',
      ...(f.checksum === r.checksum ? {} : { recordedChecksum: r.checksum }),
      appliedAt: r.appliedAt,
      durationMs: r.durationMs,
    }
  })
}
