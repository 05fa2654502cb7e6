/*
 * store.c -- the one place spool talks to SQLite: opening and checking the
 * file, pragmas, migrations, the prepared statement cache, transactions
 * and the mapping of SQLite's result codes to spool's.
 *
 * Invariants: a handle's statements are all prepared at open, so a broken
 * query fails the first test that opens a database; every write runs
 * between spool__begin (BEGIN IMMEDIATE) and spool__commit; a statement is
 * reset as soon as its rows are read, so no read transaction outlives the
 * call that opened it.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store-int.h"

static int	 store_exec(spool *, const char *, const char *);
static int	 store_data_version(spool *, int64_t *);

/* The library's version string. */
const char *
spool_version(void)
{
	return (SPOOL_VERSION);
}

/* The wall clock in Unix milliseconds, or the test clock if one is set. */
int64_t
spool__now_ms(spool *q)
{
	if (q != NULL && q->clock != NULL)
		return (q->clock(q->clock_arg));
	return (spool__clock_ms(CLOCK_REALTIME));
}

/* Test seam: make spool__now_ms(q) return fn(arg). */
void
spool__set_clock(spool *q, spool__clock_fn fn, void *arg)
{
	q->clock = fn;
	q->clock_arg = arg;
}

#define RECHECK_MS	1000	/* how long store_recheck may read */
#define STALL_MS	100	/* a wait for the write lock this long means
				 * the database was unwritable */

/* sqlite3_progress_handler callback: stop once the deadline has passed. */
static int
store_recheck_late(void *arg)
{
	const int64_t	*deadline = arg;

	return (spool__clock_ms(CLOCK_MONOTONIC) > *deadline);
}

/*
 * One reading of q's file on a fresh read-only connection, with PRAGMA
 * quick_check (for at most RECHECK_MS): SQLITE_OK if it checks whole,
 * SQLITE_CORRUPT with the first finding in found, SQLITE_INTERRUPT if the
 * time ran out, or the error that stopped it.  quick_check reports a page
 * it could not read as a finding ("... error code=266"): that is an I/O
 * error, not damage.
 */
static int
store_reread(const spool *q, char *found, size_t len)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*st = NULL;
	const char	*row, *ec;
	int64_t		 deadline;
	int		 rc;

	*found = '\0';
	deadline = spool__clock_ms(CLOCK_MONOTONIC) + RECHECK_MS;
	rc = sqlite3_open_v2(q->path, &db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_extended_result_codes(db, 1);
		sqlite3_busy_timeout(db, RECHECK_MS);
		sqlite3_progress_handler(db, 1000, store_recheck_late,
		    &deadline);
		rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st,
		    NULL);
	}
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		row = (const char *)sqlite3_column_text(st, 0);
		snprintf(found, len, "%s", row != NULL ? row : "");
		for (char *c = found; *c != '\0'; c++)	/* one line */
			if ((unsigned char)*c < ' ')
				*c = ' ';
		if (strcmp(found, "ok") == 0)
			rc = SQLITE_OK;
		else if ((ec = strstr(found, "error code=")) != NULL &&
		    (atoi(ec + 11) & 0xff) == SQLITE_IOERR)
			rc = SQLITE_IOERR;
		else
			rc = SQLITE_CORRUPT;
	}
	sqlite3_finalize(st);
	sqlite3_close_v2(db);
	return (rc & 0xff);
}

/*
 * SQLite answered "corrupt" or "not a database" on q.  A failed or short
 * read gives the same answer while the file is whole, and an operator
 * told "corrupt" restores a backup for nothing: so read the file again
 * (store_reread) and say what that found.  Damage is SPOOL_ENOTDB (exit
 * 65) only when two readings find the same first fault; a file that
 * checks whole, a reading that fails or runs out of time is SPOOL_EIO
 * (74).
 */
static int
store_recheck(spool *q, const char *what)
{
	char	 found[200], again[200];
	int	 rc;

	if (q->path == NULL)
		return (spool__error(q, SPOOL_ENOTDB,
		    "%s: database file is corrupt or not a database", what));
	rc = store_reread(q, found, sizeof found);
	if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
		rc = store_reread(q, again, sizeof again);
		if ((rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) &&
		    strcmp(found, again) != 0)
			rc = SQLITE_IOERR;	/* two readings disagree */
	}
	switch (rc) {
	case SQLITE_OK:
		return (spool__error(q, SPOOL_EIO, "%s: I/O error: SQLite read "
		    "damaged data, but the file checks whole when read again "
		    "(PRAGMA quick_check): a failed read, not a corrupt file",
		    what));
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		if (found[0] != '\0')
			return (spool__error(q, SPOOL_ENOTDB, "%s: database "
			    "file is corrupt (PRAGMA quick_check: %s)", what,
			    found));
		return (spool__error(q, SPOOL_ENOTDB,
		    "%s: database file is corrupt or not a database", what));
	case SQLITE_INTERRUPT:
		return (spool__error(q, SPOOL_EIO, "%s: I/O error: SQLite read "
		    "damaged data; a second reading found nothing in %.1f s "
		    "(run PRAGMA integrity_check to be sure)", what,
		    RECHECK_MS / 1000.0));
	}
	return (spool__error(q, SPOOL_EIO, "%s: I/O error: SQLite read "
	    "damaged data, and reading the file again failed too", what));
}

/* Map a SQLite result code to a spool code, record "what: detail" on q and
 * return the spool code. */
int
spool__store_error(spool *q, int rc, const char *what)
{
	int		 sys = errno, e;
	const char	*detail = sqlite3_errmsg(q->db);

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return (spool__error(q, SPOOL_EBUSY,
		    "%s: database locked by another connection; waited %.1f s",
		    what, q->busy_timeout_ms / 1000.0));
	case SQLITE_NOMEM:
		return (spool__error(q, SPOOL_ENOMEM, "%s: out of memory", what));
	case SQLITE_FULL:
		return (spool__error(q, SPOOL_EIO,
		    "%s: disk full (the change may not have been applied)", what));
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_PROTOCOL:
		/* The system call's own errno says more than "disk I/O
		 * error": a full disk seen at a sync, a file-size limit. */
		/* SQLite keeps it for some failures only (not a commit's);
		 * errno, read on entry, still holds these three. */
		if ((e = sqlite3_system_errno(q->db)) == 0 &&
		    (sys == ENOSPC || sys == EDQUOT || sys == EFBIG))
			e = sys;
		switch (e) {
		case ENOSPC:
		case EDQUOT:
			return (spool__error(q, SPOOL_EIO, "%s: disk full (the "
			    "change may not have been applied)", what));
		case EFBIG:
			return (spool__error(q, SPOOL_EIO, "%s: I/O error: file "
			    "too large (a file-size limit, ulimit -f?)", what));
		case 0:
			return (spool__error(q, SPOOL_EIO, "%s: I/O error: %s",
			    what, detail));
		}
		return (spool__error(q, SPOOL_EIO, "%s: I/O error: %s (%s)",
		    what, detail, strerror(e)));
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return (spool__error(q, SPOOL_EPERM, "%s: %s", what, detail));
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return (store_recheck(q, what));
	case SQLITE_TOOBIG:
		return (spool__error(q, SPOOL_EINVAL, "%s: value too big", what));
	case SQLITE_CONSTRAINT:
		/* A row a unique index already has (an idempotency key held
		 * by an unfinished task, say): the caller may say which. */
		if (rc == SQLITE_CONSTRAINT_UNIQUE ||
		    rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return (spool__error(q, SPOOL_EEXISTS,
			    "%s: already exists: %s", what, detail));
		break;
	}
	return (spool__error(q, SPOOL_ERROR, "%s: %s", what, detail));
}

/* Prepared statement "which", reset and with its bindings cleared. */
sqlite3_stmt *
spool__stmt(spool *q, enum spool_sql which)
{
	sqlite3_stmt	*st = q->stmt[which];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return (st);
}

/* A statement prepared at its first use (store_lazy), reset with its
 * bindings cleared; NULL if it cannot be prepared (recorded on q). */
sqlite3_stmt *
spool__stmt_lazy(spool *q, enum spool_sql which)
{
	char	 what[96];
	int	 rc;

	if (q->stmt[which] == NULL) {
		rc = sqlite3_prepare_v3(q->db, spool__sql_text[which], -1,
		    SQLITE_PREPARE_PERSISTENT, &q->stmt[which], NULL);
		if (rc != SQLITE_OK) {
			sqlite3_finalize(q->stmt[which]);
			q->stmt[which] = NULL;
			snprintf(what, sizeof what, "prepare %s",
			    spool__sql_name[which]);
			spool__store_error(q, rc, what);
			return (NULL);
		}
	}
	return (spool__stmt(q, which));
}

/* Step a statement that returns no rows (or whose rows are ignored) to
 * its end and reset it. */
int
spool__step_done(spool *q, sqlite3_stmt *st, const char *what)
{
	int	 rc;

	/* SQLite rolls a transaction back by itself after an I/O error, a
	 * full disk or running out of memory; a statement run after that
	 * would run, and commit, on its own.  The error that ended it was
	 * reported to its caller; this one says why nothing more runs. */
	if (q->in_txn && sqlite3_get_autocommit(q->db))
		return (spool__error(q, SPOOL_EIO, "%s: I/O error: the "
		    "transaction was rolled back after an error", what));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		continue;
	if (rc != SQLITE_DONE) {
		rc = spool__store_error(q, rc, what);
		sqlite3_reset(st);
		return (rc);
	}
	sqlite3_reset(st);
	return (SPOOL_OK);
}

/* The rowid of the row the last INSERT on q added. */
int64_t
spool__last_id(spool *q)
{
	return (sqlite3_last_insert_rowid(q->db));
}

/* len random bytes from SQLite's PRNG (thread-safe, seeded by the OS). */
void
spool__random(void *buf, size_t len)
{
	sqlite3_randomness((int)len, buf);
}

/* A uniform random number in [0, 1), from the same PRNG. */
double
spool__random_unit(void)
{
	uint64_t	 r;

	spool__random(&r, sizeof r);
	return ((double)(r >> 11) / 9007199254740992.0);	/* 2^53 */
}

/* The rows the last statement on q changed. */
int64_t
spool__changes(spool *q)
{
	return (sqlite3_changes64(q->db));
}

/* Start reading a typed query's statement st (bound) on cursor c. */
void
spool__cur_open(struct spool__cur *c, spool *q, void *st, const char *what)
{
	c->q = q;
	c->st = st;
	c->what = what;
}

/* The next row of c: 1 if there is one (its columns readable until the
 * next call), 0 at the end, or an error recorded on c's handle; after 0
 * or an error the statement is reset and c is ended. */
int
spool__cur_step(struct spool__cur *c)
{
	int	 rc;

	if (c->st == NULL)
		return (0);
	if (c->q->in_txn && sqlite3_get_autocommit(c->q->db))
		rc = spool__error(c->q, SPOOL_EIO, "%s: I/O error: the "
		    "transaction was rolled back after an error", c->what);
	else if ((rc = sqlite3_step(c->st)) == SQLITE_ROW)
		return (1);
	else if (rc == SQLITE_DONE)
		rc = 0;
	else
		rc = spool__store_error(c->q, rc, c->what);
	spool__cur_end(c);
	return (rc);
}

/* End c: reset its statement (so it holds no read transaction open). */
void
spool__cur_end(struct spool__cur *c)
{
	if (c->st != NULL)
		sqlite3_reset(c->st);
	c->st = NULL;
}

/* Bind a payload without copying it: valid UTF-8 without NUL is stored as
 * TEXT (so JSON can be read with json_extract), anything else as a BLOB;
 * NULL with len 0 is an empty text.  The caller keeps p[0..len) unchanged
 * until the statement has run, and clears the binding before p goes
 * away. */
int
spool__bind_payload_ref(sqlite3_stmt *st, int idx, const void *p, size_t len)
{
	if (len == 0)
		return (sqlite3_bind_text(st, idx, "", 0, SQLITE_STATIC));
	if (utf8_valid(p, len))
		return (sqlite3_bind_text64(st, idx, p, len, SQLITE_STATIC,
		    SQLITE_UTF8));
	return (sqlite3_bind_blob64(st, idx, p, len, SQLITE_STATIC));
}

/* Start a write transaction: BEGIN IMMEDIATE takes the write lock now,
 * waiting up to the busy timeout, so nothing later in the transaction can
 * fail with SQLITE_BUSY. */
int
spool__begin(spool *q)
{
	int64_t	 t0;
	int	 rc;

	if (q->in_txn)
		return (spool__error(q, SPOOL_ERROR, "nested transaction"));
	if (q->hooks != NULL)
		q->hooks->reset(q);
	q->quiet_prev = q->quiet_ok;
	q->quiet_ok = q->txn_dv_read = q->txn_fast = 0;
	q->txn_top_id = 0;
	t0 = spool__now_ms(q);
	rc = spool__step_done(q, spool__stmt(q, SPOOL_SQL_BEGIN), "begin");
	if (rc == SPOOL_OK)
		q->in_txn = 1;
	/* A long wait for the write lock, or none that got it: the database
	 * was unwritable from t0, for every process (see spool__stall_cutoff). */
	if ((rc == SPOOL_EBUSY || (rc == SPOOL_OK &&
	    spool__now_ms(q) - t0 >= STALL_MS)) &&
	    (q->unwritable_from_ms == 0 || t0 < q->unwritable_from_ms))
		q->unwritable_from_ms = t0;
	return (rc);
}

/*
 * The reaper's horizon: leases that ended before it are expired.  While
 * one process stalls inside a write transaction (stopped, or on a stalled
 * disk), no other can renew its leases: a lease that ended while q itself
 * waited for the write lock may belong to a healthy worker that could not
 * write either.  So those leases are spared until the next reap, when
 * their owners have had the lock free to renew; leases that ended before
 * the stall began are reaped as ever.
 */
int64_t
spool__stall_cutoff(const spool *q, int64_t now_ms)
{
	if (q->unwritable_from_ms != 0 && q->unwritable_from_ms < now_ms)
		return (q->unwritable_from_ms);
	return (now_ms);
}

/* Commit the write transaction; on failure it is rolled back.  The
 * handle's precommit steps (precommit.c: settling, counters) run first, in
 * the transaction.  A commit that succeeds forgets the failures recorded
 * inside the transaction (a queue read that found none before creating
 * it, say): the work they were part of succeeded, so spool_errcode must
 * not report them. */
int
spool__commit(spool *q)
{
	const struct spool__precommit	*p;
	int				 rc = SPOOL_OK;

	for (p = q->hooks != NULL ? q->hooks->precommit : NULL;
	    p != NULL && rc == SPOOL_OK && p->run != NULL; p++)
		rc = p->run(q);
	if (rc == SPOOL_OK)
		rc = spool__step_done(q, spool__stmt(q, SPOOL_SQL_COMMIT),
		    "commit");
	if (rc != SPOOL_OK) {
		spool__rollback(q);
		return (rc);
	}
	q->in_txn = 0;
	spool__clear_error(q);
	/* Settled: the file is as this handle left it, at the data version
	 * it has now (its own commit moved it). */
	if (q->txn_dv_read)
		q->quiet_ok = store_data_version(q, &q->quiet_dv) == SQLITE_OK;
	return (SPOOL_OK);
}

/* The pager's data version of q's file: it moves at every commit, this
 * connection's (autocommit writes too) or, seen when a transaction
 * begins, another's. */
static int
store_data_version(spool *q, int64_t *dv)
{
	unsigned int	 v = 0;
	int		 rc;

	rc = sqlite3_file_control(q->db, "main", SQLITE_FCNTL_DATA_VERSION, &v);
	*dv = v;
	return (rc);
}

/*
 * In a write transaction just begun (spool__begin): is the file quiet,
 * as this handle's last commit left it?  Quiet means that commit ran
 * spool__quiet too and the file's data version has not moved since
 * (SQLITE_FCNTL_DATA_VERSION, a read of a number in memory: no other
 * connection committed, and this one changed nothing outside spool__begin
 * .. spool__commit).  Then nothing is left to settle (that commit
 * settled everything, and every spool commit settles what it causes)
 * and qc_conf is still its queue's row.  If not quiet, qc_conf is
 * forgotten.  Only enqueue.c calls this.
 */
int
spool__quiet(spool *q, int *quiet)
{
	int64_t		 dv;
	int		 rc;

	*quiet = 0;
	if ((rc = store_data_version(q, &dv)) != SQLITE_OK) {
		q->qc_valid = 0;
		return (spool__store_error(q, rc, "data version"));
	}
	*quiet = q->quiet_prev && dv == q->quiet_dv;
	if (!*quiet)
		q->qc_valid = 0;
	q->txn_dv_read = 1;
	return (SPOOL_OK);
}

/* In a write transaction: open a savepoint (op 0), release it (op 1), or
 * undo its writes and release it (op -1). */
int
spool__savepoint(spool *q, int op)
{
	int	 rc;

	if (op == 0)
		return (spool__step_done(q, spool__stmt(q, SPOOL_SQL_SAVEPOINT),
		    "savepoint"));
	if (op < 0 && (rc = spool__step_done(q, spool__stmt(q,
	    SPOOL_SQL_SAVEPOINT_ROLLBACK), "savepoint")) != SPOOL_OK)
		return (rc);
	return (spool__step_done(q, spool__stmt(q, SPOOL_SQL_SAVEPOINT_RELEASE),
	    "savepoint"));
}

/* Start a read transaction, so several reads see one snapshot. */
int
spool__begin_read(spool *q)
{
	int	 rc;

	if (q->in_txn)
		return (spool__error(q, SPOOL_ERROR, "nested transaction"));
	rc = spool__step_done(q, spool__stmt(q, SPOOL_SQL_BEGIN_READ),
	    "begin read");
	if (rc == SPOOL_OK)
		q->in_txn = 1;
	return (rc);
}

/* End a read transaction (nothing to commit, so errors do not matter). */
void
spool__end_read(spool *q)
{
	spool__rollback(q);
}

/* Roll the transaction back (keeping the error already recorded). */
void
spool__rollback(spool *q)
{
	q->mark_seen = 0;	/* a mark set may be undone: read it again */
	if (sqlite3_get_autocommit(q->db) == 0) {
		sqlite3_stmt	*st = spool__stmt(q, SPOOL_SQL_ROLLBACK);

		(void)sqlite3_step(st);
		sqlite3_reset(st);
	}
	if (q->hooks != NULL)
		q->hooks->reset(q);
	q->in_txn = 0;
}

/* A signature of the WAL file (size and modification time), or 0 if it
 * cannot be read: it changes when another connection commits. */
static int64_t
store_wal_sig(const spool *q)
{
	char		 wal[PATH_MAX];
	struct stat	 sb;

	if (q->path == NULL || snprintf(wal, sizeof wal, "%s-wal", q->path) >=
	    (int)sizeof wal || stat(wal, &sb) == -1)
		return (0);
	return ((int64_t)sb.st_size * 1000003 + (int64_t)sb.st_mtim.tv_sec *
	    1000000000 + sb.st_mtim.tv_nsec);
}

/*
 * SQLite's busy handler: wait for another connection's lock until the
 * busy timeout has passed, retrying after 0.1 ms, doubling to 1 ms, each
 * delay randomized by +-50%.  sqlite3_busy_timeout() backs off to one
 * try per 100 ms: under steady load, when other workers' transactions
 * follow each other with only microseconds between them, such a waiter
 * rarely finds the lock free and fails with SQLITE_BUSY after the timeout
 * although no transaction held the lock for long.
 *
 * After 100 ms of waiting, the WAL file tells the two cases apart.  If it
 * changed since the last try, others are committing: a starved waiter
 * polls every 0.1 ms so that one of its tries lands in a gap between
 * their transactions.  If it did not, one holder sits on the lock (a
 * sqlite3 shell in BEGIN IMMEDIATE, a stalled process): the waiter backs
 * off, doubling to 25 ms, and so sleeps instead of burning a tenth of a
 * core polling.
 */
static int
store_busy(void *arg, int count)
{
	spool		*q = arg;
	int64_t		 now_us, delay_us, sig;

	now_us = spool__clock_us(CLOCK_MONOTONIC);
	if (count == 0) {
		q->busy_start_us = now_us;
		q->busy_delay_us = 100;
		q->busy_wal_sig = 0;
	}
	if (now_us - q->busy_start_us >= q->busy_timeout_ms * 1000)
		return (0);
	if (now_us - q->busy_start_us < 100000) {
		delay_us = (int64_t)100 << (count < 4 ? count : 4);
		if (delay_us > 1000)
			delay_us = 1000;
	} else {
		sig = store_wal_sig(q);
		if (sig != q->busy_wal_sig)
			q->busy_delay_us = 100;		/* others commit */
		else if ((q->busy_delay_us *= 2) > 25000)
			q->busy_delay_us = 25000;	/* one holder */
		q->busy_wal_sig = sig;
		delay_us = q->busy_delay_us;
	}
	spool__sleep_us((int64_t)(delay_us * (0.5 + spool__random_unit())));
	return (1);
}

/* Choose how a commit reaches the disk: FULL (synced before it returns)
 * or, with full 0, NORMAL (synced by a later commit or checkpoint).  A
 * handle opened with SPOOL_OPEN_SYNC_NORMAL stays NORMAL.  Run with
 * sqlite3_exec, not a cached statement: SQLite applies this pragma when it
 * is prepared, so a prepared copy would take effect at open. */
int
spool__set_sync(spool *q, int full)
{
	if (full && (q->flags & SPOOL_OPEN_SYNC_NORMAL))
		full = 0;
	return (store_exec(q, full ? "PRAGMA synchronous = FULL" :
	    "PRAGMA synchronous = NORMAL", "synchronous"));
}

/* Set how long to wait for another connection's lock. */
int
spool_busy_timeout(spool *q, int64_t ms)
{
	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	spool__clear_error(q);
	if (ms < 0 || ms > INT32_MAX)
		return (spool__error(q, SPOOL_EINVAL,
		    "busy timeout out of range: %lld ms", (long long)ms));
	q->busy_timeout_ms = ms;
	return (SPOOL_OK);
}

/* Run one SQL text (or several statements) outside the statement cache;
 * used only while opening, before the cache exists. */
static int
store_exec(spool *q, const char *sql, const char *what)
{
	int	 rc;

	rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return (spool__store_error(q, rc, what));
	return (SPOOL_OK);
}

/* Run a query that returns one integer (e.g. a pragma) into *v. */
static int
store_int(spool *q, const char *sql, int64_t *v, const char *what)
{
	sqlite3_stmt	*st;
	int		 rc;

	*v = 0;
	rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return (spool__store_error(q, rc, what));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE)
		rc = spool__store_error(q, rc, what);
	else
		rc = SPOOL_OK;
	sqlite3_finalize(st);
	return (rc);
}

/* Read application_id, user_version and the number of schema objects,
 * from one snapshot: separate reads could mix states from before and after
 * another process's migration. */
static int
store_probe(spool *q, int64_t *app_id, int64_t *version, int64_t *objects)
{
	sqlite3_stmt	*st;
	int		 rc;

	*app_id = *version = *objects = 0;
	rc = sqlite3_prepare_v2(q->db, spool__sql_text[SPOOL_SQL_SCHEMA_PROBE],
	    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return (spool__store_error(q, rc, "open"));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*app_id = sqlite3_column_int64(st, 0);
		*version = sqlite3_column_int64(st, 1);
		*objects = sqlite3_column_int64(st, 2);
		rc = SPOOL_OK;
	} else
		rc = spool__store_error(q, rc, "open");
	sqlite3_finalize(st);
	return (rc);
}

/* Refuse a file that is neither a spool database nor an empty one; a
 * newer schema is SPOOL_ESCHEMA. */
static int
store_check_identity(spool *q, int64_t app_id, int64_t version,
    int64_t objects)
{
	if (app_id != SPOOL_APPLICATION_ID) {
		if (app_id != 0 || version != 0 || objects != 0)
			return (spool__error(q, SPOOL_ENOTDB,
			    "%s: not a spool database (a SQLite file of another "
			    "application)", q->path));
	}
	if (version > SPOOL_SCHEMA_VERSION)
		return (spool__error(q, SPOOL_ESCHEMA,
		    "%s: database schema version %lld is newer than this "
		    "library's (%d); upgrade spool", q->path,
		    (long long)version, SPOOL_SCHEMA_VERSION));
	return (SPOOL_OK);
}

/* Bring the schema to SPOOL_SCHEMA_VERSION in one transaction.  The
 * version is read again under the write lock, so when several processes
 * open an old file at once, one migrates and the others find nothing
 * left to do. */
static int
store_migrate(spool *q)
{
	int64_t	 app_id, version, objects, v;
	int	 rc;
	char	 what[64];

	/* Rebuilding a table (SQLite's 12-step procedure) needs foreign keys
	 * off, and they can only be switched outside a transaction; they are
	 * checked before the commit instead. */
	if ((rc = store_exec(q, "PRAGMA foreign_keys = OFF", "migrate")) != 0)
		return (rc);
	if ((rc = store_exec(q, "BEGIN IMMEDIATE", "migrate")) != SPOOL_OK)
		goto out;
	if ((rc = store_probe(q, &app_id, &version, &objects)) != SPOOL_OK ||
	    (rc = store_check_identity(q, app_id, version, objects)) != SPOOL_OK)
		goto fail;
	if (version == SPOOL_SCHEMA_VERSION) {
		(void)sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	for (v = version + 1; v <= SPOOL_SCHEMA_VERSION; v++) {
		snprintf(what, sizeof what, "migration %lld", (long long)v);
		if ((rc = store_exec(q, spool__migrations[v - 1], what)) != 0)
			goto fail;
		if ((rc = store_int(q, "PRAGMA user_version", &version,
		    what)) != SPOOL_OK)
			goto fail;
		if (version != v) {
			rc = spool__error(q, SPOOL_ERROR,
			    "%s did not set user_version", what);
			goto fail;
		}
		spool__crash("migrate");
	}
	if ((rc = store_exec(q, spool__sql_views, "views")) != SPOOL_OK)
		goto fail;
	/* The id is written last: a file carries it only once it is whole. */
	if ((rc = store_exec(q, "PRAGMA application_id = 1397772108",
	    "migrate")) != SPOOL_OK)
		goto fail;
	if ((rc = store_int(q, "SELECT count(*) FROM pragma_foreign_key_check",
	    &v, "migrate")) != SPOOL_OK)
		goto fail;
	if (v != 0) {
		rc = spool__error(q, SPOOL_ERROR,
		    "migration left %lld foreign key violations", (long long)v);
		goto fail;
	}
	if ((rc = store_exec(q, "COMMIT", "migrate")) != SPOOL_OK)
		goto fail;
	goto out;

fail:
	(void)sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
out:
	if (store_exec(q, "PRAGMA foreign_keys = ON", "migrate") != SPOOL_OK &&
	    rc == SPOOL_OK)
		rc = spool_errcode(q);
	return (rc);
}

/* Put the file in WAL mode.  Switching needs an exclusive lock, and a
 * process waiting for it inside SQLite's busy handler keeps its shared
 * lock, which can deadlock with another process that is committing (its
 * first migration, say) until the timeout.  So try briefly, let go of
 * every lock, and try again, up to the busy timeout. */
static int
store_set_wal(spool *q)
{
	sqlite3_stmt		*st;
	const unsigned char	*mode;
	int64_t			 pause_ms;
	int64_t			 waited_ms = 0, saved_ms;
	int			 rc, wal;

	saved_ms = q->busy_timeout_ms;
	for (;;) {
		q->busy_timeout_ms = 20;	/* store_busy gives up after this */
		rc = sqlite3_prepare_v2(q->db, "PRAGMA journal_mode = WAL", -1,
		    &st, NULL);
		if (rc == SQLITE_OK) {
			rc = sqlite3_step(st);
			wal = 0;
			if (rc == SQLITE_ROW) {
				mode = sqlite3_column_text(st, 0);
				wal = mode != NULL &&
				    strcmp((const char *)mode, "wal") == 0;
				rc = SQLITE_OK;
			}
			sqlite3_finalize(st);
		}
		q->busy_timeout_ms = saved_ms;
		if (rc == SQLITE_OK && wal)
			return (SPOOL_OK);
		if (rc == SQLITE_OK)
			return (spool__error(q, SPOOL_EIO, "%s: cannot use WAL "
			    "mode (is it on a network file system?)", q->path));
		if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
			return (spool__store_error(q, rc, "open"));
		if (waited_ms >= q->busy_timeout_ms)
			return (spool__store_error(q, rc, "open"));
		/* Random pauses keep competing processes from moving in step. */
		pause_ms = 1 + (int64_t)(spool__random_unit() * 9);
		spool__sleep_us(pause_ms * 1000);
		waited_ms += 20 + pause_ms;
	}
}

/* Check the path before SQLite sees it, creating the file with mode 0600
 * when asked: a new database must not be readable by others whatever the
 * umask (SQLite gives -wal and -shm the mode of the database). */
static int
store_check_path(spool *q, const char *path, int create)
{
	struct stat	 sb;
	int		 fd;

	if (lstat(path, &sb) == 0) {
		if (S_ISLNK(sb.st_mode))
			return (spool__error(q, SPOOL_ENOTDB,
			    "%s: is a symbolic link (refused; open its target)",
			    path));
		if (S_ISDIR(sb.st_mode))
			return (spool__error(q, SPOOL_ENOTDB,
			    "%s: is a directory, not a database", path));
		if (!S_ISREG(sb.st_mode))
			return (spool__error(q, SPOOL_ENOTDB,
			    "%s: is not a regular file", path));
		return (SPOOL_OK);
	}
	if (errno != ENOENT)
		goto err;
	if (!create)
		return (spool__error(q, SPOOL_ENOENT, "%s: no such database",
		    path));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		if (errno == EEXIST)	/* another process created it first */
			return (store_check_path(q, path, 0));
		goto err;
	}
	/* The umask may have cleared owner bits too: set the mode exactly. */
	if (fchmod(fd, 0600) == -1) {
		close(fd);
		goto err;
	}
	close(fd);
	return (SPOOL_OK);

err:
	if (errno == EACCES || errno == EPERM || errno == EROFS)
		return (spool__error(q, SPOOL_EPERM, "%s: %s", path,
		    strerror(errno)));
	if (errno == ENOENT || errno == ENOTDIR)
		return (spool__error(q, SPOOL_ENOENT, "%s: %s", path,
		    strerror(errno)));
	return (spool__error(q, SPOOL_EIO, "%s: %s", path, strerror(errno)));
}

/* Whether path has a -wal file with something in it. */
static int
store_wal_has_content(const char *path)
{
	struct stat	 sb;
	char		*wal;
	int		 rc;

	if ((wal = malloc(strlen(path) + 5)) == NULL)
		return (1);	/* be careful */
	sprintf(wal, "%s-wal", path);
	rc = stat(wal, &sb) == 0 && sb.st_size > 0;
	free(wal);
	return (rc);
}

/* The large multi-row inserts of bulk enqueues: preparing them costs
 * about 1 ms, which a handle that never makes one should not pay. */
static int
store_lazy(int which)
{
	return (which == SPOOL_SQL_TASK_INSERT_ROWS ||
	    which == SPOOL_SQL_TASK_INSERT_SAME);
}

/* Prepare every named query once, for the life of the handle (the lazy
 * ones at their first use: spool__stmt_lazy). */
static int
store_prepare_all(spool *q)
{
	char	 what[96];
	int	 i, rc;

	for (i = 0; i < SPOOL_SQL__COUNT; i++) {
		if (store_lazy(i))
			continue;
		rc = sqlite3_prepare_v3(q->db, spool__sql_text[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &q->stmt[i], NULL);
		if (rc != SQLITE_OK) {
			snprintf(what, sizeof what, "prepare %s",
			    spool__sql_name[i]);
			return (spool__store_error(q, rc, what));
		}
	}
	return (SPOOL_OK);
}

/*
 * SQLite's memory statistics (SQLITE_CONFIG_MEMSTATUS, on by default) take
 * a process-wide mutex around every allocation and free the library makes:
 * a tenth of a drain's CPU went to locking it.  spool reads none of those
 * statistics, so the first open turns them off, if SQLite is not yet
 * initialized in the process (sqlite3_config refuses otherwise, changing
 * nothing).  A program that wants them calls sqlite3_initialize() before
 * spool_open (libspool(3) says so).
 */
static pthread_once_t	 store_config_once = PTHREAD_ONCE_INIT;

static void
store_config(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int	 store_open(spool *, const char *, int);

/*
 * Open (and create, migrate) the spool database at path, for spool_open
 * (open.c), with the transaction hooks the features give.  On a failure
 * *out is still a handle, so that spool_errmsg can explain; its
 * connection is closed, and every call on it but spool_errmsg,
 * spool_errcode and spool_close returns the open's code without touching
 * the database or the message (spool__unusable).
 */
int
spool__store_open(spool **out, const char *path, int flags,
    const struct spool__txn_hooks *hooks)
{
	spool	*q;
	int	 rc, i;

	if (out == NULL)
		return (SPOOL_EINVAL);
	*out = NULL;
	if ((q = calloc(1, sizeof *q)) == NULL)
		return (SPOOL_ENOMEM);
	*out = q;
	q->hooks = hooks;
	if ((rc = store_open(q, path, flags)) != SPOOL_OK) {
		for (i = 0; i < SPOOL_SQL__COUNT; i++) {
			sqlite3_finalize(q->stmt[i]);
			q->stmt[i] = NULL;
		}
		if (q->db != NULL)
			sqlite3_close_v2(q->db);
		q->db = NULL;
		q->open_rc = rc;
	}
	return (rc);
}

/*
 * The schema is spool's own.  A trigger planted in the file runs inside
 * spool's transactions (one that copies every payload into a table of its
 * own, say), and a view or index changed by hand misleads; so at open the
 * file's objects are compared with those the migrations and views make on
 * an empty database in memory (built once per process): the same names,
 * of the same types, with the same SQL.  Objects named local_* (tables,
 * views and indexes, never triggers) are the user's own, and SQLite's
 * (sqlite_*, e.g. the statistics ANALYZE writes) are SQLite's.
 */
struct schema_obj {
	char	*type, *name, *sql;	/* sql "" for an automatic index */
};

static struct schema_obj	*schema_want;
static size_t			 schema_nwant;
static pthread_once_t		 schema_once = PTHREAD_ONCE_INIT;

#define SCHEMA_LIST	"SELECT type, name, coalesce(sql, '') FROM sqlite_schema " \
	"WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name"

/* Read the objects of db (SCHEMA_LIST) into *out; -1 on failure. */
static int
schema_read(sqlite3 *db, struct schema_obj **out, size_t *n)
{
	sqlite3_stmt		*st;
	struct schema_obj	*v = NULL, *nv;
	size_t			 len = 0, cap = 0;
	int			 rc;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db, SCHEMA_LIST, -1, &st, NULL) != SQLITE_OK)
		return (-1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = spool__grow(v, &cap, len, sizeof *v)) == NULL)
			break;
		v = nv;
		v[len].type = spool__strdup((const char *)
		    sqlite3_column_text(st, 0));
		v[len].name = spool__strdup((const char *)
		    sqlite3_column_text(st, 1));
		v[len].sql = spool__strdup((const char *)
		    sqlite3_column_text(st, 2));
		len++;
		if (v[len - 1].type == NULL || v[len - 1].name == NULL ||
		    v[len - 1].sql == NULL)
			break;
	}
	sqlite3_finalize(st);
	*out = v;
	*n = len;
	return (rc == SQLITE_DONE ? 0 : -1);
}

static void
schema_free(struct schema_obj *v, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		free(v[i].type);
		free(v[i].name);
		free(v[i].sql);
	}
	free(v);
}

/* Build schema_want: every migration, then the views, in memory. */
static void
schema_build(void)
{
	sqlite3	*db = NULL;
	int	 i, ok;

	ok = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL) == SQLITE_OK;
	for (i = 0; ok && i < SPOOL_SCHEMA_VERSION; i++)
		ok = sqlite3_exec(db, spool__migrations[i], NULL, NULL,
		    NULL) == SQLITE_OK;
	if (ok)
		ok = sqlite3_exec(db, spool__sql_views, NULL, NULL, NULL) ==
		    SQLITE_OK;
	if (ok && schema_read(db, &schema_want, &schema_nwant) != 0) {
		schema_free(schema_want, schema_nwant);
		schema_want = NULL;
		schema_nwant = 0;
	}
	sqlite3_close(db);
}

/* Whether the file's object v may be there though spool did not make it. */
static int
schema_users(const struct schema_obj *v)
{
	return (strncmp(v->name, "local_", 6) == 0 &&
	    strcmp(v->type, "trigger") != 0);
}

/* Refuse (SPOOL_ENOTDB) a file whose schema is not spool's, naming the
 * first object that differs. */
static int
store_check_schema(spool *q)
{
	struct schema_obj	*have = NULL;
	size_t			 nhave = 0, i = 0, k = 0;
	int			 c, rc = SPOOL_OK;

	pthread_once(&schema_once, schema_build);
	if (schema_want == NULL)
		return (spool__error(q, SPOOL_ENOMEM,
		    "open: cannot build the expected schema"));
	if (schema_read(q->db, &have, &nhave) != 0) {
		rc = spool__store_error(q, sqlite3_errcode(q->db), "open");
		goto out;
	}
	while (rc == SPOOL_OK && (i < nhave || k < schema_nwant)) {
		if (i == nhave)
			c = 1;
		else if (k == schema_nwant)
			c = -1;
		else if ((c = strcmp(have[i].type, schema_want[k].type)) == 0)
			c = strcmp(have[i].name, schema_want[k].name);
		if (c < 0) {		/* in the file only */
			if (!schema_users(&have[i]))
				rc = spool__error(q, SPOOL_ENOTDB, "%s: the %s "
				    "'%s' is not spool's (drop it, or name your "
				    "own tables, views and indexes local_*)",
				    q->path, have[i].type, have[i].name);
			i++;
		} else if (c > 0) {	/* spool's, missing */
			rc = spool__error(q, SPOOL_ENOTDB, "%s: spool's %s "
			    "'%s' is missing", q->path, schema_want[k].type,
			    schema_want[k].name);
			k++;
		} else {
			if (strcmp(have[i].sql, schema_want[k].sql) != 0)
				rc = spool__error(q, SPOOL_ENOTDB, "%s: spool's "
				    "%s '%s' was changed", q->path,
				    have[i].type, have[i].name);
			i++;
			k++;
		}
	}
out:
	schema_free(have, nhave);
	return (rc);
}

/* spool_open's work on the fresh handle q. */
static int
store_open(spool *q, const char *path, int flags)
{
	pthread_condattr_t ca;
	char		 host[128];
	int64_t		 app_id, version, objects;
	int		 rc;

	q->busy_timeout_ms = SPOOL_BUSY_TIMEOUT_MS;
	q->reap_interval_ms = SPOOL_REAP_INTERVAL_MS;
	pthread_mutex_init(&q->gc_mu, NULL);
	pthread_cond_init(&q->gc_cv, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->gc_arrive_cv, &ca);
	pthread_condattr_destroy(&ca);
	q->flags = flags;
	if (gethostname(host, sizeof host) != 0)
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	snprintf(q->owner, sizeof q->owner, "%s:%ld", host, (long)getpid());

	if (path == NULL || *path == '\0')
		return (spool__error(q, SPOOL_EINVAL, "database path is empty"));
	if ((flags & ~(SPOOL_OPEN_CREATE | SPOOL_OPEN_SYNC_NORMAL)) != 0)
		return (spool__error(q, SPOOL_EINVAL, "unknown open flags 0x%x",
		    (unsigned)flags));
	if ((q->path = spool__strdup(path)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	if ((rc = store_check_path(q, path, flags & SPOOL_OPEN_CREATE)) != 0)
		return (rc);

	pthread_once(&store_config_once, store_config);
	rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
	if (q->db == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	if (rc != SQLITE_OK)
		return (spool__store_error(q, rc, path));
	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_handler(q->db, store_busy, q);
	/* The schema is data anyone with write access can edit: do not let
	 * it run functions with side effects, nor corrupt the file. */
	sqlite3_db_config(q->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	sqlite3_db_config(q->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
	/* Closing the last connection of a WAL file checkpoints it into the
	 * database: if the file has a WAL with content, a file refused below
	 * must not be changed that way.  (An empty or missing WAL gives the
	 * checkpoint nothing to write, and lets SQLite remove the -wal and
	 * -shm it made to read the file.) */
	if (store_wal_has_content(path))
		sqlite3_db_config(q->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1,
		    (int *)NULL);
	if (sqlite3_db_readonly(q->db, "main") == 1)
		return (spool__error(q, SPOOL_EPERM,
		    "%s: database is read-only (no write permission)", path));
	/* Statement journals (a multi-row insert keeps one) and temporary
	 * B-trees stay in memory: with the default, a statement journal over
	 * 64 KiB, which one statement's cache spills can make, is written to
	 * a temporary file. */
	if ((rc = store_exec(q, "PRAGMA foreign_keys = ON; "
	    "PRAGMA trusted_schema = OFF; PRAGMA temp_store = MEMORY",
	    "open")) != SPOOL_OK)
		return (rc);

	/* Read before writing anything: a foreign file stays untouched. */
	if ((rc = store_probe(q, &app_id, &version, &objects)) != SPOOL_OK) {
		if (rc == SPOOL_ENOTDB)
			return (spool__error(q, SPOOL_ENOTDB,
			    "%s: not a SQLite database", path));
		return (rc);
	}
	if ((rc = store_check_identity(q, app_id, version, objects)) != 0)
		return (rc);
	if (app_id == 0 && !(flags & SPOOL_OPEN_CREATE))
		return (spool__error(q, SPOOL_ENOTDB,
		    "%s: empty file, not a spool database yet (create it first)",
		    path));

	sqlite3_db_config(q->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0,
	    (int *)NULL);
	if ((rc = store_set_wal(q)) != SPOOL_OK)
		return (rc);
	if ((rc = store_exec(q, (flags & SPOOL_OPEN_SYNC_NORMAL) ?
	    "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL",
	    "open")) != SPOOL_OK)
		return (rc);
	/* Keep a checkpointed WAL from staying large on disk. */
	if ((rc = store_exec(q, "PRAGMA journal_size_limit = 67108864",
	    "open")) != SPOOL_OK)
		return (rc);
	if (version < SPOOL_SCHEMA_VERSION &&
	    (rc = store_migrate(q)) != SPOOL_OK)
		return (rc);
	if ((rc = store_check_schema(q)) != SPOOL_OK)
		return (rc);
	if ((rc = store_prepare_all(q)) != SPOOL_OK)
		return (rc);
	return (SPOOL_OK);
}

/* Close the handle: finalize statements, then the connection. */
void
spool_close(spool *q)
{
	int	 i;

	if (q == NULL)
		return;
	for (i = 0; i < SPOOL_SQL__COUNT; i++)
		sqlite3_finalize(q->stmt[i]);
	if (q->db != NULL)
		sqlite3_close_v2(q->db);
	pthread_mutex_destroy(&q->gc_mu);
	pthread_cond_destroy(&q->gc_cv);
	pthread_cond_destroy(&q->gc_arrive_cv);
	spool__error_mine(q, SPOOL_OK, NULL);
	free(q->ctr);
	free(q->path);
	free(q);
}
