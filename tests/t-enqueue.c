/*
 * t-enqueue.c -- adding tasks (queue.c): every enqueue option, payloads as
 * TEXT or BLOB, idempotency keys, queues created on first use, bulk
 * enqueue as all-or-nothing, depth limits, and the refusal of bad input.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Rows in tasks. */
static int64_t
count_tasks(void)
{
	return (tu_sql_int("SELECT count(*) FROM tasks"));
}

/* Enqueue with opts and return the id, asserting success. */
static int64_t
enqueue_opts(const char *queue, const char *text, const spool_enqueue_opts *o)
{
	int64_t	 id = 0;

	TU_RC(spool_enqueue(&id, tu_q, queue, text, strlen(text), o), SPOOL_OK);
	CU_ASSERT(id > 0);
	return (id);
}

/* Create queue name with the fields of o, asserting success. */
static void
queue_create(const char *name, const spool_queue_opts *o)
{
	TU_RC(spool_queue_create(tu_q, name, o), SPOOL_OK);
}

/* The last call failed with SPOOL_EINVAL, explained it, and left no task
 * and no queue behind. */
static void
assert_refused(int rc)
{
	TU_RC(rc, SPOOL_EINVAL);
	CU_ASSERT_EQUAL(spool_errcode(tu_q), SPOOL_EINVAL);
	CU_ASSERT(tu_q->errmsg[0] != '\0');
	CU_ASSERT(strlen(spool_errmsg(tu_q)) > 0);
	CU_ASSERT_EQUAL(count_tasks(), 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM queues"), 0);
}

/* A task takes the queue's priority by default and an explicit one,
 * including 0, when given. */
static void
test_priority(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	int64_t			 a, b, c, d;

	qo.set = SPOOL_QUEUE_PRIORITY;
	qo.priority = 7;
	queue_create("q", &qo);
	a = enqueue_opts("q", "a", NULL);
	b = enqueue_opts("q", "b", &o);
	o.priority = -3;
	c = enqueue_opts("q", "c", &o);
	o.priority = 0;
	d = enqueue_opts("q", "d", &o);
	CU_ASSERT_EQUAL(tu_task_int(a, "priority"), 7);
	CU_ASSERT_EQUAL(tu_task_int(b, "priority"), 7);
	CU_ASSERT_EQUAL(tu_task_int(c, "priority"), -3);
	CU_ASSERT_EQUAL(tu_task_int(d, "priority"), 0);
	/* A queue made by its first enqueue has priority 0. */
	a = enqueue_opts("fresh", "a", NULL);
	CU_ASSERT_EQUAL(tu_task_int(a, "priority"), 0);
}

/* Without timing options a task is due now; a delay and a run_at time
 * set run_at_ms exactly, a run_at in the past included. */
static void
test_delay_run_at(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	int64_t			 a, b, c, d;

	a = enqueue_opts("q", "a", NULL);
	o.delay_ms = 5000;
	b = enqueue_opts("q", "b", &o);
	o.delay_ms = 0;
	o.run_at_ms = tu_now + 123456;
	c = enqueue_opts("q", "c", &o);
	o.run_at_ms = tu_now - 1000;
	d = enqueue_opts("q", "d", &o);
	CU_ASSERT_EQUAL(tu_task_int(a, "run_at_ms"), tu_now);
	CU_ASSERT_EQUAL(tu_task_int(b, "run_at_ms"), tu_now + 5000);
	CU_ASSERT_EQUAL(tu_task_int(c, "run_at_ms"), tu_now + 123456);
	CU_ASSERT_EQUAL(tu_task_int(d, "run_at_ms"), tu_now - 1000);
	CU_ASSERT_EQUAL(tu_task_int(a, "created_ms"), tu_now);
	CU_ASSERT_EQUAL(tu_task_int(a, "state = 'ready'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(a, "attempts"), 0);
}

/* A deadline is stored as given; without one the column is NULL. */
static void
test_deadline(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	int64_t			 a, b, c;

	a = enqueue_opts("q", "a", NULL);
	o.deadline_ms = tu_now + 60000;
	b = enqueue_opts("q", "b", &o);
	/* A deadline equal to the due time would make the task dead at its
	 * first claim: refused.  One millisecond later is accepted. */
	o.delay_ms = 1000;
	o.deadline_ms = tu_now + 1000;
	TU_RC(spool_enqueue(&c, tu_q, "q", "c", 1, &o), SPOOL_EINVAL);
	o.deadline_ms = tu_now + 1001;
	c = enqueue_opts("q", "c", &o);
	CU_ASSERT_EQUAL(tu_task_int(a, "deadline_ms IS NULL"), 1);
	CU_ASSERT_EQUAL(tu_task_int(b, "deadline_ms"), tu_now + 60000);
	CU_ASSERT_EQUAL(tu_task_int(c, "deadline_ms"), tu_now + 1001);
}

/* max_attempts 0 takes the queue's (5 by default, or as configured), any
 * other value is kept. */
static void
test_max_attempts(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	int64_t			 a, b, c;

	a = enqueue_opts("plain", "a", NULL);
	qo.set = SPOOL_QUEUE_MAX_ATTEMPTS;
	qo.max_attempts = 9;
	queue_create("nine", &qo);
	b = enqueue_opts("nine", "b", &o);
	o.max_attempts = 2;
	c = enqueue_opts("nine", "c", &o);
	CU_ASSERT_EQUAL(tu_task_int(a, "max_attempts"), 5);
	CU_ASSERT_EQUAL(tu_task_int(b, "max_attempts"), 9);
	CU_ASSERT_EQUAL(tu_task_int(c, "max_attempts"), 2);
}

/* A key is stored in idem_key; a task without one has NULL. */
static void
test_key_stored(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	char			 buf[300];
	int64_t			 a, b;

	a = enqueue_opts("q", "a", NULL);
	o.key = "order-42";
	b = enqueue_opts("q", "b", &o);
	CU_ASSERT_EQUAL(tu_task_int(a, "idem_key IS NULL"), 1);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, b, "idem_key"),
	    "order-42");
}

/* Valid UTF-8 is stored as TEXT, so json_extract reads it, and comes back
 * byte for byte. */
static void
test_payload_text(void)
{
	const char	*json = "{\"a\":1,\"s\":\"h\xc3\xa9\"}";
	spool_task_info	*t = NULL;
	char		 buf[64];
	int64_t		 id;

	id = tu_enqueue("q", json);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, id,
	    "typeof(payload)"), "text");
	CU_ASSERT_EQUAL(tu_sql_int("SELECT json_extract(payload, '$.a') "
	    "FROM tasks"), 1);
	TU_RC(spool_task_get(&t, tu_q, id), SPOOL_OK);
	if (t == NULL)
		return;
	CU_ASSERT_EQUAL(t->payload_len, strlen(json));
	CU_ASSERT(memcmp(t->payload, json, strlen(json)) == 0);
	spool_task_info_free(t, 1);
}

/* Enqueue len bytes of p and check they are a BLOB read back exactly. */
static void
check_blob(const void *p, size_t len)
{
	spool_task_info	*t = NULL;
	spool_job	*job = NULL;
	const void	*jp;
	size_t		 jlen = 0;
	char		 buf[64];
	int64_t		 id = 0;

	TU_RC(spool_enqueue(&id, tu_q, "bin", p, len, NULL), SPOOL_OK);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, id,
	    "typeof(payload)"), "blob");
	CU_ASSERT_EQUAL(tu_task_int(id, "length(payload)"), (int64_t)len);
	TU_RC(spool_task_get(&t, tu_q, id), SPOOL_OK);
	if (t != NULL) {
		CU_ASSERT_EQUAL(t->payload_len, len);
		CU_ASSERT(t->payload_len == len &&
		    memcmp(t->payload, p, len) == 0);
		spool_task_info_free(t, 1);
	}
	/* A worker sees the same bytes. */
	TU_RC(spool_claim(&job, tu_q, "bin", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	CU_ASSERT_EQUAL(spool_job_id(job), id);
	jp = spool_job_payload(job, &jlen);
	CU_ASSERT(jlen == len && memcmp(jp, p, len) == 0);
	TU_RC(spool_job_complete(job, NULL, 0), SPOOL_OK);
	spool_job_free(job);
}

/* Binary payloads (an embedded NUL, invalid or overlong UTF-8, a lone
 * surrogate, every byte value) are BLOBs and round-trip byte-exact. */
static void
test_payload_binary(void)
{
	unsigned char	 all[256];
	int		 i;

	for (i = 0; i < 256; i++)
		all[i] = (unsigned char)(255 - i);
	check_blob("a\0b", 3);
	check_blob("\0", 1);
	check_blob("ok\xff\xfe", 4);
	check_blob("\xc0\x80", 2);
	check_blob("\xed\xa0\x80", 3);
	check_blob("trunc\xe2\x82", 7);
	check_blob(all, sizeof all);
	CU_ASSERT_EQUAL(count_tasks(), 7);
}

/* An empty payload, and one of exactly SPOOL_PAYLOAD_MAX bytes, are
 * accepted. */
static void
test_payload_limits(void)
{
	spool_task_info	*t = NULL;
	char		*big;
	int64_t		 id = 0;

	TU_RC(spool_enqueue(&id, tu_q, "q", NULL, 0, NULL), SPOOL_OK);
	TU_RC(spool_task_get(&t, tu_q, id), SPOOL_OK);
	if (t != NULL)
		CU_ASSERT_EQUAL(t->payload_len, 0);
	spool_task_info_free(t, 1);

	if ((big = malloc(SPOOL_PAYLOAD_MAX)) == NULL) {
		CU_FAIL("malloc");
		return;
	}
	memset(big, 'x', SPOOL_PAYLOAD_MAX);
	TU_RC(spool_enqueue(&id, tu_q, "q", big, SPOOL_PAYLOAD_MAX, NULL),
	    SPOOL_OK);
	CU_ASSERT_EQUAL(tu_task_int(id, "length(payload)"), SPOOL_PAYLOAD_MAX);
	free(big);
}

/* A key held by a ready or running task is refused with SPOOL_EEXISTS and
 * that task's id, and nothing is inserted. */
static void
test_key_unfinished(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_job		*job = NULL;
	int64_t			 first, id;

	o.key = "k";
	first = enqueue_opts("q", "one", &o);
	id = 0;
	TU_RC(spool_enqueue(&id, tu_q, "q", "two", 3, &o), SPOOL_EEXISTS);
	CU_ASSERT_EQUAL(id, first);
	CU_ASSERT(strstr(spool_errmsg(tu_q), "key") != NULL);
	CU_ASSERT_EQUAL(count_tasks(), 1);

	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_task_int(first, "state = 'running'"), 1);
	id = 0;
	TU_RC(spool_enqueue(&id, tu_q, "q", "three", 5, &o), SPOOL_EEXISTS);
	CU_ASSERT_EQUAL(id, first);
	CU_ASSERT_EQUAL(count_tasks(), 1);
	spool_job_free(job);
}

/* Once the task holding a key finished (well or badly) the key is free:
 * the next enqueue creates a new task. */
static void
test_key_after_finish(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_job		*job = NULL;
	int64_t			 first, second, third, id;

	o.key = "k";
	first = enqueue_opts("q", "one", &o);
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	TU_RC(spool_job_complete(job, "r", 1), SPOOL_OK);
	spool_job_free(job);
	second = enqueue_opts("q", "two", &o);
	CU_ASSERT(second != first);
	CU_ASSERT_EQUAL(count_tasks(), 2);
	/* The new holder is found by the next attempt. */
	id = 0;
	TU_RC(spool_enqueue(&id, tu_q, "q", "x", 1, &o), SPOOL_EEXISTS);
	CU_ASSERT_EQUAL(id, second);

	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	if (job == NULL)
		return;
	TU_RC(spool_job_fail(job, "no", SPOOL_FAIL_PERMANENT), SPOOL_OK);
	spool_job_free(job);
	third = enqueue_opts("q", "three", &o);
	CU_ASSERT(third != first && third != second);
	CU_ASSERT_EQUAL(count_tasks(), 3);
}

/* Keys are per queue: the same key in two queues makes two tasks. */
static void
test_key_per_queue(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	int64_t			 a, b;

	o.key = "same";
	a = enqueue_opts("a", "x", &o);
	b = enqueue_opts("b", "x", &o);
	CU_ASSERT(a != b);
	CU_ASSERT_EQUAL(count_tasks(), 2);
}

/* The first enqueue to an unknown queue creates it with the defaults. */
static void
test_queue_created(void)
{
	spool_queue_info	*qi = NULL;

	TU_RC(spool_queue_get(&qi, tu_q, "new"), SPOOL_ENOENT);
	CU_ASSERT_PTR_NULL(qi);
	tu_advance(77);
	tu_enqueue("new", "x");
	TU_RC(spool_queue_get(&qi, tu_q, "new"), SPOOL_OK);
	if (qi == NULL)
		return;
	CU_ASSERT_STRING_EQUAL(qi->name, "new");
	CU_ASSERT_EQUAL(qi->created_ms, tu_now);
	CU_ASSERT_EQUAL(qi->conf.paused, 0);
	CU_ASSERT_EQUAL(qi->conf.max_depth, 0);
	CU_ASSERT_EQUAL(qi->conf.priority, 0);
	CU_ASSERT_EQUAL(qi->conf.max_attempts, 5);
	CU_ASSERT_EQUAL(qi->conf.backoff, SPOOL_BACKOFF_EXPONENTIAL);
	CU_ASSERT_EQUAL(qi->conf.backoff_base_ms, 1000);
	CU_ASSERT_EQUAL(qi->conf.backoff_cap_ms, 3600000);
	CU_ASSERT_DOUBLE_EQUAL(qi->conf.backoff_jitter, 0.2, 1e-9);
	CU_ASSERT_EQUAL(qi->conf.lease_ms, 30000);
	CU_ASSERT_EQUAL(qi->conf.timeout_ms, 0);
	CU_ASSERT_EQUAL(qi->conf.retention_ms, 604800000LL);
	spool_queue_info_free(qi, 1);
	/* A second enqueue leaves the row alone. */
	tu_advance(5);
	tu_enqueue("new", "y");
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM queues"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT created_ms FROM queues"),
	    tu_now - 5);
}

/* Run sql on a connection of its own, as the sqlite3 shell would. */
static void
sql_elsewhere(const char *sql)
{
	sqlite3	*db;

	CU_ASSERT_EQUAL_FATAL(sqlite3_open(tu_db, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	CU_ASSERT_EQUAL(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/*
 * Enqueues on a handle that found the file as it left it reuse the
 * queue's settings they read before (store.c, spool__quiet); a change to
 * the queue is seen by the next enqueue wherever it was made: by another
 * handle, by another connection, by this handle, or on this handle's
 * connection outside spool's transactions.
 */
static void
test_queue_changes_seen(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool			*other;
	int64_t			 id;

	tu_enqueue("qc", "a");
	id = tu_enqueue("qc", "b");
	CU_ASSERT_EQUAL(tu_task_int(id, "priority"), 0);
	CU_ASSERT_EQUAL(tu_task_int(id, "max_attempts"), 5);

	other = tu_open(tu_db, 0);
	qo.set = SPOOL_QUEUE_PRIORITY | SPOOL_QUEUE_MAX_ATTEMPTS;
	qo.priority = 7;
	qo.max_attempts = 8;
	TU_RC(spool_queue_set(other, "qc", &qo), SPOOL_OK);
	spool_close(other);
	id = tu_enqueue("qc", "c");
	CU_ASSERT_EQUAL(tu_task_int(id, "priority"), 7);
	CU_ASSERT_EQUAL(tu_task_int(id, "max_attempts"), 8);

	sql_elsewhere("UPDATE queues SET priority = 3, max_attempts = 2 "
	    "WHERE name = 'qc'");
	id = tu_enqueue("qc", "d");
	CU_ASSERT_EQUAL(tu_task_int(id, "priority"), 3);
	CU_ASSERT_EQUAL(tu_task_int(id, "max_attempts"), 2);

	qo.priority = 5;
	qo.max_attempts = 6;
	TU_RC(spool_queue_set(tu_q, "qc", &qo), SPOOL_OK);
	id = tu_enqueue("qc", "e");
	CU_ASSERT_EQUAL(tu_task_int(id, "priority"), 5);
	CU_ASSERT_EQUAL(tu_task_int(id, "max_attempts"), 6);

	CU_ASSERT_EQUAL(sqlite3_exec(tu_q->db, "UPDATE queues SET priority = 4 "
	    "WHERE name = 'qc'", NULL, NULL, NULL), SQLITE_OK);
	id = tu_enqueue("qc", "f");
	CU_ASSERT_EQUAL(tu_task_int(id, "priority"), 4);

	/* A queue deleted elsewhere is created again, with the defaults. */
	sql_elsewhere("DELETE FROM tasks WHERE queue = 'qc'; "
	    "DELETE FROM queue_counters WHERE queue = 'qc'; "
	    "DELETE FROM queues WHERE name = 'qc'");
	id = tu_enqueue("qc", "g");
	CU_ASSERT_EQUAL(tu_task_int(id, "priority"), 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM queues WHERE "
	    "name = 'qc'"), 1);
}

/* A bulk enqueue inserts every task, across queues, and returns their
 * ids in order. */
static void
test_many_ok(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_task		 t[3];
	int64_t			 ids[3] = { 0, 0, 0 };
	int			 ex[3] = { 7, 7, 7 };
	char			 buf[32];

	o.priority = 4;
	t[0] = (spool_task){ "a", "one", 3, NULL };
	t[1] = (spool_task){ "b", "two", 3, &o };
	t[2] = (spool_task){ "a", "three", 5, NULL };
	TU_RC(spool_enqueue_many(ids, ex, tu_q, t, 3), SPOOL_OK);
	CU_ASSERT(ids[0] > 0 && ids[0] < ids[1] && ids[1] < ids[2]);
	CU_ASSERT(ex[0] == 0 && ex[1] == 0 && ex[2] == 0);
	CU_ASSERT_EQUAL(count_tasks(), 3);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, ids[1], "queue"),
	    "b");
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, ids[2], "payload"),
	    "three");
	CU_ASSERT_EQUAL(tu_task_int(ids[1], "priority"), 4);
	/* Zero tasks is a no-op, and the out arrays may be NULL. */
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, NULL, 0), SPOOL_OK);
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, 1), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 4);
}

/* A bad task in the middle of a bulk enqueue fails the whole call: no
 * task and no queue is left, whether the input check or the insert
 * itself refused it. */
static void
test_many_all_or_nothing(void)
{
	spool_enqueue_opts	 bad = SPOOL_ENQUEUE_OPTS_INIT;
	spool_task		 t[3];

	t[0] = (spool_task){ "a", "one", 3, NULL };
	t[1] = (spool_task){ "", "two", 3, NULL };
	t[2] = (spool_task){ "b", "three", 5, NULL };
	assert_refused(spool_enqueue_many(NULL, NULL, tu_q, t, 3));
	CU_ASSERT(strstr(spool_errmsg(tu_q), "task 2") != NULL);

	/* Refused only once the transaction has inserted task 1. */
	bad.delay_ms = 1000;
	bad.deadline_ms = tu_now + 10;
	t[1] = (spool_task){ "a", "two", 3, &bad };
	assert_refused(spool_enqueue_many(NULL, NULL, tu_q, t, 3));

	t[1] = (spool_task){ "a", NULL, 3, NULL };
	assert_refused(spool_enqueue_many(NULL, NULL, tu_q, t, 3));
}

/* existed_out flags keys that named a task, also a task added earlier in
 * the same call, and ids_out then holds that task's id. */
static void
test_many_existed(void)
{
	spool_enqueue_opts	 k = SPOOL_ENQUEUE_OPTS_INIT;
	spool_enqueue_opts	 d = SPOOL_ENQUEUE_OPTS_INIT;
	spool_task		 t[4];
	int64_t			 old, ids[4] = { 0, 0, 0, 0 };
	int			 ex[4] = { 9, 9, 9, 9 };

	k.key = "k";
	old = enqueue_opts("q", "old", &k);
	d.key = "d";
	t[0] = (spool_task){ "q", "n", 1, NULL };
	t[1] = (spool_task){ "q", "k", 1, &k };
	t[2] = (spool_task){ "q", "d1", 2, &d };
	t[3] = (spool_task){ "q", "d2", 2, &d };
	TU_RC(spool_enqueue_many(ids, ex, tu_q, t, 4), SPOOL_OK);
	CU_ASSERT_EQUAL(ex[0], 0);
	CU_ASSERT_EQUAL(ex[1], 1);
	CU_ASSERT_EQUAL(ex[2], 0);
	CU_ASSERT_EQUAL(ex[3], 1);
	CU_ASSERT_EQUAL(ids[1], old);
	CU_ASSERT_EQUAL(ids[3], ids[2]);
	CU_ASSERT(ids[0] > old && ids[2] > ids[0]);
	CU_ASSERT_EQUAL(count_tasks(), 3);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE "
	    "payload = 'd2' OR payload = 'k'"), 0);
}

/* A queue at its depth limit refuses more tasks with SPOOL_EFULL; ready
 * tasks count, scheduled ones too, running ones do not; a bulk enqueue
 * that would pass the limit adds nothing. */
static void
test_depth_limit(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_enqueue_opts	 later = SPOOL_ENQUEUE_OPTS_INIT;
	spool_task		 t[3];
	spool_job		*job = NULL;
	int64_t			 id;

	qo.set = SPOOL_QUEUE_MAX_DEPTH;
	qo.max_depth = 2;
	queue_create("q", &qo);
	later.delay_ms = 60000;
	tu_enqueue("q", "a");
	enqueue_opts("q", "b", &later);
	id = 99;
	TU_RC(spool_enqueue(&id, tu_q, "q", "c", 1, NULL), SPOOL_EFULL);
	CU_ASSERT(strstr(spool_errmsg(tu_q), "full") != NULL);
	CU_ASSERT_EQUAL(count_tasks(), 2);
	/* Other queues are not limited. */
	tu_enqueue("other", "x");

	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	spool_job_free(job);
	tu_enqueue("q", "c");
	CU_ASSERT_EQUAL(count_tasks(), 4);
	TU_RC(spool_enqueue(&id, tu_q, "q", "d", 1, NULL), SPOOL_EFULL);

	/* Bulk: room for one more of three, so none is added. */
	qo.max_depth = 3;
	TU_RC(spool_queue_set(tu_q, "q", &qo), SPOOL_OK);
	t[0] = (spool_task){ "other", "1", 1, NULL };
	t[1] = (spool_task){ "q", "2", 1, NULL };
	t[2] = (spool_task){ "q", "3", 1, NULL };
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, 3), SPOOL_EFULL);
	CU_ASSERT_EQUAL(count_tasks(), 4);
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, 2), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 6);
}

/* Long bulk enqueues: runs of keyless tasks of one queue go into multi-row
 * inserts (enqueue.c), which must give every task its own id, in order,
 * and its own fields, whatever breaks the runs (a key, another queue,
 * other options) and wherever they end. */
#define LONG_N	300

static void
test_many_long(void)
{
	static spool_task	 t[LONG_N];
	static int64_t		 ids[LONG_N];
	static int		 ex[LONG_N];
	static char		 pay[LONG_N][16];
	spool_enqueue_opts	 pri = SPOOL_ENQUEUE_OPTS_INIT;
	spool_enqueue_opts	 key = SPOOL_ENQUEUE_OPTS_INIT;
	spool_enqueue_opts	 dl = SPOOL_ENQUEUE_OPTS_INIT;
	spool_enqueue_opts	 inb = SPOOL_ENQUEUE_OPTS_INIT;
	const unsigned char	 bin[3] = { 0xff, 0x00, 0x01 };
	char			 sql[160], buf[32];
	int64_t			 batch;
	int			 i, bad = 0;

	TU_RC(spool_batch_create(&batch, tu_q, NULL), SPOOL_OK);
	pri.priority = 7;
	pri.max_attempts = 3;
	key.key = "k";
	dl.delay_ms = 1000;
	dl.deadline_ms = tu_now + 60000;
	inb.batch_id = batch;
	for (i = 0; i < LONG_N; i++) {
		snprintf(pay[i], sizeof pay[i], "p%d", i);
		t[i] = (spool_task){ "q", pay[i], strlen(pay[i]), NULL };
		ex[i] = 9;
	}
	for (i = 70; i < 140; i++)
		t[i].opts = &pri;
	t[150].opts = &key;
	t[151].opts = &key;		/* the same key: existed */
	t[160].queue = "r";
	for (i = 170; i < 250; i++)
		t[i].opts = &inb;
	t[255].opts = &dl;
	t[260] = (spool_task){ "q", bin, sizeof bin, NULL };
	TU_RC(spool_enqueue_many(ids, ex, tu_q, t, LONG_N), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), LONG_N - 1);
	for (i = 0; i < LONG_N; i++) {
		if (i == 151) {
			bad += ex[i] != 1 || ids[i] != ids[150];
			continue;
		}
		bad += ex[i] != 0;
		if (i > 0 && i != 152)
			bad += ids[i] <= ids[i - 1];
		if (i == 260)
			continue;
		snprintf(sql, sizeof sql, "SELECT count(*) FROM tasks WHERE "
		    "id = %lld AND payload = '%.15s'", (long long)ids[i], pay[i]);
		bad += tu_sql_int(sql) != 1;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(ids[152] > ids[150]);
	CU_ASSERT_EQUAL(tu_task_int(ids[69], "priority"), 0);
	CU_ASSERT_EQUAL(tu_task_int(ids[70], "priority"), 7);
	CU_ASSERT_EQUAL(tu_task_int(ids[139], "max_attempts"), 3);
	CU_ASSERT_EQUAL(tu_task_int(ids[140], "max_attempts"), 5);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, ids[150],
	    "idem_key"), "k");
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, ids[160],
	    "queue"), "r");
	CU_ASSERT_EQUAL(tu_task_int(ids[255], "deadline_ms"), tu_now + 60000);
	CU_ASSERT_EQUAL(tu_task_int(ids[255], "run_at_ms"), tu_now + 1000);
	CU_ASSERT_EQUAL(tu_task_int(ids[256], "run_at_ms"), tu_now);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE "
	    "deadline_ms IS NOT NULL OR idem_key IS NOT NULL"), 2);
	snprintf(sql, sizeof sql, "SELECT typeof(payload) = 'blob' AND "
	    "length(payload) = 3 FROM tasks WHERE id = %lld",
	    (long long)ids[260]);
	CU_ASSERT_EQUAL(tu_sql_int(sql), 1);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM tasks WHERE "
	    "batch_id = %lld", (long long)batch);
	CU_ASSERT_EQUAL(tu_sql_int(sql), 80);
	snprintf(sql, sizeof sql, "SELECT total * 1000 + pending FROM batches "
	    "WHERE id = %lld", (long long)batch);
	CU_ASSERT_EQUAL(tu_sql_int(sql), 80080);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE "
	    "state = 'ready' AND created_ms = run_at_ms"), LONG_N - 2);
}

/* Runs of tasks that share their options struct (task_insert_same, 256
 * rows a statement) and runs that do not: every row gets its own payload
 * and its options' fields, ids in order; a depth limit inside such a run
 * names the first task over it. */
static void
test_many_same(void)
{
	static spool_task	 t[1000];
	static int64_t		 ids[1000];
	static char		 pay[1000][16];
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	char			 sql[320];
	int64_t			 batch;
	int			 i, bad = 0;

	TU_RC(spool_batch_create(&batch, tu_q, NULL), SPOOL_OK);
	o.priority = 4;
	o.delay_ms = 500;
	o.deadline_ms = tu_now + 60000;
	o.max_attempts = 2;
	o.batch_id = batch;
	for (i = 0; i < 1000; i++) {
		snprintf(pay[i], sizeof pay[i], "s%d", i);
		t[i] = (spool_task){ "q", pay[i], strlen(pay[i]),
		    i < 600 ? &o : NULL };
	}
	TU_RC(spool_enqueue_many(ids, NULL, tu_q, t, 1000), SPOOL_OK);
	for (i = 0; i < 1000; i++) {
		bad += i > 0 && ids[i] != ids[i - 1] + 1;
		if (i < 600)
			snprintf(sql, sizeof sql, "SELECT count(*) FROM tasks "
			    "WHERE id = %lld AND payload = '%.15s' AND priority = 4 "
			    "AND run_at_ms = %lld AND deadline_ms = %lld AND "
			    "max_attempts = 2 AND batch_id = %lld",
			    (long long)ids[i], pay[i], (long long)tu_now + 500,
			    (long long)tu_now + 60000, (long long)batch);
		else
			snprintf(sql, sizeof sql, "SELECT count(*) FROM tasks "
			    "WHERE id = %lld AND payload = '%.15s' AND priority = 0 "
			    "AND run_at_ms = %lld AND deadline_ms IS NULL AND "
			    "max_attempts = 5 AND batch_id IS NULL",
			    (long long)ids[i], pay[i], (long long)tu_now);
		bad += tu_sql_int(sql) != 1;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(count_tasks(), 1000);
	snprintf(sql, sizeof sql, "SELECT total * 10000 + pending FROM batches "
	    "WHERE id = %lld", (long long)batch);
	CU_ASSERT_EQUAL(tu_sql_int(sql), 6000600);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT enqueued FROM spool_counters "
	    "WHERE queue = 'q'"), 1000);

	qo.set = SPOOL_QUEUE_MAX_DEPTH;
	qo.max_depth = 300;
	queue_create("d", &qo);
	for (i = 0; i < 600; i++)
		t[i] = (spool_task){ "d", "x", 1, NULL };
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, 600), SPOOL_EFULL);
	CU_ASSERT(strncmp(spool_errmsg(tu_q), "task 301: queue d is full",
	    25) == 0);
	CU_ASSERT_EQUAL(count_tasks(), 1000);
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, 300), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 1300);
}

/* A long bulk enqueue that would pass a depth limit adds nothing, and
 * names the first task over the limit, also when the limit falls inside a
 * run that would have been one multi-row insert; one that fits exactly is
 * added whole. */
static void
test_many_long_depth(void)
{
	static spool_task	 t[LONG_N];
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	int			 i;

	qo.set = SPOOL_QUEUE_MAX_DEPTH;
	qo.max_depth = 100;
	queue_create("q", &qo);
	tu_enqueue("q", "first");
	for (i = 0; i < LONG_N; i++)
		t[i] = (spool_task){ "q", "x", 1, NULL };
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, LONG_N), SPOOL_EFULL);
	CU_ASSERT(strstr(spool_errmsg(tu_q), "task 100:") != NULL);
	CU_ASSERT(strstr(spool_errmsg(tu_q), "full") != NULL);
	CU_ASSERT_EQUAL(count_tasks(), 1);
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, 99), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 100);
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, 1), SPOOL_EFULL);
}

/* A long bulk enqueue into a closed batch is refused whole, naming its
 * first task. */
static void
test_many_long_closed_batch(void)
{
	static spool_task	 t[LONG_N];
	spool_enqueue_opts	 inb = SPOOL_ENQUEUE_OPTS_INIT;
	int64_t			 batch;
	int			 i;

	TU_RC(spool_batch_create(&batch, tu_q, NULL), SPOOL_OK);
	TU_RC(spool_batch_close(tu_q, batch), SPOOL_OK);
	inb.batch_id = batch;
	for (i = 0; i < LONG_N; i++)
		t[i] = (spool_task){ "q", "x", 1, &inb };
	TU_RC(spool_enqueue_many(NULL, NULL, tu_q, t, LONG_N), SPOOL_ESTATE);
	CU_ASSERT(strncmp(spool_errmsg(tu_q), "task 1: batch", 13) == 0);
	CU_ASSERT_EQUAL(count_tasks(), 0);
}

/* A stream (the CLI's --lines) inserts its parts in one transaction:
 * ids run on across parts, counters and a depth limit span them, task
 * numbers in messages count from the stream's first task, and a refusal
 * in a later part, or an end without commit, leaves nothing. */
static void
test_stream(void)
{
	static spool_task		 t[200];
	spool_enqueue_stream		*s;
	spool_queue_opts		 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_enqueue_opts		 bad = SPOOL_ENQUEUE_OPTS_INIT;
	int64_t				 ids[200];
	int				 i;

	for (i = 0; i < 200; i++)
		t[i] = (spool_task){ "q", "x", 1, NULL };
	TU_RC(spool_enqueue_stream_begin(&s, tu_q), SPOOL_OK);
	TU_RC(spool_enqueue_stream_add(s, t, 200, ids), SPOOL_OK);
	CU_ASSERT_EQUAL(ids[199] - ids[0], 199);
	TU_RC(spool_enqueue_stream_add(s, t, 1, &ids[0]), SPOOL_OK);
	TU_RC(spool_enqueue_stream_add(s, t, 100, &ids[1]), SPOOL_OK);
	CU_ASSERT_EQUAL(ids[1] - ids[0], 1);
	TU_RC(spool_enqueue_stream_end(s, 1), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 301);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT enqueued FROM spool_counters "
	    "WHERE queue = 'q'"), 301);

	/* A bad task in the second part: task 203 of the stream. */
	bad.max_attempts = -1;
	t[2].opts = &bad;
	TU_RC(spool_enqueue_stream_begin(&s, tu_q), SPOOL_OK);
	TU_RC(spool_enqueue_stream_add(s, t + 100, 100, NULL), SPOOL_OK);
	TU_RC(spool_enqueue_stream_add(s, t, 100, NULL), SPOOL_EINVAL);
	CU_ASSERT(strncmp(spool_errmsg(tu_q), "task 103: max attempts", 22) ==
	    0);
	TU_RC(spool_enqueue_stream_add(s, t + 100, 1, NULL), SPOOL_EINVAL);
	TU_RC(spool_enqueue_stream_end(s, 1), SPOOL_EINVAL);
	CU_ASSERT_EQUAL(count_tasks(), 301);
	t[2].opts = NULL;

	/* Not committed: nothing. */
	TU_RC(spool_enqueue_stream_begin(&s, tu_q), SPOOL_OK);
	TU_RC(spool_enqueue_stream_add(s, t, 100, NULL), SPOOL_OK);
	TU_RC(spool_enqueue_stream_end(s, 0), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 301);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT enqueued FROM spool_counters "
	    "WHERE queue = 'q'"), 301);

	/* A depth limit counts across parts: 150 fit, the 151st does not. */
	qo.set = SPOOL_QUEUE_MAX_DEPTH;
	qo.max_depth = 150;
	queue_create("d", &qo);
	for (i = 0; i < 200; i++)
		t[i].queue = "d";
	TU_RC(spool_enqueue_stream_begin(&s, tu_q), SPOOL_OK);
	TU_RC(spool_enqueue_stream_add(s, t, 100, NULL), SPOOL_OK);
	TU_RC(spool_enqueue_stream_add(s, t, 100, NULL), SPOOL_EFULL);
	CU_ASSERT(strncmp(spool_errmsg(tu_q), "task 151: queue d is full",
	    25) == 0);
	TU_RC(spool_enqueue_stream_end(s, 1), SPOOL_EFULL);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE queue = 'd'"), 0);
	/* Another enqueue on the handle works after a stream. */
	tu_enqueue("d", "after");
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE queue = 'd'"), 1);

	/* The thread that holds a stream is refused another enqueue or
	 * stream on the handle (it would wait for its own end); the stream
	 * goes on. */
	TU_RC(spool_enqueue_stream_begin(&s, tu_q), SPOOL_OK);
	{
		spool_enqueue_stream	*s2 = (spool_enqueue_stream *)1;
		int64_t			 id = 0;

		TU_RC(spool_enqueue(&id, tu_q, "q", "x", 1, NULL),
		    SPOOL_ESTATE);
		CU_ASSERT(strstr(spool_errmsg(tu_q), "a stream is open") !=
		    NULL);
		TU_RC(spool_enqueue_stream_begin(&s2, tu_q), SPOOL_ESTATE);
		CU_ASSERT(s2 == NULL);
	}
	TU_RC(spool_enqueue_stream_add(s, t, 1, NULL), SPOOL_OK);
	TU_RC(spool_enqueue_stream_end(s, 0), SPOOL_OK);

	/* The public calls refuse what they cannot use. */
	TU_RC(spool_enqueue_stream_begin(NULL, tu_q), SPOOL_EINVAL);
	TU_RC(spool_enqueue_stream_begin(&s, NULL), SPOOL_EINVAL);
	CU_ASSERT(s == NULL);
	TU_RC(spool_enqueue_stream_add(NULL, t, 1, NULL), SPOOL_EINVAL);
	TU_RC(spool_enqueue_stream_end(NULL, 1), SPOOL_OK);
}

/* Bad queue names are refused: NULL, empty, control characters, invalid
 * UTF-8, and one byte over SPOOL_NAME_MAX; exactly the maximum is fine. */
static void
test_bad_names(void)
{
	static const char *const bad[] = {
		"", "a\nb", "tab\there", "\x01", "del\x7f", "\x1b[31m",
		"bad\xff", "\xc3"
	};
	char	 name[SPOOL_NAME_MAX + 2];
	size_t	 i;

	assert_refused(spool_enqueue(NULL, tu_q, NULL, "x", 1, NULL));
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_refused(spool_enqueue(NULL, tu_q, bad[i], "x", 1, NULL));
	memset(name, 'n', sizeof name);
	name[SPOOL_NAME_MAX + 1] = '\0';
	assert_refused(spool_enqueue(NULL, tu_q, name, "x", 1, NULL));
	name[SPOOL_NAME_MAX] = '\0';
	TU_RC(spool_enqueue(NULL, tu_q, name, "x", 1, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 1);
}

/* Bad payloads and options are refused with SPOOL_EINVAL and a message,
 * and nothing is inserted. */
static void
test_bad_input(void)
{
	spool_enqueue_opts	 o;
	char			*big, key[SPOOL_KEY_MAX + 2];

	if ((big = malloc(SPOOL_PAYLOAD_MAX + 1)) == NULL) {
		CU_FAIL("malloc");
		return;
	}
	memset(big, 'x', SPOOL_PAYLOAD_MAX + 1);
	assert_refused(spool_enqueue(NULL, tu_q, "q", big,
	    SPOOL_PAYLOAD_MAX + 1, NULL));
	free(big);
	assert_refused(spool_enqueue(NULL, tu_q, "q", NULL, 5, NULL));

	o = (spool_enqueue_opts)SPOOL_ENQUEUE_OPTS_INIT;
	o.delay_ms = -1;
	assert_refused(spool_enqueue(NULL, tu_q, "q", "x", 1, &o));

	o = (spool_enqueue_opts)SPOOL_ENQUEUE_OPTS_INIT;
	o.delay_ms = 10;
	o.run_at_ms = tu_now + 10;
	assert_refused(spool_enqueue(NULL, tu_q, "q", "x", 1, &o));

	o = (spool_enqueue_opts)SPOOL_ENQUEUE_OPTS_INIT;
	o.delay_ms = 1000;
	o.deadline_ms = tu_now + 999;
	assert_refused(spool_enqueue(NULL, tu_q, "q", "x", 1, &o));

	o = (spool_enqueue_opts)SPOOL_ENQUEUE_OPTS_INIT;
	o.run_at_ms = tu_now + 5000;
	o.deadline_ms = tu_now + 4999;
	assert_refused(spool_enqueue(NULL, tu_q, "q", "x", 1, &o));

	o = (spool_enqueue_opts)SPOOL_ENQUEUE_OPTS_INIT;
	o.deadline_ms = tu_now - 1;
	assert_refused(spool_enqueue(NULL, tu_q, "q", "x", 1, &o));

	o = (spool_enqueue_opts)SPOOL_ENQUEUE_OPTS_INIT;
	o.version = 0;
	assert_refused(spool_enqueue(NULL, tu_q, "q", "x", 1, &o));

	o = (spool_enqueue_opts)SPOOL_ENQUEUE_OPTS_INIT;
	o.max_attempts = -1;
	assert_refused(spool_enqueue(NULL, tu_q, "q", "x", 1, &o));

	o = (spool_enqueue_opts)SPOOL_ENQUEUE_OPTS_INIT;
	memset(key, 'k', sizeof key);
	key[SPOOL_KEY_MAX + 1] = '\0';
	o.key = key;
	assert_refused(spool_enqueue(NULL, tu_q, "q", "x", 1, &o));
	o.key = "";
	assert_refused(spool_enqueue(NULL, tu_q, "q", "x", 1, &o));
	o.key = "a\nb";
	assert_refused(spool_enqueue(NULL, tu_q, "q", "x", 1, &o));

	/* The longest key is accepted. */
	key[SPOOL_KEY_MAX] = '\0';
	o.key = key;
	TU_RC(spool_enqueue(NULL, tu_q, "q", "x", 1, &o), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 1);
}

/* Names full of SQL and LIKE metacharacters are stored as given and found
 * by exact name only: "%" and "_" match no other queue. */
static void
test_odd_names(void)
{
	static const char *const names[] = {
		"x'--", "%", "_", "../x", "a\"b", "'; DROP TABLE tasks; --",
		"caf\xc3\xa9 \xe2\x82\xac", "\\", "%%", "a_c"
	};
	spool_queue_stats	*st = NULL;
	spool_task_info		*t = NULL;
	spool_list_opts		 lo = SPOOL_LIST_OPTS_INIT;
	char			 buf[256];
	int64_t			 ids[10];
	size_t			 i, j, n = 0;

	/* Queue i gets i + 1 tasks, so a LIKE match would miscount. */
	for (i = 0; i < 10; i++)
		for (j = 0; j <= i; j++)
			ids[i] = tu_enqueue(names[i], names[i]);
	tu_enqueue("abc", "decoy");
	tu_enqueue("y", "decoy");
	for (i = 0; i < 10; i++) {
		CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, ids[i],
		    "queue"), names[i]);
		TU_RC(spool_task_get(&t, tu_q, ids[i]), SPOOL_OK);
		if (t != NULL)
			CU_ASSERT_STRING_EQUAL(t->queue, names[i]);
		spool_task_info_free(t, 1);
		t = NULL;
		TU_RC(spool_stats(&st, &n, tu_q, names[i]), SPOOL_OK);
		CU_ASSERT_EQUAL(n, 1);
		if (st != NULL && n == 1) {
			CU_ASSERT_STRING_EQUAL(st->queue, names[i]);
			CU_ASSERT_EQUAL(st->ready, (int64_t)i + 1);
		}
		spool_queue_stats_free(st, n);
		st = NULL;
		lo.queue = names[i];
		TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
		CU_ASSERT_EQUAL(n, i + 1);
		for (j = 0; j < n; j++)
			CU_ASSERT_STRING_EQUAL(t[j].queue, names[i]);
		spool_task_info_free(t, n);
		t = NULL;
	}
	/* "_" exists, but "z" (one character, as "_" would match) does not. */
	TU_RC(spool_stats(&st, &n, tu_q, "z"), SPOOL_ENOENT);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM queues"), 12);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 55 + 2);
}

/* Enqueue options of a version newer than the library knows are refused
 * with SPOOL_EINVAL and a message naming the struct and the version, and
 * nothing is added; version 1 (before batch_id) is still taken (issue
 * 15). */
static void
test_opts_version_unknown(void)
{
	spool_enqueue_opts	 bad = SPOOL_ENQUEUE_OPTS_INIT;
	spool_enqueue_opts	 v1 = SPOOL_ENQUEUE_OPTS_INIT;
	spool_task		 t[2];
	int64_t			 id = 5, ids[2];

	bad.version = 99;
	TU_RC(spool_enqueue(&id, tu_q, "q", "x", 1, &bad), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_enqueue_opts");
	CU_ASSERT_EQUAL(id, 0);
	t[0].queue = t[1].queue = "q";
	t[0].payload = t[1].payload = "x";
	t[0].len = t[1].len = 1;
	t[0].opts = NULL;
	t[1].opts = &bad;
	TU_RC(spool_enqueue_many(ids, NULL, tu_q, t, 2), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_enqueue_opts");
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM queues"), 0);
	v1.version = 1;
	TU_RC(spool_enqueue(&id, tu_q, "q", "x", 1, &v1), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 1);
}

static CU_TestInfo enqueue_tests[] = {
	{ "priority: queue default vs explicit", test_priority },
	{ "delay and run_at", test_delay_run_at },
	{ "deadline", test_deadline },
	{ "max_attempts: queue default vs explicit", test_max_attempts },
	{ "key is stored", test_key_stored },
	{ "UTF-8 payload is TEXT", test_payload_text },
	{ "binary payload is a BLOB, byte-exact", test_payload_binary },
	{ "empty and maximum payloads", test_payload_limits },
	{ "key held by a ready or running task", test_key_unfinished },
	{ "key free again after the task finished", test_key_after_finish },
	{ "keys are per queue", test_key_per_queue },
	{ "unknown queue is created with defaults", test_queue_created },
	{ "queue changes are seen by the next enqueue", test_queue_changes_seen },
	{ "enqueue_many inserts all", test_many_ok },
	{ "enqueue_many is all-or-nothing", test_many_all_or_nothing },
	{ "enqueue_many existed flags", test_many_existed },
	{ "depth limit", test_depth_limit },
	{ "long enqueue_many: ids, fields, runs broken", test_many_long },
	{ "long enqueue_many: depth limit", test_many_long_depth },
	{ "long enqueue_many: runs that share options", test_many_same },
	{ "long enqueue_many: closed batch", test_many_long_closed_batch },
	{ "stream: parts in one transaction", test_stream },
	{ "bad queue names", test_bad_names },
	{ "bad payloads and options", test_bad_input },
	{ "options of an unknown version", test_opts_version_unknown },
	{ "odd names round-trip and match exactly", test_odd_names },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("enqueue", enqueue_tests));
}
