-- guildstore 0025: the change feed's positions are taken at insert; the
-- reader's horizon comes from the writers' in-flight locks (issue 23, the
-- feed's cost). Replaces 0019's commit-time stamp; docs/events.md, "Positions".
-- And a statement inserting more than 100 messages into one channel writes one
-- summary event for it (at the end of this file).
--
-- Until now an event row was inserted with position NULL and a deferred
-- constraint trigger updated it at COMMIT under a shared advisory lock: every
-- event was written twice (a second tuple version, its index entries again,
-- a deferred trigger queue entry), and a reader's horizon took that lock
-- exclusively, so it waited for committing writers. Now:
--
-- Writer. position's default is guildstore_event_position(). The first time a
-- transaction takes a position it registers as in flight: it reads the
-- sequence's last value L (a sequence is not MVCC: this is its current value,
-- whatever the snapshot), takes pg_advisory_xact_lock_shared(key(L + 1)) and
-- records its transaction id in the transaction-local setting
-- guildstore.event_inflight, so its later positions skip this. Then, and for
-- every later row, nextval. Every position it takes is above L (CACHE 1: no
-- backend holds values below the sequence's last value), so its lock's
-- position is <= each of its positions. The lock is held to the end of the
-- transaction; PostgreSQL releases locks only after the commit is visible.
--
-- Reader. guildstore_event_horizon() reads the sequence's last value h FIRST,
-- then the lowest in-flight position m among the feed's advisory locks in
-- pg_locks (this database, any backend, granted or waiting, the caller's own
-- included), and returns min(h, m - 1). If a transaction took a position
-- p <= h, its nextval ran before h was read, so its lock (taken before that
-- nextval) was already in pg_locks when the reader looked, unless the
-- transaction had ended, and then m <= p. So every position <= the horizon
-- belongs to a transaction that has ended (committed and visible, or rolled
-- back), and the reader reads positions <= it in a later statement (a fresh
-- snapshot), as before. A reader that has seen position p never later finds
-- an event committed with a position <= p; holes remain possible.
--
-- The caller's own lock counts: a transaction that wrote events and then reads
-- the feed (at READ COMMITTED) does not see its own uncommitted events, as
-- with the stamp (their positions were NULL until commit).
--
-- Savepoints: PostgreSQL releases an advisory transaction lock taken in a
-- subtransaction that rolls back, and reverts a set_config(…, true) made in it
-- (checked on 15); both go together, so the next position registers again. A
-- lock taken again in a subtransaction that rolls back stays held by the
-- outer transaction.
--
-- The horizon may step back: a writer that read L just before a reader looked
-- and locked just after registers below that reader's horizon (its positions
-- are above it). Readers never move a token back (src/repositories/events.ts),
-- and "ahead of the feed" is judged against h, not the horizon.
--
-- Reserved advisory lock keys: 0x6773 ('gs') in the top 16 bits and the
-- position in the low 48 (7454301808228302848 + position, saturating at
-- 2^48 - 1), taken with the one-bigint form (pg_locks: objsubid 1, classid
-- 1735589888 to 1735655423 the high half, objid the low). A host's lock in that
-- range only holds the horizon back while it is held. Past 2^48 - 1 positions
-- every writer registers at the top of the range: still safe, the horizon
-- then stays below 2^48 - 1 while any writer is in flight.
--
-- A long transaction that wrote an event holds the horizon back until it ends:
-- events after its first position are delayed, never lost.
SET LOCAL lock_timeout = '10s';

-- The advisory lock key of an in-flight position (the range above).
CREATE FUNCTION guildstore_event_inflight_key(p bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 7454301808228302848 + least(greatest(p, 0), 281474976710655) $$;

-- The next position, registering this transaction as in flight first (above).
-- The setting holds the top transaction's id, so a session-level SET of the
-- same name or a previous transaction's value never counts as registered.
-- With guildstore.event_notify = 'on' the registration also queues
-- NOTIFY guildstore_events (payload: the lowest position the transaction may
-- hold), delivered at commit, never for a rollback.
CREATE FUNCTION guildstore_event_position() RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  me text := pg_current_xact_id()::text;
  last bigint;
BEGIN
  IF current_setting('guildstore.event_inflight', true) IS DISTINCT FROM me THEN
    last := coalesce(pg_sequence_last_value('guildstore_event_positions'), 0);
    PERFORM pg_advisory_xact_lock_shared(guildstore_event_inflight_key(last + 1));
    PERFORM set_config('guildstore.event_inflight', me, true);
    IF current_setting('guildstore.event_notify', true) = 'on' THEN
      PERFORM pg_notify('guildstore_events', (last + 1)::text);
    END IF;
  END IF;
  RETURN nextval('guildstore_event_positions');
END
$$;

-- The reader's horizon (above): call it in its own statement, before the read.
CREATE OR REPLACE FUNCTION guildstore_event_horizon() RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  h bigint := coalesce(pg_sequence_last_value('guildstore_event_positions'), 0);
  low bigint;
BEGIN
  SELECT min(((l.classid::bigint - 1735589888) << 32) | l.objid::bigint) INTO low
  FROM pg_locks l
  WHERE l.locktype = 'advisory' AND l.objsubid = 1
    AND l.classid BETWEEN 1735589888 AND 1735655423
    AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
  RETURN least(h, low - 1);
END
$$;

DROP TRIGGER guildstore_events_stamp ON guildstore_events;
DROP FUNCTION guildstore_events_stamp();
DROP FUNCTION guildstore_event_lock_key();

-- Written once, with its position. The writing transaction's id was only the
-- stamp's key to its own rows (and its hash index goes with it): nothing else
-- reads it, and the feed is unreleased.
ALTER TABLE guildstore_events ALTER COLUMN position SET DEFAULT guildstore_event_position();
-- squawk-ignore ban-drop-column
ALTER TABLE guildstore_events DROP COLUMN xact;

-- ---------------------------------------------------------------------------
-- Bulk inserts of messages: one summary event per channel (issue 23, bulk
-- statements). A statement that inserts more than 100 messages into one
-- channel (a host's INSERT … SELECT, a COPY, importMessages' COPY or one of its
-- batches) writes one 'messages_imported' event for that channel, with the
-- statement's range of seq (first_seq, last_seq) and its row count, instead of
-- one 'message_created' per row: a reader refetches that range (the messages
-- as they are when read, like a hydrated message_created). Channels with 100
-- rows or fewer in the statement get one event per row, as before. A
-- statement of at most 100 rows in all (every send) takes 0019's statement
-- (grouping every statement cost a send about 8%, loaded box): a send pays
-- one more probe of the transition table.
CREATE OR REPLACE FUNCTION guildstore_events_messages_insert() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM new_rows OFFSET 100) THEN
    INSERT INTO guildstore_events (type, guild_id, channel_id, data)
    SELECT 'message_created', c.guild_id, n.channel_id, jsonb_build_object('message_id', n.id,
      'seq', n.seq::text, 'author_id', n.author_id)
    FROM new_rows n JOIN channels c ON c.id = n.channel_id ORDER BY n.channel_id, n.seq;
    RETURN NULL;
  END IF;
  WITH big AS MATERIALIZED (
    SELECT n.channel_id, count(*) AS n_rows, min(n.seq) AS first_seq, max(n.seq) AS last_seq
    FROM new_rows n
    GROUP BY n.channel_id
    HAVING count(*) > 100
  ), ev AS (
    SELECT 'message_created' AS type, n.channel_id, n.seq AS ord,
      jsonb_build_object('message_id', n.id, 'seq', n.seq::text, 'author_id', n.author_id) AS data
    FROM new_rows n
    WHERE n.channel_id NOT IN (SELECT b.channel_id FROM big b)
    UNION ALL
    SELECT 'messages_imported', b.channel_id, b.last_seq,
      jsonb_build_object('first_seq', b.first_seq::text, 'last_seq', b.last_seq::text, 'count', b.n_rows)
    FROM big b
  )
  INSERT INTO guildstore_events (type, guild_id, channel_id, data)
  SELECT ev.type, c.guild_id, ev.channel_id, ev.data
  FROM ev JOIN channels c ON c.id = ev.channel_id
  ORDER BY ev.channel_id, ev.ord;
  RETURN NULL;
END
$$;
