/*
 * spool.h -- the public API of libspool, a durable task queue in one
 * SQLite file.  This is the only installed header: if it is not here, it
 * is not API.
 *
 * Conventions, everywhere below:
 *  - Calls return 0 (SPOOL_OK) or a negative SPOOL_E* code; the detail of
 *    the last failure on a handle is spool_errmsg(q).  A call that
 *    succeeds leaves spool_errcode(q) SPOOL_OK and no message, even if a
 *    step inside it failed on the way.  The library never prints, never
 *    exits and never aborts on bad input.
 *  - Out-parameters come first.  A "**out" result is allocated for the
 *    caller, who frees it with the matching _free call; a returned
 *    "const" pointer is borrowed from the object it came from.
 *  - Inputs are copied; no call keeps a caller's pointer.
 *  - Every _free and _close accepts NULL and does nothing with it.
 *  - Times are int64_t Unix milliseconds (UTC, wall clock), durations are
 *    int64_t milliseconds; both carry _ms in their names.
 *  - A handle (spool, and the jobs claimed through it) is used by one
 *    thread at a time, except for spool_enqueue and spool_enqueue_many,
 *    which any number of threads may call at once (since 0.3).  Different
 *    handles may be used concurrently, in one process or many.
 *  - Option structs start with "unsigned version", only grow at the end,
 *    and come with an _INIT macro: declare them as
 *    "spool_enqueue_opts o = SPOOL_ENQUEUE_OPTS_INIT;".  Passing NULL for
 *    an options pointer means all defaults.  A version of 0, or one newer
 *    than the library knows (a program built against a newer spool.h),
 *    is SPOOL_EINVAL, with a message naming the struct and the version,
 *    and nothing is changed; older versions are accepted.
 *  - List calls (since 0.8) all take out, n, the handle, the parent's id
 *    for a child list, then "const OPTS *opts" (NULL: the defaults), and
 *    page the same way: up to limit rows (0: 100, at most 10000,
 *    SPOOL_EINVAL above) in key order after the key "after" (after_id;
 *    after, a name, for lists kept by name; after_attempt for attempts;
 *    0 or NULL: from the start), or
 *    with descending newest (last) first, below "after" (0 or NULL: from
 *    the end).  Pass the key of a page's last row as "after" for the
 *    next; a page shorter than limit is the last.  *out is NULL when n
 *    is 0.
 *
 * Everything here is "since 0.1" unless a comment says otherwise.
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SPOOL_VERSION		"0.8.0"
#define SPOOL_VERSION_NUMBER	8000	/* major * 1000000 + minor * 1000 + patch */

/*
 * Result codes.  Only expected failures are named; anything else is
 * SPOOL_ERROR with a message.  No SQLite code ever escapes the library.
 */
#define SPOOL_OK	  0	/* success */
#define SPOOL_ERROR	 -1	/* internal or unexpected failure (see spool_errmsg) */
#define SPOOL_ENOMEM	 -2	/* out of memory; nothing was changed */
#define SPOOL_EINVAL	 -3	/* bad argument or misuse; nothing was changed */
#define SPOOL_EEMPTY	 -4	/* nothing to claim */
#define SPOOL_EBUSY	 -5	/* database still locked after the busy timeout */
#define SPOOL_ELEASE	 -6	/* the job's lease was lost: nothing was changed */
#define SPOOL_EEXISTS	 -7	/* already exists (idempotency key, queue name) */
#define SPOOL_ESCHEMA	 -8	/* database schema is newer than this library */
#define SPOOL_ENOTDB	 -9	/* file is not a spool database (or is corrupt) */
#define SPOOL_ENOENT	-10	/* no such database, task or queue */
#define SPOOL_EIO	-11	/* I/O error or disk full; see spool_errmsg */
#define SPOOL_EPERM	-12	/* permission denied or read-only file */
#define SPOOL_ESTATE	-13	/* the task or batch is not in a state this call accepts */
#define SPOOL_EFULL	-14	/* a queue (or a producer's buffer) is at its limit */
#define SPOOL_ETIMEDOUT	-15	/* since 0.8: a wait ended before what it waited for */

/* Limits, checked on input. */
#define SPOOL_PAYLOAD_MAX	(1024 * 1024)	/* bytes of payload or result */
#define SPOOL_NAME_MAX		128		/* bytes of a queue name */
#define SPOOL_KEY_MAX		256		/* bytes of an idempotency key */
#define SPOOL_ERROR_MAX		4096		/* error text beyond this is cut */

typedef struct spool	 spool;		/* an open database */
typedef struct spool_job spool_job;	/* one task held under a lease */

/*
 * Task states.  The first five are what tasks.state stores.  A task
 * stored as 'running' holds a lease, and the reading calls (spool_task_get,
 * spool_list, spool_stats) tell three cases apart (since 0.7): running
 * (its handler started, tasks.started_ms is set, the lease holds),
 * claimed (a worker pool claimed it ahead of a free thread: started_ms is
 * NULL until the handler starts) and expired (the lease ran out and no
 * process has reaped it yet: its worker is gone or stalled).
 */
enum spool_state {
	SPOOL_READY = 1,	/* waiting; due once run_at_ms has passed */
	SPOOL_RUNNING,		/* under a lease, its handler started */
	SPOOL_SUCCEEDED,	/* finished well; a result row exists */
	SPOOL_DEAD,		/* finished badly; dead_reason says why */
	SPOOL_CANCELLED,	/* cancelled before it succeeded */
	SPOOL_CLAIMED,		/* since 0.7: under a lease, not started yet */
	SPOOL_EXPIRED		/* since 0.7: under a lease that ran out */
};

/* Retry delay policies: attempt n waits base, base * n, or base * 2^(n-1). */
enum spool_backoff {
	SPOOL_BACKOFF_FIXED = 1,
	SPOOL_BACKOFF_LINEAR,
	SPOOL_BACKOFF_EXPONENTIAL
};

/* ---- Library and handles ---------------------------------------------- */

/* The library's version string, e.g. "0.8.0". */
const char	*spool_version(void);

/* A static English description of a result code. */
const char	*spool_strerror(int rc);

/* The name of a state ("ready", ...), or NULL if state is not one. */
const char	*spool_state_name(int state);

/* spool_open flags. */
#define SPOOL_OPEN_CREATE	0x01	/* create the file (mode 0600) if missing */
#define SPOOL_OPEN_SYNC_NORMAL	0x02	/* synchronous=NORMAL: see below */

/*
 * Open the spool database at path, creating it (mode 0600, whatever the
 * umask) when flags has SPOOL_OPEN_CREATE, and bring its schema up to date.
 * The file is in WAL mode with synchronous=FULL: a call that changed the
 * database has it on disk when it returns.  SPOOL_OPEN_SYNC_NORMAL trades
 * that for speed: a power cut (not a process crash) may then lose the last
 * transactions acknowledged before it; the file stays consistent.
 *
 * Refused, leaving the file untouched: a missing file without CREATE
 * (SPOOL_ENOENT), a directory, symbolic link, non-SQLite file, another
 * application's SQLite file or a schema that is not spool's own (objects
 * it did not make, but the user's local_* tables, views and indexes; its
 * own changed) (SPOOL_ENOTDB), a schema newer than this
 * library (SPOOL_ESCHEMA).  Several processes may open an old file at
 * once: one migrates, the others wait for it.
 *
 * As with sqlite3_open, *out is set even on failure (except SPOOL_ENOMEM,
 * where it is NULL) so that spool_errmsg can explain; close it.  Any
 * other call on such a handle returns the open's code and leaves its
 * message as it was.
 */
int		 spool_open(spool **out, const char *path, int flags);

/* Close q; NULL is a no-op.  Jobs claimed through q must be freed first. */
void		 spool_close(spool *q);

/* A one-line description of the last failure on q (borrowed), or "no
 * error" if the last call on q succeeded. */
const char	*spool_errmsg(const spool *q);

/* The code of the last call on q that failed, or SPOOL_OK if the last
 * one succeeded (even if a step inside it failed as expected, as the
 * lookup spool_queue_create makes before it creates a queue). */
int		 spool_errcode(const spool *q);

/* How long to wait for another process's lock before SPOOL_EBUSY
 * (default 10000 ms). */
int		 spool_busy_timeout(spool *q, int64_t ms);

/* ---- Queues ------------------------------------------------------------ */

/* Bits of spool_queue_opts.set: which fields a create or set applies. */
#define SPOOL_QUEUE_PAUSED		0x001
#define SPOOL_QUEUE_MAX_DEPTH		0x002
#define SPOOL_QUEUE_PRIORITY		0x004
#define SPOOL_QUEUE_MAX_ATTEMPTS	0x008
#define SPOOL_QUEUE_BACKOFF		0x010	/* backoff policy */
#define SPOOL_QUEUE_BACKOFF_BASE	0x020
#define SPOOL_QUEUE_BACKOFF_CAP		0x040
#define SPOOL_QUEUE_BACKOFF_JITTER	0x080
#define SPOOL_QUEUE_LEASE		0x100
#define SPOOL_QUEUE_TIMEOUT		0x200
#define SPOOL_QUEUE_RETENTION		0x400

/*
 * A queue's configuration.  Defaults, used for fields not in "set":
 * not paused, no depth limit, priority 0, 5 attempts, exponential backoff
 * from 1 s capped at 1 h with 0.2 jitter, 30 s leases, no timeout, and
 * finished tasks kept 7 days.
 */
typedef struct spool_queue_opts {
	unsigned	 version;
	unsigned	 set;		/* SPOOL_QUEUE_* bits */
	int		 paused;	/* 0 or 1: paused queues are never claimed from */
	int64_t		 max_depth;	/* ready tasks allowed; 0 = no limit */
	int		 priority;	/* default task priority; higher runs first */
	int		 max_attempts;	/* default attempts per task, >= 1 */
	int		 backoff;	/* enum spool_backoff */
	int64_t		 backoff_base_ms;
	int64_t		 backoff_cap_ms;	/* no delay exceeds this */
	double		 backoff_jitter;	/* 0..1: delay * (1 - jitter * U[0,1)) */
	int64_t		 lease_ms;	/* default lease of a claim, > 0 */
	int64_t		 timeout_ms;	/* per-task run time limit for workers; 0 = none */
	int64_t		 retention_ms;	/* finished tasks kept this long; 0 = forever */
} spool_queue_opts;

#define SPOOL_QUEUE_OPTS_VERSION 1
#define SPOOL_QUEUE_OPTS_INIT	{ SPOOL_QUEUE_OPTS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0 }

/* A queue as stored: its name, creation time and full configuration. */
typedef struct spool_queue_info {
	char		*name;
	int64_t		 created_ms;
	spool_queue_opts conf;		/* every field valid; set = all bits */
} spool_queue_info;

/* Create queue name with opts (NULL: defaults); SPOOL_EEXISTS if it exists.
 * Queues are also created, with the defaults, by their first enqueue. */
int		 spool_queue_create(spool *q, const char *name,
		     const spool_queue_opts *opts);

/* Change the fields of queue name selected by opts->set; SPOOL_ENOENT if
 * there is no such queue.  Pausing is spool_queue_set with PAUSED. */
int		 spool_queue_set(spool *q, const char *name,
		     const spool_queue_opts *opts);

/* Read queue name into *out (one element); SPOOL_ENOENT if missing. */
int		 spool_queue_get(spool_queue_info **out, spool *q, const char *name);

/* How to page spool_queue_list (since 0.8): by name. */
typedef struct spool_queue_list_opts {
	unsigned	 version;
	const char	*after;		/* keyset: start after this name (NULL = start) */
	size_t		 limit;		/* 0 = 100, at most 10000 */
	int		 descending;	/* last name first, below after (NULL: the last) */
} spool_queue_list_opts;

#define SPOOL_QUEUE_LIST_OPTS_VERSION 1
#define SPOOL_QUEUE_LIST_OPTS_INIT { SPOOL_QUEUE_LIST_OPTS_VERSION, NULL, 0, 0 }

/* One page of queues by name (since 0.8: paged; it read them all). */
int		 spool_queue_list(spool_queue_info **out, size_t *n, spool *q,
		     const spool_queue_list_opts *opts);

/* Free n elements returned by spool_queue_get or spool_queue_list. */
void		 spool_queue_info_free(spool_queue_info *info, size_t n);

/* ---- Enqueue ----------------------------------------------------------- */

#define SPOOL_PRIORITY_DEFAULT	INT32_MIN	/* use the queue's priority */

/* How to enqueue one task.  Zero fields mean "not given". */
typedef struct spool_enqueue_opts {
	unsigned	 version;
	int32_t		 priority;	/* SPOOL_PRIORITY_DEFAULT or any other value */
	int64_t		 delay_ms;	/* due this long after now (>= 0) */
	int64_t		 run_at_ms;	/* due at this time; 0 = now + delay_ms */
	int64_t		 deadline_ms;	/* not started by then: dead ("expired"); 0 = none;
					 * must be after the time it is due */
	int		 max_attempts;	/* 0 = the queue's */
	const char	*key;		/* idempotency key or NULL */
	/* Since 0.3 (version 2): */
	int64_t		 batch_id;	/* join this open batch; 0 = none */
	int64_t		 wait_ms;	/* queue full: wait this long for room
					 * (0: fail at once with SPOOL_EFULL) */
} spool_enqueue_opts;

#define SPOOL_ENQUEUE_OPTS_VERSION 2
#define SPOOL_ENQUEUE_OPTS_INIT	{ SPOOL_ENQUEUE_OPTS_VERSION, SPOOL_PRIORITY_DEFAULT, 0, 0, 0, 0, NULL, 0, 0 }

/*
 * Add one task to queue (created with defaults if new) and return its id
 * once it is committed.  The payload is copied; it may be binary, and text
 * that is valid UTF-8 is stored as TEXT so json_extract() reads it.
 * With opts->key, if an unfinished task of the same queue holds that key,
 * nothing is added: *id_out is that task's id and the result is
 * SPOOL_EEXISTS.  SPOOL_EFULL if the queue is at its depth limit (ready
 * tasks, due or scheduled) and stays so for opts->wait_ms.  With
 * opts->batch_id the task joins that batch in the same transaction
 * (SPOOL_ENOENT if there is no such batch, SPOOL_ESTATE if it is closed);
 * when its key is held (SPOOL_EEXISTS), nothing joins.
 *
 * Unlike every other call, spool_enqueue may be called by several threads
 * at once on one handle (since 0.3).  Their calls share commits: each
 * returns once its own task is on disk, and one sync covers every task
 * that arrived while the previous commit was being written.  Each thread
 * then reads its own failure with spool_errmsg.
 */
int		 spool_enqueue(int64_t *id_out, spool *q, const char *queue,
		     const void *payload, size_t len, const spool_enqueue_opts *opts);

/* One task of a bulk enqueue (all inputs are copied). */
typedef struct spool_task {
	const char		 *queue;
	const void		 *payload;
	size_t			  len;
	const spool_enqueue_opts *opts;	/* NULL: defaults */
} spool_task;

/*
 * Add n tasks in one transaction: all are committed or none is.  ids_out
 * (n elements, may be NULL) receives each task's id; existed_out (n
 * elements, may be NULL) is set to 1 where a key named an existing task,
 * whose id is then in ids_out, and 0 elsewhere.  Returns 0 even when some
 * keys existed.  Against a depth limit it is all or nothing too: when
 * the tasks for a queue do not all fit, none is added (SPOOL_EFULL),
 * after waiting up to the largest wait_ms among the tasks for room.
 * Like spool_enqueue, it may be called by several threads on one handle.
 */
int		 spool_enqueue_many(int64_t *ids_out, int *existed_out, spool *q,
		     const spool_task *tasks, size_t n);

/*
 * A bulk enqueue fed in parts (since 0.8): all of it one transaction, as
 * one spool_enqueue_many of every part would be, without holding every
 * task in memory at once ("spool enqueue --lines" streams its input so).
 * begin takes the write lock (SPOOL_EBUSY after the busy timeout); each
 * add checks and inserts tasks[0..n), their ids into ids (n elements, may
 * be NULL; a key already held gives that task's id), and the first
 * refusal or failure ends what the stream can do: later adds return it
 * again.  end with commit set commits every part, or returns the
 * stream's failure having rolled it all back; with commit 0 it rolls
 * back and returns SPOOL_OK.  end frees s, whatever happened.  Meanwhile
 * the thread makes no other call on q (an enqueue or a second stream
 * there is SPOOL_ESTATE), other threads' enqueues on q wait for the end,
 * and a task's wait_ms is not used (no room can appear while the stream
 * holds the lock).
 */
typedef struct spool_enqueue_stream spool_enqueue_stream;

int		 spool_enqueue_stream_begin(spool_enqueue_stream **out,
		     spool *q);
int		 spool_enqueue_stream_add(spool_enqueue_stream *s,
		     const spool_task *tasks, size_t n, int64_t *ids);
int		 spool_enqueue_stream_end(spool_enqueue_stream *s, int commit);

/* ---- Batches (since 0.3) ------------------------------------------------
 *
 * A batch groups tasks for fan-in.  Tasks join an open batch as they are
 * enqueued (spool_enqueue_opts.batch_id), in the same transaction; closing
 * it says no more will.  Its counters change in the same transaction as
 * each member's state, so they always equal a COUNT(*) over its members:
 *   total = pending + running + succeeded + failed + dead + cancelled
 * (pending: ready, due or not; failed: dead by a permanent failure; dead:
 * dead because its attempts ran out or its deadline passed).
 *
 * When a closed batch has no member left pending or running it is
 * finished, and its completion hook, if it has one, is enqueued in that
 * same transaction, exactly once: a task on hook_queue whose payload is
 * the JSON object
 *   {"batch":ID,"description":...,"total":N,"succeeded":N,"failed":N,
 *    "dead":N,"cancelled":N,"payload":HOOK_PAYLOAD}
 * (HOOK_PAYLOAD embedded as JSON when it is JSON, else as a string; it
 * and the description must fit in SPOOL_PAYLOAD_MAX once escaped).
 * With SPOOL_HOOK_SUCCESS the hook is enqueued only if every member
 * succeeded: if some did not, and are retried later (spool_retry) until
 * they do, it is enqueued then.  A hook task is never subject to its
 * queue's depth limit.  Settling happens in spool's write transactions:
 * a member finished by hand in the sqlite3 shell finishes its batch at
 * the next spool write to the file, from any process.  Members deleted
 * (purge, prune) no longer count.
 */

enum spool_batch_state {
	SPOOL_BATCH_OPEN = 1,	/* tasks may join */
	SPOOL_BATCH_CLOSED,	/* no more members; some pending or running */
	SPOOL_BATCH_FINISHED	/* closed, every member finished */
};

#define SPOOL_HOOK_ALWAYS	0	/* when the batch finishes, however */
#define SPOOL_HOOK_SUCCESS	1	/* only when every member succeeded */

typedef struct spool_batch_opts {
	unsigned	 version;
	const char	*description;	/* NULL or UTF-8 text */
	const char	*hook_queue;	/* NULL: no hook */
	const char	*hook_payload;	/* NULL or UTF-8 text (JSON or not) */
	int		 hook_on;	/* SPOOL_HOOK_* */
} spool_batch_opts;

#define SPOOL_BATCH_OPTS_VERSION 1
#define SPOOL_BATCH_OPTS_INIT	{ SPOOL_BATCH_OPTS_VERSION, NULL, NULL, NULL, SPOOL_HOOK_ALWAYS }

/* A batch as stored.  Absent times are 0; absent strings are NULL. */
typedef struct spool_batch_info {
	int64_t		 id;
	char		*description;
	int		 state;		/* enum spool_batch_state */
	int64_t		 total;
	int64_t		 pending;
	int64_t		 running;
	int64_t		 succeeded;
	int64_t		 failed;
	int64_t		 dead;
	int64_t		 cancelled;
	char		*hook_queue;
	char		*hook_payload;
	int		 hook_on;	/* SPOOL_HOOK_* */
	int64_t		 hook_task_id;	/* 0 until the hook is enqueued */
	int64_t		 created_ms;
	int64_t		 closed_ms;
	int64_t		 finished_ms;
} spool_batch_info;

/* Create an open batch (opts NULL: no description, no hook). */
int		 spool_batch_create(int64_t *id_out, spool *q,
		     const spool_batch_opts *opts);

/* Close batch id: no task may join it any more.  If every member has
 * already finished, it finishes (and its hook is enqueued) now.  Closing
 * a closed or finished batch does nothing and succeeds; SPOOL_ENOENT if
 * there is no such batch. */
int		 spool_batch_close(spool *q, int64_t id);

/* Read batch id into *out (one element); SPOOL_ENOENT if missing. */
int		 spool_batch_get(spool_batch_info **out, spool *q, int64_t id);

/* Wait for batch id to be finished (SPOOL_BATCH_FINISHED: an open batch
 * never is until closed) and read it into *out as spool_batch_get does
 * (since 0.8).  Timeout, codes and *out as for spool_task_wait. */
int		 spool_batch_wait(spool_batch_info **out, spool *q, int64_t id,
		     int64_t timeout_ms);

/* How to page spool_batch_list (since 0.8). */
typedef struct spool_batch_list_opts {
	unsigned	 version;
	int		 state;		/* enum spool_batch_state, 0 = any */
	int64_t		 after_id;	/* keyset: start after this id (0 = start) */
	size_t		 limit;		/* 0 = 100, at most 10000 */
	int		 descending;	/* newest first, below after_id (0: the newest) */
} spool_batch_list_opts;

#define SPOOL_BATCH_LIST_OPTS_VERSION 1
#define SPOOL_BATCH_LIST_OPTS_INIT { SPOOL_BATCH_LIST_OPTS_VERSION, 0, 0, 0, 0 }

/* One page of batches by id (since 0.8 with opts; the arguments were
 * positional). */
int		 spool_batch_list(spool_batch_info **out, size_t *n, spool *q,
		     const spool_batch_list_opts *opts);

/* The name of a batch state ("open", ...), or NULL if state is not one. */
const char	*spool_batch_state_name(int state);

/* Free n elements returned by spool_batch_get or spool_batch_list. */
void		 spool_batch_info_free(spool_batch_info *info, size_t n);

/* ---- Buffered producer (since 0.3) --------------------------------------
 *
 * A producer takes tasks at memory speed and commits them in groups from
 * its own thread: when flush_count tasks are waiting, or flush_interval_ms
 * after the first of them arrived, whichever comes first (a libevent
 * timer).  spool_producer_enqueue returns once the task is *accepted*: it
 * has a ticket, and is not yet on disk.  It is *committed* when
 * spool_producer_committed reaches its ticket, when on_commit reports it,
 * or when spool_producer_flush returns.  A crash (even kill -9) of the
 * process loses the accepted tasks not yet committed, never a committed
 * one; tasks are committed in ticket order.
 *
 * Each task is committed or refused on its own (on_commit's rc): a key
 * held by another task gives SPOOL_EEXISTS with that task's id, a full
 * queue SPOOL_EFULL (a producer never waits for room in a queue: wait_ms
 * is ignored), a closed batch SPOOL_ESTATE.  When the database fails (busy
 * past the timeout, disk full), the group is kept and tried again later,
 * at most every second; spool_producer_flush returns that error.
 *
 * Every call may be made from any thread.
 */

typedef struct spool_producer spool_producer;

typedef struct spool_producer_opts {
	unsigned	 version;
	int		 flush_count;	/* commit once this many wait (256) */
	int64_t		 flush_interval_ms;	/* or this long after the first (10) */
	int		 max_pending;	/* accepted, not committed, at most (10000) */
	int64_t		 block_ms;	/* at max_pending, wait this long for room
					 * (0: fail at once; -1: wait forever) */
	int		 open_flags;	/* for spool_open (SPOOL_OPEN_*) */
	/* Called in the producer's thread once a task is committed (rc
	 * SPOOL_OK, id its id) or refused (rc < 0; for SPOOL_EEXISTS, id is
	 * the task holding the key); also for tasks spool_producer_close had
	 * to give up on (rc the database's error, id 0).  It must not call
	 * the producer. */
	void		(*on_commit)(int64_t ticket, int64_t id, int rc, void *arg);
	void		*cb_arg;
} spool_producer_opts;

#define SPOOL_PRODUCER_OPTS_VERSION 1
#define SPOOL_PRODUCER_OPTS_INIT { SPOOL_PRODUCER_OPTS_VERSION, 0, 0, 0, 0, 0, NULL, NULL }

/* Make a producer on the database at path (opened, and created with
 * SPOOL_OPEN_CREATE in opts->open_flags, by spool_open) and start its
 * thread.  As with spool_open, *out is set even on failure (except
 * SPOOL_ENOMEM) so spool_producer_errmsg can explain; close it. */
int		 spool_producer_new(spool_producer **out, const char *path,
		     const spool_producer_opts *opts);

/* Accept one task (checked now, as spool_enqueue checks it; the inputs
 * are copied) and set *ticket_out (may be NULL) to its ticket: 1, 2, ...
 * SPOOL_EFULL if max_pending tasks are accepted and not committed and no
 * room came within block_ms. */
int		 spool_producer_enqueue(int64_t *ticket_out, spool_producer *p,
		     const char *queue, const void *payload, size_t len,
		     const spool_enqueue_opts *opts);

/* The highest ticket up to which every task is committed or refused. */
int64_t		 spool_producer_committed(spool_producer *p);

/* Commit every task accepted before this call now, and return once they
 * are committed (or refused): SPOOL_OK, or the database's error if a
 * commit failed meanwhile (the tasks are kept and tried again). */
int		 spool_producer_flush(spool_producer *p);

/* Flush, stop the thread and free p; NULL is a no-op.  If the last
 * flush failed, the tasks not committed are reported to on_commit and
 * the error is returned. */
int		 spool_producer_close(spool_producer *p);

/* The calling thread's last failure on p (borrowed), or "no error" if
 * its last call on p succeeded. */
const char	*spool_producer_errmsg(const spool_producer *p);

/* The code of that failure, or SPOOL_OK (since 0.8); SPOOL_ENOMEM for a
 * NULL p, as spool_producer_new leaves it when out of memory. */
int		 spool_producer_errcode(const spool_producer *p);

/* ---- Claim and the lease life cycle ------------------------------------ */

typedef struct spool_claim_opts {
	unsigned	 version;
	const char	*owner;		/* lease owner label; NULL = "host:pid" */
	int64_t		 lease_ms;	/* 0 = each queue's lease */
} spool_claim_opts;

#define SPOOL_CLAIM_OPTS_VERSION 1
#define SPOOL_CLAIM_OPTS_INIT	{ SPOOL_CLAIM_OPTS_VERSION, NULL, 0 }

/*
 * Claim up to max due tasks from the named queues in one transaction:
 * highest priority first, then the earliest due, then the oldest.  Paused
 * queues are skipped; a task whose deadline has passed is never claimed
 * (it becomes dead, reason "expired").  Each claimed task is "running"
 * under a fresh lease token and its attempt count went up by one.
 * jobs must have room for max pointers; *n_out says how many were filled.
 * Limits (else SPOOL_EINVAL): 1 to 64 queues, max from 1 to 10000.
 * Returns SPOOL_EEMPTY (with *n_out 0) when nothing is due.  The first
 * claim on a handle, and one at most every second after it (in a pool,
 * the engine's reap timer does it instead), first reaps expired leases
 * (see spool_reap).
 */
int		 spool_claim_many(spool_job **jobs, size_t *n_out, spool *q,
		     const char *const *queues, size_t nqueues, size_t max,
		     const spool_claim_opts *opts);

/* Claim one task from one queue: spool_claim_many with max 1. */
int		 spool_claim(spool_job **out, spool *q, const char *queue,
		     const spool_claim_opts *opts);

/* Getters: they cannot fail.  Borrowed pointers live as long as the job. */
int64_t		 spool_job_id(const spool_job *job);
const char	*spool_job_queue(const spool_job *job);
const void	*spool_job_payload(const spool_job *job, size_t *len);
int		 spool_job_attempt(const spool_job *job);	/* 1 on the first */
int		 spool_job_max_attempts(const spool_job *job);
int64_t		 spool_job_lease_until_ms(const spool_job *job);
/* 1 if cancellation was asked for, as of the claim or last heartbeat. */
int		 spool_job_cancel_requested(const spool_job *job);

/*
 * The fenced calls.  Each changes only the task row whose id and lease
 * token match the job's, in state running; if the lease was lost (reaped
 * and perhaps claimed again, cancelled and finished, deleted) it changes
 * nothing and returns SPOOL_ELEASE.  After a call that succeeded other
 * than a heartbeat, the job is finished and only spool_job_free applies
 * (further calls return SPOOL_EINVAL).
 */

/* Extend the lease to now + lease_ms (0: the claim's lease length), and
 * refresh spool_job_cancel_requested.  For a pool's job it touches no
 * database (the engine renews every lease): SPOOL_OK while the lease
 * holds, SPOOL_ELEASE once it was lost. */
int		 spool_job_heartbeat(spool_job *job, int64_t lease_ms);

/* The task succeeded; result (len <= SPOOL_PAYLOAD_MAX, may be NULL) is
 * stored in the results table. */
int		 spool_job_complete(spool_job *job, const void *result, size_t len);

#define SPOOL_FAIL_PERMANENT	0x01	/* do not retry: dead at once */

/* The attempt failed with error (may be NULL; cut at SPOOL_ERROR_MAX).
 * The task is retried after the queue's backoff while attempts remain,
 * else it is dead ("exhausted"); with SPOOL_FAIL_PERMANENT it is dead at
 * once ("failed").  A task whose cancellation was asked for is cancelled. */
int		 spool_job_fail(spool_job *job, const char *error, int flags);

/* Hand the task back unstarted: ready again, no attempt charged. */
int		 spool_job_release(spool_job *job);

/* Free a job (finished or not: an unfinished job's lease simply expires). */
void		 spool_job_free(spool_job *job);

/*
 * Return expired leases: each task whose lease ended is retried by its
 * queue's backoff, or is dead ("exhausted") when its attempts are used up,
 * or cancelled if that was asked for; the lost attempt is recorded as
 * "lease_lost".  Ready tasks past their deadline become dead ("expired").
 * *n_out (may be NULL) counts the tasks changed.
 */
int		 spool_reap(int64_t *n_out, spool *q);

/* ---- Inspection -------------------------------------------------------- */

/*
 * Why a dead task (SPOOL_DEAD) is dead: tasks.dead_reason, by number
 * (since 0.8; before, it was a string).  0 means the task is not dead.
 * SPOOL_DEAD_EXPIRED, a deadline passed, is not SPOOL_EXPIRED, a lease
 * that ran out.
 */
enum spool_dead_reason {
	SPOOL_DEAD_FAILED = 1,	/* "failed": a permanent failure */
	SPOOL_DEAD_EXHAUSTED,	/* "exhausted": its attempts were used up */
	SPOOL_DEAD_EXPIRED	/* "expired": its deadline passed before it ran */
};

/* The name of a dead reason, as tasks.dead_reason stores it ("failed",
 * "exhausted", "expired"), or NULL if reason is not one, 0 included
 * (since 0.8). */
const char	*spool_dead_reason_name(int reason);

/* A task as stored.  Absent times are 0; absent strings are NULL. */
typedef struct spool_task_info {
	int64_t		 id;
	char		*queue;
	int		 state;		/* enum spool_state */
	int		 priority;
	void		*payload;
	size_t		 payload_len;
	int64_t		 run_at_ms;
	int64_t		 deadline_ms;
	int		 attempts;
	int		 max_attempts;
	char		*key;
	char		*lease_owner;
	int64_t		 lease_until_ms;
	int		 cancel_requested;
	int64_t		 created_ms;
	int64_t		 started_ms;
	int64_t		 finished_ms;
	char		*last_error;
	int		 dead_reason;	/* enum spool_dead_reason, 0 unless dead
					 * (since 0.8: it was a string) */
	int		 has_result;	/* spool_task_get only: 1 if a result row exists */
	void		*result;
	size_t		 result_len;
	int64_t		 duration_ms;	/* of the succeeded attempt */
	int64_t		 batch_id;	/* since 0.3: 0 if in no batch */
} spool_task_info;

/* Read task id (with its result) into *out; SPOOL_ENOENT if missing.
 * Since 0.8; it was spool_get, renamed to match the other _get calls. */
int		 spool_task_get(spool_task_info **out, spool *q, int64_t id);

/*
 * Wait for task id to be final (succeeded, dead or cancelled) and read it
 * into *out as spool_task_get does (since 0.8).  timeout_ms < 0 waits as long
 * as it takes, 0 looks once.  The calling thread sleeps between reads
 * (10 ms doubling to 500 ms; a read is skipped while no other connection
 * has committed), so the task is finished by another handle, thread or
 * process.  SPOOL_ENOENT if there is no such task (or it is deleted
 * meanwhile); SPOOL_ETIMEDOUT if it is not final after timeout_ms: then
 * *out is the task as last read, for the caller to report and free (on
 * any other failure *out is NULL).  SPOOL_EINVAL for a NULL out or an id
 * below 1.
 */
int		 spool_task_wait(spool_task_info **out, spool *q, int64_t id,
		     int64_t timeout_ms);

typedef struct spool_list_opts {
	unsigned	 version;
	const char	*queue;		/* NULL = every queue */
	int		 state;		/* enum spool_state, 0 = any */
	int64_t		 after_id;	/* keyset: start after this id (0 = start) */
	size_t		 limit;		/* 0 = 100, at most 10000 */
	int		 descending;	/* newest first, below after_id (0: the newest) */
	int64_t		 batch_id;	/* version 2 (0.8): of this batch, 0 = any */
} spool_list_opts;

#define SPOOL_LIST_OPTS_VERSION	2
#define SPOOL_LIST_OPTS_INIT	{ SPOOL_LIST_OPTS_VERSION, NULL, 0, 0, 0, 0, 0 }

/* One page of tasks (results not loaded) by id; pass the last id seen as
 * after_id for the next page. */
int		 spool_list(spool_task_info **out, size_t *n, spool *q,
		     const spool_list_opts *opts);

/* Free n elements returned by spool_task_get or spool_list. */
void		 spool_task_info_free(spool_task_info *info, size_t n);

/*
 * What became of one attempt, as its history records it (since 0.8;
 * before, the outcome was a string).  The first five are what
 * attempts.outcome stores; RUNNING is for an attempt still under way,
 * which only spool_item_history reports.  0 is never an outcome.  Not to
 * be confused with enum spool_outcome_kind (SPOOL_OUTCOME_*), which says
 * what became of a task once a pool's handler returned.
 */
enum spool_attempt_outcome {
	SPOOL_ATTEMPT_SUCCEEDED = 1,	/* "succeeded" */
	SPOOL_ATTEMPT_FAILED,		/* "failed": SPOOL_RETRY, SPOOL_FAIL */
	SPOOL_ATTEMPT_TIMED_OUT,	/* "timed_out": past its timeout */
	SPOOL_ATTEMPT_LEASE_LOST,	/* "lease_lost": its lease expired */
	SPOOL_ATTEMPT_CANCELLED,	/* "cancelled": stopped by a cancel */
	SPOOL_ATTEMPT_RUNNING		/* "running": under way (stage attempts) */
};

/* The name of an attempt outcome, as attempts.outcome stores it
 * ("succeeded", ..., and "running"), or NULL if outcome is not one
 * (since 0.8). */
const char	*spool_attempt_outcome_name(int outcome);

/* One finished attempt of a task. */
typedef struct spool_attempt_info {
	int		 attempt;
	char		*worker;
	int64_t		 started_ms;
	int64_t		 finished_ms;
	int		 outcome;	/* enum spool_attempt_outcome (since 0.8:
					 * it was a string), never RUNNING */
	char		*error;
} spool_attempt_info;

/* How to page spool_attempts (since 0.8): by attempt number, which
 * identifies an attempt within its task. */
typedef struct spool_attempt_list_opts {
	unsigned	 version;
	int		 after_attempt;	/* keyset: start after this attempt (0 = start) */
	size_t		 limit;		/* 0 = 100, at most 10000 */
	int		 descending;	/* latest first, below after_attempt (0: the latest) */
} spool_attempt_list_opts;

#define SPOOL_ATTEMPT_LIST_OPTS_VERSION 1
#define SPOOL_ATTEMPT_LIST_OPTS_INIT { SPOOL_ATTEMPT_LIST_OPTS_VERSION, 0, 0, 0 }

/* One page of the finished attempts of task id, by attempt number (n may
 * be 0).  SPOOL_ENOENT if there is no such task (since 0.8: it read an
 * empty history). */
int		 spool_attempts(spool_attempt_info **out, size_t *n, spool *q,
		     int64_t id, const spool_attempt_list_opts *opts);
void		 spool_attempt_info_free(spool_attempt_info *info, size_t n);

/* Counts for one queue. */
typedef struct spool_queue_stats {
	char		*queue;
	int		 paused;
	int64_t		 ready;		/* due now */
	int64_t		 scheduled;	/* ready but due later */
	int64_t		 running;	/* started, under a live lease */
	int64_t		 succeeded;
	int64_t		 dead;
	int64_t		 cancelled;
	int64_t		 oldest_ready_age_ms;	/* age of the longest-due task; -1 if none */
	int64_t		 claimed;	/* since 0.7: leased, not started yet */
	int64_t		 expired;	/* since 0.7: lease ran out, not reaped */
} spool_queue_stats;

/* Stats of one queue (SPOOL_ENOENT if missing) or, with queue NULL, of
 * every queue by name. */
int		 spool_stats(spool_queue_stats **out, size_t *n, spool *q,
		     const char *queue);
void		 spool_queue_stats_free(spool_queue_stats *stats, size_t n);

/* Counters of one queue since it was first used (since 0.5).  They only
 * grow, are kept in the database (table queue_counters), and add up the
 * work of every process: fit for Prometheus counters.  On a file made
 * before 0.5 they start from what its tables still showed. */
typedef struct spool_queue_counters {
	int64_t		 enqueued;	/* tasks added (hooks, pipeline stages too) */
	int64_t		 claimed;	/* attempts started */
	int64_t		 succeeded;	/* attempts that succeeded */
	int64_t		 failed;	/* attempts that failed or timed out */
	int64_t		 retried;	/* tasks made ready again by their policy */
	int64_t		 dead;		/* tasks that died (for any reason) */
	int64_t		 expired;	/* of those, past their deadline */
	int64_t		 lease_lost;	/* attempts whose lease expired */
	int64_t		 cancelled;	/* tasks cancelled */
} spool_queue_counters;

/* Since 0.5, as are spool_metrics and spool_workers below. */
#define SPOOL_METRICS_WINDOW_MS	60000	/* "the last minute" */
#define SPOOL_WORKER_STALE_MS	10000	/* a worker row older is not live */

/* What spool_metrics reports of one queue (since 0.5). */
typedef struct spool_queue_metrics {
	spool_queue_stats	 stats;		/* tasks per state now */
	spool_queue_counters	 total;		/* since the queue was first used */
	int64_t		 succeeded_1m;	/* tasks that succeeded in the last minute */
	int64_t		 dead_1m;	/* tasks that died in the last minute */
	/* Of the tasks that succeeded in the last minute (the latest
	 * 10,000 at most): run time (start to end of the attempt that
	 * succeeded) and wait (due to start), p50, p95, p99 by nearest
	 * rank; -1 when there were none. */
	int64_t		 run_ms[3];
	int64_t		 wait_ms[3];
	int		 workers;	/* live worker processes serving it */
	int		 concurrency;	/* their threads, in all */
	int		 busy;		/* of those, busy (on any of their queues) */
} spool_queue_metrics;

/* Metrics of one queue (SPOOL_ENOENT if missing) or, with queue NULL, of
 * every queue by name (since 0.5).  The task counts are one snapshot,
 * the rest a second one taken just after. */
int		 spool_metrics(spool_queue_metrics **out, size_t *n, spool *q,
		     const char *queue);
void		 spool_queue_metrics_free(spool_queue_metrics *m, size_t n);

/* A worker process, from the workers table (since 0.5). */
typedef struct spool_worker_info {
	char		*id;		/* its lease owner name: host:pid:random */
	char		*host;
	long		 pid;
	char		**queues;	/* the names of the queues it works
					 * (since 0.8: it was their JSON array) */
	size_t		 nqueues;	/* since 0.8: elements of queues */
	int		 concurrency;
	int		 busy;
	int64_t		 started_ms;
	int64_t		 heartbeat_ms;
	int		 stale;		/* no heartbeat for SPOOL_WORKER_STALE_MS */
} spool_worker_info;

/* How to page spool_workers (since 0.8): by worker id. */
typedef struct spool_worker_list_opts {
	unsigned	 version;
	const char	*after;		/* keyset: start after this id (NULL = start) */
	size_t		 limit;		/* 0 = 100, at most 10000 */
	int		 descending;	/* last id first, below after (NULL: the last) */
} spool_worker_list_opts;

#define SPOOL_WORKER_LIST_OPTS_VERSION 1
#define SPOOL_WORKER_LIST_OPTS_INIT { SPOOL_WORKER_LIST_OPTS_VERSION, NULL, 0, 0 }

/* One page of the worker processes that have a row, live or stale, by
 * id (since 0.5; since 0.8 paged by id: before it read every row, oldest
 * first).  A row goes when its process stops, or 5 minutes after it
 * died. */
int		 spool_workers(spool_worker_info **out, size_t *n, spool *q,
		     const spool_worker_list_opts *opts);
void		 spool_worker_info_free(spool_worker_info *w, size_t n);

/* ---- Operator actions -------------------------------------------------- */

/* Cancel task id: a ready task is cancelled at once (*running_out 0); a
 * running one is flagged for its worker (*running_out 1).  running_out
 * may be NULL.  SPOOL_ESTATE if it has finished, SPOOL_ENOENT if missing. */
int		 spool_cancel(int *running_out, spool *q, int64_t id);

/* Make a dead or cancelled task ready again, due now, with a fresh set
 * of attempts: its max_attempts grows by its allowance, so the attempt
 * numbers in its history keep counting up; its deadline is dropped.
 * SPOOL_ESTATE if it is in another state; SPOOL_EEXISTS if its key is now
 * held by another unfinished task. */
int		 spool_retry(spool *q, int64_t id);

/* Retry every task of queue in state (SPOOL_DEAD or SPOOL_CANCELLED), in
 * small transactions; tasks whose key is taken are skipped.  SPOOL_ENOENT
 * if there is no such queue. */
int		 spool_retry_all(int64_t *n_out, spool *q, const char *queue,
		     int state);

/* Delete the ready tasks (due and scheduled) of queue, in small
 * transactions; running and finished tasks stay.  With dry_run, only
 * count them.  SPOOL_ENOENT if there is no such queue. */
int		 spool_purge(int64_t *n_out, spool *q, const char *queue, int dry_run);

/* Delete finished tasks (with their results and history) that finished
 * more than older_than_ms ago, or, with older_than_ms < 0, longer ago than
 * their queue's retention (queues with retention 0 are skipped).  Works in
 * small transactions so it never holds the lock for long.  queue NULL
 * means every queue. */
int		 spool_prune(int64_t *n_out, spool *q, const char *queue,
		     int64_t older_than_ms);

/* ---- Worker pools (since 0.2) ------------------------------------------
 *
 * A pool runs a handler for each task of some queues, in threads, while
 * one event loop (the engine) owns the database connection: it claims
 * tasks in batches for idle workers, commits their outcomes in groups,
 * renews the leases of running tasks, reaps expired leases of dead
 * workers, and keeps a row in the workers table.  Handlers never touch
 * the database: they read the job, set a result or an error, and return.
 */

typedef struct spool_pool spool_pool;

/* What a handler returns. */
#define SPOOL_DONE	0	/* the task succeeded (result: spool_job_set_result) */
#define SPOOL_RETRY	1	/* the attempt failed: retry by the queue's backoff */
#define SPOOL_FAIL	2	/* the task failed for good: dead ("failed") */

/* A handler runs in a worker thread, one job at a time, and may call only
 * the spool_job_* getters and the three calls below on its job.  A C
 * handler cannot be killed: if it overruns its timeout, the task is
 * failed as timed out and retried elsewhere while the thread finishes. */
typedef int (*spool_handler)(spool_job *job, void *arg);

/* Keep a copy of result as the task's result (replacing one set before).
 * SPOOL_EINVAL for a job claimed with spool_claim (spool_errmsg of its
 * handle says to use spool_job_complete): only a pool's jobs take it. */
int		 spool_job_set_result(spool_job *job, const void *result,
		     size_t len);

/* Keep a copy of error as the attempt's error text.  SPOOL_EINVAL, as
 * above, for a job not a pool's (use spool_job_fail). */
int		 spool_job_set_error(spool_job *job, const char *error);

/* Why the handler should stop now, or 0 to go on: its task was
 * cancelled, its lease was lost, it ran past its timeout, or the pool is
 * shutting down.  Safe to call often. */
#define SPOOL_STOP_CANCELLED	1
#define SPOOL_STOP_LEASE_LOST	2
#define SPOOL_STOP_TIMEOUT	3
#define SPOOL_STOP_SHUTDOWN	4
int		 spool_job_should_stop(const spool_job *job);

/* When the job's run time limit ends (Unix ms), or 0 for none. */
int64_t		 spool_job_deadline_ms(const spool_job *job);

/* What became of one task, as reported to spool_pool_opts.on_done once
 * the outcome is committed.  Not to be confused with enum
 * spool_attempt_outcome (SPOOL_ATTEMPT_*), the outcome of one attempt as
 * the attempts table records it. */
enum spool_outcome_kind {
	SPOOL_OUTCOME_SUCCEEDED = 1,
	SPOOL_OUTCOME_RETRYING,		/* failed; ready again after backoff */
	SPOOL_OUTCOME_DEAD,		/* failed; no attempts left, or permanent */
	SPOOL_OUTCOME_CANCELLED,	/* failed after cancellation was asked */
	SPOOL_OUTCOME_LEASE_LOST,	/* the outcome was refused: another took it */
	SPOOL_OUTCOME_RELEASED		/* handed back unstarted at shutdown */
};

typedef struct spool_outcome {
	int64_t		 id;
	const char	*queue;
	int		 attempt;
	int		 kind;		/* enum spool_outcome_kind */
	int		 timed_out;	/* the attempt ran past its timeout */
	int64_t		 wait_ms;	/* from due to handler start */
	int64_t		 run_ms;	/* handler start to end */
	const char	*error;		/* NULL on success */
} spool_outcome;

/* Counters of a pool since it started, and its current shape. */
typedef struct spool_pool_stats {
	int64_t		 claimed;
	int64_t		 succeeded;
	int64_t		 retried;	/* attempts failed, task to be retried */
	int64_t		 dead;
	int64_t		 cancelled;
	int64_t		 lease_lost;
	int64_t		 timed_out;
	int64_t		 released;
	int		 workers;	/* threads now */
	int		 busy;		/* running a handler */
	int		 prefetched;	/* claimed, waiting for a thread */
	int		 shedding;	/* 1 while claims pause for CPU load */
	double		 cpu;		/* machine CPU use, 0..1 (last tick) */
	/* since 0.7: */
	int64_t		 left;		/* tasks still under lease when the run
					 * ended (a quit leaves them to expire) */
	int		 quit;		/* the signal that made the run quit at
					 * once (a second SIGINT or SIGTERM), -1
					 * for spool_pool_stop(p, 1), else 0 */
	int		 holding;	/* 1 while outcomes cannot be committed
					 * (disk full, I/O errors, a lock held
					 * past the busy timeout): no task starts */
	int64_t		 held;		/* finished, their outcomes not yet
					 * committed */
} spool_pool_stats;

/* How a pool serving several queues shares its claims among them. */
#define SPOOL_STRATEGY_MERGE		0	/* by task priority, then due time */
#define SPOOL_STRATEGY_PRIORITY		1	/* queues in order: the first until empty */
#define SPOOL_STRATEGY_WEIGHTED		2	/* in proportion to weights[] */
#define SPOOL_STRATEGY_ROUND_ROBIN	3	/* equal shares, rotating */

/* spool_pool_opts.flags */
#define SPOOL_POOL_SIGNALS	0x01	/* SIGINT/SIGTERM drain; a second one quits */
#define SPOOL_POOL_UNTIL_EMPTY	0x02	/* stop when nothing is due or running */

typedef struct spool_pool_opts {
	unsigned	 version;
	int		 flags;		/* SPOOL_POOL_* */
	const char *const *queues;	/* the queues to work (copied) */
	size_t		 nqueues;
	int		 strategy;	/* SPOOL_STRATEGY_* */
	const int	*weights;	/* WEIGHTED: one per queue, > 0 */
	int		 min_workers;	/* threads kept (default 1) */
	int		 max_workers;	/* threads at most (default 4) */
	int64_t		 idle_timeout_ms;	/* an idle extra thread exits (30 s) */
	int		 prefetch;	/* tasks claimed ahead of idle threads (max_workers) */
	int64_t		 lease_ms;	/* 0: each queue's lease */
	int64_t		 timeout_ms;	/* per task; 0: each queue's timeout */
	int64_t		 shutdown_timeout_ms;	/* drain time on stop (30 s) */
	int64_t		 flush_interval_ms;	/* group commit every (2 ms) */
	int		 flush_count;	/* or every this many outcomes (256) */
	int64_t		 max_time_ms;	/* stop claiming after this long; 0: never */
	int64_t		 max_tasks;	/* stop claiming after this many; 0: never */
	double		 cpu_max;	/* pause claims above this CPU use, 0..1; 0: off */
	const char	*exclusive;	/* lock name: one pool at a time holds it */
	int		 open_flags;	/* for spool_open (SPOOL_OPEN_*, CREATE
					 * too: else a missing file is
					 * SPOOL_ENOENT) */
	void		(*on_done)(const spool_outcome *outcome, void *arg);
	void		(*on_tick)(const spool_pool_stats *stats, void *arg);
	int64_t		 tick_ms;	/* on_tick and housekeeping every (1000) */
	void		*cb_arg;	/* for on_done, on_tick and on_log */
	/* version 2 (since 0.6): */
	int64_t		 log_interval_ms;	/* a summary line every; 0: none */
	void		(*on_log)(const char *line, void *arg);	/* NULL: stderr */
} spool_pool_opts;

#define SPOOL_POOL_OPTS_VERSION	2
#define SPOOL_POOL_OPTS_INIT	{ SPOOL_POOL_OPTS_VERSION, 0, NULL, 0, 0, NULL, \
	0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0.0, NULL, 0, NULL, NULL, 0, NULL, \
	0, NULL }

/*
 * Make a pool over the database at path, running fn(job, arg) for each
 * task.  Opens its own connection; with opts->exclusive, takes the named
 * lock or fails with SPOOL_EBUSY.  As with spool_open, *out is set even
 * on failure (except SPOOL_ENOMEM) so spool_pool_errmsg can explain.
 */
int		 spool_pool_new(spool_pool **out, const char *path,
		     spool_handler fn, void *arg, const spool_pool_opts *opts);

/* Run the pool in the calling thread until it stops: spool_pool_stop,
 * a signal (SPOOL_POOL_SIGNALS), max_time, max_tasks, or an empty queue
 * (SPOOL_POOL_UNTIL_EMPTY).  Returns 0, or an error if the database
 * failed in a way the pool could not ride out. */
int		 spool_pool_run(spool_pool *p);

/* Ask the pool to stop: drain (stop claiming, hand back tasks not
 * started, let running ones finish within the shutdown timeout, commit)
 * or, with now, quit at once leaving leases to expire.  Any thread. */
void		 spool_pool_stop(spool_pool *p, int now);

/* Tell the pool new work may be due (after a local enqueue): it claims
 * at once instead of at its next poll.  Any thread. */
void		 spool_pool_wake(spool_pool *p);

/* A snapshot of the pool's counters into *out.  Any thread.  Since 0.8
 * out comes first and the call returns SPOOL_OK, or SPOOL_EINVAL for a
 * NULL out or p (*out then zeroed if given). */
int		 spool_pool_stats_get(spool_pool_stats *out, spool_pool *p);

/* ---- In-process metrics of a pool (since 0.6) ---------------------------
 *
 * The engine keeps, for the attempts its handlers ran (not those handed
 * back or refused), histograms of their wait (due to handler start) and
 * run time, counts per second over the last minute, and samples the
 * process's CPU time and resident memory once a tick.  They live only in
 * the process; spool_metrics reads the figures every process shares from
 * the database.
 */

#define SPOOL_HIST_BUCKETS	16
/* The buckets' upper bounds in ms; the last one is unbounded (+Inf). */
#define SPOOL_HIST_BOUNDS_MS	{ 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, \
	2500, 5000, 10000, 30000, 60000, INT64_MAX }

typedef struct spool_histogram {
	int64_t		 le_ms[SPOOL_HIST_BUCKETS];	/* upper bounds */
	int64_t		 count[SPOOL_HIST_BUCKETS];	/* cumulative: <= le_ms[i] */
	int64_t		 n;		/* observations (= count[last]) */
	int64_t		 sum_ms;
} spool_histogram;

/* An estimate of quantile q (0..1) in ms, interpolated inside its bucket
 * (a value in the unbounded bucket reads as the last bound); 0 if empty. */
double		 spool_histogram_quantile(const spool_histogram *h, double q);

#define SPOOL_RATE_SECONDS	60

typedef struct spool_pool_metrics {
	spool_pool_stats stats;		/* as spool_pool_stats_get */
	int64_t		 started_ms;	/* when the pool was made (Unix ms) */
	int64_t		 now_ms;	/* when this snapshot was taken */
	spool_histogram	 wait;		/* due to handler start */
	spool_histogram	 run;		/* handler start to end */
	/* Attempts per second, oldest first; the last is the current second. */
	int64_t		 succeeded_s[SPOOL_RATE_SECONDS];
	int64_t		 failed_s[SPOOL_RATE_SECONDS];	/* retried or dead */
	int64_t		 succeeded_1m;	/* the sums of those */
	int64_t		 failed_1m;
	double		 cpu_user_s;	/* the process's CPU time so far */
	double		 cpu_system_s;
	double		 cpu_process;	/* its CPU use over the last tick, in cores */
	int64_t		 rss_bytes;	/* its resident memory (last tick) */
} spool_pool_metrics;

/* A snapshot of the pool's in-process metrics into *out.  Any thread.
 * Since 0.8 out comes first and the call returns SPOOL_OK, or
 * SPOOL_EINVAL for a NULL out or p (*out then zeroed if given). */
int		 spool_pool_metrics_get(spool_pool_metrics *out, spool_pool *p);

/* What spool_prometheus writes (since 0.8). */
typedef struct spool_prometheus_opts {
	unsigned	 version;
	const char	*queue;		/* only this queue's series; NULL = all */
} spool_prometheus_opts;

#define SPOOL_PROMETHEUS_OPTS_VERSION	1
#define SPOOL_PROMETHEUS_OPTS_INIT	{ SPOOL_PROMETHEUS_OPTS_VERSION, NULL }

/*
 * The metrics of the queues of q (spool_metrics) and of pool
 * (spool_pool_metrics_get), either of which may be NULL, in Prometheus's
 * text exposition format, version 0.0.4: what "spool stats --prometheus"
 * prints and a worker's /metrics serves (since 0.8), with '.' decimals
 * whatever LC_NUMERIC the program set.  *out is a string of *len bytes,
 * NUL-terminated, for the caller to free(3).  opts may be
 * NULL for the defaults.  SPOOL_EINVAL for a NULL out or len, both q and
 * pool NULL, or an unknown opts version; SPOOL_ENOENT for a missing
 * opts->queue; else what spool_metrics returns.
 */
int		 spool_prometheus(char **out, size_t *len, spool *q,
		     spool_pool *pool, const spool_prometheus_opts *opts);

/* The last failure of the pool (borrowed), or "no error" if it has had
 * none.  A failure the pool rode out (a lock held past the busy timeout,
 * then released) stays here after spool_pool_run returns 0. */
const char	*spool_pool_errmsg(const spool_pool *p);

/* The code of that failure, or SPOOL_OK (since 0.8); SPOOL_ENOMEM for a
 * NULL p, as spool_pool_new leaves it when out of memory.  Any thread. */
int		 spool_pool_errcode(const spool_pool *p);

/* Free a pool that is not running; waits for handler threads to return. */
void		 spool_pool_free(spool_pool *p);

/* ---- Commands as handlers (since 0.8) -----------------------------------
 *
 * What "spool work --exec" runs: a pool handler that runs a command per
 * task, with no shell.  The payload is the command's stdin; its
 * environment holds SPOOL_TASK_ID, SPOOL_QUEUE and SPOOL_ATTEMPT beside
 * PATH, HOME, USER, LOGNAME, LANG, LC_ALL, LC_CTYPE, LC_MESSAGES, TZ,
 * TMPDIR and the names in opts->env, as the process has them when
 * spool_exec_new is called; only fds 0-2 are open.  Its stdout (up to
 * SPOOL_PAYLOAD_MAX bytes) is the result, the tail of its stderr the
 * error.  Exit 0 is success, 75 "retry later" (SPOOL_RETRY), anything
 * else a failure.  The command leads its own process group; on a timeout,
 * a cancel or a lost lease the group gets SIGTERM, then SIGKILL after
 * grace_ms; at a forced shutdown SIGKILL at once; nothing left in the
 * group outlives the command.
 */
typedef struct spool_exec spool_exec;

typedef struct spool_exec_opts {
	unsigned	 version;
	const char *const *env;		/* more variables to pass, by name */
	size_t		 nenv;
	int64_t		 grace_ms;	/* SIGTERM to SIGKILL; 0 = 5000 */
} spool_exec_opts;

#define SPOOL_EXEC_OPTS_VERSION	1
#define SPOOL_EXEC_OPTS_INIT	{ SPOOL_EXEC_OPTS_VERSION, NULL, 0, 0 }

/* Make *out, the command argv[0..argc) (copied; argv[0] is looked up in
 * PATH as execvp would).  argc may be 0 (argv NULL) for an exec that only
 * runs pipeline stages' commands.  opts may be NULL.  SPOOL_EINVAL for an
 * empty argv[0], a NULL argument, a variable name that is empty or holds
 * '=', a negative grace_ms or an unknown version; SPOOL_ENOMEM. */
int		 spool_exec_new(spool_exec **out, const char *const *argv,
		     size_t argc, const spool_exec_opts *opts);
void		 spool_exec_free(spool_exec *x);

/* The handlers, with an exec as arg: spool_exec_handler runs its command
 * for each task (a task fails if it has none); spool_exec_stage_handler,
 * for a pipeline pool, runs the command of the job's stage as its item's
 * pipeline version defined it, split into words as spool_stage.command
 * says, and fails a stage whose output was cut.  Any number of pools and
 * threads may share one exec; free it after the last pool. */
int		 spool_exec_handler(spool_job *job, void *arg);
int		 spool_exec_stage_handler(spool_job *job, void *arg);

/* Make the calling process a child subreaper (prctl(2)) and have x's
 * handlers end what a command leaves behind even outside its group (a
 * daemon after setsid, a double fork).  A change to the whole process,
 * for a program that is a worker and nothing else ("spool work" calls
 * it): after each of x's commands, every child of the process that is
 * not a running command of some spool_exec gets SIGTERM, then SIGKILL,
 * and is reaped, including a child the program started itself.
 * SPOOL_OK; SPOOL_EINVAL for a NULL x; or SPOOL_ERROR with errno set
 * (ENOENT: the kernel does not list a thread's children in /proc, so
 * nothing would be found). */
int		 spool_exec_subreaper(spool_exec *x);

/* ---- Pipelines (since 0.4) ---------------------------------------------
 *
 * A pipeline is a named, ordered list of stages.  Each stage is a queue
 * (named "PIPELINE/STAGE") with its own concurrency, timeout and error
 * strategy.  A run feeds items into the first stage; when an item's stage
 * succeeds, its result becomes the payload of the item's task in the next
 * stage in the same transaction that records the success, and the last
 * stage's result is the item's result.  So a crash between stages can
 * neither lose an item nor run a committed stage again.
 *
 * Definitions are versioned: defining a pipeline again makes a new
 * version (refused while runs of it are unfinished, unless
 * SPOOL_PIPELINE_FORCE); a run, and every item in it, keeps the version it
 * started with.
 *
 * Errors, per stage (a failure is a handler's SPOOL_RETRY or SPOOL_FAIL,
 * or a timeout; a lost lease is not one: the task is simply run again):
 *  - SPOOL_ON_ERROR_RETRY: retried after retry_delay_ms, up to retries
 *    times; then the item is failed.  SPOOL_FAIL fails it at once.
 *  - SPOOL_ON_ERROR_SKIP: the item is skipped (it leaves the run, which
 *    goes on).
 *  - SPOOL_ON_ERROR_FAIL_FAST: the item fails and the run stops: its
 *    items waiting in any stage are cancelled, and running ones are told
 *    to stop (spool_job_should_stop says SPOOL_STOP_CANCELLED).
 * A stage task may use retries + 1 + SPOOL_STAGE_LEASE_LOSSES attempts
 * in all, so an item whose workers keep dying (each death loses a lease)
 * fails too, once its attempts are used up.
 *
 * A stage queue is for its pipeline's items: a task enqueued there by
 * hand fails at once when a pipeline pool claims it.  A pipeline pool
 * works the stages it found when it was made; restart it after defining
 * a version with new stage names or concurrencies (items of a new
 * version of a stage it knows are run by that version's handler).
 */

#define SPOOL_ON_ERROR_RETRY		0
#define SPOOL_ON_ERROR_SKIP		1
#define SPOOL_ON_ERROR_FAIL_FAST	2

/* The name of an error strategy as a definition file and the views write
 * it ("retry", "skip", "fail_fast"), or NULL if on_error is not one (since
 * 0.8). */
const char	*spool_on_error_name(int on_error);

#define SPOOL_STAGES_MAX		64	/* stages in a pipeline */
#define SPOOL_PIPELINE_NAME_MAX		64	/* bytes of a pipeline or stage name */
#define SPOOL_STAGE_LEASE_LOSSES	5
#define SPOOL_CONCURRENCY_MAX		1024

/* One stage.  Names use letters, digits, '_', '-' and '.'.  Since 0.8 it
 * starts with a version, as the options structs do: declare it as
 * "spool_stage s = SPOOL_STAGE_INIT;" (concurrency 1, the retry strategy
 * with no retries).  spool_pipeline_create refuses a version of 0 or one
 * newer than the library knows with SPOOL_EINVAL. */
typedef struct spool_stage {
	unsigned	 version;	/* SPOOL_STAGE_VERSION (since 0.8) */
	const char	*name;
	int		 concurrency;	/* workers per process, >= 1 */
	int64_t		 timeout_ms;	/* per attempt; 0: the queue's */
	int		 on_error;	/* SPOOL_ON_ERROR_* */
	int		 retries;	/* RETRY: retries after the first failure */
	int64_t		 retry_delay_ms;	/* RETRY: wait before each retry */
	const char	*command;	/* what `spool work --pipeline` runs, split
					 * into words like a shell would (quotes,
					 * backslashes; no expansion); NULL for
					 * C handlers */
} spool_stage;

#define SPOOL_STAGE_VERSION	1
#define SPOOL_STAGE_INIT	{ SPOOL_STAGE_VERSION, NULL, 1, 0, \
	SPOOL_ON_ERROR_RETRY, 0, 0, NULL }

#define SPOOL_PIPELINE_FORCE	0x01	/* redefine or delete with runs unfinished */

/*
 * Define pipeline name (a new version if it exists) with n stages, and
 * create its stage queues.  *version_out (may be NULL) gets the version.
 * SPOOL_ESTATE if runs of it are unfinished and flags lacks
 * SPOOL_PIPELINE_FORCE (those runs finish under their version).
 */
int		 spool_pipeline_create(int *version_out, spool *q,
		     const char *name, const spool_stage *stages, size_t n,
		     int flags);

/*
 * Delete pipeline name: no new runs can start.  SPOOL_ESTATE if runs are
 * unfinished, unless SPOOL_PIPELINE_FORCE, which cancels them first.
 * Definitions stay in the file for the history of past runs.
 */
int		 spool_pipeline_delete(spool *q, const char *name, int flags);

/* A definition as stored: strings in stages[] are owned by the info,
 * and each stage's version is SPOOL_STAGE_VERSION. */
typedef struct spool_pipeline_info {
	char		*name;
	int		 version;
	int		 current;	/* 1: the version new runs use */
	int64_t		 created_ms;
	size_t		 nstages;
	spool_stage	*stages;
	int64_t		 runs_unfinished;	/* of this version */
} spool_pipeline_info;

/* Read version (0: the current one) of pipeline name; SPOOL_ENOENT if
 * missing. */
int		 spool_pipeline_get(spool_pipeline_info **out, spool *q,
		     const char *name, int version);

/* How to page spool_pipeline_list (since 0.8): by name. */
typedef struct spool_pipeline_list_opts {
	unsigned	 version;
	const char	*after;		/* keyset: start after this name (NULL = start) */
	size_t		 limit;		/* 0 = 100, at most 10000 */
	int		 descending;	/* last name first, below after (NULL: the last) */
} spool_pipeline_list_opts;

#define SPOOL_PIPELINE_LIST_OPTS_VERSION 1
#define SPOOL_PIPELINE_LIST_OPTS_INIT { SPOOL_PIPELINE_LIST_OPTS_VERSION, NULL, 0, 0 }

/* One page of the current versions of the pipelines, by name (since 0.8:
 * paged; it read them all). */
int		 spool_pipeline_list(spool_pipeline_info **out, size_t *n,
		     spool *q, const spool_pipeline_list_opts *opts);
void		 spool_pipeline_info_free(spool_pipeline_info *info, size_t n);

/* An item entering a run: the first stage's payload. */
typedef struct spool_item {
	const void	*input;
	size_t		 len;	/* at most SPOOL_PAYLOAD_MAX */
} spool_item;

/* A run's completion hook, as for batches: enqueued on hook_queue in the
 * transaction that finishes the run, with the JSON payload
 * {"run","pipeline","version","total","succeeded","failed","skipped",
 *  "cancelled","error","payload"}. */
typedef struct spool_run_opts {
	unsigned	 version;
	const char	*hook_queue;	/* NULL: no hook */
	const char	*hook_payload;	/* NULL or UTF-8 text (JSON or not) */
	int		 hook_on;	/* SPOOL_HOOK_* */
} spool_run_opts;

#define SPOOL_RUN_OPTS_VERSION	1
#define SPOOL_RUN_OPTS_INIT	{ SPOOL_RUN_OPTS_VERSION, NULL, NULL, SPOOL_HOOK_ALWAYS }

/*
 * Start a run of the current version of pipeline name with n items, in
 * one transaction; *run_out gets its id and item_ids (may be NULL) the
 * items' ids in order.  A run of no items finishes at once.
 */
int		 spool_pipeline_start(int64_t *run_out, int64_t *item_ids,
		     spool *q, const char *name, const spool_item *items,
		     size_t n, const spool_run_opts *opts);

enum spool_run_state {
	SPOOL_RUN_RUNNING = 1,	/* items in some stage */
	SPOOL_RUN_STOPPING,	/* a fail_fast stage failed: waiting for
				 * running items to stop */
	SPOOL_RUN_FINISHED	/* every item finished */
};

enum spool_item_state {
	SPOOL_ITEM_RUNNING = 1,	/* waiting or running in some stage */
	SPOOL_ITEM_SUCCEEDED,	/* through the last stage */
	SPOOL_ITEM_FAILED,
	SPOOL_ITEM_SKIPPED,
	SPOOL_ITEM_CANCELLED
};

/* One stage of a run, counted over the run's items.  waiting counts
 * ready tasks (due or in a retry delay); done the stage's successes;
 * failed and skipped the items that ended in it; durations are those of
 * its succeeded attempts. */
typedef struct spool_stage_status {
	char		*name;
	int		 index;		/* from 1 */
	int		 concurrency;
	int64_t		 waiting;
	int64_t		 running;	/* = workers busy on it */
	int64_t		 done;
	int64_t		 failed;
	int64_t		 skipped;
	int64_t		 cancelled;
	int64_t		 attempts;	/* finished attempts of any outcome */
	double		 avg_ms;	/* 0 if none */
	int64_t		 p95_ms;	/* nearest rank; 0 if none */
} spool_stage_status;

typedef struct spool_run_info {
	int64_t		 id;
	char		*pipeline;
	int		 version;
	int		 state;		/* enum spool_run_state */
	int64_t		 total;
	int64_t		 running;	/* items not finished */
	int64_t		 succeeded;
	int64_t		 failed;
	int64_t		 skipped;
	int64_t		 cancelled;
	char		*error;		/* why it stopped, or NULL */
	char		*hook_queue;
	int64_t		 hook_task_id;
	int64_t		 created_ms;
	int64_t		 finished_ms;	/* 0 while unfinished */
	size_t		 nstages;	/* spool_run_get only */
	spool_stage_status *stages;
} spool_run_info;

/* Read run id with per-stage counts; SPOOL_ENOENT if missing. */
int		 spool_run_get(spool_run_info **out, spool *q, int64_t id);

/* Wait for run id to be finished (SPOOL_RUN_FINISHED) and read it into
 * *out as spool_run_get does, with its stages (since 0.8).  Timeout,
 * codes and *out as for spool_task_wait; on SPOOL_ETIMEDOUT *out is the
 * run as last read without its stages (nstages 0), as spool_run_list
 * reads it. */
int		 spool_run_wait(spool_run_info **out, spool *q, int64_t id,
		     int64_t timeout_ms);

/* How to page spool_run_list (since 0.8). */
typedef struct spool_run_list_opts {
	unsigned	 version;
	const char	*pipeline;	/* NULL = every pipeline */
	int64_t		 after_id;	/* keyset: start after this id (0 = start) */
	size_t		 limit;		/* 0 = 100, at most 10000 */
	int		 descending;	/* newest first, below after_id (0: the newest) */
} spool_run_list_opts;

#define SPOOL_RUN_LIST_OPTS_VERSION 1
#define SPOOL_RUN_LIST_OPTS_INIT { SPOOL_RUN_LIST_OPTS_VERSION, NULL, 0, 0, 0 }

/* One page of runs by id; stages are not read (since 0.8 with opts; the
 * arguments were positional). */
int		 spool_run_list(spool_run_info **out, size_t *n, spool *q,
		     const spool_run_list_opts *opts);
void		 spool_run_info_free(spool_run_info *info, size_t n);

/* Cancel what is left of run id (its waiting items at once, its running
 * ones at their next check).  SPOOL_ENOENT if missing; a finished run is
 * left as it is. */
int		 spool_run_cancel(spool *q, int64_t id);

const char	*spool_run_state_name(int state);
const char	*spool_item_state_name(int state);

/* An item: its state, where it is, and (once succeeded) its result. */
typedef struct spool_item_info {
	int64_t		 id;
	int64_t		 run_id;
	int		 state;		/* enum spool_item_state */
	int		 stage;		/* index of its current or last stage */
	char		*stage_name;
	int64_t		 task_id;	/* its task in that stage */
	void		*result;	/* the last stage's output, or NULL */
	size_t		 result_len;
	char		*error;		/* the last error, or NULL */
	int64_t		 created_ms;
	int64_t		 finished_ms;
} spool_item_info;

/* How to page spool_item_list (since 0.8). */
typedef struct spool_item_list_opts {
	unsigned	 version;
	int64_t		 after_id;	/* keyset: start after this id (0 = start) */
	size_t		 limit;		/* 0 = 100, at most 10000 */
	int		 descending;	/* newest first, below after_id (0: the newest) */
} spool_item_list_opts;

#define SPOOL_ITEM_LIST_OPTS_VERSION 1
#define SPOOL_ITEM_LIST_OPTS_INIT { SPOOL_ITEM_LIST_OPTS_VERSION, 0, 0, 0 }

/* One page of the items of run id by id, with their results; SPOOL_ENOENT
 * if there is no such run (since 0.8 with opts, and descending). */
int		 spool_item_list(spool_item_info **out, size_t *n, spool *q,
		     int64_t run, const spool_item_list_opts *opts);
void		 spool_item_info_free(spool_item_info *info, size_t n);

/* One attempt of one stage of an item; outcome SPOOL_ATTEMPT_RUNNING for
 * an attempt under way (finished_ms 0). */
typedef struct spool_stage_attempt_info {
	char		*stage;
	int		 index;
	int64_t		 task_id;
	int		 attempt;
	char		*worker;
	int64_t		 started_ms;
	int64_t		 finished_ms;
	int		 outcome;	/* enum spool_attempt_outcome (since
					 * 0.8: it was a string) */
	char		*error;
} spool_stage_attempt_info;

/* How to page spool_item_history (since 0.8): by its natural key, the
 * stage's index then the attempt number (an item has one task per
 * stage); 0 and 0 are the start. */
typedef struct spool_item_history_opts {
	unsigned	 version;
	int		 after_index;	/* keyset: start after this stage index... */
	int		 after_attempt;	/* ...and attempt (both 0 = start) */
	size_t		 limit;		/* 0 = 100, at most 10000 */
	int		 descending;	/* latest first, below the key (0, 0: the latest) */
} spool_item_history_opts;

#define SPOOL_ITEM_HISTORY_OPTS_VERSION 1
#define SPOOL_ITEM_HISTORY_OPTS_INIT { SPOOL_ITEM_HISTORY_OPTS_VERSION, 0, 0, 0, 0 }

/* One page of the stage attempts of item id, in stage then attempt
 * order; SPOOL_ENOENT if no item (since 0.8: paged; it read them all). */
int		 spool_item_history(spool_stage_attempt_info **out, size_t *n,
		     spool *q, int64_t item, const spool_item_history_opts *opts);
void		 spool_stage_attempt_info_free(spool_stage_attempt_info *a, size_t n);

/* A job's pipeline: its item (0 if the job is not a stage task), and,
 * in a pipeline pool, its stage's name and command (else NULL). */
int64_t		 spool_job_item(const spool_job *job);
const char	*spool_job_stage(const spool_job *job);
const char	*spool_job_stage_command(const spool_job *job);

/* A handler for one stage (stage NULL: every stage not named). */
typedef struct spool_stage_handler {
	const char	*stage;
	spool_handler	 fn;
	void		*arg;
} spool_stage_handler;

/*
 * Make a pool working pipeline name: one queue per stage that has a
 * handler, each with its stage's concurrency (threads: their sum), later
 * stages claimed first.  Stages of older versions whose runs are
 * unfinished are worked too.  opts gives the rest (flags, lease, ...);
 * its queues, strategy and worker counts are ignored.  Run, stop and free
 * it as any pool.
 */
int		 spool_pipeline_pool_new(spool_pool **out, const char *path,
		     const char *name, const spool_stage_handler *handlers,
		     size_t n, const spool_pool_opts *opts);

#ifdef __cplusplus
}
#endif

#endif /* SPOOL_H */
