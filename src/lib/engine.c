/*
 * engine.c -- the event loop of a worker pool: its life (new, run, wake,
 * stop, free), its wiring (the events and the callbacks they call, the
 * wake from the threads, signals, max_time, draining and the shutdown
 * timeout), the registry of held jobs, and the small helpers the
 * engine's files share (clocks, timers, errors, syncing, the queues'
 * settings).  One thread runs it; it owns the pool's database
 * connection and does all of the pool's database work:
 *
 *   notice  another process's commit: inotify tells of a write to the WAL
 *           (then data_version is polled from 1 ms for a moment, as the
 *           write comes just before the commit is visible); polling with a
 *           backoff to 16 ms is the fallback where inotify is missing
 *           (engine-claim.c);
 *   claim   for idle threads and a few more, sized from what the engine
 *           sees (handler time, claim and commit time), in one transaction
 *           (not synced: a lost claim only makes a task ready again); a
 *           thread wakes the loop to claim again before the threads run
 *           dry; with nothing due, poll PRAGMA data_version with a short
 *           backoff and sleep no later than the next scheduled task
 *           (engine-claim.c);
 *   start   write when handlers started, for those still running (a task
 *           claimed ahead of its thread reads as claimed until then)
 *           (engine-flush.c);
 *   flush   commit the outcomes of finished jobs together (group commit,
 *           synced) every flush_interval_ms or flush_count outcomes
 *           (engine-flush.c);
 *   renew   extend every lease the pool holds, one UPDATE per queue, at a
 *           third of the shortest lease (re-armed when a tick finds the
 *           queues' leases changed); a lease not renewed was lost
 *           (engine-flush.c);
 *   cancel  every 250 ms, if a commit (another connection's, or a flush
 *           of ours that settled a pipeline) came meanwhile, look for
 *           cancellation requests on the leases held, and tell their
 *           handlers (an exec'd command gets SIGTERM) at once
 *           (engine-flush.c);
 *   reap    return the expired leases of dead workers (engine-flush.c);
 *   tick    the workers row, timeouts, autoscaling, CPU load shedding,
 *           the exclusive lock, retention pruning, on_tick
 *           (engine-probe.c; the timeouts are engine-flush.c's);
 *   signals SIGINT/SIGTERM drain; a second one quits (here).
 *
 * Not here: what each of those does (the files named), the engine's
 * state (engine-int.h, which its files share), the threads and their
 * lists (pool.c), and the producer's small loop (loop.c).
 *
 * The engine's files (engine*.c, with engine-int.h) and loop.c are the
 * only files of the library that include libevent (http.c, of the CLI,
 * is the other): the rest of the library reaches the loop through the
 * spool__engine_* and spool__loop_* calls of spool-int.h.
 *
 * Worker threads wake the loop with event_active(), made thread-safe by
 * evthread_use_pthreads() before any event base exists.  The registry of
 * held jobs (every job the pool holds a lease for) belongs to this thread.
 */
#include "config.h"

#include <event2/event.h>
#include <event2/thread.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "spool-int.h"
#include "engine-int.h"

#define STALE_WORKER_MS		300000	/* workers rows older than this go */
#define START_WRITE_MS		10	/* a start is written at most this late */
#define CANCEL_POLL_MS		250	/* cancellations reach handlers this fast */

static pthread_once_t	 engine_once = PTHREAD_ONCE_INIT;
static int		 engine_threads_ok;

/* Let libevent be used from several threads (once per process). */
static void
engine_init_threads(void)
{
	engine_threads_ok = evthread_use_pthreads() == 0;
}

/* Whether libevent may be used from several threads: the engine's and
 * the producer's loop ask before making an event base. */
int
spool__engine_threads(void)
{
	pthread_once(&engine_once, engine_init_threads);
	return (engine_threads_ok);
}

/* The pool's clock: its handle's (the wall clock, or a test's). */
int64_t
spool__engine_now(spool_pool *p)
{
	return (spool__now_ms(p->q));
}

/* Fold a sample into a moving average (a negative average: none yet). */
void
spool__engine_avg(double *avg, double sample)
{
	*avg = *avg < 0 ? sample : 0.8 * *avg + 0.2 * sample;
}

/* Arm a one-shot timer ms from now. */
void
spool__engine_arm(struct event *ev, int64_t ms)
{
	struct timeval	 tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(ev, &tv);
}

/* Record a failure on the pool (the CLI logs it). */
void
spool__engine_error(spool_pool *p, int rc)
{
	spool__pool_error(p, rc, spool_errmsg(p->q));
}

/* Choose whether commits are synced: claims and renewals need not be,
 * outcomes must be. */
void
spool__engine_sync(spool_pool *p, int full)
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

void
spool__engine_reg_add(struct spool__engine *e, spool_job *job)
{
	size_t	 s = reg_slot(job->id);

	job->hnext = e->bucket[s];
	e->bucket[s] = job;
	e->held++;
}

void
spool__engine_reg_del(struct spool__engine *e, spool_job *job)
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

spool_job *
spool__engine_reg_find(struct spool__engine *e, int64_t id)
{
	spool_job	*job;

	for (job = e->bucket[reg_slot(id)]; job != NULL; job = job->hnext)
		if (job->id == id)
			return (job);
	return (NULL);
}

/* Renew leases at a third of the shortest lease, reap at half of it. */
static void
engine_arm_leases(spool_pool *p)
{
	struct spool__engine	*e = p->engine;
	struct timeval		 tv;
	int64_t			 ms;

	ms = e->min_lease_ms / 3 > 10 ? e->min_lease_ms / 3 : 10;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	event_add(e->ev_renew, &tv);	/* a pending timer is re-armed */
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
	e->armed_lease_ms = e->min_lease_ms;
}

/* Read every queue's settings (leases and timeouts come from them), and
 * re-arm the lease timers if the shortest lease changed. */
void
spool__engine_read_conf(spool_pool *p)
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
	/* A lease shortened while the pool runs (queue set --lease) must be
	 * renewed at its own pace from the next tick: at the old one, a
	 * lease cut from 30 s to 1 s ran out between renewals 10 s apart,
	 * and the pool lost every task it held. */
	if (e->running && e->min_lease_ms != e->armed_lease_ms)
		engine_arm_leases(p);
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
		spool__engine_arm(e->ev_start, START_WRITE_MS);
	if (stop == 2) {
		spool__engine_stop(p, 1);
		return;
	}
	if (stop == 1)
		spool__engine_drain(p);
	if (ndone >= (size_t)p->o.flush_count || (ndone > 0 && e->draining))
		spool__engine_flush(p);
	else if (ndone > 0 && !evtimer_pending(e->ev_flush, NULL))
		spool__engine_arm(e->ev_flush, p->o.flush_interval_ms);
	e->poke = 1;
	spool__engine_claim(p);
	spool__engine_check_finished(p);
}

/* max_time has passed: stop claiming and drain. */
static void
engine_maxtime_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	spool__engine_drain(arg);
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
			spool__engine_abandon(p, job, SPOOL__V_RELEASE,
			    "stopped: the shutdown timeout passed while it "
			    "ran");
			/* Ready again at once: an exec'd command gets
			 * SIGKILL within EXEC_POLL_MS; a handler of the
			 * library's that ignores spool_job_should_stop is
			 * in the position of one whose lease was lost. */
		}
	pthread_mutex_unlock(&p->mu);
	spool__engine_flush(p);
	event_base_loopexit(e->base, NULL);
}

/* Stop claiming, hand back prefetched tasks, let running ones finish. */
void
spool__engine_drain(spool_pool *p)
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
	spool__engine_flush(p);
	spool__engine_arm(e->ev_shutdown, p->o.shutdown_timeout_ms);
	spool__engine_check_finished(p);
}

/* Stop the loop when draining is over, or start draining when the work
 * is done (until empty, max tasks). */
void
spool__engine_check_finished(spool_pool *p)
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
		spool__engine_drain(p);
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
		spool__engine_drain(p);
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

	if (!spool__engine_threads()) {
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
	e->ev_claim = evtimer_new(e->base, spool__engine_claim_cb, p);
	e->ev_flush = evtimer_new(e->base, spool__engine_flush_cb, p);
	e->ev_start = evtimer_new(e->base, spool__engine_start_cb, p);
	e->ev_cancel = event_new(e->base, -1, EV_PERSIST,
	    spool__engine_cancel_cb, p);
	e->ev_renew = event_new(e->base, -1, EV_PERSIST,
	    spool__engine_renew_cb, p);
	e->ev_reap = event_new(e->base, -1, EV_PERSIST,
	    spool__engine_reap_cb, p);
	e->ev_tick = event_new(e->base, -1, EV_PERSIST,
	    spool__engine_tick_cb, p);
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
	int			 i;

	/* Under the lock: spool_pool_stop reads them from any thread. */
	pthread_mutex_lock(&p->mu);
	e->thread = pthread_self();
	e->running = 1;
	pthread_mutex_unlock(&p->mu);
	e->armed_lease_ms = 0;		/* so reading the settings arms them */
	spool__engine_read_conf(p);
	e->last_prune_ms = spool__engine_now(p);
	(void)spool__engine_cpu(e);
	/* The metrics have RSS from the start. */
	spool__engine_proc(p, e, spool__engine_now(p));
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
	spool__engine_worker_row(p, spool__engine_now(p));
	for (i = 0; i < 2; i++)
		if (e->ev_sig[i] != NULL)
			event_add(e->ev_sig[i], NULL);

	tv.tv_sec = (time_t)(p->o.tick_ms / 1000);
	tv.tv_usec = (suseconds_t)(p->o.tick_ms % 1000 * 1000);
	event_add(e->ev_tick, &tv);
	tv.tv_sec = 0;
	tv.tv_usec = CANCEL_POLL_MS * 1000;
	e->cancel_version = spool__engine_data_version(p);
	event_add(e->ev_cancel, &tv);
	spool__engine_watch(p);
	if (p->o.max_time_ms > 0)
		spool__engine_arm(e->ev_maxtime, p->o.max_time_ms);

	spool__engine_claim(p);
	event_base_dispatch(e->base);
	pthread_mutex_lock(&p->mu);
	e->running = 0;
	pthread_mutex_unlock(&p->mu);

	/* Out of the loop: the row goes; leases still held expire. */
	spool__engine_sync(p, 1);
	if (p->stopping != 2) {
		spool__engine_flush(p);
		(void)spool__worker_delete(p->q, p->owner,
		    spool__engine_now(p) - STALE_WORKER_MS);
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
