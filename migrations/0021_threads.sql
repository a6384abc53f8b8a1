-- guildstore 0021: threads (issue 24, item 2).
--
-- A thread is a channel of its own kind ('public_thread' or 'private_thread')
-- whose parent_id is a text channel of the same guild. It holds messages like
-- any channel (its own gap-free seq, read state, mentions, search), and its
-- thread columns are non-NULL exactly for threads: auto_archive_minutes (60,
-- 1440, 4320 or 10080), archived_at (NULL while active), locked, owner_id (who
-- started it) and starter_message_id (the message it was started from).
--
-- Access follows the parent (src/permissions/access-sql.ts): a thread's
-- permissions are computed from its parent's overwrites and privacy; a private
-- thread adds one layer (its members, or MANAGE_THREADS); in a thread,
-- SEND_MESSAGES is what SEND_MESSAGES_IN_THREADS grants in the parent, and in a
-- locked thread only with MANAGE_THREADS. Thread members are channel_members
-- rows of the thread (so removing one bumps the thread like any private-channel
-- member, and leaving the guild removes them by the existing cascade).
--
-- Stored permissions (0007/0008) stay sound: whatever bumps a channel now also
-- bumps its threads (guildstore_bump_channels, below), read after the channels
-- are locked; a thread created concurrently updates its parent's row, so a
-- revocation that locks the parent either waits for the thread to commit and
-- then sees it, or commits first (READ COMMITTED), or fails with 40001
-- (REPEATABLE READ / SERIALIZABLE) rather than miss it. Locking or unlocking a
-- thread, and a parent turned private or public, bump the thread.
--
-- Archiving: a send takes its position and clears archived_at in the same
-- UPDATE of the channel row (guildstore_message_seq, guildstore_take_position),
-- and the archiver (archiveIdleThreads) is a conditional UPDATE that archives
-- only while last_seq is still the one it read: a send that commits first
-- keeps the thread active (the re-checked WHERE fails), one that comes after
-- unarchives it. So no message is ever in an archived thread.
--
-- Limits: at most guilds.max_thread_members (1000) members per thread, exact
-- under races (a counter row per thread, raised in the insert's statement).
-- Threads do not count against the guild's or a category's channel limits.
SET LOCAL lock_timeout = '10s';

-- The new values cannot be used as values in this transaction: the
-- constraints and functions below compare type::text.
-- squawk-ignore require-enum-value-ordering
ALTER TYPE channel_type ADD VALUE IF NOT EXISTS 'public_thread';
-- squawk-ignore require-enum-value-ordering
ALTER TYPE channel_type ADD VALUE IF NOT EXISTS 'private_thread';

ALTER TABLE guilds
  ADD COLUMN max_thread_members integer NOT NULL DEFAULT 1000
    CONSTRAINT guilds_max_thread_members_range CHECK (max_thread_members BETWEEN 1 AND 100000);

ALTER TABLE channels
  ADD COLUMN auto_archive_minutes integer,
  ADD COLUMN archived_at timestamptz,
  ADD COLUMN locked boolean NOT NULL DEFAULT false,
  ADD COLUMN owner_id uuid,
  ADD COLUMN starter_message_id uuid;
-- New and NULL in every row: nothing to check, so NOT VALID is only squawk's form.
ALTER TABLE channels ADD CONSTRAINT channels_auto_archive_minutes_values
  CHECK (auto_archive_minutes IN (60, 1440, 4320, 10080)) NOT VALID;
ALTER TABLE channels ADD CONSTRAINT channels_thread_columns
  CHECK ((type::text IN ('public_thread', 'private_thread')) = (auto_archive_minutes IS NOT NULL)
    AND (auto_archive_minutes IS NOT NULL OR (archived_at IS NULL AND NOT locked
      AND owner_id IS NULL AND starter_message_id IS NULL))) NOT VALID;
ALTER TABLE channels ADD CONSTRAINT channels_owner_id_fkey
  FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE SET NULL NOT VALID;
ALTER TABLE channels ADD CONSTRAINT channels_starter_message_id_fkey
  FOREIGN KEY (starter_message_id) REFERENCES messages (id) ON DELETE SET NULL NOT VALID;
-- Partial over columns that are NULL in every existing row: each build reads
-- the table once and writes nothing.
-- One thread per message.
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX channels_starter_message_id_key ON channels (starter_message_id)
  WHERE starter_message_id IS NOT NULL;
-- listActiveThreads: a guild's active threads by id (archived ones are not in it).
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX channels_active_threads_idx ON channels (guild_id, id)
  WHERE auto_archive_minutes IS NOT NULL AND archived_at IS NULL;
-- listArchivedThreads: a channel's archived threads, newest archived first.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX channels_archived_threads_idx ON channels (parent_id, archived_at DESC, id DESC)
  WHERE archived_at IS NOT NULL;
-- The ON DELETE SET NULL from users.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX channels_thread_owner_id_idx ON channels (owner_id) WHERE owner_id IS NOT NULL;

-- How many members a thread has (exact under concurrent joins: raised by a
-- conditional upsert in the insert's statement, as guildstore_channel_counts).
CREATE TABLE guildstore_thread_member_counts (
  thread_id uuid PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
  members integer NOT NULL
);

-- Bumps the given channels and their threads. Non-thread channels are locked
-- first (id order), then the threads of the given ids and of their channels
-- (id order, read after the first locks, so a thread whose creation committed
-- while we waited on its parent is seen): every writer locks in this order.
-- Index scans only (enable_seqscan off for its statements): under
-- SERIALIZABLE a sequential scan of channels takes a predicate lock on the
-- whole table, and two unrelated revocations (one channel's overwrite,
-- another's thread member) then failed each other with 40001 at commit.
CREATE OR REPLACE FUNCTION guildstore_bump_channels(ids uuid[], touch_updated_at boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
  threads uuid[];
BEGIN
  IF coalesce(cardinality(ids), 0) = 0 THEN
    RETURN;
  END IF;
  PERFORM 1 FROM channels c
  WHERE c.id = ANY (ids) AND c.auto_archive_minutes IS NULL
  ORDER BY c.id FOR NO KEY UPDATE;
  threads := ARRAY(
    SELECT t.id FROM channels t
    WHERE t.auto_archive_minutes IS NOT NULL AND (t.id = ANY (ids) OR t.parent_id = ANY (ids)));
  PERFORM 1 FROM channels t WHERE t.id = ANY (threads) ORDER BY t.id FOR NO KEY UPDATE;
  UPDATE channels c SET access_version = c.access_version + 1,
    updated_at = CASE WHEN touch_updated_at AND c.id = ANY (ids) THEN clock_timestamp() ELSE c.updated_at END
  WHERE c.id = ANY (ids) OR c.id = ANY (threads);
END
$$;

-- A parent turned private or public: its threads (the parent itself is bumped
-- by 0007's BEFORE trigger).
CREATE FUNCTION guildstore_bump_threads_of_channel() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_channels(ARRAY(
    SELECT t.id FROM channels t WHERE t.parent_id = NEW.id AND t.auto_archive_minutes IS NOT NULL));
  RETURN NULL;
END
$$;

CREATE TRIGGER channels_privacy_changed_bump_threads
AFTER UPDATE ON channels
FOR EACH ROW
WHEN (OLD.is_private IS DISTINCT FROM NEW.is_private AND NEW.auto_archive_minutes IS NULL)
EXECUTE FUNCTION guildstore_bump_threads_of_channel();

-- A thread locked or unlocked: who may send changes, so its own version (in
-- the row being written, as 0007's scope trigger).
CREATE TRIGGER channels_lock_changed_bump
BEFORE UPDATE ON channels
FOR EACH ROW
WHEN (OLD.locked IS DISTINCT FROM NEW.locked)
EXECUTE FUNCTION guildstore_bump_channel_on_scope_change();

-- 0018's structure trigger now skips threads (its function is unchanged): a
-- thread takes no channel slot and its parent is not a category. Threads get
-- their own structure trigger: the parent is a text channel of the thread's
-- guild (not a thread, not a category), the starter message a live message of
-- that channel, and a thread never moves. Creating one updates the parent's
-- row (the conflict a revocation of the parent meets, see above).
DROP TRIGGER channels_structure ON channels;
CREATE TRIGGER channels_structure
BEFORE INSERT OR UPDATE OF parent_id, guild_id ON channels
FOR EACH ROW
WHEN (NEW.auto_archive_minutes IS NULL)
EXECUTE FUNCTION guildstore_channels_structure();

CREATE TRIGGER channels_structure_deleted
BEFORE DELETE ON channels
FOR EACH ROW
WHEN (OLD.auto_archive_minutes IS NULL)
EXECUTE FUNCTION guildstore_channels_structure();

CREATE FUNCTION guildstore_threads_structure() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  parent_guild uuid;
  parent_type text;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.parent_id IS DISTINCT FROM OLD.parent_id OR NEW.guild_id IS DISTINCT FROM OLD.guild_id
      OR NEW.type IS DISTINCT FROM OLD.type THEN
      RAISE EXCEPTION 'a thread stays in its parent'
        USING ERRCODE = '23514', CONSTRAINT = 'channels_thread_parent', TABLE = 'channels';
    END IF;
    RETURN NEW;
  END IF;
  -- A real update (not only a lock): under REPEATABLE READ a revocation that
  -- locks the parent after this commits fails with 40001.
  UPDATE channels SET access_version = access_version WHERE id = NEW.parent_id
  RETURNING guild_id, type::text INTO parent_guild, parent_type;
  -- ('forum': the channel type of migration 0022, whose posts are threads.)
  IF parent_type IS NULL OR parent_type NOT IN ('text', 'forum')
    OR parent_guild IS DISTINCT FROM NEW.guild_id THEN
    RAISE EXCEPTION 'a thread''s parent must be a text channel of its guild'
      USING ERRCODE = '23514', CONSTRAINT = 'channels_thread_parent', TABLE = 'channels';
  END IF;
  IF NEW.starter_message_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM messages m
    WHERE m.id = NEW.starter_message_id AND m.channel_id = NEW.parent_id AND m.deleted_at IS NULL
  ) THEN
    RAISE EXCEPTION 'a thread''s starter message must be a live message of its parent'
      USING ERRCODE = '23514', CONSTRAINT = 'channels_thread_message', TABLE = 'channels';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER channels_threads_structure
BEFORE INSERT OR UPDATE OF parent_id, guild_id, type ON channels
FOR EACH ROW
WHEN (NEW.auto_archive_minutes IS NOT NULL)
EXECUTE FUNCTION guildstore_threads_structure();

-- A channel's threads go with it (before the parent_id foreign key would set
-- their parent to NULL), and a channel with threads keeps its type.
CREATE FUNCTION guildstore_threads_of_parent() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM channels t WHERE t.parent_id = OLD.id AND t.auto_archive_minutes IS NOT NULL;
    RETURN OLD;
  END IF;
  IF EXISTS (SELECT 1 FROM channels t WHERE t.parent_id = NEW.id AND t.auto_archive_minutes IS NOT NULL) THEN
    RAISE EXCEPTION 'a channel with threads keeps its type'
      USING ERRCODE = '23514', CONSTRAINT = 'channels_thread_parent', TABLE = 'channels';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER channels_threads_of_parent_deleted
BEFORE DELETE ON channels
FOR EACH ROW
WHEN (OLD.auto_archive_minutes IS NULL AND OLD.type::text = 'text')
EXECUTE FUNCTION guildstore_threads_of_parent();

CREATE TRIGGER channels_threads_of_parent_retyped
BEFORE UPDATE OF type ON channels
FOR EACH ROW
WHEN (NEW.auto_archive_minutes IS NULL AND OLD.type IS DISTINCT FROM NEW.type)
EXECUTE FUNCTION guildstore_threads_of_parent();

-- Thread members: one slot of the thread's counter per new row (AFTER: an
-- upsert that finds the row takes none), given back on delete.
CREATE FUNCTION guildstore_thread_members_counted() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  cap integer;
  taken integer;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT g.max_thread_members INTO cap
    FROM channels t JOIN guilds g ON g.id = t.guild_id
    WHERE t.id = NEW.channel_id AND t.auto_archive_minutes IS NOT NULL;
    IF cap IS NULL THEN
      RETURN NULL;
    END IF;
    INSERT INTO guildstore_thread_member_counts AS c (thread_id, members) VALUES (NEW.channel_id, 1)
    ON CONFLICT (thread_id) DO UPDATE SET members = c.members + 1
    RETURNING c.members INTO taken;
    IF taken > cap THEN
      RAISE EXCEPTION 'the limit of % thread members is reached', cap
        USING ERRCODE = '23514', CONSTRAINT = 'channel_members_thread_limit', TABLE = 'channel_members';
    END IF;
  ELSE
    UPDATE guildstore_thread_member_counts SET members = members - 1 WHERE thread_id = OLD.channel_id;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER channel_members_inserted_count_threads
AFTER INSERT ON channel_members
FOR EACH ROW EXECUTE FUNCTION guildstore_thread_members_counted();

CREATE TRIGGER channel_members_deleted_count_threads
AFTER DELETE ON channel_members
FOR EACH ROW EXECUTE FUNCTION guildstore_thread_members_counted();

-- A thread has no overwrites of its own (its parent's apply): refused.
CREATE FUNCTION guildstore_refuse_thread_overwrite() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM channels WHERE id = NEW.channel_id AND auto_archive_minutes IS NOT NULL) THEN
    RAISE EXCEPTION 'a thread''s permissions are its parent''s'
      USING ERRCODE = '23514', CONSTRAINT = 'channel_overwrites_not_thread', TABLE = 'channel_overwrites';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER channel_overwrites_not_thread
BEFORE INSERT ON channel_overwrites
FOR EACH ROW EXECUTE FUNCTION guildstore_refuse_thread_overwrite();

-- The position functions (0020's row trigger, which numbers a statement's
-- rows from a transaction-local slot, and 0018's guildstore_take_position),
-- now clearing archived_at in the counter row's UPDATE
-- (a send to an archived thread unarchives it; for every other channel the
-- column is NULL already, so the row stays a HOT update). A send slowmode
-- refuses gives its position back but leaves the thread active: no message
-- came, so the archiver archives it again after the same idle time.
CREATE OR REPLACE FUNCTION guildstore_message_seq() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  slot text := 'guildstore.seq_' || (uuid_hash(NEW.channel_id) & 255);
  entry text := current_setting(slot, true);
  used text;
  taken bigint;
  stored text;
  done text;
BEGIN
  IF entry <> '' THEN
    IF left(entry, 36) = NEW.channel_id::text THEN
      taken := split_part(entry, ':', 2)::bigint;
      stored := split_part(entry, ':', 3);
      IF taken::text = stored THEN
        -- First reuse: trusted only when the counter still holds the position.
        IF (SELECT c.last_seq FROM channels c WHERE c.id = NEW.channel_id) IS DISTINCT FROM taken THEN
          taken := NULL;
        ELSE
          used := current_setting('guildstore.seq_used', true);
          done := set_config('guildstore.seq_used',
            CASE WHEN used IS NULL OR used = '' THEN slot ELSE used || ',' || slot END, true);
        END IF;
      END IF;
      IF taken IS NOT NULL THEN
        NEW.seq := taken + 1;
        done := set_config(slot, left(entry, 36) || ':' || NEW.seq || ':' || stored, true);
        RETURN NEW;
      END IF;
    ELSIF split_part(entry, ':', 2) <> split_part(entry, ':', 3) THEN
      -- Another channel of this statement holds the slot: it leaves.
      PERFORM guildstore_store_position(entry);
    END IF;
  END IF;
  UPDATE channels SET last_seq = last_seq + 1, archived_at = NULL
  WHERE id = NEW.channel_id AND type::text <> 'category'
  RETURNING last_seq INTO taken;
  IF taken IS NULL THEN
    PERFORM guildstore_refuse_message_channel(NEW.channel_id);
  END IF;
  NEW.seq := taken;
  done := set_config(slot, NEW.channel_id || ':' || taken || ':' || taken, true);
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION guildstore_take_position(channel uuid, expected bigint, author uuid, bypass boolean)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  taken bigint;
  rate integer;
  counted boolean;
BEGIN
  UPDATE channels SET last_seq = last_seq + 1, archived_at = NULL
  WHERE id = channel AND access_version = expected AND type::text <> 'category'
  RETURNING last_seq, rate_limit_per_user INTO taken, rate;
  IF taken IS NULL THEN
    IF EXISTS (SELECT 1 FROM channels WHERE id = channel AND type::text = 'category') THEN
      PERFORM guildstore_refuse_message_channel(channel);
    END IF;
    RETURN NULL;
  END IF;
  IF rate = 0 OR bypass THEN
    RETURN taken;
  END IF;
  INSERT INTO channel_slowmode AS s (channel_id, user_id, last_sent_at)
  VALUES (channel, author, statement_timestamp())
  ON CONFLICT (channel_id, user_id) DO UPDATE SET last_sent_at = excluded.last_sent_at
    WHERE s.last_sent_at <= excluded.last_sent_at - make_interval(secs => rate)
  RETURNING true INTO counted;
  IF counted IS NULL THEN
    UPDATE channels SET last_seq = last_seq - 1 WHERE id = channel;
    RETURN -1;
  END IF;
  RETURN taken;
END
$$;
