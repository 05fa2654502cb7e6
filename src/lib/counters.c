/*
 * counters.c -- the per-queue counters of schema 5: what a write
 * transaction did is added up here, per queue, as it happens, and
 * written (one row per queue) just before its COMMIT.
 *
 * Invariants: the sums belong to the open transaction: spool__begin and
 * spool__rollback drop them; a savepoint that is undone restores the
 * sums taken when it was opened (spool__counters_save/restore); a failed
 * allocation fails the COMMIT, so the counters never miss a change that
 * committed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "spool-int.h"
#include "query-gen.h"

/* Add n to counter which of queue. */
void
spool__count(spool *q, const char *queue, int which, int64_t n)
{
	struct spool__ctr	*v;
	size_t			 i;

	if (queue == NULL || n == 0)
		return;
	for (i = 0; i < q->nctr; i++)
		if (strcmp(q->ctr[i].queue, queue) == 0)
			break;
	if (i == q->nctr) {
		if (strlen(queue) > SPOOL_NAME_MAX ||
		    (v = spool__grow(q->ctr, &q->ctr_cap, q->nctr,
		    sizeof *v)) == NULL) {
			q->ctr_failed = 1;
			return;
		}
		q->ctr = v;
		memset(&q->ctr[i], 0, sizeof q->ctr[i]);
		strcpy(q->ctr[i].queue, queue);
		q->nctr++;
	}
	q->ctr[i].n[which] += n;
}

/* Forget the sums (a transaction begins or is rolled back). */
void
spool__counters_reset(spool *q)
{
	q->nctr = 0;
	q->ctr_failed = 0;
}

/*
 * Tasks are counted as enqueued in bulk, from their ids (schema 8): those
 * up to counters_mark are in queue_counters.enqueued, those above it not
 * yet.  A commit counts them and moves the mark when it writes counters
 * anyway, or once the ids above the mark span FOLD_SPAN; otherwise (an
 * enqueue of a few tasks, alone) it leaves its own tasks above the mark
 * and writes no counter row at all, which is what makes a durable
 * enqueue at a time cost the pages of the task and nothing else.
 */
#define FOLD_SPAN	1024

/* Does the transaction add to any counter but enqueued? */
static int
counters_other(const spool *q)
{
	size_t	 i;
	int	 k;

	for (i = 0; i < q->nctr; i++)
		for (k = 0; k < SPOOL__C_COUNT; k++)
			if (k != SPOOL__C_ENQUEUED && q->ctr[i].n[k] != 0)
				return (1);
	return (0);
}

/*
 * Count the tasks above the mark, unless the commit may leave them there:
 * the transaction's own enqueues are the last ids (AUTOINCREMENT, under
 * the write lock), so only those before them, (mark, top - own], are
 * counted from the table; the transaction's own are in its sums.  Returns
 * 1 when the sums are to be written, 0 when the enqueued ones are to be
 * dropped (their tasks stay above the mark).
 */
static int
counters_fold(spool *q, int *rc)
{
	struct spool__q_counters_tail_row	 tail;
	struct spool__cur			 c;
	int64_t					 own = 0, before;
	size_t					 i;

	/* A quiet enqueue knows its tasks are the top ids, and the mark only
	 * grows: if they are near the mark as last seen, they are near the
	 * mark, and there is nothing to read. */
	*rc = SPOOL_OK;
	if (q->txn_fast && q->txn_top_id > 0 && !counters_other(q) &&
	    q->txn_top_id - q->mark_seen < FOLD_SPAN)
		return (0);
	if ((*rc = spool__q_counters_tail(q, &c)) != SPOOL_OK)
		return (0);
	if ((*rc = spool__q_counters_tail_next(&c, &tail)) != 1) {
		if (*rc == 0)	/* one row, always */
			*rc = spool__error(q, SPOOL_ERROR, "counters: no tail");
		return (0);
	}
	spool__cur_end(&c);
	*rc = SPOOL_OK;
	q->mark_seen = tail.mark;
	if (tail.top <= tail.mark)
		return (1);
	if (!counters_other(q) && tail.top - tail.mark < FOLD_SPAN)
		return (0);
	for (i = 0; i < q->nctr; i++)
		own += q->ctr[i].n[SPOOL__C_ENQUEUED];
	if ((before = tail.top - own) > tail.mark &&
	    (*rc = spool__q_counters_fold(q, &(struct spool__q_counters_fold_in){
	    .after = tail.mark, .upto = before })) != SPOOL_OK)
		return (0);
	if ((*rc = spool__q_counters_mark_set(q,
	    &(struct spool__q_counters_mark_set_in){ .task_id = tail.top })) ==
	    SPOOL_OK)
		q->mark_seen = tail.top;
	return (1);
}

/* Write the sums into the open transaction. */
int
spool__counters_write_locked(spool *q)
{
	const int64_t	*n;
	size_t		 i;
	int		 rc;

	if (q->ctr_failed)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory (counters)"));
	if (!counters_fold(q, &rc)) {
		if (rc != SPOOL_OK)
			return (rc);
		spool__counters_reset(q);
		return (SPOOL_OK);
	}
	if (rc != SPOOL_OK)
		return (rc);
	for (i = 0; i < q->nctr; i++) {
		n = q->ctr[i].n;
		if ((rc = spool__q_counters_add(q,
		    &(struct spool__q_counters_add_in){
		    .queue = q->ctr[i].queue,
		    .enqueued = n[SPOOL__C_ENQUEUED],
		    .claimed = n[SPOOL__C_CLAIMED],
		    .succeeded = n[SPOOL__C_SUCCEEDED],
		    .failed = n[SPOOL__C_FAILED],
		    .retried = n[SPOOL__C_RETRIED],
		    .dead = n[SPOOL__C_DEAD],
		    .expired = n[SPOOL__C_EXPIRED],
		    .lease_lost = n[SPOOL__C_LEASE_LOST],
		    .cancelled = n[SPOOL__C_CANCELLED] })) != SPOOL_OK)
			return (rc);
	}
	spool__counters_reset(q);
	return (SPOOL_OK);
}

/* Keep a copy of the sums (a savepoint opens). */
int
spool__counters_save(spool *q, struct spool__ctr **copy, size_t *n)
{
	*n = q->nctr;
	*copy = NULL;
	if (q->nctr == 0)
		return (SPOOL_OK);
	if ((*copy = spool__memdup(q->ctr, q->nctr * sizeof *q->ctr)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	return (SPOOL_OK);
}

/* Put the sums back as saved (the savepoint was undone); frees copy. */
void
spool__counters_restore(spool *q, struct spool__ctr *copy, size_t n)
{
	if (n > 0)
		memcpy(q->ctr, copy, n * sizeof *q->ctr);
	q->nctr = n;
	free(copy);
}
