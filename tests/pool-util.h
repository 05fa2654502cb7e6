/*
 * pool-util.h -- what the worker pool tests (t-pool, t-pool-stop,
 * t-pool-engine) share: clocks and waiting, a handle on the real clock
 * with small SQL helpers, the recorder of what a pool reported (struct
 * rec), pools made and run in a thread, and the handlers more than one
 * file uses.
 *
 * The engine runs on the wall clock (the pool opens its own connection),
 * while tu_q runs on the fake clock in 2027: so every task is enqueued
 * through a handle on the real clock (real_open), and tu_q only creates
 * queues (their settings do not depend on the clock).  Callbacks run in
 * the thread that called spool_pool_run, which is not always the test's,
 * and handlers in worker threads: neither calls CUnit, they record what
 * they saw under a lock or in atomics, and the test asserts.
 *
 * Nothing here is file-scope state: each test makes its own recorder
 * (rec_new), passes it as the pool's cb_arg (opts_init does), and passes
 * its handler's state as the handler's arg.
 */
#ifndef POOL_UTIL_H
#define POOL_UTIL_H

#include <pthread.h>
#include <stdint.h>

#include "testutil.h"

#define REC_MAX		2100	/* outcomes and starts recorded per test */
#define GUARD_MS	8000	/* max_time of every pool: a hang fails */

/* ---- Clocks, atomics and waiting ---- */

int64_t		 mono_ms(void);
int64_t		 wall_ms(void);	/* as the engine and the database use it */
void		 sleep_ms(int64_t ms);
int		 load(const int *v);
void		 store(int *v, int x);
int64_t		 load64(const int64_t *v);
void		 store64(int64_t *v, int64_t x);
/* Wait up to ms for *flag to be nonzero; returns its value. */
int		 wait_flag(const int *flag, int64_t ms);

/* ---- The database, on the real clock ---- */

/* A handle on the test database on the wall clock, like the pool's. */
spool		*real_open(void);
/* The integer of the first row of printf-built sql on q: -1 if there is
 * no row, -2 on an error.  No CUnit calls, so any thread may use it. */
int64_t		 q_int(spool *q, const char *fmt, ...) SPOOL_PRINTF(2, 3);
/* The text of the first row, copied into buf ("" if no row or NULL,
 * "?error" on an error). */
const char	*q_text(spool *q, char *buf, size_t len, const char *fmt, ...)
		     SPOOL_PRINTF(4, 5);
/* Enqueue text on queue through q (real clock); returns the id. */
int64_t		 enqueue1(spool *q, const char *queue, const char *text);
/* Enqueue n tasks with payload text; ids may be NULL. */
void		 enqueue_n(spool *q, const char *queue, const char *text,
		     size_t n, int64_t *ids);
/* Create queue with max_attempts, a fixed backoff without jitter and a
 * timeout (0: none), through tu_q. */
void		 make_queue(const char *name, int max_attempts,
		     int64_t backoff_ms, int64_t timeout_ms);

/* ---- What the pool reported ---- */

struct done_rec {
	int64_t		 id;
	int		 kind;
	int		 attempt;
	int		 timed_out;
	int64_t		 at_ms;		/* monotonic */
	char		 queue[16];
	int		 has_error;
	char		 error[160];
};

/* Everything the callbacks (cb_arg) and handlers of one test record,
 * under mu.  Read the arrays without mu only once no pool thread runs. */
struct rec {
	struct rec	*self;		/* a struct rec's own address */
	pthread_mutex_t	 mu;
	spool_pool	*pool;		/* callbacks may stop it */
	int		 stop_after_final;	/* stop after so many ends */
	int		 nfinal;
	void		(*hook)(const spool_outcome *, void *user);
	void		*user;		/* the test's, for hook and on_log */
	size_t		 ndone;
	struct done_rec	 done[REC_MAX];
	size_t		 nstart;
	int64_t		 start_id[REC_MAX];
	char		 start_q[REC_MAX];

	int		 ticks;
	int		 tick_max_workers;
	int64_t		 tick_target;	/* succeeded count that ends the work */
	int64_t		 tick_done_ms;	/* when a tick first saw it */
	int		 tick_min;	/* stop once workers is back to this */
	int64_t		 tick_back_ms;	/* when workers was back at min */
	int		 tick_back_workers;
};

/* A new, empty recorder (CU_FAIL_FATAL if there is no memory). */
struct rec	*rec_new(void);
void		 rec_free(struct rec *r);
/* The recorder a callback was given as arg: it aborts the program if
 * that is not one (a callback given another cb_arg has nowhere to
 * record, so it cannot be counted and left to an assertion). */
struct rec	*rec_of(void *arg);
/* on_done: record the outcome; stop the pool after stop_after_final. */
void		 rec_done(const spool_outcome *o, void *arg);
/* on_tick: the largest pool seen, and (with tick_target) when the work
 * was done and when the pool was back to tick_min threads; stop then. */
void		 rec_tick(const spool_pool_stats *st, void *arg);
/* Handlers: note that job started, in order. */
void		 rec_start(struct rec *r, spool_job *job);
/* How many starts so far (under the lock: while pools run). */
size_t		 rec_nstart(struct rec *r);
/* How many outcomes of kind were reported (any kind: 0). */
int		 count_kind(struct rec *r, int kind);
/* The n-th (0-based) outcome reported for task id, or NULL. */
const struct done_rec *find_done(struct rec *r, int64_t id, int n);
/* Did a handler start task id? */
int		 started(struct rec *r, int64_t id);

/* ---- Pools ---- */

/* Options for a pool over queues that records into r (its cb_arg), with
 * a guard. */
void		 opts_init(spool_pool_opts *o, const char *const *queues,
		     size_t n, struct rec *r);
/* A pool of fn (given arg) on the test database, or NULL (and a
 * failure); the recorder in o->cb_arg, if any, may stop it. */
spool_pool	*pool_make(spool_handler fn, void *arg,
		     const spool_pool_opts *o);

/* A pool run in its own thread. */
struct runner {
	pthread_t	 t;
	spool_pool	*p;
	int		 rc;
	int		 ok;
};

void		 runner_start(struct runner *r, spool_pool *p);
int		 runner_join(struct runner *r);

/* ---- Handlers more than one file uses ---- */

/* h_none: nothing at all; its arg is unused (NULL). */
int		 h_none(spool_job *job, void *arg);

/* h_slow: note the start in rec, count the call, then sleep ms. */
struct slow {
	struct rec	*rec;
	int		 ms;		/* atomic */
	int		 calls;		/* atomic */
};

/* Set s up to record into r and sleep ms. */
void		 slow_init(struct slow *s, struct rec *r, int ms);
int		 h_slow(spool_job *job, void *arg);

/* h_gate: note the start in rec, then wait for open (3 s at most). */
struct gate {
	struct rec	*rec;
	int		 open;		/* atomic */
};

int		 h_gate(spool_job *job, void *arg);
/* n tasks on qs[0], one thread held at the gate g and three tasks
 * claimed ahead of it: the pool, running in run; NULL on failure. */
spool_pool	*gated_pool(spool *q, const char *const *qs, size_t n,
		     int64_t *ids, struct gate *g, struct runner *run);

#endif
