/*
 * run.c -- reading pipeline runs and items: status with per-stage counts
 * and durations, lists, and an item's stage history.
 *
 * Invariants: reads only, each in one read transaction, so a status is
 * one consistent snapshot even while workers commit.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "spool-int.h"

#define LIST_MAX	10000

static const char *const run_states[] = { NULL, "running", "stopping",
    "finished" };
static const char *const item_states[] = { NULL, "running", "succeeded",
    "failed", "skipped", "cancelled" };

const char *
spool_run_state_name(int state)
{
	if (state < SPOOL_RUN_RUNNING || state > SPOOL_RUN_FINISHED)
		return (NULL);
	return (run_states[state]);
}

const char *
spool_item_state_name(int state)
{
	if (state < SPOOL_ITEM_RUNNING || state > SPOOL_ITEM_CANCELLED)
		return (NULL);
	return (item_states[state]);
}

static int
state_index(const char *const *names, int last, const unsigned char *s)
{
	int	 i;

	for (i = 1; s != NULL && i <= last; i++)
		if (strcmp((const char *)s, names[i]) == 0)
			return (i);
	return (0);
}

/* Fill one run from a run_get / run_list row; *pid gets its definition. */
static int
run_from_row(spool *q, spool_run_info *r, sqlite3_stmt *st, int64_t *pid)
{
	r->id = sqlite3_column_int64(st, 0);
	r->version = sqlite3_column_int(st, 2);
	r->state = state_index(run_states, SPOOL_RUN_FINISHED,
	    sqlite3_column_text(st, 3));
	r->total = sqlite3_column_int64(st, 4);
	r->running = sqlite3_column_int64(st, 5);
	r->succeeded = sqlite3_column_int64(st, 6);
	r->failed = sqlite3_column_int64(st, 7);
	r->skipped = sqlite3_column_int64(st, 8);
	r->cancelled = sqlite3_column_int64(st, 9);
	r->hook_task_id = sqlite3_column_int64(st, 12);
	r->created_ms = sqlite3_column_int64(st, 13);
	r->finished_ms = sqlite3_column_int64(st, 14);
	if (pid != NULL)
		*pid = sqlite3_column_int64(st, 15);
	if ((r->pipeline = spool__col_strdup(st, 1)) == NULL ||
	    (sqlite3_column_type(st, 10) != SQLITE_NULL &&
	    (r->error = spool__col_strdup(st, 10)) == NULL) ||
	    (sqlite3_column_type(st, 11) != SQLITE_NULL &&
	    (r->hook_queue = spool__col_strdup(st, 11)) == NULL))
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	return (SPOOL_OK);
}

/* Durations of stage s in run: count every finished attempt, average the
 * succeeded ones and take their nearest-rank 95th percentile, all inside
 * SQLite (run_stage_durations), so no attempt is read into C. */
static int
stage_durations(spool *q, int64_t run, int64_t stage_id,
    spool_stage_status *s)
{
	sqlite3_stmt	*st = spool__stmt(q, SPOOL_SQL_RUN_STAGE_DURATIONS);
	int64_t		 n;
	int		 rc;

	sqlite3_bind_int64(st, 1, run);
	sqlite3_bind_int64(st, 2, stage_id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s->attempts = sqlite3_column_int64(st, 0);
		if ((n = sqlite3_column_int64(st, 1)) > 0) {
			s->avg_ms = (double)sqlite3_column_int64(st, 2) /
			    (double)n;
			s->p95_ms = sqlite3_column_int64(st, 3);
		}
		rc = SQLITE_DONE;	/* an aggregate: one row, always */
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return (spool__store_error(q, rc, "read stage durations"));
	return (SPOOL_OK);
}

/* The stages of run r (definition pid) with their counts. */
static int
run_stages(spool *q, spool_run_info *r, int64_t pid)
{
	sqlite3_stmt		*st;
	spool_stage_status	*v = NULL, *nv;
	int64_t			 ids[SPOOL_STAGES_MAX];
	int			 skip[SPOOL_STAGES_MAX];
	size_t			 n = 0, cap = 0, i;
	const char		*state;
	int64_t			 sid, count;
	int			 rc;

	st = spool__stmt(q, SPOOL_SQL_STAGE_LIST);
	sqlite3_bind_int64(st, 1, pid);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < SPOOL_STAGES_MAX) {
		if ((nv = spool__grow(v, &cap, n, sizeof *v)) == NULL)
			goto nomem;
		v = nv;
		memset(&v[n], 0, sizeof v[n]);
		v[n].index = sqlite3_column_int(st, 0);
		v[n].concurrency = sqlite3_column_int(st, 3);
		skip[n] = spool__on_error_parse((const char *)
		    sqlite3_column_text(st, 5)) == SPOOL_ON_ERROR_SKIP;
		ids[n] = sqlite3_column_int64(st, 9);
		if ((v[n++].name = spool__col_strdup(st, 1)) == NULL)
			goto nomem;
	}
	sqlite3_reset(st);
	r->stages = v;
	r->nstages = n;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return (spool__store_error(q, rc, "read stages"));

	st = spool__stmt(q, SPOOL_SQL_RUN_STAGE_COUNTS);
	sqlite3_bind_int64(st, 1, r->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sid = sqlite3_column_int64(st, 0);
		state = (const char *)sqlite3_column_text(st, 1);
		count = sqlite3_column_int64(st, 2);
		for (i = 0; i < n && ids[i] != sid; i++)
			;
		if (i == n || state == NULL)
			continue;
		if (strcmp(state, "ready") == 0)
			v[i].waiting += count;
		else if (strcmp(state, "running") == 0)
			v[i].running += count;
		else if (strcmp(state, "succeeded") == 0)
			v[i].done += count;
		else if (strcmp(state, "dead") == 0 && skip[i])
			v[i].skipped += count;
		else if (strcmp(state, "dead") == 0)
			v[i].failed += count;
		else
			v[i].cancelled += count;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return (spool__store_error(q, rc, "count stages"));
	for (i = 0; i < n; i++)
		if ((rc = stage_durations(q, r->id, ids[i], &v[i])) != SPOOL_OK)
			return (rc);
	return (SPOOL_OK);
nomem:
	sqlite3_reset(st);
	r->stages = v;
	r->nstages = n;
	return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
}

/* Read run id with its stages. */
int
spool_run_get(spool_run_info **out, spool *q, int64_t id)
{
	sqlite3_stmt	*st;
	int64_t		 pid = 0;
	int		 rc;

	if (out == NULL || q == NULL || q->db == NULL)
		return (spool__unusable(q));
	*out = NULL;
	spool__clear_error(q);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "run id must be positive"));
	if ((*out = calloc(1, sizeof **out)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	if ((rc = spool__begin_read(q)) != SPOOL_OK)
		goto fail;
	st = spool__stmt(q, SPOOL_SQL_RUN_GET);
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = run_from_row(q, *out, st, &pid);
	else if (rc == SQLITE_DONE)
		rc = spool__error(q, SPOOL_ENOENT, "no such run: %lld",
		    (long long)id);
	else
		rc = spool__store_error(q, rc, "read run");
	sqlite3_reset(st);
	if (rc == SPOOL_OK)
		rc = run_stages(q, *out, pid);
	spool__end_read(q);
	if (rc == SPOOL_OK)
		return (SPOOL_OK);
fail:
	spool_run_info_free(*out, 1);
	*out = NULL;
	return (rc);
}

/* One page of runs. */
int
spool_run_list(spool_run_info **out, size_t *n, spool *q, const char *name,
    int64_t after_id, size_t limit, int descending)
{
	spool_run_info	*v = NULL, *nv;
	size_t		 len = 0, cap = 0;
	sqlite3_stmt	*st;
	int		 rc;

	if (out == NULL || n == NULL || q == NULL || q->db == NULL)
		return (spool__unusable(q));
	*out = NULL;
	*n = 0;
	spool__clear_error(q);
	if (limit > LIST_MAX)
		return (spool__error(q, SPOOL_EINVAL, "limit too large (at most "
		    "%d)", LIST_MAX));
	if (limit == 0)
		limit = 100;
	st = spool__stmt(q, descending ? SPOOL_SQL_RUN_LIST_DESC :
	    SPOOL_SQL_RUN_LIST);
	sqlite3_bind_int64(st, 1, descending && after_id == 0 ? INT64_MAX :
	    after_id);
	sqlite3_bind_int64(st, 2, (int64_t)limit);
	if (name != NULL)
		sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = spool__grow(v, &cap, len, sizeof *v)) == NULL) {
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			goto fail;
		}
		v = nv;
		memset(&v[len], 0, sizeof v[len]);
		len++;
		if ((rc = run_from_row(q, &v[len - 1], st, NULL)) != SPOOL_OK)
			goto fail;
	}
	if (rc != SQLITE_DONE) {
		rc = spool__store_error(q, rc, "list runs");
		goto fail;
	}
	sqlite3_reset(st);
	*out = v;
	*n = len;
	return (SPOOL_OK);
fail:
	sqlite3_reset(st);
	spool_run_info_free(v, len);
	return (rc);
}

void
spool_run_info_free(spool_run_info *info, size_t n)
{
	size_t	 i, j;

	if (info == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(info[i].pipeline);
		free(info[i].error);
		free(info[i].hook_queue);
		for (j = 0; j < info[i].nstages; j++)
			free(info[i].stages[j].name);
		free(info[i].stages);
	}
	free(info);
}

/* Fill one item from an item_list row. */
static int
item_from_row(spool *q, spool_item_info *it, sqlite3_stmt *st)
{
	it->id = sqlite3_column_int64(st, 0);
	it->run_id = sqlite3_column_int64(st, 1);
	it->state = state_index(item_states, SPOOL_ITEM_CANCELLED,
	    sqlite3_column_text(st, 2));
	it->stage = sqlite3_column_int(st, 3);
	it->task_id = sqlite3_column_int64(st, 5);
	it->created_ms = sqlite3_column_int64(st, 8);
	it->finished_ms = sqlite3_column_int64(st, 9);
	if ((sqlite3_column_type(st, 4) != SQLITE_NULL &&
	    (it->stage_name = spool__col_strdup(st, 4)) == NULL) ||
	    (sqlite3_column_type(st, 6) != SQLITE_NULL &&
	    (it->result = spool__col_blobdup(st, 6, &it->result_len)) == NULL) ||
	    (sqlite3_column_type(st, 7) != SQLITE_NULL &&
	    (it->error = spool__col_strdup(st, 7)) == NULL))
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	return (SPOOL_OK);
}

/* One page of a run's items. */
int
spool_item_list(spool_item_info **out, size_t *n, spool *q, int64_t run,
    int64_t after_id, size_t limit)
{
	spool_item_info	*v = NULL, *nv;
	size_t		 len = 0, cap = 0;
	sqlite3_stmt	*st;
	int		 rc;

	if (out == NULL || n == NULL || q == NULL || q->db == NULL)
		return (spool__unusable(q));
	*out = NULL;
	*n = 0;
	spool__clear_error(q);
	if (limit > LIST_MAX)
		return (spool__error(q, SPOOL_EINVAL, "limit too large (at most "
		    "%d)", LIST_MAX));
	if (limit == 0)
		limit = 100;
	st = spool__stmt(q, SPOOL_SQL_RUN_EXISTS);
	sqlite3_bind_int64(st, 1, run);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return (rc == SQLITE_DONE ? spool__error(q, SPOOL_ENOENT,
		    "no such run: %lld", (long long)run) :
		    spool__store_error(q, rc, "list items"));
	st = spool__stmt(q, SPOOL_SQL_ITEM_LIST);
	sqlite3_bind_int64(st, 1, run);
	sqlite3_bind_int64(st, 2, after_id);
	sqlite3_bind_int64(st, 3, (int64_t)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = spool__grow(v, &cap, len, sizeof *v)) == NULL) {
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			goto fail;
		}
		v = nv;
		memset(&v[len], 0, sizeof v[len]);
		len++;
		if ((rc = item_from_row(q, &v[len - 1], st)) != SPOOL_OK)
			goto fail;
	}
	if (rc != SQLITE_DONE) {
		rc = spool__store_error(q, rc, "list items");
		goto fail;
	}
	sqlite3_reset(st);
	*out = v;
	*n = len;
	return (SPOOL_OK);
fail:
	sqlite3_reset(st);
	spool_item_info_free(v, len);
	return (rc);
}

void
spool_item_info_free(spool_item_info *info, size_t n)
{
	size_t	 i;

	if (info == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(info[i].stage_name);
		free(info[i].result);
		free(info[i].error);
	}
	free(info);
}

/* Every stage attempt of an item. */
int
spool_item_history(spool_stage_attempt **out, size_t *n, spool *q,
    int64_t item)
{
	spool_stage_attempt	*v = NULL, *nv, *a;
	size_t			 len = 0, cap = 0;
	sqlite3_stmt		*st;
	int			 rc;

	if (out == NULL || n == NULL || q == NULL || q->db == NULL)
		return (spool__unusable(q));
	*out = NULL;
	*n = 0;
	spool__clear_error(q);
	if (item <= 0)
		return (spool__error(q, SPOOL_EINVAL, "item id must be positive"));
	if ((rc = spool__begin_read(q)) != SPOOL_OK)
		return (rc);
	st = spool__stmt(q, SPOOL_SQL_ITEM_EXISTS);
	sqlite3_bind_int64(st, 1, item);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? spool__error(q, SPOOL_ENOENT,
		    "no such item: %lld", (long long)item) :
		    spool__store_error(q, rc, "read item");
		spool__end_read(q);
		return (rc);
	}
	st = spool__stmt(q, SPOOL_SQL_ITEM_HISTORY);
	sqlite3_bind_int64(st, 1, item);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = spool__grow(v, &cap, len, sizeof *v)) == NULL)
			goto nomem;
		v = nv;
		a = &v[len++];
		memset(a, 0, sizeof *a);
		a->index = sqlite3_column_int(st, 1);
		a->task_id = sqlite3_column_int64(st, 2);
		a->attempt = sqlite3_column_int(st, 3);
		a->started_ms = sqlite3_column_int64(st, 5);
		a->finished_ms = sqlite3_column_int64(st, 6);
		if ((a->stage = spool__col_strdup(st, 0)) == NULL ||
		    (a->worker = spool__col_strdup(st, 4)) == NULL ||
		    (a->outcome = spool__col_strdup(st, 7)) == NULL ||
		    (sqlite3_column_type(st, 8) != SQLITE_NULL &&
		    (a->error = spool__col_strdup(st, 8)) == NULL))
			goto nomem;
	}
	sqlite3_reset(st);
	spool__end_read(q);
	if (rc != SQLITE_DONE) {
		spool_stage_attempt_free(v, len);
		return (spool__store_error(q, rc, "read history"));
	}
	*out = v;
	*n = len;
	return (SPOOL_OK);
nomem:
	sqlite3_reset(st);
	spool__end_read(q);
	spool_stage_attempt_free(v, len);
	return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
}

void
spool_stage_attempt_free(spool_stage_attempt *a, size_t n)
{
	size_t	 i;

	if (a == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(a[i].stage);
		free(a[i].worker);
		free(a[i].outcome);
		free(a[i].error);
	}
	free(a);
}
