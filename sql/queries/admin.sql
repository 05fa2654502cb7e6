-- sql/queries/admin.sql -- reading tasks and the operator's commands:
-- get, list, history, cancel, retry, purge, prune, stats.

-- name: task_get
-- in: id int
-- out: id int, queue text, state text, priority int, payload blob
-- out: run_at_ms int, deadline_ms int, attempts int, max_attempts int
-- out: idem_key text, lease_owner text, lease_until_ms int
-- out: cancel_requested int, created_ms int, started_ms int, started int
-- out: finished_ms int, last_error text, dead_reason text, has_result int
-- out: output blob, duration_ms int, batch_id int
-- A task with its result.  started tells a NULL started_ms (a leased task
-- claimed ahead of its start) from a time.
SELECT t.id, t.queue, t.state, t.priority, t.payload, t.run_at_ms,
    t.deadline_ms, t.attempts, t.max_attempts, t.idem_key, t.lease_owner,
    t.lease_until_ms, t.cancel_requested, t.created_ms, t.started_ms,
    t.started_ms IS NOT NULL AS started, t.finished_ms, t.last_error,
    t.dead_reason,
    r.task_id IS NOT NULL AS has_result, r.output, r.duration_ms, t.batch_id
  FROM tasks t LEFT JOIN results r ON r.task_id = t.id
 WHERE t.id = ?1;

-- fragment: task_list_columns
-- The columns of task_get (-- out: like task_get) for a list of tasks of
-- table t, whose results are not read.
SELECT t.id, t.queue, t.state, t.priority, t.payload, t.run_at_ms,
    t.deadline_ms, t.attempts, t.max_attempts, t.idem_key, t.lease_owner,
    t.lease_until_ms, t.cancel_requested, t.created_ms, t.started_ms,
    t.started_ms IS NOT NULL AS started, t.finished_ms, t.last_error,
    t.dead_reason, 0 AS has_result, NULL AS output, NULL AS duration_ms,
    t.batch_id

-- name: task_list_asc
-- in: queue text, state text, after_id int, max int
-- out: like task_get
-- Keyset page: of the queue (NULL: any) and state (NULL: any), ids above
-- after_id, at most max; results are not read.
-- use: task_list_columns
  FROM tasks t
 WHERE (?1 IS NULL OR t.queue = ?1) AND (?2 IS NULL OR t.state = ?2)
   AND t.id > ?3
 ORDER BY t.id LIMIT ?4;

-- name: task_list_desc
-- in: queue text, state text, before_id int, max int
-- out: like task_get
-- As task_list_asc, newest first: ids below before_id.
-- use: task_list_columns
  FROM tasks t
 WHERE (?1 IS NULL OR t.queue = ?1) AND (?2 IS NULL OR t.state = ?2)
   AND t.id < ?3
 ORDER BY t.id DESC LIMIT ?4;

-- name: task_list_running_asc
-- in: queue text, state text, after_id int, max int, now_ms int
-- out: like task_get
-- As task_list_asc for leased tasks (stored 'running') that are ?2:
-- 'running' (started, lease live), 'claimed' (not started, lease live)
-- or 'expired' (lease ended before ?5 now_ms).  Through the partial
-- index of leased tasks, which are few, instead of a walk of every id
-- until ?4 are found (a dashboard asks every few seconds).
-- use: task_list_columns
  FROM tasks t INDEXED BY tasks_running
 WHERE t.state = 'running' AND (?1 IS NULL OR t.queue = ?1)
   AND t.id > ?3
   AND CASE WHEN t.lease_until_ms < ?5 THEN 'expired'
	    WHEN t.started_ms IS NULL THEN 'claimed' ELSE 'running' END = ?2
 ORDER BY t.id LIMIT ?4;

-- name: task_list_running_desc
-- in: queue text, state text, before_id int, max int, now_ms int
-- out: like task_get
-- As task_list_running_asc, newest first: ids below before_id.
-- use: task_list_columns
  FROM tasks t INDEXED BY tasks_running
 WHERE t.state = 'running' AND (?1 IS NULL OR t.queue = ?1)
   AND t.id < ?3
   AND CASE WHEN t.lease_until_ms < ?5 THEN 'expired'
	    WHEN t.started_ms IS NULL THEN 'claimed' ELSE 'running' END = ?2
 ORDER BY t.id DESC LIMIT ?4;

-- name: task_list_batch_asc
-- in: batch_id int, queue text, state text, after_id int, max int
-- in: now_ms int
-- out: like task_get
-- As task_list_asc for the tasks of batch ?1.  tasks_batch is (batch_id,
-- state) and so, per stored state, in id order: the five states' ranges
-- are merged (MERGE (UNION ALL), no sort) and stop after ?5 ids, so a
-- page of a batch of millions reads a page.  ?3 is a state as reported
-- (running, claimed, expired: the lease at ?6 now_ms, as
-- task_list_running_asc) or NULL; the other arms are off.
-- use: task_list_columns
  FROM tasks t
 WHERE t.id IN (
    SELECT id FROM tasks WHERE batch_id = ?1 AND state = 'ready'
       AND (?3 IS NULL OR ?3 = 'ready') AND (?2 IS NULL OR queue = ?2)
       AND id > ?4
    UNION ALL
    SELECT id FROM tasks WHERE batch_id = ?1 AND state = 'running'
       AND (?2 IS NULL OR queue = ?2) AND id > ?4
       AND (?3 IS NULL OR CASE WHEN lease_until_ms < ?6 THEN 'expired'
	    WHEN started_ms IS NULL THEN 'claimed' ELSE 'running' END = ?3)
    UNION ALL
    SELECT id FROM tasks WHERE batch_id = ?1 AND state = 'succeeded'
       AND (?3 IS NULL OR ?3 = 'succeeded') AND (?2 IS NULL OR queue = ?2)
       AND id > ?4
    UNION ALL
    SELECT id FROM tasks WHERE batch_id = ?1 AND state = 'dead'
       AND (?3 IS NULL OR ?3 = 'dead') AND (?2 IS NULL OR queue = ?2)
       AND id > ?4
    UNION ALL
    SELECT id FROM tasks WHERE batch_id = ?1 AND state = 'cancelled'
       AND (?3 IS NULL OR ?3 = 'cancelled') AND (?2 IS NULL OR queue = ?2)
       AND id > ?4
    ORDER BY 1 LIMIT ?5)
 ORDER BY t.id LIMIT ?5;

-- name: task_list_batch_desc
-- in: batch_id int, queue text, state text, before_id int, max int
-- in: now_ms int
-- out: like task_get
-- As task_list_batch_asc, newest first: ids below before_id.
-- use: task_list_columns
  FROM tasks t
 WHERE t.id IN (
    SELECT id FROM tasks WHERE batch_id = ?1 AND state = 'ready'
       AND (?3 IS NULL OR ?3 = 'ready') AND (?2 IS NULL OR queue = ?2)
       AND id < ?4
    UNION ALL
    SELECT id FROM tasks WHERE batch_id = ?1 AND state = 'running'
       AND (?2 IS NULL OR queue = ?2) AND id < ?4
       AND (?3 IS NULL OR CASE WHEN lease_until_ms < ?6 THEN 'expired'
	    WHEN started_ms IS NULL THEN 'claimed' ELSE 'running' END = ?3)
    UNION ALL
    SELECT id FROM tasks WHERE batch_id = ?1 AND state = 'succeeded'
       AND (?3 IS NULL OR ?3 = 'succeeded') AND (?2 IS NULL OR queue = ?2)
       AND id < ?4
    UNION ALL
    SELECT id FROM tasks WHERE batch_id = ?1 AND state = 'dead'
       AND (?3 IS NULL OR ?3 = 'dead') AND (?2 IS NULL OR queue = ?2)
       AND id < ?4
    UNION ALL
    SELECT id FROM tasks WHERE batch_id = ?1 AND state = 'cancelled'
       AND (?3 IS NULL OR ?3 = 'cancelled') AND (?2 IS NULL OR queue = ?2)
       AND id < ?4
    ORDER BY 1 DESC LIMIT ?5)
 ORDER BY t.id DESC LIMIT ?5;

-- name: attempt_list
-- in: id int, after_attempt int, max int
-- out: attempt int, worker text, started_ms int, finished_ms int
-- out: outcome text, error text
-- A page of the history of task ?1 by attempt number, after ?2.  The
-- range of attempts_task for the task, sorted: one task's attempts are
-- few (its max_attempts).
SELECT attempt, worker, started_ms, finished_ms, outcome, error
  FROM attempts WHERE task_id = ?1 AND attempt > ?2
 ORDER BY attempt LIMIT ?3;

-- name: attempt_list_desc
-- in: id int, before_attempt int, max int
-- out: like attempt_list
-- As attempt_list, latest first: attempts below ?2.
SELECT attempt, worker, started_ms, finished_ms, outcome, error
  FROM attempts WHERE task_id = ?1 AND attempt < ?2
 ORDER BY attempt DESC LIMIT ?3;

-- name: task_state
-- in: id int
-- out: state text
SELECT state FROM tasks WHERE id = ?1;

-- name: task_cancel_ready
-- in: id int, now_ms int
-- out: queue text
UPDATE OR FAIL tasks SET state = 'cancelled', finished_ms = ?2
 WHERE id = ?1 AND state = 'ready'
RETURNING queue;

-- name: task_cancel_running
-- in: id int
-- Flag a running task; its worker sees the flag on its next heartbeat.
UPDATE tasks SET cancel_requested = 1 WHERE id = ?1 AND state = 'running';

-- name: task_retry
-- A dead or cancelled task gets a fresh set of attempts: its allowance
-- again on top of the attempts it used (so the history keeps counting
-- up), no deadline (an expired task would die again at once), due now.
-- in: id int, now_ms int
UPDATE OR FAIL tasks SET state = 'ready', run_at_ms = ?2,
    max_attempts = attempts + max_attempts, deadline_ms = NULL,
    started_ms = NULL, finished_ms = NULL, dead_reason = NULL,
    cancel_requested = 0
 WHERE id = ?1 AND (state = 'dead' OR state = 'cancelled');

-- name: retry_candidates
-- in: queue text, state text, max int, after_ms int, after_id int
-- out: id int, finished_ms int
-- Up to max tasks of the queue in finished state state, after (after_ms,
-- after_id) in the order of tasks_finished, so each page is one range
-- read.
SELECT id, finished_ms FROM tasks
 WHERE queue = ?1 AND state = ?2 AND finished_ms IS NOT NULL
   AND (finished_ms, id) > (?4, ?5)
 ORDER BY finished_ms, id LIMIT ?3;

-- name: purge_batch
-- in: queue text, max int
-- Delete up to max ready tasks of the queue.
DELETE FROM tasks WHERE id IN
    (SELECT id FROM tasks WHERE queue = ?1 AND state = 'ready' LIMIT ?2);

-- name: prune_batch
-- in: queue text, state text, before_ms int, max int
-- Delete up to max tasks of the queue in finished state state that
-- finished before before_ms; results and attempts go with them (ON
-- DELETE CASCADE).
DELETE FROM tasks WHERE id IN
    (SELECT id FROM tasks WHERE queue = ?1 AND state = ?2
	AND finished_ms < ?3 LIMIT ?4);

-- name: stats_due
-- in: queue text, now_ms int
-- out: n int, oldest_ms int
-- Due ready tasks of the queue at now_ms, and the earliest run_at_ms (-1
-- if none):
-- per priority level (ready_levels in claim.sql), the range of its due
-- tasks in tasks_ready, so scheduled tasks are not walked.
-- use: ready_levels
SELECT count(*) AS n, coalesce(min(tasks.run_at_ms), -1) AS oldest_ms
  FROM levels, tasks INDEXED BY tasks_ready
 WHERE levels.p IS NOT NULL AND tasks.queue = ?1 AND tasks.state = 'ready'
   AND tasks.priority = levels.p AND tasks.run_at_ms <= ?2;

-- name: stats_running
-- in: queue text, now_ms int
-- out: running int, claimed int, expired int
-- Leased tasks of the queue at now_ms: running (started, lease live),
-- claimed (not started, lease live), expired (lease ended, not reaped).
SELECT coalesce(sum(lease_until_ms >= ?2 AND started_ms IS NOT NULL), 0)
	AS running,
    coalesce(sum(lease_until_ms >= ?2 AND started_ms IS NULL), 0) AS claimed,
    coalesce(sum(lease_until_ms < ?2), 0) AS expired
  FROM tasks WHERE state = 'running' AND queue = ?1;

-- name: stats_finished
-- in: queue text
-- out: state text, n int
SELECT state, count(*) AS n FROM tasks
 WHERE queue = ?1 AND finished_ms IS NOT NULL
 GROUP BY state;
