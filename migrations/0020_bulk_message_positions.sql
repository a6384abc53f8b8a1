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
--     starts from the table again. It fires only for a statement that took
--     more than one position of a channel (its WHEN): a single-row insert
--     costs what it cost before, plus two reads and one write of a setting.
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
-- statement trigger's WHEN then reads one empty setting and does not fire.
SET LOCAL lock_timeout = '10s';

-- Writes the counter of a slot's channel, `entry` being the slot's value (see
-- above), when positions were taken from the slot beyond what the counter row
-- holds (callers check that first: a single-row statement never gets here).
CREATE FUNCTION guildstore_store_position(entry text) RETURNS void
LANGUAGE sql
AS $$
  UPDATE channels SET last_seq = split_part(entry, ':', 2)::bigint WHERE id = left(entry, 36)::uuid;
$$;

-- Numbers a new message: the first row of a channel in a statement from the
-- counter row (locking it until commit), the next ones from the slot. Every
-- step is an assignment (a simple expression, evaluated without the executor)
-- rather than PERFORM.
--
-- A slot is registered for the statement trigger only when a second row of
-- its channel takes a position from it: a single-row insert (createMessage)
-- takes its position and leaves its slot as `<channel>:n:n`, and the
-- statement trigger does not fire for it. Such a left-over entry may be met by
-- a later statement of the same transaction, after something else moved the
-- counter (a send through guildstore_take_position): so the first reuse of an
-- entry (its two positions equal) is trusted only when the counter row still
-- holds that position (one primary-key read per statement and channel; the
-- channel row is locked by this transaction already). Otherwise the row takes
-- its position from the counter row again.
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
  UPDATE channels SET last_seq = last_seq + 1
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

-- At the end of a statement that numbered rows: each slot in use writes its
-- counter row (when it moved past it) and is emptied.
CREATE FUNCTION guildstore_message_seq_store() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  slot text;
  entry text;
  done text;
BEGIN
  FOREACH slot IN ARRAY string_to_array(current_setting('guildstore.seq_used', true), ',') LOOP
    entry := current_setting(slot, true);
    IF split_part(entry, ':', 2) <> split_part(entry, ':', 3) THEN
      PERFORM guildstore_store_position(entry);
    END IF;
    done := set_config(slot, '', true);
  END LOOP;
  done := set_config('guildstore.seq_used', '', true);
  RETURN NULL;
END
$$;

-- The WHEN of a statement trigger is evaluated once all rows are processed:
-- a statement that numbered nothing (sendMessage's, whose rows carry their
-- seq) does not call the function at all.
CREATE TRIGGER messages_seq_store
AFTER INSERT ON messages
FOR EACH STATEMENT
WHEN (current_setting('guildstore.seq_used', true) <> '')
EXECUTE FUNCTION guildstore_message_seq_store();
