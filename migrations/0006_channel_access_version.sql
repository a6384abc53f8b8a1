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
--   an overwrite created, changed or deleted (also its updated_at: overwrites
--   are part of the channel), a private-channel member removed: that channel;
--   a DM participant removed, a block between the two users of a DM: that DM.
-- Grants (a new role, an assignment, more bits) bump nothing: they cannot make
-- a send that was allowed wrong. Channels are locked in id order, so two
-- revocations in one guild never deadlock on them.
SET LOCAL lock_timeout = '10s';

ALTER TABLE channels ADD COLUMN access_version bigint NOT NULL DEFAULT 0;

-- Bumps the given channels, locking them in id order first: every trigger
-- below goes through here, so two revocations never deadlock on channel rows.
CREATE FUNCTION guildstore_bump_channels(ids uuid[], touch_updated_at boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM 1 FROM channels c WHERE c.id = ANY (ids) ORDER BY c.id FOR NO KEY UPDATE;
  UPDATE channels c SET access_version = c.access_version + 1,
    updated_at = CASE WHEN touch_updated_at THEN clock_timestamp() ELSE c.updated_at END
  WHERE c.id = ANY (ids);
END
$$;

-- Every channel of the guilds in the transition table `changed` (guild_id).
CREATE FUNCTION guildstore_touch_guild_channels() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_channels(ARRAY(
    SELECT c.id FROM channels c WHERE c.guild_id IN (SELECT t.guild_id FROM changed t)));
  RETURN NULL;
END
$$;

-- The channels in the transition table `changed` (channel_id).
CREATE FUNCTION guildstore_touch_channels() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_channels(ARRAY(SELECT t.channel_id FROM changed t));
  RETURN NULL;
END
$$;

-- Roles whose permissions lost a bit (or that stopped or started being the
-- default role): every channel of their guilds.
CREATE FUNCTION guildstore_touch_channels_roles_updated() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_channels(ARRAY(
    SELECT c.id FROM channels c WHERE c.guild_id IN (
      SELECT o.guild_id FROM old_roles o JOIN new_roles n ON n.id = o.id
      WHERE (o.permissions & ~n.permissions) <> 0 OR o.is_default <> n.is_default)));
  RETURN NULL;
END
$$;

-- Guilds whose owner changed: the former owner loses what ownership gave.
CREATE FUNCTION guildstore_touch_channels_owner_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_channels(ARRAY(
    SELECT c.id FROM channels c WHERE c.guild_id IN (
      SELECT o.id FROM old_guilds o JOIN new_guilds n ON n.id = o.id
      WHERE o.owner_id <> n.owner_id)));
  RETURN NULL;
END
$$;

-- A block (new or changed friendship row with status 'blocked'): the DM
-- channel of the pair, if there is one.
CREATE FUNCTION guildstore_touch_dm_on_block() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_channels(ARRAY(
    SELECT d.id FROM changed f JOIN dm_channels d
      ON d.user_a = least(f.user_id, f.friend_id) AND d.user_b = greatest(f.user_id, f.friend_id)
    WHERE f.status = 'blocked'));
  RETURN NULL;
END
$$;

-- An overwrite created, changed or deleted: its channel, and the channel's
-- updated_at (overwrites are part of the channel's settings).
CREATE FUNCTION guildstore_touch_overwritten_channels() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_channels(ARRAY(SELECT t.channel_id FROM changed t), true);
  RETURN NULL;
END
$$;

CREATE FUNCTION guildstore_touch_overwritten_channels_on_update() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_channels(ARRAY(
    SELECT t.channel_id FROM new_overwrites t UNION SELECT t.channel_id FROM old_overwrites t), true);
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

CREATE TRIGGER channel_overwrites_inserted_touch_channels
AFTER INSERT ON channel_overwrites
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_overwritten_channels();

CREATE TRIGGER channel_overwrites_deleted_touch_channels
AFTER DELETE ON channel_overwrites
REFERENCING OLD TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_overwritten_channels();

CREATE TRIGGER channel_overwrites_updated_touch_channels
AFTER UPDATE ON channel_overwrites
REFERENCING NEW TABLE AS new_overwrites OLD TABLE AS old_overwrites
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_overwritten_channels_on_update();
