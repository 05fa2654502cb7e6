/*
 * t-producer.c -- the buffered producer (producer.c): commits by count,
 * by timer and on close, tickets and the committed callback, per-task
 * refusals, and the limit on accepted tasks (blocking or failing at once).
 * The producer runs on the real clock; timings are generous, so a slow
 * machine makes the tests slower, not wrong.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#define MAX_SEEN	4096

/* What on_commit reported, by ticket. */
static pthread_mutex_t	 seen_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t		 seen_id[MAX_SEEN];
static int		 seen_rc[MAX_SEEN];
static int		 seen_calls[MAX_SEEN];

static void
on_commit(int64_t ticket, int64_t id, int rc, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&seen_mu);
	if (ticket > 0 && ticket < MAX_SEEN) {
		seen_id[ticket] = id;
		seen_rc[ticket] = rc;
		seen_calls[ticket]++;
	}
	pthread_mutex_unlock(&seen_mu);
}

static spool_producer *
producer(int count, int64_t interval_ms, int max_pending, int64_t block_ms)
{
	spool_producer_opts	 o = SPOOL_PRODUCER_OPTS_INIT;
	spool_producer		*p = NULL;

	memset(seen_id, 0, sizeof seen_id);
	memset(seen_rc, 0, sizeof seen_rc);
	memset(seen_calls, 0, sizeof seen_calls);
	o.flush_count = count;
	o.flush_interval_ms = interval_ms;
	o.max_pending = max_pending;
	o.block_ms = block_ms;
	o.on_commit = on_commit;
	if (spool_producer_new(&p, tu_db, &o) != SPOOL_OK) {
		fprintf(stderr, "producer: %s\n", spool_producer_errmsg(p));
		CU_FAIL_FATAL("spool_producer_new");
	}
	return (p);
}

static double
mono_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/* Wait up to 10 s for the producer to have committed ticket; seconds. */
static double
wait_committed(spool_producer *p, int64_t ticket)
{
	struct timespec	 ts = { 0, 1000000 };
	double		 t0 = mono_s();

	while (spool_producer_committed(p) < ticket && mono_s() - t0 < 10)
		nanosleep(&ts, NULL);
	return (mono_s() - t0);
}

static int64_t
put(spool_producer *p, const char *text)
{
	int64_t	 ticket = 0;

	TU_RC(spool_producer_enqueue(&ticket, p, "q", text, strlen(text),
	    NULL), SPOOL_OK);
	return (ticket);
}

static int64_t
count_tasks(void)
{
	return (tu_sql_int("SELECT count(*) FROM tasks"));
}

/* flush_count tasks waiting: committed without a flush or a timer. */
static void
test_flush_by_count(void)
{
	spool_producer	*p = producer(10, 600000, 1000, 0);
	int64_t		 t = 0;
	int		 i;

	for (i = 0; i < 9; i++)
		t = put(p, "x");
	CU_ASSERT_EQUAL(t, 9);
	nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
	CU_ASSERT_EQUAL(spool_producer_committed(p), 0);
	CU_ASSERT_EQUAL(count_tasks(), 0);
	t = put(p, "x");
	CU_ASSERT(wait_committed(p, t) < 10);
	CU_ASSERT_EQUAL(spool_producer_committed(p), 10);
	CU_ASSERT_EQUAL(count_tasks(), 10);
	for (i = 1; i <= 10; i++) {
		CU_ASSERT_EQUAL(seen_calls[i], 1);
		CU_ASSERT_EQUAL(seen_rc[i], SPOOL_OK);
		CU_ASSERT(seen_id[i] > 0);
	}
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(DISTINCT id) FROM tasks"),
	    10);
	TU_RC(spool_producer_close(p), SPOOL_OK);
}

/* Fewer than flush_count: the timer commits them. */
static void
test_flush_by_timer(void)
{
	spool_producer	*p = producer(1000, 50, 1000, 0);
	double		 t0 = mono_s(), el;
	int64_t		 t;

	put(p, "a");
	t = put(p, "b");
	el = wait_committed(p, t);
	CU_ASSERT_EQUAL(spool_producer_committed(p), 2);
	/* Not before the interval, and not much after it (a loaded
	 * machine may be late: 5 s). */
	el = mono_s() - t0;
	CU_ASSERT(el >= 0.045);
	CU_ASSERT(el < 5);
	CU_ASSERT_EQUAL(count_tasks(), 2);
	TU_RC(spool_producer_close(p), SPOOL_OK);
}

/* flush commits at once and waits; close commits what is left. */
static void
test_flush_and_close(void)
{
	spool_producer	*p = producer(1000, 600000, 1000, 0);
	int64_t		 id;
	int		 i;

	for (i = 0; i < 5; i++)
		put(p, "x");
	TU_RC(spool_producer_flush(p), SPOOL_OK);
	CU_ASSERT_EQUAL(spool_producer_committed(p), 5);
	CU_ASSERT_EQUAL(count_tasks(), 5);
	TU_RC(spool_producer_flush(p), SPOOL_OK);	/* nothing to do */
	for (i = 0; i < 7; i++)
		put(p, "y");
	CU_ASSERT_EQUAL(count_tasks(), 5);
	TU_RC(spool_producer_close(p), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 12);
	/* Tickets are committed in order: ids grow with tickets. */
	for (i = 2; i <= 12; i++)
		CU_ASSERT(seen_id[i] > seen_id[i - 1]);
	id = tu_sql_int("SELECT count(*) FROM tasks WHERE payload = 'y'");
	CU_ASSERT_EQUAL(id, 7);
	TU_RC(spool_producer_close(NULL), SPOOL_OK);
}

struct elsewhere {
	spool_producer	*p;
	int		 rc;
};

/* Thread body: read the producer's error code. */
static void *
elsewhere_main(void *arg)
{
	struct elsewhere	*e = arg;

	e->rc = spool_producer_errcode(e->p);
	return (NULL);
}

/* spool_producer_errcode(p) as a thread that made no call on p sees it. */
static int
errcode_elsewhere(spool_producer *p)
{
	struct elsewhere	 e = { p, SPOOL_ERROR };
	pthread_t		 t;

	if (pthread_create(&t, NULL, elsewhere_main, &e) != 0)
		return (SPOOL_ERROR);
	pthread_join(t, NULL);
	return (e.rc);
}

/* Each task is committed or refused on its own. */
static void
test_refusals(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_producer		*p;
	int64_t			 held, t1, t2, t3, t4;

	qo.set = SPOOL_QUEUE_MAX_DEPTH;
	qo.max_depth = 1;
	TU_RC(spool_queue_create(tu_q, "small", &qo), SPOOL_OK);
	o.key = "k";
	TU_RC(spool_enqueue(&held, tu_q, "q", "held", 4, &o), SPOOL_OK);

	p = producer(1000, 600000, 1000, 0);
	TU_RC(spool_producer_enqueue(&t1, p, "q", "dup", 3, &o), SPOOL_OK);
	TU_RC(spool_producer_enqueue(&t2, p, "small", "1", 1, NULL), SPOOL_OK);
	TU_RC(spool_producer_enqueue(&t3, p, "small", "2", 1, NULL), SPOOL_OK);
	TU_RC(spool_producer_enqueue(&t4, p, "q", "fine", 4, NULL), SPOOL_OK);
	TU_RC(spool_producer_flush(p), SPOOL_OK);
	CU_ASSERT_EQUAL(seen_rc[t1], SPOOL_EEXISTS);
	CU_ASSERT_EQUAL(seen_id[t1], held);
	CU_ASSERT_EQUAL(seen_rc[t2], SPOOL_OK);
	CU_ASSERT_EQUAL(seen_rc[t3], SPOOL_EFULL);
	CU_ASSERT_EQUAL(seen_rc[t4], SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 3);

	/* Bad input is refused at once and is not given a ticket. */
	o.max_attempts = -2;
	TU_RC(spool_producer_enqueue(&t1, p, "q", "x", 1, &o), SPOOL_EINVAL);
	CU_ASSERT_EQUAL(t1, 0);
	CU_ASSERT(strstr(spool_producer_errmsg(p), "max attempts") != NULL);
	TU_RC(spool_producer_errcode(p), SPOOL_EINVAL);
	/* The failure is this thread's: another thread's calls are clean. */
	TU_RC(errcode_elsewhere(p), SPOOL_OK);
	TU_RC(spool_producer_enqueue(&t1, p, "", "x", 1, NULL), SPOOL_EINVAL);
	TU_RC(spool_producer_enqueue(&t1, p, "q", NULL, 3, NULL),
	    SPOOL_EINVAL);
	TU_RC(spool_producer_enqueue(&t1, p, "q", "ok", 2, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(t1, t4 + 1);
	TU_RC(spool_producer_errcode(p), SPOOL_OK);	/* as errmsg says */
	CU_ASSERT_STRING_EQUAL(spool_producer_errmsg(p), "no error");
	TU_RC(spool_producer_close(p), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 4);
}

/* At max_pending: fail at once, or block up to block_ms. */
static void
test_limit(void)
{
	spool_producer	*p;
	int64_t		 t;
	double		 t0, el;
	int		 i;

	p = producer(1000, 600000, 5, 0);
	for (i = 0; i < 5; i++)
		put(p, "x");
	t0 = mono_s();
	TU_RC(spool_producer_enqueue(&t, p, "q", "x", 1, NULL), SPOOL_EFULL);
	CU_ASSERT(mono_s() - t0 < 0.5);
	CU_ASSERT(strstr(spool_producer_errmsg(p), "full") != NULL);
	TU_RC(spool_producer_errcode(p), SPOOL_EFULL);
	TU_RC(spool_producer_flush(p), SPOOL_OK);
	TU_RC(spool_producer_errcode(p), SPOOL_OK);
	put(p, "x");			/* room again */
	TU_RC(spool_producer_close(p), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 6);

	p = producer(1000, 600000, 3, 150);
	for (i = 0; i < 3; i++)
		put(p, "y");
	t0 = mono_s();
	TU_RC(spool_producer_enqueue(&t, p, "q", "y", 1, NULL), SPOOL_EFULL);
	el = mono_s() - t0;
	CU_ASSERT(el >= 0.14 && el < 5);
	TU_RC(spool_producer_close(p), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 9);
}

struct flusher {
	pthread_t	 t;
	spool_producer	*p;
};

static void *
flusher_main(void *arg)
{
	struct flusher	*f = arg;

	nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
	(void)spool_producer_flush(f->p);
	return (NULL);
}

/* A blocked enqueue goes on once a commit makes room. */
static void
test_block_until_room(void)
{
	struct flusher	 f;
	spool_producer	*p = producer(1000, 600000, 2, 5000);
	double		 t0, el;
	int64_t		 t;

	put(p, "a");
	put(p, "b");
	f.p = p;
	CU_ASSERT_EQUAL(pthread_create(&f.t, NULL, flusher_main, &f), 0);
	t0 = mono_s();
	TU_RC(spool_producer_enqueue(&t, p, "q", "c", 1, NULL), SPOOL_OK);
	el = mono_s() - t0;
	pthread_join(f.t, NULL);
	CU_ASSERT(el >= 0.09 && el < 4.5);
	CU_ASSERT_EQUAL(t, 3);
	TU_RC(spool_producer_close(p), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), 3);
}

/* The database is locked past the busy timeout: flush says so, the tasks
 * are kept, and committed once the lock goes. */
static void
test_commit_fails_then_recovers(void)
{
	spool_producer	*p = producer(1000, 600000, 1000, 0);
	spool		*blocker = tu_open(tu_db, 0);
	int		 rc;

	spool_busy_timeout(spool__producer_handle(p), 200);
	put(p, "a");
	put(p, "b");
	CU_ASSERT_EQUAL(sqlite3_exec(blocker->db, "BEGIN IMMEDIATE", NULL,
	    NULL, NULL), SQLITE_OK);
	rc = spool_producer_flush(p);
	TU_RC(rc, SPOOL_EBUSY);
	CU_ASSERT_EQUAL(spool_producer_committed(p), 0);
	CU_ASSERT_EQUAL(sqlite3_exec(blocker->db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	spool_close(blocker);
	TU_RC(spool_producer_flush(p), SPOOL_OK);
	CU_ASSERT_EQUAL(spool_producer_committed(p), 2);
	CU_ASSERT_EQUAL(count_tasks(), 2);
	CU_ASSERT_EQUAL(seen_calls[1], 1);
	CU_ASSERT_EQUAL(seen_calls[2], 1);
	TU_RC(spool_producer_close(p), SPOOL_OK);
}

/* The database stays locked: close gives up, says why, and reports every
 * task it could not commit to on_commit. */
static void
test_close_gives_up(void)
{
	spool_producer	*p = producer(1000, 600000, 1000, 0);
	spool		*blocker = tu_open(tu_db, 0);

	spool_busy_timeout(spool__producer_handle(p), 100);
	put(p, "a");
	put(p, "b");
	CU_ASSERT_EQUAL(sqlite3_exec(blocker->db, "BEGIN IMMEDIATE", NULL,
	    NULL, NULL), SQLITE_OK);
	TU_RC(spool_producer_close(p), SPOOL_EBUSY);
	CU_ASSERT_EQUAL(sqlite3_exec(blocker->db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	spool_close(blocker);
	CU_ASSERT_EQUAL(seen_calls[1], 1);
	CU_ASSERT_EQUAL(seen_calls[2], 1);
	CU_ASSERT_EQUAL(seen_rc[1], SPOOL_EBUSY);
	CU_ASSERT_EQUAL(seen_rc[2], SPOOL_EBUSY);
	CU_ASSERT_EQUAL(seen_id[1], 0);
	CU_ASSERT_EQUAL(count_tasks(), 0);
}

static void
test_bad_options(void)
{
	spool_producer_opts	 o = SPOOL_PRODUCER_OPTS_INIT;
	spool_producer		*p = NULL;

	o.flush_count = -1;
	TU_RC(spool_producer_new(&p, tu_db, &o), SPOOL_EINVAL);
	CU_ASSERT(strstr(spool_producer_errmsg(p), "out of range") != NULL);
	TU_RC(spool_producer_errcode(p), SPOOL_EINVAL);
	spool_producer_close(p);
	o.flush_count = 0;
	o.version = 0;
	TU_RC(spool_producer_new(&p, tu_db, &o), SPOOL_EINVAL);
	spool_producer_close(p);
	TU_RC(spool_producer_new(&p, "/nonexistent/dir/x.db", NULL),
	    SPOOL_ENOENT);
	CU_ASSERT(strlen(spool_producer_errmsg(p)) > 0);
	TU_RC(spool_producer_errcode(p), SPOOL_ENOENT);
	TU_RC(spool_producer_enqueue(NULL, p, "q", "x", 1, NULL), SPOOL_EINVAL);
	spool_producer_close(p);
	/* No producer at all: what spool_producer_new leaves out of memory. */
	TU_RC(spool_producer_errcode(NULL), SPOOL_ENOMEM);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_producer_errmsg(NULL),
	    "out of memory"));
}

/* Producer and enqueue options of a version newer than the library knows
 * are refused with SPOOL_EINVAL and a message naming the struct and the
 * version; no task is accepted (issue 15). */
static void
test_opts_version_unknown(void)
{
	spool_producer_opts	 o = SPOOL_PRODUCER_OPTS_INIT;
	spool_enqueue_opts	 eo = SPOOL_ENQUEUE_OPTS_INIT;
	spool_producer		*p = NULL;
	int64_t			 ticket = 5;

	o.version = 99;
	TU_RC(spool_producer_new(&p, tu_db, &o), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_producer_errmsg(p), "spool_producer_opts");
	spool_producer_close(p);
	p = producer(1, 10, 100, 0);
	eo.version = 99;
	TU_RC(spool_producer_enqueue(&ticket, p, "q", "x", 1, &eo),
	    SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_producer_errmsg(p), "spool_enqueue_opts");
	CU_ASSERT_EQUAL(ticket, 0);
	TU_RC(spool_producer_close(p), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 0);
}

/* Many threads at once: every ticket committed once, each its own task. */
#define NT	4
#define PER	500

static void *
many_main(void *arg)
{
	spool_producer	*p = arg;
	int		 i;

	for (i = 0; i < PER; i++)
		if (spool_producer_enqueue(NULL, p, "q", "m", 1, NULL) != 0)
			break;
	return (NULL);
}

static void
test_threads(void)
{
	spool_producer	*p = producer(64, 5, 100, -1);
	pthread_t	 t[NT];
	int		 i, bad = 0;

	for (i = 0; i < NT; i++)
		pthread_create(&t[i], NULL, many_main, p);
	for (i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	TU_RC(spool_producer_close(p), SPOOL_OK);
	CU_ASSERT_EQUAL(count_tasks(), NT * PER);
	for (i = 1; i <= NT * PER; i++)
		bad += seen_calls[i] != 1 || seen_rc[i] != SPOOL_OK;
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(DISTINCT id) FROM tasks"),
	    NT * PER);
}

static CU_TestInfo producer_tests[] = {
	{ "flush by count", test_flush_by_count },
	{ "flush by timer", test_flush_by_timer },
	{ "flush and close", test_flush_and_close },
	{ "refusals are per task", test_refusals },
	{ "the limit: fail at once or after block_ms", test_limit },
	{ "a blocked enqueue goes on when room comes", test_block_until_room },
	{ "a failed commit is kept and tried again", test_commit_fails_then_recovers },
	{ "close gives up on a locked database and says so", test_close_gives_up },
	{ "bad options", test_bad_options },
	{ "options of an unknown version", test_opts_version_unknown },
	{ "threads", test_threads },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("producer", producer_tests));
}
