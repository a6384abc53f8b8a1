-- guildstore 0027: sendMessage writes its message's change-feed event in its
-- own statement (issue 23, the feed's cost on sends); docs/events.md, "The
-- send's event, in its statement".
--
-- Until now every insert into messages, a send's included, ran 0025's
-- statement-level AFTER trigger: a transition table, a plpgsql call and an
-- INSERT … SELECT through SPI that joined the transition table to channels.
--
-- Now sendMessage's statement (every variant of it, src/repositories/
-- authorized-messages.ts) inserts the event row itself, in a data-modifying
-- CTE over the inserted message (the same payload as the trigger's), in the
-- statement's plan, prepared once per connection. Before its insert into
-- messages ends it sets the transaction-local setting guildstore.message_event
-- to its transaction's id. The trigger's WHEN, evaluated once when an insert into
-- messages ends (a statement trigger's WHEN runs as its event is queued):
--
--   * at trigger depth > 0 (an insert made by a trigger): fires, and leaves
--     the setting alone;
--   * the setting is not this transaction's id (every insert but a send's:
--     a host's plain INSERT or COPY, createMessage, importMessages, and a
--     session-level SET of the name, which never holds the running
--     transaction's id before it starts): fires, as before;
--   * else (the send's own insert): empties the setting and does not fire.
--
-- So the one insert that finds the setting armed is the send's own (the only
-- insert into messages at depth 0 while the send's statement runs), the next
-- insert of the transaction finds it empty, and a send that inserts nothing
-- (refused, slowed, a nonce already used) empties it too. A statement that
-- fails undoes the setting with it (also in a savepoint). The CASE fixes the
-- order of evaluation (the test first, the reset only when it holds).
--
-- A send's event is written by the statement's CTE only; a host's plain insert
-- in the same transaction, before or after the send, gets its event from the
-- trigger (test/events/send-event.test.ts). Bulk statements are unchanged
-- (0025's messages_imported branch, importMessages).
SET LOCAL lock_timeout = '10s';

DROP TRIGGER guildstore_events_messages_insert ON messages;
CREATE TRIGGER guildstore_events_messages_insert AFTER INSERT ON messages
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT
  WHEN (CASE
    WHEN pg_trigger_depth() > 0 THEN true
    WHEN current_setting('guildstore.message_event', true) IS DISTINCT FROM pg_current_xact_id()::text THEN true
    ELSE set_config('guildstore.message_event', '', true) IS NULL
  END)
  EXECUTE FUNCTION guildstore_events_messages_insert();

-- ---------------------------------------------------------------------------
-- One index and one sequence fewer per event: the events' id column goes.
--
-- With 16 senders the feed's waits were on the lock manager (LWLock
-- LockManager, sampled from pg_stat_activity; none with the feed off): a
-- send's transaction locks more relations than a PostgreSQL 15 backend's 16
-- fast-path slots hold, so the rest go to the shared lock table, the same
-- lock objects for every sender. The identity column cost each event a
-- nextval of its own sequence, a btree entry on the right edge of its primary
-- key, and two of those relation locks (pg_locks of an open send: 6 locks in
-- the shared table with it, 5 without). Nothing reads it: positions are
-- unique (guildstore_events_position_key), the reads and the dispatcher go by
-- position, and purgeEvents now deletes by position. Sixteen senders in
-- alternating blocks kept 7-9% more messages/s without it (BENCHMARKS.md).
-- The feed is unreleased. A host that publishes this table for logical
-- replication sets REPLICA IDENTITY FULL on it (there is no primary key).
-- squawk-ignore ban-drop-column
ALTER TABLE guildstore_events DROP COLUMN id;
