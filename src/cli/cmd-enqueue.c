/*
 * cmd-enqueue.c -- "spool enqueue QUEUE [PAYLOAD|-]": add a task, or with
 * --lines one task per line of stdin in one transaction.  Prints the id
 * only once the task is committed.  Also the helpers that read payloads
 * and per-task options, shared with "spool batch add" (cmd-batch.c).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define WAIT_MAX_MS	(365LL * 24 * 3600 * 1000)	/* the library's limit */

static const struct cmd_opt enqueue_opts[] = {
	{ "priority", "N", "higher runs first (default: the queue's)" },
	{ "delay", "DURATION", "due this long from now" },
	{ "at", "TIME", "due at TIME: 2026-11-27T10:00:00Z (UTC) or @SECONDS" },
	{ "deadline", "DURATION", "dead ('expired') unless started within DURATION" },
	{ "max-attempts", "N", "attempts before it is dead (default: the queue's)" },
	{ "key", "KEY", "idempotency key: at most one unfinished task per key" },
	{ "lines", NULL, "one task per line of stdin, all in one transaction" },
	{ "batch", "ID", "join open batch ID (see 'spool batch')" },
	{ "wait", "DURATION", "queue full: wait this long for room (exit 75 then)" },
	{ NULL, NULL, NULL }
};

/* Read all of stdin into *out (the caller frees), at most
 * SPOOL_PAYLOAD_MAX bytes.  Returns 0 or an exit code, with its message. */
int
cmd_read_stdin(struct cmd_ctx *c, char **out, size_t *len)
{
	char	*buf, *nb;
	size_t	 n = 0, cap = 65536, r;

	*out = NULL;
	*len = 0;
	if ((buf = malloc(cap)) == NULL)
		return (cmd_error(c, EXIT_TEMPFAIL, "out of memory"));
	for (;;) {
		if (n == cap) {
			if (cap > SPOOL_PAYLOAD_MAX)
				break;
			cap *= 2;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				return (cmd_error(c, EXIT_TEMPFAIL,
				    "out of memory"));
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
		return (cmd_error(c, EXIT_IO, "reading stdin failed"));
	}
	if (n > SPOOL_PAYLOAD_MAX) {
		free(buf);
		return (cmd_error(c, EXIT_DATA, "payload too large (more than "
		    "%d bytes)", SPOOL_PAYLOAD_MAX));
	}
	*out = buf;
	*len = n;
	return (EXIT_OK);
}

/* Fill the per-task fields of o from the command line: --priority,
 * --delay, --at, --deadline, --max-attempts, --wait (those the command's
 * table has). */
int
cmd_enqueue_opts(struct cmd_ctx *c, spool_enqueue_opts *o)
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
	if ((rc = cmd_opt_duration(c, "wait", &o->wait_ms)) != EXIT_OK)
		return (rc);
	if (o->wait_ms > WAIT_MAX_MS)
		return (cmd_usage_error(c, "--wait: at most 365d: '%s'",
		    cmd_opt(c, "wait")));
	return (EXIT_OK);
}

/* Add one task to ts; buf (may be NULL) is the payload's copy, freed with
 * ts whatever happens. */
int
cmd_tasks_add(struct cmd_ctx *c, struct cmd_tasks *ts, const char *queue,
    const void *payload, size_t len, char *buf, const spool_enqueue_opts *o)
{
	spool_task	*nt;
	char		**nb;
	size_t		 cap;

	if (ts->n == ts->cap) {
		cap = ts->cap ? ts->cap * 2 : 64;
		if ((nt = realloc(ts->v, cap * sizeof *nt)) != NULL)
			ts->v = nt;
		if ((nb = realloc(ts->bufs, cap * sizeof *nb)) != NULL)
			ts->bufs = nb;
		if (nt == NULL || nb == NULL) {
			free(buf);
			return (cmd_error(c, EXIT_TEMPFAIL, "out of memory"));
		}
		ts->cap = cap;
	}
	ts->v[ts->n].queue = queue;
	ts->v[ts->n].payload = payload;
	ts->v[ts->n].len = len;
	ts->v[ts->n].opts = o;
	ts->bufs[ts->n] = buf;
	ts->n++;
	return (EXIT_OK);
}

/* Free the tasks and their payload copies. */
void
cmd_tasks_free(struct cmd_tasks *ts)
{
	size_t	 i;

	for (i = 0; i < ts->n; i++)
		free(ts->bufs[i]);
	free(ts->bufs);
	free(ts->v);
	memset(ts, 0, sizeof *ts);
}

/*
 * Report n tasks enqueued, ids first to last: "enqueued N tasks: ids A-B"
 * (or, with batch, "added N tasks to batch ID: ..."), or with --json
 * {"batch":ID,"count":N,"first_id":A,"last_id":B}.
 */
static void
tasks_report(struct cmd_ctx *c, size_t n, int64_t first, int64_t last,
    int64_t batch)
{
	struct json	 j;

	if (c->json) {
		json_init(&j, stdout);
		json_open(&j, '{');
		if (batch != 0)
			json_kv_int(&j, "batch", batch);
		json_kv_int(&j, "count", (int64_t)n);
		json_key(&j, "first_id");
		n > 0 ? json_int(&j, first) : json_null(&j);
		json_key(&j, "last_id");
		n > 0 ? json_int(&j, last) : json_null(&j);
		json_close(&j, '}');
		json_end(&j);
	} else {
		if (batch != 0)
			printf("added %zu task%s to batch %lld", n,
			    n == 1 ? "" : "s", (long long)batch);
		else
			printf("enqueued %zu tasks", n);
		if (n > 0)
			printf(": ids %lld-%lld", (long long)first,
			    (long long)last);
		putchar('\n');
	}
}

/* Enqueue the tasks of ts in one transaction and report them. */
int
cmd_tasks_commit(struct cmd_ctx *c, struct cmd_tasks *ts, int64_t batch)
{
	int64_t		*ids = NULL;
	size_t		 n = ts->n;
	int		 rc;

	if (n > 0 && (ids = calloc(n, sizeof *ids)) == NULL)
		return (cmd_error(c, EXIT_TEMPFAIL, "out of memory"));
	if ((rc = spool_enqueue_many(ids, NULL, c->q, ts->v, n)) != SPOOL_OK) {
		free(ids);
		return (cmd_fail(c, rc));
	}
	tasks_report(c, n, n > 0 ? ids[0] : 0, n > 0 ? ids[n - 1] : 0, batch);
	free(ids);
	return (EXIT_OK);
}

/*
 * --lines.  The input is read and enqueued a part at a time, all in one
 * transaction (spool_enqueue_stream_*), so memory stays the same however
 * long the input is: a part is at most LINES_TASKS tasks and, past
 * LINES_BYTES of payload, ends with the line that crossed it.
 */
#define LINES_TASKS	4096
#define LINES_BYTES	(1024 * 1024)

/* The input of --lines and the part read from it. */
struct lines {
	FILE		*f;
	char		 in[65536];	/* read from f, not yet used */
	size_t		 off;
	size_t		 len;
	size_t		 lineno;	/* lines read, empty ones too */
	int		 eof;
	spool_task	 t[LINES_TASKS];	/* the part's tasks */
	int64_t		 ids[LINES_TASKS];
	size_t		 n;
	char		*bytes;		/* their payloads: LINES_BYTES +
					 * SPOOL_PAYLOAD_MAX */
};

/*
 * Read the next line of l->f into dst (at most max bytes are kept; *len
 * is its whole length, without its newline).  Returns 1 with a line, 0 at
 * the end of the input, -1 on a read error.
 */
static int
lines_next(struct lines *l, char *dst, size_t max, size_t *len)
{
	const char	*nl;
	size_t		 k, n = 0;
	int		 got = 0;

	for (;;) {
		if (l->off == l->len) {
			if (l->eof)
				break;
			l->off = 0;
			l->len = fread(l->in, 1, sizeof l->in, l->f);
			if (l->len == 0) {
				if (ferror(l->f))
					return (-1);
				l->eof = 1;
				break;
			}
		}
		got = 1;
		nl = memchr(l->in + l->off, '\n', l->len - l->off);
		k = nl != NULL ? (size_t)(nl - (l->in + l->off)) :
		    l->len - l->off;
		if (n + k <= max)
			memcpy(dst + n, l->in + l->off, k);
		n += k;
		l->off += k;
		if (nl != NULL) {
			l->off++;
			break;
		}
	}
	if (!got)
		return (0);
	l->lineno++;
	*len = n;
	return (1);
}

/* Read the next part of the input: l->n tasks (0 at its end). */
static int
lines_part(struct cmd_ctx *c, struct lines *l, const char *queue,
    const spool_enqueue_opts *o)
{
	size_t	 used = 0, len;
	int	 rc;

	l->n = 0;
	while (l->n < LINES_TASKS && used < LINES_BYTES) {
		if ((rc = lines_next(l, l->bytes + used, SPOOL_PAYLOAD_MAX,
		    &len)) == 0)
			break;
		if (rc < 0)
			return (cmd_error(c, EXIT_IO, "reading stdin failed"));
		if (len == 0)
			continue;
		if (len > SPOOL_PAYLOAD_MAX)
			return (cmd_error(c, EXIT_DATA, "line %zu: payload too "
			    "large (%zu bytes, at most %d)", l->lineno, len,
			    SPOOL_PAYLOAD_MAX));
		l->t[l->n].queue = queue;
		l->t[l->n].payload = l->bytes + used;
		l->t[l->n].len = len;
		l->t[l->n].opts = o;
		l->n++;
		used += len;
	}
	return (EXIT_OK);
}

/* Go back to offset start of l->f, the start of the input. */
static int
lines_rewind(struct cmd_ctx *c, struct lines *l, off_t start)
{
	if (fseeko(l->f, start, SEEK_SET) == -1)
		return (cmd_error(c, EXIT_IO, "cannot read stdin again: %s",
		    strerror(errno)));
	l->off = l->len = 0;
	l->lineno = 0;
	l->eof = 0;
	return (EXIT_OK);
}

/* For --wait: stdin copied to an unlinked temporary file, which can be
 * read again after a wait for room. */
static int
lines_spill(struct cmd_ctx *c, FILE **out)
{
	FILE	*f;
	char	 buf[65536];
	size_t	 n;

	if ((f = tmpfile()) == NULL)
		return (cmd_error(c, EXIT_IO, "cannot make a temporary file "
		    "for --wait: %s", strerror(errno)));
	while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
		if (fwrite(buf, 1, n, f) != n) {
			fclose(f);
			return (cmd_error(c, EXIT_IO, "writing a temporary "
			    "file for --wait failed"));
		}
	if (ferror(stdin)) {
		fclose(f);
		return (cmd_error(c, EXIT_IO, "reading stdin failed"));
	}
	if (fflush(f) != 0) {
		fclose(f);
		return (cmd_error(c, EXIT_IO, "writing a temporary file for "
		    "--wait failed"));
	}
	*out = f;
	return (EXIT_OK);
}

/*
 * One try: the part already read and every later one, in one transaction.
 * Returns the stream's code (SPOOL_OK once committed, or the refusal or
 * failure that rolled it back), or, with *exit_rc set, SPOOL_OK after a
 * failure of the input (also rolled back, with its message).
 */
static int
lines_try(struct cmd_ctx *c, struct lines *l, const char *queue,
    const spool_enqueue_opts *o, size_t *n, int64_t *first, int64_t *last,
    int *exit_rc)
{
	spool_enqueue_stream	*s;
	int				 rc;

	*n = 0;
	*exit_rc = EXIT_OK;
	if ((rc = spool_enqueue_stream_begin(&s, c->q)) != SPOOL_OK)
		return (rc);
	for (;;) {
		if (spool_enqueue_stream_add(s, l->t, l->n, l->ids) !=
		    SPOOL_OK)
			return (spool_enqueue_stream_end(s, 1));
		if (*n == 0)
			*first = l->ids[0];
		*n += l->n;
		*last = l->ids[l->n - 1];
		if ((*exit_rc = lines_part(c, l, queue, o)) != EXIT_OK) {
			spool_enqueue_stream_end(s, 0);
			return (SPOOL_OK);
		}
		if (l->n == 0)
			return (spool_enqueue_stream_end(s, 1));
	}
}

/*
 * --lines for "enqueue" and "batch add": every non-empty line of stdin is
 * a task, all in one transaction, reported as cmd_tasks_commit does.  A
 * line too long, a task refused or a failure anywhere commits nothing.
 * With --wait, a queue without room for them all is tried again from the
 * start of the input (which a pipe is first copied to a temporary file
 * for).
 */
int
cmd_tasks_lines(struct cmd_ctx *c, const char *queue,
    const spool_enqueue_opts *o, int64_t batch)
{
	struct lines	*l;
	FILE		*tmp = NULL;
	off_t		 start = 0;
	int64_t		 first = 0, last = 0, until = 0, sleep_ms = 1;
	size_t		 n = 0;
	int		 rc, src;

	if ((l = calloc(1, sizeof *l)) == NULL ||
	    (l->bytes = malloc(LINES_BYTES + SPOOL_PAYLOAD_MAX)) == NULL) {
		free(l);
		return (cmd_error(c, EXIT_TEMPFAIL, "out of memory"));
	}
	l->f = stdin;
	if (o->wait_ms > 0 && (start = ftello(stdin)) == -1) {
		if ((rc = lines_spill(c, &tmp)) != EXIT_OK)
			goto out;
		l->f = tmp;
		start = 0;
		if ((rc = lines_rewind(c, l, start)) != EXIT_OK)
			goto out;
	}
	if ((rc = lines_part(c, l, queue, o)) != EXIT_OK ||
	    (rc = cmd_open(c)) != EXIT_OK)
		goto out;
	/* No line, no enqueue to refuse a missing or closed batch. */
	if (o->batch_id != 0 && (rc = cmd_batch_check_open(c,
	    o->batch_id)) != EXIT_OK)
		goto out;
	if (o->wait_ms > 0)
		until = cmd_now_ms() + o->wait_ms;
	while (l->n > 0) {
		src = lines_try(c, l, queue, o, &n, &first, &last, &rc);
		if (rc != EXIT_OK)
			goto out;
		if (src == SPOOL_OK)
			break;
		if (src != SPOOL_EFULL || o->wait_ms == 0 ||
		    cmd_now_ms() >= until) {
			if (src == SPOOL_EFULL && o->wait_ms > 0)
				rc = cmd_error(c, cmd_exit_code(src), "%s, "
				    "still after waiting %lld ms",
				    spool_errmsg(c->q), (long long)o->wait_ms);
			else
				rc = cmd_fail(c, src);
			goto out;
		}
		cmd_sleep_ms(sleep_ms);
		if ((sleep_ms *= 2) > 50)
			sleep_ms = 50;
		if ((rc = lines_rewind(c, l, start)) != EXIT_OK ||
		    (rc = lines_part(c, l, queue, o)) != EXIT_OK)
			goto out;
	}
	tasks_report(c, n, first, last, batch);
	rc = EXIT_OK;
out:
	if (tmp != NULL)
		fclose(tmp);
	free(l->bytes);
	free(l);
	return (rc);
}

/* With --batch and a key held by an unfinished task: that task must be
 * a member of the batch, else the task asked for did not join it. */
static int
enqueue_existed_in_batch(struct cmd_ctx *c, int64_t id, int64_t batch,
    const char *key)
{
	spool_task_info	*t = NULL;
	int64_t		 in;
	int		 rc;

	if ((rc = spool_task_get(&t, c->q, id)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	in = t->batch_id;
	spool_task_info_free(t, 1);
	if (in == batch)
		return (EXIT_OK);
	return (cmd_error(c, EXIT_NO, "key '%s' is held by unfinished task "
	    "%lld, which is not in batch %lld: nothing added", key,
	    (long long)id, (long long)batch));
}

static int
enqueue_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	struct json		 j;
	char			*buf = NULL;
	const char		*payload = "", *batch = cmd_opt(c, "batch");
	size_t			 len = 0;
	int64_t			 id;
	int			 rc, existed;

	if ((rc = cmd_enqueue_opts(c, &o)) != EXIT_OK)
		return (rc);
	o.key = cmd_opt(c, "key");
	if (batch != NULL && (rc = cmd_arg_id(c, "a batch", "batch", batch,
	    &o.batch_id)) != EXIT_OK)
		return (rc);
	if (cmd_opt(c, "lines") != NULL) {
		if (argc > 1)
			return (cmd_usage_error(c, "--lines reads payloads from "
			    "stdin: give no PAYLOAD"));
		if (o.key != NULL)
			return (cmd_usage_error(c, "--key names one task: it "
			    "cannot be used with --lines"));
		return (cmd_tasks_lines(c, argv[0], &o, 0));
	}
	if (argc == 2 && strcmp(argv[1], "-") == 0) {
		if ((rc = cmd_read_stdin(c, &buf, &len)) != EXIT_OK)
			return (rc);
		payload = buf;
	} else if (argc == 2) {
		payload = argv[1];
		len = strlen(payload);
		if (len > SPOOL_PAYLOAD_MAX)
			return (cmd_error(c, EXIT_DATA, "payload too large "
			    "(%zu bytes, at most %d)", len, SPOOL_PAYLOAD_MAX));
	}
	if ((rc = cmd_open(c)) != EXIT_OK) {
		free(buf);
		return (rc);
	}
	rc = spool_enqueue(&id, c->q, argv[0], payload, len, &o);
	free(buf);
	existed = (rc == SPOOL_EEXISTS);
	if (rc != SPOOL_OK && !existed)
		return (cmd_fail(c, rc));
	if (existed && o.batch_id != 0 && (rc = enqueue_existed_in_batch(c,
	    id, o.batch_id, o.key)) != EXIT_OK)
		return (rc);
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
	.name = "enqueue",
	.usage = "QUEUE [PAYLOAD|-]",
	.summary = "add a task and print its id",
	.help =
	    "The payload is the operand, or stdin with '-', or empty.  It may "
	    "be binary (up to\n1 MiB); text that is UTF-8 is stored as TEXT, "
	    "so json_extract() reads JSON.\nThe queue is created with default "
	    "settings if it does not exist.  The id is\nprinted once the task "
	    "is on disk.  With --key, if an unfinished task of the\nqueue "
	    "holds the key, its id is printed and nothing is added (exit 0; "
	    "with\n--batch, exit 1 unless that task is in the batch).  With "
	    "--batch the task\n"
	    "joins that open batch in the same transaction (exit 1 if the "
	    "batch is missing\nor closed).  A queue at its depth limit "
	    "refuses the task (exit 75), at once\nor, with --wait, once "
	    "DURATION has passed without room.\n"
	    "DURATION is 250ms, 30s, 5m, 2h, 7d or a mix (1h30m); a bare "
	    "number is seconds.\n",
	.opts = enqueue_opts,
	.min_args = 1,
	.max_args = 2,
	.exec = enqueue_exec
};
