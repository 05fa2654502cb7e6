/*
 * engine-flush.c -- what the engine writes for the jobs it holds: the
 * outcomes of finished jobs, recorded and committed together (group
 * commit, synced), then counted and reported to on_done; holding back
 * new tasks while outcomes cannot be committed; the handlers' starts;
 * renewing the leases held, and dropping jobs whose lease was lost;
 * cancel requests on the leases held; reaping dead workers' leases; and
 * timeouts, with abandoning a handler that does not return.
 *
 * Not here: the outcome SQL (claim.c); how many to claim and from where,
 * for the claim a flush commits with its outcomes (engine-claim.c); when
 * these run, and draining (engine.c); the tick that checks the timeouts
 * (engine-probe.c).  Like every engine file (engine*.c, loop.c), and
 * unlike the rest of the library, it may use libevent.  It runs in the
 * engine's thread.
 */
#include "config.h"

#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>

#include "spool-int.h"
#include "engine-int.h"
#include "query-gen.h"

#define FLUSH_RETRY_MAX_MS	1000	/* a failing flush retries at most this late */

static void	 engine_starts_undo(spool_pool *);

/* Outcomes could not be committed (why: q's message): start no task
 * until a flush commits them, and say so once. */
static void
engine_hold(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	char			 line[700];
	size_t			 held;
	int			 was;

	pthread_mutex_lock(&p->mu);
	was = p->holding;
	p->holding = 1;
	held = p->done.n;
	pthread_mutex_unlock(&p->mu);
	if (was)
		return;
	e->hold_since_ms = spool__engine_now(p);
	snprintf(line, sizeof line, "cannot commit: %s; holding %zu "
	    "outcome%s, not starting tasks", spool_errmsg(p->q), held,
	    held == 1 ? "" : "s");
	spool__pool_say(p, line);
}

/* A flush committed: start tasks again if they were held back. */
static void
engine_unhold(spool_pool *p, size_t committed)
{
	struct spool__engine	*e = p->engine;
	char			 line[200];
	int			 was;

	pthread_mutex_lock(&p->mu);
	was = p->holding;
	p->holding = 0;
	if (was)
		pthread_cond_broadcast(&p->work_cv);
	pthread_mutex_unlock(&p->mu);
	if (!was)
		return;
	snprintf(line, sizeof line, "committed again after %.1f s (%zu "
	    "outcome%s); starting tasks", (double)(spool__engine_now(p) -
	    e->hold_since_ms) / 1000.0, committed, committed == 1 ? "" : "s");
	spool__pool_say(p, line);
}

/* Take the outcome of one finished job into the open transaction; sets
 * *kind.  SPOOL_ELEASE is an outcome (lease lost), not a failure. */
static int
engine_record(spool_pool *p, spool_job *job, int64_t now, int *kind)
{
	const char	*err = job->error;
	int		 rc, state = SPOOL_READY, timed_out;

	timed_out = job->verdict == SPOOL__V_TIMEOUT ||
	    spool_job_should_stop(job) == SPOOL_STOP_TIMEOUT;
	if (job->verdict == SPOOL__V_RELEASE) {
		int	 cancelled = 0;

		/* A cancel asked for meanwhile ends it cancelled. */
		rc = spool__release_locked(job, now, &cancelled);
		*kind = cancelled ? SPOOL_OUTCOME_CANCELLED :
		    SPOOL_OUTCOME_RELEASED;
	} else if (job->verdict == SPOOL__V_HANDLER &&
	    job->handler_rc == SPOOL_DONE) {
		rc = spool__complete_locked(job, job->result, job->result_len,
		    job->truncated, now);
		*kind = SPOOL_OUTCOME_SUCCEEDED;
	} else {
		if (err == NULL)
			err = timed_out ? "timed out" : "failed";
		rc = spool__fail_locked(job, err, job->verdict ==
		    SPOOL__V_HANDLER && job->handler_rc == SPOOL_FAIL ?
		    SPOOL_FAIL_PERMANENT : 0, timed_out ? "timed_out" : "failed",
		    now, &state);
		*kind = state == SPOOL_DEAD ? SPOOL_OUTCOME_DEAD :
		    state == SPOOL_CANCELLED ? SPOOL_OUTCOME_CANCELLED :
		    SPOOL_OUTCOME_RETRYING;
	}
	if (rc == SPOOL_ELEASE) {
		*kind = SPOOL_OUTCOME_LEASE_LOST;
		rc = SPOOL_OK;
	}
	return (rc);
}

/* After the commit: count one job (with p->mu held). */
static void
engine_count_locked(spool_pool *p, spool_job *job, int64_t now)
{
	spool_pool_stats	*st = &p->st;
	int64_t			 wait_ms, run_ms;

	switch (job->kind) {
	case SPOOL_OUTCOME_SUCCEEDED:	st->succeeded++; break;
	case SPOOL_OUTCOME_RETRYING:	st->retried++; break;
	case SPOOL_OUTCOME_DEAD:	st->dead++; break;
	case SPOOL_OUTCOME_CANCELLED:	st->cancelled++; break;
	case SPOOL_OUTCOME_LEASE_LOST:	st->lease_lost++; break;
	case SPOOL_OUTCOME_RELEASED:	st->released++; break;
	}
	if ((job->verdict == SPOOL__V_TIMEOUT ||
	    spool_job_should_stop(job) == SPOOL_STOP_TIMEOUT) &&
	    job->kind != SPOOL_OUTCOME_LEASE_LOST)
		st->timed_out++;
	wait_ms = job->run_start_ms > job->run_at_ms ?
	    job->run_start_ms - job->run_at_ms : 0;
	run_ms = job->run_end_ms > job->run_start_ms ?
	    job->run_end_ms - job->run_start_ms : 0;
	spool__pool_observe(p, job->kind, wait_ms, run_ms, now);
}

/* After the commit: report one job to on_done, and forget it. */
static void
engine_report(spool_pool *p, spool_job *job)
{
	spool_outcome	 o;
	int		 kind = job->kind;

	if (p->o.on_done != NULL) {
		o.id = job->id;
		o.queue = job->queue;
		o.attempt = job->attempt;
		o.kind = kind;
		o.timed_out = job->verdict == SPOOL__V_TIMEOUT ||
		    spool_job_should_stop(job) == SPOOL_STOP_TIMEOUT;
		o.wait_ms = job->run_start_ms > job->run_at_ms ?
		    job->run_start_ms - job->run_at_ms : 0;
		o.run_ms = job->run_end_ms > job->run_start_ms ?
		    job->run_end_ms - job->run_start_ms : 0;
		o.error = kind == SPOOL_OUTCOME_SUCCEEDED ? NULL :
		    kind == SPOOL_OUTCOME_LEASE_LOST ? "lease lost" :
		    kind == SPOOL_OUTCOME_RELEASED ? NULL :
		    job->error != NULL ? job->error : "failed";
		p->o.on_done(&o, p->o.cb_arg);
	}
	spool__engine_reg_del(p->engine, job);
	spool_job_free(job);
}

/* Write when handlers started, for the jobs still running whose start is
 * not written yet (a job that finished has its start written with its
 * outcome), inside the open transaction.  On failure the starts are
 * written again later. */
static int
engine_write_starts(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	spool_job		*job;
	size_t			 i, n = 0, k;
	int			 rc = SPOOL_OK, running;

	e->nstarts = 0;
	pthread_mutex_lock(&p->mu);
	if (p->starts_pending == 0) {
		pthread_mutex_unlock(&p->mu);
		return (SPOOL_OK);
	}
	p->starts_pending = 0;
	/* The registry's running jobs are the busy threads' (less those
	 * abandoned, which left it): the walk stops once it has seen them
	 * all, so a flush with idle threads does not walk every bucket. */
	running = p->busy - p->stuck;
	for (i = 0; i < ENGINE_BUCKETS && running > 0; i++)
		for (job = e->bucket[i]; job != NULL && running > 0;
		    job = job->hnext) {
			if (job->phase != SPOOL__RUNNING)
				continue;
			running--;
			if (job->start_rec || n >= (size_t)p->o.max_workers)
				continue;
			job->start_rec = 1;
			e->starts[n].id = job->id;
			e->starts[n].token = job->token;
			e->starts[n++].ms = job->run_start_ms;
		}
	pthread_mutex_unlock(&p->mu);
	e->nstarts = n;
	for (k = 0; k < n && rc == SPOOL_OK; k++)
		rc = spool__started_locked(p->q, e->starts[k].id,
		    e->starts[k].token, e->starts[k].ms);
	if (rc != SPOOL_OK)
		engine_starts_undo(p);
	return (rc);
}

/* The transaction that wrote the last starts was rolled back: write them
 * again in the next one. */
static void
engine_starts_undo(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	spool_job		*job;
	size_t			 k;

	if (e->nstarts == 0)
		return;
	pthread_mutex_lock(&p->mu);
	for (k = 0; k < e->nstarts; k++)
		if ((job = spool__engine_reg_find(e, e->starts[k].id)) != NULL)
			job->start_rec = 0;
	p->starts_pending++;
	pthread_mutex_unlock(&p->mu);
	e->nstarts = 0;
}

/* The start timer: write the starts in a transaction of their own (not
 * synced: a start lost to a power cut is only a time not shown). */
void
spool__engine_start_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool	*p = arg;
	int		 rc;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&p->mu);
	rc = p->starts_pending;
	pthread_mutex_unlock(&p->mu);
	if (rc == 0)
		return;		/* a flush wrote them */
	spool__engine_sync(p, 0);
	if ((rc = spool__begin(p->q)) == SPOOL_OK) {
		if ((rc = engine_write_starts(p)) == SPOOL_OK) {
			if ((rc = spool__commit(p->q)) != SPOOL_OK)
				engine_starts_undo(p);
		} else
			spool__rollback(p->q);
	}
	if (rc != SPOOL_OK) {
		spool__engine_error(p, rc);
		spool__engine_arm(p->engine->ev_start, 100);
	}
}

/* Commit the outcomes of every finished job in one synced transaction.
 * On failure they go back on the done list and the flush is retried. */
void
spool__engine_flush(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	struct spool__jobq	 list = { NULL, NULL, 0 };
	spool_job		*job, *nx;
	int64_t			 now, t0, t1, want;
	size_t			 got = 0;
	int			 rc, hold = 1;

	evtimer_del(e->ev_flush);
	pthread_mutex_lock(&p->mu);
	list = p->done;
	p->done.head = p->done.tail = NULL;
	p->done.n = 0;
	pthread_mutex_unlock(&p->mu);
	if (list.n == 0)
		return;

	spool__engine_sync(p, 1);
	t0 = spool__clock_ns(CLOCK_MONOTONIC);
	now = spool__engine_now(p);
	if ((rc = spool__begin(p->q)) != SPOOL_OK)
		goto retry;
	if (__atomic_load_n(&p->fail_flushes, __ATOMIC_ACQUIRE)) {
		rc = spool__error(p->q, SPOOL_EIO, "commit: I/O error (test)");
		spool__rollback(p->q);
		goto retry;
	}
	for (job = list.head; job != NULL; job = job->next) {
		if ((rc = engine_record(p, job, now, &job->kind)) != 0) {
			spool__rollback(p->q);
			goto retry;
		}
	}
	/* The starts of the jobs still running ride along, and so does the
	 * next claim: one transaction, one sync, and each page the claim
	 * and the outcomes share written to the WAL once. */
	if ((rc = engine_write_starts(p)) != SPOOL_OK) {
		spool__rollback(p->q);
		goto retry;
	}
	/* A claim that fails here must not keep the outcomes from being
	 * committed: the retry commits them without one. */
	if (!e->flush_noclaim && (want = spool__engine_claim_want(p)) > 0) {
		t1 = spool__clock_ns(CLOCK_MONOTONIC);
		rc = p->fail_flush_claims ? spool__error(p->q, SPOOL_EIO,
		    "claim: I/O error (test)") :
		    spool__engine_claim_strategy(p, (size_t)want, &got, 1);
		if (rc != SPOOL_OK) {
			spool__rollback(p->q);
			spool__engine_claim_drop(p, got);
			engine_starts_undo(p);
			e->flush_noclaim = 1;
			hold = 0;
			goto retry;
		}
		if (got > 0)
			spool__engine_avg(&e->claim_ns,
			    (double)(spool__clock_ns(CLOCK_MONOTONIC) - t1));
	}
	spool__crash("flush");
	if ((rc = spool__commit(p->q)) != SPOOL_OK) {
		spool__engine_claim_drop(p, got);
		engine_starts_undo(p);
		goto retry;
	}
	spool__crash("flushed");
	e->flush_noclaim = 0;
	engine_unhold(p, list.n);
	spool__engine_claim_take(p, got);
	spool__engine_avg(&e->flush_ns, (double)(spool__clock_ns(CLOCK_MONOTONIC) - t0));
	e->flush_retry_ms = 0;
	/* Our own commit may have asked for cancels (a pipeline's fail_fast
	 * settled here), which data_version does not show: look next time. */
	e->cancel_version = -1;
	now = spool__engine_now(p);
	pthread_mutex_lock(&p->mu);	/* once for the group, not per job */
	for (job = list.head; job != NULL; job = job->next)
		engine_count_locked(p, job, now);
	pthread_mutex_unlock(&p->mu);
	for (job = list.head; job != NULL; job = nx) {
		nx = job->next;
		engine_report(p, job);
	}
	spool__engine_sync(p, 0);
	return;

retry:
	/* Keep the outcomes: a later flush commits them. */
	spool__engine_error(p, rc);
	pthread_mutex_lock(&p->mu);
	if (list.tail != NULL) {
		list.tail->next = p->done.head;
		p->done.head = list.head;
		if (p->done.tail == NULL)
			p->done.tail = list.tail;
		p->done.n += list.n;
	}
	pthread_mutex_unlock(&p->mu);
	if (hold)	/* not a claim's failure, retried at once without it */
		engine_hold(p);
	e->flush_retry_ms = e->flush_retry_ms ? e->flush_retry_ms * 2 : 10;
	if (e->flush_retry_ms > FLUSH_RETRY_MAX_MS)
		e->flush_retry_ms = FLUSH_RETRY_MAX_MS;
	spool__engine_arm(e->ev_flush, e->flush_retry_ms);
}

void
spool__engine_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool	*p = arg;

	(void)fd;
	(void)what;
	spool__engine_flush(p);
	spool__engine_claim(p);
	spool__engine_check_finished(p);
}

/* Extend every lease the pool holds; jobs whose lease was not renewed
 * lost it: their handlers are told, unstarted ones are dropped. */
void
spool__engine_renew_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool			*p = arg;
	struct spool__engine		*e = p->engine;
	struct spool__q_renew_leases_row r;
	struct spool__cur		 c;
	spool_job			*job, *nx;
	int64_t				 now;
	size_t				 i;
	int				 rc;

	(void)fd;
	(void)what;
	if (e->held == 0)
		return;
	spool__engine_sync(p, 0);
	if ((rc = spool__begin(p->q)) != SPOOL_OK) {
		spool__engine_error(p, rc);
		return;
	}
	e->epoch++;
	now = spool__engine_now(p);
	for (i = 0; i < p->o.nqueues; i++) {
		if ((rc = spool__q_renew_leases(p->q, &c,
		    &(struct spool__q_renew_leases_in){ .owner = p->owner,
		    .queue = p->queues[i],
		    .until_ms = now + e->conf[i].lease_ms })) == SPOOL_OK)
			while ((rc = spool__q_renew_leases_next(&c, &r)) == 1) {
				job = spool__engine_reg_find(e, r.id);
				if (job == NULL || job->token != r.lease_token)
					continue;
				job->renew_epoch = e->epoch;
				/* Atomic: the handler may be reading it. */
				__atomic_store_n(&job->lease_until_ms, now +
				    e->conf[i].lease_ms, __ATOMIC_RELAXED);
				if (r.cancel_requested)
					spool__job_stop_set(job,
					    SPOOL_STOP_CANCELLED);
			}
		if (rc < 0) {
			spool__rollback(p->q);
			spool__engine_error(p, rc);
			return;
		}
	}
	if ((rc = spool__commit(p->q)) != SPOOL_OK) {
		spool__engine_error(p, rc);
		return;
	}
	/* Whatever was not renewed is lost. */
	for (i = 0; i < ENGINE_BUCKETS; i++)
		for (job = e->bucket[i]; job != NULL; job = nx) {
			nx = job->hnext;
			if (job->renew_epoch == e->epoch)
				continue;
			spool__job_stop_set(job, SPOOL_STOP_LEASE_LOST);
			pthread_mutex_lock(&p->mu);
			if (job->phase != SPOOL__PREFETCHED) {
				pthread_mutex_unlock(&p->mu);
				continue;	/* its flush gets SPOOL_ELEASE */
			}
			(void)spool__jobq_remove(&p->ready, job);
			if (p->active != NULL && p->active[job->qidx] > 0)
				p->active[job->qidx]--;
			p->st.lease_lost++;
			pthread_mutex_unlock(&p->mu);
			spool__engine_reg_del(e, job);
			spool_job_free(job);
		}
}

/* Tell the handlers of held jobs whose cancellation was asked for; hand
 * back those not started (their release ends them cancelled).  Asked
 * only when another connection committed since the last time. */
void
spool__engine_cancel_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool			*p = arg;
	struct spool__engine		*e = p->engine;
	struct spool__q_cancel_requests_row r;
	struct spool__cur		 c;
	spool_job			*job;
	int64_t				 v;
	int				 rc;

	(void)fd;
	(void)what;
	if (e->held == 0 ||
	    (v = spool__engine_data_version(p)) == e->cancel_version)
		return;
	e->cancel_version = v;
	if ((rc = spool__q_cancel_requests(p->q, &c,
	    &(struct spool__q_cancel_requests_in){ .owner = p->owner })) < 0) {
		e->cancel_version = -1;		/* ask again next time */
		spool__engine_error(p, rc);
		return;
	}
	while ((rc = spool__q_cancel_requests_next(&c, &r)) == 1) {
		job = spool__engine_reg_find(e, r.id);
		if (job == NULL || job->token != r.lease_token)
			continue;
		spool__job_stop_set(job, SPOOL_STOP_CANCELLED);
		pthread_mutex_lock(&p->mu);
		if (job->phase == SPOOL__PREFETCHED &&
		    spool__jobq_remove(&p->ready, job)) {
			job->verdict = SPOOL__V_RELEASE;
			job->phase = SPOOL__FINISHED;
			spool__pool_done_locked(p, job);
			if (!evtimer_pending(e->ev_flush, NULL))
				spool__engine_arm(e->ev_flush,
				    p->o.flush_interval_ms);
		}
		pthread_mutex_unlock(&p->mu);
	}
	if (rc < 0) {
		e->cancel_version = -1;		/* ask again next time */
		spool__engine_error(p, rc);
	}
}

/* Return the expired leases of dead workers. */
void
spool__engine_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool	*p = arg;
	int64_t		 n;
	int		 rc;

	(void)fd;
	(void)what;
	spool__engine_sync(p, 0);
	if ((rc = spool_reap(&n, p->q)) != SPOOL_OK)
		spool__engine_error(p, rc);
	else if (n > 0)
		p->engine->poke = 1;	/* reaped tasks may be due now */
}

/* Abandon a job whose handler does not return: commit verdict for it
 * (a timeout, or a hand-back at shutdown) through a copy, and let its
 * worker free the original when it returns. */
void
spool__engine_abandon(spool_pool *p, spool_job *job, int verdict,
    const char *why)
{
	struct spool__engine	*e = p->engine;
	spool_job		*c;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return;
	c->q = job->q;
	c->id = job->id;
	c->token = job->token;
	c->attempt = job->attempt;
	c->max_attempts = job->max_attempts;
	c->started_ms = job->started_ms;
	c->run_at_ms = job->run_at_ms;
	c->run_start_ms = job->run_start_ms;
	c->run_end_ms = spool__engine_now(p);
	c->renew_epoch = job->renew_epoch;
	c->qidx = job->qidx;
	c->item_id = job->item_id;
	c->stage_id = job->stage_id;
	c->pool = p;
	c->queue = spool__strdup(job->queue);
	c->owner = spool__strdup(job->owner);
	c->error = spool__strdup(why);
	c->verdict = verdict;
	c->phase = SPOOL__FINISHED;
	if (c->queue == NULL || c->owner == NULL || c->error == NULL) {
		spool_job_free(c);
		return;
	}
	/* With p->mu held by the caller. */
	job->phase = SPOOL__ABANDONED;
	p->stuck++;
	spool__engine_reg_del(e, job);
	spool__engine_reg_add(e, c);
	/* Its slot of the queue's limit stays taken until the handler
	 * returns (pool_worker gives it back). */
	spool__jobq_push(&p->done, c);
}

/* Tell handlers that ran past their timeout to stop; abandon those that
 * keep running well after it. */
void
spool__engine_timeouts(spool_pool *p, int64_t now)
{
	struct spool__engine	*e = p->engine;
	spool_job		*job, *nx;
	char			 why[96];
	size_t			 i;
	int			 abandoned = 0, any;

	pthread_mutex_lock(&p->mu);
	for (i = 0; i < ENGINE_BUCKETS; i++)
		for (job = e->bucket[i]; job != NULL; job = nx) {
			nx = job->hnext;
			if (job->phase != SPOOL__RUNNING || job->timeout_ms <= 0 ||
			    now - job->run_start_ms < job->timeout_ms)
				continue;
			spool__job_stop_set(job, SPOOL_STOP_TIMEOUT);
			if (now - job->run_start_ms < job->timeout_ms +
			    p->grace_ms)
				continue;
			snprintf(why, sizeof why, "timed out after %lld ms "
			    "(the handler did not return)",
			    (long long)job->timeout_ms);
			spool__engine_abandon(p, job, SPOOL__V_TIMEOUT, why);
			abandoned++;
		}
	/* Keep the pool's capacity while stuck threads finish. */
	any = abandoned > 0;
	while (abandoned-- > 0 && p->nworkers - p->stuck < p->o.min_workers &&
	    spool__pool_spawn(p) == SPOOL_OK)
		continue;
	pthread_mutex_unlock(&p->mu);
	/* Commit the timeouts now: the stuck threads will not wake us. */
	if (any)
		spool__engine_flush(p);
}
