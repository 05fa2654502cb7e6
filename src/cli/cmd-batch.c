/*
 * cmd-batch.c -- "spool batch create|add|close|status|list|wait": batches
 * of tasks for fan-in.  Each subcommand is a command of its own ("batch
 * add" in the table), so the framework checks its options and operands.
 *
 * A batch is open (tasks join it with "batch add" or "enqueue --batch"),
 * closed (no more members) or finished (closed, no member ready or
 * running).  The library keeps its counters in the members' transactions
 * and enqueues its completion hook exactly once; this file only asks and
 * shows.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cmd.h"

/* The name of a batch state, never NULL. */
static const char *
batch_state(int state)
{
	const char	*name = spool_batch_state_name(state);

	return (name != NULL ? name : "in an unknown state");
}

/* Refuse (exit 1) a batch that is missing or not open.  The enqueue
 * checks again in its transaction; this gives one plain message, and
 * refuses an enqueue of no task at all too. */
int
cmd_batch_check_open(struct cmd_ctx *c, int64_t id)
{
	spool_batch_info	*b = NULL;
	int			 rc, state;

	if ((rc = spool_batch_get(&b, c->q, id)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	state = b->state;
	spool_batch_info_free(b, 1);
	if (state != SPOOL_BATCH_OPEN)
		return (cmd_error(c, EXIT_NO, "batch %lld is %s: no task may "
		    "join it", (long long)id, batch_state(state)));
	return (EXIT_OK);
}

/* One batch as a JSON object (create, close, status, list, wait). */
/* One batch as a JSON object (shared with the HTTP server). */
void
cmd_json_batch(struct json *j, const spool_batch_info *b)
{
	json_open(j, '{');
	json_kv_int(j, "id", b->id);
	json_kv_str(j, "description", b->description);
	json_kv_str(j, "state", spool_batch_state_name(b->state));
	json_kv_int(j, "total", b->total);
	json_kv_int(j, "pending", b->pending);
	json_kv_int(j, "running", b->running);
	json_kv_int(j, "succeeded", b->succeeded);
	json_kv_int(j, "failed", b->failed);
	json_kv_int(j, "dead", b->dead);
	json_kv_int(j, "cancelled", b->cancelled);
	json_kv_str(j, "hook_queue", b->hook_queue);
	json_kv_str(j, "hook_payload", b->hook_payload);
	json_kv_str(j, "hook_on", b->hook_on == SPOOL_HOOK_SUCCESS ?
	    "success" : "always");
	json_key(j, "hook_task_id");
	if (b->hook_task_id != 0)
		json_int(j, b->hook_task_id);
	else
		json_null(j);
	json_kv_time(j, "created_ms", b->created_ms);
	json_kv_time(j, "closed_ms", b->closed_ms);
	json_kv_time(j, "finished_ms", b->finished_ms);
	json_close(j, '}');
}

/* Print one batch as JSON, alone. */
static void
batch_json_print(const spool_batch_info *b)
{
	struct json	 j;

	json_init(&j, stdout);
	cmd_json_batch(&j, b);
	json_end(&j);
}

/* "50 tasks, 48 succeeded, 1 failed, 1 dead, 0 cancelled" and, while
 * some are, ", 3 pending, 1 running". */
static void
batch_counts(char *buf, size_t len, const spool_batch_info *b)
{
	size_t	 n;

	snprintf(buf, len, "%lld tasks, %lld succeeded, %lld failed, %lld "
	    "dead, %lld cancelled", (long long)b->total,
	    (long long)b->succeeded, (long long)b->failed, (long long)b->dead,
	    (long long)b->cancelled);
	n = strlen(buf);
	if (b->pending + b->running > 0)
		snprintf(buf + n, len - n, ", %lld pending, %lld running",
		    (long long)b->pending, (long long)b->running);
}

/* ---- create -------------------------------------------------------------- */

static const struct cmd_opt create_opts[] = {
	{ "description", "TEXT", "what the batch is for (UTF-8 text)" },
	{ "hook", "QUEUE", "when the batch finishes, enqueue a task on QUEUE" },
	{ "hook-payload", "TEXT", "the hook task's \"payload\" (JSON or text)" },
	{ "hook-on", "WHEN", "always (default), or success: only if all succeeded" },
	{ NULL, NULL, NULL }
};

static int
create_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_batch_opts	 o = SPOOL_BATCH_OPTS_INIT;
	spool_batch_info	*b = NULL;
	const char		*on = cmd_opt(c, "hook-on");
	int64_t			 id;
	int			 rc;

	(void)argc;
	(void)argv;
	o.description = cmd_opt(c, "description");
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
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_batch_create(&id, c->q, &o)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (!c->json) {
		printf("%lld\n", (long long)id);
		return (EXIT_OK);
	}
	if ((rc = spool_batch_get(&b, c->q, id)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	batch_json_print(b);
	spool_batch_info_free(b, 1);
	return (EXIT_OK);
}

const struct spool_cmd cmd_batch_create = {
	.name = "batch create",
	.usage = "",
	.summary = "create an open batch and print its id",
	.help =
	    "Tasks join the batch with 'spool batch add ID' or 'spool enqueue "
	    "--batch ID';\n'spool batch close ID' says no more will.  Once it "
	    "is closed and every member\nhas finished, the batch is finished "
	    "and, with --hook, one task is enqueued on\nthe hook queue, "
	    "exactly once, with the JSON payload\n"
	    "  {\"batch\":ID,\"description\":...,\"total\":N,\"succeeded\":N,"
	    "\"failed\":N,\n   \"dead\":N,\"cancelled\":N,\"payload\":"
	    "HOOK-PAYLOAD}\n"
	    "With --hook-on success the hook is enqueued only if every member "
	    "succeeded\n(or, once some are retried with 'spool retry', when "
	    "they do).\n",
	.opts = create_opts,
	.exec = create_exec
};

/* ---- add ----------------------------------------------------------------- */

static const struct cmd_opt add_opts[] = {
	{ "priority", "N", "higher runs first (default: the queue's)" },
	{ "delay", "DURATION", "due this long from now" },
	{ "at", "TIME", "due at TIME: 2026-11-27T10:00:00Z (UTC) or @SECONDS" },
	{ "deadline", "DURATION", "dead ('expired') unless started within DURATION" },
	{ "max-attempts", "N", "attempts before a task is dead (default: the queue's)" },
	{ "lines", NULL, "one task per line of stdin" },
	{ "wait", "DURATION", "queue full: wait this long for room (exit 75 then)" },
	{ NULL, NULL, NULL }
};

static int
add_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	struct cmd_tasks	 ts;
	const char		*queue = argv[1];
	char			*buf;
	int64_t			 id;
	size_t			 len;
	int			 rc, i, dashes = 0;

	memset(&ts, 0, sizeof ts);
	if ((rc = cmd_arg_id(c, "a batch", NULL, argv[0], &id)) != EXIT_OK ||
	    (rc = cmd_enqueue_opts(c, &o)) != EXIT_OK)
		return (rc);
	o.batch_id = id;
	for (i = 2; i < argc; i++)
		dashes += strcmp(argv[i], "-") == 0;
	if (cmd_opt(c, "lines") != NULL && argc > 2)
		return (cmd_usage_error(c, "--lines reads payloads from stdin: "
		    "give no PAYLOAD"));
	if (dashes > 1)
		return (cmd_usage_error(c, "'-' (stdin) may be given once"));
	for (i = 2; i < argc; i++)
		if (strcmp(argv[i], "-") != 0 &&
		    strlen(argv[i]) > SPOOL_PAYLOAD_MAX)
			return (cmd_error(c, EXIT_DATA, "payload %d too large "
			    "(%zu bytes, at most %d)", i - 1, strlen(argv[i]),
			    SPOOL_PAYLOAD_MAX));

	if (cmd_opt(c, "lines") != NULL)
		return (cmd_tasks_lines(c, queue, &o, id));
	/* The tasks, in the order given; then one transaction. */
	if (argc == 2)
		rc = cmd_tasks_add(c, &ts, queue, "", 0, NULL, &o);
	for (i = 2; i < argc && rc == EXIT_OK; i++) {
		if (strcmp(argv[i], "-") != 0) {
			rc = cmd_tasks_add(c, &ts, queue, argv[i],
			    strlen(argv[i]), NULL, &o);
			continue;
		}
		if ((rc = cmd_read_stdin(c, &buf, &len)) == EXIT_OK)
			rc = cmd_tasks_add(c, &ts, queue, buf, len, buf, &o);
	}
	if (rc != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK ||
	    (rc = cmd_batch_check_open(c, id)) != EXIT_OK)
		goto out;
	rc = cmd_tasks_commit(c, &ts, id);
out:
	cmd_tasks_free(&ts);
	return (rc);
}

const struct spool_cmd cmd_batch_add = {
	.name = "batch add",
	.usage = "ID QUEUE [PAYLOAD|-]...",
	.summary = "add tasks to an open batch",
	.help =
	    "Each PAYLOAD operand is a task ('-': stdin, once); none is one "
	    "task with an empty\npayload; --lines makes one task per "
	    "non-empty line of stdin.  All of them join\nbatch ID in one "
	    "transaction, or none does: exit 1 if the batch is missing or\n"
	    "closed, 75 if the queue's depth limit has no room for them all "
	    "(at once, or\nafter --wait DURATION).  The options apply to "
	    "every task.  There is no --key:\nuse 'spool enqueue --batch ID "
	    "--key KEY' for a task that must be added once.\n",
	.opts = add_opts,
	.min_args = 2,
	.max_args = -1,
	.exec = add_exec
};

/* ---- close --------------------------------------------------------------- */

static int
close_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_batch_info	*b = NULL;
	char			 counts[256];
	int64_t			 id;
	int			 rc, was;

	(void)argc;
	if ((rc = cmd_arg_id(c, "a batch", NULL, argv[0], &id)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_batch_get(&b, c->q, id)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	was = b->state;
	spool_batch_info_free(b, 1);
	b = NULL;
	if ((rc = spool_batch_close(c->q, id)) != SPOOL_OK ||
	    (rc = spool_batch_get(&b, c->q, id)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	batch_counts(counts, sizeof counts, b);
	if (c->json)
		batch_json_print(b);
	else if (was != SPOOL_BATCH_OPEN)
		printf("batch %lld was %s already: %s\n", (long long)id,
		    batch_state(was), counts);
	else
		printf("closed batch %lld%s: %s\n", (long long)id,
		    b->state == SPOOL_BATCH_FINISHED ? ", finished" : "", counts);
	spool_batch_info_free(b, 1);
	return (EXIT_OK);
}

const struct spool_cmd cmd_batch_close = {
	.name = "batch close",
	.usage = "ID",
	.summary = "close a batch: no more tasks may join it",
	.help =
	    "If every member has finished already, the batch finishes now and "
	    "its hook is\nenqueued.  Closing a closed or finished batch "
	    "changes nothing (exit 0).\n",
	.min_args = 1,
	.max_args = 1,
	.exec = close_exec
};

/* ---- status -------------------------------------------------------------- */

/* "label:  time" lines, skipping absent times. */
static void
status_time(const char *label, int64_t ms)
{
	char	 buf[32];

	if (ms == 0)
		return;
	cmd_fmt_time(buf, sizeof buf, ms);
	printf("%-13s %s UTC\n", label, buf);
}

static int
status_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_batch_info	*b = NULL;
	int64_t			 id;
	int			 rc;

	(void)argc;
	if ((rc = cmd_arg_id(c, "a batch", NULL, argv[0], &id)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_batch_get(&b, c->q, id)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		batch_json_print(b);
		spool_batch_info_free(b, 1);
		return (EXIT_OK);
	}
	printf("%-13s %lld\n", "id:", (long long)b->id);
	if (b->description != NULL) {
		printf("%-13s ", "description:");
		cmd_print_text(stdout, b->description, strlen(b->description),
		    500);
		putchar('\n');
	}
	printf("%-13s %s\n", "state:", batch_state(b->state));
	printf("%-13s %lld\n", "total:", (long long)b->total);
	printf("%-13s %lld\n", "pending:", (long long)b->pending);
	printf("%-13s %lld\n", "running:", (long long)b->running);
	printf("%-13s %lld\n", "succeeded:", (long long)b->succeeded);
	printf("%-13s %lld\n", "failed:", (long long)b->failed);
	printf("%-13s %lld\n", "dead:", (long long)b->dead);
	printf("%-13s %lld\n", "cancelled:", (long long)b->cancelled);
	if (b->hook_queue == NULL)
		printf("%-13s none\n", "hook:");
	else {
		printf("%-13s ", "hook:");
		cmd_print_text(stdout, b->hook_queue, strlen(b->hook_queue),
		    200);
		printf(" (%s)", b->hook_on == SPOOL_HOOK_SUCCESS ?
		    "on success" : "always");
		if (b->hook_task_id != 0)
			printf(", task %lld\n", (long long)b->hook_task_id);
		else
			printf(", not enqueued\n");
		if (b->hook_payload != NULL) {
			printf("%-13s ", "hook payload:");
			cmd_print_text(stdout, b->hook_payload,
			    strlen(b->hook_payload), 2000);
			putchar('\n');
		}
	}
	status_time("created:", b->created_ms);
	status_time("closed:", b->closed_ms);
	status_time("finished:", b->finished_ms);
	spool_batch_info_free(b, 1);
	return (EXIT_OK);
}

const struct spool_cmd cmd_batch_status = {
	.name = "batch status",
	.usage = "ID",
	.summary = "show a batch: state, counters, hook, times",
	.help =
	    "Members are counted by state: pending (ready, due or not), "
	    "running, succeeded,\nfailed (dead by a permanent failure), dead "
	    "(attempts used up, or expired) and\ncancelled; total is their "
	    "sum.\n",
	.min_args = 1,
	.max_args = 1,
	.exec = status_exec
};

/* ---- list ---------------------------------------------------------------- */

static const struct cmd_opt list_opts[] = {
	{ "state", "STATE", "open, closed or finished" },
	{ "after", "ID", "start after this id (the last one of a page)" },
	{ "limit", "N", "at most N batches (default 50, at most 10000)" },
	{ NULL, NULL, NULL }
};

static int
list_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_batch_list_opts	 o = SPOOL_BATCH_LIST_OPTS_INIT;
	spool_batch_info	*b = NULL;
	struct json		 j;
	const char		*sname = cmd_opt(c, "state");
	int64_t			 after = 0, limit = 50;
	size_t			 n, i;
	int			 rc, state = 0, s;

	(void)argc;
	(void)argv;
	if (sname != NULL) {
		for (s = SPOOL_BATCH_OPEN; s <= SPOOL_BATCH_FINISHED; s++)
			if (strcmp(spool_batch_state_name(s), sname) == 0)
				state = s;
		if (state == 0)
			return (cmd_usage_error(c, "unknown batch state '%s' "
			    "(open, closed, finished)", sname));
	}
	if ((rc = cmd_opt_int(c, "after", 0, INT64_MAX, &after)) != 0 ||
	    (rc = cmd_opt_int(c, "limit", 1, 10000, &limit)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	o.state = state;
	o.after_id = after;
	o.limit = (size_t)limit;
	if ((rc = spool_batch_list(&b, &n, c->q, &o)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_key(&j, "batches");
		json_open(&j, '[');
		for (i = 0; i < n; i++)
			cmd_json_batch(&j, &b[i]);
		cmd_json_page(&j, n == (size_t)limit ? b[n - 1].id : 0);
	} else {
		printf("%-8s %-9s %7s %7s %7s %9s %6s %6s %9s  %s\n", "ID",
		    "STATE", "TOTAL", "PENDING", "RUNNING", "SUCCEEDED",
		    "FAILED", "DEAD", "CANCELLED", "DESCRIPTION");
		for (i = 0; i < n; i++) {
			printf("%-8lld %-9s %7lld %7lld %7lld %9lld %6lld "
			    "%6lld %9lld  ", (long long)b[i].id,
			    batch_state(b[i].state), (long long)b[i].total,
			    (long long)b[i].pending, (long long)b[i].running,
			    (long long)b[i].succeeded, (long long)b[i].failed,
			    (long long)b[i].dead, (long long)b[i].cancelled);
			if (b[i].description != NULL)
				cmd_print_text(stdout, b[i].description,
				    strlen(b[i].description), 40);
			putchar('\n');
		}
	}
	spool_batch_info_free(b, n);
	return (EXIT_OK);
}

const struct spool_cmd cmd_batch_list = {
	.name = "batch list",
	.usage = "",
	.summary = "list batches, oldest first",
	.opts = list_opts,
	.exec = list_exec
};

/* ---- wait ---------------------------------------------------------------- */

static const struct cmd_opt wait_opts[] = {
	{ "timeout", "DURATION", "give up after DURATION (exit 75)" },
	{ NULL, NULL, NULL }
};

static int
wait_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_batch_info	*b = NULL;
	char			 counts[256];
	int64_t			 id, timeout = -1;
	int			 rc;

	(void)argc;
	if ((rc = cmd_arg_id(c, "a batch", NULL, argv[0], &id)) != EXIT_OK ||
	    (rc = cmd_opt_duration(c, "timeout", &timeout)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_batch_wait(&b, c->q, id, timeout)) == SPOOL_ETIMEDOUT) {
		batch_counts(counts, sizeof counts, b);
		rc = cmd_error(c, EXIT_TEMPFAIL, "timed out: batch %lld is %s "
		    "(%s)%s", (long long)id, batch_state(b->state), counts,
		    b->state == SPOOL_BATCH_OPEN ? "; it finishes only once "
		    "closed ('spool batch close')" : "");
		spool_batch_info_free(b, 1);
		return (rc);
	}
	if (rc != SPOOL_OK)
		return (cmd_fail(c, rc));
	batch_counts(counts, sizeof counts, b);
	if (c->json)
		batch_json_print(b);
	else
		printf("batch %lld finished: %s\n", (long long)id, counts);
	rc = EXIT_OK;
	if (b->succeeded != b->total)
		rc = cmd_error(c, EXIT_NO, "batch %lld: %lld of %lld tasks did "
		    "not succeed", (long long)id,
		    (long long)(b->total - b->succeeded), (long long)b->total);
	spool_batch_info_free(b, 1);
	return (rc);
}

const struct spool_cmd cmd_batch_wait = {
	.name = "batch wait",
	.usage = "ID",
	.summary = "wait for a batch to finish",
	.help =
	    "A batch finishes once it is closed and none of its tasks is "
	    "pending or running.\nPrints its counters, then exits 0 if every "
	    "task succeeded, 1 if not, 75 if\n--timeout passed first.\n",
	.opts = wait_opts,
	.min_args = 1,
	.max_args = 1,
	.exec = wait_exec
};
