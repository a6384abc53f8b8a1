import { GuildstoreError } from './guildstore-error.ts'

/** The target of an operation does not exist (e.g. accepting a friend request that is not pending). */
export class NotFoundError extends GuildstoreError {
  override readonly code = 'NOT_FOUND'
  /** What kind of thing was missing, e.g. `'friend_request'`. */
  readonly entity: string | undefined

  constructor(message: string, options?: { entity?: string | undefined; cause?: unknown }) {
    super(message, options)
    this.entity = options?.entity
  }
}
