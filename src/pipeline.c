/*
 * pipeline.c -- pipelines: definitions (versioned), starting and
 * cancelling runs, and settling, which moves items from stage to stage.
 *
 * Invariants: an item has exactly one task at a time, the one
 * pipeline_items.task_id names; its next stage's task is inserted in the
 * transaction that records its stage's success (settling runs before the
 * COMMIT of every write transaction, see spool__commit), so an item is
 * never lost between stages nor run again in a stage that committed; a
 * run's counters change only here, with its items' states, so they
 * always partition its items; a run's hook is enqueued in the
 * transaction that finishes it and recorded there, so at most once.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool-int.h"

#define HOOK_OVERHEAD	640	/* a hook payload's keys and counts */
#define COMMAND_MAX	8192	/* bytes of a stage command */

static const char *const on_error_names[] = { "retry", "skip", "fail_fast" };

/* The name of an error strategy, or NULL. */
const char *
spool__on_error_name(int on_error)
{
	if (on_error < SPOOL_ON_ERROR_RETRY || on_error > SPOOL_ON_ERROR_FAIL_FAST)
		return (NULL);
	return (on_error_names[on_error]);
}

/* The error strategy called name, or -1. */
int
spool__on_error_parse(const char *name)
{
	int	 i;

	for (i = 0; name != NULL && i <= SPOOL_ON_ERROR_FAIL_FAST; i++)
		if (strcmp(name, on_error_names[i]) == 0)
			return (i);
	return (-1);
}

/* Check a pipeline or stage name: 1 to 64 of [A-Za-z0-9_.-]. */
int
spool__check_pipeline_name(spool *q, const char *what, const char *name)
{
	size_t	 i, len;

	if (name == NULL)
		return (spool__error(q, SPOOL_EINVAL, "%s is missing", what));
	len = strlen(name);
	if (len == 0)
		return (spool__error(q, SPOOL_EINVAL, "%s is empty", what));
	if (len > SPOOL_PIPELINE_NAME_MAX)
		return (spool__error(q, SPOOL_EINVAL, "%s is too long (%zu bytes, "
		    "at most %d)", what, len, SPOOL_PIPELINE_NAME_MAX));
	for (i = 0; i < len; i++) {
		char	 c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return (spool__error(q, SPOOL_EINVAL, "%s \"%.64s\": only "
			    "letters, digits, '_', '-' and '.' are allowed", what,
			    name));
	}
	return (SPOOL_OK);
}

/* The attempts a stage task may use: its failures, plus lost leases. */
int
spool__stage_max_attempts(int on_error, int retries)
{
	return ((on_error == SPOOL_ON_ERROR_RETRY ? retries + 1 : 1) +
	    SPOOL_STAGE_LEASE_LOSSES);
}

/* Check one stage definition. */
static int
stage_check(spool *q, const spool_stage *s, size_t i)
{
	char	 what[SPOOL_PIPELINE_NAME_MAX + 16], **argv = NULL;
	size_t	 argc = 0, len;
	int	 rc;

	snprintf(what, sizeof what, "stage %zu name", i + 1);
	if ((rc = spool__check_pipeline_name(q, what, s->name)) != SPOOL_OK)
		return (rc);
	if (s->concurrency < 1 || s->concurrency > SPOOL_CONCURRENCY_MAX)
		return (spool__error(q, SPOOL_EINVAL, "stage %s: concurrency out "
		    "of range (1 to %d)", s->name, SPOOL_CONCURRENCY_MAX));
	if (s->timeout_ms < 0 || s->timeout_ms > SPOOL_YEAR_MS)
		return (spool__error(q, SPOOL_EINVAL, "stage %s: timeout out of "
		    "range (0 to 365 days)", s->name));
	if (spool__on_error_name(s->on_error) == NULL)
		return (spool__error(q, SPOOL_EINVAL, "stage %s: unknown error "
		    "strategy %d", s->name, s->on_error));
	if (s->retries < 0 || s->retries > SPOOL_ATTEMPTS_MAX -
	    SPOOL_STAGE_LEASE_LOSSES - 1)
		return (spool__error(q, SPOOL_EINVAL, "stage %s: retries out of "
		    "range (0 to %d)", s->name, SPOOL_ATTEMPTS_MAX -
		    SPOOL_STAGE_LEASE_LOSSES - 1));
	if (s->retry_delay_ms < 0 || s->retry_delay_ms > SPOOL_DURATION_MAX_MS)
		return (spool__error(q, SPOOL_EINVAL, "stage %s: retry delay out "
		    "of range", s->name));
	if (s->on_error != SPOOL_ON_ERROR_RETRY &&
	    (s->retries != 0 || s->retry_delay_ms != 0))
		return (spool__error(q, SPOOL_EINVAL, "stage %s: retries and a "
		    "retry delay need the retry strategy", s->name));
	if (s->command == NULL)
		return (SPOOL_OK);
	if ((len = strlen(s->command)) > COMMAND_MAX)
		return (spool__error(q, SPOOL_EINVAL, "stage %s: command too long "
		    "(%zu bytes, at most %d)", s->name, len, COMMAND_MAX));
	if (!spool__utf8_valid(s->command, len))
		return (spool__error(q, SPOOL_EINVAL, "stage %s: command is not "
		    "valid UTF-8", s->name));
	if ((rc = spool__split_words(q, s->command, &argv, &argc)) != SPOOL_OK) {
		snprintf(what, sizeof what, "stage %s: ", s->name);
		return (spool__error_prefix(q, rc, what));
	}
	spool__words_free(argv);
	if (argc == 0)
		return (spool__error(q, SPOOL_EINVAL, "stage %s: command is empty",
		    s->name));
	return (SPOOL_OK);
}

/* How many runs of any version of name are unfinished. */
static int
pipeline_unfinished(int64_t *n, spool *q, const char *name)
{
	sqlite3_stmt	*st = spool__stmt(q, SPOOL_SQL_PIPELINE_UNFINISHED);
	int		 rc;

	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return (rc == SQLITE_ROW ? SPOOL_OK :
	    spool__store_error(q, rc, "count runs"));
}

/* Define pipeline name (its next version). */
int
spool_pipeline_create(int *version_out, spool *q, const char *name,
    const spool_stage *stages, size_t n, int flags)
{
	sqlite3_stmt	*st;
	char		 queue[SPOOL_PIPELINE_NAME_MAX * 2 + 2];
	int64_t		 unfinished, pid, now, version;
	size_t		 i, j;
	int		 rc;

	if (version_out != NULL)
		*version_out = 0;
	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	spool__clear_error(q);
	if ((rc = spool__check_pipeline_name(q, "pipeline name", name)) != 0)
		return (rc);
	if (flags & ~SPOOL_PIPELINE_FORCE)
		return (spool__error(q, SPOOL_EINVAL, "unknown flags 0x%x", flags));
	if (stages == NULL || n == 0)
		return (spool__error(q, SPOOL_EINVAL, "a pipeline needs a stage"));
	if (n > SPOOL_STAGES_MAX)
		return (spool__error(q, SPOOL_EINVAL, "too many stages (%zu, at "
		    "most %d)", n, SPOOL_STAGES_MAX));
	for (i = 0; i < n; i++) {
		if ((rc = stage_check(q, &stages[i], i)) != SPOOL_OK)
			return (rc);
		if (strlen(name) + 1 + strlen(stages[i].name) > SPOOL_NAME_MAX)
			return (spool__error(q, SPOOL_EINVAL, "stage %s: its queue "
			    "name %s/%s would be longer than %d bytes",
			    stages[i].name, name, stages[i].name, SPOOL_NAME_MAX));
		for (j = 0; j < i; j++)
			if (strcmp(stages[i].name, stages[j].name) == 0)
				return (spool__error(q, SPOOL_EINVAL, "stage %s "
				    "is named twice", stages[i].name));
	}

	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	now = spool__now_ms(q);
	if ((rc = pipeline_unfinished(&unfinished, q, name)) != SPOOL_OK)
		goto fail;
	if (unfinished > 0 && !(flags & SPOOL_PIPELINE_FORCE)) {
		rc = spool__error(q, SPOOL_ESTATE, "pipeline %s has %lld "
		    "unfinished run%s (force to define a new version anyway)",
		    name, (long long)unfinished, unfinished == 1 ? "" : "s");
		goto fail;
	}
	st = spool__stmt(q, SPOOL_SQL_PIPELINE_MAX_VERSION);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	version = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) + 1 : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		rc = spool__store_error(q, rc, "define pipeline");
		goto fail;
	}
	st = spool__stmt(q, SPOOL_SQL_PIPELINE_RETIRE);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	if ((rc = spool__step_done(q, st, "define pipeline")) != SPOOL_OK)
		goto fail;
	st = spool__stmt(q, SPOOL_SQL_PIPELINE_INSERT);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, version);
	sqlite3_bind_int64(st, 3, (int64_t)n);
	sqlite3_bind_int64(st, 4, now);
	if ((rc = spool__step_done(q, st, "define pipeline")) != SPOOL_OK)
		goto fail;
	pid = sqlite3_last_insert_rowid(q->db);
	for (i = 0; i < n; i++) {
		const spool_stage	*s = &stages[i];

		snprintf(queue, sizeof queue, "%s/%s", name, s->name);
		if ((rc = spool__queue_ensure(q, queue, now)) != SPOOL_OK)
			goto fail;
		st = spool__stmt(q, SPOOL_SQL_STAGE_INSERT);
		sqlite3_bind_int64(st, 1, pid);
		sqlite3_bind_int64(st, 2, (int64_t)i + 1);
		sqlite3_bind_text(st, 3, s->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, queue, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 5, s->concurrency);
		sqlite3_bind_int64(st, 6, s->timeout_ms);
		sqlite3_bind_text(st, 7, spool__on_error_name(s->on_error), -1,
		    SQLITE_STATIC);
		sqlite3_bind_int(st, 8, s->retries);
		sqlite3_bind_int64(st, 9, s->retry_delay_ms);
		spool__bind_text_or_null(st, 10, s->command);
		if ((rc = spool__step_done(q, st, "define stage")) != SPOOL_OK)
			goto fail;
	}
	if ((rc = spool__commit(q)) != SPOOL_OK)
		return (rc);
	if (version_out != NULL)
		*version_out = (int)version;
	return (SPOOL_OK);
fail:
	spool__rollback(q);
	return (rc);
}

/* Stop run id inside the caller's transaction: no more hand-offs, waiting
 * tasks cancelled, running ones asked to stop.  why is kept as its error. */
static int
run_stop_locked(spool *q, int64_t run, const char *why, int64_t now_ms)
{
	sqlite3_stmt	*st;
	int		 rc;

	st = spool__stmt(q, SPOOL_SQL_RUN_STOP);
	sqlite3_bind_int64(st, 1, run);
	sqlite3_bind_text(st, 2, why, -1, SQLITE_STATIC);
	if ((rc = spool__step_done(q, st, "stop run")) != SPOOL_OK)
		return (rc);
	st = spool__stmt(q, SPOOL_SQL_RUN_CANCEL_READY);
	sqlite3_bind_int64(st, 1, run);
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_text(st, 3, why, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		spool__count(q, (const char *)sqlite3_column_text(st, 0),
		    SPOOL__C_CANCELLED, 1);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return (spool__store_error(q, rc, "stop run"));
	st = spool__stmt(q, SPOOL_SQL_RUN_CANCEL_RUNNING);
	sqlite3_bind_int64(st, 1, run);
	return (spool__step_done(q, st, "stop run"));
}

/* Delete pipeline name. */
int
spool_pipeline_delete(spool *q, const char *name, int flags)
{
	sqlite3_stmt	*st;
	int64_t		 unfinished, *ids = NULL, *nids, now;
	size_t		 n = 0, cap = 0, i;
	int		 rc;

	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	spool__clear_error(q);
	if ((rc = spool__check_pipeline_name(q, "pipeline name", name)) != 0)
		return (rc);
	if (flags & ~SPOOL_PIPELINE_FORCE)
		return (spool__error(q, SPOOL_EINVAL, "unknown flags 0x%x", flags));
	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	now = spool__now_ms(q);
	st = spool__stmt(q, SPOOL_SQL_PIPELINE_CURRENT);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		rc = spool__error(q, SPOOL_ENOENT, "no such pipeline: %s", name);
		goto fail;
	}
	if (rc != SQLITE_ROW) {
		rc = spool__store_error(q, rc, "delete pipeline");
		goto fail;
	}
	if ((rc = pipeline_unfinished(&unfinished, q, name)) != SPOOL_OK)
		goto fail;
	if (unfinished > 0 && !(flags & SPOOL_PIPELINE_FORCE)) {
		rc = spool__error(q, SPOOL_ESTATE, "pipeline %s has %lld "
		    "unfinished run%s (force to cancel them and delete it)",
		    name, (long long)unfinished, unfinished == 1 ? "" : "s");
		goto fail;
	}
	/* Cancel the unfinished runs. */
	st = spool__stmt(q, SPOOL_SQL_PIPELINE_UNFINISHED_IDS);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nids = spool__grow(ids, &cap, n, sizeof *ids)) == NULL) {
			sqlite3_reset(st);
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			goto fail;
		}
		ids = nids;
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		rc = spool__store_error(q, rc, "delete pipeline");
		goto fail;
	}
	for (i = 0; i < n; i++)
		if ((rc = run_stop_locked(q, ids[i], "pipeline deleted",
		    now)) != SPOOL_OK)
			goto fail;
	free(ids);
	ids = NULL;
	st = spool__stmt(q, SPOOL_SQL_PIPELINE_RETIRE);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	if ((rc = spool__step_done(q, st, "delete pipeline")) != SPOOL_OK)
		goto fail;
	return (spool__commit(q));
fail:
	free(ids);
	spool__rollback(q);
	return (rc);
}

/* Cancel what is left of run id. */
int
spool_run_cancel(spool *q, int64_t id)
{
	sqlite3_stmt	*st;
	int		 rc, finished;

	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	spool__clear_error(q);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "run id must be positive"));
	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	st = spool__stmt(q, SPOOL_SQL_RUN_GET);
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	finished = rc == SQLITE_ROW && sqlite3_column_type(st, 14) != SQLITE_NULL;
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		rc = spool__error(q, SPOOL_ENOENT, "no such run: %lld",
		    (long long)id);
		goto fail;
	}
	if (rc != SQLITE_ROW) {
		rc = spool__store_error(q, rc, "cancel run");
		goto fail;
	}
	if (!finished && (rc = run_stop_locked(q, id, "cancelled",
	    spool__now_ms(q))) != SPOOL_OK)
		goto fail;
	return (spool__commit(q));
fail:
	spool__rollback(q);
	return (rc);
}

/* Check a text option: NULL, or valid UTF-8 up to max bytes. */
static int
check_text(spool *q, const char *what, const char *s, size_t max)
{
	size_t	 len;

	if (s == NULL)
		return (SPOOL_OK);
	if ((len = strlen(s)) > max)
		return (spool__error(q, SPOOL_EINVAL, "%s too long (%zu bytes, "
		    "at most %zu)", what, len, max));
	if (!spool__utf8_valid(s, len))
		return (spool__error(q, SPOOL_EINVAL, "%s is not valid UTF-8",
		    what));
	return (SPOOL_OK);
}

/* Check a run's options. */
static int
run_check_opts(spool *q, const spool_run_opts *o)
{
	int	 rc;

	if (o->version < 1)
		return (spool__error(q, SPOOL_EINVAL, "run options: version not "
		    "set (use SPOOL_RUN_OPTS_INIT)"));
	if ((rc = spool__check_version(q, "spool_run_opts", o->version,
	    SPOOL_RUN_OPTS_VERSION)) != SPOOL_OK)
		return (rc);
	if (o->hook_on != SPOOL_HOOK_ALWAYS && o->hook_on != SPOOL_HOOK_SUCCESS)
		return (spool__error(q, SPOOL_EINVAL, "unknown hook_on %d",
		    o->hook_on));
	if (o->hook_queue == NULL && o->hook_payload != NULL)
		return (spool__error(q, SPOOL_EINVAL,
		    "a hook payload needs a hook queue"));
	if (o->hook_queue != NULL && (rc = spool__check_name(q,
	    "hook queue name", o->hook_queue, SPOOL_NAME_MAX)) != SPOOL_OK)
		return (rc);
	if ((rc = check_text(q, "hook payload", o->hook_payload,
	    (SPOOL_PAYLOAD_MAX - HOOK_OVERHEAD) / 6)) != SPOOL_OK)
		return (rc);
	return (SPOOL_OK);
}

/* Start a run. */
int
spool_pipeline_start(int64_t *run_out, int64_t *item_ids, spool *q,
    const char *name, const spool_item *items, size_t n,
    const spool_run_opts *opts)
{
	static const spool_run_opts	 none = SPOOL_RUN_OPTS_INIT;
	sqlite3_stmt			*st;
	int64_t				 pid, run, item, task, stage_id, now;
	char				*queue = NULL;
	size_t				 i;
	int				 rc, on_error, retries, max_attempts;

	if (run_out != NULL)
		*run_out = 0;
	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	spool__clear_error(q);
	if (opts == NULL)
		opts = &none;
	if ((rc = spool__check_pipeline_name(q, "pipeline name", name)) != 0 ||
	    (rc = run_check_opts(q, opts)) != SPOOL_OK)
		return (rc);
	if (n > 0 && items == NULL)
		return (spool__error(q, SPOOL_EINVAL, "items is NULL"));
	for (i = 0; i < n; i++) {
		if (items[i].input == NULL && items[i].len > 0)
			return (spool__error(q, SPOOL_EINVAL, "item %zu: input "
			    "is NULL", i + 1));
		if (items[i].len > SPOOL_PAYLOAD_MAX)
			return (spool__error(q, SPOOL_EINVAL, "item %zu: input "
			    "too large (%zu bytes, at most %d)", i + 1,
			    items[i].len, SPOOL_PAYLOAD_MAX));
	}

	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	now = spool__now_ms(q);
	st = spool__stmt(q, SPOOL_SQL_PIPELINE_CURRENT);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	pid = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		rc = spool__error(q, SPOOL_ENOENT, "no such pipeline: %s", name);
		goto fail;
	}
	if (rc != SQLITE_ROW) {
		rc = spool__store_error(q, rc, "start run");
		goto fail;
	}
	/* The first stage. */
	st = spool__stmt(q, SPOOL_SQL_STAGE_LIST);
	sqlite3_bind_int64(st, 1, pid);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		queue = spool__col_strdup(st, 2);
		on_error = spool__on_error_parse((const char *)
		    sqlite3_column_text(st, 5));
		retries = sqlite3_column_int(st, 6);
		stage_id = sqlite3_column_int64(st, 9);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW || queue == NULL) {
		rc = queue == NULL && rc == SQLITE_ROW ?
		    spool__error(q, SPOOL_ENOMEM, "out of memory") :
		    spool__error(q, SPOOL_ERROR, "pipeline %s has no stages",
		    name);
		goto fail;
	}
	max_attempts = spool__stage_max_attempts(on_error, retries);
	if (opts->hook_queue != NULL) {
		st = spool__stmt(q, SPOOL_SQL_STAGE_QUEUE);
		sqlite3_bind_text(st, 1, opts->hook_queue, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_ROW) {
			rc = spool__error(q, SPOOL_EINVAL, "hook queue %s is a "
			    "pipeline's stage queue", opts->hook_queue);
			goto fail;
		}
		if (rc != SQLITE_DONE) {
			rc = spool__store_error(q, rc, "start run");
			goto fail;
		}
	}

	st = spool__stmt(q, SPOOL_SQL_RUN_INSERT);
	sqlite3_bind_int64(st, 1, pid);
	sqlite3_bind_int64(st, 2, (int64_t)n);
	spool__bind_text_or_null(st, 3, opts->hook_queue);
	spool__bind_text_or_null(st, 4, opts->hook_payload);
	sqlite3_bind_text(st, 5, opts->hook_on == SPOOL_HOOK_SUCCESS ?
	    "success" : "always", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now);
	if ((rc = spool__step_done(q, st, "start run")) != SPOOL_OK)
		goto fail;
	run = sqlite3_last_insert_rowid(q->db);
	for (i = 0; i < n; i++) {
		st = spool__stmt(q, SPOOL_SQL_ITEM_INSERT);
		sqlite3_bind_int64(st, 1, run);
		sqlite3_bind_int64(st, 2, now);
		if ((rc = spool__step_done(q, st, "start run")) != SPOOL_OK)
			goto fail;
		item = sqlite3_last_insert_rowid(q->db);
		st = spool__stmt(q, SPOOL_SQL_STAGE_TASK_INSERT);
		sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
		if (spool__bind_payload_ref(st, 2, items[i].input,
		    items[i].len) != SQLITE_OK) {
			rc = spool__store_error(q, sqlite3_errcode(q->db),
			    "start run");
			goto fail;
		}
		sqlite3_bind_int64(st, 3, now);
		sqlite3_bind_int(st, 4, max_attempts);
		sqlite3_bind_int64(st, 5, item);
		sqlite3_bind_int64(st, 6, stage_id);
		if ((rc = spool__step_done(q, st, "start run")) != SPOOL_OK)
			goto fail;
		task = sqlite3_last_insert_rowid(q->db);
		spool__count(q, queue, SPOOL__C_ENQUEUED, 1);
		st = spool__stmt(q, SPOOL_SQL_ITEM_SET_TASK);
		sqlite3_bind_int64(st, 1, item);
		sqlite3_bind_int64(st, 2, task);
		if ((rc = spool__step_done(q, st, "start run")) != SPOOL_OK)
			goto fail;
		if (item_ids != NULL)
			item_ids[i] = item;
	}
	free(queue);
	queue = NULL;
	if ((rc = spool__commit(q)) != SPOOL_OK)
		return (rc);
	if (run_out != NULL)
		*run_out = run;
	return (SPOOL_OK);
fail:
	free(queue);
	spool__rollback(q);
	return (rc);
}

/* What settling read about one item. */
struct settle_item {
	int64_t		 id;
	int64_t		 run;
	char		 state[16];	/* the item's */
	int64_t		 task;		/* 0 if its task is gone */
	char		 task_state[16];
	int		 on_error;
	int		 stage;		/* the task's stage index */
	char		 stage_name[SPOOL_PIPELINE_NAME_MAX + 1];
	int64_t		 next_id;	/* the next stage, 0 after the last */
	char		*next_queue;
	int		 next_on_error;
	int		 next_retries;
	char		 run_state[16];
	char		 error[256];
};

/* Copy a text column, cut at a character boundary to fit. */
static void
copy_col(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const char	*s = (const char *)sqlite3_column_text(st, col);
	size_t		 n;

	snprintf(dst, size, "%s", s != NULL ? s : "");
	n = strlen(dst);
	while (n > 0 && !spool__utf8_valid(dst, n))
		dst[--n] = '\0';
}

/* Move one item to state, counting it in its run. */
static int
item_move(spool *q, const struct settle_item *it, const char *state,
    int64_t now_ms)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (strcmp(state, it->state) == 0) {	/* nothing moves */
		st = spool__stmt(q, SPOOL_SQL_ITEM_SETTLED);
		sqlite3_bind_int64(st, 1, it->id);
		return (spool__step_done(q, st, "settle item"));
	}
	st = spool__stmt(q, SPOOL_SQL_ITEM_SET_STATE);
	sqlite3_bind_int64(st, 1, it->id);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	if (strcmp(state, "running") != 0)
		sqlite3_bind_int64(st, 3, now_ms);
	if ((rc = spool__step_done(q, st, "settle item")) != SPOOL_OK)
		return (rc);
	st = spool__stmt(q, SPOOL_SQL_RUN_MOVE);
	sqlite3_bind_int64(st, 1, it->run);
	sqlite3_bind_text(st, 2, it->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
	return (spool__step_done(q, st, "settle item"));
}

/* Hand item it on to its next stage. */
static int
item_handoff(spool *q, const struct settle_item *it, int64_t now_ms)
{
	sqlite3_stmt	*st = spool__stmt(q, SPOOL_SQL_STAGE_TASK_HANDOFF);
	int64_t		 task;
	int		 rc;

	sqlite3_bind_text(st, 1, it->next_queue, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, it->task);
	sqlite3_bind_int64(st, 3, now_ms);
	sqlite3_bind_int(st, 4, spool__stage_max_attempts(it->next_on_error,
	    it->next_retries));
	sqlite3_bind_int64(st, 5, it->id);
	sqlite3_bind_int64(st, 6, it->next_id);
	if ((rc = spool__step_done(q, st, "hand off")) != SPOOL_OK)
		return (rc);
	task = sqlite3_last_insert_rowid(q->db);
	spool__count(q, it->next_queue, SPOOL__C_ENQUEUED, 1);
	st = spool__stmt(q, SPOOL_SQL_ITEM_ADVANCE);
	sqlite3_bind_int64(st, 1, it->id);
	sqlite3_bind_int(st, 2, it->stage + 1);
	sqlite3_bind_int64(st, 3, task);
	if ((rc = spool__step_done(q, st, "hand off")) != SPOOL_OK)
		return (rc);
	spool__crash("handoff");
	return (SPOOL_OK);
}

/* Settle one item whose task changed. */
static int
item_settle(spool *q, struct settle_item *it, int64_t now_ms)
{
	int	 running = strcmp(it->state, "running") == 0;
	char	 why[400];
	int	 rc;

	if (it->task == 0)		/* its task was deleted */
		return (item_move(q, it, running ? "cancelled" : it->state,
		    now_ms));
	if (strcmp(it->task_state, "ready") == 0 ||
	    strcmp(it->task_state, "running") == 0)	/* retried */
		return (item_move(q, it, "running", now_ms));
	if (!running)
		return (item_move(q, it, it->state, now_ms));
	if (strcmp(it->task_state, "succeeded") == 0) {
		if (it->next_id == 0)
			return (item_move(q, it, "succeeded", now_ms));
		if (strcmp(it->run_state, "running") != 0)
			return (item_move(q, it, "cancelled", now_ms));
		return (item_handoff(q, it, now_ms));
	}
	if (strcmp(it->task_state, "dead") == 0) {
		if (it->on_error == SPOOL_ON_ERROR_SKIP)
			return (item_move(q, it, "skipped", now_ms));
		if ((rc = item_move(q, it, "failed", now_ms)) != SPOOL_OK)
			return (rc);
		if (it->on_error != SPOOL_ON_ERROR_FAIL_FAST ||
		    strcmp(it->run_state, "running") != 0)
			return (SPOOL_OK);
		snprintf(why, sizeof why, "item %lld failed in stage %s: %s",
		    (long long)it->id, it->stage_name, it->error[0] != '\0' ?
		    it->error : "failed");
		return (run_stop_locked(q, it->run, why, now_ms));
	}
	return (item_move(q, it, "cancelled", now_ms));
}

/* Settle every item whose task changed in this transaction, then the
 * runs; called by spool__commit. */
int
spool__pipeline_settle_locked(spool *q, int64_t now_ms)
{
	struct settle_item	 it;
	sqlite3_stmt		*st;
	int			 rc;

	for (;;) {
		st = spool__stmt(q, SPOOL_SQL_ITEM_SETTLE_NEXT);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			sqlite3_reset(st);
			break;
		}
		if (rc != SQLITE_ROW) {
			sqlite3_reset(st);
			return (spool__store_error(q, rc, "settle items"));
		}
		memset(&it, 0, sizeof it);
		it.id = sqlite3_column_int64(st, 0);
		it.run = sqlite3_column_int64(st, 1);
		copy_col(it.state, sizeof it.state, st, 2);
		it.task = sqlite3_column_int64(st, 3);
		copy_col(it.task_state, sizeof it.task_state, st, 4);
		copy_col(it.error, sizeof it.error, st, 5);
		it.on_error = spool__on_error_parse((const char *)
		    sqlite3_column_text(st, 6));
		copy_col(it.stage_name, sizeof it.stage_name, st, 7);
		it.next_id = sqlite3_column_int64(st, 8);
		if (it.next_id != 0 &&
		    (it.next_queue = spool__col_strdup(st, 9)) == NULL) {
			sqlite3_reset(st);
			return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
		}
		it.next_on_error = spool__on_error_parse((const char *)
		    sqlite3_column_text(st, 10));
		it.next_retries = sqlite3_column_int(st, 11);
		copy_col(it.run_state, sizeof it.run_state, st, 12);
		it.stage = sqlite3_column_int(st, 13);
		sqlite3_reset(st);
		rc = item_settle(q, &it, now_ms);
		free(it.next_queue);
		if (rc != SPOOL_OK)
			return (rc);
	}
	/* Then finish the runs with nothing running, enqueueing their hooks. */
	return (spool__settle_hooks_locked(q, 1, now_ms));
}

/* Read the stages of definition pid into p. */
static int
stages_read(spool *q, spool_pipeline_info *p, int64_t pid)
{
	sqlite3_stmt	*st = spool__stmt(q, SPOOL_SQL_STAGE_LIST);
	spool_stage	*v = NULL, *nv, *s;
	size_t		 n = 0, cap = 0;
	int		 rc;

	sqlite3_bind_int64(st, 1, pid);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = spool__grow(v, &cap, n, sizeof *v)) == NULL)
			goto nomem;
		v = nv;
		s = &v[n++];
		memset(s, 0, sizeof *s);
		s->concurrency = sqlite3_column_int(st, 3);
		s->timeout_ms = sqlite3_column_int64(st, 4);
		s->on_error = spool__on_error_parse((const char *)
		    sqlite3_column_text(st, 5));
		s->retries = sqlite3_column_int(st, 6);
		s->retry_delay_ms = sqlite3_column_int64(st, 7);
		if ((s->name = spool__col_strdup(st, 1)) == NULL ||
		    (sqlite3_column_type(st, 8) != SQLITE_NULL &&
		    (s->command = spool__col_strdup(st, 8)) == NULL))
			goto nomem;
	}
	sqlite3_reset(st);
	p->stages = v;
	p->nstages = n;
	if (rc != SQLITE_DONE)
		return (spool__store_error(q, rc, "read stages"));
	st = spool__stmt(q, SPOOL_SQL_PIPELINE_RUNS_OPEN);
	sqlite3_bind_int64(st, 1, pid);
	rc = sqlite3_step(st);
	p->runs_unfinished = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return (rc == SQLITE_ROW ? SPOOL_OK :
	    spool__store_error(q, rc, "count runs"));
nomem:
	sqlite3_reset(st);
	p->stages = v;
	p->nstages = n;
	return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
}

/* Read one definition. */
int
spool_pipeline_get(spool_pipeline_info **out, spool *q, const char *name,
    int version)
{
	sqlite3_stmt	*st;
	int64_t		 pid = 0;
	int		 rc;

	if (out == NULL || q == NULL || q->db == NULL)
		return (spool__unusable(q));
	*out = NULL;
	spool__clear_error(q);
	if ((rc = spool__check_pipeline_name(q, "pipeline name", name)) != 0)
		return (rc);
	if (version < 0)
		return (spool__error(q, SPOOL_EINVAL, "version must be positive"));
	if ((*out = calloc(1, sizeof **out)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	if ((rc = spool__begin_read(q)) != SPOOL_OK)
		goto fail;
	st = spool__stmt(q, version == 0 ? SPOOL_SQL_PIPELINE_CURRENT :
	    SPOOL_SQL_PIPELINE_VERSION);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (version != 0)
		sqlite3_bind_int(st, 2, version);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		pid = sqlite3_column_int64(st, 0);
		(*out)->version = sqlite3_column_int(st, 1);
		(*out)->created_ms = sqlite3_column_int64(st, 3);
		(*out)->current = version == 0 ? 1 : sqlite3_column_int(st, 4);
		rc = ((*out)->name = spool__strdup(name)) == NULL ?
		    spool__error(q, SPOOL_ENOMEM, "out of memory") : SPOOL_OK;
	} else if (rc == SQLITE_DONE)
		rc = version == 0 ? spool__error(q, SPOOL_ENOENT,
		    "no such pipeline: %s", name) : spool__error(q,
		    SPOOL_ENOENT, "no such pipeline: %s version %d", name,
		    version);
	else
		rc = spool__store_error(q, rc, "read pipeline");
	sqlite3_reset(st);
	if (rc == SPOOL_OK)
		rc = stages_read(q, *out, pid);
	spool__end_read(q);
	if (rc == SPOOL_OK)
		return (SPOOL_OK);
fail:
	spool_pipeline_info_free(*out, 1);
	*out = NULL;
	return (rc);
}

/* The current version of every pipeline. */
int
spool_pipeline_list(spool_pipeline_info **out, size_t *n, spool *q)
{
	spool_pipeline_info	*v = NULL, *nv;
	int64_t			*pids = NULL, *np;
	size_t			 len = 0, cap = 0, pcap = 0, i;
	sqlite3_stmt		*st;
	int			 rc;

	if (out == NULL || n == NULL || q == NULL || q->db == NULL)
		return (spool__unusable(q));
	*out = NULL;
	*n = 0;
	spool__clear_error(q);
	if ((rc = spool__begin_read(q)) != SPOOL_OK)
		return (rc);
	st = spool__stmt(q, SPOOL_SQL_PIPELINE_LIST);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = spool__grow(v, &cap, len, sizeof *v)) == NULL ||
		    (v = nv, (np = spool__grow(pids, &pcap, len,
		    sizeof *pids)) == NULL)) {
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			sqlite3_reset(st);
			goto fail;
		}
		pids = np;
		memset(&v[len], 0, sizeof v[len]);
		pids[len] = sqlite3_column_int64(st, 0);
		v[len].version = sqlite3_column_int(st, 2);
		v[len].created_ms = sqlite3_column_int64(st, 3);
		v[len].current = 1;
		if ((v[len++].name = spool__col_strdup(st, 1)) == NULL) {
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			sqlite3_reset(st);
			goto fail;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		rc = spool__store_error(q, rc, "list pipelines");
		goto fail;
	}
	for (i = 0; i < len; i++)
		if ((rc = stages_read(q, &v[i], pids[i])) != SPOOL_OK)
			goto fail;
	spool__end_read(q);
	free(pids);
	*out = v;
	*n = len;
	return (SPOOL_OK);
fail:
	spool__end_read(q);
	free(pids);
	spool_pipeline_info_free(v, len);
	return (rc);
}

void
spool_pipeline_info_free(spool_pipeline_info *info, size_t n)
{
	size_t	 i, j;

	if (info == NULL)
		return;
	for (i = 0; i < n; i++) {
		for (j = 0; j < info[i].nstages; j++) {
			free((char *)info[i].stages[j].name);
			free((char *)info[i].stages[j].command);
		}
		free(info[i].stages);
		free(info[i].name);
	}
	free(info);
}
