/*
 * cmd-show.c -- "spool show ID": one task with its result and the history
 * of its attempts.
 */
#include "config.h"

#include <string.h>

#include "cmd.h"

/* "label:  time" lines, skipping absent times. */
static void
show_time(const char *label, int64_t ms)
{
	char	 buf[32];

	if (ms == 0)
		return;
	cmd_fmt_time(buf, sizeof buf, ms);
	printf("%-13s %s UTC\n", label, buf);
}

static int
show_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_task_info		*t = NULL;
	spool_attempt_info	*a = NULL;
	struct json		 j;
	const char		*reason;
	char			 s[32], e[32], d[32];
	size_t			 n = 0, i;
	int64_t			 id;
	int			 rc;

	(void)argc;
	if ((rc = cmd_arg_id(c, "a task", NULL, argv[0], &id)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if ((rc = spool_task_get(&t, c->q, id)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	if ((rc = cmd_attempts_all(c->q, id, &a, &n)) != SPOOL_OK) {
		spool_task_info_free(t, 1);
		return (cmd_fail(c, rc));
	}
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_key(&j, "task");
		cmd_json_task(&j, t);
		json_key(&j, "result");
		if (t->has_result) {
			json_open(&j, '{');
			json_kv_payload(&j, "output", t->result, t->result_len);
			json_kv_int(&j, "duration_ms", t->duration_ms);
			json_close(&j, '}');
		} else
			json_null(&j);
		json_key(&j, "history");
		json_open(&j, '[');
		for (i = 0; i < n; i++) {
			json_open(&j, '{');
			json_kv_int(&j, "attempt", a[i].attempt);
			json_kv_str(&j, "worker", a[i].worker);
			json_kv_time(&j, "started_ms", a[i].started_ms);
			json_kv_time(&j, "finished_ms", a[i].finished_ms);
			json_kv_str(&j, "outcome",
			    spool_attempt_outcome_name(a[i].outcome));
			json_kv_str(&j, "error", a[i].error);
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_close(&j, '}');
		json_end(&j);
	} else {
		printf("%-13s %lld\n", "id:", (long long)t->id);
		printf("%-13s ", "queue:");
		cmd_print_text(stdout, t->queue, strlen(t->queue), 200);
		reason = spool_dead_reason_name(t->dead_reason);
		printf("\n%-13s %s%s%s%s\n", "state:", spool_state_name(t->state),
		    reason != NULL ? " (" : "", reason != NULL ? reason : "",
		    reason != NULL ? ")" : "");
		if (t->cancel_requested)
			printf("%-13s requested\n", "cancel:");
		printf("%-13s %d\n", "priority:", t->priority);
		printf("%-13s %d of %d\n", "attempts:", t->attempts,
		    t->max_attempts);
		if (t->key != NULL) {
			printf("%-13s ", "key:");
			cmd_print_text(stdout, t->key, strlen(t->key), 300);
			putchar('\n');
		}
		if (t->batch_id != 0)
			printf("%-13s %lld\n", "batch:",
			    (long long)t->batch_id);
		show_time("created:", t->created_ms);
		show_time(t->state == SPOOL_READY ? "due:" : "was due:",
		    t->run_at_ms);
		show_time("deadline:", t->deadline_ms);
		show_time("started:", t->started_ms);
		show_time("finished:", t->finished_ms);
		if (t->lease_owner != NULL) {
			cmd_fmt_time(s, sizeof s, t->lease_until_ms);
			printf("%-13s %s until %s UTC\n", "lease:",
			    t->lease_owner, s);
		}
		if (t->last_error != NULL) {
			printf("%-13s ", "last error:");
			cmd_print_text(stdout, t->last_error,
			    strlen(t->last_error), 500);
			putchar('\n');
		}
		printf("%-13s ", "payload:");
		cmd_print_text(stdout, t->payload, t->payload_len, 2000);
		printf("\n");
		if (t->has_result) {
			printf("%-13s ", "result:");
			cmd_print_text(stdout, t->result, t->result_len, 2000);
			printf("  (%lld ms)\n", (long long)t->duration_ms);
		}
		if (n > 0)
			printf("history:\n");
		for (i = 0; i < n; i++) {
			cmd_fmt_time(s, sizeof s, a[i].started_ms);
			cmd_fmt_time(e, sizeof e, a[i].finished_ms);
			cmd_fmt_age(d, sizeof d, a[i].finished_ms -
			    a[i].started_ms);
			printf("  #%-3d %s  %-8s %-11s %s", a[i].attempt, s, d,
			    cmd_attempt_outcome(a[i].outcome), a[i].worker);
			if (a[i].error != NULL) {
				printf("  ");
				cmd_print_text(stdout, a[i].error,
				    strlen(a[i].error), 200);
			}
			putchar('\n');
		}
	}
	spool_attempt_info_free(a, n);
	spool_task_info_free(t, 1);
	return (EXIT_OK);
}

const struct spool_cmd cmd_show = {
	.name = "show",
	.usage = "ID",
	.summary = "show one task, its result and its attempt history",
	.min_args = 1,
	.max_args = 1,
	.exec = show_exec
};
