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
#include "query-gen.h"

/* Insert or refresh the row of worker id. */
int
spool__worker_upsert(spool *q, const char *id, const char *host, long pid,
    const char *queues_json, int concurrency, int busy, int64_t started_ms,
    int64_t now_ms)
{
	int	 rc;

	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_worker_upsert(q, &(struct spool__q_worker_upsert_in){
	    .id = id, .host = host, .pid = pid, .queues = queues_json,
	    .concurrency = concurrency, .busy = busy, .started_ms = started_ms,
	    .heartbeat_ms = now_ms })) != SPOOL_OK) {
		spool__rollback(q);
		return (rc);
	}
	return (spool__commit(q));
}

/* Delete the row of worker id, and rows not refreshed since stale_ms. */
int
spool__worker_delete(spool *q, const char *id, int64_t stale_ms)
{
	int	 rc;

	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_worker_delete(q, &(struct spool__q_worker_delete_in){
	    .id = id != NULL ? id : "" })) == SPOOL_OK)
		rc = spool__q_worker_prune(q, &(struct spool__q_worker_prune_in){
		    .stale_ms = stale_ms });
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
	struct spool__q_lock_holder_row	 r;
	struct spool__cur		 c;
	char				 holder[200] = "another process";
	int64_t				 held_until = 0;
	int				 rc;

	if ((rc = spool__check_name(q, "lock name", name,
	    SPOOL_NAME_MAX)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_lock_acquire(q, &(struct spool__q_lock_acquire_in){
	    .name = name, .owner = owner, .now_ms = now_ms,
	    .until_ms = until_ms })) != SPOOL_OK)
		goto fail;
	if (spool__changes(q) == 1)
		return (spool__commit(q));
	if ((rc = spool__q_lock_holder(q, &c, &(struct spool__q_lock_holder_in){
	    .name = name })) != SPOOL_OK)
		goto fail;
	if (spool__q_lock_holder_next(&c, &r) == 1) {
		snprintf(holder, sizeof holder, "%s", r.owner != NULL ?
		    r.owner : "another process");
		held_until = r.until_ms;
	}
	spool__cur_end(&c);
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
	int	 rc;

	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_lock_renew(q, &(struct spool__q_lock_renew_in){
	    .name = name, .owner = owner, .until_ms = until_ms })) !=
	    SPOOL_OK) {
		spool__rollback(q);
		return (rc);
	}
	if (spool__changes(q) != 1) {
		spool__rollback(q);
		return (spool__error(q, SPOOL_ELEASE, "lock %s was lost", name));
	}
	return (spool__commit(q));
}

/* Give lock name back if owner holds it. */
int
spool__lock_release(spool *q, const char *name, const char *owner)
{
	int	 rc;

	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_lock_release(q, &(struct spool__q_lock_release_in){
	    .name = name, .owner = owner })) != SPOOL_OK) {
		spool__rollback(q);
		return (rc);
	}
	return (spool__commit(q));
}
