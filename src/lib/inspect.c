/*
 * inspect.c -- reading tasks: one with its result, pages of them, an
 * attempt history, and the per-queue state counts (spool_stats).
 *
 * Invariants: reads never write; each call reads in one read
 * transaction, so what it returns is one snapshot.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "spool-int.h"
#include "query-gen.h"

/* Decode a task_get / task_list row r into t; a leased task is running,
 * claimed or expired at now_ms. */
static int
task_from_row(spool *q, spool_task_info *t,
    const struct spool__q_task_get_row *r, int64_t now_ms)
{
	memset(t, 0, sizeof *t);
	t->id = r->id;
	t->state = spool__state_parse(r->state);
	t->priority = (int)r->priority;
	t->run_at_ms = r->run_at_ms;
	t->deadline_ms = r->deadline_ms;
	t->attempts = (int)r->attempts;
	t->max_attempts = (int)r->max_attempts;
	t->lease_until_ms = r->lease_until_ms;
	t->cancel_requested = (int)r->cancel_requested;
	t->created_ms = r->created_ms;
	t->started_ms = r->started_ms;
	t->finished_ms = r->finished_ms;
	t->has_result = r->has_result != 0;
	t->duration_ms = r->duration_ms;
	t->batch_id = r->batch_id;
	t->dead_reason = spool__dead_reason_parse(r->dead_reason);
	if (t->state == SPOOL_RUNNING)
		t->state = t->lease_until_ms < now_ms ? SPOOL_EXPIRED :
		    !r->started ? SPOOL_CLAIMED : SPOOL_RUNNING;
	if (r->payload != NULL) {
		t->payload_len = r->payload_len;
		if ((t->payload = spool__memdup(r->payload,
		    r->payload_len)) == NULL)
			goto nomem;
	}
	if (t->has_result && r->output != NULL) {
		t->result_len = r->output_len;
		if ((t->result = spool__memdup(r->output,
		    r->output_len)) == NULL)
			goto nomem;
	}
	if (!spool__strdup_opt(&t->queue, r->queue != NULL ? r->queue : "") ||
	    !spool__strdup_opt(&t->key, r->idem_key) ||
	    !spool__strdup_opt(&t->lease_owner, r->lease_owner) ||
	    !spool__strdup_opt(&t->last_error, r->last_error))
		goto nomem;
	return (SPOOL_OK);
nomem:
	return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
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
		free(info[i].result);
	}
	free(info);
}

/* Read one task with its result. */
int
spool_task_get(spool_task_info **out, spool *q, int64_t id)
{
	struct spool__cur		 c;
	struct spool__q_task_get_row	 r;
	int				 rc;

	if (out == NULL)
		return (SPOOL_EINVAL);
	*out = NULL;
	SPOOL__CHECK_HANDLE(q);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "task id must be positive"));
	if ((*out = calloc(1, sizeof **out)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	if ((rc = spool__q_task_get(q, &c, &(struct spool__q_task_get_in){
	    .id = id })) == SPOOL_OK) {
		if ((rc = spool__q_task_get_next(&c, &r)) == 1)
			rc = task_from_row(q, *out, &r, spool__now_ms(q));
		else if (rc == 0)
			rc = spool__error(q, SPOOL_ENOENT, "no such task: %lld",
			    (long long)id);
		spool__cur_end(&c);
	}
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
	struct spool__cur c;
	struct spool__q_task_get_row r;
	const char	*state;
	size_t		 limit, len = 0;
	int64_t		 now, after, batch;
	int		 rc, leased;

	if (out != NULL)
		*out = NULL;
	if (opts == NULL)
		opts = &none;
	if ((rc = spool__list_begin(q, out == NULL, n, "spool_list_opts",
	    opts->version, SPOOL_LIST_OPTS_VERSION, opts->limit, &limit)) != SPOOL_OK)
		return (rc);
	/* batch_id came with version 2: a version 1 struct ends before it. */
	batch = opts->version >= 2 ? opts->batch_id : 0;
	if (batch < 0)
		return (spool__error(q, SPOOL_EINVAL, "batch id is negative"));
	if (opts->queue != NULL && (rc = spool__check_name(q, "queue name",
	    opts->queue, SPOOL_NAME_MAX)) != SPOOL_OK)
		return (rc);
	if (opts->state != 0 && spool_state_name(opts->state) == NULL)
		return (spool__error(q, SPOOL_EINVAL, "unknown state %d",
		    opts->state));
	if (opts->after_id < 0)
		return (spool__error(q, SPOOL_EINVAL, "after id is negative"));
	if ((v = calloc(limit, sizeof *v)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));

	now = spool__now_ms(q);
	leased = opts->state == SPOOL_RUNNING || opts->state == SPOOL_CLAIMED ||
	    opts->state == SPOOL_EXPIRED;
	state = spool_state_name(opts->state);
	after = opts->descending && opts->after_id == 0 ? INT64_MAX :
	    opts->after_id;
	if (batch != 0 && opts->descending)
		rc = spool__q_task_list_batch_desc(q, &c,
		    &(struct spool__q_task_list_batch_desc_in){
		    .batch_id = batch, .queue = opts->queue, .state = state,
		    .before_id = after, .max = (int64_t)limit, .now_ms = now });
	else if (batch != 0)
		rc = spool__q_task_list_batch_asc(q, &c,
		    &(struct spool__q_task_list_batch_asc_in){
		    .batch_id = batch, .queue = opts->queue, .state = state,
		    .after_id = after, .max = (int64_t)limit, .now_ms = now });
	else if (leased && opts->descending)
		rc = spool__q_task_list_running_desc(q, &c,
		    &(struct spool__q_task_list_running_desc_in){
		    .queue = opts->queue, .state = state, .before_id = after,
		    .max = (int64_t)limit, .now_ms = now });
	else if (leased)
		rc = spool__q_task_list_running_asc(q, &c,
		    &(struct spool__q_task_list_running_asc_in){
		    .queue = opts->queue, .state = state, .after_id = after,
		    .max = (int64_t)limit, .now_ms = now });
	else if (opts->descending)
		rc = spool__q_task_list_desc(q, &c,
		    &(struct spool__q_task_list_desc_in){
		    .queue = opts->queue, .state = state, .before_id = after,
		    .max = (int64_t)limit });
	else
		rc = spool__q_task_list_asc(q, &c,
		    &(struct spool__q_task_list_asc_in){
		    .queue = opts->queue, .state = state, .after_id = after,
		    .max = (int64_t)limit });
	if (rc != SPOOL_OK)
		goto fail;
	/* All six variants read as task_get (-- out: like task_get). */
	while ((rc = spool__q_task_get_next(&c, &r)) == 1)
		if ((rc = task_from_row(q, &v[len++], &r, now)) != SPOOL_OK) {
			spool__cur_end(&c);
			goto fail;
		}
	if (rc != 0)
		goto fail;
	if (len == 0) {
		free(v);
		v = NULL;
	}
	*out = v;
	*n = len;
	return (SPOOL_OK);
fail:
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
		free(info[i].error);
	}
	free(info);
}

/* One page of the attempt history of one task.  The task is looked up in
 * the same read transaction, so a missing task is SPOOL_ENOENT rather
 * than an empty history, as spool_item_history does. */
int
spool_attempts(spool_attempt_info **out, size_t *n, spool *q, int64_t id,
    const spool_attempt_list_opts *opts)
{
	spool_attempt_list_opts	 none = SPOOL_ATTEMPT_LIST_OPTS_INIT;
	spool_attempt_info	*v = NULL, *a;
	struct spool__cur	 c;
	struct spool__q_attempt_list_row r;
	size_t			 len = 0, cap = 0, limit;
	int			 rc, state;

	if (out != NULL)
		*out = NULL;
	if (opts == NULL)
		opts = &none;
	if ((rc = spool__list_begin(q, out == NULL, n, "spool_attempt_list_opts",
	    opts->version, SPOOL_ATTEMPT_LIST_OPTS_VERSION, opts->limit, &limit)) != SPOOL_OK)
		return (rc);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "task id must be positive"));
	if (opts->after_attempt < 0)
		return (spool__error(q, SPOOL_EINVAL, "after attempt is negative"));
	if ((rc = spool__begin_read(q)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__task_state(q, id, &state)) != SPOOL_OK) {
		spool__end_read(q);
		return (rc);
	}
	if (opts->descending)
		rc = spool__q_attempt_list_desc(q, &c,
		    &(struct spool__q_attempt_list_desc_in){ .id = id,
		    .before_attempt = opts->after_attempt == 0 ? INT64_MAX :
		    opts->after_attempt, .max = (int64_t)limit });
	else
		rc = spool__q_attempt_list(q, &c,
		    &(struct spool__q_attempt_list_in){ .id = id,
		    .after_attempt = opts->after_attempt,
		    .max = (int64_t)limit });
	if (rc != SPOOL_OK) {
		spool__end_read(q);
		return (rc);
	}
	/* attempt_list_desc reads attempt_list's columns (-- out: like). */
	while ((rc = opts->descending ? spool__q_attempt_list_desc_next(&c, &r) :
	    spool__q_attempt_list_next(&c, &r)) == 1) {
		if ((a = spool__push(v, &len, &cap, sizeof *v)) == NULL)
			goto nomem;
		v = a;
		a = &v[len - 1];
		a->attempt = (int)r.attempt;
		a->started_ms = r.started_ms;
		a->finished_ms = r.finished_ms;
		a->outcome = spool__attempt_outcome_parse(r.outcome);
		if (!spool__strdup_opt(&a->worker, r.worker != NULL ?
		    r.worker : "") ||
		    !spool__strdup_opt(&a->error, r.error))
			goto nomem;
	}
	if (rc != 0)
		goto fail;
	spool__end_read(q);
	*out = v;
	*n = len;
	return (SPOOL_OK);
nomem:
	spool__cur_end(&c);
	rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
fail:
	spool__end_read(q);
	spool_attempt_info_free(v, len);
	return (rc);
}

/* The ready tasks of queue, due or scheduled: what a depth limit counts. */
int
spool__ready_count(spool *q, const char *queue, int64_t *n)
{
	struct spool__cur		 c;
	struct spool__q_queue_depth_row	 r;
	int				 rc;

	if ((rc = spool__q_queue_depth(q, &c, &(struct spool__q_queue_depth_in){
	    .queue = queue })) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_queue_depth_next(&c, &r)) != 1)
		return (rc < 0 ? rc : spool__error(q, SPOOL_ERROR,
		    "stats: no count for queue %s", queue));
	spool__cur_end(&c);
	*n = r.n;
	return (SPOOL_OK);
}

/* Fill the counts of one queue (name and paused already set). */
static int
stats_queue(spool *q, spool_queue_stats *s, int64_t now_ms)
{
	struct spool__cur		 c;
	struct spool__q_stats_due_row	 due;
	struct spool__q_stats_running_row run;
	struct spool__q_stats_finished_row fin;
	int64_t				 all;
	int				 rc;

	if ((rc = spool__q_stats_due(q, &c, &(struct spool__q_stats_due_in){
	    .queue = s->queue, .now_ms = now_ms })) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_stats_due_next(&c, &due)) != 1)
		return (rc < 0 ? rc : spool__error(q, SPOOL_ERROR,
		    "stats: no count for queue %s", s->queue));
	spool__cur_end(&c);
	if ((rc = spool__ready_count(q, s->queue, &all)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_stats_running(q, &c,
	    &(struct spool__q_stats_running_in){ .queue = s->queue,
	    .now_ms = now_ms })) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_stats_running_next(&c, &run)) != 1)
		return (rc < 0 ? rc : spool__error(q, SPOOL_ERROR,
		    "stats: no count for queue %s", s->queue));
	spool__cur_end(&c);
	s->ready = due.n;
	s->running = run.running;
	s->claimed = run.claimed;
	s->expired = run.expired;
	s->scheduled = all - s->ready;
	s->oldest_ready_age_ms = due.oldest_ms < 0 ? -1 :
	    (now_ms > due.oldest_ms ? now_ms - due.oldest_ms : 0);

	if ((rc = spool__q_stats_finished(q, &c,
	    &(struct spool__q_stats_finished_in){ .queue = s->queue })) !=
	    SPOOL_OK)
		return (rc);
	while ((rc = spool__q_stats_finished_next(&c, &fin)) == 1) {
		switch (spool__state_parse(fin.state)) {
		case SPOOL_SUCCEEDED:
			s->succeeded = fin.n;
			break;
		case SPOOL_DEAD:
			s->dead = fin.n;
			break;
		case SPOOL_CANCELLED:
			s->cancelled = fin.n;
			break;
		}
	}
	return (rc);
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
	SPOOL__CHECK_HANDLE(q);
	if ((rc = spool__begin_read(q)) != SPOOL_OK)
		return (rc);
	if (queue != NULL) {
		rc = spool_queue_get(&qi, q, queue);
		nq = 1;
	} else
		rc = spool__queue_list_all(&qi, &nq, q);
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
int
spool__task_state(spool *q, int64_t id, int *state)
{
	struct spool__cur		 c;
	struct spool__q_task_state_row	 r;
	int				 rc;

	if ((rc = spool__q_task_state(q, &c, &(struct spool__q_task_state_in){
	    .id = id })) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_task_state_next(&c, &r)) == 0)
		return (spool__error(q, SPOOL_ENOENT, "no such task: %lld",
		    (long long)id));
	if (rc < 0)
		return (rc);
	*state = spool__state_parse(r.state);
	spool__cur_end(&c);
	return (SPOOL_OK);
}
