/*
 * admin.c -- reading tasks (get, list, history, stats) and the operator's
 * actions (cancel, retry, purge, prune).
 *
 * Invariants: reads never write.  Actions over many rows (retry_all,
 * purge, prune) work in transactions of at most SPOOL_BATCH_ROWS rows, so
 * they never hold the write lock long enough to stall workers; each batch
 * is whole, and a failure stops after the last committed batch.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "spool-int.h"

#define LIST_DEFAULT	100
#define LIST_MAX	10000

/* Check the common arguments of a call on q. */
#define CHECK_HANDLE(q) do {						\
	if ((q) == NULL || (q)->db == NULL)				\
		return (spool__unusable(q));					\
	spool__clear_error(q);						\
} while (0)

/* Decode a task_get / task_list row into t; a leased task is running,
 * claimed or expired at now_ms. */
static int
task_from_row(spool *q, spool_task_info *t, sqlite3_stmt *st, int64_t now_ms)
{
	memset(t, 0, sizeof *t);
	t->id = sqlite3_column_int64(st, 0);
	t->queue = spool__col_strdup(st, 1);
	t->state = spool__state_parse((const char *)sqlite3_column_text(st, 2));
	t->priority = sqlite3_column_int(st, 3);
	t->payload = spool__col_blobdup(st, 4, &t->payload_len);
	t->run_at_ms = sqlite3_column_int64(st, 5);
	t->deadline_ms = sqlite3_column_int64(st, 6);
	t->attempts = sqlite3_column_int(st, 7);
	t->max_attempts = sqlite3_column_int(st, 8);
	t->key = spool__col_strdup(st, 9);
	t->lease_owner = spool__col_strdup(st, 10);
	t->lease_until_ms = sqlite3_column_int64(st, 11);
	t->cancel_requested = sqlite3_column_int(st, 12);
	t->created_ms = sqlite3_column_int64(st, 13);
	t->started_ms = sqlite3_column_int64(st, 14);
	t->finished_ms = sqlite3_column_int64(st, 15);
	t->last_error = spool__col_strdup(st, 16);
	t->dead_reason = spool__col_strdup(st, 17);
	t->has_result = sqlite3_column_int(st, 18);
	if (t->has_result)
		t->result = spool__col_blobdup(st, 19, &t->result_len);
	t->duration_ms = sqlite3_column_int64(st, 20);
	t->batch_id = sqlite3_column_int64(st, 21);
	if (t->state == SPOOL_RUNNING)
		t->state = t->lease_until_ms < now_ms ? SPOOL_EXPIRED :
		    sqlite3_column_type(st, 14) == SQLITE_NULL ? SPOOL_CLAIMED :
		    SPOOL_RUNNING;
	if (t->queue == NULL ||
	    (t->payload == NULL && sqlite3_column_type(st, 4) != SQLITE_NULL) ||
	    (t->key == NULL && sqlite3_column_type(st, 9) != SQLITE_NULL) ||
	    (t->lease_owner == NULL &&
	    sqlite3_column_type(st, 10) != SQLITE_NULL) ||
	    (t->last_error == NULL &&
	    sqlite3_column_type(st, 16) != SQLITE_NULL) ||
	    (t->dead_reason == NULL &&
	    sqlite3_column_type(st, 17) != SQLITE_NULL) ||
	    (t->has_result && t->result == NULL &&
	    sqlite3_column_type(st, 19) != SQLITE_NULL))
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	return (SPOOL_OK);
}

/* Free task infos. */
void
spool_task_info_free(spool_task_info *info, size_t n)
{
	size_t	 i;

	if (info == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(info[i].queue);
		free(info[i].payload);
		free(info[i].key);
		free(info[i].lease_owner);
		free(info[i].last_error);
		free(info[i].dead_reason);
		free(info[i].result);
	}
	free(info);
}

/* Read one task with its result. */
int
spool_get(spool_task_info **out, spool *q, int64_t id)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (out == NULL)
		return (SPOOL_EINVAL);
	*out = NULL;
	CHECK_HANDLE(q);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "task id must be positive"));
	if ((*out = calloc(1, sizeof **out)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	st = spool__stmt(q, SPOOL_SQL_TASK_GET);
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = task_from_row(q, *out, st, spool__now_ms(q));
	else if (rc == SQLITE_DONE)
		rc = spool__error(q, SPOOL_ENOENT, "no such task: %lld",
		    (long long)id);
	else
		rc = spool__store_error(q, rc, "get task");
	sqlite3_reset(st);
	if (rc != SPOOL_OK) {
		spool_task_info_free(*out, 1);
		*out = NULL;
	}
	return (rc);
}

/* One keyset page of tasks. */
int
spool_list(spool_task_info **out, size_t *n, spool *q,
    const spool_list_opts *opts)
{
	spool_list_opts	 none = SPOOL_LIST_OPTS_INIT;
	spool_task_info	*v;
	sqlite3_stmt	*st;
	size_t		 limit, len = 0;
	int64_t		 now;
	int		 rc, leased;

	if (out == NULL || n == NULL)
		return (SPOOL_EINVAL);
	*out = NULL;
	*n = 0;
	CHECK_HANDLE(q);
	if (opts == NULL)
		opts = &none;
	if (opts->version < 1)
		return (spool__error(q, SPOOL_EINVAL,
		    "list options: version not set (use SPOOL_LIST_OPTS_INIT)"));
	if ((rc = spool__check_version(q, "spool_list_opts", opts->version,
	    SPOOL_LIST_OPTS_VERSION)) != SPOOL_OK)
		return (rc);
	if (opts->queue != NULL && (rc = spool__check_name(q, "queue name",
	    opts->queue, SPOOL_NAME_MAX)) != SPOOL_OK)
		return (rc);
	if (opts->state != 0 && spool_state_name(opts->state) == NULL)
		return (spool__error(q, SPOOL_EINVAL, "unknown state %d",
		    opts->state));
	if (opts->after_id < 0)
		return (spool__error(q, SPOOL_EINVAL, "after id is negative"));
	limit = opts->limit == 0 ? LIST_DEFAULT : opts->limit;
	if (limit > LIST_MAX)
		return (spool__error(q, SPOOL_EINVAL,
		    "list limit too large (at most %d)", LIST_MAX));
	if ((v = calloc(limit, sizeof *v)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));

	now = spool__now_ms(q);
	leased = opts->state == SPOOL_RUNNING || opts->state == SPOOL_CLAIMED ||
	    opts->state == SPOOL_EXPIRED;
	if (leased) {
		st = spool__stmt(q, opts->descending ?
		    SPOOL_SQL_TASK_LIST_RUNNING_DESC :
		    SPOOL_SQL_TASK_LIST_RUNNING_ASC);
		sqlite3_bind_int64(st, 5, now);
	} else
		st = spool__stmt(q, opts->descending ?
		    SPOOL_SQL_TASK_LIST_DESC : SPOOL_SQL_TASK_LIST_ASC);
	spool__bind_text_or_null(st, 1, opts->queue);
	spool__bind_text_or_null(st, 2, spool_state_name(opts->state));
	sqlite3_bind_int64(st, 3, opts->descending && opts->after_id == 0 ?
	    INT64_MAX : opts->after_id);
	sqlite3_bind_int64(st, 4, (int64_t)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rc = task_from_row(q, &v[len++], st, now)) != SPOOL_OK)
			goto fail;
	}
	if (rc != SQLITE_DONE) {
		rc = spool__store_error(q, rc, "list tasks");
		goto fail;
	}
	sqlite3_reset(st);
	if (len == 0) {
		free(v);
		v = NULL;
	}
	*out = v;
	*n = len;
	return (SPOOL_OK);
fail:
	sqlite3_reset(st);
	spool_task_info_free(v, len);
	return (rc);
}

/* Free attempt infos. */
void
spool_attempt_info_free(spool_attempt_info *info, size_t n)
{
	size_t	 i;

	if (info == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(info[i].worker);
		free(info[i].outcome);
		free(info[i].error);
	}
	free(info);
}

/* The attempt history of one task. */
int
spool_attempts(spool_attempt_info **out, size_t *n, spool *q, int64_t id)
{
	spool_attempt_info	*v = NULL, *nv, *a;
	sqlite3_stmt		*st;
	size_t			 len = 0, cap = 0;
	int			 rc;

	if (out == NULL || n == NULL)
		return (SPOOL_EINVAL);
	*out = NULL;
	*n = 0;
	CHECK_HANDLE(q);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "task id must be positive"));
	st = spool__stmt(q, SPOOL_SQL_ATTEMPT_LIST);
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = spool__grow(v, &cap, len, sizeof *v)) == NULL) {
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			goto fail;
		}
		v = nv;
		a = &v[len++];
		memset(a, 0, sizeof *a);
		a->attempt = sqlite3_column_int(st, 0);
		a->worker = spool__col_strdup(st, 1);
		a->started_ms = sqlite3_column_int64(st, 2);
		a->finished_ms = sqlite3_column_int64(st, 3);
		a->outcome = spool__col_strdup(st, 4);
		a->error = spool__col_strdup(st, 5);
		if (a->worker == NULL || a->outcome == NULL ||
		    (a->error == NULL && sqlite3_column_type(st, 5) !=
		    SQLITE_NULL)) {
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			goto fail;
		}
	}
	if (rc != SQLITE_DONE) {
		rc = spool__store_error(q, rc, "read history");
		goto fail;
	}
	sqlite3_reset(st);
	*out = v;
	*n = len;
	return (SPOOL_OK);
fail:
	sqlite3_reset(st);
	spool_attempt_info_free(v, len);
	return (rc);
}

/* Run a one-row counting query with queue ?1 (and now ?2 when given). */
static int
stats_count(spool *q, enum spool_sql which, const char *queue, int64_t now_ms,
    int64_t *count, int64_t *min)
{
	sqlite3_stmt	*st = spool__stmt(q, which);
	int		 rc;

	sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
	if (now_ms != 0)
		sqlite3_bind_int64(st, 2, now_ms);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*count = sqlite3_column_int64(st, 0);
		if (min != NULL)
			*min = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 :
			    sqlite3_column_int64(st, 1);
		rc = SPOOL_OK;
	} else
		rc = spool__store_error(q, rc, "stats");
	sqlite3_reset(st);
	return (rc);
}

/* Fill the counts of one queue (name and paused already set). */
static int
stats_queue(spool *q, spool_queue_stats *s, int64_t now_ms)
{
	sqlite3_stmt	*st;
	const char	*state;
	int64_t		 all, oldest;
	int		 rc;

	if ((rc = stats_count(q, SPOOL_SQL_STATS_DUE, s->queue, now_ms,
	    &s->ready, &oldest)) != SPOOL_OK ||
	    (rc = stats_count(q, SPOOL_SQL_QUEUE_DEPTH, s->queue, 0, &all,
	    NULL)) != SPOOL_OK)
		return (rc);
	st = spool__stmt(q, SPOOL_SQL_STATS_RUNNING);
	sqlite3_bind_text(st, 1, s->queue, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return (spool__store_error(q, rc, "stats"));
	}
	s->running = sqlite3_column_int64(st, 0);
	s->claimed = sqlite3_column_int64(st, 1);
	s->expired = sqlite3_column_int64(st, 2);
	sqlite3_reset(st);
	s->scheduled = all - s->ready;
	s->oldest_ready_age_ms = oldest < 0 ? -1 :
	    (now_ms > oldest ? now_ms - oldest : 0);

	st = spool__stmt(q, SPOOL_SQL_STATS_FINISHED);
	sqlite3_bind_text(st, 1, s->queue, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		state = (const char *)sqlite3_column_text(st, 0);
		switch (spool__state_parse(state)) {
		case SPOOL_SUCCEEDED:
			s->succeeded = sqlite3_column_int64(st, 1);
			break;
		case SPOOL_DEAD:
			s->dead = sqlite3_column_int64(st, 1);
			break;
		case SPOOL_CANCELLED:
			s->cancelled = sqlite3_column_int64(st, 1);
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return (spool__store_error(q, rc, "stats"));
	return (SPOOL_OK);
}

/* Free queue stats. */
void
spool_queue_stats_free(spool_queue_stats *stats, size_t n)
{
	size_t	 i;

	if (stats == NULL)
		return;
	for (i = 0; i < n; i++)
		free(stats[i].queue);
	free(stats);
}

/* Stats of one queue or of all.  The counts of all queues come from one
 * read transaction, so they are consistent with each other. */
int
spool_stats(spool_queue_stats **out, size_t *n, spool *q, const char *queue)
{
	spool_queue_info	*qi = NULL;
	spool_queue_stats	*v = NULL;
	size_t			 nq = 0, i;
	int64_t			 now;
	int			 rc;

	if (out == NULL || n == NULL)
		return (SPOOL_EINVAL);
	*out = NULL;
	*n = 0;
	CHECK_HANDLE(q);
	if ((rc = spool__begin_read(q)) != SPOOL_OK)
		return (rc);
	if (queue != NULL) {
		rc = spool_queue_get(&qi, q, queue);
		nq = 1;
	} else
		rc = spool_queue_list(&qi, &nq, q);
	if (rc != SPOOL_OK)
		goto out;
	if (nq > 0 && (v = calloc(nq, sizeof *v)) == NULL) {
		rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
		goto out;
	}
	now = spool__now_ms(q);
	for (i = 0; i < nq; i++) {
		v[i].queue = qi[i].name;
		qi[i].name = NULL;
		v[i].paused = qi[i].conf.paused;
		if ((rc = stats_queue(q, &v[i], now)) != SPOOL_OK)
			goto out;
	}
	*out = v;
	*n = nq;
	v = NULL;
	rc = SPOOL_OK;
out:
	spool__end_read(q);
	spool_queue_info_free(qi, nq);
	spool_queue_stats_free(v, nq);
	return (rc);
}

/* The state of task id, or SPOOL_ENOENT; inside the caller's transaction. */
static int
task_state(spool *q, int64_t id, int *state)
{
	sqlite3_stmt	*st = spool__stmt(q, SPOOL_SQL_TASK_STATE);
	int		 rc;

	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*state = spool__state_parse((const char *)
		    sqlite3_column_text(st, 0));
		rc = SPOOL_OK;
	} else if (rc == SQLITE_DONE)
		rc = spool__error(q, SPOOL_ENOENT, "no such task: %lld",
		    (long long)id);
	else
		rc = spool__store_error(q, rc, "read task");
	sqlite3_reset(st);
	return (rc);
}

/* Cancel a ready task, or flag a running one. */
int
spool_cancel(int *running_out, spool *q, int64_t id)
{
	sqlite3_stmt	*st;
	int		 rc, state;

	if (running_out != NULL)
		*running_out = 0;
	CHECK_HANDLE(q);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "task id must be positive"));
	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	if ((rc = task_state(q, id, &state)) != SPOOL_OK)
		goto fail;
	switch (state) {
	case SPOOL_READY:
		st = spool__stmt(q, SPOOL_SQL_TASK_CANCEL_READY);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, spool__now_ms(q));
		break;
	case SPOOL_RUNNING:
		st = spool__stmt(q, SPOOL_SQL_TASK_CANCEL_RUNNING);
		sqlite3_bind_int64(st, 1, id);
		break;
	default:
		rc = spool__error(q, SPOOL_ESTATE, "task %lld is already %s",
		    (long long)id, spool_state_name(state) ? spool_state_name(state) :
		    "finished");
		goto fail;
	}
	/* A ready task's cancel returns its queue, to count it. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		spool__count(q, (const char *)sqlite3_column_text(st, 0),
		    SPOOL__C_CANCELLED, 1);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		rc = spool__store_error(q, rc, "cancel");
		goto fail;
	}
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
	sqlite3_stmt	*st;
	int		 rc, state;

	if ((rc = task_state(q, id, &state)) != SPOOL_OK)
		return (rc);
	if (state != SPOOL_DEAD && state != SPOOL_CANCELLED)
		return (spool__error(q, SPOOL_ESTATE,
		    "task %lld is %s; only dead or cancelled tasks are retried",
		    (long long)id, spool_state_name(state) ?
		    spool_state_name(state) : "in an unknown state"));
	st = spool__stmt(q, SPOOL_SQL_TASK_RETRY);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, spool__now_ms(q));
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return (SPOOL_OK);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return (spool__error(q, SPOOL_EEXISTS,
		    "task %lld: its idempotency key is held by another "
		    "unfinished task", (long long)id));
	return (spool__store_error(q, rc, "retry"));
}

/* Make a dead or cancelled task ready again. */
int
spool_retry(spool *q, int64_t id)
{
	int	 rc;

	CHECK_HANDLE(q);
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
	sqlite3_stmt	*st;
	size_t		 n, i;
	int		 rc;

	if (n_out != NULL)
		*n_out = 0;
	CHECK_HANDLE(q);
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
		st = spool__stmt(q, SPOOL_SQL_RETRY_CANDIDATES);
		sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, spool_state_name(state), -1,
		    SQLITE_STATIC);
		sqlite3_bind_int(st, 3, SPOOL_BATCH_ROWS);
		sqlite3_bind_int64(st, 4, after_ms);
		sqlite3_bind_int64(st, 5, after_id);
		n = 0;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			ids[n] = sqlite3_column_int64(st, 0);
			fin[n++] = sqlite3_column_int64(st, 1);
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			rc = spool__store_error(q, rc, "retry");
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
	sqlite3_stmt		*st;
	int64_t			 total = 0, n;
	int			 rc;

	if (n_out != NULL)
		*n_out = 0;
	CHECK_HANDLE(q);
	if ((rc = spool__check_name(q, "queue name", queue,
	    SPOOL_NAME_MAX)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__queue_read(&conf, q, queue)) != SPOOL_OK)
		return (rc);
	if (dry_run) {
		if ((rc = stats_count(q, SPOOL_SQL_QUEUE_DEPTH, queue, 0, &total,
		    NULL)) != SPOOL_OK)
			return (rc);
		if (n_out != NULL)
			*n_out = total;
		return (SPOOL_OK);
	}
	do {
		if ((rc = spool__begin(q)) != SPOOL_OK)
			return (rc);
		st = spool__stmt(q, SPOOL_SQL_PURGE_BATCH);
		sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, SPOOL_BATCH_ROWS);
		if ((rc = spool__step_done(q, st, "purge")) != SPOOL_OK) {
			spool__rollback(q);
			return (rc);
		}
		n = sqlite3_changes(q->db);
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
	sqlite3_stmt	*st;
	int64_t		 n;
	int		 rc;

	do {
		if ((rc = spool__begin(q)) != SPOOL_OK)
			return (rc);
		st = spool__stmt(q, SPOOL_SQL_PRUNE_BATCH);
		sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, spool_state_name(state), -1,
		    SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, cutoff_ms);
		sqlite3_bind_int(st, 4, SPOOL_BATCH_ROWS);
		if ((rc = spool__step_done(q, st, "prune")) != SPOOL_OK) {
			spool__rollback(q);
			return (rc);
		}
		n = sqlite3_changes(q->db);
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
	CHECK_HANDLE(q);
	if (queue != NULL)
		rc = spool_queue_get(&qi, q, queue);
	else
		rc = spool_queue_list(&qi, &nq, q);
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
