/*
 * t-multiproc.c -- several processes on one database: four workers, each
 * with its own handle opened after fork(), drain 20,000 tasks; every task
 * must be completed exactly once, with no lock error, and the file must
 * stay intact.  The workers run on the real clock.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define MP_TASKS	20000
#define MP_CHILDREN	4
#define MP_CHUNK	1000	/* tasks per enqueue_many */
#define MP_BATCH	32	/* tasks per claim */
#define MP_QUEUE	"mp"

/* Seconds on the monotonic clock. */
static double
mono_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/* The file where worker k lists the ids it completed. */
static void
child_path(char *buf, size_t len, int k)
{
	snprintf(buf, len, "%s/worker-%d.ids", tu_dir, k);
}

/* A worker process: claim and complete until the queue stays empty,
 * logging each completed id.  Never returns; exits 0 when done, 2 on any
 * unexpected result. */
static void
child(int k)
{
	spool		*q = NULL;
	spool_job	*jobs[MP_BATCH];
	const char	*queue = MP_QUEUE;
	char		 path[800], line[32];
	size_t		 n, i;
	ssize_t		 w;
	int		 fd, rc, len, empty = 0;

	child_path(path, sizeof path, k);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND,
	    0600)) == -1) {
		fprintf(stderr, "worker %d: %s: %s\n", k, path,
		    strerror(errno));
		_exit(2);
	}
	if ((rc = spool_open(&q, tu_db, 0)) != SPOOL_OK) {
		fprintf(stderr, "worker %d: open: %s\n", k, spool_errmsg(q));
		_exit(2);
	}
	for (;;) {
		rc = spool_claim_many(jobs, &n, q, &queue, 1, MP_BATCH, NULL);
		if (rc == SPOOL_EEMPTY) {
			if (empty)
				break;
			empty = 1;
			usleep(100 * 1000);
			continue;
		}
		empty = 0;
		if (rc != SPOOL_OK) {
			fprintf(stderr, "worker %d: claim: %s (%s)\n", k,
			    spool_strerror(rc), spool_errmsg(q));
			_exit(2);
		}
		for (i = 0; i < n; i++) {
			len = snprintf(line, sizeof line, "%lld",
			    (long long)spool_job_id(jobs[i]));
			rc = spool_job_complete(jobs[i], line, (size_t)len);
			if (rc != SPOOL_OK) {
				fprintf(stderr, "worker %d: complete %s: %s "
				    "(%s)\n", k, line, spool_strerror(rc),
				    spool_errmsg(q));
				_exit(2);
			}
			line[len++] = '\n';
			if ((w = write(fd, line, (size_t)len)) != len) {
				fprintf(stderr, "worker %d: write: %s\n", k,
				    w == -1 ? strerror(errno) : "short");
				_exit(2);
			}
			spool_job_free(jobs[i]);
		}
	}
	spool_close(q);
	if (close(fd) != 0)
		_exit(2);
	_exit(0);
}

/* Fill the database with MP_TASKS tasks, on the real clock, through a
 * handle of its own; their ids go to ids. */
static int
fill(int64_t *ids)
{
	spool		*q = NULL;
	spool_task	*t;
	char		(*payload)[24];
	size_t		 i, done;
	int		 rc;

	t = calloc(MP_CHUNK, sizeof *t);
	payload = calloc(MP_CHUNK, sizeof *payload);
	if (t == NULL || payload == NULL) {
		free(t);
		free(payload);
		return (SPOOL_ENOMEM);
	}
	if ((rc = spool_open(&q, tu_db, 0)) != SPOOL_OK)
		goto out;
	for (done = 0; done < MP_TASKS && rc == SPOOL_OK; done += MP_CHUNK) {
		for (i = 0; i < MP_CHUNK; i++) {
			snprintf(payload[i], sizeof payload[i], "task %zu",
			    done + i);
			t[i] = (spool_task){ MP_QUEUE, payload[i],
			    strlen(payload[i]), NULL };
		}
		rc = spool_enqueue_many(ids + done, NULL, q, t, MP_CHUNK);
		if (rc != SPOOL_OK)
			fprintf(stderr, "enqueue_many: %s\n", spool_errmsg(q));
	}
out:
	spool_close(q);
	free(t);
	free(payload);
	return (rc);
}

/* Read worker k's file, counting each id in seen (indexed from first);
 * returns the number of lines, -1 if the file is unreadable or holds an
 * id that is not one of the tasks. */
static long
read_ids(int k, int64_t first, unsigned char *seen)
{
	FILE		*f;
	char		 path[800], line[64], *end;
	long long	 id;
	long		 lines = 0;

	child_path(path, sizeof path, k);
	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return (-1);
	}
	while (fgets(line, sizeof line, f) != NULL) {
		errno = 0;
		id = strtoll(line, &end, 10);
		if (errno != 0 || end == line || *end != '\n' ||
		    id < first || id >= first + MP_TASKS) {
			fprintf(stderr, "%s: bad line %s", path, line);
			fclose(f);
			return (-1);
		}
		if (seen[id - first] < 255)
			seen[id - first]++;
		lines++;
	}
	fclose(f);
	return (lines);
}

/* Four worker processes drain 20,000 tasks: each is completed exactly
 * once by exactly one worker, with one result and one succeeded attempt,
 * no worker sees a lock error, and the file passes integrity_check. */
static void
test_four_workers(void)
{
	pid_t		 pid[MP_CHILDREN];
	int64_t		*ids;
	unsigned char	*seen;
	char		 buf[64];
	double		 t0, t1, t2;
	long		 lines[MP_CHILDREN], total = 0;
	int		 k, status, workers = 0, dup = 0, missing = 0;
	size_t		 i;

	ids = calloc(MP_TASKS, sizeof *ids);
	seen = calloc(MP_TASKS, 1);
	if (ids == NULL || seen == NULL) {
		CU_FAIL("calloc");
		goto out;
	}
	/* No handle crosses the fork: the harness's is closed, and
	 * reopened once the workers are gone. */
	spool_close(tu_q);
	tu_q = NULL;
	t0 = mono_s();
	TU_RC(fill(ids), SPOOL_OK);
	for (i = 1; i < MP_TASKS; i++)
		if (ids[i] != ids[0] + (int64_t)i)
			break;
	CU_ASSERT_EQUAL_FATAL(i, MP_TASKS);

	t1 = mono_s();
	fflush(stdout);
	fflush(stderr);
	for (k = 0; k < MP_CHILDREN; k++) {
		if ((pid[k] = fork()) == -1) {
			fprintf(stderr, "fork: %s\n", strerror(errno));
			CU_FAIL("fork");
			break;
		}
		if (pid[k] == 0)
			child(k);
	}
	while (k-- > 0) {
		CU_ASSERT_EQUAL(waitpid(pid[k], &status, 0), pid[k]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fprintf(stderr, "\nworker %d: status 0x%x\n", k,
			    (unsigned)status);
		CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	t2 = mono_s();

	tu_q = tu_open(tu_db, 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE "
	    "state = 'succeeded'"), MP_TASKS);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), MP_TASKS);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT max(attempts) FROM tasks"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM results"), MP_TASKS);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts "
	    "WHERE outcome = 'succeeded'"), MP_TASKS);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts"), MP_TASKS);
	/* Each result is the one its worker wrote for that task. */
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM results r "
	    "JOIN tasks t ON t.id = r.task_id "
	    "WHERE r.output = CAST(t.id AS TEXT)"),
	    MP_TASKS);

	for (k = 0; k < MP_CHILDREN; k++) {
		lines[k] = read_ids(k, ids[0], seen);
		CU_ASSERT(lines[k] >= 0);
		if (lines[k] > 0) {
			total += lines[k];
			workers++;
		}
	}
	fprintf(stderr, "\n  t-multiproc: fill %.2f s, %d workers %.2f s, "
	    "tasks per worker:", t1 - t0, MP_CHILDREN, t2 - t1);
	for (k = 0; k < MP_CHILDREN; k++)
		fprintf(stderr, " %ld", lines[k]);
	fprintf(stderr, "\n");
	for (i = 0; i < MP_TASKS; i++) {
		dup += seen[i] > 1;
		missing += seen[i] == 0;
	}
	if (dup != 0 || missing != 0 || total != MP_TASKS)
		fprintf(stderr, "\n%ld ids logged, %d twice or more, %d "
		    "missing\n", total, dup, missing);
	CU_ASSERT_EQUAL(total, MP_TASKS);
	CU_ASSERT_EQUAL(dup, 0);
	CU_ASSERT_EQUAL(missing, 0);
	/* The work was shared, so the workers really did run together. */
	CU_ASSERT(workers >= 2);
	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf,
	    "PRAGMA integrity_check"), "ok");
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM "
	    "pragma_foreign_key_check"), 0);
out:
	free(ids);
	free(seen);
}

static CU_TestInfo multiproc_tests[] = {
	{ "four workers drain 20,000 tasks", test_four_workers },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("multiproc", multiproc_tests));
}
