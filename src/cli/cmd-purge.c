/*
 * cmd-purge.c -- "spool purge QUEUE --yes": delete a queue's waiting
 * tasks.  Running and finished tasks stay.
 */
#include "config.h"

#include "cmd.h"

static const struct cmd_opt purge_opts[] = {
	{ "yes", NULL, "really delete" },
	{ "dry-run", NULL, "only count what would be deleted" },
	{ NULL, NULL, NULL }
};

static int
purge_exec(struct cmd_ctx *c, int argc, char **argv)
{
	struct json	 j;
	int64_t		 n;
	int		 rc, dry = cmd_opt(c, "dry-run") != NULL;

	(void)argc;
	if (dry && cmd_opt(c, "yes") != NULL)
		return (cmd_usage_error(c, "give --yes or --dry-run, not both"));
	if (!dry && cmd_opt(c, "yes") == NULL)
		return (cmd_usage_error(c, "refusing to delete without --yes "
		    "(--dry-run counts)"));
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_purge(&n, c->q, argv[0], dry)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_kv_str(&j, "queue", argv[0]);
		json_kv_int(&j, dry ? "would_delete" : "deleted", n);
		json_close(&j, '}');
		json_end(&j);
	} else
		printf("%s %lld ready tasks of %s\n", dry ? "would delete" :
		    "deleted", (long long)n, argv[0]);
	return (EXIT_OK);
}

const struct spool_cmd cmd_purge = {
	.name = "purge",
	.usage = "QUEUE",
	.summary = "delete the waiting (ready and scheduled) tasks of a queue",
	.help =
	    "Running tasks and finished ones (see 'spool prune') are kept.  "
	    "Deletes in small\ntransactions, so workers are never blocked for "
	    "long.\n",
	.opts = purge_opts,
	.min_args = 1,
	.max_args = 1,
	.exec = purge_exec
};
