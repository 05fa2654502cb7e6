/*
 * t-exec.c -- the command handlers of the public API (exec.c):
 * spool_exec_new's checks, and a pool running real commands through
 * spool_exec_handler: the payload on stdin, the task's environment and
 * the variables asked for, stdout as the result, stderr's tail as the
 * error, and an exec made for stages only failing a plain task.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static CU_TestInfo tests[] = {
	{ "refusals", test_refusals },
	{ "run commands", test_run },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("exec", tests));
}
