-- guildstore 0007: a cache of members' permissions per channel, valid while the
-- channel's access_version is unchanged, and two revocations 0006 missed.
--
-- sendMessage and readChannelMessages computed the user's permissions in the
-- channel (about 15 relations: membership, roles, overwrites, privacy) on every
-- call. Now the first authorized call of a user in a channel stores what it
-- computed, with the channel's access_version it read, in
-- channel_permission_cache; later calls read that one row and use it only while
-- the channel's access_version is still the same (a send compares it on the
-- locked channel row, so a revocation that commits first always wins).
--
-- Why a stored value stays sound while the version is unchanged: every change
-- that can take a bit away from anyone in a channel increments that channel's
-- access_version in the same transaction (0006 and below). Changes that do not
-- (a role or bits added, an assignment of a role without deny overwrites, a
-- member or a private-channel member added, a block lifted) only add bits, so
-- the stored value is a subset of the current one: a call whose bits are all in
-- it is allowed now; any other call computes the rule in full (and refreshes
-- the row). The library never trusts a row for bits it does not hold.
--
-- Two revocations that 0006 did not bump, closed here (they affected the
-- previous version guard too):
--   * assigning a role that has a deny overwrite in a channel takes those bits
--     away there (member_roles insert): those channels are bumped;
--   * a channel turned private, or changing type or guild (channels update):
--     that channel is bumped (a BEFORE trigger, so it costs nothing on the
--     message-position update every send makes).
SET LOCAL lock_timeout = '10s';

-- One row per (channel, user) that has made an authorized call there; never
-- read by anything but the authorized calls, never trusted beyond its version.
CREATE TABLE channel_permission_cache (
  channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- channels.access_version when `permissions` was computed.
  access_version bigint NOT NULL,
  -- The user's permissions in the channel then (for a DM: VIEW_CHANNEL and
  -- READ_MESSAGE_HISTORY for a participant, with SEND_MESSAGES and
  -- MENTION_EVERYONE while no block stands between the two users).
  permissions bigint NOT NULL,
  PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_permission_cache_user_id_idx ON channel_permission_cache (user_id);

-- The next message position of a channel, taken only while its access_version
-- is `expected` (NULL when the position is not taken). The cached path of
-- sendMessage calls it with the version it stored: the UPDATE locks the
-- channel row like the messages_seq trigger does, and a version changed by a
-- revocation that committed meanwhile no longer matches (READ COMMITTED
-- re-checks this one-table WHERE on the newest row version, as cheaply as the
-- trigger's), so nothing is written. The INSERT that follows gives the
-- message this position, and the trigger leaves an explicit seq alone.
CREATE FUNCTION guildstore_take_position(channel uuid, expected bigint) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  taken bigint;
BEGIN
  UPDATE channels SET last_seq = last_seq + 1
  WHERE id = channel AND access_version = expected
  RETURNING last_seq INTO taken;
  RETURN taken;
END
$$;

-- Assigning roles that have deny overwrites: the channels of those overwrites.
CREATE FUNCTION guildstore_touch_channels_roles_assigned() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_channels(ARRAY(
    SELECT DISTINCT o.channel_id FROM channel_overwrites o
    WHERE o.deny <> 0
      AND (o.role_id, o.guild_id) IN (SELECT t.role_id, t.guild_id FROM changed t)));
  RETURN NULL;
END
$$;

CREATE TRIGGER member_roles_inserted_touch_channels
AFTER INSERT ON member_roles
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_channels_roles_assigned();

-- A channel made private (or moved, or retyped): its own version, in the row
-- being written.
CREATE FUNCTION guildstore_bump_channel_on_scope_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  NEW.access_version := OLD.access_version + 1;
  RETURN NEW;
END
$$;

CREATE TRIGGER channels_scope_changed_bump
BEFORE UPDATE ON channels
FOR EACH ROW
WHEN (OLD.is_private IS DISTINCT FROM NEW.is_private
  OR OLD.guild_id IS DISTINCT FROM NEW.guild_id
  OR OLD.type IS DISTINCT FROM NEW.type)
EXECUTE FUNCTION guildstore_bump_channel_on_scope_change();
