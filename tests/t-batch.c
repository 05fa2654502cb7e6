/*
 * t-batch.c -- batches (batch.c, the triggers of schema 3) and what came
 * with them in enqueue.c: joining batches, counters that equal the real
 * counts whatever happens to the members, hooks enqueued exactly once,
 * group commit from several threads on one handle, and depth limits with
 * waiting.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

/* The options of spool_batch_list from the arguments it once took. */
#define BLIST(a, s, l, d) (&(spool_batch_list_opts){			\
	.version = SPOOL_BATCH_LIST_OPTS_VERSION, .state = (s),		\
	.after_id = (a), .limit = (l), .descending = (d) })

static int64_t
batch_new(const char *hook_queue, const char *payload, int hook_on)
{
	spool_batch_opts	 o = SPOOL_BATCH_OPTS_INIT;
	int64_t			 id = 0;

	o.hook_queue = hook_queue;
	o.hook_payload = payload;
	o.hook_on = hook_on;
	TU_RC(spool_batch_create(&id, tu_q, &o), SPOOL_OK);
	CU_ASSERT(id > 0);
	return (id);
}

/* Enqueue text into batch on queue; returns the result code. */
static int
add(int64_t *id, int64_t batch, const char *queue, const char *text)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;

	o.batch_id = batch;
	return (spool_enqueue(id, tu_q, queue, text, strlen(text), &o));
}

static int64_t
add_ok(int64_t batch, const char *queue, const char *text)
{
	int64_t	 id = 0;

	TU_RC(add(&id, batch, queue, text), SPOOL_OK);
	return (id);
}

static spool_batch_info *
get(int64_t id)
{
	spool_batch_info	*b = NULL;

	TU_RC(spool_batch_get(&b, tu_q, id), SPOOL_OK);
	return (b);
}

static int
state_of(int64_t id)
{
	spool_batch_info	*b = get(id);
	int			 s = b != NULL ? b->state : -1;

	spool_batch_info_free(b, 1);
	return (s);
}

/* Claim the next task of queue and finish it: 0 succeed, 1 retryable
 * failure, 2 permanent failure.  Returns its id. */
static int64_t
work_one(const char *queue, int how)
{
	spool_job	*job = NULL;
	int64_t		 id;

	TU_RC(spool_claim(&job, tu_q, queue, NULL), SPOOL_OK);
	if (job == NULL)
		return (0);
	id = spool_job_id(job);
	if (how == 0)
		TU_RC(spool_job_complete(job, "ok", 2), SPOOL_OK);
	else
		TU_RC(spool_job_fail(job, "boom", how == 2 ?
		    SPOOL_FAIL_PERMANENT : 0), SPOOL_OK);
	spool_job_free(job);
	return (id);
}

static int64_t
hooks_of(int64_t batch)
{
	char	 sql[256];

	snprintf(sql, sizeof sql, "SELECT count(*) FROM tasks WHERE queue = "
	    "'hooks' AND json_valid(payload) AND "
	    "json_extract(payload, '$.batch') = %lld",
	    (long long)batch);
	return (tu_sql_int(sql));
}

static void
test_create_and_get(void)
{
	spool_batch_opts	 o = SPOOL_BATCH_OPTS_INIT;
	spool_batch_info	*b, *v = NULL;
	size_t			 n = 0;
	int64_t			 id = 0, id2;

	o.description = "nightly export";
	o.hook_queue = "hooks";
	o.hook_payload = "{\"to\":\"ops\"}";
	o.hook_on = SPOOL_HOOK_SUCCESS;
	TU_RC(spool_batch_create(&id, tu_q, &o), SPOOL_OK);
	b = get(id);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->state, SPOOL_BATCH_OPEN);
	CU_ASSERT_STRING_EQUAL(b->description, "nightly export");
	CU_ASSERT_STRING_EQUAL(b->hook_queue, "hooks");
	CU_ASSERT_STRING_EQUAL(b->hook_payload, "{\"to\":\"ops\"}");
	CU_ASSERT_EQUAL(b->hook_on, SPOOL_HOOK_SUCCESS);
	CU_ASSERT_EQUAL(b->total, 0);
	CU_ASSERT_EQUAL(b->hook_task_id, 0);
	CU_ASSERT_EQUAL(b->created_ms, tu_now);
	CU_ASSERT_EQUAL(b->closed_ms, 0);
	spool_batch_info_free(b, 1);

	TU_RC(spool_batch_create(&id2, tu_q, NULL), SPOOL_OK);
	CU_ASSERT(id2 > id);
	b = get(id2);
	CU_ASSERT_PTR_NULL(b->description);
	CU_ASSERT_PTR_NULL(b->hook_queue);
	CU_ASSERT_EQUAL(b->hook_on, SPOOL_HOOK_ALWAYS);
	spool_batch_info_free(b, 1);

	TU_RC(spool_batch_list(&v, &n, tu_q, BLIST(0, 0, 0, 0)), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2);
	if (n == 2)
		CU_ASSERT_EQUAL(v[1].id, id2);
	spool_batch_info_free(v, n);
	TU_RC(spool_batch_list(&v, &n, tu_q, BLIST(id, 0, 0, 0)), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	spool_batch_info_free(v, n);
	TU_RC(spool_batch_list(&v, &n, tu_q,
	    BLIST(0, SPOOL_BATCH_FINISHED, 0, 0)),
	    SPOOL_OK);
	CU_ASSERT_EQUAL(n, 0);
	spool_batch_info_free(v, n);
	/* Newest first: from the newest, then below an id. */
	TU_RC(spool_batch_list(&v, &n, tu_q, BLIST(0, 0, 1, 1)), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	if (n == 1)
		CU_ASSERT_EQUAL(v[0].id, id2);
	spool_batch_info_free(v, n);
	TU_RC(spool_batch_list(&v, &n, tu_q, BLIST(id2, 0, 0, 1)), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	if (n == 1)
		CU_ASSERT_EQUAL(v[0].id, id);
	spool_batch_info_free(v, n);
	TU_RC(spool_batch_list(&v, &n, tu_q, BLIST(id, 0, 0, 1)), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 0);
	spool_batch_info_free(v, n);

	CU_ASSERT_STRING_EQUAL(spool_batch_state_name(SPOOL_BATCH_CLOSED),
	    "closed");
	CU_ASSERT_PTR_NULL(spool_batch_state_name(0));
	TU_RC(spool_batch_get(&b, tu_q, 999), SPOOL_ENOENT);
	CU_ASSERT_PTR_NULL(b);
}

/* Batches in pages both ways: each once, in order; the options are
 * checked as every list's. */
static void
test_list_pages(void)
{
	spool_batch_list_opts	 lo = SPOOL_BATCH_LIST_OPTS_INIT;
	spool_batch_info	*v = NULL;
	int64_t			 want[25], got[60];
	size_t			 n = 0, ngot, i, pages;
	int			 desc;

	for (i = 0; i < 25; i++)
		TU_RC(spool_batch_create(&want[i], tu_q, NULL), SPOOL_OK);
	for (desc = 0; desc <= 1; desc++) {
		lo.after_id = 0;
		lo.limit = 10;
		lo.descending = desc;
		ngot = pages = 0;
		do {
			TU_RC(spool_batch_list(&v, &n, tu_q, &lo), SPOOL_OK);
			for (i = 0; i < n && ngot < 60; i++)
				got[ngot++] = v[i].id;
			if (n > 0)
				lo.after_id = v[n - 1].id;
			spool_batch_info_free(v, n);
		} while (n == lo.limit && ++pages < 20);
		CU_ASSERT_EQUAL(ngot, 25);
		for (i = 0; i < ngot && i < 25; i++)
			CU_ASSERT_EQUAL(got[i], want[desc ? 24 - i : i]);
	}
	TU_RC(spool_batch_list(&v, &n, tu_q, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 25);
	spool_batch_info_free(v, n);
	lo.after_id = 0;
	lo.version = 0;
	TU_RC(spool_batch_list(&v, &n, tu_q, &lo), SPOOL_EINVAL);
	lo.version = 99;
	TU_RC(spool_batch_list(&v, &n, tu_q, &lo), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_batch_list_opts");
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT_EQUAL(n, 0);
}

static void
test_bad_input(void)
{
	spool_batch_opts	 o = SPOOL_BATCH_OPTS_INIT;
	spool_batch_info	*v = NULL;
	size_t			 n;
	int64_t			 id = 7;
	char			*big;

	o.hook_on = 5;
	TU_RC(spool_batch_create(&id, tu_q, &o), SPOOL_EINVAL);
	CU_ASSERT_EQUAL(id, 0);
	o.hook_on = SPOOL_HOOK_ALWAYS;
	o.hook_payload = "x";
	TU_RC(spool_batch_create(&id, tu_q, &o), SPOOL_EINVAL);
	o.hook_queue = "";
	TU_RC(spool_batch_create(&id, tu_q, &o), SPOOL_EINVAL);
	o.hook_queue = "q";
	o.description = "\xff\xfe";
	TU_RC(spool_batch_create(&id, tu_q, &o), SPOOL_EINVAL);
	CU_ASSERT(strstr(spool_errmsg(tu_q), "UTF-8") != NULL);
	/* 600 kB of quotes: within a payload, but not once escaped. */
	o.description = NULL;
	big = malloc(600 * 1024 + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, '"', 600 * 1024);
	big[600 * 1024] = '\0';
	o.hook_payload = big;
	TU_RC(spool_batch_create(&id, tu_q, &o), SPOOL_EINVAL);
	CU_ASSERT(strstr(spool_errmsg(tu_q), "escaped") != NULL);
	memset(big, 'a', 600 * 1024);
	TU_RC(spool_batch_create(&id, tu_q, &o), SPOOL_OK);	/* fits */
	free(big);
	CU_ASSERT_EQUAL(tu_sql_int("DELETE FROM batches RETURNING 0"), 0);
	o.hook_payload = NULL;
	o.version = 0;
	TU_RC(spool_batch_create(&id, tu_q, &o), SPOOL_EINVAL);
	TU_RC(spool_batch_close(tu_q, 0), SPOOL_EINVAL);
	TU_RC(spool_batch_close(tu_q, 3), SPOOL_ENOENT);
	TU_RC(spool_batch_list(&v, &n, tu_q, BLIST(0, 9, 0, 0)), SPOOL_EINVAL);
	TU_RC(spool_batch_list(&v, &n, tu_q, BLIST(0, 0, 10001, 0)), SPOOL_EINVAL);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM batches"), 0);
}

static void
test_join_refused(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT, ob = o;
	spool_task		 t[3];
	int64_t			 b, id = 5;

	b = batch_new(NULL, NULL, 0);
	TU_RC(add(&id, b + 1, "q", "x"), SPOOL_ENOENT);
	CU_ASSERT_EQUAL(id, 0);
	o.batch_id = -1;
	TU_RC(spool_enqueue(&id, tu_q, "q", "x", 1, &o), SPOOL_EINVAL);
	add_ok(b, "q", "one");
	TU_RC(spool_batch_close(tu_q, b), SPOOL_OK);
	TU_RC(spool_batch_close(tu_q, b), SPOOL_OK);	/* idempotent */
	TU_RC(add(&id, b, "fresh", "x"), SPOOL_ESTATE);
	CU_ASSERT(strstr(spool_errmsg(tu_q), "closed") != NULL);
	/* Nothing behind: no task, and not even the new queue. */
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM queues "
	    "WHERE name = 'fresh'"), 0);

	/* A bulk enqueue with one refused member adds none. */
	ob.batch_id = b;
	memset(t, 0, sizeof t);
	t[0].queue = t[1].queue = t[2].queue = "q";
	t[0].payload = t[1].payload = t[2].payload = "y";
	t[0].len = t[1].len = t[2].len = 1;
	t[1].opts = &ob;
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, 3), SPOOL_ESTATE);
	CU_ASSERT(strstr(spool_errmsg(tu_q), "task 2") != NULL);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 1);
	CU_ASSERT_EQUAL(tu_sql_int(TU_BATCHES_WRONG), 0);
}

static void
test_hook_once(void)
{
	spool_batch_info	*b;
	int64_t			 id, t1, i;
	char			 buf[512];

	id = batch_new("hooks", "{\"report\":\"r1\"}", SPOOL_HOOK_ALWAYS);
	t1 = add_ok(id, "w", "a");
	for (i = 0; i < 3; i++)
		add_ok(id, "w", "b");
	CU_ASSERT_EQUAL(tu_task_int(t1, "batch_id"), id);
	b = get(id);
	CU_ASSERT_EQUAL(b->total, 4);
	CU_ASSERT_EQUAL(b->pending, 4);
	spool_batch_info_free(b, 1);

	work_one("w", 0);
	work_one("w", 2);		/* failed for good */
	CU_ASSERT_EQUAL(state_of(id), SPOOL_BATCH_OPEN);
	work_one("w", 0);
	work_one("w", 0);
	/* Everything finished, but the batch is open: no hook yet. */
	CU_ASSERT_EQUAL(state_of(id), SPOOL_BATCH_OPEN);
	CU_ASSERT_EQUAL(hooks_of(id), 0);
	tu_advance(5);
	TU_RC(spool_batch_close(tu_q, id), SPOOL_OK);	/* fires at close */
	b = get(id);
	CU_ASSERT_EQUAL(b->state, SPOOL_BATCH_FINISHED);
	CU_ASSERT_EQUAL(b->succeeded, 3);
	CU_ASSERT_EQUAL(b->failed, 1);
	CU_ASSERT_EQUAL(b->finished_ms, tu_now);
	CU_ASSERT(b->hook_task_id > 0);
	CU_ASSERT_EQUAL(hooks_of(id), 1);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, b->hook_task_id,
	    "payload"), "{\"batch\":1,\"description\":null,\"total\":4,"
	    "\"succeeded\":3,\"failed\":1,\"dead\":0,\"cancelled\":0,"
	    "\"payload\":{\"report\":\"r1\"}}");
	CU_ASSERT_EQUAL(tu_task_int(b->hook_task_id, "batch_id IS NULL"), 1);
	spool_batch_info_free(b, 1);
	TU_RC(spool_batch_close(tu_q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(hooks_of(id), 1);
}

static void
test_hook_on_last_member(void)
{
	spool_batch_info	*b;
	int64_t			 id;
	char			 buf[512];

	id = batch_new("hooks", "not json", SPOOL_HOOK_ALWAYS);
	add_ok(id, "w", "a");
	add_ok(id, "w", "b");
	TU_RC(spool_batch_close(tu_q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(state_of(id), SPOOL_BATCH_CLOSED);
	work_one("w", 0);
	CU_ASSERT_EQUAL(hooks_of(id), 0);
	work_one("w", 1);		/* retried later */
	CU_ASSERT_EQUAL(hooks_of(id), 0);
	CU_ASSERT_EQUAL(state_of(id), SPOOL_BATCH_CLOSED);
	tu_advance(3600 * 1000);
	work_one("w", 0);
	b = get(id);
	CU_ASSERT_EQUAL(b->state, SPOOL_BATCH_FINISHED);
	CU_ASSERT_EQUAL(b->succeeded, 2);
	CU_ASSERT_EQUAL(hooks_of(id), 1);
	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf, "SELECT "
	    "json_extract(payload, '$.payload') FROM tasks WHERE queue = "
	    "'hooks'"), "not json");
	spool_batch_info_free(b, 1);

	/* An empty batch finishes when it is closed. */
	id = batch_new("hooks", NULL, SPOOL_HOOK_SUCCESS);
	TU_RC(spool_batch_close(tu_q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(state_of(id), SPOOL_BATCH_FINISHED);
	CU_ASSERT_EQUAL(hooks_of(id), 1);
	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf, "SELECT payload "
	    "FROM tasks WHERE queue = 'hooks' ORDER BY id DESC LIMIT 1"),
	    "{\"batch\":2,\"description\":null,\"total\":0,\"succeeded\":0,"
	    "\"failed\":0,\"dead\":0,\"cancelled\":0,\"payload\":null}");
}

static void
test_hook_on_success(void)
{
	int64_t	 id, bad, none;

	/* A member fails for good: finished, no hook. */
	id = batch_new("hooks", NULL, SPOOL_HOOK_SUCCESS);
	add_ok(id, "w", "a");
	add_ok(id, "w", "b");
	TU_RC(spool_batch_close(tu_q, id), SPOOL_OK);
	work_one("w", 0);
	bad = work_one("w", 2);
	CU_ASSERT_EQUAL(state_of(id), SPOOL_BATCH_FINISHED);
	CU_ASSERT_EQUAL(hooks_of(id), 0);
	/* Retried by an operator until it succeeds: the hook comes then. */
	TU_RC(spool_retry(tu_q, bad), SPOOL_OK);
	CU_ASSERT_EQUAL(state_of(id), SPOOL_BATCH_CLOSED);
	work_one("w", 0);
	CU_ASSERT_EQUAL(state_of(id), SPOOL_BATCH_FINISHED);
	CU_ASSERT_EQUAL(hooks_of(id), 1);

	/* A hook "always" is not enqueued twice when a retried member
	 * finishes the batch again. */
	none = batch_new("hooks", NULL, SPOOL_HOOK_ALWAYS);
	add_ok(none, "w", "c");
	TU_RC(spool_batch_close(tu_q, none), SPOOL_OK);
	bad = work_one("w", 2);
	CU_ASSERT_EQUAL(hooks_of(none), 1);
	TU_RC(spool_retry(tu_q, bad), SPOOL_OK);
	work_one("w", 0);
	CU_ASSERT_EQUAL(state_of(none), SPOOL_BATCH_FINISHED);
	CU_ASSERT_EQUAL(hooks_of(none), 1);
	CU_ASSERT_EQUAL(tu_sql_int(TU_BATCHES_WRONG), 0);
}

/* The hook's queue is full: the hook is enqueued anyway. */
static void
test_hook_ignores_depth(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	int64_t			 id;

	qo.set = SPOOL_QUEUE_MAX_DEPTH;
	qo.max_depth = 1;
	TU_RC(spool_queue_create(tu_q, "hooks", &qo), SPOOL_OK);
	tu_enqueue("hooks", "filler");
	id = batch_new("hooks", NULL, SPOOL_HOOK_ALWAYS);
	TU_RC(spool_batch_close(tu_q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(hooks_of(id), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE queue = "
	    "'hooks'"), 2);
}

/* Hand edits in SQL move the counters too, and batch_id is fixed. */
static void
test_sql_edits(void)
{
	int64_t	 id, t;
	char	 sql[256];

	id = batch_new("hooks", NULL, SPOOL_HOOK_ALWAYS);
	t = add_ok(id, "w", "a");
	add_ok(id, "w", "b");
	snprintf(sql, sizeof sql, "UPDATE tasks SET state = 'cancelled', "
	    "finished_ms = 1 WHERE id = %lld", (long long)t);
	CU_ASSERT_EQUAL(sqlite3_exec(tu_q->db, sql, NULL, NULL, NULL),
	    SQLITE_OK);
	CU_ASSERT_EQUAL(tu_sql_int(TU_BATCHES_WRONG), 0);
	snprintf(sql, sizeof sql, "UPDATE tasks SET batch_id = NULL WHERE "
	    "id = %lld", (long long)t);
	CU_ASSERT_EQUAL(sqlite3_exec(tu_q->db, sql, NULL, NULL, NULL) & 0xff,
	    SQLITE_CONSTRAINT);
	CU_ASSERT_EQUAL(sqlite3_exec(tu_q->db, "DELETE FROM tasks WHERE "
	    "state = 'ready'", NULL, NULL, NULL), SQLITE_OK);
	CU_ASSERT_EQUAL(tu_sql_int(TU_BATCHES_WRONG), 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT total FROM batches"), 1);
	/* Settling picks up a batch an edit finished at the next write. */
	TU_RC(spool_batch_close(tu_q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(hooks_of(id), 1);
}

/* Finish task id by hand: on another connection (elsewhere), or on this
 * handle's, outside spool's transactions. */
static void
cancel_by_hand(int64_t id, int elsewhere)
{
	sqlite3	*db = tu_q->db;
	char	 sql[128];

	snprintf(sql, sizeof sql, "UPDATE tasks SET state = 'cancelled', "
	    "finished_ms = 1 WHERE id = %lld", (long long)id);
	if (elsewhere) {
		CU_ASSERT_EQUAL_FATAL(sqlite3_open(tu_db, &db), SQLITE_OK);
		sqlite3_busy_timeout(db, 10000);
	}
	CU_ASSERT_EQUAL(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	if (elsewhere)
		sqlite3_close(db);
}

/* An edit by hand that finishes a batch is settled by the next spool
 * write, a lone enqueue too, though the handle's enqueues before it found
 * the file quiet and did not look (store.c, spool__quiet). */
static void
test_edit_settled_by_enqueue(void)
{
	int64_t	 id, t;
	int	 elsewhere;

	for (elsewhere = 1; elsewhere >= 0; elsewhere--) {
		id = batch_new("hooks", NULL, SPOOL_HOOK_ALWAYS);
		t = add_ok(id, "w", "a");
		TU_RC(spool_batch_close(tu_q, id), SPOOL_OK);
		tu_enqueue("other", "x");
		tu_enqueue("other", "y");
		cancel_by_hand(t, elsewhere);
		CU_ASSERT_EQUAL(hooks_of(id), 0);
		tu_enqueue("other", "z");
		CU_ASSERT_EQUAL(hooks_of(id), 1);
		CU_ASSERT_EQUAL(tu_sql_int(TU_BATCHES_WRONG), 0);
	}
}

/*
 * Random outcomes over many batches: succeed, retryable and permanent
 * failures, attempts running out, cancellation of ready and running
 * members, deadlines passing, leases lost and reaped, release, purge and
 * prune.  After every step, the counters equal the real counts; at the
 * end every batch has finished and has exactly one hook.
 */
static void
test_random_outcomes(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_enqueue_opts	 eo = SPOOL_ENQUEUE_OPTS_INIT;
	spool_job		*jobs[8];
	int64_t			 batches[20], id, n64;
	size_t			 nb = 20, i, n;
	const char		*env = getenv("SPOOL_TEST_SEED");
	unsigned		 seed = env != NULL ? (unsigned)atol(env) :
				    (unsigned)time(NULL);
	int			 step, k, running;
	char			 sql[256];

	fprintf(stderr, "[seed %u] ", seed);
	srand(seed);
	qo.set = SPOOL_QUEUE_MAX_ATTEMPTS | SPOOL_QUEUE_BACKOFF_BASE |
	    SPOOL_QUEUE_BACKOFF_JITTER | SPOOL_QUEUE_LEASE;
	qo.max_attempts = 2;
	qo.backoff_base_ms = 0;
	qo.backoff_jitter = 0;
	qo.lease_ms = 1000;
	TU_RC(spool_queue_create(tu_q, "w", &qo), SPOOL_OK);
	for (i = 0; i < nb; i++) {
		batches[i] = batch_new("hooks", NULL, i % 2 ?
		    SPOOL_HOOK_SUCCESS : SPOOL_HOOK_ALWAYS);
		for (k = 0; k < 10; k++) {
			eo.batch_id = batches[i];
			eo.deadline_ms = rand() % 10 == 0 ? tu_now + 500 : 0;
			TU_RC(spool_enqueue(&id, tu_q, "w", "t", 1, &eo),
			    SPOOL_OK);
		}
		if (rand() % 2)
			TU_RC(spool_batch_close(tu_q, batches[i]), SPOOL_OK);
	}
	for (step = 0; step < 400; step++) {
		k = rand() % 10;
		tu_advance(rand() % 200);
		if (k < 6) {		/* claim a few, finish each somehow */
			n = 0;
			if (spool_claim_many(jobs, &n, tu_q,
			    (const char *const[]){ "w" }, 1, 1 + rand() % 8,
			    NULL) != SPOOL_OK)
				n = 0;
			for (i = 0; i < n; i++) {
				switch (rand() % 6) {
				case 0: case 1: case 2:
					spool_job_complete(jobs[i], NULL, 0);
					break;
				case 3:
					spool_job_fail(jobs[i], "x", 0);
					break;
				case 4:
					spool_job_fail(jobs[i], "x",
					    SPOOL_FAIL_PERMANENT);
					break;
				default:	/* abandoned: its lease runs out */
					break;
				}
				spool_job_free(jobs[i]);
			}
		} else if (k == 6) {	/* cancel one unfinished member */
			id = tu_sql_int("SELECT id FROM tasks WHERE batch_id "
			    "IS NOT NULL AND finished_ms IS NULL ORDER BY "
			    "random() LIMIT 1");
			if (id > 0)
				(void)spool_cancel(&running, tu_q, id);
		} else if (k == 7) {	/* leases end; the reaper runs */
			tu_advance(1500);
			TU_RC(spool_reap(&n64, tu_q), SPOOL_OK);
		} else if (k == 8) {	/* an operator retries a dead one */
			id = tu_sql_int("SELECT id FROM tasks WHERE state = "
			    "'dead' ORDER BY random() LIMIT 1");
			if (id > 0)
				TU_RC(spool_retry(tu_q, id), SPOOL_OK);
		} else {		/* close one */
			TU_RC(spool_batch_close(tu_q,
			    batches[rand() % nb]), SPOOL_OK);
		}
		if (tu_sql_int(TU_BATCHES_WRONG) != 0) {
			CU_FAIL("batch counters differ from the counts");
			fprintf(stderr, "step %d kind %d\n", step, k);
			return;
		}
	}
	/* Release a claim, purge and prune a little, then finish it all. */
	n = 0;
	if (spool_claim_many(jobs, &n, tu_q, (const char *const[]){ "w" }, 1,
	    2, NULL) == SPOOL_OK)
		for (i = 0; i < n; i++) {
			TU_RC(spool_job_release(jobs[i]), SPOOL_OK);
			spool_job_free(jobs[i]);
		}
	CU_ASSERT_EQUAL(tu_sql_int(TU_BATCHES_WRONG), 0);
	for (i = 0; i < nb; i++)
		TU_RC(spool_batch_close(tu_q, batches[i]), SPOOL_OK);
	for (k = 0; k < 200 && tu_sql_int("SELECT count(*) FROM tasks WHERE "
	    "queue = 'w' AND finished_ms IS NULL") > 0; k++) {
		tu_advance(2000);
		TU_RC(spool_reap(&n64, tu_q), SPOOL_OK);
		while (tu_sql_int("SELECT count(*) FROM tasks WHERE queue = "
		    "'w' AND state = 'ready'") > 0 && work_one("w", 0) > 0)
			;
	}
	TU_RC(spool_purge(&n64, tu_q, "w", 0), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_sql_int(TU_BATCHES_WRONG), 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM batches WHERE "
	    "state != 'finished'"), 0);
	/* Exactly one hook per batch that was due one. */
	for (i = 0; i < nb; i++) {
		snprintf(sql, sizeof sql, "SELECT (hook_on = 'always' OR "
		    "succeeded = total) + 0 FROM batches WHERE id = %lld",
		    (long long)batches[i]);
		n64 = hooks_of(batches[i]);
		if (tu_sql_int(sql) == 1 && n64 != 1) {
			fprintf(stderr, "batch %lld: %lld hooks\n",
			    (long long)batches[i], (long long)n64);
			CU_FAIL("a hook is missing");
		}
		CU_ASSERT(n64 <= 1);
	}
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE queue = "
	    "'hooks'"), tu_sql_int("SELECT count(*) FROM batches WHERE "
	    "hook_task_id IS NOT NULL"));
	/* Pruned members no longer count. */
	tu_advance(1);
	TU_RC(spool_prune(&n64, tu_q, "w", 0), SPOOL_OK);
	CU_ASSERT(n64 > 0);
	CU_ASSERT_EQUAL(tu_sql_int(TU_BATCHES_WRONG), 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT sum(total) FROM batches"), 0);
}

/* A pool's group commits settle batches: members finished by handlers in
 * worker threads, committed by the engine's flush, fire the hook once. */
static int
h_half_fail(spool_job *job, void *arg)
{
	(void)arg;
	return (spool_job_id(job) % 2 ? SPOOL_DONE : SPOOL_FAIL);
}

static void
test_pool_settles(void)
{
	const char		*qs[] = { "w" };
	spool_pool_opts		 po = SPOOL_POOL_OPTS_INIT;
	spool_enqueue_opts	 eo = SPOOL_ENQUEUE_OPTS_INIT;
	spool_pool		*p = NULL;
	spool_batch_info	*b;
	int64_t			 id, bid[3];
	int			 i, k;

	for (k = 0; k < 3; k++) {
		bid[k] = batch_new("hooks", NULL, k == 2 ? SPOOL_HOOK_SUCCESS :
		    SPOOL_HOOK_ALWAYS);
		eo.batch_id = bid[k];
		eo.run_at_ms = 1000;	/* due on the pool's real clock too */
		for (i = 0; i < 50; i++)
			TU_RC(spool_enqueue(&id, tu_q, "w", "t", 1, &eo),
			    SPOOL_OK);
		TU_RC(spool_batch_close(tu_q, bid[k]), SPOOL_OK);
	}
	po.queues = qs;
	po.nqueues = 1;
	po.max_workers = 4;
	po.flags = SPOOL_POOL_UNTIL_EMPTY;
	po.max_time_ms = 30000;
	TU_RC(spool_pool_new(&p, tu_db, h_half_fail, NULL, &po), SPOOL_OK);
	TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);
	for (k = 0; k < 3; k++) {
		b = get(bid[k]);
		CU_ASSERT_EQUAL(b->state, SPOOL_BATCH_FINISHED);
		CU_ASSERT_EQUAL(b->succeeded + b->failed, 50);
		CU_ASSERT(b->failed > 0);
		CU_ASSERT_EQUAL(hooks_of(bid[k]), k == 2 ? 0 : 1);
		spool_batch_info_free(b, 1);
	}
	CU_ASSERT_EQUAL(tu_sql_int(TU_BATCHES_WRONG), 0);
}

/* ---- Group commit: threads sharing one handle ------------------------- */

#define NTHREADS	8
#define PER_THREAD	100

struct producer {
	pthread_t	 t;
	int		 n;
	int		 ok;
	int		 full;
	int		 other;
	int		 wrong_msg;
	const char	*queue;
	int64_t		 wait_ms;
	int64_t		 ids[PER_THREAD];
};

static void *
producer_main(void *arg)
{
	struct producer		*p = arg;
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT, bad = o;
	int64_t			 id;
	int			 i, rc;

	o.wait_ms = p->wait_ms;
	bad.max_attempts = -1;
	for (i = 0; i < p->n; i++) {
		/* A bad call between good ones: its error is this thread's. */
		if (i % 10 == 5) {
			rc = spool_enqueue(&id, tu_q, p->queue, "x", 1, &bad);
			if (rc != SPOOL_EINVAL || strstr(spool_errmsg(tu_q),
			    "max attempts") == NULL)
				p->wrong_msg++;
		}
		rc = spool_enqueue(&id, tu_q, p->queue, "x", 1, &o);
		if (rc == SPOOL_OK)
			p->ids[p->ok++] = id;
		else if (rc == SPOOL_EFULL) {
			p->full++;
			if (strstr(spool_errmsg(tu_q), "full") == NULL)
				p->wrong_msg++;
		} else
			p->other++;
	}
	return (NULL);
}

static void
run_producers(struct producer *p, const char *queue, int64_t wait_ms)
{
	int	 i;

	for (i = 0; i < NTHREADS; i++) {
		memset(&p[i], 0, sizeof p[i]);
		p[i].n = PER_THREAD;
		p[i].queue = queue;
		p[i].wait_ms = wait_ms;
		CU_ASSERT_EQUAL(pthread_create(&p[i].t, NULL, producer_main,
		    &p[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(p[i].t, NULL);
}

static void
test_threads_share_handle(void)
{
	struct producer	 p[NTHREADS];
	int		 i, j, total = 0;
	char		 sql[128];

	run_producers(p, "q", 0);
	for (i = 0; i < NTHREADS; i++) {
		CU_ASSERT_EQUAL(p[i].ok, PER_THREAD);
		CU_ASSERT_EQUAL(p[i].other + p[i].full + p[i].wrong_msg, 0);
		total += p[i].ok;
		for (j = 0; j < p[i].ok; j++) {	/* each id is its task */
			snprintf(sql, sizeof sql, "SELECT count(*) FROM tasks "
			    "WHERE id = %lld", (long long)p[i].ids[j]);
			if (tu_sql_int(sql) != 1)
				CU_FAIL("an id returned names no task");
		}
	}
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), total);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(DISTINCT id) FROM tasks"),
	    NTHREADS * PER_THREAD);
}

static void
test_threads_depth_limit(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	struct producer		 p[NTHREADS];
	int			 i, ok = 0, full = 0;

	qo.set = SPOOL_QUEUE_MAX_DEPTH;
	qo.max_depth = 250;
	TU_RC(spool_queue_create(tu_q, "lim", &qo), SPOOL_OK);
	run_producers(p, "lim", 0);
	for (i = 0; i < NTHREADS; i++) {
		ok += p[i].ok;
		full += p[i].full;
		CU_ASSERT_EQUAL(p[i].other + p[i].wrong_msg, 0);
	}
	CU_ASSERT_EQUAL(ok, 250);
	CU_ASSERT_EQUAL(full, NTHREADS * PER_THREAD - 250);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE queue = "
	    "'lim' AND state = 'ready'"), 250);
}

/* Bulk enqueue against a depth limit: all or nothing. */
static void
test_bulk_depth(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_task		 t[3];
	int			 i;

	qo.set = SPOOL_QUEUE_MAX_DEPTH;
	qo.max_depth = 4;
	TU_RC(spool_queue_create(tu_q, "lim", &qo), SPOOL_OK);
	tu_enqueue("lim", "a");
	tu_enqueue("lim", "b");
	memset(t, 0, sizeof t);
	for (i = 0; i < 3; i++) {
		t[i].queue = "lim";
		t[i].payload = "c";
		t[i].len = 1;
	}
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, 3), SPOOL_EFULL);
	CU_ASSERT(strstr(spool_errmsg(tu_q), "task 3") != NULL);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 2);
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, 2), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 4);
}

struct drainer {
	pthread_t	 t;
	spool		*q;
	int		 done;
};

/* After 100 ms, claim and complete one task of "lim" on another handle. */
static void *
drainer_main(void *arg)
{
	struct drainer		*d = arg;
	struct timespec		 ts = { 0, 100 * 1000 * 1000 };
	spool_job		*job = NULL;

	nanosleep(&ts, NULL);
	if (spool_claim(&job, d->q, "lim", NULL) == SPOOL_OK &&
	    spool_job_complete(job, NULL, 0) == SPOOL_OK)
		d->done = 1;
	spool_job_free(job);
	return (NULL);
}

static double
mono_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

static void
test_wait_for_room(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	struct drainer		 d;
	int64_t			 id;
	double			 t0, el;

	qo.set = SPOOL_QUEUE_MAX_DEPTH;
	qo.max_depth = 1;
	TU_RC(spool_queue_create(tu_q, "lim", &qo), SPOOL_OK);
	tu_enqueue("lim", "a");

	/* No room comes: refused after the wait, and says so. */
	o.wait_ms = 150;
	t0 = mono_s();
	TU_RC(spool_enqueue(&id, tu_q, "lim", "b", 1, &o), SPOOL_EFULL);
	el = mono_s() - t0;
	CU_ASSERT(el >= 0.15 && el < 2.0);
	CU_ASSERT(strstr(spool_errmsg(tu_q), "after waiting 150 ms") != NULL);

	/* Room comes after 100 ms: the enqueue waits for it. */
	memset(&d, 0, sizeof d);
	d.q = tu_open(tu_db, 0);
	CU_ASSERT_EQUAL(pthread_create(&d.t, NULL, drainer_main, &d), 0);
	o.wait_ms = 5000;
	t0 = mono_s();
	TU_RC(spool_enqueue(&id, tu_q, "lim", "c", 1, &o), SPOOL_OK);
	el = mono_s() - t0;
	pthread_join(d.t, NULL);
	spool_close(d.q);
	CU_ASSERT_EQUAL(d.done, 1);
	CU_ASSERT(el >= 0.09 && el < 4.0);
	o.wait_ms = -1;
	TU_RC(spool_enqueue(&id, tu_q, "lim", "c", 1, &o), SPOOL_EINVAL);
}

/* Batch options of a version newer than the library knows are refused
 * with SPOOL_EINVAL and a message naming the struct and the version; no
 * batch is made (issue 15). */
static void
test_opts_version_unknown(void)
{
	spool_batch_opts	 o = SPOOL_BATCH_OPTS_INIT;
	int64_t			 id = 5;

	o.version = 99;
	TU_RC(spool_batch_create(&id, tu_q, &o), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_batch_opts");
	CU_ASSERT_EQUAL(id, 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM batches"), 0);
	o.version = SPOOL_BATCH_OPTS_VERSION;
	TU_RC(spool_batch_create(&id, tu_q, &o), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM batches"), 1);
}

static CU_TestInfo batch_tests[] = {
	{ "create, get, list", test_create_and_get },
	{ "list in pages", test_list_pages },
	{ "bad input changes nothing", test_bad_input },
	{ "joining a missing or closed batch is refused", test_join_refused },
	{ "close after the members: the hook fires once", test_hook_once },
	{ "the last member fires the hook; empty batches", test_hook_on_last_member },
	{ "hook on success, and retried members", test_hook_on_success },
	{ "a hook ignores its queue's depth limit", test_hook_ignores_depth },
	{ "hand edits in SQL keep the counters", test_sql_edits },
	{ "an edit by hand is settled by the next enqueue",
	    test_edit_settled_by_enqueue },
	{ "counters equal the counts after random outcomes", test_random_outcomes },
	{ "a pool's flushes settle batches", test_pool_settles },
	{ "threads share one handle's commits", test_threads_share_handle },
	{ "threads never pass a depth limit", test_threads_depth_limit },
	{ "bulk enqueue is all-or-nothing against the limit", test_bulk_depth },
	{ "waiting for room in a full queue", test_wait_for_room },
	{ "options of an unknown version", test_opts_version_unknown },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("batch", batch_tests));
}
