/*
 * t-pool.c -- worker pools (pool.c, engine*.c), the basics: draining a
 * queue, what handlers return and keep, retries, strategies, bad options,
 * the calls a pool job refuses, and the largest prefetch.  Stopping
 * (timeouts, cancels, lost leases, stops, limits) is in t-pool-stop.c,
 * the engine's own work (autoscaling, locks, shedding, reaping, flushes,
 * claims ahead and times) in t-pool-engine.c; what they share in
 * pool-util.c.
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

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool-util.h"

#define DRAIN_N		2000

/* ---- Draining a queue -------------------------------------------------- */

/* What h_drain saw. */
struct drain {
	int		 calls;		/* atomic */
	int64_t		 row;		/* atomic: workers rows the first saw */
};

/* A no-op handler; the first call checks the pool's workers row from a
 * connection of its own. */
static int
h_drain(spool_job *job, void *arg)
{
	struct drain	*dr = arg;
	spool		*q = NULL;
	int64_t		 v = -3;

	(void)job;
	if (__atomic_fetch_add(&dr->calls, 1, __ATOMIC_ACQ_REL) == 0) {
		if (spool_open(&q, tu_db, 0) == SPOOL_OK)
			v = q_int(q, "SELECT count(*) FROM workers WHERE "
			    "pid = %ld AND queues = '[\"drain\"]' AND "
			    "concurrency >= 1 AND id LIKE '%%:%ld:%%'",
			    (long)getpid(), (long)getpid());
		spool_close(q);
		store64(&dr->row, v);
	}
	return (SPOOL_DONE);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t	 x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x < y ? -1 : x > y);
}

/* A pool drains 2000 tasks until empty: each succeeds exactly once, with
 * one result and one history row, every outcome is reported once, the
 * counters agree, and the workers row lives exactly as long as the run. */
static void
test_drain(void)
{
	static int64_t		 ids[DRAIN_N], got[DRAIN_N];
	const char		*qs[] = { "drain" };
	struct drain		 dr = { 0, -100 };
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	size_t			 i;
	int			 succeeded = 0, same = 1;

	r = rec_new();
	q = real_open();
	enqueue_n(q, "drain", "work", DRAIN_N, ids);
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	if ((p = pool_make(h_drain, &dr, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_stats_get(&st, p);

	CU_ASSERT_EQUAL(load(&dr.calls), DRAIN_N);
	/* (A callback given another cb_arg than r aborts: rec_of.) */
	CU_ASSERT_EQUAL(load64(&dr.row), 1);
	CU_ASSERT_EQUAL(r->ndone, DRAIN_N);
	for (i = 0; i < r->ndone && i < DRAIN_N; i++) {
		got[i] = r->done[i].id;
		if (r->done[i].kind == SPOOL_OUTCOME_SUCCEEDED &&
		    !r->done[i].has_error && r->done[i].attempt == 1 &&
		    !r->done[i].timed_out &&
		    strcmp(r->done[i].queue, "drain") == 0)
			succeeded++;
	}
	CU_ASSERT_EQUAL(succeeded, DRAIN_N);
	qsort(ids, DRAIN_N, sizeof ids[0], cmp_i64);
	qsort(got, DRAIN_N, sizeof got[0], cmp_i64);
	for (i = 0; i < DRAIN_N; i++)
		if (ids[i] != got[i])
			same = 0;
	CU_ASSERT(same);	/* every id reported, none twice */

	CU_ASSERT_EQUAL(st.claimed, DRAIN_N);
	CU_ASSERT_EQUAL(st.succeeded, DRAIN_N);
	CU_ASSERT_EQUAL(st.retried, 0);
	CU_ASSERT_EQUAL(st.dead, 0);
	CU_ASSERT_EQUAL(st.cancelled, 0);
	CU_ASSERT_EQUAL(st.lease_lost, 0);
	CU_ASSERT_EQUAL(st.timed_out, 0);
	CU_ASSERT_EQUAL(st.released, 0);
	CU_ASSERT_EQUAL(st.busy, 0);
	CU_ASSERT_EQUAL(st.prefetched, 0);

	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'succeeded' AND attempts = 1 AND lease_owner IS NULL"),
	    DRAIN_N);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks"), DRAIN_N);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM results"), DRAIN_N);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts"), DRAIN_N);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(DISTINCT task_id) FROM attempts "
	    "WHERE outcome = 'succeeded' AND attempt = 1"), DRAIN_N);
	/* The row went when the run ended. */
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM workers"), 0);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM workers"), 0);
out:
	spool_close(q);
	rec_free(r);
}

/* ---- Results and errors ------------------------------------------------ */

/* What h_result's calls returned, each plus 100 (0: not called). */
struct results {
	int		 rc[5];		/* atomic */
};

/* "bin" keeps a binary result (replacing a first one), "text" a text
 * result, "bad" fails for good with an error (replacing a first one). */
static int
h_result(spool_job *job, void *arg)
{
	static const unsigned char	 bin[] = { 0x00, 0x01, 0xfe, 'x' };
	const char			*pl;
	struct results			*res = arg;
	size_t				 len;

	pl = spool_job_payload(job, &len);
	if (len == 3 && memcmp(pl, "bin", 3) == 0) {
		store(&res->rc[0], spool_job_set_result(job, "first", 5) + 100);
		store(&res->rc[1], spool_job_set_result(job, bin, sizeof bin) +
		    100);
		store(&res->rc[2], spool_job_set_result(job, NULL, 3) + 100);
		store(&res->rc[3], spool_job_set_result(job, bin,
		    SPOOL_PAYLOAD_MAX + 1) + 100);
		return (SPOOL_DONE);
	}
	if (len == 4 && memcmp(pl, "text", 4) == 0) {
		(void)spool_job_set_result(job, "hello, world", 12);
		return (SPOOL_DONE);
	}
	(void)spool_job_set_error(job, "first");
	store(&res->rc[4], spool_job_set_error(job, NULL) + 100);
	(void)spool_job_set_error(job, "boom: disk on fire");
	return (SPOOL_FAIL);
}

/* spool_job_set_result's bytes (the last ones set) are the task's result
 * and spool_job_set_error's text is the attempt's error; bad arguments to
 * either are SPOOL_EINVAL. */
static void
test_results(void)
{
	const char		*qs[] = { "res" };
	const struct done_rec	*d;
	struct results		 res;
	spool_pool_opts		 o;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	char			 buf[128];
	int64_t			 bin, text, bad;

	r = rec_new();
	memset(&res, 0, sizeof res);
	q = real_open();
	bin = enqueue1(q, "res", "bin");
	text = enqueue1(q, "res", "text");
	bad = enqueue1(q, "res", "bad");
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	if ((p = pool_make(h_result, &res, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);

	TU_RC(res.rc[0] - 100, SPOOL_OK);
	TU_RC(res.rc[1] - 100, SPOOL_OK);
	TU_RC(res.rc[2] - 100, SPOOL_EINVAL);
	TU_RC(res.rc[3] - 100, SPOOL_EINVAL);
	TU_RC(res.rc[4] - 100, SPOOL_EINVAL);

	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT hex(output) "
	    "|| '/' || typeof(output) FROM results WHERE task_id = %lld",
	    (long long)bin), "0001FE78/blob");
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT CAST(output "
	    "AS TEXT) FROM results WHERE task_id = %lld", (long long)text),
	    "hello, world");
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM results WHERE "
	    "task_id = %lld", (long long)bad), 0);
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT outcome || "
	    "'/' || error FROM attempts WHERE task_id = %lld", (long long)bad),
	    "failed/boom: disk on fire");
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT state || '/' "
	    "|| dead_reason || '/' || last_error FROM tasks WHERE id = %lld",
	    (long long)bad), "dead/failed/boom: disk on fire");
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE "
	    "error IS NULL AND outcome = 'succeeded'"), 2);

	CU_ASSERT_EQUAL(r->ndone, 3);
	if ((d = find_done(r, bin, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_SUCCEEDED);
		CU_ASSERT_FALSE(d->has_error);
	} else
		CU_FAIL("no outcome for bin");
	if ((d = find_done(r, bad, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_DEAD);
		CU_ASSERT_STRING_EQUAL(d->error, "boom: disk on fire");
	} else
		CU_FAIL("no outcome for bad");
out:
	spool_close(q);
	rec_free(r);
}

/* ---- Retry, fail, and bogus return values ----------------------------- */

/* "retry" always asks for a retry, "fail" fails for good, "bogus"
 * returns 42 once and then succeeds. */
static int
h_retry(spool_job *job, void *arg)
{
	const char	*pl;
	char		 err[64];
	size_t		 len;

	(void)arg;
	pl = spool_job_payload(job, &len);
	if (len == 5 && memcmp(pl, "retry", 5) == 0) {
		snprintf(err, sizeof err, "again %d", spool_job_attempt(job));
		(void)spool_job_set_error(job, err);
		return (SPOOL_RETRY);
	}
	if (len == 4 && memcmp(pl, "fail", 4) == 0) {
		(void)spool_job_set_error(job, "no hope");
		return (SPOOL_FAIL);
	}
	return (spool_job_attempt(job) == 1 ? 42 : SPOOL_DONE);
}

/* With a 20 ms fixed backoff and 3 attempts: SPOOL_RETRY every time is
 * dead "exhausted" after exactly 3 failed attempts spaced by the backoff;
 * SPOOL_FAIL is dead "failed" after 1; an unknown return value (42) is a
 * retryable failure whose error says so. */
static void
test_retry_fail(void)
{
	const char		*qs[] = { "rq" };
	const struct done_rec	*d;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	char			 buf[128], want[32];
	int64_t			 retry, fail, bogus, t0;
	int			 i;

	r = rec_new();
	make_queue("rq", 3, 20, 0);
	q = real_open();
	retry = enqueue1(q, "rq", "retry");
	fail = enqueue1(q, "rq", "fail");
	bogus = enqueue1(q, "rq", "bogus");
	opts_init(&o, qs, 1, r);
	r->stop_after_final = 3;		/* retries are scheduled: not "empty" */
	if ((p = pool_make(h_retry, NULL, &o)) == NULL)
		goto out;
	t0 = mono_ms();
	TU_RC(spool_pool_run(p), SPOOL_OK);
	CU_ASSERT(mono_ms() - t0 < GUARD_MS);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);

	/* Always retry: three failed attempts, then exhausted. */
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT state || '/' "
	    "|| dead_reason || '/' || attempts || '/' || last_error FROM tasks "
	    "WHERE id = %lld", (long long)retry), "dead/exhausted/3/again 3");
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE "
	    "task_id = %lld", (long long)retry), 3);
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT "
	    "group_concat(attempt || ':' || outcome || ':' || error, ',') FROM "
	    "(SELECT * FROM attempts WHERE task_id = %lld ORDER BY attempt)",
	    (long long)retry),
	    "1:failed:again 1,2:failed:again 2,3:failed:again 3");
	/* Each retry waited for its backoff. */
	CU_ASSERT(q_int(q, "SELECT min(b.started_ms - a.finished_ms) FROM "
	    "attempts a JOIN attempts b ON b.task_id = a.task_id AND "
	    "b.attempt = a.attempt + 1 WHERE a.task_id = %lld",
	    (long long)retry) >= 20);
	for (i = 0; i < 3; i++) {
		if ((d = find_done(r, retry, i)) == NULL) {
			CU_FAIL("missing outcome of retry");
			continue;
		}
		CU_ASSERT_EQUAL(d->attempt, i + 1);
		CU_ASSERT_EQUAL(d->kind, i < 2 ? SPOOL_OUTCOME_RETRYING :
		    SPOOL_OUTCOME_DEAD);
		snprintf(want, sizeof want, "again %d", i + 1);
		CU_ASSERT_STRING_EQUAL(d->error, want);
	}
	CU_ASSERT_PTR_NULL(find_done(r, retry, 3));

	/* SPOOL_FAIL: dead at once. */
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT state || '/' "
	    "|| dead_reason || '/' || attempts FROM tasks WHERE id = %lld",
	    (long long)fail), "dead/failed/1");
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT "
	    "group_concat(outcome || ':' || error) FROM attempts WHERE "
	    "task_id = %lld", (long long)fail), "failed:no hope");
	if ((d = find_done(r, fail, 0)) != NULL)
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_DEAD);
	CU_ASSERT_PTR_NULL(find_done(r, fail, 1));

	/* 42: a failed attempt saying so, then a retry that succeeded. */
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE "
	    "task_id = %lld AND attempt = 1 AND outcome = 'failed' AND "
	    "error LIKE '%%returned 42%%'", (long long)bogus), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE "
	    "task_id = %lld AND attempt = 2 AND outcome = 'succeeded'",
	    (long long)bogus), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld "
	    "AND state = 'succeeded'", (long long)bogus), 1);
	if ((d = find_done(r, bogus, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_RETRYING);
		CU_ASSERT_PTR_NOT_NULL(strstr(d->error, "42"));
	} else
		CU_FAIL("no outcome for bogus");

	CU_ASSERT_EQUAL(st.claimed, 6);
	CU_ASSERT_EQUAL(st.retried, 3);
	CU_ASSERT_EQUAL(st.dead, 2);
	CU_ASSERT_EQUAL(st.succeeded, 1);
out:
	spool_close(q);
	rec_free(r);
}

/* ---- Strategies -------------------------------------------------------- */

/* Note the start in the recorder arg; nothing else. */
static int
h_order(spool_job *job, void *arg)
{
	rec_start(arg, job);
	return (SPOOL_DONE);
}

/* Run one thread without prefetch over queues a and b with strategy
 * (weights for WEIGHTED), tasks enqueued b first, recording into r; the
 * first n starts are counted: *na from a. */
static void
run_strategy(struct rec *r, int strategy, const int *weights,
    size_t per_queue, size_t n, int *na)
{
	const char		*qs[] = { "a", "b" };
	spool_pool_opts		 o;
	spool_pool		*p;
	spool			*q;
	size_t			 i;

	*na = -1;
	q = real_open();
	enqueue_n(q, "b", "b", per_queue, NULL);
	enqueue_n(q, "a", "a", per_queue, NULL);
	opts_init(&o, qs, 2, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.strategy = strategy;
	o.weights = weights;
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	if ((p = pool_make(h_order, r, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(r->nstart, 2 * per_queue);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'succeeded'"), (int64_t)(2 * per_queue));
	*na = 0;
	for (i = 0; i < n && i < r->nstart; i++)
		if (r->start_q[i] == 'a')
			(*na)++;
out:
	spool_close(q);
}

/* PRIORITY takes every task of the first queue before any of the second
 * (although the second's are older). */
static void
test_strategy_priority(void)
{
	struct rec	*r = rec_new();
	size_t		 i;
	int		 na, order = 1;

	run_strategy(r, SPOOL_STRATEGY_PRIORITY, NULL, 10, 10, &na);
	CU_ASSERT_EQUAL(na, 10);
	for (i = 0; i < r->nstart && i < 20; i++)
		if (r->start_q[i] != (i < 10 ? 'a' : 'b'))
			order = 0;
	CU_ASSERT(order);
	rec_free(r);
}

/* ROUND_ROBIN alternates: of the first 20 tasks, about half are from
 * each queue (although all of b's are older). */
static void
test_strategy_round_robin(void)
{
	struct rec	*r = rec_new();
	int		 na;

	run_strategy(r, SPOOL_STRATEGY_ROUND_ROBIN, NULL, 20, 20, &na);
	CU_ASSERT(na >= 8 && na <= 12);
	rec_free(r);
}

/* WEIGHTED 3:1 takes about three tasks of a for one of b, even when it
 * claims one task at a time: of the first 20, 13 to 17 are from a. */
static void
test_strategy_weighted(void)
{
	static const int	 w[] = { 3, 1 };
	struct rec		*r = rec_new();
	int			 na;

	run_strategy(r, SPOOL_STRATEGY_WEIGHTED, w, 30, 20, &na);
	if (na < 13 || na > 17)
		fprintf(stderr, "\nweighted 3:1: %d of the first 20 from a\n",
		    na);
	CU_ASSERT(na >= 13 && na <= 17);
	rec_free(r);
}

/* ---- Bad options ------------------------------------------------------- */

/* One spool_pool_new that must fail with want: *p is set, its message
 * says something, it will not run, and it frees. */
static void
bad_pool(const char *path, spool_handler fn, const spool_pool_opts *o,
    int want, const char *what)
{
	spool_pool	*p = NULL;
	int		 rc;

	rc = spool_pool_new(&p, path, fn, NULL, o);
	if (rc != want)
		fprintf(stderr, "\nbad options (%s): %d, want %d\n", what, rc,
		    want);
	TU_RC(rc, want);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT(spool_pool_errmsg(p)[0] != '\0');
	CU_ASSERT(strcmp(spool_pool_errmsg(p), "no error") != 0);
	TU_RC(spool_pool_errcode(p), want);
	TU_RC(spool_pool_run(p), SPOOL_EINVAL);
	TU_RC(spool_pool_errcode(p), want);	/* the run refused: no new one */
	spool_pool_free(p);
}

/* Bad options and a missing database are refused (SPOOL_EINVAL,
 * SPOOL_ENOENT) with a message, and the failed pool can be freed. */
static void
test_bad_options(void)
{
	static const int	 zero_w[] = { 1, 0 };
	const char		*qs[] = { "ok", "ok2" };
	const char		*empty[] = { "" };
	const char		*nul[] = { "ok", NULL };
	spool_pool_opts		 o, good;
	spool_pool		*p = NULL;
	char			 missing[800];

	opts_init(&good, qs, 2, NULL);	/* none of these pools runs */
	bad_pool(tu_db, h_none, NULL, SPOOL_EINVAL, "NULL opts");
	bad_pool(tu_db, NULL, &good, SPOOL_EINVAL, "no handler");
	o = good;
	o.version = 0;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "version 0");
	o = good;
	o.queues = NULL;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "no queues");
	o = good;
	o.nqueues = 0;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "nqueues 0");
	o = good;
	o.min_workers = 3;
	o.max_workers = 2;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "min > max");
	o = good;
	o.strategy = 7;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "strategy 7");
	o.strategy = -1;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "strategy -1");
	o = good;
	o.strategy = SPOOL_STRATEGY_WEIGHTED;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "weighted, no weights");
	o.weights = zero_w;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "weight 0");
	o = good;
	o.queues = empty;
	o.nqueues = 1;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "empty queue name");
	o = good;
	o.queues = nul;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "NULL queue name");
	o = good;
	o.flags = 0x100;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "unknown flag");
	o = good;
	o.timeout_ms = -1;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "negative timeout");
	o = good;
	o.tick_ms = 5;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "tick 5 ms");
	o = good;
	o.cpu_max = 1.5;
	bad_pool(tu_db, h_none, &o, SPOOL_EINVAL, "cpu_max 1.5");
	snprintf(missing, sizeof missing, "%s/missing.db", tu_dir);
	bad_pool(missing, h_none, &good, SPOOL_ENOENT, "missing database");
	CU_ASSERT_EQUAL(access(missing, F_OK), -1);
	TU_RC(spool_pool_new(NULL, tu_db, h_none, NULL, &good), SPOOL_EINVAL);
	/* The good options do make a pool. */
	TU_RC(spool_pool_new(&p, tu_db, h_none, NULL, &good), SPOOL_OK);
	spool_pool_free(p);
	spool_pool_free(NULL);
}

/* open_flags are the flags for spool_open, SPOOL_OPEN_CREATE too (issue
 * 15: it was dropped): a pool with it makes a missing database (mode
 * 0600) and works it; without it the file stays missing (above). */
static void
test_open_create(void)
{
	const char	*qs[] = { "oc" };
	spool_pool_opts	 o;
	struct rec	*r = rec_new();
	spool_pool	*p = NULL;
	spool		*q = NULL;
	struct stat	 sb;
	char		 path[800];
	int		 rc;

	snprintf(path, sizeof path, "%s/created.db", tu_dir);
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.open_flags = SPOOL_OPEN_CREATE;
	rc = spool_pool_new(&p, path, h_none, NULL, &o);
	if (rc != SPOOL_OK)
		fprintf(stderr, "\nspool_pool_new: %s\n", spool_pool_errmsg(p));
	TU_RC(rc, SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
	if (rc == SPOOL_OK)
		TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);
	TU_RC(spool_open(&q, path, 0), SPOOL_OK);
	spool_close(q);
	rec_free(r);
}

/* Pool options of a version newer than the library knows are refused
 * with SPOOL_EINVAL and a message naming the struct and the version,
 * before the database is opened (or created) (issue 15). */
static void
test_opts_version_unknown(void)
{
	const char	*qs[] = { "ov" };
	spool_pool_opts	 o;
	spool_pool	*p = NULL;
	char		 path[800];

	snprintf(path, sizeof path, "%s/created.db", tu_dir);
	opts_init(&o, qs, 1, NULL);	/* it never runs */
	o.version = 99;
	o.open_flags = SPOOL_OPEN_CREATE;
	TU_RC(spool_pool_new(&p, path, h_none, NULL, &o), SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	TU_VERSION_REFUSED(spool_pool_errmsg(p), "spool_pool_opts");
	TU_RC(spool_pool_errcode(p), SPOOL_EINVAL);
	TU_RC(spool_pool_run(p), SPOOL_EINVAL);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(access(path, F_OK), -1);
}

/* ---- What a pool job refuses ------------------------------------------ */

/* What h_direct's calls returned (each plus 100), and the lease it saw. */
struct direct {
	int		 rc[6];		/* atomic */
	int64_t		 lease[3];	/* atomic */
};

/* Try the calls a handler must not make, and watch the lease renewed. */
static int
h_direct(spool_job *job, void *arg)
{
	struct direct	*dc = arg;
	size_t		 len = 0;
	const void	*pl;

	store(&dc->rc[0], spool_job_complete(job, "x", 1) + 100);
	store(&dc->rc[1], spool_job_fail(job, "x", 0) + 100);
	store(&dc->rc[2], spool_job_fail(job, "x", SPOOL_FAIL_PERMANENT) + 100);
	store(&dc->rc[3], spool_job_release(job) + 100);
	store(&dc->rc[4], spool_job_heartbeat(job, 0) + 100);
	pl = spool_job_payload(job, &len);
	store(&dc->rc[5], len == 3 && memcmp(pl, "dir", 3) == 0 &&
	    spool_job_attempt(job) == 1 && strcmp(spool_job_queue(job),
	    "dq") == 0 ? 1 : 2);
	/* The engine renews the lease (300 ms, every 100 ms). */
	store64(&dc->lease[0], spool_job_lease_until_ms(job));
	sleep_ms(350);
	store64(&dc->lease[1], spool_job_lease_until_ms(job));
	store64(&dc->lease[2], wall_ms());
	return (SPOOL_DONE);
}

/* Inside a handler, spool_job_complete, _fail and _release are
 * SPOOL_EINVAL and change nothing (the task still succeeds once, by the
 * handler's return), spool_job_heartbeat is SPOOL_OK while the lease
 * holds, and the job's lease time follows the engine's renewals. */
static void
test_direct_calls(void)
{
	const char		*qs[] = { "dq" };
	const struct done_rec	*d;
	struct direct		 dc;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;
	int64_t			 id;

	r = rec_new();
	memset(&dc, 0, sizeof dc);
	q = real_open();
	id = enqueue1(q, "dq", "dir");
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.lease_ms = 300;
	if ((p = pool_make(h_direct, &dc, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	TU_RC(dc.rc[0] - 100, SPOOL_EINVAL);
	TU_RC(dc.rc[1] - 100, SPOOL_EINVAL);
	TU_RC(dc.rc[2] - 100, SPOOL_EINVAL);
	TU_RC(dc.rc[3] - 100, SPOOL_EINVAL);
	TU_RC(dc.rc[4] - 100, SPOOL_OK);
	CU_ASSERT_EQUAL(dc.rc[5], 1);
	CU_ASSERT(dc.lease[1] > dc.lease[0]);
	CU_ASSERT(dc.lease[1] > dc.lease[2]);	/* renewed: still ahead */
	if ((d = find_done(r, id, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_SUCCEEDED);
	} else
		CU_FAIL("no outcome");
	CU_ASSERT_EQUAL(r->ndone, 1);
	CU_ASSERT_EQUAL(st.succeeded, 1);
	CU_ASSERT_EQUAL(st.lease_lost, 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE "
	    "task_id = %lld AND outcome = 'succeeded'", (long long)id), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts"), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM results"), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld "
	    "AND state = 'succeeded'", (long long)id), 1);
out:
	spool_close(q);
	rec_free(r);
}

/* ---- The largest prefetch ---------------------------------------------- */

/* The largest prefetch a pool takes: its claims stay within what one
 * claim may take, so outcomes keep being committed. */
static void
test_prefetch_max(void)
{
	const char		*qs[] = { "pm" };
	spool_pool_stats	 st;
	spool_pool_opts		 o;
	struct rec		*r;
	spool_pool		*p;
	spool			*q;

	r = rec_new();
	q = real_open();
	enqueue_n(q, "pm", "p", 25000, NULL);
	opts_init(&o, qs, 1, r);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 2;
	o.prefetch = 10000;
	if ((p = pool_make(h_none, NULL, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(st.succeeded, 25000);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE state = "
	    "'succeeded'"), 25000);
out:
	spool_close(q);
	rec_free(r);
}

static CU_TestInfo pool_tests[] = {
	{ "drain 2000 tasks until empty", test_drain },
	{ "result bytes and error text", test_results },
	{ "retry, fail, bogus return value", test_retry_fail },
	{ "strategy: priority", test_strategy_priority },
	{ "strategy: round robin", test_strategy_round_robin },
	{ "strategy: weighted 3:1", test_strategy_weighted },
	{ "bad options", test_bad_options },
	{ "open_flags: SPOOL_OPEN_CREATE makes the file", test_open_create },
	{ "options of an unknown version", test_opts_version_unknown },
	{ "pool jobs refuse direct calls", test_direct_calls },
	{ "the largest prefetch still commits", test_prefetch_max },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("pool", pool_tests));
}
