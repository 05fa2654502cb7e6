/*
 * precommit.c -- what every write transaction does before its COMMIT,
 * listed here so the store runs the features' steps without knowing the
 * features: store.c calls up to nothing; it walks the hooks a handle was
 * opened with (open.c).
 *
 *   settle    pipeline items and batches the transaction changed are
 *             settled (pipeline.c, batch.c): whatever wrote a stage's
 *             success also hands its item on, whatever wrote a batch
 *             member's last outcome also enqueues the batch's hook.  One
 *             probe (settle_any) tells whether there is anything to
 *             settle at all: usually there is not, and a quiet enqueue
 *             (store.c, spool__quiet) need not even ask.
 *   counters  the transaction's sums go into queue_counters (counters.c);
 *             last, so the settling's own changes are counted too.
 */
#include "config.h"

#include "spool-int.h"
#include "query-gen.h"

static int
precommit_settle(spool *q)
{
	struct spool__q_settle_any_row	 r;
	struct spool__cur		 c;
	int				 rc;

	if (q->txn_fast)	/* quiet file, enqueues only */
		return (SPOOL_OK);
	/* A failed read here (an I/O error) may have ended the transaction
	 * already: the cursor says so, rather than settle outside it. */
	if ((rc = spool__q_settle_any(q, &c)) != SPOOL_OK ||
	    (rc = spool__q_settle_any_next(&c, &r)) < 0)
		return (rc);
	spool__cur_end(&c);
	if (rc == 0 || !r.any)
		return (SPOOL_OK);
	if ((rc = spool__pipeline_settle_locked(q, spool__now_ms(q))) !=
	    SPOOL_OK)
		return (rc);
	return (spool__batch_settle_locked(q, spool__now_ms(q)));
}

static const struct spool__precommit precommits[] = {
	{ "settle", precommit_settle },
	{ "counters", spool__counters_write_locked },
	{ NULL, NULL }
};

/* At BEGIN and after a rollback, the counters' sums start over. */
const struct spool__txn_hooks spool__txn_hooks = {
	spool__counters_reset,
	precommits
};
