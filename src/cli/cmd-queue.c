/*
 * cmd-queue.c -- "spool queue create|set|show|list": queues and their
 * settings (priority, attempts, backoff, lease, timeout, depth limit,
 * retention).
 */
#include "config.h"

#include <string.h>

#include "cmd.h"

static const struct cmd_opt queue_opts[] = {
	{ "priority", "N", "default priority of new tasks" },
	{ "max-attempts", "N", "default attempts before a task is dead" },
	{ "backoff", "POLICY", "retry delay: fixed, linear or exponential" },
	{ "backoff-base", "DURATION", "first retry delay" },
	{ "backoff-cap", "DURATION", "longest retry delay" },
	{ "jitter", "FRACTION", "0 to 1: delays are cut by up to this share" },
	{ "lease", "DURATION", "how long a claim holds a task without heartbeat" },
	{ "timeout", "DURATION", "run time limit per task for workers (0: none)" },
	{ "max-depth", "N", "ready tasks allowed; enqueue fails past it (0: no limit)" },
	{ "retention", "DURATION", "keep finished tasks this long (0: forever)" },
	{ NULL, NULL, NULL }
};

/* Fill o (and o->set) from the options given. */
static int
queue_parse(struct cmd_ctx *c, spool_queue_opts *o)
{
	const char	*v;
	int64_t		 n;
	int		 rc;

	if (cmd_opt(c, "priority") != NULL) {
		if ((rc = cmd_opt_int(c, "priority", INT32_MIN + 1, INT32_MAX,
		    &n)) != 0)
			return (rc);
		o->priority = (int)n;
		o->set |= SPOOL_QUEUE_PRIORITY;
	}
	if (cmd_opt(c, "max-attempts") != NULL) {
		if ((rc = cmd_opt_int(c, "max-attempts", 1, 1000000, &n)) != 0)
			return (rc);
		o->max_attempts = (int)n;
		o->set |= SPOOL_QUEUE_MAX_ATTEMPTS;
	}
	if ((v = cmd_opt(c, "backoff")) != NULL) {
		if (strcmp(v, "fixed") == 0)
			o->backoff = SPOOL_BACKOFF_FIXED;
		else if (strcmp(v, "linear") == 0)
			o->backoff = SPOOL_BACKOFF_LINEAR;
		else if (strcmp(v, "exponential") == 0)
			o->backoff = SPOOL_BACKOFF_EXPONENTIAL;
		else
			return (cmd_usage_error(c, "--backoff: fixed, linear or "
			    "exponential, not '%s'", v));
		o->set |= SPOOL_QUEUE_BACKOFF;
	}
	if ((v = cmd_opt(c, "jitter")) != NULL) {
		if ((rc = parse_fraction(v, &o->backoff_jitter)) != 0)
			return (cmd_usage_error(c, "--jitter: a number from 0 to "
			    "1, not '%s'", v));
		o->set |= SPOOL_QUEUE_BACKOFF_JITTER;
	}
	if (cmd_opt(c, "max-depth") != NULL) {
		if ((rc = cmd_opt_int(c, "max-depth", 0, INT32_MAX,
		    &o->max_depth)) != 0)
			return (rc);
		o->set |= SPOOL_QUEUE_MAX_DEPTH;
	}
#define DUR(name, field, bit) do {					\
	if (cmd_opt(c, name) != NULL) {					\
		if ((rc = cmd_opt_duration(c, name, &o->field)) != 0)	\
			return (rc);					\
		o->set |= bit;						\
	}								\
} while (0)
	DUR("backoff-base", backoff_base_ms, SPOOL_QUEUE_BACKOFF_BASE);
	DUR("backoff-cap", backoff_cap_ms, SPOOL_QUEUE_BACKOFF_CAP);
	DUR("lease", lease_ms, SPOOL_QUEUE_LEASE);
	DUR("timeout", timeout_ms, SPOOL_QUEUE_TIMEOUT);
	DUR("retention", retention_ms, SPOOL_QUEUE_RETENTION);
#undef DUR
	if ((o->set & SPOOL_QUEUE_LEASE) && o->lease_ms == 0)
		return (cmd_usage_error(c, "--lease must be longer than 0"));
	return (EXIT_OK);
}

/* One queue's settings as JSON. */
static void
queue_json(struct json *j, const spool_queue_info *q)
{
	const spool_queue_opts	*o = &q->conf;
	static const char *const backoffs[] = { "?", "fixed", "linear",
	    "exponential" };

	json_open(j, '{');
	json_kv_str(j, "name", q->name);
	json_key(j, "paused");
	json_bool(j, o->paused);
	json_kv_int(j, "priority", o->priority);
	json_kv_int(j, "max_attempts", o->max_attempts);
	json_kv_str(j, "backoff", backoffs[o->backoff >= 1 && o->backoff <= 3 ?
	    o->backoff : 0]);
	json_kv_int(j, "backoff_base_ms", o->backoff_base_ms);
	json_kv_int(j, "backoff_cap_ms", o->backoff_cap_ms);
	json_key(j, "backoff_jitter");
	json_double(j, o->backoff_jitter);
	json_kv_int(j, "lease_ms", o->lease_ms);
	json_kv_int(j, "timeout_ms", o->timeout_ms);
	json_kv_int(j, "max_depth", o->max_depth);
	json_kv_int(j, "retention_ms", o->retention_ms);
	json_kv_int(j, "created_ms", q->created_ms);
	json_close(j, '}');
}

/* One queue's settings as text, one line. */
static void
queue_text(const spool_queue_info *q)
{
	const spool_queue_opts	*o = &q->conf;
	static const char *const backoffs[] = { "?", "fixed", "linear",
	    "exponential" };
	char	 base[32], cap[32], lease[32], timeout[32], ret[32];

	cmd_fmt_age(base, sizeof base, o->backoff_base_ms);
	cmd_fmt_age(cap, sizeof cap, o->backoff_cap_ms);
	cmd_fmt_age(lease, sizeof lease, o->lease_ms);
	cmd_fmt_age(timeout, sizeof timeout, o->timeout_ms);
	cmd_fmt_age(ret, sizeof ret, o->retention_ms);
	cmd_print_text(stdout, q->name, strlen(q->name), 40);
	printf("%s priority=%d attempts=%d backoff=%s base=%s cap=%s "
	    "jitter=%.2f lease=%s timeout=%s max-depth=%lld retention=%s\n",
	    o->paused ? " (paused)" : "", o->priority, o->max_attempts,
	    backoffs[o->backoff >= 1 && o->backoff <= 3 ? o->backoff : 0],
	    base, cap, o->backoff_jitter, lease,
	    o->timeout_ms ? timeout : "none", (long long)o->max_depth,
	    o->retention_ms ? ret : "forever");
}

static int
queue_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_queue_opts	 o = SPOOL_QUEUE_OPTS_INIT;
	spool_queue_info	*qi = NULL;
	struct json		 j;
	const char		*sub = argv[0];
	size_t			 n = 0, i;
	int			 rc, list = 0, want;

	if ((rc = queue_parse(c, &o)) != EXIT_OK)
		return (rc);
	if (strcmp(sub, "list") == 0)
		list = 1, want = 1;
	else if (strcmp(sub, "create") == 0 || strcmp(sub, "set") == 0 ||
	    strcmp(sub, "show") == 0)
		want = 2;
	else
		return (cmd_usage_error(c, "unknown subcommand '%s' (create, "
		    "set, show, list)", sub));
	if (argc != want)
		return (cmd_usage_error(c, want == 1 ? "queue list takes no "
		    "operand" : "queue %s needs a queue NAME", sub));
	if ((strcmp(sub, "show") == 0 || list) && o.set != 0)
		return (cmd_usage_error(c, "queue %s takes no settings", sub));
	if (strcmp(sub, "set") == 0 && o.set == 0)
		return (cmd_usage_error(c, "queue set: nothing to set"));
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	if (strcmp(sub, "create") == 0)
		rc = spool_queue_create(c->q, argv[1], &o);
	else if (strcmp(sub, "set") == 0)
		rc = spool_queue_set(c->q, argv[1], &o);
	else
		rc = SPOOL_OK;
	if (rc != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (list)
		rc = cmd_queues_all(c->q, &qi, &n);
	else {
		rc = spool_queue_get(&qi, c->q, argv[1]);
		n = 1;
	}
	if (rc != SPOOL_OK)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		if (list)
			json_open(&j, '[');
		for (i = 0; i < n; i++)
			queue_json(&j, &qi[i]);
		if (list)
			json_close(&j, ']');
		json_end(&j);
	} else
		for (i = 0; i < n; i++)
			queue_text(&qi[i]);
	spool_queue_info_free(qi, n);
	return (EXIT_OK);
}

const struct spool_cmd cmd_queue = {
	.name = "queue",
	.usage = "create|set|show|list [NAME]",
	.summary = "create, configure and show queues",
	.help =
	    "'queue create NAME' makes a queue with the settings given (the "
	    "rest default:\n5 attempts, exponential backoff from 1s capped at "
	    "1h with 0.2 jitter, 30s\nleases, no timeout, no depth limit, "
	    "finished tasks kept 7 days); 'queue set\nNAME' changes only the "
	    "settings given.  Pause and resume with 'spool pause'.\n",
	.opts = queue_opts,
	.min_args = 1,
	.max_args = 2,
	.exec = queue_exec
};
