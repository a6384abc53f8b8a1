-- guildstore 0020: a statement's messages are numbered in one step (issue 23,
-- item 3).
--
-- Until now the messages_seq trigger (0003, 0018) ran
-- `UPDATE channels SET last_seq = last_seq + 1` for every row. Inside one
-- transaction each UPDATE of the same channel row leaves a new row version
-- that no one can prune yet (the transaction that made them is still running),
-- and the next UPDATE finds the live version by walking that chain from its
-- start: row n walks n versions, so one INSERT … SELECT of n rows into one
-- channel cost O(n²) (5 000 rows 2.2 s, 40 000 rows 91.6 s).
--
-- Now the counter row is written twice per statement and channel, whatever
-- the number of rows:
--
--   * the first row of a channel in a statement takes its position as before
--     (`UPDATE … SET last_seq = last_seq + 1 … RETURNING`), which locks the
--     channel row until the transaction ends, exactly as before: positions
--     are still taken, and become visible, in commit order;
--   * the running position of the channel is then kept transaction-locally,
--     in a custom setting (`set_config(…, true)`), and every further row of
--     that channel in the statement takes the next one from it without
--     touching the table;
--   * an AFTER … FOR EACH STATEMENT trigger writes each channel's last
--     position to its counter row once, and empties the settings, so the next
--     statement (a send through guildstore_take_position, another insert)
--     starts from the table again.
--
-- The settings are 256 slots `guildstore.seq_0` … `guildstore.seq_255` (a
-- channel's slot is a hash of its id), each holding
-- `<channel id>:<last position>:<position on the counter row>`, and
-- `guildstore.seq_used`, the list of slots in use. A fixed set of names: a
-- session never holds more than 257 placeholder settings, however many
-- channels it writes to. Two channels of one statement that share a slot take
-- turns: the one leaving writes its counter first (as the statement trigger
-- would) and the one arriving takes its position from the table again, so
-- rows of more than a few hundred channels interleaved row by row cost one
-- counter write per change of channel (grouped by channel, as importMessages
-- sends them, one per channel).
--
-- A failed statement, or a rolled-back savepoint, leaves no stale slot: a
-- transaction-local setting made inside a (sub)transaction that aborts is
-- undone with it. A nested statement (an insert into messages from a function
-- called by another insert into messages) writes every slot at its own end;
-- the outer statement then takes its next position from the table again, so
-- positions stay unique and gap-free. COPY fires row and statement triggers
-- alike, so COPY into messages is numbered the same way; statement-level
-- AFTER triggers over transition tables (the change feed) see every row with
-- its final seq (BEFORE ROW sets it).
--
-- Rows given an explicit seq (sendMessage, which takes its position through
-- guildstore_take_position in its own statement, and bulk loaders that set
-- seq themselves) are left alone, as before (the row trigger's WHEN); the
-- statement trigger then reads one empty setting and returns.
SET LOCAL lock_timeout = '10s';

-- Writes one slot's channel counter when positions were taken from the slot
-- beyond what the counter row holds. `entry` is a slot's value (see above).
CREATE FUNCTION guildstore_store_position(entry text) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  parts text[] := string_to_array(substr(entry, 38), ':');
BEGIN
  IF parts[1] <> parts[2] THEN
    UPDATE channels SET last_seq = parts[1]::bigint WHERE id = left(entry, 36)::uuid;
  END IF;
END
$$;

-- Numbers a new message: the first row of a channel in a statement from the
-- counter row (locking it until commit), the next ones from the slot.
CREATE OR REPLACE FUNCTION guildstore_message_seq() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  channel text := NEW.channel_id::text;
  slot text := 'guildstore.seq_' || (uuid_hash(NEW.channel_id) & 255);
  entry text := current_setting(slot, true);
  parts text[];
BEGIN
  IF left(entry, 36) = channel THEN
    parts := string_to_array(substr(entry, 38), ':');
    NEW.seq := parts[1]::bigint + 1;
    PERFORM set_config(slot, channel || ':' || NEW.seq || ':' || parts[2], true);
    RETURN NEW;
  END IF;
  IF entry <> '' THEN
    -- Another channel of this statement holds the slot: it leaves.
    PERFORM guildstore_store_position(entry);
  ELSE
    PERFORM set_config('guildstore.seq_used',
      coalesce(nullif(current_setting('guildstore.seq_used', true), '') || ',', '') || slot, true);
  END IF;
  UPDATE channels SET last_seq = last_seq + 1
  WHERE id = NEW.channel_id AND type::text <> 'category'
  RETURNING last_seq INTO NEW.seq;
  IF NEW.seq IS NULL THEN
    PERFORM guildstore_refuse_message_channel(NEW.channel_id);
  END IF;
  PERFORM set_config(slot, channel || ':' || NEW.seq || ':' || NEW.seq, true);
  RETURN NEW;
END
$$;

-- At the end of every statement that inserts into messages: each slot in use
-- writes its counter row (once) and is emptied.
CREATE FUNCTION guildstore_message_seq_store() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  used text := current_setting('guildstore.seq_used', true);
  slot text;
  entry text;
BEGIN
  IF used IS NULL OR used = '' THEN
    RETURN NULL;
  END IF;
  FOREACH slot IN ARRAY string_to_array(used, ',') LOOP
    entry := current_setting(slot, true);
    IF entry <> '' THEN
      PERFORM guildstore_store_position(entry);
      PERFORM set_config(slot, '', true);
    END IF;
  END LOOP;
  PERFORM set_config('guildstore.seq_used', '', true);
  RETURN NULL;
END
$$;

CREATE TRIGGER messages_seq_store
AFTER INSERT ON messages
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_message_seq_store();
