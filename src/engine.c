/*
 * engine.c -- the event loop of a worker pool (and the small loop of a
 * buffered producer, at the end), and the only file that
 * knows libevent.  One thread runs it; it owns the pool's database
 * connection and does all of the pool's database work:
 *
 *   notice  another process's commit: inotify tells of a write to the WAL
 *           (then data_version is polled from 1 ms for a moment, as the
 *           write comes just before the commit is visible); polling with a
 *           backoff to 16 ms is the fallback where inotify is missing;
 *   claim   for idle threads and a few more, sized from what the engine
 *           sees (handler time, claim and commit time), in one transaction
 *           (not synced: a lost claim only makes a task ready again); a
 *           thread wakes the loop to claim again before the threads run
 *           dry; with nothing due, poll PRAGMA data_version with a short
 *           backoff and sleep no later than the next scheduled task;
 *   start   write when handlers started, for those still running (a task
 *           claimed ahead of its thread reads as claimed until then);
 *   flush   commit the outcomes of finished jobs together (group commit,
 *           synced) every flush_interval_ms or flush_count outcomes;
 *   renew   extend every lease the pool holds, one UPDATE per queue, at a
 *           third of the shortest lease; a lease not renewed was lost;
 *   cancel  every 250 ms, if a commit (another connection's, or a flush
 *           of ours that settled a pipeline) came meanwhile, look for
 *           cancellation requests on the leases held, and tell their
 *           handlers (an exec'd command gets SIGTERM) at once;
 *   reap    return the expired leases of dead workers;
 *   tick    the workers row, timeouts, autoscaling, CPU load shedding,
 *           the exclusive lock, retention pruning, on_tick;
 *   signals SIGINT/SIGTERM drain; a second one quits.
 *
 * Worker threads wake the loop with event_active(), made thread-safe by
 * evthread_use_pthreads() before any event base exists.  The registry of
 * held jobs (every job the pool holds a lease for) belongs to this thread.
 */
#include "config.h"

#include <event2/event.h>
#include <event2/thread.h>

#include <sys/resource.h>
#ifdef HAVE_SYS_INOTIFY_H
#include <sys/inotify.h>
#endif

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool-int.h"
#include "query-gen.h"

#define ENGINE_BUCKETS		4096	/* registry hash buckets */
#define CLAIM_POLL_MIN_MS	1	/* idle polling backoff ... */
#define CLAIM_POLL_MAX_MS	16	/* ... doubling to this */
#define CLAIM_POLL_WATCH_MS	250	/* ... or this with inotify watching */
#define FLUSH_RETRY_MAX_MS	1000	/* a failing flush retries at most this late */
#define LOCK_LEASE_MS		30000	/* the exclusive lock's lease */
#define PRUNE_EVERY_MS		60000
#define STALE_WORKER_MS		300000	/* workers rows older than this go */
#define START_WRITE_MS		10	/* a start is written at most this late */
#define CANCEL_POLL_MS		250	/* cancellations reach handlers this fast */
#define AHEAD_MAX		1024	/* claimed ahead of threads, at most */

struct spool__engine {
	struct event_base	*base;
	struct event		*ev_wake;
	struct event		*ev_claim;
	struct event		*ev_flush;
	struct event		*ev_start;
	struct event		*ev_cancel;
	struct event		*ev_notify;	/* inotify: the WAL was written */
	int			 notify_fd;	/* -1: none, poll */
	int64_t			 poll_max_ms;
	struct event		*ev_renew;
	struct event		*ev_reap;
	struct event		*ev_tick;
	struct event		*ev_shutdown;
	struct event		*ev_maxtime;
	struct event		*ev_sig[2];

	spool_job		*bucket[ENGINE_BUCKETS];
	size_t			 held;
	unsigned		 epoch;

	spool_job		**claimed;	/* scratch for one claim */
	size_t			 nclaimed_max;
	spool_queue_opts	*conf;		/* per queue, refreshed each tick */
	int64_t			 min_lease_ms;
	int			 synced;	/* synchronous=FULL now */

	int			 empty;		/* the last claim found nothing */
	int			 poke;		/* claim now, whatever the poll says */
	int64_t			 poll_ms;	/* idle polling backoff */
	int64_t			 next_due_ms;	/* earliest scheduled task, or 0 */
	int64_t			 data_version;
	int64_t			 cancel_version;	/* data_version, last cancel poll */
	int64_t			 claimed_total;
	int64_t			*credit;	/* per queue: weighted shares owed */
	int64_t			 flush_retry_ms;
	int64_t			 hold_since_ms;	/* when commits began to fail */
	int			 ahead;		/* claim this many ahead of threads */
	double			 run_ns;	/* handler time, moving average */
	double			 claim_ns;	/* a claim's time, the same */
	double			 flush_ns;	/* a flush's time, the same */
	struct engine_start	*starts;	/* the starts written last */
	size_t			 nstarts;
	int			 flush_noclaim;	/* the last flush's claim failed */
	int			 nsig;		/* SIGINT/SIGTERM received */
	int			 claim_failed;	/* last claim error, to log once */

	unsigned long long	 cpu_busy, cpu_total;
	int64_t			 last_prune_ms;
	int64_t			 last_log_ms;	/* the summary line */
	int64_t			 proc_ms;	/* the last process sample */
	double			 proc_cpu_s;
	int			 draining;
	int			 stop_req;	/* from spool_pool_stop: 1, 2 */
	pthread_t		 thread;	/* the one running the loop (under p->mu) */
	int			 running;	/* (under p->mu) */
	int			 rc;
};

/* A handler's start, to be written. */
struct engine_start {
	int64_t			 id;
	int64_t			 token;
	int64_t			 ms;
};

static pthread_once_t	 engine_once = PTHREAD_ONCE_INIT;
static int		 engine_threads_ok;

static void	 engine_claim(spool_pool *);
static void	 engine_flush(spool_pool *);
static void	 engine_drain(spool_pool *);
static void	 engine_check_finished(spool_pool *);
static void	 engine_starts_undo(spool_pool *);

/* Let libevent be used from several threads (once per process). */
static void
engine_init_threads(void)
{
	engine_threads_ok = evthread_use_pthreads() == 0;
}

static int64_t
engine_now(spool_pool *p)
{
	return (spool__now_ms(p->q));
}

/* Nanoseconds of the monotonic clock, for the engine's own costs. */
static int64_t
engine_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

/* Fold a sample into a moving average (a negative average: none yet). */
static void
engine_avg(double *avg, double sample)
{
	*avg = *avg < 0 ? sample : 0.8 * *avg + 0.2 * sample;
}

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
		engine_avg(&e->run_ns, (double)ns / (double)n);
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

/* Arm a one-shot timer ms from now. */
static void
engine_arm(struct event *ev, int64_t ms)
{
	struct timeval	 tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(ev, &tv);
}

/* Record a failure on the pool (the CLI logs it). */
static void
engine_error(spool_pool *p, int rc)
{
	spool__pool_error(p, rc, spool_errmsg(p->q));
}

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
	e->hold_since_ms = engine_now(p);
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
	    "outcome%s); starting tasks", (double)(engine_now(p) -
	    e->hold_since_ms) / 1000.0, committed, committed == 1 ? "" : "s");
	spool__pool_say(p, line);
}

/* Choose whether commits are synced: claims and renewals need not be,
 * outcomes must be. */
static void
engine_sync(spool_pool *p, int full)
{
	struct spool__engine	*e = p->engine;

	if (e->synced != full && spool__set_sync(p->q, full) == SPOOL_OK)
		e->synced = full;
}

/* The registry of held jobs, by id. */
static size_t
reg_slot(int64_t id)
{
	return ((size_t)((uint64_t)id * 0x9e3779b97f4a7c15ULL >> 52) %
	    ENGINE_BUCKETS);
}

static void
reg_add(struct spool__engine *e, spool_job *job)
{
	size_t	 s = reg_slot(job->id);

	job->hnext = e->bucket[s];
	e->bucket[s] = job;
	e->held++;
}

static void
reg_del(struct spool__engine *e, spool_job *job)
{
	spool_job	**jp;

	for (jp = &e->bucket[reg_slot(job->id)]; *jp != NULL;
	    jp = &(*jp)->hnext)
		if (*jp == job) {
			*jp = job->hnext;
			job->hnext = NULL;
			e->held--;
			return;
		}
}

static spool_job *
reg_find(struct spool__engine *e, int64_t id)
{
	spool_job	*job;

	for (job = e->bucket[reg_slot(id)]; job != NULL; job = job->hnext)
		if (job->id == id)
			return (job);
	return (NULL);
}

/* Read every queue's settings (leases and timeouts come from them). */
static void
engine_read_conf(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	spool_queue_opts	 def = SPOOL_QUEUE_OPTS_INIT;
	size_t			 i;

	e->min_lease_ms = 0;
	for (i = 0; i < p->o.nqueues; i++) {
		if (spool__queue_read(&e->conf[i], p->q, p->queues[i]) != 0) {
			e->conf[i] = def;
			e->conf[i].lease_ms = 30000;	/* the schema's default */
		}
		if (p->o.lease_ms > 0)
			e->conf[i].lease_ms = p->o.lease_ms;
		if (e->min_lease_ms == 0 || e->conf[i].lease_ms < e->min_lease_ms)
			e->min_lease_ms = e->conf[i].lease_ms;
	}
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
static int
engine_claim_strategy(spool_pool *p, size_t want, size_t *got, int locked)
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
static int64_t
engine_data_version(spool_pool *p)
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
static int64_t
engine_claim_want(spool_pool *p)
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
static void
engine_claim_take(spool_pool *p, size_t got)
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
		reg_add(e, job);
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
static void
engine_claim_drop(spool_pool *p, size_t got)
{
	struct spool__engine	*e = p->engine;
	size_t			 i;

	for (i = 0; i < got; i++) {
		spool_job_free(e->claimed[i]);
		e->claimed[i] = NULL;
	}
}

/* Claim for idle threads (and ahead of them), and hand the jobs over. */
static void
engine_claim(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	int64_t			 now, want, delay, t0;
	size_t			 got = 0;
	int			 rc;

	if ((want = engine_claim_want(p)) == 0)
		return;
	engine_sync(p, 0);
	t0 = engine_ns();
	rc = engine_claim_strategy(p, (size_t)want, &got, 0);
	if (got > 0) {
		engine_avg(&e->claim_ns, (double)(engine_ns() - t0));
		if (rc == SPOOL_OK)
			spool__crash("claim");
	}
	now = engine_now(p);
	engine_claim_take(p, got);
	if (rc != SPOOL_OK) {
		/* Busy or failing: say so once, and try again later. */
		if (!e->claim_failed)
			engine_error(p, rc);
		e->claim_failed = 1;
		engine_arm(e->ev_claim, 100);
		return;
	}
	e->claim_failed = 0;
	if (got > 0)
		return;
	/* Nothing due: sleep until a commit elsewhere, a local wake, or the
	 * next scheduled task, polling data_version meanwhile. */
	e->empty = 1;
	e->next_due_ms = engine_next_due(p, now);
	e->data_version = engine_data_version(p);
	delay = e->poll_ms;
	if (e->next_due_ms != 0 && e->next_due_ms - now < delay)
		delay = e->next_due_ms - now;
	engine_arm(e->ev_claim, delay);
	engine_check_finished(p);
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
	engine_arm(e->ev_claim, 0);
}

#endif

/* Watch the WAL for writes, if the system can; else poll faster. */
static void
engine_watch(spool_pool *p)
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
static void
engine_claim_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool		*p = arg;
	struct spool__engine	*e = p->engine;
	int64_t			 now = engine_now(p), delay;

	(void)fd;
	(void)what;
	if (e->empty && !e->poke && (e->next_due_ms == 0 ||
	    now < e->next_due_ms) && engine_data_version(p) == e->data_version) {
		if ((e->poll_ms *= 2) > e->poll_max_ms)
			e->poll_ms = e->poll_max_ms;
		delay = e->poll_ms;
		if (e->next_due_ms != 0 && e->next_due_ms - now < delay)
			delay = e->next_due_ms - now;
		engine_arm(e->ev_claim, delay);
		return;
	}
	e->poke = 0;
	engine_claim(p);
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
	reg_del(p->engine, job);
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
		if ((job = reg_find(e, e->starts[k].id)) != NULL)
			job->start_rec = 0;
	p->starts_pending++;
	pthread_mutex_unlock(&p->mu);
	e->nstarts = 0;
}

/* The start timer: write the starts in a transaction of their own (not
 * synced: a start lost to a power cut is only a time not shown). */
static void
engine_start_cb(evutil_socket_t fd, short what, void *arg)
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
	engine_sync(p, 0);
	if ((rc = spool__begin(p->q)) == SPOOL_OK) {
		if ((rc = engine_write_starts(p)) == SPOOL_OK) {
			if ((rc = spool__commit(p->q)) != SPOOL_OK)
				engine_starts_undo(p);
		} else
			spool__rollback(p->q);
	}
	if (rc != SPOOL_OK) {
		engine_error(p, rc);
		engine_arm(p->engine->ev_start, 100);
	}
}

/* Commit the outcomes of every finished job in one synced transaction.
 * On failure they go back on the done list and the flush is retried. */
static void
engine_flush(spool_pool *p)
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

	engine_sync(p, 1);
	t0 = engine_ns();
	now = engine_now(p);
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
	if (!e->flush_noclaim && (want = engine_claim_want(p)) > 0) {
		t1 = engine_ns();
		rc = p->fail_flush_claims ? spool__error(p->q, SPOOL_EIO,
		    "claim: I/O error (test)") :
		    engine_claim_strategy(p, (size_t)want, &got, 1);
		if (rc != SPOOL_OK) {
			spool__rollback(p->q);
			engine_claim_drop(p, got);
			engine_starts_undo(p);
			e->flush_noclaim = 1;
			hold = 0;
			goto retry;
		}
		if (got > 0)
			engine_avg(&e->claim_ns, (double)(engine_ns() - t1));
	}
	spool__crash("flush");
	if ((rc = spool__commit(p->q)) != SPOOL_OK) {
		engine_claim_drop(p, got);
		engine_starts_undo(p);
		goto retry;
	}
	spool__crash("flushed");
	e->flush_noclaim = 0;
	engine_unhold(p, list.n);
	engine_claim_take(p, got);
	engine_avg(&e->flush_ns, (double)(engine_ns() - t0));
	e->flush_retry_ms = 0;
	/* Our own commit may have asked for cancels (a pipeline's fail_fast
	 * settled here), which data_version does not show: look next time. */
	e->cancel_version = -1;
	now = engine_now(p);
	pthread_mutex_lock(&p->mu);	/* once for the group, not per job */
	for (job = list.head; job != NULL; job = job->next)
		engine_count_locked(p, job, now);
	pthread_mutex_unlock(&p->mu);
	for (job = list.head; job != NULL; job = nx) {
		nx = job->next;
		engine_report(p, job);
	}
	engine_sync(p, 0);
	return;

retry:
	/* Keep the outcomes: a later flush commits them. */
	engine_error(p, rc);
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
	engine_arm(e->ev_flush, e->flush_retry_ms);
}

static void
engine_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool	*p = arg;

	(void)fd;
	(void)what;
	engine_flush(p);
	engine_claim(p);
	engine_check_finished(p);
}

/* Workers finished jobs, a thread exited, or someone asked for a claim
 * or a stop. */
static void
engine_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool		*p = arg;
	struct spool__engine	*e = p->engine;
	size_t			 ndone;
	int			 stop, starts;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&p->mu);
	p->wake_pending = 0;
	ndone = p->done.n;
	starts = p->starts_pending;
	stop = e->stop_req;
	e->stop_req = 0;
	pthread_mutex_unlock(&p->mu);
	if (starts > 0 && !evtimer_pending(e->ev_start, NULL))
		engine_arm(e->ev_start, START_WRITE_MS);
	if (stop == 2) {
		spool__engine_stop(p, 1);
		return;
	}
	if (stop == 1)
		engine_drain(p);
	if (ndone >= (size_t)p->o.flush_count || (ndone > 0 && e->draining))
		engine_flush(p);
	else if (ndone > 0 && !evtimer_pending(e->ev_flush, NULL))
		engine_arm(e->ev_flush, p->o.flush_interval_ms);
	e->poke = 1;
	engine_claim(p);
	engine_check_finished(p);
}

/* Extend every lease the pool holds; jobs whose lease was not renewed
 * lost it: their handlers are told, unstarted ones are dropped. */
static void
engine_renew_cb(evutil_socket_t fd, short what, void *arg)
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
	engine_sync(p, 0);
	if ((rc = spool__begin(p->q)) != SPOOL_OK) {
		engine_error(p, rc);
		return;
	}
	e->epoch++;
	now = engine_now(p);
	for (i = 0; i < p->o.nqueues; i++) {
		if ((rc = spool__q_renew_leases(p->q, &c,
		    &(struct spool__q_renew_leases_in){ .owner = p->owner,
		    .queue = p->queues[i],
		    .until_ms = now + e->conf[i].lease_ms })) == SPOOL_OK)
			while ((rc = spool__q_renew_leases_next(&c, &r)) == 1) {
				job = reg_find(e, r.id);
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
			engine_error(p, rc);
			return;
		}
	}
	if ((rc = spool__commit(p->q)) != SPOOL_OK) {
		engine_error(p, rc);
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
			reg_del(e, job);
			spool_job_free(job);
		}
}

/* Tell the handlers of held jobs whose cancellation was asked for; hand
 * back those not started (their release ends them cancelled).  Asked
 * only when another connection committed since the last time. */
static void
engine_cancel_cb(evutil_socket_t fd, short what, void *arg)
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
	if (e->held == 0 || (v = engine_data_version(p)) == e->cancel_version)
		return;
	e->cancel_version = v;
	if ((rc = spool__q_cancel_requests(p->q, &c,
	    &(struct spool__q_cancel_requests_in){ .owner = p->owner })) < 0) {
		e->cancel_version = -1;		/* ask again next time */
		engine_error(p, rc);
		return;
	}
	while ((rc = spool__q_cancel_requests_next(&c, &r)) == 1) {
		job = reg_find(e, r.id);
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
				engine_arm(e->ev_flush, p->o.flush_interval_ms);
		}
		pthread_mutex_unlock(&p->mu);
	}
	if (rc < 0) {
		e->cancel_version = -1;		/* ask again next time */
		engine_error(p, rc);
	}
}

/* Return the expired leases of dead workers. */
static void
engine_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool	*p = arg;
	int64_t		 n;
	int		 rc;

	(void)fd;
	(void)what;
	engine_sync(p, 0);
	if ((rc = spool_reap(&n, p->q)) != SPOOL_OK)
		engine_error(p, rc);
	else if (n > 0)
		p->engine->poke = 1;	/* reaped tasks may be due now */
}

/* Abandon a job whose handler does not return: commit verdict for it
 * (a timeout, or a hand-back at shutdown) through a copy, and let its
 * worker free the original when it returns. */
static void
engine_abandon(spool_pool *p, spool_job *job, int verdict, const char *why)
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
	c->run_end_ms = engine_now(p);
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
	reg_del(e, job);
	reg_add(e, c);
	/* Its slot of the queue's limit stays taken until the handler
	 * returns (pool_worker gives it back). */
	spool__jobq_push(&p->done, c);
}

/* Tell handlers that ran past their timeout to stop; abandon those that
 * keep running well after it. */
static void
engine_timeouts(spool_pool *p, int64_t now)
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
			engine_abandon(p, job, SPOOL__V_TIMEOUT, why);
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
		engine_flush(p);
}

/* Grow the pool while the backlog exceeds twice the busy threads. */
static void
engine_autoscale(spool_pool *p, int64_t now)
{
	struct spool__q_backlog_row	 r;
	struct spool__cur		 c;
	int64_t				 backlog = 0;
	int				 busy, n, add;
	size_t				 i;

	pthread_mutex_lock(&p->mu);
	busy = p->busy - p->stuck;
	n = p->nworkers - p->stuck;
	pthread_mutex_unlock(&p->mu);
	if (n >= p->o.max_workers || busy < n)
		return;
	for (i = 0; i < p->o.nqueues; i++) {
		if (spool__q_backlog(p->q, &c, &(struct spool__q_backlog_in){
		    .queue = p->queues[i], .now_ms = now,
		    .max = 2 * p->o.max_workers + 1 }) == SPOOL_OK &&
		    spool__q_backlog_next(&c, &r) == 1)
			backlog += r.n;
		spool__cur_end(&c);
	}
	if (backlog <= 2 * busy)
		return;
	add = (int)((backlog - 2 * busy + 1) / 2);
	pthread_mutex_lock(&p->mu);
	while (add-- > 0 && p->nworkers - p->stuck < p->o.max_workers &&
	    spool__pool_spawn(p) == SPOOL_OK)
		continue;
	pthread_mutex_unlock(&p->mu);
}

/* The machine's CPU use since the last call, from /proc/stat; -1 if it
 * cannot be read. */
static double
engine_cpu(struct spool__engine *e)
{
	unsigned long long	 v[8] = { 0 }, busy, total;
	double			 use = -1;
	FILE			*f;
	int			 n;

	if ((f = fopen("/proc/stat", "re")) == NULL)
		return (-1);
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
	    &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 4)
		return (-1);
	total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
	busy = total - v[3] - v[4];	/* minus idle and iowait */
	if (e->cpu_total != 0 && total > e->cpu_total)
		use = (double)(busy - e->cpu_busy) /
		    (double)(total - e->cpu_total);
	e->cpu_busy = busy;
	e->cpu_total = total;
	return (use);
}

/* The process's CPU time and resident memory, for the metrics. */
static void
engine_proc(spool_pool *p, struct spool__engine *e, int64_t now)
{
	struct rusage	 ru;
	double		 user = 0, sys = 0, use = -1;
	long		 pages = 0, rss = 0;
	FILE		*f;

	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
		sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	}
	if (e->proc_ms != 0 && now > e->proc_ms)
		use = (user + sys - e->proc_cpu_s) / ((double)(now -
		    e->proc_ms) / 1000.0);
	e->proc_ms = now;
	e->proc_cpu_s = user + sys;
	if ((f = fopen("/proc/self/statm", "re")) != NULL) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	pthread_mutex_lock(&p->mu);
	p->pm.cpu_user_s = user;
	p->pm.cpu_system_s = sys;
	if (use >= 0)
		p->pm.cpu_process = use;
	p->pm.rss_bytes = (int64_t)rss * sysconf(_SC_PAGESIZE);
	pthread_mutex_unlock(&p->mu);
}

/* Write the pool's workers row. */
static void
engine_worker_row(spool_pool *p, int64_t now)
{
	char	 json[4096];
	size_t	 i, off = 0;
	int	 busy, n;

	off += (size_t)snprintf(json + off, sizeof json - off, "[");
	for (i = 0; i < p->o.nqueues && off < sizeof json - 4; i++) {
		const char	*s;

		off += (size_t)snprintf(json + off, sizeof json - off, "%s\"",
		    i ? "," : "");
		for (s = p->queues[i]; *s != '\0' && off < sizeof json - 4; s++)
			if (*s == '"' || *s == '\\') {
				json[off++] = '\\';
				json[off++] = *s;
			} else
				json[off++] = *s;
		json[off++] = '"';
	}
	snprintf(json + off, sizeof json - off, "]");
	pthread_mutex_lock(&p->mu);
	busy = p->busy;
	n = p->nworkers;
	pthread_mutex_unlock(&p->mu);
	engine_sync(p, 0);
	if (spool__worker_upsert(p->q, p->owner, p->host, (long)getpid(), json,
	    n, busy, p->started_ms, now) != SPOOL_OK)
		engine_error(p, spool_errcode(p->q));
}

/* Housekeeping, once a tick. */
static void
engine_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool		*p = arg;
	struct spool__engine	*e = p->engine;
	spool_pool_stats	 st;
	int64_t			 now = engine_now(p), pruned;
	double			 cpu;

	(void)fd;
	(void)what;
	engine_read_conf(p);
	engine_worker_row(p, now);
	engine_timeouts(p, now);
	if (!e->draining)
		engine_autoscale(p, now);

	cpu = p->cpu_probe != NULL ? p->cpu_probe(p) : engine_cpu(e);
	if (cpu >= 0) {
		pthread_mutex_lock(&p->mu);
		p->st.cpu = cpu;
		if (p->o.cpu_max > 0 && cpu > p->o.cpu_max)
			p->st.shedding = 1;
		else if (p->st.shedding && cpu < 0.8 * p->o.cpu_max)
			p->st.shedding = 0;
		pthread_mutex_unlock(&p->mu);
	}
	if (p->o.exclusive != NULL && !e->draining &&
	    spool__lock_renew(p->q, p->o.exclusive, p->owner,
	    now + LOCK_LEASE_MS) == SPOOL_ELEASE) {
		engine_error(p, SPOOL_ELEASE);
		e->rc = SPOOL_ELEASE;
		engine_drain(p);
	}
	if (now - e->last_prune_ms >= PRUNE_EVERY_MS) {
		e->last_prune_ms = now;
		if (spool_prune(&pruned, p->q, NULL, -1) != SPOOL_OK)
			engine_error(p, spool_errcode(p->q));
	}
	engine_proc(p, e, now);
	/* Half a tick early rather than a whole tick late. */
	if (p->o.log_interval_ms > 0 && now - e->last_log_ms >=
	    p->o.log_interval_ms - p->o.tick_ms / 2) {
		if (e->last_log_ms != 0)
			spool__pool_log(p);
		e->last_log_ms = now;
	}
	if (p->o.on_tick != NULL) {
		spool_pool_stats_get(p, &st);
		p->o.on_tick(&st, p->o.cb_arg);
	}
	engine_claim(p);
	engine_check_finished(p);
}

/* max_time has passed: stop claiming and drain. */
static void
engine_maxtime_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	engine_drain(arg);
}

/* The shutdown timeout has passed: give up on running handlers, and
 * hand their tasks back for a later run without charging the attempt
 * (an operator's stop is not the task's failure). */
static void
engine_shutdown_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool		*p = arg;
	struct spool__engine	*e = p->engine;
	spool_job		*job, *nx;
	size_t			 i;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&p->mu);
	for (i = 0; i < ENGINE_BUCKETS; i++)
		for (job = e->bucket[i]; job != NULL; job = nx) {
			nx = job->hnext;
			if (job->phase != SPOOL__RUNNING)
				continue;
			spool__job_stop_set(job, SPOOL_STOP_SHUTDOWN);
			engine_abandon(p, job, SPOOL__V_RELEASE, "stopped: the "
			    "shutdown timeout passed while it ran");
			/* Ready again at once: an exec'd command gets
			 * SIGKILL within EXEC_POLL_MS; a handler of the
			 * library's that ignores spool_job_should_stop is
			 * in the position of one whose lease was lost. */
		}
	pthread_mutex_unlock(&p->mu);
	engine_flush(p);
	event_base_loopexit(e->base, NULL);
}

/* Stop claiming, hand back prefetched tasks, let running ones finish. */
static void
engine_drain(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	spool_job		*job;

	if (e->draining)
		return;
	e->draining = 1;
	evtimer_del(e->ev_claim);
	pthread_mutex_lock(&p->mu);
	if (p->stopping == 0)
		p->stopping = 1;
	while ((job = spool__jobq_pop(&p->ready)) != NULL) {
		job->verdict = SPOOL__V_RELEASE;
		job->phase = SPOOL__FINISHED;
		spool__pool_done_locked(p, job);
	}
	pthread_cond_broadcast(&p->work_cv);
	pthread_mutex_unlock(&p->mu);
	engine_flush(p);
	engine_arm(e->ev_shutdown, p->o.shutdown_timeout_ms);
	engine_check_finished(p);
}

/* Stop the loop when draining is over, or start draining when the work
 * is done (until empty, max tasks). */
static void
engine_check_finished(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	size_t			 i;
	int			 idle, freed;

	pthread_mutex_lock(&p->mu);
	freed = p->room_freed;
	/* A thread stuck in an abandoned handler holds nothing: its task's
	 * timeout is committed, and spool_pool_free waits for the thread.
	 * But under per-queue limits it holds its queue's slot, so a claim
	 * that found nothing may have found no room, not no work. */
	idle = p->busy - p->stuck == 0 && p->ready.n == 0 && p->done.n == 0;
	for (i = 0; p->active != NULL && i < p->o.nqueues; i++)
		if (p->active[i] > 0)
			idle = 0;
	pthread_mutex_unlock(&p->mu);
	if (!idle || e->held != 0)
		return;
	if (e->draining) {
		event_base_loopexit(e->base, NULL);
		return;
	}
	/* A slot freed (an abandoned handler returned) after the claim that
	 * found nothing: that claim may have found no room, not no work;
	 * the claim the freeing thread woke decides.  (Seen under ASan: a
	 * tick between the two ended an until-empty pipeline pool with one
	 * item never run.) */
	if (freed)
		return;
	if (((p->o.flags & SPOOL_POOL_UNTIL_EMPTY) && e->empty) ||
	    (p->o.max_tasks > 0 && e->claimed_total >= p->o.max_tasks))
		engine_drain(p);
}

/* SIGINT or SIGTERM: the first drains, the second quits. */
static void
engine_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	spool_pool	*p = arg;

	(void)what;
	/* The first signal drains (or, if a drain is under way already, only
	 * says so); the second quits. */
	if (++p->engine->nsig == 1) {
		char	 line[160];
		int	 busy;

		pthread_mutex_lock(&p->mu);
		busy = p->busy;
		pthread_mutex_unlock(&p->mu);
		snprintf(line, sizeof line, "signal %d: stopping; waiting up to "
		    "%.1f s for %d running task%s (a second signal quits at "
		    "once)", (int)sig, p->o.shutdown_timeout_ms / 1000.0, busy,
		    busy == 1 ? "" : "s");
		spool__pool_say(p, line);
		engine_drain(p);
	} else {
		pthread_mutex_lock(&p->mu);
		p->st.quit = (int)sig;
		pthread_mutex_unlock(&p->mu);
		spool__engine_stop(p, 1);
	}
}

/* Make the engine of p. */
int
spool__engine_new(spool_pool *p)
{
	struct spool__engine	*e;
	struct event_config	*cfg;

	pthread_once(&engine_once, engine_init_threads);
	if (!engine_threads_ok) {
		snprintf(p->errmsg, sizeof p->errmsg,
		    "libevent has no thread support");
		return (p->errcode = SPOOL_ERROR);
	}
	if ((e = calloc(1, sizeof *e)) == NULL)
		goto nomem;
	p->engine = e;
	e->notify_fd = -1;
	e->nclaimed_max = (size_t)p->o.max_workers + (size_t)(p->o.prefetch >= 0
	    ? p->o.prefetch : AHEAD_MAX);
	e->run_ns = e->claim_ns = e->flush_ns = -1;
	if ((e->claimed = calloc(e->nclaimed_max, sizeof *e->claimed)) ==
	    NULL || (e->starts = calloc((size_t)p->o.max_workers,
	    sizeof *e->starts)) == NULL ||
	    (e->conf = calloc(p->o.nqueues, sizeof *e->conf)) == NULL ||
	    (e->credit = calloc(p->o.nqueues, sizeof *e->credit)) == NULL)
		goto nomem;
	if ((cfg = event_config_new()) == NULL)
		goto nomem;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	e->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (e->base == NULL)
		goto nomem;
	e->ev_wake = event_new(e->base, -1, 0, engine_wake_cb, p);
	e->ev_claim = evtimer_new(e->base, engine_claim_cb, p);
	e->ev_flush = evtimer_new(e->base, engine_flush_cb, p);
	e->ev_start = evtimer_new(e->base, engine_start_cb, p);
	e->ev_cancel = event_new(e->base, -1, EV_PERSIST, engine_cancel_cb, p);
	e->ev_renew = event_new(e->base, -1, EV_PERSIST, engine_renew_cb, p);
	e->ev_reap = event_new(e->base, -1, EV_PERSIST, engine_reap_cb, p);
	e->ev_tick = event_new(e->base, -1, EV_PERSIST, engine_tick_cb, p);
	e->ev_shutdown = evtimer_new(e->base, engine_shutdown_cb, p);
	e->ev_maxtime = evtimer_new(e->base, engine_maxtime_cb, p);
	if (e->ev_wake == NULL || e->ev_claim == NULL || e->ev_flush == NULL ||
	    e->ev_start == NULL || e->ev_cancel == NULL ||
	    e->ev_renew == NULL || e->ev_reap == NULL || e->ev_tick == NULL ||
	    e->ev_shutdown == NULL || e->ev_maxtime == NULL)
		goto nomem;
	if (p->o.flags & SPOOL_POOL_SIGNALS) {
		e->ev_sig[0] = evsignal_new(e->base, SIGINT, engine_signal_cb, p);
		e->ev_sig[1] = evsignal_new(e->base, SIGTERM, engine_signal_cb, p);
		if (e->ev_sig[0] == NULL || e->ev_sig[1] == NULL)
			goto nomem;
	}
	e->poll_ms = CLAIM_POLL_MIN_MS;
	e->poll_max_ms = CLAIM_POLL_MAX_MS;
	return (SPOOL_OK);
nomem:
	snprintf(p->errmsg, sizeof p->errmsg, "out of memory");
	return (p->errcode = SPOOL_ENOMEM);
}

/* Run the loop until the pool stops. */
int
spool__engine_run(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	struct timeval		 tv;
	int64_t			 ms;
	int			 i;

	/* Under the lock: spool_pool_stop reads them from any thread. */
	pthread_mutex_lock(&p->mu);
	e->thread = pthread_self();
	e->running = 1;
	pthread_mutex_unlock(&p->mu);
	engine_read_conf(p);
	e->last_prune_ms = engine_now(p);
	(void)engine_cpu(e);
	engine_proc(p, e, engine_now(p));	/* the metrics have RSS from the start */
	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->o.min_workers; i++)
		if (spool__pool_spawn(p) != SPOOL_OK)
			break;
	pthread_mutex_unlock(&p->mu);
	if (i == 0) {
		spool__pool_error(p, SPOOL_ENOMEM, "cannot start threads");
		return (SPOOL_ENOMEM);
	}
	/* After the threads start, so the row counts them. */
	engine_worker_row(p, engine_now(p));
	for (i = 0; i < 2; i++)
		if (e->ev_sig[i] != NULL)
			event_add(e->ev_sig[i], NULL);

	/* Renew at a third of the shortest lease; reap at half of it. */
	ms = e->min_lease_ms / 3 > 10 ? e->min_lease_ms / 3 : 10;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	event_add(e->ev_renew, &tv);
	ms = e->min_lease_ms / 2;
	if (ms < 100)
		ms = 100;
	if (ms > 5000)
		ms = 5000;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	event_add(e->ev_reap, &tv);
	/* The timer reaps; a claim reaps only if the loop falls behind it. */
	p->q->reap_interval_ms = ms + ms / 2;
	tv.tv_sec = (time_t)(p->o.tick_ms / 1000);
	tv.tv_usec = (suseconds_t)(p->o.tick_ms % 1000 * 1000);
	event_add(e->ev_tick, &tv);
	tv.tv_sec = 0;
	tv.tv_usec = CANCEL_POLL_MS * 1000;
	e->cancel_version = engine_data_version(p);
	event_add(e->ev_cancel, &tv);
	engine_watch(p);
	if (p->o.max_time_ms > 0)
		engine_arm(e->ev_maxtime, p->o.max_time_ms);

	engine_claim(p);
	event_base_dispatch(e->base);
	pthread_mutex_lock(&p->mu);
	e->running = 0;
	pthread_mutex_unlock(&p->mu);

	/* Out of the loop: the row goes; leases still held expire. */
	engine_sync(p, 1);
	if (p->stopping != 2) {
		engine_flush(p);
		(void)spool__worker_delete(p->q, p->owner, engine_now(p) -
		    STALE_WORKER_MS);
	}
	pthread_mutex_lock(&p->mu);
	p->st.left = (int64_t)e->held;
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < 2; i++)
		if (e->ev_sig[i] != NULL)
			event_del(e->ev_sig[i]);
	return (e->rc);
}

/* Wake the loop from any thread (with p->mu held or not). */
void
spool__engine_wake(spool_pool *p)
{
	if (p->engine != NULL && p->engine->ev_wake != NULL)
		event_active(p->engine->ev_wake, 0, 0);
}

/* Drain (now 0) or quit (now 1).  From the engine thread it acts at
 * once; from another thread it asks the loop. */
void
spool__engine_stop(spool_pool *p, int now)
{
	struct spool__engine	*e = p->engine;
	spool_job		*job, *nx;
	size_t			 i;
	int			 in_loop;

	if (e == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	in_loop = e->running && pthread_equal(pthread_self(), e->thread);
	pthread_mutex_unlock(&p->mu);
	if (!now || !in_loop) {
		/* Drain runs in the loop: ask it. */
		pthread_mutex_lock(&p->mu);
		if (e->stop_req < (now ? 2 : 1))
			e->stop_req = now ? 2 : 1;
		p->wake_pending = 1;
		pthread_mutex_unlock(&p->mu);
		spool__engine_wake(p);
		return;
	}
	/* Quit: tell every handler, leave the leases to expire. */
	pthread_mutex_lock(&p->mu);
	p->stopping = 2;
	if (p->st.quit == 0)
		p->st.quit = -1;
	for (i = 0; i < ENGINE_BUCKETS; i++)
		for (job = e->bucket[i]; job != NULL; job = nx) {
			nx = job->hnext;
			spool__job_stop_set(job, SPOOL_STOP_SHUTDOWN);
		}
	pthread_cond_broadcast(&p->work_cv);
	pthread_mutex_unlock(&p->mu);
	event_base_loopbreak(e->base);
}

/* Free the engine (after the loop has returned). */
void
spool__engine_free(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	int			 i;

	if (e == NULL)
		return;
	if (e->ev_wake) event_free(e->ev_wake);
	if (e->ev_claim) event_free(e->ev_claim);
	if (e->ev_flush) event_free(e->ev_flush);
	if (e->ev_start) event_free(e->ev_start);
	if (e->ev_cancel) event_free(e->ev_cancel);
	if (e->ev_notify) event_free(e->ev_notify);
	if (e->notify_fd >= 0)
		close(e->notify_fd);
	if (e->ev_renew) event_free(e->ev_renew);
	if (e->ev_reap) event_free(e->ev_reap);
	if (e->ev_tick) event_free(e->ev_tick);
	if (e->ev_shutdown) event_free(e->ev_shutdown);
	if (e->ev_maxtime) event_free(e->ev_maxtime);
	for (i = 0; i < 2; i++)
		if (e->ev_sig[i] != NULL)
			event_free(e->ev_sig[i]);
	if (e->base != NULL)
		event_base_free(e->base);
	free(e->claimed);
	free(e->starts);
	free(e->conf);
	free(e->credit);
	free(e);
	p->engine = NULL;
}

/* ---- A small loop for a buffered producer (producer.c) ------------------
 *
 * One thread runs it.  Any thread may kick it; the loop's own callback
 * may arm a one-shot timer.  Both call fn(arg, SPOOL__LOOP_KICK or
 * SPOOL__LOOP_TIMER) in the loop's thread.
 */

struct spool__loop {
	struct event_base	*base;
	struct event		*ev_kick;
	struct event		*ev_timer;
	void			(*fn)(void *, int);
	void			*arg;
};

static void
loop_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spool__loop	*l = arg;

	(void)fd;
	(void)what;
	l->fn(l->arg, SPOOL__LOOP_KICK);
}

static void
loop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spool__loop	*l = arg;

	(void)fd;
	(void)what;
	l->fn(l->arg, SPOOL__LOOP_TIMER);
}

/* Make a loop that calls fn(arg, why); NULL if out of memory or if
 * libevent has no thread support. */
struct spool__loop *
spool__loop_new(void (*fn)(void *, int), void *arg)
{
	struct spool__loop	*l;
	struct event_config	*cfg;

	pthread_once(&engine_once, engine_init_threads);
	if (!engine_threads_ok || (l = calloc(1, sizeof *l)) == NULL)
		return (NULL);
	l->fn = fn;
	l->arg = arg;
	if ((cfg = event_config_new()) != NULL) {
		event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
		l->base = event_base_new_with_config(cfg);
		event_config_free(cfg);
	}
	if (l->base == NULL ||
	    (l->ev_kick = event_new(l->base, -1, 0, loop_kick_cb, l)) == NULL ||
	    (l->ev_timer = evtimer_new(l->base, loop_timer_cb, l)) == NULL) {
		spool__loop_free(l);
		return (NULL);
	}
	return (l);
}

/* Run the loop in the calling thread until spool__loop_exit. */
void
spool__loop_run(struct spool__loop *l)
{
	event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
}

/* From any thread: call fn(arg, SPOOL__LOOP_KICK) soon, in the loop. */
void
spool__loop_kick(struct spool__loop *l)
{
	event_active(l->ev_kick, 0, 0);
}

/* In the loop: call fn(arg, SPOOL__LOOP_TIMER) ms from now, replacing a
 * timer already armed; ms < 0 disarms it. */
void
spool__loop_arm(struct spool__loop *l, int64_t ms)
{
	if (ms < 0)
		evtimer_del(l->ev_timer);
	else
		engine_arm(l->ev_timer, ms);
}

/* From any thread: make spool__loop_run return. */
void
spool__loop_exit(struct spool__loop *l)
{
	event_base_loopbreak(l->base);
}

/* Free a loop that is not running. */
void
spool__loop_free(struct spool__loop *l)
{
	if (l == NULL)
		return;
	if (l->ev_kick != NULL)
		event_free(l->ev_kick);
	if (l->ev_timer != NULL)
		event_free(l->ev_timer);
	if (l->base != NULL)
		event_base_free(l->base);
	free(l);
}
