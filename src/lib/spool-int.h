/*
 * spool-int.h -- the private map of libspool, one section per file.
 *
 * Names: spool_mod_verb is public (spool.h), spool__mod_verb is internal
 * (shared between files, never exported), and "static mod_verb" is local
 * to a file.  Only the store (store.c, store-rows.c) and the generated
 * sql-gen.c and query-gen.c speak SQL.  The CLI (src/cli) never sees this
 * header: it uses spool.h alone.
 */
#ifndef SPOOL_INT_H
#define SPOOL_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <time.h>

#include "spool.h"
#include "utf8.h"
#include "sql-gen.h"

/* PRAGMA application_id of every spool database: "SPOL". */
#define SPOOL_APPLICATION_ID	0x53504f4c

#define SPOOL_BUSY_TIMEOUT_MS	10000	/* default busy timeout */
#define SPOOL_REAP_INTERVAL_MS	1000	/* claims reap at most this often,
					 * unless an engine's timer reaps */
#define SPOOL_BATCH_ROWS	500	/* rows per transaction in bulk deletes */

#define SPOOL_YEAR_MS		(365LL * 24 * 3600 * 1000)
#define SPOOL_DURATION_MAX_MS	(100 * SPOOL_YEAR_MS)	/* any delay, lease, retention */
#define SPOOL_ATTEMPTS_MAX	1000000

#ifdef __GNUC__
#define SPOOL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SPOOL_PRINTF(f, a)
#endif

typedef int64_t (*spool__clock_fn)(void *arg);

/* The per-queue counters of schema 5 (counters.c), in column order. */
enum spool__counter {
	SPOOL__C_ENQUEUED = 0,
	SPOOL__C_CLAIMED,
	SPOOL__C_SUCCEEDED,
	SPOOL__C_FAILED,
	SPOOL__C_RETRIED,
	SPOOL__C_DEAD,
	SPOOL__C_EXPIRED,
	SPOOL__C_LEASE_LOST,
	SPOOL__C_CANCELLED,
	SPOOL__C_COUNT
};

/* What the open transaction did to one queue's counters. */
struct spool__ctr {
	char		 queue[SPOOL_NAME_MAX + 1];
	int64_t		 n[SPOOL__C_COUNT];
};

/* A typed query's statement being read (query-gen.h): open from
 * spool__q_NAME until spool__q_NAME_next returns 0 or an error, or until
 * spool__cur_end. */
struct spool__cur {
	spool		*q;
	void		*st;		/* its sqlite3_stmt */
	const char	*what;		/* the query's name, for errors */
};

/* An open database.  One thread at a time (see spool.h). */
struct spool {
	struct sqlite3	*db;		/* the store's (store-int.h) */
	char		*path;
	int		 flags;		/* SPOOL_OPEN_* */
	int		 errcode;	/* last failure, SPOOL_OK if none */
	int		 open_rc;	/* the failed open's code, or SPOOL_OK */
	char		 errmsg[512];
	struct sqlite3_stmt *stmt[SPOOL_SQL__COUNT];	/* prepared at open */
	int64_t		 busy_timeout_ms;
	int64_t		 busy_start_us;	/* monotonic start of the current wait */
	int64_t		 busy_delay_us;	/* its delay after 100 ms */
	int64_t		 busy_wal_sig;	/* the WAL at its last try (store_busy) */
	int64_t		 unwritable_from_ms;	/* since when this handle could
					 * not get the write lock, 0 if it could
					 * (spool__stall_cutoff) */
	int		 in_txn;	/* inside spool__begin .. commit/rollback */
	int64_t		 next_reap_ms;	/* claims reap when now passes this */
	int64_t		 reap_interval_ms;	/* between reaps by claims */
	const struct spool__txn_hooks *hooks;	/* the features' (open.c) */
	spool__clock_fn	 clock;		/* test seam: NULL = the wall clock */
	void		*clock_arg;
	char		 owner[256];	/* default lease owner: "host:pid" */
	struct spool__ctr *ctr;		/* counters.c: the transaction's sums */
	size_t		 nctr;
	size_t		 ctr_cap;
	int		 ctr_failed;	/* an allocation failed: fail the commit */

	/*
	 * A lone producer's shortcuts (store.c, spool__quiet): when nothing
	 * but this handle's own spool transactions wrote the file since its
	 * last commit, an enqueue need not look for anything to settle nor
	 * read its queue's settings again, and a small one need not read
	 * the counters' mark (counters.c).
	 */
	int		 quiet_ok;	/* at the last commit: nothing left to
					 * settle, qc_* true, and the file's
					 * data version quiet_dv */
	int		 quiet_prev;	/* quiet_ok when the transaction began */
	int		 txn_dv_read;	/* the open transaction ran spool__quiet */
	int		 txn_fast;	/* ... found the file quiet, and only
					 * enqueues outside batches run in it */
	int64_t		 quiet_dv;	/* the file's data version after it */
	int64_t		 txn_top_id;	/* the highest task id enqueue.c
					 * inserted in the open transaction */
	int64_t		 mark_seen;	/* counters_mark.task_id as last read or
					 * set here: never above the file's but
					 * after a mark set rolled back */
	int		 qc_valid;	/* qc_conf is queue qc_name's row */
	char		 qc_name[SPOOL_NAME_MAX + 1];
	spool_queue_opts qc_conf;

	/* enqueue.c: group commit of calls from several threads */
	pthread_mutex_t	 gc_mu;
	pthread_cond_t	 gc_cv;
	pthread_cond_t	 gc_arrive_cv;	/* a gathering leader waits here */
	struct spool__enq_req *gc_head;	/* waiting for a leader */
	struct spool__enq_req *gc_tail;
	int		 gc_queued;	/* requests in that list */
	int		 gc_leader;	/* a thread is running a group */
	int		 gc_streaming;	/* ...or a stream, in this thread: */
	pthread_t	 gc_stream_thread;
	int		 gc_gathering;	/* the leader waits for more requests */
	int		 gc_expect;	/* the largest recent group */
	int64_t		 gc_commit_us;	/* how long the last group took */
};

/* Where a pool's job is (under spool_pool.mu). */
enum spool__phase {
	SPOOL__PREFETCHED = 1,	/* claimed, in the pool's ready list */
	SPOOL__RUNNING,		/* a worker thread runs its handler */
	SPOOL__FINISHED,	/* in the done list, outcome not committed */
	SPOOL__ABANDONED	/* ran past its timeout: the worker frees it */
};

/* What the engine commits for a finished pool job. */
enum spool__verdict {
	SPOOL__V_HANDLER = 0,	/* as the handler returned */
	SPOOL__V_TIMEOUT,	/* failed: ran past its timeout */
	SPOOL__V_RELEASE	/* handed back unstarted */
};

/* A task held under a lease.  Valid while the token matches the row's. */
struct spool_job {
	spool		*q;
	int64_t		 id;
	int64_t		 token;		/* fencing token of this attempt */
	char		*queue;
	char		*owner;
	void		*payload;
	size_t		 len;
	int		 attempt;
	int		 max_attempts;
	int64_t		 started_ms;
	int64_t		 lease_ms;	/* length of the lease, for heartbeats */
	int64_t		 lease_until_ms;	/* atomic in pool jobs (renewals) */
	int		 cancel_requested;
	int		 done;		/* finished by a call: only free applies */
	int64_t		 run_at_ms;	/* when it was due (for wait times) */
	int64_t		 item_id;	/* pipeline item, or 0 */
	int64_t		 stage_id;	/* its stage's definition, or 0 */
	int64_t		 stage_timeout_ms;	/* the stage's timeout, or 0 */
	const struct spool__stage_def *stage;	/* in a pipeline pool */

	/* Pool jobs only.  The engine thread owns the job except while a
	 * worker runs it; phase and the lists change under pool->mu. */
	struct spool_pool *pool;
	spool_job	*next;		/* in the ready or done list */
	spool_job	*hnext;		/* in the engine's registry */
	int		 phase;		/* enum spool__phase */
	int		 verdict;	/* enum spool__verdict */
	int		 handler_rc;	/* SPOOL_DONE, SPOOL_RETRY, SPOOL_FAIL */
	int		 kind;		/* outcome recorded by the flush */
	int		 stop;		/* SPOOL_STOP_* (atomic) */
	int64_t		 timeout_ms;	/* 0: none */
	int64_t		 run_start_ms;	/* when a thread started it, or 0 */
	int64_t		 run_end_ms;
	int		 start_rec;	/* its start is written (engine's) */
	void		*result;
	size_t		 result_len;
	int		 truncated;
	char		*error;
	unsigned	 renew_epoch;	/* last renewal that saw its lease */
	int		 qidx;		/* its queue among the pool's */
};

/* A FIFO of pool jobs. */
struct spool__jobq {
	spool_job	*head;
	spool_job	*tail;
	size_t		 n;
};

struct spool__engine;
struct spool__stages;

/* A worker pool (pool.c) and its engine (engine*.c). */
#define SPOOL__RATE_SLOTS	64	/* > SPOOL_RATE_SECONDS */

/* Attempts per second: slot sec % SPOOL__RATE_SLOTS holds second sec. */
struct spool__rate {
	int64_t			 sec[SPOOL__RATE_SLOTS];
	int64_t			 ok[SPOOL__RATE_SLOTS];
	int64_t			 bad[SPOOL__RATE_SLOTS];
};

/* A pool's in-process metrics (pool-metrics.c), under the pool's mutex. */
struct spool__pool_metrics {
	spool_histogram		 wait;
	spool_histogram		 run;
	struct spool__rate	 rate;
	double			 cpu_user_s;
	double			 cpu_system_s;
	double			 cpu_process;
	int64_t			 rss_bytes;
};

struct spool_pool {
	spool_handler		 fn;
	void			*arg;
	spool_pool_opts		 o;		/* with defaults filled in */
	char			**queues;	/* o.queues points here */
	int			*weights;
	char			*path;
	spool			*q;		/* engine thread only */
	struct spool__engine	*engine;
	char			 owner[160];	/* host:pid:random */
	char			 host[128];
	int64_t			 started_ms;
	int64_t			 grace_ms;	/* past a timeout, before abandoning */
	double			(*cpu_probe)(spool_pool *);	/* test seam */
	int			 ahead_fixed;	/* test seam: claim this many ahead
						 * of the threads (-1: sized) */
	int			 fail_flush_claims;	/* test seam: a flush's
						 * claim fails */
	int			 fail_flushes;	/* test seam (atomic): every flush
						 * fails while set */
	int			*limits;	/* per queue: jobs claimed and not
						 * finished at most (pipelines) */
	int			*active;	/* per queue: those now (under mu) */
	struct spool__stages	*stages;	/* a pipeline pool's */
	int			 errcode;
	char			 errmsg[512];

	pthread_mutex_t		 mu;
	pthread_cond_t		 work_cv;	/* workers wait for jobs */
	pthread_cond_t		 exit_cv;	/* free waits for workers */
	struct spool__jobq	 ready;
	struct spool__jobq	 done;
	int			 nworkers;
	int			 busy;
	int			 stuck;		/* running an abandoned job */
	int			 stopping;	/* 1: drain, 2: quit */
	int			 holding;	/* outcomes cannot be committed:
						 * start no task (under mu) */
	int			 room_freed;	/* a queue's slot freed since the
						 * last claim (under mu) */
	int			 wake_pending;
	int			 starts_pending;	/* handlers started, not yet
						 * written (the engine's) */
	int			 refill_at;	/* wake the engine to claim when
						 * ready falls to this */
	int64_t			 run_ns;	/* handler time, summed since the
						 * engine last read it ... */
	int64_t			 run_n;		/* ... over this many jobs */
	spool_pool_stats	 st;
	struct spool__pool_metrics pm;
};

/* error.c */
int		 spool__error(spool *q, int code, const char *fmt, ...)
		     SPOOL_PRINTF(3, 4);
int		 spool__error_prefix(spool *q, int code, const char *prefix);
void		 spool__error_mine(const spool *q, int code, const char *msg);
int		 spool__state_parse(const char *name);
int		 spool__attempt_outcome_parse(const char *name);
int		 spool__dead_reason_parse(const char *name);
void		 spool__clear_error(spool *q);
int		 spool__unusable(const spool *q);
/* The entry of a call on q: an unusable handle (NULL, or its open failed)
 * returns its code; else q's last error is cleared. */
#define SPOOL__CHECK_HANDLE(q) do {					\
	if ((q) == NULL || (q)->db == NULL)				\
		return (spool__unusable(q));				\
	spool__clear_error(q);						\
} while (0)

/* hist.c */
void		 spool__hist_init(spool_histogram *h);
void		 spool__hist_add(spool_histogram *h, int64_t ms);

/* pool-metrics.c */
void		 spool__rate_add(struct spool__rate *r, int64_t now_ms, int ok);
void		 spool__pool_observe(spool_pool *p, int kind, int64_t wait_ms,
		     int64_t run_ms, int64_t now_ms);
void		 spool__pool_say(spool_pool *p, const char *line);
void		 spool__pool_log(spool_pool *p);

/* util.c */
void		*spool__memdup(const void *p, size_t len);
char		*spool__strdup(const char *s);
int		 spool__strdup_opt(char **out, const char *s);
void		*spool__push(void *v, size_t *len, size_t *cap, size_t size);
void		*spool__grow(void *v, size_t *cap, size_t len, size_t size);
int		 spool__check_name(spool *q, const char *what, const char *name,
		     size_t max);
int		 spool__check_version(spool *q, const char *type,
		     unsigned version, unsigned known);
#define SPOOL__VERSION_UNKNOWN	"%s: unknown version %u (spool " \
	SPOOL_VERSION " knows versions up to %u)"
#define SPOOL__LIST_DEFAULT	100	/* rows of a list page, limit 0 */
#define SPOOL__LIST_MAX		10000	/* rows of a list page at most */
int		 spool__list_begin(spool *q, int out_null, size_t *n,
		     const char *type, unsigned version, unsigned known,
		     size_t limit, size_t *limit_out);
int		 spool__split_words(spool *q, const char *s, char ***argv_out,
		     size_t *argc_out);
void		 spool__words_free(char **argv);
int64_t		 spool__clock_ns(clockid_t clock);
int64_t		 spool__clock_us(clockid_t clock);
int64_t		 spool__clock_ms(clockid_t clock);
struct timespec	 spool__clock_after_ms(clockid_t clock, int64_t ms);
struct timespec	 spool__clock_after_us(clockid_t clock, int64_t us);
void		 spool__sleep_us(int64_t us);

/* inspect.c and actions.c */
int		 spool__task_state(spool *q, int64_t id, int *state);
int		 spool__ready_count(spool *q, const char *queue, int64_t *n);

/* counters.c */
void		 spool__count(spool *q, const char *queue, int which, int64_t n);
void		 spool__counters_reset(spool *q);
int		 spool__counters_write_locked(spool *q);
int		 spool__counters_save(spool *q, struct spool__ctr **copy,
		     size_t *n);
void		 spool__counters_restore(spool *q, struct spool__ctr *copy,
		     size_t n);

/* store.c */
int64_t		 spool__now_ms(spool *q);
void		 spool__set_clock(spool *q, spool__clock_fn fn, void *arg);
int		 spool__store_error(spool *q, int rc, const char *what);
int64_t		 spool__stall_cutoff(const spool *q, int64_t now_ms);

/* crash.c: the failure tests' crash points (SPOOL_TEST_CRASH). */
#define SPOOL__CRASH_EXIT	86
void		 spool__crash(const char *point);
int		 spool__begin(spool *q);
int		 spool__commit(spool *q);
int		 spool__quiet(spool *q, int *quiet);

/* A step every write transaction runs before its COMMIT. */
struct spool__precommit {
	const char	*name;
	int		(*run)(spool *q);
};

/*
 * What the features do at a transaction's edges: reset at BEGIN and after
 * a rollback, then each precommit step, in order (the list ends with a
 * NULL run), before COMMIT.  Given to the store when a handle is opened
 * (open.c, from precommit.c), so that the store, the bottom layer, calls
 * none of the features by name.
 */
struct spool__txn_hooks {
	void				(*reset)(spool *q);
	const struct spool__precommit	*precommit;
};
extern const struct spool__txn_hooks spool__txn_hooks;
int		 spool__store_open(spool **out, const char *path, int flags,
		    const struct spool__txn_hooks *hooks);
int64_t		 spool__changes(spool *q);
int64_t		 spool__last_id(spool *q);
void		 spool__random(void *buf, size_t len);

/* The multi-row task inserts (store-rows.c): at most SPOOL__ROWS_MAX
 * rows a statement.  0 in batch_id and deadline_ms stores NULL. */
#define SPOOL__ROWS_MAX	256
struct spool__rows_shared {
	const char	*queue;
	int64_t		 created_ms;
	int64_t		 batch_id;
	/* With same, every row's: */
	int64_t		 priority, run_at_ms, deadline_ms, max_attempts;
};
struct spool__rows_row {
	int64_t		 priority, run_at_ms, deadline_ms, max_attempts;
	const void	*payload;
	size_t		 len;
};
size_t		 spool__rows_max(spool *q, int same);
int		 spool__rows_insert(spool *q, int same,
		    const struct spool__rows_shared *s,
		    const struct spool__rows_row *r, size_t n);
void		 spool__cur_open(struct spool__cur *c, spool *q, void *st,
		    const char *what);
int		 spool__cur_step(struct spool__cur *c);
void		 spool__cur_end(struct spool__cur *c);
int		 spool__begin_read(spool *q);
int		 spool__savepoint(spool *q, int op);
int		 spool__set_sync(spool *q, int full);
void		 spool__end_read(spool *q);
void		 spool__rollback(spool *q);

/* retry.c: pure functions, no I/O */
int64_t		 spool__backoff_ms(int policy, int64_t base_ms, int64_t cap_ms,
		     double jitter, int attempt, double u);
int		 spool__backoff_parse(const char *name);
const char	*spool__backoff_name(int policy);
double		 spool__random_unit(void);

/* queue.c */
int		 spool__queue_read(spool_queue_opts *conf, spool *q,
		     const char *name);
int		 spool__queue_ensure(spool *q, const char *name, int64_t now_ms);
int		 spool__queue_list_all(spool_queue_info **out, size_t *n,
		     spool *q);

/* enqueue.c */
int		 spool__enqueue_hook_locked(int64_t *id, spool *q,
		     const spool_task *t, int64_t now_ms);
int		 spool__enqueue_check(spool *q, const spool_task *t);
int		 spool__enqueue_each(spool *q, const spool_task *tasks, size_t n,
		     int64_t *ids, int *rcs);

/* producer.c */
spool		*spool__producer_handle(spool_producer *p);

/* batch.c */
int		 spool__batch_check_open(spool *q, int64_t id);
int		 spool__batch_join(spool *q, int64_t id, int64_t n);
int		 spool__batch_settle_locked(spool *q, int64_t now_ms);
int		 spool__settle_hooks_locked(spool *q, int runs, int64_t now_ms);

/* pipeline.c */
int		 spool__on_error_parse(const char *name);
int		 spool__check_pipeline_name(spool *q, const char *what,
		     const char *name);
int		 spool__stage_max_attempts(int on_error, int retries);
int		 spool__pipeline_settle_locked(spool *q, int64_t now_ms);

/* pipeline-pool.c: a pipeline pool's stages, as its dispatcher knows them */
struct spool__stage_def {
	int64_t		 id;		/* pipeline_stages.id */
	char		*name;
	char		*command;
	spool_handler	 fn;
	void		*arg;
	struct spool__stage_def *next;
};
void		 spool__stages_free(struct spool__stages *s);

/* claim.c */
int		 spool__reap_locked(int64_t *n_out, spool *q, int64_t now_ms,
		     int *more);
int		 spool__complete_locked(spool_job *job, const void *result,
		     size_t len, int truncated, int64_t now_ms);
int		 spool__fail_locked(spool_job *job, const char *error, int flags,
		     const char *outcome, int64_t now_ms, int *state_out);
int		 spool__release_locked(spool_job *job, int64_t now_ms,
		     int *cancelled);
int		 spool__started_locked(spool *q, int64_t id, int64_t token,
		     int64_t started_ms);
#define SPOOL__CLAIM_MAX	10000	/* tasks one claim takes at most */
int		 spool__claim_many(spool_job **jobs, size_t *n_out, spool *q,
		     const char *const *queues, size_t nqueues, size_t max,
		     const spool_claim_opts *opts, int started);
int		 spool__claim_locked(spool_job **jobs, size_t *n_out, spool *q,
		     const char *const *queues, size_t nqueues, size_t max,
		     const spool_claim_opts *opts, int started);

/* workers.c */
int		 spool__worker_upsert(spool *q, const char *id, const char *host,
		     long pid, const char *queues_json, int concurrency, int busy,
		     int64_t started_ms, int64_t now_ms);
int		 spool__worker_delete(spool *q, const char *id, int64_t stale_ms);
int		 spool__lock_acquire(spool *q, const char *name, const char *owner,
		     int64_t now_ms, int64_t until_ms);
int		 spool__lock_renew(spool *q, const char *name, const char *owner,
		     int64_t until_ms);
int		 spool__lock_release(spool *q, const char *name,
		     const char *owner);

/* pool.c */
void		 spool__jobq_push(struct spool__jobq *q, spool_job *job);
spool_job	*spool__jobq_pop(struct spool__jobq *q);
int		 spool__jobq_remove(struct spool__jobq *q, spool_job *job);
void		 spool__pool_done_locked(spool_pool *p, spool_job *job);
void		 spool__pool_opts_copy(spool_pool_opts *o,
		    const spool_pool_opts *in);
int		 spool__pool_spawn(spool_pool *p);
void		 spool__pool_error(spool_pool *p, int code, const char *msg);
int		 spool__job_stop_set(spool_job *job, int reason);

/* exec.c: the handlers that run a command per task (spool_exec_*) */
struct spool_exec {
	char		**argv;		/* the command, no shell; NULL: stages only */
	char		**env;		/* NAME=value from the allowlist */
	size_t		 nenv;
	int64_t		 grace_ms;	/* SIGTERM to SIGKILL */
	size_t		 out_max;	/* stdout kept as the result */
	size_t		 err_max;	/* stderr tail kept as the error */
	int		 reap;		/* the process is a child subreaper:
					 * end what commands leave behind */
};

/* engine.c (with engine-claim.c, engine-flush.c, engine-probe.c and
 * engine-int.h): the pool's event loop.  The engine's files and loop.c
 * are the library's only files that know libevent. */
int		 spool__engine_new(spool_pool *p);
int		 spool__engine_run(spool_pool *p);
void		 spool__engine_wake(spool_pool *p);
void		 spool__engine_stop(spool_pool *p, int now);
void		 spool__engine_free(spool_pool *p);

/* loop.c: the buffered producer's small event loop */
#define SPOOL__LOOP_KICK	1
#define SPOOL__LOOP_TIMER	2
struct spool__loop;
struct spool__loop *spool__loop_new(void (*fn)(void *, int), void *arg);
void		 spool__loop_run(struct spool__loop *l);
void		 spool__loop_kick(struct spool__loop *l);
void		 spool__loop_arm(struct spool__loop *l, int64_t ms);
void		 spool__loop_exit(struct spool__loop *l);
void		 spool__loop_free(struct spool__loop *l);

#endif /* SPOOL_INT_H */
