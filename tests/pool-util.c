/*
 * pool-util.c -- what the worker pool tests share (see pool-util.h):
 * clocks and waiting, a handle on the real clock with small SQL helpers,
 * the recorder of what a pool reported, pools made and run in a thread,
 * and the handlers more than one of t-pool*.c uses.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool-util.h"

/* ---- Clocks, atomics and waiting --------------------------------------- */

int64_t
mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* The wall clock, as the engine and the database use it. */
int64_t
wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

void
sleep_ms(int64_t ms)
{
	struct timespec	 ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		continue;
}

int
load(const int *v)
{
	return (__atomic_load_n(v, __ATOMIC_ACQUIRE));
}

void
store(int *v, int x)
{
	__atomic_store_n(v, x, __ATOMIC_RELEASE);
}

int64_t
load64(const int64_t *v)
{
	return (__atomic_load_n(v, __ATOMIC_ACQUIRE));
}

void
store64(int64_t *v, int64_t x)
{
	__atomic_store_n(v, x, __ATOMIC_RELEASE);
}

int
wait_flag(const int *flag, int64_t ms)
{
	int64_t	 end = mono_ms() + ms;
	int	 v;

	while ((v = load(flag)) == 0 && mono_ms() < end)
		sleep_ms(1);
	return (v);
}

/* ---- The database, on the real clock ----------------------------------- */

spool *
real_open(void)
{
	spool	*q = NULL;
	int	 rc;

	if ((rc = spool_open(&q, tu_db, 0)) != SPOOL_OK) {
		fprintf(stderr, "\nreal_open: %s\n", spool_errmsg(q));
		spool_close(q);
		CU_FAIL_FATAL("real_open");
		return (NULL);
	}
	return (q);
}

int64_t
q_int(spool *q, const char *fmt, ...)
{
	sqlite3_stmt	*st;
	va_list		 ap;
	char		*sql;
	int64_t		 v = -1;

	va_start(ap, fmt);
	sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	if (sql == NULL)
		return (-2);
	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "\nq_int: %s: %s\n", sql,
		    sqlite3_errmsg(q->db));
		sqlite3_free(sql);
		return (-2);
	}
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		v = sqlite3_column_int64(st, 0);
		break;
	case SQLITE_DONE:
		break;
	default:
		v = -2;
	}
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return (v);
}

const char *
q_text(spool *q, char *buf, size_t len, const char *fmt, ...)
{
	sqlite3_stmt		*st;
	const unsigned char	*s;
	va_list			 ap;
	char			*sql;

	snprintf(buf, len, "?error");
	va_start(ap, fmt);
	sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	if (sql == NULL)
		return (buf);
	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) == SQLITE_OK) {
		buf[0] = '\0';
		if (sqlite3_step(st) == SQLITE_ROW &&
		    (s = sqlite3_column_text(st, 0)) != NULL)
			snprintf(buf, len, "%s", (const char *)s);
		sqlite3_finalize(st);
	} else
		fprintf(stderr, "\nq_text: %s: %s\n", sql,
		    sqlite3_errmsg(q->db));
	sqlite3_free(sql);
	return (buf);
}

int64_t
enqueue1(spool *q, const char *queue, const char *text)
{
	int64_t	 id = 0;

	TU_RC(spool_enqueue(&id, q, queue, text, strlen(text), NULL),
	    SPOOL_OK);
	return (id);
}

void
enqueue_n(spool *q, const char *queue, const char *text, size_t n,
    int64_t *ids)
{
	spool_task	 t[500];
	size_t		 i, k, chunk;

	for (i = 0; i < n; i += chunk) {
		chunk = n - i < 500 ? n - i : 500;
		for (k = 0; k < chunk; k++) {
			t[k].queue = queue;
			t[k].payload = text;
			t[k].len = strlen(text);
			t[k].opts = NULL;
		}
		TU_RC(spool_enqueue_many(ids != NULL ? ids + i : NULL, NULL, q,
		    t, chunk), SPOOL_OK);
	}
}

/* Settings do not depend on the clock, so tu_q will do. */
void
make_queue(const char *name, int max_attempts, int64_t backoff_ms,
    int64_t timeout_ms)
{
	spool_queue_opts	 o = SPOOL_QUEUE_OPTS_INIT;

	o.set = SPOOL_QUEUE_BACKOFF | SPOOL_QUEUE_BACKOFF_BASE |
	    SPOOL_QUEUE_BACKOFF_JITTER | SPOOL_QUEUE_MAX_ATTEMPTS;
	o.backoff = SPOOL_BACKOFF_FIXED;
	o.backoff_base_ms = backoff_ms;
	o.backoff_jitter = 0;
	o.max_attempts = max_attempts;
	if (timeout_ms > 0) {
		o.set |= SPOOL_QUEUE_TIMEOUT;
		o.timeout_ms = timeout_ms;
	}
	TU_RC(spool_queue_create(tu_q, name, &o), SPOOL_OK);
}

/* ---- What the pool reported -------------------------------------------- */

struct rec *
rec_new(void)
{
	struct rec	*r;

	/* Too large for a test's stack under the sanitizers: on the heap. */
	r = calloc(1, sizeof *r);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	r->self = r;
	CU_ASSERT_FATAL(pthread_mutex_init(&r->mu, NULL) == 0);
	return (r);
}

void
rec_free(struct rec *r)
{
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->mu);
	free(r);
}

struct rec *
rec_of(void *arg)
{
	struct rec	*r = arg;

	if (r == NULL || r->self != r) {
		fprintf(stderr, "\na pool callback was given another cb_arg "
		    "(%p)\n", arg);
		abort();
	}
	return (r);
}

void
rec_done(const spool_outcome *o, void *arg)
{
	struct rec	*r = rec_of(arg);
	struct done_rec	*d;
	int		 stop = 0;

	pthread_mutex_lock(&r->mu);
	if (r->ndone < REC_MAX) {
		d = &r->done[r->ndone];
		d->id = o->id;
		d->kind = o->kind;
		d->attempt = o->attempt;
		d->timed_out = o->timed_out;
		d->at_ms = mono_ms();
		snprintf(d->queue, sizeof d->queue, "%s", o->queue);
		d->has_error = o->error != NULL;
		snprintf(d->error, sizeof d->error, "%s",
		    o->error != NULL ? o->error : "");
	}
	r->ndone++;
	if (o->kind != SPOOL_OUTCOME_RETRYING)
		r->nfinal++;
	if (r->stop_after_final > 0 && r->nfinal == r->stop_after_final)
		stop = 1;
	pthread_mutex_unlock(&r->mu);
	if (r->hook != NULL)
		r->hook(o, r->user);
	if (stop)
		spool_pool_stop(r->pool, 0);
}

void
rec_tick(const spool_pool_stats *st, void *arg)
{
	struct rec	*r = rec_of(arg);
	int		 stop = 0;

	pthread_mutex_lock(&r->mu);
	r->ticks++;
	if (st->workers > r->tick_max_workers)
		r->tick_max_workers = st->workers;
	if (r->tick_target > 0 && st->succeeded >= r->tick_target) {
		if (r->tick_done_ms == 0)
			r->tick_done_ms = mono_ms();
		if (r->tick_back_ms == 0 && st->workers <= r->tick_min) {
			r->tick_back_ms = mono_ms();
			r->tick_back_workers = st->workers;
			stop = 1;
		}
	}
	pthread_mutex_unlock(&r->mu);
	if (stop)
		spool_pool_stop(r->pool, 0);
}

void
rec_start(struct rec *r, spool_job *job)
{
	pthread_mutex_lock(&r->mu);
	if (r->nstart < REC_MAX) {
		r->start_id[r->nstart] = spool_job_id(job);
		r->start_q[r->nstart] = spool_job_queue(job)[0];
	}
	r->nstart++;
	pthread_mutex_unlock(&r->mu);
}

size_t
rec_nstart(struct rec *r)
{
	size_t	 n;

	pthread_mutex_lock(&r->mu);
	n = r->nstart;
	pthread_mutex_unlock(&r->mu);
	return (n);
}

int
count_kind(struct rec *r, int kind)
{
	size_t	 i;
	int	 n = 0;

	pthread_mutex_lock(&r->mu);
	for (i = 0; i < r->ndone && i < REC_MAX; i++)
		if (kind == 0 || r->done[i].kind == kind)
			n++;
	pthread_mutex_unlock(&r->mu);
	return (n);
}

const struct done_rec *
find_done(struct rec *r, int64_t id, int n)
{
	size_t	 i;

	for (i = 0; i < r->ndone && i < REC_MAX; i++)
		if (r->done[i].id == id && n-- == 0)
			return (&r->done[i]);
	return (NULL);
}

int
started(struct rec *r, int64_t id)
{
	size_t	 i;

	for (i = 0; i < r->nstart && i < REC_MAX; i++)
		if (r->start_id[i] == id)
			return (1);
	return (0);
}

/* ---- Pools ------------------------------------------------------------- */

void
opts_init(spool_pool_opts *o, const char *const *queues, size_t n,
    struct rec *r)
{
	spool_pool_opts	 def = SPOOL_POOL_OPTS_INIT;

	*o = def;
	o->queues = queues;
	o->nqueues = n;
	o->on_done = rec_done;
	o->cb_arg = r;
	o->max_time_ms = GUARD_MS;
}

spool_pool *
pool_make(spool_handler fn, void *arg, const spool_pool_opts *o)
{
	spool_pool	*p = NULL;
	int		 rc;

	rc = spool_pool_new(&p, tu_db, fn, arg, o);
	if (rc != SPOOL_OK) {
		fprintf(stderr, "\nspool_pool_new: %s\n", spool_pool_errmsg(p));
		TU_RC(rc, SPOOL_OK);
		spool_pool_free(p);
		return (NULL);
	}
	if (o->on_done == rec_done || o->on_tick == rec_tick)
		rec_of(o->cb_arg)->pool = p;
	return (p);
}

static void *
runner_main(void *arg)
{
	struct runner	*r = arg;

	r->rc = spool_pool_run(r->p);
	return (NULL);
}

void
runner_start(struct runner *r, spool_pool *p)
{
	r->p = p;
	r->rc = -999;
	r->ok = pthread_create(&r->t, NULL, runner_main, r) == 0;
	CU_ASSERT_FATAL(r->ok);
}

int
runner_join(struct runner *r)
{
	if (r->ok)
		pthread_join(r->t, NULL);
	r->ok = 0;
	return (r->rc);
}

/* ---- Handlers more than one file uses ---------------------------------- */

int
h_none(spool_job *job, void *arg)
{
	(void)job;
	(void)arg;
	return (SPOOL_DONE);
}

void
slow_init(struct slow *s, struct rec *r, int ms)
{
	s->rec = r;
	s->ms = ms;
	s->calls = 0;
}

int
h_slow(spool_job *job, void *arg)
{
	struct slow	*s = arg;

	rec_start(s->rec, job);
	__atomic_fetch_add(&s->calls, 1, __ATOMIC_ACQ_REL);
	sleep_ms(load(&s->ms));
	return (SPOOL_DONE);
}

int
h_gate(spool_job *job, void *arg)
{
	struct gate	*g = arg;

	rec_start(g->rec, job);
	(void)wait_flag(&g->open, 3000);
	return (SPOOL_DONE);
}

spool_pool *
gated_pool(spool *q, const char *const *qs, size_t n, int64_t *ids,
    struct gate *g, struct runner *run)
{
	spool_pool_opts	 o;
	spool_pool	*p;

	store(&g->open, 0);
	enqueue_n(q, qs[0], "c", n, ids);
	opts_init(&o, qs, 1, g->rec);
	o.min_workers = o.max_workers = 1;
	if ((p = pool_make(h_gate, g, &o)) == NULL)
		return (NULL);
	p->ahead_fixed = 3;
	runner_start(run, p);
	return (p);
}
