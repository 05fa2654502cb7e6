/*
 * actions.c -- the operator's actions on tasks: cancel, retry (one, or
 * all of a queue and state), purge and prune.
 *
 * Invariants: actions over many rows (retry_all, purge, prune) work in
 * transactions of at most SPOOL_BATCH_ROWS rows, so they never hold the
 * write lock long enough to stall workers; each batch is whole, and a
 * failure stops after the last committed batch.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "spool-int.h"
#include "query-gen.h"

/* Cancel a ready task, or flag a running one. */
int
spool_cancel(int *running_out, spool *q, int64_t id)
{
	struct spool__cur		 c;
	struct spool__q_task_cancel_ready_row r;
	int				 rc, state;

	if (running_out != NULL)
		*running_out = 0;
	SPOOL__CHECK_HANDLE(q);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "task id must be positive"));
	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__task_state(q, id, &state)) != SPOOL_OK)
		goto fail;
	switch (state) {
	case SPOOL_READY:
		/* It returns the task's queue, to count it. */
		if ((rc = spool__q_task_cancel_ready(q, &c,
		    &(struct spool__q_task_cancel_ready_in){ .id = id,
		    .now_ms = spool__now_ms(q) })) != SPOOL_OK)
			goto fail;
		while ((rc = spool__q_task_cancel_ready_next(&c, &r)) == 1)
			spool__count(q, r.queue, SPOOL__C_CANCELLED, 1);
		break;
	case SPOOL_RUNNING:
		rc = spool__q_task_cancel_running(q,
		    &(struct spool__q_task_cancel_running_in){ .id = id });
		break;
	default:
		rc = spool__error(q, SPOOL_ESTATE, "task %lld is already %s",
		    (long long)id, spool_state_name(state) ? spool_state_name(state) :
		    "finished");
		goto fail;
	}
	if (rc != SPOOL_OK)
		goto fail;
	if ((rc = spool__commit(q)) != SPOOL_OK)
		return (rc);
	if (running_out != NULL)
		*running_out = (state == SPOOL_RUNNING);
	return (SPOOL_OK);
fail:
	spool__rollback(q);
	return (rc);
}

/* Retry one task inside the caller's transaction. */
static int
retry_locked(spool *q, int64_t id)
{
	int	 rc, state;

	if ((rc = spool__task_state(q, id, &state)) != SPOOL_OK)
		return (rc);
	if (state != SPOOL_DEAD && state != SPOOL_CANCELLED)
		return (spool__error(q, SPOOL_ESTATE,
		    "task %lld is %s; only dead or cancelled tasks are retried",
		    (long long)id, spool_state_name(state) ?
		    spool_state_name(state) : "in an unknown state"));
	rc = spool__q_task_retry(q, &(struct spool__q_task_retry_in){
	    .id = id, .now_ms = spool__now_ms(q) });
	if (rc == SPOOL_EEXISTS)	/* the unique index of unfinished keys */
		return (spool__error(q, SPOOL_EEXISTS,
		    "task %lld: its idempotency key is held by another "
		    "unfinished task", (long long)id));
	return (rc);
}

/* Make a dead or cancelled task ready again. */
int
spool_retry(spool *q, int64_t id)
{
	int	 rc;

	SPOOL__CHECK_HANDLE(q);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "task id must be positive"));
	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	if ((rc = retry_locked(q, id)) != SPOOL_OK) {
		spool__rollback(q);
		return (rc);
	}
	return (spool__commit(q));
}

/* Retry every dead (or cancelled) task of a queue, a batch at a time. */
int
spool_retry_all(int64_t *n_out, spool *q, const char *queue, int state)
{
	spool_queue_opts conf;
	int64_t		 ids[SPOOL_BATCH_ROWS], total = 0;
	int64_t		 after_ms = INT64_MIN, after_id = 0, fin[SPOOL_BATCH_ROWS];
	struct spool__cur c;
	struct spool__q_retry_candidates_row r;
	size_t		 n, i;
	int		 rc;

	if (n_out != NULL)
		*n_out = 0;
	SPOOL__CHECK_HANDLE(q);
	if ((rc = spool__check_name(q, "queue name", queue,
	    SPOOL_NAME_MAX)) != SPOOL_OK)
		return (rc);
	if (state != SPOOL_DEAD && state != SPOOL_CANCELLED)
		return (spool__error(q, SPOOL_EINVAL,
		    "only dead or cancelled tasks can be retried"));
	if ((rc = spool__queue_read(&conf, q, queue)) != SPOOL_OK)
		return (rc);
	do {
		if ((rc = spool__begin(q)) != SPOOL_OK)
			break;
		n = 0;
		if ((rc = spool__q_retry_candidates(q, &c,
		    &(struct spool__q_retry_candidates_in){ .queue = queue,
		    .state = spool_state_name(state), .max = SPOOL_BATCH_ROWS,
		    .after_ms = after_ms, .after_id = after_id })) == SPOOL_OK) {
			while (n < SPOOL_BATCH_ROWS &&
			    (rc = spool__q_retry_candidates_next(&c, &r)) == 1) {
				ids[n] = r.id;
				fin[n++] = r.finished_ms;
			}
			spool__cur_end(&c);
		}
		if (rc < 0) {
			spool__rollback(q);
			break;
		}
		for (i = 0, rc = SPOOL_OK; i < n && rc == SPOOL_OK; i++) {
			rc = retry_locked(q, ids[i]);
			if (rc == SPOOL_OK)
				total++;
			else if (rc == SPOOL_EEXISTS)	/* key taken: skip */
				rc = SPOOL_OK;
			after_ms = fin[i];
			after_id = ids[i];
		}
		if (rc != SPOOL_OK) {
			spool__rollback(q);
			break;
		}
		if ((rc = spool__commit(q)) != SPOOL_OK)
			break;
	} while (n == SPOOL_BATCH_ROWS);
	if (rc != SPOOL_OK)
		return (rc);
	spool__clear_error(q);
	if (n_out != NULL)
		*n_out = total;
	return (SPOOL_OK);
}

/* Delete the ready tasks of a queue (or count them). */
int
spool_purge(int64_t *n_out, spool *q, const char *queue, int dry_run)
{
	spool_queue_opts	 conf;
	int64_t			 total = 0, n;
	int			 rc;

	if (n_out != NULL)
		*n_out = 0;
	SPOOL__CHECK_HANDLE(q);
	if ((rc = spool__check_name(q, "queue name", queue,
	    SPOOL_NAME_MAX)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__queue_read(&conf, q, queue)) != SPOOL_OK)
		return (rc);
	if (dry_run) {
		if ((rc = spool__ready_count(q, queue, &total)) != SPOOL_OK)
			return (rc);
		if (n_out != NULL)
			*n_out = total;
		return (SPOOL_OK);
	}
	do {
		if ((rc = spool__begin(q)) != SPOOL_OK)
			return (rc);
		if ((rc = spool__q_purge_batch(q,
		    &(struct spool__q_purge_batch_in){ .queue = queue,
		    .max = SPOOL_BATCH_ROWS })) != SPOOL_OK) {
			spool__rollback(q);
			return (rc);
		}
		n = spool__changes(q);
		if ((rc = spool__commit(q)) != SPOOL_OK)
			return (rc);
		total += n;
		if (n_out != NULL)
			*n_out = total;
	} while (n == SPOOL_BATCH_ROWS);
	return (SPOOL_OK);
}

/* Prune the tasks of one queue in one finished state older than
 * cutoff_ms, a batch per transaction. */
static int
prune_state(int64_t *total, spool *q, const char *queue, int state,
    int64_t cutoff_ms)
{
	int64_t		 n;
	int		 rc;

	do {
		if ((rc = spool__begin(q)) != SPOOL_OK)
			return (rc);
		if ((rc = spool__q_prune_batch(q,
		    &(struct spool__q_prune_batch_in){ .queue = queue,
		    .state = spool_state_name(state), .before_ms = cutoff_ms,
		    .max = SPOOL_BATCH_ROWS })) != SPOOL_OK) {
			spool__rollback(q);
			return (rc);
		}
		n = spool__changes(q);
		if ((rc = spool__commit(q)) != SPOOL_OK)
			return (rc);
		*total += n;
	} while (n == SPOOL_BATCH_ROWS);
	return (SPOOL_OK);
}

/* Prune the finished tasks of one queue older than cutoff_ms, one
 * finished state after the other (each a range of tasks_finished). */
static int
prune_queue(int64_t *total, spool *q, const char *queue, int64_t cutoff_ms)
{
	int	 state, rc;

	for (state = SPOOL_SUCCEEDED; state <= SPOOL_CANCELLED; state++)
		if ((rc = prune_state(total, q, queue, state, cutoff_ms)) != 0)
			return (rc);
	return (SPOOL_OK);
}

/* Delete finished tasks past an age or their queue's retention. */
int
spool_prune(int64_t *n_out, spool *q, const char *queue, int64_t older_than_ms)
{
	spool_queue_info	*qi = NULL;
	size_t			 nq = 0, i;
	int64_t			 total = 0, now, age;
	int			 rc;

	if (n_out != NULL)
		*n_out = 0;
	SPOOL__CHECK_HANDLE(q);
	if (queue != NULL)
		rc = spool_queue_get(&qi, q, queue);
	else
		rc = spool__queue_list_all(&qi, &nq, q);
	if (queue != NULL)
		nq = 1;
	if (rc != SPOOL_OK)
		return (rc);
	now = spool__now_ms(q);
	for (i = 0, rc = SPOOL_OK; i < nq && rc == SPOOL_OK; i++) {
		age = older_than_ms >= 0 ? older_than_ms :
		    qi[i].conf.retention_ms;
		if (older_than_ms < 0 && age == 0)
			continue;	/* kept forever */
		rc = prune_queue(&total, q, qi[i].name, now - age);
	}
	spool_queue_info_free(qi, nq);
	if (n_out != NULL)
		*n_out = total;
	return (rc);
}
