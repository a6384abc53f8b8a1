-- guildstore 0008: revocations that see every channel, overwrite and DM,
-- whatever commits beside them (issue 22, defects 1 to 3).
--
-- The bump triggers of 0006/0007 chose the channels to bump from the revoking
-- transaction's view: "every channel of the guild", "the channels where this
-- role has a deny overwrite", "the DM of this pair". A channel, overwrite or
-- DM written by a concurrent transaction was not in that view, so it was never
-- bumped, and a fill that read the world between the two commits stored the
-- pre-revocation bits at a version that never changed again.
--
-- The fix is a conflict row per scope, guildstore_access_epochs:
--   (guild, guild)  the guild's structure: its channels and overwrites;
--   (a, b) a < b    a pair of users: their DM;
--   (guild, user)   a ban of that user in that guild.
-- Every write that adds to a set a revocation enumerates (a channel created or
-- moved into a guild, an overwrite created or changed, a DM created, a ban
-- written) increments its scope's row in the same transaction. Every
-- revocation that enumerates a set bumps what it can see, then increments the
-- same row, then enumerates again and bumps what it did not see before:
--   * READ COMMITTED: the increment waits for any uncommitted writer of that
--     scope, and the second enumeration is a new statement with a new snapshot,
--     so it sees every writer that incremented before it; a writer that comes
--     later waits for the revocation to commit, so anything it creates is
--     filled (computed and stored) after the revocation is visible.
--   * REPEATABLE READ / SERIALIZABLE: the increment of a row that a writer
--     changed after the transaction's snapshot raises 40001 (a retryable
--     DatabaseUnavailableError), so the revocation never commits blind.
-- The increment comes after the first pass so that the library's lock order
-- (channel rows, then the scope row) is kept by every writer; only channels
-- that became visible in between are locked after it.
--
-- A join (guild_members insert) under REPEATABLE READ or SERIALIZABLE probes
-- the (guild, user) row: a ban written after its snapshot raises 40001 where
-- the old check read the caller's older snapshot and let the banned user in.
--
-- Row-moving UPDATEs (member_roles, guild_members, channel_members,
-- dm_participants, roles changing guild) now bump like the DELETE (and, for
-- member_roles, the INSERT) they amount to. docs/permissions.md has the
-- argument in full.
SET LOCAL lock_timeout = '10s';

CREATE TABLE guildstore_access_epochs (
  scope_a uuid NOT NULL,
  scope_b uuid NOT NULL,
  version bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (scope_a, scope_b)
);

-- Increments the scope rows (a[i], b[i]), creating them at 1, in key order.
CREATE FUNCTION guildstore_touch_epochs(a uuid[], b uuid[]) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO guildstore_access_epochs AS e (scope_a, scope_b, version)
  SELECT DISTINCT x.a, x.b, 1 FROM unnest(a, b) AS x (a, b)
  WHERE x.a IS NOT NULL AND x.b IS NOT NULL
  ORDER BY 1, 2
  ON CONFLICT (scope_a, scope_b) DO UPDATE SET version = e.version + 1;
END
$$;

-- Every channel of the given guilds: first pass, scope increment, second pass
-- (a new statement, so a new snapshot in READ COMMITTED).
CREATE FUNCTION guildstore_bump_guilds(guild_ids uuid[]) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  seen uuid[];
BEGIN
  IF coalesce(cardinality(guild_ids), 0) = 0 THEN
    RETURN;
  END IF;
  seen := ARRAY(SELECT c.id FROM channels c WHERE c.guild_id = ANY (guild_ids));
  PERFORM guildstore_bump_channels(seen);
  PERFORM guildstore_touch_epochs(guild_ids, guild_ids);
  PERFORM guildstore_bump_channels(ARRAY(
    SELECT c.id FROM channels c WHERE c.guild_id = ANY (guild_ids) AND c.id <> ALL (seen)));
END
$$;

-- The channels where the given (role, guild) pairs have a deny overwrite: the
-- revocation an assignment of those roles makes.
CREATE FUNCTION guildstore_bump_role_denies(role_ids uuid[], guild_ids uuid[]) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  seen uuid[];
BEGIN
  IF coalesce(cardinality(role_ids), 0) = 0 THEN
    RETURN;
  END IF;
  seen := ARRAY(
    SELECT DISTINCT o.channel_id FROM channel_overwrites o
    JOIN unnest(role_ids, guild_ids) AS t (role_id, guild_id)
      ON o.role_id = t.role_id AND o.guild_id = t.guild_id
    WHERE o.deny <> 0);
  PERFORM guildstore_bump_channels(seen);
  PERFORM guildstore_touch_epochs(guild_ids, guild_ids);
  PERFORM guildstore_bump_channels(ARRAY(
    SELECT DISTINCT o.channel_id FROM channel_overwrites o
    JOIN unnest(role_ids, guild_ids) AS t (role_id, guild_id)
      ON o.role_id = t.role_id AND o.guild_id = t.guild_id
    WHERE o.deny <> 0 AND o.channel_id <> ALL (seen)));
END
$$;

-- The DM channels of the given user pairs (either order).
CREATE FUNCTION guildstore_bump_pair_dms(users_a uuid[], users_b uuid[]) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  lo uuid[];
  hi uuid[];
  seen uuid[];
BEGIN
  IF coalesce(cardinality(users_a), 0) = 0 THEN
    RETURN;
  END IF;
  SELECT array_agg(least(x.a, x.b)), array_agg(greatest(x.a, x.b)) INTO lo, hi
  FROM unnest(users_a, users_b) AS x (a, b);
  seen := ARRAY(
    SELECT d.id FROM dm_channels d JOIN unnest(lo, hi) AS p (a, b)
      ON d.user_a = p.a AND d.user_b = p.b);
  PERFORM guildstore_bump_channels(seen);
  PERFORM guildstore_touch_epochs(lo, hi);
  PERFORM guildstore_bump_channels(ARRAY(
    SELECT d.id FROM dm_channels d JOIN unnest(lo, hi) AS p (a, b)
      ON d.user_a = p.a AND d.user_b = p.b
    WHERE d.id <> ALL (seen)));
END
$$;

-- The revoking triggers of 0006/0007, now through the functions above.

CREATE OR REPLACE FUNCTION guildstore_touch_guild_channels() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_guilds(ARRAY(SELECT DISTINCT t.guild_id FROM changed t));
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION guildstore_touch_channels_roles_updated() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_guilds(ARRAY(
    SELECT DISTINCT o.guild_id FROM old_roles o JOIN new_roles n ON n.id = o.id
    WHERE (o.permissions & ~n.permissions) <> 0 OR o.is_default <> n.is_default
      OR o.guild_id <> n.guild_id));
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION guildstore_touch_channels_owner_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_guilds(ARRAY(
    SELECT o.id FROM old_guilds o JOIN new_guilds n ON n.id = o.id
    WHERE o.owner_id <> n.owner_id));
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION guildstore_touch_dm_on_block() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_pair_dms(
    ARRAY(SELECT f.user_id FROM changed f WHERE f.status = 'blocked' ORDER BY f.user_id, f.friend_id),
    ARRAY(SELECT f.friend_id FROM changed f WHERE f.status = 'blocked' ORDER BY f.user_id, f.friend_id));
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION guildstore_touch_channels_roles_assigned() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_role_denies(
    ARRAY(SELECT t.role_id FROM changed t ORDER BY t.role_id, t.guild_id),
    ARRAY(SELECT t.guild_id FROM changed t ORDER BY t.role_id, t.guild_id));
  RETURN NULL;
END
$$;

-- Writers that add to an enumerated set: increment the scope.

-- A guild channel created: its guild's structure.
CREATE FUNCTION guildstore_epoch_channels_inserted() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  guild_ids uuid[];
BEGIN
  guild_ids := ARRAY(SELECT DISTINCT t.guild_id FROM changed t WHERE t.guild_id IS NOT NULL);
  PERFORM guildstore_touch_epochs(guild_ids, guild_ids);
  RETURN NULL;
END
$$;

CREATE TRIGGER channels_inserted_touch_epoch
AFTER INSERT ON channels
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_epoch_channels_inserted();

-- A channel moved into a guild (a row trigger with a WHEN: the per-message
-- last_seq update pays nothing).
CREATE FUNCTION guildstore_epoch_channel_moved() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_touch_epochs(ARRAY[NEW.guild_id], ARRAY[NEW.guild_id]);
  RETURN NULL;
END
$$;

CREATE TRIGGER channels_moved_touch_epoch
AFTER UPDATE ON channels
FOR EACH ROW
WHEN (NEW.guild_id IS NOT NULL AND OLD.guild_id IS DISTINCT FROM NEW.guild_id)
EXECUTE FUNCTION guildstore_epoch_channel_moved();

-- An overwrite created or changed: its guild's structure (an assignment
-- enumerates the role's deny overwrites).
CREATE FUNCTION guildstore_epoch_overwrites_written() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  guild_ids uuid[];
BEGIN
  guild_ids := ARRAY(SELECT DISTINCT t.guild_id FROM changed t);
  PERFORM guildstore_touch_epochs(guild_ids, guild_ids);
  RETURN NULL;
END
$$;

CREATE TRIGGER channel_overwrites_inserted_touch_epoch
AFTER INSERT ON channel_overwrites
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_epoch_overwrites_written();

CREATE TRIGGER channel_overwrites_updated_touch_epoch
AFTER UPDATE ON channel_overwrites
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_epoch_overwrites_written();

-- A DM created: its pair.
CREATE FUNCTION guildstore_epoch_dms_inserted() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_touch_epochs(
    ARRAY(SELECT t.user_a FROM changed t ORDER BY t.user_a, t.user_b),
    ARRAY(SELECT t.user_b FROM changed t ORDER BY t.user_a, t.user_b));
  RETURN NULL;
END
$$;

CREATE TRIGGER dm_channels_inserted_touch_epoch
AFTER INSERT ON dm_channels
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_epoch_dms_inserted();

-- A ban written: its (guild, user) scope, which a join under REPEATABLE READ
-- or SERIALIZABLE probes.
CREATE FUNCTION guildstore_epoch_bans_written() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_touch_epochs(
    ARRAY(SELECT t.guild_id FROM changed t ORDER BY t.guild_id, t.user_id),
    ARRAY(SELECT t.user_id FROM changed t ORDER BY t.guild_id, t.user_id));
  RETURN NULL;
END
$$;

CREATE TRIGGER guild_bans_inserted_touch_epoch
AFTER INSERT ON guild_bans
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_epoch_bans_written();

CREATE TRIGGER guild_bans_updated_touch_epoch
AFTER UPDATE ON guild_bans
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_epoch_bans_written();

-- The join check of 0004, now sound under REPEATABLE READ and SERIALIZABLE:
-- there a ban committed after the caller's snapshot is invisible to the
-- EXISTS below, so the join first probes the ban's scope row: ON CONFLICT
-- against a row version the snapshot cannot see raises 40001. A probe that
-- inserted the row removes it again (nothing stays behind for joins).
CREATE OR REPLACE FUNCTION guildstore_refuse_banned_member() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  probed boolean;
BEGIN
  PERFORM pg_advisory_xact_lock_shared(
    hashtext('guildstore_guild_bans'), guildstore_ban_lock_key(NEW.guild_id, NEW.user_id));
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    INSERT INTO guildstore_access_epochs AS e (scope_a, scope_b, version)
    VALUES (NEW.guild_id, NEW.user_id, 0)
    ON CONFLICT (scope_a, scope_b) DO UPDATE SET version = e.version
    RETURNING e.version = 0 INTO probed;
    IF probed THEN
      DELETE FROM guildstore_access_epochs
      WHERE scope_a = NEW.guild_id AND scope_b = NEW.user_id AND version = 0;
    END IF;
  END IF;
  IF EXISTS (
    SELECT 1 FROM guild_bans b
    WHERE b.guild_id = NEW.guild_id AND b.user_id = NEW.user_id
      AND (b.expires_at IS NULL OR b.expires_at > statement_timestamp())
  ) THEN
    RAISE EXCEPTION 'the user is banned from this guild'
      USING ERRCODE = '23G01', CONSTRAINT = 'guild_members_not_banned', TABLE = 'guild_members';
  END IF;
  RETURN NEW;
END
$$;

-- Row-moving UPDATEs: the rows that left a key are revoked like a DELETE.

CREATE FUNCTION guildstore_touch_moved_members() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_guilds(ARRAY(
    SELECT DISTINCT o.guild_id FROM old_rows o
    WHERE NOT EXISTS (
      SELECT 1 FROM new_rows n WHERE n.guild_id = o.guild_id AND n.user_id = o.user_id)));
  RETURN NULL;
END
$$;

CREATE TRIGGER guild_members_updated_touch_channels
AFTER UPDATE ON guild_members
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_moved_members();

CREATE FUNCTION guildstore_touch_moved_role_assignments() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_guilds(ARRAY(
    SELECT DISTINCT o.guild_id FROM old_rows o
    WHERE NOT EXISTS (
      SELECT 1 FROM new_rows n
      WHERE n.guild_id = o.guild_id AND n.user_id = o.user_id AND n.role_id = o.role_id)));
  PERFORM guildstore_bump_role_denies(
    ARRAY(SELECT n.role_id FROM new_rows n ORDER BY n.role_id, n.guild_id),
    ARRAY(SELECT n.guild_id FROM new_rows n ORDER BY n.role_id, n.guild_id));
  RETURN NULL;
END
$$;

CREATE TRIGGER member_roles_updated_touch_channels
AFTER UPDATE ON member_roles
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_moved_role_assignments();

CREATE FUNCTION guildstore_touch_moved_channel_members() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_channels(ARRAY(
    SELECT DISTINCT o.channel_id FROM old_rows o
    WHERE NOT EXISTS (
      SELECT 1 FROM new_rows n WHERE n.channel_id = o.channel_id AND n.user_id = o.user_id)));
  RETURN NULL;
END
$$;

CREATE TRIGGER channel_members_updated_touch_channels
AFTER UPDATE ON channel_members
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_moved_channel_members();

CREATE TRIGGER dm_participants_updated_touch_channels
AFTER UPDATE ON dm_participants
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guildstore_touch_moved_channel_members();

-- A DM whose pair is rewritten: that DM.
CREATE FUNCTION guildstore_bump_dm_repaired() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_channels(ARRAY[NEW.id]);
  RETURN NULL;
END
$$;

CREATE TRIGGER dm_channels_pair_changed_bump
AFTER UPDATE ON dm_channels
FOR EACH ROW
WHEN (OLD.user_a IS DISTINCT FROM NEW.user_a OR OLD.user_b IS DISTINCT FROM NEW.user_b)
EXECUTE FUNCTION guildstore_bump_dm_repaired();
