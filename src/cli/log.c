/*
 * log.c -- the CLI's event log: one line per event on stderr, each with
 * a level, filtered by --log-level.  When stderr is the systemd journal
 * (JOURNAL_STREAM names it), lines start with a syslog priority "<N>" so
 * the journal keeps the level; otherwise with the UTC time, so a log
 * file or a cron mail says when.
 *
 * Invariants: a line is written with one write(2), so lines of threads
 * and processes sharing the stream never interleave; control characters
 * in messages are shown as '?'.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

static const char *const log_names[] = {
	NULL, NULL, NULL, "error", "warning", "notice", "info", "debug"
};

static int	 log_level = LOG_INFO;
static int	 log_journal;

/* The level called name, or -1. */
int
cmd_log_parse(const char *name)
{
	int	 i;

	for (i = LOG_ERROR; name != NULL && i <= LOG_DEBUG; i++)
		if (strcmp(name, log_names[i]) == 0)
			return (i);
	return (-1);
}

/* Log events at level and above; look whether stderr is the journal. */
void
cmd_log_init(int level)
{
	const char	*js = getenv("JOURNAL_STREAM");
	unsigned long	 dev, ino;
	struct stat	 sb;

	log_level = level;
	log_journal = js != NULL && sscanf(js, "%lu:%lu", &dev, &ino) == 2 &&
	    fstat(STDERR_FILENO, &sb) == 0 && (unsigned long)sb.st_dev == dev &&
	    (unsigned long)sb.st_ino == ino;
}

/* Would an event at level be written? */
int
cmd_log_enabled(int level)
{
	return (level <= log_level);
}

/* One event: "[<N>|TIME ]spool CMD: LEVEL: message". */
void
cmd_log(const char *cmd, int level, const char *fmt, ...)
{
	char		 msg[1024], line[1300];
	struct tm	 tm;
	va_list		 ap;
	int64_t		 ms;
	time_t		 t;
	size_t		 len, i, start;
	ssize_t		 n;

	if (level > log_level || level < LOG_ERROR)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (log_journal)
		len = (size_t)snprintf(line, sizeof line, "<%d>", level);
	else {
		ms = cmd_now_ms();
		t = (time_t)(ms / 1000);
		gmtime_r(&t, &tm);
		len = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
		len += (size_t)snprintf(line + len, sizeof line - len, ".%03dZ ",
		    (int)(ms % 1000));
	}
	start = len;
	snprintf(line + len, sizeof line - len - 1, "spool %s: %s: %s", cmd,
	    log_names[level], msg);
	len = strlen(line);
	for (i = start; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[len++] = '\n';
	for (i = 0; i < len; i += (size_t)n)
		if ((n = write(STDERR_FILENO, line + i, len - i)) == -1) {
			if (errno != EINTR)
				break;
			n = 0;
		}
}
