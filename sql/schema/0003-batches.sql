-- sql/schema/0003-batches.sql -- batches: groups of tasks with counters
-- kept in step with their members and a completion hook.
--
-- A batch is 'open' (tasks may join it), 'closed' (no more members) or
-- 'finished' (closed, and no member is ready or running).  Its counters
-- partition its members by state:
--   total = pending + running + succeeded + failed + dead + cancelled
-- where pending is 'ready' (due, scheduled or waiting for a retry),
-- failed is 'dead' with dead_reason 'failed' (a permanent failure) and
-- dead is 'dead' for any other reason (attempts exhausted, expired).
--
-- Who keeps them:
--  - a member's insert: the library, in the enqueue's transaction (an
--    INSERT trigger would cost every enqueue a statement journal);
--  - a member's change of state, and its deletion: the triggers below, in
--    the same statement, whoever writes it (spool or the sqlite3 shell);
--  - settling: every spool write transaction, before its COMMIT, finishes
--    the closed batches with nothing ready or running (batches_settle) and
--    enqueues their hook tasks.  hook_task_id is set once, in that same
--    transaction, so a hook is enqueued exactly once whatever is killed.

CREATE TABLE batches (
	id		INTEGER PRIMARY KEY AUTOINCREMENT,
	description	TEXT CHECK (description IS NULL OR typeof(description) = 'text'),
	state		TEXT NOT NULL DEFAULT 'open'
			CHECK (state = 'open' OR state = 'closed' OR state = 'finished'),
	hook_queue	TEXT CHECK (hook_queue IS NULL OR
			    length(hook_queue) BETWEEN 1 AND 128),
	hook_payload	TEXT,
	hook_on		TEXT NOT NULL DEFAULT 'always'
			CHECK (hook_on = 'always' OR hook_on = 'success'),
	hook_task_id	INTEGER,
	total		INTEGER NOT NULL DEFAULT 0 CHECK (total >= 0),
	pending		INTEGER NOT NULL DEFAULT 0 CHECK (pending >= 0),
	running		INTEGER NOT NULL DEFAULT 0 CHECK (running >= 0),
	succeeded	INTEGER NOT NULL DEFAULT 0 CHECK (succeeded >= 0),
	failed		INTEGER NOT NULL DEFAULT 0 CHECK (failed >= 0),
	dead		INTEGER NOT NULL DEFAULT 0 CHECK (dead >= 0),
	cancelled	INTEGER NOT NULL DEFAULT 0 CHECK (cancelled >= 0),
	created_ms	INTEGER NOT NULL,
	closed_ms	INTEGER,
	finished_ms	INTEGER,
	CHECK ((state = 'open') = (closed_ms IS NULL)),
	CHECK ((state = 'finished') = (finished_ms IS NOT NULL))
);

-- Closed batches with nothing ready or running: what settling finds.
-- Almost always empty, so the check before each commit is one seek.
CREATE INDEX batches_settle ON batches (id)
	WHERE state = 'closed' AND pending = 0 AND running = 0;

ALTER TABLE tasks ADD COLUMN batch_id INTEGER REFERENCES batches(id);

-- A batch's members, by state (the counts a COUNT(*) gives).
CREATE INDEX tasks_batch ON tasks (batch_id, state) WHERE batch_id IS NOT NULL;

-- A member changed state: move it between counters.  A finished batch
-- whose member is made ready again (spool retry) is closed again, and
-- finishes again when that member does (its hook is not enqueued twice).
CREATE TRIGGER tasks_batch_state AFTER UPDATE OF state, dead_reason ON tasks
WHEN OLD.batch_id IS NOT NULL AND
    (OLD.state IS NOT NEW.state OR OLD.dead_reason IS NOT NEW.dead_reason)
BEGIN
	UPDATE batches SET
	    pending = pending + (NEW.state = 'ready') - (OLD.state = 'ready'),
	    running = running + (NEW.state = 'running') - (OLD.state = 'running'),
	    succeeded = succeeded + (NEW.state = 'succeeded') -
		(OLD.state = 'succeeded'),
	    failed = failed +
		(NEW.state = 'dead' AND NEW.dead_reason IS 'failed') -
		(OLD.state = 'dead' AND OLD.dead_reason IS 'failed'),
	    dead = dead +
		(NEW.state = 'dead' AND NEW.dead_reason IS NOT 'failed') -
		(OLD.state = 'dead' AND OLD.dead_reason IS NOT 'failed'),
	    cancelled = cancelled + (NEW.state = 'cancelled') -
		(OLD.state = 'cancelled'),
	    state = CASE WHEN state = 'finished' AND
		(NEW.state = 'ready' OR NEW.state = 'running') THEN 'closed'
		ELSE state END,
	    finished_ms = CASE WHEN state = 'finished' AND
		(NEW.state = 'ready' OR NEW.state = 'running') THEN NULL
		ELSE finished_ms END
	 WHERE id = OLD.batch_id;
END;

-- A member was deleted (purge, prune, by hand): it no longer counts.
CREATE TRIGGER tasks_batch_delete AFTER DELETE ON tasks
WHEN OLD.batch_id IS NOT NULL
BEGIN
	UPDATE batches SET
	    total = total - 1,
	    pending = pending - (OLD.state = 'ready'),
	    running = running - (OLD.state = 'running'),
	    succeeded = succeeded - (OLD.state = 'succeeded'),
	    failed = failed - (OLD.state = 'dead' AND OLD.dead_reason IS 'failed'),
	    dead = dead - (OLD.state = 'dead' AND OLD.dead_reason IS NOT 'failed'),
	    cancelled = cancelled - (OLD.state = 'cancelled')
	 WHERE id = OLD.batch_id;
END;

-- Membership is fixed at enqueue.
CREATE TRIGGER tasks_batch_fixed BEFORE UPDATE OF batch_id ON tasks
WHEN OLD.batch_id IS NOT NEW.batch_id
BEGIN
	SELECT RAISE(ABORT, 'a task''s batch_id cannot change');
END;

PRAGMA user_version = 3;
