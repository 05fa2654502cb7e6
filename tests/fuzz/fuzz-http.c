/*
 * fuzz-http.c -- libFuzzer harness for the CLI's HTTP server (http.c,
 * on libevent's evhttp), as "spool serve --http-write" runs it: each
 * input is sent as it is over a loopback TCP connection to a server
 * listening on 127.0.0.1 (a port of its own), on a scratch database with
 * a queue and a few tasks, then the connection is half-closed and the
 * answer read to its end.  Besides not crashing: every answer is one
 * HTTP response (a status line "HTTP/1.x NNN ", but see below), and the
 * server answers
 * every input within 5 s.  Built by tests/cli/fuzz.sh with clang.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "http.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct cmd_http	*server;
static struct sockaddr_in sin_server;

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz-http: %s: %s\n", what, strerror(errno));
	abort();
}

static void *
serve(void *arg)
{
	(void)cmd_http_run(arg);
	return (NULL);
}

static void
setup(void)
{
	const char	*tmp = getenv("TMPDIR"), *where, *colon;
	static char	 scratch[256], db[300];
	char		*init[] = { "spool", "--db", db, "init", NULL };
	char		*add[] = { "spool", "--db", db, "enqueue", "q", "x", NULL };
	char		 err[256];
	pthread_t	 t;
	int		 i;

	signal(SIGPIPE, SIG_IGN);
	snprintf(scratch, sizeof scratch, "%s/fuzz-http-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(scratch) == NULL)
		abort();
	snprintf(db, sizeof db, "%s/f.db", scratch);
	if (freopen("/dev/null", "w", stdout) == NULL)
		abort();
	if (cmd_main(4, init) != EXIT_OK)
		abort();
	for (i = 0; i < 3; i++)
		if (cmd_main(6, add) != EXIT_OK)
			abort();
	if (cmd_http_new(&server, db, "127.0.0.1:0", NULL, CMD_HTTP_WRITE,
	    err, sizeof err) != EXIT_OK) {
		fprintf(stderr, "fuzz-http: %s\n", err);
		abort();
	}
	where = cmd_http_where(server);
	if ((colon = strrchr(where, ':')) == NULL)
		abort();
	memset(&sin_server, 0, sizeof sin_server);
	sin_server.sin_family = AF_INET;
	sin_server.sin_port = htons((uint16_t)atoi(colon + 1));
	sin_server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (pthread_create(&t, NULL, serve, server) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint32_t	 next;
	struct sockaddr_in from;
	struct pollfd	 pfd;
	char		 buf[65536], *p;
	size_t		 got = 0, off = 0;
	socklen_t	 len;
	ssize_t		 n;
	int		 s, code, err;

	if (server == NULL)
		setup();
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		fail("socket");
	/*
	 * From a new loopback address each time (127.0.0.0/8 is all ours):
	 * the server closes first, so each connection leaves a TIME_WAIT on
	 * its side, and a client port reused against one of those stalls
	 * the next connect for seconds (SYN retransmits), which is the
	 * kernel's doing, not the server's.
	 */
	memset(&from, 0, sizeof from);
	from.sin_family = AF_INET;
	from.sin_addr.s_addr = htonl(0x7f000000u | (1 + next++ % 0xfffffd));
	if (bind(s, (struct sockaddr *)&from, sizeof from) == -1)
		fail("bind");
	/* libFuzzer's -timeout is a SIGALRM every few seconds: each call
	 * here goes on after EINTR (a connect, in the background). */
	if (connect(s, (struct sockaddr *)&sin_server, sizeof sin_server) ==
	    -1) {
		if (errno != EINTR)
			fail("connect");
		pfd.fd = s;
		pfd.events = POLLOUT;
		while ((n = poll(&pfd, 1, 5000)) == -1 && errno == EINTR)
			continue;
		len = sizeof err;
		if (n != 1 || getsockopt(s, SOL_SOCKET, SO_ERROR, &err,
		    &len) == -1 || (errno = err) != 0)
			fail("connect");
	}
	/* The server may answer (and close) before it has read it all. */
	while (off < size && ((n = write(s, data + off, size - off)) > 0 ||
	    (n == -1 && errno == EINTR)))
		if (n > 0)
			off += (size_t)n;
	(void)shutdown(s, SHUT_WR);
	pfd.fd = s;
	pfd.events = POLLIN;
	for (;;) {
		while ((n = poll(&pfd, 1, 5000)) == -1 && errno == EINTR)
			continue;
		if (n != 1) {
			fprintf(stderr, "fuzz-http: no answer in 5 s\n");
			abort();
		}
		n = read(s, got < sizeof buf ? buf + got : buf,
		    got < sizeof buf ? sizeof buf - got : sizeof buf);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (got < sizeof buf)
			got += (size_t)n;
	}
	close(s);
	if (got == 0)
		return (0);	/* closed without a word: allowed */
	/*
	 * spool's own answers are HTTP/1.0 or 1.1 (http_route refuses any
	 * other version with a 505 in 1.1).  The errors evhttp sends by
	 * itself before spool sees the request (400 Bad Request, 413, 501
	 * for an unknown method) echo the request's version as libevent
	 * parsed it, even "HTTP/1.11" or "HTTP/1.-1": libevent 2.1's, so
	 * only their status code is checked.
	 */
	if (got < 13 || memcmp(buf, "HTTP/", 5) != 0 ||
	    (p = memchr(buf, ' ', got)) == NULL || (size_t)(p - buf) + 4 > got ||
	    sscanf(p + 1, "%3d", &code) != 1 || code < 100 || code > 599 ||
	    (code != 400 && code != 413 && code != 501 &&
	    (memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' &&
	    buf[7] != '1') || buf[8] != ' '))) {
		fprintf(stderr, "fuzz-http: not an HTTP response: %.40s\n", buf);
		abort();
	}
	return (0);
}
