import { GuildstoreError } from './guildstore-error.ts'

/**
 * A change-feed token can no longer be resumed: the events after it were
 * purged by retention (`purgeEvents`), or the token is ahead of this
 * database's feed (a restore from an older backup). Discord's op 9, Matrix's
 * `limited`. The client re-reads the state it shows (guilds, channels, recent
 * messages), then starts again from the current head: `listEvents` without
 * `after` returns the head's token and no events (docs/events.md, "Resync").
 *
 * @example
 * ```ts
 * try {
 *   page = await listEvents(db, { user_id, after: token })
 * } catch (err) {
 *   if (!(err instanceof ResyncRequiredError)) throw err
 *   const head = await listEvents(db, { user_id }) // take the head first, then re-read
 *   await sendFullState(user_id)
 *   token = head.next
 * }
 * ```
 */
export class ResyncRequiredError extends GuildstoreError {
  override readonly code = 'RESYNC_REQUIRED'
}
