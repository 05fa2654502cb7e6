/*
 * cmd-prune.c -- "spool prune": delete finished tasks past their queue's
 * retention (or an age given here), with their results and history.
 */
#include "config.h"

#include "cmd.h"

static const struct cmd_opt prune_opts[] = {
	{ "queue", "QUEUE", "only this queue" },
	{ "older-than", "DURATION", "instead of each queue's retention" },
	{ NULL, NULL, NULL }
};

static int
prune_exec(struct cmd_ctx *c, int argc, char **argv)
{
	const char	*queue = cmd_opt(c, "queue");
	struct json	 j;
	int64_t		 n, age = -1;
	int		 rc;

	(void)argc;
	(void)argv;
	if ((rc = cmd_opt_duration(c, "older-than", &age)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_prune(&n, c->q, queue, age)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_kv_int(&j, "pruned", n);
		json_close(&j, '}');
		json_end(&j);
	} else
		printf("pruned %lld finished tasks\n", (long long)n);
	return (EXIT_OK);
}

const struct spool_cmd cmd_prune = {
	.name = "prune",
	.usage = "",
	.summary = "delete finished tasks older than their queue's retention",
	.help =
	    "Succeeded, dead and cancelled tasks go, with their results and "
	    "history.  A queue\nwith retention 0 keeps them forever unless "
	    "--older-than is given.\n",
	.opts = prune_opts,
	.exec = prune_exec
};
