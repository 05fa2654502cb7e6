/*
 * cmd-work.c -- "spool work QUEUE... --exec CMD [ARG...]": a worker pool
 * that runs CMD for each task (see exec.c), until a signal, or, for cron,
 * until nothing is due (--until-empty), a time or a count.
 *
 * Exit status: 0 every task it ran succeeded, 1 some attempt failed (the
 * summary counts them), 75 it could not start (lock held, busy).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "http.h"

static const struct cmd_opt work_opts[] = {
	{ "exec", "CMD [ARG...]", "run CMD per task: the rest of the line, no shell" },
	{ "concurrency", "N", "commands at once (default 4)" },
	{ "min", "N", "threads kept when idle (with --max)" },
	{ "max", "N", "threads at most, grown on backlog (with --min)" },
	{ "prefetch", "N", "tasks claimed ahead of idle threads, at most (default: sized by the engine)" },
	{ "lease", "DURATION", "lease of a claim (default: the queue's)" },
	{ "timeout", "DURATION", "run time limit per task (default: the queue's)" },
	{ "grace", "DURATION", "from SIGTERM to SIGKILL of a command (default 5s)" },
	{ "shutdown-timeout", "DURATION", "on SIGTERM, wait for running tasks (30s)" },
	{ "strategy", "NAME", "merge, priority, weighted or round-robin" },
	{ "weights", "W,W,...", "for weighted: one weight per queue" },
	{ "until-empty", NULL, "exit when nothing is due and nothing runs" },
	{ "max-time", "DURATION", "stop claiming after DURATION, then finish" },
	{ "max-tasks", "N", "stop claiming after N tasks, then finish" },
	{ "exclusive", "NAME", "hold lock NAME; if another run holds it, exit 75" },
	{ "cpu-max", "PERCENT", "pause claims while machine CPU use is above" },
	{ "env", "NAME,...", "also pass these environment variables" },
	{ "quiet", NULL, "no progress line on a terminal" },
	{ "log-level", "LEVEL", "error, warning, notice, info (default) or debug" },
	{ "log-interval", "DURATION", "a summary line this often (60s; 0: none)" },
	{ "http", "ADDR:PORT", "serve metrics, JSON and a dashboard (see serve)" },
	{ "http-write", NULL, "let HTTP POSTs retry, cancel, pause, resume" },
	{ "pipeline", "NAME", "work pipeline NAME's stages (no QUEUE, no --exec)" },
	{ "stage", "S,...", "with --pipeline: only these stages" },
	{ NULL, NULL, NULL }
};

struct work {
	struct cmd_ctx	*c;
	int		 progress;
	int64_t		 start_ms;
	char		 last_err[512];
	spool_pool	*pool;
	struct cmd_http	*http;		/* --http, served by its own thread */
};

/* The pool's summary line, every --log-interval. */
static void
work_log(const char *line, void *arg)
{
	struct work	*w = arg;

	if (w->progress && cmd_log_enabled(LOG_INFO))
		fputc('\n', stderr);
	cmd_log("work", LOG_INFO, "%s", line);
}

/* The HTTP server's thread, with signals left to the engine's. */
static void *
work_http_main(void *arg)
{
	struct work	*w = arg;

	cmd_http_run(w->http);
	return (NULL);
}

/* Each task's outcome, as it is committed (the engine's thread). */
static void
work_done(const spool_outcome *o, void *arg)
{
	const char	*err = o->error != NULL ? o->error : "";

	(void)arg;
	switch (o->kind) {
	case SPOOL_OUTCOME_SUCCEEDED:
		cmd_log("work", LOG_DEBUG, "task %lld (%s) attempt %d succeeded "
		    "in %lld ms, after %lld ms waiting", (long long)o->id,
		    o->queue, o->attempt, (long long)o->run_ms,
		    (long long)o->wait_ms);
		break;
	case SPOOL_OUTCOME_RETRYING:
		cmd_log("work", LOG_WARNING, "task %lld (%s) attempt %d %s, "
		    "will be retried: %.300s", (long long)o->id, o->queue,
		    o->attempt, o->timed_out ? "timed out" : "failed", err);
		break;
	case SPOOL_OUTCOME_DEAD:
		cmd_log("work", LOG_ERROR, "task %lld (%s) is dead after "
		    "attempt %d: %.300s", (long long)o->id, o->queue, o->attempt,
		    err);
		break;
	case SPOOL_OUTCOME_CANCELLED:
		cmd_log("work", LOG_NOTICE, "task %lld (%s) cancelled",
		    (long long)o->id, o->queue);
		break;
	case SPOOL_OUTCOME_LEASE_LOST:
		cmd_log("work", LOG_WARNING, "task %lld (%s) attempt %d: lease "
		    "lost, its outcome was not recorded", (long long)o->id,
		    o->queue, o->attempt);
		break;
	case SPOOL_OUTCOME_RELEASED:
		cmd_log("work", LOG_DEBUG, "task %lld (%s) handed back unstarted",
		    (long long)o->id, o->queue);
		break;
	}
}

/* Once a tick: new errors, a summary line now and then, and the
 * progress line on a terminal. */
static void
work_tick(const spool_pool_stats *st, void *arg)
{
	struct work	*w = arg;
	const char	*err = spool_pool_errmsg(w->pool);

	if (strcmp(err, "no error") != 0 && strcmp(err, w->last_err) != 0) {
		snprintf(w->last_err, sizeof w->last_err, "%s", err);
		if (w->progress)
			fputc('\n', stderr);
		cmd_log("work", LOG_WARNING, "%s", err);
	}
	if (!w->progress)
		return;
	fprintf(stderr, "\rspool work: running %d/%d  succeeded %lld  "
	    "retried %lld  dead %lld  lease lost %lld%s   ", st->busy,
	    st->workers, (long long)st->succeeded, (long long)st->retried,
	    (long long)st->dead, (long long)st->lease_lost,
	    st->holding ? "  (paused: cannot commit)" :
	    st->shedding ? "  (paused: CPU)" : "");
	fflush(stderr);
}

/* Split "a,b,c" into n parts (the string is modified). */
static int
split_commas(char *s, char **parts, int max)
{
	int	 n = 0;
	char	*p;

	for (p = strtok(s, ","); p != NULL; p = strtok(NULL, ","))
		if (n < max)
			parts[n++] = p;
		else
			return (-1);
	return (n);
}

/* Fill the pool options from the command line. */
static int
work_parse(struct cmd_ctx *c, spool_pool_opts *o, int *weights,
    char *wbuf, size_t wlen)
{
	const char	*v;
	char		*parts[64];
	int64_t		 n;
	int		 rc, i, np;

	if (cmd_opt(c, "concurrency") != NULL &&
	    (cmd_opt(c, "min") != NULL || cmd_opt(c, "max") != NULL))
		return (cmd_usage_error(c, "give --concurrency or --min/--max, "
		    "not both"));
	n = 4;
	if ((rc = cmd_opt_int(c, "concurrency", 1, 1024, &n)) != 0)
		return (rc);
	o->min_workers = o->max_workers = (int)n;
	if (cmd_opt(c, "max") != NULL || cmd_opt(c, "min") != NULL) {
		int64_t	 lo = 1, hi = 4;

		if ((rc = cmd_opt_int(c, "min", 1, 1024, &lo)) != 0 ||
		    (rc = cmd_opt_int(c, "max", 1, 1024, &hi)) != 0)
			return (rc);
		if (cmd_opt(c, "max") == NULL && hi < lo)
			hi = lo;
		if (hi < lo)
			return (cmd_usage_error(c, "--min is above --max"));
		o->min_workers = (int)lo;
		o->max_workers = (int)hi;
	}
	if (cmd_opt(c, "prefetch") != NULL) {
		if ((rc = cmd_opt_int(c, "prefetch", 0, 10000, &n)) != 0)
			return (rc);
		o->prefetch = (int)n;
	}
	if ((rc = cmd_opt_duration(c, "lease", &o->lease_ms)) != 0 ||
	    (rc = cmd_opt_duration(c, "timeout", &o->timeout_ms)) != 0 ||
	    (rc = cmd_opt_duration(c, "shutdown-timeout",
	    &o->shutdown_timeout_ms)) != 0 ||
	    (rc = cmd_opt_duration(c, "max-time", &o->max_time_ms)) != 0 ||
	    (rc = cmd_opt_int(c, "max-tasks", 1, INT64_MAX, &o->max_tasks)) != 0)
		return (rc);
	if (cmd_opt(c, "lease") != NULL && o->lease_ms == 0)
		return (cmd_usage_error(c, "--lease must be longer than 0"));
	if (cmd_opt(c, "max-time") != NULL && o->max_time_ms == 0)
		return (cmd_usage_error(c, "--max-time must be longer than 0"));
	if ((v = cmd_opt(c, "strategy")) != NULL) {
		if (strcmp(v, "merge") == 0)
			o->strategy = SPOOL_STRATEGY_MERGE;
		else if (strcmp(v, "priority") == 0)
			o->strategy = SPOOL_STRATEGY_PRIORITY;
		else if (strcmp(v, "weighted") == 0)
			o->strategy = SPOOL_STRATEGY_WEIGHTED;
		else if (strcmp(v, "round-robin") == 0)
			o->strategy = SPOOL_STRATEGY_ROUND_ROBIN;
		else
			return (cmd_usage_error(c, "--strategy: merge, priority, "
			    "weighted or round-robin, not '%s'", v));
	}
	if ((v = cmd_opt(c, "weights")) != NULL) {
		if (o->strategy != SPOOL_STRATEGY_WEIGHTED)
			return (cmd_usage_error(c, "--weights goes with "
			    "--strategy weighted"));
		snprintf(wbuf, wlen, "%s", v);
		np = split_commas(wbuf, parts, 64);
		if (np != (int)o->nqueues)
			return (cmd_usage_error(c, "--weights: give one weight "
			    "per queue (%zu)", o->nqueues));
		for (i = 0; i < np; i++) {
			if (parse_int64(parts[i], 1, 1000000, &n) != 0)
				return (cmd_usage_error(c, "--weights: not a weight "
				    "from 1 to 1000000: '%s'", parts[i]));
			weights[i] = (int)n;
		}
		o->weights = weights;
	} else if (o->strategy == SPOOL_STRATEGY_WEIGHTED)
		return (cmd_usage_error(c, "--strategy weighted needs --weights"));
	if ((v = cmd_opt(c, "cpu-max")) != NULL) {
		if (parse_int64(v, 1, 100, &n) != 0)
			return (cmd_usage_error(c, "--cpu-max: a percentage from "
			    "1 to 100, not '%s'", v));
		o->cpu_max = n / 100.0;
	}
	if (cmd_opt(c, "until-empty") != NULL)
		o->flags |= SPOOL_POOL_UNTIL_EMPTY;
	o->exclusive = cmd_opt(c, "exclusive");
	return (EXIT_OK);
}

static int
work_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	spool_pool_stats	 st;
	spool_exec_opts		 xo = SPOOL_EXEC_OPTS_INIT;
	spool_exec		*x = NULL;
	struct work		 w;
	struct json		 j;
	char			 wbuf[1024], ebuf[1024], *envs[32];
	int			 weights[64], rc, nenv = 0, status;
	int64_t			 grace = 0, elapsed;

	static const char *const pipeline_only[] = { "concurrency", "min",
	    "max", "prefetch", "strategy", "weights", "timeout", NULL };
	const char		*pipeline = cmd_opt(c, "pipeline");
	char			*stages[64], sbuf[1024];
	spool_stage_handler	 h[64];
	int			 nstages = 0, i, level = -1;
	int64_t			 log_interval = 60000;
	const char		*http = cmd_opt(c, "http");
	char			 herr[256];
	pthread_t		 http_thread;
	sigset_t		 all, old;

	if (pipeline != NULL) {
		if (argc > 0)
			return (cmd_usage_error(c, "--pipeline works the "
			    "pipeline's stage queues: give no QUEUE"));
		if (c->tail != NULL)
			return (cmd_usage_error(c, "--pipeline runs each stage's "
			    "own command: give no --exec"));
		for (i = 0; pipeline_only[i] != NULL; i++)
			if (cmd_opt(c, pipeline_only[i]) != NULL)
				return (cmd_usage_error(c, "--%s: with --pipeline, "
				    "each stage's definition says it",
				    pipeline_only[i]));
		if (cmd_opt(c, "stage") != NULL) {
			snprintf(sbuf, sizeof sbuf, "%s", cmd_opt(c, "stage"));
			if ((nstages = split_commas(sbuf, stages, 64)) <= 0)
				return (cmd_usage_error(c, "--stage: give stage "
				    "names, separated by commas"));
		}
	} else if (cmd_opt(c, "stage") != NULL)
		return (cmd_usage_error(c, "--stage goes with --pipeline"));
	else if (argc == 0)
		return (cmd_usage_error(c, "give the queues to work, or "
		    "--pipeline NAME"));
	else if (c->tail == NULL)
		return (cmd_usage_error(c, "give the command to run: --exec CMD "
		    "[ARG...]"));
	if (argc > 64)
		return (cmd_usage_error(c, "too many queues (at most 64)"));
	o.queues = (const char *const *)argv;
	o.nqueues = (size_t)argc;
	o.flags = SPOOL_POOL_SIGNALS;
	if ((rc = work_parse(c, &o, weights, wbuf, sizeof wbuf)) != EXIT_OK ||
	    (rc = cmd_opt_duration(c, "grace", &grace)) != EXIT_OK ||
	    (rc = cmd_opt_duration(c, "log-interval", &log_interval)) != 0)
		return (rc);
	if (cmd_opt(c, "log-level") != NULL &&
	    (level = cmd_log_parse(cmd_opt(c, "log-level"))) < 0)
		return (cmd_usage_error(c, "--log-level: error, warning, notice, "
		    "info or debug, not '%s'", cmd_opt(c, "log-level")));
	if (cmd_opt(c, "http-write") != NULL && http == NULL)
		return (cmd_usage_error(c, "--http-write goes with --http"));
	if (cmd_opt(c, "env") != NULL) {
		snprintf(ebuf, sizeof ebuf, "%s", cmd_opt(c, "env"));
		if ((nenv = split_commas(ebuf, envs, 32)) < 0)
			return (cmd_usage_error(c, "--env: at most 32 names"));
		for (i = 0; i < nenv; i++)
			if (envs[i][0] == '\0' || strchr(envs[i], '=') != NULL)
				return (cmd_usage_error(c, "--env: give variable "
				    "names, separated by commas, not '%s'",
				    envs[i]));
	}
	if (c->tail != NULL && c->tail[0][0] == '\0')
		return (cmd_usage_error(c, "--exec: the command is empty"));
	/* Check the database the usual way, for the usual messages. */
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	spool_close(c->q);
	c->q = NULL;

	xo.env = (const char *const *)envs;
	xo.nenv = (size_t)nenv;
	xo.grace_ms = grace;
	if ((rc = spool_exec_new(&x, pipeline != NULL ? NULL :
	    (const char *const *)c->tail, pipeline != NULL ? 0 :
	    (size_t)c->ntail, &xo)) != SPOOL_OK)
		/* The arguments were checked above: only memory is left. */
		return (cmd_error(c, cmd_exit_code(rc), "--exec: %s",
		    spool_strerror(rc)));
	memset(&w, 0, sizeof w);
	w.c = c;
	w.progress = isatty(STDERR_FILENO) && cmd_opt(c, "quiet") == NULL;
	/* With the progress line, only what needs attention, unless asked. */
	cmd_log_init(level >= 0 ? level : w.progress ? LOG_WARNING : LOG_INFO);
	/* The worker becomes a child subreaper: what a command leaves behind
	 * (a daemon after setsid, a double fork) comes back to it, not to
	 * init, and is ended (exec.c). */
	if (spool_exec_subreaper(x) != SPOOL_OK)
		cmd_log("work", LOG_WARNING, "processes that commands leave "
		    "behind will not be ended: %s", errno == ENOENT ? "the "
		    "kernel does not list a thread's children in /proc" :
		    strerror(errno));
	o.log_interval_ms = log_interval;
	o.on_log = work_log;
	o.on_tick = work_tick;
	o.on_done = work_done;
	o.cb_arg = &w;
	if (pipeline != NULL) {
		/* One handler for every stage named, or for all of them. */
		for (i = 0; i < (nstages > 0 ? nstages : 1); i++) {
			h[i].stage = nstages > 0 ? stages[i] : NULL;
			h[i].fn = spool_exec_stage_handler;
			h[i].arg = x;
		}
		rc = spool_pipeline_pool_new(&w.pool, c->db_path, pipeline, h,
		    nstages > 0 ? (size_t)nstages : 1, &o);
	} else
		rc = spool_pool_new(&w.pool, c->db_path, spool_exec_handler, x,
		    &o);
	if (rc != SPOOL_OK) {
		rc = cmd_error(c, cmd_exit_code(rc), "%s",
		    spool_pool_errmsg(w.pool));
		spool_pool_free(w.pool);
		spool_exec_free(x);
		return (rc);
	}
	if (http != NULL) {
		rc = cmd_http_new(&w.http, c->db_path, http, w.pool,
		    cmd_opt(c, "http-write") != NULL ? CMD_HTTP_WRITE : 0,
		    herr, sizeof herr);
		if (rc == EXIT_OK) {
			sigfillset(&all);
			pthread_sigmask(SIG_BLOCK, &all, &old);
			if (pthread_create(&http_thread, NULL, work_http_main,
			    &w) != 0) {
				snprintf(herr, sizeof herr, "cannot start the "
				    "HTTP thread");
				rc = EXIT_SOFTWARE;
			}
			pthread_sigmask(SIG_SETMASK, &old, NULL);
		}
		if (rc != EXIT_OK) {
			cmd_http_free(w.http);
			spool_pool_free(w.pool);
			spool_exec_free(x);
			return (cmd_error(c, rc, "%s", herr));
		}
		cmd_log("work", LOG_INFO, "serving http://%s/",
		    cmd_http_where(w.http));
	}
	w.start_ms = cmd_now_ms();
	if (pipeline != NULL)
		cmd_log("work", LOG_INFO, "started: pid %ld, pipeline %s%s%s",
		    (long)getpid(), pipeline, nstages > 0 ? ", stages " : "",
		    nstages > 0 ? cmd_opt(c, "stage") : "");
	else if (o.min_workers == o.max_workers)
		cmd_log("work", LOG_INFO, "started: pid %ld, %d queue%s, %d "
		    "threads", (long)getpid(), argc, argc == 1 ? "" : "s",
		    o.max_workers);
	else
		cmd_log("work", LOG_INFO, "started: pid %ld, %d queue%s, %d to "
		    "%d threads", (long)getpid(), argc, argc == 1 ? "" : "s",
		    o.min_workers, o.max_workers);
	rc = spool_pool_run(w.pool);
	spool_pool_stats_get(&st, w.pool);
	if (w.http != NULL) {
		cmd_http_stop(w.http);
		pthread_join(http_thread, NULL);
		cmd_http_free(w.http);
	}
	if (rc != SPOOL_OK)
		cmd_log("work", LOG_ERROR, "%s", spool_pool_errmsg(w.pool));
	spool_pool_free(w.pool);	/* waits for the commands */
	spool_exec_free(x);
	elapsed = cmd_now_ms() - w.start_ms;
	cmd_log("work", LOG_INFO, "stopped after %.1f s: %lld claimed, %lld "
	    "succeeded", elapsed / 1000.0, (long long)st.claimed,
	    (long long)st.succeeded);
	if (w.progress)
		fputc('\n', stderr);

	status = st.retried + st.dead + st.cancelled + st.lease_lost +
	    st.timed_out > 0 ? EXIT_NO : EXIT_OK;
	if (rc != SPOOL_OK)
		status = cmd_exit_code(rc);
	else if (st.quit > 0)		/* as if the signal had killed it */
		status = 128 + st.quit;
	else if (st.quit < 0)
		status = EXIT_TEMPFAIL;
	if (st.quit != 0)
		cmd_log("work", LOG_WARNING, "quit at once: %lld task%s left "
		    "under lease, to be retried when the lease expires",
		    (long long)st.left, st.left == 1 ? "" : "s");
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_kv_int(&j, "claimed", st.claimed);
		json_kv_int(&j, "succeeded", st.succeeded);
		json_kv_int(&j, "retried", st.retried);
		json_kv_int(&j, "dead", st.dead);
		json_kv_int(&j, "cancelled", st.cancelled);
		json_kv_int(&j, "lease_lost", st.lease_lost);
		json_kv_int(&j, "timed_out", st.timed_out);
		json_kv_int(&j, "released", st.released);
		json_kv_int(&j, "left", st.left);
		json_kv_int(&j, "elapsed_ms", elapsed);
		json_kv_int(&j, "exit", status);
		json_close(&j, '}');
		json_end(&j);
	} else
		printf("spool work: %lld tasks in %.1f s: %lld succeeded, "
		    "%lld failed and will be retried, %lld dead, %lld "
		    "cancelled, %lld lease lost, %lld timed out, %lld handed "
		    "back, %lld left under lease\n", (long long)st.claimed,
		    elapsed / 1000.0, (long long)st.succeeded,
		    (long long)st.retried, (long long)st.dead,
		    (long long)st.cancelled, (long long)st.lease_lost,
		    (long long)st.timed_out, (long long)st.released,
		    (long long)st.left);
	return (status);
}

const struct spool_cmd cmd_work = {
	.name = "work",
	.usage = "QUEUE... --exec CMD [ARG...] | --pipeline NAME",
	.summary = "run a command for each task of the queues",
	.help =
	    "CMD runs without a shell, in its own process group, with the "
	    "payload on stdin\nand SPOOL_TASK_ID, SPOOL_QUEUE, SPOOL_ATTEMPT "
	    "in its environment (plus PATH,\nHOME, LANG, TZ, TMPDIR and --env "
	    "names).  Its stdout (up to 1 MiB) becomes\nthe result; the tail "
	    "of its stderr the error.  Exit 0 succeeds, 75 asks to be\n"
	    "retried later, anything else fails (retried by the queue's "
	    "policy).  A command\npast its timeout, cancelled, or whose lease "
	    "was lost gets SIGTERM, then SIGKILL.\nWhatever it started ends "
	    "with it, even a daemon (setsid, a double fork).\nSIGINT/SIGTERM "
	    "stop claiming and let running commands finish (within\n"
	    "--shutdown-timeout; a command still running then is stopped and "
	    "its task handed\nback, no attempt charged).  A second signal "
	    "quits at once, leaving the leases\nit holds to expire (the "
	    "summary counts them).  Exit 0 if every task succeeded,\n1 if "
	    "some failed, 75 if the run could not start, 128 + the signal's "
	    "number\n"
	    "after a quit by a second signal.\n"
	    "With --pipeline NAME, the workers run the stages of pipeline "
	    "NAME (see 'spool\npipeline create --help'): each stage's "
	    "command, from its queue 'NAME/STAGE',\nwith the stage's "
	    "concurrency and timeout; --stage S,... runs only those, so\n"
	    "stages can be spread over processes.  Stages of older versions "
	    "whose runs are\nunfinished are worked too.\n"
	    "Events go to stderr, one line each: the time (or a syslog <N> "
	    "priority when\nstderr is the systemd journal), 'spool work:', "
	    "the level and the message.\nLevels: error (a task died), warning "
	    "(an attempt failed, a lease was lost, the\ndatabase failed), "
	    "notice (a task was cancelled), info (start, stop, and a\nsummary "
	    "every --log-interval), debug (every task).  On a terminal with "
	    "the\n"
	    "progress line the default level is warning.\n",
	.opts = work_opts,
	.max_args = 64,
	.flags = CMD_EXEC_TAIL,
	.exec = work_exec
};
