/*
 * t-wait.c -- waiting for a task, a batch or a pipeline run to finish
 * (wait.c): spool_task_wait, spool_batch_wait, spool_run_wait.
 *
 * The finishing is done by another thread on its own handle, started by
 * a signal (from the waiter's first read where the test can see it), so
 * no test sleeps and hopes; timeouts are measured on the monotonic clock.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#define WAIT_LONG_MS	20000	/* a wait that should end long before */

/* A thread that, once told to go, claims n tasks of queue on its own
 * handle and completes each with "done". */
struct finisher {
	spool		*h;
	const char	*queue;
	int		 n;
	pthread_t	 thread;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	int		 go;
	int		 reads;		/* the waiter's reads (task waits) */
	int		 finished;	/* tasks it completed */
	int		 rc;		/* its first failure, else SPOOL_OK */
	char		 err[256];
};

/* The finisher's thread body. */
static void *
finisher_main(void *arg)
{
	struct finisher	*f = arg;
	spool_job	*job;
	int		 i, rc;

	pthread_mutex_lock(&f->mu);
	while (!f->go)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
	for (i = 0; i < f->n; i++) {
		job = NULL;
		if ((rc = spool_claim(&job, f->h, f->queue, NULL)) != SPOOL_OK ||
		    (rc = spool_job_complete(job, "done", 4)) != SPOOL_OK) {
			f->rc = rc;
			snprintf(f->err, sizeof f->err, "%s", spool_errmsg(f->h));
			spool_job_free(job);
			break;
		}
		spool_job_free(job);
		f->finished++;
	}
	return (NULL);
}

/* Start a finisher for n tasks of queue, on a handle of its own. */
static void
finisher_start(struct finisher *f, const char *queue, int n)
{
	memset(f, 0, sizeof *f);
	f->h = tu_open(tu_db, 0);
	f->queue = queue;
	f->n = n;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	CU_ASSERT_FATAL(pthread_create(&f->thread, NULL, finisher_main, f) == 0);
}

/* Tell the finisher to go. */
static void
finisher_go(struct finisher *f)
{
	pthread_mutex_lock(&f->mu);
	f->go = 1;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* Wait for the finisher's thread and check it did its work. */
static void
finisher_join(struct finisher *f)
{
	finisher_go(f);		/* if the test did not get that far */
	pthread_join(f->thread, NULL);
	if (f->rc != SPOOL_OK)
		fprintf(stderr, "\nfinisher: %s\n", f->err);
	TU_RC(f->rc, SPOOL_OK);
	CU_ASSERT_EQUAL(f->finished, f->n);
	spool_close(f->h);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
}

/* The waiting handle's clock (spool_get reads it once per read): the
 * fake clock, and the finisher's signal at the first read. */
static int64_t
waiter_clock(void *arg)
{
	struct finisher	*f = arg;

	if (f->reads++ == 0)
		finisher_go(f);
	return (tu_now);
}

/* Milliseconds on the monotonic clock. */
static int64_t
mono_ms(void)
{
	return (spool__clock_ms(CLOCK_MONOTONIC));
}

/* A task finished by another thread after the wait's first read (which
 * saw it ready): the wait reads it again and returns it, with its
 * result, as spool_get would. */
static void
test_task_finished_meanwhile(void)
{
	struct finisher	 f;
	spool_task_info	*t = NULL;
	spool		*w;
	int64_t		 id, t0;
	int		 rc;

	id = tu_enqueue("q", "x");
	finisher_start(&f, "q", 1);
	w = tu_open(tu_db, 0);
	spool__set_clock(w, waiter_clock, &f);
	t0 = mono_ms();
	rc = spool_task_wait(&t, w, id, WAIT_LONG_MS);
	TU_RC(rc, SPOOL_OK);
	CU_ASSERT(mono_ms() - t0 < WAIT_LONG_MS);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(t->id, id);
	CU_ASSERT_EQUAL(t->state, SPOOL_SUCCEEDED);
	CU_ASSERT_EQUAL(t->has_result, 1);
	CU_ASSERT_EQUAL(t->result_len, 4);
	CU_ASSERT(t->result != NULL && memcmp(t->result, "done", 4) == 0);
	CU_ASSERT(f.reads >= 2);	/* it was not final at the first */
	CU_ASSERT_EQUAL(spool_errcode(w), SPOOL_OK);
	spool_task_info_free(t, 1);
	finisher_join(&f);
	spool_close(w);
}

/* Waiting forever (timeout < 0) ends too once the task is final. */
static void
test_task_forever(void)
{
	struct finisher	 f;
	spool_task_info	*t = NULL;
	spool		*w;
	int64_t		 id;

	id = tu_enqueue("q", "x");
	finisher_start(&f, "q", 1);
	w = tu_open(tu_db, 0);
	spool__set_clock(w, waiter_clock, &f);
	TU_RC(spool_task_wait(&t, w, id, -1), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(t->state, SPOOL_SUCCEEDED);
	spool_task_info_free(t, 1);
	finisher_join(&f);
	spool_close(w);
}

/* Dead and cancelled are final too; a final task is returned at once,
 * even with timeout 0. */
static void
test_task_final_states(void)
{
	spool_task_info	*t = NULL;
	spool_job	*job = NULL;
	int64_t		 a, b;

	a = tu_enqueue("q", "a");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_OK);
	TU_RC(spool_job_fail(job, "no", SPOOL_FAIL_PERMANENT), SPOOL_OK);
	spool_job_free(job);
	b = tu_enqueue("q", "b");
	TU_RC(spool_cancel(NULL, tu_q, b), SPOOL_OK);

	TU_RC(spool_task_wait(&t, tu_q, a, 0), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(t->state, SPOOL_DEAD);
	CU_ASSERT_EQUAL(t->dead_reason, SPOOL_DEAD_FAILED);
	spool_task_info_free(t, 1);
	TU_RC(spool_task_wait(&t, tu_q, b, 0), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(t->state, SPOOL_CANCELLED);
	spool_task_info_free(t, 1);
}

/* A task nobody works: SPOOL_ETIMEDOUT after the timeout and not much
 * later, with the task as last read; 0 looks once. */
static void
test_task_timeout(void)
{
	spool_task_info	*t = NULL;
	int64_t		 id, t0, took;

	id = tu_enqueue("q", "x");
	t0 = mono_ms();
	TU_RC(spool_task_wait(&t, tu_q, id, 300), SPOOL_ETIMEDOUT);
	took = mono_ms() - t0;
	CU_ASSERT(took >= 300);
	CU_ASSERT(took < 300 + 2000);
	CU_ASSERT_EQUAL(spool_errcode(tu_q), SPOOL_ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q), "still ready"));
	CU_ASSERT_STRING_EQUAL(spool_strerror(SPOOL_ETIMEDOUT), "timed out");
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(t->id, id);
	CU_ASSERT_EQUAL(t->state, SPOOL_READY);
	spool_task_info_free(t, 1);

	t0 = mono_ms();
	TU_RC(spool_task_wait(&t, tu_q, id, 0), SPOOL_ETIMEDOUT);
	CU_ASSERT(mono_ms() - t0 < 1000);
	CU_ASSERT_PTR_NOT_NULL(t);
	spool_task_info_free(t, 1);

	/* A call that succeeds after it clears the error. */
	TU_RC(spool_task_get(&t, tu_q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(spool_errcode(tu_q), SPOOL_OK);
	spool_task_info_free(t, 1);
}

/* Missing ids: SPOOL_ENOENT at once, whatever the timeout. */
static void
test_missing(void)
{
	spool_task_info		*t = (spool_task_info *)&t;
	spool_batch_info	*b = (spool_batch_info *)&b;
	spool_run_info		*r = (spool_run_info *)&r;
	int64_t			 t0 = mono_ms();

	TU_RC(spool_task_wait(&t, tu_q, 12345, WAIT_LONG_MS), SPOOL_ENOENT);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q), "no such task"));
	TU_RC(spool_batch_wait(&b, tu_q, 12345, -1), SPOOL_ENOENT);
	CU_ASSERT_PTR_NULL(b);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q), "no such batch"));
	TU_RC(spool_run_wait(&r, tu_q, 12345, -1), SPOOL_ENOENT);
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q), "no such run"));
	CU_ASSERT(mono_ms() - t0 < 5000);
}

/* Bad arguments: SPOOL_EINVAL with a message naming the call. */
static void
test_bad_arguments(void)
{
	spool_task_info		*t = (spool_task_info *)&t;
	spool_batch_info	*b = (spool_batch_info *)&b;
	spool_run_info		*r = (spool_run_info *)&r;

	TU_RC(spool_task_wait(NULL, tu_q, 1, 0), SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q),
	    "spool_task_wait: out is NULL"));
	TU_RC(spool_task_wait(&t, tu_q, 0, 0), SPOOL_EINVAL);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q),
	    "spool_task_wait: task id must be positive"));
	TU_RC(spool_task_wait(&t, NULL, 1, 0), SPOOL_EINVAL);

	TU_RC(spool_batch_wait(NULL, tu_q, 1, 0), SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q),
	    "spool_batch_wait: out is NULL"));
	TU_RC(spool_batch_wait(&b, tu_q, -4, 0), SPOOL_EINVAL);
	CU_ASSERT_PTR_NULL(b);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q),
	    "batch id must be positive"));
	TU_RC(spool_batch_wait(&b, NULL, 1, 0), SPOOL_EINVAL);

	TU_RC(spool_run_wait(NULL, tu_q, 1, 0), SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q),
	    "spool_run_wait: out is NULL"));
	TU_RC(spool_run_wait(&r, tu_q, 0, 0), SPOOL_EINVAL);
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q),
	    "run id must be positive"));
	TU_RC(spool_run_wait(&r, NULL, 1, 0), SPOOL_EINVAL);
}

/* A closed batch finished by another thread; an open one times out
 * (it never finishes until closed), with its state as last read. */
static void
test_batch(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_batch_info	*b = NULL;
	struct finisher		 f;
	int64_t			 id, other, tid, t0;

	TU_RC(spool_batch_create(&id, tu_q, NULL), SPOOL_OK);
	o.batch_id = id;
	TU_RC(spool_enqueue(&tid, tu_q, "bq", "1", 1, &o), SPOOL_OK);
	TU_RC(spool_enqueue(&tid, tu_q, "bq", "2", 1, &o), SPOOL_OK);

	t0 = mono_ms();
	TU_RC(spool_batch_wait(&b, tu_q, id, 100), SPOOL_ETIMEDOUT);
	CU_ASSERT(mono_ms() - t0 >= 100);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->state, SPOOL_BATCH_OPEN);
	CU_ASSERT_EQUAL(b->pending, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q), "still open"));
	spool_batch_info_free(b, 1);

	TU_RC(spool_batch_close(tu_q, id), SPOOL_OK);
	TU_RC(spool_batch_wait(&b, tu_q, id, 0), SPOOL_ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->state, SPOOL_BATCH_CLOSED);
	spool_batch_info_free(b, 1);

	finisher_start(&f, "bq", 2);
	finisher_go(&f);
	TU_RC(spool_batch_wait(&b, tu_q, id, WAIT_LONG_MS), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->id, id);
	CU_ASSERT_EQUAL(b->state, SPOOL_BATCH_FINISHED);
	CU_ASSERT_EQUAL(b->total, 2);
	CU_ASSERT_EQUAL(b->succeeded, 2);
	spool_batch_info_free(b, 1);
	finisher_join(&f);

	/* A closed batch without members is finished already. */
	TU_RC(spool_batch_create(&other, tu_q, NULL), SPOOL_OK);
	TU_RC(spool_batch_close(tu_q, other), SPOOL_OK);
	TU_RC(spool_batch_wait(&b, tu_q, other, 0), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(b->state, SPOOL_BATCH_FINISHED);
	spool_batch_info_free(b, 1);
}

/* A run whose items another thread takes through its one stage: the
 * wait returns it in full, stages and all; before that, a timeout gives
 * the run as a list reads it. */
static void
test_run(void)
{
	spool_stage		 s = SPOOL_STAGE_INIT;
	spool_item		 it[2] = { { "a", 1 }, { "b", 1 } };
	spool_run_info		*r = NULL;
	struct finisher		 f;
	int64_t			 run = 0;
	int			 v = 0;

	s.name = "s";
	TU_RC(spool_pipeline_create(&v, tu_q, "p", &s, 1, 0), SPOOL_OK);
	TU_RC(spool_pipeline_start(&run, NULL, tu_q, "p", it, 2, NULL),
	    SPOOL_OK);

	TU_RC(spool_run_wait(&r, tu_q, run, 0), SPOOL_ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_RUNNING);
	CU_ASSERT_EQUAL(r->running, 2);
	CU_ASSERT_EQUAL(r->nstages, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q), "still running"));
	spool_run_info_free(r, 1);

	finisher_start(&f, "p/s", 2);
	finisher_go(&f);
	TU_RC(spool_run_wait(&r, tu_q, run, WAIT_LONG_MS), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->id, run);
	CU_ASSERT_EQUAL(r->state, SPOOL_RUN_FINISHED);
	CU_ASSERT_EQUAL(r->succeeded, 2);
	CU_ASSERT_EQUAL(r->nstages, 1);
	CU_ASSERT_PTR_NOT_NULL(r->stages);
	spool_run_info_free(r, 1);
	finisher_join(&f);
}

static CU_TestInfo wait_tests[] = {
	{ "task finished by another thread", test_task_finished_meanwhile },
	{ "task waited for forever", test_task_forever },
	{ "dead and cancelled are final", test_task_final_states },
	{ "task timeout", test_task_timeout },
	{ "missing ids", test_missing },
	{ "bad arguments", test_bad_arguments },
	{ "batch", test_batch },
	{ "pipeline run", test_run },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("wait", wait_tests));
}
