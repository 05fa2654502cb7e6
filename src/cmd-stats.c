/*
 * cmd-stats.c -- "spool stats [QUEUE]": per queue, tasks per state and
 * the age of the oldest due task, the counters kept since the queue was
 * first used, the last minute's throughput and run times, and the live
 * workers; as a table, JSON, or Prometheus's text format (version 0.0.4)
 * for node_exporter's textfile collector.
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "cmd.h"

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
void
cmd_prometheus(FILE *f, const spool_queue_metrics *m, size_t n)
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
void
cmd_prometheus_pool(FILE *f, const spool_pool_metrics *m)
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

/* "key": {"p50": ..., "p95": ..., "p99": ...}, null where unknown (< 0). */
static void
json_percentiles(struct json *j, const char *key, const int64_t v[3])
{
	static const char *const	 pk[3] = { "p50", "p95", "p99" };
	int				 k;

	json_key(j, key);
	json_open(j, '{');
	for (k = 0; k < 3; k++) {
		json_key(j, pk[k]);
		if (v[k] < 0)
			json_null(j);
		else
			json_int(j, v[k]);
	}
	json_close(j, '}');
}

/* One queue's metrics as a JSON object (shared with http.c). */
void
cmd_json_queue_metrics(struct json *j, const spool_queue_metrics *m)
{
	const spool_queue_stats		*s = &m->stats;
	const spool_queue_counters	*t = &m->total;

	json_open(j, '{');
	json_kv_str(j, "queue", s->queue);
	json_key(j, "paused");
	json_bool(j, s->paused);
	json_kv_int(j, "ready", s->ready);
	json_kv_int(j, "scheduled", s->scheduled);
	json_kv_int(j, "claimed", s->claimed);
	json_kv_int(j, "running", s->running);
	json_kv_int(j, "expired", s->expired);
	json_kv_int(j, "succeeded", s->succeeded);
	json_kv_int(j, "dead", s->dead);
	json_kv_int(j, "cancelled", s->cancelled);
	json_key(j, "oldest_ready_age_ms");
	if (s->oldest_ready_age_ms < 0)
		json_null(j);
	else
		json_int(j, s->oldest_ready_age_ms);
	json_key(j, "counters");
	json_open(j, '{');
	json_kv_int(j, "enqueued", t->enqueued);
	json_kv_int(j, "claimed", t->claimed);
	json_kv_int(j, "succeeded", t->succeeded);
	json_kv_int(j, "failed", t->failed);
	json_kv_int(j, "retried", t->retried);
	json_kv_int(j, "dead", t->dead);
	json_kv_int(j, "expired", t->expired);
	json_kv_int(j, "lease_lost", t->lease_lost);
	json_kv_int(j, "cancelled", t->cancelled);
	json_close(j, '}');
	json_kv_int(j, "succeeded_last_minute", m->succeeded_1m);
	json_kv_int(j, "dead_last_minute", m->dead_1m);
	json_percentiles(j, "run_ms", m->run_ms);
	json_percentiles(j, "wait_ms", m->wait_ms);
	json_kv_int(j, "workers", m->workers);
	json_kv_int(j, "worker_threads", m->concurrency);
	json_kv_int(j, "worker_busy", m->busy);
	json_close(j, '}');
}

/* The text table's last column: paused, and leased tasks that are not
 * running (claimed ahead of a thread, or an expired lease). */
static const char *
stats_note(char *buf, size_t len, const spool_queue_stats *s)
{
	size_t	 off = 0;

	buf[0] = '\0';
	if (s->paused)
		off += (size_t)snprintf(buf, len, "paused");
	if (s->claimed > 0 && off < len)
		off += (size_t)snprintf(buf + off, len - off, "%s%lld claimed",
		    off ? ", " : "", (long long)s->claimed);
	if (s->expired > 0 && off < len)
		snprintf(buf + off, len - off, "%s%lld expired", off ? ", " : "",
		    (long long)s->expired);
	return (buf);
}

static const struct cmd_opt stats_opts[] = {
	{ "prometheus", NULL, "print Prometheus's text format (0.0.4)" },
	{ NULL, NULL, NULL }
};

static int
stats_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_queue_metrics	*m = NULL;
	struct json		 j;
	char			 age[32], p95[32], note[96];
	size_t			 n, i, len;
	int			 rc;

	if (c->json && cmd_opt(c, "prometheus") != NULL)
		return (cmd_usage_error(c, "give --json or --prometheus, not "
		    "both"));
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_metrics(&m, &n, c->q, argc > 0 ? argv[0] : NULL)) != 0)
		return (cmd_fail(c, rc));
	if (cmd_opt(c, "prometheus") != NULL)
		cmd_prometheus(stdout, m, n);
	else if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '[');
		for (i = 0; i < n; i++)
			cmd_json_queue_metrics(&j, &m[i]);
		json_close(&j, ']');
		json_end(&j);
	} else {
		printf("%-16s %7s %7s %7s %9s %6s %6s %7s %7s %7s %s\n", "QUEUE",
		    "READY", "SCHED", "RUNNING", "SUCCEEDED", "DEAD", "CANCEL",
		    "OLDEST", "OK/MIN", "P95 RUN", "");
		for (i = 0; i < n; i++) {
			const spool_queue_stats	*s = &m[i].stats;

			cmd_fmt_age(age, sizeof age, s->oldest_ready_age_ms);
			cmd_fmt_age(p95, sizeof p95, m[i].run_ms[1]);
			len = strlen(s->queue);
			cmd_print_text(stdout, s->queue, len, 16);
			printf("%*s %7lld %7lld %7lld %9lld %6lld %6lld %7s %7lld "
			    "%7s %s\n", len < 16 ? (int)(16 - len) : 0, "",
			    (long long)s->ready, (long long)s->scheduled,
			    (long long)s->running, (long long)s->succeeded,
			    (long long)s->dead, (long long)s->cancelled, age,
			    (long long)m[i].succeeded_1m, p95,
			    stats_note(note, sizeof note, s));
		}
	}
	spool_queue_metrics_free(m, n);
	return (EXIT_OK);
}

const struct spool_cmd cmd_stats = {
	.name = "stats",
	.usage = "[QUEUE]",
	.summary = "tasks per state, counters and rates, per queue",
	.help =
	    "READY tasks are due now, SCHED(uled) ones later; RUNNING ones "
	    "have started\nunder a live lease (the last column counts those "
	    "claimed by a worker and not\nstarted yet, and those whose lease "
	    "expired with no process to reap it yet).\nOLDEST is how long the "
	    "longest-waiting due task has been due; OK/MIN counts\nthe tasks "
	    "that succeeded in the last minute, and P95 RUN is the 95th "
	    "percentile\nof their run times.\n--json adds the counters kept "
	    "since the queue was first used (enqueued,\nclaimed, succeeded, "
	    "failed, retried, dead, expired, lease_lost, cancelled),\n"
	    "p50/p95/p99 of run time and wait, and the live workers.  "
	    "--prometheus prints\nall of it in Prometheus's text format, for "
	    "node_exporter's textfile collector:\n  spool stats --prometheus "
	    "> /var/lib/node_exporter/spool.prom.$$ &&\n    mv "
	    "/var/lib/node_exporter/spool.prom.$$ "
	    "/var/lib/node_exporter/spool.prom\n",
	.opts = stats_opts,
	.max_args = 1,
	.exec = stats_exec
};
