/*
 * enqueue.c -- adding tasks: one or many in one transaction, joining
 * batches, depth limits with waiting, and group commit, which lets several
 * threads share one handle's commits.
 *
 * Invariants: a key names at most one unfinished task per queue (checked
 * here and enforced by the tasks_key index); a request (one call) commits
 * all of its tasks or none; a depth limit (ready tasks, due or scheduled)
 * is never passed, since the count and the inserts share one BEGIN
 * IMMEDIATE transaction; all input is validated before it starts.
 *
 * Group commit: a call queues its request on the handle.  If no thread is
 * committing, it becomes the leader: it takes every queued request, runs
 * them in one transaction (a request of several tasks under a savepoint,
 * so one refused request does not undo the others) and commits once; the
 * others wait and are woken with their own results.  Requests that arrive
 * during that commit form the next group.  Only the leader touches the
 * connection, so the rule "one thread per handle" still holds for SQLite.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spool-int.h"
#include "query-gen.h"

#define WAIT_MIN_US	1000	/* a full queue is tried again after 1 ms, */
#define WAIT_MAX_US	50000	/* doubling up to 50 ms */

/* One call waiting to be committed (on its caller's stack). */
struct spool__enq_req {
	const spool_task	*tasks;
	size_t			 n;
	size_t			 base;		/* tasks before these, in a request
						 * fed in parts (for messages) */
	int64_t			*ids;		/* n, or NULL */
	int			*existed;	/* n, or NULL */
	int			 rc;
	int			 done;
	int			 checked;	/* passed its checks, not refused */
	char			 errmsg[512];
	struct spool__enq_req	*next;
};

/* What one request caches between its tasks, in its transaction. */
struct enq_ctx {
	spool_queue_opts	 conf;
	const char		*queue;		/* conf and depth are this queue's */
	int64_t			 depth;		/* its ready tasks; -1: not counted */
	int64_t			 batch;		/* batch checked open ... */
	int64_t			 joins;		/* ... and its new members */
};

/* The fields of opts a caller may set: version 1 callers have no more. */
static int64_t
opt_batch(const spool_enqueue_opts *o)
{
	return (o != NULL && o->version >= 2 ? o->batch_id : 0);
}

static int64_t
opt_wait(const spool_enqueue_opts *o)
{
	return (o != NULL && o->version >= 2 ? o->wait_ms : 0);
}

/*
 * Check one task of an enqueue before any transaction starts.  prev, if
 * not NULL, is the task before it in the request, already checked: a
 * queue name or an options struct at the same address as its is not
 * checked again (a request of many tasks usually shares both).
 */
static int
task_check(spool *q, const spool_task *t, const spool_task *prev)
{
	const spool_enqueue_opts	*o = t->opts;
	int				 rc;

	if ((prev == NULL || t->queue != prev->queue) &&
	    (rc = spool__check_name(q, "queue name", t->queue,
	    SPOOL_NAME_MAX)) != SPOOL_OK)
		return (rc);
	if (t->payload == NULL && t->len != 0)
		return (spool__error(q, SPOOL_EINVAL, "payload is NULL"));
	if (t->len > SPOOL_PAYLOAD_MAX)
		return (spool__error(q, SPOOL_EINVAL,
		    "payload too large (%zu bytes, at most %d)", t->len,
		    SPOOL_PAYLOAD_MAX));
	if (o == NULL || (prev != NULL && o == prev->opts))
		return (SPOOL_OK);
	if (o->version < 1)
		return (spool__error(q, SPOOL_EINVAL,
		    "enqueue options: version not set "
		    "(use SPOOL_ENQUEUE_OPTS_INIT)"));
	if ((rc = spool__check_version(q, "spool_enqueue_opts", o->version,
	    SPOOL_ENQUEUE_OPTS_VERSION)) != SPOOL_OK)
		return (rc);
	if (o->delay_ms < 0 || o->delay_ms > SPOOL_DURATION_MAX_MS)
		return (spool__error(q, SPOOL_EINVAL, "delay out of range"));
	if (o->run_at_ms < 0)
		return (spool__error(q, SPOOL_EINVAL, "run_at is negative"));
	if (o->run_at_ms != 0 && o->delay_ms != 0)
		return (spool__error(q, SPOOL_EINVAL,
		    "give a delay or a run_at time, not both"));
	if (o->deadline_ms < 0)
		return (spool__error(q, SPOOL_EINVAL, "deadline is negative"));
	if (o->max_attempts < 0 || o->max_attempts > SPOOL_ATTEMPTS_MAX)
		return (spool__error(q, SPOOL_EINVAL,
		    "max attempts out of range (1 to %d)", SPOOL_ATTEMPTS_MAX));
	if (o->key != NULL && (rc = spool__check_name(q, "idempotency key",
	    o->key, SPOOL_KEY_MAX)) != SPOOL_OK)
		return (rc);
	if (opt_batch(o) < 0)
		return (spool__error(q, SPOOL_EINVAL, "batch id is negative"));
	if (opt_wait(o) < 0 || opt_wait(o) > SPOOL_YEAR_MS)
		return (spool__error(q, SPOOL_EINVAL, "wait out of range"));
	return (SPOOL_OK);
}

/* Check every task of request r; a refusal names its task ("task 3: ")
 * when the request has several. */
static int
request_check(spool *q, const struct spool__enq_req *r)
{
	size_t	 i;
	int	 rc;
	char	 pfx[48];

	for (i = 0; i < r->n; i++) {
		rc = task_check(q, &r->tasks[i], i > 0 ? &r->tasks[i - 1] :
		    NULL);
		if (rc == SPOOL_OK)
			continue;
		if (r->base + r->n > 1) {
			snprintf(pfx, sizeof pfx, "task %zu: ", r->base + i + 1);
			spool__error_prefix(q, rc, pfx);
		}
		return (rc);
	}
	return (SPOOL_OK);
}

/* Count the members that joined ctx->batch so far into its counters. */
static int
ctx_join(spool *q, struct enq_ctx *c)
{
	int	 rc = SPOOL_OK;

	if (c->batch != 0 && c->joins > 0)
		rc = spool__batch_join(q, c->batch, c->joins);
	c->joins = 0;
	return (rc);
}

/* Tasks up to id were inserted, in batch (0 if none): what a quiet
 * transaction needs to know (spool__quiet, counters.c).  A batch member
 * may finish a batch's settling, so its transaction looks. */
static void
enqueued(spool *q, int64_t id, int64_t batch)
{
	if (id > q->txn_top_id)
		q->txn_top_id = id;
	if (batch != 0)
		q->txn_fast = 0;
}

/* A queue's settings: as this handle last read them if the transaction
 * found the file quiet (spool__quiet), else read now. */
static int
queue_conf(spool_queue_opts *conf, spool *q, const char *queue)
{
	int	 rc;

	if (q->txn_dv_read && q->qc_valid && strcmp(q->qc_name, queue) == 0) {
		*conf = q->qc_conf;
		return (SPOOL_OK);
	}
	if ((rc = spool__queue_read(conf, q, queue)) != SPOOL_OK ||
	    !q->txn_dv_read)
		return (rc);
	/* A name longer than a queue's may be is refused before this. */
	if (strlen(queue) <= SPOOL_NAME_MAX) {
		strcpy(q->qc_name, queue);
		q->qc_conf = *conf;
		q->qc_valid = 1;
	}
	return (SPOOL_OK);
}

/* Make ctx c the context of a task of queue and batch: check a new batch
 * open (counting the previous one's joins), create a new queue if needed
 * and read its settings. */
static int
ctx_enter(spool *q, struct enq_ctx *c, const char *queue, int64_t batch,
    int64_t now_ms)
{
	int	 rc;

	if (batch != 0 && batch != c->batch) {
		if ((rc = ctx_join(q, c)) != SPOOL_OK ||
		    (rc = spool__batch_check_open(q, batch)) != SPOOL_OK)
			return (rc);
		c->batch = batch;
	}
	if (c->queue == NULL || strcmp(c->queue, queue) != 0) {
		/* Read it; only a queue not there yet costs an insert. */
		rc = queue_conf(&c->conf, q, queue);
		if (rc == SPOOL_ENOENT) {
			spool__clear_error(q);
			if ((rc = spool__queue_ensure(q, queue, now_ms)) == 0)
				rc = queue_conf(&c->conf, q, queue);
		}
		if (rc != SPOOL_OK)
			return (rc);
		c->queue = queue;
		c->depth = -1;
	}
	return (SPOOL_OK);
}

/* Whether c's queue has room for n more ready tasks (counted once per
 * request); SPOOL_EFULL if not. */
static int
ctx_room(spool *q, struct enq_ctx *c, int64_t n)
{
	struct spool__cur		 cur;
	struct spool__q_queue_depth_row	 r;
	int				 rc;

	if (c->conf.max_depth <= 0)
		return (SPOOL_OK);
	if (c->depth < 0) {
		if ((rc = spool__q_queue_depth(q, &cur,
		    &(struct spool__q_queue_depth_in){ .queue = c->queue })) !=
		    SPOOL_OK)
			return (rc);
		if ((rc = spool__q_queue_depth_next(&cur, &r)) != 1)
			return (rc < 0 ? rc : spool__error(q, SPOOL_ERROR,
			    "enqueue: no depth for queue %s", c->queue));
		spool__cur_end(&cur);
		c->depth = r.n;
	}
	if (c->depth + n > c->conf.max_depth)
		return (spool__error(q, SPOOL_EFULL,
		    "queue %s is full (limit %lld ready tasks)", c->queue,
		    (long long)c->conf.max_depth));
	return (SPOOL_OK);
}

/* The time a task is due. */
static int64_t
task_run_at(const spool_enqueue_opts *o, int64_t now_ms)
{
	return (o->run_at_ms != 0 ? o->run_at_ms : now_ms + o->delay_ms);
}

/*
 * Insert one checked task inside the caller's transaction.  Every check
 * that can refuse the task comes before its first write, so a refused task
 * leaves nothing behind.  With depth_free, the queue's depth limit does
 * not apply (hooks: they must never be lost).
 */
static int
enqueue_locked(int64_t *id, int *existed, spool *q, const spool_task *t,
    int64_t now_ms, struct enq_ctx *c, int depth_free)
{
	static const spool_enqueue_opts	 none = SPOOL_ENQUEUE_OPTS_INIT;
	const spool_enqueue_opts	*o = t->opts ? t->opts : &none;
	struct spool__cur		 cur;
	struct spool__q_task_find_key_row key;
	int64_t				 run_at, batch = opt_batch(o);
	int				 rc;

	*existed = 0;
	run_at = task_run_at(o, now_ms);
	if (o->deadline_ms != 0 && o->deadline_ms <= run_at)
		return (spool__error(q, SPOOL_EINVAL,
		    "deadline is not after the time the task is due"));
	if ((rc = ctx_enter(q, c, t->queue, batch, now_ms)) != SPOOL_OK)
		return (rc);
	if (o->key != NULL) {
		if ((rc = spool__q_task_find_key(q, &cur,
		    &(struct spool__q_task_find_key_in){ .queue = t->queue,
		    .key = o->key })) != SPOOL_OK)
			return (rc);
		if ((rc = spool__q_task_find_key_next(&cur, &key)) == 1) {
			spool__cur_end(&cur);
			*id = key.id;
			*existed = 1;
			return (SPOOL_OK);
		}
		if (rc != 0)
			return (rc);
	}
	if (!depth_free && (rc = ctx_room(q, c, 1)) != SPOOL_OK)
		return (rc);

	if ((rc = spool__q_task_insert(q, &(struct spool__q_task_insert_in){
	    .queue = t->queue,
	    .priority = o->priority == SPOOL_PRIORITY_DEFAULT ?
		c->conf.priority : o->priority,
	    .payload = t->payload, .payload_len = t->len,
	    .run_at_ms = run_at, .deadline_ms = o->deadline_ms,
	    .max_attempts = o->max_attempts != 0 ? o->max_attempts :
		c->conf.max_attempts,
	    .idem_key = o->key, .created_ms = now_ms,
	    .batch_id = batch })) != SPOOL_OK)
		return (rc);
	*id = spool__last_id(q);
	spool__count(q, t->queue, SPOOL__C_ENQUEUED, 1);
	enqueued(q, *id, batch);
	if (c->depth >= 0)
		c->depth++;
	if (batch != 0)
		c->joins++;
	return (SPOOL_OK);
}

/* How many of tasks t[0..n), from the first, may share one multi-row
 * insert: one queue, one batch, no key (a key is looked up before its task
 * is inserted), and no task that enqueue_locked would refuse for its
 * deadline.  With same, they must also share their options struct (or
 * have none): task_insert_same binds its fields once. */
static size_t
rows_fit(const spool_task *t, size_t n, int64_t now_ms, int same)
{
	static const spool_enqueue_opts	 none = SPOOL_ENQUEUE_OPTS_INIT;
	const spool_enqueue_opts	*o;
	int64_t				 batch = opt_batch(t[0].opts);
	size_t				 j;

	for (j = 0; j < n; j++) {
		if (same && j > 0 && t[j].opts == t[0].opts &&
		    (t[j].queue == t[0].queue ||
		    strcmp(t[j].queue, t[0].queue) == 0))
			continue;	/* as t[0], checked below */
		if (same && j > 0)
			break;
		o = t[j].opts ? t[j].opts : &none;
		if (o->key != NULL || opt_batch(o) != batch ||
		    (j > 0 && strcmp(t[j].queue, t[0].queue) != 0) ||
		    (o->deadline_ms != 0 &&
		    o->deadline_ms <= task_run_at(o, now_ms)))
			break;
	}
	return (j);
}

/*
 * Insert tasks t[0..n), n = spool__rows_max(q, same), that rows_fit, with
 * one statement, into ids[0..n).  A refusal (SPOOL_EFULL when the queue
 * has no room for all n, a batch that is not open) comes before any
 * write, or from the statement, which then undoes its rows: the caller
 * inserts the tasks one by one instead, which finds and names the task
 * refused.  With AUTOINCREMENT, each new row gets one more than the
 * largest id the table ever had, so the rows of one statement get
 * consecutive ids, the last one last_insert_rowid.
 */
static int
enqueue_rows(int64_t *ids, spool *q, const spool_task *t, size_t n,
    int64_t now_ms, struct enq_ctx *c, int same)
{
	static const spool_enqueue_opts	 none = SPOOL_ENQUEUE_OPTS_INIT;
	const spool_enqueue_opts	*o;
	struct spool__rows_shared	 sh;
	struct spool__rows_row		 rows[SPOOL__ROWS_MAX];
	int64_t				 last, batch = opt_batch(t[0].opts);
	size_t				 j;
	int				 rc;

	if ((rc = ctx_enter(q, c, t[0].queue, batch, now_ms)) != SPOOL_OK ||
	    (rc = ctx_room(q, c, (int64_t)n)) != SPOOL_OK)
		return (rc);
	for (j = 0; j < n; j++) {
		o = t[j].opts ? t[j].opts : &none;
		rows[j].priority = o->priority == SPOOL_PRIORITY_DEFAULT ?
		    c->conf.priority : o->priority;
		rows[j].run_at_ms = task_run_at(o, now_ms);
		rows[j].deadline_ms = o->deadline_ms;
		rows[j].max_attempts = o->max_attempts != 0 ?
		    o->max_attempts : c->conf.max_attempts;
		rows[j].payload = t[j].payload;
		rows[j].len = t[j].len;
	}
	sh = (struct spool__rows_shared){ .queue = t[0].queue,
	    .created_ms = now_ms, .batch_id = batch,
	    .priority = rows[0].priority, .run_at_ms = rows[0].run_at_ms,
	    .deadline_ms = rows[0].deadline_ms,
	    .max_attempts = rows[0].max_attempts };
	if ((rc = spool__rows_insert(q, same, &sh, rows, n)) != SPOOL_OK)
		return (rc);
	spool__count(q, t[0].queue, SPOOL__C_ENQUEUED, (int64_t)n);
	if (spool__changes(q) != (int64_t)n)
		return (spool__error(q, SPOOL_ERROR,
		    "enqueue: %lld rows inserted, not %zu",
		    (long long)spool__changes(q), n));
	last = spool__last_id(q);
	enqueued(q, last, batch);
	for (j = 0; j < n; j++)
		ids[j] = last - (int64_t)(n - 1 - j);
	if (c->depth >= 0)
		c->depth += (int64_t)n;
	if (batch != 0)
		c->joins += (int64_t)n;
	return (SPOOL_OK);
}

/* Enqueue a batch's hook task, inside the settling transaction. */
int
spool__enqueue_hook_locked(int64_t *id, spool *q, const spool_task *t,
    int64_t now_ms)
{
	struct enq_ctx	 c;
	int		 existed;

	memset(&c, 0, sizeof c);
	c.depth = -1;
	return (enqueue_locked(id, &existed, q, t, now_ms, &c, 1));
}

/* Is rc an answer about this request alone, not about the database? */
static int
request_refused(int rc)
{
	return (rc == SPOOL_EINVAL || rc == SPOOL_EFULL || rc == SPOOL_ENOENT ||
	    rc == SPOOL_ESTATE || rc == SPOOL_EEXISTS);
}

/* Forget what a context cached (after a savepoint was rolled back). */
static void
ctx_reset(struct enq_ctx *c)
{
	memset(c, 0, sizeof *c);
	c->depth = -1;
}

/* Run one request's tasks inside the leader's transaction: runs of keyless
 * tasks of one queue go in multi-row inserts (task_insert_same when they
 * share their options too), the others one by one.  The context c is the
 * group's: what it caches (a queue's settings and depth, a batch checked
 * open) holds for the whole transaction, since a refused one-task request
 * wrote nothing that could be undone, and a request undone by its
 * savepoint resets it. */
static int
request_run(spool *q, struct spool__enq_req *r, int64_t now_ms,
    struct enq_ctx *c)
{
	int64_t			 id, ids[SPOOL__ROWS_MAX];
	size_t			 i, j, n, fit, single = 0, each = 0, same = 0;
	size_t			 at = r->base + 1;	/* task i's number: at + i */
	int			 rc, existed, several = r->base + r->n > 1;
	int			 kind;	/* -1 one by one, else same */
	char			 pfx[64];

	if (r->n >= 2) {	/* not for one task: no statement to prepare */
		each = spool__rows_max(q, 0);
		same = spool__rows_max(q, 1);
	}
	for (i = 0; i < r->n; i++) {
		/* Tasks before index single go one by one. */
		kind = -1;
		n = 0;
		if (i >= single && same > 0 && r->n - i >= same &&
		    rows_fit(&r->tasks[i], same, now_ms, 1) == same) {
			kind = 1;
			n = same;
		} else if (i >= single && each > 0 && r->n - i >= each) {
			fit = rows_fit(&r->tasks[i], each, now_ms, 0);
			if (fit < each)		/* up to the one that breaks
						 * the run */
				single = i + fit + 1;
			else {
				kind = 0;
				n = each;
			}
		}
		if (kind >= 0) {
			rc = enqueue_rows(ids, q, &r->tasks[i], n, now_ms, c,
			    kind);
			if (rc == SPOOL_OK) {
				for (j = 0; j < n; j++) {
					if (r->ids != NULL)
						r->ids[i + j] = ids[j];
					if (r->existed != NULL)
						r->existed[i + j] = 0;
				}
				i += n - 1;
				continue;
			}
			if (!request_refused(rc)) {
				snprintf(pfx, sizeof pfx, "tasks %zu to %zu: ",
				    at + i, at + i + n - 1);
				return (spool__error_prefix(q, rc, pfx));
			}
			/* Refused before any write (no room for them all,
			 * say): one by one, to find and name the task
			 * refused. */
			spool__clear_error(q);
			single = i + n;
		}
		rc = enqueue_locked(&id, &existed, q, &r->tasks[i], now_ms, c, 0);
		if (rc != SPOOL_OK) {
			if (several) {
				snprintf(pfx, sizeof pfx, "task %zu: ", at + i);
				spool__error_prefix(q, rc, pfx);
			}
			return (rc);
		}
		if (r->ids != NULL)
			r->ids[i] = id;
		if (r->existed != NULL)
			r->existed[i] = existed;
	}
	return (ctx_join(q, c));
}

/* Record r's result: its code and the message now on q. */
static void
request_result(spool *q, struct spool__enq_req *r, int rc)
{
	r->rc = rc;
	if (rc == SPOOL_OK)
		r->errmsg[0] = '\0';
	else
		snprintf(r->errmsg, sizeof r->errmsg, "%s", q->errmsg);
}

/*
 * The leader's work: the requests of one group, in one transaction.  Each
 * is checked first, outside the transaction.  One request alone needs no
 * savepoint (its failure rolls the transaction back); with several, each
 * request of several tasks runs under a savepoint so a refused one is
 * undone alone.  A failure of the database fails them all.
 */
static void
group_run(spool *q, struct spool__enq_req *head)
{
	struct spool__enq_req	*r;
	struct spool__ctr	*saved = NULL;
	struct enq_ctx		 c;
	int64_t			 now;
	size_t			 nsaved = 0;
	int			 rc = SPOOL_OK, live = 0, several, sp;

	for (r = head; r != NULL; r = r->next) {
		spool__clear_error(q);
		rc = request_check(q, r);
		request_result(q, r, rc);
		r->checked = rc == SPOOL_OK;
		live += r->checked;
	}
	if (live == 0)
		return;
	several = live > 1;	/* then requests of several tasks need a
				 * savepoint; a single task is refused
				 * before its first write */
	spool__clear_error(q);
	if ((rc = spool__begin(q)) != SPOOL_OK)
		goto fail_all;
	if ((rc = spool__quiet(q, &q->txn_fast)) != SPOOL_OK)
		goto rollback_all;
	now = spool__now_ms(q);
	ctx_reset(&c);
	for (r = head; r != NULL; r = r->next) {
		if (!r->checked)
			continue;
		sp = several && r->n > 1;
		if (sp && ((rc = spool__counters_save(q, &saved, &nsaved)) !=
		    SPOOL_OK || (rc = spool__savepoint(q, 0)) != SPOOL_OK)) {
			free(saved);
			saved = NULL;
			goto rollback_all;
		}
		rc = request_run(q, r, now, &c);
		if (rc == SPOOL_OK) {
			free(saved);
			saved = NULL;
			if (sp && (rc = spool__savepoint(q, 1)) != SPOOL_OK)
				goto rollback_all;
			continue;
		}
		if (!request_refused(rc))
			goto rollback_all;
		request_result(q, r, rc);
		r->checked = 0;
		if (!several) {
			free(saved);
			spool__rollback(q);
			return;
		}
		if (sp) {
			/* Undone: so are its counts, and the queue it may
			 * have created. */
			spool__counters_restore(q, saved, nsaved);
			saved = NULL;
			q->qc_valid = 0;
			if ((rc = spool__savepoint(q, -1)) != SPOOL_OK)
				goto rollback_all;
			ctx_reset(&c);
		}
		c.joins = 0;	/* a refused request's, if any */
	}
	if ((rc = spool__commit(q)) != SPOOL_OK)
		goto fail_all;
	spool__crash("enqueued");
	return;
rollback_all:
	free(saved);
	spool__rollback(q);
fail_all:
	for (r = head; r != NULL; r = r->next)
		if (r->checked)
			request_result(q, r, rc);
}

/*
 * How long a new leader waits for more requests: half its last commit,
 * at most 1 ms.  Only when recent groups had several requests (threads
 * are enqueueing concurrently), and only until as many as the largest
 * recent group are queued.  Without it, 8 threads settle into two
 * alternating groups of 4: the threads a commit releases come back just
 * after the next leader, who arrived during that commit, has started.
 */
static struct timespec
gather_until(const spool *q)
{
	int64_t		 us = q->gc_commit_us / 2;

	if (us > 1000)
		us = 1000;
	return (spool__clock_after_us(CLOCK_MONOTONIC, us));
}

/* Under gc_mu: whether the calling thread holds a stream on q. */
static int
stream_here(const spool *q)
{
	return (q->gc_streaming &&
	    pthread_equal(q->gc_stream_thread, pthread_self()));
}

/* Submit r and wait until a leader (perhaps this thread) has run it. */
static void
group_submit(spool *q, struct spool__enq_req *r)
{
	struct spool__enq_req	*head, *p;
	struct timespec		 until;
	int64_t			 t0;
	int			 n;

	pthread_mutex_lock(&q->gc_mu);
	if (stream_here(q)) {
		/* It would wait for its own stream's end, for ever. */
		pthread_mutex_unlock(&q->gc_mu);
		r->rc = SPOOL_ESTATE;
		snprintf(r->errmsg, sizeof r->errmsg, "a stream is open on "
		    "this handle in this thread: end it first");
		r->done = 1;
		return;
	}
	if (q->gc_tail != NULL)
		q->gc_tail->next = r;
	else
		q->gc_head = r;
	q->gc_tail = r;
	q->gc_queued++;
	if (q->gc_gathering)
		pthread_cond_signal(&q->gc_arrive_cv);
	while (!r->done) {
		if (q->gc_leader) {
			pthread_cond_wait(&q->gc_cv, &q->gc_mu);
			continue;
		}
		q->gc_leader = 1;
		if (q->gc_expect > 1 && q->gc_queued < q->gc_expect) {
			until = gather_until(q);
			q->gc_gathering = 1;
			while (q->gc_queued < q->gc_expect &&
			    pthread_cond_timedwait(&q->gc_arrive_cv, &q->gc_mu,
			    &until) == 0)
				;
			q->gc_gathering = 0;
		}
		head = q->gc_head;
		n = q->gc_queued;
		q->gc_head = q->gc_tail = NULL;
		q->gc_queued = 0;
		pthread_mutex_unlock(&q->gc_mu);
		t0 = spool__clock_us(CLOCK_MONOTONIC);
		group_run(q, head);
		pthread_mutex_lock(&q->gc_mu);
		q->gc_commit_us = spool__clock_us(CLOCK_MONOTONIC) - t0;
		/* The largest recent group, forgotten one request per group. */
		q->gc_expect = n > q->gc_expect - 1 ? n : q->gc_expect - 1;
		for (p = head; p != NULL; p = p->next)
			p->done = 1;
		q->gc_leader = 0;
		pthread_cond_broadcast(&q->gc_cv);
	}
	pthread_mutex_unlock(&q->gc_mu);
}

/* Enqueue n tasks in one transaction, shared with other threads' calls. */
int
spool_enqueue_many(int64_t *ids_out, int *existed_out, spool *q,
    const spool_task *tasks, size_t n)
{
	struct spool__enq_req	 r;
	int64_t			 wait_ms = 0, until_us = 0, sleep_us = WAIT_MIN_US;
	size_t			 i;

	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	/* Only the leader writes to q: this thread's failures go to its own
	 * slot (spool__error_mine), which spool_errmsg reads. */
	if (tasks == NULL && n != 0) {
		spool__error_mine(q, SPOOL_EINVAL, "tasks is NULL");
		return (SPOOL_EINVAL);
	}
	for (i = 0; i < n; i++)
		if (opt_wait(tasks[i].opts) > wait_ms)
			wait_ms = opt_wait(tasks[i].opts);
	if (n == 0) {
		spool__error_mine(q, SPOOL_OK, "");
		return (SPOOL_OK);
	}
	if (wait_ms > 0)
		until_us = spool__clock_us(CLOCK_MONOTONIC) + wait_ms * 1000;
	for (;;) {
		memset(&r, 0, sizeof r);
		r.tasks = tasks;
		r.n = n;
		r.ids = ids_out;
		r.existed = existed_out;
		group_submit(q, &r);
		if (r.rc != SPOOL_EFULL || wait_ms == 0 || spool__clock_us(CLOCK_MONOTONIC) >= until_us)
			break;
		spool__sleep_us(sleep_us);
		if ((sleep_us *= 2) > WAIT_MAX_US)
			sleep_us = WAIT_MAX_US;
	}
	if (r.rc == SPOOL_EFULL && wait_ms > 0) {
		size_t	 len = strlen(r.errmsg);

		snprintf(r.errmsg + len, sizeof r.errmsg - len,
		    ", still after waiting %lld ms", (long long)wait_ms);
	}
	spool__error_mine(q, r.rc, r.errmsg);
	return (r.rc);
}

/* Enqueue one task; SPOOL_EEXISTS (with its id) if its key is taken. */
int
spool_enqueue(int64_t *id_out, spool *q, const char *queue,
    const void *payload, size_t len, const spool_enqueue_opts *opts)
{
	spool_task	 t;
	int64_t		 id = 0;
	int		 existed = 0, rc;
	char		 msg[96];

	if (id_out != NULL)
		*id_out = 0;
	t.queue = queue;
	t.payload = payload;
	t.len = len;
	t.opts = opts;
	rc = spool_enqueue_many(&id, &existed, q, &t, 1);
	if (rc != SPOOL_OK)
		return (rc);
	if (id_out != NULL)
		*id_out = id;
	if (existed) {
		snprintf(msg, sizeof msg, "an unfinished task with this key "
		    "exists: %lld", (long long)id);
		spool__error_mine(q, SPOOL_EEXISTS, msg);
		return (SPOOL_EEXISTS);
	}
	return (SPOOL_OK);
}

/* Check one task as an enqueue would, recording a failure on q. */
int
spool__enqueue_check(spool *q, const spool_task *t)
{
	spool__clear_error(q);
	return (task_check(q, t, NULL));
}

/*
 * For a buffered producer: run n tasks, each its own request, in one
 * transaction on q (which only the calling thread uses).  rcs[i] is each
 * task's answer (SPOOL_OK, SPOOL_EEXISTS with ids[i] the holder, or a
 * refusal); the result is SPOOL_OK if the transaction committed, else the
 * database's error (then nothing was committed).
 */
int
spool__enqueue_each(spool *q, const spool_task *tasks, size_t n,
    int64_t *ids, int *rcs)
{
	struct spool__enq_req	*r;
	size_t			 i;
	int			 rc = SPOOL_OK, *existed;

	if (n == 0)
		return (SPOOL_OK);
	if ((r = calloc(n, sizeof *r)) == NULL ||
	    (existed = calloc(n, sizeof *existed)) == NULL) {
		free(r);
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	}
	for (i = 0; i < n; i++) {
		r[i].tasks = &tasks[i];
		r[i].n = 1;
		r[i].ids = &ids[i];
		r[i].existed = &existed[i];
		r[i].next = i + 1 < n ? &r[i + 1] : NULL;
	}
	group_run(q, r);
	for (i = 0; i < n; i++) {
		rcs[i] = r[i].rc;
		if (rcs[i] == SPOOL_OK && existed[i])
			rcs[i] = SPOOL_EEXISTS;
		if (!request_refused(r[i].rc) && r[i].rc != SPOOL_OK) {
			rc = spool__error(q, r[i].rc, "%s", r[i].errmsg);
		}
	}
	free(existed);
	free(r);
	return (rc);
}

/*
 * One request fed in parts, in one transaction held from begin to end
 * (the CLI's --lines, whose input may not fit in memory).  The stream
 * leads the handle's group commit for its whole life, so other threads'
 * enqueues on q wait for its end; the calling thread makes no other call
 * on q meanwhile.  Each part is checked and inserted as a request of its
 * own would be, but in the one context (a queue's settings and depth, a
 * batch checked open) and with task numbers counted from the stream's
 * first task in messages.  The first refusal or failure ends what the
 * stream can do: end rolls it all back.  A task's wait_ms is not used:
 * the stream holds the write lock, so no room could appear meanwhile.
 */
struct spool_enqueue_stream {
	spool		*q;
	struct enq_ctx	 c;
	int64_t		 now_ms;
	size_t		 n;		/* tasks inserted so far */
	int		 rc;		/* the first failure, else SPOOL_OK */
};

/* Lead q's group commit for a stream, waiting for a leader to finish;
 * SPOOL_ESTATE, at once, if this thread's own stream leads. */
static int
lead(spool *q)
{
	pthread_mutex_lock(&q->gc_mu);
	if (stream_here(q)) {
		pthread_mutex_unlock(&q->gc_mu);
		return (SPOOL_ESTATE);
	}
	while (q->gc_leader)
		pthread_cond_wait(&q->gc_cv, &q->gc_mu);
	q->gc_leader = 1;
	q->gc_streaming = 1;
	q->gc_stream_thread = pthread_self();
	pthread_mutex_unlock(&q->gc_mu);
	return (SPOOL_OK);
}

/* Stop leading: a waiting thread takes over the requests queued. */
static void
unlead(spool *q)
{
	pthread_mutex_lock(&q->gc_mu);
	q->gc_leader = 0;
	q->gc_streaming = 0;
	pthread_cond_broadcast(&q->gc_cv);
	pthread_mutex_unlock(&q->gc_mu);
}

/* Start a stream on q: its BEGIN IMMEDIATE transaction. */
int
spool_enqueue_stream_begin(spool_enqueue_stream **out, spool *q)
{
	spool_enqueue_stream	*s;
	int			 rc;

	if (out != NULL)
		*out = NULL;
	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	if (out == NULL)
		return (spool__error(q, SPOOL_EINVAL, "out is NULL"));
	spool__clear_error(q);
	if ((s = calloc(1, sizeof *s)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	s->q = q;
	ctx_reset(&s->c);
	if (lead(q) != SPOOL_OK) {
		free(s);
		return (spool__error(q, SPOOL_ESTATE, "a stream is open on "
		    "this handle in this thread: end it first"));
	}
	if ((rc = spool__begin(q)) != SPOOL_OK) {
		unlead(q);
		free(s);
		return (rc);
	}
	s->now_ms = spool__now_ms(q);
	*out = s;
	return (SPOOL_OK);
}

/* Check and insert tasks t[0..n) in s's transaction, their ids into
 * ids[0..n) (ids may be NULL).  A key already held gives that task's id,
 * as spool_enqueue_many does. */
int
spool_enqueue_stream_add(spool_enqueue_stream *s, const spool_task *t,
    size_t n, int64_t *ids)
{
	struct spool__enq_req	 r;
	spool			*q;
	int			 rc;

	if (s == NULL)
		return (SPOOL_EINVAL);
	q = s->q;
	if (s->rc != SPOOL_OK)
		return (spool__error(q, s->rc, "enqueue: the stream has "
		    "failed"));
	spool__clear_error(q);
	if (n == 0)
		return (SPOOL_OK);
	if (t == NULL)
		return (s->rc = spool__error(q, SPOOL_EINVAL, "tasks is NULL"));
	memset(&r, 0, sizeof r);
	r.tasks = t;
	r.n = n;
	r.base = s->n;
	r.ids = ids;
	if ((rc = request_check(q, &r)) != SPOOL_OK ||
	    (rc = request_run(q, &r, s->now_ms, &s->c)) != SPOOL_OK)
		return (s->rc = rc);
	s->n += n;
	return (SPOOL_OK);
}

/* End s: commit its transaction if commit is set and every part went in,
 * else roll it back (then SPOOL_OK for a roll-back asked for, else the
 * stream's failure).  Frees s. */
int
spool_enqueue_stream_end(spool_enqueue_stream *s, int commit)
{
	spool	*q;
	int	 rc;

	if (s == NULL)
		return (SPOOL_OK);
	q = s->q;
	rc = s->rc;
	if (commit && rc == SPOOL_OK)
		rc = spool__commit(q);
	else
		spool__rollback(q);
	unlead(q);
	free(s);
	return (commit ? rc : SPOOL_OK);
}
