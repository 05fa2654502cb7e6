/*
 * testutil.c -- the harness every CUnit test binary shares: a temporary
 * directory and database per test, a fake clock, and small SQL helpers.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "testutil.h"

spool	*tu_q;
char	 tu_dir[600];
char	 tu_db[700];
int64_t	 tu_now;

static char	 tu_base[512];

/* The fake clock installed on every handle the harness opens. */
static int64_t
tu_clock(void *arg)
{
	(void)arg;
	return (tu_now);
}

void
tu_advance(int64_t ms)
{
	tu_now += ms;
}

spool *
tu_open(const char *path, int flags)
{
	spool	*q;
	int	 rc;

	rc = spool_open(&q, path, flags);
	if (rc != SPOOL_OK) {
		fprintf(stderr, "tu_open %s: %s\n", path, spool_errmsg(q));
		spool_close(q);
		CU_FAIL_FATAL("tu_open");
		return (NULL);
	}
	spool__set_clock(q, tu_clock, NULL);
	return (q);
}

int64_t
tu_enqueue(const char *queue, const char *text)
{
	int64_t	 id = 0;

	TU_RC(spool_enqueue(&id, tu_q, queue, text, strlen(text), NULL),
	    SPOOL_OK);
	return (id);
}

int64_t
tu_sql_int_on(spool *q, const char *sql)
{
	sqlite3_stmt	*st;
	int64_t		 v = -1;

	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "tu_sql_int: %s: %s\n", sql,
		    sqlite3_errmsg(q->db));
		CU_FAIL("tu_sql_int: bad SQL");
		return (-1);
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (v);
}

int64_t
tu_sql_int(const char *sql)
{
	return (tu_sql_int_on(tu_q, sql));
}

const char *
tu_sql_text(char *buf, size_t len, const char *sql)
{
	return (tu_sql_text_on(tu_q, buf, len, sql));
}

/* On bad SQL, buf says so ("bad SQL: ..."): no expected value matches. */
const char *
tu_sql_text_on(spool *q, char *buf, size_t len, const char *sql)
{
	sqlite3_stmt		*st;
	const unsigned char	*s;

	buf[0] = '\0';
	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(buf, len, "bad SQL: %s", sqlite3_errmsg(q->db));
		return (buf);
	}
	if (sqlite3_step(st) == SQLITE_ROW &&
	    (s = sqlite3_column_text(st, 0)) != NULL)
		snprintf(buf, len, "%s", (const char *)s);
	sqlite3_finalize(st);
	return (buf);
}

int64_t
tu_task_int(int64_t id, const char *col)
{
	char	 sql[256];

	snprintf(sql, sizeof sql, "SELECT %s FROM tasks WHERE id = %lld", col,
	    (long long)id);
	return (tu_sql_int(sql));
}

const char *
tu_task_text(char *buf, size_t len, int64_t id, const char *col)
{
	char	 sql[256];

	snprintf(sql, sizeof sql, "SELECT %s FROM tasks WHERE id = %lld", col,
	    (long long)id);
	return (tu_sql_text(buf, len, sql));
}

void
tu_fixed_backoff(const char *queue, int64_t base_ms)
{
	spool_queue_opts	 o = SPOOL_QUEUE_OPTS_INIT;

	o.set = SPOOL_QUEUE_BACKOFF | SPOOL_QUEUE_BACKOFF_BASE |
	    SPOOL_QUEUE_BACKOFF_JITTER;
	o.backoff = SPOOL_BACKOFF_FIXED;
	o.backoff_base_ms = base_ms;
	o.backoff_jitter = 0;
	TU_RC(spool_queue_create(tu_q, queue, &o), SPOOL_OK);
}

/* nftw callback removing everything under a test directory. */
static int
tu_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return (remove(path));
}

/* Before each test: a new directory, database and clock. */
static void
tu_setup(void)
{
	static int	 n;

	snprintf(tu_dir, sizeof tu_dir, "%s/t%d", tu_base, ++n);
	if (mkdir(tu_dir, 0700) != 0) {
		fprintf(stderr, "mkdir %s: %s\n", tu_dir, strerror(errno));
		exit(99);
	}
	snprintf(tu_db, sizeof tu_db, "%s/test.db", tu_dir);
	tu_now = TU_EPOCH_MS;
	if (spool_open(&tu_q, tu_db, SPOOL_OPEN_CREATE) != SPOOL_OK) {
		fprintf(stderr, "open %s: %s\n", tu_db, spool_errmsg(tu_q));
		exit(99);
	}
	spool__set_clock(tu_q, tu_clock, NULL);
}

/* After each test: close and remove everything it made. */
static void
tu_teardown(void)
{
	spool_close(tu_q);
	tu_q = NULL;
	nftw(tu_dir, tu_rm, 16, FTW_DEPTH | FTW_PHYS);
}

int
tu_run(const char *name, CU_TestInfo *tests)
{
	CU_SuiteInfo	 suites[] = {
		{ name, NULL, NULL, tu_setup, tu_teardown, tests },
		CU_SUITE_INFO_NULL
	};
	const char	*tmp = getenv("TMPDIR");
	unsigned	 failed;

	snprintf(tu_base, sizeof tu_base, "%s/spool-%s-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp", name);
	if (mkdtemp(tu_base) == NULL) {
		fprintf(stderr, "mkdtemp %s: %s\n", tu_base, strerror(errno));
		return (99);
	}
	if (CU_initialize_registry() != CUE_SUCCESS ||
	    CU_register_suites(suites) != CUE_SUCCESS) {
		fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
		return (99);
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (CU_basic_run_tests() != CUE_SUCCESS) {
		fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
		CU_cleanup_registry();
		return (99);
	}
	failed = CU_get_number_of_failures() +
	    CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	nftw(tu_base, tu_rm, 16, FTW_DEPTH | FTW_PHYS);
	return (failed == 0 ? 0 : 1);
}
