-- guildstore 0013: the pin cap as a guild setting (issue 25, item 5).
--
-- Discord raised its per-channel cap to 250. guilds.max_pins_per_channel
-- (default 50, 1 to 250) is now the cap of every channel of the guild (a DM
-- keeps 50). It stays exact under races: concurrent pins still queue on the
-- channel's counter row, whose new value the trigger compares with the cap;
-- the refusal keeps the name of 0005's constraint, channel_pin_counts_pin_limit,
-- so callers see the same error. Lowering the cap keeps the pins there are
-- and refuses new ones until the channel is below it.
SET LOCAL lock_timeout = '10s';

ALTER TABLE guilds ADD COLUMN max_pins_per_channel integer NOT NULL DEFAULT 50
  CONSTRAINT guilds_max_pins_per_channel_range CHECK (max_pins_per_channel BETWEEN 1 AND 250);

ALTER TABLE channel_pin_counts DROP CONSTRAINT channel_pin_counts_pin_limit;
-- NOT VALID: existing counts are at most 50 (0005's CHECK held them); every
-- write from now on is checked.
ALTER TABLE channel_pin_counts ADD CONSTRAINT channel_pin_counts_pin_range
  CHECK (pin_count BETWEEN 0 AND 250) NOT VALID;

CREATE OR REPLACE FUNCTION guildstore_pins_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  pinned integer;
  cap integer;
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO channel_pin_counts AS p (channel_id, pin_count) VALUES (NEW.channel_id, 1)
    ON CONFLICT (channel_id) DO UPDATE SET pin_count = p.pin_count + 1
    RETURNING p.pin_count INTO pinned;
    SELECT g.max_pins_per_channel INTO cap
    FROM channels c JOIN guilds g ON g.id = c.guild_id WHERE c.id = NEW.channel_id;
    IF pinned > coalesce(cap, 50) THEN
      RAISE EXCEPTION 'a channel holds at most % pins', coalesce(cap, 50)
        USING ERRCODE = '23514', CONSTRAINT = 'channel_pin_counts_pin_limit',
          TABLE = 'channel_pin_counts';
    END IF;
  ELSE
    UPDATE channel_pin_counts SET pin_count = pin_count - 1 WHERE channel_id = OLD.channel_id;
  END IF;
  RETURN NULL;
END
$$;
