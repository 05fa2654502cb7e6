/*
 * t-pool-stop.c -- worker pools (pool.c, engine*.c): how tasks and runs
 * end other than by a handler's return: timeouts (heeded and ignored),
 * cancels (of running tasks and of tasks claimed ahead), lost and
 * shortened leases, a graceful stop, quitting (at once and as the run
 * starts), max_tasks and max_time, the shutdown timeout's hand-back, and
 * a signal during a drain.  What the pool tests share is in pool-util.c.
 *
 * The engine runs on the wall clock (the pool opens its own connection),
 * while tu_q runs on the fake clock in 2027: so every task here is
 * enqueued through a handle on the real clock, and tu_q only creates
 * queues (their settings do not depend on the clock).  Callbacks run in
 * the thread that called spool_pool_run, which is not always the test's,
 * and handlers in worker threads: neither calls CUnit, they record what
 * they saw under a lock or in atomics, and the test asserts.
 *
 * No state lives at file scope: each test makes its recorder (struct rec,
 * the pool's cb_arg) and declares its handler's state, whose address is
 * the handler's arg.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool-util.h"

/* ---- Stopping a pool from another thread ------------------------------- */

/* A thread that stops a pool after a delay, unless called off first. */
struct stopper {
	pthread_t	 t;
	spool_pool	*p;
	int64_t		 after_ms;
	int		 now;
	int		 off;		/* called off: do nothing */
	int64_t		 at_ms;		/* monotonic, when it asked */
};

static void *
stopper_main(void *arg)
{
	struct stopper	*s = arg;
	int64_t		 end = mono_ms() + s->after_ms;

	while (!load(&s->off) && mono_ms() < end)
		sleep_ms(1);
	if (load(&s->off))
		return (NULL);
	store64(&s->at_ms, mono_ms());
	spool_pool_stop(s->p, s->now);
	return (NULL);
}

/* ---- Timeouts ---------------------------------------------------------- */

/* What h_cooperative saw. */
struct coop {
	int		 reason;	/* atomic: why it was told to stop */
	int64_t		 start;		/* atomic: wall clock */
	int64_t		 seen;		/* atomic: ms after its start */
	int64_t		 deadline;	/* atomic: the job's */
};

/* Loop until told to stop (3 s at most), then ask for a retry. */
static int
h_cooperative(spool_job *job, void *arg)
{
	struct coop	*to = arg;
	int64_t		 start = mono_ms();
	int		 why;

	store64(&to->start, wall_ms());
	store64(&to->deadline, spool_job_deadline_ms(job));
	while ((why = spool_job_should_stop(job)) == 0 &&
	    mono_ms() - start < 3000)
		sleep_ms(2);
	store64(&to->seen, mono_ms() - start);
	store(&to->reason, why);
	return (SPOOL_RETRY);
}

/* A handler that polls spool_job_should_stop sees SPOOL_STOP_TIMEOUT
 * once its queue's 200 ms timeout passes; its attempt is "timed_out" and
 * its outcome says timed_out. */
static void
test_timeout_cooperative(void)
{
	const char		*qs[] = { "tq" };
	const struct done_rec	*d;
	struct coop		 to;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	char			 buf[128];
	int64_t			 id;

	r = rec_new();
	memset(&to, 0, sizeof to);
	make_queue("tq", 1, 10, 200);
	q = real_open();
	id = enqueue1(q, "tq", "slow");
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.tick_ms = 20;
	if ((p = pool_make(h_cooperative, &to, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);

	CU_ASSERT_EQUAL(to.reason, SPOOL_STOP_TIMEOUT);
	CU_ASSERT(to.seen >= 190 && to.seen < 600);
	/* The deadline is the handler's start plus the queue's timeout. */
	CU_ASSERT(to.deadline - to.start > 190 &&
	    to.deadline - to.start <= 200);
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT "
	    "group_concat(outcome) FROM attempts WHERE task_id = %lld",
	    (long long)id), "timed_out");
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT state || '/' "
	    "|| dead_reason FROM tasks WHERE id = %lld", (long long)id),
	    "dead/exhausted");
	if ((d = find_done(r, id, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->timed_out, 1);
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_DEAD);
	} else
		CU_FAIL("no outcome");
	CU_ASSERT_EQUAL(st.timed_out, 1);
	CU_ASSERT_EQUAL(st.dead, 1);
out:
	spool_close(q);
	rec_free(r);
}

/* The abandoned handler (h_deaf) and what its on_done (ab_hook) saw. */
struct abandon {
	int		 returned;	/* atomic: h_deaf returned */
	int64_t		 start;		/* atomic: monotonic */
	spool		*q;		/* the test's handle, for ab_hook */
	int		 returned_at_done;
	int64_t		 done_after;
	char		 outcome[200];
};

/* Sleep 1.5 s, deaf to every request to stop. */
static int
h_deaf(spool_job *job, void *arg)
{
	struct abandon	*ab = arg;

	(void)job;
	store64(&ab->start, mono_ms());
	sleep_ms(1500);
	store(&ab->returned, 1);
	return (SPOOL_DONE);
}

/* on_done of the abandoned task (the recorder's hook, given its user):
 * is its handler still asleep, and what does the history say already? */
static void
ab_hook(const spool_outcome *o, void *user)
{
	struct abandon	*ab = user;

	ab->returned_at_done = load(&ab->returned);
	ab->done_after = mono_ms() - load64(&ab->start);
	q_text(ab->q, ab->outcome, sizeof ab->outcome, "SELECT group_concat("
	    "outcome || ':' || error) FROM attempts WHERE task_id = %lld",
	    (long long)o->id);
}

/* A handler that ignores its 200 ms timeout is abandoned after the grace
 * (100 ms): its attempt is committed "timed_out" while it still sleeps,
 * the run ends, and spool_pool_free waits for the thread to return. */
static void
test_timeout_abandoned(void)
{
	const char		*qs[] = { "aq" };
	const struct done_rec	*d;
	struct abandon		 ab;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	struct rec		*r;
	spool_pool		*p;
	char			 buf[128];
	int64_t			 id, t0;

	r = rec_new();
	memset(&ab, 0, sizeof ab);
	ab.returned_at_done = -1;
	ab.done_after = -1;
	make_queue("aq", 1, 10, 0);
	ab.q = real_open();
	id = enqueue1(ab.q, "aq", "deaf");
	opts_init(&o, qs, 1, r);
	o.timeout_ms = 200;
	o.tick_ms = 20;
	o.shutdown_timeout_ms = 100;
	r->stop_after_final = 1;
	r->hook = ab_hook;
	r->user = &ab;
	if ((p = pool_make(h_deaf, &ab, &o)) == NULL)
		goto out;
	p->grace_ms = 100;
	t0 = mono_ms();
	TU_RC(spool_pool_run(p), SPOOL_OK);
	/* The run is over before the handler is. */
	CU_ASSERT(mono_ms() - t0 < 1400);
	CU_ASSERT_EQUAL(load(&ab.returned), 0);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(load(&ab.returned), 1);

	CU_ASSERT_EQUAL(ab.returned_at_done, 0);
	CU_ASSERT(ab.done_after >= 290 && ab.done_after < 1400);
	CU_ASSERT_STRING_EQUAL(ab.outcome, "timed_out:timed out after 200 ms "
	    "(the handler did not return)");
	if ((d = find_done(r, id, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->timed_out, 1);
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_DEAD);
	} else
		CU_FAIL("no outcome");
	CU_ASSERT_PTR_NULL(find_done(r, id, 1));	/* its return changed nothing */
	CU_ASSERT_EQUAL(st.timed_out, 1);
	CU_ASSERT_EQUAL(st.succeeded, 0);
	CU_ASSERT_STRING_EQUAL(q_text(ab.q, buf, sizeof buf, "SELECT state || "
	    "'/' || dead_reason FROM tasks WHERE id = %lld", (long long)id),
	    "dead/exhausted");
	CU_ASSERT_EQUAL(q_int(ab.q, "SELECT count(*) FROM attempts"), 1);
	CU_ASSERT_EQUAL(q_int(ab.q, "SELECT count(*) FROM results"), 0);
out:
	spool_close(ab.q);
	rec_free(r);
}

/* ---- Cancellation and lost leases -------------------------------------- */

/* A handler that waits to be told to stop (h_wait_stop) or released
 * (h_hold), and what it saw. */
struct waiter {
	int		 started;	/* atomic */
	int		 reason;	/* atomic: why it was told to stop */
	int64_t		 seen;		/* atomic, monotonic: when it saw why */
	int		 rc;		/* what h_wait_stop returns */
	int		 release;	/* atomic: h_hold may return */
};

/* Wait (5 s at most) until told to stop, note why, keep a result, and
 * return wt->rc. */
static int
h_wait_stop(spool_job *job, void *arg)
{
	struct waiter	*wt = arg;
	int64_t		 start = mono_ms();
	int		 why;

	store(&wt->started, 1);
	while ((why = spool_job_should_stop(job)) == 0 &&
	    mono_ms() - start < 5000)
		sleep_ms(1);
	store64(&wt->seen, mono_ms());
	store(&wt->reason, why);
	(void)spool_job_set_result(job, "victim", 6);
	return (load(&wt->rc));
}

/* A waiter whose h_wait_stop returns rc. */
static void
wt_init(struct waiter *wt, int rc)
{
	memset(wt, 0, sizeof *wt);
	wt->rc = rc;
}

/* A running task cancelled from another handle: within about one renewal
 * (lease 600 ms, renewed every 200) its handler sees
 * SPOOL_STOP_CANCELLED, and its SPOOL_RETRY ends the task cancelled. */
static void
test_cancel(void)
{
	const char		*qs[] = { "cq" };
	const struct done_rec	*d;
	struct runner		 run;
	struct waiter		 wt;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	char			 buf[64];
	int64_t			 id, t0;
	int			 running = -1;

	r = rec_new();
	wt_init(&wt, SPOOL_RETRY);
	q = real_open();
	id = enqueue1(q, "cq", "long");
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.lease_ms = 600;
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	if ((p = pool_make(h_wait_stop, &wt, &o)) == NULL)
		goto out;
	runner_start(&run, p);
	CU_ASSERT(wait_flag(&wt.started, 3000));
	sleep_ms(30);
	t0 = mono_ms();
	TU_RC(spool_cancel(&running, q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(running, 1);
	CU_ASSERT(wait_flag(&wt.reason, 3000));
	TU_RC(runner_join(&run), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);

	CU_ASSERT_EQUAL(wt.reason, SPOOL_STOP_CANCELLED);
	CU_ASSERT(wt.seen - t0 >= 0 && wt.seen - t0 < 450);
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT state FROM "
	    "tasks WHERE id = %lld", (long long)id), "cancelled");
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE "
	    "task_id = %lld", (long long)id), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM results"), 0);
	if ((d = find_done(r, id, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_CANCELLED);
	} else
		CU_FAIL("no outcome");
	CU_ASSERT_EQUAL(st.cancelled, 1);
	CU_ASSERT_EQUAL(st.retried, 0);
out:
	spool_close(q);
	rec_free(r);
}

/* Hold until wt->release is set (20 s at most), then succeed. */
static int
h_hold(spool_job *job, void *arg)
{
	struct waiter	*wt = arg;
	int64_t		 start = mono_ms();

	store(&wt->started, 1);
	while (!load(&wt->release) && spool_job_should_stop(job) == 0 &&
	    mono_ms() - start < 20000)
		sleep_ms(1);
	store(&wt->reason, spool_job_should_stop(job));
	return (SPOOL_DONE);
}

/* A queue's lease shortened while the pool holds one of its tasks (30 s
 * to 600 ms): from the next tick the pool renews at the new pace, so it
 * keeps the task.  The renewal timer used to be armed once, at the start,
 * every 10 s: the first renewal after the change set a 600 ms lease that
 * ran out long before the next, and the pool's own reaper took it. */
static void
test_lease_shortened(void)
{
	const char		*qs[] = { "shq" };
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	struct runner		 run;
	struct waiter		 wt;
	spool_pool_opts		 o;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 id, u, last = 0, end;
	int			 renewals = 0;

	r = rec_new();
	wt_init(&wt, SPOOL_DONE);
	make_queue("shq", 3, 0, 0);	/* the default lease, 30 s */
	q = real_open();
	id = enqueue1(q, "shq", "hold");
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	o.tick_ms = 50;
	if ((p = pool_make(h_hold, &wt, &o)) == NULL)
		goto out;
	runner_start(&run, p);
	CU_ASSERT(wait_flag(&wt.started, 3000));
	qo.set = SPOOL_QUEUE_LEASE;
	qo.lease_ms = 600;
	TU_RC(spool_queue_set(q, "shq", &qo), SPOOL_OK);
	/* Five renewals to the short lease, seen within 8 s (at the old pace
	 * the first alone could take 10 s). */
	end = mono_ms() + 8000;
	while (renewals < 5 && mono_ms() < end) {
		u = q_int(q, "SELECT lease_until_ms FROM tasks WHERE id = %lld "
		    "AND state = 'running'", (long long)id);
		if (u > 0 && u != last &&
		    u - spool__clock_ms(CLOCK_REALTIME) <= 600) {
			renewals++;
			last = u;
		}
		sleep_ms(10);
	}
	CU_ASSERT(renewals >= 5);
	store(&wt.release, 1);
	TU_RC(runner_join(&run), SPOOL_OK);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(load(&wt.reason), 0);	/* never told it lost it */
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE "
	    "task_id = %lld AND outcome = 'lease_lost'", (long long)id), 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT attempts * (state = 'succeeded') "
	    "FROM tasks WHERE id = %lld", (long long)id), 1);
out:
	spool_close(q);
	rec_free(r);
}

/* A task whose lease another handle takes (expired, reaped, claimed and
 * completed there) tells its running handler SPOOL_STOP_LEASE_LOST at the
 * next renewal; the handler's SPOOL_DONE is refused (LEASE_LOST) and the
 * task keeps the one result of the thief. */
static void
test_lease_lost(void)
{
	const char		*qs[] = { "lq" };
	const struct done_rec	*d;
	struct runner		 run;
	struct waiter		 wt;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	spool_job		*job = NULL;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	char			 buf[128];
	int64_t			 id, t0 = 0, n;
	int			 i;

	r = rec_new();
	wt_init(&wt, SPOOL_DONE);
	make_queue("lq", 5, 0, 0);
	q = real_open();
	id = enqueue1(q, "lq", "long");
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.lease_ms = 600;
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	if ((p = pool_make(h_wait_stop, &wt, &o)) == NULL)
		goto out;
	runner_start(&run, p);
	CU_ASSERT(wait_flag(&wt.started, 3000));
	/* Expire the lease, reap it and claim the task here.  A renewal may
	 * slip in between and extend the lease again: then try again. */
	for (i = 0; i < 50 && job == NULL; i++) {
		CU_ASSERT_EQUAL(q_int(q, "UPDATE tasks SET lease_until_ms = 0 "
		    "WHERE id = %lld AND state = 'running'", (long long)id),
		    -1);
		TU_RC(spool_reap(&n, q), SPOOL_OK);
		if (spool_claim(&job, q, "lq", NULL) != SPOOL_OK)
			sleep_ms(5);
	}
	CU_ASSERT_PTR_NOT_NULL(job);
	if (job != NULL) {
		CU_ASSERT_EQUAL(spool_job_id(job), id);
		CU_ASSERT_EQUAL(spool_job_attempt(job), 2);
		TU_RC(spool_job_complete(job, "thief", 5), SPOOL_OK);
		t0 = mono_ms();
		spool_job_free(job);
	}
	CU_ASSERT(wait_flag(&wt.reason, 3000));
	TU_RC(runner_join(&run), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);

	CU_ASSERT_EQUAL(wt.reason, SPOOL_STOP_LEASE_LOST);
	CU_ASSERT(wt.seen - t0 < 450);
	if ((d = find_done(r, id, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_LEASE_LOST);
		CU_ASSERT_EQUAL(d->attempt, 1);
	} else
		CU_FAIL("no outcome");
	CU_ASSERT_PTR_NULL(find_done(r, id, 1));
	CU_ASSERT_EQUAL(st.lease_lost, 1);
	CU_ASSERT_EQUAL(st.succeeded, 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM results WHERE "
	    "task_id = %lld", (long long)id), 1);
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT "
	    "CAST(output AS TEXT) FROM results WHERE task_id = %lld",
	    (long long)id), "thief");
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT "
	    "group_concat(attempt || ':' || outcome, ',') FROM (SELECT * FROM "
	    "attempts WHERE task_id = %lld ORDER BY attempt)", (long long)id),
	    "1:lease_lost,2:succeeded");
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT state FROM "
	    "tasks WHERE id = %lld", (long long)id), "succeeded");
out:
	spool_close(q);
	rec_free(r);
}

/* ---- Stopping ---------------------------------------------------------- */

/* spool_pool_stop(p, 0) from another thread drains: the two running
 * tasks finish and succeed, the ten prefetched ones are handed back
 * (ready, no attempt charged, reported RELEASED), nothing stays running,
 * and the run returns 0. */
static void
test_graceful_stop(void)
{
	const char		*qs[] = { "gq" };
	struct stopper		 s;
	struct slow		 sl;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	size_t			 i;
	int64_t			 t0, stop_ms;
	int			 released = 0, succeeded = 0, ok = 1;

	r = rec_new();
	slow_init(&sl, r, 300);
	q = real_open();
	enqueue_n(q, "gq", "slow", 30, NULL);
	opts_init(&o, qs, 1, r);
	o.min_workers = o.max_workers = 2;
	o.prefetch = 10;
	if ((p = pool_make(h_slow, &sl, &o)) == NULL)
		goto out;
	p->ahead_fixed = 10;	/* slow handlers would get none */
	s.p = p;
	s.after_ms = 100;
	s.now = 0;
	s.off = 0;
	s.at_ms = 0;
	t0 = mono_ms();
	CU_ASSERT_FATAL(pthread_create(&s.t, NULL, stopper_main, &s) == 0);
	TU_RC(spool_pool_run(p), SPOOL_OK);
	stop_ms = mono_ms() - t0;
	pthread_join(s.t, NULL);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);

	/* It waited for the running handlers, and no longer. */
	CU_ASSERT(stop_ms >= 290 && stop_ms < 1500);
	CU_ASSERT_EQUAL(r->nstart, 2);
	CU_ASSERT_EQUAL(r->ndone, 12);
	for (i = 0; i < r->ndone && i < REC_MAX; i++) {
		const struct done_rec	*d = &r->done[i];

		if (d->kind == SPOOL_OUTCOME_SUCCEEDED) {
			succeeded++;
			if (!started(r, d->id))
				ok = 0;
		} else if (d->kind == SPOOL_OUTCOME_RELEASED) {
			released++;
			if (started(r, d->id) || q_int(q, "SELECT count(*) FROM "
			    "tasks WHERE id = %lld AND state = 'ready' AND "
			    "attempts = 0 AND lease_owner IS NULL",
			    (long long)d->id) != 1)
				ok = 0;
		} else
			ok = 0;
	}
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(succeeded, 2);
	CU_ASSERT_EQUAL(released, 10);
	CU_ASSERT_EQUAL(st.claimed, 12);
	CU_ASSERT_EQUAL(st.succeeded, 2);
	CU_ASSERT_EQUAL(st.released, 10);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'running'"), 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'succeeded'"), 2);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'ready' AND attempts = 0"), 28);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts"), 2);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM workers"), 0);
out:
	spool_close(q);
	rec_free(r);
}

/* spool_pool_stop(p, 1) from another thread quits at once: the run
 * returns without waiting for the handler, which is told
 * SPOOL_STOP_SHUTDOWN; its task keeps its lease (left to expire), and
 * spool_pool_free waits for the handler. */
static void
test_quit_now(void)
{
	const char		*qs[] = { "nq" };
	struct runner		 run;
	struct waiter		 wt;
	spool_pool_opts		 o;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 id, t0;

	r = rec_new();
	wt_init(&wt, SPOOL_DONE);
	q = real_open();
	id = enqueue1(q, "nq", "long");
	opts_init(&o, qs, 1, r);
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	if ((p = pool_make(h_wait_stop, &wt, &o)) == NULL)
		goto out;
	runner_start(&run, p);
	CU_ASSERT(wait_flag(&wt.started, 3000));
	t0 = mono_ms();
	spool_pool_stop(p, 1);
	TU_RC(runner_join(&run), SPOOL_OK);
	CU_ASSERT(mono_ms() - t0 < 1000);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(load(&wt.reason), SPOOL_STOP_SHUTDOWN);
	CU_ASSERT_EQUAL(r->ndone, 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld "
	    "AND state = 'running' AND attempts = 1", (long long)id), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts"), 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM results"), 0);
out:
	spool_close(q);
	rec_free(r);
}

/* spool_pool_stop(p, 1) from another thread while the run is starting
 * still quits it: the run returns 0 at once, not at its max_time. */
static void
test_quit_at_start(void)
{
	const char		*qs[] = { "sq0" };
	struct runner		 run;
	struct waiter		 wt;
	spool_pool_opts		 o;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 t0;

	r = rec_new();
	wt_init(&wt, SPOOL_DONE);
	q = real_open();
	enqueue_n(q, "sq0", "long", 3, NULL);
	opts_init(&o, qs, 1, r);
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	if ((p = pool_make(h_wait_stop, &wt, &o)) == NULL)
		goto out;
	t0 = mono_ms();
	runner_start(&run, p);
	spool_pool_stop(p, 1);
	TU_RC(runner_join(&run), SPOOL_OK);
	CU_ASSERT(mono_ms() - t0 < 2000);
	spool_pool_free(p);
	/* A handler that started was told to stop, and none succeeded. */
	if (load(&wt.started))
		CU_ASSERT_EQUAL(load(&wt.reason), SPOOL_STOP_SHUTDOWN);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'succeeded'"), 0);
out:
	spool_close(q);
	rec_free(r);
}

/* ---- Limits ------------------------------------------------------------ */

/* max_tasks 5 of 50 (with room to claim 8 at once): exactly 5 are claimed
 * and succeed, the run ends, and the other 45 were never touched. */
static void
test_max_tasks(void)
{
	const char		*qs[] = { "mq" };
	struct slow		 sl;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 t0;

	r = rec_new();
	slow_init(&sl, r, 10);
	q = real_open();
	enqueue_n(q, "mq", "task", 50, NULL);
	opts_init(&o, qs, 1, r);
	o.min_workers = o.max_workers = 4;
	o.prefetch = 4;
	o.max_tasks = 5;
	if ((p = pool_make(h_slow, &sl, &o)) == NULL)
		goto out;
	t0 = mono_ms();
	TU_RC(spool_pool_run(p), SPOOL_OK);
	CU_ASSERT(mono_ms() - t0 < 2000);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(load(&sl.calls), 5);
	CU_ASSERT_EQUAL(st.claimed, 5);
	CU_ASSERT_EQUAL(st.succeeded, 5);
	CU_ASSERT_EQUAL(st.released, 0);
	CU_ASSERT_EQUAL(count_kind(r, SPOOL_OUTCOME_SUCCEEDED), 5);
	CU_ASSERT_EQUAL(r->ndone, 5);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'succeeded'"), 5);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'ready' AND attempts = 0"), 45);
out:
	spool_close(q);
	rec_free(r);
}

/* max_time 300 ms with 100 ms tasks: claims stop at 300 ms, running tasks
 * finish, prefetched ones go back, and nothing is left running. */
static void
test_max_time(void)
{
	const char		*qs[] = { "xq" };
	struct stopper		 guard;
	struct slow		 sl;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 t0, ms;

	r = rec_new();
	slow_init(&sl, r, 100);
	q = real_open();
	enqueue_n(q, "xq", "task", 40, NULL);
	opts_init(&o, qs, 1, r);
	o.min_workers = o.max_workers = 2;
	o.prefetch = 2;
	o.max_time_ms = 300;
	if ((p = pool_make(h_slow, &sl, &o)) == NULL)
		goto out;
	/* max_time is what is tested, so it cannot be the guard too. */
	guard.p = p;
	guard.after_ms = 3000;
	guard.now = 0;
	guard.off = 0;
	guard.at_ms = 0;
	CU_ASSERT_FATAL(pthread_create(&guard.t, NULL, stopper_main,
	    &guard) == 0);
	t0 = mono_ms();
	TU_RC(spool_pool_run(p), SPOOL_OK);
	ms = mono_ms() - t0;
	store(&guard.off, 1);
	pthread_join(guard.t, NULL);
	CU_ASSERT_EQUAL(load64(&guard.at_ms), 0);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT(ms >= 300 && ms < 1200);
	CU_ASSERT(st.succeeded >= 4 && st.succeeded <= 10);
	CU_ASSERT_EQUAL(st.succeeded, load(&sl.calls));
	CU_ASSERT_EQUAL(st.claimed, st.succeeded + st.released);
	CU_ASSERT_EQUAL(st.released, count_kind(r, SPOOL_OUTCOME_RELEASED));
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'succeeded'"), st.succeeded);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'running'"), 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'ready' AND attempts = 0"), 40 - st.succeeded);
out:
	spool_close(q);
	rec_free(r);
}

/* A handler still running when the shutdown timeout passes has its task
 * handed back: ready, no attempt charged or recorded, not timed out. */
static void
test_shutdown_handback(void)
{
	const char		*qs[] = { "sh" };
	spool_pool_stats	 st;
	struct slow		 sl;
	spool_pool_opts		 o;
	struct runner		 run;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 id, t0;

	r = rec_new();
	slow_init(&sl, r, 1500);	/* h_slow does not listen */
	q = real_open();
	id = enqueue1(q, "sh", "stuck");
	opts_init(&o, qs, 1, r);
	o.min_workers = o.max_workers = 1;
	o.shutdown_timeout_ms = 200;
	if ((p = pool_make(h_slow, &sl, &o)) == NULL)
		goto out;
	runner_start(&run, p);
	t0 = mono_ms();
	while (q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld AND "
	    "started_ms IS NOT NULL", (long long)id) != 1 &&
	    mono_ms() - t0 < 5000)
		sleep_ms(2);
	spool_pool_stop(p, 0);
	TU_RC(runner_join(&run), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(st.released, 1);
	CU_ASSERT_EQUAL(st.timed_out, 0);
	CU_ASSERT_EQUAL(count_kind(r, SPOOL_OUTCOME_RELEASED), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld "
	    "AND state = 'ready' AND attempts = 0 AND lease_owner IS NULL",
	    (long long)id), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE task_id "
	    "= %lld", (long long)id), 0);
out:
	spool_close(q);
	rec_free(r);
}

/* A cancel of a task claimed ahead and not started hands it back, which
 * ends it cancelled: reported as cancelled, not as handed back. */
static void
test_cancel_claimed(void)
{
	const char		*qs[] = { "cc" };
	spool_pool_stats	 st;
	struct runner		 run;
	struct gate		 g;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 ids[4], t0;
	int			 running = 0;

	r = rec_new();
	g.rec = r;
	q = real_open();
	if ((p = gated_pool(q, qs, 4, ids, &g, &run)) == NULL)
		goto out;
	t0 = mono_ms();
	while (q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld AND "
	    "state = 'running' AND started_ms IS NULL", (long long)ids[3]) != 1
	    && mono_ms() - t0 < 5000)
		sleep_ms(2);
	TU_RC(spool_cancel(&running, q, ids[3]), SPOOL_OK);
	CU_ASSERT_EQUAL(running, 1);	/* leased: flagged for its worker */
	t0 = mono_ms();
	while (count_kind(r, SPOOL_OUTCOME_CANCELLED) == 0 &&
	    mono_ms() - t0 < 5000)
		sleep_ms(2);
	CU_ASSERT(mono_ms() - t0 < 2000);	/* the cancel poll, not renewals */
	store(&g.open, 1);
	spool_pool_stop(p, 0);
	TU_RC(runner_join(&run), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(st.cancelled, 1);
	CU_ASSERT_EQUAL(count_kind(r, SPOOL_OUTCOME_CANCELLED), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld "
	    "AND state = 'cancelled'", (long long)ids[3]), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE task_id "
	    "= %lld", (long long)ids[3]), 0);
out:
	spool_close(q);
	rec_free(r);
}

/* A signal during a drain that max_time began is the first signal: it
 * does not quit at once; the running task finishes. */
static void
test_signal_during_drain(void)
{
	const char		*qs[] = { "sd" };
	spool_pool_stats	 st;
	struct slow		 sl;
	spool_pool_opts		 o;
	struct runner		 run;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 t0;
	int			 stopping = 0;

	r = rec_new();
	slow_init(&sl, r, 800);
	q = real_open();
	enqueue1(q, "sd", "slow");
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_SIGNALS;
	o.min_workers = o.max_workers = 1;
	o.max_time_ms = 100;
	if ((p = pool_make(h_slow, &sl, &o)) == NULL)
		goto out;
	runner_start(&run, p);
	/* Wait for the drain max_time begins, then signal. */
	t0 = mono_ms();
	do {
		sleep_ms(2);
		pthread_mutex_lock(&p->mu);
		stopping = p->stopping;
		pthread_mutex_unlock(&p->mu);
	} while (stopping == 0 && mono_ms() - t0 < 5000);
	CU_ASSERT_EQUAL(stopping, 1);
	kill(getpid(), SIGTERM);
	TU_RC(runner_join(&run), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(st.quit, 0);
	CU_ASSERT_EQUAL(st.left, 0);
	CU_ASSERT_EQUAL(st.succeeded, 1);
out:
	spool_close(q);
	rec_free(r);
}

static CU_TestInfo pool_stop_tests[] = {
	{ "timeout: cooperative handler", test_timeout_cooperative },
	{ "timeout: deaf handler abandoned", test_timeout_abandoned },
	{ "cancel a running task", test_cancel },
	{ "lease lost to another handle", test_lease_lost },
	{ "a lease shortened while running is renewed at its pace",
	    test_lease_shortened },
	{ "graceful stop from another thread", test_graceful_stop },
	{ "quit now from another thread", test_quit_now },
	{ "quit as the run starts", test_quit_at_start },
	{ "max_tasks", test_max_tasks },
	{ "max_time", test_max_time },
	{ "shutdown timeout hands the task back", test_shutdown_handback },
	{ "cancel of a task claimed ahead", test_cancel_claimed },
	{ "a signal during a max_time drain drains", test_signal_during_drain },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("pool-stop", pool_stop_tests));
}
