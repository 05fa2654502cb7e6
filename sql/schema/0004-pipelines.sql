-- sql/schema/0004-pipelines.sql -- pipelines: versioned definitions,
-- runs, and items that move from stage to stage.
--
-- A pipeline definition is one row of pipelines (a name and a version)
-- and its ordered stages.  The current definition of a name is its row
-- with retired_ms NULL; defining the name again retires it and adds the
-- next version, deleting retires it.  Old versions stay: their runs
-- finish under them, and the history refers to them.
--
-- A run is a set of items.  An item is always in exactly one stage task
-- (tasks.item_id, tasks.stage_id), the one items.task_id names.  When
-- that task finishes, or is made ready again (spool retry), or is
-- deleted, the trigger below marks the item for settling; settling runs
-- in C before the COMMIT of every spool write transaction (the same
-- moment batches settle) and, for each marked item:
--  - stage succeeded: inserts the next stage's task with the result as
--    its payload, or, after the last stage, marks the item succeeded;
--  - stage dead: the item is failed, or skipped (strategy 'skip'); with
--    'fail_fast' the run stops: its ready tasks are cancelled and its
--    running ones asked to stop;
--  - cancelled or deleted: the item is cancelled;
--  - made ready again: a finished item is running again.
-- A run's counters partition its items by state and are changed only by
-- settling, with the items:
--   total = running + succeeded + failed + skipped + cancelled
-- A run with nothing running finishes, and its hook is enqueued, in the
-- same transaction.

CREATE TABLE pipelines (
	id		INTEGER PRIMARY KEY AUTOINCREMENT,
	name		TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
	version		INTEGER NOT NULL CHECK (version >= 1),
	stages		INTEGER NOT NULL CHECK (stages >= 1),
	created_ms	INTEGER NOT NULL,
	retired_ms	INTEGER,	-- replaced by a newer version, or deleted
	UNIQUE (name, version)
);
-- At most one current version per name.
CREATE UNIQUE INDEX pipelines_current ON pipelines (name)
	WHERE retired_ms IS NULL;

CREATE TABLE pipeline_stages (
	id		INTEGER PRIMARY KEY,
	pipeline_id	INTEGER NOT NULL REFERENCES pipelines(id),
	idx		INTEGER NOT NULL CHECK (idx >= 1),	-- from 1
	name		TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
	queue		TEXT NOT NULL,		-- 'PIPELINE/STAGE'
	concurrency	INTEGER NOT NULL CHECK (concurrency >= 1),
	timeout_ms	INTEGER NOT NULL DEFAULT 0 CHECK (timeout_ms >= 0),
	on_error	TEXT NOT NULL CHECK (on_error = 'retry' OR
			    on_error = 'skip' OR on_error = 'fail_fast'),
	retries		INTEGER NOT NULL DEFAULT 0 CHECK (retries >= 0),
	retry_delay_ms	INTEGER NOT NULL DEFAULT 0 CHECK (retry_delay_ms >= 0),
	command		TEXT,
	UNIQUE (pipeline_id, idx),
	UNIQUE (pipeline_id, name)
);

CREATE TABLE pipeline_runs (
	id		INTEGER PRIMARY KEY AUTOINCREMENT,
	pipeline_id	INTEGER NOT NULL REFERENCES pipelines(id),
	state		TEXT NOT NULL DEFAULT 'running'
			CHECK (state = 'running' OR state = 'stopping' OR
			    state = 'finished'),
	total		INTEGER NOT NULL DEFAULT 0 CHECK (total >= 0),
	running		INTEGER NOT NULL DEFAULT 0 CHECK (running >= 0),
	succeeded	INTEGER NOT NULL DEFAULT 0 CHECK (succeeded >= 0),
	failed		INTEGER NOT NULL DEFAULT 0 CHECK (failed >= 0),
	skipped		INTEGER NOT NULL DEFAULT 0 CHECK (skipped >= 0),
	cancelled	INTEGER NOT NULL DEFAULT 0 CHECK (cancelled >= 0),
	error		TEXT,		-- why it stopped (fail_fast, cancel)
	hook_queue	TEXT CHECK (hook_queue IS NULL OR
			    length(hook_queue) BETWEEN 1 AND 128),
	hook_payload	TEXT,
	hook_on		TEXT NOT NULL DEFAULT 'always'
			CHECK (hook_on = 'always' OR hook_on = 'success'),
	hook_task_id	INTEGER,
	created_ms	INTEGER NOT NULL,
	finished_ms	INTEGER,
	CHECK (total = running + succeeded + failed + skipped + cancelled),
	CHECK ((state = 'finished') = (finished_ms IS NOT NULL))
);
-- Unfinished runs with nothing running: what settling finishes.
CREATE INDEX pipeline_runs_settle ON pipeline_runs (id)
	WHERE finished_ms IS NULL AND running = 0;
CREATE INDEX pipeline_runs_pipeline ON pipeline_runs (pipeline_id, finished_ms);

CREATE TABLE pipeline_items (
	id		INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id		INTEGER NOT NULL REFERENCES pipeline_runs(id),
	stage		INTEGER NOT NULL CHECK (stage >= 1),	-- current index
	task_id		INTEGER,		-- its task in that stage
	state		TEXT NOT NULL DEFAULT 'running'
			CHECK (state = 'running' OR state = 'succeeded' OR
			    state = 'failed' OR state = 'skipped' OR
			    state = 'cancelled'),
	settle		INTEGER NOT NULL DEFAULT 0 CHECK (settle = 0 OR settle = 1),
	created_ms	INTEGER NOT NULL,
	finished_ms	INTEGER,
	CHECK ((state = 'running') = (finished_ms IS NULL))
);
-- A run's items in order (pages of "pipeline items", status).
CREATE INDEX pipeline_items_run ON pipeline_items (run_id, id);
-- Items whose task changed: almost always empty, so the check before
-- each commit is one seek.
CREATE INDEX pipeline_items_settle ON pipeline_items (id) WHERE settle = 1;

ALTER TABLE tasks ADD COLUMN item_id INTEGER REFERENCES pipeline_items(id);
ALTER TABLE tasks ADD COLUMN stage_id INTEGER REFERENCES pipeline_stages(id);
CREATE INDEX tasks_item ON tasks (item_id) WHERE item_id IS NOT NULL;

-- An item's task finished, or was made ready again: settle the item.
-- (The statements that change tasks.state are UPDATE OR FAIL, so this
-- trigger costs them no statement journal; see claim.sql.)
CREATE TRIGGER tasks_item_state AFTER UPDATE OF state ON tasks
WHEN OLD.item_id IS NOT NULL AND
    (OLD.finished_ms IS NULL) IS NOT (NEW.finished_ms IS NULL)
BEGIN
	UPDATE pipeline_items SET settle = 1
	 WHERE id = OLD.item_id AND task_id = OLD.id;
END;

-- An item's task was deleted (purge, by hand): settle it (cancelled).
CREATE TRIGGER tasks_item_delete AFTER DELETE ON tasks
WHEN OLD.item_id IS NOT NULL
BEGIN
	UPDATE pipeline_items SET settle = 1
	 WHERE id = OLD.item_id AND task_id = OLD.id;
END;

-- A task's item and stage are fixed when it is made.
CREATE TRIGGER tasks_item_fixed BEFORE UPDATE OF item_id, stage_id ON tasks
WHEN OLD.item_id IS NOT NEW.item_id OR OLD.stage_id IS NOT NEW.stage_id
BEGIN
	SELECT RAISE(ABORT, 'a task''s item_id and stage_id cannot change');
END;

PRAGMA user_version = 4;
