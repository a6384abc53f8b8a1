export {
  createMigration,
  MAX_MIGRATION_NAME_LENGTH,
  slugMigrationName,
} from './create-migration.ts'
export { defaultMigrationsDirectory } from './default-directory.ts'
export { HISTORY_TABLE_NAME, type MigrationSet } from './history-table.ts'
export {
  MigrationChecksumError,
  MigrationFailedError,
  MigrationFileError,
  MigrationLockTimeoutError,
  MigrationMissingError,
} from './migration-errors.ts'
export {
  MAX_MIGRATION_VERSION,
  type MigrationFile,
  readMigrationFiles,
} from './migration-files.ts'
export type { MigrationInfo, MigrationLogger, MigrationState } from './migration-info.ts'
export { MIGRATION_FILE_LOCK_KEY, MIGRATION_LOCK_KEY } from './migration-lock.ts'
export type { MigrationSetOptions } from './migration-sets.ts'
export { type MigrationStatusOptions, migrationStatus } from './migration-status.ts'
export { type RunMigrationsOptions, runMigrations } from './run-migrations.ts'
