/*
 * t-reap.c -- the reaper (claim.c): expired leases are retried by the
 * backoff, buried when exhausted, or cancelled when asked; live leases
 * are left alone; big backlogs are reaped whole; ready tasks past their
 * deadline expire; and claims reap by themselves.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Claim one task of queue on q with lease_ms (0: the queue's) and owner
 * (NULL: the default). */
static spool_job *
claim(spool *q, const char *queue, int64_t lease_ms, const char *owner)
{
	spool_claim_opts	 co = SPOOL_CLAIM_OPTS_INIT;
	spool_job		*job = NULL;

	co.lease_ms = lease_ms;
	co.owner = owner;
	TU_RC(spool_claim(&job, q, queue, &co), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL(job);
	return (job);
}

/* Add n tasks to queue in one call, with opts o (may be NULL). */
static void
enqueue_n(const char *queue, size_t n, const spool_enqueue_opts *o)
{
	spool_task	*t;
	size_t		 i;

	if ((t = calloc(n, sizeof *t)) == NULL) {
		CU_FAIL("calloc");
		return;
	}
	for (i = 0; i < n; i++)
		t[i] = (spool_task){ queue, "x", 1, o };
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, n), SPOOL_OK);
	free(t);
}

/* An expired lease goes back to ready, due after the backoff, and its
 * attempt is recorded as lease_lost with the owner as worker. */
static void
test_expired_retried(void)
{
	spool_job	*job;
	char		 buf[128];
	int64_t		 id, t0, n = -1;

	tu_fixed_backoff("q", 4000);
	id = tu_enqueue("q", "x");
	t0 = tu_now;
	if ((job = claim(tu_q, "q", 1000, "w1")) == NULL)
		return;
	tu_advance(1001);
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'ready'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(id, "run_at_ms"), tu_now + 4000);
	CU_ASSERT_EQUAL(tu_task_int(id, "attempts"), 1);
	CU_ASSERT_EQUAL(tu_task_int(id, "lease_token IS NULL AND lease_owner IS "
	    "NULL AND lease_until_ms IS NULL AND finished_ms IS NULL"), 1);
	CU_ASSERT(strstr(tu_task_text(buf, sizeof buf, id, "last_error"),
	    "lease") != NULL);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts"), 1);
	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf, "SELECT outcome "
	    "|| '/' || attempt || '/' || worker FROM attempts"),
	    "lease_lost/1/w1");
	CU_ASSERT_EQUAL(tu_sql_int("SELECT started_ms FROM attempts"), t0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT finished_ms FROM attempts"), tu_now);
	spool_job_free(job);

	/* Reaping again finds nothing; the task is due after the backoff. */
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 0);
	tu_advance(3999);
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_EEMPTY);
	tu_advance(1);
	if ((job = claim(tu_q, "q", 0, NULL)) == NULL)
		return;
	CU_ASSERT_EQUAL(spool_job_attempt(job), 2);
	spool_job_free(job);
}

/* A stall is not an expiry: while another connection holds the write
 * lock, no worker can renew; a lease that ended while the reaper itself
 * could not get the lock is spared by the next reap, and reaped by the
 * one after if still not renewed.  One that ended before is reaped. */
static void
test_stall_not_expiry(void)
{
	sqlite3		*db;
	spool_job	*before, *during;
	int64_t		 a, b, n = -1;

	tu_fixed_backoff("q", 4000);
	a = tu_enqueue("q", "a");
	b = tu_enqueue("q", "b");
	if ((before = claim(tu_q, "q", 500, "w1")) == NULL ||
	    (during = claim(tu_q, "q", 2000, "w2")) == NULL)
		return;
	tu_advance(1000);		/* a's lease ended 500 ms ago */

	/* Another process sits on the write lock: this reap gives up. */
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(tu_db, &db), SQLITE_OK);
	CU_ASSERT_EQUAL_FATAL(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	TU_RC(spool_busy_timeout(tu_q, 50), SPOOL_OK);
	TU_RC(spool_reap(&n, tu_q), SPOOL_EBUSY);
	tu_advance(3000);		/* b's lease ends during the stall */
	CU_ASSERT_EQUAL(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	/* The lock is free: a, expired before the stall, is reaped; b, whose
	 * owner could not renew, is not yet. */
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(tu_task_int(a, "state = 'ready'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(b, "state = 'running'"), 1);
	/* Its owner could renew now; it did not: the next reap takes it. */
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(tu_task_int(b, "state = 'ready'"), 1);
	TU_RC(spool_busy_timeout(tu_q, 10000), SPOOL_OK);
	spool_job_free(before);
	spool_job_free(during);
}

/* The backoff of a reaped task grows with its attempts (linear here). */
static void
test_expired_backoff_grows(void)
{
	spool_queue_opts	 o = SPOOL_QUEUE_OPTS_INIT;
	spool_job		*job;
	int64_t			 id;
	int			 i;

	o.set = SPOOL_QUEUE_BACKOFF | SPOOL_QUEUE_BACKOFF_BASE |
	    SPOOL_QUEUE_BACKOFF_JITTER;
	o.backoff = SPOOL_BACKOFF_LINEAR;
	o.backoff_base_ms = 1000;
	o.backoff_jitter = 0;
	TU_RC(spool_queue_create(tu_q, "q", &o), SPOOL_OK);
	id = tu_enqueue("q", "x");
	for (i = 1; i <= 3; i++) {
		if ((job = claim(tu_q, "q", 100, NULL)) == NULL)
			return;
		spool_job_free(job);
		tu_advance(101);
		TU_RC(spool_reap(NULL, tu_q), SPOOL_OK);
		CU_ASSERT_EQUAL(tu_task_int(id, "run_at_ms"), tu_now + 1000 * i);
		tu_advance(1000 * i);
	}
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts "
	    "WHERE outcome = 'lease_lost'"), 3);
}

/* A reaped task on its last attempt is dead "exhausted". */
static void
test_expired_exhausted(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_job		*job;
	char			 buf[64];
	int64_t			 id = 0, n = 0;

	o.max_attempts = 1;
	TU_RC(spool_enqueue(&id, tu_q, "q", "x", 1, &o), SPOOL_OK);
	if ((job = claim(tu_q, "q", 1000, NULL)) == NULL)
		return;
	spool_job_free(job);
	tu_advance(1001);
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, id,
	    "state || '/' || dead_reason"), "dead/exhausted");
	CU_ASSERT_EQUAL(tu_task_int(id, "finished_ms"), tu_now);
	CU_ASSERT_EQUAL(tu_task_int(id, "lease_token IS NULL"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts "
	    "WHERE outcome = 'lease_lost'"), 1);
}

/* A running task whose cancellation was asked for is cancelled when its
 * lease is reaped. */
static void
test_expired_cancelled(void)
{
	spool_job	*job;
	char		 buf[64];
	int64_t		 id, n = 0;
	int		 running = 0;

	id = tu_enqueue("q", "x");
	if ((job = claim(tu_q, "q", 1000, NULL)) == NULL)
		return;
	spool_job_free(job);
	TU_RC(spool_cancel(&running, tu_q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(running, 1);
	tu_advance(1001);
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, id, "state"),
	    "cancelled");
	CU_ASSERT_EQUAL(tu_task_int(id, "dead_reason IS NULL"), 1);
	CU_ASSERT_EQUAL(tu_task_int(id, "finished_ms"), tu_now);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts "
	    "WHERE outcome = 'lease_lost'"), 1);
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_EEMPTY);
}

/* Leases that have not ended are left exactly as they were. */
static void
test_unexpired_untouched(void)
{
	spool_job	*a, *b;
	int64_t		 ida, idb, until, n = -1;
	char		 sql[128];

	ida = tu_enqueue("q", "a");
	idb = tu_enqueue("q", "b");
	if ((a = claim(tu_q, "q", 1000, NULL)) == NULL)
		return;
	if ((b = claim(tu_q, "q", 5000, NULL)) == NULL) {
		spool_job_free(a);
		return;
	}
	until = tu_now + 5000;
	tu_advance(2000);
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(tu_task_int(ida, "state = 'ready'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(idb, "state = 'running'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(idb, "lease_until_ms"), until);
	snprintf(sql, sizeof sql, "SELECT lease_token = %lld FROM tasks "
	    "WHERE id = %lld", (long long)b->token, (long long)idb);
	CU_ASSERT_EQUAL(tu_sql_int(sql), 1);
	TU_RC(spool_job_complete(b, NULL, 0), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts "
	    "WHERE outcome = 'lease_lost'"), 1);
	spool_job_free(a);
	spool_job_free(b);
}

/* One spool_reap returns every expired lease, however many batches of
 * SPOOL_BATCH_ROWS that takes. */
static void
test_many_expired(void)
{
	spool_claim_opts	 co = SPOOL_CLAIM_OPTS_INIT;
	spool_job		**jobs;
	const char		*q = "q";
	size_t			 n = 0, i, total = 1200;
	int64_t			 reaped = 0;

	CU_ASSERT(total > 2 * SPOOL_BATCH_ROWS);
	tu_fixed_backoff("q", 0);
	enqueue_n("q", total, NULL);
	if ((jobs = calloc(total, sizeof *jobs)) == NULL) {
		CU_FAIL("calloc");
		return;
	}
	co.lease_ms = 1000;
	TU_RC(spool_claim_many(jobs, &n, tu_q, &q, 1, total, &co), SPOOL_OK);
	CU_ASSERT_EQUAL(n, total);
	for (i = 0; i < n; i++)
		spool_job_free(jobs[i]);
	free(jobs);
	tu_advance(1001);
	TU_RC(spool_reap(&reaped, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(reaped, (int64_t)total);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE state = 'running'"), 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE state = 'ready' AND attempts = 1"), (int64_t)total);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts "
	    "WHERE outcome = 'lease_lost'"), (int64_t)total);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(DISTINCT task_id) "
	    "FROM attempts"), (int64_t)total);
}

/* Ready tasks past their deadline become dead "expired"; others stay. */
static void
test_deadlines(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	char			 buf[64];
	int64_t			 keep, later, n = 0;

	o.deadline_ms = tu_now + 1000;
	enqueue_n("q", 3, &o);
	keep = tu_enqueue("q", "no deadline");
	o.deadline_ms = tu_now + 5000;
	TU_RC(spool_enqueue(&later, tu_q, "q", "later", 5, &o), SPOOL_OK);
	tu_advance(1001);
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE "
	    "state = 'dead' AND dead_reason = 'expired' AND finished_ms = "
	    "(SELECT max(finished_ms) FROM tasks) AND attempts = 0"), 3);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, keep, "state"),
	    "ready");
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, later, "state"),
	    "ready");
	CU_ASSERT_EQUAL(tu_sql_int("SELECT max(finished_ms) FROM tasks"),
	    tu_now);
	/* Expiry is no attempt. */
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts"), 0);
	tu_advance(4000);
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, later,
	    "dead_reason"), "expired");
}

/* More than SPOOL_BATCH_ROWS expired deadlines are all handled by one
 * spool_reap, which finds them through the tasks_deadline index. */
static void
test_many_deadlines(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	sqlite3_stmt		*st;
	char			 sql[2048], plan[2048] = "";
	const char		*detail;
	size_t			 used;
	int64_t			 n = 0;

	o.deadline_ms = tu_now + 10;
	enqueue_n("q", 2 * SPOOL_BATCH_ROWS + 100, &o);
	tu_advance(11);
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2 * SPOOL_BATCH_ROWS + 100);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE state = 'ready'"), 0);

	snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s",
	    spool__sql_text[SPOOL_SQL_EXPIRE_DEADLINES]);
	CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(tu_q->db, sql, -1, &st, NULL),
	    SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		detail = (const char *)sqlite3_column_text(st, 3);
		used = strlen(plan);
		snprintf(plan + used, sizeof plan - used, "%s\n",
		    detail != NULL ? detail : "");
	}
	sqlite3_finalize(st);
	if (strstr(plan, "tasks_deadline") == NULL)
		fprintf(stderr, "\nexpire plan:\n%s", plan);
	CU_ASSERT(strstr(plan, "tasks_deadline") != NULL);
}

/* The first claim on a fresh handle reaps: a lease that expired under
 * another handle is claimed again at once. */
static void
test_claim_reaps(void)
{
	spool		*q2;
	spool_job	*old, *job;
	int64_t		 id;

	tu_fixed_backoff("q", 0);
	id = tu_enqueue("q", "x");
	if ((old = claim(tu_q, "q", 1000, "first")) == NULL)
		return;
	tu_advance(1001);
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'running'"), 1);
	if ((q2 = tu_open(tu_db, 0)) == NULL) {
		spool_job_free(old);
		return;
	}
	if ((job = claim(q2, "q", 1000, "second")) != NULL) {
		CU_ASSERT_EQUAL(spool_job_id(job), id);
		CU_ASSERT_EQUAL(spool_job_attempt(job), 2);
		CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts "
		    "WHERE outcome = 'lease_lost' AND worker = 'first'"), 1);
		TU_RC(spool_job_complete(job, NULL, 0), SPOOL_OK);
		spool_job_free(job);
	}
	/* And later claims on it reap again once time has passed. */
	id = tu_enqueue("q", "y");
	spool_job_free(old);
	if ((old = claim(tu_q, "q", 500, "first")) == NULL)
		goto out;
	tu_advance(5000);
	if ((job = claim(q2, "q", 1000, "second")) != NULL) {
		CU_ASSERT_EQUAL(spool_job_id(job), id);
		spool_job_free(job);
	}
out:
	spool_job_free(old);
	spool_close(q2);
}

/* spool_reap with nothing to do reports 0, and accepts a NULL count. */
static void
test_nothing(void)
{
	int64_t	 n = -1;

	tu_enqueue("q", "x");
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 0);
	TU_RC(spool_reap(NULL, tu_q), SPOOL_OK);
	TU_RC(spool_reap(&n, NULL), SPOOL_EINVAL);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE state = 'ready'"), 1);
}

/* A running task whose queue row was deleted by hand (the sqlite3 shell
 * runs without foreign keys) is still reaped, by the default policy. */
static void
test_reap_without_queue(void)
{
	spool_job	*job;
	int64_t		 id, n = 0;

	id = tu_enqueue("gone", "x");
	TU_RC(spool_claim(&job, tu_q, "gone", NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(sqlite3_exec(tu_q->db, "PRAGMA foreign_keys = OFF; "
	    "DELETE FROM queues WHERE name = 'gone'; PRAGMA foreign_keys = ON",
	    NULL, NULL, NULL), SQLITE_OK);
	tu_advance(31000);
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'ready'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts WHERE "
	    "outcome = 'lease_lost'"), 1);
	spool_job_free(job);
}

static CU_TestInfo reap_tests[] = {
	{ "a task whose queue row is gone", test_reap_without_queue },
	{ "expired lease: retried, lease_lost", test_expired_retried },
	{ "backoff grows with attempts", test_expired_backoff_grows },
	{ "expired lease on last attempt: exhausted", test_expired_exhausted },
	{ "expired lease, cancel asked: cancelled", test_expired_cancelled },
	{ "unexpired leases untouched", test_unexpired_untouched },
	{ "more than a batch of expired leases", test_many_expired },
	{ "deadlines expire ready tasks", test_deadlines },
	{ "more than a batch of deadlines, by index", test_many_deadlines },
	{ "claim reaps on first use of a handle", test_claim_reaps },
	{ "nothing to reap", test_nothing },
	{ "a stall is not an expiry", test_stall_not_expiry },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("reap", reap_tests));
}
