/*
 * http.c -- the CLI's small HTTP server (libevent's evhttp), for
 * "spool work --http" and "spool serve": Prometheus metrics, a health
 * check, read-only JSON views of queues, tasks, workers, batches and
 * pipeline runs, and the dashboard page.  With the write option, POSTs
 * retry or cancel a task and pause or resume a queue; without it nothing
 * here changes the database.
 *
 * The server runs its own event base on its own database connection, in
 * the thread that calls cmd_http_run (spool work starts a thread for it,
 * spool serve uses its main thread).  Reads in WAL mode never wait for
 * the workers' writes.  Besides the engine's files (engine*.c and
 * loop.c, in the library), this is the only file that includes libevent.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <netdb.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <event2/util.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "http.h"

#define HTTP_MAX_HEADERS	8192	/* bytes of request headers */
#define HTTP_MAX_BODY		1024	/* bytes of a request body */
#define HTTP_TIMEOUT_S		10	/* to read a request or write a reply */
#define HTTP_PAGE_MAX		1000	/* tasks, batches or runs per page */
#define HTTP_PAGE_DEFAULT	50

extern const char cmd_dashboard_html[];	/* dashboard.c, from dashboard.html */

struct cmd_http {
	struct event_base		*base;
	struct evhttp			*http;
	struct event			*sig[2];
	struct event			*ev_stop;	/* cmd_http_stop */
	/* CMD_HTTP_REAP: a thread of its own with a handle of its own, so
	 * a write lock held elsewhere stalls the reaping, not the pages. */
	pthread_t			 reaper;
	int				 reaping;	/* the thread runs */
	int				 reap_init;	/* mutex and cv made */
	int				 reap_stop;	/* under reap_mu */
	pthread_mutex_t			 reap_mu;
	pthread_cond_t			 reap_cv;
	char				*db_path;
	spool				*q;
	spool_pool			*pool;	/* spool work's, or NULL */
	int				 flags;	/* CMD_HTTP_* */
	char				 where[96];	/* "127.0.0.1:8080" */
};

/* A reply being written: the body, then its status and type. */
struct reply {
	char		*buf;
	size_t		 len;
	FILE		*f;
	struct json	 j;
};

/* Start a reply; on failure answer 500 and return -1. */
static int
reply_open(struct evhttp_request *req, struct reply *r)
{
	r->buf = NULL;
	r->len = 0;
	if ((r->f = open_memstream(&r->buf, &r->len)) == NULL) {
		evhttp_send_error(req, 500, "out of memory");
		return (-1);
	}
	json_init(&r->j, r->f);
	return (0);
}

/* Send what was written with code and type, and free it. */
static void
reply_send(struct evhttp_request *req, struct reply *r, int code,
    const char *type)
{
	struct evbuffer	*b;
	char		 len[24];
	int		 ok = fclose(r->f) == 0;

	r->f = NULL;
	b = evbuffer_new();
	if (!ok || b == NULL || evbuffer_add(b, r->buf, r->len) != 0) {
		if (b != NULL)
			evbuffer_free(b);
		free(r->buf);
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	free(r->buf);
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		/* The length of what GET would send, and no body. */
		snprintf(len, sizeof len, "%zu", evbuffer_get_length(b));
		evbuffer_drain(b, evbuffer_get_length(b));
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Length", len);
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", type);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	evhttp_send_reply(req, code, code == 200 ? "OK" :
	    code == 400 ? "Bad Request" : code == 403 ? "Forbidden" :
	    code == 404 ? "Not Found" : code == 405 ? "Method Not Allowed" :
	    code == 409 ? "Conflict" : code == 503 ? "Service Unavailable" :
	    code == 505 ? "HTTP Version Not Supported" :
	    "Internal Server Error", b);
	evbuffer_free(b);
}

/* A JSON error reply: {"error": msg}. */
static void
reply_error(struct evhttp_request *req, int code, const char *msg)
{
	struct reply	 r;

	if (reply_open(req, &r) != 0)
		return;
	json_open(&r.j, '{');
	json_kv_str(&r.j, "error", msg);
	json_close(&r.j, '}');
	json_end(&r.j);
	reply_send(req, &r, code, "application/json");
}

/* The library's error as a reply: missing things are 404, busy 503. */
static void
reply_fail(struct evhttp_request *req, struct cmd_http *h, int rc)
{
	reply_error(req, rc == SPOOL_ENOENT ? 404 : rc == SPOOL_EBUSY ? 503 :
	    rc == SPOOL_EINVAL ? 400 : rc == SPOOL_ESTATE ? 409 : 500,
	    spool_errmsg(h->q));
}

static void
reply_json(struct evhttp_request *req, struct reply *r)
{
	json_end(&r->j);
	reply_send(req, r, 200, "application/json");
}

/* ---- query strings -------------------------------------------------------- */

/* An integer query parameter in [min, max], or def when absent; -1 (and
 * a 400 reply) when it is malformed. */
static int
query_int(struct evhttp_request *req, struct evkeyvalq *kv, const char *name,
    int64_t min, int64_t max, int64_t def, int64_t *out)
{
	const char	*v = evhttp_find_header(kv, name);
	char		 msg[128];

	*out = def;
	if (v == NULL)
		return (0);
	if (parse_int64(v, min, max, out) != 0) {
		snprintf(msg, sizeof msg, "%s: not an integer from %lld to %lld",
		    name, (long long)min, (long long)max);
		reply_error(req, 400, msg);
		return (-1);
	}
	return (0);
}

/* The paging parameters every list takes: limit (1 to HTTP_PAGE_MAX),
 * after (an id) and order (asc or desc); -1 (and a 400 reply) when one
 * is malformed. */
static int
query_page(struct evhttp_request *req, struct evkeyvalq *kv, int64_t *limit,
    int64_t *after, int *desc)
{
	const char	*order = evhttp_find_header(kv, "order");

	if (query_int(req, kv, "limit", 1, HTTP_PAGE_MAX, HTTP_PAGE_DEFAULT,
	    limit) != 0 || query_int(req, kv, "after", 0, INT64_MAX, 0,
	    after) != 0)
		return (-1);
	if (order != NULL && strcmp(order, "asc") != 0 &&
	    strcmp(order, "desc") != 0) {
		reply_error(req, 400, "order: asc or desc");
		return (-1);
	}
	*desc = order != NULL && strcmp(order, "desc") == 0;
	return (0);
}

/* ---- the read-only endpoints ------------------------------------------------ */

static void
get_healthz(struct evhttp_request *req, struct cmd_http *h)
{
	spool_worker_info	*w = NULL;
	struct reply		 r;
	size_t			 n = 0;
	int			 rc;

	/* A read of the database proves it answers: one row is enough. */
	if ((rc = spool_workers(&w, &n, h->q, &(spool_worker_list_opts){
	    .version = SPOOL_WORKER_LIST_OPTS_VERSION, .limit = 1 })) !=
	    SPOOL_OK) {
		reply_error(req, 503, spool_errmsg(h->q));
		return;
	}
	spool_worker_info_free(w, n);
	if (reply_open(req, &r) != 0)
		return;
	fputs("ok\n", r.f);
	reply_send(req, &r, 200, "text/plain; charset=utf-8");
}

static void
get_metrics(struct evhttp_request *req, struct cmd_http *h)
{
	struct reply	 r;
	char		*text;
	size_t		 len;
	int		 rc;

	if ((rc = spool_prometheus(&text, &len, h->q, h->pool, NULL)) !=
	    SPOOL_OK) {
		reply_fail(req, h, rc);
		return;
	}
	if (reply_open(req, &r) != 0) {
		free(text);
		return;
	}
	fwrite(text, 1, len, r.f);
	free(text);
	reply_send(req, &r, 200, "text/plain; version=0.0.4; charset=utf-8");
}

/* {"now_ms", "queues": [...], "pool": {...} or null} */
static void
get_queues(struct evhttp_request *req, struct cmd_http *h)
{
	spool_queue_metrics	*m = NULL;
	spool_pool_metrics	 pm;
	struct reply		 r;
	size_t			 n, i;
	int			 rc, k;

	if ((rc = spool_metrics(&m, &n, h->q, NULL)) != SPOOL_OK) {
		reply_fail(req, h, rc);
		return;
	}
	if (reply_open(req, &r) != 0) {
		spool_queue_metrics_free(m, n);
		return;
	}
	json_open(&r.j, '{');
	json_kv_int(&r.j, "now_ms", cmd_now_ms());
	json_key(&r.j, "queues");
	json_open(&r.j, '[');
	for (i = 0; i < n; i++)
		cmd_json_queue_metrics(&r.j, &m[i]);
	json_close(&r.j, ']');
	spool_queue_metrics_free(m, n);
	json_key(&r.j, "pool");
	if (h->pool == NULL)
		json_null(&r.j);
	else {
		spool_pool_metrics_get(&pm, h->pool);
		json_open(&r.j, '{');
		json_kv_int(&r.j, "pid", (int64_t)getpid());
		json_kv_int(&r.j, "threads", pm.stats.workers);
		json_kv_int(&r.j, "busy", pm.stats.busy);
		json_kv_int(&r.j, "commit_blocked", pm.stats.holding);
		json_kv_int(&r.j, "outcomes_held", pm.stats.held);
		json_kv_int(&r.j, "succeeded", pm.stats.succeeded);
		json_kv_int(&r.j, "retried", pm.stats.retried);
		json_kv_int(&r.j, "dead", pm.stats.dead);
		json_kv_int(&r.j, "succeeded_last_minute", pm.succeeded_1m);
		json_kv_int(&r.j, "failed_last_minute", pm.failed_1m);
		json_key(&r.j, "succeeded_per_s");
		json_open(&r.j, '[');
		for (k = 0; k < SPOOL_RATE_SECONDS; k++)
			json_int(&r.j, pm.succeeded_s[k]);
		json_close(&r.j, ']');
		json_key(&r.j, "failed_per_s");
		json_open(&r.j, '[');
		for (k = 0; k < SPOOL_RATE_SECONDS; k++)
			json_int(&r.j, pm.failed_s[k]);
		json_close(&r.j, ']');
		json_key(&r.j, "run_ms");
		json_open(&r.j, '{');
		json_key(&r.j, "p50");
		json_double(&r.j, spool_histogram_quantile(&pm.run, 0.5));
		json_key(&r.j, "p95");
		json_double(&r.j, spool_histogram_quantile(&pm.run, 0.95));
		json_key(&r.j, "p99");
		json_double(&r.j, spool_histogram_quantile(&pm.run, 0.99));
		json_close(&r.j, '}');
		json_key(&r.j, "cpu_cores");
		json_double(&r.j, pm.cpu_process);
		json_kv_int(&r.j, "rss_bytes", pm.rss_bytes);
		json_close(&r.j, '}');
	}
	json_close(&r.j, '}');
	reply_json(req, &r);
}

/* /api/tasks?queue=Q&state=S&batch=ID&after=ID&limit=N&order=desc */
static void
get_tasks(struct evhttp_request *req, struct cmd_http *h,
    struct evkeyvalq *kv)
{
	spool_list_opts	 o = SPOOL_LIST_OPTS_INIT;
	spool_task_info	*t = NULL;
	struct reply	 r;
	const char	*state = evhttp_find_header(kv, "state");
	int64_t		 limit, after;
	size_t		 n, i;
	int		 rc, desc;

	if (query_page(req, kv, &limit, &after, &desc) != 0 ||
	    query_int(req, kv, "batch", 1, INT64_MAX, 0, &o.batch_id) != 0)
		return;
	o.queue = evhttp_find_header(kv, "queue");
	if (state != NULL) {
		for (o.state = 1; spool_state_name(o.state) != NULL; o.state++)
			if (strcmp(spool_state_name(o.state), state) == 0)
				break;
		if (spool_state_name(o.state) == NULL) {
			reply_error(req, 400, "state: one of ready, claimed, "
			    "running, expired, succeeded, dead, cancelled");
			return;
		}
	}
	o.descending = desc;
	o.after_id = after;
	o.limit = (size_t)limit;
	if ((rc = spool_list(&t, &n, h->q, &o)) != SPOOL_OK) {
		reply_fail(req, h, rc);
		return;
	}
	if (reply_open(req, &r) != 0) {
		spool_task_info_free(t, n);
		return;
	}
	json_open(&r.j, '{');
	json_key(&r.j, "tasks");
	json_open(&r.j, '[');
	for (i = 0; i < n; i++)
		cmd_json_task(&r.j, &t[i]);
	cmd_json_page(&r.j, n > 0 && (int64_t)n == limit ? t[n - 1].id : 0);
	spool_task_info_free(t, n);
	reply_send(req, &r, 200, "application/json");
}

/* /api/tasks/ID: one task with its result. */
static void
get_task(struct evhttp_request *req, struct cmd_http *h, int64_t id)
{
	spool_task_info	*t = NULL;
	struct reply	 r;
	int		 rc;

	if ((rc = spool_task_get(&t, h->q, id)) != SPOOL_OK) {
		reply_fail(req, h, rc);
		return;
	}
	if (reply_open(req, &r) != 0) {
		spool_task_info_free(t, 1);
		return;
	}
	cmd_json_task(&r.j, t);
	spool_task_info_free(t, 1);
	reply_json(req, &r);
}

static void
get_workers(struct evhttp_request *req, struct cmd_http *h)
{
	spool_worker_info	*w = NULL;
	struct reply		 r;
	size_t			 n, i;
	int			 rc;

	if ((rc = cmd_workers_all(h->q, &w, &n)) != SPOOL_OK) {
		reply_fail(req, h, rc);
		return;
	}
	if (reply_open(req, &r) != 0) {
		spool_worker_info_free(w, n);
		return;
	}
	json_open(&r.j, '{');
	json_key(&r.j, "workers");
	json_open(&r.j, '[');
	for (i = 0; i < n; i++)
		cmd_json_worker(&r.j, &w[i]);
	json_close(&r.j, ']');
	json_close(&r.j, '}');
	spool_worker_info_free(w, n);
	reply_json(req, &r);
}

/* /api/batches?state=S&after=ID&limit=N&order=desc */
static void
get_batches(struct evhttp_request *req, struct cmd_http *h,
    struct evkeyvalq *kv)
{
	spool_batch_info	*b = NULL;
	struct reply		 r;
	const char		*sname = evhttp_find_header(kv, "state");
	int64_t			 limit, after;
	size_t			 n, i;
	int			 rc, desc, state = 0;

	if (query_page(req, kv, &limit, &after, &desc) != 0)
		return;
	if (sname != NULL) {
		for (state = 1; spool_batch_state_name(state) != NULL; state++)
			if (strcmp(spool_batch_state_name(state), sname) == 0)
				break;
		if (spool_batch_state_name(state) == NULL) {
			reply_error(req, 400, "state: not a batch state");
			return;
		}
	}
	if ((rc = spool_batch_list(&b, &n, h->q, &(spool_batch_list_opts){
	    .version = SPOOL_BATCH_LIST_OPTS_VERSION, .state = state,
	    .after_id = after, .limit = (size_t)limit, .descending = desc })) !=
	    SPOOL_OK) {
		reply_fail(req, h, rc);
		return;
	}
	if (reply_open(req, &r) != 0) {
		spool_batch_info_free(b, n);
		return;
	}
	json_open(&r.j, '{');
	json_key(&r.j, "batches");
	json_open(&r.j, '[');
	for (i = 0; i < n; i++)
		cmd_json_batch(&r.j, &b[i]);
	cmd_json_page(&r.j, n > 0 && (int64_t)n == limit ? b[n - 1].id : 0);
	spool_batch_info_free(b, n);
	reply_send(req, &r, 200, "application/json");
}

/* /api/runs?pipeline=P&after=ID&limit=N&order=desc */
static void
get_runs(struct evhttp_request *req, struct cmd_http *h,
    struct evkeyvalq *kv)
{
	spool_run_info	*ru = NULL;
	struct reply	 r;
	int64_t		 limit, after, now = cmd_now_ms();
	size_t		 n, i;
	int		 rc, desc;

	if (query_page(req, kv, &limit, &after, &desc) != 0)
		return;
	if ((rc = spool_run_list(&ru, &n, h->q, &(spool_run_list_opts){
	    .version = SPOOL_RUN_LIST_OPTS_VERSION,
	    .pipeline = evhttp_find_header(kv, "pipeline"), .after_id = after,
	    .limit = (size_t)limit, .descending = desc })) != SPOOL_OK) {
		reply_fail(req, h, rc);
		return;
	}
	if (reply_open(req, &r) != 0) {
		spool_run_info_free(ru, n);
		return;
	}
	json_open(&r.j, '{');
	json_key(&r.j, "runs");
	json_open(&r.j, '[');
	for (i = 0; i < n; i++) {
		json_open(&r.j, '{');
		cmd_json_run_fields(&r.j, &ru[i], now);
		json_close(&r.j, '}');
	}
	cmd_json_page(&r.j, n > 0 && (int64_t)n == limit ? ru[n - 1].id : 0);
	spool_run_info_free(ru, n);
	reply_send(req, &r, 200, "application/json");
}

static void
get_dashboard(struct evhttp_request *req)
{
	struct reply	 r;

	if (reply_open(req, &r) != 0)
		return;
	fputs(cmd_dashboard_html, r.f);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Security-Policy", "default-src 'none'; "
	    "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
	    "connect-src 'self'; img-src data:");
	reply_send(req, &r, 200, "text/html; charset=utf-8");
}

/* ---- the write endpoints (CMD_HTTP_WRITE) ---------------------------------- */

/* POST /api/tasks/ID/retry|cancel */
static void
post_task(struct evhttp_request *req, struct cmd_http *h, int64_t id,
    const char *action)
{
	struct reply	 r;
	int		 rc, running = 0;

	if (strcmp(action, "retry") == 0)
		rc = spool_retry(h->q, id);
	else if (strcmp(action, "cancel") == 0)
		rc = spool_cancel(&running, h->q, id);
	else {
		reply_error(req, 404, "no such action (retry, cancel)");
		return;
	}
	if (rc != SPOOL_OK) {
		reply_fail(req, h, rc);
		return;
	}
	if (reply_open(req, &r) != 0)
		return;
	json_open(&r.j, '{');
	json_kv_int(&r.j, "id", id);
	json_kv_str(&r.j, "done", action);
	if (strcmp(action, "cancel") == 0) {
		json_key(&r.j, "running");
		json_bool(&r.j, running);
	}
	json_close(&r.j, '}');
	reply_json(req, &r);
}

/* POST /api/queues/NAME/pause|resume (NAME may hold slashes: "P/S"). */
static void
post_queue(struct evhttp_request *req, struct cmd_http *h, const char *name,
    const char *action)
{
	spool_queue_opts	 o = SPOOL_QUEUE_OPTS_INIT;
	spool_queue_info	*qi = NULL;
	struct reply		 r;
	int			 rc;

	if (strcmp(action, "pause") != 0 && strcmp(action, "resume") != 0) {
		reply_error(req, 404, "no such action (pause, resume)");
		return;
	}
	/* Pausing must not create a queue that does not exist. */
	if ((rc = spool_queue_get(&qi, h->q, name)) != SPOOL_OK) {
		reply_fail(req, h, rc);
		return;
	}
	spool_queue_info_free(qi, 1);
	o.set = SPOOL_QUEUE_PAUSED;
	o.paused = strcmp(action, "pause") == 0;
	if ((rc = spool_queue_set(h->q, name, &o)) != SPOOL_OK) {
		reply_fail(req, h, rc);
		return;
	}
	if (reply_open(req, &r) != 0)
		return;
	json_open(&r.j, '{');
	json_kv_str(&r.j, "queue", name);
	json_key(&r.j, "paused");
	json_bool(&r.j, o.paused);
	json_close(&r.j, '}');
	reply_json(req, &r);
}

/* ---- routing ---------------------------------------------------------------- */

/* "/api/tasks/123" or "/api/tasks/123/retry": the id, and the action
 * after it or "" (an id of 0 if the path is not of that shape). */
static int64_t
task_path(const char *rest, const char **action)
{
	char		 num[24];
	const char	*slash = strchr(rest, '/');
	size_t		 len = slash != NULL ? (size_t)(slash - rest) :
			    strlen(rest);
	int64_t		 id;

	*action = slash != NULL ? slash + 1 : "";
	if (len == 0 || len >= sizeof num)
		return (0);
	memcpy(num, rest, len);
	num[len] = '\0';
	if (parse_int64(num, 1, INT64_MAX, &id) != 0)
		return (0);
	return (id);
}

/*
 * Whether host ("NAME:PORT", from a Host header or an Origin) names this
 * server: its port, and a name no other site can point here, so that a
 * page of another site that got its name resolved to this machine (DNS
 * rebinding) cannot write.  Such names: the address it listens on,
 * "localhost" and the loopback addresses, an address literal (a numeric
 * IPv4 or a bracketed IPv6: no domain to rebind), this machine's
 * hostname.
 */
static int
host_is_ours(const struct cmd_http *h, const char *host)
{
	const char	*port = strrchr(h->where, ':'), *hp;
	char		 name[256], me[256];
	size_t		 len;

	if (port == NULL || (hp = strrchr(host, ':')) == NULL ||
	    strcmp(hp, port) != 0 || (size_t)(hp - host) >= sizeof name)
		return (0);
	len = (size_t)(hp - host);
	memcpy(name, host, len);
	name[len] = '\0';
	if (strncasecmp(host, h->where, (size_t)(port - h->where)) == 0 &&
	    (size_t)(port - h->where) == len)
		return (1);
	if (strcasecmp(name, "localhost") == 0 || strcmp(name, "[::1]") == 0)
		return (1);
	if (len > 0 && strspn(name, "0123456789.") == len)
		return (1);		/* an IPv4 literal */
	if (len > 2 && name[0] == '[' && name[len - 1] == ']' &&
	    strspn(name + 1, "0123456789abcdefABCDEF:.") == len - 2)
		return (1);		/* an IPv6 literal */
	if (gethostname(me, sizeof me) == 0) {
		me[sizeof me - 1] = '\0';
		if (strcasecmp(name, me) == 0)
			return (1);
	}
	return (0);
}

/* Why a write request is refused, or NULL: it needs the header
 * "X-Spool-Write: 1" (which a page of another site cannot send without
 * this server's consent to a CORS preflight, never given), a Host that
 * names this server, and no Origin but this server's. */
static const char *
write_refused(struct evhttp_request *req, const struct cmd_http *h)
{
	struct evkeyvalq	*in = evhttp_request_get_input_headers(req);
	const char		*w, *host, *origin;

	w = evhttp_find_header(in, "X-Spool-Write");
	if (w == NULL || strcmp(w, "1") != 0)
		return ("a write needs the header 'X-Spool-Write: 1'");
	host = evhttp_find_header(in, "Host");
	if (host == NULL || !host_is_ours(h, host))
		return ("a write must name this server in its Host header");
	origin = evhttp_find_header(in, "Origin");
	if (origin != NULL && (strncasecmp(origin, "http://", 7) != 0 ||
	    !host_is_ours(h, origin + 7)))
		return ("a write from a page of another origin is refused");
	return (NULL);
}

static void
http_route(struct evhttp_request *req, void *arg)
{
	struct cmd_http		*h = arg;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type	 method = evhttp_request_get_command(req);
	struct evkeyvalq	 kv;
	const char		*path = uri != NULL ? evhttp_uri_get_path(uri) :
				    NULL;
	const char		*query = uri != NULL ? evhttp_uri_get_query(uri) :
				    NULL;
	const char		*action, *w, *slash, *allow = "GET, HEAD";
	char			*dec = NULL, name[SPOOL_NAME_MAX * 3 + 1];
	int64_t			 id;
	int			 get = method == EVHTTP_REQ_GET ||
				    method == EVHTTP_REQ_HEAD;

	TAILQ_INIT(&kv);
	/* evhttp answers in the request's version, whatever its digits
	 * ("GET / HTTP/1.11" got "HTTP/1.11 200 OK", which no client can
	 * read; found by tests/fuzz/fuzz-http.c): 1.0 and 1.1 only, and
	 * anything else a 505 in 1.1.  The version is only reachable
	 * through the request's struct (event2/http_struct.h). */
	if (req->major != 1 || (req->minor != 0 && req->minor != 1)) {
		req->major = 1;
		req->minor = 1;
		reply_error(req, 505, "HTTP version not supported");
		return;
	}
	if (path == NULL || *path == '\0')
		path = "/";
	if (query != NULL && evhttp_parse_query_str(query, &kv) != 0) {
		reply_error(req, 400, "malformed query string");
		return;
	}
	if (get && strcmp(path, "/") == 0)
		get_dashboard(req);
	else if (get && strcmp(path, "/metrics") == 0)
		get_metrics(req, h);
	else if (get && strcmp(path, "/healthz") == 0)
		get_healthz(req, h);
	else if (get && strcmp(path, "/api/queues") == 0)
		get_queues(req, h);
	else if (get && strcmp(path, "/api/tasks") == 0)
		get_tasks(req, h, &kv);
	else if (get && strcmp(path, "/api/workers") == 0)
		get_workers(req, h);
	else if (get && strcmp(path, "/api/batches") == 0)
		get_batches(req, h, &kv);
	else if (get && strcmp(path, "/api/runs") == 0)
		get_runs(req, h, &kv);
	else if (strncmp(path, "/api/tasks/", 11) == 0 &&
	    (id = task_path(path + 11, &action)) != 0) {
		if (*action != '\0')
			allow = h->flags & CMD_HTTP_WRITE ? "POST" : "";
		if (get && *action == '\0')
			get_task(req, h, id);
		else if (method != EVHTTP_REQ_POST || *action == '\0')
			goto not_allowed;
		else if (!(h->flags & CMD_HTTP_WRITE))
			goto read_only;
		else if ((w = write_refused(req, h)) != NULL)
			goto refused;
		else
			post_task(req, h, id, action);
	} else if (strncmp(path, "/api/queues/", 12) == 0 &&
	    (slash = strrchr(path + 12, '/')) != NULL &&
	    slash > path + 12) {
		allow = h->flags & CMD_HTTP_WRITE ? "POST" : "";
		if (method != EVHTTP_REQ_POST)
			goto not_allowed;
		if (!(h->flags & CMD_HTTP_WRITE))
			goto read_only;
		if ((w = write_refused(req, h)) != NULL)
			goto refused;
		if ((size_t)(slash - (path + 12)) >= sizeof name) {
			reply_error(req, 404, "no such queue");
			goto out;
		}
		memcpy(name, path + 12, (size_t)(slash - (path + 12)));
		name[slash - (path + 12)] = '\0';
		dec = evhttp_uridecode(name, 0, NULL);
		if (dec == NULL)
			reply_error(req, 400, "malformed queue name");
		else
			post_queue(req, h, dec, slash + 1);
		free(dec);
	} else if (!get && (strcmp(path, "/") == 0 ||
	    strcmp(path, "/metrics") == 0 || strcmp(path, "/healthz") == 0 ||
	    strncmp(path, "/api/", 5) == 0))
		goto not_allowed;
	else
		reply_error(req, 404, "no such page");
out:
	evhttp_clear_headers(&kv);
	return;

not_allowed:
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
	    allow);
	reply_error(req, 405, "method not allowed");
	evhttp_clear_headers(&kv);
	return;
read_only:
	reply_error(req, 403, "read-only: start the server with --http-write "
	    "to allow retry, cancel, pause and resume");
	evhttp_clear_headers(&kv);
	return;
refused:
	reply_error(req, 403, w);
	evhttp_clear_headers(&kv);
}

/* ---- the server ------------------------------------------------------------- */

/* Split "ADDR:PORT" ("127.0.0.1:8080", "[::1]:8080", ":8080" for
 * 127.0.0.1) into host and port. */
static int
split_addr(const char *s, char *host, size_t hostlen, int *port)
{
	const char	*colon = strrchr(s, ':');
	const char	*h = s;
	size_t		 len;
	int64_t		 p;

	if (colon == NULL || parse_int64(colon + 1, 0, 65535, &p) != 0)
		return (-1);
	len = (size_t)(colon - s);
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		h = s + 1;
		len -= 2;
	}
	if (len == 0) {
		h = "127.0.0.1";
		len = strlen(h);
	}
	if (len >= hostlen)
		return (-1);
	memcpy(host, h, len);
	host[len] = '\0';
	*port = (int)p;
	return (0);
}

static void
http_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cmd_http	*h = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(h->base);
}

/* Every second, reap expired leases, so a queue watched by spool serve
 * alone recovers from its dead workers (and its pages show the truth
 * soon after).  Its own thread and handle; signals stay with the loop. */
static void *
http_reaper(void *arg)
{
	struct cmd_http	*h = arg;
	struct timespec	 until;
	sigset_t	 all;
	spool		*q = NULL;
	int64_t		 n;
	int		 rc, failed = 0, stop = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	if (spool_open(&q, h->db_path, 0) != SPOOL_OK) {
		cmd_log("serve", LOG_WARNING, "reap: %s", spool_errmsg(q));
		spool_close(q);
		return (NULL);
	}
	while (!stop) {
		pthread_mutex_lock(&h->reap_mu);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		while (!h->reap_stop && pthread_cond_timedwait(&h->reap_cv,
		    &h->reap_mu, &until) == 0)
			continue;
		stop = h->reap_stop;
		pthread_mutex_unlock(&h->reap_mu);
		if (stop)
			break;
		if ((rc = spool_reap(&n, q)) != SPOOL_OK) {
			if (!failed)
				cmd_log("serve", LOG_WARNING, "reap: %s",
				    spool_errmsg(q));
			failed = 1;
		} else {
			if (n > 0)
				cmd_log("serve", LOG_INFO, "reaped %lld expired "
				    "lease%s", (long long)n, n == 1 ? "" : "s");
			failed = 0;
		}
	}
	spool_close(q);
	return (NULL);
}

static void
http_signal_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cmd_http	*h = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(h->base);
}

int
cmd_http_new(struct cmd_http **out, const char *db_path, const char *addr,
    spool_pool *pool, int flags, char *err, size_t errlen)
{
	struct evhttp_bound_socket	*sock;
	struct sockaddr_storage		 ss;
	ev_socklen_t			 sslen = sizeof ss;
	struct cmd_http			*h;
	char				 host[64], name[64], serv[8];
	int				 port, rc;

	*out = NULL;
	if (split_addr(addr, host, sizeof host, &port) != 0) {
		snprintf(err, errlen, "--http: not ADDR:PORT (like "
		    "127.0.0.1:8080): '%s'", addr);
		return (EXIT_USAGE);
	}
	evthread_use_pthreads();	/* the pool's engine may share it */
	if ((h = calloc(1, sizeof *h)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (EXIT_SOFTWARE);
	}
	*out = h;
	h->pool = pool;
	h->flags = flags;
	if ((rc = spool_open(&h->q, db_path, 0)) != SPOOL_OK) {
		snprintf(err, errlen, "%s", spool_errmsg(h->q));
		return (cmd_exit_code(rc));
	}
	if ((h->base = event_base_new()) == NULL ||
	    (h->http = evhttp_new(h->base)) == NULL) {
		snprintf(err, errlen, "cannot make an event base");
		return (EXIT_SOFTWARE);
	}
	if ((h->ev_stop = event_new(h->base, -1, 0, http_stop_cb, h)) ==
	    NULL) {
		snprintf(err, errlen, "out of memory");
		return (EXIT_SOFTWARE);
	}
	evhttp_set_max_headers_size(h->http, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(h->http, HTTP_MAX_BODY);
	evhttp_set_timeout(h->http, HTTP_TIMEOUT_S);
	/* Every method reaches http_route, which answers 405 itself. */
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(h->http, http_route, h);
	if ((sock = evhttp_bind_socket_with_handle(h->http, host,
	    (ev_uint16_t)port)) == NULL) {
		snprintf(err, errlen, "--http: cannot listen on %s: %s", addr,
		    strerror(errno));
		return (errno == EACCES ? EXIT_NOPERM : EXIT_TEMPFAIL);
	}
	/* Say the port chosen for ":0". */
	if (getsockname(evhttp_bound_socket_get_fd(sock),
	    (struct sockaddr *)&ss, &sslen) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sslen, name, sizeof name,
	    serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(h->where, sizeof h->where, ss.ss_family == AF_INET6 ?
		    "[%s]:%s" : "%s:%s", name, serv);
	else
		snprintf(h->where, sizeof h->where, "%s:%d", host, port);
	if (flags & CMD_HTTP_REAP) {
		pthread_mutex_init(&h->reap_mu, NULL);
		pthread_cond_init(&h->reap_cv, NULL);
		h->reap_init = 1;
		if ((h->db_path = strdup(db_path)) == NULL ||
		    pthread_create(&h->reaper, NULL, http_reaper, h) != 0) {
			snprintf(err, errlen, "cannot start the reaper");
			return (EXIT_SOFTWARE);
		}
		h->reaping = 1;
	}
	if (flags & CMD_HTTP_SIGNALS) {
		h->sig[0] = evsignal_new(h->base, SIGINT, http_signal_cb, h);
		h->sig[1] = evsignal_new(h->base, SIGTERM, http_signal_cb, h);
		if (h->sig[0] == NULL || h->sig[1] == NULL ||
		    evsignal_add(h->sig[0], NULL) != 0 ||
		    evsignal_add(h->sig[1], NULL) != 0) {
			snprintf(err, errlen, "cannot catch signals");
			return (EXIT_SOFTWARE);
		}
	}
	return (EXIT_OK);
}

const char *
cmd_http_where(const struct cmd_http *h)
{
	return (h->where);
}

int
cmd_http_run(struct cmd_http *h)
{
	return (event_base_dispatch(h->base) < 0 ? -1 : 0);
}

/* An active event, not loopbreak: it also ends a loop not yet started. */
void
cmd_http_stop(struct cmd_http *h)
{
	event_active(h->ev_stop, EV_READ, 0);
}

void
cmd_http_free(struct cmd_http *h)
{
	if (h == NULL)
		return;
	if (h->sig[0] != NULL)
		event_free(h->sig[0]);
	if (h->sig[1] != NULL)
		event_free(h->sig[1]);
	if (h->ev_stop != NULL)
		event_free(h->ev_stop);
	if (h->reaping) {
		pthread_mutex_lock(&h->reap_mu);
		h->reap_stop = 1;
		pthread_cond_signal(&h->reap_cv);
		pthread_mutex_unlock(&h->reap_mu);
		pthread_join(h->reaper, NULL);
	}
	if (h->reap_init) {
		pthread_mutex_destroy(&h->reap_mu);
		pthread_cond_destroy(&h->reap_cv);
	}
	free(h->db_path);
	if (h->http != NULL)
		evhttp_free(h->http);
	if (h->base != NULL)
		event_base_free(h->base);
	spool_close(h->q);
	free(h);
}
