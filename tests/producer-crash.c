/*
 * producer-crash.c -- a buffered producer to kill with SIGKILL.
 *
 *   producer-crash DB ROUND N
 *
 * Accepts N tasks on queue "p" (payload "ROUND-I", I = 1..N, as fast as
 * it can) through a spool_producer with small groups, and prints
 * "committed ROUND-I ID" for each task its on_commit reports committed,
 * one write() per line, as it happens.  tests/cli/producer.sh kills it at
 * a random moment and checks that every line printed names a task in the
 * database, and that no task is there twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

static const char	*round_name;

static void
on_commit(int64_t ticket, int64_t id, int rc, void *arg)
{
	char	 line[128];
	int	 n;

	(void)arg;
	if (rc != SPOOL_OK)
		n = snprintf(line, sizeof line, "refused %s-%lld %d\n",
		    round_name, (long long)ticket, rc);
	else
		n = snprintf(line, sizeof line, "committed %s-%lld %lld\n",
		    round_name, (long long)ticket, (long long)id);
	if (write(1, line, (size_t)n) != n)
		_exit(70);
}

int
main(int argc, char **argv)
{
	spool_producer_opts	 o = SPOOL_PRODUCER_OPTS_INIT;
	spool_producer		*p = NULL;
	char			 payload[64];
	long			 i, n;

	if (argc != 4) {
		fprintf(stderr, "usage: producer-crash DB ROUND N\n");
		return (64);
	}
	round_name = argv[2];
	n = atol(argv[3]);
	o.flush_count = 50;
	o.flush_interval_ms = 2;
	o.max_pending = 500;
	o.block_ms = -1;
	o.open_flags = SPOOL_OPEN_CREATE;
	o.on_commit = on_commit;
	if (spool_producer_new(&p, argv[1], &o) != SPOOL_OK) {
		fprintf(stderr, "producer-crash: %s\n", spool_producer_errmsg(p));
		return (70);
	}
	for (i = 1; i <= n; i++) {
		snprintf(payload, sizeof payload, "%s-%ld", round_name, i);
		if (spool_producer_enqueue(NULL, p, "p", payload,
		    strlen(payload), NULL) != SPOOL_OK) {
			fprintf(stderr, "producer-crash: %s\n",
			    spool_producer_errmsg(p));
			return (70);
		}
	}
	return (spool_producer_close(p) == SPOOL_OK ? 0 : 70);
}
