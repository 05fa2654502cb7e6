/*
 * cmd-stats.c -- "spool stats [QUEUE]": per queue, tasks per state and
 * the age of the oldest due task, the counters kept since the queue was
 * first used, the last minute's throughput and run times, and the live
 * workers; as a table, JSON, or Prometheus's text format (version 0.0.4,
 * written by the library's spool_prometheus) for node_exporter's textfile
 * collector.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

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
	if (cmd_opt(c, "prometheus") != NULL) {
		spool_prometheus_opts	 po = SPOOL_PROMETHEUS_OPTS_INIT;
		char			*text;

		po.queue = argc > 0 ? argv[0] : NULL;
		if ((rc = spool_prometheus(&text, &len, c->q, NULL, &po)) != 0)
			return (cmd_fail(c, rc));
		fwrite(text, 1, len, stdout);
		free(text);
		return (EXIT_OK);
	}
	if ((rc = spool_metrics(&m, &n, c->q, argc > 0 ? argv[0] : NULL)) != 0)
		return (cmd_fail(c, rc));
	if (c->json) {
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
