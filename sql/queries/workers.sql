-- sql/queries/workers.sql -- the workers table and named locks, kept by
-- the engine's tick.

-- name: worker_upsert
-- ?1 id, ?2 host, ?3 pid, ?4 queues (JSON), ?5 concurrency, ?6 busy,
-- ?7 started_ms, ?8 heartbeat_ms.
INSERT INTO workers (id, host, pid, queues, concurrency, busy, started_ms,
    heartbeat_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT (id) DO UPDATE SET concurrency = ?5, busy = ?6,
    heartbeat_ms = ?8;

-- name: worker_delete
DELETE FROM workers WHERE id = ?1;

-- name: worker_prune
-- Rows of processes that stopped refreshing theirs before ?1.
DELETE FROM workers WHERE heartbeat_ms < ?1;

-- name: lock_acquire
-- Take lock ?1 for owner ?2 at ?3 now_ms until ?4, if it is free, expired
-- or already ours; changes() says whether it was taken.
INSERT INTO locks (name, owner, acquired_ms, until_ms) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (name) DO UPDATE SET owner = ?2, acquired_ms = ?3,
    until_ms = ?4 WHERE locks.until_ms < ?3 OR locks.owner = ?2;

-- name: lock_holder
SELECT owner, until_ms FROM locks WHERE name = ?1;

-- name: lock_renew
-- ?1 name, ?2 owner, ?3 until_ms.
UPDATE locks SET until_ms = ?3 WHERE name = ?1 AND owner = ?2;

-- name: lock_release
DELETE FROM locks WHERE name = ?1 AND owner = ?2;
