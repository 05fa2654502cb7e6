/*
 * pipeline-pool.c -- pipeline pools: a worker pool over a pipeline's stage
 * queues, each limited to its stage's concurrency, whose handler finds
 * each job's stage (as its item's version defined it) and calls that
 * stage's handler.
 *
 * Invariants: the stage definitions a pool knows only grow, under
 * stages->mu, and live as long as the pool, so a job may point at its
 * own; a definition the pool has not seen (a version defined after it
 * started) is read through a connection of its own, never the engine's.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool-int.h"
#include "query-gen.h"

struct spool__stages {
	pthread_mutex_t		 mu;
	char			*path;
	int			 open_flags;
	struct spool__stage_def	*head;
	spool_stage_handler	*h;	/* copies, with their stage names */
	size_t			 nh;
	spool			*rq;	/* for definitions read late */
};

int64_t
spool_job_item(const spool_job *job)
{
	return (job != NULL ? job->item_id : 0);
}

const char *
spool_job_stage(const spool_job *job)
{
	return (job != NULL && job->stage != NULL ? job->stage->name : NULL);
}

const char *
spool_job_stage_command(const spool_job *job)
{
	return (job != NULL && job->stage != NULL ? job->stage->command : NULL);
}

/* The handler for stage name, or NULL. */
static const spool_stage_handler *
stages_handler(const struct spool__stages *s, const char *name)
{
	const spool_stage_handler	*any = NULL;
	size_t				 i;

	for (i = 0; i < s->nh; i++) {
		if (s->h[i].stage == NULL)
			any = &s->h[i];
		else if (strcmp(s->h[i].stage, name) == 0)
			return (&s->h[i]);
	}
	return (any);
}

/* Remember a definition (under s->mu, or before the pool runs). */
static struct spool__stage_def *
stages_add(struct spool__stages *s, int64_t id, const char *name,
    const char *command)
{
	struct spool__stage_def		*d;
	const spool_stage_handler	*h;

	if ((d = calloc(1, sizeof *d)) == NULL)
		return (NULL);
	d->id = id;
	if ((d->name = spool__strdup(name)) == NULL ||
	    (command != NULL && (d->command = spool__strdup(command)) == NULL)) {
		free(d->name);
		free(d);
		return (NULL);
	}
	if ((h = stages_handler(s, name)) != NULL) {
		d->fn = h->fn;
		d->arg = h->arg;
	}
	d->next = s->head;
	s->head = d;
	return (d);
}

/* The definition of stage id, read if the pool has not seen it. */
static const struct spool__stage_def *
stages_find(struct spool__stages *s, int64_t id)
{
	struct spool__stage_def		*d;
	struct spool__q_stage_def_row	 r;
	struct spool__cur		 c;

	pthread_mutex_lock(&s->mu);
	for (d = s->head; d != NULL && d->id != id; d = d->next)
		;
	if (d == NULL && id > 0 && (s->rq != NULL ||
	    spool_open(&s->rq, s->path, s->open_flags & ~SPOOL_OPEN_CREATE) ==
	    SPOOL_OK)) {
		if (spool__q_stage_def(s->rq, &c, &(struct spool__q_stage_def_in){
		    .id = id }) == SPOOL_OK &&
		    spool__q_stage_def_next(&c, &r) == 1 && r.name != NULL)
			d = stages_add(s, id, r.name, r.command);
		spool__cur_end(&c);
	} else if (d == NULL && s->rq != NULL) {
		spool_close(s->rq);	/* it failed to open: try again later */
		s->rq = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	return (d);
}

/* The pool's handler: run the job's stage handler. */
static int
stages_dispatch(spool_job *job, void *arg)
{
	struct spool__stages		*s = arg;
	const struct spool__stage_def	*d;
	char				 msg[200];

	if (job->item_id == 0 || job->stage_id == 0) {
		spool_job_set_error(job, "not a pipeline item's task");
		return (SPOOL_FAIL);
	}
	if ((d = stages_find(s, job->stage_id)) == NULL) {
		spool_job_set_error(job, "cannot read the task's stage");
		return (SPOOL_RETRY);
	}
	job->stage = d;
	if (d->fn == NULL) {
		snprintf(msg, sizeof msg, "no handler for stage %.64s", d->name);
		spool_job_set_error(job, msg);
		return (SPOOL_RETRY);
	}
	return (d->fn(job, d->arg));
}

void
spool__stages_free(struct spool__stages *s)
{
	struct spool__stage_def	*d, *nx;
	size_t			 i;

	if (s == NULL)
		return;
	for (d = s->head; d != NULL; d = nx) {
		nx = d->next;
		free(d->name);
		free(d->command);
		free(d);
	}
	for (i = 0; i < s->nh; i++)
		free((char *)s->h[i].stage);
	free(s->h);
	free(s->path);
	spool_close(s->rq);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* What a pipeline pool works: one queue per stage name with a handler,
 * newest version first and last stage first, with its concurrency. */
struct plan {
	char	*queues[64];
	int	 limits[64];
	size_t	 n;
};

static int
plan_read(struct plan *pl, struct spool__stages *s, spool *q,
    const char *name)
{
	struct spool__q_stage_defs_row	 r;
	struct spool__cur		 c;
	size_t				 i;
	int				 rc, any = 0;

	if ((rc = spool__q_stage_defs(q, &c, &(struct spool__q_stage_defs_in){
	    .name = name })) != SPOOL_OK)
		return (rc);
	while ((rc = spool__q_stage_defs_next(&c, &r)) == 1) {
		any = 1;
		if (r.name == NULL || r.queue == NULL)
			continue;
		if (stages_add(s, r.id, r.name, r.command) == NULL)
			goto nomem;
		if (!r.live || stages_handler(s, r.name) == NULL)
			continue;
		for (i = 0; i < pl->n && strcmp(pl->queues[i], r.queue) != 0;
		    i++)
			;
		if (i < pl->n)
			continue;
		if (pl->n == 64) {
			spool__cur_end(&c);
			return (spool__error(q, SPOOL_EINVAL, "pipeline %s: more "
			    "than 64 stage queues to work", name));
		}
		if ((pl->queues[pl->n] = spool__strdup(r.queue)) == NULL)
			goto nomem;
		pl->limits[pl->n++] = (int)r.concurrency;
	}
	if (rc < 0)
		return (rc);
	if (!any)
		return (spool__error(q, SPOOL_ENOENT, "no such pipeline: %s",
		    name));
	return (SPOOL_OK);
nomem:
	spool__cur_end(&c);
	return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
}

/* Check that every handler names a stage of some version of name. */
static int
plan_check(struct spool__stages *s, spool *q, const char *name)
{
	struct spool__stage_def	*d;
	size_t			 i;

	for (i = 0; i < s->nh; i++) {
		if (s->h[i].fn == NULL)
			return (spool__error(q, SPOOL_EINVAL, "handler %zu is "
			    "NULL", i + 1));
		if (s->h[i].stage == NULL)
			continue;
		for (d = s->head; d != NULL; d = d->next)
			if (strcmp(d->name, s->h[i].stage) == 0)
				break;
		if (d == NULL)
			return (spool__error(q, SPOOL_EINVAL, "pipeline %s has "
			    "no stage %s", name, s->h[i].stage));
	}
	return (SPOOL_OK);
}

/* Make a pool over pipeline name's stages. */
int
spool_pipeline_pool_new(spool_pool **out, const char *path, const char *name,
    const spool_stage_handler *handlers, size_t n, const spool_pool_opts *opts)
{
	static const spool_pool_opts	 def = SPOOL_POOL_OPTS_INIT;
	struct spool__stages		*s = NULL;
	struct plan			 pl;
	spool_pool_opts			 o;
	spool				*q = NULL;
	char				 err[512];
	size_t				 i;
	int				 rc, total = 0;

	if (out == NULL)
		return (SPOOL_EINVAL);
	*out = NULL;
	memset(&pl, 0, sizeof pl);
	/* Only as much of *opts as its version has (pool.c), once the
	 * version is known: a version 1 struct is shorter. */
	if (opts == NULL)
		o = def;
	else if (opts->version >= 1 && opts->version <= SPOOL_POOL_OPTS_VERSION)
		spool__pool_opts_copy(&o, opts);
	else {
		o = def;
		o.version = opts->version;	/* refused below, or by pool.c */
	}
	if ((s = calloc(1, sizeof *s)) == NULL)
		return (SPOOL_ENOMEM);
	pthread_mutex_init(&s->mu, NULL);
	s->open_flags = o.open_flags;
	if ((s->path = spool__strdup(path)) == NULL ||
	    (n > 0 && (s->h = calloc(n, sizeof *s->h)) == NULL)) {
		rc = SPOOL_ENOMEM;
		snprintf(err, sizeof err, "out of memory");
		goto fail;
	}
	for (i = 0; i < n; i++) {
		s->h[i] = handlers[i];
		s->h[i].stage = NULL;
		if (handlers[i].stage != NULL &&
		    (s->h[i].stage = spool__strdup(handlers[i].stage)) == NULL) {
			rc = SPOOL_ENOMEM;
			snprintf(err, sizeof err, "out of memory");
			goto fail;
		}
		s->nh++;
	}
	/* Before the open, which may create or migrate the file. */
	if (o.version > SPOOL_POOL_OPTS_VERSION) {
		rc = SPOOL_EINVAL;
		snprintf(err, sizeof err, SPOOL__VERSION_UNKNOWN,
		    "spool_pool_opts", o.version, SPOOL_POOL_OPTS_VERSION);
		goto fail;
	}

	rc = spool_open(&q, path, o.open_flags);
	if (rc == SPOOL_OK && n == 0)
		rc = spool__error(q, SPOOL_EINVAL, "no stage handlers");
	if (rc == SPOOL_OK)
		rc = spool__check_pipeline_name(q, "pipeline name", name);
	if (rc == SPOOL_OK)
		rc = plan_read(&pl, s, q, name);
	if (rc == SPOOL_OK)
		rc = plan_check(s, q, name);
	if (rc == SPOOL_OK && pl.n == 0)
		rc = spool__error(q, SPOOL_EINVAL, "pipeline %s: no stage to "
		    "work (no handler names one of its current stages)", name);
	if (rc != SPOOL_OK) {
		snprintf(err, sizeof err, "%s", spool_errmsg(q));
		goto fail;
	}
	spool_close(q);
	q = NULL;

	for (i = 0; i < pl.n; i++)
		total += pl.limits[i];
	if (total > SPOOL_CONCURRENCY_MAX)
		total = SPOOL_CONCURRENCY_MAX;
	o.queues = (const char *const *)pl.queues;
	o.nqueues = pl.n;
	o.strategy = SPOOL_STRATEGY_PRIORITY;
	o.weights = NULL;
	o.min_workers = o.max_workers = total;
	o.prefetch = 0;
	rc = spool_pool_new(out, path, stages_dispatch, s, &o);
	if (*out == NULL)
		goto fail_quiet;
	if (rc == SPOOL_OK && (((*out)->limits = calloc(pl.n,
	    sizeof *(*out)->limits)) == NULL || ((*out)->active = calloc(pl.n,
	    sizeof *(*out)->active)) == NULL)) {
		snprintf((*out)->errmsg, sizeof (*out)->errmsg, "out of memory");
		rc = (*out)->errcode = SPOOL_ENOMEM;
	}
	if ((*out)->limits != NULL)
		memcpy((*out)->limits, pl.limits, pl.n * sizeof *pl.limits);
	(*out)->stages = s;
	for (i = 0; i < pl.n; i++)
		free(pl.queues[i]);
	return (rc);

fail:
	/* Report through a pool that holds only the error, as
	 * spool_pool_new does. */
	if ((*out = calloc(1, sizeof **out)) != NULL) {
		pthread_mutex_init(&(*out)->mu, NULL);
		pthread_cond_init(&(*out)->work_cv, NULL);
		pthread_cond_init(&(*out)->exit_cv, NULL);
		snprintf((*out)->errmsg, sizeof (*out)->errmsg, "%s", err);
		(*out)->errcode = rc;
	}
fail_quiet:
	spool_close(q);
	spool__stages_free(s);
	for (i = 0; i < pl.n; i++)
		free(pl.queues[i]);
	return (rc);
}
