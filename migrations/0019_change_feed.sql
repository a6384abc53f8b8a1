-- guildstore 0019: the durable change feed (issue 23).
--
-- Every change a user may be told about is an event row in guildstore_events,
-- written by a trigger in the change's own transaction (so a rolled-back or
-- refused change leaves no event), or by appendEvent for a host's own kinds.
-- See docs/events.md for the whole argument; in short:
--
-- Commit-time positions. An event is inserted with position NULL. A deferred
-- constraint trigger stamps the transaction's events at COMMIT, once per
-- transaction: it takes the feed's advisory lock SHARED (held to the end of the
-- transaction, and PostgreSQL releases locks only after the commit is visible
-- to other sessions), then numbers its rows from guildstore_event_positions.
-- A reader first takes the same lock EXCLUSIVELY for an instant
-- (guildstore_event_horizon): that waits only for transactions that are
-- stamping or committing right now, and while it holds the lock nobody can take
-- a position, so every position <= the sequence's last value then belongs to a
-- transaction that has finished (committed and visible, or rolled back). The
-- reader reads positions <= that horizon only, in a later statement (a fresh
-- snapshot). Hence: a reader that has seen position p never later finds an
-- event committed with a position <= p. Positions may have holes (a transaction
-- that fails after stamping); the guarantee is the order, not density.
-- No row is locked: senders in different channels of one guild share the lock.
--
-- Capture is by statement-level AFTER triggers over transition tables (one
-- INSERT … SELECT per statement, linear in its rows), except channels UPDATE,
-- which is row-level with a WHEN clause: every sendMessage bumps channels.last_seq
-- and a false WHEN costs nothing, while a statement trigger would build its
-- transition tables on every send.
--
-- Audience (read time, src/repositories/events.ts): user_id set = that user's
-- own stream; guild_id set = members of the guild now, and with channel_id set
-- only those who pass the access rule on the channel; guild_id NULL and
-- channel_id set = the DM's participants.
SET LOCAL lock_timeout = '10s';

CREATE SEQUENCE guildstore_event_positions AS bigint CACHE 1;

CREATE TABLE guildstore_events (
  id bigint GENERATED ALWAYS AS IDENTITY (CACHE 100) PRIMARY KEY,
  position bigint,
  type text NOT NULL CONSTRAINT guildstore_events_type_format CHECK (type ~ '^[a-z][a-z0-9_.]{0,63}$'),
  guild_id uuid,
  channel_id uuid,
  user_id uuid,
  data jsonb NOT NULL DEFAULT '{}' CONSTRAINT guildstore_events_data_object CHECK (jsonb_typeof(data) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  -- The writing transaction: its stamp finds its own rows by this key alone,
  -- never touching another transaction's (nor a row a disabled stamp left NULL).
  xact xid8 NOT NULL DEFAULT pg_current_xact_id()
);
-- The read paths: a guild's events, a user's own stream, a DM's events, all in
-- position order, all over stamped rows only.
CREATE UNIQUE INDEX guildstore_events_position_key ON guildstore_events (position)
  WHERE position IS NOT NULL;
CREATE INDEX guildstore_events_guild_idx ON guildstore_events (guild_id, position)
  WHERE position IS NOT NULL AND guild_id IS NOT NULL;
CREATE INDEX guildstore_events_user_idx ON guildstore_events (user_id, position)
  WHERE position IS NOT NULL AND user_id IS NOT NULL;
CREATE INDEX guildstore_events_dm_idx ON guildstore_events (channel_id, position)
  WHERE position IS NOT NULL AND guild_id IS NULL AND channel_id IS NOT NULL;
-- The stamp finds its transaction's rows here (an equality probe on its own
-- transaction id: the entries of other transactions, dead or alive, are not read).
-- A hash index: under SERIALIZABLE a probe takes its predicate lock on one hash
-- bucket, where a btree would lock the rightmost leaf page that every concurrent
-- transaction inserts its adjacent ids into (a false conflict at each commit).
CREATE INDEX guildstore_events_unstamped_idx ON guildstore_events USING hash (xact) WHERE position IS NULL;

-- The oldest resumable position: purgeEvents raises it; a token below it can
-- no longer be resumed (ResyncRequiredError).
CREATE TABLE guildstore_event_floor (
  one boolean PRIMARY KEY DEFAULT true CONSTRAINT guildstore_event_floor_one CHECK (one),
  floor bigint NOT NULL DEFAULT 0
);
INSERT INTO guildstore_event_floor (one, floor) VALUES (true, 0);

-- The feed's advisory lock key (one bigint; 'gsfeed' in ASCII).
CREATE FUNCTION guildstore_event_lock_key() RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 113723395974500::bigint $$;

-- Stamps this transaction's events (see the header). Fires per event row at
-- commit; the first firing numbers the transaction's unstamped rows and records the highest
-- id it stamped in a transaction-local setting, so the other firings return at
-- once. A row inserted after that (by a later deferred trigger, or after SET
-- CONSTRAINTS … IMMEDIATE) has a higher id and is stamped by its own firing.
-- With guildstore.event_notify = 'on' (ALTER DATABASE … SET, or per session)
-- it also notifies 'guildstore_events' (payload: the highest position stamped),
-- delivered at commit, never for a rollback: a hint for LISTENing subscribers.
-- Off by default: PostgreSQL serializes the commits of notifying transactions
-- (one lock for the whole cluster), which halved 16 senders' throughput here;
-- subscribers poll the sequence's head instead (docs/events.md).
CREATE FUNCTION guildstore_events_stamp() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  done bigint := coalesce(nullif(current_setting('guildstore.events_stamped', true), ''), '0')::bigint;
  top_id bigint;
  top_position bigint;
BEGIN
  IF NEW.id <= done THEN
    RETURN NULL;
  END IF;
  PERFORM pg_advisory_xact_lock_shared(guildstore_event_lock_key());
  WITH mine AS (
    SELECT id, row_number() OVER (ORDER BY id) AS n
    FROM guildstore_events WHERE xact = pg_current_xact_id() AND position IS NULL
  ), taken AS (
    SELECT p, row_number() OVER (ORDER BY p) AS n
    FROM (SELECT nextval('guildstore_event_positions') AS p
          FROM generate_series(1, (SELECT count(*) FROM mine))) s
  ), stamped AS (
    UPDATE guildstore_events e SET position = taken.p
    FROM mine JOIN taken USING (n)
    WHERE e.id = mine.id
    RETURNING e.id, e.position
  )
  SELECT max(id), max(position) INTO top_id, top_position FROM stamped;
  PERFORM set_config('guildstore.events_stamped', greatest(coalesce(top_id, 0), NEW.id)::text, true);
  IF top_position IS NOT NULL AND current_setting('guildstore.event_notify', true) = 'on' THEN
    PERFORM pg_notify('guildstore_events', top_position::text);
  END IF;
  RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER guildstore_events_stamp
  AFTER INSERT ON guildstore_events
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION guildstore_events_stamp();

-- The reader's horizon (see the header): every position <= the result belongs
-- to a finished transaction. Session-level lock, released before returning, so
-- it never stays held; call it in its own statement, before the read.
CREATE FUNCTION guildstore_event_horizon() RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  h bigint;
BEGIN
  PERFORM pg_advisory_lock(guildstore_event_lock_key());
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO h FROM guildstore_event_positions;
  PERFORM pg_advisory_unlock(guildstore_event_lock_key());
  RETURN h;
END
$$;

-- ---------------------------------------------------------------------------
-- Capture. Messages carry ids (+ seq); listEvents hydrates the live message at
-- read time, so a deleted message's content never comes back out of the feed.

CREATE FUNCTION guildstore_events_messages_insert() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO guildstore_events (type, guild_id, channel_id, data)
  SELECT 'message_created', c.guild_id, n.channel_id,
    jsonb_build_object('message_id', n.id, 'seq', n.seq::text, 'author_id', n.author_id)
  FROM new_rows n JOIN channels c ON c.id = n.channel_id
  ORDER BY n.channel_id, n.seq;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_messages_insert AFTER INSERT ON messages
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_messages_insert();

CREATE FUNCTION guildstore_events_messages_update() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO guildstore_events (type, guild_id, channel_id, data)
  SELECT CASE WHEN n.deleted_at IS NOT NULL AND o.deleted_at IS NULL THEN 'message_deleted'
    ELSE 'message_edited' END,
    c.guild_id, n.channel_id, jsonb_build_object('message_id', n.id, 'seq', n.seq::text)
  FROM new_rows n JOIN old_rows o ON o.id = n.id JOIN channels c ON c.id = n.channel_id
  WHERE (n.deleted_at IS NOT NULL AND o.deleted_at IS NULL)
    OR (n.deleted_at IS NULL AND (n.content IS DISTINCT FROM o.content
      OR n.edited_at IS DISTINCT FROM o.edited_at));
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_messages_update AFTER UPDATE ON messages
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_messages_update();

-- A purge. Rows removed by a cascade from their channel's deletion are not
-- announced one by one: channel_deleted says it.
CREATE FUNCTION guildstore_events_messages_delete() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO guildstore_events (type, guild_id, channel_id, data)
  SELECT 'message_purged', c.guild_id, o.channel_id, jsonb_build_object('message_id', o.id, 'seq', o.seq::text)
  FROM old_rows o JOIN channels c ON c.id = o.channel_id;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_messages_delete AFTER DELETE ON messages
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_messages_delete();

-- Reactions (message gone: not announced; its purge or delete was).
CREATE FUNCTION guildstore_events_reactions() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO guildstore_events (type, guild_id, channel_id, data)
    SELECT 'reaction_added', c.guild_id, m.channel_id, jsonb_build_object('message_id', r.message_id,
      'user_id', r.user_id, 'emoji', r.emoji, 'emoji_id', r.emoji_id)
    FROM new_rows r JOIN messages m ON m.id = r.message_id JOIN channels c ON c.id = m.channel_id;
  ELSE
    INSERT INTO guildstore_events (type, guild_id, channel_id, data)
    SELECT 'reaction_removed', c.guild_id, m.channel_id, jsonb_build_object('message_id', r.message_id,
      'user_id', r.user_id, 'emoji', r.emoji, 'emoji_id', r.emoji_id)
    FROM old_rows r JOIN messages m ON m.id = r.message_id JOIN channels c ON c.id = m.channel_id;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_reactions_insert AFTER INSERT ON message_reactions
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_reactions();
CREATE TRIGGER guildstore_events_reactions_delete AFTER DELETE ON message_reactions
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_reactions();

CREATE FUNCTION guildstore_events_pins() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO guildstore_events (type, guild_id, channel_id, data)
    SELECT 'message_pinned', c.guild_id, p.channel_id,
      jsonb_build_object('message_id', p.message_id, 'pinned_by', p.pinned_by)
    FROM new_rows p JOIN channels c ON c.id = p.channel_id;
  ELSE
    INSERT INTO guildstore_events (type, guild_id, channel_id, data)
    SELECT 'message_unpinned', c.guild_id, p.channel_id, jsonb_build_object('message_id', p.message_id)
    FROM old_rows p JOIN channels c ON c.id = p.channel_id
    WHERE EXISTS (SELECT 1 FROM messages m WHERE m.id = p.message_id);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_pins_insert AFTER INSERT ON message_pins
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_pins();
CREATE TRIGGER guildstore_events_pins_delete AFTER DELETE ON message_pins
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_pins();

-- Members. A removal is 'banned' when a ban for the pair stands in this
-- transaction, 'kicked' when the removing function set guildstore.event_reason
-- to 'kick' (removeGuildMember with an actor), else 'left'. The event carries
-- user_id, so the removed user hears it in their own stream, and nothing of
-- the guild afterwards.
CREATE FUNCTION guildstore_events_members() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO guildstore_events (type, guild_id, user_id, data)
    SELECT 'member_joined', m.guild_id, m.user_id, jsonb_build_object('user_id', m.user_id, 'nickname', m.nickname)
    FROM new_rows m;
  ELSE
    INSERT INTO guildstore_events (type, guild_id, user_id, data)
    SELECT 'member_removed', m.guild_id, m.user_id, jsonb_build_object('user_id', m.user_id,
      'reason', CASE
        WHEN EXISTS (SELECT 1 FROM guild_bans b WHERE b.guild_id = m.guild_id AND b.user_id = m.user_id) THEN 'banned'
        WHEN current_setting('guildstore.event_reason', true) = 'kick' THEN 'kicked'
        ELSE 'left' END)
    FROM old_rows m;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_members_insert AFTER INSERT ON guild_members
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_members();
CREATE TRIGGER guildstore_events_members_delete AFTER DELETE ON guild_members
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_members();

CREATE FUNCTION guildstore_events_bans() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO guildstore_events (type, guild_id, user_id, data)
    SELECT 'ban_added', b.guild_id, b.user_id, jsonb_build_object('user_id', b.user_id, 'expires_at', b.expires_at)
    FROM new_rows b;
  ELSE
    INSERT INTO guildstore_events (type, guild_id, user_id, data)
    SELECT 'ban_removed', b.guild_id, b.user_id, jsonb_build_object('user_id', b.user_id)
    FROM old_rows b;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_bans_insert AFTER INSERT ON guild_bans
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_bans();
CREATE TRIGGER guildstore_events_bans_delete AFTER DELETE ON guild_bans
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_bans();

-- Roles, whole (their permissions as text: a bigint may exceed JSON's safe range).
CREATE FUNCTION guildstore_events_roles() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO guildstore_events (type, guild_id, data)
    SELECT 'role_deleted', r.guild_id, jsonb_build_object('role_id', r.id)
    FROM old_rows r;
  ELSE
    INSERT INTO guildstore_events (type, guild_id, data)
    SELECT CASE TG_OP WHEN 'INSERT' THEN 'role_created' ELSE 'role_updated' END, r.guild_id,
      jsonb_build_object('role', jsonb_build_object('id', r.id, 'guild_id', r.guild_id, 'name', r.name,
        'permissions', r.permissions::text, 'position', r.position, 'is_default', r.is_default))
    FROM new_rows r;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_roles_insert AFTER INSERT ON roles
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_roles();
CREATE TRIGGER guildstore_events_roles_update AFTER UPDATE ON roles
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_roles();
CREATE TRIGGER guildstore_events_roles_delete AFTER DELETE ON roles
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_roles();

CREATE FUNCTION guildstore_events_member_roles() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO guildstore_events (type, guild_id, user_id, data)
    SELECT 'member_role_added', r.guild_id, r.user_id, jsonb_build_object('user_id', r.user_id, 'role_id', r.role_id)
    FROM new_rows r;
  ELSE
    INSERT INTO guildstore_events (type, guild_id, user_id, data)
    SELECT 'member_role_removed', r.guild_id, r.user_id, jsonb_build_object('user_id', r.user_id, 'role_id', r.role_id)
    FROM old_rows r;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_member_roles_insert AFTER INSERT ON member_roles
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_member_roles();
CREATE TRIGGER guildstore_events_member_roles_delete AFTER DELETE ON member_roles
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_member_roles();

-- Channels. created/updated are channel events (the access rule decides who
-- hears them: a private channel's name reaches only who may see it). A DM
-- channel is announced by dm_created instead. channel_deleted is a guild event
-- (nobody can pass the access rule on a channel that is gone).
CREATE FUNCTION guildstore_channel_event_data(c channels) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
  SELECT jsonb_build_object('channel', jsonb_build_object('id', c.id, 'guild_id', c.guild_id,
    'type', c.type, 'name', c.name, 'topic', c.topic, 'position', c.position, 'parent_id', c.parent_id,
    'is_private', c.is_private, 'rate_limit_per_user', c.rate_limit_per_user))
$$;

CREATE FUNCTION guildstore_events_channels_insert() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO guildstore_events (type, guild_id, channel_id, data)
  SELECT 'channel_created', c.guild_id, c.id, guildstore_channel_event_data(c)
  FROM new_rows c WHERE c.guild_id IS NOT NULL;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_channels_insert AFTER INSERT ON channels
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_channels_insert();

CREATE FUNCTION guildstore_events_channels_update() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO guildstore_events (type, guild_id, channel_id, data)
  VALUES ('channel_updated', NEW.guild_id, NEW.id, guildstore_channel_event_data(NEW));
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_channels_update AFTER UPDATE ON channels
  FOR EACH ROW
  WHEN (NEW.guild_id IS NOT NULL AND (OLD.name IS DISTINCT FROM NEW.name
    OR OLD.topic IS DISTINCT FROM NEW.topic OR OLD.position IS DISTINCT FROM NEW.position
    OR OLD.parent_id IS DISTINCT FROM NEW.parent_id OR OLD.is_private IS DISTINCT FROM NEW.is_private
    OR OLD.rate_limit_per_user IS DISTINCT FROM NEW.rate_limit_per_user
    OR OLD.type IS DISTINCT FROM NEW.type))
  EXECUTE FUNCTION guildstore_events_channels_update();

CREATE FUNCTION guildstore_events_channels_delete() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO guildstore_events (type, guild_id, data)
  SELECT 'channel_deleted', c.guild_id, jsonb_build_object('channel_id', c.id)
  FROM old_rows c
  WHERE c.guild_id IS NOT NULL;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_channels_delete AFTER DELETE ON channels
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_channels_delete();

-- Overwrites are guild events carrying ids and bits only: every member hears
-- that a channel's access may have changed (a member who lost the channel is
-- told so; one who gained it re-reads it), and nothing else of the channel.
CREATE FUNCTION guildstore_events_overwrites() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO guildstore_events (type, guild_id, data)
    SELECT 'overwrite_deleted', o.guild_id, jsonb_build_object('channel_id', o.channel_id,
      'overwrite_id', o.id, 'role_id', o.role_id, 'user_id', o.user_id)
    FROM old_rows o;
  ELSE
    INSERT INTO guildstore_events (type, guild_id, data)
    SELECT 'overwrite_set', o.guild_id, jsonb_build_object('channel_id', o.channel_id,
      'overwrite_id', o.id, 'role_id', o.role_id, 'user_id', o.user_id,
      'allow', o.allow::text, 'deny', o.deny::text)
    FROM new_rows o;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_overwrites_insert AFTER INSERT ON channel_overwrites
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_overwrites();
CREATE TRIGGER guildstore_events_overwrites_update AFTER UPDATE ON channel_overwrites
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_overwrites();
CREATE TRIGGER guildstore_events_overwrites_delete AFTER DELETE ON channel_overwrites
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_overwrites();

-- Invites: ids and counts, never the code (who may list codes is MANAGE_GUILD's).
CREATE FUNCTION guildstore_events_invites() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO guildstore_events (type, guild_id, data)
    SELECT 'invite_created', i.guild_id, jsonb_build_object('invite_id', i.id, 'inviter_id', i.inviter_id,
      'max_uses', i.max_uses, 'expires_at', i.expires_at)
    FROM new_rows i;
  ELSE
    INSERT INTO guildstore_events (type, guild_id, data)
    SELECT CASE WHEN n.revoked_at IS NOT NULL AND o.revoked_at IS NULL THEN 'invite_revoked' ELSE 'invite_used' END,
      n.guild_id, jsonb_build_object('invite_id', n.id, 'uses', n.uses)
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE (n.revoked_at IS NOT NULL AND o.revoked_at IS NULL) OR n.uses > o.uses;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_invites_insert AFTER INSERT ON guild_invites
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_invites();
CREATE TRIGGER guildstore_events_invites_update AFTER UPDATE ON guild_invites
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_invites();

-- A DM conversation: a DM channel event (its participants hear it).
CREATE FUNCTION guildstore_events_dms() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO guildstore_events (type, channel_id, data)
  SELECT 'dm_created', d.id, jsonb_build_object('channel_id', d.id, 'user_a', d.user_a, 'user_b', d.user_b)
  FROM new_rows d;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_dms_insert AFTER INSERT ON dm_channels
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_dms();

-- Friendships and blocks: a row is one user's side (user_id -> friend_id).
-- Both users hear of a request or a friendship; a block only its author (the
-- blocked user is not told, as in Discord).
CREATE FUNCTION guildstore_events_friendships() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO guildstore_events (type, user_id, data)
    SELECT 'relationship_removed', x.uid, jsonb_build_object('user_id', f.user_id, 'friend_id', f.friend_id,
      'status', f.status)
    FROM old_rows f CROSS JOIN LATERAL (VALUES (f.user_id), (f.friend_id)) x (uid)
    WHERE x.uid = f.user_id OR f.status <> 'blocked';
  ELSE
    INSERT INTO guildstore_events (type, user_id, data)
    SELECT 'relationship_set', x.uid, jsonb_build_object('user_id', f.user_id, 'friend_id', f.friend_id,
      'status', f.status)
    FROM new_rows f CROSS JOIN LATERAL (VALUES (f.user_id), (f.friend_id)) x (uid)
    WHERE x.uid = f.user_id OR f.status <> 'blocked';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_friendships_insert AFTER INSERT ON friendships
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_friendships();
CREATE TRIGGER guildstore_events_friendships_update AFTER UPDATE ON friendships
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_friendships();
CREATE TRIGGER guildstore_events_friendships_delete AFTER DELETE ON friendships
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_friendships();

-- Read markers: the user's own stream (their other devices).
CREATE FUNCTION guildstore_events_read_states() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO guildstore_events (type, user_id, data)
  SELECT 'read_state_updated', r.user_id, jsonb_build_object('channel_id', r.channel_id,
    'last_read_message_id', r.last_read_message_id, 'last_read_seq', r.last_read_seq::text)
  FROM new_rows r;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_read_states_insert AFTER INSERT ON channel_read_states
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_read_states();
CREATE TRIGGER guildstore_events_read_states_update AFTER UPDATE ON channel_read_states
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_read_states();

CREATE FUNCTION guildstore_events_dm_read() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO guildstore_events (type, user_id, data)
  SELECT 'read_state_updated', n.user_id, jsonb_build_object('channel_id', n.channel_id,
    'last_read_message_id', n.last_read_message_id)
  FROM new_rows n JOIN old_rows o ON o.channel_id = n.channel_id AND o.user_id = n.user_id
  WHERE n.last_read_message_id IS DISTINCT FROM o.last_read_message_id;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_dm_read AFTER UPDATE ON dm_participants
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_dm_read();

-- Custom emojis: guild events.
CREATE FUNCTION guildstore_events_emojis() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO guildstore_events (type, guild_id, data)
    SELECT 'emoji_deleted', e.guild_id, jsonb_build_object('emoji_id', e.id)
    FROM old_rows e;
  ELSE
    INSERT INTO guildstore_events (type, guild_id, data)
    SELECT CASE TG_OP WHEN 'INSERT' THEN 'emoji_created' ELSE 'emoji_updated' END, e.guild_id,
      jsonb_build_object('emoji', jsonb_build_object('id', e.id, 'name', e.name,
        'animated', e.animated, 'restricted', e.restricted))
    FROM new_rows e;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER guildstore_events_emojis_insert AFTER INSERT ON guild_emojis
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_emojis();
CREATE TRIGGER guildstore_events_emojis_update AFTER UPDATE ON guild_emojis
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_emojis();
CREATE TRIGGER guildstore_events_emojis_delete AFTER DELETE ON guild_emojis
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION guildstore_events_emojis();
