/*
 * spool-bench.c -- the benchmark of spool: each mode prints one line of
 * figures, measured on a fresh database in a temporary directory.
 *
 *   spool-bench [-n N] [-w W] [-t T] [-c C] [--prefetch N] [--rounds R]
 *       [--sync full|normal] [--dir DIR] MODE...
 *
 * Pools run with the library's defaults (SPOOL_POOL_OPTS_INIT) but for
 * their threads (-w W: min = max = W, default 2), the stop condition and
 * the sync setting; --prefetch N sets how many tasks a pool claims ahead
 * of idle threads.  Each line of a mode that runs a pool says which:
 * "defaults" or "prefetch N".
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
 *   all       every mode above
 *
 * The reference loops (defined by the project's shared bench/README.md): plain
 * SQLite on one connection in WAL mode, no library around it, doing the
 * work the spool figure beside them does.  They are the yardsticks, and
 * only a ratio measured in the same run means anything on a machine
 * whose disk and CPU vary by 2-3x within minutes.
 *
 *   limit-drain    the drain of a perfect engine (limits/drain_limit.c):
 *                  N tasks of 100-byte payloads inserted in one
 *                  transaction (untimed), then claims of 256 by one
 *                  UPDATE ... RETURNING committed unsynced, and per claim
 *                  one transaction, synced as --sync asks, of each task's
 *                  UPDATE to succeeded, result row and attempt row;
 *                  tasks/s of the drain
 *   limit-warm     limit-drain with malloc's trim and mmap thresholds
 *                  raised first (keep_heap() below): a stricter yardstick
 *                  than the reference program, which runs as a fresh
 *                  process; not part of all
 *   floor-drain    limit-drain's loop on spool's own schema (indexes,
 *                  CHECKs, triggers, foreign keys, the queue's counters),
 *                  through a spool handle: what no engine on this schema
 *                  beats; drain / floor-drain is the engine's share of
 *                  the gap, floor-drain / limit-drain the schema's
 *   limit-bulk     the bulk insert of a perfect engine
 *                  (limits/bulk_limit.c): 200,000 rows (or -n N) of
 *                  100-byte payloads, 32 rows per INSERT, one transaction,
 *                  into a table with a partial index of ready tasks and a
 *                  partial unique index of dedup keys; rows/s
 *   naive-enqueue  the hand-written queue (naive/naive_queue.c,
 *                  enqueue_one): N tasks (at most 20,000), one INSERT in
 *                  autocommit each, synced as --sync asks; tasks/s
 *   enqref         naive-enqueue and spool's enqueue call by call in
 *                  turn, N tasks (at most 20,000) each, so both see the
 *                  disk as it is at that moment; both rates and their
 *                  ratio (the fair comparison on a disk whose sync rate
 *                  swings)
 *   ratios         R rounds (--rounds, default 3) in one run, each
 *                  running in turn, every figure in a process of its own
 *                  forked for it: limit-drain, limit-warm, floor-drain and
 *                  drain (30,000
 *                  tasks each, or -n N; 100-byte payloads for both),
 *                  limit-bulk and bulk (200,000), naive-enqueue and
 *                  enqueue (3,000, no sync rates), a posix_spawn +
 *                  waitpid loop of /bin/true from W threads and exec
 *                  (300).  Prints every round's figures, then each spool
 *                  figure as a percentage of its yardstick, the best of
 *                  the rounds of both.  A round takes about 20 s on 2
 *                  cores with today's pool defaults, most of it the
 *                  drain; not part of all
 *
 * The claim-ahead check:
 *
 *   unstarted      100 tasks whose handler sleeps 1 s, worked by a pool
 *                  of 2 threads (min = max; -w does not apply) that stops
 *                  claiming after 6 s and finishes what it runs (7 s at
 *                  most); meanwhile another thread samples every 1 ms the
 *                  pool's prefetched count (tasks claimed that wait for a
 *                  thread) and every 10 ms, on a second connection, the
 *                  queue's claimed tasks (spool_stats: leased, not
 *                  started).  Prints the maximum of each: what a pool
 *                  holds leased that no thread runs, which another
 *                  process cannot take meanwhile.  Not part of all
 *
 * Times come from CLOCK_MONOTONIC (CLOCK_REALTIME across processes).
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/wait.h>

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "spool-int.h"

extern char	**environ;

static int64_t	 n_tasks = 100000;
static int	 n_workers = 2;
static int	 n_threads = 8;
static int	 n_conc = 128;
static int	 sync_normal;
static int	 pool_prefetch = -1;	/* --prefetch; -1: the library's */
static int	 n_given;		/* -n was given */
static int	 n_rounds = 3;		/* --rounds, of ratios */
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

/* How this run's pools are set, for the lines that run one. */
static const char *
pool_setting(void)
{
	static char	 buf[32];

	if (pool_prefetch < 0)
		return ("defaults");
	snprintf(buf, sizeof buf, "prefetch %d", pool_prefetch);
	return (buf);
}

/* x rounded to a whole number, its thousands set apart by commas. */
static const char *
commas(char *buf, size_t len, double x)
{
	char	 digits[32];
	size_t	 n, i, o = 0;

	n = (size_t)snprintf(digits, sizeof digits, "%.0f", x > 0 ? x : 0);
	for (i = 0; i < n && o + 2 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return (buf);
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

/* Remove a database of the bench with its WAL and shared memory, so that
 * the rounds of ratios do not fill the disk. */
static void
scrap(const char *path)
{
	char	 aux[620];

	unlink(path);
	snprintf(aux, sizeof aux, "%s-wal", path);
	unlink(aux);
	snprintf(aux, sizeof aux, "%s-shm", path);
	unlink(aux);
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

/* n tasks by spool_enqueue, one call (one transaction) each, from one
 * thread, on a fresh database; returns tasks/s. */
static double
enqueue_rate(int64_t n)
{
	char	 path[600];
	spool	*q = fresh(path, sizeof path);
	int64_t	 i;
	double	 t0, el;

	t0 = mono();
	for (i = 0; i < n; i++)
		if (spool_enqueue(NULL, q, "b", "{\"n\":1}", 7, NULL) != 0)
			die("enqueue", spool_errmsg(q));
	el = mono() - t0;
	spool_close(q);
	scrap(path);
	return (n / el);
}

static void
bench_enqueue(void)
{
	int64_t	 n = n_tasks < 20000 ? n_tasks : 20000;
	double	 s0, s1, rate;

	s0 = sync_rate(0);
	rate = enqueue_rate(n);
	s1 = sync_rate(0);
	printf("enqueue   %8lld tasks one at a time   %9.0f tasks/s  "
	    "(%.1f us each, sync %s; raw sync %.0f/s before, %.0f/s after: "
	    "%.0f%%)\n", (long long)n, rate, 1e6 / rate,
	    sync_normal ? "normal" : "full", s0, s1,
	    100.0 * rate / ((s0 + s1) / 2));
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

/* n tasks of 100-byte payloads by spool_enqueue_many on a fresh
 * database, as fill does; returns tasks/s. */
static double
bulk_rate(int64_t n)
{
	char	 path[600];
	spool	*q = fresh(path, sizeof path);
	double	 t0 = mono(), el;

	fill(q, n, 100);
	el = mono() - t0;
	spool_close(q);
	scrap(path);
	return (n / el);
}

static void
bench_bulk(void)
{
	printf("bulk      %8lld tasks, 100 B each   %9.0f tasks/s\n",
	    (long long)n_tasks, bulk_rate(n_tasks));
}

static int
noop(spool_job *job, void *arg)
{
	(void)job;
	(void)arg;
	return (SPOOL_DONE);
}

/* Run a pool over path until the queue is empty (or max_tasks are
 * claimed), with the library's defaults unless --prefetch; returns
 * seconds. */
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
	if (pool_prefetch >= 0)
		o.prefetch = pool_prefetch;
	o.max_tasks = max_tasks;
	o.open_flags = sync_normal ? SPOOL_OPEN_SYNC_NORMAL : 0;
	if (spool_pool_new(&p, path, fn, arg, &o) != SPOOL_OK)
		die("pool", spool_pool_errmsg(p));
	t0 = mono();
	if (spool_pool_run(p) != SPOOL_OK)
		die("pool", spool_pool_errmsg(p));
	el = mono() - t0;
	spool_pool_stats_get(st, p);
	spool_pool_free(p);
	return (el);
}

/* n tasks of len-byte payloads through a pool of W threads with the
 * no-op handler, on a fresh database; returns tasks/s. */
static double
drain_rate(int64_t n, size_t len)
{
	spool_pool_stats st;
	char		 path[600];
	spool		*q = fresh(path, sizeof path);
	double		 el;

	fill(q, n, len);
	spool_close(q);
	el = drain(path, noop, NULL, 0, &st);
	scrap(path);
	if (st.succeeded != n)
		die("drain", "not every task succeeded");
	return (n / el);
}

static void
bench_drain(void)
{
	printf("drain     %8lld tasks, %d threads   %9.0f tasks/s  "
	    "(no-op handler, sync %s, %s)\n", (long long)n_tasks, n_workers,
	    drain_rate(n_tasks, 16), sync_normal ? "normal" : "full",
	    pool_setting());
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
	spool_stage		 s[3] = { SPOOL_STAGE_INIT, SPOOL_STAGE_INIT,
				     SPOOL_STAGE_INIT };
	spool_run_info		*r;
	spool_item		*it;
	spool_pool		*p;
	char			 path[600];
	const char		*names[] = { "one", "two", "three" };
	spool			*q = fresh(path, sizeof path);
	int64_t			 n = n_tasks < 50000 ? n_tasks : 50000, run, i;
	double			 t0, start, el;
	int			 k, ok;

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
	spool_pool_stats_get(&st, p);
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
	    "(%.0f stage tasks/s, no-op handlers, sync %s, defaults: a "
	    "pipeline pool prefetches none; start: %.0f items/s, %.2f s)\n",
	    (long long)n, n_conc, n / el, st.succeeded / el,
	    sync_normal ? "normal" : "full", n / start, start);
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

/* n tasks through a pool of W threads running /bin/true (the exec
 * handler of spool work -- CMD), on a fresh database; returns tasks/s. */
static double
exec_rate(int64_t n)
{
	spool_pool_stats	 st;
	spool_exec		*x;
	char			 path[600], *argv[] = { "/bin/true" };
	spool			*q = fresh(path, sizeof path);
	double			 el;

	fill(q, n, 16);
	spool_close(q);
	if (spool_exec_new(&x, (const char *const *)argv, 1, NULL) != SPOOL_OK)
		die("exec", "out of memory");
	/* As spool work runs commands: ending what they leave behind
	 * (where the kernel lets it). */
	(void)spool_exec_subreaper(x);
	el = drain(path, spool_exec_handler, x, 0, &st);
	spool_exec_free(x);
	scrap(path);
	if (st.succeeded != n)
		die("exec", "not every task succeeded");
	return (n / el);
}

/* The baseline of exec: about n posix_spawn + waitpid of /bin/true, from
 * W threads (n / W each); returns spawns/s. */
static double
spawn_rate(int64_t n)
{
	struct spawner	 s;
	pthread_t	 t[64];
	double		 el;
	int		 i;

	s.n = n / n_workers;
	s.cmd = "/bin/true";
	el = mono();
	for (i = 0; i < n_workers; i++)
		if (pthread_create(&t[i], NULL, spawn_loop, &s) != 0)
			die("spawn", "cannot create a thread");
	for (i = 0; i < n_workers; i++)
		pthread_join(t[i], NULL);
	el = mono() - el;
	return (s.n * n_workers / el);
}

static void
bench_exec(void)
{
	int64_t	 n = n_tasks < 10000 ? n_tasks : 10000;
	double	 rate = exec_rate(n), base = spawn_rate(n);

	printf("exec      %8lld tasks, %d threads   %9.0f tasks/s  "
	    "(/bin/true, %s; plain posix_spawn+waitpid: %.0f/s, %.0f%%)\n",
	    (long long)n, n_workers, rate, pool_setting(), base,
	    100.0 * rate / base);
}

/*
 * Latency: for task number i the producer notes when it called
 * spool_enqueue (call_us) and when the call returned, its commit done
 * (commit_us); the handler notes when it started (start_us).  The arrays
 * are shared memory, so a producer in a forked process writes them too.
 * Reported: start - call, and start - commit (0 when the handler started
 * before the producer's call had returned, which a commit allows).
 */
struct lat {
	int64_t		*call_us;
	int64_t		*commit_us;
	int64_t		*start_us;
	int64_t		 max;
};

static int
lat_handler(spool_job *job, void *arg)
{
	struct lat	*l = arg;
	const char	*p;
	size_t		 len;
	int64_t		 i, now = wall_us();

	p = spool_job_payload(job, &len);
	i = strtoll(p, NULL, 10);
	if (i >= 0 && i < l->max)
		__atomic_store_n(&l->start_us[i], now, __ATOMIC_RELEASE);
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

/* Enqueue n tasks one at a time, 2 ms apart, each naming its number. */
static void *
produce(void *arg)
{
	struct producer	*pr = arg;
	struct lat	*l = pr->lat;
	spool		*q;
	char		 payload[32];
	int64_t		 i;
	struct timespec	 ts = { 0, 2000000 };

	if (spool_open(&q, pr->path, 0) != SPOOL_OK)
		die("producer", spool_errmsg(q));
	for (i = 0; i < pr->n; i++) {
		snprintf(payload, sizeof payload, "%lld", (long long)i);
		l->call_us[i] = wall_us();
		if (spool_enqueue(NULL, q, "b", payload, strlen(payload),
		    NULL) != SPOOL_OK)
			die("producer", spool_errmsg(q));
		l->commit_us[i] = wall_us();
		if (pr->pool != NULL)
			spool_pool_wake(pr->pool);
		nanosleep(&ts, NULL);	/* one at a time, spaced out */
	}
	spool_close(q);
	return (NULL);
}

/* p50, p95, p99 and max of v (n values, sorted here), in ms. */
static void
lat_line(const char *mode, const char *from, int64_t *v, int64_t n)
{
	qsort(v, (size_t)n, sizeof *v, cmp64);
	printf("%-9s %8lld tasks, %d threads   p50 %6.2f ms  p95 %6.2f ms  "
	    "p99 %6.2f ms  max %6.2f ms  (from the enqueue's %s; %s)\n", mode,
	    (long long)n, n_workers, v[n / 2] / 1000.0, v[n * 95 / 100] /
	    1000.0, v[n * 99 / 100] / 1000.0, v[n - 1] / 1000.0, from,
	    pool_setting());
}

static void
latency_report(const char *mode, struct lat *l)
{
	int64_t	*v, i, n = 0;

	if ((v = calloc((size_t)l->max, sizeof *v)) == NULL)
		die("latency", "out of memory");
	for (i = 0; i < l->max; i++)
		if (l->start_us[i] != 0)
			v[n++] = l->start_us[i] - l->call_us[i];
	if (n == 0)
		die("latency", "no task started");
	lat_line(mode, "call", v, n);
	for (n = 0, i = 0; i < l->max; i++)
		if (l->start_us[i] != 0)
			v[n++] = l->start_us[i] > l->commit_us[i] ?
			    l->start_us[i] - l->commit_us[i] : 0;
	lat_line(mode, "commit", v, n);
	free(v);
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
	int64_t		*mem;
	size_t		 size;
	int		 status;

	spool_close(q);
	memset(&l, 0, sizeof l);
	l.max = n_tasks < 2000 ? n_tasks : 2000;
	size = 3 * (size_t)l.max * sizeof *mem;
	if ((mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED |
	    MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
		die("latency", "out of memory");
	l.call_us = mem;
	l.commit_us = mem + l.max;
	l.start_us = mem + 2 * l.max;
	o.queues = qs;
	o.nqueues = 1;
	o.min_workers = o.max_workers = n_workers;
	if (pool_prefetch >= 0)
		o.prefetch = pool_prefetch;
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
	munmap(mem, size);
	scrap(path);
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

	printf("rss       worker RSS after 20,000 tasks (%d threads, %s): "
	    "backlog 10,000: %ld kB, backlog 1,000,000: %ld kB (%+ld kB)\n",
	    n_workers, pool_setting(), small, big, big - small);
}

/*
 * The reference loops (defined by the shared bench/README.md): plain SQLite,
 * one connection, no library around it, doing the work a spool figure is
 * judged against.  The limits are what a perfect engine would cost on
 * this disk; the naive loop is what a user would write by hand.
 */

/* Run sql (one or more statements) on a raw connection, or die. */
static void
raw_exec(sqlite3 *db, const char *sql)
{
	char	*err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		die(sql, err != NULL ? err : sqlite3_errmsg(db));
}

static sqlite3_stmt *
raw_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die(sql, sqlite3_errmsg(db));
	return (st);
}

/* Step a statement that returns no row, or die. */
static void
raw_step(sqlite3 *db, sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		die(sqlite3_sql(st), sqlite3_errmsg(db));
	sqlite3_reset(st);
}

/* The PRAGMA that syncs commits as --sync asks (FULL unless normal). */
static const char *
raw_sync(void)
{
	return (sync_normal ? "PRAGMA synchronous = NORMAL" :
	    "PRAGMA synchronous = FULL");
}

/* A new database in the bench's directory, on one connection in WAL
 * mode, its commits synced as --sync asks. */
static sqlite3 *
raw_open(char *path, size_t len)
{
	sqlite3	*db;

	snprintf(path, len, "%s/raw-%d.db", dir, ++db_seq);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		die("open", db != NULL ? sqlite3_errmsg(db) : "out of memory");
	raw_exec(db, "PRAGMA journal_mode = WAL");
	raw_exec(db, raw_sync());
	return (db);
}

#define LIMIT_CLAIM	256	/* tasks per claim of limit-drain */
#define LIMIT_ROWS	32	/* rows per INSERT of limit-bulk */
#define LIMIT_PAYLOAD	100	/* bytes of every limit task's payload */

/*
 * The loop of limit-drain and floor-drain, with their statements: until a
 * claim finds nothing, claim up to LIMIT_CLAIM tasks (?1 token, ?2 lease
 * until, ?3 now, ?4 how many) in an unsynced transaction, then commit
 * their outcomes (ack: ?1 id, ?2 token, ?3 now; result: ?1 id, ?2 data,
 * ?3 now or a duration; attempt: ?1 id, ?2 attempt, ?3 now) and, if
 * given, the queue's counters (?1 the claim's size) in one transaction
 * synced as --sync asks.  Returns the tasks drained.
 */
static int64_t
raw_drain(sqlite3 *db, sqlite3_stmt *claim, sqlite3_stmt *ack,
    sqlite3_stmt *result, sqlite3_stmt *attempt, sqlite3_stmt *count,
    int64_t until, int64_t now, int64_t stamp, const char *payload)
{
	int64_t		 ids[LIMIT_CLAIM], token, done = 0;
	int		 tries[LIMIT_CLAIM], got, k, rc;

	for (token = 1;; token++) {
		/* The claim: lost with the machine, it only delays tasks
		 * until their leases expire, so it need not be synced. */
		raw_exec(db, "PRAGMA synchronous = NORMAL");
		raw_exec(db, "BEGIN IMMEDIATE");
		sqlite3_bind_int64(claim, 1, token);
		sqlite3_bind_int64(claim, 2, until);
		sqlite3_bind_int64(claim, 3, now);
		sqlite3_bind_int(claim, 4, LIMIT_CLAIM);
		for (got = 0; (rc = sqlite3_step(claim)) == SQLITE_ROW; got++) {
			ids[got] = sqlite3_column_int64(claim, 0);
			tries[got] = sqlite3_column_int(claim, 2);
		}
		if (rc != SQLITE_DONE)
			die("drain loop: claim", sqlite3_errmsg(db));
		sqlite3_reset(claim);
		raw_exec(db, "COMMIT");
		if (got == 0)
			break;

		/* The outcomes: one synced commit for the whole claim. */
		raw_exec(db, raw_sync());
		raw_exec(db, "BEGIN IMMEDIATE");
		for (k = 0; k < got; k++) {
			sqlite3_bind_int64(ack, 1, ids[k]);
			sqlite3_bind_int64(ack, 2, token);
			sqlite3_bind_int64(ack, 3, stamp);
			raw_step(db, ack);
			if (sqlite3_changes(db) != 1)
				die("drain loop", "the lease fence refused "
				    "an outcome");
			sqlite3_bind_int64(result, 1, ids[k]);
			sqlite3_bind_blob(result, 2, payload, 10,
			    SQLITE_STATIC);
			sqlite3_bind_int64(result, 3, count != NULL ? stamp : 1);
			raw_step(db, result);
			sqlite3_bind_int64(attempt, 1, ids[k]);
			sqlite3_bind_int(attempt, 2, tries[k]);
			sqlite3_bind_int64(attempt, 3, stamp);
			raw_step(db, attempt);
		}
		if (count != NULL) {
			sqlite3_bind_int(count, 1, got);
			raw_step(db, count);
		}
		raw_exec(db, "COMMIT");
		done += got;
	}
	return (done);
}

/*
 * The heap kept: glibc's malloc gives back the top of its heap when more
 * than M_TRIM_THRESHOLD (128 KiB at first) is free there and maps blocks
 * above M_MMAP_THRESHOLD afresh, until a process has freed a large block
 * and the thresholds adapt.  limit-drain, run as its own process, frees
 * and grows its heap around each claim (550 brk calls for 30,000 tasks)
 * and so touches fresh pages all the time; with both thresholds raised
 * it runs 1.5x faster.  limit-warm is that faster loop: a stricter
 * yardstick than the reference program itself.  spool's drain is not
 * moved by the setting (measured on 2026-12-04: 105,000 to 108,000
 * tasks/s with and without it), so it is not applied there.
 */
static void
keep_heap(void)
{
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
}

/*
 * limit-drain (limits/drain_limit.c): the drain of a perfect engine.  The
 * tasks table has the row shape of the engine's (a queue, a state, a due
 * time, a lease, a partial index of the ready ones), with tables of
 * results and attempts.  n tasks go in by one transaction, untimed; then,
 * until a claim finds nothing: a claim of 256 tasks by one UPDATE ...
 * RETURNING, committed unsynced (synchronous=NORMAL), and the claim's
 * outcomes in one transaction committed synced (FULL; NORMAL with --sync
 * normal): per task, the lease-fenced UPDATE to succeeded, a result row
 * and an attempt row.  Returns tasks/s of the drain.
 */
static double
limit_drain(int64_t n)
{
	static const char	 schema[] =
	    "CREATE TABLE tasks (id INTEGER PRIMARY KEY,"
	    " queue TEXT NOT NULL, state TEXT NOT NULL,"
	    " priority INT NOT NULL DEFAULT 0, run_at INT NOT NULL,"
	    " payload BLOB, attempts INT NOT NULL DEFAULT 0,"
	    " lease_owner TEXT, lease_token INT, lease_expires INT,"
	    " finished_at INT);"
	    "CREATE INDEX ready ON tasks (queue, priority DESC, run_at, id)"
	    " WHERE state = 'ready';"
	    "CREATE TABLE results (task_id INTEGER PRIMARY KEY, data BLOB,"
	    " duration_us INT);"
	    "CREATE TABLE attempts (id INTEGER PRIMARY KEY, task_id INT,"
	    " attempt INT, worker TEXT, started INT, finished INT,"
	    " outcome TEXT, error TEXT);";
	sqlite3_stmt	*add, *claim, *ack, *result, *attempt;
	sqlite3		*db;
	char		 path[600], payload[LIMIT_PAYLOAD];
	int64_t		 done, i;
	double		 t0, el;

	memset(payload, 'x', sizeof payload);
	db = raw_open(path, sizeof path);
	raw_exec(db, schema);
	add = raw_prepare(db, "INSERT INTO tasks (queue, state, run_at, "
	    "payload) VALUES ('q', 'ready', 0, ?1)");
	raw_exec(db, "BEGIN IMMEDIATE");
	for (i = 0; i < n; i++) {
		sqlite3_bind_blob(add, 1, payload, sizeof payload,
		    SQLITE_STATIC);
		raw_step(db, add);
	}
	raw_exec(db, "COMMIT");

	claim = raw_prepare(db, "UPDATE tasks SET state = 'running', "
	    "attempts = attempts + 1, lease_owner = 'w', lease_token = ?1, "
	    "lease_expires = ?2 WHERE id IN (SELECT id FROM tasks "
	    "WHERE queue = 'q' AND state = 'ready' AND run_at <= ?3 "
	    "ORDER BY priority DESC, run_at, id LIMIT ?4) "
	    "RETURNING id, payload, attempts");
	ack = raw_prepare(db, "UPDATE tasks SET state = 'succeeded', "
	    "finished_at = ?3, lease_owner = NULL "
	    "WHERE id = ?1 AND lease_token = ?2 AND state = 'running'");
	result = raw_prepare(db, "INSERT INTO results (task_id, data, "
	    "duration_us) VALUES (?1, ?2, ?3)");
	attempt = raw_prepare(db, "INSERT INTO attempts (task_id, attempt, "
	    "worker, started, finished, outcome) "
	    "VALUES (?1, ?2, 'w', ?3, ?3, 'succeeded')");

	t0 = mono();
	done = raw_drain(db, claim, ack, result, attempt, NULL, 999999, 1, 5,
	    payload);
	el = mono() - t0;
	sqlite3_finalize(add);
	sqlite3_finalize(claim);
	sqlite3_finalize(ack);
	sqlite3_finalize(result);
	sqlite3_finalize(attempt);
	sqlite3_close(db);
	scrap(path);
	if (done != n)
		die("limit-drain", "not every task was drained");
	return (done / el);
}

/* An INSERT of rows tasks of limit-bulk's shape, one payload each. */
static sqlite3_stmt *
limit_insert(sqlite3 *db, int rows)
{
	char	 sql[64 + 32 * LIMIT_ROWS];
	size_t	 len;
	int	 i;

	len = (size_t)snprintf(sql, sizeof sql, "INSERT INTO tasks (queue, "
	    "state, run_at, payload, created_at) VALUES ");
	for (i = 0; i < rows && len < sizeof sql; i++)
		len += (size_t)snprintf(sql + len, sizeof sql - len,
		    "%s('q', 'ready', 0, ?, 0)", i > 0 ? ", " : "");
	if (len >= sizeof sql)
		die("limit-bulk", "statement too long");
	return (raw_prepare(db, sql));
}

/*
 * limit-bulk (limits/bulk_limit.c): the bulk insert of a perfect engine.
 * The tasks table has a created time and a dedup key beside the
 * drain's columns, the partial index of ready tasks and a partial unique
 * index of (queue, dedup key); n rows of 100-byte payloads go in by
 * INSERTs of 32 rows (the last one shorter if n is not a multiple), all
 * in one transaction, committed synced as --sync asks (FULL).  Returns
 * rows/s.
 */
static double
limit_bulk(int64_t n)
{
	static const char	 schema[] =
	    "CREATE TABLE tasks (id INTEGER PRIMARY KEY,"
	    " queue TEXT NOT NULL, state TEXT NOT NULL,"
	    " priority INT NOT NULL DEFAULT 0, run_at INT NOT NULL,"
	    " payload BLOB, attempts INT NOT NULL DEFAULT 0,"
	    " lease_owner TEXT, lease_token INT, lease_expires INT,"
	    " finished_at INT, created_at INT, dedup_key TEXT);"
	    "CREATE INDEX ready ON tasks (queue, priority DESC, run_at, id)"
	    " WHERE state = 'ready';"
	    "CREATE UNIQUE INDEX dk ON tasks (queue, dedup_key)"
	    " WHERE dedup_key IS NOT NULL;";
	sqlite3_stmt	*full, *tail = NULL, *count;
	sqlite3		*db;
	char		 path[600], payload[LIMIT_PAYLOAD];
	int64_t		 i, rows;
	int		 j, rest = (int)(n % LIMIT_ROWS);
	double		 t0, el;

	memset(payload, 'x', sizeof payload);
	db = raw_open(path, sizeof path);
	raw_exec(db, schema);
	full = limit_insert(db, LIMIT_ROWS);
	if (rest > 0)
		tail = limit_insert(db, rest);
	t0 = mono();
	raw_exec(db, "BEGIN IMMEDIATE");
	for (i = 0; i + LIMIT_ROWS <= n; i += LIMIT_ROWS) {
		for (j = 1; j <= LIMIT_ROWS; j++)
			sqlite3_bind_blob(full, j, payload, sizeof payload,
			    SQLITE_STATIC);
		raw_step(db, full);
	}
	if (tail != NULL) {
		for (j = 1; j <= rest; j++)
			sqlite3_bind_blob(tail, j, payload, sizeof payload,
			    SQLITE_STATIC);
		raw_step(db, tail);
	}
	raw_exec(db, "COMMIT");
	el = mono() - t0;
	count = raw_prepare(db, "SELECT count(*) FROM tasks");
	rows = sqlite3_step(count) == SQLITE_ROW ?
	    sqlite3_column_int64(count, 0) : -1;
	sqlite3_finalize(count);
	sqlite3_finalize(full);
	sqlite3_finalize(tail);
	sqlite3_close(db);
	scrap(path);
	if (rows != n)
		die("limit-bulk", "the table does not hold every row");
	return (n / el);
}

/*
 * naive-enqueue (naive/naive_queue.c, mode enqueue_one): the queue a user
 * would write by hand.  A jobs table (an AUTOINCREMENT id, a text payload,
 * a status, a worker, claim and creation times) with an index of (status,
 * id), WAL, synchronous as --sync asks (FULL), a 30 s busy timeout, and
 * one INSERT in autocommit per task: with FULL, a synced commit each.
 * The payload is the enqueue mode's.  Returns tasks/s.
 */
static const char naive_schema[] =
    "CREATE TABLE IF NOT EXISTS jobs ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " payload TEXT NOT NULL,"
    /* status: 0 pending, 1 running, 2 done */
    " status INTEGER NOT NULL DEFAULT 0,"
    " worker INTEGER, claimed_at INTEGER,"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS jobs_status_id ON jobs (status, id);";

static double
naive_enqueue(int64_t n)
{
	sqlite3_stmt	*add;
	sqlite3		*db;
	char		 path[600];
	int64_t		 i;
	double		 t0, el;

	db = raw_open(path, sizeof path);
	sqlite3_busy_timeout(db, 30000);
	raw_exec(db, naive_schema);
	add = raw_prepare(db, "INSERT INTO jobs (payload, created_at) "
	    "VALUES (?1, ?2)");
	t0 = mono();
	for (i = 0; i < n; i++) {
		sqlite3_bind_text(add, 1, "{\"n\":1}", -1, SQLITE_STATIC);
		sqlite3_bind_int64(add, 2, (sqlite3_int64)time(NULL));
		raw_step(db, add);
	}
	el = mono() - t0;
	sqlite3_finalize(add);
	sqlite3_close(db);
	scrap(path);
	return (n / el);
}

/*
 * floor-drain: the loop of limit-drain on spool's own schema (its
 * indexes, CHECKs, triggers and foreign keys), through a spool handle's
 * connection: claims of 256 by one UPDATE ... RETURNING through
 * tasks_ready, unsynced; per claim one synced transaction of each task's
 * fenced UPDATE to succeeded, result row and attempt row, and the
 * queue's counters.  No engine, threads or handler: what no engine on
 * this schema beats, so drain / floor-drain is the engine's share of
 * the gap to limit-drain, and floor-drain / limit-drain the schema's.
 * Returns tasks/s.
 */
static double
floor_drain(int64_t n)
{
	sqlite3_stmt	*claim, *ack, *result, *attempt, *count;
	sqlite3		*db;
	spool		*q;
	char		 path[600], payload[LIMIT_PAYLOAD];
	int64_t		 done, ms;
	double		 t0, el;

	memset(payload, 'x', sizeof payload);
	q = fresh(path, sizeof path);
	fill(q, n, LIMIT_PAYLOAD);
	db = q->db;
	ms = (int64_t)time(NULL) * 1000 + 1000;
	claim = raw_prepare(db, "UPDATE OR FAIL tasks SET state = 'running', "
	    "attempts = attempts + 1, lease_owner = 'w', lease_token = ?1, "
	    "lease_until_ms = ?2, started_ms = ?3 WHERE id IN (SELECT id "
	    "FROM tasks INDEXED BY tasks_ready WHERE queue = 'b' AND state = "
	    "'ready' AND priority = 0 AND run_at_ms <= ?3 ORDER BY run_at_ms, "
	    "id LIMIT ?4) RETURNING id, payload, attempts");
	ack = raw_prepare(db, "UPDATE OR FAIL tasks SET state = 'succeeded', "
	    "finished_ms = ?3, lease_owner = NULL, lease_token = NULL, "
	    "lease_until_ms = NULL WHERE id = ?1 AND lease_token = ?2 AND "
	    "state = 'running'");
	result = raw_prepare(db, "INSERT OR REPLACE INTO results (task_id, "
	    "output, duration_ms, created_ms, truncated) "
	    "VALUES (?1, ?2, 0, ?3, 0)");
	attempt = raw_prepare(db, "INSERT INTO attempts (task_id, attempt, "
	    "worker, started_ms, finished_ms, outcome) "
	    "VALUES (?1, ?2, 'w', ?3, ?3, 'succeeded')");
	count = raw_prepare(db, "INSERT INTO queue_counters (queue, claimed, "
	    "succeeded) VALUES ('b', ?1, ?1) ON CONFLICT (queue) DO UPDATE "
	    "SET claimed = claimed + excluded.claimed, "
	    "succeeded = succeeded + excluded.succeeded");

	t0 = mono();
	done = raw_drain(db, claim, ack, result, attempt, count, ms + 30000, ms,
	    ms, payload);
	el = mono() - t0;
	sqlite3_finalize(claim);
	sqlite3_finalize(ack);
	sqlite3_finalize(result);
	sqlite3_finalize(attempt);
	sqlite3_finalize(count);
	spool_close(q);
	scrap(path);
	if (done != n)
		die("floor-drain", "not every task was drained");
	return (done / el);
}

static void
bench_floor_drain(void)
{
	printf("floor-drain %6lld tasks, claims of %d %7.0f tasks/s  "
	    "(raw SQLite on spool's schema, 100 B payloads, outcomes sync "
	    "%s)\n", (long long)n_tasks, LIMIT_CLAIM, floor_drain(n_tasks),
	    sync_normal ? "normal" : "full");
}

static void
bench_limit_drain(void)
{
	printf("limit-drain %6lld tasks, claims of %d %7.0f tasks/s  "
	    "(raw SQLite, one connection, 100 B payloads, outcomes sync %s)\n",
	    (long long)n_tasks, LIMIT_CLAIM, limit_drain(n_tasks),
	    sync_normal ? "normal" : "full");
}

static void
bench_limit_warm(void)
{
	keep_heap();
	printf("limit-warm %7lld tasks, claims of %d %7.0f tasks/s  "
	    "(limit-drain, the heap kept: thresholds of malloc raised)\n",
	    (long long)n_tasks, LIMIT_CLAIM, limit_drain(n_tasks));
}

static void
bench_limit_bulk(void)
{
	int64_t	 n = n_given ? n_tasks : 200000;

	printf("limit-bulk %7lld rows, %d per INSERT  %9.0f rows/s  "
	    "(raw SQLite, 100 B payloads, one transaction, sync %s)\n",
	    (long long)n, LIMIT_ROWS, limit_bulk(n),
	    sync_normal ? "normal" : "full");
}

static void
bench_naive_enqueue(void)
{
	int64_t	 n = n_tasks < 20000 ? n_tasks : 20000;

	printf("naive-enqueue %4lld tasks one at a time %10.0f tasks/s  "
	    "(hand-written SQLite, a transaction each, sync %s)\n",
	    (long long)n, naive_enqueue(n), sync_normal ? "normal" : "full");
}

/*
 * enqref: one-at-a-time durable enqueue against naive-enqueue, call by
 * call in turn, so both see the disk as it is at that moment (run one
 * after the other, the two swung from 65% to 216% of each other here).
 */
static void
bench_enqref(void)
{
	sqlite3_stmt	*add;
	sqlite3		*db;
	spool		*q;
	char		 path[600], rpath[600];
	int64_t		 i, n = n_tasks < 20000 ? n_tasks : 20000;
	double		 t0, ts = 0, tr = 0;

	q = fresh(path, sizeof path);
	db = raw_open(rpath, sizeof rpath);
	sqlite3_busy_timeout(db, 30000);
	raw_exec(db, naive_schema);
	add = raw_prepare(db, "INSERT INTO jobs (payload, created_at) "
	    "VALUES (?1, ?2)");
	for (i = 0; i < n; i++) {
		t0 = mono();
		if (spool_enqueue(NULL, q, "b", "{\"n\":1}", 7, NULL) != 0)
			die("enqref", spool_errmsg(q));
		ts += mono() - t0;
		t0 = mono();
		sqlite3_bind_text(add, 1, "{\"n\":1}", -1, SQLITE_STATIC);
		sqlite3_bind_int64(add, 2, (sqlite3_int64)time(NULL));
		raw_step(db, add);
		tr += mono() - t0;
	}
	sqlite3_finalize(add);
	sqlite3_close(db);
	spool_close(q);
	scrap(path);
	scrap(rpath);
	printf("enqref    %8lld tasks one at a time   naive loop %6.0f/s, "
	    "spool %6.0f/s: %.1f%% (sync %s, call by call in turn)\n",
	    (long long)n, n / tr, n / ts, 100.0 * tr / ts,
	    sync_normal ? "normal" : "full");
}

/*
 * ratios: each spool figure beside its yardstick, in one process run, as
 * a percentage of it.  A round runs, in turn, each yardstick and then the
 * spool figure it judges, each on a fresh database (see enum below); the
 * best of the rounds of each figure is the one compared, so that a moment
 * of slow disk in one round does not decide the ratio.
 */
enum {
	R_LIMIT_DRAIN,		/* limit-drain */
	R_LIMIT_WARM,		/* limit-drain, the heap kept (see below) */
	R_FLOOR_DRAIN,		/* floor-drain */
	R_DRAIN,		/* drain, 100-byte payloads as limit-drain's */
	R_LIMIT_BULK,		/* limit-bulk */
	R_BULK,			/* bulk */
	R_NAIVE,		/* naive-enqueue */
	R_ENQUEUE,		/* enqueue, without its sync rates */
	R_SPAWN,		/* exec's baseline: posix_spawn + waitpid */
	R_EXEC,			/* exec's pool */
	R_FIGURES
};

#define RATIO_DRAIN	30000	/* tasks of either drain, unless -n */
#define RATIO_BULK	200000	/* tasks or rows of either bulk insert */
#define RATIO_ONE	3000	/* tasks enqueued one at a time */
#define RATIO_EXEC	300	/* runs of /bin/true */

static double
ratio_figure(int f, int64_t n)
{
	switch (f) {
	case R_LIMIT_DRAIN:
		return (limit_drain(n));
	case R_LIMIT_WARM:
		keep_heap();
		return (limit_drain(n));
	case R_FLOOR_DRAIN:
		return (floor_drain(n));
	case R_DRAIN:
		return (drain_rate(n, LIMIT_PAYLOAD));
	case R_LIMIT_BULK:
		return (limit_bulk(n));
	case R_BULK:
		return (bulk_rate(n));
	case R_NAIVE:
		return (naive_enqueue(n));
	case R_ENQUEUE:
		return (enqueue_rate(n));
	case R_SPAWN:
		return (spawn_rate(n));
	default:
		return (exec_rate(n));
	}
}

/*
 * Run figure f in a process of its own, forked from this one before it
 * has done any work, and return its rate: each figure starts as the
 * reference programs of ../shared/bench do, as a fresh process, and none
 * inherits the heap, the page cache of SQLite or the threads of the
 * figures before it (glibc's malloc adapts its trim and mmap thresholds
 * to what a process freed before, which alone moves limit-drain by half).
 */
static double
ratio_child(int f, int64_t n)
{
	double		 rate;
	ssize_t		 got;
	pid_t		 pid;
	int		 fd[2], status;

	if (pipe(fd) == -1)
		die("pipe", strerror(errno));
	if ((pid = fork()) == -1)
		die("fork", strerror(errno));
	if (pid == 0) {
		close(fd[0]);
		rate = ratio_figure(f, n);
		if (write(fd[1], &rate, sizeof rate) != sizeof rate)
			_exit(1);
		fflush(stdout);
		_exit(0);
	}
	close(fd[1]);
	while ((got = read(fd[0], &rate, sizeof rate)) == -1 && errno == EINTR)
		continue;
	close(fd[0]);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			die("waitpid", strerror(errno));
	if (got != sizeof rate || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		die("ratios", "a figure's process failed");
	return (rate);
}

static void
bench_ratios(void)
{
	static const char *const	 name[R_FIGURES] = { "limit-drain",
	    "limit-warm", "floor-drain",
	    "drain", "limit-bulk", "bulk", "naive-enqueue", "enqueue",
	    "spawn", "exec" };
	static const char *const	 unit[R_FIGURES] = { "tasks", "tasks",
	    "tasks", "tasks",
	    "rows", "tasks", "tasks", "tasks", "runs", "tasks" };
	/* Each spool figure, its yardstick, and whether it runs a pool. */
	static const struct {
		int		 fig, ref, pool;
		const char	*ref_name;
	} ratio[] = {
		{ R_DRAIN, R_LIMIT_DRAIN, 1, "limit-drain" },
		{ R_DRAIN, R_LIMIT_WARM, 1, "limit-warm" },
		{ R_DRAIN, R_FLOOR_DRAIN, 1, "floor-drain" },
		{ R_FLOOR_DRAIN, R_LIMIT_DRAIN, 0, "limit-drain" },
		{ R_BULK, R_LIMIT_BULK, 0, "limit-bulk" },
		{ R_ENQUEUE, R_NAIVE, 0, "naive-enqueue" },
		{ R_EXEC, R_SPAWN, 1, "posix_spawn loop" },
	};
	const char	*syncing = sync_normal ? "sync normal" : "sync full";
	double		 best[R_FIGURES], rate;
	int64_t		 n[R_FIGURES];
	char		 a[32], b[32], c[32];
	size_t		 k;
	int		 r, f;

	n[R_LIMIT_DRAIN] = n[R_LIMIT_WARM] = n[R_FLOOR_DRAIN] = n[R_DRAIN] =
	    n_given ? n_tasks : RATIO_DRAIN;
	n[R_LIMIT_BULK] = n[R_BULK] = RATIO_BULK;
	n[R_NAIVE] = n[R_ENQUEUE] = RATIO_ONE;
	n[R_SPAWN] = n[R_EXEC] = RATIO_EXEC;
	printf("ratios    %d round%s; %d threads, pools: %s, %s; drains of "
	    "%s tasks of 100 B, bulk %s, one at a time %s, exec %d\n",
	    n_rounds, n_rounds > 1 ? "s" : "", n_workers, pool_setting(), syncing,
	    commas(a, sizeof a, n[R_DRAIN]), commas(b, sizeof b, RATIO_BULK),
	    commas(c, sizeof c, RATIO_ONE), RATIO_EXEC);
	for (r = 1; r <= n_rounds; r++)
		for (f = 0; f < R_FIGURES; f++) {
			/* The previous figure's files may still be on their
			 * way to the disk: let them land first, so that no
			 * figure pays for the writes of the one before. */
			sync();
			rate = ratio_child(f, n[f]);
			if (r == 1 || rate > best[f])
				best[f] = rate;
			printf("round %d/%d %-14s %8s %-5s %10s %s/s\n", r,
			    n_rounds, name[f], commas(a, sizeof a,
			    (double)n[f]), unit[f], commas(b, sizeof b, rate),
			    unit[f]);
		}
	for (k = 0; k < sizeof ratio / sizeof ratio[0]; k++)
		printf("ratio %-10s %-11s %9s tasks/s = %3.0f%% of %s %s/s "
		    "(best of %d)\n", name[ratio[k].fig],
		    ratio[k].pool ? pool_setting() : syncing,
		    commas(a, sizeof a, best[ratio[k].fig]),
		    100.0 * best[ratio[k].fig] / best[ratio[k].ref],
		    ratio[k].ref_name, commas(b, sizeof b, best[ratio[k].ref]),
		    n_rounds);
}

/*
 * unstarted: how many tasks a pool holds claimed that no thread runs.
 * Each is leased in the database, so no other process can run it, while
 * it waits here.  A pool of 2 threads (min = max), otherwise as set,
 * works 100 tasks whose handler sleeps 1 s, and stops claiming after
 * UNSTARTED_MS; meanwhile a thread samples the pool's counters every
 * 1 ms (prefetched: claimed, waiting for a thread) and, on a connection
 * of its own, the queue's claimed tasks (leased, not started: what the
 * database shows) every 10 ms.  It reports the maxima, asserts nothing.
 */
#define UNSTARTED_TASKS	100
#define UNSTARTED_MS	6000

static int
sleep_1s(spool_job *job, void *arg)
{
	struct timespec	 ts = { 1, 0 };

	(void)job;
	(void)arg;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		continue;
	return (SPOOL_DONE);
}

struct watch {
	spool_pool	*p;
	const char	*path;
	int		 stop;		/* set once the pool has returned */
	int		 max_prefetched;
	int64_t		 max_claimed;	/* leased, not started, in the database */
	int64_t		 samples, db_samples;
};

static void *
watch_loop(void *arg)
{
	struct watch		*w = arg;
	struct timespec		 ms = { 0, 1000000 };
	spool_pool_stats	 st;
	spool_queue_stats	*qs;
	size_t			 nq;
	spool			*q;
	double			 next = 0, now;

	if (spool_open(&q, w->path, 0) != SPOOL_OK)
		die("unstarted", spool_errmsg(q));
	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		spool_pool_stats_get(&st, w->p);
		if (st.prefetched > w->max_prefetched)
			w->max_prefetched = st.prefetched;
		w->samples++;
		if ((now = mono()) >= next) {
			next = now + 0.010;
			if (spool_stats(&qs, &nq, q, "b") != SPOOL_OK ||
			    nq != 1)
				die("unstarted", spool_errmsg(q));
			if (qs->claimed > w->max_claimed)
				w->max_claimed = qs->claimed;
			spool_queue_stats_free(qs, nq);
			w->db_samples++;
		}
		nanosleep(&ms, NULL);
	}
	spool_close(q);
	return (NULL);
}

static void
bench_unstarted(void)
{
	spool_pool_opts		 o = SPOOL_POOL_OPTS_INIT;
	spool_pool_stats	 st;
	struct watch		 w;
	const char		*qs[] = { "b" };
	spool_pool		*p;
	pthread_t		 t;
	char			 path[600], a[32], b[32];
	spool			*q = fresh(path, sizeof path);
	double			 t0, el;

	fill(q, UNSTARTED_TASKS, 16);
	spool_close(q);
	o.queues = qs;
	o.nqueues = 1;
	o.min_workers = o.max_workers = 2;
	if (pool_prefetch >= 0)
		o.prefetch = pool_prefetch;
	o.max_time_ms = UNSTARTED_MS;
	o.open_flags = sync_normal ? SPOOL_OPEN_SYNC_NORMAL : 0;
	if (spool_pool_new(&p, path, sleep_1s, NULL, &o) != SPOOL_OK)
		die("pool", spool_pool_errmsg(p));
	memset(&w, 0, sizeof w);
	w.p = p;
	w.path = path;
	if (pthread_create(&t, NULL, watch_loop, &w) != 0)
		die("unstarted", "cannot create a thread");
	t0 = mono();
	if (spool_pool_run(p) != SPOOL_OK)
		die("pool", spool_pool_errmsg(p));
	el = mono() - t0;
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	spool_pool_stats_get(&st, p);
	spool_pool_free(p);
	scrap(path);
	printf("unstarted 2 threads, %s: max prefetched %d, max claimed "
	    "(leased, not started) %lld (target <= 2 per process; %lld tasks "
	    "of 1 s run in %.1f s; %s samples of the pool, %s of the "
	    "database)\n",
	    pool_setting(), w.max_prefetched, (long long)w.max_claimed,
	    (long long)st.succeeded, el, commas(a, sizeof a, w.samples),
	    commas(b, sizeof b, w.db_samples));
}

static void
usage(void)
{
	fprintf(stderr, "usage: spool-bench [-n N] [-w W] [-t T] [-c C] "
	    "[--prefetch N] [--rounds R]\n"
	    "    [--sync full|normal] [--dir DIR]\n"
	    "    sync|enqueue|threads|bulk|drain|pipeline|exec|latency|"
	    "xlatency|rss|all|\n"
	    "    limit-drain|limit-warm|floor-drain|limit-bulk|naive-enqueue|enqref|ratios|"
	    "unstarted...\n");
	exit(64);
}

int
main(int argc, char **argv)
{
	const char	*tmp = getenv("TMPDIR");
	int		 i, made = 0, ran = 0;

	/* As libspool's first open does (libspool(3), THREAD SAFETY): done
	 * here, since a reference loop may be the first to use SQLite, so
	 * that every loop of a run has the setting spool's users get. */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			n_tasks = atoll(argv[++i]);
			n_given = 1;
		} else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc)
			n_workers = atoi(argv[++i]);
		else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
			n_threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			n_conc = atoi(argv[++i]);
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
			n_rounds = atoi(argv[++i]);
			if (n_rounds < 1 || n_rounds > 100)
				usage();
		} else if (strcmp(argv[i], "--prefetch") == 0 && i + 1 < argc) {
			pool_prefetch = atoi(argv[++i]);
			if (pool_prefetch < 0 || pool_prefetch > 10000)
				usage();
		}
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
		if (strcmp(argv[i], "floor-drain") == 0)
			bench_floor_drain(), ran = 1;
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
		if (strcmp(argv[i], "limit-drain") == 0)
			bench_limit_drain(), ran = 1;
		if (strcmp(argv[i], "limit-warm") == 0)
			bench_limit_warm(), ran = 1;
		if (strcmp(argv[i], "limit-bulk") == 0)
			bench_limit_bulk(), ran = 1;
		if (strcmp(argv[i], "naive-enqueue") == 0)
			bench_naive_enqueue(), ran = 1;
		if (strcmp(argv[i], "ratios") == 0)
			bench_ratios(), ran = 1;
		if (strcmp(argv[i], "unstarted") == 0)
			bench_unstarted(), ran = 1;
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
