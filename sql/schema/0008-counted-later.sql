-- sql/schema/0008-counted-later.sql -- an enqueue writes no counter row.
--
-- Each transaction wrote queue_counters before its COMMIT, an enqueue of
-- one task too: one more page in every such commit (4 pages, not 3),
-- which made a durable enqueue at a time 5 to 10% slower than the
-- hand-written loop it is measured against.  Tasks are now counted as
-- enqueued later, in bulk, from their ids, which only grow (AUTOINCREMENT):
--
--   queue_counters.enqueued counts the queue's tasks whose id is at most
--   counters_mark.task_id; the tasks above the mark are not counted there
--   yet, and a reader adds them (view spool_counters does).
--
-- A write transaction that writes counters anyway (a worker's outcomes,
-- a claim, a cancel) counts the tasks above the mark and moves it, and
-- so does any commit once the tasks above the mark span 1,024 ids; an
-- enqueue of one task alone leaves its task above the mark and writes
-- only the task's own pages.  A task deleted while above the mark is
-- counted as it goes (trigger below), so deleting tasks, by spool or by
-- hand, never lowers the count.

CREATE TABLE counters_mark (
	one		INTEGER PRIMARY KEY CHECK (one = 1),
	task_id		INTEGER NOT NULL CHECK (task_id >= 0)
);
-- Every task so far was counted when it was enqueued.
INSERT INTO counters_mark (one, task_id)
SELECT 1, coalesce(max(id), 0) FROM tasks WHERE 1;

CREATE TRIGGER tasks_counted_delete AFTER DELETE ON tasks
WHEN OLD.id > (SELECT task_id FROM counters_mark)
BEGIN
	INSERT INTO queue_counters (queue, enqueued) VALUES (OLD.queue, 1)
	ON CONFLICT (queue) DO UPDATE SET enqueued = enqueued + 1;
END;

PRAGMA user_version = 8;
