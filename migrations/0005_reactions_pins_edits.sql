-- guildstore 0005: reactions, pins and edit history.
--
-- Counters that a cap depends on live in one row each (per message: how many
-- distinct emojis; per channel: how many pins), are changed only by triggers on
-- the rows they count, and carry the cap as a CHECK. A writer updates the
-- counter row, so concurrent writers queue on that row lock and each sees the
-- count its predecessor committed (READ COMMITTED re-reads the locked row;
-- REPEATABLE READ gets a serialization failure): the caps cannot be passed
-- whatever the concurrency, and the counts cannot drift (a cascade from a
-- deleted user, message or channel goes through the same triggers).

-- message_reactions: who reacted with which emoji. An emoji is a Unicode emoji
-- sequence or a custom emoji reference `name:id` (validated by the library).
CREATE TABLE message_reactions (
  message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  emoji text NOT NULL CONSTRAINT message_reactions_emoji_length CHECK (char_length(emoji) BETWEEN 1 AND 100),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Also the keyset of "who reacted with this emoji" (after a user id).
  PRIMARY KEY (message_id, emoji, user_id)
);
CREATE INDEX message_reactions_user_id_idx ON message_reactions (user_id);

-- message_reaction_counts: per message and emoji, how many users reacted (kept
-- by the triggers below; a row exists only while count > 0). A page's
-- reactions are read from here: at most 20 rows per message.
CREATE TABLE message_reaction_counts (
  message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  emoji text NOT NULL,
  count integer NOT NULL CONSTRAINT message_reaction_counts_count_range CHECK (count >= 0),
  first_reacted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (message_id, emoji)
);

-- message_reaction_summaries: per message, the number of distinct emojis. Every
-- change of a message's reactions locks this row first, so the distinct count
-- is exact and the cap of 20 holds under any concurrency.
CREATE TABLE message_reaction_summaries (
  message_id uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
  emoji_count integer NOT NULL DEFAULT 0
    CONSTRAINT message_reaction_summaries_emoji_limit CHECK (emoji_count BETWEEN 0 AND 20)
);

-- After reactions are added: lock each touched message's summary (in message
-- order, so two statements never wait on each other crosswise), then add to
-- the per-emoji counts and recount the distinct emojis. VOLATILE: each
-- statement below takes a fresh snapshot, so it sees what the previous holder
-- of the summary lock committed.
CREATE FUNCTION guildstore_reactions_added() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM added) THEN
    RETURN NULL;
  END IF;
  INSERT INTO message_reaction_summaries (message_id)
  SELECT DISTINCT message_id FROM added ORDER BY message_id
  ON CONFLICT (message_id) DO NOTHING;
  PERFORM 1 FROM message_reaction_summaries s
  WHERE s.message_id IN (SELECT message_id FROM added)
  ORDER BY s.message_id
  FOR NO KEY UPDATE;
  INSERT INTO message_reaction_counts AS c (message_id, emoji, count)
  SELECT message_id, emoji, count(*) FROM added GROUP BY message_id, emoji ORDER BY message_id, emoji
  ON CONFLICT (message_id, emoji) DO UPDATE SET count = c.count + excluded.count;
  UPDATE message_reaction_summaries s
  SET emoji_count = (SELECT count(*) FROM message_reaction_counts c WHERE c.message_id = s.message_id)
  WHERE s.message_id IN (SELECT message_id FROM added);
  RETURN NULL;
END
$$;

-- After reactions are removed (directly or by a cascade): the same lock order,
-- then subtract, drop the emojis that reached zero, recount.
CREATE FUNCTION guildstore_reactions_removed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM removed) THEN
    RETURN NULL;
  END IF;
  PERFORM 1 FROM message_reaction_summaries s
  WHERE s.message_id IN (SELECT message_id FROM removed)
  ORDER BY s.message_id
  FOR NO KEY UPDATE;
  UPDATE message_reaction_counts c
  SET count = greatest(c.count - d.n, 0)
  FROM (SELECT message_id, emoji, count(*) AS n FROM removed GROUP BY message_id, emoji) d
  WHERE c.message_id = d.message_id AND c.emoji = d.emoji;
  DELETE FROM message_reaction_counts c
  WHERE c.count = 0 AND c.message_id IN (SELECT message_id FROM removed);
  UPDATE message_reaction_summaries s
  SET emoji_count = (SELECT count(*) FROM message_reaction_counts c WHERE c.message_id = s.message_id)
  WHERE s.message_id IN (SELECT message_id FROM removed);
  RETURN NULL;
END
$$;

CREATE TRIGGER message_reactions_added
AFTER INSERT ON message_reactions
REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_reactions_added();

CREATE TRIGGER message_reactions_removed
AFTER DELETE ON message_reactions
REFERENCING OLD TABLE AS removed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_reactions_removed();

-- A reaction is added or removed, never changed in place (the counts key on it).
CREATE FUNCTION guildstore_reactions_immutable() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'message_reactions rows cannot be updated; delete and insert instead'
    USING ERRCODE = 'check_violation', CONSTRAINT = 'message_reactions_immutable';
END
$$;

CREATE TRIGGER message_reactions_immutable
BEFORE UPDATE OF message_id, emoji, user_id ON message_reactions
FOR EACH ROW EXECUTE FUNCTION guildstore_reactions_immutable();

-- message_pins: pinned messages. A soft-deleted message is unpinned by the
-- trigger below; a purged message or a deleted channel takes its pins along.
CREATE TABLE message_pins (
  message_id uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
  channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  pinned_by uuid REFERENCES users (id) ON DELETE SET NULL,
  pinned_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- A channel's pins, newest first.
CREATE INDEX message_pins_channel_id_pinned_at_idx ON message_pins (channel_id, pinned_at, message_id);
CREATE INDEX message_pins_pinned_by_idx ON message_pins (pinned_by) WHERE pinned_by IS NOT NULL;

-- channel_pin_counts: pins per channel, with the cap of 50 as a CHECK.
CREATE TABLE channel_pin_counts (
  channel_id uuid PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
  pin_count integer NOT NULL DEFAULT 0
    CONSTRAINT channel_pin_counts_pin_limit CHECK (pin_count BETWEEN 0 AND 50)
);

CREATE FUNCTION guildstore_pins_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO channel_pin_counts AS p (channel_id, pin_count) VALUES (NEW.channel_id, 1)
    ON CONFLICT (channel_id) DO UPDATE SET pin_count = p.pin_count + 1;
  ELSE
    UPDATE channel_pin_counts SET pin_count = pin_count - 1 WHERE channel_id = OLD.channel_id;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER message_pins_changed
AFTER INSERT OR DELETE ON message_pins
FOR EACH ROW EXECUTE FUNCTION guildstore_pins_changed();

CREATE FUNCTION guildstore_pins_immutable() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'message_pins.channel_id cannot be updated'
    USING ERRCODE = 'check_violation', CONSTRAINT = 'message_pins_immutable';
END
$$;

CREATE TRIGGER message_pins_immutable
BEFORE UPDATE OF channel_id ON message_pins
FOR EACH ROW EXECUTE FUNCTION guildstore_pins_immutable();

-- message_edits: every previous version of a message: version n is the content
-- the message had before its n-th edit, and when that edit replaced it.
CREATE TABLE message_edits (
  message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  version integer NOT NULL CONSTRAINT message_edits_version_range CHECK (version >= 1),
  content text NOT NULL,
  replaced_at timestamptz NOT NULL,
  PRIMARY KEY (message_id, version)
);

-- One trigger on messages, for the two changes that need a side effect: a
-- content change records the previous version (in the same statement as the
-- edit, from the row version being replaced, so concurrent edits each record
-- exactly their predecessor: they queue on the message's row lock); a soft
-- delete unpins the message (a fresh snapshot: sees a pin committed while the
-- delete waited for the row).
CREATE FUNCTION guildstore_message_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF NEW.content IS DISTINCT FROM OLD.content THEN
    INSERT INTO message_edits (message_id, version, content, replaced_at)
    SELECT OLD.id, coalesce(max(e.version), 0) + 1, OLD.content, coalesce(NEW.edited_at, now())
    FROM message_edits e
    WHERE e.message_id = OLD.id;
  END IF;
  IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
    DELETE FROM message_pins WHERE message_id = OLD.id;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER messages_changed
AFTER UPDATE OF content, deleted_at ON messages
FOR EACH ROW
WHEN (NEW.content IS DISTINCT FROM OLD.content OR (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL))
EXECUTE FUNCTION guildstore_message_changed();
