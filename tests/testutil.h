/*
 * testutil.h -- the harness every CUnit test binary shares.
 *
 * tu_run() registers one suite whose tests each get a fresh temporary
 * directory (tu_dir) holding a fresh database (tu_db, open as tu_q) that
 * runs on a fake clock (tu_now, in Unix ms; move it with tu_advance).  It
 * exits 0 when every test passed, 1 when one failed, and 99 (automake's
 * "hard error") when the harness itself could not run.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <CUnit/CUnit.h>
#include <stdint.h>

#include "store-int.h"	/* the tests read the file with SQLite too */

#define TU_EPOCH_MS	1800000000000LL	/* the fake clock starts here (2027) */

extern spool	*tu_q;		/* the test's database */
extern char	 tu_dir[];	/* its private temporary directory */
extern char	 tu_db[];	/* tu_dir/test.db */
extern int64_t	 tu_now;	/* the fake clock */

/* Run the tests of one module; returns the process exit status. */
int		 tu_run(const char *name, CU_TestInfo *tests);

/* Open another handle on path on the fake clock (CU_FAIL if it cannot). */
spool		*tu_open(const char *path, int flags);

/* Move the fake clock forward. */
void		 tu_advance(int64_t ms);

/* Enqueue text on queue with default options; asserts success. */
int64_t		 tu_enqueue(const char *queue, const char *text);

/* The first column of the first row of sql run on tu_q's connection, as
 * an integer (-1 if there is no row). */
int64_t		 tu_sql_int(const char *sql);

/* Same, on any handle. */
int64_t		 tu_sql_int_on(spool *q, const char *sql);

/* The first column as text, copied into buf (empty if no row or NULL). */
const char	*tu_sql_text(char *buf, size_t len, const char *sql);
const char	*tu_sql_text_on(spool *q, char *buf, size_t len,
		     const char *sql);

/* Column col (an SQL expression) of task id, as an integer or as text. */
int64_t		 tu_task_int(int64_t id, const char *col);
const char	*tu_task_text(char *buf, size_t len, int64_t id, const char *col);

/* Create queue with fixed backoff base_ms and no jitter. */
void		 tu_fixed_backoff(const char *queue, int64_t base_ms);

/* CU_ASSERT_EQUAL on result codes, printing both names on failure. */
#define TU_RC(got, want) do {						\
	int	 tu_got_ = (got), tu_want_ = (want);			\
	if (tu_got_ != tu_want_)					\
		fprintf(stderr, "\n%s:%d: rc %d (%s), want %d (%s): %s\n", \
		    __FILE__, __LINE__, tu_got_, spool_strerror(tu_got_), \
		    tu_want_, spool_strerror(tu_want_),			\
		    tu_q != NULL ? spool_errmsg(tu_q) : "");		\
	CU_ASSERT_EQUAL(tu_got_, tu_want_);				\
} while (0)

/* Assert that msg refuses an options struct of type (its C name) whose
 * version, 99, is newer than the library knows (issue 15). */
#define TU_VERSION_REFUSED(msg, type) do {				\
	const char	*tu_msg_ = (msg);				\
	if (strstr(tu_msg_, type ": unknown version 99") == NULL)	\
		fprintf(stderr, "\n%s:%d: message: %s\n", __FILE__,	\
		    __LINE__, tu_msg_);					\
	CU_ASSERT_PTR_NOT_NULL(strstr(tu_msg_, type			\
	    ": unknown version 99"));					\
} while (0)

/* Invariants, each a count of the rows that break it (0 when all hold):
 * batches whose counters differ from their members' states; runs whose
 * counters differ from their items' states; items with more than one
 * unfinished task, or none while running, or left to settle. */
#define TU_BATCHES_WRONG						\
	"SELECT count(*) FROM batches b WHERE "				\
	" total != (SELECT count(*) FROM tasks WHERE batch_id = b.id)"	\
	" OR pending != (SELECT count(*) FROM tasks WHERE batch_id = b.id" \
	"   AND state = 'ready')"					\
	" OR running != (SELECT count(*) FROM tasks WHERE batch_id = b.id" \
	"   AND state = 'running')"					\
	" OR succeeded != (SELECT count(*) FROM tasks WHERE batch_id = b.id" \
	"   AND state = 'succeeded')"					\
	" OR failed != (SELECT count(*) FROM tasks WHERE batch_id = b.id" \
	"   AND state = 'dead' AND dead_reason = 'failed')"		\
	" OR dead != (SELECT count(*) FROM tasks WHERE batch_id = b.id"	\
	"   AND state = 'dead' AND dead_reason != 'failed')"		\
	" OR cancelled != (SELECT count(*) FROM tasks WHERE batch_id = b.id" \
	"   AND state = 'cancelled')"					\
	" OR (state = 'finished') != (state != 'open' AND pending = 0"	\
	"   AND running = 0)"
#define TU_RUNS_WRONG							\
	"SELECT count(*) FROM pipeline_runs r WHERE "			\
	" total != (SELECT count(*) FROM pipeline_items WHERE run_id = r.id)" \
	" OR running != (SELECT count(*) FROM pipeline_items"		\
	"   WHERE run_id = r.id AND state = 'running')"			\
	" OR succeeded != (SELECT count(*) FROM pipeline_items"		\
	"   WHERE run_id = r.id AND state = 'succeeded')"		\
	" OR failed != (SELECT count(*) FROM pipeline_items"		\
	"   WHERE run_id = r.id AND state = 'failed')"			\
	" OR skipped != (SELECT count(*) FROM pipeline_items"		\
	"   WHERE run_id = r.id AND state = 'skipped')"			\
	" OR cancelled != (SELECT count(*) FROM pipeline_items"		\
	"   WHERE run_id = r.id AND state = 'cancelled')"		\
	" OR (finished_ms IS NULL) != (running > 0)"
#define TU_ITEMS_WRONG							\
	"SELECT count(*) FROM pipeline_items i WHERE "			\
	" (SELECT count(*) FROM tasks WHERE item_id = i.id"		\
	"   AND finished_ms IS NULL) != (i.state = 'running')"		\
	" OR i.settle != 0"

#endif
