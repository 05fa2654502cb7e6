/*
 * cmd.c -- the CLI framework: the command line, the database path, exit
 * codes and the shared helpers of the cmd-*.c files.
 *
 * Invariants: nothing is written to the database before the whole command
 * line has been checked; a failure prints exactly one line on stderr
 * ("spool CMD: what went wrong") and nothing on stdout.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

/* Options every command accepts. */
static const struct cmd_opt common_opts[] = {
	{ "db", "PATH", "database file (default $SPOOL_DB, else ./spool.db)" },
	{ "json", NULL, "print machine-readable JSON" },
	{ "strict", NULL, "refuse a database others can write (not just warn)" },
	{ "help", NULL, "show this help" },
	{ NULL, NULL, NULL }
};

static const char exit_codes_help[] =
    "Exit status:\n"
    "  0   success\n"
    "  1   a negative answer: not found, task failed, wrong state\n"
    "  64  usage: unknown option, bad number or duration, wrong operands\n"
    "  65  bad data: invalid name or payload, not a spool database\n"
    "  66  no database at that path (create one with 'spool init')\n"
    "  70  internal error\n"
    "  74  I/O error or disk full\n"
    "  75  temporary: database busy, queue full, timed out; try again\n"
    "  77  permission denied\n";

/* Milliseconds of the wall clock. */
int64_t
cmd_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Sleep for ms milliseconds. */
void
cmd_sleep_ms(int64_t ms)
{
	struct timespec	 ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		continue;
}

/* Print one line on stderr, control characters made visible, so a
 * message can never span lines.  The line goes out in one write(2):
 * stderr is unbuffered, and character by character the lines of
 * processes sharing a log file would mix. */
static void
print_line(const char *prefix, const char *msg)
{
	char		 line[1200];
	size_t		 len, i;
	ssize_t		 n;

	snprintf(line, sizeof line - 1, "%s%s", prefix, msg);
	len = strlen(line);
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[len++] = '\n';
	fflush(stderr);
	for (i = 0; i < len; i += (size_t)n)
		if ((n = write(STDERR_FILENO, line + i, len - i)) == -1) {
			if (errno != EINTR)
				break;
			n = 0;
		}
}

/* Print "spool CMD: message" and return code. */
int
cmd_error(struct cmd_ctx *c, int code, const char *fmt, ...)
{
	char	 prefix[64], msg[1024];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (c != NULL && c->cmd != NULL)
		snprintf(prefix, sizeof prefix, "spool %s: ", c->cmd->name);
	else
		snprintf(prefix, sizeof prefix, "spool: ");
	print_line(prefix, msg);
	return (code);
}

/* A usage error: the message and where to look, exit 64. */
int
cmd_usage_error(struct cmd_ctx *c, const char *fmt, ...)
{
	char	 msg[900];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (c != NULL && c->cmd != NULL)
		return (cmd_error(c, EXIT_USAGE, "%s (see 'spool %s --help')",
		    msg, c->cmd->name));
	return (cmd_error(c, EXIT_USAGE, "%s (see 'spool --help')", msg));
}

/* The exit code of a library result. */
int
cmd_exit_code(int rc)
{
	switch (rc) {
	case SPOOL_OK:
		return (EXIT_OK);
	case SPOOL_ENOENT:
	case SPOOL_ESTATE:
	case SPOOL_EEXISTS:
	case SPOOL_EEMPTY:
		return (EXIT_NO);
	case SPOOL_EINVAL:
	case SPOOL_ENOTDB:
	case SPOOL_ESCHEMA:
		return (EXIT_DATA);
	case SPOOL_EBUSY:
	case SPOOL_EFULL:
	case SPOOL_ETIMEDOUT:
	case SPOOL_ENOMEM:
	case SPOOL_ELEASE:
		return (EXIT_TEMPFAIL);
	case SPOOL_EIO:
		return (EXIT_IO);
	case SPOOL_EPERM:
		return (EXIT_NOPERM);
	}
	return (EXIT_SOFTWARE);
}

/* Report the library's last failure on c->q and return its exit code. */
int
cmd_fail(struct cmd_ctx *c, int rc)
{
	return (cmd_error(c, cmd_exit_code(rc), "%s", c->q != NULL ?
	    spool_errmsg(c->q) : spool_strerror(rc)));
}

/*
 * Anyone who can write the database, or replace it or its -wal beside it
 * in its directory, can enqueue work, change tasks, or plant objects: a
 * file writable by group or others, or a directory writable by others,
 * gets a warning, or with --strict a refusal (exit 77).  0, or the exit
 * code of the refusal.
 */
static int
cmd_check_perms(struct cmd_ctx *c)
{
	struct stat	 sb;
	char		 dir[PATH_MAX], *slash;

	if (stat(c->db_path, &sb) == 0 && (sb.st_mode & (S_IWGRP | S_IWOTH))) {
		if (c->strict)
			return (cmd_error(c, EXIT_NOPERM, "%s: others can write "
			    "this database (mode %04o); refused (--strict)",
			    c->db_path, (unsigned)(sb.st_mode & 07777)));
		cmd_log(c->cmd->name, LOG_WARNING, "%s: others can write this "
		    "database (mode %04o): chmod 600 it", c->db_path,
		    (unsigned)(sb.st_mode & 07777));
	}
	snprintf(dir, sizeof dir, "%s", c->db_path);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (stat(dir, &sb) == 0 && (sb.st_mode & S_IWOTH)) {
		if (c->strict)
			return (cmd_error(c, EXIT_NOPERM, "%s: others can write "
			    "its directory %s (mode %04o); refused (--strict)",
			    c->db_path, dir, (unsigned)(sb.st_mode & 07777)));
		cmd_log(c->cmd->name, LOG_WARNING, "%s: others can write its "
		    "directory %s (mode %04o): they can replace the database "
		    "or its -wal", c->db_path, dir,
		    (unsigned)(sb.st_mode & 07777));
	}
	return (0);
}

/* Open the database for the command; create it if missing when the
 * command's table entry says CMD_CREATE. */
int
cmd_open(struct cmd_ctx *c)
{
	struct stat	 sb;
	int		 rc, create = (c->cmd->flags & CMD_CREATE) != 0;

	if (lstat(c->db_path, &sb) == 0 && !S_ISREG(sb.st_mode) &&
	    !S_ISLNK(sb.st_mode))
		return (cmd_error(c, EXIT_NOINPUT, "%s: %s, not a database",
		    c->db_path, S_ISDIR(sb.st_mode) ? "is a directory" :
		    "is not a regular file"));
	rc = spool_open(&c->q, c->db_path, create ? SPOOL_OPEN_CREATE : 0);
	if (rc == SPOOL_OK) {
		if ((rc = cmd_check_perms(c)) == 0)
			return (EXIT_OK);
		spool_close(c->q);
		c->q = NULL;
		return (rc);
	}
	if (rc == SPOOL_ENOENT && !create)
		rc = cmd_error(c, EXIT_NOINPUT,
		    "%s: no such database (create it with 'spool init')",
		    c->db_path);
	else if (rc == SPOOL_ENOENT)
		rc = cmd_error(c, EXIT_NOINPUT, "cannot create %s",
		    spool_errmsg(c->q));
	else
		rc = cmd_fail(c, rc);
	spool_close(c->q);
	c->q = NULL;
	return (rc);
}

/* The index of option name in the command's table, or -1. */
static int
opt_index(const struct spool_cmd *cmd, const char *name)
{
	int	 i;

	for (i = 0; cmd->opts != NULL && cmd->opts[i].name != NULL; i++)
		if (strcmp(cmd->opts[i].name, name) == 0)
			return (i);
	return (-1);
}

/* The value of option name ("" for a flag that is set), or NULL. */
const char *
cmd_opt(struct cmd_ctx *c, const char *name)
{
	int	 i = opt_index(c->cmd, name);

	return (i < 0 ? NULL : c->val[i]);
}

/* Option name as an integer in [min, max]; 0 if absent (out untouched). */
int
cmd_opt_int(struct cmd_ctx *c, const char *name, int64_t min, int64_t max,
    int64_t *out)
{
	const char	*v = cmd_opt(c, name);
	int		 rc;

	if (v == NULL)
		return (EXIT_OK);
	if ((rc = parse_int64(v, min, max, out)) == -1)
		return (cmd_usage_error(c, "--%s: not an integer: '%s'", name, v));
	if (rc == -2)
		return (cmd_usage_error(c, "--%s: out of range (%lld to %lld): "
		    "'%s'", name, (long long)min, (long long)max, v));
	return (EXIT_OK);
}

/* Option name as a duration; 0 if absent (out untouched). */
int
cmd_opt_duration(struct cmd_ctx *c, const char *name, int64_t *out)
{
	const char	*v = cmd_opt(c, name);
	int		 rc;

	if (v == NULL)
		return (EXIT_OK);
	if ((rc = parse_duration_ms(v, out)) == -1)
		return (cmd_usage_error(c, "--%s: not a duration (like 30s, 5m, "
		    "1h30m, 250ms): '%s'", name, v));
	if (rc == -2)
		return (cmd_usage_error(c, "--%s: duration too long (at most "
		    "100 years): '%s'", name, v));
	return (EXIT_OK);
}

/* An id (1 and up) of what ("a task", "an item"): an operand, or the
 * value of option opt ("batch"; NULL for an operand).  The one parser of
 * ids on the command line, so each says the same when it is bad. */
int
cmd_arg_id(struct cmd_ctx *c, const char *what, const char *opt,
    const char *arg, int64_t *id)
{
	if (parse_int64(arg, 1, INT64_MAX, id) == 0)
		return (EXIT_OK);
	if (opt != NULL)
		return (cmd_usage_error(c, "--%s: not %s id: '%s'", opt, what,
		    arg));
	return (cmd_usage_error(c, "not %s id: '%s'", what, arg));
}

/* A state name. */
int
cmd_state(struct cmd_ctx *c, const char *name, int *state)
{
	int	 s;

	for (s = SPOOL_READY; spool_state_name(s) != NULL; s++)
		if (strcmp(spool_state_name(s), name) == 0) {
			*state = s;
			return (EXIT_OK);
		}
	return (cmd_usage_error(c, "unknown state '%s' (ready, claimed, "
	    "running, expired, succeeded, dead, cancelled)", name));
}

/* "2026-11-27 20:01:02.123" (UTC) or "-" for 0. */
void
cmd_fmt_time(char *buf, size_t len, int64_t ms)
{
	struct tm	 tm;
	time_t		 t;
	char		 s[32];

	if (ms == 0) {
		snprintf(buf, len, "-");
		return;
	}
	t = (time_t)(ms / 1000);
	gmtime_r(&t, &tm);
	strftime(s, sizeof s, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03d", s, (int)(ms % 1000));
}

/* The name of an attempt outcome for text output ("?" if unknown). */
const char *
cmd_attempt_outcome(int outcome)
{
	const char	*name = spool_attempt_outcome_name(outcome);

	return (name != NULL ? name : "?");
}

/* A short age: "850ms", "42s", "7m03s", "5h12m", "3d04h"; "-" if < 0. */
void
cmd_fmt_age(char *buf, size_t len, int64_t ms)
{
	int64_t	 s = ms / 1000;

	if (ms < 0)
		snprintf(buf, len, "-");
	else if (ms < 1000)
		snprintf(buf, len, "%lldms", (long long)ms);
	else if (s < 60)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", (long long)(s / 60),
		    (long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600),
		    (long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%lldd%02lldh", (long long)(s / 86400),
		    (long long)(s % 86400 / 3600));
}

/* Print up to max bytes of p as one line of text: binary payloads as
 * "<N bytes>", control characters as '.', "..." when cut. */
void
cmd_print_text(FILE *f, const void *p, size_t n, size_t max)
{
	const unsigned char	*s = p;
	size_t			 i;

	for (i = 0; i < n; i++)
		if (s[i] == 0)
			break;
	if (i < n) {
		fprintf(f, "<%zu bytes>", n);
		return;
	}
	for (i = 0; i < n && i < max; i++)
		fputc(s[i] < 0x20 || s[i] == 0x7f ? '.' : s[i], f);
	if (n > max)
		fputs("...", f);
}

/* End a page of a listing in JSON: close its array, write "next_after",
 * the id to pass as --after for the next page or null (0) after the last
 * page, and close the object and the output. */
void
cmd_json_page(struct json *j, int64_t next_after)
{
	json_close(j, ']');
	json_key(j, "next_after");
	if (next_after != 0)
		json_int(j, next_after);
	else
		json_null(j);
	json_close(j, '}');
	json_end(j);
}

/*
 * Reading a whole list.  The library's lists come a page at a time (at
 * most 10000 rows); the commands that show every row (a task's history,
 * the queues, the pipelines, the workers) read page after page with the
 * largest limit and join them.  cmd_append moves a page's n elements of
 * size sz onto the end of *all (*len of them) and frees the page's array
 * (not what its elements point to, which *all now holds).
 */
static int
cmd_append(void **all, size_t *len, void *page, size_t n, size_t sz)
{
	char	*v;

	if (n == 0) {
		free(page);
		return (SPOOL_OK);
	}
	if ((v = realloc(*all, (*len + n) * sz)) == NULL)
		return (SPOOL_ENOMEM);
	memcpy(v + *len * sz, page, n * sz);
	free(page);
	*all = v;
	*len += n;
	return (SPOOL_OK);
}

#define CMD_PAGE_MAX	10000

/* Every finished attempt of task id, by attempt number. */
int
cmd_attempts_all(spool *q, int64_t id, spool_attempt_info **out, size_t *n)
{
	spool_attempt_list_opts	 o = SPOOL_ATTEMPT_LIST_OPTS_INIT;
	spool_attempt_info	*page;
	size_t			 np;
	int			 rc;

	*out = NULL;
	*n = 0;
	o.limit = CMD_PAGE_MAX;
	do {
		if ((rc = spool_attempts(&page, &np, q, id, &o)) != SPOOL_OK)
			break;
		if (np > 0)
			o.after_attempt = page[np - 1].attempt;
		if ((rc = cmd_append((void **)out, n, page, np,
		    sizeof *page)) != SPOOL_OK) {
			spool_attempt_info_free(page, np);
			break;
		}
	} while (np == o.limit);
	if (rc != SPOOL_OK) {
		spool_attempt_info_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return (rc);
}

/* Every queue, by name. */
int
cmd_queues_all(spool *q, spool_queue_info **out, size_t *n)
{
	spool_queue_list_opts	 o = SPOOL_QUEUE_LIST_OPTS_INIT;
	spool_queue_info	*page;
	size_t			 np;
	int			 rc;

	*out = NULL;
	*n = 0;
	o.limit = CMD_PAGE_MAX;
	do {
		if ((rc = spool_queue_list(&page, &np, q, &o)) != SPOOL_OK)
			break;
		if ((rc = cmd_append((void **)out, n, page, np,
		    sizeof *page)) != SPOOL_OK) {
			spool_queue_info_free(page, np);
			break;
		}
		/* The next page's key: the last name, now held by *out. */
		if (np > 0)
			o.after = (*out)[*n - 1].name;
	} while (np == o.limit);
	if (rc != SPOOL_OK) {
		spool_queue_info_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return (rc);
}

/* The current version of every pipeline, by name. */
int
cmd_pipelines_all(spool *q, spool_pipeline_info **out, size_t *n)
{
	spool_pipeline_list_opts o = SPOOL_PIPELINE_LIST_OPTS_INIT;
	spool_pipeline_info	*page;
	size_t			 np;
	int			 rc;

	*out = NULL;
	*n = 0;
	o.limit = CMD_PAGE_MAX;
	do {
		if ((rc = spool_pipeline_list(&page, &np, q, &o)) != SPOOL_OK)
			break;
		if ((rc = cmd_append((void **)out, n, page, np,
		    sizeof *page)) != SPOOL_OK) {
			spool_pipeline_info_free(page, np);
			break;
		}
		if (np > 0)
			o.after = (*out)[*n - 1].name;
	} while (np == o.limit);
	if (rc != SPOOL_OK) {
		spool_pipeline_info_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return (rc);
}

/* Workers oldest first, as the commands have always shown them (the
 * library pages them by id). */
static int
worker_cmp(const void *a, const void *b)
{
	const spool_worker_info	*x = a, *y = b;

	if (x->started_ms != y->started_ms)
		return (x->started_ms < y->started_ms ? -1 : 1);
	return (strcmp(x->id, y->id));
}

/* Every worker row, oldest first. */
int
cmd_workers_all(spool *q, spool_worker_info **out, size_t *n)
{
	spool_worker_list_opts	 o = SPOOL_WORKER_LIST_OPTS_INIT;
	spool_worker_info	*page;
	size_t			 np;
	int			 rc;

	*out = NULL;
	*n = 0;
	o.limit = CMD_PAGE_MAX;
	do {
		if ((rc = spool_workers(&page, &np, q, &o)) != SPOOL_OK)
			break;
		if ((rc = cmd_append((void **)out, n, page, np,
		    sizeof *page)) != SPOOL_OK) {
			spool_worker_info_free(page, np);
			break;
		}
		if (np > 0)
			o.after = (*out)[*n - 1].id;
	} while (np == o.limit);
	if (rc != SPOOL_OK) {
		spool_worker_info_free(*out, *n);
		*out = NULL;
		*n = 0;
		return (rc);
	}
	if (*n > 1)
		qsort(*out, *n, sizeof **out, worker_cmp);
	return (SPOOL_OK);
}

/* Every stage attempt of item id, in stage then attempt order. */
int
cmd_item_history_all(spool *q, int64_t id, spool_stage_attempt_info **out,
    size_t *n)
{
	spool_item_history_opts	 o = SPOOL_ITEM_HISTORY_OPTS_INIT;
	spool_stage_attempt_info	*page;
	size_t			 np;
	int			 rc;

	*out = NULL;
	*n = 0;
	o.limit = CMD_PAGE_MAX;
	do {
		if ((rc = spool_item_history(&page, &np, q, id, &o)) !=
		    SPOOL_OK)
			break;
		if (np > 0) {
			o.after_index = page[np - 1].index;
			o.after_attempt = page[np - 1].attempt;
		}
		if ((rc = cmd_append((void **)out, n, page, np,
		    sizeof *page)) != SPOOL_OK) {
			spool_stage_attempt_info_free(page, np);
			break;
		}
	} while (np == o.limit);
	if (rc != SPOOL_OK) {
		spool_stage_attempt_info_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return (rc);
}

/* Print the help of one command. */
void
cmd_print_help(const struct spool_cmd *cmd, FILE *f)
{
	const struct cmd_opt	*o;
	char			 left[64];
	int			 pass;

	fprintf(f, "usage: spool %s [options]%s%s\n\n%s\n", cmd->name,
	    cmd->usage[0] != '\0' ? " " : "", cmd->usage, cmd->summary);
	if (cmd->help != NULL)
		fprintf(f, "\n%s", cmd->help);
	fprintf(f, "\nOptions:\n");
	for (pass = 0; pass < 2; pass++) {
		o = pass == 0 ? cmd->opts : common_opts;
		for (; o != NULL && o->name != NULL; o++) {
			snprintf(left, sizeof left, "--%s%s%s", o->name,
			    o->arg ? " " : "", o->arg ? o->arg : "");
			fprintf(f, "  %-24s %s\n", left, o->help);
		}
	}
}

/* Print the list of commands and the exit codes. */
static void
print_main_help(FILE *f)
{
	const struct spool_cmd *const	*cp;

	fprintf(f, "usage: spool [--db PATH] COMMAND [options] [operands]\n\n"
	    "spool %s: a durable task queue in one SQLite file.\n\n"
	    "Commands:\n", spool_version());
	for (cp = spool_cmds; *cp != NULL; cp++)
		fprintf(f, "  %-13s %s\n", (*cp)->name, (*cp)->summary);
	fprintf(f, "\n'spool COMMAND --help' describes a command.  The "
	    "database is --db PATH,\nelse $SPOOL_DB, else ./spool.db.\n\n%s",
	    exit_codes_help);
}

/* The length of the group word of a two-word command name ("batch add"
 * gives 5), or 0 for a one-word name. */
static size_t
group_len(const char *name)
{
	const char	*sp = strchr(name, ' ');

	return (sp != NULL ? (size_t)(sp - name) : 0);
}

/* Is command name in group word? */
static int
in_group(const char *name, const char *word)
{
	size_t	 len = group_len(name);

	return (len > 0 && strlen(word) == len && strncmp(name, word, len) == 0);
}

/* Is word the first word of two-word commands, such as "batch"? */
static int
is_group(const char *word)
{
	const struct spool_cmd *const	*cp;

	for (cp = spool_cmds; *cp != NULL; cp++)
		if (in_group((*cp)->name, word))
			return (1);
	return (0);
}

/* Find the command named at argv[*i]: one word ("list"), or a group and
 * one of its subcommands ("batch add"), and then *i moves to the second
 * word.  NULL if there is none. */
static const struct spool_cmd *
find_cmd(int argc, char **argv, int *i)
{
	const struct spool_cmd *const	*cp;
	const char			*name;

	for (cp = spool_cmds; *cp != NULL; cp++) {
		name = (*cp)->name;
		if (group_len(name) == 0) {
			if (strcmp(name, argv[*i]) == 0)
				return (*cp);
		} else if (*i + 1 < argc && in_group(name, argv[*i]) &&
		    strcmp(name + group_len(name) + 1, argv[*i + 1]) == 0) {
			(*i)++;
			return (*cp);
		}
	}
	return (NULL);
}

/* Print the subcommands of group. */
static void
print_group_help(const char *group, FILE *f)
{
	const struct spool_cmd *const	*cp;
	const char			*name;

	fprintf(f, "usage: spool %s SUBCOMMAND [options] [operands]\n\n"
	    "Subcommands:\n", group);
	for (cp = spool_cmds; *cp != NULL; cp++) {
		name = (*cp)->name;
		if (in_group(name, group))
			fprintf(f, "  %-7s %s\n", name + group_len(name) + 1,
			    (*cp)->summary);
	}
	fprintf(f, "\n'spool %s SUBCOMMAND --help' describes one.\n", group);
}

/* A command line naming group but none of its subcommands: one line,
 * exit 64. */
static int
group_error(const char *group, const char *word)
{
	const struct spool_cmd *const	*cp;
	char				 subs[256] = "", prefix[64], msg[512];
	size_t				 len;

	for (cp = spool_cmds; *cp != NULL; cp++)
		if (in_group((*cp)->name, group)) {
			len = strlen(subs);
			snprintf(subs + len, sizeof subs - len, "%s%s",
			    len > 0 ? ", " : "",
			    (*cp)->name + group_len((*cp)->name) + 1);
		}
	if (word == NULL)
		snprintf(msg, sizeof msg, "missing subcommand");
	else if (word[0] == '-')
		snprintf(msg, sizeof msg, "missing subcommand before '%s'",
		    word);
	else
		snprintf(msg, sizeof msg, "unknown subcommand '%s'", word);
	len = strlen(msg);
	snprintf(msg + len, sizeof msg - len, ": %s (see 'spool %s --help')",
	    subs, group);
	snprintf(prefix, sizeof prefix, "spool %s: ", group);
	print_line(prefix, msg);
	return (EXIT_USAGE);
}

/* Take one option at argv[*i] ("--name", "--name=value" or "--name value")
 * into c.  Returns 0 or an exit code. */
static int
take_opt(struct cmd_ctx *c, int argc, char **argv, int *i, int *help)
{
	const struct cmd_opt	*o = NULL;
	const char		*arg = argv[*i] + 2, *eq, *value = NULL;
	char			 name[64];
	size_t			 len;
	int			 idx = -1, common = -1;

	eq = strchr(arg, '=');
	len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	if (len == 0 || len >= sizeof name)
		return (cmd_usage_error(c, "unknown option '%s'", argv[*i]));
	memcpy(name, arg, len);
	name[len] = '\0';
	if (c->cmd != NULL && (idx = opt_index(c->cmd, name)) >= 0)
		o = &c->cmd->opts[idx];
	else {
		for (common = 0; common_opts[common].name != NULL; common++)
			if (strcmp(common_opts[common].name, name) == 0)
				break;
		if (common_opts[common].name == NULL)
			return (cmd_usage_error(c, "unknown option '--%s'", name));
		o = &common_opts[common];
	}
	if (o->arg != NULL) {
		if (eq != NULL)
			value = eq + 1;
		else if (*i + 1 < argc)
			value = argv[++*i];
		else
			return (cmd_usage_error(c, "option --%s needs a value (%s)",
			    name, o->arg));
		if (*value == '\0')
			return (cmd_usage_error(c, "option --%s: empty value", name));
	} else if (eq != NULL)
		return (cmd_usage_error(c, "option --%s takes no value", name));

	if (idx >= 0 && o->arg != NULL && strlen(o->arg) > 3 &&
	    strcmp(o->arg + strlen(o->arg) - 3, "...") == 0 &&
	    strchr(o->arg, ',') == NULL) {
		/* A repeatable option. */
		if (c->nmany == (int)(sizeof c->many / sizeof c->many[0]))
			return (cmd_usage_error(c, "option --%s given more than "
			    "%d times", name, c->nmany));
		c->many[c->nmany++] = value;
		if (c->val[idx] == NULL)
			c->val[idx] = value;
		return (EXIT_OK);
	}
	if (idx >= 0) {
		if (c->val[idx] != NULL)
			return (cmd_usage_error(c, "option --%s given twice", name));
		c->val[idx] = value != NULL ? value : "";
		return (EXIT_OK);
	}
	if (strcmp(name, "db") == 0) {
		if (c->db_given)
			return (cmd_usage_error(c, "option --db given twice"));
		c->db_path = value;
		c->db_given = 1;
	} else if (strcmp(name, "json") == 0)
		c->json = 1;
	else if (strcmp(name, "strict") == 0)
		c->strict = 1;
	else if (strcmp(name, "help") == 0)
		*help = 1;
	return (EXIT_OK);
}

/* The CLI: global options, the command, its options and operands. */
int
cmd_main(int argc, char **argv)
{
	struct cmd_ctx	 c;
	char		**operands;
	const char	*env;
	int		 i, n = 0, help = 0, rc, done_opts = 0;

	memset(&c, 0, sizeof c);
	/* Global options come before the command. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("spool %s\n", spool_version());
			return (EXIT_OK);
		}
		if (strcmp(argv[i], "-h") == 0) {
			help = 1;
			continue;
		}
		if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0')
			return (cmd_usage_error(NULL, "unknown option '%s'",
			    argv[i]));
		if ((rc = take_opt(&c, argc, argv, &i, &help)) != EXIT_OK)
			return (rc);
	}
	if (i == argc) {
		if (help) {
			print_main_help(stdout);
			return (EXIT_OK);
		}
		return (cmd_usage_error(NULL, "missing command"));
	}
	if (strcmp(argv[i], "help") == 0) {
		if (++i == argc) {
			print_main_help(stdout);
			return (EXIT_OK);
		}
		if (is_group(argv[i]) && i + 1 == argc) {
			print_group_help(argv[i], stdout);
			return (EXIT_OK);
		}
		if ((c.cmd = find_cmd(argc, argv, &i)) == NULL)
			return (is_group(argv[i]) ? group_error(argv[i],
			    argv[i + 1]) : cmd_usage_error(NULL, "unknown "
			    "command '%s'", argv[i]));
		if (i + 1 < argc)
			return (cmd_usage_error(NULL, "help takes one command"));
		cmd_print_help(c.cmd, stdout);
		return (EXIT_OK);
	}
	if ((c.cmd = find_cmd(argc, argv, &i)) == NULL) {
		if (!is_group(argv[i]))
			return (cmd_usage_error(NULL, "unknown command '%s'",
			    argv[i]));
		if (help || (i + 1 < argc && (strcmp(argv[i + 1], "-h") == 0 ||
		    strcmp(argv[i + 1], "--help") == 0))) {
			print_group_help(argv[i], stdout);
			return (EXIT_OK);
		}
		return (group_error(argv[i], i + 1 < argc ? argv[i + 1] : NULL));
	}
	if (help) {
		cmd_print_help(c.cmd, stdout);
		return (EXIT_OK);
	}

	/* The command's options, anywhere among its operands. */
	if ((operands = calloc((size_t)argc, sizeof *operands)) == NULL)
		return (cmd_error(&c, EXIT_TEMPFAIL, "out of memory"));
	for (i++; i < argc; i++) {
		if (!done_opts && strcmp(argv[i], "--") == 0) {
			done_opts = 1;
			continue;
		}
		if (!done_opts && strcmp(argv[i], "-h") == 0) {
			help = 1;
			continue;
		}
		if (!done_opts && (c.cmd->flags & CMD_EXEC_TAIL) &&
		    strcmp(argv[i], "--exec") == 0) {
			c.tail = &argv[i + 1];
			c.ntail = argc - i - 1;
			if (c.ntail == 0) {
				rc = cmd_usage_error(&c, "--exec needs a command");
				goto out;
			}
			break;
		}
		if (!done_opts && strncmp(argv[i], "--", 2) == 0) {
			if ((rc = take_opt(&c, argc, argv, &i, &help)) != 0)
				goto out;
			continue;
		}
		if (!done_opts && argv[i][0] == '-' && argv[i][1] != '\0') {
			rc = cmd_usage_error(&c, "unknown option '%s' (put '--' "
			    "before an operand that starts with '-')", argv[i]);
			goto out;
		}
		operands[n++] = argv[i];
	}
	if (help) {
		cmd_print_help(c.cmd, stdout);
		rc = EXIT_OK;
		goto out;
	}
	if (n < c.cmd->min_args) {
		rc = cmd_usage_error(&c, "missing operand: spool %s %s",
		    c.cmd->name, c.cmd->usage);
		goto out;
	}
	if (c.cmd->max_args >= 0 && n > c.cmd->max_args) {
		rc = cmd_usage_error(&c, "too many operands (starting at '%s')",
		    operands[c.cmd->max_args]);
		goto out;
	}
	if (c.db_path == NULL) {
		env = getenv("SPOOL_DB");
		c.db_path = (env != NULL && *env != '\0') ? env : "spool.db";
	}
	rc = c.cmd->exec(&c, n, operands);
out:
	spool_close(c.q);
	free(operands);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (rc == EXIT_OK)
			rc = cmd_error(&c, EXIT_IO, "write error on stdout: %s",
			    strerror(errno));
	}
	return (rc);
}
