-- guildstore 0006: one lock point for authorized sends (channels.access_version).
--
-- sendMessage checks the author's permissions and inserts in ONE statement, and
-- must never commit after a revocation that its check did not see. Until now it
-- locked every row its check read (the guild, the author's membership and role
-- assignments, the @everyone and assigned roles), so all senders of a guild
-- share-locked the same guild and role rows: every concurrent share lock made a
-- new MultiXact and a WAL record on the same pages.
--
-- Now every change that can take a permission away from someone in a channel
-- increments channels.access_version of each channel it affects, in the same
-- transaction (the triggers below, whatever the path: library or plain SQL).
-- sendMessage locks only the channel row (its insert takes that row anyway, for
-- the message position) and compares (type, guild_id, is_private,
-- access_version) with what its snapshot read: a revocation that committed
-- after the snapshot, or is still uncommitted and holds the row, shows up as a
-- different version and the send runs again with a fresh snapshot; one that
-- comes later waits for the send to commit. docs/messages.md has the argument.
--
-- What bumps which channels:
--   role permissions losing a bit, a role deleted, a role unassigned, a member
--   removed (kick, ban, leave, account deleted), guild ownership transferred:
--   every channel of the guild;
--   an overwrite created, changed or deleted (0005 set updated_at; now also the
--   version), a private-channel member removed: that channel;
--   a DM participant removed, a block between the two users of a DM: that DM.
-- Grants (a new role, an assignment, more bits) bump nothing: they cannot make
-- a send that was allowed wrong. Channels are locked in id order, so two
-- revocations in one guild never deadlock on them.
SET LOCAL lock_timeout = '10s';

ALTER TABLE channels ADD COLUMN access_version bigint NOT NULL DEFAULT 0;

-- Every channel of the guilds in the transition table `changed` (guild_id).
CREATE FUNCTION guildstore_touch_guild_channels() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM 1 FROM channels c
  WHERE c.guild_id IN (SELECT t.guild_id FROM changed t)
  ORDER BY c.id
  FOR NO KEY UPDATE;
  UPDATE channels c SET access_version = c.access_version + 1
  WHERE c.guild_id IN (SELECT t.guild_id FROM changed t);
  RETURN NULL;
END
$$;

-- The channels in the transition table `changed` (channel_id).
CREATE FUNCTION guildstore_touch_channels() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM 1 FROM channels c
  WHERE c.id IN (SELECT t.channel_id FROM changed t)
  ORDER BY c.id
  FOR NO KEY UPDATE;
  UPDATE channels c SET access_version = c.access_version + 1
  WHERE c.id IN (SELECT t.channel_id FROM changed t);
  RETURN NULL;
END
$$;

-- Roles whose permissions lost a bit (or that stopped or started being the
-- default role): every channel of their guilds.
CREATE FUNCTION guildstore_touch_channels_roles_updated() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM 1 FROM channels c
  WHERE c.guild_id IN (
    SELECT o.guild_id FROM old_roles o JOIN new_roles n ON n.id = o.id
    WHERE (o.permissions & ~n.permissions) <> 0 OR o.is_default <> n.is_default
  )
  ORDER BY c.id
  FOR NO KEY UPDATE;
  UPDATE channels c SET access_version = c.access_version + 1
  WHERE c.guild_id IN (
    SELECT o.guild_id FROM old_roles o JOIN new_roles n ON n.id = o.id
    WHERE (o.permissions & ~n.permissions) <> 0 OR o.is_default <> n.is_default
  );
  RETURN NULL;
END
$$;

-- Guilds whose owner changed: the former owner loses what ownership gave.
CREATE FUNCTION guildstore_touch_channels_owner_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM 1 FROM channels c
  WHERE c.guild_id IN (
    SELECT o.id FROM old_guilds o JOIN new_guilds n ON n.id = o.id WHERE o.owner_id <> n.owner_id
  )
  ORDER BY c.id
  FOR NO KEY UPDATE;
  UPDATE channels c SET access_version = c.access_version + 1
  WHERE c.guild_id IN (
    SELECT o.id FROM old_guilds o JOIN new_guilds n ON n.id = o.id WHERE o.owner_id <> n.owner_id
  );
  RETURN NULL;
END
$$;

-- A block (new or changed friendship row with status 'blocked'): the DM
-- channel of the pair, if there is one.
CREATE FUNCTION guildstore_touch_dm_on_block() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM 1 FROM channels c
  WHERE c.id IN (
    SELECT d.id FROM changed f JOIN dm_channels d
      ON d.user_a = least(f.user_id, f.friend_id) AND d.user_b = greatest(f.user_id, f.friend_id)
    WHERE f.status = 'blocked'
  )
  ORDER BY c.id
  FOR NO KEY UPDATE;
  UPDATE channels c SET access_version = c.access_version + 1
  WHERE c.id IN (
    SELECT d.id FROM changed f JOIN dm_channels d
      ON d.user_a = least(f.user_id, f.friend_id) AND d.user_b = greatest(f.user_id, f.friend_id)
    WHERE f.status = 'blocked'
  );
  RETURN NULL;
END
$$;

CREATE TRIGGER guild_members_deleted_touch_channels
AFTER DELETE ON guild_members
REFERENCING OLD TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_guild_channels();

CREATE TRIGGER member_roles_deleted_touch_channels
AFTER DELETE ON member_roles
REFERENCING OLD TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_guild_channels();

CREATE TRIGGER roles_deleted_touch_channels
AFTER DELETE ON roles
REFERENCING OLD TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_guild_channels();

CREATE TRIGGER roles_updated_touch_channels
AFTER UPDATE ON roles
REFERENCING OLD TABLE AS old_roles NEW TABLE AS new_roles
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_channels_roles_updated();

CREATE TRIGGER guilds_owner_changed_touch_channels
AFTER UPDATE ON guilds
REFERENCING OLD TABLE AS old_guilds NEW TABLE AS new_guilds
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_channels_owner_changed();

CREATE TRIGGER channel_members_deleted_touch_channels
AFTER DELETE ON channel_members
REFERENCING OLD TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_channels();

CREATE TRIGGER dm_participants_deleted_touch_channels
AFTER DELETE ON dm_participants
REFERENCING OLD TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_channels();

CREATE TRIGGER friendships_inserted_touch_dm
AFTER INSERT ON friendships
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_dm_on_block();

CREATE TRIGGER friendships_updated_touch_dm
AFTER UPDATE ON friendships
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_dm_on_block();

-- Overwrite changes (0005's triggers) now also bump the version, so that a
-- channel rename (updated_at) no longer makes concurrent sends run twice.
CREATE OR REPLACE FUNCTION guildstore_overwrite_touches_channel() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM 1 FROM channels c
  WHERE c.id IN (SELECT channel_id FROM changed_overwrites)
  ORDER BY c.id
  FOR NO KEY UPDATE;
  UPDATE channels SET updated_at = clock_timestamp(), access_version = access_version + 1
  WHERE id IN (SELECT channel_id FROM changed_overwrites);
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION guildstore_overwrite_touches_channel_on_update() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM 1 FROM channels c
  WHERE c.id IN (SELECT channel_id FROM new_overwrites UNION SELECT channel_id FROM old_overwrites)
  ORDER BY c.id
  FOR NO KEY UPDATE;
  UPDATE channels SET updated_at = clock_timestamp(), access_version = access_version + 1
  WHERE id IN (SELECT channel_id FROM new_overwrites UNION SELECT channel_id FROM old_overwrites);
  RETURN NULL;
END
$$;
