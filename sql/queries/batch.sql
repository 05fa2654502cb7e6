-- sql/queries/batch.sql -- batches: create, join, close, settle, read.

-- name: batch_insert
-- ?1 description, ?2 hook_queue, ?3 hook_payload, ?4 hook_on, ?5 now_ms.
INSERT INTO batches (description, hook_queue, hook_payload, hook_on,
    created_ms)
VALUES (?1, ?2, ?3, ?4, ?5);

-- name: batch_state
-- The state of batch ?1 ('open', 'closed', 'finished'), no row if none.
SELECT state FROM batches WHERE id = ?1;

-- name: batch_join
-- ?2 new members joined open batch ?1 (one row changed, or none if the
-- batch is not open).
UPDATE batches SET total = total + ?2, pending = pending + ?2
 WHERE id = ?1 AND state = 'open';

-- name: batch_close
-- ?1 id, ?2 now_ms.  Settling, before the commit, finishes it if it can.
UPDATE batches SET state = 'closed', closed_ms = ?2
 WHERE id = ?1 AND state = 'open';

-- name: batch_settle_next
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
    END
  FROM batches INDEXED BY batches_settle
 WHERE state = 'closed' AND pending = 0 AND running = 0
 LIMIT 1;

-- name: batch_finish
-- ?1 id, ?2 now_ms, ?3 the hook task's id or NULL.
UPDATE batches SET state = 'finished', finished_ms = ?2,
    hook_task_id = coalesce(hook_task_id, ?3)
 WHERE id = ?1 AND state = 'closed';

-- name: batch_get
-- ?1 id.  Column order is the one batch.c decodes.
SELECT id, description, state, total, pending, running, succeeded, failed,
    dead, cancelled, hook_queue, hook_payload, hook_on, hook_task_id,
    created_ms, closed_ms, finished_ms
  FROM batches WHERE id = ?1;

-- name: batch_list
-- Up to ?2 batches after id ?1, oldest first; ?3 state or NULL for any.
SELECT id, description, state, total, pending, running, succeeded, failed,
    dead, cancelled, hook_queue, hook_payload, hook_on, hook_task_id,
    created_ms, closed_ms, finished_ms
  FROM batches WHERE id > ?1 AND (?3 IS NULL OR state = ?3)
 ORDER BY id LIMIT ?2;

-- name: batch_list_desc
-- As batch_list, newest first: ids below ?1.
SELECT id, description, state, total, pending, running, succeeded, failed,
    dead, cancelled, hook_queue, hook_payload, hook_on, hook_task_id,
    created_ms, closed_ms, finished_ms
  FROM batches WHERE id < ?1 AND (?3 IS NULL OR state = ?3)
 ORDER BY id DESC LIMIT ?2;
