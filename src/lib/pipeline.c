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
#include "query-gen.h"

#define HOOK_OVERHEAD	640	/* a hook payload's keys and counts */
#define COMMAND_MAX	8192	/* bytes of a stage command */

static const char *const on_error_names[] = { "retry", "skip", "fail_fast" };

/* The name of an error strategy ("retry", "skip", "fail_fast"), or NULL. */
const char *
spool_on_error_name(int on_error)
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

	if (s->version < 1)
		return (spool__error(q, SPOOL_EINVAL, "stage %zu: spool_stage: "
		    "version not set (use SPOOL_STAGE_INIT)", i + 1));
	snprintf(what, sizeof what, "stage %zu: spool_stage", i + 1);
	if ((rc = spool__check_version(q, what, s->version,
	    SPOOL_STAGE_VERSION)) != SPOOL_OK)
		return (rc);
	snprintf(what, sizeof what, "stage %zu name", i + 1);
	if ((rc = spool__check_pipeline_name(q, what, s->name)) != SPOOL_OK)
		return (rc);
	if (s->concurrency < 1 || s->concurrency > SPOOL_CONCURRENCY_MAX)
		return (spool__error(q, SPOOL_EINVAL, "stage %s: concurrency out "
		    "of range (1 to %d)", s->name, SPOOL_CONCURRENCY_MAX));
	if (s->timeout_ms < 0 || s->timeout_ms > SPOOL_YEAR_MS)
		return (spool__error(q, SPOOL_EINVAL, "stage %s: timeout out of "
		    "range (0 to 365 days)", s->name));
	if (spool_on_error_name(s->on_error) == NULL)
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
	if (!utf8_valid(s->command, len))
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
	struct spool__q_pipeline_unfinished_row	 r;
	struct spool__cur			 c;
	int					 rc;

	*n = 0;
	if ((rc = spool__q_pipeline_unfinished(q, &c,
	    &(struct spool__q_pipeline_unfinished_in){ .name = name })) !=
	    SPOOL_OK || (rc = spool__q_pipeline_unfinished_next(&c, &r)) < 0)
		return (rc);
	if (rc == 1)		/* an aggregate: one row, always */
		*n = r.n;
	spool__cur_end(&c);
	return (SPOOL_OK);
}

/* The version pipeline name's next definition gets: one above the highest
 * it ever had, retired or deleted ones included. */
static int
pipeline_next_version(int64_t *version, spool *q, const char *name)
{
	struct spool__q_pipeline_max_version_row	 r;
	struct spool__cur				 c;
	int						 rc;

	*version = 1;
	if ((rc = spool__q_pipeline_max_version(q, &c,
	    &(struct spool__q_pipeline_max_version_in){ .name = name })) !=
	    SPOOL_OK || (rc = spool__q_pipeline_max_version_next(&c, &r)) < 0)
		return (rc);
	if (rc == 1)		/* an aggregate: one row, always */
		*version = r.version + 1;
	spool__cur_end(&c);
	return (SPOOL_OK);
}

/* Define pipeline name (its next version). */
int
spool_pipeline_create(int *version_out, spool *q, const char *name,
    const spool_stage *stages, size_t n, int flags)
{
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
	if ((rc = pipeline_next_version(&version, q, name)) != SPOOL_OK ||
	    (rc = spool__q_pipeline_retire(q,
	    &(struct spool__q_pipeline_retire_in){ .name = name,
	    .now_ms = now })) != SPOOL_OK ||
	    (rc = spool__q_pipeline_insert(q,
	    &(struct spool__q_pipeline_insert_in){ .name = name,
	    .version = version, .stages = (int64_t)n, .now_ms = now })) !=
	    SPOOL_OK)
		goto fail;
	pid = spool__last_id(q);
	for (i = 0; i < n; i++) {
		const spool_stage	*s = &stages[i];

		snprintf(queue, sizeof queue, "%s/%s", name, s->name);
		if ((rc = spool__queue_ensure(q, queue, now)) != SPOOL_OK)
			goto fail;
		if ((rc = spool__q_stage_insert(q,
		    &(struct spool__q_stage_insert_in){ .pipeline_id = pid,
		    .idx = (int64_t)i + 1, .name = s->name, .queue = queue,
		    .concurrency = s->concurrency, .timeout_ms = s->timeout_ms,
		    .on_error = spool_on_error_name(s->on_error),
		    .retries = s->retries, .retry_delay_ms = s->retry_delay_ms,
		    .command = s->command })) != SPOOL_OK)
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
	struct spool__q_run_cancel_ready_row	 r;
	struct spool__cur			 c;
	int					 rc;

	if ((rc = spool__q_run_stop(q, &(struct spool__q_run_stop_in){
	    .id = run, .why = why })) != SPOOL_OK ||
	    (rc = spool__q_run_cancel_ready(q, &c,
	    &(struct spool__q_run_cancel_ready_in){ .run = run,
	    .now_ms = now_ms, .why = why })) != SPOOL_OK)
		return (rc);
	while ((rc = spool__q_run_cancel_ready_next(&c, &r)) == 1)
		spool__count(q, r.queue, SPOOL__C_CANCELLED, 1);
	if (rc < 0)
		return (rc);
	return (spool__q_run_cancel_running(q,
	    &(struct spool__q_run_cancel_running_in){ .run = run }));
}

/* Delete pipeline name. */
int
spool_pipeline_delete(spool *q, const char *name, int flags)
{
	struct spool__q_pipeline_current_row		 p;
	struct spool__q_pipeline_unfinished_ids_row	 r;
	struct spool__cur				 c;
	int64_t						 unfinished, now;
	int64_t						*ids = NULL, *nids;
	size_t						 n = 0, cap = 0, i;
	int						 rc;

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
	if ((rc = spool__q_pipeline_current(q, &c,
	    &(struct spool__q_pipeline_current_in){ .name = name })) !=
	    SPOOL_OK || (rc = spool__q_pipeline_current_next(&c, &p)) < 0)
		goto fail;
	spool__cur_end(&c);
	if (rc == 0) {
		rc = spool__error(q, SPOOL_ENOENT, "no such pipeline: %s", name);
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
	/* Cancel the unfinished runs: their ids first, as stopping one
	 * runs statements of its own. */
	if ((rc = spool__q_pipeline_unfinished_ids(q, &c,
	    &(struct spool__q_pipeline_unfinished_ids_in){ .name = name })) !=
	    SPOOL_OK)
		goto fail;
	while ((rc = spool__q_pipeline_unfinished_ids_next(&c, &r)) == 1) {
		if ((nids = spool__push(ids, &n, &cap, sizeof *ids)) == NULL) {
			spool__cur_end(&c);
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			goto fail;
		}
		ids = nids;
		ids[n - 1] = r.id;
	}
	if (rc < 0)
		goto fail;
	for (i = 0; i < n; i++)
		if ((rc = run_stop_locked(q, ids[i], "pipeline deleted",
		    now)) != SPOOL_OK)
			goto fail;
	free(ids);
	ids = NULL;
	if ((rc = spool__q_pipeline_retire(q,
	    &(struct spool__q_pipeline_retire_in){ .name = name,
	    .now_ms = now })) != SPOOL_OK)
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
	struct spool__q_run_get_row	 r;
	struct spool__cur		 c;
	int				 rc, finished;

	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	spool__clear_error(q);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "run id must be positive"));
	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_run_get(q, &c, &(struct spool__q_run_get_in){
	    .id = id })) != SPOOL_OK ||
	    (rc = spool__q_run_get_next(&c, &r)) < 0)
		goto fail;
	/* Finished is finished_ms set, which the schema's CHECK ties to the
	 * state (an int column reads NULL as 0, which is a time too). */
	finished = rc == 1 && r.state != NULL &&
	    strcmp(r.state, "finished") == 0;
	spool__cur_end(&c);
	if (rc == 0) {
		rc = spool__error(q, SPOOL_ENOENT, "no such run: %lld",
		    (long long)id);
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
	if (!utf8_valid(s, len))
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
	static const spool_run_opts		 none = SPOOL_RUN_OPTS_INIT;
	struct spool__q_pipeline_current_row	 p;
	struct spool__q_stage_list_row		 s;
	struct spool__q_stage_queue_row		 one;
	struct spool__cur			 c;
	int64_t					 pid, run, item, task, stage_id;
	int64_t					 now;
	char					*queue = NULL;
	size_t					 i;
	int					 rc, on_error, retries;
	int					 max_attempts;

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
	if ((rc = spool__q_pipeline_current(q, &c,
	    &(struct spool__q_pipeline_current_in){ .name = name })) !=
	    SPOOL_OK || (rc = spool__q_pipeline_current_next(&c, &p)) < 0)
		goto fail;
	spool__cur_end(&c);
	if (rc == 0) {
		rc = spool__error(q, SPOOL_ENOENT, "no such pipeline: %s", name);
		goto fail;
	}
	pid = p.id;
	/* The first stage. */
	if ((rc = spool__q_stage_list(q, &c, &(struct spool__q_stage_list_in){
	    .pipeline_id = pid })) != SPOOL_OK ||
	    (rc = spool__q_stage_list_next(&c, &s)) < 0)
		goto fail;
	if (rc == 1) {
		queue = spool__strdup(s.queue);
		on_error = spool__on_error_parse(s.on_error);
		retries = (int)s.retries;
		stage_id = s.id;
	}
	spool__cur_end(&c);
	if (rc == 0 || queue == NULL) {
		rc = rc == 0 ? spool__error(q, SPOOL_ERROR, "pipeline %s has "
		    "no stages", name) : spool__error(q, SPOOL_ENOMEM,
		    "out of memory");
		goto fail;
	}
	max_attempts = spool__stage_max_attempts(on_error, retries);
	if (opts->hook_queue != NULL) {
		if ((rc = spool__q_stage_queue(q, &c,
		    &(struct spool__q_stage_queue_in){ .queue =
		    opts->hook_queue })) != SPOOL_OK ||
		    (rc = spool__q_stage_queue_next(&c, &one)) < 0)
			goto fail;
		spool__cur_end(&c);
		if (rc == 1) {
			rc = spool__error(q, SPOOL_EINVAL, "hook queue %s is a "
			    "pipeline's stage queue", opts->hook_queue);
			goto fail;
		}
	}

	if ((rc = spool__q_run_insert(q, &(struct spool__q_run_insert_in){
	    .pipeline_id = pid, .total = (int64_t)n,
	    .hook_queue = opts->hook_queue, .hook_payload = opts->hook_payload,
	    .hook_on = opts->hook_on == SPOOL_HOOK_SUCCESS ? "success" :
	    "always", .now_ms = now })) != SPOOL_OK)
		goto fail;
	run = spool__last_id(q);
	for (i = 0; i < n; i++) {
		if ((rc = spool__q_item_insert(q,
		    &(struct spool__q_item_insert_in){ .run_id = run,
		    .now_ms = now })) != SPOOL_OK)
			goto fail;
		item = spool__last_id(q);
		/* The payload is bound in place: the insert runs inside the
		 * call. */
		if ((rc = spool__q_stage_task_insert(q,
		    &(struct spool__q_stage_task_insert_in){ .queue = queue,
		    .payload = items[i].input, .payload_len = items[i].len,
		    .now_ms = now, .max_attempts = max_attempts,
		    .item_id = item, .stage_id = stage_id })) != SPOOL_OK)
			goto fail;
		task = spool__last_id(q);
		spool__count(q, queue, SPOOL__C_ENQUEUED, 1);
		if ((rc = spool__q_item_set_task(q,
		    &(struct spool__q_item_set_task_in){ .id = item,
		    .task_id = task })) != SPOOL_OK)
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

/* Copy text s (NULL reads ""), cut at a character boundary to fit. */
static void
copy_cut(char *dst, size_t size, const char *s)
{
	size_t	 n;

	snprintf(dst, size, "%s", s != NULL ? s : "");
	n = strlen(dst);
	while (n > 0 && !utf8_valid(dst, n))
		dst[--n] = '\0';
}

/* Move one item to state, counting it in its run. */
static int
item_move(spool *q, const struct settle_item *it, const char *state,
    int64_t now_ms)
{
	int	 rc;

	if (strcmp(state, it->state) == 0)	/* nothing moves */
		return (spool__q_item_settled(q,
		    &(struct spool__q_item_settled_in){ .id = it->id }));
	/* item_set_state stores no finished_ms for "running". */
	if ((rc = spool__q_item_set_state(q,
	    &(struct spool__q_item_set_state_in){ .id = it->id,
	    .state = state, .now_ms = now_ms })) != SPOOL_OK)
		return (rc);
	return (spool__q_run_move(q, &(struct spool__q_run_move_in){
	    .id = it->run, .from = it->state, .to = state }));
}

/* Hand item it on to its next stage. */
static int
item_handoff(spool *q, const struct settle_item *it, int64_t now_ms)
{
	int64_t		 task;
	int		 rc;

	if ((rc = spool__q_stage_task_handoff(q,
	    &(struct spool__q_stage_task_handoff_in){ .queue = it->next_queue,
	    .task_id = it->task, .now_ms = now_ms,
	    .max_attempts = spool__stage_max_attempts(it->next_on_error,
	    it->next_retries), .item_id = it->id, .stage_id = it->next_id })) !=
	    SPOOL_OK)
		return (rc);
	task = spool__last_id(q);
	spool__count(q, it->next_queue, SPOOL__C_ENQUEUED, 1);
	if ((rc = spool__q_item_advance(q, &(struct spool__q_item_advance_in){
	    .id = it->id, .stage = it->stage + 1, .task_id = task })) !=
	    SPOOL_OK)
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
	struct spool__q_item_settle_next_row	 r;
	struct spool__cur			 c;
	struct settle_item			 it;
	int					 rc;

	for (;;) {
		if ((rc = spool__q_item_settle_next(q, &c)) != SPOOL_OK ||
		    (rc = spool__q_item_settle_next_next(&c, &r)) < 0)
			return (rc);
		if (rc == 0)
			break;
		/* Copied out: settling it runs other statements. */
		memset(&it, 0, sizeof it);
		it.id = r.id;
		it.run = r.run_id;
		copy_cut(it.state, sizeof it.state, r.state);
		it.task = r.task_id;
		copy_cut(it.task_state, sizeof it.task_state, r.task_state);
		copy_cut(it.error, sizeof it.error, r.error);
		it.on_error = spool__on_error_parse(r.on_error);
		copy_cut(it.stage_name, sizeof it.stage_name, r.stage_name);
		it.next_id = r.next_id;
		if (it.next_id != 0 &&
		    (it.next_queue = spool__strdup(r.next_queue)) == NULL) {
			spool__cur_end(&c);
			return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
		}
		it.next_on_error = spool__on_error_parse(r.next_on_error);
		it.next_retries = (int)r.next_retries;
		copy_cut(it.run_state, sizeof it.run_state, r.run_state);
		it.stage = (int)r.stage;
		spool__cur_end(&c);
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
	struct spool__q_stage_list_row		 r;
	struct spool__q_pipeline_runs_open_row	 o;
	struct spool__cur			 c;
	spool_stage				*v = NULL, *nv, *s;
	size_t					 n = 0, cap = 0;
	int					 rc;

	if ((rc = spool__q_stage_list(q, &c, &(struct spool__q_stage_list_in){
	    .pipeline_id = pid })) != SPOOL_OK)
		return (rc);
	while ((rc = spool__q_stage_list_next(&c, &r)) == 1) {
		if ((nv = spool__push(v, &n, &cap, sizeof *v)) == NULL)
			goto nomem;
		v = nv;
		s = &v[n - 1];
		s->version = SPOOL_STAGE_VERSION;
		s->concurrency = (int)r.concurrency;
		s->timeout_ms = r.timeout_ms;
		s->on_error = spool__on_error_parse(r.on_error);
		s->retries = (int)r.retries;
		s->retry_delay_ms = r.retry_delay_ms;
		if ((s->name = spool__strdup(r.name)) == NULL ||
		    (r.command != NULL &&
		    (s->command = spool__strdup(r.command)) == NULL))
			goto nomem;
	}
	p->stages = v;
	p->nstages = n;
	if (rc < 0)
		return (rc);
	if ((rc = spool__q_pipeline_runs_open(q, &c,
	    &(struct spool__q_pipeline_runs_open_in){ .pipeline_id = pid })) !=
	    SPOOL_OK || (rc = spool__q_pipeline_runs_open_next(&c, &o)) < 0)
		return (rc);
	if (rc == 1)		/* an aggregate: one row, always */
		p->runs_unfinished = o.n;
	spool__cur_end(&c);
	return (SPOOL_OK);
nomem:
	spool__cur_end(&c);
	p->stages = v;
	p->nstages = n;
	return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
}

/* Fill one definition (without its stages) from a pipeline_current,
 * pipeline_version or pipeline_list row (one row type: the others
 * declare pipeline_current's columns); *pid gets its id. */
static int
pipeline_from_row(spool *q, spool_pipeline_info *p,
    const struct spool__q_pipeline_current_row *r, int64_t *pid)
{
	*pid = r->id;
	p->version = (int)r->version;
	p->current = (int)r->current;
	p->created_ms = r->created_ms;
	if ((p->name = spool__strdup(r->name)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	return (SPOOL_OK);
}

/* Read one definition. */
int
spool_pipeline_get(spool_pipeline_info **out, spool *q, const char *name,
    int version)
{
	struct spool__q_pipeline_current_row	 r;
	struct spool__cur			 c;
	int64_t					 pid = 0;
	int					 rc;

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
	if (version == 0)
		rc = spool__q_pipeline_current(q, &c,
		    &(struct spool__q_pipeline_current_in){ .name = name });
	else
		rc = spool__q_pipeline_version(q, &c,
		    &(struct spool__q_pipeline_version_in){ .name = name,
		    .version = version });
	/* pipeline_version reads pipeline_current's columns (-- out: like). */
	if (rc == SPOOL_OK && (rc = version == 0 ?
	    spool__q_pipeline_current_next(&c, &r) :
	    spool__q_pipeline_version_next(&c, &r)) == 1)
		rc = pipeline_from_row(q, *out, &r, &pid);
	else if (rc == 0)
		rc = version == 0 ? spool__error(q, SPOOL_ENOENT,
		    "no such pipeline: %s", name) : spool__error(q,
		    SPOOL_ENOENT, "no such pipeline: %s version %d", name,
		    version);
	spool__cur_end(&c);
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

/* One keyset page of the current versions of the pipelines, by name. */
int
spool_pipeline_list(spool_pipeline_info **out, size_t *n, spool *q,
    const spool_pipeline_list_opts *opts)
{
	spool_pipeline_list_opts		 none =
	    SPOOL_PIPELINE_LIST_OPTS_INIT;
	struct spool__q_pipeline_current_row	 r;
	struct spool__cur			 c;
	spool_pipeline_info			*v = NULL, *nv;
	int64_t					*pids = NULL, *np;
	size_t					 len = 0, cap = 0, plen = 0;
	size_t					 pcap = 0, i, limit;
	int					 rc;

	if (out != NULL)
		*out = NULL;
	if (opts == NULL)
		opts = &none;
	if ((rc = spool__list_begin(q, out == NULL, n, "spool_pipeline_list_opts",
	    opts->version, SPOOL_PIPELINE_LIST_OPTS_VERSION, opts->limit, &limit)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__begin_read(q)) != SPOOL_OK)
		return (rc);
	/* The definitions first, then their stages: one statement at a
	 * time.  pids[i] is v[i]'s id. */
	if (opts->descending)
		rc = spool__q_pipeline_list_desc(q, &c,
		    &(struct spool__q_pipeline_list_desc_in){
		    .before = opts->after, .max = (int64_t)limit });
	else
		rc = spool__q_pipeline_list(q, &c,
		    &(struct spool__q_pipeline_list_in){
		    .after = opts->after, .max = (int64_t)limit });
	if (rc != SPOOL_OK)
		goto fail;
	/* Both read pipeline_current's columns (-- out: like). */
	while ((rc = opts->descending ?
	    spool__q_pipeline_list_desc_next(&c, &r) :
	    spool__q_pipeline_list_next(&c, &r)) == 1) {
		if ((nv = spool__push(v, &len, &cap, sizeof *v)) == NULL)
			goto nomem;
		v = nv;
		if ((np = spool__push(pids, &plen, &pcap,
		    sizeof *pids)) == NULL)
			goto nomem;
		pids = np;
		if ((rc = pipeline_from_row(q, &v[len - 1], &r,
		    &pids[plen - 1])) != SPOOL_OK) {
			spool__cur_end(&c);
			goto fail;
		}
	}
	if (rc < 0)
		goto fail;
	for (i = 0; i < len; i++)
		if ((rc = stages_read(q, &v[i], pids[i])) != SPOOL_OK)
			goto fail;
	spool__end_read(q);
	free(pids);
	*out = v;
	*n = len;
	return (SPOOL_OK);
nomem:
	spool__cur_end(&c);
	rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
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
