-- sql/queries/pipeline.sql -- pipelines: definitions, runs, settling
-- (the hand-off from stage to stage), and what status and history read.

-- name: pipeline_current
-- The current definition of the name (current is 1).  pipeline_version
-- and pipeline_list read the same columns, so one C function reads all
-- three.
-- in: name text
-- out: id int, name text, version int, stages int, created_ms int
-- out: current int
SELECT id, name, version, stages, created_ms, retired_ms IS NULL AS current
  FROM pipelines
 WHERE name = ?1 AND retired_ms IS NULL;

-- name: pipeline_version
-- A version of the name, current or not.
-- in: name text, version int
-- out: like pipeline_current
SELECT id, name, version, stages, created_ms, retired_ms IS NULL AS current
  FROM pipelines
 WHERE name = ?1 AND version = ?2;

-- name: pipeline_max_version
-- The highest version the name ever had, or 0.
-- in: name text
-- out: version int
SELECT coalesce(max(version), 0) AS version FROM pipelines WHERE name = ?1;

-- name: pipeline_unfinished
-- How many runs of any version of the name are unfinished.
-- in: name text
-- out: n int
SELECT count(*) AS n
  FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id
 WHERE p.name = ?1 AND r.finished_ms IS NULL;

-- name: pipeline_unfinished_ids
-- The unfinished runs of any version of the name.
-- in: name text
-- out: id int
SELECT r.id FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id
 WHERE p.name = ?1 AND r.finished_ms IS NULL ORDER BY r.id;

-- name: pipeline_runs_open
-- How many runs of the definition are unfinished.
-- in: pipeline_id int
-- out: n int
SELECT count(*) AS n
  FROM pipeline_runs WHERE pipeline_id = ?1 AND finished_ms IS NULL;

-- name: pipeline_retire
-- in: name text, now_ms int
UPDATE pipelines SET retired_ms = ?2 WHERE name = ?1 AND retired_ms IS NULL;

-- name: pipeline_insert
-- in: name text, version int, stages int, now_ms int
INSERT INTO pipelines (name, version, stages, created_ms)
VALUES (?1, ?2, ?3, ?4);

-- name: pipeline_list
-- A keyset page of the current definitions by name: names after ?1
-- (NULL: from the first), at most ?2; a range of pipelines_current.
-- in: after text, max int
-- out: like pipeline_current
SELECT id, name, version, stages, created_ms, retired_ms IS NULL AS current
  FROM pipelines
 WHERE retired_ms IS NULL AND name > coalesce(?1, '')
 ORDER BY name LIMIT ?2;

-- name: pipeline_list_desc
-- As pipeline_list, last name first: names below ?1 (NULL: an empty
-- blob, after every text, so from the last name).
-- in: before text, max int
-- out: like pipeline_current
SELECT id, name, version, stages, created_ms, retired_ms IS NULL AS current
  FROM pipelines
 WHERE retired_ms IS NULL AND name < coalesce(?1, X'')
 ORDER BY name DESC LIMIT ?2;

-- name: stage_insert
-- in: pipeline_id int, idx int, name text, queue text, concurrency int
-- in: timeout_ms int, on_error text, retries int, retry_delay_ms int
-- in: command text
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
-- Is the queue some pipeline's stage queue?  A row if so.
-- in: queue text
-- out: one int
SELECT 1 AS one FROM pipeline_stages WHERE queue = ?1 LIMIT 1;

-- name: run_insert
-- Every item of the run starts running.
-- in: pipeline_id int, total int, hook_queue text, hook_payload text
-- in: hook_on text, now_ms int
INSERT INTO pipeline_runs (pipeline_id, total, running, hook_queue,
    hook_payload, hook_on, created_ms)
VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6);

-- name: item_insert
-- in: run_id int, now_ms int
INSERT INTO pipeline_items (run_id, stage, created_ms) VALUES (?1, 1, ?2);

-- name: item_set_task
-- The item's first task.
-- in: id int, task_id int
UPDATE pipeline_items SET task_id = ?2 WHERE id = ?1;

-- name: stage_task_insert
-- An item's task in a stage.
-- in: queue text, payload payload, now_ms int, max_attempts int
-- in: item_id int, stage_id int
INSERT INTO tasks (queue, state, priority, payload, run_at_ms, max_attempts,
    created_ms, item_id, stage_id)
VALUES (?1, 'ready', 0, ?2, ?3, ?4, ?3, ?5, ?6);

-- name: stage_task_handoff
-- The hand-off: the next stage's task, whose payload is the result of
-- task task_id (copied inside SQLite).
-- in: queue text, task_id int, now_ms int, max_attempts int, item_id int
-- in: stage_id int
INSERT INTO tasks (queue, state, priority, payload, run_at_ms, max_attempts,
    created_ms, item_id, stage_id)
VALUES (?1, 'ready', 0, (SELECT output FROM results WHERE task_id = ?2), ?3,
    ?4, ?3, ?5, ?6);

-- name: item_settle_next
-- An item to settle, with its task and stage, the next stage (NULL after
-- the last), and its run's state.
-- in: -
-- out: id int, run_id int, state text, task_id int, task_state text
-- out: error text, on_error text, stage_name text, next_id int
-- out: next_queue text, next_on_error text, next_retries int
-- out: run_state text, stage int
SELECT i.id, i.run_id, i.state, t.id AS task_id, t.state AS task_state,
    t.last_error AS error, s.on_error, s.name AS stage_name, n.id AS next_id,
    n.queue AS next_queue, n.on_error AS next_on_error,
    n.retries AS next_retries, r.state AS run_state, s.idx AS stage
  FROM pipeline_items i INDEXED BY pipeline_items_settle
  JOIN pipeline_runs r ON r.id = i.run_id
  LEFT JOIN tasks t ON t.id = i.task_id
  LEFT JOIN pipeline_stages s ON s.id = t.stage_id
  LEFT JOIN pipeline_stages n ON n.pipeline_id = s.pipeline_id AND n.idx = s.idx + 1
 WHERE i.settle = 1
 LIMIT 1;

-- name: item_advance
-- The item moves to the stage of that index, with its task there.
-- in: id int, stage int, task_id int
UPDATE pipeline_items SET settle = 0, stage = ?2, task_id = ?3 WHERE id = ?1;

-- name: item_set_state
-- finished_ms is stored NULL when the item runs again (the CASE, rather
-- than int0, so that a clock reading 0 is still a time).
-- in: id int, state text, now_ms int
UPDATE pipeline_items SET settle = 0, state = ?2,
    finished_ms = CASE WHEN ?2 = 'running' THEN NULL ELSE ?3 END
 WHERE id = ?1;

-- name: item_settled
-- The item is settled, nothing changed.
-- in: id int
UPDATE pipeline_items SET settle = 0 WHERE id = ?1;

-- name: run_move
-- One item of the run moved from state from to state to.  An item runs
-- again only when an operator retries it (spool retry): its run is running
-- again, whether it had finished or was stopping (fail_fast, cancel),
-- and its stop is forgotten; a hook already enqueued is not enqueued
-- twice.
-- in: id int, from text, to text
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
-- Stop the run for reason why: no more hand-offs.
-- in: id int, why text
UPDATE pipeline_runs SET state = 'stopping', error = coalesce(error, ?2)
 WHERE id = ?1 AND state = 'running';

-- name: run_cancel_ready
-- Cancel the waiting tasks of the run's unfinished items, for reason why;
-- their queues, to count.  Settling then cancels their items.
-- in: run int, now_ms int, why text
-- out: queue text
UPDATE OR FAIL tasks SET state = 'cancelled', finished_ms = ?2, last_error = ?3
 WHERE id IN (SELECT task_id FROM pipeline_items
		WHERE run_id = ?1 AND state = 'running')
   AND state = 'ready'
RETURNING queue;

-- name: run_cancel_running
-- Ask the workers of the run's running tasks to stop.
-- in: run int
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

-- name: item_list_desc
-- As item_list, newest first: items below before_id.
-- in: run int, before_id int, max int
-- out: like item_list
SELECT i.id, i.run_id, i.state, i.stage, s.name AS stage_name, i.task_id,
    CASE WHEN i.state = 'succeeded' THEN
	(SELECT output FROM results WHERE task_id = i.task_id) END AS result,
    t.last_error AS error, i.created_ms, i.finished_ms
  FROM pipeline_items i
  JOIN pipeline_runs ru ON ru.id = i.run_id
  LEFT JOIN pipeline_stages s ON s.pipeline_id = ru.pipeline_id AND s.idx = i.stage
  LEFT JOIN tasks t ON t.id = i.task_id
 WHERE i.run_id = ?1 AND i.id < ?2
 ORDER BY i.id DESC LIMIT ?3;

-- name: run_exists
-- in: id int
-- out: one int
SELECT 1 AS one FROM pipeline_runs WHERE id = ?1;

-- name: item_exists
-- in: id int
-- out: run_id int
SELECT run_id FROM pipeline_items WHERE id = ?1;

-- name: item_history
-- A keyset page of the attempts of the item's stage tasks, finished or
-- under way, in stage then attempt order (the item has one task per
-- stage, so the pair is a key): after (?2 idx, ?3 attempt), at most ?4.
-- The item's tasks are a range of tasks_item and their attempts of
-- attempts_task; the few rows are sorted.
-- in: item int, after_idx int, after_attempt int, max int
-- out: stage text, idx int, task_id int, attempt int, worker text
-- out: started_ms int, finished_ms int, outcome text, error text
SELECT stage, idx, task_id, attempt, worker, started_ms, finished_ms,
    outcome, error FROM (
  SELECT s.name AS stage, s.idx, t.id AS task_id, a.attempt, a.worker,
      a.started_ms, a.finished_ms, a.outcome, a.error
    FROM tasks t JOIN pipeline_stages s ON s.id = t.stage_id
    JOIN attempts a ON a.task_id = t.id
   WHERE t.item_id = ?1
  UNION ALL
  SELECT s.name, s.idx, t.id, t.attempts, t.lease_owner, t.started_ms, NULL,
      'running', NULL
    FROM tasks t JOIN pipeline_stages s ON s.id = t.stage_id
   WHERE t.item_id = ?1 AND t.state = 'running')
 WHERE (idx, attempt) > (?2, ?3)
 ORDER BY idx, attempt LIMIT ?4;

-- name: item_history_desc
-- As item_history, latest first: below (?2 idx, ?3 attempt).
-- in: item int, before_idx int, before_attempt int, max int
-- out: like item_history
SELECT stage, idx, task_id, attempt, worker, started_ms, finished_ms,
    outcome, error FROM (
  SELECT s.name AS stage, s.idx, t.id AS task_id, a.attempt, a.worker,
      a.started_ms, a.finished_ms, a.outcome, a.error
    FROM tasks t JOIN pipeline_stages s ON s.id = t.stage_id
    JOIN attempts a ON a.task_id = t.id
   WHERE t.item_id = ?1
  UNION ALL
  SELECT s.name, s.idx, t.id, t.attempts, t.lease_owner, t.started_ms, NULL,
      'running', NULL
    FROM tasks t JOIN pipeline_stages s ON s.id = t.stage_id
   WHERE t.item_id = ?1 AND t.state = 'running')
 WHERE (idx, attempt) < (?2, ?3)
 ORDER BY idx DESC, attempt DESC LIMIT ?4;
