/*
 * cmd-workers.c -- "spool workers": the worker processes that have a row
 * in the workers table (each refreshes it every tick), live or stale.
 */
#include "config.h"

#include <string.h>

#include "cmd.h"

/* A worker's queues as the JSON array its row holds, ["a","b"], into buf
 * (cut to fit): what the text outputs show. */
void
cmd_worker_queues(char *buf, size_t len, const spool_worker_info *w)
{
	const char	*s;
	size_t		 i, off = 0;

#define PUT(c) do { if (off + 1 < len) buf[off++] = (c); } while (0)
	PUT('[');
	for (i = 0; i < w->nqueues; i++) {
		if (i > 0)
			PUT(',');
		PUT('"');
		for (s = w->queues[i]; *s != '\0'; s++) {
			if (*s == '"' || *s == '\\')
				PUT('\\');
			PUT(*s);
		}
		PUT('"');
	}
	PUT(']');
#undef PUT
	if (len > 0)
		buf[off] = '\0';
}

/* One worker row as a JSON object (shared with http.c). */
void
cmd_json_worker(struct json *j, const spool_worker_info *w)
{
	size_t	 i;

	json_open(j, '{');
	json_kv_str(j, "id", w->id);
	json_kv_str(j, "host", w->host);
	json_kv_int(j, "pid", w->pid);
	json_key(j, "queues");
	json_open(j, '[');
	for (i = 0; i < w->nqueues; i++)
		json_str(j, w->queues[i]);
	json_close(j, ']');
	json_kv_int(j, "concurrency", w->concurrency);
	json_kv_int(j, "busy", w->busy);
	json_kv_time(j, "started_ms", w->started_ms);
	json_kv_time(j, "heartbeat_ms", w->heartbeat_ms);
	json_key(j, "stale");
	json_bool(j, w->stale);
	json_close(j, '}');
}

static int
workers_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_worker_info	*w = NULL;
	struct json		 j;
	char			 started[32], beat[32], busy[32], qs[4096];
	int64_t			 now = cmd_now_ms();
	size_t			 n, i;
	int			 rc;

	(void)argc;
	(void)argv;
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = cmd_workers_all(c->q, &w, &n)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_key(&j, "workers");
		json_open(&j, '[');
		for (i = 0; i < n; i++)
			cmd_json_worker(&j, &w[i]);
		json_close(&j, ']');
		json_close(&j, '}');
		json_end(&j);
	} else {
		printf("%-16s %7s %9s %-19s %9s %-5s  %s\n", "HOST", "PID",
		    "BUSY", "STARTED (UTC)", "HEARTBEAT", "", "QUEUES");
		for (i = 0; i < n; i++) {
			cmd_fmt_time(started, sizeof started, w[i].started_ms);
			started[19] = '\0';	/* no milliseconds */
			cmd_fmt_age(beat, sizeof beat, now - w[i].heartbeat_ms);
			snprintf(busy, sizeof busy, "%d/%d", w[i].busy,
			    w[i].concurrency);
			printf("%-16.16s %7ld %9s %-19s %9s %-5s  ", w[i].host,
			    w[i].pid, busy, started, beat,
			    w[i].stale ? "STALE" : "");
			cmd_worker_queues(qs, sizeof qs, &w[i]);
			cmd_print_text(stdout, qs, strlen(qs), 200);
			putchar('\n');
		}
	}
	spool_worker_info_free(w, n);
	return (EXIT_OK);
}

const struct spool_cmd cmd_workers = {
	.name = "workers",
	.usage = "",
	.summary = "list worker processes: busy threads, heartbeat",
	.help =
	    "Each 'spool work' (or library pool) keeps a row, refreshed every "
	    "second, and\ndeletes it when it stops.  HEARTBEAT is the age of "
	    "that refresh; a row not\nrefreshed for 10 s is marked STALE (its "
	    "process died or hangs) and goes after\n5 minutes.\n",
	.exec = workers_exec
};
