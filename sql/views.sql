-- sql/views.sql -- the read-only views people use from the sqlite3 shell.
--
-- They are dropped and created again after every migration, so they always
-- match the current schema.  Times are rendered as UTC text
-- ('YYYY-MM-DD HH:MM:SS.SSS'); ages and durations are in seconds.  "Now" is
-- julianday('now') in milliseconds, which works on every SQLite spool
-- supports (unixepoch('subsec') needs 3.42).

DROP VIEW IF EXISTS spool_queues;
CREATE VIEW spool_queues AS
SELECT q.name AS queue,
       q.paused AS paused,
       (SELECT count(*) FROM tasks t WHERE t.queue = q.name AND t.state = 'ready'
	    AND t.run_at_ms <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) AS ready,
       (SELECT count(*) FROM tasks t WHERE t.queue = q.name AND t.state = 'ready'
	    AND t.run_at_ms > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) AS scheduled,
       (SELECT count(*) FROM tasks t WHERE t.state = 'running' AND t.queue = q.name
	    AND t.started_ms IS NOT NULL
	    AND t.lease_until_ms >= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) AS running,
       (SELECT count(*) FROM tasks t WHERE t.queue = q.name AND t.state = 'succeeded') AS succeeded,
       (SELECT count(*) FROM tasks t WHERE t.queue = q.name AND t.state = 'dead') AS dead,
       (SELECT count(*) FROM tasks t WHERE t.queue = q.name AND t.state = 'cancelled') AS cancelled,
       (SELECT round((julianday('now') - 2440587.5) * 86400 - min(t.run_at_ms) / 1000.0, 3)
	  FROM tasks t WHERE t.queue = q.name AND t.state = 'ready'
	    AND t.run_at_ms <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) AS oldest_ready_age_s,
       (SELECT count(*) FROM tasks t WHERE t.state = 'running' AND t.queue = q.name
	    AND t.started_ms IS NULL
	    AND t.lease_until_ms >= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) AS claimed,
       (SELECT count(*) FROM tasks t WHERE t.state = 'running' AND t.queue = q.name
	    AND t.lease_until_ms < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) AS expired
  FROM queues q;

DROP VIEW IF EXISTS spool_ready;
CREATE VIEW spool_ready AS
SELECT id, queue, priority,
       strftime('%Y-%m-%d %H:%M:%f', run_at_ms / 1000.0, 'unixepoch') AS run_at,
       strftime('%Y-%m-%d %H:%M:%f', deadline_ms / 1000.0, 'unixepoch') AS deadline,
       attempts, max_attempts, idem_key,
       CASE WHEN typeof(payload) = 'text' THEN payload ELSE '<' || length(payload) || ' bytes>' END AS payload,
       strftime('%Y-%m-%d %H:%M:%f', created_ms / 1000.0, 'unixepoch') AS created
  FROM tasks WHERE state = 'ready';

-- Tasks whose handler started, under a lease that still holds.
DROP VIEW IF EXISTS spool_running;
CREATE VIEW spool_running AS
SELECT id, queue, attempts, lease_owner,
       strftime('%Y-%m-%d %H:%M:%f', started_ms / 1000.0, 'unixepoch') AS started,
       strftime('%Y-%m-%d %H:%M:%f', lease_until_ms / 1000.0, 'unixepoch') AS lease_until,
       cancel_requested
  FROM tasks WHERE state = 'running' AND started_ms IS NOT NULL
   AND lease_until_ms >= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);

-- Every leased task (stored state 'running'): claimed (by a worker pool,
-- its handler not started yet), running, or expired (the lease ran out
-- and no process has reaped it yet).
DROP VIEW IF EXISTS spool_leases;
CREATE VIEW spool_leases AS
SELECT id, queue,
       CASE WHEN lease_until_ms < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
	    THEN 'expired' WHEN started_ms IS NULL THEN 'claimed'
	    ELSE 'running' END AS lease_state,
       attempts, lease_owner,
       strftime('%Y-%m-%d %H:%M:%f', started_ms / 1000.0, 'unixepoch') AS started,
       strftime('%Y-%m-%d %H:%M:%f', lease_until_ms / 1000.0, 'unixepoch') AS lease_until,
       cancel_requested
  FROM tasks WHERE state = 'running';

DROP VIEW IF EXISTS spool_dead;
CREATE VIEW spool_dead AS
SELECT id, queue, dead_reason, attempts, max_attempts, last_error,
       strftime('%Y-%m-%d %H:%M:%f', finished_ms / 1000.0, 'unixepoch') AS died,
       CASE WHEN typeof(payload) = 'text' THEN payload ELSE '<' || length(payload) || ' bytes>' END AS payload
  FROM tasks WHERE state = 'dead';

DROP VIEW IF EXISTS spool_history;
CREATE VIEW spool_history AS
SELECT a.task_id AS task_id, t.queue AS queue, a.attempt AS attempt,
       a.worker AS worker, a.outcome AS outcome,
       strftime('%Y-%m-%d %H:%M:%f', a.started_ms / 1000.0, 'unixepoch') AS started,
       strftime('%Y-%m-%d %H:%M:%f', a.finished_ms / 1000.0, 'unixepoch') AS finished,
       round((a.finished_ms - a.started_ms) / 1000.0, 3) AS duration_s,
       a.error AS error
  FROM attempts a JOIN tasks t ON t.id = a.task_id;

DROP VIEW IF EXISTS spool_batches;
CREATE VIEW spool_batches AS
SELECT id, description, state, total, pending, running, succeeded, failed,
       dead, cancelled,
       CASE WHEN total > 0 THEN round(100.0 * (succeeded + failed + dead +
	   cancelled) / total, 1) ELSE 100.0 END AS finished_pct,
       hook_queue, hook_on, hook_task_id,
       strftime('%Y-%m-%d %H:%M:%f', created_ms / 1000.0, 'unixepoch') AS created,
       strftime('%Y-%m-%d %H:%M:%f', closed_ms / 1000.0, 'unixepoch') AS closed,
       strftime('%Y-%m-%d %H:%M:%f', finished_ms / 1000.0, 'unixepoch') AS finished
  FROM batches;

DROP VIEW IF EXISTS spool_pipeline_runs;
CREATE VIEW spool_pipeline_runs AS
SELECT r.id AS run, p.name AS pipeline, p.version AS version, r.state AS state,
       r.total AS total, r.running AS running, r.succeeded AS succeeded,
       r.failed AS failed, r.skipped AS skipped, r.cancelled AS cancelled,
       round(((coalesce(r.finished_ms,
	   CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))) -
	   r.created_ms) / 1000.0, 3) AS elapsed_s,
       r.error AS error, r.hook_queue AS hook_queue, r.hook_task_id AS hook_task_id,
       strftime('%Y-%m-%d %H:%M:%f', r.created_ms / 1000.0, 'unixepoch') AS created,
       strftime('%Y-%m-%d %H:%M:%f', r.finished_ms / 1000.0, 'unixepoch') AS finished
  FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id;

-- One row per stage of every run: its items' tasks there by state
-- (failed and skipped are dead tasks, by the stage's strategy), and the
-- mean duration of its succeeded attempts.
DROP VIEW IF EXISTS spool_pipeline_progress;
CREATE VIEW spool_pipeline_progress AS
SELECT r.id AS run, p.name AS pipeline, p.version AS version,
       s.idx AS stage_index, s.name AS stage, s.concurrency AS concurrency,
       (SELECT count(*) FROM pipeline_items i JOIN tasks t ON t.item_id = i.id
	 WHERE i.run_id = r.id AND t.stage_id = s.id AND t.state = 'ready') AS waiting,
       (SELECT count(*) FROM pipeline_items i JOIN tasks t ON t.item_id = i.id
	 WHERE i.run_id = r.id AND t.stage_id = s.id AND t.state = 'running') AS running,
       (SELECT count(*) FROM pipeline_items i JOIN tasks t ON t.item_id = i.id
	 WHERE i.run_id = r.id AND t.stage_id = s.id AND t.state = 'succeeded') AS done,
       (SELECT count(*) FROM pipeline_items i JOIN tasks t ON t.item_id = i.id
	 WHERE i.run_id = r.id AND t.stage_id = s.id AND t.state = 'dead'
	   AND s.on_error <> 'skip') AS failed,
       (SELECT count(*) FROM pipeline_items i JOIN tasks t ON t.item_id = i.id
	 WHERE i.run_id = r.id AND t.stage_id = s.id AND t.state = 'dead'
	   AND s.on_error = 'skip') AS skipped,
       (SELECT count(*) FROM pipeline_items i JOIN tasks t ON t.item_id = i.id
	 WHERE i.run_id = r.id AND t.stage_id = s.id AND t.state = 'cancelled') AS cancelled,
       (SELECT round(avg(a.finished_ms - a.started_ms) / 1000.0, 3)
	  FROM pipeline_items i JOIN tasks t ON t.item_id = i.id
	  JOIN attempts a ON a.task_id = t.id
	 WHERE i.run_id = r.id AND t.stage_id = s.id
	   AND a.outcome = 'succeeded') AS avg_s
  FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id
  JOIN pipeline_stages s ON s.pipeline_id = p.id;

-- Every attempt of every stage of every item.
DROP VIEW IF EXISTS spool_stage_history;
CREATE VIEW spool_stage_history AS
SELECT i.run_id AS run, i.id AS item, s.idx AS stage_index, s.name AS stage,
       t.id AS task_id, a.attempt AS attempt, a.worker AS worker,
       a.outcome AS outcome,
       strftime('%Y-%m-%d %H:%M:%f', a.started_ms / 1000.0, 'unixepoch') AS started,
       strftime('%Y-%m-%d %H:%M:%f', a.finished_ms / 1000.0, 'unixepoch') AS finished,
       round((a.finished_ms - a.started_ms) / 1000.0, 3) AS duration_s,
       a.error AS error
  FROM attempts a JOIN tasks t ON t.id = a.task_id
  JOIN pipeline_items i ON i.id = t.item_id
  JOIN pipeline_stages s ON s.id = t.stage_id;

-- The per-queue counters (table queue_counters), with the tasks enqueued
-- but not yet counted there (those above counters_mark, schema 8) added:
-- read the counters here rather than from the table.
DROP VIEW IF EXISTS spool_counters;
CREATE VIEW spool_counters AS
SELECT q.name AS queue,
       coalesce(c.enqueued, 0) + (SELECT count(*) FROM tasks t
	    WHERE t.id > (SELECT task_id FROM counters_mark)
	      AND t.queue = q.name) AS enqueued,
       coalesce(c.claimed, 0) AS claimed,
       coalesce(c.succeeded, 0) AS succeeded,
       coalesce(c.failed, 0) AS failed,
       coalesce(c.retried, 0) AS retried,
       coalesce(c.dead, 0) AS dead,
       coalesce(c.expired, 0) AS expired,
       coalesce(c.lease_lost, 0) AS lease_lost,
       coalesce(c.cancelled, 0) AS cancelled
  FROM queues q LEFT JOIN queue_counters c ON c.queue = q.name;
