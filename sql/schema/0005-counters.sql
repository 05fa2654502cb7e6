-- sql/schema/0005-counters.sql -- per-queue counters that only grow.
--
-- Counts of what happened on each queue since it was first used, kept
-- in the database so they survive restarts and add up over every
-- process: a Prometheus counter must not go down when old tasks are
-- pruned, so they are not counts of rows.  The library adds up what a
-- write transaction did, per queue, and writes one row per queue just
-- before its COMMIT, so they move exactly with the tasks.
--   enqueued    tasks added (enqueue, hooks, pipeline items and hand-offs)
--   claimed     attempts started
--   succeeded   attempts that succeeded
--   failed      attempts that failed (the handler said so, or timed out)
--   retried     tasks made ready again by their retry policy, after a
--               failed attempt or a lost lease
--   dead        tasks that died (failed for good, attempts used up, expired)
--   expired     of those, tasks whose deadline passed before they started
--   lease_lost  attempts whose lease expired (their worker died or hung)
--   cancelled   tasks cancelled

CREATE TABLE queue_counters (
	queue		TEXT PRIMARY KEY NOT NULL,
	enqueued	INTEGER NOT NULL DEFAULT 0 CHECK (enqueued >= 0),
	claimed		INTEGER NOT NULL DEFAULT 0 CHECK (claimed >= 0),
	succeeded	INTEGER NOT NULL DEFAULT 0 CHECK (succeeded >= 0),
	failed		INTEGER NOT NULL DEFAULT 0 CHECK (failed >= 0),
	retried		INTEGER NOT NULL DEFAULT 0 CHECK (retried >= 0),
	dead		INTEGER NOT NULL DEFAULT 0 CHECK (dead >= 0),
	expired		INTEGER NOT NULL DEFAULT 0 CHECK (expired >= 0),
	lease_lost	INTEGER NOT NULL DEFAULT 0 CHECK (lease_lost >= 0),
	cancelled	INTEGER NOT NULL DEFAULT 0 CHECK (cancelled >= 0)
) WITHOUT ROWID;

-- Start from what the tables still show, so an upgraded file does not
-- begin at zero (pruned tasks are gone: the counts start from there).
-- One pass over tasks and one over attempts.
INSERT INTO queue_counters (queue, enqueued, claimed, dead, expired, cancelled)
SELECT queue, count(*), sum(state = 'running'), sum(state = 'dead'),
    sum(state = 'dead' AND dead_reason = 'expired'), sum(state = 'cancelled')
  FROM tasks WHERE 1 GROUP BY queue;
INSERT INTO queue_counters (queue, claimed, succeeded, failed, lease_lost)
SELECT t.queue, count(*), sum(a.outcome = 'succeeded'),
    sum(a.outcome = 'failed' OR a.outcome = 'timed_out'),
    sum(a.outcome = 'lease_lost')
  FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE 1 GROUP BY t.queue
ON CONFLICT (queue) DO UPDATE SET claimed = claimed + excluded.claimed,
    succeeded = excluded.succeeded, failed = excluded.failed,
    lease_lost = excluded.lease_lost;

PRAGMA user_version = 5;
