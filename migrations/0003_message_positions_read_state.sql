-- guildstore:no-transaction
-- guildstore 0003: commit-ordered message positions, read state for every
-- channel, mentions. See docs/read-state.md.
--
-- One DO block that COMMITs between its steps, so that a big `messages` table
-- is never locked for long (the runner applies a no-transaction file as one
-- statement, outside a transaction block, where a DO block may commit):
--
--   1. schema (short locks, metadata only): channels.last_seq (the per-channel
--      counter), messages.seq, the trigger that numbers every new message from
--      the counter (taking the channel row lock until commit, so commit order
--      is seq order within a channel), channel_read_states, message_mentions;
--      dm_participants.last_read_message_id loses its ON DELETE SET NULL foreign
--      key (a purge must never reset a read marker: the marker's seq decides);
--   2. back-fill of the messages that existed before step 1 in batches of
--      10 000 rows, each its own short transaction, newest id first: they get
--      positions 0, -1, -2, … per channel (in id order, all below every new
--      message, which counts up from 1), so the back-fill never waits for or
--      blocks new writes;
--   3. the history index on (channel_id, seq) of live rows (writes to
--      `messages` wait for its build; reads do not);
--   4. seq NOT NULL through a validated CHECK (no long exclusive lock);
--   5. the DM read markers of 0.1.0 copied into channel_read_states.
--
-- Every step is idempotent: a run that was interrupted resumes where it stopped.
-- squawk cannot see into the DO body; each statement in it is written to the
-- rules it enforces (short lock_timeout, NOT VALID + VALIDATE, no table rewrite).
DO $migration$
DECLARE
  batch_size constant int := 10000;
  cursor_id uuid := 'ffffffff-ffff-ffff-ffff-ffffffffffff';
  next_id uuid;
  done int;
BEGIN
  -- 1. schema. Each table is altered in a transaction of its own, so that this
  -- run never holds a lock on one table while it waits for another (a writer
  -- holds messages and then wants channels: holding both here deadlocks).
  PERFORM set_config('lock_timeout', '10s', true);
  -- A message's position in its channel, set by messages_seq below.
  ALTER TABLE messages ADD COLUMN IF NOT EXISTS seq bigint;
  COMMIT;
  PERFORM set_config('lock_timeout', '10s', true);
  -- The position counter of each channel; a fast default, no table rewrite.
  ALTER TABLE channels ADD COLUMN IF NOT EXISTS last_seq bigint NOT NULL DEFAULT 0;
  COMMIT;
  PERFORM set_config('lock_timeout', '10s', true);

  -- Numbers a new message from its channel's counter. The UPDATE locks the
  -- channel row until the inserting transaction ends, so within a channel
  -- positions are taken, and become visible, in commit order, whatever the
  -- clocks of the app servers. Rows given an explicit seq (bulk loads) are left
  -- as they are (the trigger's WHEN).
  CREATE OR REPLACE FUNCTION guildstore_message_seq() RETURNS trigger
  LANGUAGE plpgsql
  AS $fn$
  BEGIN
    UPDATE channels SET last_seq = last_seq + 1 WHERE id = NEW.channel_id
    RETURNING last_seq INTO NEW.seq;
    IF NEW.seq IS NULL THEN
      RAISE EXCEPTION 'insert or update on table "messages" violates foreign key constraint "messages_channel_id_fkey"'
        USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'messages_channel_id_fkey',
          TABLE = 'messages', DETAIL = 'Key (channel_id) is not present in table "channels".';
    END IF;
    RETURN NEW;
  END
  $fn$;
  CREATE OR REPLACE TRIGGER messages_seq
  BEFORE INSERT ON messages
  FOR EACH ROW WHEN (NEW.seq IS NULL) EXECUTE FUNCTION guildstore_message_seq();
  COMMIT;
  PERFORM set_config('lock_timeout', '10s', true);

  -- Read state of every channel (guild and DM): how far a user has read, as
  -- the position of the newest message read (never moves backwards) and that
  -- message's id. No foreign key on the id: a purge must not reset it.
  CREATE TABLE IF NOT EXISTS channel_read_states (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    last_read_seq bigint NOT NULL,
    last_read_message_id uuid NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, channel_id)
  );
  CREATE INDEX IF NOT EXISTS channel_read_states_channel_id_idx ON channel_read_states (channel_id);
  COMMIT;
  PERFORM set_config('lock_timeout', '10s', true);

  -- Mentions of a message: exactly one of a user, a role, or @everyone per
  -- row. channel_id, seq and author_id are the message's, copied when the row
  -- is made (in the message's INSERT statement), so unread mentions are counted
  -- by index range per target, from the index alone, without touching other
  -- users' mentions or the messages. A soft-deleted message's mentions are
  -- removed (messages_mentions_on_delete below).
  CREATE TABLE IF NOT EXISTS message_mentions (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL,
    seq bigint NOT NULL,
    author_id uuid NOT NULL,
    user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    role_id uuid REFERENCES roles (id) ON DELETE CASCADE,
    everyone boolean NOT NULL DEFAULT false,
    CONSTRAINT message_mentions_one_target CHECK (
      (user_id IS NOT NULL)::int + (role_id IS NOT NULL)::int + everyone::int = 1
    )
  );
  CREATE INDEX IF NOT EXISTS message_mentions_message_id_idx ON message_mentions (message_id);
  -- One mention of a target per message (seq is unique within a channel), and
  -- the ranges the unread mention count reads (author_id included: the count
  -- skips one's own messages without visiting the table).
  CREATE UNIQUE INDEX IF NOT EXISTS message_mentions_user_key
    ON message_mentions (user_id, channel_id, seq) INCLUDE (author_id) WHERE user_id IS NOT NULL;
  CREATE UNIQUE INDEX IF NOT EXISTS message_mentions_role_key
    ON message_mentions (role_id, channel_id, seq) INCLUDE (author_id) WHERE role_id IS NOT NULL;
  CREATE UNIQUE INDEX IF NOT EXISTS message_mentions_everyone_key
    ON message_mentions (channel_id, seq) INCLUDE (author_id) WHERE everyone;
  COMMIT;

  -- A soft delete removes the message's mentions, so a mention count never
  -- visits a deleted message (whichever path sets deleted_at).
  PERFORM set_config('lock_timeout', '10s', true);
  CREATE OR REPLACE FUNCTION guildstore_message_mentions_on_delete() RETURNS trigger
  LANGUAGE plpgsql
  AS $fn$
  BEGIN
    DELETE FROM message_mentions WHERE message_id = NEW.id;
    RETURN NULL;
  END
  $fn$;
  CREATE OR REPLACE TRIGGER messages_mentions_on_delete
  AFTER UPDATE OF deleted_at ON messages
  FOR EACH ROW WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
  EXECUTE FUNCTION guildstore_message_mentions_on_delete();
  COMMIT;

  -- A purge must never reset a DM read marker (issue 11 item 6): the marker
  -- becomes a plain id, like channel_read_states.last_read_message_id. Locks
  -- in the order markDmRead of 0.1.0 takes them: dm_participants, then messages.
  PERFORM set_config('lock_timeout', '10s', true);
  LOCK TABLE dm_participants IN ACCESS EXCLUSIVE MODE;
  LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE;
  ALTER TABLE dm_participants DROP CONSTRAINT IF EXISTS dm_participants_last_read_message_id_fkey;
  DROP INDEX IF EXISTS dm_participants_last_read_message_id_idx;
  COMMIT;

  -- 2. back-fill, newest id first, resuming after an interrupted run: the
  -- lowest position given so far in each channel (none on a first run).
  CREATE TEMP TABLE IF NOT EXISTS guildstore_backfill (channel_id uuid PRIMARY KEY, low bigint NOT NULL);
  TRUNCATE guildstore_backfill;
  INSERT INTO guildstore_backfill (channel_id, low)
  SELECT channel_id, min(seq) FROM messages WHERE seq <= 0 GROUP BY channel_id;
  SELECT id INTO next_id FROM messages WHERE seq <= 0 ORDER BY id LIMIT 1;
  cursor_id := coalesce(next_id, cursor_id);
  COMMIT;
  LOOP
    CREATE TEMP TABLE IF NOT EXISTS guildstore_backfill_batch (id uuid PRIMARY KEY, channel_id uuid NOT NULL, seq bigint NOT NULL);
    TRUNCATE guildstore_backfill_batch;
    INSERT INTO guildstore_backfill_batch (id, channel_id, seq)
    SELECT b.id, b.channel_id,
      coalesce(s.low, 1) - row_number() OVER (PARTITION BY b.channel_id ORDER BY b.id DESC)
    FROM (
      SELECT m.id, m.channel_id FROM messages m
      WHERE m.id < cursor_id AND m.seq IS NULL
      ORDER BY m.id DESC
      LIMIT batch_size
    ) b
    LEFT JOIN guildstore_backfill s ON s.channel_id = b.channel_id;
    GET DIAGNOSTICS done = ROW_COUNT;
    EXIT WHEN done = 0;
    UPDATE messages m SET seq = b.seq FROM guildstore_backfill_batch b WHERE m.id = b.id;
    INSERT INTO guildstore_backfill (channel_id, low)
    SELECT channel_id, min(seq) FROM guildstore_backfill_batch GROUP BY channel_id
    ON CONFLICT (channel_id) DO UPDATE SET low = excluded.low;
    SELECT id INTO cursor_id FROM guildstore_backfill_batch ORDER BY id LIMIT 1;
    COMMIT;
  END LOOP;
  DROP TABLE IF EXISTS guildstore_backfill_batch;
  DROP TABLE IF EXISTS guildstore_backfill;
  COMMIT;

  -- 3. history pages and catch-up: keyset on (channel_id, seq), live rows only.
  PERFORM set_config('lock_timeout', '10s', true);
  CREATE INDEX IF NOT EXISTS messages_channel_id_seq_live_idx
    ON messages (channel_id, seq) WHERE deleted_at IS NULL;
  COMMIT;

  -- 4. seq NOT NULL: validate a CHECK first (no exclusive lock while it
  -- scans), then SET NOT NULL uses it instead of scanning.
  IF EXISTS (
    SELECT FROM pg_attribute
    WHERE attrelid = 'messages'::regclass AND attname = 'seq' AND NOT attnotnull
  ) THEN
    PERFORM set_config('lock_timeout', '10s', true);
    ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_seq_not_null;
    ALTER TABLE messages ADD CONSTRAINT messages_seq_not_null CHECK (seq IS NOT NULL) NOT VALID;
    COMMIT;
    ALTER TABLE messages VALIDATE CONSTRAINT messages_seq_not_null;
    COMMIT;
    PERFORM set_config('lock_timeout', '10s', true);
    ALTER TABLE messages ALTER COLUMN seq SET NOT NULL;
    ALTER TABLE messages DROP CONSTRAINT messages_seq_not_null;
    COMMIT;
  END IF;

  -- 5. the DM read markers of 0.1.0 (a marker on a purged message was already NULL).
  INSERT INTO channel_read_states (user_id, channel_id, last_read_seq, last_read_message_id)
  SELECT p.user_id, p.channel_id, m.seq, m.id
  FROM dm_participants p
  JOIN messages m ON m.id = p.last_read_message_id AND m.channel_id = p.channel_id
  ON CONFLICT (user_id, channel_id) DO UPDATE
    SET last_read_seq = excluded.last_read_seq, last_read_message_id = excluded.last_read_message_id
    WHERE channel_read_states.last_read_seq < excluded.last_read_seq;
END
$migration$;
