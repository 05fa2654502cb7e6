-- sql/queries/workers.sql -- the workers table and named locks, kept by
-- the engine's tick.

-- name: worker_upsert
-- in: id text, host text, pid int, queues text, concurrency int, busy int
-- in: started_ms int, heartbeat_ms int
-- (queues is a JSON array of names.)
INSERT INTO workers (id, host, pid, queues, concurrency, busy, started_ms,
    heartbeat_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT (id) DO UPDATE SET concurrency = ?5, busy = ?6,
    heartbeat_ms = ?8;

-- name: worker_delete
-- in: id text
DELETE FROM workers WHERE id = ?1;

-- name: worker_prune
-- Rows of processes that stopped refreshing theirs before stale_ms.
-- in: stale_ms int
DELETE FROM workers WHERE heartbeat_ms < ?1;

-- name: lock_acquire
-- Take the lock for owner until until_ms, if it is free, expired or
-- already ours; changes() says whether it was taken.
-- in: name text, owner text, now_ms int, until_ms int
INSERT INTO locks (name, owner, acquired_ms, until_ms) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (name) DO UPDATE SET owner = ?2, acquired_ms = ?3,
    until_ms = ?4 WHERE locks.until_ms < ?3 OR locks.owner = ?2;

-- name: lock_holder
-- in: name text
-- out: owner text, until_ms int
SELECT owner, until_ms FROM locks WHERE name = ?1;

-- name: lock_renew
-- in: name text, owner text, until_ms int
UPDATE locks SET until_ms = ?3 WHERE name = ?1 AND owner = ?2;

-- name: lock_release
-- in: name text, owner text
DELETE FROM locks WHERE name = ?1 AND owner = ?2;
