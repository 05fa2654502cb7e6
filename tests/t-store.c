/*
 * t-store.c -- opening a database (store.c): pragmas, file mode, the
 * refusal of files that are not spool databases (leaving them untouched),
 * migrations when several processes open a new file at once, migrations
 * of files made by every earlier schema version's code (tests/fixtures/),
 * a process killed before each change a migration makes, the busy
 * timeout, and the views.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* Read a whole small file into buf; returns its length or -1. */
static ssize_t
slurp(const char *path, char *buf, size_t len)
{
	ssize_t	 n;
	int	 fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		return (-1);
	n = read(fd, buf, len);
	close(fd);
	return (n);
}

/* Write len bytes to a new file at path. */
static void
spit(const char *path, const void *buf, size_t len)
{
	int	 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CU_ASSERT_FATAL(fd != -1);
	CU_ASSERT_FATAL(write(fd, buf, len) == (ssize_t)len);
	close(fd);
}

/* Open path expecting failure code want; the file and its -wal must be
 * byte-identical afterwards (a -wal that was not there must not be left
 * behind: neither data nor litter). */
static void
expect_refused(const char *path, int flags, int want)
{
	static char	 before[65536], after[65536], wb[65536], wa[65536];
	char		 wal[800];
	ssize_t		 nb, na, nwb, nwa;
	spool		*q;

	snprintf(wal, sizeof wal, "%s-wal", path);
	nb = slurp(path, before, sizeof before);
	nwb = slurp(wal, wb, sizeof wb);
	TU_RC(spool_open(&q, path, flags), want);
	CU_ASSERT_PTR_NOT_NULL(q);
	CU_ASSERT(strlen(spool_errmsg(q)) > 0);
	CU_ASSERT_EQUAL(spool_errcode(q), want);
	spool_close(q);
	na = slurp(path, after, sizeof after);
	CU_ASSERT_EQUAL(na, nb);
	if (na == nb && na > 0)
		CU_ASSERT(memcmp(before, after, (size_t)na) == 0);
	nwa = slurp(wal, wa, sizeof wa);
	CU_ASSERT_EQUAL(nwa, nwb);
	if (nwa == nwb && nwa > 0)
		CU_ASSERT(memcmp(wb, wa, (size_t)nwa) == 0);
}

/* A new database is WAL, synchronous FULL, foreign keys on, untrusted
 * schema, 10 s busy timeout, and carries spool's id and schema version. */
static void
test_pragmas(void)
{
	char	 buf[32];

	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf,
	    "PRAGMA journal_mode"), "wal");
	CU_ASSERT_EQUAL(tu_sql_int("PRAGMA synchronous"), 2);
	CU_ASSERT_EQUAL(tu_sql_int("PRAGMA foreign_keys"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("PRAGMA trusted_schema"), 0);
	CU_ASSERT_EQUAL(tu_q->busy_timeout_ms, 10000);
	CU_ASSERT_EQUAL(tu_sql_int("PRAGMA application_id"),
	    SPOOL_APPLICATION_ID);
	CU_ASSERT_EQUAL(tu_sql_int("PRAGMA user_version"),
	    SPOOL_SCHEMA_VERSION);
}

/* SPOOL_OPEN_SYNC_NORMAL selects synchronous=NORMAL; the busy timeout
 * can be changed and bad values are refused. */
static void
test_sync_normal_and_timeout(void)
{
	spool	*q = tu_open(tu_db, SPOOL_OPEN_SYNC_NORMAL);

	CU_ASSERT_EQUAL(tu_sql_int_on(q, "PRAGMA synchronous"), 1);
	TU_RC(spool_busy_timeout(q, 250), SPOOL_OK);
	CU_ASSERT_EQUAL(q->busy_timeout_ms, 250);
	TU_RC(spool_busy_timeout(q, -1), SPOOL_EINVAL);
	CU_ASSERT_EQUAL(q->busy_timeout_ms, 250);
	spool_close(q);
}

/* Under umask 000 a new database, its -wal and its -shm are mode 0600. */
static void
test_mode_0600(void)
{
	char		 path[800], side[820];
	struct stat	 sb;
	mode_t		 old;
	spool		*q;

	snprintf(path, sizeof path, "%s/mode.db", tu_dir);
	old = umask(0);
	q = tu_open(path, SPOOL_OPEN_CREATE);
	umask(old);
	CU_ASSERT_FATAL(q != NULL);
	TU_RC(spool_enqueue(NULL, q, "m", "x", 1, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 07777, 0600);
	snprintf(side, sizeof side, "%s-wal", path);
	CU_ASSERT_EQUAL_FATAL(stat(side, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 07777, 0600);
	snprintf(side, sizeof side, "%s-shm", path);
	CU_ASSERT_EQUAL_FATAL(stat(side, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 07777, 0600);
	spool_close(q);

	/* A restrictive umask must not leave the owner locked out either. */
	snprintf(path, sizeof path, "%s/mode2.db", tu_dir);
	old = umask(0277);
	q = tu_open(path, SPOOL_OPEN_CREATE);
	umask(old);
	CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_mode & 07777, 0600);
	spool_close(q);
}

/* Without CREATE a missing file is SPOOL_ENOENT and is not created. */
static void
test_missing(void)
{
	char	 path[800];
	spool	*q;

	snprintf(path, sizeof path, "%s/nope.db", tu_dir);
	TU_RC(spool_open(&q, path, 0), SPOOL_ENOENT);
	CU_ASSERT(strstr(spool_errmsg(q), "nope.db") != NULL);
	spool_close(q);
	CU_ASSERT(access(path, F_OK) != 0);
	snprintf(path, sizeof path, "%s/no/such/dir.db", tu_dir);
	TU_RC(spool_open(&q, path, SPOOL_OPEN_CREATE), SPOOL_ENOENT);
	spool_close(q);
}

/* Directories, symlinks and FIFOs are refused before SQLite sees them. */
static void
test_not_regular(void)
{
	char	 path[800], link[800];
	spool	*q;

	TU_RC(spool_open(&q, tu_dir, SPOOL_OPEN_CREATE), SPOOL_ENOTDB);
	CU_ASSERT(strstr(spool_errmsg(q), "directory") != NULL);
	spool_close(q);

	snprintf(link, sizeof link, "%s/link.db", tu_dir);
	CU_ASSERT_EQUAL_FATAL(symlink(tu_db, link), 0);
	TU_RC(spool_open(&q, link, 0), SPOOL_ENOTDB);
	CU_ASSERT(strstr(spool_errmsg(q), "symbolic link") != NULL);
	spool_close(q);

	snprintf(path, sizeof path, "%s/fifo.db", tu_dir);
	CU_ASSERT_EQUAL_FATAL(mkfifo(path, 0600), 0);
	TU_RC(spool_open(&q, path, SPOOL_OPEN_CREATE), SPOOL_ENOTDB);
	spool_close(q);
}

/* A file that is not SQLite at all is refused and left untouched. */
static void
test_not_sqlite(void)
{
	char	 path[800], junk[4096];
	size_t	 i;

	for (i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 131 + 7);
	snprintf(path, sizeof path, "%s/junk.db", tu_dir);
	spit(path, junk, sizeof junk);
	expect_refused(path, 0, SPOOL_ENOTDB);
	expect_refused(path, SPOOL_OPEN_CREATE, SPOOL_ENOTDB);

	/* Short text, as a mistyped path to a config file would be. */
	snprintf(path, sizeof path, "%s/notes.txt", tu_dir);
	spit(path, "hello, world\n", 13);
	expect_refused(path, SPOOL_OPEN_CREATE, SPOOL_ENOTDB);
}

/* Another application's SQLite file is refused and left untouched. */
static void
test_foreign_sqlite(void)
{
	char	 path[800];
	sqlite3	*db;

	snprintf(path, sizeof path, "%s/other.db", tu_dir);
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "CREATE TABLE tasks (x); "
	    "INSERT INTO tasks VALUES (1)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	expect_refused(path, 0, SPOOL_ENOTDB);
	expect_refused(path, SPOOL_OPEN_CREATE, SPOOL_ENOTDB);

	/* Same, with another application_id and no tables. */
	snprintf(path, sizeof path, "%s/other2.db", tu_dir);
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "PRAGMA application_id = 42; "
	    "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	expect_refused(path, SPOOL_OPEN_CREATE, SPOOL_ENOTDB);
}

/* Another application's WAL-mode file with transactions still in its
 * -wal is refused without a checkpoint: both files stay as they were. */
static void
test_foreign_wal(void)
{
	char	 path[800], copy[800], wal[820], cwal[820], cmd[3400];
	sqlite3	*db;

	snprintf(path, sizeof path, "%s/app.db", tu_dir);
	snprintf(copy, sizeof copy, "%s/app-copy.db", tu_dir);
	snprintf(wal, sizeof wal, "%s-wal", path);
	snprintf(cwal, sizeof cwal, "%s-wal", copy);
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "PRAGMA journal_mode = WAL; "
	    "PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x); "
	    "INSERT INTO t VALUES (1), (2), (3)", NULL, NULL, NULL), SQLITE_OK);
	/* Copy the file and its WAL while the WAL still holds the rows. */
	snprintf(cmd, sizeof cmd, "cp '%s' '%s' && cp '%s' '%s'", path, copy,
	    wal, cwal);
	CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
	sqlite3_close(db);
	CU_ASSERT(access(cwal, F_OK) == 0);
	expect_refused(copy, 0, SPOOL_ENOTDB);
	CU_ASSERT(access(cwal, F_OK) == 0);
}

/* A spool database from a newer library is refused with both versions
 * named, and left untouched. */
static void
test_newer_schema(void)
{
	char	 path[800], want[64];
	spool	*q;

	snprintf(path, sizeof path, "%s/new.db", tu_dir);
	q = tu_open(path, SPOOL_OPEN_CREATE);
	CU_ASSERT_EQUAL(sqlite3_exec(q->db, "PRAGMA user_version = 99",
	    NULL, NULL, NULL), SQLITE_OK);
	spool_close(q);
	expect_refused(path, 0, SPOOL_ESCHEMA);
	TU_RC(spool_open(&q, path, 0), SPOOL_ESCHEMA);
	CU_ASSERT(strstr(spool_errmsg(q), "99") != NULL);
	snprintf(want, sizeof want, "(%d)", SPOOL_SCHEMA_VERSION);
	CU_ASSERT(strstr(spool_errmsg(q), want) != NULL);
	spool_close(q);
}

/* An empty file becomes a database only when CREATE is asked for. */
static void
test_empty_file(void)
{
	char	 path[800];
	spool	*q;

	snprintf(path, sizeof path, "%s/empty.db", tu_dir);
	spit(path, "", 0);
	expect_refused(path, 0, SPOOL_ENOTDB);
	q = tu_open(path, SPOOL_OPEN_CREATE);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "PRAGMA user_version"),
	    SPOOL_SCHEMA_VERSION);
	spool_close(q);
}

/* Bad arguments are SPOOL_EINVAL; NULL handles are harmless. */
static void
test_bad_args(void)
{
	spool	*q;
	char	 v[32];

	TU_RC(spool_open(NULL, tu_db, 0), SPOOL_EINVAL);
	TU_RC(spool_open(&q, NULL, 0), SPOOL_EINVAL);
	spool_close(q);
	TU_RC(spool_open(&q, "", 0), SPOOL_EINVAL);
	spool_close(q);
	TU_RC(spool_open(&q, tu_db, 0x80), SPOOL_EINVAL);
	CU_ASSERT(strstr(spool_errmsg(q), "flags") != NULL);
	spool_close(q);
	spool_close(NULL);
	CU_ASSERT_PTR_NOT_NULL(spool_errmsg(NULL));
	TU_RC(spool_busy_timeout(NULL, 5), SPOOL_EINVAL);
	CU_ASSERT_STRING_EQUAL(spool_version(), SPOOL_VERSION);
	/* configure.ac's version is the header's, and so is the number. */
	CU_ASSERT_STRING_EQUAL(PACKAGE_VERSION, SPOOL_VERSION);
	snprintf(v, sizeof v, "%d.%d.%d", SPOOL_VERSION_NUMBER / 1000000,
	    SPOOL_VERSION_NUMBER / 1000 % 1000, SPOOL_VERSION_NUMBER % 1000);
	CU_ASSERT_STRING_EQUAL(v, SPOOL_VERSION);
	CU_ASSERT_STRING_EQUAL(spool_strerror(SPOOL_ELEASE), "lease lost");
	CU_ASSERT_STRING_EQUAL(spool_strerror(12345), "unknown error code");
	CU_ASSERT_PTR_NULL(spool_state_name(0));
	CU_ASSERT_STRING_EQUAL(spool_state_name(SPOOL_DEAD), "dead");
}

/* Eight processes open one new file at the same instant: all succeed,
 * the schema is created once, and the file is whole. */
static void
test_concurrent_create(void)
{
	char	 path[800], c;
	pid_t	 pids[8];
	int	 gate[2], i, status, ok = 0;
	spool	*q;

	snprintf(path, sizeof path, "%s/race.db", tu_dir);
	CU_ASSERT_FATAL(pipe(gate) == 0);
	for (i = 0; i < 8; i++) {
		if ((pids[i] = fork()) == 0) {
			close(gate[1]);
			(void)read(gate[0], &c, 1);	/* wait for the start */
			if (spool_open(&q, path, SPOOL_OPEN_CREATE) != 0) {
				fprintf(stderr, "child: %s\n", spool_errmsg(q));
				_exit(1);
			}
			if (spool_enqueue(NULL, q, "race", "x", 1, NULL) != 0) {
				fprintf(stderr, "child: %s\n", spool_errmsg(q));
				_exit(2);
			}
			spool_close(q);
			_exit(0);
		}
		CU_ASSERT_FATAL(pids[i] > 0);
	}
	close(gate[0]);
	close(gate[1]);		/* all children start now */
	for (i = 0; i < 8; i++) {
		CU_ASSERT(waitpid(pids[i], &status, 0) == pids[i]);
		ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	CU_ASSERT_EQUAL(ok, 8);
	q = tu_open(path, 0);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM tasks"), 8);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM sqlite_master "
	    "WHERE type = 'table' AND name = 'tasks'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "PRAGMA user_version"),
	    SPOOL_SCHEMA_VERSION);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM "
	    "pragma_integrity_check WHERE integrity_check = 'ok'"), 1);
	spool_close(q);
}

/* Opening again does not migrate again: the schema is left as it is. */
static void
test_reopen(void)
{
	int64_t	 objs = tu_sql_int("SELECT count(*) FROM sqlite_master");
	spool	*q = tu_open(tu_db, 0);

	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM sqlite_master"),
	    objs);
	spool_close(q);
	CU_ASSERT(objs > 10);
}

/* Every named query was prepared at open, but the bulk inserts, which
 * are prepared at their first use. */
static void
test_all_prepared(void)
{
	int	 i;

	for (i = 0; i < SPOOL_SQL__COUNT; i++) {
		if (i == SPOOL_SQL_TASK_INSERT_ROWS ||
		    i == SPOOL_SQL_TASK_INSERT_SAME) {
			CU_ASSERT_PTR_NOT_NULL(spool__stmt_lazy(tu_q, i));
		} else {
			CU_ASSERT_PTR_NOT_NULL(tu_q->stmt[i]);
		}
	}
}

/* A lock held past the busy timeout is SPOOL_EBUSY, changes nothing, and
 * says how long it waited. */
static void
test_busy(void)
{
	sqlite3	*db;
	int64_t	 id;

	CU_ASSERT_EQUAL_FATAL(sqlite3_open(tu_db, &db), SQLITE_OK);
	CU_ASSERT_EQUAL_FATAL(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	TU_RC(spool_busy_timeout(tu_q, 100), SPOOL_OK);
	TU_RC(spool_enqueue(&id, tu_q, "b", "x", 1, NULL), SPOOL_EBUSY);
	CU_ASSERT(strstr(spool_errmsg(tu_q), "locked") != NULL);
	CU_ASSERT(strstr(spool_errmsg(tu_q), "0.1 s") != NULL);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 0);
	TU_RC(spool_enqueue(&id, tu_q, "b", "x", 1, NULL), SPOOL_OK);
}

/* The views answer, with readable UTC times, for a task in each state. */
static void
test_views(void)
{
	spool_job	*job;
	char		 buf[64];

	tu_enqueue("v", "{\"n\":1}");
	tu_enqueue("v", "{\"n\":2}");
	tu_enqueue("v", "{\"n\":3}");
	TU_RC(spool_claim(&job, tu_q, "v", NULL), SPOOL_OK);
	TU_RC(spool_job_complete(job, "ok", 2), SPOOL_OK);
	spool_job_free(job);
	TU_RC(spool_claim(&job, tu_q, "v", NULL), SPOOL_OK);
	TU_RC(spool_job_fail(job, "boom", SPOOL_FAIL_PERMANENT), SPOOL_OK);
	spool_job_free(job);
	TU_RC(spool_claim(&job, tu_q, "v", NULL), SPOOL_OK);

	CU_ASSERT_EQUAL(tu_sql_int("SELECT succeeded FROM spool_queues "
	    "WHERE queue = 'v'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT dead FROM spool_queues "
	    "WHERE queue = 'v'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT running FROM spool_queues "
	    "WHERE queue = 'v'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM spool_running"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM spool_dead "
	    "WHERE dead_reason = 'failed' AND last_error = 'boom'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM spool_history"), 2);
	CU_ASSERT_STRING_EQUAL(tu_sql_text(buf, sizeof buf,
	    "SELECT started FROM spool_history LIMIT 1"),
	    "2027-01-15 08:00:00.000");
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM spool_ready"), 0);
	spool_job_free(job);
}

/* The whole of file name (relative to tests/ in the source tree), as a
 * NUL-terminated string to free. */
static char *
source_file(const char *name)
{
	const char	*dir = getenv("TESTS_SRCDIR");
	char		 path[800], *text;
	FILE		*f;
	long		 len;

	snprintf(path, sizeof path, "%s/%s", dir != NULL ? dir : "tests",
	    name);
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	CU_ASSERT_FATAL(text != NULL && fread(text, 1, (size_t)len, f) ==
	    (size_t)len);
	fclose(f);
	return (text);
}

/* Rebuild the fixture of schema version v (a dump made by the code of
 * that version: tests/fixtures/) as a database file at path. */
static void
load_fixture_v(const char *path, int v)
{
	sqlite3		*db;
	char		*sql, *err = NULL, name[64];

	snprintf(name, sizeof name, "fixtures/schema-v%d.sql", v);
	sql = source_file(name);
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fprintf(stderr, "fixture: %s\n", err);
	CU_ASSERT_PTR_NULL(err);
	sqlite3_free(err);
	sqlite3_close(db);
	free(sql);
}

/* Rebuild the schema-v1 fixture (made by the version 1 code) at path. */
static void
load_fixture(const char *path)
{
	load_fixture_v(path, 1);
}

/* Everything a migration must keep: every task's columns, results and
 * history, as one string. */
#define MIGRATION_SNAPSHOT						\
	"SELECT group_concat(x, ';') FROM (SELECT id || ':' || queue || ':' || " \
	"state || ':' || ifnull(dead_reason, '') || ':' || attempts || ':' || " \
	"priority || ':' || run_at_ms || ':' || hex(payload) || ':' || " \
	"ifnull(idem_key, '') || ':' || ifnull(lease_token, '') || ':' || " \
	"ifnull(lease_until_ms, '') || ':' || ifnull(last_error, '') AS x " \
	"FROM tasks ORDER BY id) UNION ALL SELECT group_concat(y, ';') FROM " \
	"(SELECT task_id || hex(output) || duration_ms AS y FROM results " \
	"UNION ALL SELECT task_id || attempt || outcome || ifnull(error, '') " \
	"FROM attempts ORDER BY 1)"

/* A snapshot of the rows of the database at path. */
static void
snapshot_rows(const char *path, char *buf, size_t len)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	size_t		 off = 0;

	buf[0] = '\0';
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
	CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db, MIGRATION_SNAPSHOT, -1,
	    &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW && off < len)
		off += (size_t)snprintf(buf + off, len - off, "%s|",
		    (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* A database made by the schema 1 code is migrated to the current
 * schema with every task, result and history row unchanged, a live lease
 * still held and an expired one reaped by the next claim. */
static void
test_migrate_v1(void)
{
	char		 path[800], before[16384], after[16384];
	spool_job	*job;
	spool		*q;

	snprintf(path, sizeof path, "%s/v1.db", tu_dir);
	load_fixture(path);
	snapshot_rows(path, before, sizeof before);
	CU_ASSERT(strstr(before, "running") != NULL);
	CU_ASSERT(strstr(before, "FF000102") != NULL);

	q = tu_open(path, 0);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "PRAGMA user_version"),
	    SPOOL_SCHEMA_VERSION);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM "
	    "pragma_integrity_check WHERE integrity_check = 'ok'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM "
	    "pragma_foreign_key_check"), 0);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM results "
	    "WHERE truncated = 0"), 1);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM workers"), 0);
	snapshot_rows(path, after, sizeof after);
	CU_ASSERT_STRING_EQUAL(after, before);
	/* Ids are never reused: the AUTOINCREMENT mark survived the rebuild
	 * of the tasks table, and no IN list is left in a CHECK. */
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT seq FROM sqlite_sequence "
	    "WHERE name = 'tasks'"), 11);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM sqlite_sequence"),
	    1);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM sqlite_master "
	    "WHERE sql LIKE '% IN (%'"), 0);
	/* Schema 8: every task of the file was counted as enqueued (by
	 * schema 5), so the mark is the last task, and the view's counts
	 * are the tasks. */
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT task_id FROM counters_mark"),
	    tu_sql_int_on(q, "SELECT max(id) FROM tasks"));
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT sum(enqueued) FROM "
	    "spool_counters"), tu_sql_int_on(q, "SELECT count(*) FROM tasks"));

	/* The fake clock is in 2027-01: task 6's lease (to 2027-09) holds,
	 * task 7's ended in 2026 and the first claim reaps it. */
	TU_RC(spool_claim(&job, q, "fx", NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(spool_job_id(job), 10);	/* priority 5, keyed */
	spool_job_free(job);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM tasks "
	    "WHERE id = 6 AND state = 'running'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM tasks "
	    "WHERE id = 7 AND state = 'ready'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM attempts "
	    "WHERE task_id = 7 AND outcome = 'lease_lost'"), 1);
	spool_close(q);
}

/* Eight processes open the same schema 1 file at once: all succeed, the
 * migration happens once, and the rows are as they were. */
static void
test_migrate_v1_concurrent(void)
{
	char	 path[800], before[16384], after[16384], c;
	pid_t	 pids[8];
	int	 gate[2], i, status, ok = 0;
	spool	*q;

	snprintf(path, sizeof path, "%s/v1.db", tu_dir);
	load_fixture(path);
	snapshot_rows(path, before, sizeof before);
	CU_ASSERT_FATAL(pipe(gate) == 0);
	for (i = 0; i < 8; i++) {
		if ((pids[i] = fork()) == 0) {
			close(gate[1]);
			(void)read(gate[0], &c, 1);
			if (spool_open(&q, path, 0) != SPOOL_OK) {
				fprintf(stderr, "child: %s\n", spool_errmsg(q));
				_exit(1);
			}
			spool_close(q);
			_exit(0);
		}
		CU_ASSERT_FATAL(pids[i] > 0);
	}
	close(gate[0]);
	close(gate[1]);
	for (i = 0; i < 8; i++) {
		CU_ASSERT(waitpid(pids[i], &status, 0) == pids[i]);
		ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	CU_ASSERT_EQUAL(ok, 8);
	snapshot_rows(path, after, sizeof after);
	CU_ASSERT_STRING_EQUAL(after, before);
	q = tu_open(path, 0);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "PRAGMA user_version"),
	    SPOOL_SCHEMA_VERSION);
	CU_ASSERT_EQUAL(tu_sql_int_on(q, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'workers'"), 1);
	spool_close(q);
}

/* The first column of the first row of the query fmt (sqlite3_mprintf's
 * format) on db, as an integer; -1 if there is no row. */
static int64_t
db_int(sqlite3 *db, const char *fmt, ...)
{
	sqlite3_stmt	*st;
	va_list		 ap;
	char		*sql;
	int64_t		 v = -1;

	va_start(ap, fmt);
	sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "\n%s: %s\n", sql, sqlite3_errmsg(db));
		CU_FAIL("db_int: bad SQL");
		sqlite3_free(sql);
		return (-1);
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return (v);
}

/* Every row sql returns on db, each row's columns as text joined by '|',
 * rows joined by newlines, as a string to free. */
static char *
db_rows(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	char		*out = NULL;
	size_t		 len = 0, cap = 0, n;
	int		 i, ncol;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "\n%s: %s\n", sql, sqlite3_errmsg(db));
		CU_FAIL("db_rows: bad SQL");
		return (strdup(""));
	}
	ncol = sqlite3_column_count(st);
	for (;;) {
		int	 rc = sqlite3_step(st);

		if (rc != SQLITE_ROW) {
			CU_ASSERT_EQUAL(rc, SQLITE_DONE);
			break;
		}
		for (i = 0; i < ncol; i++) {
			const char	*v = (const char *)
			    sqlite3_column_text(st, i);

			n = v != NULL ? strlen(v) : 0;
			if (len + n + 2 >= cap) {
				cap = (len + n + 2) * 2;
				CU_ASSERT_FATAL((out = realloc(out, cap)) !=
				    NULL);
			}
			memcpy(out + len, v != NULL ? v : "", n);
			len += n;
			out[len++] = i + 1 < ncol ? '|' : '\n';
		}
	}
	sqlite3_finalize(st);
	if (out == NULL)
		return (strdup(""));
	out[len] = '\0';
	return (out);
}

/*
 * What a migration must keep, whatever the version it starts from: for
 * each table of the old file (spool's and sqlite_sequence), a query that
 * reads every row of it, each of the columns it has there, quoted (so a
 * blob, a text and a number differ).  The same queries, run on the
 * migrated file, must give the same rows: later migrations add tables
 * and columns, never change a row of the old ones.
 */
struct old_table {
	char	*name;		/* sqlite3_mprintf'd */
	char	*sql;		/* sqlite3_mprintf'd */
	char	*rows;		/* what the old file has */
};

/* The tables of db, their queries and rows; *n of them, to free with
 * old_tables_free. */
static struct old_table *
old_tables(sqlite3 *db, size_t *n)
{
	struct old_table	*t;
	sqlite3_stmt		*st, *cs;
	char			*cols;
	size_t			 i = 0;

	*n = (size_t)db_int(db, "SELECT count(*) FROM sqlite_schema "
	    "WHERE type = 'table'");
	CU_ASSERT_FATAL((t = calloc(*n + 1, sizeof *t)) != NULL);
	CU_ASSERT_FATAL(sqlite3_prepare_v2(db, "SELECT name FROM "
	    "sqlite_schema WHERE type = 'table' ORDER BY name", -1, &st,
	    NULL) == SQLITE_OK);
	CU_ASSERT_FATAL(sqlite3_prepare_v2(db, "SELECT name FROM "
	    "pragma_table_info(?1) ORDER BY cid", -1, &cs, NULL) == SQLITE_OK);
	while (i < *n && sqlite3_step(st) == SQLITE_ROW) {
		t[i].name = sqlite3_mprintf("%s", sqlite3_column_text(st, 0));
		cols = NULL;
		sqlite3_bind_text(cs, 1, t[i].name, -1, SQLITE_STATIC);
		while (sqlite3_step(cs) == SQLITE_ROW) {
			char	*c = sqlite3_mprintf("%s%squote(\"%w\")",
			    cols != NULL ? cols : "", cols != NULL ?
			    ", " : "", sqlite3_column_text(cs, 0));

			sqlite3_free(cols);
			cols = c;
		}
		sqlite3_reset(cs);
		t[i].sql = sqlite3_mprintf("SELECT %s FROM \"%w\" ORDER BY 1",
		    cols, t[i].name);
		sqlite3_free(cols);
		t[i].rows = db_rows(db, t[i].sql);
		i++;
	}
	sqlite3_finalize(cs);
	sqlite3_finalize(st);
	CU_ASSERT_EQUAL(i, *n);
	*n = i;
	return (t);
}

static void
old_tables_free(struct old_table *t, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		sqlite3_free(t[i].name);
		sqlite3_free(t[i].sql);
		free(t[i].rows);
	}
	free(t);
}

/* Whether every old table reads on db as it did in the old file (naming
 * the first that does not, with what); 1 if so. */
static int
old_tables_same(sqlite3 *db, const struct old_table *t, size_t n,
    const char *what)
{
	size_t	 i;
	char	*rows;
	int	 same = 1;

	for (i = 0; i < n && same; i++) {
		rows = db_rows(db, t[i].sql);
		if (strcmp(rows, t[i].rows) != 0) {
			fprintf(stderr, "\n%s: table %s changed:\n--- before\n"
			    "%s--- after\n%s", what, t[i].name, t[i].rows,
			    rows);
			same = 0;
		}
		free(rows);
	}
	return (same);
}

/*
 * A database made by the CLI of schema version v (tests/fixtures/
 * schema-vN.sql, from make-fixture.sh) is migrated: the current version,
 * a whole file without foreign key faults, every row of every old table
 * as it was, the enqueued counts as the old file had them; then the
 * library works on it: it claims and completes a ready task, leaves the
 * live leases alone and reaps the expired one, finishes a batch
 * (version 3 on) and hands a pipeline item to its next stage (4 on).
 */
static void
migrate_old(int v)
{
	struct old_table	*t;
	sqlite3			*db;
	spool_job		*job;
	spool			*q;
	size_t			 n;
	char			 path[800], *live, *live_before, *live_after;
	int64_t			 enqueued, mail_id, expired_id, id;
	int64_t			 bq3_id = -1;

	snprintf(path, sizeof path, "%s/v%d.db", tu_dir, v);
	load_fixture_v(path, v);

	/* The old file, as its version's code left it: it holds each case
	 * (a fixture made again cannot lose one unnoticed). */
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
	CU_ASSERT_EQUAL_FATAL(db_int(db, "PRAGMA user_version"), v);
	CU_ASSERT_EQUAL(db_int(db, "SELECT count(DISTINCT state) FROM tasks"),
	    5);
	CU_ASSERT_EQUAL(db_int(db, "SELECT count(DISTINCT dead_reason) "
	    "FROM tasks"), 3);
	CU_ASSERT(db_int(db, "SELECT count(*) FROM tasks WHERE "
	    "typeof(payload) = 'blob'") >= 2);
	CU_ASSERT(db_int(db, "SELECT count(*) FROM results WHERE "
	    "typeof(output) = 'blob'") >= 1);
	CU_ASSERT(db_int(db, "SELECT count(*) FROM tasks WHERE "
	    "idem_key IS NOT NULL") >= 2);
	CU_ASSERT(db_int(db, "SELECT count(*) FROM tasks WHERE state = 'ready' "
	    "AND run_at_ms > %lld", (long long)tu_now) >= 1);
	CU_ASSERT(db_int(db, "SELECT count(DISTINCT outcome) FROM attempts") >=
	    3);
	CU_ASSERT(db_int(db, "SELECT count(*) FROM workers") >= 1);
	CU_ASSERT(db_int(db, "SELECT count(*) FROM locks") >= 1);
	if (v >= 3) {
		CU_ASSERT_EQUAL(db_int(db, "SELECT count(DISTINCT state) "
		    "FROM batches"), 3);
		CU_ASSERT(db_int(db, "SELECT count(*) FROM batches WHERE "
		    "hook_task_id IS NOT NULL") >= 1);
		bq3_id = db_int(db, "SELECT id FROM tasks WHERE queue = 'bq3' "
		    "AND state = 'ready'");
		CU_ASSERT(bq3_id > 0);
	}
	if (v >= 4) {
		CU_ASSERT(db_int(db, "SELECT count(*) FROM pipelines WHERE "
		    "retired_ms IS NOT NULL") >= 2);
		CU_ASSERT_EQUAL(db_int(db, "SELECT count(DISTINCT state) "
		    "FROM pipeline_runs"), 2);
		CU_ASSERT_EQUAL(db_int(db, "SELECT count(DISTINCT state) "
		    "FROM pipeline_items"), 5);
	}
	/* The enqueued total: the counters from version 5 on (more than
	 * the tasks left: some were pruned or purged); before, the tasks,
	 * which is all migration 5 can count. */
	if (v >= 5) {
		enqueued = db_int(db, "SELECT sum(enqueued) FROM "
		    "queue_counters");
		CU_ASSERT(enqueued > db_int(db, "SELECT count(*) FROM tasks"));
	} else
		enqueued = db_int(db, "SELECT count(*) FROM tasks");
	/* The task the first claim on 'mail' must get, the leases that
	 * still hold at the fake clock's time (365 days long) and the one
	 * that has ended (10 minutes long). */
	mail_id = db_int(db, "SELECT id FROM tasks WHERE queue = 'mail' AND "
	    "state = 'ready' AND run_at_ms <= %lld ORDER BY priority DESC, "
	    "run_at_ms, id LIMIT 1", (long long)tu_now);
	CU_ASSERT(mail_id > 0);
	live = sqlite3_mprintf("SELECT id, lease_token, lease_until_ms, "
	    "lease_owner, cancel_requested FROM tasks WHERE state = 'running' "
	    "AND lease_until_ms > %lld ORDER BY id", (long long)tu_now);
	CU_ASSERT(db_int(db, "SELECT count(*) FROM (%s)", live) >= 2);
	live_before = db_rows(db, live);
	CU_ASSERT_EQUAL(db_int(db, "SELECT count(*) FROM tasks WHERE state = "
	    "'running' AND lease_until_ms <= %lld", (long long)tu_now), 1);
	expired_id = db_int(db, "SELECT id FROM tasks WHERE state = 'running' "
	    "AND lease_until_ms <= %lld", (long long)tu_now);
	t = old_tables(db, &n);
	/* queues, tasks, results, attempts, workers, locks, sqlite_sequence,
	 * batches (3), four of pipelines (4), queue_counters (5) */
	CU_ASSERT_EQUAL(n, 7 + (v >= 3) + 4 * (v >= 4) + (v >= 5));
	sqlite3_close(db);

	/* Opened by this library: migrated, rows and counts as they were. */
	q = tu_open(path, 0);
	CU_ASSERT_EQUAL(db_int(q->db, "PRAGMA user_version"),
	    SPOOL_SCHEMA_VERSION);
	CU_ASSERT_EQUAL(db_int(q->db, "PRAGMA application_id"),
	    SPOOL_APPLICATION_ID);
	CU_ASSERT_EQUAL(db_int(q->db, "SELECT count(*) FROM "
	    "pragma_integrity_check WHERE integrity_check = 'ok'"), 1);
	CU_ASSERT_EQUAL(db_int(q->db, "SELECT count(*) FROM "
	    "pragma_foreign_key_check"), 0);
	CU_ASSERT(old_tables_same(q->db, t, n, path));
	old_tables_free(t, n);
	CU_ASSERT_EQUAL(db_int(q->db, "SELECT task_id FROM counters_mark"),
	    db_int(q->db, "SELECT max(id) FROM tasks"));
	CU_ASSERT_EQUAL(db_int(q->db, "SELECT sum(enqueued) FROM "
	    "spool_counters"), enqueued);

	/* The library works on it: a claim gets the task it should and
	 * completes it; that claim reaped the ended lease (its task ready
	 * again, the attempt lease_lost) and left those that hold alone. */
	TU_RC(spool_claim(&job, q, "mail", NULL), SPOOL_OK);
	CU_ASSERT_FATAL(job != NULL);
	CU_ASSERT_EQUAL(spool_job_id(job), mail_id);
	TU_RC(spool_job_complete(job, "sent", 4), SPOOL_OK);
	spool_job_free(job);
	CU_ASSERT_EQUAL(db_int(q->db, "SELECT count(*) FROM tasks JOIN results "
	    "ON task_id = id WHERE id = %lld AND state = 'succeeded' AND "
	    "output = 'sent'", (long long)mail_id), 1);
	CU_ASSERT_EQUAL(db_int(q->db, "SELECT count(*) FROM tasks WHERE "
	    "id = %lld AND state = 'ready' AND lease_token IS NULL",
	    (long long)expired_id), 1);
	CU_ASSERT_EQUAL(db_int(q->db, "SELECT count(*) FROM attempts WHERE "
	    "task_id = %lld AND outcome = 'lease_lost'", (long long)expired_id),
	    1);
	live_after = db_rows(q->db, live);
	CU_ASSERT_STRING_EQUAL(live_after, live_before);
	free(live_after);
	free(live_before);
	sqlite3_free(live);

	/* A closed batch's last waiting member succeeds: the batch is
	 * finished, without its hook (on success only; a member failed). */
	if (v >= 3) {
		TU_RC(spool_claim(&job, q, "bq3", NULL), SPOOL_OK);
		CU_ASSERT_FATAL(job != NULL);
		CU_ASSERT_EQUAL(spool_job_id(job), bq3_id);
		TU_RC(spool_job_complete(job, "done", 4), SPOOL_OK);
		spool_job_free(job);
		CU_ASSERT_EQUAL(db_int(q->db, "SELECT count(*) FROM batches "
		    "WHERE description = 'half done' AND state = 'finished' AND "
		    "succeeded = 1 AND failed = 1 AND cancelled = 1 AND "
		    "pending = 0 AND hook_task_id IS NULL"), 1);
	}
	/* A pipeline item of a run left between stages moves on: its
	 * stage's output is the next stage's task, in that commit. */
	if (v >= 4) {
		TU_RC(spool_claim(&job, q, "etl/check", NULL), SPOOL_OK);
		CU_ASSERT_FATAL(job != NULL);
		id = db_int(q->db, "SELECT item_id FROM tasks WHERE id = %lld",
		    (long long)spool_job_id(job));
		TU_RC(spool_job_complete(job, "TWO-checked", 11), SPOOL_OK);
		spool_job_free(job);
		CU_ASSERT_EQUAL(db_int(q->db, "SELECT count(*) FROM "
		    "pipeline_items i JOIN tasks t ON t.id = i.task_id WHERE "
		    "i.id = %lld AND i.stage = 3 AND i.state = 'running' AND "
		    "t.queue = 'etl/load' AND t.state = 'ready' AND "
		    "t.payload = 'TWO-checked'", (long long)id), 1);
	}
	spool_close(q);
}

#define MIGRATE_OLD(v)							\
static void								\
test_migrate_v##v(void)							\
{									\
	migrate_old(v);							\
}
MIGRATE_OLD(2)
MIGRATE_OLD(3)
MIGRATE_OLD(4)
MIGRATE_OLD(5)
MIGRATE_OLD(6)
MIGRATE_OLD(7)

/*
 * A VFS for one forked child: it counts the changes the process makes to
 * its files (writes, truncates, syncs, of the database, its -wal and any
 * journal) and, just before the kill_at-th, kills the process with
 * SIGKILL.  A SIGKILL leaves on disk exactly the changes made before it,
 * so killing before each change in turn reaches, one by one, every state
 * a kill at any moment can leave.  (The -wal's index in the -shm file,
 * changed in memory, is not counted: SQLite rebuilds it after a crash.)
 * Everything else is the real VFS's.
 */
static sqlite3_vfs	*kill_real;
static sqlite3_vfs	 kill_vfs;
static long		 kill_changes, kill_at;

struct kill_file {
	sqlite3_file	 base;
	sqlite3_file	*real;		/* right after this struct */
};

/* One more change: the kill_at-th is never made. */
static void
kill_change(void)
{
	if (++kill_changes == kill_at)
		kill(getpid(), SIGKILL);
}

#define KF(f)	(((struct kill_file *)(f))->real)

/* The methods of a kill_file: each calls the real file's, and the three
 * that change the file (write, truncate, sync) count the change first. */
static int
kill_close(sqlite3_file *f)
{
	return (KF(f)->pMethods->xClose(KF(f)));
}

static int
kill_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return (KF(f)->pMethods->xRead(KF(f), p, n, off));
}

static int
kill_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	kill_change();
	return (KF(f)->pMethods->xWrite(KF(f), p, n, off));
}

static int
kill_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	kill_change();
	return (KF(f)->pMethods->xTruncate(KF(f), size));
}

static int
kill_sync(sqlite3_file *f, int flags)
{
	kill_change();
	return (KF(f)->pMethods->xSync(KF(f), flags));
}

static int
kill_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return (KF(f)->pMethods->xFileSize(KF(f), size));
}

static int
kill_lock(sqlite3_file *f, int lock)
{
	return (KF(f)->pMethods->xLock(KF(f), lock));
}

static int
kill_unlock(sqlite3_file *f, int lock)
{
	return (KF(f)->pMethods->xUnlock(KF(f), lock));
}

static int
kill_reserved(sqlite3_file *f, int *out)
{
	return (KF(f)->pMethods->xCheckReservedLock(KF(f), out));
}

static int
kill_control(sqlite3_file *f, int op, void *arg)
{
	return (KF(f)->pMethods->xFileControl(KF(f), op, arg));
}

static int
kill_sector(sqlite3_file *f)
{
	return (KF(f)->pMethods->xSectorSize(KF(f)));
}

static int
kill_device(sqlite3_file *f)
{
	return (KF(f)->pMethods->xDeviceCharacteristics(KF(f)));
}

static int
kill_shm_map(sqlite3_file *f, int pg, int pgsz, int extend,
    void volatile **p)
{
	return (KF(f)->pMethods->xShmMap(KF(f), pg, pgsz, extend, p));
}

static int
kill_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return (KF(f)->pMethods->xShmLock(KF(f), off, n, flags));
}

static void
kill_shm_barrier(sqlite3_file *f)
{
	KF(f)->pMethods->xShmBarrier(KF(f));
}

static int
kill_shm_unmap(sqlite3_file *f, int delete)
{
	return (KF(f)->pMethods->xShmUnmap(KF(f), delete));
}

static int
kill_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **p)
{
	return (KF(f)->pMethods->xFetch(KF(f), off, n, p));
}

static int
kill_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return (KF(f)->pMethods->xUnfetch(KF(f), off, p));
}

static const sqlite3_io_methods kill_methods = {
	3, kill_close, kill_read, kill_write, kill_truncate, kill_sync,
	kill_size, kill_lock, kill_unlock, kill_reserved, kill_control,
	kill_sector, kill_device, kill_shm_map, kill_shm_lock,
	kill_shm_barrier, kill_shm_unmap, kill_fetch, kill_unfetch
};

/* Open a file of the real VFS behind a kill_file. */
static int
kill_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
    int flags, int *out_flags)
{
	struct kill_file	*kf = (struct kill_file *)f;
	int			 rc;

	(void)vfs;
	kf->real = (sqlite3_file *)(kf + 1);
	rc = kill_real->xOpen(kill_real, name, kf->real, flags, out_flags);
	/* The real file's methods are version 3 (the unix VFS's), which
	 * ours forward in full. */
	if (rc == SQLITE_OK && kf->real->pMethods != NULL &&
	    kf->real->pMethods->iVersion < 3) {
		kf->real->pMethods->xClose(kf->real);
		rc = SQLITE_CANTOPEN;
	}
	kf->base.pMethods = rc == SQLITE_OK && kf->real->pMethods != NULL ?
	    &kill_methods : NULL;
	return (rc);
}

/* Install the killing VFS as the default one, in a child. */
static void
kill_install(long at)
{
	kill_real = sqlite3_vfs_find(NULL);
	kill_vfs = *kill_real;
	kill_vfs.zName = "spool-test-kill";
	kill_vfs.szOsFile = (int)sizeof(struct kill_file) + kill_real->szOsFile;
	kill_vfs.xOpen = kill_open;
	kill_at = at;
	kill_changes = 0;
	sqlite3_vfs_register(&kill_vfs, 1);
}

/* Copy the file at from to to, replacing it (and leaving no -wal, -shm
 * or -journal of to behind). */
static void
copy_file(const char *from, const char *to)
{
	static const char *const sides[] = { "-wal", "-shm", "-journal" };
	char		 side[900], buf[65536];
	ssize_t		 n;
	size_t		 i;
	int		 in, out;

	for (i = 0; i < sizeof sides / sizeof *sides; i++) {
		snprintf(side, sizeof side, "%s%s", to, sides[i]);
		(void)unlink(side);
	}
	CU_ASSERT_FATAL((in = open(from, O_RDONLY)) != -1);
	CU_ASSERT_FATAL((out = open(to, O_WRONLY | O_CREAT | O_TRUNC,
	    0600)) != -1);
	while ((n = read(in, buf, sizeof buf)) > 0)
		CU_ASSERT_FATAL(write(out, buf, (size_t)n) == n);
	close(in);
	close(out);
}

/* Fork a child that opens (so migrates) and closes path with the killing
 * VFS set to kill it before its at-th change (never, with 0).  Returns
 * the number of changes it made when it was not killed, -1 when it was,
 * -2 when it failed otherwise. */
static long
kill_round(const char *path, long at)
{
	spool	*q;
	pid_t	 pid;
	long	 changes = -2;
	int	 fds[2], status;

	CU_ASSERT_FATAL(pipe(fds) == 0);
	if ((pid = fork()) == 0) {
		close(fds[0]);
		kill_install(at);
		if (spool_open(&q, path, 0) != SPOOL_OK) {
			fprintf(stderr, "\nkill point %ld: %s\n", at,
			    spool_errmsg(q));
			_exit(1);
		}
		spool_close(q);
		(void)write(fds[1], &kill_changes, sizeof kill_changes);
		_exit(0);
	}
	CU_ASSERT_FATAL(pid > 0);
	close(fds[1]);
	if (read(fds[0], &changes, sizeof changes) != sizeof changes)
		changes = -2;
	close(fds[0]);
	CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		return (-1);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return (-2);
	return (changes);
}

/*
 * A process killed at any moment of a migration leaves the file whole and
 * either all old or all new: the child opening a copy of a fixture is
 * killed just before its first change to the files, then before its
 * second, and so on to the last (the checkpoint of its close among them;
 * kill_round).  After each kill the file, opened plainly, checks whole
 * and is at the old version or the current one, with every row of every
 * old table as it was; then the library opens it (migrating what is
 * left) and finds the rows so again.
 */
static void
kill_migration(int v)
{
	struct old_table	*t;
	sqlite3			*db;
	spool			*q;
	char			 pristine[800], path[800], what[900];
	size_t			 n;
	long			 total, at, r, old = 0, new = 0, step;
	int64_t			 ver;
	unsigned int		 fails = CU_get_number_of_failures();
	const char		*points;

	snprintf(pristine, sizeof pristine, "%s/pristine-v%d.db", tu_dir, v);
	snprintf(path, sizeof path, "%s/killed-v%d.db", tu_dir, v);
	load_fixture_v(pristine, v);
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(pristine, &db), SQLITE_OK);
	t = old_tables(db, &n);
	sqlite3_close(db);

	/* How many changes a whole migration and close make. */
	copy_file(pristine, path);
	total = kill_round(path, 0);
	CU_ASSERT_FATAL(total > 10);
	/* Every change, or with MIG_POINTS=K about K of them evenly spread,
	 * the first and the last among them (under the sanitizers each
	 * round's fork and open cost 0.2 s). */
	step = 1;
	if ((points = getenv("MIG_POINTS")) != NULL && atol(points) > 0)
		step = (total + atol(points) - 1) / atol(points);
	for (at = 1; at <= total; at = at < total && at + step > total ?
	    total : at + step) {
		snprintf(what, sizeof what, "schema %d, killed before change "
		    "%ld of %ld", v, at, total);
		copy_file(pristine, path);
		r = kill_round(path, at);
		if (r != -1)
			fprintf(stderr, "\n%s: not killed (%ld)\n", what, r);
		CU_ASSERT_EQUAL(r, -1);

		CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
		ver = db_int(db, "PRAGMA user_version");
		if (ver == v)
			old++;
		else if (ver == SPOOL_SCHEMA_VERSION)
			new++;
		else
			fprintf(stderr, "\n%s: user_version %lld\n", what,
			    (long long)ver);
		CU_ASSERT(ver == v || ver == SPOOL_SCHEMA_VERSION);
		CU_ASSERT_EQUAL(db_int(db, "SELECT count(*) FROM "
		    "pragma_integrity_check WHERE integrity_check = 'ok'"), 1);
		CU_ASSERT_EQUAL(db_int(db, "SELECT count(*) FROM "
		    "pragma_foreign_key_check"), 0);
		CU_ASSERT_EQUAL(db_int(db, "PRAGMA application_id"),
		    SPOOL_APPLICATION_ID);
		CU_ASSERT(old_tables_same(db, t, n, what));
		sqlite3_close(db);

		if ((q = tu_open(path, 0)) == NULL)
			break;
		CU_ASSERT_EQUAL(db_int(q->db, "PRAGMA user_version"),
		    SPOOL_SCHEMA_VERSION);
		CU_ASSERT(old_tables_same(q->db, t, n, what));
		spool_close(q);
		if (CU_get_number_of_failures() > fails)
			break;		/* the first failure says enough */
	}
	/* Both sides of the commit were reached. */
	CU_ASSERT(at <= total || old > 0);
	CU_ASSERT(at <= total || new > 0);
	old_tables_free(t, n);
}

#define KILL_MIGRATION(v)						\
static void								\
test_kill_migration_v##v(void)						\
{									\
	kill_migration(v);						\
}
KILL_MIGRATION(1)
KILL_MIGRATION(2)
KILL_MIGRATION(3)
KILL_MIGRATION(4)
KILL_MIGRATION(5)
KILL_MIGRATION(6)
KILL_MIGRATION(7)

/*
 * A handle whose open failed is safe: every call on it returns the open's
 * code (SPOOL_ENOTDB for a text file), leaves spool_errmsg as the open
 * left it, and crashes nothing (the run under ASan in CI sees any bad
 * read).  The calls are listed by name, and every function of spool.h
 * that takes a "spool *q" must be among them: a new one cannot be
 * forgotten here.
 */
static const char *const dead_calls[] = {
	"spool_busy_timeout", "spool_queue_create", "spool_queue_set",
	"spool_queue_get", "spool_queue_list", "spool_enqueue",
	"spool_enqueue_many", "spool_batch_create", "spool_batch_close",
	"spool_batch_get", "spool_batch_list", "spool_claim_many",
	"spool_claim", "spool_reap", "spool_task_get", "spool_list",
	"spool_attempts", "spool_stats", "spool_metrics", "spool_workers",
	"spool_cancel", "spool_retry", "spool_retry_all", "spool_purge",
	"spool_prune", "spool_pipeline_create", "spool_pipeline_delete",
	"spool_pipeline_get", "spool_pipeline_list", "spool_pipeline_start",
	"spool_run_get", "spool_run_list", "spool_run_cancel",
	"spool_item_list", "spool_item_history", "spool_task_wait",
	"spool_batch_wait", "spool_run_wait", "spool_enqueue_stream_begin",
	"spool_prometheus", NULL
};

/* Every function of spool.h whose parameters include "spool *q" (but
 * spool_close, spool_errmsg and spool_errcode) is in dead_calls. */
static void
dead_calls_cover_header(void)
{
	char		*text, *p, *open, *name, *end;
	size_t		 i, seen = 0;

	text = source_file("../src/spool.h");
	/* Each "spool *q" inside a prototype: the name is the word before
	 * the nearest "(" to its left. */
	for (p = text; (p = strstr(p, "spool *q")) != NULL; p += 8) {
		if (p[8] != ',' && p[8] != ')')
			continue;
		for (open = p; open > text && *open != '('; open--)
			continue;
		for (end = open; end > text && (end[-1] == ' ' ||
		    end[-1] == '\t'); end--)
			continue;
		for (name = end; name > text && (isalnum((unsigned char)
		    name[-1]) || name[-1] == '_'); name--)
			continue;
		if (end - name >= 64)
			continue;
		char	 fn[64];

		memcpy(fn, name, (size_t)(end - name));
		fn[end - name] = '\0';
		if (strcmp(fn, "spool_close") == 0 ||
		    strcmp(fn, "spool_errmsg") == 0 ||
		    strcmp(fn, "spool_errcode") == 0)
			continue;
		for (i = 0; dead_calls[i] != NULL; i++)
			if (strcmp(dead_calls[i], fn) == 0)
				break;
		if (dead_calls[i] == NULL)
			fprintf(stderr, "\n%s takes a handle and is not tried "
			    "on a failed one\n", fn);
		CU_ASSERT_PTR_NOT_NULL(dead_calls[i]);
		seen++;
	}
	free(text);
	CU_ASSERT(seen >= 30);
}

static void
test_failed_handle(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_queue_info	*qi = NULL;
	spool_batch_info	*bi = NULL;
	spool_job		*job = NULL, *jobs[2] = { NULL, NULL };
	spool_task_info		*ti = NULL;
	spool_attempt_info	*ai = NULL;
	spool_queue_stats	*st = NULL;
	spool_queue_metrics	*mi = NULL;
	spool_worker_info	*wi = NULL;
	spool_pipeline_info	*pi = NULL;
	spool_run_info		*ri = NULL;
	spool_enqueue_stream	*es = NULL;
	char			*text = NULL;
	spool_item_info		*ii = NULL;
	spool_stage_attempt_info	*sa = NULL;
	spool_stage		 stage = { SPOOL_STAGE_VERSION, "s", 1, 0, 0, 0, 0,
				     NULL };
	spool_item		 item;
	spool_task		 task = { "q", "x", 1, NULL };
	const char		*qs[] = { "q" };
	spool			*q = NULL;
	char			 path[800], msg[512];
	int64_t			 id = -1, ids[1] = { -1 }, n64 = -1;
	size_t			 n = 99;
	int			 existed[1] = { -1 }, running = -1, ver = -1;
	int			 calls = 0;

	snprintf(path, sizeof path, "%s/notes.txt", tu_dir);
	spit(path, "not a database\n", 15);
	TU_RC(spool_open(&q, path, 0), SPOOL_ENOTDB);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	snprintf(msg, sizeof msg, "%s", spool_errmsg(q));
	CU_ASSERT(strstr(msg, "notes.txt") != NULL);
	memset(&item, 0, sizeof item);

#define DEAD(call) do {							\
	TU_RC((call), SPOOL_ENOTDB);					\
	CU_ASSERT_EQUAL(spool_errcode(q), SPOOL_ENOTDB);		\
	CU_ASSERT_STRING_EQUAL(spool_errmsg(q), msg);			\
	calls++;							\
} while (0)
	DEAD(spool_busy_timeout(q, 100));
	DEAD(spool_queue_create(q, "q", &qo));
	DEAD(spool_queue_set(q, "q", &qo));
	DEAD(spool_queue_get(&qi, q, "q"));
	DEAD(spool_queue_list(&qi, &n, q, NULL));
	DEAD(spool_enqueue(&id, q, "q", "x", 1, NULL));
	DEAD(spool_enqueue_many(ids, existed, q, &task, 1));
	DEAD(spool_batch_create(&id, q, NULL));
	DEAD(spool_batch_close(q, 1));
	DEAD(spool_batch_get(&bi, q, 1));
	DEAD(spool_batch_list(&bi, &n, q, NULL));
	DEAD(spool_claim_many(jobs, &n, q, qs, 1, 2, NULL));
	DEAD(spool_claim(&job, q, "q", NULL));
	DEAD(spool_reap(&n64, q));
	DEAD(spool_task_get(&ti, q, 1));
	DEAD(spool_list(&ti, &n, q, NULL));
	DEAD(spool_attempts(&ai, &n, q, 1, NULL));
	DEAD(spool_stats(&st, &n, q, NULL));
	DEAD(spool_metrics(&mi, &n, q, NULL));
	DEAD(spool_workers(&wi, &n, q, NULL));
	DEAD(spool_cancel(&running, q, 1));
	DEAD(spool_retry(q, 1));
	DEAD(spool_retry_all(&n64, q, "q", SPOOL_DEAD));
	DEAD(spool_purge(&n64, q, "q", 0));
	DEAD(spool_prune(&n64, q, NULL, 0));
	DEAD(spool_pipeline_create(&ver, q, "p", &stage, 1, 0));
	DEAD(spool_pipeline_delete(q, "p", 0));
	DEAD(spool_pipeline_get(&pi, q, "p", 0));
	DEAD(spool_pipeline_list(&pi, &n, q, NULL));
	DEAD(spool_pipeline_start(&id, ids, q, "p", &item, 1, NULL));
	DEAD(spool_run_get(&ri, q, 1));
	DEAD(spool_run_list(&ri, &n, q, NULL));
	DEAD(spool_run_cancel(q, 1));
	DEAD(spool_item_list(&ii, &n, q, 1, NULL));
	DEAD(spool_item_history(&sa, &n, q, 1, NULL));
	DEAD(spool_task_wait(&ti, q, 1, -1));
	DEAD(spool_batch_wait(&bi, q, 1, -1));
	DEAD(spool_run_wait(&ri, q, 1, -1));
	DEAD(spool_enqueue_stream_begin(&es, q));
	DEAD(spool_prometheus(&text, &n, q, NULL, NULL));
#undef DEAD
	CU_ASSERT_EQUAL(calls, (int)(sizeof dead_calls / sizeof *dead_calls) -
	    1);
	/* Outputs say "nothing": no pointer a caller would free. */
	CU_ASSERT(qi == NULL && bi == NULL && ti == NULL && ai == NULL &&
	    st == NULL && mi == NULL && wi == NULL && pi == NULL &&
	    ri == NULL && ii == NULL && sa == NULL && job == NULL &&
	    jobs[0] == NULL);
	CU_ASSERT_EQUAL(n, 0);
	spool_close(q);
	dead_calls_cover_header();
}

static CU_TestInfo store_tests[] = {
	{ "pragmas of a new database", test_pragmas },
	{ "synchronous NORMAL and busy timeout", test_sync_normal_and_timeout },
	{ "mode 0600 whatever the umask", test_mode_0600 },
	{ "missing file", test_missing },
	{ "directory, symlink, fifo", test_not_regular },
	{ "not a SQLite file", test_not_sqlite },
	{ "another application's SQLite file", test_foreign_sqlite },
	{ "another application's WAL file", test_foreign_wal },
	{ "newer schema", test_newer_schema },
	{ "empty file", test_empty_file },
	{ "bad arguments", test_bad_args },
	{ "every call on a handle whose open failed", test_failed_handle },
	{ "8 processes create one file", test_concurrent_create },
	{ "reopen does not migrate", test_reopen },
	{ "all statements prepared", test_all_prepared },
	{ "busy timeout", test_busy },
	{ "views", test_views },
	{ "migrate a schema 1 database", test_migrate_v1 },
	{ "8 processes migrate one schema 1 file", test_migrate_v1_concurrent },
	{ "migrate a schema 2 database made by its CLI", test_migrate_v2 },
	{ "migrate a schema 3 database made by its CLI", test_migrate_v3 },
	{ "migrate a schema 4 database made by its CLI", test_migrate_v4 },
	{ "migrate a schema 5 database made by its CLI", test_migrate_v5 },
	{ "migrate a schema 6 database made by its CLI", test_migrate_v6 },
	{ "migrate a schema 7 database made by its CLI", test_migrate_v7 },
	{ "killed before each change of a migration from 1",
	    test_kill_migration_v1 },
	{ "killed before each change of a migration from 2",
	    test_kill_migration_v2 },
	{ "killed before each change of a migration from 3",
	    test_kill_migration_v3 },
	{ "killed before each change of a migration from 4",
	    test_kill_migration_v4 },
	{ "killed before each change of a migration from 5",
	    test_kill_migration_v5 },
	{ "killed before each change of a migration from 6",
	    test_kill_migration_v6 },
	{ "killed before each change of a migration from 7",
	    test_kill_migration_v7 },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("store", store_tests));
}
