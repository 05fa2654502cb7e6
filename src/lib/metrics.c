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
#include "query-gen.h"

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
	const char				*name = m->stats.queue;
	struct spool__q_counters_get_row	 tot;
	struct spool__q_metrics_window_row	 win;
	struct spool__q_metrics_times_row	 t;
	struct spool__q_metrics_workers_row	 wk;
	struct spool__cur			 c;
	size_t					 n = 0;
	int					 rc;

	if ((rc = spool__q_counters_get(q, &c, &(struct spool__q_counters_get_in){
	    .queue = name })) != SPOOL_OK ||
	    (rc = spool__q_counters_get_next(&c, &tot)) < 0)
		return (rc);
	if (rc == 1) {
		m->total.enqueued = tot.enqueued;
		m->total.claimed = tot.claimed;
		m->total.succeeded = tot.succeeded;
		m->total.failed = tot.failed;
		m->total.retried = tot.retried;
		m->total.dead = tot.dead;
		m->total.expired = tot.expired;
		m->total.lease_lost = tot.lease_lost;
		m->total.cancelled = tot.cancelled;
	}
	spool__cur_end(&c);

	if ((rc = spool__q_metrics_window(q, &c,
	    &(struct spool__q_metrics_window_in){ .queue = name,
	    .since_ms = now - SPOOL_METRICS_WINDOW_MS })) != SPOOL_OK ||
	    (rc = spool__q_metrics_window_next(&c, &win)) < 0)
		return (rc);
	if (rc == 1) {
		m->succeeded_1m = win.succeeded;
		m->dead_1m = win.dead;
	}
	spool__cur_end(&c);

	if ((rc = spool__q_metrics_times(q, &c,
	    &(struct spool__q_metrics_times_in){ .queue = name,
	    .since_ms = now - SPOOL_METRICS_WINDOW_MS,
	    .max = METRICS_SAMPLE })) != SPOOL_OK)
		return (rc);
	while (n < METRICS_SAMPLE &&
	    (rc = spool__q_metrics_times_next(&c, &t)) == 1) {
		run[n] = t.run_ms < 0 ? 0 : t.run_ms;
		wait[n] = t.wait_ms < 0 ? 0 : t.wait_ms;
		n++;
	}
	spool__cur_end(&c);
	if (rc < 0)
		return (rc);
	percentiles(run, n, m->run_ms);
	percentiles(wait, n, m->wait_ms);

	if ((rc = spool__q_metrics_workers(q, &c,
	    &(struct spool__q_metrics_workers_in){ .queue = name,
	    .since_ms = now - SPOOL_WORKER_STALE_MS })) != SPOOL_OK ||
	    (rc = spool__q_metrics_workers_next(&c, &wk)) < 0)
		return (rc);
	if (rc == 1) {
		m->workers = (int)wk.workers;
		m->concurrency = (int)wk.concurrency;
		m->busy = (int)wk.busy;
	}
	spool__cur_end(&c);
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

/* Split a worker's queue names, as workers_list joins them (by char 31;
 * NULL: none), into w->queues and w->nqueues.  SPOOL_ENOMEM, with what
 * was copied left for spool_worker_info_free, if memory runs out. */
static int
worker_queues(spool_worker_info *w, const char *joined)
{
	const char	*p, *end;
	size_t		 n = 1;

	if (joined == NULL)
		return (SPOOL_OK);
	for (p = joined; (p = strchr(p, '\037')) != NULL; p++)
		n++;
	if ((w->queues = calloc(n, sizeof *w->queues)) == NULL)
		return (SPOOL_ENOMEM);
	for (p = joined; w->nqueues < n; p = end + 1) {
		if ((end = strchr(p, '\037')) == NULL)
			end = p + strlen(p);
		if ((w->queues[w->nqueues] = spool__memdup(p,
		    (size_t)(end - p))) == NULL)
			return (SPOOL_ENOMEM);
		w->nqueues++;
	}
	return (SPOOL_OK);
}

/* One keyset page of the workers, by id. */
int
spool_workers(spool_worker_info **out, size_t *n, spool *q,
    const spool_worker_list_opts *opts)
{
	spool_worker_list_opts			 none =
	    SPOOL_WORKER_LIST_OPTS_INIT;
	struct spool__q_workers_list_row	 r;
	struct spool__cur			 c;
	spool_worker_info			*v = NULL, *nv, *w;
	size_t					 len = 0, cap = 0, limit;
	int64_t					 now;
	int					 rc;

	if (out != NULL)
		*out = NULL;
	if (opts == NULL)
		opts = &none;
	if ((rc = spool__list_begin(q, out == NULL, n, "spool_worker_list_opts",
	    opts->version, SPOOL_WORKER_LIST_OPTS_VERSION, opts->limit, &limit)) != SPOOL_OK)
		return (rc);
	now = spool__now_ms(q);
	if (opts->descending)
		rc = spool__q_workers_list_desc(q, &c,
		    &(struct spool__q_workers_list_desc_in){
		    .before = opts->after, .max = (int64_t)limit });
	else
		rc = spool__q_workers_list(q, &c,
		    &(struct spool__q_workers_list_in){ .after = opts->after,
		    .max = (int64_t)limit });
	if (rc != SPOOL_OK)
		return (rc);
	/* workers_list_desc reads workers_list's columns (-- out: like). */
	while ((rc = opts->descending ? spool__q_workers_list_desc_next(&c, &r) :
	    spool__q_workers_list_next(&c, &r)) == 1) {
		if ((nv = spool__grow(v, &cap, len, sizeof *v)) == NULL)
			goto nomem;
		v = nv;
		w = &v[len++];
		memset(w, 0, sizeof *w);
		w->pid = (long)r.pid;
		w->concurrency = (int)r.concurrency;
		w->busy = (int)r.busy;
		w->started_ms = r.started_ms;
		w->heartbeat_ms = r.heartbeat_ms;
		w->stale = now - w->heartbeat_ms > SPOOL_WORKER_STALE_MS;
		if ((w->id = spool__strdup(r.id)) == NULL ||
		    (w->host = spool__strdup(r.host)) == NULL ||
		    worker_queues(w, r.queues) != SPOOL_OK)
			goto nomem;
	}
	if (rc < 0) {
		spool_worker_info_free(v, len);
		return (rc);
	}
	*out = v;
	*n = len;
	return (SPOOL_OK);
nomem:
	spool__cur_end(&c);
	spool_worker_info_free(v, len);
	return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
}

void
spool_worker_info_free(spool_worker_info *w, size_t n)
{
	size_t	 i, j;

	if (w == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(w[i].id);
		free(w[i].host);
		for (j = 0; j < w[i].nqueues; j++)
			free(w[i].queues[j]);
		free(w[i].queues);
	}
	free(w);
}
