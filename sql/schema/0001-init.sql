-- sql/schema/0001-init.sql -- the first spool schema: queues, tasks,
-- results and the attempt history.
--
-- Conventions: every time is INTEGER Unix milliseconds (UTC) computed in C
-- and named *_ms; booleans are 0/1 INTEGERs; CHECK constraints refuse rows
-- that break the life cycle, so a hand edit in the sqlite3 shell cannot
-- put a task in an impossible state.  Batches and pipelines add their own
-- tables and columns in later migrations.

CREATE TABLE queues (
	name		TEXT PRIMARY KEY NOT NULL
			CHECK (typeof(name) = 'text' AND length(name) BETWEEN 1 AND 128),
	paused		INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
	max_depth	INTEGER NOT NULL DEFAULT 0 CHECK (max_depth >= 0),
	priority	INTEGER NOT NULL DEFAULT 0,
	max_attempts	INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
	backoff		TEXT NOT NULL DEFAULT 'exponential'
			CHECK (backoff IN ('fixed', 'linear', 'exponential')),
	backoff_base_ms	INTEGER NOT NULL DEFAULT 1000 CHECK (backoff_base_ms >= 0),
	backoff_cap_ms	INTEGER NOT NULL DEFAULT 3600000 CHECK (backoff_cap_ms >= 0),
	backoff_jitter	REAL NOT NULL DEFAULT 0.2
			CHECK (backoff_jitter >= 0 AND backoff_jitter <= 1),
	lease_ms	INTEGER NOT NULL DEFAULT 30000 CHECK (lease_ms > 0),
	timeout_ms	INTEGER NOT NULL DEFAULT 0 CHECK (timeout_ms >= 0),
	retention_ms	INTEGER NOT NULL DEFAULT 604800000 CHECK (retention_ms >= 0),
	created_ms	INTEGER NOT NULL
);

-- A task is 'ready' (due when run_at_ms <= now), 'running' under a lease,
-- or finished: 'succeeded', 'dead' (dead_reason says why) or 'cancelled'.
-- A lease (owner, token, expiry) exists exactly while the task runs.
CREATE TABLE tasks (
	id		INTEGER PRIMARY KEY AUTOINCREMENT,
	queue		TEXT NOT NULL REFERENCES queues(name),
	state		TEXT NOT NULL CHECK (state IN
			    ('ready', 'running', 'succeeded', 'dead', 'cancelled')),
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
	cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
	created_ms	INTEGER NOT NULL,
	started_ms	INTEGER,
	finished_ms	INTEGER,
	last_error	TEXT,
	dead_reason	TEXT CHECK (dead_reason IS NULL OR dead_reason IN
			    ('failed', 'exhausted', 'expired')),
	CHECK ((state = 'running') = (lease_token IS NOT NULL AND
	    lease_until_ms IS NOT NULL AND lease_owner IS NOT NULL)),
	CHECK ((state IN ('succeeded', 'dead', 'cancelled')) = (finished_ms IS NOT NULL)),
	CHECK ((state = 'dead') = (dead_reason IS NOT NULL))
);

-- Claims walk this index in order, so they stay O(log n) at any size.
CREATE INDEX tasks_ready ON tasks (queue, priority DESC, run_at_ms, id)
	WHERE state = 'ready';
-- The reaper finds expired leases here.
CREATE INDEX tasks_running ON tasks (lease_until_ms) WHERE state = 'running';
-- Ready tasks with a deadline, so expired ones are found without a scan.
CREATE INDEX tasks_deadline ON tasks (deadline_ms)
	WHERE state = 'ready' AND deadline_ms IS NOT NULL;
-- Finished tasks by age, for counts and retention pruning.
CREATE INDEX tasks_finished ON tasks (queue, state, finished_ms)
	WHERE state IN ('succeeded', 'dead', 'cancelled');
-- An idempotency key names at most one unfinished task per queue.
CREATE UNIQUE INDEX tasks_key ON tasks (queue, idem_key)
	WHERE idem_key IS NOT NULL AND state IN ('ready', 'running');

-- One row per succeeded task.
CREATE TABLE results (
	task_id		INTEGER PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
	output		BLOB,
	duration_ms	INTEGER NOT NULL CHECK (duration_ms >= 0),
	created_ms	INTEGER NOT NULL
);

-- The event history: one row per finished attempt, whatever its end.
CREATE TABLE attempts (
	id		INTEGER PRIMARY KEY,
	task_id		INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
	attempt		INTEGER NOT NULL CHECK (attempt >= 1),
	worker		TEXT NOT NULL,
	started_ms	INTEGER NOT NULL,
	finished_ms	INTEGER NOT NULL,
	outcome		TEXT NOT NULL CHECK (outcome IN
			    ('succeeded', 'failed', 'timed_out', 'lease_lost', 'cancelled')),
	error		TEXT
);
CREATE INDEX attempts_task ON attempts (task_id);

PRAGMA user_version = 1;
