-- guildstore 0010: exactly-once message creates (issue 26). `sendMessage` and
-- `createMessage` take an optional client `nonce` (1–25 characters, Discord's
-- rule); a retry with the same (channel, author, nonce) returns the original
-- message and writes nothing. The unique index below is what makes that hold
-- under concurrent retries: a second insert with the same key waits for the
-- first and then inserts nothing (ON CONFLICT DO NOTHING).
--
-- A nonce is remembered for 24 hours: a create whose nonce matches a message
-- older than that clears the old message's nonce (its own statement) and is
-- a new message. Rows without a nonce (every row before this migration) are not
-- in the index, so it stays as small as the nonces of live clients.
--
-- Locks: the new column is nullable without a default (metadata only); its
-- CHECK is validated by one scan of `messages` under the ALTER's lock (every
-- row is NULL), and the index build scans it once more while writes to
-- `messages` wait (reads do not). Both are sequential scans of the heap: at
-- 10 M messages (3.9 GB) expect seconds, not minutes.
SET LOCAL lock_timeout = '10s';

ALTER TABLE messages
  ADD COLUMN nonce text CONSTRAINT messages_nonce_length CHECK (char_length(nonce) BETWEEN 1 AND 25);

-- Not CONCURRENTLY: the runner applies a no-transaction file as one statement,
-- and the index needs the column added above (one migration number).
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX messages_nonce_key ON messages (channel_id, author_id, nonce)
  WHERE nonce IS NOT NULL;
