/*
 * http.h -- the CLI's HTTP server (http.c), for "spool work --http" and
 * "spool serve".
 */
#ifndef SPOOL_HTTP_H
#define SPOOL_HTTP_H

#include <stddef.h>

#include "spool.h"

struct cmd_http;

/* cmd_http_new flags */
#define CMD_HTTP_WRITE		0x01	/* allow POST retry/cancel/pause/resume */
#define CMD_HTTP_SIGNALS	0x02	/* SIGINT and SIGTERM end cmd_http_run */
#define CMD_HTTP_REAP		0x04	/* reap expired leases every second */

/* Open the database at db_path and listen on addr ("HOST:PORT", ":PORT"
 * for 127.0.0.1; port 0 picks a free one).  pool, if not NULL, adds its
 * in-process figures to /metrics and /api/queues.  Returns an exit code
 * (EXIT_OK) with a one-line reason in err; *out is to be freed either way. */
int		 cmd_http_new(struct cmd_http **out, const char *db_path,
		     const char *addr, spool_pool *pool, int flags, char *err,
		     size_t errlen);

/* "127.0.0.1:8080": where it listens. */
const char	*cmd_http_where(const struct cmd_http *h);

/* Serve in the calling thread until cmd_http_stop (or a signal). */
int		 cmd_http_run(struct cmd_http *h);

/* End cmd_http_run; any thread. */
void		 cmd_http_stop(struct cmd_http *h);

void		 cmd_http_free(struct cmd_http *h);

#endif /* SPOOL_HTTP_H */
