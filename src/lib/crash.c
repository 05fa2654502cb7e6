/*
 * crash.c -- named crash points, for the failure tests.
 *
 * With SPOOL_TEST_CRASH=POINT or POINT:N in its environment, a process
 * _exit()s with status SPOOL__CRASH_EXIT the Nth time (the first, without
 * N) any thread reaches the crash point POINT: no COMMIT, no cleanup, no
 * stdio flush, as a kill -9 at that line would end it; a command it runs
 * goes with it (PR_SET_PDEATHSIG, exec.c).  One line on stderr names the
 * point first, so a test can tell the crash it asked for from any other.
 * Without the variable a point costs one pthread_once and one branch.
 *
 * The points (grep spool__crash):
 *   enqueued  an enqueue's transaction committed, before the call returns
 *   claim     a claim committed, before any of its tasks starts
 *   exited    a command exited, before its outcome is handed to the pool
 *   flush     a pool's outcomes are written, before their COMMIT
 *   flushed   a pool's outcomes are committed, before the pool moves on
 *   settle    a finished batch is settled (its hook enqueued), before
 *             the COMMIT
 *   handoff   a pipeline item is handed to its next stage, before the
 *             COMMIT
 *   reap      the reaper read the expired leases, before it writes
 *   migrate   a migration step ran, before the next (N counts steps)
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool-int.h"

static const char *const crash_points[] = {
	"enqueued", "claim", "exited", "flush", "flushed", "settle",
	"handoff", "reap", "migrate"
};

static pthread_once_t	 crash_once = PTHREAD_ONCE_INIT;
static char		 crash_point[16];	/* "" when none is armed */
static long		 crash_target;
static long		 crash_hits;

static void
crash_init(void)
{
	const char	*v = getenv("SPOOL_TEST_CRASH"), *colon;
	char		*end;
	size_t		 len, i;
	long		 n = 1;

	if (v == NULL || *v == '\0')
		return;
	colon = strchr(v, ':');
	len = colon != NULL ? (size_t)(colon - v) : strlen(v);
	if (colon != NULL) {
		n = strtol(colon + 1, &end, 10);
		if (end == colon + 1 || *end != '\0' || n < 1)
			n = 0;
	}
	for (i = 0; i < sizeof crash_points / sizeof crash_points[0]; i++)
		if (strlen(crash_points[i]) == len &&
		    strncmp(crash_points[i], v, len) == 0)
			break;
	if (i == sizeof crash_points / sizeof crash_points[0] || n == 0) {
		/* A typo must not pass for a point that is never reached. */
		fprintf(stderr, "spool: SPOOL_TEST_CRASH: no such crash point "
		    "or count: %s\n", v);
		_exit(SPOOL__CRASH_EXIT);
	}
	memcpy(crash_point, v, len);
	crash_point[len] = '\0';
	crash_target = n;
}

void
spool__crash(const char *point)
{
	char	 line[64];
	int	 len;

	pthread_once(&crash_once, crash_init);
	if (crash_point[0] == '\0' || strcmp(point, crash_point) != 0)
		return;
	if (__atomic_add_fetch(&crash_hits, 1, __ATOMIC_SEQ_CST) !=
	    crash_target)
		return;
	len = snprintf(line, sizeof line, "spool: crash point %s:%ld\n",
	    point, crash_target);
	if (len > 0)
		(void)!write(2, line, (size_t)len);
	_exit(SPOOL__CRASH_EXIT);
}
