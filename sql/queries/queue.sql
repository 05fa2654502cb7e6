-- sql/queries/queue.sql -- queue rows: creation, configuration, depth.

-- name: queue_ensure
-- Create a queue with the defaults unless it exists.
-- in: name text, now_ms int
INSERT INTO queues (name, created_ms) VALUES (?1, ?2)
    ON CONFLICT (name) DO NOTHING;

-- name: queue_update
-- in: name text, paused int, max_depth int, priority int, max_attempts int
-- in: backoff text, backoff_base_ms int, backoff_cap_ms int
-- in: backoff_jitter real, lease_ms int, timeout_ms int, retention_ms int
UPDATE queues SET paused = ?2, max_depth = ?3, priority = ?4,
    max_attempts = ?5, backoff = ?6, backoff_base_ms = ?7,
    backoff_cap_ms = ?8, backoff_jitter = ?9, lease_ms = ?10,
    timeout_ms = ?11, retention_ms = ?12
 WHERE name = ?1;

-- name: queue_get
-- in: name text
-- out: name text, paused int, max_depth int, priority int, max_attempts int
-- out: backoff text, backoff_base_ms int, backoff_cap_ms int
-- out: backoff_jitter real, lease_ms int, timeout_ms int, retention_ms int
-- out: created_ms int
SELECT name, paused, max_depth, priority, max_attempts, backoff,
    backoff_base_ms, backoff_cap_ms, backoff_jitter, lease_ms, timeout_ms,
    retention_ms, created_ms
  FROM queues WHERE name = ?1;

-- name: queue_list
-- in: -
-- out: like queue_get
-- Every queue, for the library's own reads over all of them (stats,
-- prune); spool_queue_list pages with queue_list_page.
SELECT name, paused, max_depth, priority, max_attempts, backoff,
    backoff_base_ms, backoff_cap_ms, backoff_jitter, lease_ms, timeout_ms,
    retention_ms, created_ms
  FROM queues ORDER BY name;

-- name: queue_list_page
-- in: after text, max int
-- out: like queue_get
-- Keyset page by name: names after ?1 (NULL: from the first; no name is
-- empty), at most ?2.
SELECT name, paused, max_depth, priority, max_attempts, backoff,
    backoff_base_ms, backoff_cap_ms, backoff_jitter, lease_ms, timeout_ms,
    retention_ms, created_ms
  FROM queues WHERE name > coalesce(?1, '') ORDER BY name LIMIT ?2;

-- name: queue_list_page_desc
-- in: before text, max int
-- out: like queue_get
-- As queue_list_page, last name first: names below ?1.  With ?1 NULL the
-- bound is an empty blob, which sorts after every text, so the range
-- starts at the last name (still one range of the primary key).
SELECT name, paused, max_depth, priority, max_attempts, backoff,
    backoff_base_ms, backoff_cap_ms, backoff_jitter, lease_ms, timeout_ms,
    retention_ms, created_ms
  FROM queues WHERE name < coalesce(?1, X'') ORDER BY name DESC LIMIT ?2;

-- name: queue_depth
-- in: queue text
-- out: n int
-- Ready tasks, due or scheduled, in the queue: what a depth limit counts.
SELECT count(*) AS n FROM tasks WHERE queue = ?1 AND state = 'ready';
