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
#include "query-gen.h"

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
		spool__random(&r, sizeof r);
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
	return (spool__q_attempt_insert(q, &(struct spool__q_attempt_insert_in){
	    .task_id = id, .attempt = attempt < 1 ? 1 : attempt,
	    .worker = worker != NULL ? worker : "unknown",
	    .started_ms = started_ms != 0 ? started_ms : now_ms,
	    .finished_ms = now_ms, .outcome = outcome,
	    .error = error, .error_len = error_len(error) }));
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
	int	 rc;

	rc = spool__q_task_end(q, &(struct spool__q_task_end_in){
	    .id = id, .token = token, .state = state, .dead_reason = reason,
	    .error = error, .error_len = error_len(error),
	    .finished_ms = now_ms, .started_ms = started_ms });
	if (rc != SPOOL_OK)
		return (rc);
	return (spool__changes(q) == 1 ? SPOOL_OK : SPOOL_ELEASE);
}

/* Put a running task back to ready at run_at_ms; fenced. */
static int
task_requeue(spool *q, int64_t id, int64_t token, int64_t run_at_ms,
    const char *error, int64_t started_ms)
{
	int	 rc;

	rc = spool__q_task_requeue(q, &(struct spool__q_task_requeue_in){
	    .id = id, .token = token, .run_at_ms = run_at_ms,
	    .error = error, .error_len = error_len(error),
	    .started_ms = started_ms });
	if (rc != SPOOL_OK)
		return (rc);
	return (spool__changes(q) == 1 ? SPOOL_OK : SPOOL_ELEASE);
}

/* Reap one batch inside the caller's transaction: ready tasks past their
 * deadline become dead, expired leases are retried or buried.  *more is
 * set when a batch was full and another pass may find more. */
int
spool__reap_locked(int64_t *n_out, spool *q, int64_t now_ms, int *more)
{
	struct expired	 ex[SPOOL_BATCH_ROWS];
	struct spool__cur c;
	struct spool__q_expire_deadlines_row d;
	struct spool__q_reap_expired_row r;
	char		 err[300];
	int64_t		 n = 0;
	size_t		 nex = 0, i;
	int		 rc;

	*more = 0;
	*n_out = 0;
	if ((rc = spool__q_expire_deadlines(q, &c,
	    &(struct spool__q_expire_deadlines_in){ .now_ms = now_ms,
	    .max = SPOOL_BATCH_ROWS })) != SPOOL_OK)
		return (rc);
	while ((rc = spool__q_expire_deadlines_next(&c, &d)) == 1) {
		spool__count(q, d.queue, SPOOL__C_DEAD, 1);
		spool__count(q, d.queue, SPOOL__C_EXPIRED, 1);
		n++;
	}
	if (rc != 0)
		return (rc);
	if (n == SPOOL_BATCH_ROWS)
		*more = 1;

	if ((rc = spool__q_reap_expired(q, &c,
	    &(struct spool__q_reap_expired_in){
	    .now_ms = spool__stall_cutoff(q, now_ms),
	    .max = SPOOL_BATCH_ROWS })) != SPOOL_OK)
		return (rc);
	while ((rc = spool__q_reap_expired_next(&c, &r)) == 1) {
		struct expired	*e = &ex[nex++];

		memset(e, 0, sizeof *e);
		if (!spool__strdup_opt(&e->owner, r.lease_owner) ||
		    !spool__strdup_opt(&e->queue, r.queue)) {
			spool__cur_end(&c);
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			goto out;
		}
		e->id = r.id;
		e->token = r.lease_token;
		e->attempts = (int)r.attempts;
		e->max_attempts = (int)r.max_attempts;
		e->started_ms = r.started_ms;
		e->cancel_requested = (int)r.cancel_requested;
		e->backoff = spool__backoff_parse(r.backoff);
		e->base_ms = r.backoff_base_ms;
		e->cap_ms = r.backoff_cap_ms;
		e->jitter = r.backoff_jitter;
	}
	if (rc != 0)
		goto out;
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

/* Build the job of claimed row r (claim_rows). */
static spool_job *
claim_job(const struct spool__q_claim_rows_row *r, spool *q,
    const char *owner, int64_t token, int64_t lease_ms, int64_t now_ms,
    int started)
{
	spool_job	*j;

	if ((j = calloc(1, sizeof *j)) == NULL)
		return (NULL);
	j->q = q;
	j->id = r->id;
	j->token = token;
	j->started_ms = started ? now_ms : 0;
	j->lease_ms = lease_ms;
	j->lease_until_ms = r->lease_until_ms;
	j->queue = spool__strdup(r->queue != NULL ? r->queue : "");
	/* A NULL payload (a hand edit) is an empty one. */
	j->len = r->payload != NULL ? r->payload_len : 0;
	j->payload = spool__memdup(r->payload, j->len);
	j->attempt = (int)r->attempts;
	j->max_attempts = (int)r->max_attempts;
	j->cancel_requested = (int)r->cancel_requested;
	j->run_at_ms = r->run_at_ms;
	j->item_id = r->item_id;
	j->stage_id = r->stage_id;
	j->stage_timeout_ms = r->stage_timeout_ms;
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
	struct spool__cur cur;
	struct spool__q_claim_rows_row r;
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
		rc = spool__q_claim_tasks(q, &(struct spool__q_claim_tasks_in){
		    .ids = one_lease ? all : some, .owner = owner,
		    .token = token, .lease_until_ms = now_ms + c[i]->lease_ms,
		    .started_ms = started ? now_ms : 0 });
		if (rc != SPOOL_OK)
			goto out;
		if (one_lease)
			break;
	}

	/* The rows, each to the place of its id in the array. */
	if ((rc = spool__q_claim_rows(q, &cur, &(struct spool__q_claim_rows_in){
	    .ids = all, .token = token })) != SPOOL_OK)
		goto out;
	while ((rc = spool__q_claim_rows_next(&cur, &r)) == 1) {
		k = (size_t)r.place;
		if (r.place < 0 || k >= n || got[k] != NULL)
			continue;
		if ((got[k] = claim_job(&r, q, owner, token, c[k]->lease_ms,
		    now_ms, started)) == NULL) {
			spool__cur_end(&cur);
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (rc != 0)
		goto out;
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
	struct spool__cur c;
	struct spool__q_claim_level_row l;
	struct spool__q_claim_candidates_row r;
	int64_t		 below = INT64_MAX;
	size_t		 start = *ncand;
	int		 rc;

	while (*ncand - start < limit) {
		if ((rc = spool__q_claim_level(q, &c,
		    &(struct spool__q_claim_level_in){ .queue = name,
		    .below = below })) != SPOOL_OK)
			return (rc);
		if ((rc = spool__q_claim_level_next(&c, &l)) != 1)
			return (rc);	/* 0: no level left */
		spool__cur_end(&c);

		if ((rc = spool__q_claim_candidates(q, &c,
		    &(struct spool__q_claim_candidates_in){ .queue = name,
		    .priority = l.level, .now_ms = now_ms,
		    .max = (int64_t)(limit - (*ncand - start)) })) != SPOOL_OK)
			return (rc);
		while ((rc = spool__q_claim_candidates_next(&c, &r)) == 1) {
			struct candidate	*cd = &cand[(*ncand)++];

			cd->id = r.id;
			cd->priority = (int)r.priority;
			cd->run_at_ms = r.run_at_ms;
			cd->deadline_ms = r.deadline_ms;
			cd->lease_ms = lease_ms;
			cd->queue = name;
		}
		if (rc != 0)
			return (rc);
		below = l.level;
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
				if ((rc = spool__q_expire_task(q,
				    &(struct spool__q_expire_task_in){
				    .id = cand[i].id, .now_ms = now })) != SPOOL_OK)
					goto fail;
				if (spool__changes(q) == 1) {
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

/* Set the reason job's handler should stop, unless one is set already. */
int
spool__job_stop_set(spool_job *job, int reason)
{
	int	 none = 0;

	return (__atomic_compare_exchange_n(&job->stop, &none, reason, 0,
	    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
}

/* Why the handler of job should stop, or 0. */
int
spool_job_should_stop(const spool_job *job)
{
	if (job == NULL)
		return (0);
	return (__atomic_load_n(&job->stop, __ATOMIC_ACQUIRE));
}

/* When job's run time limit ends, or 0. */
int64_t
spool_job_deadline_ms(const spool_job *job)
{
	if (job == NULL || job->timeout_ms <= 0 || job->run_start_ms == 0)
		return (0);
	return (job->run_start_ms + job->timeout_ms);
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
	struct spool__cur c;
	struct spool__q_heartbeat_row r;
	int64_t		 until;
	int		 rc;

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
	if ((rc = spool__q_heartbeat(q, &c, &(struct spool__q_heartbeat_in){
	    .id = job->id, .token = job->token, .until_ms = until })) ==
	    SPOOL_OK && (rc = spool__q_heartbeat_next(&c, &r)) == 1) {
		spool__cur_end(&c);	/* the first step made the change */
		rc = SPOOL_OK;
	} else if (rc == 0) {
		spool__rollback(q);
		return (job_lost(job, "heartbeat"));
	}
	if (rc != SPOOL_OK) {
		spool__rollback(q);
		return (rc);
	}
	if ((rc = spool__commit(q)) != SPOOL_OK)
		return (rc);
	job->lease_until_ms = until;
	job->cancel_requested = (int)r.cancel_requested;
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
	int64_t		 start = job_started(job, now_ms);
	int64_t		 end = job_ended(job, now_ms);
	int		 rc;

	if (end < start)	/* a clock step */
		end = start;
	if ((rc = spool__q_task_succeed(q, &(struct spool__q_task_succeed_in){
	    .id = job->id, .token = job->token, .finished_ms = end,
	    .started_ms = start })) != SPOOL_OK)
		return (rc);
	if (spool__changes(q) != 1)
		return (SPOOL_ELEASE);
	if ((rc = spool__q_result_insert(q, &(struct spool__q_result_insert_in){
	    .task_id = job->id, .output = result, .output_len = len,
	    .duration_ms = end - start, .now_ms = now_ms,
	    .truncated = truncated != 0 })) != SPOOL_OK)
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
	struct spool__cur c;
	struct spool__q_lease_check_row r;
	int64_t		 base, cap;
	double		 jitter;
	int64_t		 start = job_started(job, now_ms);
	int64_t		 end = job_ended(job, now_ms);
	int		 rc, cancel, max_attempts, policy, state, stage = 0;
	int		 on_error = 0, retries = 0, failures = 0;

	if (end < start)	/* a clock step */
		end = start;

	if ((rc = spool__q_lease_check(q, &c, &(struct spool__q_lease_check_in){
	    .id = job->id, .token = job->token,
	    .allowance = 1 + SPOOL_STAGE_LEASE_LOSSES })) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_lease_check_next(&c, &r)) != 1)
		return (rc == 0 ? SPOOL_ELEASE : rc);
	cancel = (int)r.cancel_requested;
	max_attempts = (int)r.max_attempts;
	policy = spool__backoff_parse(r.backoff);
	base = r.backoff_base_ms;
	cap = r.backoff_cap_ms;
	jitter = r.backoff_jitter;
	if (r.on_error != NULL) {
		/* A pipeline stage: its strategy decides, with a fixed delay;
		 * attempts whose lease was lost do not count as failures. */
		stage = 1;
		on_error = spool__on_error_parse(r.on_error);
		retries = (int)r.retries;
		policy = SPOOL_BACKOFF_FIXED;
		base = cap = r.retry_delay_ms;
		jitter = 0;
		failures = (int)r.failures;
	}
	spool__cur_end(&c);

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
	return (spool__q_task_started(q, &(struct spool__q_task_started_in){
	    .id = id, .token = token, .started_ms = started_ms }));
}

/* Hand job's task back unstarted inside the caller's transaction: ready
 * again (cancelled if that was asked for), its attempt not charged. */
int
spool__release_locked(spool_job *job, int64_t now_ms, int *cancelled)
{
	spool		*q = job->q;
	struct spool__cur c;
	struct spool__q_task_release_row r;
	int		 rc;

	if (cancelled != NULL)
		*cancelled = 0;
	if ((rc = spool__q_task_release(q, &c, &(struct spool__q_task_release_in){
	    .id = job->id, .token = job->token, .now_ms = now_ms })) != SPOOL_OK)
		return (rc);
	if ((rc = spool__q_task_release_next(&c, &r)) != 1)
		return (rc == 0 ? SPOOL_ELEASE : rc);
	if (r.state != NULL && strcmp(r.state, "cancelled") == 0) {
		spool__count(q, job->queue, SPOOL__C_CANCELLED, 1);
		if (cancelled != NULL)
			*cancelled = 1;
	}
	spool__cur_end(&c);	/* the first step made the change */
	return (SPOOL_OK);
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
