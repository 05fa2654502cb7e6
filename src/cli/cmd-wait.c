/*
 * cmd-wait.c -- "spool wait ID": block until a task is final, print its
 * result, and exit 0 if it succeeded, 1 if not, 75 on --timeout.
 */
#include "config.h"

#include "cmd.h"

static const struct cmd_opt wait_opts[] = {
	{ "timeout", "DURATION", "give up after DURATION (exit 75)" },
	{ NULL, NULL, NULL }
};

static int
wait_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_task_info	*t = NULL;
	struct json	 j;
	const char	*reason;
	int64_t		 id, timeout = -1;
	int		 rc;

	(void)argc;
	if ((rc = cmd_arg_id(c, "a task", NULL, argv[0], &id)) != EXIT_OK ||
	    (rc = cmd_opt_duration(c, "timeout", &timeout)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_task_wait(&t, c->q, id, timeout)) == SPOOL_ETIMEDOUT) {
		spool_task_info_free(t, 1);
		return (cmd_error(c, EXIT_TEMPFAIL, "timed out: task %lld is "
		    "not finished", (long long)id));
	}
	if (rc != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_kv_int(&j, "id", id);
		json_kv_str(&j, "state", spool_state_name(t->state));
		json_kv_str(&j, "dead_reason",
		    spool_dead_reason_name(t->dead_reason));
		json_kv_str(&j, "last_error", t->last_error);
		if (t->has_result)
			json_kv_payload(&j, "result", t->result, t->result_len);
		else {
			json_key(&j, "result");
			json_null(&j);
		}
		json_close(&j, '}');
		json_end(&j);
	} else if (t->has_result)
		fwrite(t->result, 1, t->result_len, stdout);
	rc = EXIT_OK;
	reason = spool_dead_reason_name(t->dead_reason);
	if (t->state != SPOOL_SUCCEEDED)
		rc = cmd_error(c, EXIT_NO, "task %lld is %s%s%s%s%s%s",
		    (long long)id, spool_state_name(t->state),
		    reason != NULL ? " (" : "",
		    reason != NULL ? reason : "",
		    reason != NULL ? ")" : "",
		    t->last_error ? ": " : "",
		    t->last_error ? t->last_error : "");
	spool_task_info_free(t, 1);
	return (rc);
}

const struct spool_cmd cmd_wait = {
	.name = "wait",
	.usage = "ID",
	.summary = "wait for a task to finish and print its result",
	.help =
	    "Exits 0 if the task succeeded (its result is printed as is), 1 "
	    "if it is dead or\ncancelled, 75 if --timeout passed first.\n",
	.opts = wait_opts,
	.min_args = 1,
	.max_args = 1,
	.exec = wait_exec
};
