/*
 * t-claim.c -- claims (claim.c): their order, due times, paused queues,
 * deadlines, bulk and multi-queue claims, leases and owners, the query
 * plan; then the outcomes of a job: release, complete, fail, heartbeat.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* Enqueue text with a priority (SPOOL_PRIORITY_DEFAULT for none) and a
 * run_at time (0 for now). */
static int64_t
enqueue_at(const char *queue, const char *text, int32_t prio, int64_t run_at)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	int64_t			 id = 0;

	o.priority = prio;
	o.run_at_ms = run_at;
	TU_RC(spool_enqueue(&id, tu_q, queue, text, strlen(text), &o),
	    SPOOL_OK);
	return (id);
}

/* Claim one task of queue and return its id (0 if none), completing it
 * so it does not come back. */
static int64_t
claim_id(const char *queue)
{
	spool_job	*job = NULL;
	int64_t		 id;

	if (spool_claim(&job, tu_q, queue, NULL) != SPOOL_OK)
		return (0);
	id = spool_job_id(job);
	TU_RC(spool_job_complete(job, NULL, 0), SPOOL_OK);
	spool_job_free(job);
	return (id);
}

/* Rows of attempts for task id with outcome. */
static int64_t
attempt_rows(int64_t id, const char *outcome)
{
	char	 sql[256];

	snprintf(sql, sizeof sql, "SELECT count(*) FROM attempts WHERE "
	    "task_id = %lld AND outcome = '%s'", (long long)id, outcome);
	return (tu_sql_int(sql));
}

/* Higher priority first, then the earlier run_at, then the lower id. */
static void
test_order(void)
{
	int64_t	 a, b, c, d, e, f;

	a = enqueue_at("q", "a", 0, 0);
	b = enqueue_at("q", "b", 5, 0);
	c = enqueue_at("q", "c", 5, tu_now - 1000);
	d = enqueue_at("q", "d", -1, tu_now - 99999);
	e = enqueue_at("q", "e", 2, tu_now - 10);
	f = enqueue_at("q", "f", 2, tu_now - 10);
	CU_ASSERT_EQUAL(claim_id("q"), c);
	CU_ASSERT_EQUAL(claim_id("q"), b);
	CU_ASSERT_EQUAL(claim_id("q"), e);
	CU_ASSERT_EQUAL(claim_id("q"), f);
	CU_ASSERT_EQUAL(claim_id("q"), a);
	CU_ASSERT_EQUAL(claim_id("q"), d);
	CU_ASSERT_EQUAL(claim_id("q"), 0);
}

/* A delayed task is not claimed before it is due and is claimed once the
 * clock reaches its run_at. */
static void
test_delay(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_job		*job = NULL;
	int64_t			 id = 0;

	o.delay_ms = 5000;
	TU_RC(spool_enqueue(&id, tu_q, "q", "x", 1, &o), SPOOL_OK);
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_EEMPTY);
	CU_ASSERT_PTR_NULL(job);
	tu_advance(4999);
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_EEMPTY);
	tu_advance(1);
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	CU_ASSERT_EQUAL(spool_job_id(job), id);
	spool_job_free(job);
}

/* A paused queue is never claimed from; it is again once unpaused. */
static void
test_paused(void)
{
	spool_queue_opts	 o = SPOOL_QUEUE_OPTS_INIT;
	spool_job		*jobs[4];
	const char		*qs[2] = { "p", "other" };
	size_t			 n = 9;
	int64_t			 id;

	id = tu_enqueue("p", "x");
	o.set = SPOOL_QUEUE_PAUSED;
	o.paused = 1;
	TU_RC(spool_queue_set(tu_q, "p", &o), SPOOL_OK);
	TU_RC(spool_claim(&jobs[0], tu_q, "p", NULL), SPOOL_EEMPTY);
	TU_RC(spool_claim_many(jobs, &n, tu_q, qs, 2, 4, NULL), SPOOL_EEMPTY);
	CU_ASSERT_EQUAL(n, 0);
	tu_advance(3600 * 1000);
	TU_RC(spool_claim(&jobs[0], tu_q, "p", NULL), SPOOL_EEMPTY);
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'ready' AND attempts = 0"), 1);
	o.paused = 0;
	TU_RC(spool_queue_set(tu_q, "p", &o), SPOOL_OK);
	TU_RC(spool_claim(&jobs[0], tu_q, "p", NULL), SPOOL_OK);
	if (jobs[0] == NULL)
		return;
	CU_ASSERT_EQUAL(spool_job_id(jobs[0]), id);
	spool_job_free(jobs[0]);
}

/* A task past its deadline is never claimed but dies "expired", and a
 * claim of N still returns N live tasks when expired ones are in front. */
static void
test_deadline(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_job		*jobs[3] = { NULL, NULL, NULL };
	spool_job		*none = NULL;
	char			 buf[64];
	int64_t			 dl[3], live[4];
	size_t			 n = 0, i;
	const char		*q = "q";

	/* Use up the handle's first reap, so the claim itself must notice
	 * the deadlines. */
	TU_RC(spool_claim(&none, tu_q, "warm-up", NULL), SPOOL_EEMPTY);
	o.priority = 10;
	o.deadline_ms = tu_now + 500;
	for (i = 0; i < 3; i++)
		TU_RC(spool_enqueue(&dl[i], tu_q, "q", "late", 4, &o),
		    SPOOL_OK);
	for (i = 0; i < 4; i++)
		live[i] = tu_enqueue("q", "live");
	tu_advance(600);
	TU_RC(spool_claim_many(jobs, &n, tu_q, &q, 1, 3, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 3);
	for (i = 0; i < n; i++)
		CU_ASSERT_EQUAL(spool_job_id(jobs[i]), live[i]);
	for (i = 0; i < 3; i++) {
		CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, dl[i],
		    "state || '/' || dead_reason"), "dead/expired");
		CU_ASSERT_EQUAL(tu_task_int(dl[i], "finished_ms"), tu_now);
		CU_ASSERT_EQUAL(tu_task_int(dl[i], "attempts"), 0);
	}
	CU_ASSERT_EQUAL(tu_task_int(live[3], "state = 'ready'"), 1);
	for (i = 0; i < n; i++)
		spool_job_free(jobs[i]);
	/* A deadline not yet reached does not stop a claim. */
	o.deadline_ms = tu_now + 1;
	TU_RC(spool_enqueue(&dl[0], tu_q, "q", "soon", 4, &o), SPOOL_OK);
	TU_RC(spool_claim(&jobs[0], tu_q, "q", NULL), SPOOL_OK);
	if (jobs[0] != NULL)
		CU_ASSERT_EQUAL(spool_job_id(jobs[0]), dl[0]);
	spool_job_free(jobs[0]);
}

/* A claim of N returns exactly min(N, due) tasks, each on attempt 1; the
 * tasks of one claim share its fresh lease token (an outcome names the
 * task and the token), and each claim draws a new one. */
static void
test_claim_many(void)
{
	spool_enqueue_opts	 later = SPOOL_ENQUEUE_OPTS_INIT;
	spool_job		*jobs[10];
	const char		*q = "q";
	size_t			 n = 0, i;

	for (i = 0; i < 5; i++)
		tu_enqueue("q", "due");
	later.delay_ms = 1000;
	TU_RC(spool_enqueue(NULL, tu_q, "q", "later", 5, &later), SPOOL_OK);
	TU_RC(spool_enqueue(NULL, tu_q, "q", "later", 5, &later), SPOOL_OK);

	TU_RC(spool_claim_many(jobs, &n, tu_q, &q, 1, 3, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE state = 'running'"), 3);
	for (i = 0; i < n; i++)
		spool_job_free(jobs[i]);

	TU_RC(spool_claim_many(jobs, &n, tu_q, &q, 1, 10, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2);
	tu_advance(1000);
	for (i = 0; i < n; i++)
		spool_job_free(jobs[i]);
	TU_RC(spool_claim_many(jobs, &n, tu_q, &q, 1, 10, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2);
	for (i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(spool_job_attempt(jobs[i]), 1);
		CU_ASSERT_EQUAL(spool_job_max_attempts(jobs[i]), 5);
		spool_job_free(jobs[i]);
	}
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE state = 'running' AND attempts = 1"), 7);
	/* Three claims, three tokens: 3 tasks, 2, then 2. */
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(DISTINCT lease_token) "
	    "FROM tasks WHERE state = 'running'"), 3);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT group_concat(n, '') FROM (SELECT "
	    "count(*) AS n FROM tasks WHERE state = 'running' GROUP BY "
	    "lease_token ORDER BY min(id))"), 322);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE "
	    "lease_token IS NULL OR lease_token <= 0"), 0);
}

/* A claim over several queues merges them by priority, skipping paused
 * queues and unknown ones. */
static void
test_multi_queue(void)
{
	spool_queue_opts	 po = SPOOL_QUEUE_OPTS_INIT;
	spool_job		*jobs[4] = { NULL, NULL, NULL, NULL };
	const char		*qs[4] = { "a", "nosuch", "b", "paused" };
	int64_t			 a1, a3, b2, b4, p9;
	int64_t			 got[2];
	size_t			 n = 0, i;

	a1 = enqueue_at("a", "a1", 1, 0);
	a3 = enqueue_at("a", "a3", 3, 0);
	b2 = enqueue_at("b", "b2", 2, 0);
	b4 = enqueue_at("b", "b4", 4, 0);
	p9 = enqueue_at("paused", "p9", 9, 0);
	po.set = SPOOL_QUEUE_PAUSED;
	po.paused = 1;
	TU_RC(spool_queue_set(tu_q, "paused", &po), SPOOL_OK);

	TU_RC(spool_claim_many(jobs, &n, tu_q, qs, 4, 2, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2);
	for (i = 0; i < 2; i++) {
		got[i] = jobs[i] != NULL ? spool_job_id(jobs[i]) : 0;
		spool_job_free(jobs[i]);
	}
	CU_ASSERT((got[0] == b4 && got[1] == a3) ||
	    (got[0] == a3 && got[1] == b4));
	TU_RC(spool_claim_many(jobs, &n, tu_q, qs, 4, 4, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2);
	for (i = 0; i < 2; i++) {
		got[i] = jobs[i] != NULL ? spool_job_id(jobs[i]) : 0;
		spool_job_free(jobs[i]);
	}
	CU_ASSERT((got[0] == b2 && got[1] == a1) ||
	    (got[0] == a1 && got[1] == b2));
	CU_ASSERT_EQUAL(tu_task_int(p9, "state = 'ready'"), 1);
}

/* Scheduled tasks of a higher priority are skipped, not walked: with
 * 20,000 of them ahead of one due task, the claim takes the due task in
 * a bounded number of VM steps. */
static void
test_claim_skips_scheduled(void)
{
	spool_enqueue_opts	 later = SPOOL_ENQUEUE_OPTS_INIT;
	spool_task		*t;
	spool_job		*job;
	sqlite3_stmt		*lv, *cd;
	int64_t			 due, steps;
	size_t			 i, n = 20000;

	later.priority = 10;
	later.delay_ms = 7LL * 24 * 3600 * 1000;
	t = calloc(n, sizeof *t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < n; i++) {
		t[i].queue = "s";
		t[i].payload = "later";
		t[i].len = 5;
		t[i].opts = &later;
	}
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, n), SPOOL_OK);
	free(t);
	due = tu_enqueue("s", "now");
	tu_advance(1);
	lv = tu_q->stmt[SPOOL_SQL_CLAIM_LEVEL];
	cd = tu_q->stmt[SPOOL_SQL_CLAIM_CANDIDATES];
	(void)sqlite3_stmt_status(lv, SQLITE_STMTSTATUS_VM_STEP, 1);
	(void)sqlite3_stmt_status(cd, SQLITE_STMTSTATUS_VM_STEP, 1);
	TU_RC(spool_claim(&job, tu_q, "s", NULL), SPOOL_OK);
	steps = sqlite3_stmt_status(lv, SQLITE_STMTSTATUS_VM_STEP, 1) +
	    sqlite3_stmt_status(cd, SQLITE_STMTSTATUS_VM_STEP, 1);
	CU_ASSERT_EQUAL(spool_job_id(job), due);
	CU_ASSERT(steps < 2000);
	if (steps >= 2000)
		fprintf(stderr, "\nclaim took %lld VM steps\n", (long long)steps);
	spool_job_free(job);
}

/* A ready row with a NULL payload (a hand edit) is claimed with an empty
 * payload instead of blocking its queue. */
static void
test_null_payload(void)
{
	spool_job	*job;
	size_t		 len = 9;

	tu_enqueue("n", "x");
	CU_ASSERT_EQUAL(sqlite3_exec(tu_q->db, "UPDATE tasks SET payload = NULL",
	    NULL, NULL, NULL), SQLITE_OK);
	TU_RC(spool_claim(&job, tu_q, "n", NULL), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL(spool_job_payload(job, &len));
	CU_ASSERT_EQUAL(len, 0);
	TU_RC(spool_job_complete(job, NULL, 0), SPOOL_OK);
	spool_job_free(job);
}

/* A queue named twice in one claim counts once: the claim still fills up
 * to max from it. */
static void
test_repeated_queue(void)
{
	spool_job	*jobs[4] = { NULL, NULL, NULL, NULL };
	const char	*qs[2] = { "a", "a" };
	size_t		 n = 0, i;

	for (i = 0; i < 10; i++)
		tu_enqueue("a", "x");
	TU_RC(spool_claim_many(jobs, &n, tu_q, qs, 2, 4, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 4);
	for (i = 0; i < n; i++)
		spool_job_free(jobs[i]);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE state = 'running'"), 4);
}

/* Nothing due, or an unknown queue, is SPOOL_EEMPTY with n_out 0. */
static void
test_empty(void)
{
	spool_enqueue_opts	 later = SPOOL_ENQUEUE_OPTS_INIT;
	spool_job		*jobs[2] = { NULL, NULL };
	const char		*q = "q";
	size_t			 n = 7;

	TU_RC(spool_claim_many(jobs, &n, tu_q, &q, 1, 2, NULL), SPOOL_EEMPTY);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_PTR_NULL(jobs[0]);
	later.delay_ms = 10;
	TU_RC(spool_enqueue(NULL, tu_q, "q", "x", 1, &later), SPOOL_OK);
	n = 7;
	TU_RC(spool_claim_many(jobs, &n, tu_q, &q, 1, 2, NULL), SPOOL_EEMPTY);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(spool_errcode(tu_q), SPOOL_EEMPTY);
	TU_RC(spool_claim(&jobs[0], tu_q, "nosuch", NULL), SPOOL_EEMPTY);
	CU_ASSERT_PTR_NULL(jobs[0]);
	/* Looking did not create the queue. */
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM queues "
	    "WHERE name = 'nosuch'"), 0);
}

/* The lease ends at now + the queue's lease, or + opts lease_ms. */
static void
test_lease_length(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_claim_opts	 co = SPOOL_CLAIM_OPTS_INIT;
	spool_job		*job = NULL;
	int64_t			 a, b, c;

	a = tu_enqueue("dflt", "a");
	qo.set = SPOOL_QUEUE_LEASE;
	qo.lease_ms = 45000;
	TU_RC(spool_queue_create(tu_q, "q", &qo), SPOOL_OK);
	b = tu_enqueue("q", "b");
	c = tu_enqueue("q", "c");

	TU_RC(spool_claim(&job, tu_q, "dflt", NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_task_int(a, "lease_until_ms"), tu_now + 30000);
	spool_job_free(job);
	tu_advance(10);
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	CU_ASSERT_EQUAL(spool_job_id(job), b);
	CU_ASSERT_EQUAL(tu_task_int(b, "lease_until_ms"), tu_now + 45000);
	CU_ASSERT_EQUAL(spool_job_lease_until_ms(job), tu_now + 45000);
	CU_ASSERT_EQUAL(tu_task_int(b, "started_ms"), tu_now);
	spool_job_free(job);
	co.lease_ms = 2500;
	TU_RC(spool_claim(&job, tu_q, "q", &co), SPOOL_OK);
	if (job == NULL)
		return;
	CU_ASSERT_EQUAL(spool_job_id(job), c);
	CU_ASSERT_EQUAL(tu_task_int(c, "lease_until_ms"), tu_now + 2500);
	CU_ASSERT_EQUAL(spool_job_lease_until_ms(job), tu_now + 2500);
	spool_job_free(job);
}

/* One claim over queues of different lease lengths gives each task its
 * own queue's lease (one UPDATE per length), in claim order. */
static void
test_lease_mixed(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_enqueue_opts	 hi = SPOOL_ENQUEUE_OPTS_INIT;
	const char		*qs[] = { "short", "long" };
	spool_job		*jobs[4] = { NULL, NULL, NULL, NULL };
	int64_t			 s1, s2, l1;
	size_t			 n = 0, i;

	qo.set = SPOOL_QUEUE_LEASE;
	qo.lease_ms = 1000;
	TU_RC(spool_queue_create(tu_q, "short", &qo), SPOOL_OK);
	qo.lease_ms = 90000;
	TU_RC(spool_queue_create(tu_q, "long", &qo), SPOOL_OK);
	s1 = tu_enqueue("short", "s1");
	hi.priority = 5;
	TU_RC(spool_enqueue(&l1, tu_q, "long", "l1", 2, &hi), SPOOL_OK);
	s2 = tu_enqueue("short", "s2");

	TU_RC(spool_claim_many(jobs, &n, tu_q, qs, 2, 4, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_EQUAL(spool_job_id(jobs[0]), l1);
	CU_ASSERT_EQUAL(spool_job_id(jobs[1]), s1);
	CU_ASSERT_EQUAL(spool_job_id(jobs[2]), s2);
	CU_ASSERT_EQUAL(spool_job_lease_until_ms(jobs[0]), tu_now + 90000);
	CU_ASSERT_EQUAL(spool_job_lease_until_ms(jobs[1]), tu_now + 1000);
	CU_ASSERT_EQUAL(spool_job_lease_until_ms(jobs[2]), tu_now + 1000);
	CU_ASSERT_EQUAL(tu_task_int(l1, "lease_until_ms"), tu_now + 90000);
	CU_ASSERT_EQUAL(tu_task_int(s1, "lease_until_ms"), tu_now + 1000);
	CU_ASSERT_EQUAL(tu_task_int(s2, "lease_until_ms"), tu_now + 1000);
	CU_ASSERT_EQUAL(tu_task_int(l1, "attempts"), 1);
	/* Each job's outcome is accepted under the token it carries. */
	for (i = 0; i < n; i++) {
		TU_RC(spool_job_complete(jobs[i], "ok", 2), SPOOL_OK);
		spool_job_free(jobs[i]);
	}
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE state = "
	    "'succeeded'"), 3);
}

/* The lease owner is "host:pid" by default, or opts->owner; the attempt
 * history names the same worker. */
static void
test_owner(void)
{
	spool_claim_opts	 co = SPOOL_CLAIM_OPTS_INIT;
	spool_job		*job = NULL;
	char			 host[128], want[300], buf[300], sql[128];
	int64_t			 a, b;

	if (gethostname(host, sizeof host) != 0)
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	snprintf(want, sizeof want, "%s:%ld", host, (long)getpid());
	a = tu_enqueue("q", "a");
	b = tu_enqueue("q", "b");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, a, "lease_owner"),
	    want);
	TU_RC(spool_job_complete(job, NULL, 0), SPOOL_OK);
	spool_job_free(job);
	snprintf(sql, sizeof sql, "SELECT worker FROM attempts "
	    "WHERE task_id = %lld", (long long)a);
	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf, sql), want);

	co.owner = "worker-7";
	TU_RC(spool_claim(&job, tu_q, "q", &co), SPOOL_OK);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, b, "lease_owner"),
	    "worker-7");
	spool_job_free(job);
}

/* The candidate query walks the tasks_ready partial index in claim order,
 * without a sort. */
static void
test_query_plan(void)
{
	sqlite3_stmt	*st;
	char		 sql[2048], plan[2048] = "";
	const char	*detail;
	size_t		 used;

	snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s",
	    spool__sql_text[SPOOL_SQL_CLAIM_CANDIDATES]);
	CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(tu_q->db, sql, -1, &st, NULL),
	    SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		detail = (const char *)sqlite3_column_text(st, 3);
		used = strlen(plan);
		snprintf(plan + used, sizeof plan - used, "%s\n",
		    detail != NULL ? detail : "");
	}
	sqlite3_finalize(st);
	if (getenv("TU_VERBOSE") != NULL ||
	    strstr(plan, "tasks_ready") == NULL ||
	    strstr(plan, "TEMP B-TREE") != NULL)
		fprintf(stderr, "\nclaim plan:\n%s", plan);
	CU_ASSERT(plan[0] != '\0');
	CU_ASSERT(strstr(plan, "tasks_ready") != NULL);
	CU_ASSERT(strstr(plan, "TEMP B-TREE") == NULL);
}

/* Release hands the task back: ready, attempt not charged, no history. */
static void
test_release(void)
{
	spool_job	*job = NULL;
	int64_t		 id;

	id = tu_enqueue("q", "x");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	CU_ASSERT_EQUAL(tu_task_int(id, "attempts"), 1);
	TU_RC(spool_job_release(job), SPOOL_OK);
	spool_job_free(job);
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'ready'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(id, "attempts"), 0);
	CU_ASSERT_EQUAL(tu_task_int(id, "lease_token IS NULL AND lease_owner IS "
	    "NULL AND lease_until_ms IS NULL AND started_ms IS NULL"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts"), 0);
	/* Claimable again at once, still on attempt 1. */
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	CU_ASSERT_EQUAL(spool_job_attempt(job), 1);
	spool_job_free(job);
}

/* Complete: succeeded, the result bytes stored, one 'succeeded' attempt
 * with its duration. */
static void
test_complete(void)
{
	static const char	 res[] = "out\0put\xff";
	spool_task_info		*t = NULL;
	spool_job		*job = NULL;
	char			 buf[64];
	int64_t			 id, t0;

	id = tu_enqueue("q", "x");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	t0 = tu_now;
	tu_advance(250);
	TU_RC(spool_job_complete(job, res, sizeof res - 1), SPOOL_OK);
	spool_job_free(job);
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'succeeded'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(id, "finished_ms"), tu_now);
	CU_ASSERT_EQUAL(tu_task_int(id, "lease_token IS NULL"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM results"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT length(output) FROM results"),
	    (int64_t)sizeof res - 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT duration_ms FROM results"), 250);
	CU_ASSERT_EQUAL(attempt_rows(id, "succeeded"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT started_ms FROM attempts"), t0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT finished_ms FROM attempts"), tu_now);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT attempt FROM attempts"), 1);
	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf,
	    "SELECT coalesce(error, 'null') FROM attempts"), "null");
	TU_RC(spool_task_get(&t, tu_q, id), SPOOL_OK);
	if (t == NULL)
		return;
	CU_ASSERT_EQUAL(t->has_result, 1);
	CU_ASSERT(t->result_len == sizeof res - 1 &&
	    memcmp(t->result, res, sizeof res - 1) == 0);
	CU_ASSERT_EQUAL(t->duration_ms, 250);
	spool_task_info_free(t, 1);
}

/* A failed attempt is retried after exactly the fixed backoff, with the
 * error kept on the task and in the history. */
static void
test_fail_retry(void)
{
	spool_job	*job = NULL;
	char		 buf[64], sql[128];
	int64_t		 id;

	tu_fixed_backoff("q", 7000);
	id = tu_enqueue("q", "x");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	tu_advance(100);
	TU_RC(spool_job_fail(job, "boom", 0), SPOOL_OK);
	spool_job_free(job);
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'ready'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(id, "run_at_ms"), tu_now + 7000);
	CU_ASSERT_EQUAL(tu_task_int(id, "attempts"), 1);
	CU_ASSERT_EQUAL(tu_task_int(id, "lease_token IS NULL"), 1);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, id, "last_error"),
	    "boom");
	CU_ASSERT_EQUAL(attempt_rows(id, "failed"), 1);
	snprintf(sql, sizeof sql, "SELECT error FROM attempts WHERE "
	    "task_id = %lld", (long long)id);
	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf, sql), "boom");

	tu_advance(6999);
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_EEMPTY);
	tu_advance(1);
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	CU_ASSERT_EQUAL(spool_job_attempt(job), 2);
	spool_job_free(job);
}

/* The last allowed attempt failing makes the task dead "exhausted". */
static void
test_fail_exhausted(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_job		*job = NULL;
	char			 buf[64];
	int64_t			 id = 0;
	int			 i;

	tu_fixed_backoff("q", 0);
	o.max_attempts = 3;
	TU_RC(spool_enqueue(&id, tu_q, "q", "x", 1, &o), SPOOL_OK);
	for (i = 1; i <= 3; i++) {
		TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
		if (job == NULL)
			return;
		CU_ASSERT_EQUAL(spool_job_attempt(job), i);
		snprintf(buf, sizeof buf, "e%d", i);
		TU_RC(spool_job_fail(job, buf, 0), SPOOL_OK);
		spool_job_free(job);
		CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, id, "state"),
		    i < 3 ? "ready" : "dead");
	}
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, id, "dead_reason"),
	    "exhausted");
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, id, "last_error"),
	    "e3");
	CU_ASSERT_EQUAL(tu_task_int(id, "finished_ms"), tu_now);
	CU_ASSERT_EQUAL(attempt_rows(id, "failed"), 3);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(DISTINCT attempt) "
	    "FROM attempts"), 3);
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_EEMPTY);
}

/* SPOOL_FAIL_PERMANENT makes the task dead "failed" at once. */
static void
test_fail_permanent(void)
{
	spool_job	*job = NULL;
	char		 buf[64];
	int64_t		 id;

	tu_fixed_backoff("q", 0);
	id = tu_enqueue("q", "x");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	TU_RC(spool_job_fail(job, "bad input", SPOOL_FAIL_PERMANENT), SPOOL_OK);
	spool_job_free(job);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, id,
	    "state || '/' || dead_reason || '/' || attempts"), "dead/failed/1");
	CU_ASSERT_EQUAL(attempt_rows(id, "failed"), 1);
	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf,
	    "SELECT error FROM attempts"), "bad input");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_EEMPTY);
	/* Unknown flags are refused. */
	id = tu_enqueue("q", "y");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	TU_RC(spool_job_fail(job, "x", 0x80), SPOOL_EINVAL);
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'running'"), 1);
	spool_job_free(job);
}

/* Fail with a NULL error still records the attempt with some text. */
static void
test_fail_null_error(void)
{
	spool_job	*job = NULL;
	int64_t		 id;

	tu_fixed_backoff("q", 0);
	id = tu_enqueue("q", "x");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	TU_RC(spool_job_fail(job, NULL, 0), SPOOL_OK);
	spool_job_free(job);
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'ready'"), 1);
	CU_ASSERT_EQUAL(attempt_rows(id, "failed"), 1);
}

/* Fail job (claimed from "q") with error and check the stored texts are
 * a prefix of it, at most SPOOL_ERROR_MAX bytes and at least min bytes. */
static void
check_cut(const char *error, int flags, int64_t min)
{
	spool_job	*job = NULL;
	char		 sql[256];
	int64_t		 id;

	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	id = spool_job_id(job);
	TU_RC(spool_job_fail(job, error, flags), SPOOL_OK);
	spool_job_free(job);
	snprintf(sql, sizeof sql, "SELECT length(CAST(last_error AS BLOB)) "
	    "FROM tasks WHERE id = %lld", (long long)id);
	CU_ASSERT(tu_sql_int(sql) <= SPOOL_ERROR_MAX);
	CU_ASSERT(tu_sql_int(sql) >= min);
	snprintf(sql, sizeof sql, "SELECT length(CAST(error AS BLOB)) "
	    "FROM attempts WHERE task_id = %lld", (long long)id);
	CU_ASSERT(tu_sql_int(sql) <= SPOOL_ERROR_MAX);
	CU_ASSERT(tu_sql_int(sql) >= min);
	/* What is kept is the start of the text, and still valid text. */
	{
		sqlite3_stmt	*st;
		const void	*p;
		int		 n;

		snprintf(sql, sizeof sql, "SELECT last_error, "
		    "typeof(last_error) = 'text' FROM tasks WHERE id = %lld",
		    (long long)id);
		if (sqlite3_prepare_v2(tu_q->db, sql, -1, &st, NULL) !=
		    SQLITE_OK) {
			CU_FAIL("prepare");
			return;
		}
		CU_ASSERT_EQUAL(sqlite3_step(st), SQLITE_ROW);
		p = sqlite3_column_blob(st, 0);
		n = sqlite3_column_bytes(st, 0);
		CU_ASSERT(p != NULL && memcmp(p, error, (size_t)n) == 0);
		CU_ASSERT_EQUAL(sqlite3_column_int(st, 1), 1);
		CU_ASSERT(utf8_valid(p, (size_t)n));
		sqlite3_finalize(st);
	}
}

/* Error text longer than SPOOL_ERROR_MAX is cut to at most that many
 * bytes, never inside a UTF-8 character, on retry and on death. */
static void
test_error_cut(void)
{
	char	*ascii, *euro;
	size_t	 i;

	tu_fixed_backoff("q", 0);
	tu_enqueue("q", "a");
	tu_enqueue("q", "b");
	tu_enqueue("q", "c");
	ascii = malloc(3 * SPOOL_ERROR_MAX);
	euro = malloc(3 * SPOOL_ERROR_MAX + 1);
	if (ascii == NULL || euro == NULL) {
		CU_FAIL("malloc");
		free(ascii);
		free(euro);
		return;
	}
	memset(ascii, 'e', 3 * SPOOL_ERROR_MAX - 1);
	ascii[3 * SPOOL_ERROR_MAX - 1] = '\0';
	for (i = 0; i < SPOOL_ERROR_MAX; i++)
		memcpy(euro + 3 * i, "\xe2\x82\xac", 3);
	euro[3 * SPOOL_ERROR_MAX] = '\0';
	check_cut(ascii, 0, SPOOL_ERROR_MAX);
	check_cut(euro, 0, SPOOL_ERROR_MAX - 2);
	check_cut(ascii, SPOOL_FAIL_PERMANENT, SPOOL_ERROR_MAX);
	free(ascii);
	free(euro);
}

/* A heartbeat moves lease_until_ms to now + the lease (the claim's, or
 * the one given), in the row and in the job. */
static void
test_heartbeat(void)
{
	spool_claim_opts	 co = SPOOL_CLAIM_OPTS_INIT;
	spool_job		*job = NULL;
	int64_t			 id;

	id = tu_enqueue("q", "x");
	co.lease_ms = 1000;
	TU_RC(spool_claim(&job, tu_q, "q", &co), SPOOL_OK);
	if (job == NULL)
		return;
	tu_advance(600);
	TU_RC(spool_job_heartbeat(job, 0), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_task_int(id, "lease_until_ms"), tu_now + 1000);
	CU_ASSERT_EQUAL(spool_job_lease_until_ms(job), tu_now + 1000);
	tu_advance(600);
	TU_RC(spool_job_heartbeat(job, 60000), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_task_int(id, "lease_until_ms"), tu_now + 60000);
	CU_ASSERT_EQUAL(spool_job_lease_until_ms(job), tu_now + 60000);
	TU_RC(spool_job_heartbeat(job, -1), SPOOL_EINVAL);
	CU_ASSERT_EQUAL(tu_task_int(id, "lease_until_ms"), tu_now + 60000);
	/* A heartbeat charges no attempt and leaves the task running. */
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'running' AND attempts = 1"), 1);
	CU_ASSERT_EQUAL(spool_job_cancel_requested(job), 0);
	TU_RC(spool_job_complete(job, NULL, 0), SPOOL_OK);
	spool_job_free(job);
}

/* Once a job is finished every further call on it is SPOOL_EINVAL and
 * changes nothing. */
static void
test_finished_job(void)
{
	spool_job	*job = NULL;
	int64_t		 id;

	id = tu_enqueue("q", "x");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	TU_RC(spool_job_complete(job, "1", 1), SPOOL_OK);
	TU_RC(spool_job_complete(job, "2", 1), SPOOL_EINVAL);
	CU_ASSERT(tu_q->errmsg[0] != '\0');
	TU_RC(spool_job_fail(job, "x", 0), SPOOL_EINVAL);
	TU_RC(spool_job_release(job), SPOOL_EINVAL);
	TU_RC(spool_job_heartbeat(job, 0), SPOOL_EINVAL);
	spool_job_free(job);
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'succeeded'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM results"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM results "
	    "WHERE output = '1'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts"), 1);
	/* And bad arguments are refused up front. */
	tu_enqueue("q", "y");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	TU_RC(spool_job_complete(job, NULL, 3), SPOOL_EINVAL);
	TU_RC(spool_job_complete(job, "x", SPOOL_PAYLOAD_MAX + 1),
	    SPOOL_EINVAL);
	TU_RC(spool_job_complete(job, NULL, 0), SPOOL_OK);
	spool_job_free(job);
}

/* spool_job_set_result and spool_job_set_error are for a pool's handler:
 * on a job claimed with spool_claim they are SPOOL_EINVAL with a message
 * on its handle that names the call to use instead (issue 15), and the
 * job is as it was: it completes, with its own result. */
static void
test_pool_only_calls(void)
{
	spool_job	*job = NULL;
	int64_t		 id;

	id = tu_enqueue("q", "x");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	TU_RC(spool_job_set_result(job, "r", 1), SPOOL_EINVAL);
	TU_RC(spool_errcode(tu_q), SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q), "not claimed by a "
	    "pool"));
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q),
	    "spool_job_complete"));
	CU_ASSERT_PTR_NULL(strchr(spool_errmsg(tu_q), '\n'));
	TU_RC(spool_job_set_error(job, "e"), SPOOL_EINVAL);
	TU_RC(spool_errcode(tu_q), SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q), "not claimed by a "
	    "pool"));
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q), "spool_job_fail"));
	TU_RC(spool_job_complete(job, "done", 4), SPOOL_OK);
	spool_job_free(job);
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'succeeded'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM results "
	    "WHERE output = 'done'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts "
	    "WHERE error IS NOT NULL"), 0);
}

/* Bad claim arguments are SPOOL_EINVAL and claim nothing. */
static void
test_claim_bad_args(void)
{
	spool_claim_opts	 co = SPOOL_CLAIM_OPTS_INIT;
	spool_job		*jobs[2];
	const char		*q = "q";
	size_t			 n = 5;

	tu_enqueue("q", "x");
	TU_RC(spool_claim_many(jobs, &n, tu_q, &q, 1, 0, NULL), SPOOL_EINVAL);
	CU_ASSERT_EQUAL(n, 0);
	TU_RC(spool_claim_many(jobs, &n, tu_q, &q, 0, 1, NULL), SPOOL_EINVAL);
	TU_RC(spool_claim(&jobs[0], tu_q, "", NULL), SPOOL_EINVAL);
	co.version = 0;
	TU_RC(spool_claim(&jobs[0], tu_q, "q", &co), SPOOL_EINVAL);
	co = (spool_claim_opts)SPOOL_CLAIM_OPTS_INIT;
	co.lease_ms = -5;
	TU_RC(spool_claim(&jobs[0], tu_q, "q", &co), SPOOL_EINVAL);
	co = (spool_claim_opts)SPOOL_CLAIM_OPTS_INIT;
	co.owner = "";
	TU_RC(spool_claim(&jobs[0], tu_q, "q", &co), SPOOL_EINVAL);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE state = 'ready' AND attempts = 0"), 1);
}

/* Claim options of a version newer than the library knows are refused
 * with SPOOL_EINVAL and a message naming the struct and the version;
 * nothing is claimed (issue 15). */
static void
test_opts_version_unknown(void)
{
	spool_claim_opts	 o = SPOOL_CLAIM_OPTS_INIT;
	spool_job		*jobs[1] = { NULL };
	const char		*q = "q";
	size_t			 n = 5;

	tu_enqueue("q", "x");
	o.version = 99;
	TU_RC(spool_claim(&jobs[0], tu_q, "q", &o), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_claim_opts");
	CU_ASSERT_PTR_NULL(jobs[0]);
	TU_RC(spool_claim_many(jobs, &n, tu_q, &q, 1, 1, &o), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_claim_opts");
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE state = 'ready' AND attempts = 0"), 1);
	o.version = SPOOL_CLAIM_OPTS_VERSION;
	TU_RC(spool_claim(&jobs[0], tu_q, "q", &o), SPOOL_OK);
	spool_job_free(jobs[0]);
}

static CU_TestInfo claim_tests[] = {
	{ "priority, run_at, id order", test_order },
	{ "delayed task is claimed when due", test_delay },
	{ "paused queue", test_paused },
	{ "deadline passed: expired, not claimed", test_deadline },
	{ "claim N: min(N, due), distinct tokens", test_claim_many },
	{ "several queues merge by priority", test_multi_queue },
	{ "a queue named twice counts once", test_repeated_queue },
	{ "a NULL payload is an empty one", test_null_payload },
	{ "scheduled high-priority tasks are skipped", test_claim_skips_scheduled },
	{ "nothing due, unknown queue: EEMPTY", test_empty },
	{ "lease length: queue vs opts", test_lease_length },
	{ "one claim, queues of different leases", test_lease_mixed },
	{ "lease owner: default vs opts", test_owner },
	{ "claim query uses tasks_ready", test_query_plan },
	{ "release", test_release },
	{ "complete", test_complete },
	{ "fail: retry after fixed backoff", test_fail_retry },
	{ "fail: exhausted", test_fail_exhausted },
	{ "fail: permanent", test_fail_permanent },
	{ "fail: NULL error", test_fail_null_error },
	{ "fail: long error text is cut", test_error_cut },
	{ "heartbeat extends the lease", test_heartbeat },
	{ "finished job: later calls EINVAL", test_finished_job },
	{ "set_result, set_error: a pool job's only", test_pool_only_calls },
	{ "options of an unknown version", test_opts_version_unknown },
	{ "bad claim arguments", test_claim_bad_args },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("claim", claim_tests));
}
