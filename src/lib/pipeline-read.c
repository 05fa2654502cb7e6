/*
 * pipeline-read.c -- reading pipeline runs and items: status with
 * per-stage counts and durations, lists, and an item's stage history.
 *
 * Invariants: reads only, each in one read transaction, so a status is
 * one consistent snapshot even while workers commit.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "spool-int.h"
#include "query-gen.h"

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
state_index(const char *const *names, int last, const char *s)
{
	int	 i;

	for (i = 1; s != NULL && i <= last; i++)
		if (strcmp(s, names[i]) == 0)
			return (i);
	return (0);
}

/* Fill one run from a run_get, run_list or run_list_desc row (one row
 * type: the lists declare run_get's columns); *pid gets its definition. */
static int
run_from_row(spool *q, spool_run_info *r,
    const struct spool__q_run_get_row *row, int64_t *pid)
{
	r->id = row->id;
	r->version = (int)row->version;
	r->state = state_index(run_states, SPOOL_RUN_FINISHED, row->state);
	r->total = row->total;
	r->running = row->running;
	r->succeeded = row->succeeded;
	r->failed = row->failed;
	r->skipped = row->skipped;
	r->cancelled = row->cancelled;
	r->hook_task_id = row->hook_task_id;
	r->created_ms = row->created_ms;
	r->finished_ms = row->finished_ms;
	if (pid != NULL)
		*pid = row->pipeline_id;
	if ((r->pipeline = spool__strdup(row->name)) == NULL ||
	    !spool__strdup_opt(&r->error, row->error) ||
	    !spool__strdup_opt(&r->hook_queue, row->hook_queue))
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
	struct spool__q_run_stage_durations_row	 d;
	struct spool__cur			 c;
	int					 rc;

	if ((rc = spool__q_run_stage_durations(q, &c,
	    &(struct spool__q_run_stage_durations_in){ .run = run,
	    .stage_id = stage_id })) != SPOOL_OK ||
	    (rc = spool__q_run_stage_durations_next(&c, &d)) < 0)
		return (rc);
	if (rc == 1) {		/* an aggregate: one row, always */
		s->attempts = d.attempts;
		if (d.k > 0) {
			s->avg_ms = (double)d.total / (double)d.k;
			s->p95_ms = d.p95;
		}
	}
	spool__cur_end(&c);
	return (SPOOL_OK);
}

/* The stages of run r (definition pid) with their counts. */
static int
run_stages(spool *q, spool_run_info *r, int64_t pid)
{
	struct spool__q_stage_list_row		 sl;
	struct spool__q_run_stage_counts_row	 sc;
	struct spool__cur			 c;
	spool_stage_status			*v = NULL, *nv;
	int64_t					 ids[SPOOL_STAGES_MAX];
	int					 skip[SPOOL_STAGES_MAX];
	size_t					 n = 0, cap = 0, i;
	int					 rc;

	if ((rc = spool__q_stage_list(q, &c, &(struct spool__q_stage_list_in){
	    .pipeline_id = pid })) != SPOOL_OK)
		return (rc);
	while (n < SPOOL_STAGES_MAX &&
	    (rc = spool__q_stage_list_next(&c, &sl)) == 1) {
		if ((nv = spool__push(v, &n, &cap, sizeof *v)) == NULL)
			goto nomem;
		v = nv;
		v[n - 1].index = (int)sl.idx;
		v[n - 1].concurrency = (int)sl.concurrency;
		skip[n - 1] = spool__on_error_parse(sl.on_error) ==
		    SPOOL_ON_ERROR_SKIP;
		ids[n - 1] = sl.id;
		if ((v[n - 1].name = spool__strdup(sl.name)) == NULL)
			goto nomem;
	}
	spool__cur_end(&c);
	r->stages = v;
	r->nstages = n;
	if (rc < 0)
		return (rc);

	if ((rc = spool__q_run_stage_counts(q, &c,
	    &(struct spool__q_run_stage_counts_in){ .run = r->id })) !=
	    SPOOL_OK)
		return (rc);
	while ((rc = spool__q_run_stage_counts_next(&c, &sc)) == 1) {
		for (i = 0; i < n && ids[i] != sc.stage_id; i++)
			;
		if (i == n || sc.state == NULL)
			continue;
		if (strcmp(sc.state, "ready") == 0)
			v[i].waiting += sc.n;
		else if (strcmp(sc.state, "running") == 0)
			v[i].running += sc.n;
		else if (strcmp(sc.state, "succeeded") == 0)
			v[i].done += sc.n;
		else if (strcmp(sc.state, "dead") == 0 && skip[i])
			v[i].skipped += sc.n;
		else if (strcmp(sc.state, "dead") == 0)
			v[i].failed += sc.n;
		else
			v[i].cancelled += sc.n;
	}
	if (rc < 0)
		return (rc);
	for (i = 0; i < n; i++)
		if ((rc = stage_durations(q, r->id, ids[i], &v[i])) != SPOOL_OK)
			return (rc);
	return (SPOOL_OK);
nomem:
	spool__cur_end(&c);
	r->stages = v;
	r->nstages = n;
	return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
}

/* Read run id with its stages. */
int
spool_run_get(spool_run_info **out, spool *q, int64_t id)
{
	struct spool__q_run_get_row	 row;
	struct spool__cur		 c;
	int64_t				 pid = 0;
	int				 rc;

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
	if ((rc = spool__q_run_get(q, &c, &(struct spool__q_run_get_in){
	    .id = id })) == SPOOL_OK &&
	    (rc = spool__q_run_get_next(&c, &row)) == 1)
		rc = run_from_row(q, *out, &row, &pid);
	else if (rc == 0)
		rc = spool__error(q, SPOOL_ENOENT, "no such run: %lld",
		    (long long)id);
	spool__cur_end(&c);
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
spool_run_list(spool_run_info **out, size_t *n, spool *q,
    const spool_run_list_opts *opts)
{
	spool_run_list_opts		 none = SPOOL_RUN_LIST_OPTS_INIT;
	struct spool__q_run_get_row	 row;
	struct spool__cur		 c;
	spool_run_info			*v = NULL, *nv;
	size_t				 len = 0, cap = 0, limit;
	int				 rc;

	if (out != NULL)
		*out = NULL;
	if (opts == NULL)
		opts = &none;
	if ((rc = spool__list_begin(q, out == NULL, n, "spool_run_list_opts",
	    opts->version, SPOOL_RUN_LIST_OPTS_VERSION, opts->limit, &limit)) != SPOOL_OK)
		return (rc);
	if (opts->after_id < 0)
		return (spool__error(q, SPOOL_EINVAL, "after id is negative"));
	if (opts->descending)
		rc = spool__q_run_list_desc(q, &c,
		    &(struct spool__q_run_list_desc_in){ .before_id =
		    opts->after_id == 0 ? INT64_MAX : opts->after_id,
		    .max = (int64_t)limit, .name = opts->pipeline });
	else
		rc = spool__q_run_list(q, &c, &(struct spool__q_run_list_in){
		    .after_id = opts->after_id, .max = (int64_t)limit,
		    .name = opts->pipeline });
	if (rc != SPOOL_OK)
		return (rc);
	/* run_list and run_list_desc read run_get's columns (-- out: like). */
	while ((rc = opts->descending ? spool__q_run_list_desc_next(&c, &row) :
	    spool__q_run_list_next(&c, &row)) == 1) {
		if ((nv = spool__push(v, &len, &cap, sizeof *v)) == NULL) {
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			goto fail;
		}
		v = nv;
		if ((rc = run_from_row(q, &v[len - 1], &row, NULL)) != SPOOL_OK)
			goto fail;
	}
	if (rc < 0)
		goto fail;
	*out = v;
	*n = len;
	return (SPOOL_OK);
fail:
	spool__cur_end(&c);
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
item_from_row(spool *q, spool_item_info *it,
    const struct spool__q_item_list_row *row)
{
	it->id = row->id;
	it->run_id = row->run_id;
	it->state = state_index(item_states, SPOOL_ITEM_CANCELLED, row->state);
	it->stage = (int)row->stage;
	it->task_id = row->task_id;
	it->created_ms = row->created_ms;
	it->finished_ms = row->finished_ms;
	if (!spool__strdup_opt(&it->stage_name, row->stage_name) ||
	    (row->result != NULL && (it->result = spool__memdup(row->result,
	    row->result_len)) == NULL) ||
	    !spool__strdup_opt(&it->error, row->error))
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	if (row->result != NULL)
		it->result_len = row->result_len;
	return (SPOOL_OK);
}

/* One page of a run's items. */
int
spool_item_list(spool_item_info **out, size_t *n, spool *q, int64_t run,
    const spool_item_list_opts *opts)
{
	spool_item_list_opts		 none = SPOOL_ITEM_LIST_OPTS_INIT;
	struct spool__q_run_exists_row	 one;
	struct spool__q_item_list_row	 row;
	struct spool__cur		 c;
	spool_item_info			*v = NULL, *nv;
	size_t				 len = 0, cap = 0, limit;
	int				 rc;

	if (out != NULL)
		*out = NULL;
	if (opts == NULL)
		opts = &none;
	if ((rc = spool__list_begin(q, out == NULL, n, "spool_item_list_opts",
	    opts->version, SPOOL_ITEM_LIST_OPTS_VERSION, opts->limit, &limit)) != SPOOL_OK)
		return (rc);
	if (opts->after_id < 0)
		return (spool__error(q, SPOOL_EINVAL, "after id is negative"));
	if ((rc = spool__q_run_exists(q, &c, &(struct spool__q_run_exists_in){
	    .id = run })) != SPOOL_OK ||
	    (rc = spool__q_run_exists_next(&c, &one)) < 0)
		return (rc);
	spool__cur_end(&c);
	if (rc == 0)
		return (spool__error(q, SPOOL_ENOENT, "no such run: %lld",
		    (long long)run));
	if (opts->descending)
		rc = spool__q_item_list_desc(q, &c,
		    &(struct spool__q_item_list_desc_in){ .run = run,
		    .before_id = opts->after_id == 0 ? INT64_MAX :
		    opts->after_id, .max = (int64_t)limit });
	else
		rc = spool__q_item_list(q, &c, &(struct spool__q_item_list_in){
		    .run = run, .after_id = opts->after_id,
		    .max = (int64_t)limit });
	if (rc != SPOOL_OK)
		return (rc);
	/* item_list_desc reads item_list's columns (-- out: like). */
	while ((rc = opts->descending ? spool__q_item_list_desc_next(&c, &row) :
	    spool__q_item_list_next(&c, &row)) == 1) {
		if ((nv = spool__push(v, &len, &cap, sizeof *v)) == NULL) {
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			goto fail;
		}
		v = nv;
		if ((rc = item_from_row(q, &v[len - 1], &row)) != SPOOL_OK)
			goto fail;
	}
	if (rc < 0)
		goto fail;
	*out = v;
	*n = len;
	return (SPOOL_OK);
fail:
	spool__cur_end(&c);
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

/* One page of the stage attempts of an item, by (stage index, attempt). */
int
spool_item_history(spool_stage_attempt_info **out, size_t *n, spool *q,
    int64_t item, const spool_item_history_opts *opts)
{
	spool_item_history_opts			 none =
	    SPOOL_ITEM_HISTORY_OPTS_INIT;
	struct spool__q_item_exists_row		 ex;
	struct spool__q_item_history_row	 h;
	struct spool__cur			 c;
	spool_stage_attempt_info			*v = NULL, *nv, *a;
	size_t					 len = 0, cap = 0, limit;
	int64_t					 bi, ba;
	int					 rc;

	if (out != NULL)
		*out = NULL;
	if (opts == NULL)
		opts = &none;
	if ((rc = spool__list_begin(q, out == NULL, n, "spool_item_history_opts",
	    opts->version, SPOOL_ITEM_HISTORY_OPTS_VERSION, opts->limit, &limit)) != SPOOL_OK)
		return (rc);
	if (item <= 0)
		return (spool__error(q, SPOOL_EINVAL, "item id must be positive"));
	if (opts->after_index < 0 || opts->after_attempt < 0)
		return (spool__error(q, SPOOL_EINVAL,
		    "after index or attempt is negative"));
	/* Newest first from the end: (0, 0) stands for past the last key. */
	bi = opts->after_index;
	ba = opts->after_attempt;
	if (opts->descending && bi == 0 && ba == 0)
		bi = ba = INT64_MAX;
	if ((rc = spool__begin_read(q)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_item_exists(q, &c, &(struct spool__q_item_exists_in){
	    .id = item })) == SPOOL_OK &&
	    (rc = spool__q_item_exists_next(&c, &ex)) == 0)
		rc = spool__error(q, SPOOL_ENOENT, "no such item: %lld",
		    (long long)item);
	spool__cur_end(&c);
	if (rc >= 0)
		rc = opts->descending ? spool__q_item_history_desc(q, &c,
		    &(struct spool__q_item_history_desc_in){ .item = item,
		    .before_idx = bi, .before_attempt = ba,
		    .max = (int64_t)limit }) : spool__q_item_history(q, &c,
		    &(struct spool__q_item_history_in){ .item = item,
		    .after_idx = bi, .after_attempt = ba,
		    .max = (int64_t)limit });
	if (rc != SPOOL_OK) {
		spool__end_read(q);
		return (rc);
	}
	/* item_history_desc reads item_history's columns (-- out: like). */
	while ((rc = opts->descending ? spool__q_item_history_desc_next(&c, &h) :
	    spool__q_item_history_next(&c, &h)) == 1) {
		if ((nv = spool__push(v, &len, &cap, sizeof *v)) == NULL)
			goto nomem;
		v = nv;
		a = &v[len - 1];
		a->index = (int)h.idx;
		a->task_id = h.task_id;
		a->attempt = (int)h.attempt;
		a->started_ms = h.started_ms;
		a->finished_ms = h.finished_ms;
		a->outcome = spool__attempt_outcome_parse(h.outcome);
		if ((a->stage = spool__strdup(h.stage)) == NULL ||
		    (a->worker = spool__strdup(h.worker)) == NULL ||
		    !spool__strdup_opt(&a->error, h.error))
			goto nomem;
	}
	spool__end_read(q);
	if (rc < 0) {
		spool_stage_attempt_info_free(v, len);
		return (rc);
	}
	*out = v;
	*n = len;
	return (SPOOL_OK);
nomem:
	spool__cur_end(&c);
	spool__end_read(q);
	spool_stage_attempt_info_free(v, len);
	return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
}

void
spool_stage_attempt_info_free(spool_stage_attempt_info *a, size_t n)
{
	size_t	 i;

	if (a == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(a[i].stage);
		free(a[i].worker);
		free(a[i].error);
	}
	free(a);
}
