-- guildstore 0012: slowmode (issue 25, item 3).
--
-- channels.rate_limit_per_user: 0 to 21600 seconds a member waits between two
-- messages in the channel (Discord's rule; MANAGE_MESSAGES or MANAGE_CHANNELS
-- bypasses it). channel_slowmode keeps, per channel and member, when their
-- last message counted.
--
-- sendMessage decides it in its one statement, through the function below,
-- which takes the message position on the locked channel row: every send to a
-- channel takes that row in turn, so a send sees the slowmode row of the one
-- before it committed, and of 16 concurrent sends by one member in one window
-- exactly one inserts. A send refused by slowmode gives its position back on
-- the row it still holds, so positions stay gap-free. With slowmode off (0,
-- the default) the function costs one comparison more than 0007's.
SET LOCAL lock_timeout = '10s';

ALTER TABLE channels ADD COLUMN rate_limit_per_user integer NOT NULL DEFAULT 0
  CONSTRAINT channels_rate_limit_per_user_range CHECK (rate_limit_per_user BETWEEN 0 AND 21600);

CREATE TABLE channel_slowmode (
  channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  last_sent_at timestamptz NOT NULL,
  PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_slowmode_user_id_idx ON channel_slowmode (user_id);

-- The next position of a channel while its access_version is `expected`
-- (NULL: not taken, as 0007's), and -1 when `author` is within the channel's
-- slowmode window and not `bypass` (the position is given back).
CREATE FUNCTION guildstore_take_position(channel uuid, expected bigint, author uuid, bypass boolean)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  taken bigint;
  rate integer;
  counted boolean;
BEGIN
  UPDATE channels SET last_seq = last_seq + 1
  WHERE id = channel AND access_version = expected
  RETURNING last_seq, rate_limit_per_user INTO taken, rate;
  IF taken IS NULL OR rate = 0 OR bypass THEN
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
