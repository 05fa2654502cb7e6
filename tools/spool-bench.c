/*
 * spool-bench.c -- the benchmark of spool: each mode prints one line of
 * figures, measured on a fresh database in a temporary directory.
 *
 *   spool-bench [-n N] [-w W] [-t T] [-c C] [--sync full|normal] [--dir DIR]
 *       MODE...
 *
 *   sync      the raw sync rate of the bench directory's file system,
 *             measured the way a WAL commit uses the disk: a fresh file,
 *             a loop of appending 4096 bytes (pwrite at its end) and
 *             fdatasync, for 2,000 rounds or 2 s, whichever comes first;
 *             also the rate of the same loop rewriting a written file in
 *             place (as a WAL is written again after a checkpoint)
 *   enqueue   N tasks (at most 20,000), one call (one transaction) each,
 *             from one thread; the raw sync rate is measured just before
 *             and just after, and the line gives the enqueue rate as a
 *             percentage of their mean (a synced commit per task can at
 *             best match the disk's sync rate)
 *   threads   N tasks (at most 20,000) from T threads (-t, default 8)
 *             calling spool_enqueue, one task per call, on one shared
 *             handle, so their calls share commits (group commit); prints
 *             tasks/s, commits/s and tasks per commit (counted by a
 *             commit hook on the handle's connection), and the multiple of
 *             the raw sync rate, measured before and after as for enqueue
 *   bulk      N tasks of 100-byte payloads, by spool_enqueue_many calls of
 *             50,000 tasks (one transaction each)
 *   bulkref   bulk enqueue against its yardstick, in the same run: three
 *             rounds of the raw SQLite loop (a bare table with a ready
 *             index and a partial unique key index, N rows of 100-byte
 *             blobs, 32 rows per INSERT, one synced transaction), then
 *             one spool_enqueue_many call of N tasks (one transaction);
 *             prints both rates and their ratio per round
 *   enqref    one-at-a-time durable enqueue against the loop a user would
 *             write by hand (a bare table, one autocommit INSERT per task,
 *             synchronous=FULL), N tasks (at most 20,000) each, call by
 *             call in turn so both see the same disk; prints both rates
 *             and their ratio
 *   drain     N tasks through a pool of W threads with a no-op handler
 *   pipeline  one run of N items (at most 50,000) through a pipeline of
 *             3 stages of concurrency C each (-c, default 128), worked by
 *             a pipeline pool whose handlers pass each payload on as the
 *             result; prints items/s through all stages and stage tasks/s
 *             over the pool's run, and apart from it the rate of starting
 *             the run (every item's first task inserted, one transaction).
 *             A pipeline pool claims no more than its stages' concurrency,
 *             so C sets how many outcomes share a flush: below about 96,
 *             the synced commits bound the rate (docs/benchmarks.md)
 *   exec      N tasks through a pool of W threads running /bin/true,
 *             and the same number of posix_spawn + waitpid of /bin/true
 *             from W threads, the baseline it is compared with
 *   latency   enqueue -> handler start, one task at a time, from a thread
 *             of the same process (which wakes the pool), p50/p95/p99
 *   xlatency  the same from another process (the pool polls)
 *   rss       the pool's resident memory after working 20,000 tasks of a
 *             backlog of 10,000 and of 1,000,000
 *   all       every mode above but bulkref and enqref
 *
 * Times come from CLOCK_MONOTONIC (CLOCK_REALTIME across processes).
 */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool-int.h"

extern char	**environ;

static int64_t	 n_tasks = 100000;
static int	 n_workers = 2;
static int	 n_threads = 8;
static int	 n_conc = 128;
static int	 sync_normal;
static char	 dir[512];
static int	 db_seq;

static double
mono(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

static int64_t
wall_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

static void
die(const char *what, const char *msg)
{
	fprintf(stderr, "spool-bench: %s: %s\n", what, msg);
	exit(70);
}

/* A new database path in the bench's directory, and the handle on it. */
static spool *
fresh(char *path, size_t len)
{
	spool	*q;

	snprintf(path, len, "%s/bench-%d.db", dir, ++db_seq);
	if (spool_open(&q, path, SPOOL_OPEN_CREATE |
	    (sync_normal ? SPOOL_OPEN_SYNC_NORMAL : 0)) != SPOOL_OK)
		die("open", spool_errmsg(q));
	return (q);
}

/* Fill queue "b" with n tasks of len bytes, in chunks. */
static void
fill(spool *q, int64_t n, size_t len)
{
	spool_task	*t;
	char		*payload;
	int64_t		 i, k, chunk = 50000;

	if ((t = calloc((size_t)chunk, sizeof *t)) == NULL ||
	    (payload = malloc(len + 1)) == NULL)
		die("fill", "out of memory");
	memset(payload, 'p', len);
	payload[len] = '\0';
	for (i = 0; i < n; i += chunk) {
		k = n - i < chunk ? n - i : chunk;
		for (int64_t j = 0; j < k; j++) {
			t[j].queue = "b";
			t[j].payload = payload;
			t[j].len = len;
		}
		if (spool_enqueue_many(NULL, NULL, q, t, (size_t)k) != 0)
			die("fill", spool_errmsg(q));
	}
	free(t);
	free(payload);
}

/*
 * The raw sync rate of dir's file system, in syncs per second: what one
 * synced WAL commit costs the disk at least.  A fresh file, appended to
 * 4096 bytes at a time with pwrite, each append followed by fdatasync (as
 * SQLite syncs the WAL on Linux), for 2,000 rounds or 2 s.  With
 * overwrite, the file is first written and synced whole, and the loop
 * rewrites its blocks in place: a WAL that a checkpoint has reset is
 * written so, and an fdatasync that need not record a new file size can
 * be cheaper on some file systems.
 */
static double
sync_rate(int overwrite)
{
	char	 path[600], block[4096];
	int	 fd;
	int64_t	 i;
	double	 t0, el;

	snprintf(path, sizeof path, "%s/sync-%d.dat", dir, ++db_seq);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1)
		die("sync", strerror(errno));
	memset(block, 's', sizeof block);
	if (overwrite) {
		for (i = 0; i < 2000; i++)
			if (pwrite(fd, block, sizeof block, (off_t)(i * 4096)) !=
			    (ssize_t)sizeof block)
				die("sync", "short write");
		if (fsync(fd) == -1)
			die("sync", strerror(errno));
	}
	t0 = mono();
	for (i = 0; i < 2000; i++) {
		if (pwrite(fd, block, sizeof block, (off_t)(i * 4096)) !=
		    (ssize_t)sizeof block)
			die("sync", "short write");
		if (fdatasync(fd) == -1)
			die("sync", strerror(errno));
		if ((el = mono() - t0) >= 2.0) {
			i++;
			break;
		}
	}
	el = mono() - t0;
	close(fd);
	unlink(path);
	return (i / el);
}

static void
bench_sync(void)
{
	double	 app = sync_rate(0), over = sync_rate(1);

	printf("sync      raw sync rate: 4 KiB append + fdatasync %9.0f "
	    "syncs/s  (in place: %.0f/s)\n", app, over);
}

static void
bench_enqueue(void)
{
	char	 path[600];
	spool	*q = fresh(path, sizeof path);
	int64_t	 i, n = n_tasks < 20000 ? n_tasks : 20000;
	double	 t0, el, s0, s1, rate;

	s0 = sync_rate(0);
	t0 = mono();
	for (i = 0; i < n; i++)
		if (spool_enqueue(NULL, q, "b", "{\"n\":1}", 7, NULL) != 0)
			die("enqueue", spool_errmsg(q));
	el = mono() - t0;
	s1 = sync_rate(0);
	rate = n / el;
	printf("enqueue   %8lld tasks one at a time   %9.0f tasks/s  "
	    "(%.1f us each, sync %s; raw sync %.0f/s before, %.0f/s after: "
	    "%.0f%%)\n", (long long)n, rate, el / n * 1e6,
	    sync_normal ? "normal" : "full", s0, s1,
	    100.0 * rate / ((s0 + s1) / 2));
	spool_close(q);
}

/* Threads enqueueing one task per call on one shared handle. */
struct enq_thread {
	spool			*q;
	int64_t			 n;
	pthread_barrier_t	*start;
};

static void *
enqueue_loop(void *arg)
{
	struct enq_thread	*e = arg;
	int64_t			 i;

	pthread_barrier_wait(e->start);
	for (i = 0; i < e->n; i++)
		if (spool_enqueue(NULL, e->q, "b", "{\"n\":1}", 7, NULL) != 0)
			die("threads", spool_errmsg(e->q));
	return (NULL);
}

/* SQLite calls this on the connection's every commit, in the thread
 * committing (only a group's leader touches the connection). */
static int
count_commit(void *arg)
{
	__atomic_add_fetch((int64_t *)arg, 1, __ATOMIC_RELAXED);
	return (0);
}

static void
bench_threads(void)
{
	struct enq_thread	 e[64];
	pthread_barrier_t	 start;
	pthread_t		 t[64];
	char			 path[600];
	spool			*q = fresh(path, sizeof path);
	int64_t			 n = n_tasks < 20000 ? n_tasks : 20000, commits;
	double			 t0, el, s0, s1, rate;
	int			 i;

	/* Make the queue before the clock starts. */
	if (spool_enqueue(NULL, q, "b", "{\"n\":0}", 7, NULL) != 0)
		die("threads", spool_errmsg(q));
	commits = 0;
	sqlite3_commit_hook(q->db, count_commit, &commits);
	s0 = sync_rate(0);
	pthread_barrier_init(&start, NULL, (unsigned)n_threads + 1);
	for (i = 0; i < n_threads; i++) {
		e[i].q = q;
		e[i].n = n / n_threads + (i < n % n_threads);
		e[i].start = &start;
		if (pthread_create(&t[i], NULL, enqueue_loop, &e[i]) != 0)
			die("threads", "cannot create a thread");
	}
	pthread_barrier_wait(&start);
	t0 = mono();
	for (i = 0; i < n_threads; i++)
		pthread_join(t[i], NULL);
	el = mono() - t0;
	pthread_barrier_destroy(&start);
	sqlite3_commit_hook(q->db, NULL, NULL);
	s1 = sync_rate(0);
	rate = n / el;
	commits = __atomic_load_n(&commits, __ATOMIC_RELAXED);
	printf("threads   %8lld tasks, %2d threads   %9.0f tasks/s  "
	    "(%.0f commits/s, %.1f tasks each, sync %s; raw sync %.0f/s "
	    "before, %.0f/s after: %.2fx)\n", (long long)n, n_threads, rate,
	    commits / el, commits > 0 ? (double)n / commits : 0.0,
	    sync_normal ? "normal" : "full", s0, s1, rate / ((s0 + s1) / 2));
	spool_close(q);
}

static void
bench_bulk(void)
{
	char	 path[600];
	spool	*q = fresh(path, sizeof path);
	double	 t0 = mono(), el;

	fill(q, n_tasks, 100);
	el = mono() - t0;
	printf("bulk      %8lld tasks, 100 B each   %9.0f tasks/s\n",
	    (long long)n_tasks, n_tasks / el);
	spool_close(q);
}

/* A bare SQLite connection on a new file of the bench's directory, in
 * WAL mode with synchronous=FULL, and sql run on it. */
static sqlite3 *
raw_open(const char *sql)
{
	sqlite3	*db;
	char	 path[600];

	snprintf(path, sizeof path, "%s/raw-%d.db", dir, ++db_seq);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode = WAL; "
	    "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die("raw", sqlite3_errmsg(db));
	return (db);
}

/* The yardstick of bulk enqueue: n rows, 32 a statement, in one
 * transaction; rows per second. */
static double
raw_bulk(int64_t n)
{
	sqlite3		*db = raw_open("CREATE TABLE tasks (id INTEGER PRIMARY "
			    "KEY, queue TEXT NOT NULL, state TEXT NOT NULL, "
			    "priority INT NOT NULL DEFAULT 0, run_at INT NOT "
			    "NULL, payload BLOB, attempts INT NOT NULL DEFAULT "
			    "0, lease_owner TEXT, lease_token INT, "
			    "lease_expires INT, finished_at INT, created_at "
			    "INT, dedup_key TEXT); CREATE INDEX ready ON tasks "
			    "(queue, priority DESC, run_at, id) WHERE state = "
			    "'ready'; CREATE UNIQUE INDEX dk ON tasks (queue, "
			    "dedup_key) WHERE dedup_key IS NOT NULL");
	sqlite3_stmt	*st;
	char		 sql[2048], payload[100];
	size_t		 len;
	int64_t		 i;
	double		 t0, el;
	int		 j;

	len = (size_t)snprintf(sql, sizeof sql, "INSERT INTO tasks (queue, "
	    "state, run_at, payload, created_at) VALUES ");
	for (j = 0; j < 32; j++)
		len += (size_t)snprintf(sql + len, sizeof sql - len,
		    "%s('q', 'ready', 0, ?, 0)", j > 0 ? ", " : "");
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die("raw", sqlite3_errmsg(db));
	memset(payload, 'x', sizeof payload);
	t0 = mono();
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		die("raw", sqlite3_errmsg(db));
	for (i = 0; i < n; i += 32) {
		for (j = 1; j <= 32; j++)
			sqlite3_bind_blob(st, j, payload, sizeof payload,
			    SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			die("raw", sqlite3_errmsg(db));
		sqlite3_reset(st);
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		die("raw", sqlite3_errmsg(db));
	el = mono() - t0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return (n / el);
}

static void
bench_bulkref(void)
{
	spool_task	*t;
	char		 path[600], payload[100];
	spool		*q;
	int64_t		 i;
	double		 raw, t0, rate;
	int		 round;

	if ((t = calloc((size_t)n_tasks, sizeof *t)) == NULL)
		die("bulkref", "out of memory");
	memset(payload, 'p', sizeof payload);
	for (i = 0; i < n_tasks; i++) {
		t[i].queue = "b";
		t[i].payload = payload;
		t[i].len = sizeof payload;
	}
	for (round = 1; round <= 3; round++) {
		raw = raw_bulk(n_tasks);
		q = fresh(path, sizeof path);
		t0 = mono();
		if (spool_enqueue_many(NULL, NULL, q, t, (size_t)n_tasks) != 0)
			die("bulkref", spool_errmsg(q));
		rate = n_tasks / (mono() - t0);
		spool_close(q);
		printf("bulkref   %8lld tasks, round %d   raw loop %9.0f rows/s, "
		    "spool %9.0f tasks/s: %.1f%%\n", (long long)n_tasks, round,
		    raw, rate, 100.0 * rate / raw);
	}
	free(t);
}

static void
bench_enqref(void)
{
	static const char payload[] = "{\"n\":1}";
	sqlite3_stmt	*st;
	char		 path[600];
	spool		*q = fresh(path, sizeof path);
	sqlite3		*db = raw_open("CREATE TABLE jobs (id INTEGER PRIMARY "
			    "KEY AUTOINCREMENT, payload TEXT NOT NULL, status "
			    "INTEGER NOT NULL DEFAULT 0, worker INTEGER, "
			    "claimed_at INTEGER, created_at INTEGER NOT NULL); "
			    "CREATE INDEX jobs_status_id ON jobs (status, id)");
	int64_t		 i, n = n_tasks < 20000 ? n_tasks : 20000;
	double		 t0, ts = 0, tr = 0;

	if (sqlite3_prepare_v2(db, "INSERT INTO jobs (payload, created_at) "
	    "VALUES (?1, ?2)", -1, &st, NULL) != SQLITE_OK)
		die("enqref", sqlite3_errmsg(db));
	for (i = 0; i < n; i++) {
		t0 = mono();
		if (spool_enqueue(NULL, q, "b", payload, sizeof payload - 1,
		    NULL) != 0)
			die("enqref", spool_errmsg(q));
		ts += mono() - t0;
		t0 = mono();
		sqlite3_bind_text(st, 1, payload, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
		if (sqlite3_step(st) != SQLITE_DONE)
			die("enqref", sqlite3_errmsg(db));
		sqlite3_reset(st);
		tr += mono() - t0;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	spool_close(q);
	printf("enqref    %8lld tasks one at a time   hand-written loop "
	    "%6.0f/s, spool %6.0f/s: %.1f%% (sync full, call by call in "
	    "turn)\n", (long long)n, n / tr, n / ts, 100.0 * tr / ts);
}

static int
noop(spool_job *job, void *arg)
{
	(void)job;
	(void)arg;
	return (SPOOL_DONE);
}

/* Run a pool over path until the queue is empty; returns seconds. */
static double
drain(const char *path, spool_handler fn, void *arg, int64_t max_tasks,
    spool_pool_stats *st)
{
	spool_pool_opts	 o = SPOOL_POOL_OPTS_INIT;
	const char	*qs[] = { "b" };
	spool_pool	*p;
	double		 t0, el;

	o.queues = qs;
	o.nqueues = 1;
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.min_workers = o.max_workers = n_workers;
	o.prefetch = fn == noop ? 512 : 2 * n_workers;
	o.max_tasks = max_tasks;
	o.open_flags = sync_normal ? SPOOL_OPEN_SYNC_NORMAL : 0;
	if (spool_pool_new(&p, path, fn, arg, &o) != SPOOL_OK)
		die("pool", spool_pool_errmsg(p));
	t0 = mono();
	if (spool_pool_run(p) != SPOOL_OK)
		die("pool", spool_pool_errmsg(p));
	el = mono() - t0;
	spool_pool_stats_get(p, st);
	spool_pool_free(p);
	return (el);
}

static void
bench_drain(void)
{
	spool_pool_stats st;
	char		 path[600];
	spool		*q = fresh(path, sizeof path);
	double		 el;

	fill(q, n_tasks, 16);
	spool_close(q);
	el = drain(path, noop, NULL, 0, &st);
	if (st.succeeded != n_tasks)
		die("drain", "not every task succeeded");
	printf("drain     %8lld tasks, %d threads   %9.0f tasks/s  "
	    "(no-op handler, sync %s)\n", (long long)n_tasks, n_workers,
	    n_tasks / el, sync_normal ? "normal" : "full");
}

/* A no-op stage: its payload goes on unchanged, as its result, which is
 * the next stage's payload (or the item's result after the last). */
static int
pass_on(spool_job *job, void *arg)
{
	const void	*p;
	size_t		 len;

	(void)arg;
	p = spool_job_payload(job, &len);
	return (spool_job_set_result(job, p, len) == SPOOL_OK ? SPOOL_DONE :
	    SPOOL_RETRY);
}

static void
bench_pipeline(void)
{
	static const char	 payload[] = "{\"n\":1,\"x\":\"pp\"}";
	spool_stage_handler	 h[3];
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	spool_pool_stats	 st;
	spool_stage		 s[3];
	spool_run_info		*r;
	spool_item		*it;
	spool_pool		*p;
	char			 path[600];
	const char		*names[] = { "one", "two", "three" };
	spool			*q = fresh(path, sizeof path);
	int64_t			 n = n_tasks < 50000 ? n_tasks : 50000, run, i;
	double			 t0, start, el;
	int			 k, ok;

	memset(s, 0, sizeof s);
	for (k = 0; k < 3; k++) {
		s[k].name = names[k];
		s[k].concurrency = n_conc;
		s[k].on_error = SPOOL_ON_ERROR_RETRY;
		h[k].stage = names[k];
		h[k].fn = pass_on;
		h[k].arg = NULL;
	}
	if (spool_pipeline_create(NULL, q, "bench", s, 3, 0) != SPOOL_OK)
		die("pipeline", spool_errmsg(q));
	if ((it = calloc((size_t)n, sizeof *it)) == NULL)
		die("pipeline", "out of memory");
	for (i = 0; i < n; i++) {
		it[i].input = payload;
		it[i].len = sizeof payload - 1;
	}
	t0 = mono();
	if (spool_pipeline_start(&run, NULL, q, "bench", it, (size_t)n,
	    NULL) != SPOOL_OK)
		die("pipeline", spool_errmsg(q));
	start = mono() - t0;
	free(it);

	/* The pool takes its queues, threads (3 C) and prefetch (none) from
	 * the definition; the flush settings stay the defaults. */
	o.flags = SPOOL_POOL_UNTIL_EMPTY;
	o.open_flags = sync_normal ? SPOOL_OPEN_SYNC_NORMAL : 0;
	if (spool_pipeline_pool_new(&p, path, "bench", h, 3, &o) != SPOOL_OK)
		die("pool", spool_pool_errmsg(p));
	t0 = mono();
	if (spool_pool_run(p) != SPOOL_OK)
		die("pool", spool_pool_errmsg(p));
	el = mono() - t0;
	spool_pool_stats_get(p, &st);
	spool_pool_free(p);

	/* The pool's count is of stage tasks; the run's own counters say
	 * whether every item came out of the last stage. */
	if (spool_run_get(&r, q, run) != SPOOL_OK)
		die("pipeline", spool_errmsg(q));
	ok = r->total == n && r->succeeded == n &&
	    r->state == SPOOL_RUN_FINISHED && st.succeeded == 3 * n;
	spool_run_info_free(r, 1);
	spool_close(q);
	if (!ok)
		die("pipeline", "not every item succeeded");
	printf("pipeline  %8lld items, 3 stages x %d  %9.0f items/s  "
	    "(%.0f stage tasks/s, no-op handlers, sync %s; start: %.0f "
	    "items/s, %.2f s)\n", (long long)n, n_conc, n / el,
	    st.succeeded / el, sync_normal ? "normal" : "full", n / start,
	    start);
}

struct spawner {
	int64_t		 n;
	const char	*cmd;
};

/* A baseline worker: posix_spawn and waitpid, n times. */
static void *
spawn_loop(void *arg)
{
	struct spawner	*s = arg;
	char		*argv[] = { (char *)s->cmd, NULL };
	pid_t		 pid;
	int		 status;
	int64_t		 i;

	for (i = 0; i < s->n; i++) {
		if (posix_spawn(&pid, s->cmd, NULL, NULL, argv, environ) != 0)
			die("spawn", strerror(errno));
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			continue;
	}
	return (NULL);
}

static void
bench_exec(void)
{
	spool_pool_stats	 st;
	struct spool__exec	*x;
	struct spawner		 s;
	pthread_t		 t[64];
	char			 path[600], *argv[] = { "/bin/true" };
	spool			*q = fresh(path, sizeof path);
	int64_t			 n = n_tasks < 10000 ? n_tasks : 10000;
	double			 el, base;
	int			 i;

	fill(q, n, 16);
	spool_close(q);
	if (spool__exec_new(&x, argv, 1, NULL, 0, 0) != SPOOL_OK)
		die("exec", "out of memory");
	el = drain(path, spool__exec_handler, x, 0, &st);
	spool__exec_free(x);
	if (st.succeeded != n)
		die("exec", "not every task succeeded");
	s.n = n / n_workers;
	s.cmd = "/bin/true";
	base = mono();
	for (i = 0; i < n_workers && i < 64; i++)
		pthread_create(&t[i], NULL, spawn_loop, &s);
	for (i = 0; i < n_workers && i < 64; i++)
		pthread_join(t[i], NULL);
	base = mono() - base;
	printf("exec      %8lld tasks, %d threads   %9.0f tasks/s  "
	    "(/bin/true; plain posix_spawn+waitpid: %.0f/s, %.0f%%)\n",
	    (long long)n, n_workers, n / el, s.n * n_workers / base,
	    100.0 * (n / el) / (s.n * n_workers / base));
}

/* Latency: handlers note how long after its enqueue each task started. */
struct lat {
	pthread_mutex_t	 mu;
	int64_t		*us;
	int64_t		 n, max;
	int64_t		 started;	/* tasks started so far */
};

static int
lat_handler(spool_job *job, void *arg)
{
	struct lat	*l = arg;
	const char	*p;
	size_t		 len;
	int64_t		 sent, now = wall_us();

	p = spool_job_payload(job, &len);
	sent = strtoll(p, NULL, 10);
	pthread_mutex_lock(&l->mu);
	if (l->n < l->max)
		l->us[l->n++] = now - sent;
	l->started++;
	pthread_mutex_unlock(&l->mu);
	return (SPOOL_DONE);
}

static int
cmp64(const void *a, const void *b)
{
	int64_t	 x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x < y ? -1 : x > y);
}

struct producer {
	const char	*path;
	int64_t		 n;
	spool_pool	*pool;		/* NULL: in another process, no wake */
	struct lat	*lat;
};

/* Enqueue n tasks one at a time, each carrying its enqueue time, and
 * wait for each to start before sending the next. */
static void *
produce(void *arg)
{
	struct producer	*pr = arg;
	spool		*q;
	char		 payload[32];
	int64_t		 i;
	struct timespec	 ts = { 0, 2000000 };

	if (spool_open(&q, pr->path, 0) != SPOOL_OK)
		die("producer", spool_errmsg(q));
	for (i = 0; i < pr->n; i++) {
		snprintf(payload, sizeof payload, "%lld", (long long)wall_us());
		if (spool_enqueue(NULL, q, "b", payload, strlen(payload),
		    NULL) != SPOOL_OK)
			die("producer", spool_errmsg(q));
		if (pr->pool != NULL)
			spool_pool_wake(pr->pool);
		nanosleep(&ts, NULL);	/* one at a time, spaced out */
	}
	spool_close(q);
	return (NULL);
}

static void
latency_report(const char *mode, struct lat *l)
{
	qsort(l->us, (size_t)l->n, sizeof *l->us, cmp64);
	printf("%-9s %8lld tasks, %d threads   p50 %6.2f ms  p95 %6.2f ms  "
	    "p99 %6.2f ms  max %6.2f ms\n", mode, (long long)l->n, n_workers,
	    l->us[l->n / 2] / 1000.0, l->us[l->n * 95 / 100] / 1000.0,
	    l->us[l->n * 99 / 100] / 1000.0, l->us[l->n - 1] / 1000.0);
}

static void
bench_latency(int cross)
{
	spool_pool_opts	 o = SPOOL_POOL_OPTS_INIT;
	const char	*qs[] = { "b" };
	struct producer	 pr;
	struct lat	 l;
	spool_pool	*p;
	pthread_t	 t;
	char		 path[600];
	spool		*q = fresh(path, sizeof path);
	pid_t		 pid = 0;
	int		 status;

	spool_close(q);
	memset(&l, 0, sizeof l);
	pthread_mutex_init(&l.mu, NULL);
	l.max = n_tasks < 2000 ? n_tasks : 2000;
	if ((l.us = calloc((size_t)l.max, sizeof *l.us)) == NULL)
		die("latency", "out of memory");
	o.queues = qs;
	o.nqueues = 1;
	o.min_workers = o.max_workers = n_workers;
	o.max_tasks = l.max;
	if (spool_pool_new(&p, path, lat_handler, &l, &o) != SPOOL_OK)
		die("pool", spool_pool_errmsg(p));
	pr.path = path;
	pr.n = l.max;
	pr.lat = &l;
	if (cross) {
		pr.pool = NULL;
		if ((pid = fork()) == 0) {
			produce(&pr);
			_exit(0);
		}
	} else {
		pr.pool = p;
		pthread_create(&t, NULL, produce, &pr);
	}
	if (spool_pool_run(p) != SPOOL_OK)
		die("pool", spool_pool_errmsg(p));
	if (cross)
		waitpid(pid, &status, 0);
	else
		pthread_join(t, NULL);
	spool_pool_free(p);
	latency_report(cross ? "xlatency" : "latency", &l);
	free(l.us);
}

/* VmRSS of this process, in kB. */
static long
rss_kb(void)
{
	char	 line[256];
	long	 kb = -1;
	FILE	*f;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return (-1);
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return (kb);
}

/* The RSS of a child process that works 20,000 tasks of a backlog. */
static long
rss_child(int64_t backlog)
{
	spool_pool_stats st;
	char		 path[600];
	int		 fd[2], status;
	long		 kb = -1;
	pid_t		 pid;
	spool		*q = fresh(path, sizeof path);

	fill(q, backlog, 64);
	spool_close(q);
	if (pipe(fd) == -1)
		die("rss", strerror(errno));
	if ((pid = fork()) == 0) {
		close(fd[0]);
		(void)drain(path, noop, NULL, 20000, &st);
		kb = rss_kb();
		if (write(fd[1], &kb, sizeof kb) != (ssize_t)sizeof kb)
			_exit(1);
		_exit(0);
	}
	close(fd[1]);
	if (read(fd[0], &kb, sizeof kb) != (ssize_t)sizeof kb)
		kb = -1;
	close(fd[0]);
	waitpid(pid, &status, 0);
	return (kb);
}

static void
bench_rss(void)
{
	long	 small = rss_child(10000), big = rss_child(1000000);

	printf("rss       worker RSS after 20,000 tasks: backlog 10,000: "
	    "%ld kB, backlog 1,000,000: %ld kB (%+ld kB)\n", small, big,
	    big - small);
}

static void
usage(void)
{
	fprintf(stderr, "usage: spool-bench [-n N] [-w W] [-t T] [-c C] "
	    "[--sync full|normal] [--dir DIR]\n"
	    "    sync|enqueue|threads|bulk|bulkref|enqref|drain|pipeline|"
	    "exec|latency|"
	    "xlatency|rss|all...\n");
	exit(64);
}

int
main(int argc, char **argv)
{
	const char	*tmp = getenv("TMPDIR");
	int		 i, made = 0, ran = 0;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			n_tasks = atoll(argv[++i]);
		else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc)
			n_workers = atoi(argv[++i]);
		else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
			n_threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			n_conc = atoi(argv[++i]);
		else if (strcmp(argv[i], "--sync") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "normal") == 0)
				sync_normal = 1;
			else if (strcmp(argv[i], "full") != 0)
				usage();
		} else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			snprintf(dir, sizeof dir, "%s", argv[++i]);
		else
			usage();
	}
	if (i == argc || n_tasks < 100 || n_workers < 1 || n_workers > 64 ||
	    n_threads < 1 || n_threads > 64 || n_conc < 1 ||
	    n_conc > SPOOL_CONCURRENCY_MAX / 3)
		usage();
	if (dir[0] == '\0') {
		snprintf(dir, sizeof dir, "%s/spool-bench-XXXXXX",
		    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
		if (mkdtemp(dir) == NULL)
			die("mkdtemp", strerror(errno));
		made = 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (; i < argc; i++) {
		int	 all = strcmp(argv[i], "all") == 0;

		ran = 0;
		if (all || strcmp(argv[i], "sync") == 0)
			bench_sync(), ran = 1;
		if (all || strcmp(argv[i], "enqueue") == 0)
			bench_enqueue(), ran = 1;
		if (all || strcmp(argv[i], "threads") == 0)
			bench_threads(), ran = 1;
		if (all || strcmp(argv[i], "bulk") == 0)
			bench_bulk(), ran = 1;
		if (strcmp(argv[i], "bulkref") == 0)
			bench_bulkref(), ran = 1;
		if (strcmp(argv[i], "enqref") == 0)
			bench_enqref(), ran = 1;
		if (all || strcmp(argv[i], "drain") == 0)
			bench_drain(), ran = 1;
		if (all || strcmp(argv[i], "pipeline") == 0)
			bench_pipeline(), ran = 1;
		if (all || strcmp(argv[i], "exec") == 0)
			bench_exec(), ran = 1;
		if (all || strcmp(argv[i], "latency") == 0)
			bench_latency(0), ran = 1;
		if (all || strcmp(argv[i], "xlatency") == 0)
			bench_latency(1), ran = 1;
		if (all || strcmp(argv[i], "rss") == 0)
			bench_rss(), ran = 1;
		if (!ran)
			usage();
	}
	if (made) {
		char	 cmd[600];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "spool-bench: could not remove %s\n", dir);
	}
	return (0);
}
