import { GuildstoreError } from '../errors/guildstore-error.ts'

/**
 * A file in the migrations directory is unusable: a `.sql` name that is not
 * `NNNN_name.sql`, two files with one number, or a `-- guildstore:no-transaction`
 * file holding more than one statement. Nothing was applied.
 */
export class MigrationFileError extends GuildstoreError {
  override readonly code = 'MIGRATION_FILE_INVALID'
  /** The offending file names (relative to the migrations directory). */
  readonly files: readonly string[]

  constructor(message: string, options: { files: readonly string[]; cause?: unknown }) {
    super(message, { cause: options.cause })
    this.files = options.files
  }
}

/**
 * An applied migration's file was edited after it ran (its SHA-256 differs from
 * the recorded one). Nothing was applied; restore the file or write a new migration.
 */
export class MigrationChecksumError extends GuildstoreError {
  override readonly code = 'MIGRATION_CHECKSUM_MISMATCH'
  /** The changed files. */
  readonly files: readonly string[]

  constructor(files: readonly string[]) {
    super(
      `applied migration file${files.length > 1 ? 's' : ''} changed since applied: ${files.join(', ')}`,
    )
    this.files = files
  }
}

/**
 * A migration recorded as applied has no file in the directory any more.
 * Nothing was applied; restore the file.
 */
export class MigrationMissingError extends GuildstoreError {
  override readonly code = 'MIGRATION_MISSING'
  /** The missing files (names reconstructed from the history table). */
  readonly files: readonly string[]

  constructor(files: readonly string[]) {
    super(
      `applied migration file${files.length > 1 ? 's are' : ' is'} missing: ${files.join(', ')}`,
    )
    this.files = files
  }
}

/**
 * A migration failed. It was rolled back completely and not recorded; the ones
 * before it stay applied. `cause` is the driver error (its `detail` redacted).
 */
export class MigrationFailedError extends GuildstoreError {
  override readonly code = 'MIGRATION_FAILED'
  /** The file that failed. */
  readonly file: string
  /** The SQLSTATE PostgreSQL reported, when there is one. */
  readonly sqlState: string | undefined
  /** 1-based character offset into the file's SQL where PostgreSQL located the error. */
  readonly position: number | undefined
  /** 1-based line of `position` in the file. */
  readonly line: number | undefined
  /** 1-based column of `position` in the file. */
  readonly column: number | undefined

  constructor(
    message: string,
    options: {
      file: string
      sqlState?: string | undefined
      position?: number | undefined
      line?: number | undefined
      column?: number | undefined
      cause?: unknown
    },
  ) {
    super(message, { cause: options.cause })
    this.file = options.file
    this.sqlState = options.sqlState
    this.position = options.position
    this.line = options.line
    this.column = options.column
  }
}

/** Another runner held the migration lock for longer than `lockTimeoutMs`. Nothing was applied. */
export class MigrationLockTimeoutError extends GuildstoreError {
  override readonly code = 'MIGRATION_LOCK_TIMEOUT'
  readonly lockTimeoutMs: number

  constructor(lockTimeoutMs: number) {
    super(
      `timed out after ${lockTimeoutMs} ms waiting for the migration lock held by another runner`,
    )
    this.lockTimeoutMs = lockTimeoutMs
  }
}
