-- sql/schema/0007-lighter-writes.sql -- fewer writes for every task.
--
-- tasks_due (queue, run_at_ms) over the ready tasks answered "when is the
-- next scheduled task due" and "how many are due" with one seek, at the
-- price of one more B-tree entry written and deleted for every task: 7%
-- of a drain and of a bulk insert.  Those questions now walk tasks_ready
-- one priority level at a time (queries next_due, backlog, stats_due):
-- one seek per distinct priority among a queue's ready tasks, which are
-- few, so the cost stays O(levels * log n).

DROP INDEX IF EXISTS tasks_due;

-- A pipeline item settles when its task's finished_ms becomes set or
-- cleared.  The trigger fired on every change of state and tested that
-- in its WHEN clause, so a claim (state 'ready' to 'running') ran it for
-- every task; firing on UPDATE OF finished_ms is the same test, and a
-- statement that does not set finished_ms (a claim, a requeue) no longer
-- runs the trigger at all.
DROP TRIGGER tasks_item_state;
CREATE TRIGGER tasks_item_state AFTER UPDATE OF finished_ms ON tasks
WHEN OLD.item_id IS NOT NULL AND
    (OLD.finished_ms IS NULL) IS NOT (NEW.finished_ms IS NULL)
BEGIN
	UPDATE pipeline_items SET settle = 1
	 WHERE id = OLD.item_id AND task_id = OLD.id;
END;

PRAGMA user_version = 7;
