/*
 * metrics.c -- what spool_metrics and spool_workers read: the per-queue
 * counters of schema 5, the last minute's throughput and its run and
 * wait percentiles from the finished tasks, and the workers table.
 *
 * Invariants: reads only; the costs are bounded whatever the size of
 * the file: counts and times come through tasks_finished, and at most
 * METRICS_SAMPLE tasks per queue are read for percentiles.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "spool-int.h"

#define METRICS_SAMPLE	10000

static int
cmp_int64(const void *a, const void *b)
{
	int64_t	 x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x < y ? -1 : x > y);
}

/* p50, p95, p99 of v[0..n) by nearest rank (v is sorted here). */
static void
percentiles(int64_t *v, size_t n, int64_t out[3])
{
	static const int	 pct[3] = { 50, 95, 99 };
	size_t			 i, rank;

	if (n == 0) {
		out[0] = out[1] = out[2] = -1;
		return;
	}
	qsort(v, n, sizeof *v, cmp_int64);
	for (i = 0; i < 3; i++) {
		rank = (n * (size_t)pct[i] + 99) / 100;	/* ceil */
		out[i] = v[rank > 0 ? rank - 1 : 0];
	}
}

/* Fill everything but stats for m (whose stats.queue is set). */
static int
metrics_queue(spool *q, spool_queue_metrics *m, int64_t now,
    int64_t *run, int64_t *wait)
{
	const char	*name = m->stats.queue;
	sqlite3_stmt	*st;
	size_t		 n = 0;
	int		 rc;

	st = spool__stmt(q, SPOOL_SQL_COUNTERS_GET);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		m->total.enqueued = sqlite3_column_int64(st, 0);
		m->total.claimed = sqlite3_column_int64(st, 1);
		m->total.succeeded = sqlite3_column_int64(st, 2);
		m->total.failed = sqlite3_column_int64(st, 3);
		m->total.retried = sqlite3_column_int64(st, 4);
		m->total.dead = sqlite3_column_int64(st, 5);
		m->total.expired = sqlite3_column_int64(st, 6);
		m->total.lease_lost = sqlite3_column_int64(st, 7);
		m->total.cancelled = sqlite3_column_int64(st, 8);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return (spool__store_error(q, rc, "metrics"));

	st = spool__stmt(q, SPOOL_SQL_METRICS_WINDOW);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now - SPOOL_METRICS_WINDOW_MS);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		m->succeeded_1m = sqlite3_column_int64(st, 0);
		m->dead_1m = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return (spool__store_error(q, rc, "metrics"));

	st = spool__stmt(q, SPOOL_SQL_METRICS_TIMES);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now - SPOOL_METRICS_WINDOW_MS);
	sqlite3_bind_int(st, 3, METRICS_SAMPLE);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < METRICS_SAMPLE) {
		run[n] = sqlite3_column_int64(st, 0);
		wait[n] = sqlite3_column_int64(st, 1);
		if (run[n] < 0)
			run[n] = 0;
		if (wait[n] < 0)
			wait[n] = 0;
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return (spool__store_error(q, rc, "metrics"));
	percentiles(run, n, m->run_ms);
	percentiles(wait, n, m->wait_ms);

	st = spool__stmt(q, SPOOL_SQL_METRICS_WORKERS);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now - SPOOL_WORKER_STALE_MS);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		m->workers = sqlite3_column_int(st, 0);
		m->concurrency = sqlite3_column_int(st, 1);
		m->busy = sqlite3_column_int(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return (spool__store_error(q, rc, "metrics"));
	return (SPOOL_OK);
}

int
spool_metrics(spool_queue_metrics **out, size_t *n, spool *q,
    const char *queue)
{
	spool_queue_stats	*s = NULL;
	spool_queue_metrics	*v = NULL;
	int64_t			*run = NULL, *wait = NULL, now;
	size_t			 ns = 0, i;
	int			 rc;

	if (out == NULL || n == NULL || q == NULL || q->db == NULL)
		return (spool__unusable(q));
	*out = NULL;
	*n = 0;
	if ((rc = spool_stats(&s, &ns, q, queue)) != SPOOL_OK)
		return (rc);
	if ((ns > 0 && (v = calloc(ns, sizeof *v)) == NULL) ||
	    (run = malloc(METRICS_SAMPLE * sizeof *run)) == NULL ||
	    (wait = malloc(METRICS_SAMPLE * sizeof *wait)) == NULL) {
		rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < ns; i++) {
		v[i].stats = s[i];
		s[i].queue = NULL;
	}
	if ((rc = spool__begin_read(q)) != SPOOL_OK)
		goto out;
	now = spool__now_ms(q);
	for (i = 0; i < ns && rc == SPOOL_OK; i++)
		rc = metrics_queue(q, &v[i], now, run, wait);
	spool__end_read(q);
	if (rc == SPOOL_OK) {
		*out = v;
		*n = ns;
		v = NULL;
	}
out:
	free(run);
	free(wait);
	spool_queue_stats_free(s, ns);
	spool_queue_metrics_free(v, ns);
	return (rc);
}

void
spool_queue_metrics_free(spool_queue_metrics *m, size_t n)
{
	size_t	 i;

	if (m == NULL)
		return;
	for (i = 0; i < n; i++)
		free(m[i].stats.queue);
	free(m);
}

int
spool_workers(spool_worker_info **out, size_t *n, spool *q)
{
	spool_worker_info	*v = NULL, *nv, *w;
	size_t			 len = 0, cap = 0;
	sqlite3_stmt		*st;
	int64_t			 now;
	int			 rc;

	if (out == NULL || n == NULL || q == NULL || q->db == NULL)
		return (spool__unusable(q));
	*out = NULL;
	*n = 0;
	spool__clear_error(q);
	now = spool__now_ms(q);
	st = spool__stmt(q, SPOOL_SQL_WORKERS_LIST);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = spool__grow(v, &cap, len, sizeof *v)) == NULL)
			goto nomem;
		v = nv;
		w = &v[len++];
		memset(w, 0, sizeof *w);
		w->pid = (long)sqlite3_column_int64(st, 2);
		w->concurrency = sqlite3_column_int(st, 4);
		w->busy = sqlite3_column_int(st, 5);
		w->started_ms = sqlite3_column_int64(st, 6);
		w->heartbeat_ms = sqlite3_column_int64(st, 7);
		w->stale = now - w->heartbeat_ms > SPOOL_WORKER_STALE_MS;
		if ((w->id = spool__col_strdup(st, 0)) == NULL ||
		    (w->host = spool__col_strdup(st, 1)) == NULL ||
		    (w->queues = spool__col_strdup(st, 3)) == NULL)
			goto nomem;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		spool_worker_info_free(v, len);
		return (spool__store_error(q, rc, "list workers"));
	}
	*out = v;
	*n = len;
	return (SPOOL_OK);
nomem:
	sqlite3_reset(st);
	spool_worker_info_free(v, len);
	return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
}

void
spool_worker_info_free(spool_worker_info *w, size_t n)
{
	size_t	 i;

	if (w == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(w[i].id);
		free(w[i].host);
		free(w[i].queues);
	}
	free(w);
}
