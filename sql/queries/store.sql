-- sql/queries/store.sql -- transactions and schema probes used by store.c.

-- name: begin
-- Every write transaction takes the write lock up front, so it can never
-- fail half way with SQLITE_BUSY when it upgrades from a read.
BEGIN IMMEDIATE;

-- name: begin_read
-- A read-only snapshot for reads that must agree with each other (stats).
-- Never used for writes: those take BEGIN IMMEDIATE.
BEGIN DEFERRED;

-- name: commit
COMMIT;

-- name: rollback
ROLLBACK;

-- name: schema_objects
-- How many objects the schema holds: 0 means an empty (new) database.
SELECT count(*) FROM sqlite_master;
