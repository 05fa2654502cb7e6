/*
 * cmd-demo.c -- "spool demo": create a database, enqueue a few thousand
 * tasks, and work them through claim and complete, with some attempts
 * failing and being retried and a few poison tasks ending dead, while a
 * progress line runs; then print a summary and how to look inside.
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
#define DEMO_CLAIM	64	/* tasks per claim transaction */

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

/* Do one job: decide its outcome and record it. */
static int
demo_work(struct demo *d, spool_job *job)
{
	const unsigned char	*p;
	char			 result[64];
	uint32_t		 h = demo_hash(spool_job_id(job)), sum = 0;
	size_t			 len, i;
	int			 rc;

	d->attempts++;
	p = spool_job_payload(job, &len);
	for (i = 0; i < len; i++)
		sum = sum * 31 + p[i];
	if (h % 100 == 0) {
		d->failed++;
		rc = spool_job_fail(job, "poison task: fails every time", 0);
		if (rc == SPOOL_OK &&
		    spool_job_attempt(job) >= spool_job_max_attempts(job))
			d->dead++;
		return (rc);
	}
	if ((int64_t)(h / 100 % 100) < d->fail_pct && spool_job_attempt(job) == 1) {
		d->failed++;
		return (spool_job_fail(job, "simulated transient error", 0));
	}
	snprintf(result, sizeof result, "{\"checksum\":%u}", sum);
	if ((rc = spool_job_complete(job, result, strlen(result))) == SPOOL_OK) {
		d->succeeded++;
		if (spool_job_attempt(job) > 1)
			d->retried_ok++;
	}
	return (rc);
}

/* Claim and work until the demo queue has nothing ready or running. */
static int
demo_drain(struct cmd_ctx *c, struct demo *d)
{
	const char		*queues[] = { DEMO_QUEUE };
	spool_job		*jobs[DEMO_CLAIM];
	spool_queue_stats	*s;
	size_t			 n, i, ns;
	int			 rc = SPOOL_OK, idle;

	for (;;) {
		rc = spool_claim_many(jobs, &n, c->q, queues, 1, DEMO_CLAIM,
		    NULL);
		if (rc == SPOOL_EEMPTY) {
			if ((rc = spool_stats(&s, &ns, c->q, DEMO_QUEUE)) != 0)
				return (rc);
			idle = s[0].ready + s[0].scheduled + s[0].running == 0;
			spool_queue_stats_free(s, ns);
			if (idle)
				return (SPOOL_OK);
			demo_progress(d, 0);
			cmd_sleep_ms(5);	/* retries wait out their backoff */
			continue;
		}
		if (rc != SPOOL_OK)
			return (rc);
		for (i = 0; i < n; i++) {
			if (rc == SPOOL_OK)
				rc = demo_work(d, jobs[i]);
			spool_job_free(jobs[i]);
		}
		if (rc != SPOOL_OK)
			return (rc);
		demo_progress(d, 0);
	}
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
	if ((rc = cmd_open(c, 1)) != EXIT_OK)
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
		return (cmd_fail(c, rc));
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
	"demo", "", "enqueue and work a few thousand tasks, with retries",
	"Uses ./spool-demo.db unless --db is given; running it again adds "
	"another batch.\n",
	demo_opts, 0, 0, 0, demo_exec
};
