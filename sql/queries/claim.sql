-- sql/queries/claim.sql -- the lease life cycle: claim, heartbeat, the
-- fenced outcomes, and the reaper.  Every write after a claim names the
-- task's id and lease token and must change exactly one row.

-- name: claim_level
-- in: queue text, below int
-- out: level int
-- The highest priority below ?2 among the ready tasks of queue ?1, due or
-- not; no row if there is none: one seek into tasks_ready (which orders a
-- queue's priorities from the highest down, so no sort).
SELECT priority AS level FROM tasks INDEXED BY tasks_ready
 WHERE queue = ?1 AND state = 'ready' AND priority < ?2
 ORDER BY priority DESC LIMIT 1;

-- name: claim_candidates
-- in: queue text, priority int, now_ms int, max int
-- out: id int, priority int, run_at_ms int, deadline_ms int
-- The due tasks of queue ?1 at priority ?2 at ?3 now_ms, at most ?4, in
-- claim order.  One priority level at a time, so scheduled tasks of a
-- higher priority are skipped with one seek instead of walked through
-- (the index orders by priority, then run_at_ms).  INDEXED BY: the
-- planner may otherwise prefer another index and sort every due row.
SELECT id, priority, run_at_ms, deadline_ms FROM tasks INDEXED BY tasks_ready
 WHERE queue = ?1 AND state = 'ready' AND priority = ?2 AND run_at_ms <= ?3
 ORDER BY run_at_ms, id LIMIT ?4;

-- name: claim_tasks
-- in: ids text, owner text, token int, lease_until_ms int, started_ms int0
-- ?1 the ids, a JSON array; ?2 owner, ?3 token, ?4 lease_until_ms, ?5
-- started_ms: now for a caller that runs the tasks at once, NULL for a
-- pool, whose engine writes each start when a thread starts the handler
-- (task_started), so a task claimed ahead of its thread reads as
-- "claimed", not running.  One statement for a claim's tasks of one lease
-- length: a statement per task cost a tenth of a drain in statement
-- set-up.  The tasks of one claim share its fencing token: an outcome
-- names the task's id and the token, and a later claim of the same task
-- draws a new one.  No RETURNING: SQLite runs RETURNING as a trigger, and
-- a trigger makes every claimed row keep a statement journal; claim_rows
-- reads the rows instead.
--
-- Every statement here that changes tasks.state is UPDATE OR FAIL: the
-- batch counters' trigger (schema 3) would otherwise make SQLite keep a
-- statement journal for each, to undo a half-done statement on a
-- constraint error.  spool rolls the whole transaction back on any error,
-- so that undo is never needed.
UPDATE OR FAIL tasks SET state = 'running', attempts = attempts + 1,
    lease_owner = ?2, lease_token = ?3, lease_until_ms = ?4, started_ms = ?5
 WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'ready';

-- name: claim_rows
-- in: ids text, token int
-- out: place int, id int, queue text, payload blob, attempts int
-- out: max_attempts int, cancel_requested int, run_at_ms int, item_id int
-- out: stage_id int, stage_timeout_ms int, lease_until_ms int
-- What a job needs of each task claim_tasks just claimed, ?1 (a JSON array
-- of ids) under token ?2, each with its place in ?1 (first column).  A
-- pipeline stage task's timeout comes from its stage.
SELECT j.key AS place, t.id, t.queue, t.payload, t.attempts,
    t.max_attempts, t.cancel_requested, t.run_at_ms, t.item_id, t.stage_id,
    CASE WHEN t.stage_id IS NOT NULL THEN
	(SELECT timeout_ms FROM pipeline_stages WHERE id = t.stage_id) END
	AS stage_timeout_ms,
    t.lease_until_ms
  FROM json_each(?1) AS j CROSS JOIN tasks AS t ON t.id = j.value
 WHERE t.state = 'running' AND t.lease_token = ?2;

-- name: expire_task
-- in: id int, now_ms int
-- A candidate whose deadline passed before it could start.  ?1 id, ?2 now_ms.
UPDATE OR FAIL tasks SET state = 'dead', dead_reason = 'expired', finished_ms = ?2,
    last_error = 'deadline passed before the task started'
 WHERE id = ?1 AND state = 'ready';

-- name: expire_deadlines
-- in: now_ms int, max int
-- out: queue text
-- Up to ?2 ready tasks whose deadline is at or before ?1 now_ms.
UPDATE OR FAIL tasks SET state = 'dead', dead_reason = 'expired', finished_ms = ?1,
    last_error = 'deadline passed before the task started'
 WHERE id IN (SELECT id FROM tasks WHERE state = 'ready'
		AND deadline_ms IS NOT NULL AND deadline_ms <= ?1 LIMIT ?2)
RETURNING queue;

-- name: heartbeat
-- in: id int, token int, until_ms int
-- out: cancel_requested int
-- ?1 id, ?2 token, ?3 new lease_until_ms.
UPDATE tasks SET lease_until_ms = ?3
 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'
RETURNING cancel_requested;

-- name: lease_check
-- in: id int, token int, allowance int
-- out: cancel_requested int, max_attempts int, backoff text
-- out: backoff_base_ms int, backoff_cap_ms int, backoff_jitter real
-- out: on_error text, retries int, retry_delay_ms int, failures int
-- What a failure needs to decide between retry and dead, if the lease
-- (?1 id, ?2 token) still holds.
-- A task whose queue row was deleted by hand gets the default policy.
-- A pipeline stage task has its stage's strategy instead: its error
-- strategy, retries and delay, and how many of its attempts failed
-- (lost leases do not count) since its allowance of attempts was last
-- given (spool retry gives a fresh one on top of those used); ?3 is the
-- allowance beyond the retries (1 + SPOOL_STAGE_LEASE_LOSSES).
SELECT t.cancel_requested, t.max_attempts,
    coalesce(q.backoff, 'exponential') AS backoff,
    coalesce(q.backoff_base_ms, 1000) AS backoff_base_ms,
    coalesce(q.backoff_cap_ms, 3600000) AS backoff_cap_ms,
    coalesce(q.backoff_jitter, 0.2) AS backoff_jitter,
    s.on_error, s.retries, s.retry_delay_ms,
    CASE WHEN s.id IS NOT NULL THEN (SELECT count(*) FROM attempts a
	WHERE a.task_id = t.id AND
	    a.attempt > t.max_attempts - (s.retries + ?3) AND
	    (a.outcome = 'failed' OR a.outcome = 'timed_out')) END AS failures
  FROM tasks t LEFT JOIN queues q ON q.name = t.queue
  LEFT JOIN pipeline_stages s ON s.id = t.stage_id
 WHERE t.id = ?1 AND t.lease_token = ?2 AND t.state = 'running';

-- name: task_started
-- in: id int, token int, started_ms int
-- A pool's handler started the task: ?1 id, ?2 token, ?3 started_ms.
-- Changes nothing if the lease was lost meanwhile.
UPDATE tasks SET started_ms = ?3
 WHERE id = ?1 AND lease_token = ?2 AND state = 'running';

-- name: task_succeed
-- in: id int, token int, finished_ms int, started_ms int
-- ?1 id, ?2 token, ?3 finished_ms (when the handler returned), ?4
-- started_ms (when it started): the attempt's true times, whatever the
-- claim and the commit added around them.
UPDATE OR FAIL tasks SET state = 'succeeded', finished_ms = ?3,
    started_ms = ?4, last_error = NULL,
    lease_owner = NULL, lease_token = NULL, lease_until_ms = NULL
 WHERE id = ?1 AND lease_token = ?2 AND state = 'running';

-- name: task_requeue
-- in: id int, token int, run_at_ms int, error textn, started_ms int0
-- Back to ready for another attempt.  ?1 id, ?2 token, ?3 run_at_ms,
-- ?4 error text, ?5 started_ms of the attempt that failed.
UPDATE OR FAIL tasks SET state = 'ready', run_at_ms = ?3, last_error = ?4,
    started_ms = ?5,
    lease_owner = NULL, lease_token = NULL, lease_until_ms = NULL
 WHERE id = ?1 AND lease_token = ?2 AND state = 'running';

-- name: task_end
-- in: id int, token int, state text, dead_reason text, error textn
-- in: finished_ms int, started_ms int0
-- To a final state other than succeeded.  ?1 id, ?2 token, ?3 state
-- ('dead' or 'cancelled'), ?4 dead_reason, ?5 error text, ?6
-- finished_ms, ?7 started_ms of the attempt.
UPDATE OR FAIL tasks SET state = ?3, dead_reason = ?4, last_error = ?5,
    finished_ms = ?6, started_ms = ?7,
    lease_owner = NULL, lease_token = NULL, lease_until_ms = NULL
 WHERE id = ?1 AND lease_token = ?2 AND state = 'running';

-- name: task_release
-- in: id int, token int, now_ms int
-- out: state text
-- Hand an unstarted task back: the attempt is not charged.  A task whose
-- cancellation was asked for ends cancelled instead.  ?1 id, ?2 token,
-- ?3 now_ms.
UPDATE OR FAIL tasks SET
    state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'ready' END,
    finished_ms = CASE WHEN cancel_requested THEN ?3 END,
    attempts = attempts - 1, started_ms = NULL,
    lease_owner = NULL, lease_token = NULL, lease_until_ms = NULL
 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'
RETURNING state;

-- name: result_insert
-- in: task_id int, output payload, duration_ms int, now_ms int, truncated int
-- ?1 task_id, ?2 output, ?3 duration_ms, ?4 now_ms, ?5 truncated.
INSERT OR REPLACE INTO results (task_id, output, duration_ms, created_ms,
    truncated)
VALUES (?1, ?2, ?3, ?4, ?5);

-- name: attempt_insert
-- in: task_id int, attempt int, worker text, started_ms int, finished_ms int
-- in: outcome text, error textn
-- ?1 task_id, ?2 attempt, ?3 worker, ?4 started_ms, ?5 finished_ms,
-- ?6 outcome, ?7 error.
INSERT INTO attempts (task_id, attempt, worker, started_ms, finished_ms,
    outcome, error)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7);

-- name: reap_expired
-- in: now_ms int, max int
-- out: id int, lease_token int, lease_owner text, attempts int
-- out: max_attempts int, started_ms int, cancel_requested int, backoff text
-- out: backoff_base_ms int, backoff_cap_ms int, backoff_jitter real
-- out: queue text
-- Up to ?2 running tasks whose lease ended before ?1 now_ms, with what the
-- reaper needs to retry or bury them.
SELECT t.id, t.lease_token, t.lease_owner, t.attempts, t.max_attempts,
    t.started_ms, t.cancel_requested,
    coalesce(q.backoff, 'exponential') AS backoff,
    coalesce(q.backoff_base_ms, 1000) AS backoff_base_ms,
    coalesce(q.backoff_cap_ms, 3600000) AS backoff_cap_ms,
    coalesce(q.backoff_jitter, 0.2) AS backoff_jitter,
    t.queue
  FROM tasks t LEFT JOIN queues q ON q.name = t.queue
 WHERE t.state = 'running' AND t.lease_until_ms < ?1
 ORDER BY t.lease_until_ms LIMIT ?2;

-- name: renew_leases
-- Extend every lease that owner holds on the queue to until_ms; the rows
-- returned are the leases the owner still holds (any other it thinks it
-- holds was lost), with their cancellation flags.
-- in: owner text, queue text, until_ms int
-- out: id int, lease_token int, cancel_requested int
UPDATE tasks SET lease_until_ms = ?3
 WHERE lease_owner = ?1 AND queue = ?2 AND state = 'running'
RETURNING id, lease_token, cancel_requested;

-- name: cancel_requests
-- in: owner text
-- out: id int, lease_token int
-- The leases the owner holds whose cancellation was asked for (spool
-- cancel, a pipeline's fail_fast): through the partial index of leased
-- tasks, which are few, so asking every quarter second costs little.
SELECT id, lease_token FROM tasks INDEXED BY tasks_running
 WHERE state = 'running' AND lease_owner = ?1 AND cancel_requested = 1;

-- fragment: ready_levels
-- The distinct priorities of queue ?1's ready tasks, as the table levels
-- (p), from the highest down: one seek into tasks_ready each, which
-- orders a queue's ready tasks by priority, then run_at_ms.  The queries
-- below then find, per level, a range of run_at_ms with one more seek,
-- instead of walking the tasks scheduled for later.
WITH RECURSIVE levels (p) AS (
	SELECT max(priority) FROM tasks INDEXED BY tasks_ready
	 WHERE queue = ?1 AND state = 'ready'
	UNION ALL
	SELECT (SELECT max(priority) FROM tasks INDEXED BY tasks_ready
		 WHERE queue = ?1 AND state = 'ready' AND priority < levels.p)
	  FROM levels WHERE levels.p IS NOT NULL)

-- name: next_due
-- When the next scheduled task of the queue (after now_ms) is due, or
-- NULL: per priority level, its first run_at_ms after now.
-- in: queue text, now_ms int
-- out: due_ms int
-- use: ready_levels
SELECT min((SELECT min(run_at_ms) FROM tasks INDEXED BY tasks_ready
	     WHERE queue = ?1 AND state = 'ready' AND priority = levels.p
	       AND run_at_ms > ?2)) AS due_ms
  FROM levels WHERE levels.p IS NOT NULL;

-- name: backlog
-- in: queue text, now_ms int, max int
-- out: n int
-- Due tasks of the queue at now_ms, counted up to max at most, so the
-- cost stays bounded however deep the queue: per priority level, the
-- range of its due tasks in tasks_ready.
-- use: ready_levels
SELECT count(*) AS n FROM (SELECT 1 FROM levels, tasks INDEXED BY tasks_ready
	 WHERE levels.p IS NOT NULL AND tasks.queue = ?1
	   AND tasks.state = 'ready' AND tasks.priority = levels.p
	   AND tasks.run_at_ms <= ?2 LIMIT ?3);
