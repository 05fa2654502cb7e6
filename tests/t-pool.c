/*
 * t-pool.c -- worker pools (pool.c, engine*.c): draining a queue, what
 * handlers return and keep, retries, timeouts, cancellation, lost leases,
 * stopping, limits, strategies, autoscaling, exclusive runs, bad options
 * and the calls a pool job refuses.
 *
 * The engine runs on the wall clock (the pool opens its own connection),
 * while tu_q runs on the fake clock in 2027: so every task here is
 * enqueued through a handle on the real clock, and tu_q only creates
 * queues (their settings do not depend on the clock).  Callbacks run in
 * the thread that called spool_pool_run, which is not always the test's,
 * and handlers in worker threads: neither calls CUnit, they record what
 * they saw under a lock or in atomics, and the test asserts.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define REC_MAX		2100	/* outcomes and starts recorded per test */
#define GUARD_MS	8000	/* max_time of every pool: a hang fails */
#define DRAIN_N		2000

/* ---- Clocks and waiting ------------------------------------------------ */

static int64_t
mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* The wall clock, as the engine and the database use it. */
static int64_t
wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static void
sleep_ms(int64_t ms)
{
	struct timespec	 ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		continue;
}

static int
load(const int *v)
{
	return (__atomic_load_n(v, __ATOMIC_ACQUIRE));
}

static void
store(int *v, int x)
{
	__atomic_store_n(v, x, __ATOMIC_RELEASE);
}

static int64_t
load64(const int64_t *v)
{
	return (__atomic_load_n(v, __ATOMIC_ACQUIRE));
}

static void
store64(int64_t *v, int64_t x)
{
	__atomic_store_n(v, x, __ATOMIC_RELEASE);
}

/* Wait up to ms for *flag to be nonzero; returns its value. */
static int
wait_flag(const int *flag, int64_t ms)
{
	int64_t	 end = mono_ms() + ms;
	int	 v;

	while ((v = load(flag)) == 0 && mono_ms() < end)
		sleep_ms(1);
	return (v);
}

/* ---- The database, on the real clock ----------------------------------- */

/* A handle on the test database on the wall clock, like the pool's. */
static spool *
real_open(void)
{
	spool	*q = NULL;
	int	 rc;

	if ((rc = spool_open(&q, tu_db, 0)) != SPOOL_OK) {
		fprintf(stderr, "\nreal_open: %s\n", spool_errmsg(q));
		spool_close(q);
		CU_FAIL_FATAL("real_open");
		return (NULL);
	}
	return (q);
}

/* The integer of the first row of printf-built sql on q: -1 if there is
 * no row, -2 on an error.  No CUnit calls, so any thread may use it. */
static int64_t
q_int(spool *q, const char *fmt, ...)
{
	sqlite3_stmt	*st;
	va_list		 ap;
	char		*sql;
	int64_t		 v = -1;

	va_start(ap, fmt);
	sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	if (sql == NULL)
		return (-2);
	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "\nq_int: %s: %s\n", sql,
		    sqlite3_errmsg(q->db));
		sqlite3_free(sql);
		return (-2);
	}
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		v = sqlite3_column_int64(st, 0);
		break;
	case SQLITE_DONE:
		break;
	default:
		v = -2;
	}
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return (v);
}

/* The text of the first row of printf-built sql on q, copied into buf
 * ("" if no row or NULL, "?error" on an error). */
static const char *
q_text(spool *q, char *buf, size_t len, const char *fmt, ...)
{
	sqlite3_stmt		*st;
	const unsigned char	*s;
	va_list			 ap;
	char			*sql;

	snprintf(buf, len, "?error");
	va_start(ap, fmt);
	sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	if (sql == NULL)
		return (buf);
	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) == SQLITE_OK) {
		buf[0] = '\0';
		if (sqlite3_step(st) == SQLITE_ROW &&
		    (s = sqlite3_column_text(st, 0)) != NULL)
			snprintf(buf, len, "%s", (const char *)s);
		sqlite3_finalize(st);
	} else
		fprintf(stderr, "\nq_text: %s: %s\n", sql,
		    sqlite3_errmsg(q->db));
	sqlite3_free(sql);
	return (buf);
}

/* Enqueue text on queue through q (real clock); returns the id. */
static int64_t
enqueue1(spool *q, const char *queue, const char *text)
{
	int64_t	 id = 0;

	TU_RC(spool_enqueue(&id, q, queue, text, strlen(text), NULL),
	    SPOOL_OK);
	return (id);
}

/* Enqueue n tasks with payload text on queue through q; ids may be NULL. */
static void
enqueue_n(spool *q, const char *queue, const char *text, size_t n,
    int64_t *ids)
{
	spool_task	 t[500];
	size_t		 i, k, chunk;

	for (i = 0; i < n; i += chunk) {
		chunk = n - i < 500 ? n - i : 500;
		for (k = 0; k < chunk; k++) {
			t[k].queue = queue;
			t[k].payload = text;
			t[k].len = strlen(text);
			t[k].opts = NULL;
		}
		TU_RC(spool_enqueue_many(ids != NULL ? ids + i : NULL, NULL, q,
		    t, chunk), SPOOL_OK);
	}
}

/* Create queue with max_attempts, a fixed backoff without jitter and a
 * timeout (0: none).  Settings do not depend on the clock, so tu_q will
 * do. */
static void
make_queue(const char *name, int max_attempts, int64_t backoff_ms,
    int64_t timeout_ms)
{
	spool_queue_opts	 o = SPOOL_QUEUE_OPTS_INIT;

	o.set = SPOOL_QUEUE_BACKOFF | SPOOL_QUEUE_BACKOFF_BASE |
	    SPOOL_QUEUE_BACKOFF_JITTER | SPOOL_QUEUE_MAX_ATTEMPTS;
	o.backoff = SPOOL_BACKOFF_FIXED;
	o.backoff_base_ms = backoff_ms;
	o.backoff_jitter = 0;
	o.max_attempts = max_attempts;
	if (timeout_ms > 0) {
		o.set |= SPOOL_QUEUE_TIMEOUT;
		o.timeout_ms = timeout_ms;
	}
	TU_RC(spool_queue_create(tu_q, name, &o), SPOOL_OK);
}

/* ---- What the pool reported -------------------------------------------- */

struct done_rec {
	int64_t		 id;
	int		 kind;
	int		 attempt;
	int		 timed_out;
	int64_t		 at_ms;		/* monotonic */
	char		 queue[16];
	int		 has_error;
	char		 error[160];
};

/* Everything the callbacks and handlers of one test record, under rec_mu.
 * Reset before each test, while no pool thread exists. */
static pthread_mutex_t	 rec_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rec {
	spool_pool	*pool;		/* callbacks may stop it */
	int		 stop_after_final;	/* stop after so many ends */
	int		 nfinal;
	void		(*hook)(const spool_outcome *);
	int		 bad_arg;	/* callbacks given another cb_arg */
	size_t		 ndone;
	struct done_rec	 done[REC_MAX];
	size_t		 nstart;
	int64_t		 start_id[REC_MAX];
	char		 start_q[REC_MAX];

	int		 ticks;
	int		 tick_max_workers;
	int64_t		 tick_target;	/* succeeded count that ends the work */
	int64_t		 tick_done_ms;	/* when a tick first saw it */
	int		 tick_min;	/* stop once workers is back to this */
	int64_t		 tick_back_ms;	/* when workers was back at min */
	int		 tick_back_workers;
} R;

static void
rec_reset(void)
{
	memset(&R, 0, sizeof R);
}

/* on_done: record the outcome; stop the pool after stop_after_final. */
static void
rec_done(const spool_outcome *o, void *arg)
{
	struct done_rec	*d;
	int		 stop = 0;

	pthread_mutex_lock(&rec_mu);
	if (arg != &R)
		R.bad_arg++;
	if (R.ndone < REC_MAX) {
		d = &R.done[R.ndone];
		d->id = o->id;
		d->kind = o->kind;
		d->attempt = o->attempt;
		d->timed_out = o->timed_out;
		d->at_ms = mono_ms();
		snprintf(d->queue, sizeof d->queue, "%s", o->queue);
		d->has_error = o->error != NULL;
		snprintf(d->error, sizeof d->error, "%s",
		    o->error != NULL ? o->error : "");
	}
	R.ndone++;
	if (o->kind != SPOOL_OUTCOME_RETRYING)
		R.nfinal++;
	if (R.stop_after_final > 0 && R.nfinal == R.stop_after_final)
		stop = 1;
	pthread_mutex_unlock(&rec_mu);
	if (R.hook != NULL)
		R.hook(o);
	if (stop)
		spool_pool_stop(R.pool, 0);
}

/* on_tick: the largest pool seen, and (with tick_target) when the work
 * was done and when the pool was back to tick_min threads; stop then. */
static void
rec_tick(const spool_pool_stats *st, void *arg)
{
	int	 stop = 0;

	pthread_mutex_lock(&rec_mu);
	if (arg != &R)
		R.bad_arg++;
	R.ticks++;
	if (st->workers > R.tick_max_workers)
		R.tick_max_workers = st->workers;
	if (R.tick_target > 0 && st->succeeded >= R.tick_target) {
		if (R.tick_done_ms == 0)
			R.tick_done_ms = mono_ms();
		if (R.tick_back_ms == 0 && st->workers <= R.tick_min) {
			R.tick_back_ms = mono_ms();
			R.tick_back_workers = st->workers;
			stop = 1;
		}
	}
	pthread_mutex_unlock(&rec_mu);
	if (stop)
		spool_pool_stop(R.pool, 0);
}

/* Handlers: note that job started, in order. */
static void
rec_start(spool_job *job)
{
	pthread_mutex_lock(&rec_mu);
	if (R.nstart < REC_MAX) {
		R.start_id[R.nstart] = spool_job_id(job);
		R.start_q[R.nstart] = spool_job_queue(job)[0];
	}
	R.nstart++;
	pthread_mutex_unlock(&rec_mu);
}

/* How many outcomes of kind were reported (any kind: 0). */
static int
count_kind(int kind)
{
	size_t	 i;
	int	 n = 0;

	pthread_mutex_lock(&rec_mu);
	for (i = 0; i < R.ndone && i < REC_MAX; i++)
		if (kind == 0 || R.done[i].kind == kind)
			n++;
	pthread_mutex_unlock(&rec_mu);
	return (n);
}

/* The n-th (0-based) outcome reported for task id, or NULL. */
static const struct done_rec *
find_done(int64_t id, int n)
{
	size_t	 i;

	for (i = 0; i < R.ndone && i < REC_MAX; i++)
		if (R.done[i].id == id && n-- == 0)
			return (&R.done[i]);
	return (NULL);
}

/* Did a handler start task id? */
static int
started(int64_t id)
{
	size_t	 i;

	for (i = 0; i < R.nstart && i < REC_MAX; i++)
		if (R.start_id[i] == id)
			return (1);
	return (0);
}

/* ---- Pools ------------------------------------------------------------- */

/* Options for a pool over queues that records into R, with a guard. */
static void
opts_init(spool_pool_opts *o, const char *const *queues, size_t n)
{
	spool_pool_opts	 def = SPOOL_POOL_OPTS_INIT;

	*o = def;
	o->queues = queues;
	o->nqueues = n;
	o->on_done = rec_done;
	o->cb_arg = &R;
	o->max_time_ms = GUARD_MS;
}

/* A pool on the test database, or NULL (and a failure). */
static spool_pool *
pool_make(spool_handler fn, const spool_pool_opts *o)
{
	spool_pool	*p = NULL;
	int		 rc;

	rc = spool_pool_new(&p, tu_db, fn, NULL, o);
	if (rc != SPOOL_OK) {
		fprintf(stderr, "\nspool_pool_new: %s\n", spool_pool_errmsg(p));
		TU_RC(rc, SPOOL_OK);
		spool_pool_free(p);
		return (NULL);
	}
	R.pool = p;
	return (p);
}

/* A pool run in its own thread. */
struct runner {
	pthread_t	 t;
	spool_pool	*p;
	int		 rc;
	int		 ok;
};

static void *
runner_main(void *arg)
{
	struct runner	*r = arg;

	r->rc = spool_pool_run(r->p);
	return (NULL);
}

static void
runner_start(struct runner *r, spool_pool *p)
{
	r->p = p;
	r->rc = -999;
	r->ok = pthread_create(&r->t, NULL, runner_main, r) == 0;
	CU_ASSERT_FATAL(r->ok);
}

static int
runner_join(struct runner *r)
{
	if (r->ok)
		pthread_join(r->t, NULL);
	r->ok = 0;
	return (r->rc);
}

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

/* ---- 1. Draining a queue ----------------------------------------------- */

static int	 drain_calls;
static int64_t	 drain_row = -100;	/* workers rows the first handler saw */

/* A no-op handler; the first call checks the pool's workers row from a
 * connection of its own. */
static int
h_drain(spool_job *job, void *arg)
{
	spool	*q = NULL;
	int64_t	 v = -3;

	(void)job;
	(void)arg;
	if (__atomic_fetch_add(&drain_calls, 1, __ATOMIC_ACQ_REL) == 0) {
		if (spool_open(&q, tu_db, 0) == SPOOL_OK)
			v = q_int(q, "SELECT count(*) FROM workers WHERE "
			    "pid = %ld AND queues = '[\"drain\"]' AND "
			    "concurrency >= 1 AND id LIKE '%%:%ld:%%'",
			    (long)getpid(), (long)getpid());
		spool_close(q);
		store64(&drain_row, v);
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
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	spool_pool		*p;
	spool			*q;
	size_t			 i;
	int			 succeeded = 0, same = 1;

	rec_reset();
	drain_calls = 0;
	drain_row = -100;
	q = real_open();
	enqueue_n(q, "drain", "work", DRAIN_N, ids);
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	if ((p = pool_make(h_drain, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_stats_get(&st, p);

	CU_ASSERT_EQUAL(load(&drain_calls), DRAIN_N);
	CU_ASSERT_EQUAL(R.bad_arg, 0);
	CU_ASSERT_EQUAL(load64(&drain_row), 1);
	CU_ASSERT_EQUAL(R.ndone, DRAIN_N);
	for (i = 0; i < R.ndone && i < DRAIN_N; i++) {
		got[i] = R.done[i].id;
		if (R.done[i].kind == SPOOL_OUTCOME_SUCCEEDED &&
		    !R.done[i].has_error && R.done[i].attempt == 1 &&
		    !R.done[i].timed_out &&
		    strcmp(R.done[i].queue, "drain") == 0)
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
}

/* ---- 2. Results and errors --------------------------------------------- */

static int	 res_rc[5];

/* "bin" keeps a binary result (replacing a first one), "text" a text
 * result, "bad" fails for good with an error (replacing a first one). */
static int
h_result(spool_job *job, void *arg)
{
	static const unsigned char	 bin[] = { 0x00, 0x01, 0xfe, 'x' };
	const char			*pl;
	size_t				 len;

	(void)arg;
	pl = spool_job_payload(job, &len);
	if (len == 3 && memcmp(pl, "bin", 3) == 0) {
		store(&res_rc[0], spool_job_set_result(job, "first", 5) + 100);
		store(&res_rc[1], spool_job_set_result(job, bin, sizeof bin) +
		    100);
		store(&res_rc[2], spool_job_set_result(job, NULL, 3) + 100);
		store(&res_rc[3], spool_job_set_result(job, bin,
		    SPOOL_PAYLOAD_MAX + 1) + 100);
		return (SPOOL_DONE);
	}
	if (len == 4 && memcmp(pl, "text", 4) == 0) {
		(void)spool_job_set_result(job, "hello, world", 12);
		return (SPOOL_DONE);
	}
	(void)spool_job_set_error(job, "first");
	store(&res_rc[4], spool_job_set_error(job, NULL) + 100);
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
	spool_pool_opts		 o;
	spool_pool		*p;
	spool			*q;
	char			 buf[128];
	int64_t			 bin, text, bad;

	rec_reset();
	memset(res_rc, 0, sizeof res_rc);
	q = real_open();
	bin = enqueue1(q, "res", "bin");
	text = enqueue1(q, "res", "text");
	bad = enqueue1(q, "res", "bad");
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	if ((p = pool_make(h_result, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);

	TU_RC(res_rc[0] - 100, SPOOL_OK);
	TU_RC(res_rc[1] - 100, SPOOL_OK);
	TU_RC(res_rc[2] - 100, SPOOL_EINVAL);
	TU_RC(res_rc[3] - 100, SPOOL_EINVAL);
	TU_RC(res_rc[4] - 100, SPOOL_EINVAL);

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

	CU_ASSERT_EQUAL(R.ndone, 3);
	if ((d = find_done(bin, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_SUCCEEDED);
		CU_ASSERT_FALSE(d->has_error);
	} else
		CU_FAIL("no outcome for bin");
	if ((d = find_done(bad, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_DEAD);
		CU_ASSERT_STRING_EQUAL(d->error, "boom: disk on fire");
	} else
		CU_FAIL("no outcome for bad");
out:
	spool_close(q);
}

/* ---- 3. Retry, fail, and bogus return values --------------------------- */

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
	spool_pool		*p;
	spool			*q;
	char			 buf[128], want[32];
	int64_t			 retry, fail, bogus, t0;
	int			 i;

	rec_reset();
	make_queue("rq", 3, 20, 0);
	q = real_open();
	retry = enqueue1(q, "rq", "retry");
	fail = enqueue1(q, "rq", "fail");
	bogus = enqueue1(q, "rq", "bogus");
	opts_init(&o, qs, 1);
	R.stop_after_final = 3;		/* retries are scheduled: not "empty" */
	if ((p = pool_make(h_retry, &o)) == NULL)
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
		if ((d = find_done(retry, i)) == NULL) {
			CU_FAIL("missing outcome of retry");
			continue;
		}
		CU_ASSERT_EQUAL(d->attempt, i + 1);
		CU_ASSERT_EQUAL(d->kind, i < 2 ? SPOOL_OUTCOME_RETRYING :
		    SPOOL_OUTCOME_DEAD);
		snprintf(want, sizeof want, "again %d", i + 1);
		CU_ASSERT_STRING_EQUAL(d->error, want);
	}
	CU_ASSERT_PTR_NULL(find_done(retry, 3));

	/* SPOOL_FAIL: dead at once. */
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT state || '/' "
	    "|| dead_reason || '/' || attempts FROM tasks WHERE id = %lld",
	    (long long)fail), "dead/failed/1");
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT "
	    "group_concat(outcome || ':' || error) FROM attempts WHERE "
	    "task_id = %lld", (long long)fail), "failed:no hope");
	if ((d = find_done(fail, 0)) != NULL)
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_DEAD);
	CU_ASSERT_PTR_NULL(find_done(fail, 1));

	/* 42: a failed attempt saying so, then a retry that succeeded. */
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE "
	    "task_id = %lld AND attempt = 1 AND outcome = 'failed' AND "
	    "error LIKE '%%returned 42%%'", (long long)bogus), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE "
	    "task_id = %lld AND attempt = 2 AND outcome = 'succeeded'",
	    (long long)bogus), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld "
	    "AND state = 'succeeded'", (long long)bogus), 1);
	if ((d = find_done(bogus, 0)) != NULL) {
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
}

/* ---- 4. Timeouts ------------------------------------------------------- */

static int	 to_reason;
static int64_t	 to_start, to_seen, to_deadline;

/* Loop until told to stop (3 s at most), then ask for a retry. */
static int
h_cooperative(spool_job *job, void *arg)
{
	int64_t	 start = mono_ms();
	int	 why;

	(void)arg;
	store64(&to_start, wall_ms());
	store64(&to_deadline, spool_job_deadline_ms(job));
	while ((why = spool_job_should_stop(job)) == 0 &&
	    mono_ms() - start < 3000)
		sleep_ms(2);
	store64(&to_seen, mono_ms() - start);
	store(&to_reason, why);
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
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	spool_pool		*p;
	spool			*q;
	char			 buf[128];
	int64_t			 id;

	rec_reset();
	to_reason = 0;
	to_start = to_seen = to_deadline = 0;
	make_queue("tq", 1, 10, 200);
	q = real_open();
	id = enqueue1(q, "tq", "slow");
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.tick_ms = 20;
	if ((p = pool_make(h_cooperative, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);

	CU_ASSERT_EQUAL(to_reason, SPOOL_STOP_TIMEOUT);
	CU_ASSERT(to_seen >= 190 && to_seen < 600);
	/* The deadline is the handler's start plus the queue's timeout. */
	CU_ASSERT(to_deadline - to_start > 190 &&
	    to_deadline - to_start <= 200);
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT "
	    "group_concat(outcome) FROM attempts WHERE task_id = %lld",
	    (long long)id), "timed_out");
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT state || '/' "
	    "|| dead_reason FROM tasks WHERE id = %lld", (long long)id),
	    "dead/exhausted");
	if ((d = find_done(id, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->timed_out, 1);
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_DEAD);
	} else
		CU_FAIL("no outcome");
	CU_ASSERT_EQUAL(st.timed_out, 1);
	CU_ASSERT_EQUAL(st.dead, 1);
out:
	spool_close(q);
}

static int	 ab_returned;
static int64_t	 ab_start;
static spool	*ab_q;
static int	 ab_returned_at_done = -1;
static int64_t	 ab_done_after = -1;
static char	 ab_outcome[200];

/* Sleep 1.5 s, deaf to every request to stop. */
static int
h_deaf(spool_job *job, void *arg)
{
	(void)job;
	(void)arg;
	store64(&ab_start, mono_ms());
	sleep_ms(1500);
	store(&ab_returned, 1);
	return (SPOOL_DONE);
}

/* on_done of the abandoned task: is its handler still asleep, and what
 * does the history say already? */
static void
ab_hook(const spool_outcome *o)
{
	ab_returned_at_done = load(&ab_returned);
	ab_done_after = mono_ms() - load64(&ab_start);
	q_text(ab_q, ab_outcome, sizeof ab_outcome, "SELECT group_concat("
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
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	spool_pool		*p;
	char			 buf[128];
	int64_t			 id, t0;

	rec_reset();
	ab_returned = 0;
	ab_start = 0;
	ab_returned_at_done = -1;
	ab_done_after = -1;
	ab_outcome[0] = '\0';
	make_queue("aq", 1, 10, 0);
	ab_q = real_open();
	id = enqueue1(ab_q, "aq", "deaf");
	opts_init(&o, qs, 1);
	o.timeout_ms = 200;
	o.tick_ms = 20;
	o.shutdown_timeout_ms = 100;
	R.stop_after_final = 1;
	R.hook = ab_hook;
	if ((p = pool_make(h_deaf, &o)) == NULL)
		goto out;
	p->grace_ms = 100;
	t0 = mono_ms();
	TU_RC(spool_pool_run(p), SPOOL_OK);
	/* The run is over before the handler is. */
	CU_ASSERT(mono_ms() - t0 < 1400);
	CU_ASSERT_EQUAL(load(&ab_returned), 0);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(load(&ab_returned), 1);

	CU_ASSERT_EQUAL(ab_returned_at_done, 0);
	CU_ASSERT(ab_done_after >= 290 && ab_done_after < 1400);
	CU_ASSERT_STRING_EQUAL(ab_outcome, "timed_out:timed out after 200 ms "
	    "(the handler did not return)");
	if ((d = find_done(id, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->timed_out, 1);
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_DEAD);
	} else
		CU_FAIL("no outcome");
	CU_ASSERT_PTR_NULL(find_done(id, 1));	/* its return changed nothing */
	CU_ASSERT_EQUAL(st.timed_out, 1);
	CU_ASSERT_EQUAL(st.succeeded, 0);
	CU_ASSERT_STRING_EQUAL(q_text(ab_q, buf, sizeof buf, "SELECT state || "
	    "'/' || dead_reason FROM tasks WHERE id = %lld", (long long)id),
	    "dead/exhausted");
	CU_ASSERT_EQUAL(q_int(ab_q, "SELECT count(*) FROM attempts"), 1);
	CU_ASSERT_EQUAL(q_int(ab_q, "SELECT count(*) FROM results"), 0);
out:
	spool_close(ab_q);
	ab_q = NULL;
}

/* ---- 5, 6. Cancellation and lost leases -------------------------------- */

static int	 wt_started, wt_reason;
static int64_t	 wt_seen;		/* monotonic: when it saw why */
static int	 wt_rc;			/* what to return */

/* Wait (5 s at most) until told to stop, note why, keep a result, and
 * return wt_rc. */
static int
h_wait_stop(spool_job *job, void *arg)
{
	int64_t	 start = mono_ms();
	int	 why;

	(void)arg;
	store(&wt_started, 1);
	while ((why = spool_job_should_stop(job)) == 0 &&
	    mono_ms() - start < 5000)
		sleep_ms(1);
	store64(&wt_seen, mono_ms());
	store(&wt_reason, why);
	(void)spool_job_set_result(job, "victim", 6);
	return (load(&wt_rc));
}

static void
wt_reset(int rc)
{
	wt_started = 0;
	wt_reason = 0;
	wt_seen = 0;
	wt_rc = rc;
}

/* A running task cancelled from another handle: within about one renewal
 * (lease 600 ms, renewed every 200) its handler sees
 * SPOOL_STOP_CANCELLED, and its SPOOL_RETRY ends the task cancelled. */
static void
test_cancel(void)
{
	const char		*qs[] = { "cq" };
	const struct done_rec	*d;
	struct runner		 r;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	spool_pool		*p;
	spool			*q;
	char			 buf[64];
	int64_t			 id, t0;
	int			 running = -1;

	rec_reset();
	wt_reset(SPOOL_RETRY);
	q = real_open();
	id = enqueue1(q, "cq", "long");
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.lease_ms = 600;
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	if ((p = pool_make(h_wait_stop, &o)) == NULL)
		goto out;
	runner_start(&r, p);
	CU_ASSERT(wait_flag(&wt_started, 3000));
	sleep_ms(30);
	t0 = mono_ms();
	TU_RC(spool_cancel(&running, q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(running, 1);
	CU_ASSERT(wait_flag(&wt_reason, 3000));
	TU_RC(runner_join(&r), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);

	CU_ASSERT_EQUAL(wt_reason, SPOOL_STOP_CANCELLED);
	CU_ASSERT(wt_seen - t0 >= 0 && wt_seen - t0 < 450);
	CU_ASSERT_STRING_EQUAL(q_text(q, buf, sizeof buf, "SELECT state FROM "
	    "tasks WHERE id = %lld", (long long)id), "cancelled");
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE "
	    "task_id = %lld", (long long)id), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM results"), 0);
	if ((d = find_done(id, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_CANCELLED);
	} else
		CU_FAIL("no outcome");
	CU_ASSERT_EQUAL(st.cancelled, 1);
	CU_ASSERT_EQUAL(st.retried, 0);
out:
	spool_close(q);
}

/* Hold until hold_release is set (20 s at most), then succeed. */
static int	 hold_release;

static int
h_hold(spool_job *job, void *arg)
{
	int64_t	 start = mono_ms();

	(void)arg;
	store(&wt_started, 1);
	while (!load(&hold_release) && spool_job_should_stop(job) == 0 &&
	    mono_ms() - start < 20000)
		sleep_ms(1);
	store(&wt_reason, spool_job_should_stop(job));
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
	struct runner		 r;
	spool_pool_opts		 o;
	spool_pool		*p;
	spool			*q;
	int64_t			 id, u, last = 0, end;
	int			 renewals = 0;

	wt_reset(SPOOL_DONE);
	store(&hold_release, 0);
	make_queue("shq", 3, 0, 0);	/* the default lease, 30 s */
	q = real_open();
	id = enqueue1(q, "shq", "hold");
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	o.tick_ms = 50;
	if ((p = pool_make(h_hold, &o)) == NULL)
		goto out;
	runner_start(&r, p);
	CU_ASSERT(wait_flag(&wt_started, 3000));
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
	store(&hold_release, 1);
	TU_RC(runner_join(&r), SPOOL_OK);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(load(&wt_reason), 0);	/* never told it lost it */
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE "
	    "task_id = %lld AND outcome = 'lease_lost'", (long long)id), 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT attempts * (state = 'succeeded') "
	    "FROM tasks WHERE id = %lld", (long long)id), 1);
out:
	spool_close(q);
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
	struct runner		 r;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	spool_job		*job = NULL;
	spool_pool		*p;
	spool			*q;
	char			 buf[128];
	int64_t			 id, t0 = 0, n;
	int			 i;

	rec_reset();
	wt_reset(SPOOL_DONE);
	make_queue("lq", 5, 0, 0);
	q = real_open();
	id = enqueue1(q, "lq", "long");
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.lease_ms = 600;
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	if ((p = pool_make(h_wait_stop, &o)) == NULL)
		goto out;
	runner_start(&r, p);
	CU_ASSERT(wait_flag(&wt_started, 3000));
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
	CU_ASSERT(wait_flag(&wt_reason, 3000));
	TU_RC(runner_join(&r), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);

	CU_ASSERT_EQUAL(wt_reason, SPOOL_STOP_LEASE_LOST);
	CU_ASSERT(wt_seen - t0 < 450);
	if ((d = find_done(id, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_LEASE_LOST);
		CU_ASSERT_EQUAL(d->attempt, 1);
	} else
		CU_FAIL("no outcome");
	CU_ASSERT_PTR_NULL(find_done(id, 1));
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
}

/* ---- 7. Stopping ------------------------------------------------------- */

static int	 slow_ms;
static int	 slow_calls;

/* Note the start, then sleep slow_ms. */
static int
h_slow(spool_job *job, void *arg)
{
	(void)arg;
	rec_start(job);
	__atomic_fetch_add(&slow_calls, 1, __ATOMIC_ACQ_REL);
	sleep_ms(load(&slow_ms));
	return (SPOOL_DONE);
}

/* spool_pool_stop(p, 0) from another thread drains: the two running
 * tasks finish and succeed, the ten prefetched ones are handed back
 * (ready, no attempt charged, reported RELEASED), nothing stays running,
 * and the run returns 0. */
static void
test_graceful_stop(void)
{
	const char		*qs[] = { "gq" };
	struct stopper		 s;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	spool_pool		*p;
	spool			*q;
	size_t			 i;
	int64_t			 t0, stop_ms;
	int			 released = 0, succeeded = 0, ok = 1;

	rec_reset();
	slow_ms = 300;
	slow_calls = 0;
	q = real_open();
	enqueue_n(q, "gq", "slow", 30, NULL);
	opts_init(&o, qs, 1);
	o.min_workers = o.max_workers = 2;
	o.prefetch = 10;
	if ((p = pool_make(h_slow, &o)) == NULL)
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
	CU_ASSERT_EQUAL(R.nstart, 2);
	CU_ASSERT_EQUAL(R.ndone, 12);
	for (i = 0; i < R.ndone && i < REC_MAX; i++) {
		const struct done_rec	*d = &R.done[i];

		if (d->kind == SPOOL_OUTCOME_SUCCEEDED) {
			succeeded++;
			if (!started(d->id))
				ok = 0;
		} else if (d->kind == SPOOL_OUTCOME_RELEASED) {
			released++;
			if (started(d->id) || q_int(q, "SELECT count(*) FROM "
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
}

/* spool_pool_stop(p, 1) from another thread quits at once: the run
 * returns without waiting for the handler, which is told
 * SPOOL_STOP_SHUTDOWN; its task keeps its lease (left to expire), and
 * spool_pool_free waits for the handler. */
static void
test_quit_now(void)
{
	const char		*qs[] = { "nq" };
	struct runner		 r;
	spool_pool_opts		 o;
	spool_pool		*p;
	spool			*q;
	int64_t			 id, t0;

	rec_reset();
	wt_reset(SPOOL_DONE);
	q = real_open();
	id = enqueue1(q, "nq", "long");
	opts_init(&o, qs, 1);
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	if ((p = pool_make(h_wait_stop, &o)) == NULL)
		goto out;
	runner_start(&r, p);
	CU_ASSERT(wait_flag(&wt_started, 3000));
	t0 = mono_ms();
	spool_pool_stop(p, 1);
	TU_RC(runner_join(&r), SPOOL_OK);
	CU_ASSERT(mono_ms() - t0 < 1000);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(load(&wt_reason), SPOOL_STOP_SHUTDOWN);
	CU_ASSERT_EQUAL(R.ndone, 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld "
	    "AND state = 'running' AND attempts = 1", (long long)id), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts"), 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM results"), 0);
out:
	spool_close(q);
}

/* spool_pool_stop(p, 1) from another thread while the run is starting
 * still quits it: the run returns 0 at once, not at its max_time. */
static void
test_quit_at_start(void)
{
	const char		*qs[] = { "sq0" };
	struct runner		 r;
	spool_pool_opts		 o;
	spool_pool		*p;
	spool			*q;
	int64_t			 t0;

	rec_reset();
	wt_reset(SPOOL_DONE);
	q = real_open();
	enqueue_n(q, "sq0", "long", 3, NULL);
	opts_init(&o, qs, 1);
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	if ((p = pool_make(h_wait_stop, &o)) == NULL)
		goto out;
	t0 = mono_ms();
	runner_start(&r, p);
	spool_pool_stop(p, 1);
	TU_RC(runner_join(&r), SPOOL_OK);
	CU_ASSERT(mono_ms() - t0 < 2000);
	spool_pool_free(p);
	/* A handler that started was told to stop, and none succeeded. */
	if (load(&wt_started))
		CU_ASSERT_EQUAL(load(&wt_reason), SPOOL_STOP_SHUTDOWN);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'succeeded'"), 0);
out:
	spool_close(q);
}

/* ---- 8. Limits --------------------------------------------------------- */

/* max_tasks 5 of 50 (with room to claim 8 at once): exactly 5 are claimed
 * and succeed, the run ends, and the other 45 were never touched. */
static void
test_max_tasks(void)
{
	const char		*qs[] = { "mq" };
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	spool_pool		*p;
	spool			*q;
	int64_t			 t0;

	rec_reset();
	slow_ms = 10;
	slow_calls = 0;
	q = real_open();
	enqueue_n(q, "mq", "task", 50, NULL);
	opts_init(&o, qs, 1);
	o.min_workers = o.max_workers = 4;
	o.prefetch = 4;
	o.max_tasks = 5;
	if ((p = pool_make(h_slow, &o)) == NULL)
		goto out;
	t0 = mono_ms();
	TU_RC(spool_pool_run(p), SPOOL_OK);
	CU_ASSERT(mono_ms() - t0 < 2000);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(load(&slow_calls), 5);
	CU_ASSERT_EQUAL(st.claimed, 5);
	CU_ASSERT_EQUAL(st.succeeded, 5);
	CU_ASSERT_EQUAL(st.released, 0);
	CU_ASSERT_EQUAL(count_kind(SPOOL_OUTCOME_SUCCEEDED), 5);
	CU_ASSERT_EQUAL(R.ndone, 5);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'succeeded'"), 5);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'ready' AND attempts = 0"), 45);
out:
	spool_close(q);
}

/* max_time 300 ms with 100 ms tasks: claims stop at 300 ms, running tasks
 * finish, prefetched ones go back, and nothing is left running. */
static void
test_max_time(void)
{
	const char		*qs[] = { "xq" };
	struct stopper		 guard;
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	spool_pool		*p;
	spool			*q;
	int64_t			 t0, ms;

	rec_reset();
	slow_ms = 100;
	slow_calls = 0;
	q = real_open();
	enqueue_n(q, "xq", "task", 40, NULL);
	opts_init(&o, qs, 1);
	o.min_workers = o.max_workers = 2;
	o.prefetch = 2;
	o.max_time_ms = 300;
	if ((p = pool_make(h_slow, &o)) == NULL)
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
	CU_ASSERT_EQUAL(st.succeeded, load(&slow_calls));
	CU_ASSERT_EQUAL(st.claimed, st.succeeded + st.released);
	CU_ASSERT_EQUAL(st.released, count_kind(SPOOL_OUTCOME_RELEASED));
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'succeeded'"), st.succeeded);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'running'"), 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'ready' AND attempts = 0"), 40 - st.succeeded);
out:
	spool_close(q);
}

/* ---- 9. Strategies ----------------------------------------------------- */

/* Note the start; nothing else. */
static int
h_order(spool_job *job, void *arg)
{
	(void)arg;
	rec_start(job);
	return (SPOOL_DONE);
}

/* Run one thread without prefetch over queues a and b with strategy
 * (weights for WEIGHTED), tasks enqueued b first; the first n starts are
 * counted: *na from a. */
static void
run_strategy(int strategy, const int *weights, size_t per_queue, size_t n,
    int *na)
{
	const char		*qs[] = { "a", "b" };
	spool_pool_opts		 o;
	spool_pool		*p;
	spool			*q;
	size_t			 i;

	rec_reset();
	*na = -1;
	q = real_open();
	enqueue_n(q, "b", "b", per_queue, NULL);
	enqueue_n(q, "a", "a", per_queue, NULL);
	opts_init(&o, qs, 2);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.strategy = strategy;
	o.weights = weights;
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	if ((p = pool_make(h_order, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(R.nstart, 2 * per_queue);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE "
	    "state = 'succeeded'"), (int64_t)(2 * per_queue));
	*na = 0;
	for (i = 0; i < n && i < R.nstart; i++)
		if (R.start_q[i] == 'a')
			(*na)++;
out:
	spool_close(q);
}

/* PRIORITY takes every task of the first queue before any of the second
 * (although the second's are older). */
static void
test_strategy_priority(void)
{
	size_t	 i;
	int	 na, order = 1;

	run_strategy(SPOOL_STRATEGY_PRIORITY, NULL, 10, 10, &na);
	CU_ASSERT_EQUAL(na, 10);
	for (i = 0; i < R.nstart && i < 20; i++)
		if (R.start_q[i] != (i < 10 ? 'a' : 'b'))
			order = 0;
	CU_ASSERT(order);
}

/* ROUND_ROBIN alternates: of the first 20 tasks, about half are from
 * each queue (although all of b's are older). */
static void
test_strategy_round_robin(void)
{
	int	 na;

	run_strategy(SPOOL_STRATEGY_ROUND_ROBIN, NULL, 20, 20, &na);
	CU_ASSERT(na >= 8 && na <= 12);
}

/* WEIGHTED 3:1 takes about three tasks of a for one of b, even when it
 * claims one task at a time: of the first 20, 13 to 17 are from a. */
static void
test_strategy_weighted(void)
{
	static const int	 w[] = { 3, 1 };
	int			 na;

	run_strategy(SPOOL_STRATEGY_WEIGHTED, w, 30, 20, &na);
	if (na < 13 || na > 17)
		fprintf(stderr, "\nweighted 3:1: %d of the first 20 from a\n",
		    na);
	CU_ASSERT(na >= 13 && na <= 17);
}

/* ---- 10. Autoscaling --------------------------------------------------- */

/* With min 1 and max 4 threads and a backlog of 40 slow tasks, the pool
 * grows to 4 threads, and once the work is done the idle extra threads
 * leave after idle_timeout_ms, back to 1. */
static void
test_autoscale(void)
{
	const char		*qs[] = { "sq" };
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	spool_pool		*p;
	spool			*q;
	int64_t			 t0;

	rec_reset();
	slow_ms = 100;
	slow_calls = 0;
	q = real_open();
	enqueue_n(q, "sq", "task", 40, NULL);
	opts_init(&o, qs, 1);
	o.min_workers = 1;
	o.max_workers = 4;
	o.prefetch = 0;
	o.idle_timeout_ms = 200;
	o.tick_ms = 100;
	o.on_tick = rec_tick;
	R.tick_target = 40;
	R.tick_min = 1;
	if ((p = pool_make(h_slow, &o)) == NULL)
		goto out;
	t0 = mono_ms();
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT(mono_ms() - t0 < GUARD_MS);
	CU_ASSERT_EQUAL(st.succeeded, 40);
	CU_ASSERT(R.ticks > 0);
	CU_ASSERT_EQUAL(R.bad_arg, 0);
	CU_ASSERT_EQUAL(R.tick_max_workers, 4);
	CU_ASSERT(R.tick_done_ms != 0);
	CU_ASSERT(R.tick_back_ms != 0);
	CU_ASSERT_EQUAL(R.tick_back_workers, 1);
	/* Back within the idle timeout and a few ticks. */
	CU_ASSERT(R.tick_back_ms - R.tick_done_ms < 1000);
	/* Four threads at work: well under the 4 s one thread would take. */
	CU_ASSERT(R.tick_done_ms - t0 < 2500);
out:
	spool_close(q);
}

/* ---- 11. Exclusive pools ----------------------------------------------- */

static int
h_none(spool_job *job, void *arg)
{
	(void)job;
	(void)arg;
	return (SPOOL_DONE);
}

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

	rec_reset();
	q = real_open();
	opts_init(&o, qs, 1);
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

/* ---- 12. Bad options --------------------------------------------------- */

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

	opts_init(&good, qs, 2);
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
	spool_pool	*p = NULL;
	spool		*q = NULL;
	struct stat	 sb;
	char		 path[800];
	int		 rc;

	snprintf(path, sizeof path, "%s/created.db", tu_dir);
	opts_init(&o, qs, 1);
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
	opts_init(&o, qs, 1);
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

/* ---- 13. What a pool job refuses --------------------------------------- */

static int	 dc_rc[6];
static int64_t	 dc_lease[3];

/* Try the calls a handler must not make, and watch the lease renewed. */
static int
h_direct(spool_job *job, void *arg)
{
	size_t		 len = 0;
	const void	*pl;

	(void)arg;
	store(&dc_rc[0], spool_job_complete(job, "x", 1) + 100);
	store(&dc_rc[1], spool_job_fail(job, "x", 0) + 100);
	store(&dc_rc[2], spool_job_fail(job, "x", SPOOL_FAIL_PERMANENT) + 100);
	store(&dc_rc[3], spool_job_release(job) + 100);
	store(&dc_rc[4], spool_job_heartbeat(job, 0) + 100);
	pl = spool_job_payload(job, &len);
	store(&dc_rc[5], len == 3 && memcmp(pl, "dir", 3) == 0 &&
	    spool_job_attempt(job) == 1 && strcmp(spool_job_queue(job),
	    "dq") == 0 ? 1 : 2);
	/* The engine renews the lease (300 ms, every 100 ms). */
	store64(&dc_lease[0], spool_job_lease_until_ms(job));
	sleep_ms(350);
	store64(&dc_lease[1], spool_job_lease_until_ms(job));
	store64(&dc_lease[2], wall_ms());
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
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	spool_pool		*p;
	spool			*q;
	int64_t			 id;

	rec_reset();
	memset(dc_rc, 0, sizeof dc_rc);
	memset(dc_lease, 0, sizeof dc_lease);
	q = real_open();
	id = enqueue1(q, "dq", "dir");
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.lease_ms = 300;
	if ((p = pool_make(h_direct, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	TU_RC(dc_rc[0] - 100, SPOOL_EINVAL);
	TU_RC(dc_rc[1] - 100, SPOOL_EINVAL);
	TU_RC(dc_rc[2] - 100, SPOOL_EINVAL);
	TU_RC(dc_rc[3] - 100, SPOOL_EINVAL);
	TU_RC(dc_rc[4] - 100, SPOOL_OK);
	CU_ASSERT_EQUAL(dc_rc[5], 1);
	CU_ASSERT(dc_lease[1] > dc_lease[0]);
	CU_ASSERT(dc_lease[1] > dc_lease[2]);	/* renewed: still ahead */
	if ((d = find_done(id, 0)) != NULL) {
		CU_ASSERT_EQUAL(d->kind, SPOOL_OUTCOME_SUCCEEDED);
	} else
		CU_FAIL("no outcome");
	CU_ASSERT_EQUAL(R.ndone, 1);
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
}

/* In a pool the engine's reap timer does the reaping: claims do not
 * reap again every second on the hot path (one reap at the first claim,
 * none in the 1.5 s after it with a 30 s lease, whose timer is 5 s). */
static void
test_reap_once(void)
{
	const char	*qs[] = { "ro" };
	spool_pool_opts	 o;
	spool_pool	*p;
	spool		*q;
	int		 runs;

	rec_reset();
	slow_ms = 50;
	slow_calls = 0;
	q = real_open();
	enqueue_n(q, "ro", "task", 200, NULL);
	opts_init(&o, qs, 1);
	o.min_workers = o.max_workers = 2;
	o.prefetch = 0;
	o.max_time_ms = 1500;
	if ((p = pool_make(h_slow, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	runs = sqlite3_stmt_status(p->q->stmt[SPOOL_SQL_REAP_EXPIRED],
	    SQLITE_STMTSTATUS_RUN, 0);
	CU_ASSERT(load(&slow_calls) > 20);
	CU_ASSERT_EQUAL(runs, 1);
	if (runs != 1)
		fprintf(stderr, "\nreaped %d times\n", runs);
	spool_pool_free(p);
out:
	spool_close(q);
}

/* A flush that fails keeps its outcomes. */
static int	 lk_started, lk_release;

static int
h_lock(spool_job *job, void *arg)
{
	(void)arg;
	spool_job_set_result(job, "kept", 4);
	store(&lk_started, 1);
	(void)wait_flag(&lk_release, 5000);
	return (SPOOL_DONE);
}

/* With the database locked by another connection past the pool's busy
 * timeout, the outcome cannot be committed: the engine keeps it, says
 * why, retries, and commits it once the lock is gone (one result). */
static void
test_flush_retry(void)
{
	const char	*qs[] = { "lk" };
	spool_pool_opts	 o;
	spool_pool_stats st;
	struct runner	 r;
	spool_pool	*p;
	spool		*q;
	sqlite3		*db = NULL;
	char		 state[32];
	int64_t		 id;

	rec_reset();
	store(&lk_started, 0);
	store(&lk_release, 0);
	q = real_open();
	TU_RC(spool_enqueue(&id, q, "lk", "x", 1, NULL), SPOOL_OK);
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 1;
	o.prefetch = 0;
	if ((p = pool_make(h_lock, &o)) == NULL)
		goto out;
	TU_RC(spool_busy_timeout(p->q, 100), SPOOL_OK);
	runner_start(&r, p);
	CU_ASSERT_FATAL(wait_flag(&lk_started, 5000) == 1);

	/* Another connection takes the write lock while the handler runs. */
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(tu_db, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	store(&lk_release, 1);
	sleep_ms(700);	/* several failed flushes */
	CU_ASSERT_STRING_EQUAL(q_text(q, state, sizeof state,
	    "SELECT state FROM tasks WHERE id = %lld", (long long)id),
	    "running");
	CU_ASSERT_EQUAL(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	TU_RC(runner_join(&r), SPOOL_OK);
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
}

/* Load shedding on a fake CPU reading. */
static int	 shed_permille;

static int
h_shed(spool_job *job, void *arg)
{
	(void)job;
	(void)arg;
	return (SPOOL_DONE);
}

static double
shed_probe(spool_pool *p)
{
	(void)p;
	return (__atomic_load_n(&shed_permille, __ATOMIC_ACQUIRE) / 1000.0);
}

static void
shed_set(double v)
{
	__atomic_store_n(&shed_permille, (int)(v * 1000), __ATOMIC_RELEASE);
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
	spool_pool_opts		 o;
	spool_pool_stats	 st;
	struct runner		 r;
	spool_pool		*p;
	spool			*q;
	int64_t			 t0;

	rec_reset();
	q = real_open();
	opts_init(&o, qs, 1);
	o.cpu_max = 0.5;
	o.tick_ms = 20;
	shed_set(0.9);
	if ((p = pool_make(h_shed, &o)) == NULL)
		goto out;
	p->cpu_probe = shed_probe;
	runner_start(&r, p);
	CU_ASSERT(shed_wait(p, 1, 2000));

	/* Shedding: new tasks wait, even when the pool is woken. */
	enqueue_n(q, "shed", "task", 5, NULL);
	spool_pool_wake(p);
	sleep_ms(200);
	spool_pool_stats_get(&st, p);
	CU_ASSERT_EQUAL(st.claimed, 0);
	/* Under the maximum but above 80% of it: still shedding. */
	shed_set(0.45);
	sleep_ms(200);
	spool_pool_stats_get(&st, p);
	CU_ASSERT_EQUAL(st.shedding, 1);
	CU_ASSERT_EQUAL(st.claimed, 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE state = "
	    "'ready'"), 5);
	/* Below 80%: claims resume and the tasks run. */
	shed_set(0.3);
	CU_ASSERT(shed_wait(p, 0, 2000));
	t0 = mono_ms();
	do {
		spool_pool_stats_get(&st, p);
		if (st.succeeded == 5)
			break;
		sleep_ms(10);
	} while (mono_ms() - t0 < 5000);
	spool_pool_stop(p, 0);
	TU_RC(runner_join(&r), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	CU_ASSERT_EQUAL(st.succeeded, 5);
	spool_pool_free(p);
out:
	spool_close(q);
}


/* ---- 12. Claims sized by the engine, and times as they happened -------- */

#define TIMED_MAX	64

static int64_t	 timed_start[TIMED_MAX];	/* by task id: the handler's */
static int64_t	 timed_end[TIMED_MAX];		/* own wall clock */

/* Note the wall clock around a 40 ms sleep, by task id. */
static int
h_timed(spool_job *job, void *arg)
{
	int64_t	 id = spool_job_id(job);

	(void)arg;
	rec_start(job);
	if (id > 0 && id < TIMED_MAX)
		store64(&timed_start[id], wall_ms());
	sleep_ms(40);
	if (id > 0 && id < TIMED_MAX)
		store64(&timed_end[id], wall_ms());
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
	spool_pool_opts		 o;
	spool_pool		*p;
	spool			*q;
	int64_t			 ids[8], t0 = 0, worst = 0, d;
	size_t			 i;

	rec_reset();
	memset(timed_start, 0, sizeof timed_start);
	memset(timed_end, 0, sizeof timed_end);
	q = real_open();
	enqueue_n(q, "tq", "t", 8, ids);
	CU_ASSERT_FATAL(ids[7] < TIMED_MAX);
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 1;
	if ((p = pool_make(h_timed, &o)) == NULL)
		goto out;
	p->ahead_fixed = 4;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);
	for (i = 0; i < 8; i++) {
		int64_t	 id = ids[i], s = timed_start[id], e = timed_end[id];

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
	CU_ASSERT(timed_start[ids[7]] - t0 >= 7 * 40);
	if (worst > 10)
		fprintf(stderr, "\ntimes off by %lld ms\n", (long long)worst);
out:
	spool_close(q);
}

/* Note the start and stop the pool: the first task run ends the test. */
static int
h_first_stops(spool_job *job, void *arg)
{
	(void)arg;
	rec_start(job);
	spool_pool_stop(R.pool, 0);
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
	spool_pool		*p;
	spool			*q;
	int64_t			 hi_id = 0, lo_id = 0, late;

	rec_reset();
	q = real_open();
	high.priority = 9;
	high.delay_ms = 3600 * 1000;
	low.priority = 0;
	low.delay_ms = 600;
	TU_RC(spool_enqueue(&hi_id, q, "sched", "high", 4, &high), SPOOL_OK);
	TU_RC(spool_enqueue(&lo_id, q, "sched", "low", 3, &low), SPOOL_OK);
	opts_init(&o, qs, 1);
	o.min_workers = o.max_workers = 1;
	if ((p = pool_make(h_first_stops, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);
	CU_ASSERT(started(lo_id));
	CU_ASSERT(!started(hi_id));
	/* How late it started after it was due, as the task row says. */
	late = q_int(q, "SELECT started_ms - run_at_ms FROM tasks WHERE id = "
	    "%lld", (long long)lo_id);
	CU_ASSERT(late >= 0 && late < 250);
	if (late < 0 || late >= 250)
		fprintf(stderr, "\nthe task due in 600 ms started %lld ms late\n",
		    (long long)late);
out:
	spool_close(q);
}

static int	 gate_open;

/* Note the start, then wait for the gate (3 s at most). */
static int
h_gate(spool_job *job, void *arg)
{
	(void)arg;
	rec_start(job);
	(void)wait_flag(&gate_open, 3000);
	return (SPOOL_DONE);
}

/* n tasks on queue, one thread held at the gate and three tasks claimed
 * ahead of it: the pool, running in r; NULL on failure. */
static spool_pool *
gated_pool(spool *q, const char *const *qs, size_t n, int64_t *ids,
    struct runner *r)
{
	spool_pool_opts	 o;
	spool_pool	*p;

	rec_reset();
	store(&gate_open, 0);
	enqueue_n(q, qs[0], "c", n, ids);
	opts_init(&o, qs, 1);
	o.min_workers = o.max_workers = 1;
	if ((p = pool_make(h_gate, &o)) == NULL)
		return (NULL);
	p->ahead_fixed = 3;
	runner_start(r, p);
	return (p);
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
	spool_pool_stats	 st;
	struct runner		 r;
	spool_pool		*p;
	spool			*q;
	size_t			 n = 0, i;
	int64_t			 t0, first;

	q = real_open();
	if ((p = gated_pool(q, qs, 6, NULL, &r)) == NULL)
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
	pthread_mutex_lock(&rec_mu);
	first = R.start_id[0];
	pthread_mutex_unlock(&rec_mu);
	CU_ASSERT(q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld AND "
	    "started_ms IS NOT NULL", (long long)first) == 1);

	/* Drain first (the claimed ones go back), then let the one run. */
	spool_pool_stop(p, 0);
	t0 = mono_ms();
	do {
		spool_pool_stats_get(&st, p);
		sleep_ms(2);
	} while (st.prefetched > 0 && mono_ms() - t0 < 5000);
	store(&gate_open, 1);
	TU_RC(runner_join(&r), SPOOL_OK);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE state = "
	    "'running'"), 0);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE state = "
	    "'ready' AND attempts = 0 AND started_ms IS NULL"), 5);
out:
	spool_close(q);
}

/* Nothing at all. */
static int
h_nothing(spool_job *job, void *arg)
{
	(void)job;
	(void)arg;
	return (SPOOL_DONE);
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
run_sampled(spool_handler fn, const spool_pool_opts *o,
    spool_pool_stats *st, int *max, int *refill_at)
{
	struct sampler	 sm;
	spool_pool	*p;

	*max = *refill_at = -1;
	if ((p = pool_make(fn, o)) == NULL)
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
	spool			*q;
	int			 max, refill_at;

	rec_reset();
	q = real_open();
	store(&slow_ms, 200);
	enqueue_n(q, "az", "slow", 8, NULL);
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 2;
	run_sampled(h_slow, &o, &st, &max, &refill_at);
	CU_ASSERT_EQUAL(st.succeeded, 8);
	CU_ASSERT(max >= 0 && max <= 2);
	CU_ASSERT_EQUAL(refill_at, 0);	/* none held ahead */

	rec_reset();
	enqueue_n(q, "az", "fast", 20000, NULL);
	run_sampled(h_nothing, &o, &st, &max, &refill_at);
	CU_ASSERT_EQUAL(st.succeeded, 20000);
	/* The engine's last sizing (the threads empty each claim too fast
	 * for a sampler to see much). */
	CU_ASSERT(refill_at >= 64);
	if (refill_at < 64)
		fprintf(stderr, "\nno-op handlers: refill at %d\n", refill_at);
	spool_close(q);
}

static int	 stuck_ms;

/* Sleep stuck_ms whatever it is told. */
static int
h_stuck(spool_job *job, void *arg)
{
	(void)arg;
	rec_start(job);
	sleep_ms(load(&stuck_ms));
	return (SPOOL_DONE);
}

/* A handler still running when the shutdown timeout passes has its task
 * handed back: ready, no attempt charged or recorded, not timed out. */
static void
test_shutdown_handback(void)
{
	const char		*qs[] = { "sh" };
	spool_pool_stats	 st;
	spool_pool_opts		 o;
	struct runner		 r;
	spool_pool		*p;
	spool			*q;
	int64_t			 id, t0;

	rec_reset();
	store(&stuck_ms, 1500);
	q = real_open();
	id = enqueue1(q, "sh", "stuck");
	opts_init(&o, qs, 1);
	o.min_workers = o.max_workers = 1;
	o.shutdown_timeout_ms = 200;
	if ((p = pool_make(h_stuck, &o)) == NULL)
		goto out;
	runner_start(&r, p);
	t0 = mono_ms();
	while (q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld AND "
	    "started_ms IS NOT NULL", (long long)id) != 1 &&
	    mono_ms() - t0 < 5000)
		sleep_ms(2);
	spool_pool_stop(p, 0);
	TU_RC(runner_join(&r), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(st.released, 1);
	CU_ASSERT_EQUAL(st.timed_out, 0);
	CU_ASSERT_EQUAL(count_kind(SPOOL_OUTCOME_RELEASED), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld "
	    "AND state = 'ready' AND attempts = 0 AND lease_owner IS NULL",
	    (long long)id), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE task_id "
	    "= %lld", (long long)id), 0);
out:
	spool_close(q);
}


/* A cancel of a task claimed ahead and not started hands it back, which
 * ends it cancelled: reported as cancelled, not as handed back. */
static void
test_cancel_claimed(void)
{
	const char		*qs[] = { "cc" };
	spool_pool_stats	 st;
	struct runner		 r;
	spool_pool		*p;
	spool			*q;
	int64_t			 ids[4], t0;
	int			 running = 0;

	q = real_open();
	if ((p = gated_pool(q, qs, 4, ids, &r)) == NULL)
		goto out;
	t0 = mono_ms();
	while (q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld AND "
	    "state = 'running' AND started_ms IS NULL", (long long)ids[3]) != 1
	    && mono_ms() - t0 < 5000)
		sleep_ms(2);
	TU_RC(spool_cancel(&running, q, ids[3]), SPOOL_OK);
	CU_ASSERT_EQUAL(running, 1);	/* leased: flagged for its worker */
	t0 = mono_ms();
	while (count_kind(SPOOL_OUTCOME_CANCELLED) == 0 &&
	    mono_ms() - t0 < 5000)
		sleep_ms(2);
	CU_ASSERT(mono_ms() - t0 < 2000);	/* the cancel poll, not renewals */
	store(&gate_open, 1);
	spool_pool_stop(p, 0);
	TU_RC(runner_join(&r), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(st.cancelled, 1);
	CU_ASSERT_EQUAL(count_kind(SPOOL_OUTCOME_CANCELLED), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE id = %lld "
	    "AND state = 'cancelled'", (long long)ids[3]), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts WHERE task_id "
	    "= %lld", (long long)ids[3]), 0);
out:
	spool_close(q);
}

/* The largest prefetch a pool takes: its claims stay within what one
 * claim may take, so outcomes keep being committed. */
static void
test_prefetch_max(void)
{
	const char		*qs[] = { "pm" };
	spool_pool_stats	 st;
	spool_pool_opts		 o;
	spool_pool		*p;
	spool			*q;

	rec_reset();
	q = real_open();
	enqueue_n(q, "pm", "p", 25000, NULL);
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 2;
	o.prefetch = 10000;
	if ((p = pool_make(h_nothing, &o)) == NULL)
		goto out;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(st.succeeded, 25000);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE state = "
	    "'succeeded'"), 25000);
out:
	spool_close(q);
}

/* A signal during a drain that max_time began is the first signal: it
 * does not quit at once; the running task finishes. */
static void
test_signal_during_drain(void)
{
	const char		*qs[] = { "sd" };
	spool_pool_stats	 st;
	spool_pool_opts		 o;
	struct runner		 r;
	spool_pool		*p;
	spool			*q;
	int64_t			 t0;
	int			 stopping = 0;

	rec_reset();
	store(&slow_ms, 800);
	q = real_open();
	enqueue1(q, "sd", "slow");
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_SIGNALS;
	o.min_workers = o.max_workers = 1;
	o.max_time_ms = 100;
	if ((p = pool_make(h_slow, &o)) == NULL)
		goto out;
	runner_start(&r, p);
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
	TU_RC(runner_join(&r), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(st.quit, 0);
	CU_ASSERT_EQUAL(st.left, 0);
	CU_ASSERT_EQUAL(st.succeeded, 1);
out:
	spool_close(q);
}


/* A flush whose claim fails still commits its outcomes: the retry
 * commits them without a claim (the loop's own claims go on). */
static void
test_flush_claim_fails(void)
{
	const char		*qs[] = { "fc" };
	spool_pool_stats	 st;
	spool_pool_opts		 o;
	spool_pool		*p;
	spool			*q;

	rec_reset();
	store(&slow_ms, 2);
	q = real_open();
	enqueue_n(q, "fc", "f", 40, NULL);
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 1;
	if ((p = pool_make(h_slow, &o)) == NULL)
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
}

/* on_log: count the lines that say commits fail and that they resumed. */
static int	 log_cannot, log_again;

static void
log_hold(const char *line, void *arg)
{
	(void)arg;
	if (strncmp(line, "cannot commit: ", 15) == 0 &&
	    strstr(line, "not starting tasks") != NULL)
		__atomic_fetch_add(&log_cannot, 1, __ATOMIC_ACQ_REL);
	else if (strncmp(line, "committed again after ", 22) == 0)
		__atomic_fetch_add(&log_again, 1, __ATOMIC_ACQ_REL);
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
	spool_pool_opts		 o;
	struct runner		 r;
	spool_pool		*p;
	spool			*q;
	int64_t			 end;
	size_t			 s1, s2;
	int			 holding = 0;

	rec_reset();
	store(&slow_ms, 5);
	store(&log_cannot, 0);
	store(&log_again, 0);
	q = real_open();
	enqueue_n(q, "fh", "h", 30, NULL);
	opts_init(&o, qs, 1);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = 2;
	o.on_log = log_hold;
	if ((p = pool_make(h_slow, &o)) == NULL)
		goto out;
	/* Claims far ahead of the threads: the pool then holds tasks it
	 * could start, and must not. */
	p->ahead_fixed = 20;
	__atomic_store_n(&p->fail_flushes, 1, __ATOMIC_RELEASE);
	runner_start(&r, p);
	for (end = mono_ms() + 5000; mono_ms() < end; sleep_ms(2)) {
		spool_pool_stats_get(&st, p);
		if ((holding = st.holding) != 0)
			break;
	}
	CU_ASSERT_FATAL(holding);
	/* What started before the hold finishes; nothing more starts. */
	sleep_ms(50);
	pthread_mutex_lock(&rec_mu);
	s1 = R.nstart;
	pthread_mutex_unlock(&rec_mu);
	sleep_ms(300);
	pthread_mutex_lock(&rec_mu);
	s2 = R.nstart;
	pthread_mutex_unlock(&rec_mu);
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
	CU_ASSERT_EQUAL(load(&log_cannot), 1);
	/* The fault clears: the pool goes on alone. */
	__atomic_store_n(&p->fail_flushes, 0, __ATOMIC_RELEASE);
	TU_RC(runner_join(&r), SPOOL_OK);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(st.succeeded, 30);
	CU_ASSERT_EQUAL(st.holding, 0);
	CU_ASSERT_EQUAL(st.held, 0);
	CU_ASSERT_EQUAL(load(&log_cannot), 1);
	CU_ASSERT_EQUAL(load(&log_again), 1);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM tasks WHERE queue = "
	    "'fh' AND state = 'succeeded'"), 30);
	CU_ASSERT_EQUAL(q_int(q, "SELECT count(*) FROM attempts a JOIN tasks t "
	    "ON t.id = a.task_id WHERE t.queue = 'fh'"), 30);
out:
	spool_close(q);
}

static CU_TestInfo pool_tests[] = {
	{ "drain 2000 tasks until empty", test_drain },
	{ "result bytes and error text", test_results },
	{ "retry, fail, bogus return value", test_retry_fail },
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
	{ "strategy: priority", test_strategy_priority },
	{ "strategy: round robin", test_strategy_round_robin },
	{ "strategy: weighted 3:1", test_strategy_weighted },
	{ "autoscale up and back down", test_autoscale },
	{ "exclusive lock", test_exclusive },
	{ "load shedding on measured CPU", test_load_shedding },
	{ "claims leave reaping to the engine", test_reap_once },
	{ "a failed flush keeps its outcomes", test_flush_retry },
	{ "bad options", test_bad_options },
	{ "open_flags: SPOOL_OPEN_CREATE makes the file", test_open_create },
	{ "options of an unknown version", test_opts_version_unknown },
	{ "pool jobs refuse direct calls", test_direct_calls },
	{ "times are the handler's, under claims ahead", test_times_truthful },
	{ "claimed ahead reads as claimed, not running", test_claimed_visible },
	{ "claims sized by handler time", test_ahead_sized },
	{ "shutdown timeout hands the task back", test_shutdown_handback },
	{ "cancel of a task claimed ahead", test_cancel_claimed },
	{ "the largest prefetch still commits", test_prefetch_max },
	{ "a signal during a max_time drain drains", test_signal_during_drain },
	{ "a flush whose claim fails commits its outcomes", test_flush_claim_fails },
	{ "an idle pool wakes for a lower priority's due task", test_scheduled_levels },
	{ "no task starts while outcomes cannot be committed", test_flush_hold },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("pool", pool_tests));
}
