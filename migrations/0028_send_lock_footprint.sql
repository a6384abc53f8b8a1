-- guildstore 0028: fewer indexes under a send (issue 23, the feed's cost with
-- 16 senders); docs/events.md, "Indexes", and docs/architecture.md.
--
-- A PostgreSQL 15 backend keeps its weak relation locks (those a read or an
-- insert takes) in 16 fast-path slots of its own; the rest go to the shared
-- lock table, whose partition for a relation is the same for every backend,
-- so senders that lock the same relations queue on one LWLock (LockManager).
-- An INSERT holds RowExclusiveLock on every index of its table from its first
-- row to the end of the statement, and the foreign-key checks run at that end,
-- so a send's peak is: the tables it reads and their scanned indexes, every
-- index of messages and of guildstore_events, the feed's sequence, and users
-- with users_pkey (the author's FOR KEY SHARE). Counted at the foreign-key
-- checks of a warm send (test/perf/send-locks.test.ts): 22 relations before
-- this file, 9 of them in the shared table; 16 with the feed off.
--
-- guildstore_events: 4 indexes become 3.
--   * position is the primary key. Every row has one since 0025 (its default;
--     nothing writes NULL), and it is what the reads, the purge and the
--     dispatcher look rows up by. It replaces guildstore_events_position_key
--     (the same btree, partial on position IS NOT NULL). Rows without a
--     position cannot exist any more; none can be read either way, and any left
--     from before 0025 (an unstamped row) are deleted first.
--   * One index for a guild's stream and a DM's stream, on the event's scope
--     coalesce(guild_id, channel_id): a guild event's scope is its guild, a DM
--     event's (no guild) its channel. The reads ask for
--     "scope = G AND guild_id = G" and "scope = C AND guild_id IS NULL"
--     (src/repositories/events.ts, guildStreamSql and dmStreamSql): one range
--     scan of the index in position order each, as the two partial indexes
--     gave, LIMIT included. The index carries guild_id and channel_id
--     (INCLUDE): the second condition is then checked in the index and the
--     scan is index-only, as the partial (guild_id, position) index's was.
--     Without them the generic plan (1 M events, 100 guilds) estimated the two
--     conditions as independent, found a few rows and read the whole guild
--     by bitmap, then sorted (10 000 rows for a page of 100); with them,
--     generic and custom plans read 100 index entries. The size is the two
--     partial indexes' together (64 MB at 1 M events).
--     Replaces guildstore_events_guild_idx and guildstore_events_dm_idx.
--   * guildstore_events_user_idx stays (a user's own stream: an event may be
--     in a guild's stream and in a user's, e.g. member_joined).
--   (0019's hash index of unstamped rows went with 0025's xact column.)
--
-- messages: 9 indexes become 8. messages_channel_id_id_live_idx
-- (channel_id, id) WHERE deleted_at IS NULL served one read, the cursor
-- fallback of the history pages (an id that names no message of the channel:
-- the newest live message with a smaller id, message-sql.ts afterBound /
-- beforeBound); 0017's messages_channel_id_id_idx over every row has the same
-- keys and serves it too (a backward range scan from the id, skipping
-- soft-deleted rows through the heap). Everything else keeps its index: the
-- history pages (channel_id, seq) live, the nonce, search, the cascades from
-- users (author_id), from messages (reply_to) and from channels (channel_id,
-- id), the purge of soft-deleted messages (deleted_at).
--
-- Locks: the two indexes are built while writes to guildstore_events wait
-- (reads do not), a scan of the table each; making the first the primary key
-- scans it once more for NOT NULL while reads wait too. At 10 M events expect
-- seconds. The drops are instant.
SET LOCAL lock_timeout = '10s';

DELETE FROM guildstore_events WHERE position IS NULL;

-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX guildstore_events_pkey ON guildstore_events (position);
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX guildstore_events_scope_idx ON guildstore_events ((coalesce(guild_id, channel_id)), position)
  INCLUDE (guild_id, channel_id);
-- The one step under ACCESS EXCLUSIVE (reads wait too): position's NOT NULL,
-- one scan of the table, then the index becomes the primary key.
ALTER TABLE guildstore_events ADD CONSTRAINT guildstore_events_pkey PRIMARY KEY USING INDEX guildstore_events_pkey;
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX guildstore_events_position_key;
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX guildstore_events_guild_idx;
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX guildstore_events_dm_idx;

-- squawk-ignore require-concurrent-index-deletion
DROP INDEX messages_channel_id_id_live_idx;
