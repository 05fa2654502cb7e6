/*
 * pool.c -- worker pools: the threads that run handlers, the two lists
 * that join them to the engine (ready: claimed jobs waiting for a thread;
 * done: finished jobs waiting for their outcome to be committed), and the
 * calls a handler may make on its job.
 *
 * Invariants: only the engine thread touches the database; a worker
 * thread owns a job only between taking it from ready and putting it on
 * done (or, if the engine abandoned it for running too long, until it
 * frees it); the lists, phases, counters and the worker count change
 * under pool->mu.  A job's stop reason is written with atomics, so a
 * handler may poll it without the lock.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool-int.h"

#define POOL_MAX_WORKERS	1024
#define POOL_MAX_PREFETCH	10000

/* Append job to the list. */
void
spool__jobq_push(struct spool__jobq *q, spool_job *job)
{
	job->next = NULL;
	if (q->tail != NULL)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
	q->n++;
}

/* Take the first job of the list, or NULL. */
spool_job *
spool__jobq_pop(struct spool__jobq *q)
{
	spool_job	*job = q->head;

	if (job == NULL)
		return (NULL);
	q->head = job->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->n--;
	job->next = NULL;
	return (job);
}

/* Put a finished job on the done list (under p->mu): it no longer counts
 * against its queue's limit. */
void
spool__pool_done_locked(spool_pool *p, spool_job *job)
{
	if (p->active != NULL && p->active[job->qidx] > 0)
		p->active[job->qidx]--;
	spool__jobq_push(&p->done, job);
}

/* Unlink job from the list; 0 if it was not there. */
int
spool__jobq_remove(struct spool__jobq *q, spool_job *job)
{
	spool_job	*prev = NULL, *j;

	for (j = q->head; j != NULL; prev = j, j = j->next) {
		if (j != job)
			continue;
		if (prev == NULL)
			q->head = j->next;
		else
			prev->next = j->next;
		if (q->tail == j)
			q->tail = prev;
		q->n--;
		j->next = NULL;
		return (1);
	}
	return (0);
}

/* Refuse a call only a pool's handler may make on a job claimed with
 * spool_claim, saying so on the job's handle (the caller's own: a pool
 * job's handle is the engine's, which a handler must not touch). */
static int
pool_job_only(spool_job *job, const char *what, const char *instead)
{
	if (job->q == NULL || job->q->db == NULL)
		return (SPOOL_EINVAL);
	return (spool__error(job->q, SPOOL_EINVAL, "%s: task %lld was not "
	    "claimed by a pool (use %s)", what, (long long)job->id, instead));
}

/* Keep a copy of result on job (a pool job, from its handler). */
int
spool_job_set_result(spool_job *job, const void *result, size_t len)
{
	void	*copy;

	if (job != NULL && job->pool == NULL)
		return (pool_job_only(job, "set result", "spool_job_complete"));
	if (job == NULL || (result == NULL && len != 0) ||
	    len > SPOOL_PAYLOAD_MAX)
		return (SPOOL_EINVAL);
	if ((copy = spool__memdup(result, len)) == NULL)
		return (SPOOL_ENOMEM);
	free(job->result);
	job->result = copy;
	job->result_len = len;
	job->truncated = 0;
	return (SPOOL_OK);
}

/* Keep a copy of error on job (a pool job, from its handler). */
int
spool_job_set_error(spool_job *job, const char *error)
{
	char	*copy;

	if (job != NULL && job->pool == NULL)
		return (pool_job_only(job, "set error", "spool_job_fail"));
	if (job == NULL || error == NULL)
		return (SPOOL_EINVAL);
	if ((copy = spool__strdup(error)) == NULL)
		return (SPOOL_ENOMEM);
	free(job->error);
	job->error = copy;
	return (SPOOL_OK);
}

/* Wake the engine once, however many workers ask; with p->mu held. */
static void
pool_wake_locked(spool_pool *p)
{
	if (!p->wake_pending) {
		p->wake_pending = 1;
		spool__engine_wake(p);
	}
}

/* A worker thread: take a job, run its handler, hand the job back. */
static void *
pool_worker(void *arg)
{
	spool_pool	*p = arg;
	spool_job	*job;
	struct timespec	 until;
	int64_t		 t0, t1;
	sigset_t	 all;
	int		 rc, retire = 0;

	/* Signals are the engine's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);

	pthread_mutex_lock(&p->mu);
	for (;;) {
		/* While outcomes cannot be committed, start nothing: each
		 * task run then would be a side effect done and unrecorded,
		 * done again if the process dies. */
		while ((p->ready.n == 0 || p->holding) && p->stopping == 0) {
			until = spool__clock_after_ms(CLOCK_MONOTONIC,
			    p->o.idle_timeout_ms);
			rc = pthread_cond_timedwait(&p->work_cv, &p->mu, &until);
			if (rc == ETIMEDOUT && p->ready.n == 0 &&
			    p->nworkers - p->stuck > p->o.min_workers) {
				retire = 1;
				break;
			}
		}
		if (retire || p->stopping == 2 || p->ready.n == 0 ||
		    p->holding)
			break;
		job = spool__jobq_pop(&p->ready);
		job->phase = SPOOL__RUNNING;
		job->run_start_ms = spool__clock_ms(CLOCK_REALTIME);
		p->busy++;
		/* The engine writes the start (the first of a group wakes
		 * it) and claims again before the threads run dry. */
		if (p->starts_pending++ == 0 ||
		    (int)p->ready.n <= p->refill_at)
			pool_wake_locked(p);
		pthread_mutex_unlock(&p->mu);

		t0 = spool__clock_ns(CLOCK_MONOTONIC);
		rc = p->fn(job, p->arg);
		t1 = spool__clock_ns(CLOCK_MONOTONIC);

		pthread_mutex_lock(&p->mu);
		p->busy--;
		p->run_ns += t1 - t0;
		p->run_n++;
		if (job->phase == SPOOL__ABANDONED) {
			/* The engine already failed it as timed out; its
			 * slot of the queue's limit is free only now. */
			p->stuck--;
			if (p->active != NULL && p->active[job->qidx] > 0) {
				p->active[job->qidx]--;
				p->room_freed = 1;	/* see engine_check_finished */
				pool_wake_locked(p);	/* room to claim */
			}
			spool_job_free(job);
			if (p->nworkers - p->stuck > p->o.max_workers)
				break;
			continue;
		}
		if (rc != SPOOL_DONE && rc != SPOOL_RETRY && rc != SPOOL_FAIL) {
			char	 msg[64];

			snprintf(msg, sizeof msg, "handler returned %d", rc);
			if (job->error == NULL)
				job->error = spool__strdup(msg);
			rc = SPOOL_RETRY;
		}
		job->handler_rc = rc;
		job->run_end_ms = spool__clock_ms(CLOCK_REALTIME);
		job->phase = SPOOL__FINISHED;
		spool__pool_done_locked(p, job);
		/* Wake the engine for the first outcome after a flush, a
		 * full group, a stop, and, under per-queue limits, a slot
		 * freed with nothing claimed waiting: it can claim at once
		 * instead of at the flush. */
		if (p->done.n == 1 || p->done.n >= (size_t)p->o.flush_count ||
		    p->stopping || (p->limits != NULL && p->ready.n == 0))
			pool_wake_locked(p);
	}
	p->nworkers--;
	pthread_cond_broadcast(&p->exit_cv);
	pool_wake_locked(p);
	pthread_mutex_unlock(&p->mu);
	return (NULL);
}

/* Start one more worker thread; with p->mu held. */
int
spool__pool_spawn(spool_pool *p)
{
	pthread_attr_t	 attr;
	pthread_t	 t;
	int		 rc;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, pool_worker, p);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return (SPOOL_ENOMEM);
	p->nworkers++;
	return (SPOOL_OK);
}

/* Record a failure on the pool. */
void
spool__pool_error(spool_pool *p, int code, const char *msg)
{
	pthread_mutex_lock(&p->mu);
	p->errcode = code;
	snprintf(p->errmsg, sizeof p->errmsg, "%s", msg);
	pthread_mutex_unlock(&p->mu);
}

/* Copy the caller's options in, of version in->version (a known one:
 * checked first), into the whole struct o, the fields of later versions
 * zero: a version 1 struct ends before log_interval_ms, so reading it
 * whole would read past the caller's object. */
void
spool__pool_opts_copy(spool_pool_opts *o, const spool_pool_opts *in)
{
	if (in->version == 1) {		/* before log_interval_ms */
		memset(o, 0, sizeof *o);
		memcpy(o, in, offsetof(spool_pool_opts, log_interval_ms));
	} else
		*o = *in;
}

/* Check the options and fill in the defaults. */
static int
pool_opts(spool_pool *p, const spool_pool_opts *in)
{
	spool_pool_opts	*o = &p->o;
	size_t		 i;

#define BAD(msg) do {							\
	snprintf(p->errmsg, sizeof p->errmsg, "%s", msg);		\
	return (p->errcode = SPOOL_EINVAL);				\
} while (0)
	if (in == NULL)
		BAD("pool options missing (the queues to work)");
	if (in->version < 1)
		BAD("pool options: version not set (use SPOOL_POOL_OPTS_INIT)");
	if (in->version > SPOOL_POOL_OPTS_VERSION) {
		snprintf(p->errmsg, sizeof p->errmsg, SPOOL__VERSION_UNKNOWN,
		    "spool_pool_opts", in->version, SPOOL_POOL_OPTS_VERSION);
		return (p->errcode = SPOOL_EINVAL);
	}
	spool__pool_opts_copy(o, in);
	if (o->flags & ~(SPOOL_POOL_SIGNALS | SPOOL_POOL_UNTIL_EMPTY))
		BAD("pool options: unknown flags");
	if (o->queues == NULL || o->nqueues == 0 || o->nqueues > 64)
		BAD("pool options: give 1 to 64 queues");
	if (o->strategy < SPOOL_STRATEGY_MERGE ||
	    o->strategy > SPOOL_STRATEGY_ROUND_ROBIN)
		BAD("pool options: unknown strategy");
	if (o->strategy == SPOOL_STRATEGY_WEIGHTED) {
		if (o->weights == NULL)
			BAD("pool options: the weighted strategy needs weights");
		for (i = 0; i < o->nqueues; i++)
			if (o->weights[i] < 1 || o->weights[i] > 1000000)
				BAD("pool options: weights must be 1 to 1000000");
	}
	if (o->max_workers == 0)
		o->max_workers = o->min_workers > 4 ? o->min_workers : 4;
	if (o->min_workers == 0)
		o->min_workers = 1;
	if (o->min_workers < 0 || o->max_workers < o->min_workers ||
	    o->max_workers > POOL_MAX_WORKERS)
		BAD("pool options: need 1 <= min_workers <= max_workers <= 1024");
	if (o->idle_timeout_ms == 0)
		o->idle_timeout_ms = 30000;
	if (o->prefetch < 0)
		o->prefetch = -1;	/* sized by the engine */
	if (o->prefetch > POOL_MAX_PREFETCH)
		BAD("pool options: prefetch at most 10000");
	if (o->shutdown_timeout_ms == 0)
		o->shutdown_timeout_ms = 30000;
	if (o->flush_interval_ms == 0)
		o->flush_interval_ms = 2;
	if (o->flush_count == 0)
		o->flush_count = 256;
	if (o->tick_ms == 0)
		o->tick_ms = 1000;
	if (o->idle_timeout_ms < 0 || o->lease_ms < 0 || o->timeout_ms < 0 ||
	    o->shutdown_timeout_ms < 0 || o->flush_interval_ms < 0 ||
	    o->flush_count < 0 || o->max_time_ms < 0 || o->max_tasks < 0 ||
	    o->tick_ms < 10 || o->log_interval_ms < 0)
		BAD("pool options: negative time or count");
	if (!(o->cpu_max >= 0 && o->cpu_max <= 1))
		BAD("pool options: cpu_max must be between 0 and 1");
#undef BAD
	return (SPOOL_OK);
}

/* Make a pool: copy the options, open the database, take the lock. */
int
spool_pool_new(spool_pool **out, const char *path, spool_handler fn,
    void *arg, const spool_pool_opts *opts)
{
	pthread_condattr_t	 ca;
	spool_pool		*p;
	uint32_t		 r;
	size_t			 i;
	int			 rc;

	if (out == NULL)
		return (SPOOL_EINVAL);
	*out = NULL;
	if ((p = calloc(1, sizeof *p)) == NULL)
		return (SPOOL_ENOMEM);
	*out = p;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->work_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&p->exit_cv, NULL);
	p->fn = fn;
	p->arg = arg;
	p->ahead_fixed = -1;
	spool__hist_init(&p->pm.wait);
	spool__hist_init(&p->pm.run);
	if (fn == NULL) {
		snprintf(p->errmsg, sizeof p->errmsg, "no handler");
		return (p->errcode = SPOOL_EINVAL);
	}
	if ((rc = pool_opts(p, opts)) != SPOOL_OK)
		return (rc);

	/* Copy what the caller may free once we return. */
	if ((p->queues = calloc(p->o.nqueues, sizeof *p->queues)) == NULL ||
	    (p->path = spool__strdup(path)) == NULL)
		goto nomem;
	for (i = 0; i < p->o.nqueues; i++) {
		if (opts->queues[i] == NULL) {
			snprintf(p->errmsg, sizeof p->errmsg, "queue %zu is NULL",
			    i + 1);
			return (p->errcode = SPOOL_EINVAL);
		}
		if ((p->queues[i] = spool__strdup(opts->queues[i])) == NULL)
			goto nomem;
	}
	p->o.queues = (const char *const *)p->queues;
	if (p->o.weights != NULL) {
		if ((p->weights = calloc(p->o.nqueues, sizeof *p->weights)) ==
		    NULL)
			goto nomem;
		memcpy(p->weights, opts->weights, p->o.nqueues *
		    sizeof *p->weights);
		p->o.weights = p->weights;
	}
	p->o.exclusive = NULL;

	rc = spool_open(&p->q, path, p->o.open_flags);
	if (rc != SPOOL_OK) {
		snprintf(p->errmsg, sizeof p->errmsg, "%s", spool_errmsg(p->q));
		return (p->errcode = rc);
	}
	for (i = 0; i < p->o.nqueues; i++)
		if ((rc = spool__check_name(p->q, "queue name", p->queues[i],
		    SPOOL_NAME_MAX)) != SPOOL_OK) {
			snprintf(p->errmsg, sizeof p->errmsg, "%s",
			    spool_errmsg(p->q));
			return (p->errcode = rc);
		}
	if (gethostname(p->host, sizeof p->host) != 0)
		strcpy(p->host, "localhost");
	p->host[sizeof p->host - 1] = '\0';
	spool__random(&r, sizeof r);
	snprintf(p->owner, sizeof p->owner, "%s:%ld:%08x", p->host,
	    (long)getpid(), r);
	p->started_ms = spool__clock_ms(CLOCK_REALTIME);
	p->grace_ms = 6000;	/* exec handlers kill at the timeout + 5 s */

	if ((rc = spool__engine_new(p)) != SPOOL_OK)
		return (rc);
	if (opts->exclusive != NULL) {
		if ((p->o.exclusive = spool__strdup(opts->exclusive)) == NULL)
			goto nomem;
		rc = spool__lock_acquire(p->q, p->o.exclusive, p->owner,
		    p->started_ms, p->started_ms + 30000);
		if (rc != SPOOL_OK) {
			snprintf(p->errmsg, sizeof p->errmsg, "%s",
			    spool_errmsg(p->q));
			free((char *)p->o.exclusive);
			p->o.exclusive = NULL;
			return (p->errcode = rc);
		}
	}
	return (SPOOL_OK);
nomem:
	snprintf(p->errmsg, sizeof p->errmsg, "out of memory");
	return (p->errcode = SPOOL_ENOMEM);
}

/* Run the pool until it stops. */
int
spool_pool_run(spool_pool *p)
{
	if (p == NULL || p->q == NULL || p->errcode != SPOOL_OK)
		return (SPOOL_EINVAL);
	return (spool__engine_run(p));
}

/* Ask the pool to stop. */
void
spool_pool_stop(spool_pool *p, int now)
{
	if (p != NULL && p->q != NULL)
		spool__engine_stop(p, now);
}

/* New work may be due: claim now. */
void
spool_pool_wake(spool_pool *p)
{
	if (p == NULL || p->q == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	pool_wake_locked(p);
	pthread_mutex_unlock(&p->mu);
}

/* A snapshot of the counters.  With a NULL pool *out is zeroed, so a
 * caller that skips the code reads no garbage. */
int
spool_pool_stats_get(spool_pool_stats *out, spool_pool *p)
{
	if (out == NULL)
		return (SPOOL_EINVAL);
	if (p == NULL) {
		memset(out, 0, sizeof *out);
		return (SPOOL_EINVAL);
	}
	pthread_mutex_lock(&p->mu);
	*out = p->st;
	out->workers = p->nworkers;
	out->busy = p->busy;
	out->prefetched = (int)p->ready.n;
	out->holding = p->holding;
	out->held = (int64_t)p->done.n;
	pthread_mutex_unlock(&p->mu);
	return (SPOOL_OK);
}

/* The last failure of the pool. */
const char *
spool_pool_errmsg(const spool_pool *p)
{
	if (p == NULL)
		return ("out of memory (no pool)");
	return (p->errmsg[0] != '\0' ? p->errmsg : "no error");
}

/* The code of the pool's last failure (the one spool_pool_errmsg
 * describes), or SPOOL_OK if it has had none. */
int
spool_pool_errcode(const spool_pool *p)
{
	pthread_mutex_t	*mu;
	int		 rc;

	if (p == NULL)
		return (SPOOL_ENOMEM);
	/* The engine records failures under mu (spool__pool_error). */
	mu = (pthread_mutex_t *)&p->mu;
	pthread_mutex_lock(mu);
	rc = p->errcode;
	pthread_mutex_unlock(mu);
	return (rc);
}

/* Free a pool: wait for its threads, drop what it still holds. */
void
spool_pool_free(spool_pool *p)
{
	spool_job	*job;
	size_t		 i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	if (p->stopping == 0)
		p->stopping = 2;
	pthread_cond_broadcast(&p->work_cv);
	while (p->nworkers > 0)
		pthread_cond_wait(&p->exit_cv, &p->mu);
	/* Leases of jobs still held simply expire. */
	while ((job = spool__jobq_pop(&p->ready)) != NULL)
		spool_job_free(job);
	while ((job = spool__jobq_pop(&p->done)) != NULL)
		spool_job_free(job);
	pthread_mutex_unlock(&p->mu);
	spool__engine_free(p);
	if (p->o.exclusive != NULL && p->q != NULL)
		(void)spool__lock_release(p->q, p->o.exclusive, p->owner);
	spool_close(p->q);
	for (i = 0; p->queues != NULL && i < p->o.nqueues; i++)
		free(p->queues[i]);
	free(p->queues);
	free(p->weights);
	free(p->limits);
	free(p->active);
	spool__stages_free(p->stages);
	free((char *)p->o.exclusive);
	free(p->path);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work_cv);
	pthread_cond_destroy(&p->exit_cv);
	free(p);
}
