/*
 * cmd-retry.c -- "spool retry": a dead or cancelled task (or every one of
 * a queue) gets a fresh set of attempts.
 */
#include "config.h"

#include "cmd.h"

static const struct cmd_opt retry_opts[] = {
	{ "queue", "QUEUE", "retry every dead task of QUEUE" },
	{ "state", "STATE", "with --queue: dead (default) or cancelled" },
	{ NULL, NULL, NULL }
};

static int
retry_exec(struct cmd_ctx *c, int argc, char **argv)
{
	const char	*queue = cmd_opt(c, "queue"), *sname = cmd_opt(c, "state");
	struct json	 j;
	int64_t		 id = 0, n = 1;
	int		 rc, state = SPOOL_DEAD;

	if (queue == NULL && argc != 1)
		return (cmd_usage_error(c, "give a task ID or --queue QUEUE"));
	if (queue != NULL && argc != 0)
		return (cmd_usage_error(c, "give a task ID or --queue QUEUE, "
		    "not both"));
	if (sname != NULL && queue == NULL)
		return (cmd_usage_error(c, "--state needs --queue"));
	if (sname != NULL && (rc = cmd_state(c, sname, &state)) != EXIT_OK)
		return (rc);
	if (state != SPOOL_DEAD && state != SPOOL_CANCELLED)
		return (cmd_usage_error(c, "--state must be dead or cancelled"));
	if (argc == 1 && (rc = cmd_arg_id(c, "a task", NULL, argv[0],
	    &id)) != EXIT_OK)
		return (rc);
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if (queue != NULL)
		rc = spool_retry_all(&n, c->q, queue, state);
	else
		rc = spool_retry(c->q, id);
	if (rc != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		if (queue == NULL)
			json_kv_int(&j, "id", id);
		else
			json_kv_str(&j, "queue", queue);
		json_kv_int(&j, "retried", n);
		json_close(&j, '}');
		json_end(&j);
	} else if (queue == NULL)
		printf("retrying task %lld\n", (long long)id);
	else
		printf("retrying %lld %s tasks of %s\n", (long long)n,
		    spool_state_name(state), queue);
	return (EXIT_OK);
}

const struct spool_cmd cmd_retry = {
	.name = "retry",
	.usage = "[ID]",
	.summary = "make a dead or cancelled task ready again",
	.help =
	    "The task gets a fresh set of attempts and is due at once.  With "
	    "--queue, every\ndead (or cancelled) task of the queue is "
	    "retried; tasks whose idempotency key\nis now held by another "
	    "unfinished task are skipped.\n",
	.opts = retry_opts,
	.max_args = 1,
	.exec = retry_exec
};
