/*
 * t-exec.c -- the command handlers of the public API (exec.c):
 * spool_exec_new's checks, and a pool running real commands through
 * spool_exec_handler: the payload on stdin, the task's environment and
 * the variables asked for, stdout as the result, stderr's tail as the
 * error, and an exec made for stages only failing a plain task.
 */
#include "config.h"

#include <sys/stat.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* Run a pool on queue until it is empty, with x's command handler. */
static void
drain(const char *queue, spool_exec *x)
{
	const char *const	 qs[] = { queue };
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	spool_pool		*p = NULL;

	o.queues = qs;
	o.nqueues = 1;
	o.max_workers = 1;
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	TU_RC(spool_pool_new(&p, tu_db, spool_exec_handler, x, &o), SPOOL_OK);
	if (p != NULL)
		TU_RC(spool_pool_run(p), SPOOL_OK);
	spool_pool_free(p);
}

/* Enqueue text on queue on the real clock (the pool's), with at most
 * max_attempts attempts (0: the queue's); returns its id. */
static int64_t
enqueue(const char *queue, const char *text, int max_attempts)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool			*q = NULL;
	int64_t			 id = 0;

	o.max_attempts = max_attempts;
	TU_RC(spool_open(&q, tu_db, 0), SPOOL_OK);
	TU_RC(spool_enqueue(&id, q, queue, text, strlen(text), &o), SPOOL_OK);
	spool_close(q);
	return (id);
}

/* A task's text column (the result, the last error). */
static const char *
task_text(char *buf, size_t len, int64_t id, const char *sql)
{
	char	 q[200];

	snprintf(q, sizeof q, sql, (long long)id);
	return (tu_sql_text(buf, len, q));
}

static void
test_refusals(void)
{
	const char *const	 ok[] = { "/bin/true" }, *empty[] = { "" };
	const char *const	 bad_env[] = { "A=B" }, *no_env[] = { "" };
	const char *const	 null_arg[] = { "/bin/echo", NULL };
	spool_exec_opts		 o = SPOOL_EXEC_OPTS_INIT;
	spool_exec		*x = (spool_exec *)1;

	TU_RC(spool_exec_new(NULL, ok, 1, NULL), SPOOL_EINVAL);
	TU_RC(spool_exec_new(&x, empty, 1, NULL), SPOOL_EINVAL);
	CU_ASSERT(x == NULL);
	TU_RC(spool_exec_new(&x, NULL, 1, NULL), SPOOL_EINVAL);
	TU_RC(spool_exec_new(&x, null_arg, 2, NULL), SPOOL_EINVAL);
	o.env = bad_env;
	o.nenv = 1;
	TU_RC(spool_exec_new(&x, ok, 1, &o), SPOOL_EINVAL);
	o.env = no_env;
	TU_RC(spool_exec_new(&x, ok, 1, &o), SPOOL_EINVAL);
	o.env = NULL;
	TU_RC(spool_exec_new(&x, ok, 1, &o), SPOOL_EINVAL);
	o.nenv = 0;
	o.grace_ms = -1;
	TU_RC(spool_exec_new(&x, ok, 1, &o), SPOOL_EINVAL);
	o.grace_ms = 0;
	o.version = 99;
	TU_RC(spool_exec_new(&x, ok, 1, &o), SPOOL_EINVAL);
	CU_ASSERT(x == NULL);
	o.version = SPOOL_EXEC_OPTS_VERSION;
	TU_RC(spool_exec_new(&x, ok, 1, &o), SPOOL_OK);
	CU_ASSERT(x != NULL);
	spool_exec_free(x);
	/* Stages only: no command of its own. */
	TU_RC(spool_exec_new(&x, NULL, 0, NULL), SPOOL_OK);
	spool_exec_free(x);
	spool_exec_free(NULL);
	TU_RC(spool_exec_subreaper(NULL), SPOOL_EINVAL);
}

static void
test_run(void)
{
	const char *const	 argv[] = { "/bin/sh", "-c",
	    "printf '%s %s %s %s %s' \"$SPOOL_QUEUE\" \"$SPOOL_ATTEMPT\" "
	    "\"$(cat)\" \"$T_EXEC_ASKED\" \"${T_EXEC_NOT:-unset}\"; "
	    "[ \"$(cat /dev/null)\" = '' ] || exit 9; "
	    "case $SPOOL_TASK_ID in '') exit 8 ;; esac" };
	const char *const	 fail[] = { "/bin/sh", "-c",
	    "echo starting; echo boom >&2; exit 3" };
	const char *const	 env[] = { "T_EXEC_ASKED" };
	spool_exec_opts		 o = SPOOL_EXEC_OPTS_INIT;
	spool_exec		*x = NULL;
	char			 buf[256];
	int64_t			 id, bad;

	setenv("T_EXEC_ASKED", "asked", 1);
	setenv("T_EXEC_NOT", "leaked", 1);
	o.env = env;
	o.nenv = 1;
	TU_RC(spool_exec_new(&x, argv, 3, &o), SPOOL_OK);
	/* Made now: what the environment says later does not count. */
	setenv("T_EXEC_ASKED", "changed", 1);
	id = enqueue("e", "hello", 0);
	drain("e", x);
	spool_exec_free(x);
	CU_ASSERT_STRING_EQUAL(task_text(buf, sizeof buf, id,
	    "SELECT state FROM tasks WHERE id = %lld"), "succeeded");
	CU_ASSERT_STRING_EQUAL(task_text(buf, sizeof buf, id,
	    "SELECT CAST(output AS TEXT) FROM results WHERE task_id = %lld"),
	    "e 1 hello asked unset");

	/* A failure: stderr's tail is the error, and no attempts left. */
	bad = enqueue("f", "x", 1);
	TU_RC(spool_exec_new(&x, fail, 3, NULL), SPOOL_OK);
	drain("f", x);
	spool_exec_free(x);
	CU_ASSERT_STRING_EQUAL(task_text(buf, sizeof buf, bad,
	    "SELECT state FROM tasks WHERE id = %lld"), "dead");
	CU_ASSERT(strstr(task_text(buf, sizeof buf, bad,
	    "SELECT last_error FROM tasks WHERE id = %lld"), "boom") != NULL);

	/* An exec for stages only fails a plain task, saying why. */
	bad = enqueue("s", "x", 1);
	TU_RC(spool_exec_new(&x, NULL, 0, NULL), SPOOL_OK);
	drain("s", x);
	spool_exec_free(x);
	CU_ASSERT_STRING_EQUAL(task_text(buf, sizeof buf, bad,
	    "SELECT state FROM tasks WHERE id = %lld"), "dead");
	CU_ASSERT(strstr(task_text(buf, sizeof buf, bad,
	    "SELECT last_error FROM tasks WHERE id = %lld"),
	    "has no command") != NULL);
	unsetenv("T_EXEC_ASKED");
	unsetenv("T_EXEC_NOT");
}

/* Wait up to 20 s for path to exist; 1 if it does. */
static int
wait_file(const char *path)
{
	struct timespec	 ts = { 0, 5 * 1000000 };
	struct stat	 sb;
	int		 i;

	for (i = 0; i < 4000; i++) {
		if (stat(path, &sb) == 0)
			return (1);
		nanosleep(&ts, NULL);
	}
	return (0);
}

/* A pool, in a thread of its own, draining queue b with exec b. */
struct bpool {
	spool_exec	*x;
	pthread_t	 thread;
	int		 rc;
};

static void *
bpool_main(void *arg)
{
	struct bpool		*b = arg;
	const char *const	 qs[] = { "b" };
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	spool_pool		*p = NULL;

	o.queues = qs;
	o.nqueues = 1;
	o.max_workers = 1;
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.max_time_ms = 30000;		/* a hang fails, not blocks */
	if ((b->rc = spool_pool_new(&p, tu_db, spool_exec_handler, b->x,
	    &o)) == SPOOL_OK)
		b->rc = spool_pool_run(p);
	spool_pool_free(p);
	return (NULL);
}

/* A reaping exec's sweep ends what its commands leave behind, never the
 * running command of another exec of the same process: exec b's command
 * runs, from start to finish, across exec a's task and sweep. */
static void
test_two_execs(void)
{
	char		 started[600], release[600], cmd[1400];
	const char	*argv_b[] = { "/bin/sh", "-c", cmd };
	const char	*argv_a[] = { "/bin/true" };
	spool_exec	*a = NULL;
	struct bpool	 b;
	char		 buf[64];
	int64_t		 ida, idb;
	FILE		*f;

	snprintf(started, sizeof started, "%s/b-started", tu_dir);
	snprintf(release, sizeof release, "%s/release", tu_dir);
	snprintf(cmd, sizeof cmd, ": >'%s'; while [ ! -e '%s' ]; do "
	    "sleep 0.01; done; printf ok", started, release);
	idb = enqueue("b", "x", 1);
	ida = enqueue("a", "x", 1);
	memset(&b, 0, sizeof b);
	TU_RC(spool_exec_new(&b.x, argv_b, 3, NULL), SPOOL_OK);
	TU_RC(spool_exec_new(&a, argv_a, 1, NULL), SPOOL_OK);
	if (b.x == NULL || a == NULL)
		goto out;
	TU_RC(spool_exec_subreaper(a), SPOOL_OK);
	CU_ASSERT_FATAL(pthread_create(&b.thread, NULL, bpool_main, &b) == 0);
	CU_ASSERT(wait_file(started));
	/* b's command runs: a's task ends, and its sweep looks. */
	drain("a", a);
	if ((f = fopen(release, "w")) != NULL)
		fclose(f);
	pthread_join(b.thread, NULL);
	TU_RC(b.rc, SPOOL_OK);
	CU_ASSERT_STRING_EQUAL(task_text(buf, sizeof buf, ida,
	    "SELECT state FROM tasks WHERE id = %lld"), "succeeded");
	CU_ASSERT_STRING_EQUAL(task_text(buf, sizeof buf, idb,
	    "SELECT state FROM tasks WHERE id = %lld"), "succeeded");
	CU_ASSERT_STRING_EQUAL(task_text(buf, sizeof buf, idb,
	    "SELECT CAST(output AS TEXT) FROM results WHERE task_id = %lld"),
	    "ok");
out:
	spool_exec_free(a);
	spool_exec_free(b.x);
}

static CU_TestInfo tests[] = {
	{ "refusals", test_refusals },
	{ "run commands", test_run },
	{ "a reaping exec spares another's command", test_two_execs },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("exec", tests));
}
