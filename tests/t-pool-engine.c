/*
 * t-pool-engine.c -- worker pools (pool.c, engine*.c): the engine's own
 * work around the handlers: autoscaling, the exclusive lock, load
 * shedding, reaping, flushes that fail (and the hold while no outcome can
 * be committed), claims sized by handler time and held ahead (how they
 * read, and times as they happened), and waking for scheduled tasks.
 * What the pool tests share is in pool-util.c.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool-util.h"

/* ---- Autoscaling ------------------------------------------------------- */

/* With min 1 and max 4 threads and a backlog of 40 slow tasks, the pool
 * grows to 4 threads, and once the work is done the idle extra threads
 * leave after idle_timeout_ms, back to 1. */
static void
test_autoscale(void)
{
	const char		*qs[] = { "sq" };
	struct slow		 sl;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 t0;

	r = rec_new();
	slow_init(&sl, r, 100);
	q = real_open();
	enqueue_n(q, "sq", "task", 40, NULL);
	opts_init(&o, qs, 1, r);
	o.min_workers = 1;
	o.max_workers = 4;
	o.prefetch = 0;
	o.idle_timeout_ms = 200;
	o.tick_ms = 100;
	o.on_tick = rec_tick;
	r->tick_target = 40;
	r->tick_min = 1;
	if ((p = pool_make(h_slow, &sl, &o)) == NULL)
		goto out;
	t0 = mono_ms();
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT(mono_ms() - t0 < GUARD_MS);
	CU_ASSERT_EQUAL(st.succeeded, 40);
	CU_ASSERT(r->ticks > 0);
	/* (A callback given another cb_arg than r aborts: rec_of.) */
	CU_ASSERT_EQUAL(r->tick_max_workers, 4);
	CU_ASSERT(r->tick_done_ms != 0);
	CU_ASSERT(r->tick_back_ms != 0);
	CU_ASSERT_EQUAL(r->tick_back_workers, 1);
	/* Back within the idle timeout and a few ticks. */
	CU_ASSERT(r->tick_back_ms - r->tick_done_ms < 1000);
	/* Four threads at work: well under the 4 s one thread would take. */
	CU_ASSERT(r->tick_done_ms - t0 < 2500);
out:
	spool_close(q);
	rec_free(r);
}

/* The deadlines of the threads' timed waits (an idle thread's
 * idle_timeout_ms, a producer's block_ms, a leader's gathering) never
 * overflow into the past: INT64_MAX, "never", is far ahead; a negative
 * wait is now; an ordinary one is exact. */
static void
test_deadlines(void)
{
	struct timespec	 now, t;

	clock_gettime(CLOCK_MONOTONIC, &now);
	t = spool__clock_after_ms(CLOCK_MONOTONIC, INT64_MAX);
	CU_ASSERT(t.tv_sec - now.tv_sec > (time_t)1000 * 365 * 86400);
	t = spool__clock_after_us(CLOCK_MONOTONIC, INT64_MAX);
	CU_ASSERT(t.tv_sec - now.tv_sec > (time_t)1000 * 365 * 86400);
	t = spool__clock_after_ms(CLOCK_MONOTONIC, -5);
	CU_ASSERT(t.tv_sec - now.tv_sec <= 1);
	t = spool__clock_after_ms(CLOCK_MONOTONIC, 2500);
	CU_ASSERT(t.tv_nsec >= 0 && t.tv_nsec < 1000000000);
	CU_ASSERT(t.tv_sec - now.tv_sec >= 2 && t.tv_sec - now.tv_sec <= 4);
	t = spool__clock_after_us(CLOCK_MONOTONIC, 999999);
	CU_ASSERT(t.tv_nsec >= 0 && t.tv_nsec < 1000000000);
	CU_ASSERT(t.tv_sec - now.tv_sec >= 0 && t.tv_sec - now.tv_sec <= 2);
}

/* ---- Exclusive pools -------------------------------------------------- */

/* While a pool holds the exclusive lock "nightly", a second pool asking
 * for it fails with SPOOL_EBUSY naming the lock (another name is fine);
 * once the first is freed the lock is free again. */
static void
test_exclusive(void)
{
	const char	*qs[] = { "eq" };
	spool_pool_opts	 o;
	spool_pool	*p1 = NULL, *p2 = NULL, *p3 = NULL;
	spool		*q;

	q = real_open();
	opts_init(&o, qs, 1, NULL);	/* none of these pools runs */
	o.exclusive = "nightly";
	TU_RC(spool_pool_new(&p1, tu_db, h_none, NULL, &o), SPOOL_OK);
	TU_RC(spool_pool_errcode(p1), SPOOL_OK);
	CU_ASSERT_STRING_EQUAL(spool_pool_errmsg(p1), "no error");
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM locks WHERE "
	    "name = 'nightly'"), 1);
	TU_RC(spool_pool_new(&p2, tu_db, h_none, NULL, &o), SPOOL_EBUSY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p2);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_pool_errmsg(p2), "nightly"));
	TU_RC(spool_pool_errcode(p2), SPOOL_EBUSY);
	TU_RC(spool_pool_run(p2), SPOOL_EINVAL);
	spool_pool_free(p2);
	/* The failed pool did not take the lock from its holder. */
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM locks WHERE "
	    "name = 'nightly'"), 1);
	o.exclusive = "weekly";
	TU_RC(spool_pool_new(&p2, tu_db, h_none, NULL, &o), SPOOL_OK);
	spool_pool_free(p2);
	spool_pool_free(p1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM locks"), 0);
	o.exclusive = "nightly";
	TU_RC(spool_pool_new(&p3, tu_db, h_none, NULL, &o), SPOOL_OK);
	spool_pool_free(p3);
	spool_close(q);
}

/* ---- Reaping and flushes ---------------------------------------------- */

/* In a pool the engine's reap timer does the reaping: claims do not
 * reap again every second on the hot path (one reap at the first claim,
 * none in the 1.5 s after it with a 30 s lease, whose timer is 5 s). */
static void
test_reap_once(void)
{
	const char	*qs[] = { "ro" };
	struct slow	 sl;
	spool_pool_opts	 o;
	struct rec	*r;
	spool_pool	*p;
	spool		*q;
	int		 runs;

	r = rec_new();
	slow_init(&sl, r, 50);
	q = real_open();
	enqueue_n(q, "ro", "task", 200, NULL);
	opts_init(&o, qs, 1, r);
	o.min_workers = o.max_workers = 2;
	o.prefetch = 0;
	o.max_time_ms = 1500;
	if ((p = pool_make(h_slow, &sl, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	runs = sqlite3_stmt_status(p->q->stmt[SPOOL_SQL_REAP_EXPIRED],
	    SQLITE_STMTSTATUS_RUN, 0);
	CU_ASSERT(load(&sl.calls) > 20);
	CU_ASSERT_EQUAL(runs, 1);
	if (runs != 1)
		fprintf(stderr, "\nreaped %d times\n", runs);
	spool_pool_free(p);
out:
	spool_close(q);
	rec_free(r);
}

/* A flush that fails keeps its outcomes: h_lock keeps a result, says it
 * started, and waits to be released. */
struct lock {
	int		 started;	/* atomic */
	int		 release;	/* atomic */
};

static int
h_lock(spool_job *job, void *arg)
{
	struct lock	*lk = arg;

	spool_job_set_result(job, "kept", 4);
	store(&lk->started, 1);
	(void)wait_flag(&lk->release, 5000);
	return (SPOOL_DONE);
}

/* With the database locked by another connection past the pool's busy
 * timeout, the outcome cannot be committed: the engine keeps it, says
 * why, retries, and commits it once the lock is gone (one result). */
static void
test_flush_retry(void)
{
	const char	*qs[] = { "lk" };
	struct lock	 lk;
	spool_pool_opts	 o;
	spool_pool_stats st;
	struct runner	 run;
	struct rec	*r;
	spool_pool	*p;
	spool		*q;
	sqlite3		*db = NULL;
	char		 state[32];
	int64_t		 id;

	r = rec_new();
	memset(&lk, 0, sizeof lk);
	q = real_open();
	TU_RC(spool_enqueue(&id, q, "lk", "x", 1, NULL), SPOOL_OK);
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	if ((p = pool_make(h_lock, &lk, &o)) == NULL)
		goto out;
	TU_RC(spool_busy_timeout(p->q, 100), SPOOL_OK);
	runner_start(&run, p);
	CU_ASSERT_FATAL(wait_flag(&lk.started, 5000) == 1);

	/* Another connection takes the write lock while the handler runs. */
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(tu_db, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	store(&lk.release, 1);
	sleep_ms(700);	/* several failed flushes */
	CU_ASSERT_STRING_EQUAL(q_text(q, state, sizeof state,
	    "SELECT state FROM tasks WHERE id = %lld", (long long)id),
	    "running");
	CU_ASSERT_EQUAL(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	TU_RC(runner_join(&run), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	CU_ASSERT_EQUAL(st.succeeded, 1);
	CU_ASSERT(strstr(spool_pool_errmsg(p), "locked") != NULL);
	TU_RC(spool_pool_errcode(p), SPOOL_EBUSY);	/* ridden out, kept */
	spool_pool_free(p);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM results WHERE task_id = "
	    "%lld AND output = 'kept'", (long long)id), 1);
	CU_ASSERT_STRING_EQUAL(q_text(q, state, sizeof state,
	    "SELECT state FROM tasks WHERE id = %lld", (long long)id),
	    "succeeded");
out:
	spool_close(q);
	rec_free(r);
}

/* ---- Load shedding ---------------------------------------------------- */

/* Load shedding on a fake CPU reading: the handler's arg (h_none does
 * not read it) holds it, and the probe finds it there. */
struct shed {
	int		 permille;	/* atomic */
};

static double
shed_probe(spool_pool *p)
{
	struct shed	*sh = p->arg;

	return (__atomic_load_n(&sh->permille, __ATOMIC_ACQUIRE) / 1000.0);
}

static void
shed_set(struct shed *sh, double v)
{
	__atomic_store_n(&sh->permille, (int)(v * 1000), __ATOMIC_RELEASE);
}

/* Wait until the pool's shedding flag is want; 1 if it got there. */
static int
shed_wait(spool_pool *p, int want, int64_t ms)
{
	spool_pool_stats	 st;
	int64_t			 end = mono_ms() + ms;

	do {
		spool_pool_stats_get(&st, p);
		if (st.shedding == want)
			return (1);
		sleep_ms(10);
	} while (mono_ms() < end);
	return (0);
}

/* Above cpu_max the pool stops claiming; it resumes only below 80% of
 * cpu_max, not as soon as the load dips under the maximum. */
static void
test_load_shedding(void)
{
	const char		*qs[] = { "shed" };
	struct shed		 sh;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	struct runner		 run;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 t0;

	r = rec_new();
	q = real_open();
	opts_init(&o, qs, 1, r);
	o.cpu_max = 0.5;
	o.tick_ms = 20;
	shed_set(&sh, 0.9);
	if ((p = pool_make(h_none, &sh, &o)) == NULL)
		goto out;
	p->cpu_probe = shed_probe;
	runner_start(&run, p);
	CU_ASSERT(shed_wait(p, 1, 2000));

	/* Shedding: new tasks wait, even when the pool is woken. */
	enqueue_n(q, "shed", "task", 5, NULL);
	spool_pool_wake(p);
	sleep_ms(200);
	spool_pool_stats_get(&st, p);
	CU_ASSERT_EQUAL(st.claimed, 0);
	/* Under the maximum but above 80% of it: still shedding. */
	shed_set(&sh, 0.45);
	sleep_ms(200);
	spool_pool_stats_get(&st, p);
	CU_ASSERT_EQUAL(st.shedding, 1);
	CU_ASSERT_EQUAL(st.claimed, 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE state = "
	    "'ready'"), 5);
	/* Below 80%: claims resume and the tasks run. */
	shed_set(&sh, 0.3);
	CU_ASSERT(shed_wait(p, 0, 2000));
	t0 = mono_ms();
	do {
		spool_pool_stats_get(&st, p);
		if (st.succeeded == 5)
			break;
		sleep_ms(10);
	} while (mono_ms() - t0 < 5000);
	spool_pool_stop(p, 0);
	TU_RC(runner_join(&run), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	CU_ASSERT_EQUAL(st.succeeded, 5);
	spool_pool_free(p);
out:
	spool_close(q);
	rec_free(r);
}

/* ---- Claims sized by the engine, and times as they happened ----------- */

#define TIMED_MAX	64

/* What h_timed saw, by task id: the handler's own wall clock. */
struct timed {
	struct rec	*rec;
	int64_t		 start[TIMED_MAX];	/* atomic */
	int64_t		 end[TIMED_MAX];	/* atomic */
};

/* Note the wall clock around a 40 ms sleep, by task id. */
static int
h_timed(spool_job *job, void *arg)
{
	struct timed	*tm = arg;
	int64_t		 id = spool_job_id(job);

	rec_start(tm->rec, job);
	if (id > 0 && id < TIMED_MAX)
		store64(&tm->start[id], wall_ms());
	sleep_ms(40);
	if (id > 0 && id < TIMED_MAX)
		store64(&tm->end[id], wall_ms());
	return (SPOOL_DONE);
}

/* One thread with four tasks claimed ahead of it: each attempt's start,
 * end and duration are the handler's own (within 10 ms), not the claim's
 * and the commit's, and the tasks' waits grow with their place in line
 * (the last one waited for the seven before it). */
static void
test_times_truthful(void)
{
	const char		*qs[] = { "tq" };
	struct timed		 tm;
	spool_pool_opts		 o;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 ids[8], t0 = 0, worst = 0, d;
	size_t			 i;

	r = rec_new();
	memset(&tm, 0, sizeof tm);
	tm.rec = r;
	q = real_open();
	enqueue_n(q, "tq", "t", 8, ids);
	CU_ASSERT_FATAL(ids[7] < TIMED_MAX);
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 1;
	if ((p = pool_make(h_timed, &tm, &o)) == NULL)
		goto out;
	p->ahead_fixed = 4;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);
	for (i = 0; i < 8; i++) {
		int64_t	 id = ids[i], s = tm.start[id], e = tm.end[id];

		CU_ASSERT(s > 0 && e >= s);
		/* The attempt row, the task row and the result say the same. */
		d = q_int(q, "SELECT abs(started_ms - %lld) + abs(finished_ms - "
		    "%lld) FROM attempts WHERE task_id = %lld AND outcome = "
		    "'succeeded'", (long long)s, (long long)e, (long long)id);
		CU_ASSERT(d >= 0 && d <= 10);
		if (d > worst)
			worst = d;
		d = q_int(q, "SELECT abs(started_ms - %lld) + abs(finished_ms - "
		    "%lld) FROM tasks WHERE id = %lld", (long long)s,
		    (long long)e, (long long)id);
		CU_ASSERT(d >= 0 && d <= 10);
		d = q_int(q, "SELECT abs(duration_ms - %lld) FROM results WHERE "
		    "task_id = %lld", (long long)(e - s), (long long)id);
		CU_ASSERT(d >= 0 && d <= 10);
		if (i == 0)
			t0 = s;
	}
	/* Waits: the eighth task started after seven 40 ms runs. */
	CU_ASSERT(q_int(q, "SELECT started_ms - run_at_ms FROM tasks WHERE id "
	    "= %lld", (long long)ids[7]) >= 7 * 40 - 10);
	CU_ASSERT(tm.start[ids[7]] - t0 >= 7 * 40);
	if (worst > 10)
		fprintf(stderr, "\ntimes off by %lld ms\n", (long long)worst);
out:
	spool_close(q);
	rec_free(r);
}

/* Note the start in the recorder arg and stop its pool: the first task
 * run ends the test. */
static int
h_first_stops(spool_job *job, void *arg)
{
	struct rec	*r = arg;

	rec_start(r, job);
	spool_pool_stop(r->pool, 0);
	return (SPOOL_DONE);
}

/* An idle pool sleeps until the next scheduled task is due, whatever its
 * priority: with a task of priority 9 due in an hour and one of priority
 * 0 due in 600 ms, the second starts when it is due (the next due time is
 * found level by level through tasks_ready; taking the top level's
 * would leave it to the engine's once-a-second chores, about 400 ms
 * late). */
static void
test_scheduled_levels(void)
{
	const char		*qs[] = { "sched" };
	spool_enqueue_opts	 high = SPOOL_ENQUEUE_OPTS_INIT;
	spool_enqueue_opts	 low = SPOOL_ENQUEUE_OPTS_INIT;
	spool_pool_opts		 o;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 hi_id = 0, lo_id = 0, late;

	r = rec_new();
	q = real_open();
	high.priority = 9;
	high.delay_ms = 3600 * 1000;
	low.priority = 0;
	low.delay_ms = 600;
	TU_RC(spool_enqueue(&hi_id, q, "sched", "high", 4, &high), SPOOL_OK);
	TU_RC(spool_enqueue(&lo_id, q, "sched", "low", 3, &low), SPOOL_OK);
	opts_init(&o, qs, 1, r);
	o.min_workers = o.max_workers = 1;
	if ((p = pool_make(h_first_stops, r, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);
	CU_ASSERT(started(r, lo_id));
	CU_ASSERT(!started(r, hi_id));
	/* How late it started after it was due, as the task row says. */
	late = q_int(q, "SELECT started_ms - run_at_ms FROM tasks WHERE id = "
	    "%lld", (long long)lo_id);
	CU_ASSERT(late >= 0 && late < 250);
	if (late < 0 || late >= 250)
		fprintf(stderr, "\nthe task due in 600 ms started %lld ms late\n",
		    (long long)late);
out:
	spool_close(q);
	rec_free(r);
}

/* A task claimed ahead of a busy thread reads as claimed, not running,
 * in spool_stats, spool_list, spool_get and the views; the running one
 * has its start written within a few ms of the handler's start. */
static void
test_claimed_visible(void)
{
	const char		*qs[] = { "cv" };
	spool_list_opts		 lo = SPOOL_LIST_OPTS_INIT;
	spool_queue_stats	*s = NULL;
	spool_task_info		*t = NULL;
	struct gate		 g;
	spool_pool_stats	 st;
	struct runner		 run;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	size_t			 n = 0, i;
	int64_t			 t0, first;

	r = rec_new();
	g.rec = r;
	q = real_open();
	if ((p = gated_pool(q, qs, 6, NULL, &g, &run)) == NULL)
		goto out;
	/* Wait for the state itself: one start written, three claimed. */
	t0 = mono_ms();
	while (q_int(q, "SELECT count(*) FROM tasks WHERE state = 'running' "
	    "AND started_ms IS NOT NULL") != 1 || q_int(q, "SELECT count(*) "
	    "FROM tasks WHERE state = 'running'") != 4) {
		if (mono_ms() - t0 > 5000)
			break;
		sleep_ms(2);
	}
	CU_ASSERT(mono_ms() - t0 <= 5000);

	TU_RC(spool_stats(&s, &n, q, "cv"), SPOOL_OK);
	if (n == 1) {
		CU_ASSERT_EQUAL(s->running, 1);
		CU_ASSERT_EQUAL(s->claimed, 3);
		CU_ASSERT_EQUAL(s->expired, 0);
		CU_ASSERT_EQUAL(s->ready, 2);
	}
	spool_queue_stats_free(s, n);
	lo.queue = "cv";
	lo.state = SPOOL_RUNNING;
	TU_RC(spool_list(&t, &n, q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	if (n == 1) {
		CU_ASSERT_EQUAL(t[0].state, SPOOL_RUNNING);
		CU_ASSERT(t[0].started_ms > 0);
	}
	spool_task_info_free(t, n);
	lo.state = SPOOL_CLAIMED;
	TU_RC(spool_list(&t, &n, q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 3);
	for (i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(t[i].state, SPOOL_CLAIMED);
		CU_ASSERT_EQUAL(t[i].started_ms, 0);
	}
	spool_task_info_free(t, n);
	lo.state = 0;
	TU_RC(spool_list(&t, &n, q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 6);
	spool_task_info_free(t, n);
	CU_ASSERT_STRING_EQUAL(spool_state_name(SPOOL_CLAIMED), "claimed");
	CU_ASSERT_STRING_EQUAL(spool_state_name(SPOOL_EXPIRED), "expired");
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM spool_running"), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT running * 100 + claimed * 10 + "
	    "expired FROM spool_queues WHERE queue = 'cv'"), 130);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM spool_leases WHERE "
	    "lease_state = 'claimed' AND started IS NULL"), 3);
	/* The handler's start, as written. */
	pthread_mutex_lock(&r->mu);
	first = r->start_id[0];
	pthread_mutex_unlock(&r->mu);
	CU_ASSERT(q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld AND "
	    "started_ms IS NOT NULL", (long long)first) == 1);

	/* Drain first (the claimed ones go back), then let the one run. */
	spool_pool_stop(p, 0);
	t0 = mono_ms();
	do {
		spool_pool_stats_get(&st, p);
		sleep_ms(2);
	} while (st.prefetched > 0 && mono_ms() - t0 < 5000);
	store(&g.open, 1);
	TU_RC(runner_join(&run), SPOOL_OK);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE state = "
	    "'running'"), 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE state = "
	    "'ready' AND attempts = 0 AND started_ms IS NULL"), 5);
out:
	spool_close(q);
	rec_free(r);
}

/* Sample the most tasks a pool held claimed ahead of its threads. */
struct sampler {
	pthread_t	 t;
	spool_pool	*p;
	int		 off;
	int		 max;
};

static void *
sampler_main(void *arg)
{
	struct sampler		*s = arg;
	spool_pool_stats	 st;

	while (!load(&s->off)) {
		spool_pool_stats_get(&st, s->p);
		if (st.prefetched > s->max)
			s->max = st.prefetched;
		sleep_ms(1);
	}
	return (NULL);
}

/* Run a pool of fn until empty while sampling it; *max is the most it
 * held ahead, *refill_at the engine's last sizing (half of what it holds
 * ahead). */
static void
run_sampled(spool_handler fn, void *arg, const spool_pool_opts *o,
    spool_pool_stats *st, int *max, int *refill_at)
{
	struct sampler	 sm;
	spool_pool	*p;

	*max = *refill_at = -1;
	if ((p = pool_make(fn, arg, o)) == NULL)
		return;
	memset(&sm, 0, sizeof sm);
	sm.p = p;
	CU_ASSERT_FATAL(pthread_create(&sm.t, NULL, sampler_main, &sm) == 0);
	TU_RC(spool_pool_run(p), SPOOL_OK);
	store(&sm.off, 1);
	pthread_join(sm.t, NULL);
	spool_pool_stats_get(st, p);
	pthread_mutex_lock(&p->mu);
	*refill_at = p->refill_at;
	pthread_mutex_unlock(&p->mu);
	spool_pool_free(p);
	*max = sm.max;
}

/* With default options the engine sizes its claims: 200 ms handlers on
 * two threads get no task held ahead beyond one a moment (a task is not
 * kept from idle workers elsewhere), no-op handlers get large claims. */
static void
test_ahead_sized(void)
{
	const char		*qs[] = { "az" };
	spool_pool_stats	 st;
	spool_pool_opts		 o;
	struct slow		 sl;
	struct rec		*r;
	spool			*q;
	int			 max, refill_at;

	r = rec_new();
	q = real_open();
	slow_init(&sl, r, 200);
	enqueue_n(q, "az", "slow", 8, NULL);
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 2;
	run_sampled(h_slow, &sl, &o, &st, &max, &refill_at);
	CU_ASSERT_EQUAL(st.succeeded, 8);
	CU_ASSERT(max >= 0 && max <= 2);
	CU_ASSERT_EQUAL(refill_at, 0);	/* none held ahead */

	rec_free(r);
	r = rec_new();
	o.cb_arg = r;	/* a new recorder for the second run */
	enqueue_n(q, "az", "fast", 20000, NULL);
	run_sampled(h_none, NULL, &o, &st, &max, &refill_at);
	CU_ASSERT_EQUAL(st.succeeded, 20000);
	/* The engine's last sizing (the threads empty each claim too fast
	 * for a sampler to see much). */
	CU_ASSERT(refill_at >= 64);
	if (refill_at < 64)
		fprintf(stderr, "\nno-op handlers: refill at %d\n", refill_at);
	spool_close(q);
	rec_free(r);
}

/* A flush whose claim fails still commits its outcomes: the retry
 * commits them without a claim (the loop's own claims go on). */
static void
test_flush_claim_fails(void)
{
	const char		*qs[] = { "fc" };
	spool_pool_stats	 st;
	struct slow		 sl;
	spool_pool_opts		 o;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;

	r = rec_new();
	slow_init(&sl, r, 2);
	q = real_open();
	enqueue_n(q, "fc", "f", 40, NULL);
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 1;
	if ((p = pool_make(h_slow, &sl, &o)) == NULL)
		goto out;
	p->ahead_fixed = 4;
	p->fail_flush_claims = 1;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	CU_ASSERT(strstr(spool_pool_errmsg(p), "claim: I/O error") != NULL);
	TU_RC(spool_pool_errcode(p), SPOOL_EIO);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(st.succeeded, 40);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE state = "
	    "'succeeded'"), 40);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts"), 40);
out:
	spool_close(q);
	rec_free(r);
}

/* The lines that say commits fail and that they resumed. */
struct hold_log {
	int		 cannot;	/* atomic */
	int		 again;		/* atomic */
};

/* on_log (given the recorder, whose user is a struct hold_log): count
 * them. */
static void
log_hold(const char *line, void *arg)
{
	struct hold_log	*lg = rec_of(arg)->user;

	if (strncmp(line, "cannot commit: ", 15) == 0 &&
	    strstr(line, "not starting tasks") != NULL)
		__atomic_fetch_add(&lg->cannot, 1, __ATOMIC_ACQ_REL);
	else if (strncmp(line, "committed again after ", 22) == 0)
		__atomic_fetch_add(&lg->again, 1, __ATOMIC_ACQ_REL);
}

/* While no outcome can be committed (every flush fails: a full disk, I/O
 * errors), the pool starts no task, not even those it claimed ahead and
 * holds: the threads wait, holding their outcomes, the stats say so, and one log line says why.  Once flushes
 * commit again it resumes by itself, says so once, and every task
 * succeeds exactly once. */
static void
test_flush_hold(void)
{
	const char		*qs[] = { "fh" };
	spool_pool_stats	 st;
	struct slow		 sl;
	struct hold_log		 lg;
	spool_pool_opts		 o;
	struct runner		 run;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 end;
	size_t			 s1, s2;
	int			 holding = 0;

	r = rec_new();
	slow_init(&sl, r, 5);
	memset(&lg, 0, sizeof lg);
	r->user = &lg;
	q = real_open();
	enqueue_n(q, "fh", "h", 30, NULL);
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 2;
	o.on_log = log_hold;
	if ((p = pool_make(h_slow, &sl, &o)) == NULL)
		goto out;
	/* Claims far ahead of the threads: the pool then holds tasks it
	 * could start, and must not. */
	p->ahead_fixed = 20;
	__atomic_store_n(&p->fail_flushes, 1, __ATOMIC_RELEASE);
	runner_start(&run, p);
	for (end = mono_ms() + 5000; mono_ms() < end; sleep_ms(2)) {
		spool_pool_stats_get(&st, p);
		if ((holding = st.holding) != 0)
			break;
	}
	CU_ASSERT_FATAL(holding);
	/* What started before the hold finishes; nothing more starts. */
	sleep_ms(50);
	s1 = rec_nstart(r);
	sleep_ms(300);
	s2 = rec_nstart(r);
	spool_pool_stats_get(&st, p);
	CU_ASSERT_EQUAL(s2, s1);
	CU_ASSERT(s1 >= 1 && s1 < 30);
	CU_ASSERT(st.holding == 1 && st.busy == 0);
	/* The tasks claimed ahead wait, unstarted (about 20). */
	CU_ASSERT(st.prefetched >= 10);
	if (st.prefetched < 10)
		fprintf(stderr, "\nheld back: %d started, %d waiting\n",
		    (int)s1, st.prefetched);
	CU_ASSERT_EQUAL(st.held, (int64_t)s1);
	CU_ASSERT_EQUAL(st.succeeded, 0);
	CU_ASSERT_EQUAL(load(&lg.cannot), 1);
	/* The fault clears: the pool goes on alone. */
	__atomic_store_n(&p->fail_flushes, 0, __ATOMIC_RELEASE);
	TU_RC(runner_join(&run), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(st.succeeded, 30);
	CU_ASSERT_EQUAL(st.holding, 0);
	CU_ASSERT_EQUAL(st.held, 0);
	CU_ASSERT_EQUAL(load(&lg.cannot), 1);
	CU_ASSERT_EQUAL(load(&lg.again), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE queue = "
	    "'fh' AND state = 'succeeded'"), 30);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts a JOIN tasks t "
	    "ON t.id = a.task_id WHERE t.queue = 'fh'"), 30);
out:
	spool_close(q);
	rec_free(r);
}

static CU_TestInfo pool_engine_tests[] = {
	{ "autoscale up and back down", test_autoscale },
	{ "timed waits never end in the past", test_deadlines },
	{ "exclusive lock", test_exclusive },
	{ "load shedding on measured CPU", test_load_shedding },
	{ "claims leave reaping to the engine", test_reap_once },
	{ "a failed flush keeps its outcomes", test_flush_retry },
	{ "times are the handler's, under claims ahead", test_times_truthful },
	{ "claimed ahead reads as claimed, not running", test_claimed_visible },
	{ "claims sized by handler time", test_ahead_sized },
	{ "a flush whose claim fails commits its outcomes", test_flush_claim_fails },
	{ "an idle pool wakes for a lower priority's due task", test_scheduled_levels },
	{ "no task starts while outcomes cannot be committed", test_flush_hold },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("pool-engine", pool_engine_tests));
}
