-- sql/queries/batch.sql -- batches: create, join, close, settle, read.

-- name: batch_insert
-- in: description text, hook_queue text, hook_payload text, hook_on text
-- in: now_ms int
INSERT INTO batches (description, hook_queue, hook_payload, hook_on,
    created_ms)
VALUES (?1, ?2, ?3, ?4, ?5);

-- name: batch_state
-- The state of the batch ('open', 'closed', 'finished'), no row if none.
-- in: id int
-- out: state text
SELECT state FROM batches WHERE id = ?1;

-- name: batch_join
-- n new members joined the open batch (one row changed, or none if the
-- batch is not open).
-- in: id int, n int
UPDATE batches SET total = total + ?2, pending = pending + ?2
 WHERE id = ?1 AND state = 'open';

-- name: batch_close
-- Settling, before the commit, finishes it if it can.
-- in: id int, now_ms int
UPDATE batches SET state = 'closed', closed_ms = ?2
 WHERE id = ?1 AND state = 'open';

-- name: batch_settle_next
-- out: id int, hook_queue text, hook_payload text
-- A closed batch with nothing ready or running, and the payload of the
-- hook to enqueue for it (NULL when there is none to enqueue: no hook,
-- already enqueued, or 'success' and not every member succeeded).  The
-- hook's own payload is embedded as JSON when it is JSON, else as text.
SELECT id, hook_queue,
    CASE WHEN hook_queue IS NOT NULL AND hook_task_id IS NULL AND
	(hook_on = 'always' OR succeeded = total)
    THEN json_object('batch', id, 'description', description,
	'total', total, 'succeeded', succeeded, 'failed', failed,
	'dead', dead, 'cancelled', cancelled,
	'payload', CASE WHEN json_valid(hook_payload) THEN json(hook_payload)
	    ELSE hook_payload END)
    END AS hook_payload
  FROM batches INDEXED BY batches_settle
 WHERE state = 'closed' AND pending = 0 AND running = 0
 LIMIT 1;

-- name: batch_finish
-- The hook task's id is 0 if none was enqueued.
-- in: id int, now_ms int, hook_task_id int0
UPDATE batches SET state = 'finished', finished_ms = ?2,
    hook_task_id = coalesce(hook_task_id, ?3)
 WHERE id = ?1 AND state = 'closed';

-- name: batch_get
-- in: id int
-- out: id int, description text, state text, total int, pending int
-- out: running int, succeeded int, failed int, dead int, cancelled int
-- out: hook_queue text, hook_payload text, hook_on text, hook_task_id int
-- out: created_ms int, closed_ms int, finished_ms int
SELECT id, description, state, total, pending, running, succeeded, failed,
    dead, cancelled, hook_queue, hook_payload, hook_on, hook_task_id,
    created_ms, closed_ms, finished_ms
  FROM batches WHERE id = ?1;

-- name: batch_list
-- Up to max batches after id after_id, oldest first; in state, or any
-- if NULL.
-- in: after_id int, max int, state text
-- out: like batch_get
SELECT id, description, state, total, pending, running, succeeded, failed,
    dead, cancelled, hook_queue, hook_payload, hook_on, hook_task_id,
    created_ms, closed_ms, finished_ms
  FROM batches WHERE id > ?1 AND (?3 IS NULL OR state = ?3)
 ORDER BY id LIMIT ?2;

-- name: batch_list_desc
-- As batch_list, newest first: ids below before_id.
-- in: before_id int, max int, state text
-- out: like batch_get
SELECT id, description, state, total, pending, running, succeeded, failed,
    dead, cancelled, hook_queue, hook_payload, hook_on, hook_task_id,
    created_ms, closed_ms, finished_ms
  FROM batches WHERE id < ?1 AND (?3 IS NULL OR state = ?3)
 ORDER BY id DESC LIMIT ?2;
