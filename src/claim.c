/*
 * claim.c -- the lease life cycle: claim, heartbeat, complete, fail,
 * release, and the reaper that returns expired leases.
 *
 * Invariants: a task is "running" exactly while it holds a lease (owner,
 * token, expiry; the schema's CHECK enforces it).  A claim writes a fresh
 * random token; every later write for that attempt names id and token and
 * state 'running', and must change exactly one row, else the lease was
 * lost and the call changes nothing (SPOOL_ELEASE).  A lease is lost when
 * another connection reaps it, not the instant it expires: until then the
 * token still matches and the worker's heartbeat or outcome is accepted.
 * Every finished attempt leaves one row in attempts.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool-int.h"

#define CLAIM_QUEUES_MAX	64
#define CLAIM_MAX		SPOOL__CLAIM_MAX
#define LEASE_MAX_MS		(365LL * 24 * 3600 * 1000)

/* A due task that may be claimed, with what the merge needs. */
struct candidate {
	int64_t		 id;
	int		 priority;
	int64_t		 run_at_ms;
	int64_t		 deadline_ms;	/* 0: none */
	int64_t		 lease_ms;	/* of its queue, or the claim's */
	const char	*queue;		/* the caller's string */
};

/* One reaped lease, read before any row is changed. */
struct expired {
	int64_t		 id;
	int64_t		 token;
	char		*owner;
	int		 attempts;
	int		 max_attempts;
	int64_t		 started_ms;
	int		 cancel_requested;
	int		 backoff;
	int64_t		 base_ms, cap_ms;
	double		 jitter;
	char		*queue;
};

/* Claim order: higher priority, then earlier due, then older. */
static int
candidate_cmp(const void *a, const void *b)
{
	const struct candidate	*x = a, *y = b;

	if (x->priority != y->priority)
		return (x->priority > y->priority ? -1 : 1);
	if (x->run_at_ms != y->run_at_ms)
		return (x->run_at_ms < y->run_at_ms ? -1 : 1);
	if (x->id != y->id)
		return (x->id < y->id ? -1 : 1);
	return (0);
}

/* A fresh fencing token: random, positive, never 0. */
static int64_t
claim_token(void)
{
	uint64_t	 r;

	do {
		sqlite3_randomness(sizeof r, &r);
		r &= (uint64_t)INT64_MAX;
	} while (r == 0);
	return ((int64_t)r);
}

/* Cut error text at SPOOL_ERROR_MAX bytes, on a UTF-8 boundary. */
static size_t
error_len(const char *error)
{
	size_t	 n;

	if (error == NULL)
		return (0);
	n = strlen(error);
	if (n <= SPOOL_ERROR_MAX)
		return (n);
	n = SPOOL_ERROR_MAX;
	while (n > 0 && ((unsigned char)error[n] & 0xc0) == 0x80)
		n--;
	return (n);
}

/* Record one finished attempt in the history. */
static int
attempt_insert(spool *q, int64_t id, int attempt, const char *worker,
    int64_t started_ms, int64_t now_ms, const char *outcome, const char *error)
{
	sqlite3_stmt	*st = spool__stmt(q, SPOOL_SQL_ATTEMPT_INSERT);

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, attempt < 1 ? 1 : attempt);
	sqlite3_bind_text(st, 3, worker != NULL ? worker : "unknown", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, started_ms != 0 ? started_ms : now_ms);
	sqlite3_bind_int64(st, 5, now_ms);
	sqlite3_bind_text(st, 6, outcome, -1, SQLITE_STATIC);
	if (error != NULL)
		sqlite3_bind_text(st, 7, error, (int)error_len(error),
		    SQLITE_STATIC);
	return (spool__step_done(q, st, "record attempt"));
}

/* Bind a time, or NULL for 0 (not known). */
static void
bind_time(sqlite3_stmt *st, int i, int64_t ms)
{
	if (ms != 0)
		sqlite3_bind_int64(st, i, ms);
	else
		sqlite3_bind_null(st, i);
}

/* When job's attempt started: when its handler started (a pool job),
 * else when it was claimed, else (never recorded) now. */
static int64_t
job_started(const spool_job *job, int64_t now_ms)
{
	return (job->run_start_ms != 0 ? job->run_start_ms :
	    job->started_ms != 0 ? job->started_ms : now_ms);
}

/* When job's attempt ended: when its handler returned, else now. */
static int64_t
job_ended(const spool_job *job, int64_t now_ms)
{
	return (job->run_end_ms != 0 ? job->run_end_ms : now_ms);
}

/* End a running task as dead (with reason) or cancelled; fenced. */
static int
task_end(spool *q, int64_t id, int64_t token, const char *state,
    const char *reason, const char *error, int64_t now_ms, int64_t started_ms)
{
	sqlite3_stmt	*st = spool__stmt(q, SPOOL_SQL_TASK_END);
	int		 rc;

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, token);
	sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
	spool__bind_text_or_null(st, 4, reason);
	if (error != NULL)
		sqlite3_bind_text(st, 5, error, (int)error_len(error),
		    SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 6, now_ms);
	bind_time(st, 7, started_ms);
	if ((rc = spool__step_done(q, st, "finish task")) != SPOOL_OK)
		return (rc);
	return (sqlite3_changes(q->db) == 1 ? SPOOL_OK : SPOOL_ELEASE);
}

/* Put a running task back to ready at run_at_ms; fenced. */
static int
task_requeue(spool *q, int64_t id, int64_t token, int64_t run_at_ms,
    const char *error, int64_t started_ms)
{
	sqlite3_stmt	*st = spool__stmt(q, SPOOL_SQL_TASK_REQUEUE);
	int		 rc;

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, token);
	sqlite3_bind_int64(st, 3, run_at_ms);
	if (error != NULL)
		sqlite3_bind_text(st, 4, error, (int)error_len(error),
		    SQLITE_TRANSIENT);
	bind_time(st, 5, started_ms);
	if ((rc = spool__step_done(q, st, "requeue task")) != SPOOL_OK)
		return (rc);
	return (sqlite3_changes(q->db) == 1 ? SPOOL_OK : SPOOL_ELEASE);
}

/* Reap one batch inside the caller's transaction: ready tasks past their
 * deadline become dead, expired leases are retried or buried.  *more is
 * set when a batch was full and another pass may find more. */
int
spool__reap_locked(int64_t *n_out, spool *q, int64_t now_ms, int *more)
{
	struct expired	 ex[SPOOL_BATCH_ROWS];
	sqlite3_stmt	*st;
	char		 err[300];
	int64_t		 n = 0;
	size_t		 nex = 0, i;
	int		 rc;

	*more = 0;
	*n_out = 0;
	st = spool__stmt(q, SPOOL_SQL_EXPIRE_DEADLINES);
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int(st, 2, SPOOL_BATCH_ROWS);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char	*qn = (const char *)sqlite3_column_text(st, 0);

		spool__count(q, qn, SPOOL__C_DEAD, 1);
		spool__count(q, qn, SPOOL__C_EXPIRED, 1);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return (spool__store_error(q, rc, "expire deadlines"));
	if (n == SPOOL_BATCH_ROWS)
		*more = 1;

	st = spool__stmt(q, SPOOL_SQL_REAP_EXPIRED);
	sqlite3_bind_int64(st, 1, spool__stall_cutoff(q, now_ms));
	sqlite3_bind_int(st, 2, SPOOL_BATCH_ROWS);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct expired	*e = &ex[nex];

		e->id = sqlite3_column_int64(st, 0);
		e->token = sqlite3_column_int64(st, 1);
		e->owner = spool__col_strdup(st, 2);
		e->attempts = sqlite3_column_int(st, 3);
		e->max_attempts = sqlite3_column_int(st, 4);
		e->started_ms = sqlite3_column_int64(st, 5);
		e->cancel_requested = sqlite3_column_int(st, 6);
		e->backoff = spool__backoff_parse((const char *)
		    sqlite3_column_text(st, 7));
		e->base_ms = sqlite3_column_int64(st, 8);
		e->cap_ms = sqlite3_column_int64(st, 9);
		e->jitter = sqlite3_column_double(st, 10);
		e->queue = spool__col_strdup(st, 11);
		nex++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		rc = spool__store_error(q, rc, "reap");
		goto out;
	}
	if (nex == SPOOL_BATCH_ROWS)
		*more = 1;
	if (nex > 0)
		spool__crash("reap");

	for (i = 0; i < nex; i++) {
		struct expired	*e = &ex[i];

		snprintf(err, sizeof err, "lease expired (owner %s)",
		    e->owner != NULL ? e->owner : "unknown");
		rc = attempt_insert(q, e->id, e->attempts, e->owner,
		    e->started_ms, now_ms, "lease_lost", err);
		if (rc != SPOOL_OK)
			goto out;
		spool__count(q, e->queue, SPOOL__C_LEASE_LOST, 1);
		if (e->cancel_requested) {
			rc = task_end(q, e->id, e->token, "cancelled", NULL, err,
			    now_ms, e->started_ms);
			spool__count(q, e->queue, SPOOL__C_CANCELLED, 1);
		} else if (e->attempts >= e->max_attempts) {
			rc = task_end(q, e->id, e->token, "dead", "exhausted",
			    err, now_ms, e->started_ms);
			spool__count(q, e->queue, SPOOL__C_DEAD, 1);
		} else {
			rc = task_requeue(q, e->id, e->token, now_ms +
			    spool__backoff_ms(e->backoff, e->base_ms, e->cap_ms,
			    e->jitter, e->attempts, spool__random_unit()), err,
			    e->started_ms);
			spool__count(q, e->queue, SPOOL__C_RETRIED, 1);
		}
		if (rc == SPOOL_ELEASE)	/* cannot happen under the write lock */
			rc = spool__error(q, SPOOL_ERROR,
			    "reap: task %lld changed under the lock",
			    (long long)e->id);
		if (rc != SPOOL_OK)
			goto out;
		n++;
	}
	*n_out = n;
	rc = SPOOL_OK;
out:
	for (i = 0; i < nex; i++) {
		free(ex[i].owner);
		free(ex[i].queue);
	}
	return (rc);
}

/* Reap every expired lease and expired deadline, a batch per transaction. */
int
spool_reap(int64_t *n_out, spool *q)
{
	int64_t	 n, total = 0;
	int	 more, rc;

	if (n_out != NULL)
		*n_out = 0;
	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	spool__clear_error(q);
	do {
		if ((rc = spool__begin(q)) != SPOOL_OK)
			return (rc);
		if ((rc = spool__reap_locked(&n, q, spool__now_ms(q),
		    &more)) != SPOOL_OK) {
			spool__rollback(q);
			return (rc);
		}
		if ((rc = spool__commit(q)) != SPOOL_OK)
			return (rc);
		total += n;
	} while (more);
	/* The owners had their chance to renew since the database became
	 * writable again: the next reap is an ordinary one. */
	q->unwritable_from_ms = 0;
	q->next_reap_ms = spool__now_ms(q) + q->reap_interval_ms;
	if (n_out != NULL)
		*n_out = total;
	return (SPOOL_OK);
}

/* Free a job. */
void
spool_job_free(spool_job *job)
{
	if (job == NULL)
		return;
	free(job->queue);
	free(job->owner);
	free(job->payload);
	free(job->result);
	free(job->error);
	free(job);
}

/* Write the ids of the n candidates c[i] as a JSON array into buf (of
 * at least n * 21 + 3 bytes), those of lease length lease_ms only if
 * lease_ms >= 0. */
static void
claim_ids_json(char *buf, struct candidate *const *c, size_t n,
    int64_t lease_ms)
{
	char	*w = buf;
	size_t	 i;

	*w++ = '[';
	for (i = 0; i < n; i++) {
		if (lease_ms >= 0 && c[i]->lease_ms != lease_ms)
			continue;
		w += sprintf(w, "%s%lld", w > buf + 1 ? "," : "",
		    (long long)c[i]->id);
	}
	*w++ = ']';
	*w = '\0';
}

/* Build the job of the claimed row under st (claim_rows). */
static spool_job *
claim_job(sqlite3_stmt *st, spool *q, const char *owner, int64_t token,
    int64_t lease_ms, int64_t now_ms, int started)
{
	spool_job	*j;

	if ((j = calloc(1, sizeof *j)) == NULL)
		return (NULL);
	j->q = q;
	j->id = sqlite3_column_int64(st, 1);
	j->token = token;
	j->started_ms = started ? now_ms : 0;
	j->lease_ms = lease_ms;
	j->lease_until_ms = sqlite3_column_int64(st, 11);
	j->queue = spool__col_strdup(st, 2);
	/* A NULL payload (a hand edit) is an empty one. */
	j->payload = sqlite3_column_type(st, 3) == SQLITE_NULL ?
	    spool__memdup("", 0) : spool__col_blobdup(st, 3, &j->len);
	j->attempt = sqlite3_column_int(st, 4);
	j->max_attempts = sqlite3_column_int(st, 5);
	j->cancel_requested = sqlite3_column_int(st, 6);
	j->run_at_ms = sqlite3_column_int64(st, 7);
	j->item_id = sqlite3_column_int64(st, 8);
	j->stage_id = sqlite3_column_int64(st, 9);
	j->stage_timeout_ms = sqlite3_column_int64(st, 10);
	j->owner = spool__strdup(owner);
	if (j->queue == NULL || j->payload == NULL || j->owner == NULL) {
		spool_job_free(j);
		return (NULL);
	}
	return (j);
}

/*
 * Claim the n candidates c[] (in claim order, none past its deadline):
 * make them running under one fresh token, a lease of each one's length,
 * and append their jobs to jobs[*claimed], in the same order.  One UPDATE
 * per distinct lease length (one, unless queues of different leases are
 * claimed together), then one read of the rows.  A candidate no longer
 * ready (none, inside the claim's transaction) is left out.
 */
static int
claim_group(spool_job **jobs, size_t *claimed, spool *q,
    struct candidate *const *c, size_t n, const char *owner, int64_t now_ms,
    int started)
{
	sqlite3_stmt	*st;
	spool_job	**got = NULL;
	char		*all = NULL, *some = NULL;
	int64_t		 token = claim_token();
	size_t		 i, k, len = n * 21 + 3;
	int		 rc = SPOOL_OK, one_lease = 1;

	if (n == 0)
		return (SPOOL_OK);
	for (i = 1; i < n; i++)
		if (c[i]->lease_ms != c[0]->lease_ms)
			one_lease = 0;
	if ((all = malloc(len)) == NULL ||
	    (!one_lease && (some = malloc(len)) == NULL) ||
	    (got = calloc(n, sizeof *got)) == NULL) {
		rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
		goto out;
	}
	claim_ids_json(all, c, n, -1);
	for (i = 0; i < n; i++) {
		for (k = 0; k < i; k++)		/* this lease length is done */
			if (c[k]->lease_ms == c[i]->lease_ms)
				break;
		if (k < i)
			continue;
		if (!one_lease)
			claim_ids_json(some, c, n, c[i]->lease_ms);
		st = spool__stmt(q, SPOOL_SQL_CLAIM_TASKS);
		sqlite3_bind_text(st, 1, one_lease ? all : some, -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, token);
		sqlite3_bind_int64(st, 4, now_ms + c[i]->lease_ms);
		bind_time(st, 5, started ? now_ms : 0);
		rc = spool__step_done(q, st, "claim");
		sqlite3_clear_bindings(st);
		if (rc != SPOOL_OK)
			goto out;
		if (one_lease)
			break;
	}

	/* The rows, each to the place of its id in the array. */
	st = spool__stmt(q, SPOOL_SQL_CLAIM_ROWS);
	sqlite3_bind_text(st, 1, all, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, token);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		k = (size_t)sqlite3_column_int64(st, 0);
		if (k >= n || got[k] != NULL)
			continue;
		if ((got[k] = claim_job(st, q, owner, token, c[k]->lease_ms,
		    now_ms, started)) == NULL)
			break;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW) {
		rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
		goto out;
	}
	if (rc != SQLITE_DONE) {
		rc = spool__store_error(q, rc, "claim");
		goto out;
	}
	rc = SPOOL_OK;
	for (k = 0; k < n; k++)
		if (got[k] != NULL) {
			spool__count(q, c[k]->queue, SPOOL__C_CLAIMED, 1);
			jobs[(*claimed)++] = got[k];
			got[k] = NULL;
		}
out:
	if (got != NULL)
		for (k = 0; k < n; k++)
			spool_job_free(got[k]);
	free(got);
	free(all);
	free(some);
	return (rc);
}

/* Append up to limit due candidates of queue name to cand, walking its
 * priority levels from the highest down. */
static int
claim_candidates(spool *q, struct candidate *cand, size_t *ncand,
    const char *name, int64_t lease_ms, int64_t now_ms, size_t limit)
{
	sqlite3_stmt	*st;
	int64_t		 below = INT64_MAX, level;
	size_t		 start = *ncand;
	int		 rc;

	while (*ncand - start < limit) {
		st = spool__stmt(q, SPOOL_SQL_CLAIM_LEVEL);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, below);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(st);
			return (spool__store_error(q, rc, "claim"));
		}
		if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
			sqlite3_reset(st);
			break;
		}
		level = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);

		st = spool__stmt(q, SPOOL_SQL_CLAIM_CANDIDATES);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, level);
		sqlite3_bind_int64(st, 3, now_ms);
		sqlite3_bind_int64(st, 4, (int64_t)(limit - (*ncand - start)));
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct candidate	*c = &cand[(*ncand)++];

			c->id = sqlite3_column_int64(st, 0);
			c->priority = sqlite3_column_int(st, 1);
			c->run_at_ms = sqlite3_column_int64(st, 2);
			c->deadline_ms = sqlite3_column_int64(st, 3);
			c->lease_ms = lease_ms;
			c->queue = name;
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return (spool__store_error(q, rc, "claim"));
		below = level;
	}
	return (SPOOL_OK);
}

/* Check the arguments of spool_claim_many. */
static int
claim_check(spool *q, const char *const *queues, size_t nqueues, size_t max,
    const spool_claim_opts *o)
{
	size_t	 i;
	int	 rc;

	if (queues == NULL || nqueues == 0)
		return (spool__error(q, SPOOL_EINVAL, "claim: no queue given"));
	if (nqueues > CLAIM_QUEUES_MAX)
		return (spool__error(q, SPOOL_EINVAL,
		    "claim: too many queues (at most %d)", CLAIM_QUEUES_MAX));
	if (max == 0 || max > CLAIM_MAX)
		return (spool__error(q, SPOOL_EINVAL,
		    "claim: max out of range (1 to %d)", CLAIM_MAX));
	for (i = 0; i < nqueues; i++)
		if ((rc = spool__check_name(q, "queue name", queues[i],
		    SPOOL_NAME_MAX)) != SPOOL_OK)
			return (rc);
	if (o == NULL)
		return (SPOOL_OK);
	if (o->version < 1)
		return (spool__error(q, SPOOL_EINVAL,
		    "claim options: version not set (use SPOOL_CLAIM_OPTS_INIT)"));
	if ((rc = spool__check_version(q, "spool_claim_opts", o->version,
	    SPOOL_CLAIM_OPTS_VERSION)) != SPOOL_OK)
		return (rc);
	if (o->lease_ms < 0 || o->lease_ms > LEASE_MAX_MS)
		return (spool__error(q, SPOOL_EINVAL,
		    "claim: lease out of range (1 ms to 365 days)"));
	if (o->owner != NULL && (rc = spool__check_name(q, "lease owner",
	    o->owner, sizeof q->owner - 1)) != SPOOL_OK)
		return (rc);
	return (SPOOL_OK);
}

/* Claim up to max due tasks from the named queues in one transaction. */
int
spool_claim_many(spool_job **jobs, size_t *n_out, spool *q,
    const char *const *queues, size_t nqueues, size_t max,
    const spool_claim_opts *opts)
{
	return (spool__claim_many(jobs, n_out, q, queues, nqueues, max, opts,
	    1));
}

/* spool_claim_many; with started 0 (a pool's claims ahead of its
 * threads) the tasks' starts are left for spool__started_locked. */
int
spool__claim_many(spool_job **jobs, size_t *n_out, spool *q,
    const char *const *queues, size_t nqueues, size_t max,
    const spool_claim_opts *opts, int started)
{
	int64_t		 reaped;
	size_t		 i;
	int		 rc;

	if (n_out != NULL)
		*n_out = 0;
	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	if (jobs == NULL || n_out == NULL)
		return (spool__error(q, SPOOL_EINVAL, "claim: NULL argument"));
	spool__clear_error(q);
	if ((rc = claim_check(q, queues, nqueues, max, opts)) != SPOOL_OK)
		return (rc);

	/* Any process that claims also reaps, so cron-only use recovers. */
	if (spool__now_ms(q) >= q->next_reap_ms &&
	    (rc = spool_reap(&reaped, q)) != SPOOL_OK)
		return (rc);

	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__claim_locked(jobs, n_out, q, queues, nqueues, max,
	    opts, started)) != SPOOL_OK) {
		spool__rollback(q);
		return (rc);
	}
	if ((rc = spool__commit(q)) != SPOOL_OK) {
		for (i = 0; i < *n_out; i++) {
			spool_job_free(jobs[i]);
			jobs[i] = NULL;
		}
		*n_out = 0;
		return (rc);
	}
	if (*n_out == 0)
		return (spool__error(q, SPOOL_EEMPTY, "nothing to claim"));
	spool__crash("claim");
	return (SPOOL_OK);
}

/* The claim itself, inside the caller's transaction (a pool's flush
 * claims in the transaction that commits its outcomes).  Nothing due is
 * SPOOL_OK with *n_out 0.  On an error the jobs made are freed and the
 * caller rolls back. */
int
spool__claim_locked(spool_job **jobs, size_t *n_out, spool *q,
    const char *const *queues, size_t nqueues, size_t max,
    const spool_claim_opts *opts, int started)
{
	spool_queue_opts	 conf;
	struct candidate	*cand = NULL, **ok = NULL;
	const char		*active[CLAIM_QUEUES_MAX];
	int64_t			 lease[CLAIM_QUEUES_MAX];
	const char		*owner;
	int64_t			 now;
	size_t			 nactive = 0, ncand, claimed = 0, i, k, want;
	size_t			 nok;
	int			 rc = SPOOL_OK, expired;

	*n_out = 0;
	if ((rc = claim_check(q, queues, nqueues, max, opts)) != SPOOL_OK)
		return (rc);
	owner = (opts != NULL && opts->owner != NULL) ? opts->owner : q->owner;
	if ((cand = calloc(max * nqueues, sizeof *cand)) == NULL ||
	    (ok = calloc(max, sizeof *ok)) == NULL) {
		free(cand);
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	}
	now = spool__now_ms(q);
	for (i = 0; i < nqueues; i++) {
		for (k = 0; k < i; k++)		/* a queue named twice counts once */
			if (strcmp(queues[k], queues[i]) == 0)
				break;
		if (k < i)
			continue;
		rc = spool__queue_read(&conf, q, queues[i]);
		if (rc == SPOOL_ENOENT)
			continue;	/* no such queue: nothing to claim */
		if (rc != SPOOL_OK)
			goto fail;
		if (conf.paused)
			continue;
		active[nactive] = queues[i];
		lease[nactive] = (opts != NULL && opts->lease_ms > 0) ?
		    opts->lease_ms : conf.lease_ms;
		nactive++;
	}
	rc = SPOOL_OK;
	spool__clear_error(q);

	/* Merge the best of each queue; candidates past their deadline die
	 * instead, and another round replaces them. */
	while (claimed < max && nactive > 0) {
		want = max - claimed;
		ncand = 0;
		for (i = 0; i < nactive; i++)
			if ((rc = claim_candidates(q, cand, &ncand, active[i],
			    lease[i], now, want)) != SPOOL_OK)
				goto fail;
		if (ncand == 0)
			break;
		qsort(cand, ncand, sizeof *cand, candidate_cmp);
		expired = 0;
		nok = 0;
		for (i = 0; i < ncand && i < want; i++) {
			if (cand[i].deadline_ms != 0 && cand[i].deadline_ms <= now) {
				sqlite3_stmt *st = spool__stmt(q,
				    SPOOL_SQL_EXPIRE_TASK);

				sqlite3_bind_int64(st, 1, cand[i].id);
				sqlite3_bind_int64(st, 2, now);
				if ((rc = spool__step_done(q, st,
				    "expire task")) != SPOOL_OK)
					goto fail;
				if (sqlite3_changes(q->db) == 1) {
					spool__count(q, cand[i].queue,
					    SPOOL__C_DEAD, 1);
					spool__count(q, cand[i].queue,
					    SPOOL__C_EXPIRED, 1);
				}
				expired = 1;
				continue;
			}
			ok[nok++] = &cand[i];
		}
		if ((rc = claim_group(jobs, &claimed, q, ok, nok, owner, now,
		    started)) != SPOOL_OK)
			goto fail;
		if (!expired)
			break;
	}
	free(cand);
	free(ok);
	*n_out = claimed;
	return (SPOOL_OK);

fail:
	for (i = 0; i < claimed; i++) {
		spool_job_free(jobs[i]);
		jobs[i] = NULL;
	}
	free(cand);
	free(ok);
	return (rc);
}

/* Claim one task from one queue. */
int
spool_claim(spool_job **out, spool *q, const char *queue,
    const spool_claim_opts *opts)
{
	size_t	 n;

	if (out == NULL)
		return (q == NULL ? SPOOL_EINVAL :
		    spool__error(q, SPOOL_EINVAL, "claim: NULL argument"));
	*out = NULL;
	return (spool_claim_many(out, &n, q, &queue, 1, 1, opts));
}

int64_t
spool_job_id(const spool_job *job)
{
	return (job->id);
}

const char *
spool_job_queue(const spool_job *job)
{
	return (job->queue);
}

const void *
spool_job_payload(const spool_job *job, size_t *len)
{
	if (len != NULL)
		*len = job->len;
	return (job->payload);
}

int
spool_job_attempt(const spool_job *job)
{
	return (job->attempt);
}

int
spool_job_max_attempts(const spool_job *job)
{
	return (job->max_attempts);
}

int64_t
spool_job_lease_until_ms(const spool_job *job)
{
	/* A pool's engine renews it while the handler runs. */
	return (__atomic_load_n(&job->lease_until_ms, __ATOMIC_RELAXED));
}

int
spool_job_cancel_requested(const spool_job *job)
{
	return (job->cancel_requested);
}

/* Common entry checks of the fenced calls.  A pool's job is finished by
 * returning from its handler: its calls run in a worker thread, which
 * must not touch the engine's connection (not even its error message). */
static int
job_check(spool_job *job, const char *what)
{
	if (job == NULL || job->pool != NULL || job->q == NULL ||
	    job->q->db == NULL)
		return (SPOOL_EINVAL);
	spool__clear_error(job->q);
	if (job->done)
		return (spool__error(job->q, SPOOL_EINVAL,
		    "%s: task %lld is already finished by this job", what,
		    (long long)job->id));
	return (SPOOL_OK);
}

/* The lease of job is gone: say so.  The job is not marked done, so
 * every later fenced call finds the lease gone too and is SPOOL_ELEASE
 * (spool.h: only a call that succeeded finishes a job). */
static int
job_lost(spool_job *job, const char *what)
{
	return (spool__error(job->q, SPOOL_ELEASE,
	    "%s: lease of task %lld lost (reaped, cancelled or deleted); "
	    "nothing was changed", what, (long long)job->id));
}

/* Extend the lease of job. */
int
spool_job_heartbeat(spool_job *job, int64_t lease_ms)
{
	spool		*q;
	sqlite3_stmt	*st;
	int64_t		 until;
	int		 rc, cancel = 0;

	if (job != NULL && job->pool != NULL)	/* the engine renews leases */
		return (spool_job_should_stop(job) == SPOOL_STOP_LEASE_LOST ?
		    SPOOL_ELEASE : SPOOL_OK);
	if ((rc = job_check(job, "heartbeat")) != SPOOL_OK)
		return (rc);
	q = job->q;
	if (lease_ms < 0 || lease_ms > LEASE_MAX_MS)
		return (spool__error(q, SPOOL_EINVAL,
		    "heartbeat: lease out of range"));
	if (lease_ms == 0)
		lease_ms = job->lease_ms;
	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	until = spool__now_ms(q) + lease_ms;
	st = spool__stmt(q, SPOOL_SQL_HEARTBEAT);
	sqlite3_bind_int64(st, 1, job->id);
	sqlite3_bind_int64(st, 2, job->token);
	sqlite3_bind_int64(st, 3, until);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		cancel = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		spool__rollback(q);
		return (job_lost(job, "heartbeat"));
	}
	if (rc != SQLITE_ROW) {
		rc = spool__store_error(q, rc, "heartbeat");
		spool__rollback(q);
		return (rc);
	}
	if ((rc = spool__commit(q)) != SPOOL_OK)
		return (rc);
	job->lease_until_ms = until;
	job->cancel_requested = cancel;
	return (SPOOL_OK);
}

/* Record the success of job inside the caller's transaction: the fenced
 * state change, the result row and the history row.  SPOOL_ELEASE (and
 * nothing written) if the lease was lost. */
int
spool__complete_locked(spool_job *job, const void *result, size_t len,
    int truncated, int64_t now_ms)
{
	spool		*q = job->q;
	sqlite3_stmt	*st;
	int64_t		 start = job_started(job, now_ms);
	int64_t		 end = job_ended(job, now_ms);
	int		 rc;

	if (end < start)	/* a clock step */
		end = start;
	st = spool__stmt(q, SPOOL_SQL_TASK_SUCCEED);
	sqlite3_bind_int64(st, 1, job->id);
	sqlite3_bind_int64(st, 2, job->token);
	sqlite3_bind_int64(st, 3, end);
	sqlite3_bind_int64(st, 4, start);
	if ((rc = spool__step_done(q, st, "complete")) != SPOOL_OK)
		return (rc);
	if (sqlite3_changes(q->db) != 1)
		return (SPOOL_ELEASE);
	st = spool__stmt(q, SPOOL_SQL_RESULT_INSERT);
	sqlite3_bind_int64(st, 1, job->id);
	if (spool__bind_payload(st, 2, result, len) != SQLITE_OK)
		return (spool__store_error(q, sqlite3_errcode(q->db), "complete"));
	sqlite3_bind_int64(st, 3, end - start);
	sqlite3_bind_int64(st, 4, now_ms);
	sqlite3_bind_int(st, 5, truncated != 0);
	if ((rc = spool__step_done(q, st, "complete")) != SPOOL_OK)
		return (rc);
	spool__count(q, job->queue, SPOOL__C_SUCCEEDED, 1);
	return (attempt_insert(q, job->id, job->attempt, job->owner,
	    start, end, "succeeded", NULL));
}

/* Record the failure of job inside the caller's transaction and say what
 * became of its task (*state_out: ready, dead or cancelled).  outcome
 * names the attempt's end in the history ("failed", "timed_out").
 * SPOOL_ELEASE (and nothing written) if the lease was lost. */
int
spool__fail_locked(spool_job *job, const char *error, int flags,
    const char *outcome, int64_t now_ms, int *state_out)
{
	spool		*q = job->q;
	sqlite3_stmt	*st;
	int64_t		 base, cap;
	double		 jitter;
	int64_t		 start = job_started(job, now_ms);
	int64_t		 end = job_ended(job, now_ms);
	int		 rc, cancel, max_attempts, policy, state, stage = 0;
	int		 on_error = 0, retries = 0, failures = 0;

	if (end < start)	/* a clock step */
		end = start;

	st = spool__stmt(q, SPOOL_SQL_LEASE_CHECK);
	sqlite3_bind_int64(st, 1, job->id);
	sqlite3_bind_int64(st, 2, job->token);
	sqlite3_bind_int(st, 3, 1 + SPOOL_STAGE_LEASE_LOSSES);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return (rc == SQLITE_DONE ? SPOOL_ELEASE :
		    spool__store_error(q, rc, "fail"));
	}
	cancel = sqlite3_column_int(st, 0);
	max_attempts = sqlite3_column_int(st, 1);
	policy = spool__backoff_parse((const char *)sqlite3_column_text(st, 2));
	base = sqlite3_column_int64(st, 3);
	cap = sqlite3_column_int64(st, 4);
	jitter = sqlite3_column_double(st, 5);
	if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
		/* A pipeline stage: its strategy decides, with a fixed delay;
		 * attempts whose lease was lost do not count as failures. */
		stage = 1;
		on_error = spool__on_error_parse((const char *)
		    sqlite3_column_text(st, 6));
		retries = sqlite3_column_int(st, 7);
		policy = SPOOL_BACKOFF_FIXED;
		base = cap = sqlite3_column_int64(st, 8);
		jitter = 0;
		failures = sqlite3_column_int(st, 9);
	}
	sqlite3_reset(st);

	if (error == NULL)
		error = "failed";
	if (stage && on_error != SPOOL_ON_ERROR_RETRY)
		flags |= SPOOL_FAIL_PERMANENT;
	if (stage && on_error == SPOOL_ON_ERROR_RETRY && failures >= retries &&
	    !(flags & SPOOL_FAIL_PERMANENT))
		max_attempts = job->attempt;	/* no retries left */
	if (cancel) {
		state = SPOOL_CANCELLED;
		rc = task_end(q, job->id, job->token, "cancelled", NULL, error,
		    end, start);
	} else if (flags & SPOOL_FAIL_PERMANENT) {
		state = SPOOL_DEAD;
		rc = task_end(q, job->id, job->token, "dead", "failed", error,
		    end, start);
	} else if (job->attempt >= max_attempts) {
		state = SPOOL_DEAD;
		rc = task_end(q, job->id, job->token, "dead", "exhausted", error,
		    end, start);
	} else {
		state = SPOOL_READY;
		rc = task_requeue(q, job->id, job->token, now_ms +
		    spool__backoff_ms(policy, base, cap, jitter, job->attempt,
		    spool__random_unit()), error, start);
	}
	if (rc == SPOOL_OK)
		rc = attempt_insert(q, job->id, job->attempt, job->owner,
		    start, end, cancel ? "cancelled" : outcome, error);
	if (rc == SPOOL_OK) {
		if (!cancel)
			spool__count(q, job->queue, SPOOL__C_FAILED, 1);
		spool__count(q, job->queue, state == SPOOL_CANCELLED ?
		    SPOOL__C_CANCELLED : state == SPOOL_DEAD ? SPOOL__C_DEAD :
		    SPOOL__C_RETRIED, 1);
	}
	if (rc == SPOOL_OK && state_out != NULL)
		*state_out = state;
	return (rc);
}

/* Record inside the caller's transaction that a pool's handler started
 * task id (lease token) at started_ms; a lost lease changes nothing. */
int
spool__started_locked(spool *q, int64_t id, int64_t token,
    int64_t started_ms)
{
	sqlite3_stmt	*st = spool__stmt(q, SPOOL_SQL_TASK_STARTED);

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, token);
	sqlite3_bind_int64(st, 3, started_ms);
	return (spool__step_done(q, st, "record start"));
}

/* Hand job's task back unstarted inside the caller's transaction: ready
 * again (cancelled if that was asked for), its attempt not charged. */
int
spool__release_locked(spool_job *job, int64_t now_ms, int *cancelled)
{
	spool		*q = job->q;
	sqlite3_stmt	*st = spool__stmt(q, SPOOL_SQL_TASK_RELEASE);
	int		 rc;

	sqlite3_bind_int64(st, 1, job->id);
	sqlite3_bind_int64(st, 2, job->token);
	sqlite3_bind_int64(st, 3, now_ms);
	rc = sqlite3_step(st);
	if (cancelled != NULL)
		*cancelled = 0;
	if (rc == SQLITE_ROW) {
		if (strcmp((const char *)sqlite3_column_text(st, 0),
		    "cancelled") == 0) {
			spool__count(q, job->queue, SPOOL__C_CANCELLED, 1);
			if (cancelled != NULL)
				*cancelled = 1;
		}
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		return (rc == SQLITE_DONE ? SPOOL_OK :
		    spool__store_error(q, rc, "release"));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return (spool__store_error(q, rc, "release"));
	return (SPOOL_ELEASE);
}

/* Run one locked outcome call in its own transaction: the public calls. */
static int
job_txn(spool_job *job, const char *what, int (*fn)(spool_job *, void *,
    int64_t), void *arg)
{
	spool	*q = job->q;
	int	 rc;

	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	rc = fn(job, arg, spool__now_ms(q));
	if (rc != SPOOL_OK) {
		spool__rollback(q);
		return (rc == SPOOL_ELEASE ? job_lost(job, what) : rc);
	}
	if ((rc = spool__commit(q)) != SPOOL_OK)
		return (rc);
	job->done = 1;
	return (SPOOL_OK);
}

struct complete_args {
	const void	*result;
	size_t		 len;
};

static int
complete_fn(spool_job *job, void *arg, int64_t now_ms)
{
	struct complete_args	*a = arg;

	return (spool__complete_locked(job, a->result, a->len, 0, now_ms));
}

/* The task of job succeeded with result. */
int
spool_job_complete(spool_job *job, const void *result, size_t len)
{
	struct complete_args	 a = { result, len };
	int			 rc;

	if ((rc = job_check(job, "complete")) != SPOOL_OK)
		return (rc);
	if (result == NULL && len != 0)
		return (spool__error(job->q, SPOOL_EINVAL,
		    "complete: result is NULL"));
	if (len > SPOOL_PAYLOAD_MAX)
		return (spool__error(job->q, SPOOL_EINVAL,
		    "complete: result too large (%zu bytes, at most %d)", len,
		    SPOOL_PAYLOAD_MAX));
	return (job_txn(job, "complete", complete_fn, &a));
}

struct fail_args {
	const char	*error;
	int		 flags;
};

static int
fail_fn(spool_job *job, void *arg, int64_t now_ms)
{
	struct fail_args	*a = arg;

	return (spool__fail_locked(job, a->error, a->flags, "failed", now_ms,
	    NULL));
}

/* The attempt of job failed: retry by the backoff policy, or bury. */
int
spool_job_fail(spool_job *job, const char *error, int flags)
{
	struct fail_args	 a = { error, flags };
	int			 rc;

	if ((rc = job_check(job, "fail")) != SPOOL_OK)
		return (rc);
	if (flags & ~SPOOL_FAIL_PERMANENT)
		return (spool__error(job->q, SPOOL_EINVAL,
		    "fail: unknown flags 0x%x", (unsigned)flags));
	return (job_txn(job, "fail", fail_fn, &a));
}

static int
release_fn(spool_job *job, void *arg, int64_t now_ms)
{
	(void)arg;
	return (spool__release_locked(job, now_ms, NULL));
}

/* Hand the task of job back unstarted. */
int
spool_job_release(spool_job *job)
{
	int	 rc;

	if ((rc = job_check(job, "release")) != SPOOL_OK)
		return (rc);
	return (job_txn(job, "release", release_fn, NULL));
}
