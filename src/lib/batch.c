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
#include "query-gen.h"

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
	if (!utf8_valid(s, len))
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
	if ((rc = spool__check_version(q, "spool_batch_opts", opts->version,
	    SPOOL_BATCH_OPTS_VERSION)) != SPOOL_OK)
		return (rc);
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
	if ((rc = spool__q_batch_insert(q, &(struct spool__q_batch_insert_in){
	    .description = opts->description, .hook_queue = opts->hook_queue,
	    .hook_payload = opts->hook_payload,
	    .hook_on = opts->hook_on == SPOOL_HOOK_SUCCESS ? "success" :
	    "always", .now_ms = spool__now_ms(q) })) != SPOOL_OK) {
		spool__rollback(q);
		return (rc);
	}
	if (id_out != NULL)
		*id_out = spool__last_id(q);
	return (spool__commit(q));
}

/* The state of batch id, inside the caller's transaction; SPOOL_ENOENT if
 * there is none. */
static int
batch_state_locked(int *state, spool *q, int64_t id)
{
	struct spool__q_batch_state_row	 r;
	struct spool__cur		 c;
	int				 rc;

	if ((rc = spool__q_batch_state(q, &c, &(struct spool__q_batch_state_in){
	    .id = id })) == SPOOL_OK &&
	    (rc = spool__q_batch_state_next(&c, &r)) == 1) {
		*state = batch_state_parse(r.state);
		rc = SPOOL_OK;
	} else if (rc == 0)
		rc = spool__error(q, SPOOL_ENOENT, "no such batch: %lld",
		    (long long)id);
	spool__cur_end(&c);
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
	int	 rc;

	if ((rc = spool__q_batch_join(q, &(struct spool__q_batch_join_in){
	    .id = id, .n = n })) != SPOOL_OK)
		return (rc);
	if (spool__changes(q) != 1)	/* checked open just before */
		return (spool__error(q, SPOOL_ESTATE, "batch %lld is not open",
		    (long long)id));
	return (SPOOL_OK);
}

/*
 * Settle, one at a time inside the caller's write transaction, the batches
 * (runs 0) or pipeline runs (runs 1) that batch_settle_next or
 * run_settle_next finds: enqueue the row's hook when the query gives its
 * payload, then mark the row finished (batch_finish, run_finish),
 * recording the hook's id.  The query stops finding a row once it is
 * finished.  Shared by batches and pipeline runs (pipeline.c).
 */
int
spool__settle_hooks_locked(spool *q, int runs, int64_t now_ms)
{
	struct spool__q_batch_settle_next_row	 r;
	struct spool__cur			 c;
	spool_task				 t;
	int64_t					 id, hook_id;
	char					*queue, *payload;
	int					 rc, row;

	for (;;) {
		if ((rc = runs ? spool__q_run_settle_next(q, &c) :
		    spool__q_batch_settle_next(q, &c)) != SPOOL_OK ||
		    (rc = runs ? spool__q_run_settle_next_next(&c, &r) :
		    spool__q_batch_settle_next_next(&c, &r)) <= 0)
			return (rc);	/* SPOOL_OK (0) when none is left */
		id = r.id;
		row = r.hook_payload != NULL;
		queue = row ? spool__strdup(r.hook_queue) : NULL;
		payload = row ? spool__strdup(r.hook_payload) : NULL;
		spool__cur_end(&c);
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
		if ((rc = runs ? spool__q_run_finish(q,
		    &(struct spool__q_run_finish_in){ .id = id,
		    .now_ms = now_ms, .hook_task_id = hook_id }) :
		    spool__q_batch_finish(q, &(struct spool__q_batch_finish_in){
		    .id = id, .now_ms = now_ms, .hook_task_id = hook_id })) !=
		    SPOOL_OK)
			return (rc);
		spool__crash("settle");
	}
}

/*
 * Finish every closed batch with nothing pending or running, enqueueing
 * the hooks that are due, inside the caller's write transaction.  Run
 * before every commit (precommit.c); the common case is one seek into an
 * empty index.
 */
int
spool__batch_settle_locked(spool *q, int64_t now_ms)
{
	return (spool__settle_hooks_locked(q, 0, now_ms));
}

/* Close a batch; settling (at the commit) finishes it if it can. */
int
spool_batch_close(spool *q, int64_t id)
{
	int	 state = 0, rc;

	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	spool__clear_error(q);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "batch id must be positive"));
	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	if ((rc = batch_state_locked(&state, q, id)) != SPOOL_OK)
		goto fail;
	if (state == SPOOL_BATCH_OPEN && (rc = spool__q_batch_close(q,
	    &(struct spool__q_batch_close_in){ .id = id,
	    .now_ms = spool__now_ms(q) })) != SPOOL_OK)
		goto fail;
	return (spool__commit(q));
fail:
	spool__rollback(q);
	return (rc);
}

/* Fill one info element from a batch_get / batch_list row. */
static int
batch_info_from_row(spool *q, spool_batch_info *b,
    const struct spool__q_batch_get_row *r)
{
	b->id = r->id;
	b->state = batch_state_parse(r->state);
	b->total = r->total;
	b->pending = r->pending;
	b->running = r->running;
	b->succeeded = r->succeeded;
	b->failed = r->failed;
	b->dead = r->dead;
	b->cancelled = r->cancelled;
	b->hook_on = r->hook_on != NULL && strcmp(r->hook_on, "success") == 0 ?
	    SPOOL_HOOK_SUCCESS : SPOOL_HOOK_ALWAYS;
	b->hook_task_id = r->hook_task_id;
	b->created_ms = r->created_ms;
	b->closed_ms = r->closed_ms;
	b->finished_ms = r->finished_ms;
	if (!spool__strdup_opt(&b->description, r->description) ||
	    !spool__strdup_opt(&b->hook_queue, r->hook_queue) ||
	    !spool__strdup_opt(&b->hook_payload, r->hook_payload))
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	return (SPOOL_OK);
}

/* Read one batch. */
int
spool_batch_get(spool_batch_info **out, spool *q, int64_t id)
{
	struct spool__q_batch_get_row	 r;
	struct spool__cur		 c;
	int				 rc;

	if (out == NULL || q == NULL || q->db == NULL)
		return (spool__unusable(q));
	*out = NULL;
	spool__clear_error(q);
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "batch id must be positive"));
	if ((*out = calloc(1, sizeof **out)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	if ((rc = spool__q_batch_get(q, &c, &(struct spool__q_batch_get_in){
	    .id = id })) == SPOOL_OK &&
	    (rc = spool__q_batch_get_next(&c, &r)) == 1)
		rc = batch_info_from_row(q, *out, &r);
	else if (rc == 0)
		rc = spool__error(q, SPOOL_ENOENT, "no such batch: %lld",
		    (long long)id);
	spool__cur_end(&c);
	if (rc != SPOOL_OK) {
		spool_batch_info_free(*out, 1);
		*out = NULL;
	}
	return (rc);
}

/* One page of batches. */
int
spool_batch_list(spool_batch_info **out, size_t *n, spool *q,
    const spool_batch_list_opts *opts)
{
	spool_batch_list_opts		 none = SPOOL_BATCH_LIST_OPTS_INIT;
	struct spool__q_batch_get_row	 r;
	struct spool__cur		 c;
	spool_batch_info		*v = NULL, *nv;
	const char			*sname;
	size_t				 len = 0, cap = 0, limit;
	int				 rc;

	if (out != NULL)
		*out = NULL;
	if (opts == NULL)
		opts = &none;
	if ((rc = spool__list_begin(q, out == NULL, n, "spool_batch_list_opts",
	    opts->version, SPOOL_BATCH_LIST_OPTS_VERSION, opts->limit, &limit)) != SPOOL_OK)
		return (rc);
	if (opts->state != 0 && spool_batch_state_name(opts->state) == NULL)
		return (spool__error(q, SPOOL_EINVAL, "unknown batch state %d",
		    opts->state));
	if (opts->after_id < 0)
		return (spool__error(q, SPOOL_EINVAL, "after id is negative"));
	sname = opts->state != 0 ? batch_states[opts->state] : NULL;
	if (opts->descending)
		rc = spool__q_batch_list_desc(q, &c,
		    &(struct spool__q_batch_list_desc_in){ .before_id =
		    opts->after_id == 0 ? INT64_MAX : opts->after_id,
		    .max = (int64_t)limit, .state = sname });
	else
		rc = spool__q_batch_list(q, &c,
		    &(struct spool__q_batch_list_in){
		    .after_id = opts->after_id, .max = (int64_t)limit,
		    .state = sname });
	if (rc != SPOOL_OK)
		return (rc);
	while ((rc = opts->descending ? spool__q_batch_list_desc_next(&c, &r) :
	    spool__q_batch_list_next(&c, &r)) == 1) {
		if ((nv = spool__push(v, &len, &cap, sizeof *v)) == NULL) {
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			goto fail;
		}
		v = nv;
		if ((rc = batch_info_from_row(q, &v[len - 1], &r)) != SPOOL_OK)
			goto fail;
	}
	if (rc < 0)
		goto fail;
	*out = v;
	*n = len;
	return (SPOOL_OK);
fail:
	spool__cur_end(&c);
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
