/*
 * cmd-cancel.c -- "spool cancel ID": a ready task is cancelled at once, a
 * running one is flagged so its worker can stop.
 */
#include "config.h"

#include "cmd.h"

static int
cancel_exec(struct cmd_ctx *c, int argc, char **argv)
{
	struct json	 j;
	int64_t		 id;
	int		 rc, running;

	(void)argc;
	if ((rc = cmd_arg_id(c, "a task", NULL, argv[0], &id)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_cancel(&running, c->q, id)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_kv_int(&j, "id", id);
		json_kv_str(&j, "state", running ? "running" : "cancelled");
		json_key(&j, "cancel_requested");
		json_bool(&j, running);
		json_close(&j, '}');
		json_end(&j);
	} else if (running)
		printf("task %lld is running: cancellation requested\n",
		    (long long)id);
	else
		printf("cancelled task %lld\n", (long long)id);
	return (EXIT_OK);
}

const struct spool_cmd cmd_cancel = {
	.name = "cancel",
	.usage = "ID",
	.summary = "cancel a task (a running one is asked to stop)",
	.help =
	    "A ready task is cancelled at once.  A running task is flagged: "
	    "its worker sees\nthe flag at its next heartbeat, and if the task "
	    "then fails or its lease\nexpires it ends cancelled instead of "
	    "being retried.\n",
	.min_args = 1,
	.max_args = 1,
	.exec = cancel_exec
};
