-- sql/queries/admin.sql -- reading tasks and the operator's commands:
-- get, list, history, cancel, retry, purge, prune, stats.

-- name: task_get
-- ?1 id.  Column order is the one admin.c decodes.
SELECT t.id, t.queue, t.state, t.priority, t.payload, t.run_at_ms,
    t.deadline_ms, t.attempts, t.max_attempts, t.idem_key, t.lease_owner,
    t.lease_until_ms, t.cancel_requested, t.created_ms, t.started_ms,
    t.finished_ms, t.last_error, t.dead_reason,
    r.task_id IS NOT NULL, r.output, r.duration_ms, t.batch_id
  FROM tasks t LEFT JOIN results r ON r.task_id = t.id
 WHERE t.id = ?1;

-- name: task_list_asc
-- Keyset page: ?1 queue or NULL, ?2 state or NULL, ids above ?3, at most ?4.
SELECT t.id, t.queue, t.state, t.priority, t.payload, t.run_at_ms,
    t.deadline_ms, t.attempts, t.max_attempts, t.idem_key, t.lease_owner,
    t.lease_until_ms, t.cancel_requested, t.created_ms, t.started_ms,
    t.finished_ms, t.last_error, t.dead_reason, 0, NULL, NULL, t.batch_id
  FROM tasks t
 WHERE (?1 IS NULL OR t.queue = ?1) AND (?2 IS NULL OR t.state = ?2)
   AND t.id > ?3
 ORDER BY t.id LIMIT ?4;

-- name: task_list_desc
-- As task_list_asc, newest first: ids below ?3.
SELECT t.id, t.queue, t.state, t.priority, t.payload, t.run_at_ms,
    t.deadline_ms, t.attempts, t.max_attempts, t.idem_key, t.lease_owner,
    t.lease_until_ms, t.cancel_requested, t.created_ms, t.started_ms,
    t.finished_ms, t.last_error, t.dead_reason, 0, NULL, NULL, t.batch_id
  FROM tasks t
 WHERE (?1 IS NULL OR t.queue = ?1) AND (?2 IS NULL OR t.state = ?2)
   AND t.id < ?3
 ORDER BY t.id DESC LIMIT ?4;

-- name: task_list_running_asc
-- As task_list_asc for leased tasks (stored 'running') that are ?2:
-- 'running' (started, lease live), 'claimed' (not started, lease live)
-- or 'expired' (lease ended before ?5 now_ms).  Through the partial
-- index of leased tasks, which are few, instead of a walk of every id
-- until ?4 are found (a dashboard asks every few seconds).
SELECT t.id, t.queue, t.state, t.priority, t.payload, t.run_at_ms,
    t.deadline_ms, t.attempts, t.max_attempts, t.idem_key, t.lease_owner,
    t.lease_until_ms, t.cancel_requested, t.created_ms, t.started_ms,
    t.finished_ms, t.last_error, t.dead_reason, 0, NULL, NULL, t.batch_id
  FROM tasks t INDEXED BY tasks_running
 WHERE t.state = 'running' AND (?1 IS NULL OR t.queue = ?1)
   AND t.id > ?3
   AND CASE WHEN t.lease_until_ms < ?5 THEN 'expired'
	    WHEN t.started_ms IS NULL THEN 'claimed' ELSE 'running' END = ?2
 ORDER BY t.id LIMIT ?4;

-- name: task_list_running_desc
-- As task_list_running_asc, newest first: ids below ?3.
SELECT t.id, t.queue, t.state, t.priority, t.payload, t.run_at_ms,
    t.deadline_ms, t.attempts, t.max_attempts, t.idem_key, t.lease_owner,
    t.lease_until_ms, t.cancel_requested, t.created_ms, t.started_ms,
    t.finished_ms, t.last_error, t.dead_reason, 0, NULL, NULL, t.batch_id
  FROM tasks t INDEXED BY tasks_running
 WHERE t.state = 'running' AND (?1 IS NULL OR t.queue = ?1)
   AND t.id < ?3
   AND CASE WHEN t.lease_until_ms < ?5 THEN 'expired'
	    WHEN t.started_ms IS NULL THEN 'claimed' ELSE 'running' END = ?2
 ORDER BY t.id DESC LIMIT ?4;

-- name: attempt_list
-- The history of task ?1, oldest first.
SELECT attempt, worker, started_ms, finished_ms, outcome, error
  FROM attempts WHERE task_id = ?1 ORDER BY id;

-- name: task_state
SELECT state FROM tasks WHERE id = ?1;

-- name: task_cancel_ready
-- ?1 id, ?2 now_ms.
UPDATE OR FAIL tasks SET state = 'cancelled', finished_ms = ?2
 WHERE id = ?1 AND state = 'ready'
RETURNING queue;

-- name: task_cancel_running
-- Flag a running task; its worker sees the flag on its next heartbeat.
UPDATE tasks SET cancel_requested = 1 WHERE id = ?1 AND state = 'running';

-- name: task_retry
-- A dead or cancelled task gets a fresh set of attempts: its allowance
-- again on top of the attempts it used (so the history keeps counting
-- up), no deadline (an expired task would die again at once), due now.
-- ?1 id, ?2 now_ms.
UPDATE OR FAIL tasks SET state = 'ready', run_at_ms = ?2,
    max_attempts = attempts + max_attempts, deadline_ms = NULL,
    started_ms = NULL, finished_ms = NULL, dead_reason = NULL,
    cancel_requested = 0
 WHERE id = ?1 AND (state = 'dead' OR state = 'cancelled');

-- name: retry_candidates
-- Up to ?3 tasks of queue ?1 in finished state ?2, after (?4 finished_ms,
-- ?5 id) in the order of tasks_finished, so each page is one range read.
SELECT id, finished_ms FROM tasks
 WHERE queue = ?1 AND state = ?2 AND finished_ms IS NOT NULL
   AND (finished_ms, id) > (?4, ?5)
 ORDER BY finished_ms, id LIMIT ?3;

-- name: purge_batch
-- Delete up to ?2 ready tasks of queue ?1.
DELETE FROM tasks WHERE id IN
    (SELECT id FROM tasks WHERE queue = ?1 AND state = 'ready' LIMIT ?2);

-- name: prune_batch
-- Delete up to ?4 tasks of queue ?1 in finished state ?2 that finished
-- before ?3; results and attempts go with them (ON DELETE CASCADE).
DELETE FROM tasks WHERE id IN
    (SELECT id FROM tasks WHERE queue = ?1 AND state = ?2
	AND finished_ms < ?3 LIMIT ?4);

-- name: stats_due
-- Due ready tasks of queue ?1 at ?2 now_ms, and the earliest run_at_ms:
-- per priority level (ready_levels in claim.sql), the range of its due
-- tasks in tasks_ready, so scheduled tasks are not walked.
-- use: ready_levels
SELECT count(*), min(tasks.run_at_ms) FROM levels, tasks INDEXED BY tasks_ready
 WHERE levels.p IS NOT NULL AND tasks.queue = ?1 AND tasks.state = 'ready'
   AND tasks.priority = levels.p AND tasks.run_at_ms <= ?2;

-- name: stats_running
-- Leased tasks of queue ?1 at ?2 now_ms: running (started, lease live),
-- claimed (not started, lease live), expired (lease ended, not reaped).
SELECT coalesce(sum(lease_until_ms >= ?2 AND started_ms IS NOT NULL), 0),
    coalesce(sum(lease_until_ms >= ?2 AND started_ms IS NULL), 0),
    coalesce(sum(lease_until_ms < ?2), 0)
  FROM tasks WHERE state = 'running' AND queue = ?1;

-- name: stats_finished
SELECT state, count(*) FROM tasks
 WHERE queue = ?1 AND finished_ms IS NOT NULL
 GROUP BY state;
