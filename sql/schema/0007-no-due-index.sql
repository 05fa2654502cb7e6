-- sql/schema/0007-no-due-index.sql -- ready tasks keep one index.
--
-- tasks_due (queue, run_at_ms) over the ready tasks answered "when is the
-- next scheduled task due" and "how many are due" with one seek, at the
-- price of one more B-tree entry written and deleted for every task: 7%
-- of a drain and of a bulk insert.  Those questions now walk tasks_ready
-- one priority level at a time (queries next_due, backlog, stats_due):
-- one seek per distinct priority among a queue's ready tasks, which are
-- few, so the cost stays O(levels * log n).

DROP INDEX IF EXISTS tasks_due;

PRAGMA user_version = 7;
