import type { HistoryRow, MigrationSet } from './history-table.ts'
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
 * Joins one set's files and its history rows into one list, by version: `applied`,
 * `pending`, `changed` (checksum differs) or `missing` (recorded, no file). History
 * rows of the other set are ignored.
 *
 * @example
 * ```ts
 * compareHistory('host', files, history).filter((m) => m.state === 'pending')
 * ```
 */
export function compareHistory(
  set: MigrationSet,
  files: MigrationFile[],
  history: HistoryRow[],
): MigrationInfo[] {
  const fileByVersion = new Map(files.map((f) => [f.version, f]))
  const rowByVersion = new Map(history.filter((r) => r.set === set).map((r) => [r.version, r]))
  const versions = [...new Set([...fileByVersion.keys(), ...rowByVersion.keys()])].sort(
    (a, b) => a - b,
  )
  return versions.map((version): MigrationInfo => {
    const file = fileByVersion.get(version)
    const row = rowByVersion.get(version)
    if (file && !row) {
      return {
        set,
        version,
        name: file.name,
        file: file.file,
        checksum: file.checksum,
        state: 'pending',
      }
    }
    if (!file && row) {
      return {
        set,
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
      set,
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
