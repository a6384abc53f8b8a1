-- guildstore 0022: forum channels (issue 24, item 3).
--
-- A 'forum' channel holds no messages of its own: its posts are public threads
-- (migration 0021) started with a message in them, listed by last activity.
-- channels.last_message_at is the post's last activity: set when the post is
-- created and on each message (a row trigger on the position update, whose
-- WHEN is false for every other channel, so their sends stay as they were).
--
-- Tags: forum_tags rows of the forum (at most 20 per forum, exact under races:
-- a counter row per forum, raised in the insert's statement), applied to a post
-- through post_tags (foreign keys to the post and the tag, so no stale ids; a
-- tag of another forum is refused; at most 5 per post). A moderated tag is
-- applied or removed only by MANAGE_THREADS holders, and a forum with
-- require_tag takes no post without a tag (both decided by the library).
SET LOCAL lock_timeout = '10s';

-- squawk-ignore require-enum-value-ordering
ALTER TYPE channel_type ADD VALUE IF NOT EXISTS 'forum';

ALTER TABLE channels
  ADD COLUMN require_tag boolean NOT NULL DEFAULT false,
  ADD COLUMN last_message_at timestamptz;
-- New: false and NULL in every row, so NOT VALID is only squawk's form.
ALTER TABLE channels ADD CONSTRAINT channels_require_tag_forum
  CHECK (NOT require_tag OR type::text = 'forum') NOT VALID;
-- A forum's posts by last activity (a column NULL in every existing row: the
-- build reads the table once and writes nothing).
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX channels_forum_posts_idx ON channels (parent_id, last_message_at DESC, id DESC)
  WHERE last_message_at IS NOT NULL;

CREATE TABLE forum_tags (
  id uuid PRIMARY KEY DEFAULT guildstore_uuidv7(),
  channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  name text NOT NULL CONSTRAINT forum_tags_name_length CHECK (char_length(name) BETWEEN 1 AND 20),
  emoji text CONSTRAINT forum_tags_emoji_length CHECK (char_length(emoji) BETWEEN 1 AND 64),
  moderated boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT forum_tags_channel_name_key UNIQUE (channel_id, name)
);

CREATE TABLE post_tags (
  thread_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  tag_id uuid NOT NULL REFERENCES forum_tags (id) ON DELETE CASCADE,
  PRIMARY KEY (thread_id, tag_id)
);
CREATE INDEX post_tags_tag_id_idx ON post_tags (tag_id);

CREATE TABLE guildstore_forum_tag_counts (
  channel_id uuid PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
  tags integer NOT NULL
);

-- Tags only on forums; one slot of the forum's counter per new tag (at most
-- 20), given back on delete.
CREATE FUNCTION guildstore_forum_tags_counted() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  taken integer;
BEGIN
  IF TG_OP = 'DELETE' THEN
    UPDATE guildstore_forum_tag_counts SET tags = tags - 1 WHERE channel_id = OLD.channel_id;
    RETURN NULL;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM channels WHERE id = NEW.channel_id AND type::text = 'forum') THEN
    RAISE EXCEPTION 'tags belong to forum channels'
      USING ERRCODE = '23514', CONSTRAINT = 'forum_tags_forum', TABLE = 'forum_tags';
  END IF;
  INSERT INTO guildstore_forum_tag_counts AS c (channel_id, tags) VALUES (NEW.channel_id, 1)
  ON CONFLICT (channel_id) DO UPDATE SET tags = c.tags + 1
  RETURNING c.tags INTO taken;
  IF taken > 20 THEN
    RAISE EXCEPTION 'a forum has at most 20 tags'
      USING ERRCODE = '23514', CONSTRAINT = 'forum_tags_limit', TABLE = 'forum_tags';
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER forum_tags_inserted_counted
AFTER INSERT ON forum_tags
FOR EACH ROW EXECUTE FUNCTION guildstore_forum_tags_counted();

CREATE TRIGGER forum_tags_deleted_counted
AFTER DELETE ON forum_tags
FOR EACH ROW EXECUTE FUNCTION guildstore_forum_tags_counted();

-- A post's tags are tags of its forum, at most 5 (checked after the statement,
-- on every post it touched; writers lock the post first).
CREATE FUNCTION guildstore_post_tags_checked() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF EXISTS (
    SELECT 1 FROM changed n
    JOIN channels t ON t.id = n.thread_id
    JOIN forum_tags g ON g.id = n.tag_id
    WHERE g.channel_id IS DISTINCT FROM t.parent_id
  ) THEN
    RAISE EXCEPTION 'a post''s tags are tags of its forum'
      USING ERRCODE = '23514', CONSTRAINT = 'post_tags_forum', TABLE = 'post_tags';
  END IF;
  IF EXISTS (
    SELECT 1 FROM post_tags p
    WHERE p.thread_id IN (SELECT n.thread_id FROM changed n)
    GROUP BY p.thread_id HAVING count(*) > 5
  ) THEN
    RAISE EXCEPTION 'a post has at most 5 tags'
      USING ERRCODE = '23514', CONSTRAINT = 'post_tags_limit', TABLE = 'post_tags';
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER post_tags_inserted_checked
AFTER INSERT ON post_tags
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_post_tags_checked();

-- A forum post: a public thread, not started from a message, with a last
-- activity from its creation on.
CREATE FUNCTION guildstore_forum_post_structure() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM channels WHERE id = NEW.parent_id AND type::text = 'forum') THEN
    IF NEW.type::text <> 'public_thread' OR NEW.starter_message_id IS NOT NULL THEN
      RAISE EXCEPTION 'a forum post is a public thread with its own first message'
        USING ERRCODE = '23514', CONSTRAINT = 'channels_forum_post', TABLE = 'channels';
    END IF;
    NEW.last_message_at := statement_timestamp();
  END IF;
  RETURN NEW;
END
$$;

-- (Named to run after 0021's channels_threads_structure, which checks the parent.)
CREATE TRIGGER channels_threads_structure_forum
BEFORE INSERT ON channels
FOR EACH ROW
WHEN (NEW.auto_archive_minutes IS NOT NULL)
EXECUTE FUNCTION guildstore_forum_post_structure();

-- On a message's position update: a post's last activity moves; a forum
-- itself takes no message (the same refusal as a category's, 0018).
CREATE FUNCTION guildstore_forum_activity() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF OLD.type::text = 'forum' THEN
    RAISE EXCEPTION 'a forum holds no messages of its own'
      USING ERRCODE = '23514', CONSTRAINT = 'messages_channel_kind', TABLE = 'messages';
  END IF;
  NEW.last_message_at := statement_timestamp();
  RETURN NEW;
END
$$;

CREATE TRIGGER channels_forum_activity
BEFORE UPDATE OF last_seq ON channels
FOR EACH ROW
WHEN (NEW.last_seq > OLD.last_seq AND (OLD.last_message_at IS NOT NULL OR OLD.type::text = 'forum'))
EXECUTE FUNCTION guildstore_forum_activity();
