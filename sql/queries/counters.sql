-- sql/queries/counters.sql -- the per-queue counters of schema 5.

-- name: counters_add
-- Add to the queue's counters.
-- in: queue text, enqueued int, claimed int, succeeded int, failed int
-- in: retried int, dead int, expired int, lease_lost int, cancelled int
INSERT INTO queue_counters (queue, enqueued, claimed, succeeded, failed,
    retried, dead, expired, lease_lost, cancelled)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
ON CONFLICT (queue) DO UPDATE SET
    enqueued = enqueued + excluded.enqueued,
    claimed = claimed + excluded.claimed,
    succeeded = succeeded + excluded.succeeded,
    failed = failed + excluded.failed,
    retried = retried + excluded.retried,
    dead = dead + excluded.dead,
    expired = expired + excluded.expired,
    lease_lost = lease_lost + excluded.lease_lost,
    cancelled = cancelled + excluded.cancelled;

-- name: counters_get
-- The queue's counters, all zero if it has none yet; enqueued includes the
-- tasks above the mark (schema 8), as view spool_counters does.
-- in: queue text
-- out: enqueued int, claimed int, succeeded int, failed int, retried int
-- out: dead int, expired int, lease_lost int, cancelled int
SELECT coalesce(c.enqueued, 0) + (SELECT count(*) FROM tasks t
	WHERE t.id > (SELECT task_id FROM counters_mark) AND t.queue = k.queue)
	AS enqueued,
    coalesce(c.claimed, 0) AS claimed, coalesce(c.succeeded, 0) AS succeeded,
    coalesce(c.failed, 0) AS failed, coalesce(c.retried, 0) AS retried,
    coalesce(c.dead, 0) AS dead, coalesce(c.expired, 0) AS expired,
    coalesce(c.lease_lost, 0) AS lease_lost,
    coalesce(c.cancelled, 0) AS cancelled
  FROM (SELECT ?1 AS queue) k LEFT JOIN queue_counters c ON c.queue = k.queue;

-- name: counters_tail
-- The mark (tasks up to it are counted as enqueued) and the highest task
-- id, 0 if there is no task.
-- out: mark int, top int
SELECT (SELECT task_id FROM counters_mark) AS mark,
    coalesce((SELECT max(id) FROM tasks), 0) AS top;

-- name: counters_fold
-- Count the tasks with ids in (after, upto] as enqueued, per queue.
-- in: after int, upto int
INSERT INTO queue_counters (queue, enqueued)
SELECT queue, count(*) FROM tasks WHERE id > ?1 AND id <= ?2 GROUP BY queue
ON CONFLICT (queue) DO UPDATE SET enqueued = enqueued + excluded.enqueued;

-- name: counters_mark_set
-- Every task up to id task_id is counted now.
-- in: task_id int
UPDATE counters_mark SET task_id = ?1 WHERE task_id < ?1;

-- name: metrics_window
-- The queue's tasks that succeeded or died after since_ms: counts through
-- tasks_finished.
-- in: queue text, since_ms int
-- out: succeeded int, dead int
SELECT (SELECT count(*) FROM tasks WHERE queue = ?1 AND state = 'succeeded'
	AND finished_ms > ?2) AS succeeded,
    (SELECT count(*) FROM tasks WHERE queue = ?1 AND state = 'dead'
	AND finished_ms > ?2) AS dead;

-- name: metrics_times
-- Run time and wait of the queue's latest tasks (at most max) that
-- succeeded after since_ms.
-- in: queue text, since_ms int, max int
-- out: run_ms int, wait_ms int
SELECT finished_ms - started_ms AS run_ms, started_ms - run_at_ms AS wait_ms
  FROM tasks
 WHERE queue = ?1 AND state = 'succeeded' AND finished_ms > ?2
 ORDER BY finished_ms DESC LIMIT ?3;

-- name: metrics_workers
-- Live workers (heartbeat after since_ms) serving the queue: how many,
-- their threads, busy ones.
-- in: queue text, since_ms int
-- out: workers int, concurrency int, busy int
SELECT count(*) AS workers, coalesce(sum(concurrency), 0) AS concurrency,
    coalesce(sum(busy), 0) AS busy
  FROM workers w
 WHERE w.heartbeat_ms > ?2 AND EXISTS (SELECT 1 FROM json_each(w.queues) j
	WHERE j.value = ?1);

-- fragment: worker_columns
-- A worker's columns, its queues (a JSON array in the table) joined by
-- char(31), which no queue name holds (no control characters): NULL for
-- none, or for a column that is not a JSON array.
SELECT w.id AS id, w.host AS host, w.pid AS pid,
    CASE WHEN json_valid(w.queues) THEN CASE json_type(w.queues)
    WHEN 'array' THEN (SELECT group_concat(j.value, char(31)) FROM
    (SELECT value FROM json_each(w.queues) ORDER BY key) j) END END
    AS queues,
    w.concurrency AS concurrency, w.busy AS busy,
    w.started_ms AS started_ms, w.heartbeat_ms AS heartbeat_ms

-- name: workers_list
-- in: after text, max int
-- out: id text, host text, pid int, queues text, concurrency int, busy int
-- out: started_ms int, heartbeat_ms int
-- A keyset page of the workers by id (the primary key): ids after ?1
-- (NULL: from the first), at most ?2.
-- use: worker_columns
  FROM workers w WHERE w.id > coalesce(?1, '') ORDER BY w.id LIMIT ?2;

-- name: workers_list_desc
-- in: before text, max int
-- out: like workers_list
-- As workers_list, last id first: ids below ?1 (NULL: an empty blob,
-- after every text, so from the last id).
-- use: worker_columns
  FROM workers w WHERE w.id < coalesce(?1, X'') ORDER BY w.id DESC LIMIT ?2;
