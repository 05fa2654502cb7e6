/*
 * cmd-serve.c -- "spool serve --http ADDR:PORT": the HTTP server of
 * "spool work --http" (http.c) without workers, for a dashboard and
 * /metrics on a machine that only watches the queue.
 */
#include "config.h"

#include <unistd.h>

#include "cmd.h"
#include "http.h"

static const struct cmd_opt serve_opts[] = {
	{ "http", "ADDR:PORT", "listen here (default 127.0.0.1:8080; :0 any port)" },
	{ "http-write", NULL, "let POSTs retry, cancel, pause and resume" },
	{ NULL, NULL, NULL }
};

static int
serve_exec(struct cmd_ctx *c, int argc, char **argv)
{
	struct cmd_http	*h = NULL;
	const char	*addr = cmd_opt(c, "http");
	char		 err[256];
	int		 rc;

	(void)argc;
	(void)argv;
	/* Check the database the usual way, for the usual messages. */
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	spool_close(c->q);
	c->q = NULL;
	rc = cmd_http_new(&h, c->db_path, addr != NULL ? addr :
	    "127.0.0.1:8080", NULL, CMD_HTTP_SIGNALS | CMD_HTTP_REAP | (cmd_opt(c,
	    "http-write") != NULL ? CMD_HTTP_WRITE : 0), err, sizeof err);
	if (rc != EXIT_OK) {
		cmd_http_free(h);
		return (cmd_error(c, rc, "%s", err));
	}
	cmd_log_init(LOG_INFO);
	cmd_log("serve", LOG_INFO, "serving http://%s/ (pid %ld)%s",
	    cmd_http_where(h), (long)getpid(), cmd_opt(c, "http-write") !=
	    NULL ? " with writes" : "");
	rc = cmd_http_run(h);
	cmd_http_free(h);
	cmd_log("serve", LOG_INFO, "stopped");
	return (rc == 0 ? EXIT_OK : EXIT_SOFTWARE);
}

const struct spool_cmd cmd_serve = {
	.name = "serve",
	.usage = "",
	.summary = "serve metrics, JSON views and a dashboard over HTTP",
	.help =
	    "Serves until SIGINT or SIGTERM, on 127.0.0.1:8080 unless --http "
	    "says otherwise\n(':0' picks a free port; the log line on stderr "
	    "names it).  Pages:\n  /                the dashboard (refreshes "
	    "itself)\n"
	    "  /metrics         Prometheus text format 0.0.4\n"
	    "  /healthz         200 'ok' while the database answers, else "
	    "503\n"
	    "  /api/queues      per queue: states, counters, rates, "
	    "percentiles\n"
	    "  /api/tasks       ?queue=Q&state=S&order=desc&after=ID&limit=N\n"
	    "  /api/tasks/ID    one task with its result\n"
	    "  /api/workers     the workers table\n"
	    "  /api/batches     ?state=S&order=desc&after=ID&limit=N\n"
	    "  /api/runs        pipeline runs: "
	    "?pipeline=P&order=desc&after=ID&limit=N\n"
	    "Only GET and HEAD, unless --http-write: then POST "
	    "/api/tasks/ID/retry,\n/api/tasks/ID/cancel, "
	    "/api/queues/NAME/pause and /resume, each with the header\n"
	    "'X-Spool-Write: 1' (a browser page on another site cannot send "
	    "it).\n'spool work --http ADDR:PORT' serves the same pages from "
	    "the worker process,\nwith its own histograms, CPU and memory "
	    "added to /metrics.\nEvery second it reaps expired leases (a "
	    "worker that died leaves some), so\ntheir tasks are retried "
	    "without waiting for a worker to claim.\n",
	.opts = serve_opts,
	.exec = serve_exec
};
