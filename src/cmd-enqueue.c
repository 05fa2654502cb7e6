/*
 * cmd-enqueue.c -- "spool enqueue QUEUE [PAYLOAD|-]": add a task, or with
 * --lines one task per line of stdin in one transaction.  Prints the id
 * only once the task is committed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static const struct cmd_opt enqueue_opts[] = {
	{ "priority", "N", "higher runs first (default: the queue's)" },
	{ "delay", "DURATION", "due this long from now" },
	{ "at", "TIME", "due at TIME: 2026-11-27T10:00:00Z (UTC) or @SECONDS" },
	{ "deadline", "DURATION", "dead ('expired') unless started within DURATION" },
	{ "max-attempts", "N", "attempts before it is dead (default: the queue's)" },
	{ "key", "KEY", "idempotency key: at most one unfinished task per key" },
	{ "lines", NULL, "one task per line of stdin, all in one transaction" },
	{ NULL, NULL, NULL }
};

/* Read all of stdin, at most max bytes; -1 if there is more. */
static int
read_stdin(char **out, size_t *len, size_t max)
{
	char	*buf;
	size_t	 n = 0, cap = 65536, r;

	if ((buf = malloc(cap)) == NULL)
		return (-2);
	for (;;) {
		if (n == cap) {
			char	*nb;

			if (cap > max)
				break;
			cap *= 2;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				return (-2);
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, stdin);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(stdin)) {
		free(buf);
		return (-3);
	}
	if (n > max) {
		free(buf);
		return (-1);
	}
	*out = buf;
	*len = n;
	return (0);
}

/* Fill opts from the command line. */
static int
enqueue_opts_parse(struct cmd_ctx *c, spool_enqueue_opts *o)
{
	const char	*at = cmd_opt(c, "at");
	int64_t		 v;
	int		 rc;

	if ((rc = cmd_opt_int(c, "priority", INT32_MIN + 1, INT32_MAX, &v)) != 0)
		return (rc);
	if (cmd_opt(c, "priority") != NULL)
		o->priority = (int32_t)v;
	if ((rc = cmd_opt_duration(c, "delay", &o->delay_ms)) != EXIT_OK)
		return (rc);
	if (at != NULL) {
		if (cmd_opt(c, "delay") != NULL)
			return (cmd_usage_error(c, "give --delay or --at, not both"));
		if ((rc = parse_time_ms(at, &o->run_at_ms)) != 0)
			return (cmd_usage_error(c, rc == -1 ? "--at: not a time "
			    "(2026-11-27T10:00:00Z or @SECONDS): '%s'" :
			    "--at: time out of range: '%s'", at));
	}
	if (cmd_opt(c, "deadline") != NULL) {
		if ((rc = cmd_opt_duration(c, "deadline", &v)) != EXIT_OK)
			return (rc);
		if (v == 0)
			return (cmd_usage_error(c, "--deadline must be longer "
			    "than 0"));
		o->deadline_ms = cmd_now_ms() + v;
	}
	v = 0;
	if ((rc = cmd_opt_int(c, "max-attempts", 1, 1000000, &v)) != EXIT_OK)
		return (rc);
	o->max_attempts = (int)v;
	o->key = cmd_opt(c, "key");
	return (EXIT_OK);
}

/* --lines: every non-empty line of stdin is a task. */
static int
enqueue_lines(struct cmd_ctx *c, const char *queue, spool_enqueue_opts *o)
{
	spool_task	*tasks = NULL, *nt;
	int64_t		*ids = NULL;
	char		*line = NULL, **lines = NULL, **nl;
	size_t		 cap = 0, n = 0, lineno = 0, i, lcap = 0;
	ssize_t		 len;
	struct json	 j;
	int		 rc;

	while ((len = getline(&line, &lcap, stdin)) != -1) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if ((size_t)len > SPOOL_PAYLOAD_MAX) {
			rc = cmd_error(c, EXIT_DATA, "line %zu: payload too large "
			    "(%zd bytes, at most %d)", lineno, len,
			    SPOOL_PAYLOAD_MAX);
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			if ((nt = realloc(tasks, cap * sizeof *tasks)) == NULL)
				goto nomem;
			tasks = nt;
			if ((nl = realloc(lines, cap * sizeof *lines)) == NULL)
				goto nomem;
			lines = nl;
		}
		if ((lines[n] = malloc((size_t)len + 1)) == NULL)
			goto nomem;
		memcpy(lines[n], line, (size_t)len + 1);
		tasks[n].queue = queue;
		tasks[n].payload = lines[n];
		tasks[n].len = (size_t)len;
		tasks[n].opts = o;
		n++;
	}
	if (ferror(stdin)) {
		rc = cmd_error(c, EXIT_IO, "reading stdin failed");
		goto out;
	}
	if ((rc = cmd_open(c, 0)) != EXIT_OK)
		goto out;
	if (n > 0 && (ids = calloc(n, sizeof *ids)) == NULL)
		goto nomem;
	if ((rc = spool_enqueue_many(ids, NULL, c->q, tasks, n)) != SPOOL_OK) {
		rc = cmd_fail(c, rc);
		goto out;
	}
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_kv_int(&j, "count", (int64_t)n);
		json_key(&j, "first_id");
		n > 0 ? json_int(&j, ids[0]) : json_null(&j);
		json_key(&j, "last_id");
		n > 0 ? json_int(&j, ids[n - 1]) : json_null(&j);
		json_close(&j, '}');
		json_end(&j);
	} else if (n > 0)
		printf("enqueued %zu tasks: ids %lld-%lld\n", n,
		    (long long)ids[0], (long long)ids[n - 1]);
	else
		printf("enqueued 0 tasks\n");
	rc = EXIT_OK;
	goto out;
nomem:
	rc = cmd_error(c, EXIT_TEMPFAIL, "out of memory");
out:
	for (i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	free(tasks);
	free(ids);
	free(line);
	return (rc);
}

static int
enqueue_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	struct json		 j;
	char			*buf = NULL;
	const char		*payload = "";
	size_t			 len = 0;
	int64_t			 id;
	int			 rc, existed;

	if ((rc = enqueue_opts_parse(c, &o)) != EXIT_OK)
		return (rc);
	if (cmd_opt(c, "lines") != NULL) {
		if (argc > 1)
			return (cmd_usage_error(c, "--lines reads payloads from "
			    "stdin: give no PAYLOAD"));
		if (o.key != NULL)
			return (cmd_usage_error(c, "--key names one task: it "
			    "cannot be used with --lines"));
		return (enqueue_lines(c, argv[0], &o));
	}
	if (argc == 2 && strcmp(argv[1], "-") == 0) {
		rc = read_stdin(&buf, &len, SPOOL_PAYLOAD_MAX);
		if (rc == -1)
			return (cmd_error(c, EXIT_DATA, "payload too large "
			    "(more than %d bytes)", SPOOL_PAYLOAD_MAX));
		if (rc == -2)
			return (cmd_error(c, EXIT_TEMPFAIL, "out of memory"));
		if (rc == -3)
			return (cmd_error(c, EXIT_IO, "reading stdin failed"));
		payload = buf;
	} else if (argc == 2) {
		payload = argv[1];
		len = strlen(payload);
		if (len > SPOOL_PAYLOAD_MAX)
			return (cmd_error(c, EXIT_DATA, "payload too large "
			    "(%zu bytes, at most %d)", len, SPOOL_PAYLOAD_MAX));
	}
	if ((rc = cmd_open(c, 0)) != EXIT_OK) {
		free(buf);
		return (rc);
	}
	rc = spool_enqueue(&id, c->q, argv[0], payload, len, &o);
	free(buf);
	existed = (rc == SPOOL_EEXISTS);
	if (rc != SPOOL_OK && !existed)
		return (cmd_fail(c, rc));
	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		json_kv_int(&j, "id", id);
		json_key(&j, "existed");
		json_bool(&j, existed);
		json_close(&j, '}');
		json_end(&j);
	} else
		printf("%lld\n", (long long)id);
	if (existed && !c->json)
		cmd_error(c, EXIT_OK, "key '%s' is held by unfinished task "
		    "%lld: nothing added", o.key, (long long)id);
	return (EXIT_OK);
}

const struct spool_cmd cmd_enqueue = {
	"enqueue", "QUEUE [PAYLOAD|-]", "add a task and print its id",
	"The payload is the operand, or stdin with '-', or empty.  It may be "
	"binary (up to\n1 MiB); text that is UTF-8 is stored as TEXT, so "
	"json_extract() reads JSON.\nThe queue is created with default "
	"settings if it does not exist.  The id is\nprinted once the task is "
	"on disk.  With --key, if an unfinished task of the\nqueue holds the "
	"key, its id is printed and nothing is added (exit 0).\n"
	"DURATION is 250ms, 30s, 5m, 2h, 7d or a mix (1h30m); a bare number "
	"is seconds.\n",
	enqueue_opts, 1, 2, 0, enqueue_exec
};
