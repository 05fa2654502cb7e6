/*
 * cmd-pipeline.c -- "spool pipeline create|list|show|delete|run|runs|
 * status|items|history|wait|cancel": define pipelines and follow their
 * runs.  "spool work --pipeline NAME" (cmd-work.c) runs their stages.
 *
 * A stage is written NAME:CONCURRENCY[:OPTION,...]=COMMAND (parse.c);
 * the library stores definitions, moves items between stages and keeps
 * the counters; this file only parses, asks and shows.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define FILE_MAX	(1024 * 1024)	/* bytes of a definition file */

static const char stage_help[] =
    "A stage is NAME:CONCURRENCY[:OPTION,...]=COMMAND, for example\n"
    "  --stage 'fetch:4:retry=5,delay=2s,timeout=30s=./fetch --quiet'\n"
    "  --stage 'resize:2:skip=./resize'\n"
    "  --stage 'store:1:fail_fast=./store'\n"
    "NAME is letters, digits, '_', '-', '.'; CONCURRENCY the commands run at "
    "once\nper worker process.  OPTIONs: timeout=DURATION per attempt; the "
    "error strategy,\none of retry (the default: retry=N times, 3 unless "
    "given, delay=DURATION\napart, 1s unless given, then the item fails), "
    "skip (the item is skipped and\nthe run goes on) or fail_fast (the run "
    "stops: waiting items are cancelled,\nrunning ones told to stop).  "
    "COMMAND runs like 'spool work --exec': no shell;\nit is split into "
    "words as a shell would ('...', \"...\", \\), without expansion.\n"
    "Its stdin is the item's input to the stage, its stdout the stage's "
    "output,\nwhich becomes the next stage's input; the last stage's output "
    "is the item's\nresult.  SPOOL_ITEM_ID and SPOOL_STAGE are in its "
    "environment.\n";

/* A duration as parse_duration_ms reads it back exactly. */
static void
exact_duration(char *buf, size_t len, int64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, len, "%lldms", (long long)ms);
}

/* "retry=3,delay=1s,timeout=30s" and the like, as parse_stage reads it. */
static void
stage_options(char *buf, size_t len, const spool_stage *s)
{
	const char	*name = spool_on_error_name(s->on_error);
	char		 d[32];
	size_t		 n;

	if (s->on_error == SPOOL_ON_ERROR_RETRY) {
		exact_duration(d, sizeof d, s->retry_delay_ms);
		snprintf(buf, len, "retry=%d,delay=%s", s->retries, d);
	} else
		snprintf(buf, len, "%s", name != NULL ? name : "?");
	if (s->timeout_ms > 0) {
		n = strlen(buf);
		exact_duration(d, sizeof d, s->timeout_ms);
		snprintf(buf + n, len - n, ",timeout=%s", d);
	}
}

static void
pipeline_json(struct json *j, const spool_pipeline_info *p)
{
	size_t	 i;

	json_open(j, '{');
	json_kv_str(j, "name", p->name);
	json_kv_int(j, "version", p->version);
	json_key(j, "current");
	json_bool(j, p->current);
	json_kv_time(j, "created_ms", p->created_ms);
	json_kv_int(j, "runs_unfinished", p->runs_unfinished);
	json_key(j, "stages");
	json_open(j, '[');
	for (i = 0; i < p->nstages; i++) {
		const spool_stage	*s = &p->stages[i];

		json_open(j, '{');
		json_kv_int(j, "index", (int64_t)i + 1);
		json_kv_str(j, "name", s->name);
		json_kv_int(j, "concurrency", s->concurrency);
		json_kv_int(j, "timeout_ms", s->timeout_ms);
		json_kv_str(j, "on_error", spool_on_error_name(s->on_error));
		json_kv_int(j, "retries", s->retries);
		json_kv_int(j, "retry_delay_ms", s->retry_delay_ms);
		json_kv_str(j, "command", s->command);
		json_close(j, '}');
	}
	json_close(j, ']');
	json_close(j, '}');
}

/* A pipeline as text: a header and one line per stage. */
static void
pipeline_print(const spool_pipeline_info *p)
{
	char	 opts[128];
	size_t	 i;

	printf("pipeline %s version %d%s, %zu stage%s", p->name, p->version,
	    p->current ? "" : " (retired)", p->nstages,
	    p->nstages == 1 ? "" : "s");
	if (p->runs_unfinished > 0)
		printf(", %lld unfinished run%s", (long long)p->runs_unfinished,
		    p->runs_unfinished == 1 ? "" : "s");
	putchar('\n');
	for (i = 0; i < p->nstages; i++) {
		const spool_stage	*s = &p->stages[i];

		stage_options(opts, sizeof opts, s);
		printf("  %zu %s:%d:%s=", i + 1, s->name, s->concurrency, opts);
		if (s->command != NULL)
			cmd_print_text(stdout, s->command, strlen(s->command),
			    500);
		else
			printf("(C handler)");
		putchar('\n');
	}
}

/* ---- create -------------------------------------------------------------- */

static const struct cmd_opt create_opts[] = {
	{ "stage", "SPEC...", "a stage, in order (repeat for each)" },
	{ "file", "FILE", "read the stages from FILE, one per line" },
	{ "force", NULL, "define a new version even with runs unfinished" },
	{ NULL, NULL, NULL }
};

/* Read FILE's stage lines ('#' comments and blank lines skipped) into
 * specs; the buffer *buf holds them. */
static int
read_stage_file(struct cmd_ctx *c, const char *path, char **buf,
    char **specs, int *n)
{
	FILE	*f;
	size_t	 len;
	char	*p, *line, *end;
	int	 bad;

	*buf = NULL;
	if ((f = fopen(path, "r")) == NULL)
		return (cmd_error(c, errno == ENOENT ? EXIT_NOINPUT : EXIT_IO,
		    "%s: %s", path, strerror(errno)));
	if ((*buf = malloc(FILE_MAX + 1)) == NULL) {
		fclose(f);
		return (cmd_error(c, EXIT_TEMPFAIL, "out of memory"));
	}
	len = fread(*buf, 1, FILE_MAX + 1, f);
	bad = ferror(f);
	fclose(f);
	if (bad || len > FILE_MAX)
		return (cmd_error(c, bad ? EXIT_IO : EXIT_DATA, "%s: %s", path,
		    bad ? "read error" : "larger than 1 MiB"));
	(*buf)[len] = '\0';
	if (memchr(*buf, '\0', len) != NULL)
		return (cmd_error(c, EXIT_DATA, "%s: has a NUL byte", path));
	for (p = *buf; p != NULL && *p != '\0'; p = end) {
		line = p;
		if ((end = strchr(p, '\n')) != NULL)
			*end++ = '\0';
		line += strspn(line, " \t");
		len = strlen(line);
		while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' ||
		    line[len - 1] == '\r'))
			line[--len] = '\0';
		if (*line == '\0' || *line == '#')
			continue;
		if (*n == SPOOL_STAGES_MAX)
			return (cmd_error(c, EXIT_DATA, "%s: more than %d stages",
			    path, SPOOL_STAGES_MAX));
		specs[(*n)++] = line;
	}
	return (EXIT_OK);
}

static int
create_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_stage		 st[SPOOL_STAGES_MAX];
	spool_pipeline_info	*p = NULL;
	struct json		 j;
	char			*specs[SPOOL_STAGES_MAX], *fbuf = NULL, err[256];
	int			 n = 0, i, rc, version;

	(void)argc;
	if (c->nmany > 0 && cmd_opt(c, "file") != NULL)
		return (cmd_usage_error(c, "give --stage or --file, not both"));
	if (cmd_opt(c, "file") != NULL) {
		if ((rc = read_stage_file(c, cmd_opt(c, "file"), &fbuf, specs,
		    &n)) != EXIT_OK)
			goto out;
	} else
		for (i = 0; i < c->nmany; i++)
			if ((specs[n++] = strdup(c->many[i])) == NULL) {
				rc = cmd_error(c, EXIT_TEMPFAIL, "out of memory");
				goto out;
			}
	if (n == 0) {
		rc = cmd_usage_error(c, "give the stages: --stage SPEC ... or "
		    "--file FILE");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (parse_stage(specs[i], &st[i], err, sizeof err) != 0) {
			rc = cmd_usage_error(c, "%s", err);
			goto out;
		}
	if ((rc = cmd_open(c)) != EXIT_OK)
		goto out;
	if ((rc = spool_pipeline_create(&version, c->q, argv[0], st,
	    (size_t)n, cmd_opt(c, "force") != NULL ? SPOOL_PIPELINE_FORCE :
	    0)) != SPOOL_OK ||
	    (rc = spool_pipeline_get(&p, c->q, argv[0], version)) != SPOOL_OK) {
		rc = cmd_fail(c, rc);
		goto out;
	}
	if (c->json) {
		json_init(&j, stdout);
		pipeline_json(&j, p);
		json_end(&j);
	} else
		pipeline_print(p);
	spool_pipeline_info_free(p, 1);
	rc = EXIT_OK;
out:
	if (fbuf == NULL)
		for (i = 0; i < n; i++)
			free(specs[i]);
	free(fbuf);
	return (rc);
}

const struct spool_cmd cmd_pipeline_create = {
	.name = "pipeline create",
	.usage = "NAME",
	.summary = "define a pipeline (a new version if it exists)",
	.help = stage_help,
	.opts = create_opts,
	.min_args = 1,
	.max_args = 1,
	.exec = create_exec
};

/* ---- list, show, delete -------------------------------------------------- */

static int
list_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_pipeline_info	*p = NULL;
	struct json		 j;
	size_t			 n, i, k;
	int			 rc;

	(void)argc;
	(void)argv;
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = cmd_pipelines_all(c->q, &p, &n)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_key(&j, "pipelines");
		json_open(&j, '[');
		for (i = 0; i < n; i++)
			pipeline_json(&j, &p[i]);
		json_close(&j, ']');
		json_close(&j, '}');
		json_end(&j);
	} else {
		printf("%-24s %7s %10s  %s\n", "NAME", "VERSION", "UNFINISHED",
		    "STAGES");
		for (i = 0; i < n; i++) {
			printf("%-24s %7d %10lld  ", p[i].name, p[i].version,
			    (long long)p[i].runs_unfinished);
			for (k = 0; k < p[i].nstages; k++)
				printf("%s%s", k > 0 ? " > " : "",
				    p[i].stages[k].name);
			putchar('\n');
		}
	}
	spool_pipeline_info_free(p, n);
	return (EXIT_OK);
}

const struct spool_cmd cmd_pipeline_list = {
	.name = "pipeline list",
	.usage = "",
	.summary = "list pipelines (their current versions)",
	.exec = list_exec
};

static const struct cmd_opt show_opts[] = {
	{ "version", "N", "this version (default: the current one)" },
	{ NULL, NULL, NULL }
};

static int
show_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_pipeline_info	*p = NULL;
	struct json		 j;
	int64_t			 v = 0;
	int			 rc;

	(void)argc;
	if ((rc = cmd_opt_int(c, "version", 1, INT32_MAX, &v)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_pipeline_get(&p, c->q, argv[0], (int)v)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		pipeline_json(&j, p);
		json_end(&j);
	} else
		pipeline_print(p);
	spool_pipeline_info_free(p, 1);
	return (EXIT_OK);
}

const struct spool_cmd cmd_pipeline_show = {
	.name = "pipeline show",
	.usage = "NAME",
	.summary = "show a pipeline's stages",
	.help =
	    "Each stage is shown as 'pipeline create' reads it.  Stage S of "
	    "pipeline P is\nworked from the queue 'P/S'.\n",
	.opts = show_opts,
	.min_args = 1,
	.max_args = 1,
	.exec = show_exec
};

static const struct cmd_opt delete_opts[] = {
	{ "force", NULL, "cancel its unfinished runs first" },
	{ NULL, NULL, NULL }
};

static int
delete_exec(struct cmd_ctx *c, int argc, char **argv)
{
	int	 rc;

	(void)argc;
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_pipeline_delete(c->q, argv[0], cmd_opt(c, "force") !=
	    NULL ? SPOOL_PIPELINE_FORCE : 0)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json)
		printf("{\"deleted\":true}\n");
	else
		printf("deleted pipeline %s\n", argv[0]);
	return (EXIT_OK);
}

const struct spool_cmd cmd_pipeline_delete = {
	.name = "pipeline delete",
	.usage = "NAME",
	.summary = "delete a pipeline: no new runs",
	.help =
	    "Refused (exit 1) while runs of it are unfinished, unless "
	    "--force, which cancels\nthem.  Past runs and their history "
	    "stay.\n",
	.opts = delete_opts,
	.min_args = 1,
	.max_args = 1,
	.exec = delete_exec
};

/* ---- run ----------------------------------------------------------------- */

static const struct cmd_opt run_opts[] = {
	{ "lines", NULL, "one item per non-empty line of stdin" },
	{ "hook", "QUEUE", "when the run finishes, enqueue a task on QUEUE" },
	{ "hook-payload", "TEXT", "the hook task's \"payload\" (JSON or text)" },
	{ "hook-on", "WHEN", "always (default), or success: only if all succeeded" },
	{ NULL, NULL, NULL }
};

struct items {
	spool_item	*v;
	char		**bufs;
	size_t		 n;
	size_t		 cap;
};

static int
items_add(struct cmd_ctx *c, struct items *it, const char *p, size_t len,
    char *buf)
{
	spool_item	*nv;
	char		**nb;
	size_t		 cap = it->cap;

	if (len > SPOOL_PAYLOAD_MAX) {
		free(buf);
		return (cmd_error(c, EXIT_DATA, "item %zu too large (%zu bytes, "
		    "at most %d)", it->n + 1, len, SPOOL_PAYLOAD_MAX));
	}
	if (it->n == it->cap) {
		cap = it->cap ? it->cap * 2 : 64;
		if ((nv = realloc(it->v, cap * sizeof *nv)) == NULL) {
			free(buf);
			return (cmd_error(c, EXIT_TEMPFAIL, "out of memory"));
		}
		it->v = nv;
		if ((nb = realloc(it->bufs, cap * sizeof *nb)) == NULL) {
			free(buf);
			return (cmd_error(c, EXIT_TEMPFAIL, "out of memory"));
		}
		it->bufs = nb;
		it->cap = cap;
	}
	it->v[it->n].input = p;
	it->v[it->n].len = len;
	it->bufs[it->n++] = buf;
	return (EXIT_OK);
}

static void
items_free(struct items *it)
{
	size_t	 i;

	for (i = 0; i < it->n; i++)
		free(it->bufs[i]);
	free(it->bufs);
	free(it->v);
}

/* One item per non-empty line of stdin (without its newline). */
static int
items_lines(struct cmd_ctx *c, struct items *it)
{
	char	*line = NULL, *copy;
	size_t	 cap = 0;
	ssize_t	 len;
	int	 rc = EXIT_OK;

	while ((len = getline(&line, &cap, stdin)) != -1) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if ((copy = malloc((size_t)len + 1)) == NULL) {
			rc = cmd_error(c, EXIT_TEMPFAIL, "out of memory");
			break;
		}
		memcpy(copy, line, (size_t)len + 1);
		if ((rc = items_add(c, it, copy, (size_t)len, copy)) != EXIT_OK)
			break;
	}
	free(line);
	if (rc == EXIT_OK && ferror(stdin))
		rc = cmd_error(c, EXIT_IO, "reading stdin failed");
	return (rc);
}

static int
run_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_run_opts	 o = SPOOL_RUN_OPTS_INIT;
	struct items	 it;
	struct json	 j;
	const char	*on = cmd_opt(c, "hook-on");
	char		*buf;
	int64_t		 run, *ids = NULL;
	size_t		 len, i;
	int		 rc, k, dashes = 0;

	memset(&it, 0, sizeof it);
	o.hook_queue = cmd_opt(c, "hook");
	o.hook_payload = cmd_opt(c, "hook-payload");
	if (o.hook_queue == NULL && (o.hook_payload != NULL || on != NULL))
		return (cmd_usage_error(c, "--%s needs --hook QUEUE",
		    on != NULL ? "hook-on" : "hook-payload"));
	if (on != NULL && strcmp(on, "success") == 0)
		o.hook_on = SPOOL_HOOK_SUCCESS;
	else if (on != NULL && strcmp(on, "always") != 0)
		return (cmd_usage_error(c, "--hook-on: always or success, not "
		    "'%s'", on));
	if (cmd_opt(c, "lines") != NULL && argc > 1)
		return (cmd_usage_error(c, "--lines reads the items from stdin: "
		    "give no INPUT"));
	if (cmd_opt(c, "lines") == NULL && argc == 1)
		return (cmd_usage_error(c, "give the items: INPUT... ('-' for "
		    "stdin) or --lines"));
	for (k = 1; k < argc; k++)
		dashes += strcmp(argv[k], "-") == 0;
	if (dashes > 1)
		return (cmd_usage_error(c, "'-' (stdin) may be given once"));

	if (cmd_opt(c, "lines") != NULL)
		rc = items_lines(c, &it);
	else
		rc = EXIT_OK;
	for (k = 1; k < argc && rc == EXIT_OK; k++) {
		if (strcmp(argv[k], "-") != 0)
			rc = items_add(c, &it, argv[k], strlen(argv[k]), NULL);
		else if ((rc = cmd_read_stdin(c, &buf, &len)) == EXIT_OK)
			rc = items_add(c, &it, buf, len, buf);
	}
	if (rc == EXIT_OK && it.n == 0)
		rc = cmd_error(c, EXIT_DATA, "no items on stdin");
	if (rc != EXIT_OK || (rc = cmd_open(c)) != EXIT_OK)
		goto out;
	if ((ids = calloc(it.n, sizeof *ids)) == NULL) {
		rc = cmd_error(c, EXIT_TEMPFAIL, "out of memory");
		goto out;
	}
	if ((rc = spool_pipeline_start(&run, ids, c->q, argv[0], it.v, it.n,
	    &o)) != SPOOL_OK) {
		rc = cmd_fail(c, rc);
		goto out;
	}
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_kv_int(&j, "run", run);
		json_key(&j, "items");
		json_open(&j, '[');
		for (i = 0; i < it.n; i++)
			json_int(&j, ids[i]);
		json_close(&j, ']');
		json_close(&j, '}');
		json_end(&j);
	} else
		printf("%lld\n", (long long)run);
	rc = EXIT_OK;
out:
	free(ids);
	items_free(&it);
	return (rc);
}

const struct spool_cmd cmd_pipeline_run = {
	.name = "pipeline run",
	.usage = "NAME [INPUT|-]...",
	.summary = "start a run: each INPUT is an item",
	.help =
	    "Every item enters the first stage, all in one transaction; the "
	    "run's id is\nprinted ('--json': the run and its items' ids).  "
	    "'spool work --pipeline NAME'\nworks it.  With --hook, one task "
	    "is enqueued on QUEUE, exactly once, when the\nrun finishes, with "
	    "the JSON payload\n"
	    "  {\"run\":ID,\"pipeline\":NAME,\"version\":N,\"total\":N,"
	    "\"succeeded\":N,\"failed\":N,\n   \"skipped\":N,\"cancelled\":N,"
	    "\"error\":...,\"payload\":HOOK-PAYLOAD}\n",
	.opts = run_opts,
	.min_args = 1,
	.max_args = -1,
	.exec = run_exec
};

/* ---- runs, status -------------------------------------------------------- */

/* A run's fields, inside an open JSON object (shared with http.c). */
void
cmd_json_run_fields(struct json *j, const spool_run_info *r, int64_t now)
{
	int64_t	 end = r->finished_ms != 0 ? r->finished_ms : now;
	int64_t	 done = r->total - r->running;

	json_kv_int(j, "id", r->id);
	json_kv_str(j, "pipeline", r->pipeline);
	json_kv_int(j, "version", r->version);
	json_kv_str(j, "state", spool_run_state_name(r->state));
	json_kv_int(j, "total", r->total);
	json_kv_int(j, "running", r->running);
	json_kv_int(j, "succeeded", r->succeeded);
	json_kv_int(j, "failed", r->failed);
	json_kv_int(j, "skipped", r->skipped);
	json_kv_int(j, "cancelled", r->cancelled);
	json_kv_str(j, "error", r->error);
	json_kv_str(j, "hook_queue", r->hook_queue);
	json_key(j, "hook_task_id");
	if (r->hook_task_id != 0)
		json_int(j, r->hook_task_id);
	else
		json_null(j);
	json_kv_time(j, "created_ms", r->created_ms);
	json_kv_time(j, "finished_ms", r->finished_ms);
	json_kv_int(j, "elapsed_ms", end - r->created_ms);
	json_key(j, "items_per_s");
	json_double(j, end > r->created_ms ? done * 1000.0 /
	    (double)(end - r->created_ms) : 0);
}

static const struct cmd_opt runs_opts[] = {
	{ "after", "ID", "start after this run id" },
	{ "limit", "N", "at most N runs (default 50, at most 10000)" },
	{ NULL, NULL, NULL }
};

static int
runs_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_run_list_opts o = SPOOL_RUN_LIST_OPTS_INIT;
	spool_run_info	*r = NULL;
	struct json	 j;
	int64_t		 after = 0, limit = 50, now = cmd_now_ms();
	size_t		 n, i;
	int		 rc;

	if ((rc = cmd_opt_int(c, "after", 0, INT64_MAX, &after)) != 0 ||
	    (rc = cmd_opt_int(c, "limit", 1, 10000, &limit)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	o.pipeline = argc > 0 ? argv[0] : NULL;
	o.after_id = after;
	o.limit = (size_t)limit;
	if ((rc = spool_run_list(&r, &n, c->q, &o)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_key(&j, "runs");
		json_open(&j, '[');
		for (i = 0; i < n; i++) {
			json_open(&j, '{');
			cmd_json_run_fields(&j, &r[i], now);
			json_close(&j, '}');
		}
		cmd_json_page(&j, n == (size_t)limit ? r[n - 1].id : 0);
	} else {
		printf("%-8s %-20s %3s %-9s %7s %7s %9s %6s %7s %9s\n", "RUN",
		    "PIPELINE", "V", "STATE", "TOTAL", "RUNNING", "SUCCEEDED",
		    "FAILED", "SKIPPED", "CANCELLED");
		for (i = 0; i < n; i++)
			printf("%-8lld %-20s %3d %-9s %7lld %7lld %9lld %6lld "
			    "%7lld %9lld\n", (long long)r[i].id, r[i].pipeline,
			    r[i].version, spool_run_state_name(r[i].state),
			    (long long)r[i].total, (long long)r[i].running,
			    (long long)r[i].succeeded, (long long)r[i].failed,
			    (long long)r[i].skipped, (long long)r[i].cancelled);
	}
	spool_run_info_free(r, n);
	return (EXIT_OK);
}

const struct spool_cmd cmd_pipeline_runs = {
	.name = "pipeline runs",
	.usage = "[NAME]",
	.summary = "list runs, oldest first",
	.opts = runs_opts,
	.max_args = 1,
	.exec = runs_exec
};

static int
status_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_run_info		*r = NULL;
	struct json		 j;
	int64_t			 id, now = cmd_now_ms(), end;
	char			 avg[32], p95[32];
	size_t			 i;
	int			 rc;

	(void)argc;
	if ((rc = cmd_arg_id(c, "a run", NULL, argv[0], &id)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_run_get(&r, c->q, id)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		cmd_json_run_fields(&j, r, now);
		json_key(&j, "stages");
		json_open(&j, '[');
		for (i = 0; i < r->nstages; i++) {
			const spool_stage_status *s = &r->stages[i];

			json_open(&j, '{');
			json_kv_int(&j, "index", s->index);
			json_kv_str(&j, "name", s->name);
			json_kv_int(&j, "concurrency", s->concurrency);
			json_kv_int(&j, "waiting", s->waiting);
			json_kv_int(&j, "running", s->running);
			json_kv_int(&j, "done", s->done);
			json_kv_int(&j, "failed", s->failed);
			json_kv_int(&j, "skipped", s->skipped);
			json_kv_int(&j, "cancelled", s->cancelled);
			json_kv_int(&j, "attempts", s->attempts);
			json_key(&j, "avg_ms");
			json_double(&j, s->avg_ms);
			json_kv_int(&j, "p95_ms", s->p95_ms);
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_close(&j, '}');
		json_end(&j);
		spool_run_info_free(r, 1);
		return (EXIT_OK);
	}
	end = r->finished_ms != 0 ? r->finished_ms : now;
	printf("run %lld of %s (version %d): %s\n", (long long)r->id,
	    r->pipeline, r->version, spool_run_state_name(r->state));
	printf("items: %lld: %lld succeeded, %lld failed, %lld skipped, %lld "
	    "cancelled, %lld running\n", (long long)r->total,
	    (long long)r->succeeded, (long long)r->failed,
	    (long long)r->skipped, (long long)r->cancelled,
	    (long long)r->running);
	printf("elapsed: %.1f s, %.1f items/s\n", (end - r->created_ms) / 1000.0,
	    end > r->created_ms ? (r->total - r->running) * 1000.0 /
	    (double)(end - r->created_ms) : 0.0);
	if (r->error != NULL) {
		printf("stopped: ");
		cmd_print_text(stdout, r->error, strlen(r->error), 500);
		putchar('\n');
	}
	if (r->hook_queue != NULL)
		printf("hook: %s, %s\n", r->hook_queue, r->hook_task_id != 0 ?
		    "enqueued" : "not enqueued");
	printf("%-20s %4s %8s %7s %8s %6s %7s %9s %9s %9s\n", "STAGE", "CONC",
	    "WAITING", "RUNNING", "DONE", "FAILED", "SKIPPED", "CANCELLED",
	    "AVG", "P95");
	for (i = 0; i < r->nstages; i++) {
		const spool_stage_status *s = &r->stages[i];

		snprintf(avg, sizeof avg, "%.3fs", s->avg_ms / 1000.0);
		snprintf(p95, sizeof p95, "%.3fs", s->p95_ms / 1000.0);
		printf("%-2d %-17.17s %4d %8lld %7lld %8lld %6lld %7lld %9lld "
		    "%9s %9s\n", s->index, s->name, s->concurrency,
		    (long long)s->waiting, (long long)s->running,
		    (long long)s->done, (long long)s->failed,
		    (long long)s->skipped, (long long)s->cancelled,
		    s->done > 0 ? avg : "-", s->done > 0 ? p95 : "-");
	}
	spool_run_info_free(r, 1);
	return (EXIT_OK);
}

const struct spool_cmd cmd_pipeline_status = {
	.name = "pipeline status",
	.usage = "RUN",
	.summary = "show a run: items and each stage's progress",
	.help =
	    "Per stage: tasks waiting (due, or in a retry delay) and running "
	    "(one worker\neach), items done there, failed or skipped there, "
	    "or cancelled; the average\nand 95th percentile (nearest rank) of "
	    "its succeeded attempts' durations.\n",
	.min_args = 1,
	.max_args = 1,
	.exec = status_exec
};

/* ---- items, history ------------------------------------------------------ */

static const struct cmd_opt items_opts[] = {
	{ "after", "ID", "start after this item id" },
	{ "limit", "N", "at most N items (default 100, at most 10000)" },
	{ NULL, NULL, NULL }
};

static int
items_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_item_list_opts o = SPOOL_ITEM_LIST_OPTS_INIT;
	spool_item_info	*it = NULL;
	struct json	 j;
	int64_t		 run, after = 0, limit = 100;
	size_t		 n, i;
	int		 rc;

	(void)argc;
	if ((rc = cmd_arg_id(c, "a run", NULL, argv[0], &run)) != EXIT_OK ||
	    (rc = cmd_opt_int(c, "after", 0, INT64_MAX, &after)) != 0 ||
	    (rc = cmd_opt_int(c, "limit", 1, 10000, &limit)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	o.after_id = after;
	o.limit = (size_t)limit;
	if ((rc = spool_item_list(&it, &n, c->q, run, &o)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_key(&j, "items");
		json_open(&j, '[');
		for (i = 0; i < n; i++) {
			json_open(&j, '{');
			json_kv_int(&j, "id", it[i].id);
			json_kv_str(&j, "state",
			    spool_item_state_name(it[i].state));
			json_kv_int(&j, "stage", it[i].stage);
			json_kv_str(&j, "stage_name", it[i].stage_name);
			json_kv_int(&j, "task_id", it[i].task_id);
			json_kv_payload(&j, "result", it[i].result,
			    it[i].result_len);
			json_kv_str(&j, "error", it[i].error);
			json_kv_time(&j, "created_ms", it[i].created_ms);
			json_kv_time(&j, "finished_ms", it[i].finished_ms);
			json_close(&j, '}');
		}
		cmd_json_page(&j, n == (size_t)limit ? it[n - 1].id : 0);
	} else {
		printf("%-10s %-10s %-20s %-10s %s\n", "ITEM", "STATE", "STAGE",
		    "TASK", "RESULT / ERROR");
		for (i = 0; i < n; i++) {
			printf("%-10lld %-10s %-2d %-17.17s %-10lld ",
			    (long long)it[i].id,
			    spool_item_state_name(it[i].state), it[i].stage,
			    it[i].stage_name != NULL ? it[i].stage_name : "-",
			    (long long)it[i].task_id);
			if (it[i].result != NULL)
				cmd_print_text(stdout, it[i].result,
				    it[i].result_len, 60);
			else if (it[i].error != NULL &&
			    it[i].state != SPOOL_ITEM_RUNNING)
				cmd_print_text(stdout, it[i].error,
				    strlen(it[i].error), 60);
			putchar('\n');
		}
	}
	spool_item_info_free(it, n);
	return (EXIT_OK);
}

const struct spool_cmd cmd_pipeline_items = {
	.name = "pipeline items",
	.usage = "RUN",
	.summary = "list a run's items: state, stage, result",
	.opts = items_opts,
	.min_args = 1,
	.max_args = 1,
	.exec = items_exec
};

static int
history_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_stage_attempt_info	*h = NULL;
	struct json		 j;
	int64_t			 item, now = cmd_now_ms();
	char			 t[32], d[32];
	size_t			 n, i;
	int			 rc;

	(void)argc;
	if ((rc = cmd_arg_id(c, "an item", NULL, argv[0], &item)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = cmd_item_history_all(c->q, item, &h, &n)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_kv_int(&j, "item", item);
		json_key(&j, "attempts");
		json_open(&j, '[');
		for (i = 0; i < n; i++) {
			json_open(&j, '{');
			json_kv_int(&j, "stage_index", h[i].index);
			json_kv_str(&j, "stage", h[i].stage);
			json_kv_int(&j, "task_id", h[i].task_id);
			json_kv_int(&j, "attempt", h[i].attempt);
			json_kv_str(&j, "worker", h[i].worker);
			json_kv_time(&j, "started_ms", h[i].started_ms);
			json_kv_time(&j, "finished_ms", h[i].finished_ms);
			json_key(&j, "duration_ms");
			if (h[i].finished_ms != 0)
				json_int(&j, h[i].finished_ms - h[i].started_ms);
			else
				json_null(&j);
			json_kv_str(&j, "outcome",
			    spool_attempt_outcome_name(h[i].outcome));
			json_kv_str(&j, "error", h[i].error);
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_close(&j, '}');
		json_end(&j);
	} else {
		printf("%-20s %-8s %7s %-10s %-23s %9s  %s\n", "STAGE", "TASK",
		    "ATTEMPT", "OUTCOME", "STARTED (UTC)", "DURATION", "ERROR");
		for (i = 0; i < n; i++) {
			cmd_fmt_time(t, sizeof t, h[i].started_ms);
			snprintf(d, sizeof d, "%.3fs", ((h[i].finished_ms != 0 ?
			    h[i].finished_ms : now) - h[i].started_ms) / 1000.0);
			printf("%-2d %-17.17s %-8lld %7d %-10s %-23s %9s  ",
			    h[i].index, h[i].stage, (long long)h[i].task_id,
			    h[i].attempt, cmd_attempt_outcome(h[i].outcome), t, d);
			if (h[i].error != NULL)
				cmd_print_text(stdout, h[i].error,
				    strlen(h[i].error), 200);
			putchar('\n');
		}
	}
	spool_stage_attempt_info_free(h, n);
	return (EXIT_OK);
}

const struct spool_cmd cmd_pipeline_history = {
	.name = "pipeline history",
	.usage = "ITEM",
	.summary = "show every stage attempt of an item",
	.help =
	    "One line per attempt, in stage order: start, duration, outcome "
	    "(succeeded,\nfailed, timed_out, lease_lost, cancelled, or "
	    "running for one under way) and\nits error.  An attempt whose "
	    "worker died shows as lease_lost: only such an\nattempt may have "
	    "run a stage twice.\n",
	.min_args = 1,
	.max_args = 1,
	.exec = history_exec
};

/* ---- wait, cancel -------------------------------------------------------- */

static const struct cmd_opt wait_opts[] = {
	{ "timeout", "DURATION", "give up after DURATION (exit 75)" },
	{ NULL, NULL, NULL }
};

static int
wait_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_run_info	*r = NULL;
	struct json	 j;
	int64_t		 id, timeout = -1;
	int		 rc;

	(void)argc;
	if ((rc = cmd_arg_id(c, "a run", NULL, argv[0], &id)) != EXIT_OK ||
	    (rc = cmd_opt_duration(c, "timeout", &timeout)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_run_wait(&r, c->q, id, timeout)) == SPOOL_ETIMEDOUT) {
		rc = cmd_error(c, EXIT_TEMPFAIL, "timed out: run %lld is %s "
		    "(%lld of %lld items finished)", (long long)id,
		    spool_run_state_name(r->state),
		    (long long)(r->total - r->running), (long long)r->total);
		spool_run_info_free(r, 1);
		return (rc);
	}
	if (rc != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		cmd_json_run_fields(&j, r, cmd_now_ms());
		json_close(&j, '}');
		json_end(&j);
	} else
		printf("run %lld finished: %lld items, %lld succeeded, %lld "
		    "failed, %lld skipped, %lld cancelled\n", (long long)id,
		    (long long)r->total, (long long)r->succeeded,
		    (long long)r->failed, (long long)r->skipped,
		    (long long)r->cancelled);
	rc = EXIT_OK;
	if (r->succeeded != r->total)
		rc = cmd_error(c, EXIT_NO, "run %lld: %lld of %lld items did not "
		    "succeed", (long long)id,
		    (long long)(r->total - r->succeeded), (long long)r->total);
	spool_run_info_free(r, 1);
	return (rc);
}

const struct spool_cmd cmd_pipeline_wait = {
	.name = "pipeline wait",
	.usage = "RUN",
	.summary = "wait for a run to finish",
	.help =
	    "Prints its counts, then exits 0 if every item succeeded, 1 if "
	    "not, 75 if\n--timeout passed first.\n",
	.opts = wait_opts,
	.min_args = 1,
	.max_args = 1,
	.exec = wait_exec
};

static int
cancel_exec(struct cmd_ctx *c, int argc, char **argv)
{
	int64_t	 id;
	int	 rc;

	(void)argc;
	if ((rc = cmd_arg_id(c, "a run", NULL, argv[0], &id)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_run_cancel(c->q, id)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json)
		printf("{\"run\":%lld}\n", (long long)id);
	else
		printf("cancelled what was left of run %lld\n", (long long)id);
	return (EXIT_OK);
}

const struct spool_cmd cmd_pipeline_cancel = {
	.name = "pipeline cancel",
	.usage = "RUN",
	.summary = "cancel what is left of a run",
	.help =
	    "Waiting items are cancelled at once; running ones are told to "
	    "stop (their\ncommands get SIGTERM) and are cancelled when they "
	    "end.\n",
	.min_args = 1,
	.max_args = 1,
	.exec = cancel_exec
};
