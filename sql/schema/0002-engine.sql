-- sql/schema/0002-engine.sql -- what the engine needs, and cheaper writes.
--
-- 1. Rebuild queues, tasks, results and attempts with the same columns but
--    CHECK constraints and partial-index conditions written without IN
--    lists.  SQLite evaluates "x IN ('a', 'b', 'c')" by building a
--    temporary B-tree, and it does so for every row written: five of them
--    for each claimed task, which cost more than the claim itself.  OR
--    chains, and "finished_ms IS [NOT] NULL" (which the CHECKs tie to the
--    finished states), cost nothing.  store.c runs migrations with foreign
--    keys off, as SQLite's procedure for rebuilding a table requires, and
--    checks them before committing; ids and the AUTOINCREMENT high-water
--    mark carry over.
-- 2. Add a workers table (one row per live worker process), named locks
--    for exclusive (cron) runs, results.truncated, and tasks_due so the
--    engine can find the next scheduled task in O(log n).

-- The views name these tables; views.sql makes them again afterwards.
DROP VIEW IF EXISTS spool_queues;
DROP VIEW IF EXISTS spool_ready;
DROP VIEW IF EXISTS spool_running;
DROP VIEW IF EXISTS spool_dead;
DROP VIEW IF EXISTS spool_history;

CREATE TABLE queues_new (
	name		TEXT PRIMARY KEY NOT NULL
			CHECK (typeof(name) = 'text' AND length(name) BETWEEN 1 AND 128),
	paused		INTEGER NOT NULL DEFAULT 0 CHECK (paused = 0 OR paused = 1),
	max_depth	INTEGER NOT NULL DEFAULT 0 CHECK (max_depth >= 0),
	priority	INTEGER NOT NULL DEFAULT 0,
	max_attempts	INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
	backoff		TEXT NOT NULL DEFAULT 'exponential'
			CHECK (backoff = 'fixed' OR backoff = 'linear' OR
			    backoff = 'exponential'),
	backoff_base_ms	INTEGER NOT NULL DEFAULT 1000 CHECK (backoff_base_ms >= 0),
	backoff_cap_ms	INTEGER NOT NULL DEFAULT 3600000 CHECK (backoff_cap_ms >= 0),
	backoff_jitter	REAL NOT NULL DEFAULT 0.2
			CHECK (backoff_jitter >= 0 AND backoff_jitter <= 1),
	lease_ms	INTEGER NOT NULL DEFAULT 30000 CHECK (lease_ms > 0),
	timeout_ms	INTEGER NOT NULL DEFAULT 0 CHECK (timeout_ms >= 0),
	retention_ms	INTEGER NOT NULL DEFAULT 604800000 CHECK (retention_ms >= 0),
	created_ms	INTEGER NOT NULL
);
INSERT INTO queues_new SELECT * FROM queues;
DROP TABLE queues;
ALTER TABLE queues_new RENAME TO queues;

-- A task is 'ready' (due when run_at_ms <= now), 'running' under a lease,
-- or finished: 'succeeded', 'dead' (dead_reason says why) or 'cancelled'.
-- A lease (owner, token, expiry) exists exactly while the task runs, and
-- finished_ms exactly once it has finished.
CREATE TABLE tasks_new (
	id		INTEGER PRIMARY KEY AUTOINCREMENT,
	queue		TEXT NOT NULL REFERENCES queues(name),
	state		TEXT NOT NULL CHECK (state = 'ready' OR state = 'running' OR
			    state = 'succeeded' OR state = 'dead' OR
			    state = 'cancelled'),
	priority	INTEGER NOT NULL,
	payload		BLOB,
	run_at_ms	INTEGER NOT NULL,
	deadline_ms	INTEGER,
	attempts	INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	max_attempts	INTEGER NOT NULL CHECK (max_attempts >= 1),
	idem_key	TEXT CHECK (idem_key IS NULL OR length(idem_key) BETWEEN 1 AND 256),
	lease_owner	TEXT,
	lease_token	INTEGER,
	lease_until_ms	INTEGER,
	cancel_requested INTEGER NOT NULL DEFAULT 0
			CHECK (cancel_requested = 0 OR cancel_requested = 1),
	created_ms	INTEGER NOT NULL,
	started_ms	INTEGER,
	finished_ms	INTEGER,
	last_error	TEXT,
	dead_reason	TEXT CHECK (dead_reason IS NULL OR dead_reason = 'failed' OR
			    dead_reason = 'exhausted' OR dead_reason = 'expired'),
	CHECK ((state = 'running') = (lease_token IS NOT NULL AND
	    lease_until_ms IS NOT NULL AND lease_owner IS NOT NULL)),
	CHECK ((state = 'succeeded' OR state = 'dead' OR state = 'cancelled') =
	    (finished_ms IS NOT NULL)),
	CHECK ((state = 'dead') = (dead_reason IS NOT NULL))
);
INSERT INTO tasks_new SELECT * FROM tasks;
-- Keep the AUTOINCREMENT high-water mark: ids are never reused.
DELETE FROM sqlite_sequence WHERE name = 'tasks_new';
UPDATE sqlite_sequence SET name = 'tasks_new' WHERE name = 'tasks';
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;

-- Claims walk this index in order, so they stay O(log n) at any size.
CREATE INDEX tasks_ready ON tasks (queue, priority DESC, run_at_ms, id)
	WHERE state = 'ready';
-- The earliest scheduled task of a queue, in O(log n): an idle engine
-- sleeps until then instead of polling.
CREATE INDEX tasks_due ON tasks (queue, run_at_ms) WHERE state = 'ready';
-- The reaper finds expired leases here.
CREATE INDEX tasks_running ON tasks (lease_until_ms) WHERE state = 'running';
-- Ready tasks with a deadline, so expired ones are found without a scan.
CREATE INDEX tasks_deadline ON tasks (deadline_ms)
	WHERE state = 'ready' AND deadline_ms IS NOT NULL;
-- Finished tasks by state and age, for counts and retention pruning.
CREATE INDEX tasks_finished ON tasks (queue, state, finished_ms)
	WHERE finished_ms IS NOT NULL;
-- An idempotency key names at most one unfinished task per queue.
CREATE UNIQUE INDEX tasks_key ON tasks (queue, idem_key)
	WHERE idem_key IS NOT NULL AND finished_ms IS NULL;

-- One row per succeeded task; truncated is 1 when a worker cut the output
-- to its size limit.
CREATE TABLE results_new (
	task_id		INTEGER PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
	output		BLOB,
	duration_ms	INTEGER NOT NULL CHECK (duration_ms >= 0),
	created_ms	INTEGER NOT NULL,
	truncated	INTEGER NOT NULL DEFAULT 0
			CHECK (truncated = 0 OR truncated = 1)
);
INSERT INTO results_new (task_id, output, duration_ms, created_ms)
	SELECT task_id, output, duration_ms, created_ms FROM results;
DROP TABLE results;
ALTER TABLE results_new RENAME TO results;

-- The event history: one row per finished attempt, whatever its end.
CREATE TABLE attempts_new (
	id		INTEGER PRIMARY KEY,
	task_id		INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
	attempt		INTEGER NOT NULL CHECK (attempt >= 1),
	worker		TEXT NOT NULL,
	started_ms	INTEGER NOT NULL,
	finished_ms	INTEGER NOT NULL,
	outcome		TEXT NOT NULL CHECK (outcome = 'succeeded' OR
			    outcome = 'failed' OR outcome = 'timed_out' OR
			    outcome = 'lease_lost' OR outcome = 'cancelled'),
	error		TEXT
);
INSERT INTO attempts_new SELECT * FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;
CREATE INDEX attempts_task ON attempts (task_id);

-- One row per worker process, refreshed by its tick; a row whose
-- heartbeat_ms is older than a few ticks belongs to a dead process.
CREATE TABLE workers (
	id		TEXT PRIMARY KEY NOT NULL,	-- the lease owner name
	host		TEXT NOT NULL,
	pid		INTEGER NOT NULL,
	queues		TEXT NOT NULL,			-- JSON array of names
	concurrency	INTEGER NOT NULL CHECK (concurrency >= 0),
	busy		INTEGER NOT NULL DEFAULT 0 CHECK (busy >= 0),
	started_ms	INTEGER NOT NULL,
	heartbeat_ms	INTEGER NOT NULL
);

-- Named leases: held by one owner until until_ms, renewed while it runs,
-- so a crashed holder blocks the next run for one lease at most.
CREATE TABLE locks (
	name		TEXT PRIMARY KEY NOT NULL
			CHECK (length(name) BETWEEN 1 AND 128),
	owner		TEXT NOT NULL,
	acquired_ms	INTEGER NOT NULL,
	until_ms	INTEGER NOT NULL
);

PRAGMA user_version = 2;
