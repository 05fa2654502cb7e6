/*
 * t-metrics.c -- the per-queue counters of schema 5 (counters.c) and
 * what spool_metrics and spool_workers read (metrics.c): every path that
 * changes a task moves exactly its counters, rolled-back work moves
 * none, and the last minute's counts and percentiles come from the
 * finished tasks.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	spool_stage	 s[2];
	spool_item	 it[2] = { { "a", 1 }, { "b", 1 } };
	spool_job	*job;
	int64_t		 run;

	memset(s, 0, sizeof s);
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
	TU_RC(spool_workers(&w, &n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(w[0].id, "h:2:b");
	CU_ASSERT_EQUAL(w[0].stale, 1);
	CU_ASSERT_EQUAL(w[1].stale, 1);		/* the clock moved a minute */
	CU_ASSERT_EQUAL(w[1].busy, 3);
	CU_ASSERT_STRING_EQUAL(w[1].queues, "[\"w\",\"v\"]");
	spool_worker_info_free(w, n);
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

static CU_TestInfo tests[] = {
	{ "paths", test_paths },
	{ "rollback", test_rollback },
	{ "pipeline", test_pipeline },
	{ "window", test_window },
	{ "random", test_random },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("metrics", tests));
}
