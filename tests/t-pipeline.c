/*
 * t-pipeline.c -- pipelines (pipeline.c, pipeline-read.c, pipeline-pool.c, schema 4):
 * definitions and versions, the hand-off from stage to stage in the
 * transaction of the success, each error strategy, cancellation, runs'
 * counters and hooks, status and history, and pipeline pools with C
 * handlers, their per-stage concurrency and stage timeouts.
 *
 * Direct-API tests claim with tu_q on the fake clock; pool tests use a
 * handle on the wall clock, like the pool's own.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static void
check_invariants(void)
{
	CU_ASSERT_EQUAL(tu_sql_int(TU_RUNS_WRONG), 0);
	CU_ASSERT_EQUAL(tu_sql_int(TU_ITEMS_WRONG), 0);
}

static spool_stage
stage(const char *name, int concurrency, int on_error)
{
	spool_stage	 s = SPOOL_STAGE_INIT;

	s.name = name;
	s.concurrency = concurrency;
	s.on_error = on_error;
	return (s);
}

/* Define p with stages a, b, c (retry, no retries). */
static void
define_abc(const char *name, int on_error)
{
	spool_stage	 s[3];
	int		 v = 0;

	s[0] = stage("a", 2, on_error);
	s[1] = stage("b", 2, on_error);
	s[2] = stage("c", 2, on_error);
	TU_RC(spool_pipeline_create(&v, tu_q, name, s, 3, 0), SPOOL_OK);
	CU_ASSERT(v >= 1);
}

/* Start a run of name with n items "i1".."in". */
static int64_t
start(const char *name, int n, int64_t *items, const spool_run_opts *o)
{
	spool_item	 it[64];
	char		 buf[64][16];
	int64_t		 run = 0;
	int		 i;

	for (i = 0; i < n; i++) {
		snprintf(buf[i], sizeof buf[i], "i%d", i + 1);
		it[i].input = buf[i];
		it[i].len = strlen(buf[i]);
	}
	TU_RC(spool_pipeline_start(&run, items, tu_q, name, it, (size_t)n, o),
	    SPOOL_OK);
	CU_ASSERT(run > 0);
	return (run);
}

/* Claim one job from queue on tu_q (NULL if none). */
static spool_job *
claim(const char *queue)
{
	spool_job	*job = NULL;
	int		 rc;

	rc = spool_claim(&job, tu_q, queue, NULL);
	if (rc == SPOOL_EEMPTY)
		return (NULL);
	TU_RC(rc, SPOOL_OK);
	return (job);
}

/* Claim from queue and complete with out; returns the task id. */
static int64_t
pass(const char *queue, const char *out)
{
	spool_job	*job = claim(queue);
	int64_t		 id;

	CU_ASSERT_PTR_NOT_NULL_FATAL(job);
	id = spool_job_id(job);
	TU_RC(spool_job_complete(job, out, strlen(out)), SPOOL_OK);
	spool_job_free(job);
	return (id);
}

static spool_run_info *
run_get(int64_t id)
{
	spool_run_info	*r = NULL;

	TU_RC(spool_run_get(&r, tu_q, id), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	return (r);
}

static int64_t
count(const char *fmt, int64_t a)
{
	char	 sql[512];

	snprintf(sql, sizeof sql, fmt, (long long)a);
	return (tu_sql_int(sql));
}

/* ---- Definitions ------------------------------------------------------- */

static void
test_define(void)
{
	spool_pipeline_info	*p = NULL;
	spool_stage		 s[2];
	size_t			 n = 0;
	int			 v = 0;

	s[0] = stage("fetch", 4, SPOOL_ON_ERROR_RETRY);
	s[0].retries = 3;
	s[0].retry_delay_ms = 2000;
	s[0].timeout_ms = 30000;
	s[0].command = "./fetch --url 'a b'";
	s[1] = stage("store", 1, SPOOL_ON_ERROR_FAIL_FAST);
	TU_RC(spool_pipeline_create(&v, tu_q, "web", s, 2, 0), SPOOL_OK);
	CU_ASSERT_EQUAL(v, 1);
	TU_RC(spool_pipeline_get(&p, tu_q, "web", 0), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(p->nstages, 2);
	CU_ASSERT_EQUAL(p->version, 1);
	CU_ASSERT_EQUAL(p->current, 1);
	CU_ASSERT_STRING_EQUAL(p->stages[0].name, "fetch");
	CU_ASSERT_EQUAL(p->stages[0].concurrency, 4);
	CU_ASSERT_EQUAL(p->stages[0].retries, 3);
	CU_ASSERT_EQUAL(p->stages[0].retry_delay_ms, 2000);
	CU_ASSERT_EQUAL(p->stages[0].timeout_ms, 30000);
	CU_ASSERT_STRING_EQUAL(p->stages[0].command, "./fetch --url 'a b'");
	CU_ASSERT_EQUAL(p->stages[1].on_error, SPOOL_ON_ERROR_FAIL_FAST);
	CU_ASSERT_PTR_NULL(p->stages[1].command);
	spool_pipeline_info_free(p, 1);
	/* The stage queues exist. */
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM queues WHERE name IN "
	    "('web/fetch', 'web/store')"), 2);

	/* Defined again with no runs: version 2, and 1 is kept. */
	s[1].concurrency = 3;
	TU_RC(spool_pipeline_create(&v, tu_q, "web", s, 2, 0), SPOOL_OK);
	CU_ASSERT_EQUAL(v, 2);
	TU_RC(spool_pipeline_get(&p, tu_q, "web", 1), SPOOL_OK);
	CU_ASSERT_EQUAL(p->current, 0);
	CU_ASSERT_EQUAL(p->stages[1].concurrency, 1);
	spool_pipeline_info_free(p, 1);
	TU_RC(spool_pipeline_list(&p, &n, tu_q, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(p[0].version, 2);
	CU_ASSERT_EQUAL(p[0].stages[1].concurrency, 3);
	spool_pipeline_info_free(p, n);
	TU_RC(spool_pipeline_get(&p, tu_q, "nope", 0), SPOOL_ENOENT);
	TU_RC(spool_pipeline_get(&p, tu_q, "web", 9), SPOOL_ENOENT);
}

static void
test_define_bad(void)
{
	spool_stage	 s[3];
	int64_t		 before = tu_sql_int("SELECT count(*) FROM pipelines");

	s[0] = stage("a", 1, SPOOL_ON_ERROR_RETRY);
	s[1] = stage("b", 1, SPOOL_ON_ERROR_RETRY);
	TU_RC(spool_pipeline_create(NULL, tu_q, "", s, 1, 0), SPOOL_EINVAL);
	TU_RC(spool_pipeline_create(NULL, tu_q, "a/b", s, 1, 0), SPOOL_EINVAL);
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 0, 0), SPOOL_EINVAL);
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 1, 8), SPOOL_EINVAL);
	s[1].name = "a";
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 2, 0), SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q), "twice"));
	s[1] = stage("b", 0, SPOOL_ON_ERROR_RETRY);
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 2, 0), SPOOL_EINVAL);
	s[1] = stage("b", 1, SPOOL_ON_ERROR_SKIP);
	s[1].retries = 2;
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 2, 0), SPOOL_EINVAL);
	s[1] = stage("b", 1, 7);
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 2, 0), SPOOL_EINVAL);
	s[1] = stage("b c", 1, SPOOL_ON_ERROR_RETRY);
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 2, 0), SPOOL_EINVAL);
	s[1] = stage("b", 1, SPOOL_ON_ERROR_RETRY);
	s[1].command = "echo 'unterminated";
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 2, 0), SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q), "stage b: "));
	s[1].command = "   ";
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 2, 0), SPOOL_EINVAL);
	s[1].command = NULL;
	s[1].timeout_ms = -1;
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 2, 0), SPOOL_EINVAL);
	/* A stage's version, as an options struct's (since 0.8). */
	s[1] = stage("b", 1, SPOOL_ON_ERROR_RETRY);
	s[1].version = 99;
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 2, 0), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "stage 2: spool_stage");
	s[1].version = 0;
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 2, 0), SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q),
	    "stage 2: spool_stage: version not set (use SPOOL_STAGE_INIT)"));
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM pipelines"), before);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM queues"), 0);
}

/* SPOOL_STAGE_INIT is a stage that works once named; a stage read back
 * carries SPOOL_STAGE_VERSION; each error strategy has its name (since
 * 0.8), and a value that is none has none. */
static void
test_stage_init_names(void)
{
	spool_stage		 s = SPOOL_STAGE_INIT;
	spool_pipeline_info	*p = NULL;

	CU_ASSERT_EQUAL(s.version, SPOOL_STAGE_VERSION);
	CU_ASSERT_EQUAL(s.concurrency, 1);
	CU_ASSERT_EQUAL(s.on_error, SPOOL_ON_ERROR_RETRY);
	s.name = "only";
	TU_RC(spool_pipeline_create(NULL, tu_q, "init", &s, 1, 0), SPOOL_OK);
	TU_RC(spool_pipeline_get(&p, tu_q, "init", 0), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL_FATAL(p->nstages, 1);
	CU_ASSERT_EQUAL(p->stages[0].version, SPOOL_STAGE_VERSION);
	CU_ASSERT_EQUAL(p->stages[0].concurrency, 1);
	CU_ASSERT_STRING_EQUAL(p->stages[0].name, "only");
	spool_pipeline_info_free(p, 1);
	CU_ASSERT_STRING_EQUAL(spool_on_error_name(SPOOL_ON_ERROR_RETRY),
	    "retry");
	CU_ASSERT_STRING_EQUAL(spool_on_error_name(SPOOL_ON_ERROR_SKIP),
	    "skip");
	CU_ASSERT_STRING_EQUAL(spool_on_error_name(SPOOL_ON_ERROR_FAIL_FAST),
	    "fail_fast");
	CU_ASSERT_PTR_NULL(spool_on_error_name(-1));
	CU_ASSERT_PTR_NULL(spool_on_error_name(SPOOL_ON_ERROR_FAIL_FAST + 1));
	/* The names are what pipeline_stages.on_error holds. */
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM pipeline_stages "
	    "WHERE on_error = 'retry'"), 1);
}

static void
test_split_words(void)
{
	char	**argv = NULL;
	size_t	  argc = 0;

	TU_RC(spool__split_words(tu_q, " a 'b c'  \"d \\\"e\\\" $x\" f\\ g ''",
	    &argv, &argc), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(argc, 5);
	CU_ASSERT_STRING_EQUAL(argv[0], "a");
	CU_ASSERT_STRING_EQUAL(argv[1], "b c");
	CU_ASSERT_STRING_EQUAL(argv[2], "d \"e\" $x");
	CU_ASSERT_STRING_EQUAL(argv[3], "f g");
	CU_ASSERT_STRING_EQUAL(argv[4], "");
	CU_ASSERT_PTR_NULL(argv[5]);
	spool__words_free(argv);
	TU_RC(spool__split_words(tu_q, "a\\", &argv, &argc), SPOOL_EINVAL);
	TU_RC(spool__split_words(tu_q, "\"a", &argv, &argc), SPOOL_EINVAL);
	TU_RC(spool__split_words(tu_q, "", &argv, &argc), SPOOL_OK);
	CU_ASSERT_EQUAL(argc, 0);
	CU_ASSERT_PTR_NULL(argv[0]);
	spool__words_free(argv);
}

/* ---- Runs and the hand-off --------------------------------------------- */

static void
test_handoff(void)
{
	spool_run_opts	 o = SPOOL_RUN_OPTS_INIT;
	spool_run_info	*r;
	spool_item_info	*it = NULL;
	spool_job	*job;
	int64_t		 items[3], t1, run;
	size_t		 n = 0;
	char		 buf[512];

	define_abc("p", SPOOL_ON_ERROR_RETRY);
	o.hook_queue = "done";
	o.hook_payload = "{\"k\":1}";
	run = start("p", 3, items, &o);
	CU_ASSERT_EQUAL(count("SELECT count(*) FROM tasks WHERE queue = 'p/a' "
	    "AND state = 'ready' AND item_id IS NOT NULL AND %lld > 0", 1), 3);
	check_invariants();

	/* Stage a of item 1 succeeds: its b task exists with a's output as
	 * its payload, committed with the success. */
	job = claim("p/a");
	CU_ASSERT_PTR_NOT_NULL_FATAL(job);
	CU_ASSERT_EQUAL(spool_job_item(job), items[0]);
	t1 = spool_job_id(job);
	CU_ASSERT_EQUAL(count("SELECT count(*) FROM tasks WHERE item_id = %lld",
	    items[0]), 1);
	TU_RC(spool_job_complete(job, "A1", 2), SPOOL_OK);
	spool_job_free(job);
	CU_ASSERT_EQUAL(count("SELECT count(*) FROM tasks WHERE item_id = %lld",
	    items[0]), 2);
	tu_sql_text(buf, sizeof buf, "SELECT payload FROM tasks WHERE queue = "
	    "'p/b'");
	CU_ASSERT_STRING_EQUAL(buf, "A1");
	CU_ASSERT_EQUAL(count("SELECT stage FROM pipeline_items WHERE id = %lld",
	    items[0]), 2);
	CU_ASSERT(count("SELECT task_id FROM pipeline_items WHERE id = %lld",
	    items[0]) > t1);
	check_invariants();

	/* Everything through. */
	pass("p/a", "A2");
	pass("p/a", "A3");
	pass("p/b", "B1");
	pass("p/b", "B2");
	pass("p/c", "C1");
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_RUNNING);
	CU_ASSERT_EQUAL(r->total, 3);
	CU_ASSERT_EQUAL(r->succeeded, 1);
	CU_ASSERT_EQUAL(r->running, 2);
	CU_ASSERT_EQUAL_FATAL(r->nstages, 3);
	CU_ASSERT_EQUAL(r->stages[0].done, 3);
	CU_ASSERT_EQUAL(r->stages[1].done, 2);
	CU_ASSERT_EQUAL(r->stages[1].waiting, 1);
	CU_ASSERT_EQUAL(r->stages[2].done, 1);
	CU_ASSERT_EQUAL(r->stages[2].waiting, 1);
	spool_run_info_free(r, 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE queue = "
	    "'done'"), 0);
	pass("p/b", "B3");
	pass("p/c", "C2");
	pass("p/c", "C3");
	check_invariants();
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_FINISHED);
	CU_ASSERT_EQUAL(r->succeeded, 3);
	CU_ASSERT(r->finished_ms > 0);
	CU_ASSERT(r->hook_task_id > 0);
	spool_run_info_free(r, 1);
	/* The hook, once. */
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE queue = "
	    "'done'"), 1);
	tu_sql_text(buf, sizeof buf, "SELECT payload FROM tasks WHERE queue = "
	    "'done'");
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"pipeline\":\"p\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"succeeded\":3"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"payload\":{\"k\":1}"));
	/* The items' results are their last stage's outputs. */
	TU_RC(spool_item_list(&it, &n, tu_q, run, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_EQUAL(it[0].state, SPOOL_ITEM_SUCCEEDED);
	CU_ASSERT_EQUAL(it[0].stage, 3);
	CU_ASSERT_STRING_EQUAL(it[0].stage_name, "c");
	CU_ASSERT_EQUAL(it[0].result_len, 2);
	CU_ASSERT(memcmp(it[0].result, "C1", 2) == 0);
	CU_ASSERT(memcmp(it[2].result, "C3", 2) == 0);
	spool_item_info_free(it, n);
}

/* A lost lease is not a stage failure: the stage runs again and hands
 * off once; the history shows the lost attempt. */
static void
test_lease_lost(void)
{
	spool_stage_attempt_info	*h = NULL;
	spool_job		*job;
	int64_t			 items[1], n64;
	size_t			 n = 0;
	spool_stage		 s[2];

	s[0] = stage("a", 1, SPOOL_ON_ERROR_FAIL_FAST);
	s[1] = stage("b", 1, SPOOL_ON_ERROR_FAIL_FAST);
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 2, 0), SPOOL_OK);
	start("p", 1, items, NULL);
	job = claim("p/a");
	CU_ASSERT_PTR_NOT_NULL_FATAL(job);
	/* Under way: the history says so. */
	TU_RC(spool_item_history(&h, &n, tu_q, items[0], NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(h[0].outcome, SPOOL_ATTEMPT_RUNNING);
	CU_ASSERT_EQUAL(h[0].finished_ms, 0);
	spool_stage_attempt_info_free(h, n);
	h = NULL;
	tu_advance(31000);	/* past the queue's 30 s lease */
	TU_RC(spool_reap(&n64, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n64, 1);
	/* The late worker's success is refused. */
	TU_RC(spool_job_complete(job, "late", 4), SPOOL_ELEASE);
	spool_job_free(job);
	CU_ASSERT_EQUAL(count("SELECT count(*) FROM tasks WHERE item_id = %lld",
	    items[0]), 1);
	tu_advance(60000);	/* past the backoff */
	pass("p/a", "A");
	pass("p/b", "B");
	check_invariants();
	TU_RC(spool_item_history(&h, &n, tu_q, items[0], NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_STRING_EQUAL(h[0].stage, "a");
	CU_ASSERT_EQUAL(h[0].outcome, SPOOL_ATTEMPT_LEASE_LOST);
	CU_ASSERT_EQUAL(h[0].attempt, 1);
	CU_ASSERT_STRING_EQUAL(h[1].stage, "a");
	CU_ASSERT_EQUAL(h[1].outcome, SPOOL_ATTEMPT_SUCCEEDED);
	CU_ASSERT_EQUAL(h[1].attempt, 2);
	CU_ASSERT_STRING_EQUAL(h[2].stage, "b");
	CU_ASSERT_EQUAL(h[2].index, 2);
	spool_stage_attempt_info_free(h, n);
	TU_RC(spool_item_history(&h, &n, tu_q, 999, NULL), SPOOL_ENOENT);
	/* In pages of two, both ways, by (stage index, attempt). */
	{
		spool_item_history_opts	 ho = SPOOL_ITEM_HISTORY_OPTS_INIT;
		int64_t			 want[3] = { 101, 102, 201 }, got[9];
		size_t			 ngot, i, pages;
		int			 desc;

		for (desc = 0; desc <= 1; desc++) {
			ho.after_index = ho.after_attempt = 0;
			ho.limit = 2;
			ho.descending = desc;
			ngot = pages = 0;
			do {
				TU_RC(spool_item_history(&h, &n, tu_q, items[0],
				    &ho), SPOOL_OK);
				for (i = 0; i < n && ngot < 9; i++)
					got[ngot++] = h[i].index * 100 +
					    h[i].attempt;
				if (n > 0) {
					ho.after_index = h[n - 1].index;
					ho.after_attempt = h[n - 1].attempt;
				}
				spool_stage_attempt_info_free(h, n);
			} while (n == ho.limit && ++pages < 9);
			CU_ASSERT_EQUAL(ngot, 3);
			for (i = 0; i < ngot && i < 3; i++)
				CU_ASSERT_EQUAL(got[i], want[desc ? 2 - i : i]);
		}
		ho.limit = 10001;
		TU_RC(spool_item_history(&h, &n, tu_q, items[0], &ho),
		    SPOOL_EINVAL);
		ho.limit = 0;
		ho.version = 0;
		TU_RC(spool_item_history(&h, &n, tu_q, items[0], &ho),
		    SPOOL_EINVAL);
		ho.version = 99;
		TU_RC(spool_item_history(&h, &n, tu_q, items[0], &ho),
		    SPOOL_EINVAL);
		TU_VERSION_REFUSED(spool_errmsg(tu_q),
		    "spool_item_history_opts");
	}
}

/* Pipelines (by name), runs and items (by id) in pages, both ways:
 * each once, in order; opts NULL; the options checked as every list's. */
static void
test_list_pages(void)
{
	spool_pipeline_list_opts po = SPOOL_PIPELINE_LIST_OPTS_INIT;
	spool_run_list_opts	 ro = SPOOL_RUN_LIST_OPTS_INIT;
	spool_item_list_opts	 io = SPOOL_ITEM_LIST_OPTS_INIT;
	spool_pipeline_info	*p = NULL;
	spool_run_info		*r = NULL;
	spool_item_info		*it = NULL;
	char			 names[12][8], got_names[30][8];
	int64_t			 runs[12], items[12], got[30], prun;
	size_t			 n = 0, ngot, i, pages;
	int			 desc;

	for (i = 0; i < 12; i++)
		snprintf(names[i], sizeof names[i], "p%02zu", i);
	for (i = 0; i < 12; i++)	/* out of order: 5 and 12 are coprime */
		define_abc(names[(i * 5) % 12], SPOOL_ON_ERROR_RETRY);
	for (i = 0; i < 12; i++)
		runs[i] = start(i % 2 ? "p01" : "p00", 1, NULL, NULL);
	prun = start("p02", 12, items, NULL);

	for (desc = 0; desc <= 1; desc++) {
		po.after = NULL;
		po.limit = 5;
		po.descending = desc;
		ngot = pages = 0;
		do {
			TU_RC(spool_pipeline_list(&p, &n, tu_q, &po), SPOOL_OK);
			for (i = 0; i < n && ngot < 30; i++)
				snprintf(got_names[ngot++], sizeof got_names[0],
				    "%s", p[i].name);
			po.after = n > 0 ? got_names[ngot - 1] : NULL;
			spool_pipeline_info_free(p, n);
		} while (n == po.limit && ++pages < 20);
		CU_ASSERT_EQUAL(ngot, 12);
		for (i = 0; i < ngot && i < 12; i++)
			CU_ASSERT_STRING_EQUAL(got_names[i],
			    names[desc ? 11 - i : i]);

		ro.after_id = 0;
		ro.limit = 5;
		ro.descending = desc;
		ngot = pages = 0;
		do {
			TU_RC(spool_run_list(&r, &n, tu_q, &ro), SPOOL_OK);
			for (i = 0; i < n && ngot < 30; i++)
				got[ngot++] = r[i].id;
			if (n > 0)
				ro.after_id = r[n - 1].id;
			spool_run_info_free(r, n);
		} while (n == ro.limit && ++pages < 20);
		CU_ASSERT_EQUAL(ngot, 13);	/* and p02's run */
		for (i = 0; i < ngot && i < 12; i++)
			CU_ASSERT_EQUAL(got[desc ? i + 1 : i],
			    runs[desc ? 11 - i : i]);

		io.after_id = 0;
		io.limit = 5;
		io.descending = desc;
		ngot = pages = 0;
		do {
			TU_RC(spool_item_list(&it, &n, tu_q, prun, &io),
			    SPOOL_OK);
			for (i = 0; i < n && ngot < 30; i++)
				got[ngot++] = it[i].id;
			if (n > 0)
				io.after_id = it[n - 1].id;
			spool_item_info_free(it, n);
		} while (n == io.limit && ++pages < 20);
		CU_ASSERT_EQUAL(ngot, 12);
		for (i = 0; i < ngot && i < 12; i++)
			CU_ASSERT_EQUAL(got[i], items[desc ? 11 - i : i]);
	}
	/* One pipeline's runs. */
	ro.after_id = 0;
	ro.descending = 0;
	ro.limit = 0;
	ro.pipeline = "p01";
	TU_RC(spool_run_list(&r, &n, tu_q, &ro), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 6);
	for (i = 0; i < n; i++)
		CU_ASSERT_STRING_EQUAL(r[i].pipeline, "p01");
	spool_run_info_free(r, n);
	/* Defaults. */
	TU_RC(spool_pipeline_list(&p, &n, tu_q, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 12);
	spool_pipeline_info_free(p, n);
	TU_RC(spool_run_list(&r, &n, tu_q, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 13);
	spool_run_info_free(r, n);
	TU_RC(spool_item_list(&it, &n, tu_q, prun, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 12);
	spool_item_info_free(it, n);
	/* Limits and versions. */
	po.after = NULL;
	po.limit = ro.limit = io.limit = 10001;
	TU_RC(spool_pipeline_list(&p, &n, tu_q, &po), SPOOL_EINVAL);
	TU_RC(spool_run_list(&r, &n, tu_q, &ro), SPOOL_EINVAL);
	TU_RC(spool_item_list(&it, &n, tu_q, runs[0], &io), SPOOL_EINVAL);
	po.limit = ro.limit = io.limit = 0;
	po.version = ro.version = io.version = 0;
	TU_RC(spool_pipeline_list(&p, &n, tu_q, &po), SPOOL_EINVAL);
	TU_RC(spool_run_list(&r, &n, tu_q, &ro), SPOOL_EINVAL);
	TU_RC(spool_item_list(&it, &n, tu_q, runs[0], &io), SPOOL_EINVAL);
	po.version = ro.version = io.version = 99;
	TU_RC(spool_pipeline_list(&p, &n, tu_q, &po), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_pipeline_list_opts");
	TU_RC(spool_run_list(&r, &n, tu_q, &ro), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_run_list_opts");
	TU_RC(spool_item_list(&it, &n, tu_q, runs[0], &io), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_item_list_opts");
}

/* retry: each failure waits the delay; after retries the item fails. */
static void
test_retry_strategy(void)
{
	spool_stage	 s[1];
	spool_job	*job;
	spool_run_info	*r;
	int64_t		 items[1], run, n64;
	int		 i;

	s[0] = stage("a", 1, SPOOL_ON_ERROR_RETRY);
	s[0].retries = 2;
	s[0].retry_delay_ms = 5000;
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 1, 0), SPOOL_OK);
	run = start("p", 1, items, NULL);
	for (i = 0; i < 3; i++) {
		job = claim("p/a");
		CU_ASSERT_PTR_NOT_NULL_FATAL(job);
		if (i == 1) {
			/* A lost lease in between does not count. */
			tu_advance(31000);
			TU_RC(spool_reap(&n64, tu_q), SPOOL_OK);
			spool_job_free(job);
			tu_advance(60000);
			job = claim("p/a");
			CU_ASSERT_PTR_NOT_NULL_FATAL(job);
		}
		TU_RC(spool_job_fail(job, "boom", 0), SPOOL_OK);
		spool_job_free(job);
		if (i < 2) {
			/* Ready again after exactly the delay. */
			CU_ASSERT_EQUAL(count("SELECT run_at_ms - %lld FROM tasks "
			    "WHERE queue = 'p/a'", tu_now), 5000);
			CU_ASSERT_PTR_NULL(claim("p/a"));
			tu_advance(5000);
		}
	}
	CU_ASSERT_EQUAL(count("SELECT count(*) FROM tasks WHERE item_id = %lld "
	    "AND state = 'dead' AND dead_reason = 'exhausted'", items[0]), 1);
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_FINISHED);
	CU_ASSERT_EQUAL(r->failed, 1);
	CU_ASSERT_EQUAL(r->stages[0].failed, 1);
	CU_ASSERT_EQUAL(r->stages[0].attempts, 4);
	spool_run_info_free(r, 1);
	check_invariants();

	/* SPOOL_FAIL_PERMANENT fails at once. */
	run = start("p", 1, items, NULL);
	job = claim("p/a");
	TU_RC(spool_job_fail(job, "bad input", SPOOL_FAIL_PERMANENT), SPOOL_OK);
	spool_job_free(job);
	r = run_get(run);
	CU_ASSERT_EQUAL(r->failed, 1);
	spool_run_info_free(r, 1);
}

/* skip: the item is skipped and the others go on. */
static void
test_skip_strategy(void)
{
	spool_job	*job;
	spool_run_info	*r;
	spool_item_info	*it = NULL;
	int64_t		 items[3], run;
	size_t		 n = 0;

	define_abc("p", SPOOL_ON_ERROR_SKIP);
	run = start("p", 3, items, NULL);
	job = claim("p/a");
	TU_RC(spool_job_fail(job, "not an image", 0), SPOOL_OK);
	spool_job_free(job);
	CU_ASSERT_EQUAL(count("SELECT count(*) FROM tasks WHERE item_id = %lld",
	    items[0]), 1);
	pass("p/a", "x");
	pass("p/a", "y");
	pass("p/b", "x");
	pass("p/b", "y");
	pass("p/c", "x");
	pass("p/c", "y");
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_FINISHED);
	CU_ASSERT_EQUAL(r->skipped, 1);
	CU_ASSERT_EQUAL(r->succeeded, 2);
	CU_ASSERT_EQUAL(r->stages[0].skipped, 1);
	CU_ASSERT_EQUAL(r->stages[0].failed, 0);
	spool_run_info_free(r, 1);
	TU_RC(spool_item_list(&it, &n, tu_q, run, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_EQUAL(it[0].state, SPOOL_ITEM_SKIPPED);
	CU_ASSERT_STRING_EQUAL(it[0].error, "not an image");
	CU_ASSERT_PTR_NULL(it[0].result);
	spool_item_info_free(it, n);
	check_invariants();

	/* An operator retry of the skipped item's task reopens the run
	 * (its hook would not be enqueued twice). */
	TU_RC(spool_retry(tu_q, count("SELECT task_id FROM pipeline_items "
	    "WHERE id = %lld", items[0])), SPOOL_OK);
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_RUNNING);
	CU_ASSERT_EQUAL(r->running, 1);
	CU_ASSERT_EQUAL(r->skipped, 0);
	spool_run_info_free(r, 1);
	check_invariants();
	pass("p/a", "z");
	pass("p/b", "z");
	pass("p/c", "z");
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_FINISHED);
	CU_ASSERT_EQUAL(r->succeeded, 3);
	spool_run_info_free(r, 1);
	check_invariants();
}

/* fail_fast: the run stops, waiting items are cancelled, running ones
 * are asked to stop and, when they end, are cancelled too. */
static void
test_fail_fast(void)
{
	spool_run_opts	 o = SPOOL_RUN_OPTS_INIT;
	spool_job	*j1, *j2, *j3;
	spool_run_info	*r;
	int64_t		 items[5], run, other;

	define_abc("p", SPOOL_ON_ERROR_FAIL_FAST);
	other = start("p", 1, NULL, NULL);
	o.hook_queue = "after";
	o.hook_on = SPOOL_HOOK_SUCCESS;
	run = start("p", 5, items, &o);
	pass("p/a", "A");		/* item 1 (of the other run) on to b */
	j1 = claim("p/a");		/* run's item 1 */
	j2 = claim("p/a");		/* run's item 2 */
	j3 = claim("p/a");		/* run's item 3 */
	CU_ASSERT_PTR_NOT_NULL_FATAL(j3);
	TU_RC(spool_job_complete(j3, "ok", 2), SPOOL_OK);	/* on to b */
	spool_job_free(j3);
	TU_RC(spool_job_fail(j1, "disk full", 0), SPOOL_OK);
	spool_job_free(j1);
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_STOPPING);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->error);
	CU_ASSERT_PTR_NOT_NULL(strstr(r->error, "disk full"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r->error, "stage a"));
	CU_ASSERT_EQUAL(r->failed, 1);
	CU_ASSERT_EQUAL(r->cancelled, 3);	/* 4, 5 waiting in a; 3 in b */
	CU_ASSERT_EQUAL(r->running, 1);
	spool_run_info_free(r, 1);
	/* The running one was told. */
	CU_ASSERT_EQUAL(count("SELECT cancel_requested FROM tasks WHERE id = "
	    "%lld", spool_job_id(j2)), 1);
	TU_RC(spool_job_complete(j2, "done anyway", 11), SPOOL_OK);
	spool_job_free(j2);
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_FINISHED);
	CU_ASSERT_EQUAL(r->cancelled, 4);
	CU_ASSERT_EQUAL(r->hook_task_id, 0);	/* success only */
	spool_run_info_free(r, 1);
	CU_ASSERT_EQUAL(count("SELECT count(*) FROM tasks WHERE queue = 'p/b' "
	    "AND state = 'ready' AND %lld", 1), 1);	/* the other run's */
	r = run_get(other);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_RUNNING);
	spool_run_info_free(r, 1);
	check_invariants();

	/* Cancelling a run by hand does the same. */
	run = start("p", 2, items, NULL);
	TU_RC(spool_run_cancel(tu_q, run), SPOOL_OK);
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_FINISHED);
	CU_ASSERT_EQUAL(r->cancelled, 2);
	CU_ASSERT_STRING_EQUAL(r->error, "cancelled");
	spool_run_info_free(r, 1);
	TU_RC(spool_run_cancel(tu_q, run), SPOOL_OK);
	TU_RC(spool_run_cancel(tu_q, 9999), SPOOL_ENOENT);
	check_invariants();
}

/* A run keeps its version; redefining with runs unfinished needs force. */
static void
test_versions(void)
{
	spool_stage	 s[3];
	spool_run_info	*r;
	spool_job	*job;
	int64_t		 items[1], run1, run2;
	int		 v = 0;

	s[0] = stage("a", 1, SPOOL_ON_ERROR_RETRY);
	s[1] = stage("b", 1, SPOOL_ON_ERROR_SKIP);
	TU_RC(spool_pipeline_create(&v, tu_q, "p", s, 2, 0), SPOOL_OK);
	run1 = start("p", 1, items, NULL);
	s[1] = stage("x", 1, SPOOL_ON_ERROR_RETRY);
	s[2] = stage("b", 1, SPOOL_ON_ERROR_RETRY);
	TU_RC(spool_pipeline_create(&v, tu_q, "p", s, 3, 0), SPOOL_ESTATE);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q), "unfinished"));
	TU_RC(spool_pipeline_create(&v, tu_q, "p", s, 3, SPOOL_PIPELINE_FORCE),
	    SPOOL_OK);
	CU_ASSERT_EQUAL(v, 2);
	run2 = start("p", 1, NULL, NULL);
	/* Run 1's item goes a -> b (version 1), never to x. */
	pass("p/a", "one");
	pass("p/a", "two");
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE queue = "
	    "'p/b'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE queue = "
	    "'p/x'"), 1);
	/* v1's b skips on failure; v2's b would retry. */
	job = claim("p/b");
	CU_ASSERT_EQUAL(spool_job_item(job), items[0]);
	TU_RC(spool_job_fail(job, "nope", 0), SPOOL_OK);
	spool_job_free(job);
	r = run_get(run1);
	CU_ASSERT_EQUAL(r->version, 1);
	CU_ASSERT_EQUAL(r->skipped, 1);
	CU_ASSERT_EQUAL(r->nstages, 2);
	spool_run_info_free(r, 1);
	r = run_get(run2);
	CU_ASSERT_EQUAL(r->version, 2);
	CU_ASSERT_EQUAL(r->nstages, 3);
	spool_run_info_free(r, 1);
	check_invariants();
}

static void
test_delete(void)
{
	spool_run_info	*r;
	spool_pipeline_info *p = NULL;
	int64_t		 run;

	define_abc("p", SPOOL_ON_ERROR_RETRY);
	run = start("p", 3, NULL, NULL);
	TU_RC(spool_pipeline_delete(tu_q, "p", 0), SPOOL_ESTATE);
	TU_RC(spool_pipeline_delete(tu_q, "nope", 0), SPOOL_ENOENT);
	TU_RC(spool_pipeline_delete(tu_q, "p", SPOOL_PIPELINE_FORCE), SPOOL_OK);
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_FINISHED);
	CU_ASSERT_EQUAL(r->cancelled, 3);
	spool_run_info_free(r, 1);
	TU_RC(spool_pipeline_get(&p, tu_q, "p", 0), SPOOL_ENOENT);
	TU_RC(spool_pipeline_start(NULL, NULL, tu_q, "p", NULL, 0, NULL),
	    SPOOL_ENOENT);
	TU_RC(spool_pipeline_delete(tu_q, "p", 0), SPOOL_ENOENT);
	/* Defined again: the versions go on. */
	define_abc("p", SPOOL_ON_ERROR_RETRY);
	TU_RC(spool_pipeline_get(&p, tu_q, "p", 0), SPOOL_OK);
	CU_ASSERT_EQUAL(p->version, 2);
	spool_pipeline_info_free(p, 1);
	/* An empty run finishes at once. */
	run = start("p", 0, NULL, NULL);
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_FINISHED);
	spool_run_info_free(r, 1);
	check_invariants();
}

/* Hand edits: a deleted task cancels its item; item and stage are fixed. */
static void
test_hand_edits(void)
{
	int64_t	 items[2], run;
	char	 sql[256];

	define_abc("p", SPOOL_ON_ERROR_RETRY);
	run = start("p", 2, items, NULL);
	CU_ASSERT_EQUAL(tu_sql_int("UPDATE tasks SET item_id = item_id + 1 "
	    "RETURNING 1"), -1);
	TU_RC(spool_purge(NULL, tu_q, "p/a", 0), SPOOL_OK);
	snprintf(sql, sizeof sql, "SELECT cancelled FROM pipeline_runs WHERE "
	    "id = %lld", (long long)run);
	CU_ASSERT_EQUAL(tu_sql_int(sql), 2);
	check_invariants();
}

/* Status agrees with the history rows. */
static void
test_status_vs_history(void)
{
	spool_run_info	*r;
	spool_job	*job;
	int64_t		 run;
	int		 i;

	define_abc("p", SPOOL_ON_ERROR_RETRY);
	run = start("p", 20, NULL, NULL);
	for (i = 0; i < 20; i++) {
		job = claim("p/a");
		tu_advance(10 + i * 7);
		TU_RC(spool_job_complete(job, "r", 1), SPOOL_OK);
		spool_job_free(job);
	}
	for (i = 0; i < 12; i++) {
		job = claim("p/b");
		tu_advance(100 + i);
		if (i % 4 == 0)
			TU_RC(spool_job_fail(job, "x", SPOOL_FAIL_PERMANENT),
			    SPOOL_OK);
		else
			TU_RC(spool_job_complete(job, "r", 1), SPOOL_OK);
		spool_job_free(job);
	}
	r = run_get(run);
	CU_ASSERT_EQUAL(r->stages[0].done, tu_sql_int("SELECT count(*) FROM "
	    "spool_stage_history WHERE stage = 'a' AND outcome = 'succeeded'"));
	CU_ASSERT_EQUAL(r->stages[1].failed, 3);
	CU_ASSERT_EQUAL(r->stages[1].done, 9);
	CU_ASSERT_EQUAL(r->stages[1].waiting, 8);
	CU_ASSERT_EQUAL(r->stages[2].waiting, 9);
	CU_ASSERT_EQUAL(r->stages[1].attempts, 12);
	/* avg of a: 10, 17, ... 143 ms */
	CU_ASSERT_DOUBLE_EQUAL(r->stages[0].avg_ms, 76.5, 0.001);
	CU_ASSERT_EQUAL((int64_t)(r->stages[0].avg_ms * 1000 + 0.5),
	    tu_sql_int("SELECT CAST(round(avg(duration_s) * 1000000) AS INTEGER)"
	    " FROM spool_stage_history WHERE stage = 'a'"));
	/* nearest rank: the 19th of 20 */
	CU_ASSERT_EQUAL(r->stages[0].p95_ms, 10 + 18 * 7);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT waiting FROM spool_pipeline_progress "
	    "WHERE stage = 'b'"), 8);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT failed FROM spool_pipeline_progress "
	    "WHERE stage = 'b'"), 3);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT done FROM spool_pipeline_progress "
	    "WHERE stage = 'a'"), 20);
	spool_run_info_free(r, 1);
}

/* ---- Pipeline pools ---------------------------------------------------- */

struct counts {
	int	 now[3];
	int	 max[3];
	int	 calls[3];
};

static struct counts	 cnt;

static void
sleep_ms(int64_t ms)
{
	struct timespec	 ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		continue;
}

/* Append "+k" to the payload; count concurrency per stage. */
static int
append_handler(spool_job *job, void *arg)
{
	int		 k = (int)(intptr_t)arg, v, m;
	const char	*p;
	size_t		 len;
	char		 out[256];

	v = __atomic_add_fetch(&cnt.now[k], 1, __ATOMIC_SEQ_CST);
	while ((m = __atomic_load_n(&cnt.max[k], __ATOMIC_SEQ_CST)) < v &&
	    !__atomic_compare_exchange_n(&cnt.max[k], &m, v, 0,
	    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
	__atomic_add_fetch(&cnt.calls[k], 1, __ATOMIC_SEQ_CST);
	sleep_ms(1);
	p = spool_job_payload(job, &len);
	snprintf(out, sizeof out, "%.*s+%s", (int)len, p, spool_job_stage(job));
	__atomic_sub_fetch(&cnt.now[k], 1, __ATOMIC_SEQ_CST);
	return (spool_job_set_result(job, out, strlen(out)) == SPOOL_OK ?
	    SPOOL_DONE : SPOOL_RETRY);
}

static spool *
real_open(void)
{
	spool	*q = NULL;

	if (spool_open(&q, tu_db, 0) != SPOOL_OK) {
		spool_close(q);
		CU_FAIL_FATAL("real_open");
	}
	return (q);
}

static void
test_pool(void)
{
	spool_stage_handler	 h[3];
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	spool_stage		 s[3];
	spool_item		 it[300];
	spool_item_info		*items = NULL;
	spool_pool		*p = NULL;
	spool			*rq;
	int64_t			 run = 0, after = 0;
	size_t			 n = 0, i, total = 0;
	char			 buf[300][16], want[64];
	int			 rc;

	memset(&cnt, 0, sizeof cnt);
	s[0] = stage("one", 2, SPOOL_ON_ERROR_RETRY);
	s[1] = stage("two", 5, SPOOL_ON_ERROR_RETRY);
	s[2] = stage("three", 1, SPOOL_ON_ERROR_RETRY);
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 3, 0), SPOOL_OK);
	rq = real_open();
	for (i = 0; i < 300; i++) {
		snprintf(buf[i], sizeof buf[i], "x%zu", i);
		it[i].input = buf[i];
		it[i].len = strlen(buf[i]);
	}
	rc = spool_pipeline_start(&run, NULL, rq, "p", it, 300, NULL);
	CU_ASSERT_EQUAL_FATAL(rc, SPOOL_OK);
	for (i = 0; i < 3; i++) {
		h[i].stage = s[i].name;
		h[i].fn = append_handler;
		h[i].arg = (void *)(intptr_t)i;
	}
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	rc = spool_pipeline_pool_new(&p, tu_db, "p", h, 3, &o);
	if (rc != SPOOL_OK)
		fprintf(stderr, "\npool: %s\n", spool_pool_errmsg(p));
	CU_ASSERT_EQUAL_FATAL(rc, SPOOL_OK);
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(cnt.calls[0], 300);
	CU_ASSERT_EQUAL(cnt.calls[1], 300);
	CU_ASSERT_EQUAL(cnt.calls[2], 300);
	CU_ASSERT(cnt.max[0] <= 2);
	CU_ASSERT(cnt.max[1] <= 5);
	CU_ASSERT(cnt.max[2] == 1);
	CU_ASSERT(cnt.max[1] >= 2);	/* it did run stages in parallel */
	do {
		TU_RC(spool_item_list(&items, &n, rq, run,
		    &(spool_item_list_opts){ .version =
		    SPOOL_ITEM_LIST_OPTS_VERSION, .after_id = after,
		    .limit = 100 }), SPOOL_OK);
		for (i = 0; i < n; i++) {
			snprintf(want, sizeof want, "x%zu+one+two+three",
			    total + i);
			CU_ASSERT_EQUAL(items[i].state, SPOOL_ITEM_SUCCEEDED);
			CU_ASSERT(items[i].result_len == strlen(want) &&
			    memcmp(items[i].result, want, strlen(want)) == 0);
			after = items[i].id;
		}
		total += n;
		spool_item_info_free(items, n);
	} while (n > 0);
	CU_ASSERT_EQUAL(total, 300);
	spool_close(rq);
	check_invariants();
}

/* A handler that ignores its stop until told, then fails. */
static int
stuck_handler(spool_job *job, void *arg)
{
	(void)arg;
	while (spool_job_should_stop(job) == 0)
		sleep_ms(5);
	spool_job_set_error(job, "gave up");
	return (SPOOL_RETRY);
}

static void
test_pool_timeout(void)
{
	spool_stage_handler	 h[1];
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	spool_stage		 s[1];
	spool_item		 it[2] = { { "a", 1 }, { "b", 1 } };
	spool_pool		*p = NULL;
	spool_run_info		*r;
	spool_stage_attempt_info	*sa = NULL;
	spool			*rq;
	int64_t			 run = 0;
	size_t			 n = 0;

	s[0] = stage("slow", 2, SPOOL_ON_ERROR_SKIP);
	s[0].timeout_ms = 150;
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 1, 0), SPOOL_OK);
	rq = real_open();
	CU_ASSERT_EQUAL_FATAL(spool_pipeline_start(&run, NULL, rq, "p", it, 2,
	    NULL), SPOOL_OK);
	h[0].stage = NULL;	/* every stage */
	h[0].fn = stuck_handler;
	h[0].arg = NULL;
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	CU_ASSERT_EQUAL_FATAL(spool_pipeline_pool_new(&p, tu_db, "p", h, 1, &o),
	    SPOOL_OK);
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);
	TU_RC(spool_run_get(&r, rq, run), SPOOL_OK);
	CU_ASSERT_EQUAL(r->skipped, 2);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_FINISHED);
	spool_run_info_free(r, 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts WHERE "
	    "outcome = 'timed_out'"), 2);
	TU_RC(spool_item_history(&sa, &n, rq, tu_sql_int("SELECT min(id) "
	    "FROM pipeline_items"), NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(sa[0].outcome, SPOOL_ATTEMPT_TIMED_OUT);
	spool_stage_attempt_info_free(sa, n);
	spool_close(rq);
}

static void
test_pool_bad(void)
{
	spool_stage_handler	 h[1] = { { "zzz", stuck_handler, NULL } };
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	spool_pool		*p = NULL;
	char			 missing[800];

	define_abc("p", SPOOL_ON_ERROR_RETRY);
	TU_RC(spool_pipeline_pool_new(&p, tu_db, "p", h, 1, NULL),
	    SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_pool_errmsg(p), "no stage zzz"));
	spool_pool_free(p);
	TU_RC(spool_pipeline_pool_new(&p, tu_db, "nope", h, 1, NULL),
	    SPOOL_ENOENT);
	spool_pool_free(p);
	h[0].stage = "a";
	TU_RC(spool_pipeline_pool_new(&p, tu_db, "p", h, 0, NULL), SPOOL_EINVAL);
	spool_pool_free(p);
	/* open_flags go to spool_open: a missing file is refused, or made
	 * with SPOOL_OPEN_CREATE (and then has no pipeline yet). */
	snprintf(missing, sizeof missing, "%s/missing.db", tu_dir);
	TU_RC(spool_pipeline_pool_new(&p, missing, "p", h, 1, NULL),
	    SPOOL_ENOENT);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(access(missing, F_OK), -1);
	o.open_flags = SPOOL_OPEN_CREATE;
	TU_RC(spool_pipeline_pool_new(&p, missing, "p", h, 1, &o),
	    SPOOL_ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_pool_errmsg(p),
	    "no such pipeline"));
	spool_pool_free(p);
	CU_ASSERT_EQUAL(access(missing, F_OK), 0);
}

/* A version 1 options struct (before log_interval_ms) is read no further
 * than its end: here it is a heap block of exactly that size, and the
 * ASan build of the suite (CI) stops at a read past it. */
static void
test_pool_opts_v1(void)
{
	spool_stage_handler	 h[1] = { { NULL, stuck_handler, NULL } };
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT, *v1;
	size_t			 len = offsetof(spool_pool_opts,
				    log_interval_ms);
	spool_pool		*p = NULL;

	define_abc("p", SPOOL_ON_ERROR_RETRY);
	o.version = 1;
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	CU_ASSERT_PTR_NOT_NULL_FATAL(v1 = malloc(len));
	memcpy(v1, &o, len);
	TU_RC(spool_pipeline_pool_new(&p, tu_db, "p", h, 1, v1), SPOOL_OK);
	spool_pool_free(p);
	p = NULL;
	TU_RC(spool_pool_new(&p, tu_db, stuck_handler, NULL, v1),
	    SPOOL_EINVAL);	/* no queues: refused, after the copy */
	spool_pool_free(p);
	free(v1);
}

/* spool retry gives a retry stage's task its retries again. */
static void
test_retry_after_operator_retry(void)
{
	spool_stage	 s[1];
	spool_job	*job;
	int64_t		 items[1], task;
	int		 i;

	s[0] = stage("a", 1, SPOOL_ON_ERROR_RETRY);
	s[0].retries = 1;
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 1, 0), SPOOL_OK);
	start("p", 1, items, NULL);
	task = count("SELECT task_id FROM pipeline_items WHERE id = %lld",
	    items[0]);
	for (i = 0; i < 2; i++) {
		job = claim("p/a");
		CU_ASSERT_PTR_NOT_NULL_FATAL(job);
		TU_RC(spool_job_fail(job, "x", 0), SPOOL_OK);
		spool_job_free(job);
	}
	CU_ASSERT_EQUAL(count("SELECT state = 'dead' FROM tasks WHERE id = "
	    "%lld", task), 1);
	TU_RC(spool_retry(tu_q, task), SPOOL_OK);
	/* A fresh allowance: one failure is retried again. */
	job = claim("p/a");
	CU_ASSERT_PTR_NOT_NULL_FATAL(job);
	TU_RC(spool_job_fail(job, "x", 0), SPOOL_OK);
	spool_job_free(job);
	CU_ASSERT_EQUAL(count("SELECT state = 'ready' FROM tasks WHERE id = "
	    "%lld", task), 1);
	check_invariants();
}

/* Names whose queue would be too long; a hook on a stage queue; an
 * error cut at a character boundary; a stopped run reopened. */
static void
test_edges(void)
{
	spool_run_opts	 o = SPOOL_RUN_OPTS_INIT;
	spool_stage	 s[1];
	spool_job	*job;
	spool_run_info	*r;
	char		 name[65], err[400];
	int64_t		 items[2], run;
	int		 i;

	memset(name, 'x', 64);
	name[64] = '\0';
	s[0] = stage(name, 1, SPOOL_ON_ERROR_FAIL_FAST);
	TU_RC(spool_pipeline_create(NULL, tu_q, name, s, 1, 0), SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q), "longer than 128"));
	s[0] = stage("a", 1, SPOOL_ON_ERROR_FAIL_FAST);
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 1, 0), SPOOL_OK);
	o.hook_queue = "p/a";
	TU_RC(spool_pipeline_start(NULL, NULL, tu_q, "p", NULL, 0, &o),
	    SPOOL_EINVAL);
	o.hook_queue = "hooks";
	run = start("p", 2, items, &o);
	job = claim("p/a");
	err[0] = '\0';
	for (i = 0; i < 150; i++)
		strcat(err, "\xc3\xa9");
	TU_RC(spool_job_fail(job, err, 0), SPOOL_OK);
	spool_job_free(job);
	CU_ASSERT_EQUAL(count("SELECT typeof(error) = 'text' AND "
	    "error = CAST(CAST(error AS BLOB) AS TEXT) FROM pipeline_runs "
	    "WHERE id = %lld", run), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT typeof(payload) = 'text' AND "
	    "json_valid(payload) FROM tasks WHERE queue = 'hooks'"), 1);
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_FINISHED);
	CU_ASSERT_EQUAL(r->cancelled, 1);
	CU_ASSERT_PTR_NOT_NULL(r->error);
	spool_run_info_free(r, 1);
	/* The operator retries the failed item: the run runs again, and its
	 * stop is forgotten, so the item goes on to the end. */
	TU_RC(spool_retry(tu_q, count("SELECT task_id FROM pipeline_items "
	    "WHERE id = %lld", items[0])), SPOOL_OK);
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_RUNNING);
	CU_ASSERT_PTR_NULL(r->error);
	spool_run_info_free(r, 1);
	pass("p/a", "ok");
	r = run_get(run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_FINISHED);
	CU_ASSERT_EQUAL(r->succeeded, 1);
	CU_ASSERT_EQUAL(r->cancelled, 1);
	spool_run_info_free(r, 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE queue = "
	    "'hooks'"), 1);
	check_invariants();
}

/* A handler that ignores its stop for 600 ms. */
static int
deaf_handler(spool_job *job, void *arg)
{
	int	 v, m;

	(void)arg;
	v = __atomic_add_fetch(&cnt.now[0], 1, __ATOMIC_SEQ_CST);
	while ((m = __atomic_load_n(&cnt.max[0], __ATOMIC_SEQ_CST)) < v &&
	    !__atomic_compare_exchange_n(&cnt.max[0], &m, v, 0,
	    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
	sleep_ms(600);
	__atomic_sub_fetch(&cnt.now[0], 1, __ATOMIC_SEQ_CST);
	(void)job;
	return (SPOOL_DONE);
}

/* An abandoned handler keeps its stage's slot until it returns. */
static void
test_pool_abandoned_keeps_slot(void)
{
	spool_stage_handler	 h[1] = { { "slow", deaf_handler, NULL } };
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	spool_stage		 s[1];
	spool_item		 it[3] = { { "a", 1 }, { "b", 1 }, { "c", 1 } };
	spool_pool		*p = NULL;
	spool			*rq;
	int64_t			 run = 0;

	memset(&cnt, 0, sizeof cnt);
	s[0] = stage("slow", 1, SPOOL_ON_ERROR_SKIP);
	s[0].timeout_ms = 100;
	TU_RC(spool_pipeline_create(NULL, tu_q, "p", s, 1, 0), SPOOL_OK);
	rq = real_open();
	CU_ASSERT_EQUAL_FATAL(spool_pipeline_start(&run, NULL, rq, "p", it, 3,
	    NULL), SPOOL_OK);
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.tick_ms = 20;		/* timeouts are checked at each tick */
	CU_ASSERT_EQUAL_FATAL(spool_pipeline_pool_new(&p, tu_db, "p", h, 1, &o),
	    SPOOL_OK);
	p->grace_ms = 50;	/* abandon 50 ms past the timeout */
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);
	CU_ASSERT_EQUAL(cnt.max[0], 1);
	if (tu_sql_int("SELECT count(*) FROM attempts WHERE outcome = "
	    "'timed_out'") != 3)
		fprintf(stderr, "\n%s\n", tu_sql_text((char[512]){0}, 512,
		    "SELECT group_concat(outcome || ':' || ifnull(error, ''), "
		    "' | ') FROM attempts"));
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts WHERE "
	    "outcome = 'timed_out'"), 3);
	spool_close(rq);
}

/* Run and pool options of a version newer than the library knows are
 * refused with SPOOL_EINVAL and a message naming the struct and the
 * version: no run starts, and the pipeline pool opens (creates) no file
 * (issue 15). */
static void
test_opts_version_unknown(void)
{
	spool_stage_handler	 h[1] = { { NULL, stuck_handler, NULL } };
	spool_run_opts		 ro = SPOOL_RUN_OPTS_INIT;
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	spool_item		 it = { "i", 1 };
	spool_pool		*p = NULL;
	int64_t			 run = 5;
	char			 missing[800];

	define_abc("p", SPOOL_ON_ERROR_RETRY);
	ro.version = 99;
	TU_RC(spool_pipeline_start(&run, NULL, tu_q, "p", &it, 1, &ro),
	    SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_run_opts");
	CU_ASSERT_EQUAL(run, 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM pipeline_runs"), 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 0);

	snprintf(missing, sizeof missing, "%s/missing.db", tu_dir);
	o.version = 99;
	o.open_flags = SPOOL_OPEN_CREATE;
	TU_RC(spool_pipeline_pool_new(&p, missing, "p", h, 1, &o),
	    SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	TU_VERSION_REFUSED(spool_pool_errmsg(p), "spool_pool_opts");
	spool_pool_free(p);
	CU_ASSERT_EQUAL(access(missing, F_OK), -1);
}

static CU_TestInfo tests[] = {
	{ "define", test_define },
	{ "define_bad", test_define_bad },
	{ "stage INIT, version and on_error names", test_stage_init_names },
	{ "split_words", test_split_words },
	{ "handoff", test_handoff },
	{ "lease_lost", test_lease_lost },
	{ "lists in pages", test_list_pages },
	{ "retry_strategy", test_retry_strategy },
	{ "skip_strategy", test_skip_strategy },
	{ "fail_fast", test_fail_fast },
	{ "versions", test_versions },
	{ "delete", test_delete },
	{ "hand_edits", test_hand_edits },
	{ "status_vs_history", test_status_vs_history },
	{ "pool", test_pool },
	{ "pool_timeout", test_pool_timeout },
	{ "pool_bad", test_pool_bad },
	{ "version 1 pool options are read to their end only",
	    test_pool_opts_v1 },
	{ "retry_after_operator_retry", test_retry_after_operator_retry },
	{ "edges", test_edges },
	{ "pool_abandoned_keeps_slot", test_pool_abandoned_keeps_slot },
	{ "options of an unknown version", test_opts_version_unknown },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("pipeline", tests));
}
