-- sql/schema/0002-workers.sql -- what the engine adds: a row per live
-- worker process, named locks for exclusive (cron) runs, truncation of
-- results, and an index that tells when the next scheduled task is due.

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

-- 1 when a worker cut the output to its size limit.
ALTER TABLE results ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0
	CHECK (truncated IN (0, 1));

-- The earliest scheduled task of a queue, in O(log n): the engine sleeps
-- until then instead of polling.
CREATE INDEX tasks_due ON tasks (queue, run_at_ms) WHERE state = 'ready';

PRAGMA user_version = 2;
