-- sql/queries/queue.sql -- queue rows: creation, configuration, depth.

-- name: queue_ensure
-- Create a queue with the defaults unless it exists.  ?1 name, ?2 now_ms.
INSERT INTO queues (name, created_ms) VALUES (?1, ?2)
    ON CONFLICT (name) DO NOTHING;

-- name: queue_update
-- ?1 name, ?2 paused, ?3 max_depth, ?4 priority, ?5 max_attempts,
-- ?6 backoff, ?7 backoff_base_ms, ?8 backoff_cap_ms, ?9 backoff_jitter,
-- ?10 lease_ms, ?11 timeout_ms, ?12 retention_ms.
UPDATE queues SET paused = ?2, max_depth = ?3, priority = ?4,
    max_attempts = ?5, backoff = ?6, backoff_base_ms = ?7,
    backoff_cap_ms = ?8, backoff_jitter = ?9, lease_ms = ?10,
    timeout_ms = ?11, retention_ms = ?12
 WHERE name = ?1;

-- name: queue_get
-- ?1 name.  Column order is the one queue.c decodes.
SELECT name, paused, max_depth, priority, max_attempts, backoff,
    backoff_base_ms, backoff_cap_ms, backoff_jitter, lease_ms, timeout_ms,
    retention_ms, created_ms
  FROM queues WHERE name = ?1;

-- name: queue_list
SELECT name, paused, max_depth, priority, max_attempts, backoff,
    backoff_base_ms, backoff_cap_ms, backoff_jitter, lease_ms, timeout_ms,
    retention_ms, created_ms
  FROM queues ORDER BY name;

-- name: queue_depth
-- Ready tasks, due or scheduled, in ?1: what a depth limit counts.
SELECT count(*) FROM tasks WHERE queue = ?1 AND state = 'ready';
