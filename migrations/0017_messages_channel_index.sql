-- guildstore 0017: plans that stay fast after ANALYZE (issue 28, item 5).
--
-- messages_channel_id_idx (channel_id), kept since 0001 for cascades and
-- purges, was a trap for every per-channel read in `seq` order. PostgreSQL
-- costs a one-column index with a heap-ordered leading column (correlation
-- near 1 once the table is analyzed) far below a two-column one (it takes
-- 3/4 of the correlation of a multi-column index), and it estimates every
-- channel at the table's average size (a join to channels.id cannot use the
-- most-common-values list). So after ANALYZE, listChannelReadStates' unread
-- count chose "all rows of the channel by channel_id, then Sort, then LIMIT
-- 100" over "walk (channel_id, seq) from the read marker, stop after 100": on
-- a channel with 60 000 unread messages, 60 000 heap rows per call instead of
-- 100 (15–50 ms instead of 0.5 ms), under generic and custom plans alike.
--
-- The replacement, (channel_id, id), keeps what the old index was for
-- (cascades from channels and purges find every row of a channel, soft-deleted
-- ones too, by its leading column) and is costed like the (channel_id, seq)
-- indexes, so it never looks cheaper than walking them. It gives no `seq`
-- order and no `seq` range on purpose: an index of (channel_id, seq) over
-- every row ties with messages_channel_id_seq_live_idx, and the planner then
-- takes either, the full one skipping soft-deleted rows through the heap (a
-- channel whose newest 10 000 messages were just deleted would read them all
-- for one page). The read paths keep their partial index.
--
-- Locks: the build scans `messages` once while writes to it wait (reads do
-- not), as 0010's index did: at 10 M messages expect seconds to tens of
-- seconds. Not CONCURRENTLY: the runner applies a no-transaction file as one
-- statement, and the old index must go in the same migration.
SET LOCAL lock_timeout = '10s';

-- squawk-ignore require-concurrent-index-creation
CREATE INDEX messages_channel_id_id_idx ON messages (channel_id, id);
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX messages_channel_id_idx;
