/*
 * t-fence.c -- the fencing contract (claim.c): once a job's lease is lost
 * (reaped and claimed again, cancelled and finished, deleted) every call
 * on it is SPOOL_ELEASE and changes nothing, while a lease that expired
 * but was not reaped is still honoured.  Also: the schema's CHECK
 * constraints refuse hand edits that break the life cycle.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define SNAP_MAX	2048

/* The ways a worker may touch a job. */
enum op { OP_HEARTBEAT, OP_COMPLETE, OP_FAIL, OP_RELEASE, OP__COUNT };

static const char *const op_names[OP__COUNT] = {
	"heartbeat", "complete", "fail", "release"
};

/* Do op on job. */
static int
job_op(spool_job *job, int op)
{
	switch (op) {
	case OP_HEARTBEAT:
		return (spool_job_heartbeat(job, 0));
	case OP_COMPLETE:
		return (spool_job_complete(job, "stale", 5));
	case OP_FAIL:
		return (spool_job_fail(job, "stale", 0));
	case OP_RELEASE:
		return (spool_job_release(job));
	}
	return (SPOOL_ERROR);
}

/* Everything a stale call could change: the task row (or "gone"), and
 * the number of rows of each table. */
static const char *
snapshot(char *buf, int64_t id)
{
	char	 sql[1024];

	snprintf(sql, sizeof sql,
	    "SELECT coalesce((SELECT quote(id) || ',' || quote(queue) || "
	    "',' || quote(state) || ',' || quote(priority) || ',' || "
	    "quote(payload) || ',' || quote(run_at_ms) || ',' || "
	    "quote(deadline_ms) || ',' || "
	    "quote(attempts) || ',' || quote(max_attempts) || ',' || "
	    "quote(idem_key) || ',' || quote(lease_owner) || ',' || "
	    "quote(lease_token) || ',' || quote(lease_until_ms) || ',' || "
	    "quote(cancel_requested) || ',' || quote(created_ms) || ',' || "
	    "quote(started_ms) || ',' || quote(finished_ms) || ',' || "
	    "quote(last_error) || ',' || quote(dead_reason) "
	    "FROM tasks WHERE id = %lld), 'gone') || '/' || "
	    "(SELECT count(*) FROM tasks) || '/' || "
	    "(SELECT count(*) FROM results) || '/' || "
	    "(SELECT count(*) FROM attempts)", (long long)id);
	return (tu_sql_text(buf, SNAP_MAX, sql));
}

/* Every call on the stale job is SPOOL_ELEASE, however often, and leaves
 * the database exactly as it was. */
static void
assert_stale(spool_job *job)
{
	char	 before[SNAP_MAX], after[SNAP_MAX];
	int	 op, round;

	snapshot(before, spool_job_id(job));
	CU_ASSERT(before[0] != '\0');
	for (round = 0; round < 2; round++)
		for (op = 0; op < OP__COUNT; op++) {
			TU_RC(job_op(job, op), SPOOL_ELEASE);
			CU_ASSERT_EQUAL(spool_errcode(tu_q), SPOOL_ELEASE);
			CU_ASSERT(tu_q->errmsg[0] != '\0');
			snapshot(after, spool_job_id(job));
			if (strcmp(before, after) != 0)
				fprintf(stderr, "\nstale %s changed the "
				    "database:\n  %s\n  %s\n", op_names[op],
				    before, after);
			CU_ASSERT_STRING_EQUAL(after, before);
		}
}

/* Create queue "q" with fixed backoff 0 (a reaped task is due at once)
 * and max_attempts attempts. */
static void
queue_setup(int max_attempts)
{
	spool_queue_opts	 o = SPOOL_QUEUE_OPTS_INIT;

	o.set = SPOOL_QUEUE_BACKOFF | SPOOL_QUEUE_BACKOFF_BASE |
	    SPOOL_QUEUE_BACKOFF_JITTER | SPOOL_QUEUE_MAX_ATTEMPTS;
	o.backoff = SPOOL_BACKOFF_FIXED;
	o.backoff_base_ms = 0;
	o.backoff_jitter = 0;
	o.max_attempts = max_attempts;
	TU_RC(spool_queue_create(tu_q, "q", &o), SPOOL_OK);
}

/* Claim one task of "q" on q with a 1000 ms lease. */
static spool_job *
claim_short(spool *q)
{
	spool_claim_opts	 co = SPOOL_CLAIM_OPTS_INIT;
	spool_job		*job = NULL;

	co.lease_ms = 1000;
	TU_RC(spool_claim(&job, q, "q", &co), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL(job);
	return (job);
}

/* Let job's lease expire and reap it; returns the number reaped. */
static int64_t
expire_and_reap(void)
{
	int64_t	 n = -1;

	tu_advance(1001);
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	return (n);
}

/* A job reaped and claimed again by another handle is stale: each of its
 * calls is SPOOL_ELEASE and changes nothing, while the new job completes
 * and exactly one result is stored. */
static void
test_reclaimed(void)
{
	spool		*q2;
	spool_job	*old, *new = NULL;
	char		 buf[64], sql[128];
	int64_t		 id;

	queue_setup(5);
	id = tu_enqueue("q", "x");
	if ((old = claim_short(tu_q)) == NULL)
		return;
	CU_ASSERT_EQUAL(expire_and_reap(), 1);
	if ((q2 = tu_open(tu_db, 0)) == NULL)
		return;
	new = claim_short(q2);
	if (new == NULL)
		goto out;
	CU_ASSERT_EQUAL(spool_job_id(new), id);
	CU_ASSERT_EQUAL(spool_job_attempt(new), 2);
	CU_ASSERT(new->token != old->token);
	snprintf(sql, sizeof sql, "SELECT lease_token = %lld FROM tasks",
	    (long long)new->token);
	CU_ASSERT_EQUAL(tu_sql_int(sql), 1);

	assert_stale(old);
	TU_RC(spool_job_heartbeat(new, 0), SPOOL_OK);
	TU_RC(spool_job_complete(new, "fresh", 5), SPOOL_OK);
	/* Still stale now the task has succeeded. */
	assert_stale(old);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM results"), 1);
	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf,
	    "SELECT output FROM results"), "fresh");
	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf,
	    "SELECT state FROM tasks"), "succeeded");
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts "
	    "WHERE outcome = 'lease_lost' AND attempt = 1"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts "
	    "WHERE outcome = 'succeeded' AND attempt = 2"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts"), 2);
out:
	spool_job_free(old);
	spool_job_free(new);
	spool_close(q2);
}

/* Each call, as the very first one on a freshly stale job, is refused
 * while the new holder runs, and the new holder is unaffected. */
static void
test_reclaimed_each_first(void)
{
	spool		*q2;
	spool_job	*old, *new;
	char		 buf[64];
	int		 op;

	queue_setup(10);
	if ((q2 = tu_open(tu_db, 0)) == NULL)
		return;
	for (op = 0; op < OP__COUNT; op++) {
		tu_enqueue("q", op_names[op]);
		if ((old = claim_short(tu_q)) == NULL)
			break;
		CU_ASSERT_EQUAL(expire_and_reap(), 1);
		if ((new = claim_short(q2)) == NULL) {
			spool_job_free(old);
			break;
		}
		CU_ASSERT_EQUAL(spool_job_id(new), spool_job_id(old));
		TU_RC(job_op(old, op), SPOOL_ELEASE);
		CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
		    "WHERE state = 'running'"), 1);
		TU_RC(spool_job_complete(new, op_names[op],
		    strlen(op_names[op])), SPOOL_OK);
		spool_job_free(old);
		spool_job_free(new);
	}
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE state = 'succeeded'"), OP__COUNT);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM results "
	    "WHERE output <> 'stale'"), OP__COUNT);
	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf,
	    "SELECT group_concat(outcome) FROM attempts WHERE outcome <> "
	    "'lease_lost' AND outcome <> 'succeeded'"), "");
	spool_close(q2);
}

/* A running task cancelled and then finished by the reaper leaves its
 * job stale. */
static void
test_cancelled(void)
{
	spool_job	*job;
	char		 buf[64];
	int64_t		 id;
	int		 running = 0;

	queue_setup(5);
	id = tu_enqueue("q", "x");
	if ((job = claim_short(tu_q)) == NULL)
		return;
	TU_RC(spool_cancel(&running, tu_q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(running, 1);
	/* Flagged only: the worker still holds the lease and is told. */
	TU_RC(spool_job_heartbeat(job, 0), SPOOL_OK);
	CU_ASSERT_EQUAL(spool_job_cancel_requested(job), 1);
	tu_advance(1001);
	TU_RC(spool_reap(NULL, tu_q), SPOOL_OK);
	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf,
	    "SELECT state FROM tasks"), "cancelled");
	assert_stale(job);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM results"), 0);
	spool_job_free(job);
}

/* A job whose row was deleted, by a purge after a reap or by a prune
 * after it died, is stale. */
static void
test_deleted(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_job		*job;
	int64_t			 n = 0;

	/* Purged: reaped back to ready, then every ready task deleted. */
	queue_setup(5);
	tu_enqueue("q", "x");
	if ((job = claim_short(tu_q)) == NULL)
		return;
	CU_ASSERT_EQUAL(expire_and_reap(), 1);
	TU_RC(spool_purge(&n, tu_q, "q", 0), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts"), 0);
	assert_stale(job);
	spool_job_free(job);

	/* Pruned: reaped on its last attempt (dead), then pruned. */
	o.max_attempts = 1;
	TU_RC(spool_enqueue(NULL, tu_q, "q", "y", 1, &o), SPOOL_OK);
	if ((job = claim_short(tu_q)) == NULL)
		return;
	CU_ASSERT_EQUAL(expire_and_reap(), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE "
	    "state = 'dead' AND dead_reason = 'exhausted'"), 1);
	tu_advance(1);
	TU_RC(spool_prune(&n, tu_q, "q", 0), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 0);
	assert_stale(job);
	spool_job_free(job);
}

/* A lease that expired but was not reaped is still honoured: heartbeat,
 * complete and fail all succeed, and the reaper leaves a renewed lease
 * alone. */
static void
test_expired_not_reaped(void)
{
	spool		*q2;
	spool_job	*a, *b = NULL;
	int64_t		 ida, idb, n = -1;
	char		 sql[128];

	queue_setup(5);
	ida = tu_enqueue("q", "a");
	idb = tu_enqueue("q", "b");
	if ((a = claim_short(tu_q)) == NULL)
		return;
	b = claim_short(tu_q);
	tu_advance(5000);
	/* Another handle that only reads does not take the lease away; it
	 * reads the task as expired (stored as running, not reaped), and
	 * stats count it so. */
	if ((q2 = tu_open(tu_db, 0)) != NULL) {
		spool_task_info		*t = NULL;
		spool_queue_stats	*qs = NULL;
		size_t			 nqs = 0;

		TU_RC(spool_task_get(&t, q2, ida), SPOOL_OK);
		if (t != NULL)
			CU_ASSERT_EQUAL(t->state, SPOOL_EXPIRED);
		spool_task_info_free(t, 1);
		TU_RC(spool_stats(&qs, &nqs, q2, "q"), SPOOL_OK);
		if (nqs == 1) {
			CU_ASSERT_EQUAL(qs->expired, b != NULL ? 2 : 1);
			CU_ASSERT_EQUAL(qs->running, 0);
			CU_ASSERT_EQUAL(qs->claimed, 0);
		}
		spool_queue_stats_free(qs, nqs);
		spool_close(q2);
	}
	TU_RC(spool_job_heartbeat(a, 0), SPOOL_OK);
	CU_ASSERT_EQUAL(spool_job_lease_until_ms(a), tu_now + 1000);
	snprintf(sql, sizeof sql, "SELECT lease_until_ms FROM tasks "
	    "WHERE id = %lld", (long long)ida);
	CU_ASSERT_EQUAL(tu_sql_int(sql), tu_now + 1000);
	if (b != NULL)
		TU_RC(spool_job_fail(b, "late but fine", 0), SPOOL_OK);
	TU_RC(spool_reap(&n, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 0);
	TU_RC(spool_job_complete(a, "ok", 2), SPOOL_OK);
	snprintf(sql, sizeof sql, "SELECT state = 'succeeded' FROM tasks "
	    "WHERE id = %lld", (long long)ida);
	CU_ASSERT_EQUAL(tu_sql_int(sql), 1);
	snprintf(sql, sizeof sql, "SELECT state = 'ready' AND attempts = 1 "
	    "FROM tasks WHERE id = %lld", (long long)idb);
	CU_ASSERT_EQUAL(tu_sql_int(sql), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts "
	    "WHERE outcome = 'lease_lost'"), 0);
	spool_job_free(a);
	spool_job_free(b);
}

/* Run sql on tu_q's connection; the SQLite result code. */
static int
exec(const char *sql)
{
	return (sqlite3_exec(tu_q->db, sql, NULL, NULL, NULL));
}

/* Run a hand edit that must be refused by a CHECK constraint. */
static void
assert_check_refuses(const char *sql)
{
	int	 rc = exec(sql);

	if (rc != SQLITE_CONSTRAINT_CHECK)
		fprintf(stderr, "\n%s: rc %d (%s)\n", sql, rc,
		    sqlite3_errmsg(tu_q->db));
	CU_ASSERT_EQUAL(rc, SQLITE_CONSTRAINT_CHECK);
}

/* Hand edits that break the life cycle are refused by the schema's CHECK
 * constraints and change nothing; a harmless edit goes through. */
static void
test_check_constraints(void)
{
	spool_job	*job = NULL;
	char		 before[SNAP_MAX], after[SNAP_MAX], sql[256];
	int64_t		 ready, running;

	running = tu_enqueue("q", "running");
	ready = tu_enqueue("q", "ready");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	CU_ASSERT(job != NULL && spool_job_id(job) == running);
	spool_job_free(job);
	snapshot(before, ready);

	snprintf(sql, sizeof sql, "UPDATE tasks SET state = 'running' "
	    "WHERE id = %lld", (long long)ready);
	assert_check_refuses(sql);
	snprintf(sql, sizeof sql, "UPDATE tasks SET attempts = -1 "
	    "WHERE id = %lld", (long long)ready);
	assert_check_refuses(sql);
	snprintf(sql, sizeof sql, "UPDATE tasks SET state = 'bogus' "
	    "WHERE id = %lld", (long long)ready);
	assert_check_refuses(sql);
	snprintf(sql, sizeof sql, "UPDATE tasks SET state = 'succeeded' "
	    "WHERE id = %lld", (long long)ready);
	assert_check_refuses(sql);
	snprintf(sql, sizeof sql, "UPDATE tasks SET state = 'dead', "
	    "finished_ms = 1 WHERE id = %lld", (long long)ready);
	assert_check_refuses(sql);
	snprintf(sql, sizeof sql, "UPDATE tasks SET lease_token = 1, "
	    "lease_until_ms = 1, lease_owner = 'x' WHERE id = %lld",
	    (long long)ready);
	assert_check_refuses(sql);
	snprintf(sql, sizeof sql, "UPDATE tasks SET max_attempts = 0 "
	    "WHERE id = %lld", (long long)ready);
	assert_check_refuses(sql);
	snprintf(sql, sizeof sql, "UPDATE tasks SET cancel_requested = 2 "
	    "WHERE id = %lld", (long long)ready);
	assert_check_refuses(sql);
	snprintf(sql, sizeof sql, "UPDATE tasks SET lease_token = NULL "
	    "WHERE id = %lld", (long long)running);
	assert_check_refuses(sql);
	assert_check_refuses("INSERT INTO tasks (queue, state, priority, "
	    "run_at_ms, max_attempts, created_ms) "
	    "VALUES ('q', 'running', 0, 0, 1, 0)");
	snprintf(sql, sizeof sql, "INSERT INTO attempts (task_id, attempt, "
	    "worker, started_ms, finished_ms, outcome) "
	    "VALUES (%lld, 1, 'w', 0, 0, 'bogus')", (long long)running);
	assert_check_refuses(sql);
	snapshot(after, ready);
	CU_ASSERT_STRING_EQUAL(after, before);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE "
	    "state = 'running' AND lease_token IS NOT NULL"), 1);

	/* The helper is not refusing everything. */
	snprintf(sql, sizeof sql, "UPDATE tasks SET priority = 3 "
	    "WHERE id = %lld", (long long)ready);
	CU_ASSERT_EQUAL(exec(sql), SQLITE_OK);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE priority = 3"), 1);
}

static CU_TestInfo fence_tests[] = {
	{ "reaped and reclaimed: stale job refused", test_reclaimed },
	{ "each call first on a stale job", test_reclaimed_each_first },
	{ "cancelled and finished: stale", test_cancelled },
	{ "deleted (purge, prune): stale", test_deleted },
	{ "expired but not reaped: honoured", test_expired_not_reaped },
	{ "CHECK constraints refuse bad edits", test_check_constraints },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("fence", fence_tests));
}
