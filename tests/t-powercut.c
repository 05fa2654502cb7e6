/*
 * t-powercut.c -- power cuts (issue 14).  Each workload runs in a child
 * process whose SQLite goes through the power-cut VFS (powercut-vfs.c):
 * at the child's k-th write, truncation, sync or delete of the database or
 * its WAL, or at the workload's end, the power goes, and the files are
 * left as a disk would keep them: what was synced and, of the rest,
 * nothing ("drop"), a torn last write ("torn"), or scattered sectors
 * ("scatter").  The child reports each enqueue and each success through a
 * pipe only once the library call that makes it durable has returned (a
 * pool's on_done comes after its commit).
 *
 * Then the parent, on the plain VFS and a clock a day ahead of the
 * child's (every lease it left has expired): opens the file, checks its
 * integrity, finds every reported enqueue and success, checks the
 * workload's own promise (bulk enqueues all or nothing, one hook per
 * batch, the pipeline's hand-off in the success's transaction), and
 * finishes the rest as a clean worker, every task exactly once: no
 * reported success runs again.
 *
 * The seed (printed; PC_SEED=n replays a run) picks the cut points where
 * a workload has more operations than its budget (PC_POINTS=n sets it),
 * the mode of each and the sectors that land.  PC_CASE=workload:k:mode:seed
 * runs one case, as printed with a failure.  Pool workloads are threaded:
 * the same case may cut at another point of their work from run to run.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "powercut-vfs.h"
#include "testutil.h"

#define PC_CHILD_MS	30000	/* a child that runs longer has hung */
#define PC_ENQUEUES	8	/* single enqueues in "enqueue" */
#define PC_CALLS	4	/* spool_enqueue_many calls */
#define PC_PER_CALL	8	/* tasks in each */
#define PC_CLAIMS	5	/* tasks "claim" claims and completes */
#define PC_POOL_TASKS	150	/* tasks the pool drains */
#define PC_MEMBERS	3	/* members of the batch */
#define PC_ITEMS	4	/* items of the pipeline run */
#define PC_AUTOCKPT	"PRAGMA wal_autocheckpoint = 8"

/* What a child reported: 'E' enqueued (n: its number), 'S' succeeded. */
struct ack {
	char		 kind;
	int64_t		 id;
	int64_t		 n;
};

struct acks {
	struct ack	*v;
	size_t		 n;
	size_t		 cap;
	int64_t		 cut_op;	/* where the power went */
	int64_t		 ops;		/* operations it counted */
};

/* Ids the parent's clean worker completed. */
struct ids {
	int64_t		*v;
	size_t		 n;
	size_t		 cap;
};

struct workload {
	const char	*name;
	/* Fill the template; run in the child on the shim, reporting;
	 * check what the cut left; check after the clean worker. */
	void		(*setup)(spool *);
	void		(*child)(const char *);
	void		(*check)(spool *, const struct acks *);
	void		(*final)(spool *);
	int		 budget;	/* cut points at most (PC_POINTS) */
	int		 threaded;	/* ops vary from run to run */
};

static uint64_t	 pc_seed;
static int	 pc_ack_fd = -1;	/* the child's end of the pipe */
static char	 pc_ctx[320];	/* the case under way, for messages */
static int	 pc_failures;	/* checks failed in this process */

/* ---- Helpers ------------------------------------------------------------ */

static int64_t
wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static double
mono_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/* The parent's clock: tu_now, moved a day past the child's wall clock. */
static int64_t
pc_clock(void *arg)
{
	(void)arg;
	return (tu_now);
}

/* splitmix64, to derive a case's seed and pick cut points. */
static uint64_t
pc_mix(uint64_t *s)
{
	uint64_t	 z;

	z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

/* A check failed: say where, in which case, and how to run it again. */
static void SPOOL_PRINTF(2, 3)
pc_fail(int line, const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "\nt-powercut.c:%d: %s: ", line, pc_ctx);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	pc_failures++;
	CU_FAIL("power cut: see stderr");
}

#define PC_CHECK(cond, ...) do {					\
	if (!(cond))							\
		pc_fail(__LINE__, __VA_ARGS__);				\
} while (0)

/* The result a worker, child or parent, gives a task: a stage appends
 * its name, as the pipeline handlers of t-pipeline do; anything else
 * answers "done:" and its payload. */
static void
pc_result(char *buf, size_t len, const char *queue, const void *payload,
    size_t plen)
{
	const char	*slash = strchr(queue, '/');

	if (slash != NULL)
		snprintf(buf, len, "%.*s+%s", (int)plen,
		    (const char *)payload, slash + 1);
	else
		snprintf(buf, len, "done:%.*s", (int)plen,
		    (const char *)payload);
}

/* Copy a file whole. */
static int
pc_copy(const char *from, const char *to)
{
	char	 buf[65536];
	ssize_t	 r, w;
	int	 in, out, rc = 0;

	if ((in = open(from, O_RDONLY)) == -1)
		return (-1);
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1) {
		close(in);
		return (-1);
	}
	while ((r = read(in, buf, sizeof buf)) > 0)
		if ((w = write(out, buf, (size_t)r)) != r) {
			rc = -1;
			break;
		}
	if (r < 0)
		rc = -1;
	close(in);
	close(out);
	return (rc);
}

/* Remove a database and its WAL and -shm. */
static void
pc_remove(const char *path)
{
	char	 buf[1024];

	(void)unlink(path);
	snprintf(buf, sizeof buf, "%s-wal", path);
	(void)unlink(buf);
	snprintf(buf, sizeof buf, "%s-shm", path);
	(void)unlink(buf);
}

/* ---- The child's side --------------------------------------------------- */

/* Report one line to the parent.  A line is one write(2) of less than
 * PIPE_BUF bytes, so lines of several threads never mix. */
static void SPOOL_PRINTF(1, 2)
pc_say(const char *fmt, ...)
{
	va_list	 ap;
	char	 buf[512];
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	while (write(pc_ack_fd, buf, (size_t)n) == -1 && errno == EINTR)
		continue;
}

/* A call failed in the child: after the cut that is what a cut does;
 * before it, the harness is wrong, and the parent fails the case. */
static void
pc_child_error(const char *what, const char *msg)
{
	if (pcvfs_cut_op() == 0)
		pc_say("X %s failed before the cut: %s", what, msg);
}

/* Open the database in the child, with checkpoints every 8 pages: so
 * cuts fall inside checkpoints and WAL restarts too, which the default
 * of 1000 pages would reach only after thousands of tasks. */
static spool *
pc_child_open(const char *path)
{
	spool	*q = NULL;

	if (spool_open(&q, path, 0) != SPOOL_OK) {
		pc_child_error("open", spool_errmsg(q));
		return (NULL);
	}
	if (sqlite3_exec(q->db, PC_AUTOCKPT, NULL, NULL, NULL) != SQLITE_OK) {
		pc_child_error("wal_autocheckpoint", sqlite3_errmsg(q->db));
		return (NULL);
	}
	return (q);
}

/* Claim and complete the tasks of queue one by one, reporting each
 * success once spool_job_complete returned. */
static void
pc_child_work(spool *q, const char *queue)
{
	spool_job	*job = NULL;
	const void	*p;
	size_t		 len;
	char		 out[256];
	int		 rc;

	for (;;) {
		if ((rc = spool_claim(&job, q, queue, NULL)) == SPOOL_EEMPTY)
			return;
		if (rc != SPOOL_OK) {
			pc_child_error("claim", spool_errmsg(q));
			return;
		}
		p = spool_job_payload(job, &len);
		pc_result(out, sizeof out, queue, p, len);
		if (spool_job_complete(job, out, strlen(out)) != SPOOL_OK) {
			pc_child_error("complete", spool_errmsg(q));
			return;
		}
		pc_say("S %lld 0", (long long)spool_job_id(job));
		spool_job_free(job);
	}
}

/* A pool handler: the result pc_result gives. */
static int
pc_handler(spool_job *job, void *arg)
{
	const void	*p;
	size_t		 len;
	char		 out[256];

	(void)arg;
	p = spool_job_payload(job, &len);
	pc_result(out, sizeof out, spool_job_queue(job), p, len);
	return (spool_job_set_result(job, out, strlen(out)) == SPOOL_OK ?
	    SPOOL_DONE : SPOOL_RETRY);
}

/* on_done comes once the outcome is committed: report successes. */
static void
pc_on_done(const spool_outcome *o, void *arg)
{
	(void)arg;
	if (o->kind == SPOOL_OUTCOME_SUCCEEDED)
		pc_say("S %lld 0", (long long)o->id);
}

/* Stop the pool at once when the power goes: its flushes can never
 * commit again, and it would hold and retry them forever. */
static void *
pc_watch(void *arg)
{
	pcvfs_wait_cut();
	spool_pool_stop(arg, 1);
	return (NULL);
}

/* Run a pool made by spool_pool_new or spool_pipeline_pool_new until its
 * queues are empty or the power goes.  It is not freed: the process ends
 * with its power. */
static void
pc_child_pool(spool_pool *p, int rc)
{
	pthread_t	 t;

	if (rc != SPOOL_OK) {
		pc_child_error("pool", spool_pool_errmsg(p));
		return;
	}
	/* The engine's connection: checkpoints as in pc_child_open (its
	 * thread starts in spool_pool_run). */
	if (sqlite3_exec(p->q->db, PC_AUTOCKPT, NULL, NULL, NULL) !=
	    SQLITE_OK) {
		pc_child_error("wal_autocheckpoint", sqlite3_errmsg(p->q->db));
		return;
	}
	if (pthread_create(&t, NULL, pc_watch, p) != 0) {
		pc_say("X pthread_create failed");
		return;
	}
	if (spool_pool_run(p) != SPOOL_OK)
		pc_child_error("pool run", spool_pool_errmsg(p));
	pcvfs_cut();
	pthread_join(t, NULL);
}

/* ---- The parent's side -------------------------------------------------- */

static void
acks_add(struct acks *a, char kind, int64_t id, int64_t n)
{
	if (a->n == a->cap) {
		a->cap = a->cap == 0 ? 64 : a->cap * 2;
		if ((a->v = realloc(a->v, a->cap * sizeof *a->v)) == NULL)
			abort();
	}
	a->v[a->n].kind = kind;
	a->v[a->n].id = id;
	a->v[a->n].n = n;
	a->n++;
}

static void
ids_add(struct ids *s, int64_t id)
{
	if (s->n == s->cap) {
		s->cap = s->cap == 0 ? 64 : s->cap * 2;
		if ((s->v = realloc(s->v, s->cap * sizeof *s->v)) == NULL)
			abort();
	}
	s->v[s->n++] = id;
}

static int
ids_has(const struct ids *s, int64_t id)
{
	size_t	 i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] == id)
			return (1);
	return (0);
}

/* Take one line of the child's. */
static void
pc_line(struct acks *a, const char *line)
{
	long long	 x, y;
	char		 kind;

	if (line[0] == 'X') {
		PC_CHECK(0, "child: %s", line + 2);
		return;
	}
	if (sscanf(line, "%c %lld %lld", &kind, &x, &y) != 3) {
		PC_CHECK(0, "child said \"%s\"", line);
		return;
	}
	if (kind == 'C') {
		a->cut_op = x;
		a->ops = y;
	} else
		acks_add(a, kind, x, y);
}

/*
 * Run w's child on path with the power cut at operation k (0: at the end)
 * in mode, and read what it reports until it exits.  0 if it ran to its
 * end, -1 (the case failed) if it hung, crashed or could not start.
 */
static int
pc_spawn(const struct workload *w, const char *path, int64_t k, int mode,
    uint64_t seed, struct acks *a)
{
	struct pollfd	 pfd;
	char		 buf[4096], *nl;
	size_t		 have = 0;
	ssize_t		 r;
	double		 until;
	pid_t		 pid;
	int		 fds[2], status, hung = 0;

	if (pipe(fds) == -1) {
		PC_CHECK(0, "pipe: %s", strerror(errno));
		return (-1);
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1) {
		PC_CHECK(0, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return (-1);
	}
	if (pid == 0) {
		close(fds[0]);
		pc_ack_fd = fds[1];
		if (pcvfs_install(k, mode, seed) != SQLITE_OK) {
			pc_say("X cannot register the power-cut VFS");
			_exit(1);
		}
		w->child(path);
		/* The power goes at the end too, before any close could
		 * checkpoint and tidy up. */
		pcvfs_cut();
		pc_say("C %lld %lld", (long long)pcvfs_cut_op(),
		    (long long)pcvfs_ops());
		_exit(0);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	until = mono_s() + PC_CHILD_MS / 1000.0;
	for (;;) {
		if (mono_s() > until) {
			hung = 1;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		r = read(fds[0], buf + have, sizeof buf - 1 - have);
		if (r <= 0) {
			if (r == -1 && errno == EINTR)
				continue;
			break;
		}
		have += (size_t)r;
		buf[have] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			pc_line(a, buf);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have + 1);
		}
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		continue;
	if (hung) {
		PC_CHECK(0, "the child did not end within %d ms",
		    PC_CHILD_MS);
		return (-1);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		PC_CHECK(0, "the child ended with status 0x%x", status);
		return (-1);
	}
	PC_CHECK(a->ops > 0, "the child never reached its end");
	return (0);
}

/* Every success the child reported is there, with its result, and was
 * its task's only attempt. */
static void
pc_check_successes(spool *q, const struct acks *a)
{
	spool_task_info	*t;
	char		 want[256], sql[160];
	size_t		 i;

	for (i = 0; i < a->n; i++) {
		if (a->v[i].kind != 'S')
			continue;
		t = NULL;
		if (spool_task_get(&t, q, a->v[i].id) != SPOOL_OK) {
			PC_CHECK(0, "reported success %lld is missing: %s",
			    (long long)a->v[i].id, spool_errmsg(q));
			continue;
		}
		PC_CHECK(t->state == SPOOL_SUCCEEDED,
		    "reported success %lld is %s", (long long)t->id,
		    spool_state_name(t->state));
		pc_result(want, sizeof want, t->queue, t->payload,
		    t->payload_len);
		PC_CHECK(t->has_result && t->result_len == strlen(want) &&
		    memcmp(t->result, want, t->result_len) == 0,
		    "reported success %lld lost its result", (long long)t->id);
		snprintf(sql, sizeof sql, "SELECT count(*) FROM attempts WHERE "
		    "task_id = %lld AND outcome = 'succeeded'",
		    (long long)t->id);
		PC_CHECK(tu_sql_int_on(q, sql) == 1,
		    "reported success %lld has %lld succeeded attempts",
		    (long long)t->id, (long long)tu_sql_int_on(q, sql));
		spool_task_info_free(t, 1);
	}
}

/* Every enqueue the child reported is there, with its payload. */
static void
pc_check_enqueues(spool *q, const struct acks *a, const char *queue,
    void (*payload)(char *, size_t, int64_t))
{
	spool_task_info	*t;
	char		 want[64];
	size_t		 i;

	for (i = 0; i < a->n; i++) {
		if (a->v[i].kind != 'E')
			continue;
		t = NULL;
		if (spool_task_get(&t, q, a->v[i].id) != SPOOL_OK) {
			PC_CHECK(0, "reported enqueue %lld is missing: %s",
			    (long long)a->v[i].id, spool_errmsg(q));
			continue;
		}
		payload(want, sizeof want, a->v[i].n);
		PC_CHECK(strcmp(t->queue, queue) == 0 &&
		    t->payload_len == strlen(want) &&
		    memcmp(t->payload, want, t->payload_len) == 0,
		    "reported enqueue %lld is not the task enqueued",
		    (long long)t->id);
		spool_task_info_free(t, 1);
	}
}

/* The tasks of queue, by id, carry the payloads number 1, 2, ...: what
 * survived is a prefix of what was committed, no gap.  Their count. */
static int64_t
pc_check_prefix(spool *q, const char *queue,
    void (*payload)(char *, size_t, int64_t))
{
	sqlite3_stmt	*st;
	char		 want[64];
	int64_t		 n = 0;
	const void	*p;
	int		 len;

	if (sqlite3_prepare_v2(q->db, "SELECT payload FROM tasks WHERE "
	    "queue = ? ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
		PC_CHECK(0, "prefix: %s", sqlite3_errmsg(q->db));
		return (-1);
	}
	sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		payload(want, sizeof want, ++n);
		p = sqlite3_column_blob(st, 0);
		len = sqlite3_column_bytes(st, 0);
		if ((size_t)len != strlen(want) || memcmp(p, want, len) != 0) {
			PC_CHECK(0, "task %lld of %s is \"%.*s\", not \"%s\"",
			    (long long)n, queue, len, (const char *)p, want);
			break;
		}
	}
	sqlite3_finalize(st);
	return (n);
}

/* Complete job with the result a worker gives, and note its id. */
static void
pc_drain_one(spool *q, spool_job *job, struct ids *done)
{
	const void	*p;
	size_t		 len;
	char		 out[256];

	p = spool_job_payload(job, &len);
	pc_result(out, sizeof out, spool_job_queue(job), p, len);
	PC_CHECK(spool_job_complete(job, out, strlen(out)) == SPOOL_OK,
	    "complete %lld: %s", (long long)spool_job_id(job),
	    spool_errmsg(q));
	ids_add(done, spool_job_id(job));
	spool_job_free(job);
}

/*
 * Finish every unfinished task as a clean worker would: move the clock
 * past every lease and backoff, reap, claim, complete with the result a
 * worker gives, until nothing is left.  Records the ids it completed.
 */
static void
pc_drain(spool *q, struct ids *done)
{
	spool_job	*jobs[64];
	sqlite3_stmt	*st;
	char		 queues[16][SPOOL_NAME_MAX + 1];
	const char	*qn;
	size_t		 n, j;
	int		 round, nq, i, rc;

	for (round = 0; round < 20; round++) {
		tu_now += 2 * 3600 * 1000;
		PC_CHECK(spool_reap(NULL, q) == SPOOL_OK, "reap: %s",
		    spool_errmsg(q));
		if (sqlite3_prepare_v2(q->db, "SELECT DISTINCT queue FROM "
		    "tasks WHERE finished_ms IS NULL", -1, &st, NULL) !=
		    SQLITE_OK) {
			PC_CHECK(0, "drain: %s", sqlite3_errmsg(q->db));
			return;
		}
		for (nq = 0; nq < 16 && sqlite3_step(st) == SQLITE_ROW; nq++)
			snprintf(queues[nq], sizeof queues[nq], "%s",
			    (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		if (nq == 0)
			return;
		for (i = 0; i < nq; i++) {
			qn = queues[i];
			while ((rc = spool_claim_many(jobs, &n, q, &qn, 1, 64,
			    NULL)) == SPOOL_OK)
				for (j = 0; j < n; j++)
					pc_drain_one(q, jobs[j], done);
			PC_CHECK(rc == SPOOL_EEMPTY, "claim: %s",
			    spool_errmsg(q));
		}
	}
	PC_CHECK(0, "tasks still unfinished after %d rounds", round);
}

/* After the clean worker: every task succeeded exactly once, with the
 * result a worker gives, and none the child reported ran again. */
static void
pc_check_once(spool *q, const struct acks *a, const struct ids *done)
{
	sqlite3_stmt	*st;
	char		 want[256];
	size_t		 i;
	int		 len;

	PC_CHECK(tu_sql_int_on(q, "SELECT count(*) FROM tasks WHERE "
	    "state != 'succeeded'") == 0, "tasks left unsucceeded");
	PC_CHECK(tu_sql_int_on(q, "SELECT count(*) FROM tasks t WHERE (SELECT "
	    "count(*) FROM attempts a WHERE a.task_id = t.id AND a.outcome = "
	    "'succeeded') != 1") == 0, "a task succeeded twice or never");
	for (i = 0; i < a->n; i++)
		PC_CHECK(a->v[i].kind != 'S' || !ids_has(done, a->v[i].id),
		    "reported success %lld ran again", (long long)a->v[i].id);
	if (sqlite3_prepare_v2(q->db, "SELECT t.queue, t.payload, r.output "
	    "FROM tasks t LEFT JOIN results r ON r.task_id = t.id", -1, &st,
	    NULL) != SQLITE_OK) {
		PC_CHECK(0, "results: %s", sqlite3_errmsg(q->db));
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		pc_result(want, sizeof want,
		    (const char *)sqlite3_column_text(st, 0),
		    sqlite3_column_blob(st, 1),
		    (size_t)sqlite3_column_bytes(st, 1));
		len = sqlite3_column_bytes(st, 2);
		if (sqlite3_column_type(st, 2) == SQLITE_NULL ||
		    (size_t)len != strlen(want) ||
		    memcmp(sqlite3_column_blob(st, 2), want, len) != 0) {
			PC_CHECK(0, "a result is not \"%s\"", want);
			break;
		}
	}
	sqlite3_finalize(st);
}

/*
 * One case: a fresh copy of the template, the child cut at k, and every
 * check on what the disk kept.  *ops_out gets the operations the child
 * counted.  Returns the number of failed checks.
 */
static int
pc_case(const struct workload *w, const char *tpl, int64_t k, int mode,
    uint64_t seed, int64_t *ops_out)
{
	struct acks	 a;
	struct ids	 done;
	spool		*q = NULL;
	char		 path[800], buf[256];
	size_t		 len;
	int		 before = pc_failures;

	memset(&a, 0, sizeof a);
	memset(&done, 0, sizeof done);
	snprintf(pc_ctx, sizeof pc_ctx, "%s, cut at %lld (%s), "
	    "PC_CASE=%s:%lld:%d:%llu", w->name, (long long)k,
	    pcvfs_mode_name(mode), w->name, (long long)k, mode,
	    (unsigned long long)seed);
	snprintf(path, sizeof path, "%s/run.db", tu_dir);
	pc_remove(path);
	if (pc_copy(tpl, path) != 0) {
		PC_CHECK(0, "cannot copy %s", tpl);
		return (pc_failures - before);
	}
	if (pc_spawn(w, path, k, mode, seed, &a) != 0)
		goto out;
	if (ops_out != NULL)
		*ops_out = a.ops;
	len = strlen(pc_ctx);
	snprintf(pc_ctx + len, sizeof pc_ctx - len, ", power lost at operation "
	    "%lld of %lld", (long long)a.cut_op, (long long)a.ops);

	/* What the disk kept, read on the plain VFS. */
	if (spool_open(&q, path, 0) != SPOOL_OK) {
		PC_CHECK(0, "open after the cut: %s", spool_errmsg(q));
		goto out;
	}
	spool__set_clock(q, pc_clock, NULL);
	tu_now = wall_ms() + 24 * 3600 * 1000;
	/* The parent's own writes are not under test: no need to wait for
	 * the disk (hundreds of cases would). */
	(void)sqlite3_exec(q->db, "PRAGMA synchronous = OFF", NULL, NULL, NULL);
	PC_CHECK(strcmp(tu_sql_text_on(q, buf, sizeof buf,
	    "PRAGMA integrity_check"), "ok") == 0, "integrity_check: %s", buf);
	PC_CHECK(tu_sql_int_on(q, "SELECT count(*) FROM "
	    "pragma_foreign_key_check") == 0, "foreign_key_check fails");
	pc_check_successes(q, &a);
	w->check(q, &a);

	/* A clean worker finishes the rest, each task once. */
	pc_drain(q, &done);
	pc_check_once(q, &a, &done);
	if (w->final != NULL)
		w->final(q);
	PC_CHECK(strcmp(tu_sql_text_on(q, buf, sizeof buf,
	    "PRAGMA integrity_check"), "ok") == 0,
	    "integrity_check after the drain: %s", buf);
out:
	spool_close(q);
	free(a.v);
	free(done.v);
	return (pc_failures - before);
}

/* Make the workload's template database, closed cleanly (no WAL). */
static void
pc_template(const struct workload *w, char *tpl, size_t len)
{
	spool	*q;
	char	 wal[1024];

	snprintf(tpl, len, "%s/%s.tpl", tu_dir, w->name);
	/* On the wall clock, the child's: its tasks are due there. */
	if (spool_open(&q, tpl, SPOOL_OPEN_CREATE) != SPOOL_OK) {
		fprintf(stderr, "open %s: %s\n", tpl, spool_errmsg(q));
		CU_FAIL_FATAL("template");
	}
	if (w->setup != NULL)
		w->setup(q);
	spool_close(q);
	snprintf(wal, sizeof wal, "%s-wal", tpl);
	CU_ASSERT_EQUAL(access(wal, F_OK), -1);
}

static int
pc_cmp64(const void *a, const void *b)
{
	int64_t	 x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x < y ? -1 : x > y);
}

/*
 * Cut w's power at every operation of its run, or at budget of them
 * picked by the seed, each in a mode the seed rotates, and once at its
 * end; stop at the first failing case.
 */
static void
pc_workload(const struct workload *w)
{
	const char	*only = getenv("PC_CASE"), *points;
	char		 tpl[800], name[64];
	int64_t		*ks, n = 0, k, span;
	uint64_t	 s, seed;
	double		 t0 = mono_s();
	int		 i, npoints, mode, budget;
	unsigned long long useed;
	long long	 kk;

	/* No handle crosses a fork: the harness's is not needed here. */
	spool_close(tu_q);
	tu_q = NULL;
	pc_template(w, tpl, sizeof tpl);

	if (only != NULL && *only != '\0') {
		if (sscanf(only, "%63[^:]:%lld:%d:%llu", name, &kk, &mode,
		    &useed) != 4) {
			CU_FAIL("PC_CASE is workload:k:mode:seed");
			return;
		}
		if (strcmp(name, w->name) == 0)
			(void)pc_case(w, tpl, kk, mode, useed, NULL);
		return;
	}

	/* The end of the run: a cut after everything was acknowledged. */
	for (s = pc_seed, i = 0; w->name[i] != '\0'; i++)
		s = s * 31 + (unsigned char)w->name[i];
	seed = pc_mix(&s);
	if (pc_case(w, tpl, 0, PCVFS_DROP, seed, &n) != 0 || n <= 0)
		return;
	budget = w->budget;
	if ((points = getenv("PC_POINTS")) != NULL && atoi(points) > 0)
		budget = atoi(points);
	span = w->threaded ? n + n / 4 : n;
	npoints = span <= budget ? (int)span : budget;
	if ((ks = calloc((size_t)npoints, sizeof *ks)) == NULL)
		abort();
	for (i = 0; i < npoints; i++)
		ks[i] = i + 1;
	if (span > budget) {
		/* Distinct points of 1..span at random (a repeat is drawn
		 * again), kept sorted so the cases run in order. */
		for (i = 0; i < npoints; i++) {
			do
				k = 1 + (int64_t)(pc_mix(&s) % (uint64_t)span);
			while (bsearch(&k, ks, (size_t)i, sizeof *ks,
			    pc_cmp64) != NULL);
			ks[i] = k;
			qsort(ks, (size_t)i + 1, sizeof *ks, pc_cmp64);
		}
	}
	for (i = 0; i < npoints; i++) {
		seed = pc_mix(&s);
		mode = (int)((ks[i] + pc_seed) % PCVFS_MODES);
		if (pc_case(w, tpl, ks[i], mode, seed, NULL) != 0) {
			i++;
			break;
		}
	}
	fprintf(stderr, "\nt-powercut: %s: %d cut points of %lld operations "
	    "(and the end)%s, %.1f s\n", w->name, i, (long long)n,
	    i < npoints || pc_failures > 0 ? ", stopped at a failure" : "",
	    mono_s() - t0);
	free(ks);
}

/* ---- Workloads ---------------------------------------------------------- */

static void
payload_e(char *buf, size_t len, int64_t n)
{
	snprintf(buf, len, "e%lld", (long long)n);
}

/* enqueue: single enqueues, each synced before it returns. */
static void
child_enqueue(const char *path)
{
	spool	*q;
	char	 text[32];
	int64_t	 id;
	int	 i;

	if ((q = pc_child_open(path)) == NULL)
		return;
	for (i = 1; i <= PC_ENQUEUES; i++) {
		payload_e(text, sizeof text, i);
		if (spool_enqueue(&id, q, "pc", text, strlen(text), NULL) !=
		    SPOOL_OK) {
			pc_child_error("enqueue", spool_errmsg(q));
			return;
		}
		pc_say("E %lld %d", (long long)id, i);
	}
}

static void
check_enqueue(spool *q, const struct acks *a)
{
	int64_t	 n;

	pc_check_enqueues(q, a, "pc", payload_e);
	n = pc_check_prefix(q, "pc", payload_e);
	PC_CHECK(n >= (int64_t)a->n, "%lld tasks, %zu reported",
	    (long long)n, a->n);
}

/* A bulk task's payload: call c (from 1), task j (from 1), as n =
 * (c - 1) * PC_PER_CALL + j. */
static void
payload_m(char *buf, size_t len, int64_t n)
{
	snprintf(buf, len, "m%lld-%lld", (long long)((n - 1) / PC_PER_CALL + 1),
	    (long long)((n - 1) % PC_PER_CALL + 1));
}

/* enqueue_many: bulk enqueues of several tasks, each all or nothing. */
static void
child_enqueue_many(const char *path)
{
	spool_task	 t[PC_PER_CALL];
	spool		*q;
	int64_t		 ids[PC_PER_CALL];
	char		 text[PC_PER_CALL][32];
	int		 c, j;

	if ((q = pc_child_open(path)) == NULL)
		return;
	for (c = 0; c < PC_CALLS; c++) {
		for (j = 0; j < PC_PER_CALL; j++) {
			payload_m(text[j], sizeof text[j],
			    c * PC_PER_CALL + j + 1);
			t[j].queue = "pc";
			t[j].payload = text[j];
			t[j].len = strlen(text[j]);
			t[j].opts = NULL;
		}
		if (spool_enqueue_many(ids, NULL, q, t, PC_PER_CALL) !=
		    SPOOL_OK) {
			pc_child_error("enqueue_many", spool_errmsg(q));
			return;
		}
		for (j = 0; j < PC_PER_CALL; j++)
			pc_say("E %lld %d", (long long)ids[j],
			    c * PC_PER_CALL + j + 1);
	}
}

static void
check_enqueue_many(spool *q, const struct acks *a)
{
	int64_t	 n;

	pc_check_enqueues(q, a, "pc", payload_m);
	n = pc_check_prefix(q, "pc", payload_m);
	PC_CHECK(n % PC_PER_CALL == 0, "%lld tasks: a bulk enqueue was cut "
	    "in two", (long long)n);
	PC_CHECK(n >= (int64_t)a->n, "%lld tasks, %zu reported",
	    (long long)n, a->n);
}

static void
payload_c(char *buf, size_t len, int64_t n)
{
	snprintf(buf, len, "c%lld", (long long)n);
}

static void
setup_claim(spool *q)
{
	char	 text[32];
	int64_t	 id;
	int	 i;

	for (i = 1; i <= PC_CLAIMS; i++) {
		payload_c(text, sizeof text, i);
		TU_RC(spool_enqueue(&id, q, "pc", text, strlen(text), NULL),
		    SPOOL_OK);
	}
}

/* claim: spool_claim and spool_job_complete, one task at a time. */
static void
child_claim(const char *path)
{
	spool	*q;

	if ((q = pc_child_open(path)) != NULL)
		pc_child_work(q, "pc");
}

/* After the cut: the tasks are all there, none lost by a claim. */
static void
check_tasks(spool *q, const struct acks *a)
{
	PC_CHECK(pc_check_prefix(q, "pc", payload_c) == PC_CLAIMS,
	    "tasks lost");
}

static void
payload_p(char *buf, size_t len, int64_t n)
{
	snprintf(buf, len, "p%lld", (long long)n);
}

static void
setup_pool(spool *q)
{
	spool_task	 t[PC_POOL_TASKS];
	char		 text[PC_POOL_TASKS][16];
	int		 i;

	for (i = 0; i < PC_POOL_TASKS; i++) {
		payload_p(text[i], sizeof text[i], i + 1);
		t[i].queue = "pc";
		t[i].payload = text[i];
		t[i].len = strlen(text[i]);
		t[i].opts = NULL;
	}
	TU_RC(spool_enqueue_many(NULL, NULL, q, t, PC_POOL_TASKS), SPOOL_OK);
}

/* pool: a worker pool with a no-op handler, its outcomes committed in
 * groups; its claims are not synced (synchronous=NORMAL). */
static void
child_pool(const char *path)
{
	spool_pool_opts	 o = SPOOL_POOL_OPTS_INIT;
	const char	*queues[] = { "pc" };
	spool_pool	*p = NULL;
	int		 rc;

	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.queues = queues;
	o.nqueues = 1;
	o.max_workers = 2;
	o.on_done = pc_on_done;
	rc = spool_pool_new(&p, path, pc_handler, NULL, &o);
	pc_child_pool(p, rc);
}

static void
check_pool(spool *q, const struct acks *a)
{
	PC_CHECK(pc_check_prefix(q, "pc", payload_p) == PC_POOL_TASKS,
	    "tasks lost");
}

/* The hook tasks of batch id. */
static int64_t
hooks_of(spool *q, int64_t batch)
{
	char	 sql[256];

	snprintf(sql, sizeof sql, "SELECT count(*) FROM tasks WHERE queue = "
	    "'hooks' AND json_valid(payload) AND "
	    "json_extract(payload, '$.batch') = %lld", (long long)batch);
	return (tu_sql_int_on(q, sql));
}

static void
payload_b(char *buf, size_t len, int64_t n)
{
	snprintf(buf, len, "b%lld", (long long)n);
}

/* A closed batch of PC_MEMBERS on queue "bm", its hook on "hooks". */
static void
setup_batch(spool *q)
{
	spool_batch_opts	 bo = SPOOL_BATCH_OPTS_INIT;
	spool_enqueue_opts	 eo = SPOOL_ENQUEUE_OPTS_INIT;
	int64_t			 batch = 0, id;
	char			 text[16];
	int			 i;

	bo.hook_queue = "hooks";
	bo.hook_payload = "{\"then\":\"report\"}";
	TU_RC(spool_batch_create(&batch, q, &bo), SPOOL_OK);
	eo.batch_id = batch;
	for (i = 1; i <= PC_MEMBERS; i++) {
		payload_b(text, sizeof text, i);
		TU_RC(spool_enqueue(&id, q, "bm", text, strlen(text), &eo),
		    SPOOL_OK);
	}
	TU_RC(spool_batch_close(q, batch), SPOOL_OK);
}

/* batch: its members finish one by one; the last one's transaction
 * settles the batch and enqueues its hook. */
static void
child_batch(const char *path)
{
	spool	*q;

	if ((q = pc_child_open(path)) != NULL)
		pc_child_work(q, "bm");
}

static void
check_batch(spool *q, const struct acks *a)
{
	int64_t	 done, hooks;

	PC_CHECK(pc_check_prefix(q, "bm", payload_b) == PC_MEMBERS,
	    "members lost");
	PC_CHECK(tu_sql_int_on(q, TU_BATCHES_WRONG) == 0,
	    "batch counters differ from its members");
	done = tu_sql_int_on(q, "SELECT count(*) FROM tasks WHERE queue = 'bm' "
	    "AND state = 'succeeded'");
	hooks = hooks_of(q, 1);
	PC_CHECK(hooks == (done == PC_MEMBERS),
	    "%lld members succeeded, %lld hooks", (long long)done,
	    (long long)hooks);
	PC_CHECK((tu_sql_int_on(q, "SELECT state = 'finished' AND "
	    "hook_task_id IS NOT NULL FROM batches WHERE id = 1") == 1) ==
	    (done == PC_MEMBERS), "batch finished %s its last member",
	    done == PC_MEMBERS ? "without" : "before");
}

static void
final_batch(spool *q)
{
	PC_CHECK(hooks_of(q, 1) == 1, "%lld hooks", (long long)hooks_of(q, 1));
	PC_CHECK(tu_sql_int_on(q, "SELECT count(*) FROM batches b JOIN tasks t "
	    "ON t.id = b.hook_task_id WHERE b.id = 1 AND b.state = 'finished' "
	    "AND t.queue = 'hooks'") == 1, "batch not finished with its hook");
	PC_CHECK(tu_sql_int_on(q, TU_BATCHES_WRONG) == 0,
	    "batch counters differ from its members");
}

/* A two-stage pipeline "pp" (a, b), and a run of PC_ITEMS items. */
static void
setup_pipeline(spool *q)
{
	spool_stage	 s[2] = { SPOOL_STAGE_INIT, SPOOL_STAGE_INIT };
	spool_item	 it[PC_ITEMS];
	char		 text[PC_ITEMS][16];
	int64_t		 run = 0;
	int		 i;

	s[0].name = "a";
	s[0].concurrency = 2;
	s[1].name = "b";
	s[1].concurrency = 2;
	TU_RC(spool_pipeline_create(NULL, q, "pp", s, 2, 0), SPOOL_OK);
	for (i = 0; i < PC_ITEMS; i++) {
		snprintf(text[i], sizeof text[i], "x%d", i + 1);
		it[i].input = text[i];
		it[i].len = strlen(text[i]);
	}
	TU_RC(spool_pipeline_start(&run, NULL, q, "pp", it, PC_ITEMS, NULL),
	    SPOOL_OK);
}

/* pipeline: a pipeline pool hands each item from stage a to stage b in
 * the transaction of a's success. */
static void
child_pipeline(const char *path)
{
	spool_stage_handler	 h[2];
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	spool_pool		*p = NULL;
	int			 rc;

	h[0].stage = "a";
	h[0].fn = pc_handler;
	h[0].arg = NULL;
	h[1].stage = "b";
	h[1].fn = pc_handler;
	h[1].arg = NULL;
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.on_done = pc_on_done;
	rc = spool_pipeline_pool_new(&p, path, "pp", h, 2, &o);
	pc_child_pool(p, rc);
}

static void
check_pipeline(spool *q, const struct acks *a)
{
	char	 sql[256];
	int64_t	 n;
	size_t	 i;

	PC_CHECK(tu_sql_int_on(q, TU_RUNS_WRONG) == 0,
	    "run counters differ from its items");
	PC_CHECK(tu_sql_int_on(q, TU_ITEMS_WRONG) == 0,
	    "an item has no task, or two, or waits to be settled");
	PC_CHECK(tu_sql_int_on(q, "SELECT count(*) FROM pipeline_items") ==
	    PC_ITEMS, "items lost");
	/* Each reported success of stage a handed its item on, once. */
	for (i = 0; i < a->n; i++) {
		if (a->v[i].kind != 'S')
			continue;
		snprintf(sql, sizeof sql, "SELECT (SELECT count(*) FROM "
		    "tasks b WHERE b.item_id = a.item_id AND b.queue = 'pp/b')"
		    " FROM tasks a WHERE a.id = %lld AND a.queue = 'pp/a'",
		    (long long)a->v[i].id);
		n = tu_sql_int_on(q, sql);	/* -1: a task of stage b */
		PC_CHECK(n == -1 || n == 1, "stage a of task %lld succeeded, "
		    "its item has %lld tasks in stage b",
		    (long long)a->v[i].id, (long long)n);
	}
}

static void
final_pipeline(spool *q)
{
	sqlite3_stmt	*st;
	char		 want[64];
	const void	*p;
	int		 len;

	PC_CHECK(tu_sql_int_on(q, "SELECT count(*) FROM pipeline_runs WHERE "
	    "state = 'finished' AND succeeded = total") == 1,
	    "the run did not finish well");
	PC_CHECK(tu_sql_int_on(q, TU_RUNS_WRONG) == 0 &&
	    tu_sql_int_on(q, TU_ITEMS_WRONG) == 0, "run or items inconsistent");
	/* One task per item and stage: no stage ran twice for an item. */
	PC_CHECK(tu_sql_int_on(q, "SELECT count(*) FROM (SELECT item_id, queue "
	    "FROM tasks GROUP BY item_id, queue HAVING count(*) != 1)") == 0,
	    "an item has two tasks in one stage");
	if (sqlite3_prepare_v2(q->db, "SELECT i.id, r.output FROM "
	    "pipeline_items i JOIN results r ON r.task_id = i.task_id ORDER "
	    "BY i.id", -1, &st, NULL) != SQLITE_OK) {
		PC_CHECK(0, "items: %s", sqlite3_errmsg(q->db));
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(want, sizeof want, "x%d+a+b",
		    sqlite3_column_int(st, 0));
		p = sqlite3_column_blob(st, 1);
		len = sqlite3_column_bytes(st, 1);
		PC_CHECK((size_t)len == strlen(want) &&
		    memcmp(p, want, len) == 0, "item %d: \"%.*s\", not \"%s\"",
		    sqlite3_column_int(st, 0), len, (const char *)p, want);
	}
	sqlite3_finalize(st);
}

static const struct workload w_enqueue = {
	"enqueue", NULL, child_enqueue, check_enqueue, NULL, 250, 0
};
static const struct workload w_enqueue_many = {
	"enqueue_many", NULL, child_enqueue_many, check_enqueue_many, NULL,
	250, 0
};
static const struct workload w_claim = {
	"claim", setup_claim, child_claim, check_tasks, NULL, 80, 0
};
static const struct workload w_pool = {
	"pool", setup_pool, child_pool, check_pool, NULL, 40, 1
};
static const struct workload w_batch = {
	"batch", setup_batch, child_batch, check_batch, final_batch, 80, 0
};
static const struct workload w_pipeline = {
	"pipeline", setup_pipeline, child_pipeline, check_pipeline,
	final_pipeline, 40, 1
};

static void
test_enqueue(void)
{
	pc_workload(&w_enqueue);
}

static void
test_enqueue_many(void)
{
	pc_workload(&w_enqueue_many);
}

static void
test_claim(void)
{
	pc_workload(&w_claim);
}

static void
test_pool(void)
{
	pc_workload(&w_pool);
}

static void
test_batch(void)
{
	pc_workload(&w_batch);
}

static void
test_pipeline(void)
{
	pc_workload(&w_pipeline);
}

static CU_TestInfo powercut_tests[] = {
	{ "single enqueue", test_enqueue },
	{ "bulk enqueue (spool_enqueue_many)", test_enqueue_many },
	{ "claim and complete", test_claim },
	{ "a pool's group-committed flush", test_pool },
	{ "batch settling: one hook", test_batch },
	{ "pipeline hand-off", test_pipeline },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	const char	*s = getenv("PC_SEED");

	if (s != NULL && *s != '\0')
		pc_seed = strtoull(s, NULL, 10);
	else
		pc_seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 16;
	fprintf(stderr, "t-powercut: seed %llu (PC_SEED=%llu replays it)\n",
	    (unsigned long long)pc_seed, (unsigned long long)pc_seed);
	return (tu_run("powercut", powercut_tests));
}
