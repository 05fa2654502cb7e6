/*
 * producer.c -- the buffered producer: tasks accepted at memory speed
 * from any thread, committed in groups by the producer's own thread, which
 * runs a small event loop (loop.c) with a kick and a flush timer.
 *
 * Invariants (under p->mu unless said):
 *  - tickets are handed out in order, and tasks are taken for a commit in
 *    ticket order; a group that failed goes back to the front, so tasks
 *    settle (are committed or refused) in ticket order and "settled" is
 *    the ticket up to which every task has;
 *  - npending counts accepted tasks not settled: those waiting in the
 *    list and those of the group being committed; it never exceeds
 *    max_pending;
 *  - only the producer's thread touches p->q (its connection) and the
 *    loop's timer; p->chk is a handle without a connection, used to check
 *    tasks under p->mu.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spool-int.h"

#define RETRY_MAX_MS	1000	/* a failing commit is tried again this late at most */

/* One accepted task, with copies of its inputs. */
struct pitem {
	struct pitem		*next;
	int64_t			 ticket;
	spool_task		 t;
	spool_enqueue_opts	 o;
	char			*queue;
	char			*key;
	void			*payload;
};

struct spool_producer {
	spool_producer_opts	 o;		/* with defaults filled in */
	spool			*q;		/* the producer thread's */
	spool			 chk;		/* for checks; no connection */
	struct spool__loop	*loop;
	pthread_t		 thread;
	int			 started;
	int64_t			 retry_ms;	/* producer thread only */
	int			 timer_armed;	/* producer thread only */

	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;		/* settled or room changed */
	struct pitem		*head;		/* accepted, waiting */
	struct pitem		*tail;
	size_t			 nqueued;
	size_t			 npending;
	int64_t			 last_ticket;
	int64_t			 settled;
	int			 flush_now;	/* a flush or close is waiting */
	int			 closing;
	int			 errcode;	/* of the last failed commit */
	char			 errmsg[512];
	int64_t			 failures;	/* failed commits so far */
	char			 openmsg[512];	/* why spool_producer_new failed */
};

/* The calling thread's last failure on a producer. */
static __thread struct {
	const spool_producer	*p;
	int			 code;
	char			 msg[512];
} mine;

/* Record code and msg as the calling thread's last failure on p. */
static int
producer_fail(const spool_producer *p, int code, const char *msg)
{
	mine.p = p;
	mine.code = code;
	snprintf(mine.msg, sizeof mine.msg, "%s", msg != NULL &&
	    *msg != '\0' ? msg : spool_strerror(code));
	return (code);
}

static void
item_free(struct pitem *it)
{
	if (it == NULL)
		return;
	free(it->queue);
	free(it->key);
	free(it->payload);
	free(it);
}

/* Copy a checked task. */
static struct pitem *
item_new(const char *queue, const void *payload, size_t len,
    const spool_enqueue_opts *opts)
{
	struct pitem	*it;

	if ((it = calloc(1, sizeof *it)) == NULL)
		return (NULL);
	if (opts != NULL) {
		memcpy(&it->o, opts, opts->version >= 2 ? sizeof it->o :
		    offsetof(spool_enqueue_opts, batch_id));
		it->o.version = SPOOL_ENQUEUE_OPTS_VERSION;
		it->o.wait_ms = 0;
		it->t.opts = &it->o;
	}
	if ((it->queue = spool__strdup(queue)) == NULL ||
	    (opts != NULL && opts->key != NULL &&
	    (it->key = spool__strdup(opts->key)) == NULL) ||
	    (len > 0 && (it->payload = spool__memdup(payload, len)) == NULL)) {
		item_free(it);
		return (NULL);
	}
	it->o.key = it->key;
	it->t.queue = it->queue;
	it->t.payload = it->payload;
	it->t.len = len;
	return (it);
}

/*
 * Commit what is waiting, in the producer's thread.  Failed groups go back
 * to the front of the list and are tried again after a backoff.
 */
static void
producer_commit(spool_producer *p)
{
	struct pitem	*head, *it, *last = NULL;
	spool_task	*tasks = NULL;
	int64_t		*ids = NULL;
	int		*rcs = NULL;
	size_t		 n, i;
	int		 rc;

	pthread_mutex_lock(&p->mu);
	head = p->head;
	n = p->nqueued;
	p->head = p->tail = NULL;
	p->nqueued = 0;
	pthread_mutex_unlock(&p->mu);
	if (n == 0)
		return;
	if ((tasks = calloc(n, sizeof *tasks)) == NULL ||
	    (ids = calloc(n, sizeof *ids)) == NULL ||
	    (rcs = calloc(n, sizeof *rcs)) == NULL) {
		rc = spool__error(p->q, SPOOL_ENOMEM, "out of memory");
		goto failed;
	}
	for (i = 0, it = head; it != NULL; it = it->next, i++)
		tasks[i] = it->t;
	if ((rc = spool__enqueue_each(p->q, tasks, n, ids, rcs)) != SPOOL_OK)
		goto failed;
	free(tasks);
	p->retry_ms = 0;
	if (p->o.on_commit != NULL)
		for (i = 0, it = head; it != NULL; it = it->next, i++)
			p->o.on_commit(it->ticket, ids[i], rcs[i], p->o.cb_arg);
	for (it = head; it != NULL; it = it->next)
		last = it;
	pthread_mutex_lock(&p->mu);
	p->settled = last->ticket;
	p->npending -= n;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	free(ids);
	free(rcs);
	while ((it = head) != NULL) {
		head = it->next;
		item_free(it);
	}
	return;

failed:
	free(tasks);
	free(ids);
	free(rcs);
	for (it = head; it->next != NULL; it = it->next)
		;
	pthread_mutex_lock(&p->mu);
	it->next = p->head;		/* back in front, in order */
	if (p->tail == NULL)
		p->tail = it;
	p->head = head;
	p->nqueued += n;
	p->errcode = rc;
	snprintf(p->errmsg, sizeof p->errmsg, "%s", spool_errmsg(p->q));
	p->failures++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	p->retry_ms = p->retry_ms == 0 ? p->o.flush_interval_ms :
	    p->retry_ms * 2;
	if (p->retry_ms > RETRY_MAX_MS)
		p->retry_ms = RETRY_MAX_MS;
	if (p->retry_ms < 1)
		p->retry_ms = 1;
}

/* The loop's callback: decide whether to commit now, later or not. */
static void
producer_event(void *arg, int why)
{
	spool_producer	*p = arg;
	size_t		 n;
	int		 now, closing;

	if (why == SPOOL__LOOP_TIMER)
		p->timer_armed = 0;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		n = p->nqueued;
		now = p->flush_now;
		closing = p->closing;
		pthread_mutex_unlock(&p->mu);
		if (closing && n == 0) {
			spool__loop_exit(p->loop);
			return;
		}
		if (n == 0)
			return;
		/* After a failure, only the retry timer commits. */
		if (p->retry_ms > 0 && why != SPOOL__LOOP_TIMER) {
			if (!p->timer_armed) {
				spool__loop_arm(p->loop, p->retry_ms);
				p->timer_armed = 1;
			}
			return;
		}
		if (why != SPOOL__LOOP_TIMER && !now &&
		    n < (size_t)p->o.flush_count) {
			if (!p->timer_armed) {
				spool__loop_arm(p->loop, p->o.flush_interval_ms);
				p->timer_armed = 1;
			}
			return;
		}
		if (p->timer_armed) {
			spool__loop_arm(p->loop, -1);
			p->timer_armed = 0;
		}
		producer_commit(p);
		if (p->retry_ms > 0) {
			/* Failed: a closing producer gives up, others wait. */
			if (closing) {
				spool__loop_exit(p->loop);
				return;
			}
			spool__loop_arm(p->loop, p->retry_ms);
			p->timer_armed = 1;
			return;
		}
		pthread_mutex_lock(&p->mu);
		if (p->flush_now && p->settled >= p->last_ticket)
			p->flush_now = 0;
		pthread_mutex_unlock(&p->mu);
		why = SPOOL__LOOP_KICK;	/* what came meanwhile: as if kicked */
	}
}

static void *
producer_main(void *arg)
{
	spool_producer	*p = arg;

	spool__loop_run(p->loop);
	return (NULL);
}

/* Make a producer and start its thread. */
int
spool_producer_new(spool_producer **out, const char *path,
    const spool_producer_opts *opts)
{
	static const spool_producer_opts	 none = SPOOL_PRODUCER_OPTS_INIT;
	spool_producer				*p;
	char					 msg[160];
	int					 rc;

	if (out == NULL)
		return (SPOOL_EINVAL);
	*out = NULL;
	if ((p = calloc(1, sizeof *p)) == NULL)
		return (SPOOL_ENOMEM);
	*out = p;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (opts == NULL)
		opts = &none;
	p->o = *opts;
	if (opts->version < 1)
		return (producer_fail(p, SPOOL_EINVAL, "producer options: "
		    "version not set (use SPOOL_PRODUCER_OPTS_INIT)"));
	if (opts->version > SPOOL_PRODUCER_OPTS_VERSION) {
		snprintf(msg, sizeof msg, SPOOL__VERSION_UNKNOWN,
		    "spool_producer_opts", opts->version,
		    SPOOL_PRODUCER_OPTS_VERSION);
		return (producer_fail(p, SPOOL_EINVAL, msg));
	}
	if (p->o.flush_count == 0)
		p->o.flush_count = 256;
	if (p->o.flush_interval_ms == 0)
		p->o.flush_interval_ms = 10;
	if (p->o.max_pending == 0)
		p->o.max_pending = 10000;
	if (p->o.flush_count < 1 || p->o.flush_count > 1000000 ||
	    p->o.flush_interval_ms < 1 || p->o.flush_interval_ms > 3600000 ||
	    p->o.max_pending < 1 || p->o.block_ms < -1 ||
	    p->o.block_ms > SPOOL_YEAR_MS)
		return (producer_fail(p, SPOOL_EINVAL, "producer options out "
		    "of range (flush_count >= 1, flush_interval_ms 1 to "
		    "3600000, max_pending >= 1, block_ms >= -1)"));
	rc = spool_open(&p->q, path, p->o.open_flags);
	if (rc != SPOOL_OK)
		return (producer_fail(p, rc, p->q != NULL ?
		    spool_errmsg(p->q) : NULL));
	if ((p->loop = spool__loop_new(producer_event, p)) == NULL)
		return (producer_fail(p, SPOOL_ENOMEM, "cannot make the "
		    "producer's event loop"));
	if (pthread_create(&p->thread, NULL, producer_main, p) != 0)
		return (producer_fail(p, SPOOL_ERROR, "cannot start the "
		    "producer's thread"));
	p->started = 1;
	return (SPOOL_OK);
}

/* Accept one task. */
int
spool_producer_enqueue(int64_t *ticket_out, spool_producer *p,
    const char *queue, const void *payload, size_t len,
    const spool_enqueue_opts *opts)
{
	struct pitem	*it;
	struct timespec	 until;
	spool_task	 t;
	int		 rc, kick;

	if (ticket_out != NULL)
		*ticket_out = 0;
	if (p == NULL || !p->started)
		return (SPOOL_EINVAL);
	t.queue = queue;
	t.payload = payload;
	t.len = len;
	t.opts = opts;
	pthread_mutex_lock(&p->mu);
	rc = spool__enqueue_check(&p->chk, &t);
	if (rc != SPOOL_OK) {
		producer_fail(p, rc, p->chk.errmsg);
		pthread_mutex_unlock(&p->mu);
		return (rc);
	}
	pthread_mutex_unlock(&p->mu);
	if ((it = item_new(queue, payload, len, opts)) == NULL)
		return (producer_fail(p, SPOOL_ENOMEM, "out of memory"));

	pthread_mutex_lock(&p->mu);
	if (p->o.block_ms > 0)
		until = spool__clock_after_ms(CLOCK_REALTIME, p->o.block_ms);
	while (p->npending >= (size_t)p->o.max_pending && !p->closing) {
		if (p->o.block_ms == 0)
			break;
		if (p->o.block_ms < 0)
			pthread_cond_wait(&p->cv, &p->mu);
		else if (pthread_cond_timedwait(&p->cv, &p->mu, &until) ==
		    ETIMEDOUT)
			break;
	}
	if (p->closing || p->npending >= (size_t)p->o.max_pending) {
		pthread_mutex_unlock(&p->mu);
		item_free(it);
		if (p->closing)
			return (producer_fail(p, SPOOL_EINVAL,
			    "the producer is closing"));
		return (producer_fail(p, SPOOL_EFULL, "producer is full "
		    "(max_pending tasks accepted and not committed)"));
	}
	it->ticket = ++p->last_ticket;
	if (p->tail != NULL)
		p->tail->next = it;
	else
		p->head = it;
	p->tail = it;
	p->nqueued++;
	p->npending++;
	kick = p->nqueued == 1 || p->nqueued == (size_t)p->o.flush_count;
	if (ticket_out != NULL)
		*ticket_out = it->ticket;
	pthread_mutex_unlock(&p->mu);
	if (kick)
		spool__loop_kick(p->loop);
	mine.p = NULL;
	return (SPOOL_OK);
}

/* Every ticket up to this one is settled. */
int64_t
spool_producer_committed(spool_producer *p)
{
	int64_t	 n;

	if (p == NULL)
		return (0);
	pthread_mutex_lock(&p->mu);
	n = p->settled;
	pthread_mutex_unlock(&p->mu);
	return (n);
}

/* Commit what was accepted so far, and wait for it. */
int
spool_producer_flush(spool_producer *p)
{
	int64_t	 target, failures;
	int	 rc = SPOOL_OK;
	char	 msg[sizeof p->errmsg];

	if (p == NULL || !p->started)
		return (SPOOL_EINVAL);
	pthread_mutex_lock(&p->mu);
	target = p->last_ticket;
	failures = p->failures;
	if (p->settled < target)
		p->flush_now = 1;
	pthread_mutex_unlock(&p->mu);
	spool__loop_kick(p->loop);
	pthread_mutex_lock(&p->mu);
	while (p->settled < target) {
		if (p->failures != failures) {
			rc = p->errcode;
			snprintf(msg, sizeof msg, "%s", p->errmsg);
			break;
		}
		pthread_cond_wait(&p->cv, &p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	if (rc != SPOOL_OK)
		return (producer_fail(p, rc, msg));
	mine.p = NULL;
	return (SPOOL_OK);
}

/* Flush, stop, free. */
int
spool_producer_close(spool_producer *p)
{
	struct pitem	*it;
	int		 rc = SPOOL_OK;

	if (p == NULL)
		return (SPOOL_OK);
	if (p->started) {
		rc = spool_producer_flush(p);
		pthread_mutex_lock(&p->mu);
		p->closing = 1;
		pthread_cond_broadcast(&p->cv);	/* blocked enqueues give up */
		pthread_mutex_unlock(&p->mu);
		spool__loop_kick(p->loop);
		pthread_join(p->thread, NULL);
		/* What is left could not be committed: say so. */
		while ((it = p->head) != NULL) {
			p->head = it->next;
			if (p->o.on_commit != NULL)
				p->o.on_commit(it->ticket, 0, rc != SPOOL_OK ?
				    rc : SPOOL_ERROR, p->o.cb_arg);
			item_free(it);
		}
	}
	spool__loop_free(p->loop);
	spool_close(p->q);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	if (mine.p == p)
		mine.p = NULL;
	free(p);
	return (rc);
}

/* The calling thread's last failure on p. */
const char *
spool_producer_errmsg(const spool_producer *p)
{
	if (p == NULL)
		return ("out of memory (no producer)");
	if (mine.p != p)
		return ("no error");
	return (mine.msg);
}

/* The code of the calling thread's last failure on p, or SPOOL_OK if its
 * last call on p succeeded (as spool_producer_errmsg says). */
int
spool_producer_errcode(const spool_producer *p)
{
	if (p == NULL)
		return (SPOOL_ENOMEM);
	if (mine.p != p)
		return (SPOOL_OK);
	return (mine.code);
}

/* Test seam: the producer thread's handle (to set its busy timeout before
 * the first task is accepted). */
spool *
spool__producer_handle(spool_producer *p)
{
	return (p->q);
}
