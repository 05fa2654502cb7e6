/*
 * batch.c -- batches: create, close, read, and settling, which finishes
 * closed batches and enqueues their completion hooks.
 *
 * Invariants: a batch's counters equal the counts of its members by state
 * (joins are counted here, in the enqueue's transaction; changes of state
 * and deletions by the triggers of sql/schema/0003-batches.sql); a hook
 * task is enqueued in the same transaction that finishes its batch and
 * records its id there, so it is enqueued once at most; settling runs
 * before the COMMIT of every write transaction (spool__commit), so a batch
 * that the transaction finished is finished when it commits.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "spool-int.h"

#define BATCH_LIST_MAX	10000
#define HOOK_OVERHEAD	512	/* a hook payload's keys and counts */

static const char *const batch_states[] = { NULL, "open", "closed", "finished" };

/* The name of a batch state. */
const char *
spool_batch_state_name(int state)
{
	if (state < SPOOL_BATCH_OPEN || state > SPOOL_BATCH_FINISHED)
		return (NULL);
	return (batch_states[state]);
}

static int
batch_state_parse(const char *name)
{
	int	 i;

	for (i = SPOOL_BATCH_OPEN; name != NULL && i <= SPOOL_BATCH_FINISHED; i++)
		if (strcmp(name, batch_states[i]) == 0)
			return (i);
	return (0);
}

/* Check a text option: NULL, or valid UTF-8 without NUL up to max bytes. */
static int
batch_check_text(spool *q, const char *what, const char *s, size_t max)
{
	size_t	 len;

	if (s == NULL)
		return (SPOOL_OK);
	len = strlen(s);
	if (len > max)
		return (spool__error(q, SPOOL_EINVAL, "%s too long (%zu bytes, "
		    "at most %zu)", what, len, max));
	if (!spool__utf8_valid(s, len))
		return (spool__error(q, SPOOL_EINVAL, "%s is not valid UTF-8",
		    what));
	return (SPOOL_OK);
}

/* The most bytes s can take as a JSON string: quotes and backslashes are
 * escaped in two bytes, other control characters in up to six. */
static size_t
json_escaped_len(const char *s)
{
	size_t	 n = 2;

	for (; s != NULL && *s != '\0'; s++)
		n += *s == '"' || *s == '\\' ? 2 :
		    (unsigned char)*s < 0x20 ? 6 : 1;
	return (n);
}

/* Create an open batch. */
int
spool_batch_create(int64_t *id_out, spool *q, const spool_batch_opts *opts)
{
	static const spool_batch_opts	 none = SPOOL_BATCH_OPTS_INIT;
	sqlite3_stmt			*st;
	int				 rc;

	if (id_out != NULL)
		*id_out = 0;
	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	spool__clear_error(q);
	if (opts == NULL)
		opts = &none;
	if (opts->version < 1)
		return (spool__error(q, SPOOL_EINVAL, "batch options: version "
		    "not set (use SPOOL_BATCH_OPTS_INIT)"));
	if (opts->hook_on != SPOOL_HOOK_ALWAYS &&
	    opts->hook_on != SPOOL_HOOK_SUCCESS)
		return (spool__error(q, SPOOL_EINVAL, "unknown hook_on %d",
		    opts->hook_on));
	if (opts->hook_queue == NULL && opts->hook_payload != NULL)
		return (spool__error(q, SPOOL_EINVAL,
		    "a hook payload needs a hook queue"));
	if ((opts->hook_queue != NULL && (rc = spool__check_name(q,
	    "hook queue name", opts->hook_queue, SPOOL_NAME_MAX)) != 0) ||
	    (rc = batch_check_text(q, "description", opts->description,
	    SPOOL_ERROR_MAX)) != SPOOL_OK ||
	    (rc = batch_check_text(q, "hook payload", opts->hook_payload,
	    SPOOL_PAYLOAD_MAX)) != SPOOL_OK)
		return (rc);
	/* The hook task carries both inside a JSON object: it must fit in
	 * a payload however they are escaped. */
	if (json_escaped_len(opts->hook_payload) +
	    json_escaped_len(opts->description) + HOOK_OVERHEAD >
	    SPOOL_PAYLOAD_MAX)
		return (spool__error(q, SPOOL_EINVAL, "hook payload too large "
		    "(escaped as JSON with the description, it must fit in "
		    "%d bytes)", SPOOL_PAYLOAD_MAX - HOOK_OVERHEAD));
	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	st = spool__stmt(q, SPOOL_SQL_BATCH_INSERT);
	spool__bind_text_or_null(st, 1, opts->description);
	spool__bind_text_or_null(st, 2, opts->hook_queue);
	spool__bind_text_or_null(st, 3, opts->hook_payload);
	sqlite3_bind_text(st, 4, opts->hook_on == SPOOL_HOOK_SUCCESS ?
	    "success" : "always", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, spool__now_ms(q));
	if ((rc = spool__step_done(q, st, "create batch")) != SPOOL_OK) {
		spool__rollback(q);
		return (rc);
	}
	if (id_out != NULL)
		*id_out = sqlite3_last_insert_rowid(q->db);
	return (spool__commit(q));
}

/* The state of batch id, inside the caller's transaction; SPOOL_ENOENT if
 * there is none. */
static int
batch_state_locked(int *state, spool *q, int64_t id)
{
	sqlite3_stmt	*st = spool__stmt(q, SPOOL_SQL_BATCH_STATE);
	int		 rc;

	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*state = batch_state_parse((const char *)
		    sqlite3_column_text(st, 0));
		rc = SPOOL_OK;
	} else if (rc == SQLITE_DONE)
		rc = spool__error(q, SPOOL_ENOENT, "no such batch: %lld",
		    (long long)id);
	else
		rc = spool__store_error(q, rc, "read batch");
	sqlite3_reset(st);
	return (rc);
}

/* Refuse to add to batch id unless it exists and is open. */
int
spool__batch_check_open(spool *q, int64_t id)
{
	int	 state = 0, rc;

	if ((rc = batch_state_locked(&state, q, id)) != SPOOL_OK)
		return (rc);
	if (state != SPOOL_BATCH_OPEN)
		return (spool__error(q, SPOOL_ESTATE, "batch %lld is %s: no "
		    "task may join it", (long long)id,
		    state ? batch_states[state] : "in an unknown state"));
	return (SPOOL_OK);
}

/* Count n new members of open batch id, inside the caller's transaction. */
int
spool__batch_join(spool *q, int64_t id, int64_t n)
{
	sqlite3_stmt	*st = spool__stmt(q, SPOOL_SQL_BATCH_JOIN);
	int		 rc;

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, n);
	if ((rc = spool__step_done(q, st, "join batch")) != SPOOL_OK)
		return (rc);
	if (sqlite3_changes(q->db) != 1)	/* checked open just before */
		return (spool__error(q, SPOOL_ESTATE, "batch %lld is not open",
		    (long long)id));
	return (SPOOL_OK);
}

/*
 * Settle the rows that next_sql finds one at a time, inside the caller's
 * write transaction: enqueue the row's hook when next_sql gives its
 * payload, then mark the row finished with finish_sql, recording the
 * hook's id.  next_sql returns (id, hook queue, hook payload or NULL) and
 * stops returning a row once finished; finish_sql takes ?1 id, ?2 now_ms
 * and ?3 the hook task's id or NULL.  Shared by batches and pipeline runs.
 */
int
spool__settle_hooks_locked(spool *q, enum spool_sql next_sql,
    const char *next_what, enum spool_sql finish_sql, const char *finish_what,
    int64_t now_ms)
{
	sqlite3_stmt	*st;
	spool_task	 t;
	int64_t		 id, hook_id;
	char		*queue, *payload;
	int		 rc, row;

	for (;;) {
		st = spool__stmt(q, next_sql);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			sqlite3_reset(st);
			return (SPOOL_OK);
		}
		if (rc != SQLITE_ROW) {
			sqlite3_reset(st);
			return (spool__store_error(q, rc, next_what));
		}
		id = sqlite3_column_int64(st, 0);
		row = sqlite3_column_type(st, 2) != SQLITE_NULL;
		queue = row ? spool__col_strdup(st, 1) : NULL;
		payload = row ? spool__col_strdup(st, 2) : NULL;
		sqlite3_reset(st);
		if (row && (queue == NULL || payload == NULL)) {
			free(queue);
			free(payload);
			return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
		}
		hook_id = 0;
		if (row) {
			memset(&t, 0, sizeof t);
			t.queue = queue;
			t.payload = payload;
			t.len = strlen(payload);
			rc = spool__enqueue_hook_locked(&hook_id, q, &t, now_ms);
			free(queue);
			free(payload);
			if (rc != SPOOL_OK)
				return (rc);
		}
		st = spool__stmt(q, finish_sql);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, now_ms);
		if (hook_id != 0)
			sqlite3_bind_int64(st, 3, hook_id);
		if ((rc = spool__step_done(q, st, finish_what)) != SPOOL_OK)
			return (rc);
		spool__crash("settle");
	}
}

/*
 * Finish every closed batch with nothing pending or running, enqueueing
 * the hooks that are due, inside the caller's write transaction.  Called
 * by spool__commit; the common case is one seek into an empty index.
 */
int
spool__batch_settle_locked(spool *q, int64_t now_ms)
{
	return (spool__settle_hooks_locked(q, SPOOL_SQL_BATCH_SETTLE_NEXT,
	    "settle batches", SPOOL_SQL_BATCH_FINISH, "finish batch", now_ms));
}

/* Close a batch; settling (at the commit) finishes it if it can. */
int
spool_batch_close(spool *q, int64_t id)
{
	sqlite3_stmt	*st;
	int		 state = 0, rc;

	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	spool__clear_error(q);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "batch id must be positive"));
	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	if ((rc = batch_state_locked(&state, q, id)) != SPOOL_OK)
		goto fail;
	if (state == SPOOL_BATCH_OPEN) {
		st = spool__stmt(q, SPOOL_SQL_BATCH_CLOSE);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, spool__now_ms(q));
		if ((rc = spool__step_done(q, st, "close batch")) != SPOOL_OK)
			goto fail;
	}
	return (spool__commit(q));
fail:
	spool__rollback(q);
	return (rc);
}

/* Fill one info element from a batch_get / batch_list row. */
static int
batch_info_from_row(spool *q, spool_batch_info *b, sqlite3_stmt *st)
{
	const char	*on;

	b->id = sqlite3_column_int64(st, 0);
	b->state = batch_state_parse((const char *)sqlite3_column_text(st, 2));
	b->total = sqlite3_column_int64(st, 3);
	b->pending = sqlite3_column_int64(st, 4);
	b->running = sqlite3_column_int64(st, 5);
	b->succeeded = sqlite3_column_int64(st, 6);
	b->failed = sqlite3_column_int64(st, 7);
	b->dead = sqlite3_column_int64(st, 8);
	b->cancelled = sqlite3_column_int64(st, 9);
	on = (const char *)sqlite3_column_text(st, 12);
	b->hook_on = on != NULL && strcmp(on, "success") == 0 ?
	    SPOOL_HOOK_SUCCESS : SPOOL_HOOK_ALWAYS;
	b->hook_task_id = sqlite3_column_int64(st, 13);
	b->created_ms = sqlite3_column_int64(st, 14);
	b->closed_ms = sqlite3_column_int64(st, 15);
	b->finished_ms = sqlite3_column_int64(st, 16);
	if ((sqlite3_column_type(st, 1) != SQLITE_NULL &&
	    (b->description = spool__col_strdup(st, 1)) == NULL) ||
	    (sqlite3_column_type(st, 10) != SQLITE_NULL &&
	    (b->hook_queue = spool__col_strdup(st, 10)) == NULL) ||
	    (sqlite3_column_type(st, 11) != SQLITE_NULL &&
	    (b->hook_payload = spool__col_strdup(st, 11)) == NULL))
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	return (SPOOL_OK);
}

/* Read one batch. */
int
spool_batch_get(spool_batch_info **out, spool *q, int64_t id)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (out == NULL || q == NULL || q->db == NULL)
		return (spool__unusable(q));
	*out = NULL;
	spool__clear_error(q);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "batch id must be positive"));
	if ((*out = calloc(1, sizeof **out)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	st = spool__stmt(q, SPOOL_SQL_BATCH_GET);
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = batch_info_from_row(q, *out, st);
	else if (rc == SQLITE_DONE)
		rc = spool__error(q, SPOOL_ENOENT, "no such batch: %lld",
		    (long long)id);
	else
		rc = spool__store_error(q, rc, "read batch");
	sqlite3_reset(st);
	if (rc != SPOOL_OK) {
		spool_batch_info_free(*out, 1);
		*out = NULL;
	}
	return (rc);
}

/* One page of batches. */
int
spool_batch_list(spool_batch_info **out, size_t *n, spool *q,
    int64_t after_id, int state, size_t limit, int descending)
{
	spool_batch_info	*v = NULL, *nv;
	size_t			 len = 0, cap = 0;
	sqlite3_stmt		*st;
	int			 rc;

	if (out == NULL || n == NULL || q == NULL || q->db == NULL)
		return (spool__unusable(q));
	*out = NULL;
	*n = 0;
	spool__clear_error(q);
	if (state != 0 && spool_batch_state_name(state) == NULL)
		return (spool__error(q, SPOOL_EINVAL, "unknown batch state %d",
		    state));
	if (limit > BATCH_LIST_MAX)
		return (spool__error(q, SPOOL_EINVAL, "limit too large "
		    "(at most %d)", BATCH_LIST_MAX));
	if (limit == 0)
		limit = 100;
	st = spool__stmt(q, descending ? SPOOL_SQL_BATCH_LIST_DESC :
	    SPOOL_SQL_BATCH_LIST);
	sqlite3_bind_int64(st, 1, descending && after_id == 0 ? INT64_MAX :
	    after_id);
	sqlite3_bind_int64(st, 2, (int64_t)limit);
	if (state != 0)
		sqlite3_bind_text(st, 3, batch_states[state], -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = spool__grow(v, &cap, len, sizeof *v)) == NULL) {
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			goto fail;
		}
		v = nv;
		memset(&v[len], 0, sizeof v[len]);
		len++;
		if ((rc = batch_info_from_row(q, &v[len - 1], st)) != SPOOL_OK)
			goto fail;
	}
	if (rc != SQLITE_DONE) {
		rc = spool__store_error(q, rc, "list batches");
		goto fail;
	}
	sqlite3_reset(st);
	*out = v;
	*n = len;
	return (SPOOL_OK);
fail:
	sqlite3_reset(st);
	spool_batch_info_free(v, len);
	return (rc);
}

/* Free batch infos. */
void
spool_batch_info_free(spool_batch_info *info, size_t n)
{
	size_t	 i;

	if (info == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(info[i].description);
		free(info[i].hook_queue);
		free(info[i].hook_payload);
	}
	free(info);
}
