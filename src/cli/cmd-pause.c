/*
 * cmd-pause.c -- "spool pause" and "spool resume": stop and restart
 * claims from a queue.  Enqueue still works on a paused queue.
 */
#include "config.h"

#include "cmd.h"

/* Set the paused flag of the queue named by the operand. */
static int
pause_set(struct cmd_ctx *c, const char *queue, int paused)
{
	spool_queue_opts o = SPOOL_QUEUE_OPTS_INIT;
	struct json	 j;
	int		 rc;

	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	o.set = SPOOL_QUEUE_PAUSED;
	o.paused = paused;
	if ((rc = spool_queue_set(c->q, queue, &o)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_kv_str(&j, "queue", queue);
		json_key(&j, "paused");
		json_bool(&j, paused);
		json_close(&j, '}');
		json_end(&j);
	} else
		printf("%s %s\n", paused ? "paused" : "resumed", queue);
	return (EXIT_OK);
}

static int
pause_exec(struct cmd_ctx *c, int argc, char **argv)
{
	(void)argc;
	return (pause_set(c, argv[0], 1));
}

static int
resume_exec(struct cmd_ctx *c, int argc, char **argv)
{
	(void)argc;
	return (pause_set(c, argv[0], 0));
}

const struct spool_cmd cmd_pause = {
	.name = "pause",
	.usage = "QUEUE",
	.summary = "stop claims from a queue (running tasks go on)",
	.min_args = 1,
	.max_args = 1,
	.exec = pause_exec
};

const struct spool_cmd cmd_resume = {
	.name = "resume",
	.usage = "QUEUE",
	.summary = "let workers claim from a paused queue again",
	.min_args = 1,
	.max_args = 1,
	.exec = resume_exec
};
