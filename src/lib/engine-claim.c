/*
 * engine-claim.c -- the engine's claims: how many tasks to claim (for
 * the idle threads, and how many ahead of them, sized from the handlers'
 * time and the engine's own), from which queues (the pool's strategy:
 * merge, priority, weighted or round-robin shares, per-queue limits),
 * handing the claimed jobs to the threads, and when to claim again:
 * the claim timer, the next scheduled task, PRAGMA data_version, and the
 * inotify watch on the WAL that tells of another process's commit.
 *
 * Not here: the claim's SQL (claim.c); the claim that rides in a flush's
 * transaction is started by engine-flush.c (with
 * spool__engine_claim_strategy); the events themselves are made and
 * freed by engine.c.  Like every engine file (engine*.c, loop.c), and
 * unlike the rest of the library, it may use libevent.  It runs in the
 * engine's thread.
 */
#include "config.h"

#include <event2/event.h>

#ifdef HAVE_SYS_INOTIFY_H
#include <sys/inotify.h>
#endif

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "spool-int.h"
#include "engine-int.h"
#include "query-gen.h"

#define CLAIM_POLL_WATCH_MS	250	/* idle polling with inotify watching */

/*
 * How many tasks to hold claimed ahead of the threads: enough that the
 * threads do not run dry while the loop claims again, and no more.  In
 * the time a claim takes to land (a claim, and a flush the loop may be
 * in), the threads start about nthreads * that / handler time tasks;
 * hold twice that.  Handlers of a millisecond get a few, of a
 * microsecond hundreds, of a second none: a task is not kept from an
 * idle worker elsewhere for longer than a claim takes.  prefetch >= 0
 * caps it.  Then tell the threads when to wake the loop to claim: at
 * half of it left.
 */
static void
engine_size_ahead(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	int64_t			 ns, n;
	double			 land, ahead;
	int			 cap, threads;

	pthread_mutex_lock(&p->mu);
	ns = p->run_ns;
	n = p->run_n;
	p->run_ns = p->run_n = 0;
	threads = p->nworkers;
	pthread_mutex_unlock(&p->mu);
	if (n > 0)
		spool__engine_avg(&e->run_ns, (double)ns / (double)n);
	cap = p->o.prefetch >= 0 ? p->o.prefetch : AHEAD_MAX;
	if (p->ahead_fixed >= 0) {
		e->ahead = p->ahead_fixed < cap ? p->ahead_fixed : cap;
	} else if (e->run_ns < 0) {
		e->ahead = 0;	/* nothing known yet: claim for idle threads */
	} else {
		land = (e->claim_ns > 0 ? e->claim_ns : 0) +
		    (e->flush_ns > 0 ? e->flush_ns : 0) + 200000.0;
		ahead = 2.0 * threads * land / (e->run_ns + 1000.0);
		e->ahead = ahead >= cap ? cap : (int)(ahead + 0.5);
	}
	pthread_mutex_lock(&p->mu);
	p->refill_at = e->ahead / 2;
	pthread_mutex_unlock(&p->mu);
}

/* The index of queue name among the pool's queues. */
static size_t
engine_queue_index(spool_pool *p, const char *name)
{
	size_t	 i;

	for (i = 0; i < p->o.nqueues; i++)
		if (strcmp(p->queues[i], name) == 0)
			return (i);
	return (0);
}

/* Claim up to want tasks from the queues named, into e->claimed. */
static int
engine_claim_from(spool_pool *p, const char *const *queues, size_t nq,
    size_t want, size_t *got, int locked)
{
	struct spool__engine	*e = p->engine;
	spool_claim_opts	 co = SPOOL_CLAIM_OPTS_INIT;
	size_t			 n = 0;
	int			 rc;

	if (want == 0)
		return (SPOOL_OK);
	co.owner = p->owner;
	co.lease_ms = p->o.lease_ms;
	rc = locked ? spool__claim_locked(e->claimed + *got, &n, p->q, queues,
	    nq, want, &co, 0) : spool__claim_many(e->claimed + *got, &n, p->q,
	    queues, nq, want, &co, 0);
	*got += n;
	return (rc == SPOOL_EEMPTY ? SPOOL_OK : rc);
}

/* Claim want tasks following the pool's strategy, in transactions of
 * their own, or (locked) in the one open. */
int
spool__engine_claim_strategy(spool_pool *p, size_t want, size_t *got,
    int locked)
{
	struct spool__engine	*e = p->engine;
	const char *const	*qs = p->o.queues;
	size_t			 nq = p->o.nqueues, i, n, best, share[64];
	int64_t			 total_w = 0;
	int			 rc = SPOOL_OK;

	*got = 0;
	if (p->limits != NULL) {
		/* Each queue up to its limit, in order. */
		int	 room[64];

		pthread_mutex_lock(&p->mu);
		for (i = 0; i < nq; i++)
			room[i] = p->limits[i] - p->active[i];
		pthread_mutex_unlock(&p->mu);
		for (i = 0; i < nq && *got < want && rc == SPOOL_OK; i++)
			if (room[i] > 0)
				rc = engine_claim_from(p, &qs[i], 1,
				    (size_t)room[i] < want - *got ?
				    (size_t)room[i] : want - *got, got, locked);
		return (rc);
	}
	if (nq == 1 || p->o.strategy == SPOOL_STRATEGY_MERGE)
		return (engine_claim_from(p, qs, nq, want, got, locked));
	if (p->o.strategy == SPOOL_STRATEGY_PRIORITY) {
		for (i = 0; i < nq && *got < want && rc == SPOOL_OK; i++)
			rc = engine_claim_from(p, &qs[i], 1, want - *got, got,
			    locked);
		return (rc);
	}
	/* Weighted and round-robin: deal the wanted tasks out one at a time
	 * by smooth weighted round robin, whose credits carry over from one
	 * claim to the next (so the shares hold even when each claim is for
	 * one task), claim each queue's share, then take what is left from
	 * any queue that has more. */
	for (i = 0; i < nq; i++) {
		total_w += p->o.strategy == SPOOL_STRATEGY_WEIGHTED ?
		    p->o.weights[i] : 1;
		share[i] = 0;
	}
	for (n = 0; n < want; n++) {
		for (best = 0, i = 0; i < nq; i++) {
			e->credit[i] += p->o.strategy ==
			    SPOOL_STRATEGY_WEIGHTED ? p->o.weights[i] : 1;
			if (e->credit[i] > e->credit[best])
				best = i;
		}
		e->credit[best] -= total_w;
		share[best]++;
	}
	for (i = 0; i < nq && *got < want && rc == SPOOL_OK; i++)
		if (share[i] > 0)
			rc = engine_claim_from(p, &qs[i], 1, share[i], got,
			    locked);
	if (rc == SPOOL_OK && *got < want)
		rc = engine_claim_from(p, qs, nq, want - *got, got, locked);
	return (rc);
}

/* When the next scheduled task of any queue is due, or 0. */
static int64_t
engine_next_due(spool_pool *p, int64_t now)
{
	struct spool__q_next_due_row	 r;
	struct spool__cur		 c;
	int64_t				 next = 0;
	size_t				 i;

	for (i = 0; i < p->o.nqueues; i++) {
		/* due_ms is NULL (read 0) when nothing is scheduled; a due
		 * time is after now, so never 0. */
		if (spool__q_next_due(p->q, &c, &(struct spool__q_next_due_in){
		    .queue = p->queues[i], .now_ms = now }) == SPOOL_OK &&
		    spool__q_next_due_next(&c, &r) == 1 && r.due_ms != 0 &&
		    (next == 0 || r.due_ms < next))
			next = r.due_ms;
		spool__cur_end(&c);
	}
	return (next);
}

/* PRAGMA data_version: changes when another connection commits. */
int64_t
spool__engine_data_version(spool_pool *p)
{
	struct spool__q_data_version_row	 r;
	struct spool__cur			 c;
	int64_t					 v = -1;

	if (spool__q_data_version(p->q, &c) == SPOOL_OK &&
	    spool__q_data_version_next(&c, &r) == 1)
		v = r.data_version;
	spool__cur_end(&c);
	return (v);
}

/* How many tasks to claim now: for idle threads, and ahead of them once
 * half of what is held ahead is gone; 0 if none. */
int64_t
spool__engine_claim_want(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	int64_t			 want;

	if (e->draining || p->st.shedding)
		return (0);
	engine_size_ahead(p);
	pthread_mutex_lock(&p->mu);
	if (p->holding) {	/* nothing can be committed: claim nothing */
		pthread_mutex_unlock(&p->mu);
		return (0);
	}
	p->room_freed = 0;	/* this claim sees the room */
	want = (int64_t)(p->nworkers - p->busy) - (int64_t)p->ready.n;
	/* Ahead of the threads only once half of what is held is gone:
	 * fewer, larger claims. */
	if (want > 0 || (int64_t)p->ready.n <= e->ahead / 2)
		want += e->ahead;
	pthread_mutex_unlock(&p->mu);
	if (p->o.max_tasks > 0 && want > p->o.max_tasks - e->claimed_total)
		want = p->o.max_tasks - e->claimed_total;
	if (want > (int64_t)e->nclaimed_max)
		want = (int64_t)e->nclaimed_max;
	if (want > SPOOL__CLAIM_MAX)
		want = SPOOL__CLAIM_MAX;
	return (want > 0 ? want : 0);
}

/* Hand the got jobs just claimed (e->claimed) to the threads. */
void
spool__engine_claim_take(spool_pool *p, size_t got)
{
	struct spool__engine	*e = p->engine;
	spool_job		*job;
	size_t			 i;

	for (i = 0; i < got; i++) {
		job = e->claimed[i];
		job->pool = p;
		job->phase = SPOOL__PREFETCHED;
		job->qidx = (int)engine_queue_index(p, job->queue);
		job->timeout_ms = p->o.timeout_ms > 0 ? p->o.timeout_ms :
		    job->stage_timeout_ms > 0 ? job->stage_timeout_ms :
		    e->conf[job->qidx].timeout_ms;
		spool__engine_reg_add(e, job);
	}
	if (got > 0) {
		pthread_mutex_lock(&p->mu);
		for (i = 0; i < got; i++) {
			if (p->active != NULL)
				p->active[e->claimed[i]->qidx]++;
			spool__jobq_push(&p->ready, e->claimed[i]);
		}
		p->st.claimed += (int64_t)got;
		if (got == 1)
			pthread_cond_signal(&p->work_cv);
		else
			pthread_cond_broadcast(&p->work_cv);
		pthread_mutex_unlock(&p->mu);
		e->claimed_total += (int64_t)got;
		e->empty = 0;
		e->poll_ms = CLAIM_POLL_MIN_MS;
	}
}

/* Free the got jobs just claimed in a transaction that was rolled back. */
void
spool__engine_claim_drop(spool_pool *p, size_t got)
{
	struct spool__engine	*e = p->engine;
	size_t			 i;

	for (i = 0; i < got; i++) {
		spool_job_free(e->claimed[i]);
		e->claimed[i] = NULL;
	}
}

/* Claim for idle threads (and ahead of them), and hand the jobs over. */
void
spool__engine_claim(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	int64_t			 now, want, delay, t0;
	size_t			 got = 0;
	int			 rc;

	if ((want = spool__engine_claim_want(p)) == 0)
		return;
	spool__engine_sync(p, 0);
	t0 = spool__clock_ns(CLOCK_MONOTONIC);
	rc = spool__engine_claim_strategy(p, (size_t)want, &got, 0);
	if (got > 0) {
		spool__engine_avg(&e->claim_ns,
		    (double)(spool__clock_ns(CLOCK_MONOTONIC) - t0));
		if (rc == SPOOL_OK)
			spool__crash("claim");
	}
	now = spool__engine_now(p);
	spool__engine_claim_take(p, got);
	if (rc != SPOOL_OK) {
		/* Busy or failing: say so once, and try again later. */
		if (!e->claim_failed)
			spool__engine_error(p, rc);
		e->claim_failed = 1;
		spool__engine_arm(e->ev_claim, 100);
		return;
	}
	e->claim_failed = 0;
	if (got > 0)
		return;
	/* Nothing due: sleep until a commit elsewhere, a local wake, or the
	 * next scheduled task, polling data_version meanwhile. */
	e->empty = 1;
	e->next_due_ms = engine_next_due(p, now);
	e->data_version = spool__engine_data_version(p);
	delay = e->poll_ms;
	if (e->next_due_ms != 0 && e->next_due_ms - now < delay)
		delay = e->next_due_ms - now;
	spool__engine_arm(e->ev_claim, delay);
	spool__engine_check_finished(p);
}

#ifdef HAVE_SYS_INOTIFY_H
/* The WAL was written: another process may have committed.  The write
 * comes just before its commit is visible, so poll data_version from 1
 * ms again instead of trusting this one look. */
static void
engine_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool		*p = arg;
	struct spool__engine	*e = p->engine;
	char			 buf[4096]
			    __attribute__((aligned(__alignof__(uint32_t))));
	ssize_t			 n, off;
	uint32_t		 mask;

	(void)what;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		for (off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;
		    off += (ssize_t)offsetof(struct inotify_event, name) +
		    ((struct inotify_event *)(buf + off))->len) {
			mask = ((struct inotify_event *)(buf + off))->mask;
			/* The WAL was removed or replaced: the watch is
			 * gone, so poll as if there had been none. */
			if (mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
				e->poll_max_ms = CLAIM_POLL_MAX_MS;
		}
	if (!e->empty || e->draining)
		return;		/* busy claiming anyway */
	e->poll_ms = CLAIM_POLL_MIN_MS;
	spool__engine_arm(e->ev_claim, 0);
}

#endif

/* Watch the WAL for writes, if the system can; else poll faster. */
void
spool__engine_watch(spool_pool *p)
{
	struct spool__engine	*e = p->engine;

	e->notify_fd = -1;
	e->poll_max_ms = CLAIM_POLL_MAX_MS;
#ifdef HAVE_SYS_INOTIFY_H
	{
		char	 wal[4096];
		int	 fd;

		if (snprintf(wal, sizeof wal, "%s-wal", p->path) >=
		    (int)sizeof wal ||
		    (fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
			return;
		if (inotify_add_watch(fd, wal, IN_MODIFY | IN_DELETE_SELF |
		    IN_MOVE_SELF) == -1 ||
		    (e->ev_notify = event_new(e->base, fd, EV_READ | EV_PERSIST,
		    engine_notify_cb, p)) == NULL ||
		    event_add(e->ev_notify, NULL) != 0) {
			if (e->ev_notify != NULL)
				event_free(e->ev_notify);
			e->ev_notify = NULL;
			close(fd);
			return;
		}
		e->notify_fd = fd;
		e->poll_max_ms = CLAIM_POLL_WATCH_MS;
	}
#endif
}

/* The claim timer: claim if anything may have changed. */
void
spool__engine_claim_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool		*p = arg;
	struct spool__engine	*e = p->engine;
	int64_t			 now = spool__engine_now(p), delay;

	(void)fd;
	(void)what;
	if (e->empty && !e->poke && (e->next_due_ms == 0 ||
	    now < e->next_due_ms) &&
	    spool__engine_data_version(p) == e->data_version) {
		if ((e->poll_ms *= 2) > e->poll_max_ms)
			e->poll_ms = e->poll_max_ms;
		delay = e->poll_ms;
		if (e->next_due_ms != 0 && e->next_due_ms - now < delay)
			delay = e->next_due_ms - now;
		spool__engine_arm(e->ev_claim, delay);
		return;
	}
	e->poke = 0;
	spool__engine_claim(p);
}
