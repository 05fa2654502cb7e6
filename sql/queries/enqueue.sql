-- sql/queries/enqueue.sql -- adding tasks.

-- name: task_find_key
-- The unfinished task holding idempotency key ?2 in queue ?1, if any.
SELECT id FROM tasks
 WHERE queue = ?1 AND idem_key = ?2 AND finished_ms IS NULL;

-- name: task_insert
-- ?1 queue, ?2 priority, ?3 payload, ?4 run_at_ms, ?5 deadline_ms,
-- ?6 max_attempts, ?7 idem_key, ?8 created_ms, ?9 batch_id.
INSERT INTO tasks (queue, state, priority, payload, run_at_ms, deadline_ms,
    max_attempts, idem_key, created_ms, batch_id)
VALUES (?1, 'ready', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9);
