/*
 * t-metrics.c -- the per-queue counters of schema 5 (counters.c) and
 * what spool_metrics and spool_workers read (metrics.c): every path that
 * changes a task moves exactly its counters, rolled-back work moves
 * none, and the last minute's counts and percentiles come from the
 * finished tasks.
 */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

/* Queue's counters as "enqueued claimed succeeded failed retried dead
 * expired lease_lost cancelled". */
static const char *
counters(char *buf, size_t len, const char *queue)
{
	spool_queue_metrics	*m = NULL;
	size_t			 n = 0;

	TU_RC(spool_metrics(&m, &n, tu_q, queue), SPOOL_OK);
	if (n != 1) {
		snprintf(buf, len, "?");
		return (buf);
	}
	snprintf(buf, len, "%lld %lld %lld %lld %lld %lld %lld %lld %lld",
	    (long long)m->total.enqueued, (long long)m->total.claimed,
	    (long long)m->total.succeeded, (long long)m->total.failed,
	    (long long)m->total.retried, (long long)m->total.dead,
	    (long long)m->total.expired, (long long)m->total.lease_lost,
	    (long long)m->total.cancelled);
	spool_queue_metrics_free(m, n);
	return (buf);
}

#define COUNTERS_ARE(queue, want) do {					\
	char	 b_[256];						\
	counters(b_, sizeof b_, (queue));				\
	if (strcmp(b_, (want)) != 0)					\
		fprintf(stderr, "\n%s:%d: counters '%s', want '%s'\n",	\
		    __FILE__, __LINE__, b_, (want));			\
	CU_ASSERT_STRING_EQUAL(b_, (want));				\
} while (0)

static spool_job *
claim(const char *queue)
{
	spool_job	*job = NULL;

	TU_RC(spool_claim(&job, tu_q, queue, NULL), SPOOL_OK);
	return (job);
}

/* Each outcome moves its counters, and only those. */
static void
test_paths(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_job		*job;
	int64_t			 id, n;
	int			 running;

	tu_fixed_backoff("q", 1000);
	COUNTERS_ARE("q", "0 0 0 0 0 0 0 0 0");
	tu_enqueue("q", "a");
	tu_enqueue("q", "b");
	tu_enqueue("q", "c");
	COUNTERS_ARE("q", "3 0 0 0 0 0 0 0 0");
	job = claim("q");
	TU_RC(spool_job_complete(job, "r", 1), SPOOL_OK);
	spool_job_free(job);
	COUNTERS_ARE("q", "3 1 1 0 0 0 0 0 0");
	job = claim("q");
	TU_RC(spool_job_fail(job, "x", 0), SPOOL_OK);		/* retried */
	spool_job_free(job);
	COUNTERS_ARE("q", "3 2 1 1 1 0 0 0 0");
	job = claim("q");
	TU_RC(spool_job_fail(job, "x", SPOOL_FAIL_PERMANENT), SPOOL_OK);
	spool_job_free(job);
	COUNTERS_ARE("q", "3 3 1 2 1 1 0 0 0");
	/* A lost lease: counted once, by the reaper; the late outcome is
	 * refused and counts nothing. */
	tu_advance(1000);
	job = claim("q");
	CU_ASSERT_PTR_NOT_NULL_FATAL(job);
	tu_advance(31000);
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	TU_RC(spool_job_complete(job, "late", 4), SPOOL_ELEASE);
	spool_job_free(job);
	COUNTERS_ARE("q", "3 4 1 2 2 1 0 1 0");
	/* Cancel: a ready task at once; a running one when it ends. */
	id = tu_enqueue("q", "d");
	TU_RC(spool_cancel(&running, tu_q, id), SPOOL_OK);
	COUNTERS_ARE("q", "4 4 1 2 2 1 0 1 1");
	tu_advance(2000);
	job = claim("q");
	TU_RC(spool_cancel(&running, tu_q, spool_job_id(job)), SPOOL_OK);
	TU_RC(spool_job_fail(job, "stopped", 0), SPOOL_OK);
	spool_job_free(job);
	COUNTERS_ARE("q", "4 5 1 2 2 1 0 1 2");
	/* A deadline passes. */
	o.deadline_ms = tu_now + 10;
	TU_RC(spool_enqueue(&id, tu_q, "q", "e", 1, &o), SPOOL_OK);
	tu_advance(20);
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	COUNTERS_ARE("q", "5 5 1 2 2 2 1 1 2");
	/* Release at shutdown: nothing but the claim. */
	tu_enqueue("q", "f");
	job = claim("q");
	TU_RC(spool_job_release(job), SPOOL_OK);
	spool_job_free(job);
	COUNTERS_ARE("q", "6 6 1 2 2 2 1 1 2");
	/* The counters survive prune. */
	TU_RC(spool_prune(&n, tu_q, NULL, 0), SPOOL_OK);
	CU_ASSERT(n > 0);
	COUNTERS_ARE("q", "6 6 1 2 2 2 1 1 2");
}

/* The enqueued count of the table, the mark, and of the view. */
#define TABLE_ENQUEUED(queue) tu_sql_int("SELECT coalesce((SELECT " \
	"enqueued FROM queue_counters WHERE queue = '" queue "'), -1)")
#define MARK() tu_sql_int("SELECT task_id FROM counters_mark")
#define VIEW_ENQUEUED(queue) tu_sql_int("SELECT enqueued FROM " \
	"spool_counters WHERE queue = '" queue "'")

/*
 * Tasks are counted as enqueued later, from their ids (schema 8): an
 * enqueue alone writes no counter row, yet every reader sees the count,
 * a commit that writes counters anyway counts the tasks above the mark,
 * and deleting tasks above it, by spool or by hand, does not lower it.
 */
static void
test_counted_later(void)
{
	spool_task	 t[2000];
	int64_t		 ids[2000], n, top;
	spool_job	*job;
	int		 i;

	for (i = 0; i < 5; i++)
		tu_enqueue("late", "x");
	/* Five enqueues wrote no counter row, and moved no mark. */
	CU_ASSERT_EQUAL(TABLE_ENQUEUED("late"), -1);
	CU_ASSERT_EQUAL(MARK(), 0);
	CU_ASSERT_EQUAL(VIEW_ENQUEUED("late"), 5);
	COUNTERS_ARE("late", "5 0 0 0 0 0 0 0 0");
	/* A task deleted by hand while above the mark is counted as it goes;
	 * so are those spool purges. */
	CU_ASSERT_EQUAL(sqlite3_exec(tu_q->db, "DELETE FROM tasks WHERE id = "
	    "(SELECT min(id) FROM tasks WHERE queue = 'late')", NULL, NULL,
	    NULL), SQLITE_OK);
	CU_ASSERT_EQUAL(TABLE_ENQUEUED("late"), 1);
	CU_ASSERT_EQUAL(VIEW_ENQUEUED("late"), 5);
	tu_enqueue("gone", "x");
	tu_enqueue("gone", "y");
	TU_RC(spool_purge(&n, tu_q, "gone", 0), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2);
	COUNTERS_ARE("gone", "2 0 0 0 0 0 0 0 0");
	/* A claim writes counters: the tasks above the mark are counted in
	 * its commit, and the mark moves to the last task. */
	top = tu_sql_int("SELECT max(id) FROM tasks");
	job = claim("late");
	CU_ASSERT_PTR_NOT_NULL_FATAL(job);
	spool_job_free(job);
	CU_ASSERT_EQUAL(MARK(), top);
	CU_ASSERT_EQUAL(TABLE_ENQUEUED("late"), 5);
	CU_ASSERT_EQUAL(VIEW_ENQUEUED("late"), 5);
	COUNTERS_ARE("late", "5 1 0 0 0 0 0 0 0");
	/* Three more, then a bulk of 2,000 in one call: the bulk counts its
	 * own tasks from its sums and the three before it from the table. */
	for (i = 0; i < 3; i++)
		tu_enqueue("late", "y");
	CU_ASSERT_EQUAL(TABLE_ENQUEUED("late"), 5);
	for (i = 0; i < 2000; i++) {
		t[i].queue = "late";
		t[i].payload = "z";
		t[i].len = 1;
		t[i].opts = NULL;
	}
	TU_RC(spool_enqueue_many(ids, NULL, tu_q, t, 2000), SPOOL_OK);
	CU_ASSERT_EQUAL(TABLE_ENQUEUED("late"), 2008);
	CU_ASSERT_EQUAL(MARK(), ids[1999]);
	COUNTERS_ARE("late", "2008 1 0 0 0 0 0 0 0");
	/* Enqueues alone are counted once their ids span 1,024. */
	for (i = 0; i < 1100 && MARK() == ids[1999]; i++)
		tu_enqueue("late", "w");
	CU_ASSERT_EQUAL(i, 1024);
	CU_ASSERT_EQUAL(TABLE_ENQUEUED("late"), 2008 + 1024);
	COUNTERS_ARE("late", "3032 1 0 0 0 0 0 0 0");
}

/* A refused or rolled-back write counts nothing; a bulk counts all. */
static void
test_rollback(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_task		 t[100];
	int64_t			 ids[100];
	int			 i;

	qo.set = SPOOL_QUEUE_MAX_DEPTH;
	qo.max_depth = 150;
	TU_RC(spool_queue_create(tu_q, "b", &qo), SPOOL_OK);
	memset(t, 0, sizeof t);
	for (i = 0; i < 100; i++) {
		t[i].queue = "b";
		t[i].payload = "x";
		t[i].len = 1;
		t[i].opts = NULL;
	}
	TU_RC(spool_enqueue_many(ids, NULL, tu_q, t, 100), SPOOL_OK);
	COUNTERS_ARE("b", "100 0 0 0 0 0 0 0 0");
	TU_RC(spool_enqueue_many(ids, NULL, tu_q, t, 100), SPOOL_EFULL);
	COUNTERS_ARE("b", "100 0 0 0 0 0 0 0 0");
	/* A statement failing inside a transaction: rolled back. */
	t[57].queue = "";
	TU_RC(spool_enqueue_many(ids, NULL, tu_q, t, 60), SPOOL_EINVAL);
	COUNTERS_ARE("b", "100 0 0 0 0 0 0 0 0");
}

/* Pipelines: each stage's queue counts its tasks. */
static void
test_pipeline(void)
{
	spool_stage	 s[2] = { SPOOL_STAGE_INIT, SPOOL_STAGE_INIT };
	spool_item	 it[2] = { { "a", 1 }, { "b", 1 } };
	spool_job	*job;
	int64_t		 run;

	s[0].name = "one";
	s[0].concurrency = 1;
	s[1].name = "two";
	s[1].concurrency = 1;
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 2, 0), SPOOL_OK);
	TU_RC(spool_pipeline_start(&run, NULL, tu_q, "p", it, 2, NULL),
	    SPOOL_OK);
	COUNTERS_ARE("p/one", "2 0 0 0 0 0 0 0 0");
	job = claim("p/one");
	TU_RC(spool_job_complete(job, "x", 1), SPOOL_OK);
	spool_job_free(job);
	COUNTERS_ARE("p/one", "2 1 1 0 0 0 0 0 0");
	COUNTERS_ARE("p/two", "1 0 0 0 0 0 0 0 0");
	TU_RC(spool_run_cancel(tu_q, run), SPOOL_OK);
	COUNTERS_ARE("p/one", "2 1 1 0 0 0 0 0 1");
	COUNTERS_ARE("p/two", "1 0 0 0 0 0 0 0 1");
}

/* The last minute: counts and nearest-rank percentiles; workers. */
static void
test_window(void)
{
	spool_queue_metrics	*m = NULL;
	spool_worker_info	*w = NULL;
	spool_job		*job;
	size_t			 n = 0;
	int			 i;

	for (i = 0; i < 20; i++)
		tu_enqueue("w", "x");
	tu_advance(500);			/* every wait is 500 ms */
	for (i = 0; i < 20; i++) {
		job = claim("w");
		tu_advance(10 * (i + 1));	/* runs of 10 .. 200 ms */
		TU_RC(spool_job_complete(job, "r", 1), SPOOL_OK);
		spool_job_free(job);
	}
	TU_RC(spool__worker_upsert(tu_q, "h:1:a", "h", 1, "[\"w\",\"v\"]", 4,
	    3, tu_now, tu_now), SPOOL_OK);
	TU_RC(spool__worker_upsert(tu_q, "h:2:b", "h", 2, "[\"v\"]", 2, 0,
	    tu_now - 60000, tu_now - 60000), SPOOL_OK);
	TU_RC(spool_metrics(&m, &n, tu_q, "w"), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(m->succeeded_1m, 20);
	CU_ASSERT_EQUAL(m->run_ms[0], 100);
	CU_ASSERT_EQUAL(m->run_ms[1], 190);
	CU_ASSERT_EQUAL(m->run_ms[2], 200);
	CU_ASSERT(m->wait_ms[0] >= 500);
	CU_ASSERT_EQUAL(m->workers, 1);
	CU_ASSERT_EQUAL(m->concurrency, 4);
	CU_ASSERT_EQUAL(m->busy, 3);
	CU_ASSERT_EQUAL(m->stats.succeeded, 20);
	spool_queue_metrics_free(m, n);
	/* A minute later, the window is empty. */
	tu_advance(SPOOL_METRICS_WINDOW_MS + 1);
	TU_RC(spool_metrics(&m, &n, tu_q, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(m->succeeded_1m, 0);
	CU_ASSERT_EQUAL(m->run_ms[1], -1);
	CU_ASSERT_EQUAL(m->total.succeeded, 20);
	spool_queue_metrics_free(m, n);
	TU_RC(spool_metrics(&m, &n, tu_q, "nope"), SPOOL_ENOENT);
	/* By id (since 0.8; they were oldest first). */
	TU_RC(spool_workers(&w, &n, tu_q, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(w[1].id, "h:2:b");
	CU_ASSERT_EQUAL(w[1].stale, 1);
	CU_ASSERT_EQUAL(w[0].stale, 1);		/* the clock moved a minute */
	CU_ASSERT_EQUAL(w[0].busy, 3);
	CU_ASSERT_EQUAL_FATAL(w[0].nqueues, 2);
	CU_ASSERT_STRING_EQUAL(w[0].queues[0], "w");
	CU_ASSERT_STRING_EQUAL(w[0].queues[1], "v");
	spool_worker_info_free(w, n);
}

/* The queues of a worker row, a JSON array, read as an array of names
 * in their order (since 0.8): escapes decoded, an empty array or a value
 * that is not one read as none. */
static void
test_workers_queues(void)
{
	spool_worker_info	*w = NULL;
	size_t			 n = 0;

	TU_RC(spool__worker_upsert(tu_q, "h:1:a", "h", 1,
	    "[\"z\",\"we\\\"ird\\\\q\",\"\\u00e9t\u00e9\",\"a\"]", 1, 0,
	    tu_now, tu_now), SPOOL_OK);
	TU_RC(spool__worker_upsert(tu_q, "h:2:b", "h", 2, "[]", 1, 0, tu_now,
	    tu_now), SPOOL_OK);
	TU_RC(spool__worker_upsert(tu_q, "h:3:c", "h", 3, "[\"cut", 1, 0,
	    tu_now, tu_now), SPOOL_OK);
	TU_RC(spool__worker_upsert(tu_q, "h:4:d", "h", 4, "{\"a\":1}", 1, 0,
	    tu_now, tu_now), SPOOL_OK);
	TU_RC(spool_workers(&w, &n, tu_q, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 4);
	CU_ASSERT_EQUAL_FATAL(w[0].nqueues, 4);
	CU_ASSERT_STRING_EQUAL(w[0].queues[0], "z");
	CU_ASSERT_STRING_EQUAL(w[0].queues[1], "we\"ird\\q");
	CU_ASSERT_STRING_EQUAL(w[0].queues[2], "\u00e9t\u00e9");
	CU_ASSERT_STRING_EQUAL(w[0].queues[3], "a");
	CU_ASSERT_EQUAL(w[1].nqueues, 0);
	CU_ASSERT_PTR_NULL(w[1].queues);
	CU_ASSERT_EQUAL(w[2].nqueues, 0);
	CU_ASSERT_PTR_NULL(w[2].queues);
	CU_ASSERT_EQUAL(w[3].nqueues, 0);
	spool_worker_info_free(w, n);
	spool_worker_info_free(NULL, 3);
}

/* Workers in pages by id, both ways: each once, in order; the options
 * checked as every list's. */
static void
test_workers_pages(void)
{
	spool_worker_list_opts	 wo = SPOOL_WORKER_LIST_OPTS_INIT;
	spool_worker_info	*w = NULL;
	char			 ids[15][16], got[40][16];
	size_t			 n = 0, ngot, i, pages;
	int			 desc;

	for (i = 0; i < 15; i++)
		snprintf(ids[i], sizeof ids[i], "h:%02zu:x", i);
	for (i = 0; i < 15; i++)	/* started out of id order */
		TU_RC(spool__worker_upsert(tu_q, ids[(i * 4) % 15], "h",
		    (long)i, "[\"w\"]", 1, 0, tu_now, tu_now), SPOOL_OK);
	for (desc = 0; desc <= 1; desc++) {
		wo.after = NULL;
		wo.limit = 4;
		wo.descending = desc;
		ngot = pages = 0;
		do {
			TU_RC(spool_workers(&w, &n, tu_q, &wo), SPOOL_OK);
			for (i = 0; i < n && ngot < 40; i++)
				snprintf(got[ngot++], sizeof got[0], "%s",
				    w[i].id);
			wo.after = n > 0 ? got[ngot - 1] : NULL;
			spool_worker_info_free(w, n);
		} while (n == wo.limit && ++pages < 20);
		CU_ASSERT_EQUAL(ngot, 15);
		for (i = 0; i < ngot && i < 15; i++)
			CU_ASSERT_STRING_EQUAL(got[i], ids[desc ? 14 - i : i]);
	}
	wo.after = NULL;
	wo.limit = 10001;
	TU_RC(spool_workers(&w, &n, tu_q, &wo), SPOOL_EINVAL);
	wo.limit = 0;
	wo.version = 0;
	TU_RC(spool_workers(&w, &n, tu_q, &wo), SPOOL_EINVAL);
	wo.version = 99;
	TU_RC(spool_workers(&w, &n, tu_q, &wo), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_worker_list_opts");
}

/* Over a random mix of operations, the counters add up with the rows:
 * enqueued = tasks, succeeded attempts = succeeded rows, and so on. */
static void
test_random(void)
{
	spool_job	*jobs[16];
	unsigned	 seed = 12345;
	int64_t		 n;
	int		 i, k, nj = 0, running;
	char		 want[256];
	const char	*env = getenv("SPOOL_TEST_SEED");

	if (env != NULL)
		seed = (unsigned)strtoul(env, NULL, 10);
	tu_fixed_backoff("r", 10);
	for (i = 0; i < 600; i++) {
		k = (int)(rand_r(&seed) % 8);
		if (k <= 1)
			tu_enqueue("r", "x");
		else if (k == 2 && nj < 16 &&
		    spool_claim(&jobs[nj], tu_q, "r", NULL) == SPOOL_OK)
			nj++;
		else if (k == 3 && nj > 0)
			spool_job_complete(jobs[--nj], "r", 1),
			    spool_job_free(jobs[nj]);
		else if (k == 4 && nj > 0)
			spool_job_fail(jobs[--nj], "f", rand_r(&seed) % 2 ?
			    SPOOL_FAIL_PERMANENT : 0), spool_job_free(jobs[nj]);
		else if (k == 5 && nj > 0)
			spool_cancel(&running, tu_q, spool_job_id(jobs[nj - 1]));
		else if (k == 6)
			tu_advance(rand_r(&seed) % 40000);
		else if (k == 7)
			spool_reap(&n, tu_q);
	}
	while (nj > 0)
		spool_job_free(jobs[--nj]);
	/* Every counter but retried (covered by test_paths) has a plain
	 * count of rows to match. */
	snprintf(want, sizeof want, "%lld %lld %lld %lld %lld 0 %lld %lld",
	    (long long)tu_sql_int("SELECT count(*) FROM tasks"),
	    (long long)tu_sql_int("SELECT count(*) FROM attempts") +
	    tu_sql_int("SELECT count(*) FROM tasks WHERE state = 'running'"),
	    (long long)tu_sql_int("SELECT count(*) FROM attempts WHERE outcome = "
	    "'succeeded'"),
	    (long long)tu_sql_int("SELECT count(*) FROM attempts WHERE outcome = "
	    "'failed'"),
	    (long long)tu_sql_int("SELECT count(*) FROM tasks WHERE state = "
	    "'dead'"),
	    (long long)tu_sql_int("SELECT count(*) FROM attempts WHERE outcome = "
	    "'lease_lost'"),
	    (long long)tu_sql_int("SELECT count(*) FROM tasks WHERE state = "
	    "'cancelled'"));
	{
		char	 got[256], a[9][32];

		counters(got, sizeof got, "r");
		if (sscanf(got, "%31s %31s %31s %31s %31s %31s %31s %31s %31s",
		    a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]) == 9)
			snprintf(got, sizeof got, "%s %s %s %s %s %s %s %s",
			    a[0], a[1], a[2], a[3], a[5], a[6], a[7], a[8]);
		if (strcmp(got, want) != 0)
			fprintf(stderr, "\ncounters '%s', want '%s'\n", got, want);
		CU_ASSERT_STRING_EQUAL(got, want);
		CU_ASSERT(tu_sql_int("SELECT count(*) FROM tasks WHERE state = "
		    "'dead'") > 0);
		CU_ASSERT(tu_sql_int("SELECT count(*) FROM attempts WHERE "
		    "outcome = 'lease_lost'") > 0);
	}
}


/* ---- In-process metrics of a pool (hist.c) ----------------------------- */

/* Fixed buckets, cumulative counts, interpolated quantiles. */
static void
test_histogram(void)
{
	spool_histogram	 h;
	static const int64_t bounds[SPOOL_HIST_BUCKETS] = SPOOL_HIST_BOUNDS_MS;
	int		 i;

	spool__hist_init(&h);
	CU_ASSERT(memcmp(h.le_ms, bounds, sizeof bounds) == 0);
	CU_ASSERT_EQUAL(h.le_ms[SPOOL_HIST_BUCKETS - 1], INT64_MAX);
	CU_ASSERT_EQUAL(spool_histogram_quantile(&h, 0.5), 0);
	for (i = 0; i < 100; i++)
		spool__hist_add(&h, 3);		/* all in (2, 5] */
	CU_ASSERT_EQUAL(h.n, 100);
	CU_ASSERT_EQUAL(h.sum_ms, 300);
	CU_ASSERT_EQUAL(h.count[1], 0);		/* <= 2 */
	CU_ASSERT_EQUAL(h.count[2], 100);	/* <= 5 */
	CU_ASSERT_EQUAL(h.count[SPOOL_HIST_BUCKETS - 1], 100);
	CU_ASSERT_DOUBLE_EQUAL(spool_histogram_quantile(&h, 0.5), 3.5, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(spool_histogram_quantile(&h, 1.0), 5, 1e-9);
	for (i = 0; i < 100; i++)
		spool__hist_add(&h, 80);	/* (50, 100] */
	/* The 75th percentile: rank 150, half way into (50, 100]. */
	CU_ASSERT_DOUBLE_EQUAL(spool_histogram_quantile(&h, 0.75), 75, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(spool_histogram_quantile(&h, 0.25), 3.5, 1e-9);
	spool__hist_add(&h, -7);		/* a clock step: counts as 0 */
	CU_ASSERT_EQUAL(h.count[0], 1);
	spool__hist_add(&h, 0);
	spool__hist_add(&h, 1);
	CU_ASSERT_EQUAL(h.count[0], 3);		/* le is inclusive */
	spool__hist_init(&h);
	spool__hist_add(&h, 3600000);		/* an hour: the +Inf bucket */
	CU_ASSERT_EQUAL(h.count[SPOOL_HIST_BUCKETS - 2], 0);
	CU_ASSERT_EQUAL(h.count[SPOOL_HIST_BUCKETS - 1], 1);
	CU_ASSERT_DOUBLE_EQUAL(spool_histogram_quantile(&h, 0.99), 60000, 1e-9);
	CU_ASSERT_EQUAL(spool_histogram_quantile(NULL, 0.5), 0);
}

static int64_t
fake_clock(void *arg)
{
	(void)arg;
	return (tu_now);
}

static int
h_noop(spool_job *job, void *arg)
{
	(void)job;
	(void)arg;
	return (SPOOL_DONE);
}

/* The last minute's per-second counts, on the fake clock: a slot of the
 * ring reused a minute later starts from zero; refused and handed-back
 * jobs count nowhere; cancelled ones only in the histograms. */
static void
test_rates(void)
{
	static const char *const qs[] = { "r" };
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	spool_pool_metrics	 m;
	spool_pool		*p = NULL;
	int64_t			 t = tu_now;	/* a whole second */
	int			 k;

	o.queues = qs;
	o.nqueues = 1;
	TU_RC(spool_pool_new(&p, tu_db, h_noop, NULL, &o), SPOOL_OK);
	if (p == NULL)
		return;
	spool__set_clock(p->q, fake_clock, NULL);
	pthread_mutex_lock(&p->mu);
	spool__pool_observe(p, SPOOL_OUTCOME_SUCCEEDED, 5, 10, t - 64000);
	spool__pool_observe(p, SPOOL_OUTCOME_SUCCEEDED, 5, 10, t - 60000);
	spool__pool_observe(p, SPOOL_OUTCOME_SUCCEEDED, 5, 10, t - 59000);
	spool__pool_observe(p, SPOOL_OUTCOME_RETRYING, 5, 10, t - 1000);
	spool__pool_observe(p, SPOOL_OUTCOME_DEAD, 5, 10, t - 500);
	spool__pool_observe(p, SPOOL_OUTCOME_SUCCEEDED, 5, 10, t);
	spool__pool_observe(p, SPOOL_OUTCOME_SUCCEEDED, 5, 10, t + 999);
	spool__pool_observe(p, SPOOL_OUTCOME_CANCELLED, 5, 10, t);
	spool__pool_observe(p, SPOOL_OUTCOME_LEASE_LOST, 5, 10, t);
	spool__pool_observe(p, SPOOL_OUTCOME_RELEASED, 5, 10, t);
	pthread_mutex_unlock(&p->mu);
	tu_now = t + 999;
	spool_pool_metrics_get(&m, p);
	CU_ASSERT_EQUAL(m.now_ms, t + 999);
	CU_ASSERT_EQUAL(m.succeeded_s[0], 1);	/* t - 59 s */
	CU_ASSERT_EQUAL(m.succeeded_s[59], 2);	/* t, t + 999; not t - 64 s */
	CU_ASSERT_EQUAL(m.failed_s[58], 2);	/* t - 1000, t - 500 */
	CU_ASSERT_EQUAL(m.succeeded_1m, 3);
	CU_ASSERT_EQUAL(m.failed_1m, 2);
	for (k = 1; k < 58; k++)
		CU_ASSERT_EQUAL(m.succeeded_s[k] + m.failed_s[k], 0);
	CU_ASSERT_EQUAL(m.run.n, 8);		/* all but lease lost, released */
	CU_ASSERT_EQUAL(m.wait.n, 8);
	CU_ASSERT_EQUAL(m.run.sum_ms, 80);
	/* A minute on, the window is empty. */
	tu_now = t + 61000;
	spool_pool_metrics_get(&m, p);
	CU_ASSERT_EQUAL(m.succeeded_1m + m.failed_1m, 0);
	CU_ASSERT_EQUAL(m.run.n, 8);		/* histograms keep everything */
	spool_pool_free(p);
}

static int	 nlines;
static char	 last_line[512];

static void
on_log(const char *line, void *arg)
{
	(void)arg;
	nlines++;
	snprintf(last_line, sizeof last_line, "%s", line);
}

static int
h_sleep(spool_job *job, void *arg)
{
	struct timespec	 ts = { 0, 4 * 1000000 };

	(void)job;
	(void)arg;
	nanosleep(&ts, NULL);
	return (spool_job_id(job) % 10 == 0 ? SPOOL_FAIL : SPOOL_DONE);
}

/* A real pool on the real clock: its metrics count what its handlers
 * ran, the process figures are sampled, the summary line comes every
 * log_interval_ms; options of version 1 are read without the fields
 * version 2 added. */
static void
test_pool_metrics(void)
{
	static const char *const qs[] = { "m" };
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	spool_pool_metrics	 m;
	spool_pool		*p = NULL;
	spool			*q = NULL;
	int64_t			 id;
	int			 i;

	TU_RC(spool_open(&q, tu_db, 0), SPOOL_OK);	/* the real clock */
	for (i = 0; i < 60; i++)
		TU_RC(spool_enqueue(&id, q, "m", "x", 1, NULL), SPOOL_OK);
	spool_close(q);
	o.queues = qs;
	o.nqueues = 1;
	o.max_workers = 2;
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.tick_ms = 10;
	o.log_interval_ms = 30;
	o.on_log = on_log;
	nlines = 0;
	TU_RC(spool_pool_new(&p, tu_db, h_sleep, NULL, &o), SPOOL_OK);
	if (p == NULL)
		return;
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_metrics_get(&m, p);
	CU_ASSERT_EQUAL(m.stats.succeeded, 54);
	CU_ASSERT_EQUAL(m.stats.dead, 6);
	CU_ASSERT_EQUAL(m.run.n, 60);
	CU_ASSERT_EQUAL(m.wait.n, 60);
	CU_ASSERT_EQUAL(m.succeeded_1m, 54);
	CU_ASSERT_EQUAL(m.failed_1m, 6);
	CU_ASSERT_EQUAL(m.run.count[1], 0);	/* each slept 4 ms */
	CU_ASSERT(spool_histogram_quantile(&m.run, 0.5) >= 2);
	CU_ASSERT(m.run.sum_ms >= 4 * 60);
	CU_ASSERT(m.rss_bytes > 1024 * 1024);
	CU_ASSERT(m.cpu_user_s + m.cpu_system_s > 0);
	CU_ASSERT(m.started_ms > 0 && m.now_ms >= m.started_ms);
	CU_ASSERT(nlines >= 1);
	CU_ASSERT(strncmp(last_line, "last 60 s: ", 11) == 0);
	CU_ASSERT(strstr(last_line, " succeeded, ") != NULL);
	CU_ASSERT(strstr(last_line, " MiB") != NULL);
	/* The pool's figures as Prometheus text, alone and after the
	 * database's. */
	{
		char	*t = NULL;
		size_t	 len = 0;

		TU_RC(spool_prometheus(&t, &len, NULL, p, NULL), SPOOL_OK);
		CU_ASSERT(t != NULL && strlen(t) == len);
		CU_ASSERT(t != NULL && strstr(t,
		    "spool_pool_run_seconds_count 60\n") != NULL);
		CU_ASSERT(t != NULL && strstr(t, "spool_tasks{") == NULL);
		free(t);
		TU_RC(spool_open(&q, tu_db, 0), SPOOL_OK);
		TU_RC(spool_prometheus(&t, &len, q, p, NULL), SPOOL_OK);
		CU_ASSERT(t != NULL && strstr(t, "spool_tasks{queue=\"m\","
		    "state=\"succeeded\"} 54\n") != NULL);
		CU_ASSERT(t != NULL && strstr(t, "spool_tasks{queue=\"m\"") <
		    strstr(t, "spool_pool_run_seconds_count 60\n"));
		free(t);
		spool_close(q);
	}
	spool_pool_free(p);

	/* Version 1: what follows cb_arg is not read (-5 would be refused). */
	o.version = 1;
	o.log_interval_ms = -5;
	TU_RC(spool_pool_new(&p, tu_db, h_sleep, NULL, &o), SPOOL_OK);
	spool_pool_free(p);
	o.version = 2;
	TU_RC(spool_pool_new(&p, tu_db, h_sleep, NULL, &o), SPOOL_EINVAL);
	spool_pool_free(p);
}

/* spool_prometheus: every series of every queue, or of the one asked for;
 * labels escaped; the arguments checked. */
static void
test_prometheus(void)
{
	spool_prometheus_opts	 o = SPOOL_PROMETHEUS_OPTS_INIT;
	char			*t = (char *)"x";
	size_t			 len = 7;

	tu_enqueue("a", "1");
	tu_enqueue("b\"\\q", "2");
	TU_RC(spool_prometheus(&t, &len, tu_q, NULL, NULL), SPOOL_OK);
	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT_EQUAL(strlen(t), len);
	CU_ASSERT(strncmp(t, "# HELP spool_tasks ", 19) == 0);
	CU_ASSERT(strstr(t, "# TYPE spool_tasks gauge\n") != NULL);
	CU_ASSERT(strstr(t, "spool_tasks{queue=\"a\",state=\"ready\"} 1\n")
	    != NULL);
	CU_ASSERT(strstr(t, "spool_tasks{queue=\"b\\\"\\\\q\",state=\"ready\"} 1\n")
	    != NULL);
	CU_ASSERT(strstr(t, "spool_enqueued_total{queue=\"a\"} 1\n") != NULL);
	CU_ASSERT(strstr(t, "spool_pool_") == NULL);
	free(t);

	o.queue = "a";
	TU_RC(spool_prometheus(&t, &len, tu_q, NULL, &o), SPOOL_OK);
	CU_ASSERT(t != NULL && strstr(t, "queue=\"a\"") != NULL);
	CU_ASSERT(t != NULL && strstr(t, "queue=\"b") == NULL);
	free(t);
	o.queue = "none";
	TU_RC(spool_prometheus(&t, &len, tu_q, NULL, &o), SPOOL_ENOENT);
	CU_ASSERT(t == NULL && len == 0);

	TU_RC(spool_prometheus(&t, &len, NULL, NULL, NULL), SPOOL_EINVAL);
	TU_RC(spool_prometheus(NULL, &len, tu_q, NULL, NULL), SPOOL_EINVAL);
	TU_RC(spool_prometheus(&t, NULL, tu_q, NULL, NULL), SPOOL_EINVAL);
	o.queue = NULL;
	o.version = 99;
	TU_RC(spool_prometheus(&t, &len, tu_q, NULL, &o), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_prometheus_opts");
	o.version = 0;
	TU_RC(spool_prometheus(&t, &len, tu_q, NULL, &o), SPOOL_EINVAL);
	CU_ASSERT(strstr(spool_errmsg(tu_q), "spool_prometheus_opts: version "
	    "not set (use SPOOL_PROMETHEUS_OPTS_INIT)") != NULL);
}

/* A program that set a comma-decimal LC_NUMERIC (de_DE, built by
 * localedef into the test's directory; tools/deps.sh installs the
 * locales package it reads) still gets the text format's '.' decimals. */
static void
test_prometheus_locale(void)
{
	char	 cmd[1200], got[64], *t = NULL;
	size_t	 len;

	snprintf(cmd, sizeof cmd, "localedef -i de_DE -f UTF-8 "
	    "'%s/de_DE.UTF-8' >/dev/null 2>&1", tu_dir);
	if (system(cmd) != 0)
		CU_FAIL_FATAL("localedef de_DE.UTF-8 failed (the Debian "
		    "package locales: sh tools/deps.sh)");
	setenv("LOCPATH", tu_dir, 1);
	CU_ASSERT_FATAL(setlocale(LC_NUMERIC, "de_DE.UTF-8") != NULL);
	snprintf(got, sizeof got, "%.1f", 0.5);
	CU_ASSERT_STRING_EQUAL(got, "0,5");	/* the locale took */
	tu_enqueue("a", "1");
	tu_advance(1500);			/* due 1.5 s ago */
	TU_RC(spool_prometheus(&t, &len, tu_q, NULL, NULL), SPOOL_OK);
	setlocale(LC_NUMERIC, "C");
	unsetenv("LOCPATH");
	CU_ASSERT(t != NULL && strstr(t, "spool_oldest_ready_age_seconds"
	    "{queue=\"a\"} 1.500\n") != NULL);
	free(t);
}

/* What a handler of test_worker_row saw of its own workers row. */
struct row_seen {
	const char	*path;
	size_t		 nqueues;	/* of the row naming this process */
	int		 same;		/* 1 if every name read back as given */
	char *const	*want;
};

static int
h_row(spool_job *job, void *arg)
{
	struct row_seen		*r = arg;
	spool_worker_info	*w = NULL;
	spool			*q = NULL;
	size_t			 n = 0, i, k;

	(void)job;
	if (spool_open(&q, r->path, 0) != SPOOL_OK ||
	    spool_workers(&w, &n, q, NULL) != SPOOL_OK || n != 1) {
		spool_worker_info_free(w, n);
		spool_close(q);
		return (SPOOL_FAIL);
	}
	r->nqueues = w[0].nqueues;
	r->same = w[0].nqueues == 64;
	for (i = 0; r->same && i < 64; i++)
		for (k = 0; k < 64 && strcmp(w[0].queues[i], r->want[k]) != 0; k++)
			if (k == 63)
				r->same = 0;
	spool_worker_info_free(w, n);
	spool_close(q);
	return (SPOOL_DONE);
}

/* A pool of 64 queues with the longest names, quotes and backslashes in
 * them, writes a workers row that reads back whole (a fixed buffer of the
 * engine's once cut it, and the row read as no queues). */
static void
test_worker_row(void)
{
	static char		 names[64][SPOOL_NAME_MAX + 1];
	char			*qs[64];
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	struct row_seen		 r;
	spool_pool		*p = NULL;
	spool			*q = NULL;
	int64_t			 id;
	int			 i;

	for (i = 0; i < 64; i++) {
		memset(names[i], i % 2 ? '"' : '\\', SPOOL_NAME_MAX);
		snprintf(names[i], sizeof names[i], "%02d", i);
		names[i][2] = 'x';
		names[i][SPOOL_NAME_MAX] = '\0';
		qs[i] = names[i];
	}
	TU_RC(spool_open(&q, tu_db, 0), SPOOL_OK);	/* the real clock */
	TU_RC(spool_enqueue(&id, q, qs[0], "x", 1, NULL), SPOOL_OK);
	spool_close(q);
	memset(&r, 0, sizeof r);
	r.path = tu_db;
	r.want = qs;
	o.queues = (const char *const *)qs;
	o.nqueues = 64;
	o.max_workers = 1;
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	TU_RC(spool_pool_new(&p, tu_db, h_row, &r, &o), SPOOL_OK);
	if (p != NULL)
		TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(r.nqueues, 64);
	CU_ASSERT_EQUAL(r.same, 1);
}

static CU_TestInfo tests[] = {
	{ "a workers row of 64 long names", test_worker_row },
	{ "prometheus", test_prometheus },
	{ "prometheus under a comma-decimal locale", test_prometheus_locale },
	{ "workers in pages", test_workers_pages },
	{ "worker queues: a JSON array read as names", test_workers_queues },
	{ "paths", test_paths },
	{ "rollback", test_rollback },
	{ "counted later", test_counted_later },
	{ "pipeline", test_pipeline },
	{ "window", test_window },
	{ "random", test_random },
	{ "histogram", test_histogram },
	{ "rates", test_rates },
	{ "pool metrics", test_pool_metrics },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("metrics", tests));
}
