-- guildstore 0015: custom emojis (issue 25, item 4).
--
-- guild_emojis: a guild's custom emojis. The name is Discord's (2 to 32 of
-- A-Za-z0-9_), unique per guild by the identity rule of usernames (0002's
-- guildstore_identity_key: 'Party' and 'party' are one name). storage_key
-- names the stored image (as an attachment's s3_key); the creator is kept
-- while the account exists. animated and guild_id never change.
--
-- Role restriction: guild_emoji_roles lists the roles allowed to use a
-- restricted emoji (restricted = true). A deleted role leaves the list; an
-- emoji whose last role is deleted stays restricted, so nobody may use it
-- until its roles are set again (never silently opened to everyone).
--
-- The cap: guilds.max_emojis_static and max_emojis_animated (default 50, 0
-- to 250). Exact under races as the pin cap (0013): every create upserts the
-- guild's guild_emoji_counts row, whose new value the trigger compares with
-- the cap, so concurrent creates of one guild queue on that row; a refusal is
-- SQLSTATE 23514 with constraint guild_emoji_counts_emoji_limit.
--
-- Reactions: message_reactions.emoji_id names the guild_emojis row of a
-- custom reaction (stored 'name:<uuid>'), ON DELETE CASCADE, so deleting an
-- emoji removes its reactions in the same statement, through 0005's
-- statement triggers (per-emoji counts and the per-message distinct count
-- follow). Renaming an emoji rewrites its reactions under the new name (the
-- trigger below), so a custom reaction is always stored as its emoji's
-- current 'name:id'. Existing reactions keep emoji_id NULL.
SET LOCAL lock_timeout = '10s';

ALTER TABLE guilds ADD COLUMN max_emojis_static integer NOT NULL DEFAULT 50
  CONSTRAINT guilds_max_emojis_static_range CHECK (max_emojis_static BETWEEN 0 AND 250);
ALTER TABLE guilds ADD COLUMN max_emojis_animated integer NOT NULL DEFAULT 50
  CONSTRAINT guilds_max_emojis_animated_range CHECK (max_emojis_animated BETWEEN 0 AND 250);

CREATE TABLE guild_emojis (
  id uuid PRIMARY KEY,
  guild_id uuid NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
  name text NOT NULL CONSTRAINT guild_emojis_name_format CHECK (name ~ '^[A-Za-z0-9_]{2,32}$'),
  animated boolean NOT NULL DEFAULT false,
  storage_key text NOT NULL
    CONSTRAINT guild_emojis_storage_key_length CHECK (char_length(storage_key) BETWEEN 1 AND 1024),
  creator_id uuid REFERENCES users (id) ON DELETE SET NULL,
  restricted boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT guild_emojis_id_guild_id_key UNIQUE (id, guild_id)
);
CREATE UNIQUE INDEX guild_emojis_name_identity_key ON guild_emojis (guild_id, guildstore_identity_key(name));
CREATE INDEX guild_emojis_creator_id_idx ON guild_emojis (creator_id) WHERE creator_id IS NOT NULL;

-- The roles of a restricted emoji, of the emoji's own guild (composite keys).
CREATE TABLE guild_emoji_roles (
  emoji_id uuid NOT NULL,
  guild_id uuid NOT NULL,
  role_id uuid NOT NULL,
  PRIMARY KEY (emoji_id, role_id),
  FOREIGN KEY (emoji_id, guild_id) REFERENCES guild_emojis (id, guild_id) ON DELETE CASCADE,
  FOREIGN KEY (role_id, guild_id) REFERENCES roles (id, guild_id) ON DELETE CASCADE
);
CREATE INDEX guild_emoji_roles_role_id_guild_id_idx ON guild_emoji_roles (role_id, guild_id);

-- Per guild: how many static and animated emojis it holds (kept by the trigger).
CREATE TABLE guild_emoji_counts (
  guild_id uuid PRIMARY KEY REFERENCES guilds (id) ON DELETE CASCADE,
  static_count integer NOT NULL DEFAULT 0
    CONSTRAINT guild_emoji_counts_static_count_range CHECK (static_count >= 0),
  animated_count integer NOT NULL DEFAULT 0
    CONSTRAINT guild_emoji_counts_animated_count_range CHECK (animated_count >= 0)
);

CREATE FUNCTION guildstore_emojis_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  held integer;
  cap integer;
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO guild_emoji_counts AS c (guild_id, static_count, animated_count)
    VALUES (NEW.guild_id, (NOT NEW.animated)::int, NEW.animated::int)
    ON CONFLICT (guild_id) DO UPDATE
      SET static_count = c.static_count + excluded.static_count,
        animated_count = c.animated_count + excluded.animated_count
    RETURNING CASE WHEN NEW.animated THEN c.animated_count ELSE c.static_count END INTO held;
    SELECT CASE WHEN NEW.animated THEN g.max_emojis_animated ELSE g.max_emojis_static END INTO cap
    FROM guilds g WHERE g.id = NEW.guild_id;
    IF held > coalesce(cap, 50) THEN
      RAISE EXCEPTION 'a guild holds at most % % emojis', coalesce(cap, 50),
        CASE WHEN NEW.animated THEN 'animated' ELSE 'static' END
        USING ERRCODE = '23514', CONSTRAINT = 'guild_emoji_counts_emoji_limit',
          TABLE = 'guild_emoji_counts';
    END IF;
  ELSE
    UPDATE guild_emoji_counts
    SET static_count = static_count - (NOT OLD.animated)::int,
      animated_count = animated_count - OLD.animated::int
    WHERE guild_id = OLD.guild_id;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER guild_emojis_changed
AFTER INSERT OR DELETE ON guild_emojis
FOR EACH ROW EXECUTE FUNCTION guildstore_emojis_changed();

CREATE FUNCTION guildstore_emojis_immutable() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'guild_emojis.guild_id and animated cannot be updated'
    USING ERRCODE = 'check_violation', CONSTRAINT = 'guild_emojis_immutable';
END
$$;

CREATE TRIGGER guild_emojis_immutable
BEFORE UPDATE OF guild_id, animated ON guild_emojis
FOR EACH ROW
WHEN (NEW.guild_id IS DISTINCT FROM OLD.guild_id OR NEW.animated IS DISTINCT FROM OLD.animated)
EXECUTE FUNCTION guildstore_emojis_immutable();

ALTER TABLE message_reactions ADD COLUMN emoji_id uuid;
-- NOT VALID: every existing row has emoji_id NULL (nothing to check); every
-- write from now on is checked, and the cascade applies to every row.
ALTER TABLE message_reactions ADD CONSTRAINT message_reactions_emoji_id_fkey
  FOREIGN KEY (emoji_id) REFERENCES guild_emojis (id) ON DELETE CASCADE NOT VALID;
-- The cascade from a deleted emoji finds its reactions here. Built in the
-- migration's transaction (writes to message_reactions wait for the scan:
-- about 1 s per million reactions); the partial index holds no existing row.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX message_reactions_emoji_id_idx ON message_reactions (emoji_id) WHERE emoji_id IS NOT NULL;

-- A rename moves the emoji's reactions to 'new_name:id': deleted, then
-- inserted again (two statements, so 0005's triggers subtract before they
-- add: the distinct count of a message never rises), each keeping its
-- created_at, each emoji keeping its first_reacted_at (the message lists its
-- emojis in the same order). The caller holds the emoji row (FOR UPDATE) and
-- addReaction takes it FOR SHARE, so no reaction under the old name can
-- be added meanwhile.
CREATE FUNCTION guildstore_emoji_renamed() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  old_emoji text := OLD.name || ':' || OLD.id::text;
  new_emoji text := NEW.name || ':' || NEW.id::text;
  first_messages uuid[];
  first_at timestamptz[];
  moved_messages uuid[];
  moved_users uuid[];
  moved_at timestamptz[];
BEGIN
  SELECT array_agg(c.message_id), array_agg(c.first_reacted_at) INTO first_messages, first_at
  FROM message_reaction_counts c
  WHERE c.emoji = old_emoji
    AND c.message_id IN (SELECT r.message_id FROM message_reactions r WHERE r.emoji_id = OLD.id);
  WITH d AS (
    DELETE FROM message_reactions r WHERE r.emoji_id = OLD.id
    RETURNING r.message_id, r.user_id, r.created_at
  )
  SELECT array_agg(d.message_id), array_agg(d.user_id), array_agg(d.created_at)
  INTO moved_messages, moved_users, moved_at
  FROM d;
  IF moved_messages IS NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO message_reactions (message_id, emoji, user_id, created_at, emoji_id)
  SELECT m.message_id, new_emoji, m.user_id, m.created_at, NEW.id
  FROM unnest(moved_messages, moved_users, moved_at) AS m (message_id, user_id, created_at)
  ORDER BY m.message_id, m.user_id;
  UPDATE message_reaction_counts c
  SET first_reacted_at = f.first_reacted_at
  FROM unnest(first_messages, first_at) AS f (message_id, first_reacted_at)
  WHERE c.message_id = f.message_id AND c.emoji = new_emoji;
  RETURN NULL;
END
$$;

CREATE TRIGGER guild_emojis_renamed
AFTER UPDATE OF name ON guild_emojis
FOR EACH ROW
WHEN (NEW.name IS DISTINCT FROM OLD.name)
EXECUTE FUNCTION guildstore_emoji_renamed();
