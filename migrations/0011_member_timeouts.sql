-- guildstore 0011: member timeouts (Discord's "time out"; issue 25, item 2).
--
-- guild_members.communication_disabled_until: while it lies in the future the
-- member keeps only VIEW_CHANNEL and READ_MESSAGE_HISTORY (the guild's owner
-- and ADMINISTRATOR holders are exempt): the one access rule applies it, so
-- computePermissions, authorize, sends, reads and what they store agree.
-- A timeout ends by time alone, with no write.
--
-- Starting or extending a timeout takes bits away, so it bumps every channel
-- of the guild like a removal (through 0008's guildstore_bump_guilds, which
-- also sees channels created concurrently). Its end, or a lift, only gives
-- bits back: a stored value that holds fewer bits than the member has now is
-- never used for the bits it lacks (the full rule decides them and refreshes
-- it), so a lifted or expired timeout is never kept in force.
SET LOCAL lock_timeout = '10s';

ALTER TABLE guild_members ADD COLUMN communication_disabled_until timestamptz;

-- Rows that left a key (0008), and timeouts started or extended.
CREATE OR REPLACE FUNCTION guildstore_touch_moved_members() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM guildstore_bump_guilds(ARRAY(
    SELECT DISTINCT o.guild_id FROM old_rows o
    WHERE NOT EXISTS (
      SELECT 1 FROM new_rows n WHERE n.guild_id = o.guild_id AND n.user_id = o.user_id)
    UNION
    SELECT n.guild_id FROM new_rows n JOIN old_rows o
      ON o.guild_id = n.guild_id AND o.user_id = n.user_id
    WHERE n.communication_disabled_until > statement_timestamp()
      AND (o.communication_disabled_until IS NULL
        OR o.communication_disabled_until < n.communication_disabled_until)));
  RETURN NULL;
END
$$;
