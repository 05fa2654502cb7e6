/*
 * pool-metrics.c -- a pool's in-process metrics: the wait and run time
 * histograms (hist.c) and attempts per second over the last minute that
 * the engine records into under the pool's mutex, the snapshot
 * spool_pool_metrics_get takes of them, and the periodic summary line.
 * Nothing here touches the database.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"
#include "spool-int.h"

/* Count one attempt that ended at now_ms, a success or a failure. */
void
spool__rate_add(struct spool__rate *r, int64_t now_ms, int ok)
{
	int64_t	 sec = now_ms / 1000;
	int	 i = (int)(sec % SPOOL__RATE_SLOTS);

	if (r->sec[i] != sec) {
		r->sec[i] = sec;
		r->ok[i] = r->bad[i] = 0;
	}
	if (ok)
		r->ok[i]++;
	else
		r->bad[i]++;
}

/* The last SPOOL_RATE_SECONDS seconds up to now_ms, oldest first. */
static void
rate_window(const struct spool__rate *r, int64_t now_ms, spool_pool_metrics *m)
{
	int64_t	 sec = now_ms / 1000, s;
	int	 k, i;

	m->succeeded_1m = m->failed_1m = 0;
	for (k = 0; k < SPOOL_RATE_SECONDS; k++) {
		s = sec - (SPOOL_RATE_SECONDS - 1) + k;
		i = (int)(((s % SPOOL__RATE_SLOTS) + SPOOL__RATE_SLOTS) %
		    SPOOL__RATE_SLOTS);
		m->succeeded_s[k] = r->sec[i] == s ? r->ok[i] : 0;
		m->failed_s[k] = r->sec[i] == s ? r->bad[i] : 0;
		m->succeeded_1m += m->succeeded_s[k];
		m->failed_1m += m->failed_s[k];
	}
}

/* Record what an attempt's handler did, once its outcome is committed.
 * Called with the pool's mutex held. */
void
spool__pool_observe(spool_pool *p, int kind, int64_t wait_ms, int64_t run_ms,
    int64_t now_ms)
{
	switch (kind) {
	case SPOOL_OUTCOME_SUCCEEDED:
	case SPOOL_OUTCOME_RETRYING:
	case SPOOL_OUTCOME_DEAD:
	case SPOOL_OUTCOME_CANCELLED:
		break;
	default:
		return;		/* refused or handed back: no attempt ran */
	}
	spool__hist_add(&p->pm.wait, wait_ms);
	spool__hist_add(&p->pm.run, run_ms);
	if (kind != SPOOL_OUTCOME_CANCELLED)
		spool__rate_add(&p->pm.rate, now_ms,
		    kind == SPOOL_OUTCOME_SUCCEEDED);
}

int
spool_pool_metrics_get(spool_pool_metrics *out, spool_pool *p)
{
	if (out == NULL)
		return (SPOOL_EINVAL);
	memset(out, 0, sizeof *out);
	if (p == NULL)
		return (SPOOL_EINVAL);
	(void)spool_pool_stats_get(&out->stats, p);
	pthread_mutex_lock(&p->mu);
	out->started_ms = p->started_ms;
	out->now_ms = spool__now_ms(p->q);
	out->wait = p->pm.wait;
	out->run = p->pm.run;
	rate_window(&p->pm.rate, out->now_ms, out);
	out->cpu_user_s = p->pm.cpu_user_s;
	out->cpu_system_s = p->pm.cpu_system_s;
	out->cpu_process = p->pm.cpu_process;
	out->rss_bytes = p->pm.rss_bytes;
	pthread_mutex_unlock(&p->mu);
	return (SPOOL_OK);
}

/* Pass one line to the pool's on_log, if it has one (a library does not
 * write to stderr unasked). */
void
spool__pool_say(spool_pool *p, const char *line)
{
	if (p->o.on_log != NULL)
		p->o.on_log(line, p->o.cb_arg);
}

/* The periodic summary line (spool_pool_opts.log_interval_ms): to on_log,
 * or to stderr in one write. */
void
spool__pool_log(spool_pool *p)
{
	spool_pool_metrics	 m;
	char			 line[512];
	double			 span;
	int			 n;

	spool_pool_metrics_get(&m, p);
	span = (double)(m.now_ms - m.started_ms) / 1000.0;
	if (span > SPOOL_RATE_SECONDS)
		span = SPOOL_RATE_SECONDS;
	if (span < 1)
		span = 1;
	n = snprintf(line, sizeof line, "last 60 s: %lld succeeded "
	    "(%.1f/s), %lld failed; since start: %lld claimed, %lld "
	    "succeeded, %lld retried, %lld dead, %lld lease lost; busy %d/%d, "
	    "prefetched %d; wait p95 %.0f ms; run p50 %.0f ms, p95 %.0f ms, "
	    "p99 %.0f ms; cpu %.2f cores, rss %.1f MiB",
	    (long long)m.succeeded_1m,
	    (double)m.succeeded_1m / span,
	    (long long)m.failed_1m, (long long)m.stats.claimed,
	    (long long)m.stats.succeeded, (long long)m.stats.retried,
	    (long long)m.stats.dead, (long long)m.stats.lease_lost,
	    m.stats.busy, m.stats.workers, m.stats.prefetched,
	    spool_histogram_quantile(&m.wait, 0.95),
	    spool_histogram_quantile(&m.run, 0.5),
	    spool_histogram_quantile(&m.run, 0.95),
	    spool_histogram_quantile(&m.run, 0.99), m.cpu_process,
	    (double)m.rss_bytes / (1024.0 * 1024.0));
	if (n < 0)
		return;
	if (p->o.on_log != NULL) {
		p->o.on_log(line, p->o.cb_arg);
		return;
	}
	if ((size_t)n > sizeof line - 9)
		n = (int)sizeof line - 9;
	memmove(line + 7, line, (size_t)n);
	memcpy(line, "spool: ", 7);
	line[n + 7] = '\n';
	(void)!write(2, line, (size_t)n + 8);
}
