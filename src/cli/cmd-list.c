/*
 * cmd-list.c -- "spool list": a page of tasks, filtered by queue, state
 * and batch, oldest first (or newest with --desc); --after pages on by id.
 */
#include "config.h"

#include <string.h>

#include "cmd.h"

static const struct cmd_opt list_opts[] = {
	{ "queue", "QUEUE", "only this queue" },
	{ "state", "STATE", "ready, claimed, running, expired, succeeded, dead or cancelled" },
	{ "batch", "ID", "only the tasks of this batch" },
	{ "after", "ID", "start after this id (the last one of a page)" },
	{ "limit", "N", "at most N tasks (default 50, at most 10000)" },
	{ "desc", NULL, "newest first (then --after pages to older ids)" },
	{ NULL, NULL, NULL }
};

/* One task as a JSON object (shared with cmd-show.c). */
void
cmd_json_task(struct json *j, const spool_task_info *t)
{
	json_open(j, '{');
	json_kv_int(j, "id", t->id);
	json_kv_str(j, "queue", t->queue);
	json_kv_str(j, "state", spool_state_name(t->state));
	json_kv_int(j, "priority", t->priority);
	json_kv_int(j, "attempts", t->attempts);
	json_kv_int(j, "max_attempts", t->max_attempts);
	json_kv_time(j, "run_at_ms", t->run_at_ms);
	json_kv_time(j, "deadline_ms", t->deadline_ms);
	json_kv_time(j, "created_ms", t->created_ms);
	json_kv_time(j, "started_ms", t->started_ms);
	json_kv_time(j, "finished_ms", t->finished_ms);
	json_kv_str(j, "key", t->key);
	json_kv_str(j, "lease_owner", t->lease_owner);
	json_kv_time(j, "lease_until_ms", t->lease_until_ms);
	json_key(j, "cancel_requested");
	json_bool(j, t->cancel_requested);
	json_kv_str(j, "last_error", t->last_error);
	json_kv_str(j, "dead_reason", spool_dead_reason_name(t->dead_reason));
	json_key(j, "batch_id");
	if (t->batch_id != 0)
		json_int(j, t->batch_id);
	else
		json_null(j);
	json_kv_payload(j, "payload", t->payload, t->payload_len);
	json_close(j, '}');
}

static int
list_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_list_opts	 o = SPOOL_LIST_OPTS_INIT;
	spool_task_info	*t = NULL;
	struct json	 j;
	const char	*state = cmd_opt(c, "state");
	char		 when[32];
	int64_t		 limit = 50;
	size_t		 n, i;
	int		 rc;

	(void)argc;
	(void)argv;
	o.queue = cmd_opt(c, "queue");
	if (state != NULL && (rc = cmd_state(c, state, &o.state)) != EXIT_OK)
		return (rc);
	if ((rc = cmd_opt_int(c, "after", 0, INT64_MAX, &o.after_id)) != 0 ||
	    (rc = cmd_opt_int(c, "batch", 1, INT64_MAX, &o.batch_id)) != 0 ||
	    (rc = cmd_opt_int(c, "limit", 1, 10000, &limit)) != EXIT_OK)
		return (rc);
	o.limit = (size_t)limit;
	o.descending = cmd_opt(c, "desc") != NULL;
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_list(&t, &n, c->q, &o)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_key(&j, "tasks");
		json_open(&j, '[');
		for (i = 0; i < n; i++)
			cmd_json_task(&j, &t[i]);
		cmd_json_page(&j, n == o.limit ? t[n - 1].id : 0);
	} else {
		printf("%-8s %-12s %-9s %5s %6s  %-23s  %s\n", "ID", "QUEUE",
		    "STATE", "PRI", "TRIES", "RUN AT (UTC)", "PAYLOAD");
		for (i = 0; i < n; i++) {
			char	 tries[24];

			cmd_fmt_time(when, sizeof when, t[i].run_at_ms);
			snprintf(tries, sizeof tries, "%d/%d", t[i].attempts,
			    t[i].max_attempts);
			printf("%-8lld ", (long long)t[i].id);
			cmd_print_text(stdout, t[i].queue, strlen(t[i].queue),
			    12);
			printf("%*s %-9s %5d %6s  %-23s  ",
			    strlen(t[i].queue) < 12 ?
			    (int)(12 - strlen(t[i].queue)) : 0, "",
			    spool_state_name(t[i].state), t[i].priority, tries,
			    when);
			cmd_print_text(stdout, t[i].payload, t[i].payload_len,
			    40);
			putchar('\n');
		}
	}
	spool_task_info_free(t, n);
	return (EXIT_OK);
}

const struct spool_cmd cmd_list = {
	.name = "list",
	.usage = "",
	.summary = "list tasks, filtered by queue, state and batch",
	.opts = list_opts,
	.exec = list_exec
};
