-- sql/queries/store.sql -- transactions and schema probes used by store.c.
-- Never a pragma that sets a value here: SQLite applies those when the
-- statement is prepared, and every named query is prepared at open.

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

-- name: settle_any
-- out: any int
-- 1 if a commit may have anything to settle (precommit.c): an item to hand
-- on, a run or a batch to finish.  The conditions are those of
-- item_settle_next, run_settle_next and batch_settle_next, without their
-- joins, so 0 means each of them would find nothing; one statement costs
-- less than those three, and most commits have nothing to settle.
SELECT EXISTS (SELECT 1 FROM pipeline_items INDEXED BY pipeline_items_settle
		WHERE settle = 1) OR
    EXISTS (SELECT 1 FROM pipeline_runs INDEXED BY pipeline_runs_settle
		WHERE finished_ms IS NULL AND running = 0) OR
    EXISTS (SELECT 1 FROM batches INDEXED BY batches_settle
		WHERE state = 'closed' AND pending = 0 AND running = 0) AS any;

-- name: savepoint
-- One request of a group commit (enqueue.c), undone alone if refused.
SAVEPOINT request;

-- name: savepoint_release
RELEASE request;

-- name: savepoint_rollback
-- Undo the request's writes; RELEASE follows to end the savepoint.
ROLLBACK TO request;

-- name: schema_probe
-- What a file is: its application_id, its schema version, and how many
-- objects its schema holds (0 for a new, empty database).  One statement,
-- so the three come from one snapshot even while another process migrates.
SELECT (SELECT application_id FROM pragma_application_id),
       (SELECT user_version FROM pragma_user_version),
       (SELECT count(*) FROM sqlite_master);

-- name: data_version
-- Changes whenever another connection commits: an idle engine polls this
-- instead of the tasks.
-- in: -
-- out: data_version int
PRAGMA data_version;
