/*
 * workers.c -- the workers table (one row per live worker process) and
 * named locks (leases on a name, for exclusive runs).  The engine keeps
 * both fresh from its tick; a crashed process's row goes stale and its
 * lock expires.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "spool-int.h"

/* Insert or refresh the row of worker id. */
int
spool__worker_upsert(spool *q, const char *id, const char *host, long pid,
    const char *queues_json, int concurrency, int busy, int64_t started_ms,
    int64_t now_ms)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	st = spool__stmt(q, SPOOL_SQL_WORKER_UPSERT);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, pid);
	sqlite3_bind_text(st, 4, queues_json, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, concurrency);
	sqlite3_bind_int(st, 6, busy);
	sqlite3_bind_int64(st, 7, started_ms);
	sqlite3_bind_int64(st, 8, now_ms);
	if ((rc = spool__step_done(q, st, "worker row")) != SPOOL_OK) {
		spool__rollback(q);
		return (rc);
	}
	return (spool__commit(q));
}

/* Delete the row of worker id, and rows not refreshed since stale_ms. */
int
spool__worker_delete(spool *q, const char *id, int64_t stale_ms)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	st = spool__stmt(q, SPOOL_SQL_WORKER_DELETE);
	sqlite3_bind_text(st, 1, id != NULL ? id : "", -1, SQLITE_STATIC);
	if ((rc = spool__step_done(q, st, "worker row")) == SPOOL_OK) {
		st = spool__stmt(q, SPOOL_SQL_WORKER_PRUNE);
		sqlite3_bind_int64(st, 1, stale_ms);
		rc = spool__step_done(q, st, "worker rows");
	}
	if (rc != SPOOL_OK) {
		spool__rollback(q);
		return (rc);
	}
	return (spool__commit(q));
}

/* Take lock name for owner until until_ms.  SPOOL_EBUSY, with the
 * holder named in the message, if another owner holds it. */
int
spool__lock_acquire(spool *q, const char *name, const char *owner,
    int64_t now_ms, int64_t until_ms)
{
	sqlite3_stmt	*st;
	char		 holder[200] = "another process";
	int64_t		 held_until = 0;
	int		 rc;

	if ((rc = spool__check_name(q, "lock name", name,
	    SPOOL_NAME_MAX)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	st = spool__stmt(q, SPOOL_SQL_LOCK_ACQUIRE);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms);
	sqlite3_bind_int64(st, 4, until_ms);
	if ((rc = spool__step_done(q, st, "lock")) != SPOOL_OK)
		goto fail;
	if (sqlite3_changes(q->db) == 1)
		return (spool__commit(q));
	st = spool__stmt(q, SPOOL_SQL_LOCK_HOLDER);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(holder, sizeof holder, "%s",
		    (const char *)sqlite3_column_text(st, 0));
		held_until = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	spool__rollback(q);
	return (spool__error(q, SPOOL_EBUSY, "lock %s is held by %s for "
	    "%.1f s more", name, holder, held_until > now_ms ?
	    (held_until - now_ms) / 1000.0 : 0.0));
fail:
	spool__rollback(q);
	return (rc);
}

/* Extend lock name held by owner; SPOOL_ELEASE if owner lost it. */
int
spool__lock_renew(spool *q, const char *name, const char *owner,
    int64_t until_ms)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	st = spool__stmt(q, SPOOL_SQL_LOCK_RENEW);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, until_ms);
	if ((rc = spool__step_done(q, st, "lock")) != SPOOL_OK) {
		spool__rollback(q);
		return (rc);
	}
	if (sqlite3_changes(q->db) != 1) {
		spool__rollback(q);
		return (spool__error(q, SPOOL_ELEASE, "lock %s was lost", name));
	}
	return (spool__commit(q));
}

/* Give lock name back if owner holds it. */
int
spool__lock_release(spool *q, const char *name, const char *owner)
{
	sqlite3_stmt	*st;
	int		 rc;

	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	st = spool__stmt(q, SPOOL_SQL_LOCK_RELEASE);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
	if ((rc = spool__step_done(q, st, "lock")) != SPOOL_OK) {
		spool__rollback(q);
		return (rc);
	}
	return (spool__commit(q));
}
