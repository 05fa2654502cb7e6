-- sql/queries/pipeline.sql -- pipelines: definitions, runs, settling
-- (the hand-off from stage to stage), and what status and history read.

-- name: pipeline_current
-- The current definition of name ?1: id, version, stages, created_ms.
SELECT id, version, stages, created_ms FROM pipelines
 WHERE name = ?1 AND retired_ms IS NULL;

-- name: pipeline_version
-- Version ?2 of name ?1: id, version, stages, created_ms, current.
SELECT id, version, stages, created_ms, retired_ms IS NULL FROM pipelines
 WHERE name = ?1 AND version = ?2;

-- name: pipeline_max_version
-- The highest version name ?1 ever had, or 0.
SELECT coalesce(max(version), 0) FROM pipelines WHERE name = ?1;

-- name: pipeline_unfinished
-- How many runs of any version of name ?1 are unfinished.
SELECT count(*) FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id
 WHERE p.name = ?1 AND r.finished_ms IS NULL;

-- name: pipeline_unfinished_ids
-- The unfinished runs of any version of name ?1.
SELECT r.id FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id
 WHERE p.name = ?1 AND r.finished_ms IS NULL ORDER BY r.id;

-- name: pipeline_runs_open
-- How many runs of definition ?1 are unfinished.
SELECT count(*) FROM pipeline_runs WHERE pipeline_id = ?1 AND finished_ms IS NULL;

-- name: pipeline_retire
-- ?1 name, ?2 now_ms.
UPDATE pipelines SET retired_ms = ?2 WHERE name = ?1 AND retired_ms IS NULL;

-- name: pipeline_insert
-- ?1 name, ?2 version, ?3 number of stages, ?4 now_ms.
INSERT INTO pipelines (name, version, stages, created_ms)
VALUES (?1, ?2, ?3, ?4);

-- name: pipeline_list
-- The current definition of every name: id, name, version, created_ms.
SELECT id, name, version, created_ms FROM pipelines
 WHERE retired_ms IS NULL ORDER BY name;

-- name: stage_insert
-- ?1 pipeline_id, ?2 idx, ?3 name, ?4 queue, ?5 concurrency, ?6 timeout_ms,
-- ?7 on_error, ?8 retries, ?9 retry_delay_ms, ?10 command.
INSERT INTO pipeline_stages (pipeline_id, idx, name, queue, concurrency,
    timeout_ms, on_error, retries, retry_delay_ms, command)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10);

-- name: stage_list
-- The stages of the definition in order.
-- in: pipeline_id int
-- out: idx int, name text, queue text, concurrency int, timeout_ms int
-- out: on_error text, retries int, retry_delay_ms int, command text, id int
SELECT idx, name, queue, concurrency, timeout_ms, on_error, retries,
    retry_delay_ms, command, id
  FROM pipeline_stages WHERE pipeline_id = ?1 ORDER BY idx;

-- name: stage_defs
-- Every stage of every version of the pipeline, newest version first,
-- with whether its version is current or has unfinished runs (live: what
-- a pipeline pool works).
-- in: name text
-- out: id int, name text, queue text, concurrency int, command text
-- out: live int
SELECT s.id, s.name, s.queue, s.concurrency, s.command,
    p.retired_ms IS NULL OR EXISTS (SELECT 1 FROM pipeline_runs r
	WHERE r.pipeline_id = p.id AND r.finished_ms IS NULL) AS live
  FROM pipeline_stages s JOIN pipelines p ON p.id = s.pipeline_id
 WHERE p.name = ?1 ORDER BY p.version DESC, s.idx DESC;

-- name: stage_def
-- The stage's name and command.
-- in: id int
-- out: name text, command text
SELECT name, command FROM pipeline_stages WHERE id = ?1;

-- name: stage_queue
-- Is queue ?1 some pipeline's stage queue?
SELECT 1 FROM pipeline_stages WHERE queue = ?1 LIMIT 1;

-- name: run_insert
-- ?1 pipeline_id, ?2 number of items, ?3 hook_queue, ?4 hook_payload,
-- ?5 hook_on, ?6 now_ms.
INSERT INTO pipeline_runs (pipeline_id, total, running, hook_queue,
    hook_payload, hook_on, created_ms)
VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6);

-- name: item_insert
-- ?1 run_id, ?2 now_ms.
INSERT INTO pipeline_items (run_id, stage, created_ms) VALUES (?1, 1, ?2);

-- name: item_set_task
-- ?1 item id, ?2 its first task.
UPDATE pipeline_items SET task_id = ?2 WHERE id = ?1;

-- name: stage_task_insert
-- An item's task in a stage.  ?1 queue, ?2 payload, ?3 now_ms,
-- ?4 max_attempts, ?5 item_id, ?6 stage_id.
INSERT INTO tasks (queue, state, priority, payload, run_at_ms, max_attempts,
    created_ms, item_id, stage_id)
VALUES (?1, 'ready', 0, ?2, ?3, ?4, ?3, ?5, ?6);

-- name: stage_task_handoff
-- The hand-off: the next stage's task, whose payload is the result of
-- task ?2 (copied inside SQLite).  ?1 queue, ?3 now_ms, ?4 max_attempts,
-- ?5 item_id, ?6 stage_id.
INSERT INTO tasks (queue, state, priority, payload, run_at_ms, max_attempts,
    created_ms, item_id, stage_id)
VALUES (?1, 'ready', 0, (SELECT output FROM results WHERE task_id = ?2), ?3,
    ?4, ?3, ?5, ?6);

-- name: item_settle_next
-- An item to settle, with its task and stage, the next stage (NULL after
-- the last), and its run's state.
SELECT i.id, i.run_id, i.state, t.id, t.state, t.last_error, s.on_error,
    s.name, n.id, n.queue, n.on_error, n.retries, r.state, s.idx
  FROM pipeline_items i INDEXED BY pipeline_items_settle
  JOIN pipeline_runs r ON r.id = i.run_id
  LEFT JOIN tasks t ON t.id = i.task_id
  LEFT JOIN pipeline_stages s ON s.id = t.stage_id
  LEFT JOIN pipeline_stages n ON n.pipeline_id = s.pipeline_id AND n.idx = s.idx + 1
 WHERE i.settle = 1
 LIMIT 1;

-- name: item_advance
-- ?1 item, ?2 its new stage index, ?3 its task there.
UPDATE pipeline_items SET settle = 0, stage = ?2, task_id = ?3 WHERE id = ?1;

-- name: item_set_state
-- ?1 item, ?2 state, ?3 finished_ms (NULL when running again).
UPDATE pipeline_items SET settle = 0, state = ?2, finished_ms = ?3 WHERE id = ?1;

-- name: item_settled
-- ?1 item: settled, nothing changed.
UPDATE pipeline_items SET settle = 0 WHERE id = ?1;

-- name: run_move
-- One item of run ?1 went from state ?2 to state ?3.  An item runs again
-- only when an operator retries it (spool retry): its run is running
-- again, whether it had finished or was stopping (fail_fast, cancel),
-- and its stop is forgotten; a hook already enqueued is not enqueued
-- twice.
UPDATE pipeline_runs SET
    running = running - (?2 = 'running') + (?3 = 'running'),
    succeeded = succeeded - (?2 = 'succeeded') + (?3 = 'succeeded'),
    failed = failed - (?2 = 'failed') + (?3 = 'failed'),
    skipped = skipped - (?2 = 'skipped') + (?3 = 'skipped'),
    cancelled = cancelled - (?2 = 'cancelled') + (?3 = 'cancelled'),
    state = CASE WHEN ?3 = 'running' THEN 'running' ELSE state END,
    error = CASE WHEN ?3 = 'running' THEN NULL ELSE error END,
    finished_ms = CASE WHEN ?3 = 'running' THEN NULL ELSE finished_ms END
 WHERE id = ?1;

-- name: run_stop
-- Stop run ?1 for reason ?2: no more hand-offs.
UPDATE pipeline_runs SET state = 'stopping', error = coalesce(error, ?2)
 WHERE id = ?1 AND state = 'running';

-- name: run_cancel_ready
-- Cancel the waiting tasks of run ?1's unfinished items; ?2 now_ms,
-- ?3 why.  Settling then cancels their items.
UPDATE OR FAIL tasks SET state = 'cancelled', finished_ms = ?2, last_error = ?3
 WHERE id IN (SELECT task_id FROM pipeline_items
		WHERE run_id = ?1 AND state = 'running')
   AND state = 'ready'
RETURNING queue;

-- name: run_cancel_running
-- Ask the workers of run ?1's running tasks to stop.
UPDATE tasks SET cancel_requested = 1
 WHERE id IN (SELECT task_id FROM pipeline_items
		WHERE run_id = ?1 AND state = 'running')
   AND state = 'running';

-- name: run_settle_next
-- out: like batch_settle_next
-- An unfinished run with nothing running, and the payload of the hook to
-- enqueue for it (NULL if none: no hook, already enqueued, or 'success'
-- and not every item succeeded).
SELECT r.id, r.hook_queue,
    CASE WHEN r.hook_queue IS NOT NULL AND r.hook_task_id IS NULL AND
	(r.hook_on = 'always' OR r.succeeded = r.total)
    THEN json_object('run', r.id, 'pipeline', p.name, 'version', p.version,
	'total', r.total, 'succeeded', r.succeeded, 'failed', r.failed,
	'skipped', r.skipped, 'cancelled', r.cancelled, 'error', r.error,
	'payload', CASE WHEN json_valid(r.hook_payload)
	    THEN json(r.hook_payload) ELSE r.hook_payload END)
    END AS hook_payload
  FROM pipeline_runs r INDEXED BY pipeline_runs_settle
  JOIN pipelines p ON p.id = r.pipeline_id
 WHERE r.finished_ms IS NULL AND r.running = 0
 LIMIT 1;

-- name: run_finish
-- The hook task's id is 0 if none was enqueued.
-- in: id int, now_ms int, hook_task_id int0
UPDATE pipeline_runs SET state = 'finished', finished_ms = ?2,
    hook_task_id = coalesce(hook_task_id, ?3)
 WHERE id = ?1 AND finished_ms IS NULL;

-- name: run_get
-- in: id int
-- out: id int, name text, version int, state text, total int, running int
-- out: succeeded int, failed int, skipped int, cancelled int, error text
-- out: hook_queue text, hook_task_id int, created_ms int, finished_ms int
-- out: pipeline_id int
SELECT r.id, p.name, p.version, r.state, r.total, r.running, r.succeeded,
    r.failed, r.skipped, r.cancelled, r.error, r.hook_queue, r.hook_task_id,
    r.created_ms, r.finished_ms, r.pipeline_id
  FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id
 WHERE r.id = ?1;

-- name: run_list
-- Up to max runs after id after_id, oldest first, of pipeline name (NULL:
-- any).
-- in: after_id int, max int, name text
-- out: like run_get
SELECT r.id, p.name, p.version, r.state, r.total, r.running, r.succeeded,
    r.failed, r.skipped, r.cancelled, r.error, r.hook_queue, r.hook_task_id,
    r.created_ms, r.finished_ms, r.pipeline_id
  FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id
 WHERE r.id > ?1 AND (?3 IS NULL OR p.name = ?3)
 ORDER BY r.id LIMIT ?2;

-- name: run_list_desc
-- As run_list, newest first: ids below before_id.
-- in: before_id int, max int, name text
-- out: like run_get
SELECT r.id, p.name, p.version, r.state, r.total, r.running, r.succeeded,
    r.failed, r.skipped, r.cancelled, r.error, r.hook_queue, r.hook_task_id,
    r.created_ms, r.finished_ms, r.pipeline_id
  FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id
 WHERE r.id < ?1 AND (?3 IS NULL OR p.name = ?3)
 ORDER BY r.id DESC LIMIT ?2;

-- name: run_stage_counts
-- The run's tasks by stage and state.
-- in: run int
-- out: stage_id int, state text, n int
SELECT t.stage_id, t.state, count(*) AS n
  FROM pipeline_items i JOIN tasks t ON t.item_id = i.id
 WHERE i.run_id = ?1
 GROUP BY t.stage_id, t.state;

-- name: run_stage_durations
-- in: run int, stage_id int
-- out: attempts int, k int, total int, p95 int
-- The stage's finished attempts in the run, in one row: of any outcome,
-- then of the succeeded ones the count, the sum of their durations and
-- the nearest-rank 95th percentile, the ceil(0.95 n)-th shortest, taken
-- as the (n - ceil(0.95 n) + 1)-th longest so the sort keeps only the
-- longest 5%.  The attempts are read once (MATERIALIZED); none is
-- copied out of SQLite.
WITH d AS MATERIALIZED (
  SELECT a.outcome = 'succeeded' AS ok, a.finished_ms - a.started_ms AS ms
    FROM pipeline_items i JOIN tasks t ON t.item_id = i.id
    JOIN attempts a ON a.task_id = t.id
   WHERE i.run_id = ?1 AND t.stage_id = ?2),
n AS (
  SELECT count(*) AS attempts, count(*) FILTER (WHERE ok) AS k,
      sum(ms) FILTER (WHERE ok) AS total
    FROM d)
SELECT attempts, k, total,
    (SELECT ms FROM d WHERE ok ORDER BY ms DESC LIMIT 1
      OFFSET (SELECT k - (k * 95 + 99) / 100 FROM n)) AS p95
  FROM n;

-- name: item_list
-- Up to max items of the run after item after_id, with their stage, last
-- error and (when succeeded) result.
-- in: run int, after_id int, max int
-- out: id int, run_id int, state text, stage int, stage_name text
-- out: task_id int, result blob, error text, created_ms int, finished_ms int
SELECT i.id, i.run_id, i.state, i.stage, s.name AS stage_name, i.task_id,
    CASE WHEN i.state = 'succeeded' THEN
	(SELECT output FROM results WHERE task_id = i.task_id) END AS result,
    t.last_error AS error, i.created_ms, i.finished_ms
  FROM pipeline_items i
  JOIN pipeline_runs ru ON ru.id = i.run_id
  LEFT JOIN pipeline_stages s ON s.pipeline_id = ru.pipeline_id AND s.idx = i.stage
  LEFT JOIN tasks t ON t.id = i.task_id
 WHERE i.run_id = ?1 AND i.id > ?2
 ORDER BY i.id LIMIT ?3;

-- name: run_exists
-- in: id int
-- out: one int
SELECT 1 AS one FROM pipeline_runs WHERE id = ?1;

-- name: item_exists
-- in: id int
-- out: run_id int
SELECT run_id FROM pipeline_items WHERE id = ?1;

-- name: item_history
-- Every attempt of the item's stage tasks, finished or under way, in stage
-- then attempt order.
-- in: item int
-- out: stage text, idx int, task_id int, attempt int, worker text
-- out: started_ms int, finished_ms int, outcome text, error text
SELECT s.name AS stage, s.idx, t.id AS task_id, a.attempt, a.worker,
    a.started_ms, a.finished_ms, a.outcome, a.error
  FROM tasks t JOIN pipeline_stages s ON s.id = t.stage_id
  JOIN attempts a ON a.task_id = t.id
 WHERE t.item_id = ?1
UNION ALL
SELECT s.name, s.idx, t.id, t.attempts, t.lease_owner, t.started_ms, NULL,
    'running', NULL
  FROM tasks t JOIN pipeline_stages s ON s.id = t.stage_id
 WHERE t.item_id = ?1 AND t.state = 'running'
 ORDER BY 2, 4;
