/*
 * cmd-demo.c -- "spool demo": create a database, enqueue a few thousand
 * tasks, and work them through claim and complete, with some attempts
 * failing and being retried and a few poison tasks ending dead, while a
 * progress line runs; then print a summary and how to look inside.
 *
 * It runs on a worker pool: two threads run an in-process handler while
 * the engine claims in batches and commits outcomes in groups.
 *
 * The "work" is a checksum of the payload.  Which attempts fail is decided
 * from the task id, so a run is repeatable: --fail percent of tasks fail
 * their first attempt (transient errors, retried after a short backoff),
 * and one task in a hundred always fails (poison: dead after 3 attempts).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

#define DEMO_QUEUE	"demo"
#define DEMO_CHUNK	1000	/* tasks per enqueue transaction */

static const struct cmd_opt demo_opts[] = {
	{ "tasks", "N", "tasks to enqueue (default 5000)" },
	{ "fail", "PERCENT", "tasks whose first attempt fails (default 10)" },
	{ NULL, NULL, NULL }
};

struct demo {
	int64_t		 tasks;
	int64_t		 fail_pct;
	int64_t		 first_id;
	int64_t		 succeeded, retried_ok, dead, attempts, failed;
	int64_t		 start_ms, last_progress_ms;
	int		 tty;
	spool_pool	*pool;
};

/* A small deterministic hash of a task id. */
static uint32_t
demo_hash(int64_t id)
{
	uint64_t	 x = (uint64_t)id * 0x9e3779b97f4a7c15ULL;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ULL;
	return ((uint32_t)(x >> 32));
}

/* Print the progress line: in place on a terminal, else once a second. */
static void
demo_progress(struct demo *d, int final)
{
	int64_t	 now = cmd_now_ms(), done = d->succeeded + d->dead;
	double	 secs = (now - d->start_ms) / 1000.0;
	int	 bar = (int)(done * 30 / (d->tasks ? d->tasks : 1)), i;

	if (!final && now - d->last_progress_ms < (d->tty ? 100 : 1000))
		return;
	d->last_progress_ms = now;
	if (!d->tty && !final && done == 0)
		return;
	printf("%s[", d->tty ? "\r" : "");
	for (i = 0; i < 30; i++)
		putchar(i < bar ? '#' : '.');
	printf("] %lld/%lld  succeeded %lld  retried %lld  dead %lld  "
	    "%.0f tasks/s%s", (long long)done, (long long)d->tasks,
	    (long long)d->succeeded, (long long)d->failed, (long long)d->dead,
	    secs > 0 ? done / secs : 0.0, d->tty ? "  " : "\n");
	if (d->tty && final)
		putchar('\n');
	fflush(stdout);
}

/* Enqueue the demo's tasks in chunks of DEMO_CHUNK. */
static int
demo_enqueue(struct cmd_ctx *c, struct demo *d)
{
	spool_task	*t;
	char		(*payload)[64];
	int64_t		*ids, i, n;
	int		 rc = SPOOL_OK;

	t = calloc(DEMO_CHUNK, sizeof *t);
	payload = calloc(DEMO_CHUNK, sizeof *payload);
	ids = calloc(DEMO_CHUNK, sizeof *ids);
	if (t == NULL || payload == NULL || ids == NULL) {
		rc = SPOOL_ENOMEM;
		goto out;
	}
	for (i = 0; i < d->tasks; i += n) {
		n = d->tasks - i < DEMO_CHUNK ? d->tasks - i : DEMO_CHUNK;
		for (int64_t k = 0; k < n; k++) {
			snprintf(payload[k], sizeof payload[k],
			    "{\"n\":%lld,\"size\":%d}", (long long)(i + k),
			    (int)((i + k) % 97));
			t[k].queue = DEMO_QUEUE;
			t[k].payload = payload[k];
			t[k].len = strlen(payload[k]);
		}
		if ((rc = spool_enqueue_many(ids, NULL, c->q, t, (size_t)n)) != 0)
			goto out;
		if (i == 0)
			d->first_id = ids[0];
	}
out:
	free(t);
	free(payload);
	free(ids);
	return (rc);
}

/* The handler, in a worker thread: the "work" is a checksum of the
 * payload; whether the attempt fails is decided from the task id. */
static int
demo_handler(spool_job *job, void *arg)
{
	struct demo		*d = arg;
	const unsigned char	*p;
	char			 result[64];
	uint32_t		 h = demo_hash(spool_job_id(job)), sum = 0;
	size_t			 len, i;

	p = spool_job_payload(job, &len);
	for (i = 0; i < len; i++)
		sum = sum * 31 + p[i];
	if (h % 100 == 0) {
		spool_job_set_error(job, "poison task: fails every time");
		return (SPOOL_RETRY);
	}
	if ((int64_t)(h / 100 % 100) < d->fail_pct &&
	    spool_job_attempt(job) == 1) {
		spool_job_set_error(job, "simulated transient error");
		return (SPOOL_RETRY);
	}
	snprintf(result, sizeof result, "{\"checksum\":%u}", sum);
	spool_job_set_result(job, result, strlen(result));
	return (SPOOL_DONE);
}

/* Each committed outcome (in the engine thread): count it, and stop the
 * pool once every task of this run is final. */
static void
demo_done(const spool_outcome *o, void *arg)
{
	struct demo	*d = arg;

	if (o->id < d->first_id || o->id >= d->first_id + d->tasks)
		return;
	d->attempts++;
	switch (o->kind) {
	case SPOOL_OUTCOME_SUCCEEDED:
		d->succeeded++;
		if (o->attempt > 1)
			d->retried_ok++;
		break;
	case SPOOL_OUTCOME_RETRYING:
		d->failed++;
		break;
	case SPOOL_OUTCOME_DEAD:
		d->failed++;
		d->dead++;
		break;
	}
	if (d->succeeded + d->dead == d->tasks)
		spool_pool_stop(d->pool, 0);
}

/* Each tick (in the engine thread): the progress line. */
static void
demo_tick(const spool_pool_stats *st, void *arg)
{
	struct demo	*d = arg;

	(void)st;
	demo_progress(d, 0);
}

/* Work the demo queue on a worker pool until every task is final. */
static int
demo_drain(struct cmd_ctx *c, struct demo *d)
{
	spool_pool_opts	 o = SPOOL_POOL_OPTS_INIT;
	const char	*queues[] = { DEMO_QUEUE };
	int		 rc;

	o.queues = queues;
	o.nqueues = 1;
	o.flags = SPOOL_POOL_SIGNALS;
	o.min_workers = o.max_workers = 2;
	o.on_done = demo_done;
	o.on_tick = demo_tick;
	o.tick_ms = 100;
	o.cb_arg = d;
	if ((rc = spool_pool_new(&d->pool, c->db_path, demo_handler, d,
	    &o)) == SPOOL_OK)
		rc = spool_pool_run(d->pool);
	if (rc != SPOOL_OK)
		cmd_error(c, 0, "%s", spool_pool_errmsg(d->pool));
	spool_pool_free(d->pool);
	d->pool = NULL;
	return (rc);
}

static int
demo_exec(struct cmd_ctx *c, int argc, char **argv)
{
	spool_queue_opts	 o = SPOOL_QUEUE_OPTS_INIT;
	struct demo		 d;
	int64_t			 elapsed;
	int			 rc;

	(void)argc;
	(void)argv;
	memset(&d, 0, sizeof d);
	d.tasks = 5000;
	d.fail_pct = 10;
	if ((rc = cmd_opt_int(c, "tasks", 1, 10000000, &d.tasks)) != 0 ||
	    (rc = cmd_opt_int(c, "fail", 0, 100, &d.fail_pct)) != 0)
		return (rc);
	if (c->json)
		return (cmd_usage_error(c, "the demo has no JSON output"));
	/* The demo keeps to its own file unless told otherwise. */
	if (!c->db_given)
		c->db_path = "spool-demo.db";
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	d.tty = isatty(STDOUT_FILENO);

	/* Quick retries, so the demo shows them without waiting long. */
	o.set = SPOOL_QUEUE_MAX_ATTEMPTS | SPOOL_QUEUE_BACKOFF |
	    SPOOL_QUEUE_BACKOFF_BASE | SPOOL_QUEUE_BACKOFF_JITTER |
	    SPOOL_QUEUE_LEASE | SPOOL_QUEUE_PAUSED;
	o.max_attempts = 3;
	o.backoff = SPOOL_BACKOFF_FIXED;
	o.backoff_base_ms = 20;
	o.backoff_jitter = 0.5;
	o.lease_ms = 10000;
	o.paused = 0;
	rc = spool_queue_create(c->q, DEMO_QUEUE, &o);
	if (rc == SPOOL_EEXISTS)
		rc = spool_queue_set(c->q, DEMO_QUEUE, &o);
	if (rc != SPOOL_OK)
		return (cmd_fail(c, rc));

	printf("spool demo: %lld tasks into %s (queue '%s')\n",
	    (long long)d.tasks, c->db_path, DEMO_QUEUE);
	d.start_ms = cmd_now_ms();
	if ((rc = demo_enqueue(c, &d)) != SPOOL_OK)
		return (cmd_fail(c, rc));
	printf("enqueued %lld tasks in %lld ms (ids %lld-%lld), working them:\n",
	    (long long)d.tasks, (long long)(cmd_now_ms() - d.start_ms),
	    (long long)d.first_id, (long long)(d.first_id + d.tasks - 1));
	d.start_ms = cmd_now_ms();
	if ((rc = demo_drain(c, &d)) != SPOOL_OK)
		return (cmd_exit_code(rc));
	demo_progress(&d, 1);
	elapsed = cmd_now_ms() - d.start_ms;
	printf("\nsummary: %lld tasks in %.2f s (%.0f tasks/s)\n",
	    (long long)(d.succeeded + d.dead), elapsed / 1000.0,
	    elapsed > 0 ? (d.succeeded + d.dead) * 1000.0 / elapsed : 0.0);
	printf("  succeeded  %lld (%lld of them after a retry)\n",
	    (long long)d.succeeded, (long long)d.retried_ok);
	printf("  dead       %lld (poison tasks, after 3 attempts each)\n",
	    (long long)d.dead);
	printf("  attempts   %lld (%lld failed and were retried or buried)\n",
	    (long long)d.attempts, (long long)d.failed);
	printf("\nLook inside: sqlite3 %s 'SELECT * FROM spool_queues'\n"
	    "             spool --db %s list --state dead\n",
	    c->db_path, c->db_path);
	return (EXIT_OK);
}

const struct spool_cmd cmd_demo = {
	.name = "demo",
	.usage = "",
	.summary = "enqueue and work a few thousand tasks, with retries",
	.help =
	    "Uses ./spool-demo.db unless --db is given; running it again adds "
	    "another batch.\n",
	.opts = demo_opts,
	.flags = CMD_CREATE,
	.exec = demo_exec
};
