/*
 * wait.c -- waiting in the calling thread for a task, a batch or a
 * pipeline run to finish: spool_task_wait, spool_batch_wait and
 * spool_run_wait.
 *
 * A wait reads the object, and while it is not final sleeps 10 ms
 * doubling to 500 ms between reads (no thread, no timer).  Before each
 * read it notes PRAGMA data_version, which moves whenever another
 * connection commits; after a sleep in which it did not move, nothing
 * can have finished (only a commit finishes a task, a batch or a run, and
 * the waiting handle commits nothing itself), so the read is skipped.
 * Timeouts run on the monotonic clock, not the handle's (test) clock.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "spool-int.h"
#include "query-gen.h"

#define WAIT_PAUSE_MIN_MS	10
#define WAIT_PAUSE_MAX_MS	500

/* What a wait is for: how to read one, whether it is final, how to free it. */
struct waiter {
	const char	*what;		/* "task", "batch", "run" */
	const char	*call;		/* the public call, for messages */
	int		(*read)(void **out, spool *q, int64_t id);
	int		(*final)(const void *info);
	const char	*(*state)(const void *info);
	void		(*release)(void *info);
	/* The record to return once final (NULL: the last read). */
	int		(*finish)(void **out, spool *q, int64_t id);
};

/* PRAGMA data_version of q, or -1 if it could not be read. */
static int64_t
wait_data_version(spool *q)
{
	struct spool__q_data_version_row	 r;
	struct spool__cur			 c;
	int64_t					 v = -1;

	if (spool__q_data_version(q, &c) == SPOOL_OK &&
	    spool__q_data_version_next(&c, &r) == 1)
		v = r.data_version;
	spool__cur_end(&c);
	return (v);
}

/*
 * Wait up to timeout_ms (< 0: forever, 0: one look) for object id to be
 * final, and put it in *res (res NULL: the caller's out was NULL).  On
 * SPOOL_ETIMEDOUT *res is the last read; on any other failure NULL.
 */
static int
wait_for(void **res, spool *q, int64_t id, int64_t timeout_ms,
    const struct waiter *w)
{
	void	*info = NULL;
	int64_t	 start, elapsed, pause = WAIT_PAUSE_MIN_MS, nap, dv = -1;
	int	 rc, changed = 1;

	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	spool__clear_error(q);
	if (res == NULL)
		return (spool__error(q, SPOOL_EINVAL, "%s: out is NULL",
		    w->call));
	if (id <= 0)
		return (spool__error(q, SPOOL_EINVAL, "%s: %s id must be "
		    "positive, not %lld", w->call, w->what, (long long)id));
	start = spool__clock_ms(CLOCK_MONOTONIC);
	for (;;) {
		if (changed) {
			w->release(info);
			info = NULL;
			dv = wait_data_version(q);
			if ((rc = w->read(&info, q, id)) != SPOOL_OK)
				return (rc);
			if (w->final(info))
				break;
		}
		elapsed = spool__clock_ms(CLOCK_MONOTONIC) - start;
		if (timeout_ms >= 0 && elapsed >= timeout_ms) {
			*res = info;
			return (spool__error(q, SPOOL_ETIMEDOUT, "%s %lld is "
			    "still %s after %lld ms", w->what, (long long)id,
			    w->state(info), (long long)elapsed));
		}
		nap = pause;
		if (timeout_ms >= 0 && nap > timeout_ms - elapsed)
			nap = timeout_ms - elapsed;
		spool__sleep_us(1000 * nap);
		if ((pause *= 2) > WAIT_PAUSE_MAX_MS)
			pause = WAIT_PAUSE_MAX_MS;
		changed = dv < 0 || wait_data_version(q) != dv;
	}
	if (w->finish == NULL) {
		*res = info;
		return (SPOOL_OK);
	}
	w->release(info);
	return (w->finish(res, q, id));
}

/* ---- Tasks -------------------------------------------------------------- */

/* Read task id. */
static int
task_read(void **out, spool *q, int64_t id)
{
	spool_task_info	*t;
	int		 rc;

	rc = spool_task_get(&t, q, id);
	*out = t;
	return (rc);
}

/* Succeeded, dead and cancelled are final. */
static int
task_final(const void *info)
{
	int	 s = ((const spool_task_info *)info)->state;

	return (s == SPOOL_SUCCEEDED || s == SPOOL_DEAD ||
	    s == SPOOL_CANCELLED);
}

/* The task's state, for the timeout message. */
static const char *
task_state(const void *info)
{
	return (spool_state_name(((const spool_task_info *)info)->state));
}

/* Free one task. */
static void
task_release(void *info)
{
	spool_task_info_free(info, 1);
}

/* Wait for task id to be succeeded, dead or cancelled. */
int
spool_task_wait(spool_task_info **out, spool *q, int64_t id,
    int64_t timeout_ms)
{
	static const struct waiter w = { "task", "spool_task_wait",
	    task_read, task_final, task_state, task_release, NULL };
	void	*info = NULL;
	int	 rc;

	rc = wait_for(out != NULL ? &info : NULL, q, id, timeout_ms, &w);
	if (out != NULL)
		*out = info;
	return (rc);
}

/* ---- Batches ------------------------------------------------------------ */

/* Read batch id. */
static int
batch_read(void **out, spool *q, int64_t id)
{
	spool_batch_info	*b;
	int			 rc;

	rc = spool_batch_get(&b, q, id);
	*out = b;
	return (rc);
}

/* Only a finished batch is final. */
static int
batch_final(const void *info)
{
	return (((const spool_batch_info *)info)->state ==
	    SPOOL_BATCH_FINISHED);
}

/* The batch's state, for the timeout message. */
static const char *
batch_state(const void *info)
{
	return (spool_batch_state_name(((const spool_batch_info *)info)->state));
}

/* Free one batch. */
static void
batch_release(void *info)
{
	spool_batch_info_free(info, 1);
}

/* Wait for batch id to be finished. */
int
spool_batch_wait(spool_batch_info **out, spool *q, int64_t id,
    int64_t timeout_ms)
{
	static const struct waiter w = { "batch", "spool_batch_wait",
	    batch_read, batch_final, batch_state, batch_release, NULL };
	void	*info = NULL;
	int	 rc;

	rc = wait_for(out != NULL ? &info : NULL, q, id, timeout_ms, &w);
	if (out != NULL)
		*out = info;
	return (rc);
}

/* ---- Pipeline runs ------------------------------------------------------ */

/* A run without its stages: a list of one, cheaper than spool_run_get. */
static int
run_read(void **out, spool *q, int64_t id)
{
	spool_run_list_opts o = SPOOL_RUN_LIST_OPTS_INIT;
	spool_run_info	*r = NULL;
	size_t		 n = 0;
	int		 rc;

	*out = NULL;
	o.after_id = id - 1;
	o.limit = 1;
	if ((rc = spool_run_list(&r, &n, q, &o)) != SPOOL_OK)
		return (rc);
	if (n == 0 || r->id != id) {
		spool_run_info_free(r, n);
		return (spool__error(q, SPOOL_ENOENT, "no such run: %lld",
		    (long long)id));
	}
	*out = r;
	return (SPOOL_OK);
}

/* Only a finished run is final. */
static int
run_final(const void *info)
{
	return (((const spool_run_info *)info)->state == SPOOL_RUN_FINISHED);
}

/* The run's state, for the timeout message. */
static const char *
run_state(const void *info)
{
	return (spool_run_state_name(((const spool_run_info *)info)->state));
}

/* Free one run. */
static void
run_release(void *info)
{
	spool_run_info_free(info, 1);
}

/* The finished run in full, with its stages. */
static int
run_finish(void **out, spool *q, int64_t id)
{
	spool_run_info	*r;
	int		 rc;

	rc = spool_run_get(&r, q, id);
	*out = r;
	return (rc);
}

/* Wait for run id to be finished. */
int
spool_run_wait(spool_run_info **out, spool *q, int64_t id,
    int64_t timeout_ms)
{
	static const struct waiter w = { "run", "spool_run_wait",
	    run_read, run_final, run_state, run_release, run_finish };
	void	*info = NULL;
	int	 rc;

	rc = wait_for(out != NULL ? &info : NULL, q, id, timeout_ms, &w);
	if (out != NULL)
		*out = info;
	return (rc);
}
