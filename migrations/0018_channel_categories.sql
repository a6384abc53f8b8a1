-- guildstore 0018: channel categories (issue 24, item 1).
--
-- A guild channel may sit in a category: a channel of type 'category', of the
-- same guild, named by channels.parent_id. A category has no parent, holds no
-- messages, and its overwrites are a template: a channel is "synced" while its
-- overwrites equal its category's (derived when listed, never stored), and
-- syncChannelPermissions copies them. Nothing is inherited at read time: a
-- channel's access is its own overwrites, so moving a channel never changes who
-- can see it; only a sync does, under the overwrite rules.
--
-- Limits (Discord's, as defaults, per guild): guilds.max_channels (500) and
-- guilds.max_channels_per_category (50). Each is exact under concurrent
-- creates and moves: a counter row per guild and per category
-- (guildstore_channel_counts), raised by a conditional UPDATE in the insert's
-- or move's own statement, so two transactions cannot both take the last slot
-- (the second waits on the row, then sees the first's count).
SET LOCAL lock_timeout = '10s';

-- The new enum value cannot be used as a value in this transaction: the
-- constraints and functions below compare type::text.
-- squawk-ignore require-enum-value-ordering
ALTER TYPE channel_type ADD VALUE IF NOT EXISTS 'category';

ALTER TABLE guilds
  ADD COLUMN max_channels integer NOT NULL DEFAULT 500
    CONSTRAINT guilds_max_channels_range CHECK (max_channels BETWEEN 1 AND 10000),
  ADD COLUMN max_channels_per_category integer NOT NULL DEFAULT 50
    CONSTRAINT guilds_max_channels_per_category_range CHECK (max_channels_per_category BETWEEN 1 AND 1000);

ALTER TABLE channels ADD COLUMN parent_id uuid;
-- New and empty: no row to check, so NOT VALID is only squawk's form.
ALTER TABLE channels ADD CONSTRAINT channels_parent_id_fkey
  FOREIGN KEY (parent_id) REFERENCES channels (id) ON DELETE SET NULL NOT VALID;
ALTER TABLE channels ADD CONSTRAINT channels_parent_kind
  CHECK (parent_id IS NULL OR type::text NOT IN ('category', 'dm')) NOT VALID;
ALTER TABLE channels ADD CONSTRAINT channels_not_own_parent
  CHECK (parent_id IS DISTINCT FROM id) NOT VALID;
-- Partial over a column that is NULL in every existing row: the build reads the
-- table once and writes nothing.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX channels_parent_id_idx ON channels (parent_id) WHERE parent_id IS NOT NULL;

-- How many guild channels a guild holds (scope = the guild's id), and how many
-- channels a category holds (scope = the category's id).
CREATE TABLE guildstore_channel_counts (
  scope_id uuid PRIMARY KEY,
  channels integer NOT NULL
);

INSERT INTO guildstore_channel_counts (scope_id, channels)
SELECT guild_id, count(*)::integer FROM channels WHERE guild_id IS NOT NULL GROUP BY guild_id;

-- Takes one slot of a scope, or raises 23514 with the limit's constraint name.
CREATE FUNCTION guildstore_take_channel_slot(scope uuid, cap integer, limit_name text) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  taken integer;
BEGIN
  INSERT INTO guildstore_channel_counts AS c (scope_id, channels) VALUES (scope, 1)
  ON CONFLICT (scope_id) DO UPDATE SET channels = c.channels + 1
  RETURNING c.channels INTO taken;
  IF taken > cap THEN
    RAISE EXCEPTION 'the limit of % channels is reached', cap
      USING ERRCODE = '23514', CONSTRAINT = limit_name, TABLE = 'channels';
  END IF;
END
$$;

-- Checks a guild channel's parent (a category of the same guild; locked
-- against deletion by the foreign key's KEY SHARE) and keeps the counts.
CREATE FUNCTION guildstore_channels_structure() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  parent_guild uuid;
  parent_type text;
  caps record;
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.parent_id IS NOT NULL
    AND (TG_OP = 'INSERT' OR NEW.parent_id IS DISTINCT FROM OLD.parent_id
      OR NEW.guild_id IS DISTINCT FROM OLD.guild_id) THEN
    SELECT guild_id, type::text INTO parent_guild, parent_type
    FROM channels WHERE id = NEW.parent_id FOR KEY SHARE;
    IF parent_type IS DISTINCT FROM 'category' OR parent_guild IS DISTINCT FROM NEW.guild_id THEN
      RAISE EXCEPTION 'a channel''s parent must be a category of its guild'
        USING ERRCODE = '23514', CONSTRAINT = 'channels_parent_category', TABLE = 'channels';
    END IF;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.guild_id IS NOT NULL THEN
      SELECT max_channels, max_channels_per_category INTO caps FROM guilds WHERE id = NEW.guild_id;
      PERFORM guildstore_take_channel_slot(NEW.guild_id, coalesce(caps.max_channels, 500),
        'channels_guild_limit');
      IF NEW.parent_id IS NOT NULL THEN
        PERFORM guildstore_take_channel_slot(NEW.parent_id,
          coalesce(caps.max_channels_per_category, 50), 'channels_category_limit');
      END IF;
    END IF;
    RETURN NEW;
  ELSIF TG_OP = 'UPDATE' THEN
    IF NEW.parent_id IS DISTINCT FROM OLD.parent_id THEN
      IF OLD.parent_id IS NOT NULL THEN
        UPDATE guildstore_channel_counts SET channels = channels - 1 WHERE scope_id = OLD.parent_id;
      END IF;
      IF NEW.parent_id IS NOT NULL THEN
        SELECT max_channels_per_category INTO caps FROM guilds WHERE id = NEW.guild_id;
        PERFORM guildstore_take_channel_slot(NEW.parent_id,
          coalesce(caps.max_channels_per_category, 50), 'channels_category_limit');
      END IF;
    END IF;
    RETURN NEW;
  ELSE
    IF OLD.guild_id IS NOT NULL THEN
      UPDATE guildstore_channel_counts SET channels = channels - 1 WHERE scope_id = OLD.guild_id;
    END IF;
    IF OLD.parent_id IS NOT NULL THEN
      UPDATE guildstore_channel_counts SET channels = channels - 1 WHERE scope_id = OLD.parent_id;
    END IF;
    IF OLD.type::text = 'category' THEN
      DELETE FROM guildstore_channel_counts WHERE scope_id = OLD.id;
    END IF;
    RETURN OLD;
  END IF;
END
$$;

CREATE TRIGGER channels_structure
BEFORE INSERT OR UPDATE OF parent_id, guild_id OR DELETE ON channels
FOR EACH ROW EXECUTE FUNCTION guildstore_channels_structure();

-- A guild's counter row goes with the guild.
CREATE FUNCTION guildstore_guild_channel_counts_gone() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  DELETE FROM guildstore_channel_counts WHERE scope_id = OLD.id;
  RETURN NULL;
END
$$;

CREATE TRIGGER guilds_channel_counts_gone
AFTER DELETE ON guilds
FOR EACH ROW EXECUTE FUNCTION guildstore_guild_channel_counts_gone();

-- A category holds no messages: the position functions refuse it with a
-- CHECK violation (constraint messages_channel_kind) before anything is taken.
CREATE OR REPLACE FUNCTION guildstore_message_seq() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  UPDATE channels SET last_seq = last_seq + 1
  WHERE id = NEW.channel_id AND type::text <> 'category'
  RETURNING last_seq INTO NEW.seq;
  IF NEW.seq IS NULL THEN
    PERFORM guildstore_refuse_message_channel(NEW.channel_id);
  END IF;
  RETURN NEW;
END
$$;

-- Raises the error for a message in a channel that cannot take one: a
-- category (23514) or none at all (23503, as the foreign key would).
CREATE FUNCTION guildstore_refuse_message_channel(channel uuid) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM channels WHERE id = channel AND type::text = 'category') THEN
    RAISE EXCEPTION 'a category holds no messages'
      USING ERRCODE = '23514', CONSTRAINT = 'messages_channel_kind', TABLE = 'messages';
  END IF;
  RAISE EXCEPTION 'insert or update on table "messages" violates foreign key constraint "messages_channel_id_fkey"'
    USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'messages_channel_id_fkey',
      TABLE = 'messages', DETAIL = 'Key (channel_id) is not present in table "channels".';
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
  UPDATE channels SET last_seq = last_seq + 1
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
