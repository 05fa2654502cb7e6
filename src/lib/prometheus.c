/*
 * prometheus.c -- the metrics of a database's queues and of a pool, in
 * Prometheus's text exposition format (version 0.0.4): what "spool stats
 * --prometheus" prints and a worker's /metrics serves.
 */
#include "config.h"

#include <locale.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "spool-int.h"

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void
prom_label(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void
prom_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
prom_sample(FILE *f, const char *name, const char *queue, const char *k,
    const char *v, double x)
{
	fprintf(f, "%s{queue=\"", name);
	prom_label(f, queue);
	if (k != NULL)
		fprintf(f, "\",%s=\"%s", k, v);
	if (x == (double)(int64_t)x)
		fprintf(f, "\"} %lld\n", (long long)x);
	else
		fprintf(f, "\"} %.3f\n", x);
}

/* The metrics of every queue in m, in Prometheus's text format. */
static void
prom_queues(FILE *f, const spool_queue_metrics *m, size_t n)
{
	static const struct {
		const char	*name;
		size_t		 off;
		const char	*help;
	} ctr[] = {
#define C(f, h) { "spool_" #f "_total", offsetof(spool_queue_counters, f), h }
		C(enqueued, "Tasks added to the queue."),
		C(claimed, "Attempts started."),
		C(succeeded, "Attempts that succeeded."),
		C(failed, "Attempts that failed or timed out."),
		C(retried, "Tasks made ready again by their retry policy."),
		C(dead, "Tasks that died: failed for good, attempts used up, or expired."),
		C(expired, "Tasks that died because their deadline passed first."),
		C(lease_lost, "Attempts whose lease expired (their worker died or hung)."),
		C(cancelled, "Tasks cancelled."),
#undef C
	};
	static const char *const q[3] = { "0.5", "0.95", "0.99" };
	size_t	 i, k;

	prom_head(f, "spool_tasks", "gauge", "Tasks of the queue in each "
	    "state now (scheduled: ready but due later; claimed: leased, not "
	    "started; expired: lease ran out, not reaped).");
	for (i = 0; i < n; i++) {
		const spool_queue_stats	*s = &m[i].stats;

		prom_sample(f, "spool_tasks", s->queue, "state", "ready",
		    (double)s->ready);
		prom_sample(f, "spool_tasks", s->queue, "state", "scheduled",
		    (double)s->scheduled);
		prom_sample(f, "spool_tasks", s->queue, "state", "claimed",
		    (double)s->claimed);
		prom_sample(f, "spool_tasks", s->queue, "state", "running",
		    (double)s->running);
		prom_sample(f, "spool_tasks", s->queue, "state", "expired",
		    (double)s->expired);
		prom_sample(f, "spool_tasks", s->queue, "state", "succeeded",
		    (double)s->succeeded);
		prom_sample(f, "spool_tasks", s->queue, "state", "dead",
		    (double)s->dead);
		prom_sample(f, "spool_tasks", s->queue, "state", "cancelled",
		    (double)s->cancelled);
	}
	prom_head(f, "spool_oldest_ready_age_seconds", "gauge", "How long the "
	    "longest-due ready task has been due (0 if none is).");
	for (i = 0; i < n; i++)
		prom_sample(f, "spool_oldest_ready_age_seconds",
		    m[i].stats.queue, NULL, NULL,
		    m[i].stats.oldest_ready_age_ms < 0 ? 0 :
		    m[i].stats.oldest_ready_age_ms / 1000.0);
	prom_head(f, "spool_queue_paused", "gauge", "1 if claims from the "
	    "queue are paused.");
	for (i = 0; i < n; i++)
		prom_sample(f, "spool_queue_paused", m[i].stats.queue, NULL,
		    NULL, m[i].stats.paused);
	for (k = 0; k < sizeof ctr / sizeof ctr[0]; k++) {
		prom_head(f, ctr[k].name, "counter", ctr[k].help);
		for (i = 0; i < n; i++)
			prom_sample(f, ctr[k].name, m[i].stats.queue, NULL,
			    NULL, (double)*(const int64_t *)(const void *)
			    ((const char *)&m[i].total + ctr[k].off));
	}
	prom_head(f, "spool_succeeded_last_minute", "gauge", "Tasks that "
	    "succeeded in the last 60 seconds.");
	for (i = 0; i < n; i++)
		prom_sample(f, "spool_succeeded_last_minute", m[i].stats.queue,
		    NULL, NULL, (double)m[i].succeeded_1m);
	prom_head(f, "spool_dead_last_minute", "gauge", "Tasks that died in "
	    "the last 60 seconds.");
	for (i = 0; i < n; i++)
		prom_sample(f, "spool_dead_last_minute", m[i].stats.queue, NULL,
		    NULL, (double)m[i].dead_1m);
	prom_head(f, "spool_run_seconds", "gauge", "Run time of the tasks "
	    "that succeeded in the last minute, by quantile.");
	for (i = 0; i < n; i++)
		for (k = 0; k < 3 && m[i].run_ms[k] >= 0; k++)
			prom_sample(f, "spool_run_seconds", m[i].stats.queue,
			    "quantile", q[k], m[i].run_ms[k] / 1000.0);
	prom_head(f, "spool_wait_seconds", "gauge", "Wait (due to start) of "
	    "the tasks that succeeded in the last minute, by quantile.");
	for (i = 0; i < n; i++)
		for (k = 0; k < 3 && m[i].wait_ms[k] >= 0; k++)
			prom_sample(f, "spool_wait_seconds", m[i].stats.queue,
			    "quantile", q[k], m[i].wait_ms[k] / 1000.0);
	prom_head(f, "spool_workers", "gauge", "Live worker processes "
	    "serving the queue.");
	for (i = 0; i < n; i++)
		prom_sample(f, "spool_workers", m[i].stats.queue, NULL, NULL,
		    m[i].workers);
	prom_head(f, "spool_worker_threads", "gauge", "Threads of the live "
	    "workers serving the queue, busy or idle.");
	for (i = 0; i < n; i++) {
		prom_sample(f, "spool_worker_threads", m[i].stats.queue,
		    "status", "busy", m[i].busy);
		prom_sample(f, "spool_worker_threads", m[i].stats.queue,
		    "status", "idle", m[i].concurrency > m[i].busy ?
		    m[i].concurrency - m[i].busy : 0);
	}
}

/* One histogram, in seconds: cumulative buckets, their sum and count. */
static void
prom_histogram(FILE *f, const char *name, const char *help,
    const spool_histogram *hg)
{
	int	 i;

	prom_head(f, name, "histogram", help);
	for (i = 0; i < SPOOL_HIST_BUCKETS; i++) {
		if (hg->le_ms[i] == INT64_MAX)
			fprintf(f, "%s_bucket{le=\"+Inf\"} %lld\n", name,
			    (long long)hg->count[i]);
		else
			fprintf(f, "%s_bucket{le=\"%g\"} %lld\n", name,
			    (double)hg->le_ms[i] / 1000.0,
			    (long long)hg->count[i]);
	}
	fprintf(f, "%s_sum %.3f\n%s_count %lld\n", name,
	    (double)hg->sum_ms / 1000.0, name, (long long)hg->n);
}

/* A gauge or counter without labels: a count, or seconds to the ms. */
static void
prom_value(FILE *f, const char *name, const char *type, const char *help,
    int64_t n)
{
	prom_head(f, name, type, help);
	fprintf(f, "%s %lld\n", name, (long long)n);
}

static void
prom_seconds(FILE *f, const char *name, const char *type, const char *help,
    double s)
{
	prom_head(f, name, type, help);
	fprintf(f, "%s %.3f\n", name, s);
}

/* The in-process figures of a worker's pool (the HTTP server adds them
 * after the database's). */
static void
prom_pool(FILE *f, const spool_pool_metrics *m)
{
	prom_histogram(f, "spool_pool_wait_seconds", "Time from due to "
	    "handler start of the attempts this process ran.", &m->wait);
	prom_histogram(f, "spool_pool_run_seconds", "Run time of the "
	    "attempts this process ran.", &m->run);
	prom_value(f, "spool_pool_succeeded_last_minute", "gauge", "Attempts "
	    "this process ran that succeeded in the last 60 s.",
	    m->succeeded_1m);
	prom_value(f, "spool_pool_failed_last_minute", "gauge", "Attempts "
	    "this process ran that failed in the last 60 s.", m->failed_1m);
	prom_head(f, "spool_pool_threads", "gauge", "Worker threads of this "
	    "process.");
	fprintf(f, "spool_pool_threads{status=\"busy\"} %d\n"
	    "spool_pool_threads{status=\"idle\"} %d\n", m->stats.busy,
	    m->stats.workers > m->stats.busy ? m->stats.workers -
	    m->stats.busy : 0);
	prom_value(f, "spool_pool_commit_blocked", "gauge", "1 while this "
	    "process cannot commit outcomes (disk full, I/O errors, a lock "
	    "held) and so starts no task.", m->stats.holding);
	prom_value(f, "spool_pool_outcomes_held", "gauge", "Attempts this "
	    "process finished whose outcomes are not committed yet.",
	    m->stats.held);
	prom_seconds(f, "process_cpu_seconds_total", "counter", "User and "
	    "system CPU time spent.", m->cpu_user_s + m->cpu_system_s);
	prom_value(f, "process_resident_memory_bytes", "gauge", "Resident "
	    "memory size.", m->rss_bytes);
	prom_seconds(f, "process_start_time_seconds", "gauge", "Start time of "
	    "the pool since the Unix epoch.", (double)m->started_ms / 1000.0);
}

int
spool_prometheus(char **out, size_t *len, spool *q, spool_pool *pool,
    const spool_prometheus_opts *opts)
{
	static const spool_prometheus_opts	 dflt = SPOOL_PROMETHEUS_OPTS_INIT;
	spool_queue_metrics	*m = NULL;
	spool_pool_metrics	 pm;
	locale_t		 c_num, was;
	FILE			*f;
	char			*buf = NULL;
	size_t			 n = 0, blen = 0;
	int			 rc, bad;

	if (out != NULL)
		*out = NULL;
	if (len != NULL)
		*len = 0;
	if (opts == NULL)
		opts = &dflt;
	if (q != NULL && q->db == NULL)
		return (spool__unusable(q));
	if (q != NULL)
		spool__clear_error(q);	/* (spool__error ignores a NULL q) */
	if (out == NULL || len == NULL || (q == NULL && pool == NULL))
		return (spool__error(q, SPOOL_EINVAL, "spool_prometheus: NULL "
		    "out or len, or both q and pool"));
	if (opts->version < 1)
		return (spool__error(q, SPOOL_EINVAL, "spool_prometheus_opts: "
		    "version not set (use SPOOL_PROMETHEUS_OPTS_INIT)"));
	if ((rc = spool__check_version(q, "spool_prometheus_opts",
	    opts->version, SPOOL_PROMETHEUS_OPTS_VERSION)) != SPOOL_OK)
		return (rc);
	if (q != NULL && (rc = spool_metrics(&m, &n, q, opts->queue)) !=
	    SPOOL_OK)
		return (rc);
	if (pool != NULL && (rc = spool_pool_metrics_get(&pm, pool)) !=
	    SPOOL_OK) {
		spool_queue_metrics_free(m, n);
		return (rc);
	}
	/* The format's numbers have a '.', whatever LC_NUMERIC the program
	 * set: this thread writes them in the C locale. */
	if ((c_num = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0)) ==
	    (locale_t)0) {
		spool_queue_metrics_free(m, n);
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	}
	if ((f = open_memstream(&buf, &blen)) == NULL) {
		freelocale(c_num);
		spool_queue_metrics_free(m, n);
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	}
	was = uselocale(c_num);
	if (q != NULL)
		prom_queues(f, m, n);
	if (pool != NULL)
		prom_pool(f, &pm);
	uselocale(was);
	freelocale(c_num);
	spool_queue_metrics_free(m, n);
	bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		free(buf);
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	}
	*out = buf;
	*len = blen;
	return (SPOOL_OK);
}
