/*
 * cmd-init.c -- "spool init": create a database, or bring an existing one
 * up to date.  Safe to run again and from several processes at once.
 */
#include "config.h"

#include "cmd.h"

/* Create or migrate the database and say where it is. */
static int
init_exec(struct cmd_ctx *c, int argc, char **argv)
{
	struct json	 j;
	int		 rc;

	(void)argc;
	(void)argv;
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_kv_str(&j, "db", c->db_path);
		json_kv_str(&j, "version", spool_version());
		json_close(&j, '}');
		json_end(&j);
	} else
		printf("spool database ready: %s\n", c->db_path);
	return (EXIT_OK);
}

const struct spool_cmd cmd_init = {
	.name = "init",
	.usage = "",
	.summary = "create a database (mode 0600) or bring it up to date",
	.help = "Running it again on a spool database changes nothing.\n",
	.flags = CMD_CREATE,
	.exec = init_exec
};
