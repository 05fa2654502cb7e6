/*
 * cmd-stats.c -- "spool stats [QUEUE]": tasks per state and the age of
 * the oldest due task, per queue, from one consistent snapshot.
 */
#include "config.h"

#include <string.h>

#include "cmd.h"

static int
stats_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_queue_stats	*s = NULL;
	struct json		 j;
	char			 age[32];
	size_t			 n, i;
	int			 rc;

	if ((rc = cmd_open(c, 0)) != EXIT_OK)
		return (rc);
	if ((rc = spool_stats(&s, &n, c->q, argc > 0 ? argv[0] : NULL)) != 0)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '[');
		for (i = 0; i < n; i++) {
			json_open(&j, '{');
			json_kv_str(&j, "queue", s[i].queue);
			json_key(&j, "paused");
			json_bool(&j, s[i].paused);
			json_kv_int(&j, "ready", s[i].ready);
			json_kv_int(&j, "scheduled", s[i].scheduled);
			json_kv_int(&j, "running", s[i].running);
			json_kv_int(&j, "succeeded", s[i].succeeded);
			json_kv_int(&j, "dead", s[i].dead);
			json_kv_int(&j, "cancelled", s[i].cancelled);
			json_key(&j, "oldest_ready_age_ms");
			if (s[i].oldest_ready_age_ms < 0)
				json_null(&j);
			else
				json_int(&j, s[i].oldest_ready_age_ms);
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_end(&j);
	} else {
		printf("%-16s %8s %8s %8s %10s %7s %9s %8s %s\n", "QUEUE",
		    "READY", "SCHED", "RUNNING", "SUCCEEDED", "DEAD",
		    "CANCELLED", "OLDEST", "");
		for (i = 0; i < n; i++) {
			cmd_fmt_age(age, sizeof age, s[i].oldest_ready_age_ms);
			cmd_print_text(stdout, s[i].queue, strlen(s[i].queue),
			    16);
			printf("%*s %8lld %8lld %8lld %10lld %7lld %9lld %8s %s\n",
			    strlen(s[i].queue) < 16 ?
			    (int)(16 - strlen(s[i].queue)) : 0, "",
			    (long long)s[i].ready, (long long)s[i].scheduled,
			    (long long)s[i].running, (long long)s[i].succeeded,
			    (long long)s[i].dead, (long long)s[i].cancelled,
			    age, s[i].paused ? "paused" : "");
		}
	}
	spool_queue_stats_free(s, n);
	return (EXIT_OK);
}

const struct spool_cmd cmd_stats = {
	"stats", "[QUEUE]", "count tasks per state, per queue",
	"READY tasks are due now, SCHED(uled) ones later; OLDEST is how long "
	"the\nlongest-waiting due task has been due.\n",
	NULL, 0, 1, 0, stats_exec
};
