/*
 * t-admin.c -- reading tasks and the operator's actions (inspect.c,
 * actions.c, and queue configuration in queue.c): get, list, history, cancel, retry,
 * retry_all, purge, prune, stats, and queue create/set/get/list.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Create queue with fixed backoff 0 (failed tasks are due at once). */
static void
queue_now(const char *queue)
{
	spool_queue_opts	 o = SPOOL_QUEUE_OPTS_INIT;

	o.set = SPOOL_QUEUE_BACKOFF | SPOOL_QUEUE_BACKOFF_BASE |
	    SPOOL_QUEUE_BACKOFF_JITTER;
	o.backoff = SPOOL_BACKOFF_FIXED;
	o.backoff_base_ms = 0;
	o.backoff_jitter = 0;
	TU_RC(spool_queue_create(tu_q, queue, &o), SPOOL_OK);
}

/* Claim the next task of queue, asserting there is one. */
static spool_job *
claim(const char *queue)
{
	spool_job	*job = NULL;

	TU_RC(spool_claim(&job, tu_q, queue, NULL), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL(job);
	return (job);
}

/* Claim the next task of queue and end it: 0 complete, 1 fail
 * permanently (dead), 2 fail (retry), 3 leave running (job leaked to
 * *keep if given).  Returns its id. */
static int64_t
finish(const char *queue, int how, spool_job **keep)
{
	spool_job	*job;
	int64_t		 id;

	if ((job = claim(queue)) == NULL)
		return (0);
	id = spool_job_id(job);
	switch (how) {
	case 0:
		TU_RC(spool_job_complete(job, "done", 4), SPOOL_OK);
		break;
	case 1:
		TU_RC(spool_job_fail(job, "dead", SPOOL_FAIL_PERMANENT),
		    SPOOL_OK);
		break;
	case 2:
		TU_RC(spool_job_fail(job, "again", 0), SPOOL_OK);
		break;
	}
	if (how == 3 && keep != NULL)
		*keep = job;
	else
		spool_job_free(job);
	return (id);
}

/* Add n tasks to queue in one call with opts o (may be NULL); the first
 * id in *first if given. */
static void
enqueue_n(const char *queue, size_t n, const spool_enqueue_opts *o,
    int64_t *first)
{
	spool_task	*t;
	int64_t		*ids;
	size_t		 i;

	t = calloc(n, sizeof *t);
	ids = calloc(n, sizeof *ids);
	if (t == NULL || ids == NULL) {
		CU_FAIL("calloc");
		free(t);
		free(ids);
		return;
	}
	for (i = 0; i < n; i++)
		t[i] = (spool_task){ queue, "x", 1, o };
	TU_RC(spool_enqueue_many(ids, NULL, tu_q, t, n), SPOOL_OK);
	if (first != NULL)
		*first = ids[0];
	free(t);
	free(ids);
}

/* Make n dead tasks in queue at once: deadlines that pass, then a reap. */
static void
make_dead(const char *queue, size_t n)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	int64_t			 reaped = 0;

	o.deadline_ms = tu_now + 1;
	enqueue_n(queue, n, &o, NULL);
	tu_advance(2);
	TU_RC(spool_reap(&reaped, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(reaped, (int64_t)n);
}

/* get returns every field of a task; a missing id is SPOOL_ENOENT and an
 * id <= 0 is SPOOL_EINVAL. */
static void
test_get(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_task_info		*t = (spool_task_info *)1;
	int64_t			 id = 0;

	TU_RC(spool_task_get(&t, tu_q, 1), SPOOL_ENOENT);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT(tu_q->errmsg[0] != '\0');
	TU_RC(spool_task_get(&t, tu_q, 0), SPOOL_EINVAL);
	TU_RC(spool_task_get(&t, tu_q, -5), SPOOL_EINVAL);

	o.priority = 3;
	o.delay_ms = 500;
	o.deadline_ms = tu_now + 9000;
	o.max_attempts = 4;
	o.key = "key-1";
	TU_RC(spool_enqueue(&id, tu_q, "q", "payload", 7, &o), SPOOL_OK);
	TU_RC(spool_task_get(&t, tu_q, id + 1), SPOOL_ENOENT);
	TU_RC(spool_task_get(&t, tu_q, id), SPOOL_OK);
	if (t == NULL)
		return;
	CU_ASSERT_EQUAL(t->id, id);
	CU_ASSERT_STRING_EQUAL(t->queue, "q");
	CU_ASSERT_EQUAL(t->state, SPOOL_READY);
	CU_ASSERT_EQUAL(t->priority, 3);
	CU_ASSERT(t->payload_len == 7 && memcmp(t->payload, "payload", 7) == 0);
	CU_ASSERT_EQUAL(t->run_at_ms, tu_now + 500);
	CU_ASSERT_EQUAL(t->deadline_ms, tu_now + 9000);
	CU_ASSERT_EQUAL(t->attempts, 0);
	CU_ASSERT_EQUAL(t->max_attempts, 4);
	CU_ASSERT_STRING_EQUAL(t->key, "key-1");
	CU_ASSERT_PTR_NULL(t->lease_owner);
	CU_ASSERT_EQUAL(t->lease_until_ms, 0);
	CU_ASSERT_EQUAL(t->created_ms, tu_now);
	CU_ASSERT_EQUAL(t->started_ms, 0);
	CU_ASSERT_EQUAL(t->finished_ms, 0);
	CU_ASSERT_PTR_NULL(t->last_error);
	CU_ASSERT_EQUAL(t->dead_reason, 0);
	CU_ASSERT_EQUAL(t->has_result, 0);
	CU_ASSERT_PTR_NULL(t->result);
	spool_task_info_free(t, 1);
}

/* list filters by queue and by state, in id order. */
static void
test_list_filters(void)
{
	spool_list_opts	 lo = SPOOL_LIST_OPTS_INIT;
	spool_task_info	*t = NULL;
	spool_job	*job = NULL;
	size_t		 n = 0, i;
	int64_t		 a1;

	a1 = tu_enqueue("a", "1");
	tu_enqueue("b", "2");
	tu_enqueue("a", "3");
	tu_enqueue("b", "4");
	tu_enqueue("a", "5");
	job = claim("a");
	CU_ASSERT(job != NULL && spool_job_id(job) == a1);

	TU_RC(spool_list(&t, &n, tu_q, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 5);
	for (i = 1; i < n; i++)
		CU_ASSERT(t[i].id > t[i - 1].id);
	spool_task_info_free(t, n);

	lo.queue = "a";
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 3);
	for (i = 0; i < n; i++)
		CU_ASSERT_STRING_EQUAL(t[i].queue, "a");
	spool_task_info_free(t, n);

	lo.queue = NULL;
	lo.state = SPOOL_READY;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 4);
	for (i = 0; i < n; i++)
		CU_ASSERT_EQUAL(t[i].state, SPOOL_READY);
	spool_task_info_free(t, n);

	lo.queue = "a";
	lo.state = SPOOL_RUNNING;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	if (n == 1) {
		CU_ASSERT_EQUAL(t[0].id, a1);
		CU_ASSERT_PTR_NOT_NULL(t[0].lease_owner);
		CU_ASSERT(t[0].payload_len == 1 && memcmp(t[0].payload, "1",
		    1) == 0);
	}
	spool_task_info_free(t, n);

	lo.state = SPOOL_SUCCEEDED;
	t = (spool_task_info *)1;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_PTR_NULL(t);

	lo.state = 99;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_EINVAL);
	lo.state = 0;
	lo.version = 0;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_EINVAL);
	spool_job_free(job);
}

/* Walk all tasks in pages in one direction; each id must be seen once. */
static void
walk(const int64_t *ids, size_t nids, int descending)
{
	spool_list_opts	 lo = SPOOL_LIST_OPTS_INIT;
	spool_task_info	*t = NULL;
	size_t		 n = 0, i, j, pages = 0, seen_total = 0;
	char		*seen;
	int64_t		 last = 0;

	if ((seen = calloc(nids, 1)) == NULL) {
		CU_FAIL("calloc");
		return;
	}
	lo.limit = 100;
	lo.descending = descending;
	for (;;) {
		lo.after_id = last;
		TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
		if (n == 0)
			break;
		pages++;
		CU_ASSERT(n <= 100);
		for (i = 0; i < n; i++) {
			if (last != 0)
				CU_ASSERT(descending ? t[i].id < last :
				    t[i].id > last);
			last = t[i].id;
			for (j = 0; j < nids && ids[j] != t[i].id; j++)
				continue;
			CU_ASSERT(j < nids);
			if (j < nids) {
				CU_ASSERT_EQUAL(seen[j], 0);
				seen[j]++;
				seen_total++;
			}
		}
		spool_task_info_free(t, n);
		t = NULL;
		if (pages > 10)
			break;
	}
	CU_ASSERT_EQUAL(pages, 3);
	CU_ASSERT_EQUAL(seen_total, nids);
	free(seen);
}

/* Keyset pagination over 250 tasks in pages of 100 returns each task
 * exactly once, oldest first and newest first. */
static void
test_list_pages(void)
{
	spool_list_opts	 lo = SPOOL_LIST_OPTS_INIT;
	spool_task_info	*t = NULL;
	int64_t		 ids[250];
	size_t		 i, n = 0;

	for (i = 0; i < 250; i++)
		ids[i] = tu_enqueue(i % 2 ? "odd" : "even", "x");
	walk(ids, 250, 0);
	walk(ids, 250, 1);
	/* The first page newest first starts at the newest task. */
	lo.descending = 1;
	lo.limit = 2;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2);
	if (n == 2)
		CU_ASSERT(t[0].id == ids[249] && t[1].id == ids[248]);
	spool_task_info_free(t, n);
	/* Pages of one queue. */
	lo.descending = 0;
	lo.limit = 100;
	lo.queue = "odd";
	lo.after_id = ids[200];
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 25);	/* odd i from 201 to 249 */
	spool_task_info_free(t, n);
}

/* Running tasks are listed through their own index (admin.sql's
 * task_list_running_*): the same pages, filters and orders as any state. */
static void
test_list_running(void)
{
	spool_list_opts	 lo = SPOOL_LIST_OPTS_INIT;
	spool_task_info	*t = NULL;
	spool_job	*jobs[12];
	int64_t		 want[12];
	size_t		 i, n = 0;

	for (i = 0; i < 30; i++)
		tu_enqueue(i % 2 ? "odd" : "even", "x");
	for (i = 0; i < 12; i++) {
		jobs[i] = claim(i % 3 ? "odd" : "even");
		want[i] = jobs[i] != NULL ? spool_job_id(jobs[i]) : 0;
	}
	lo.state = SPOOL_RUNNING;
	lo.limit = 100;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 12);
	for (i = 1; i < n; i++)
		CU_ASSERT(t[i].id > t[i - 1].id && t[i].state == SPOOL_RUNNING);
	spool_task_info_free(t, n);
	/* One queue, a page at a time, both ways. */
	lo.queue = "odd";
	lo.limit = 3;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 3);
	if (n == 3) {
		lo.after_id = t[2].id;
		CU_ASSERT(strcmp(t[0].queue, "odd") == 0);
	}
	spool_task_info_free(t, n);
	lo.limit = 100;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 5);		/* 8 odd ones running, 3 seen */
	spool_task_info_free(t, n);
	lo.descending = 1;
	lo.after_id = 0;
	lo.queue = NULL;
	lo.limit = 2;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2);
	if (n == 2) {
		int64_t	 max = 0;

		for (i = 0; i < 12; i++)
			max = want[i] > max ? want[i] : max;
		CU_ASSERT_EQUAL(t[0].id, max);
		CU_ASSERT(t[1].id < t[0].id);
	}
	spool_task_info_free(t, n);
	/* Finished ones leave the list. */
	TU_RC(spool_job_complete(jobs[0], NULL, 0), SPOOL_OK);
	lo.descending = 0;
	lo.limit = 100;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 11);
	spool_task_info_free(t, n);
	for (i = 0; i < 12; i++)
		spool_job_free(jobs[i]);
}

/* The attempt history lists each finished attempt, oldest first. */
static void
test_attempts(void)
{
	spool_attempt_info	*a = NULL;
	spool_job		*job;
	size_t			 n = 9;
	int64_t			 id, t0;

	queue_now("q");
	id = tu_enqueue("q", "x");
	TU_RC(spool_attempts(&a, &n, tu_q, id, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_PTR_NULL(a);
	t0 = tu_now;
	finish("q", 2, NULL);
	tu_advance(10);
	finish("q", 2, NULL);
	tu_advance(10);
	if ((job = claim("q")) == NULL)
		return;
	tu_advance(7);
	TU_RC(spool_job_complete(job, NULL, 0), SPOOL_OK);
	spool_job_free(job);
	TU_RC(spool_attempts(&a, &n, tu_q, id, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_EQUAL(a[0].attempt, 1);
	CU_ASSERT_EQUAL(a[1].attempt, 2);
	CU_ASSERT_EQUAL(a[2].attempt, 3);
	CU_ASSERT_EQUAL(a[0].outcome, SPOOL_ATTEMPT_FAILED);
	CU_ASSERT_EQUAL(a[1].outcome, SPOOL_ATTEMPT_FAILED);
	CU_ASSERT_EQUAL(a[2].outcome, SPOOL_ATTEMPT_SUCCEEDED);
	CU_ASSERT_STRING_EQUAL(a[0].error, "again");
	CU_ASSERT_PTR_NULL(a[2].error);
	CU_ASSERT_EQUAL(a[0].started_ms, t0);
	CU_ASSERT_EQUAL(a[2].started_ms, tu_now - 7);
	CU_ASSERT_EQUAL(a[2].finished_ms, tu_now);
	CU_ASSERT_PTR_NOT_NULL(a[0].worker);
	spool_attempt_info_free(a, n);
	TU_RC(spool_attempts(&a, &n, tu_q, 0, NULL), SPOOL_EINVAL);
	/* A missing task is not an empty history (as spool_item_history). */
	TU_RC(spool_attempts(&a, &n, tu_q, id + 100, NULL), SPOOL_ENOENT);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_PTR_NULL(a);
}

/* Pages of keys got, joined, are want in order (or reversed with desc):
 * every row exactly once, in order. */
static void
same_keys(const int64_t *got, size_t ngot, const int64_t *want, size_t nwant,
    int desc)
{
	size_t	 i;

	CU_ASSERT_EQUAL(ngot, nwant);
	for (i = 0; i < ngot && i < nwant; i++)
		CU_ASSERT_EQUAL(got[i], want[desc ? nwant - 1 - i : i]);
}

/* spool_list with batch_id: only that batch's tasks, through the merged
 * ranges of tasks_batch, paged both ways, with the other filters. */
static void
test_list_batch(void)
{
	spool_enqueue_opts	 eo = SPOOL_ENQUEUE_OPTS_INIT;
	spool_list_opts		 lo = SPOOL_LIST_OPTS_INIT;
	spool_task_info		*t = NULL;
	spool_job		*job;
	int64_t			 b1, b2, id, want[40], got[80];
	size_t			 nwant = 0, ngot, n = 0, i, pages;
	int			 desc;

	TU_RC(spool_batch_create(&b1, tu_q, NULL), SPOOL_OK);
	TU_RC(spool_batch_create(&b2, tu_q, NULL), SPOOL_OK);
	for (i = 0; i < 60; i++) {
		eo.batch_id = i % 3 == 0 ? b1 : i % 3 == 1 ? b2 : 0;
		TU_RC(spool_enqueue(&id, tu_q, i % 2 ? "odd" : "even", "x", 1,
		    &eo), SPOOL_OK);
		if (eo.batch_id == b1)
			want[nwant++] = id;
	}
	/* Some of b1's tasks in other states: running, then succeeded. */
	job = claim("even");	/* i = 0: b1 */
	CU_ASSERT(job != NULL && spool_job_id(job) == want[0]);
	TU_RC(spool_job_complete(job, NULL, 0), SPOOL_OK);
	spool_job_free(job);
	job = claim("odd");	/* i = 1: b2 */
	spool_job_free(job);
	job = claim("odd");	/* i = 3: b1, left running */

	for (desc = 0; desc <= 1; desc++) {
		lo.batch_id = b1;
		lo.limit = 7;
		lo.descending = desc;
		lo.after_id = 0;
		ngot = pages = 0;
		do {
			TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
			for (i = 0; i < n && ngot < 80; i++) {
				CU_ASSERT_EQUAL(t[i].batch_id, b1);
				got[ngot++] = t[i].id;
			}
			if (n > 0)
				lo.after_id = t[n - 1].id;
			spool_task_info_free(t, n);
		} while (n == lo.limit && ++pages < 20);
		same_keys(got, ngot, want, nwant, desc);
	}
	/* With a state and a queue. */
	lo.after_id = 0;
	lo.descending = 0;
	lo.limit = 0;
	lo.state = SPOOL_SUCCEEDED;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT(n == 1 && t[0].id == want[0]);
	spool_task_info_free(t, n);
	lo.state = SPOOL_RUNNING;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT(n == 1 && t[0].id == want[1]);
	spool_task_info_free(t, n);
	lo.state = SPOOL_READY;
	lo.queue = "odd";
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 9);		/* b1's odd ones, but the running one */
	for (i = 0; i < n; i++)
		CU_ASSERT(t[i].batch_id == b1 && t[i].state == SPOOL_READY &&
		    strcmp(t[i].queue, "odd") == 0);
	spool_task_info_free(t, n);
	/* A batch with no task, and a version 1 struct (no batch_id). */
	lo.queue = NULL;
	lo.state = 0;
	lo.batch_id = b2 + 1;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 0);
	lo.version = 1;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 60);
	spool_task_info_free(t, n);
	lo.version = SPOOL_LIST_OPTS_VERSION;
	lo.limit = 10001;
	TU_RC(spool_list(&t, &n, tu_q, &lo), SPOOL_EINVAL);
	spool_job_free(job);
}

/* spool_attempts pages by attempt number, both ways; its options are
 * checked as every list's. */
static void
test_attempts_pages(void)
{
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_attempt_list_opts	 ao = SPOOL_ATTEMPT_LIST_OPTS_INIT;
	spool_attempt_info	*a = NULL;
	spool_task_info		*ti = (spool_task_info *)1;
	int64_t			 id, want[7], got[20];
	size_t			 n = 0, ngot, i, pages;
	int			 desc;

	queue_now("q");
	qo.set = SPOOL_QUEUE_MAX_ATTEMPTS;
	qo.max_attempts = 10;
	TU_RC(spool_queue_set(tu_q, "q", &qo), SPOOL_OK);
	id = tu_enqueue("q", "x");
	for (i = 0; i < 6; i++) {
		finish("q", 2, NULL);
		tu_advance(10);
	}
	finish("q", 0, NULL);
	for (i = 0; i < 7; i++)
		want[i] = (int64_t)i + 1;
	for (desc = 0; desc <= 1; desc++) {
		ao.after_attempt = 0;
		ao.limit = 3;
		ao.descending = desc;
		ngot = pages = 0;
		do {
			TU_RC(spool_attempts(&a, &n, tu_q, id, &ao), SPOOL_OK);
			for (i = 0; i < n && ngot < 20; i++)
				got[ngot++] = a[i].attempt;
			if (n > 0)
				ao.after_attempt = a[n - 1].attempt;
			spool_attempt_info_free(a, n);
		} while (n == ao.limit && ++pages < 20);
		same_keys(got, ngot, want, 7, desc);
	}
	TU_RC(spool_attempts(&a, &n, tu_q, id, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 7);
	if (n == 7)
		CU_ASSERT_EQUAL(a[6].outcome, SPOOL_ATTEMPT_SUCCEEDED);
	spool_attempt_info_free(a, n);
	ao.after_attempt = 0;
	ao.limit = 10001;
	TU_RC(spool_attempts(&a, &n, tu_q, id, &ao), SPOOL_EINVAL);
	ao.limit = 0;
	ao.version = 0;
	TU_RC(spool_attempts(&a, &n, tu_q, id, &ao), SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q),
	    "spool_attempt_list_opts: version not set (use "
	    "SPOOL_ATTEMPT_LIST_OPTS_INIT)"));
	ao.version = 99;
	TU_RC(spool_attempts(&a, &n, tu_q, id, &ao), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_attempt_list_opts");
	TU_RC(spool_attempts(&a, &n, tu_q, id + 1, NULL), SPOOL_ENOENT);
	/* Every list call refuses a NULL out or n, saying so. */
	TU_RC(spool_attempts(NULL, &n, tu_q, id, NULL), SPOOL_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(spool_errmsg(tu_q),
	    "spool_attempt_list_opts: out or n is NULL"));
	TU_RC(spool_list(&ti, NULL, tu_q, NULL), SPOOL_EINVAL);
	CU_ASSERT(ti == NULL);
}

/* spool_queue_list pages by name, both ways. */
static void
test_queue_list_pages(void)
{
	spool_queue_list_opts	 lo = SPOOL_QUEUE_LIST_OPTS_INIT;
	spool_queue_info	*qi = NULL;
	char			 names[25][8], got[60][8];
	size_t			 n = 0, ngot, i, pages;
	int			 desc;

	/* Created out of order; listed by name. */
	for (i = 0; i < 25; i++)
		snprintf(names[i], sizeof names[i], "q%02zu", i);
	for (i = 0; i < 25; i++)	/* 7 and 25 are coprime: a permutation */
		TU_RC(spool_queue_create(tu_q, names[(i * 7) % 25], NULL),
		    SPOOL_OK);
	for (desc = 0; desc <= 1; desc++) {
		lo.after = NULL;
		lo.limit = 10;
		lo.descending = desc;
		ngot = pages = 0;
		do {
			TU_RC(spool_queue_list(&qi, &n, tu_q, &lo), SPOOL_OK);
			for (i = 0; i < n && ngot < 60; i++)
				snprintf(got[ngot++], sizeof got[0], "%s",
				    qi[i].name);
			lo.after = n > 0 ? got[ngot - 1] : NULL;
			spool_queue_info_free(qi, n);
		} while (n == lo.limit && ++pages < 20);
		CU_ASSERT_EQUAL(ngot, 25);
		for (i = 0; i < ngot && i < 25; i++)
			CU_ASSERT_STRING_EQUAL(got[i],
			    names[desc ? 24 - i : i]);
	}
	TU_RC(spool_queue_list(&qi, &n, tu_q, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 25);
	spool_queue_info_free(qi, n);
	lo.after = NULL;
	lo.limit = 10001;
	TU_RC(spool_queue_list(&qi, &n, tu_q, &lo), SPOOL_EINVAL);
	lo.limit = 0;
	lo.version = 0;
	TU_RC(spool_queue_list(&qi, &n, tu_q, &lo), SPOOL_EINVAL);
	lo.version = 99;
	TU_RC(spool_queue_list(&qi, &n, tu_q, &lo), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_queue_list_opts");
}

/* Cancelling a ready task ends it at once; it is never claimed. */
static void
test_cancel_ready(void)
{
	spool_job	*job = NULL;
	char		 buf[64];
	int64_t		 id;
	int		 running = 7;

	id = tu_enqueue("q", "x");
	tu_advance(3);
	TU_RC(spool_cancel(&running, tu_q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(running, 0);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, id, "state"),
	    "cancelled");
	CU_ASSERT_EQUAL(tu_task_int(id, "finished_ms"), tu_now);
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_EEMPTY);
	/* running_out may be NULL. */
	id = tu_enqueue("q", "y");
	TU_RC(spool_cancel(NULL, tu_q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'cancelled'"), 1);
}

/* Cancelling a running task only flags it; the worker sees the flag, and
 * its failure, or its lease expiring, ends the task cancelled. */
static void
test_cancel_running(void)
{
	spool_claim_opts	 co = SPOOL_CLAIM_OPTS_INIT;
	spool_job		*job;
	char			 buf[64];
	int64_t			 a, b;
	int			 running = 0;

	queue_now("q");
	a = tu_enqueue("q", "a");
	b = tu_enqueue("q", "b");
	if ((job = claim("q")) == NULL)
		return;
	CU_ASSERT_EQUAL(spool_job_cancel_requested(job), 0);
	TU_RC(spool_cancel(&running, tu_q, a), SPOOL_OK);
	CU_ASSERT_EQUAL(running, 1);
	CU_ASSERT_EQUAL(tu_task_int(a, "state = 'running' AND "
	    "cancel_requested = 1"), 1);
	TU_RC(spool_job_heartbeat(job, 0), SPOOL_OK);
	CU_ASSERT_EQUAL(spool_job_cancel_requested(job), 1);
	/* Asking again is harmless. */
	TU_RC(spool_cancel(&running, tu_q, a), SPOOL_OK);
	CU_ASSERT_EQUAL(running, 1);
	TU_RC(spool_job_fail(job, "stopping", 0), SPOOL_OK);
	spool_job_free(job);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, a, "state"),
	    "cancelled");
	CU_ASSERT_EQUAL(tu_task_int(a, "finished_ms"), tu_now);

	/* The lease of a flagged task expires: cancelled by the reaper. */
	co.lease_ms = 1000;
	TU_RC(spool_claim(&job, tu_q, "q", &co), SPOOL_OK);
	if (job == NULL)
		return;
	CU_ASSERT_EQUAL(spool_job_id(job), b);
	spool_job_free(job);
	TU_RC(spool_cancel(&running, tu_q, b), SPOOL_OK);
	CU_ASSERT_EQUAL(running, 1);
	tu_advance(1001);
	TU_RC(spool_reap(NULL, tu_q), SPOOL_OK);
	CU_ASSERT_STRING_EQUAL(tu_task_text(buf, sizeof buf, b, "state"),
	    "cancelled");
	TU_RC(spool_claim(&job, tu_q, "q", NULL), SPOOL_EEMPTY);
}

/* Finished tasks cannot be cancelled (SPOOL_ESTATE), missing ones are
 * SPOOL_ENOENT, and bad ids SPOOL_EINVAL. */
static void
test_cancel_finished(void)
{
	char	 before[64], after[64];
	int64_t	 ok, dead, gone;
	int	 running = 5;

	queue_now("q");
	tu_enqueue("q", "a");
	tu_enqueue("q", "b");
	gone = tu_enqueue("q", "c");
	ok = finish("q", 0, NULL);
	dead = finish("q", 1, NULL);
	TU_RC(spool_cancel(NULL, tu_q, gone), SPOOL_OK);
	tu_advance(10);
	tu_task_text(before, sizeof before, ok, "state || finished_ms");
	TU_RC(spool_cancel(&running, tu_q, ok), SPOOL_ESTATE);
	CU_ASSERT_EQUAL(running, 0);
	CU_ASSERT(tu_q->errmsg[0] != '\0');
	CU_ASSERT_STRING_EQUAL(tu_task_text(after, sizeof after, ok,
	    "state || finished_ms"), before);
	TU_RC(spool_cancel(NULL, tu_q, dead), SPOOL_ESTATE);
	CU_ASSERT_EQUAL(tu_task_int(dead, "state = 'dead'"), 1);
	TU_RC(spool_cancel(NULL, tu_q, gone), SPOOL_ESTATE);
	TU_RC(spool_cancel(NULL, tu_q, gone + 100), SPOOL_ENOENT);
	TU_RC(spool_cancel(NULL, tu_q, 0), SPOOL_EINVAL);
}

/* Retry makes a dead or cancelled task ready with no attempts used; other
 * states are SPOOL_ESTATE. */
static void
test_retry(void)
{
	spool_job	*jobs[4], *run = NULL;
	const char	*q = "q";
	size_t		 n = 0, i;
	int64_t		 dead, cancelled, ok, ready, running, a0, m0;
	int		 found = 0;

	queue_now("q");
	tu_enqueue("q", "dead");
	tu_enqueue("q", "ok");
	tu_enqueue("q", "running");
	dead = finish("q", 1, NULL);
	ok = finish("q", 0, NULL);
	running = finish("q", 3, &run);
	cancelled = tu_enqueue("q", "cancelled");
	ready = tu_enqueue("q", "ready");
	TU_RC(spool_cancel(NULL, tu_q, cancelled), SPOOL_OK);

	tu_advance(50);
	/* A fresh set of attempts: the allowance again on top of the
	 * attempts used, so the history keeps counting up. */
	a0 = tu_task_int(dead, "attempts");
	m0 = tu_task_int(dead, "max_attempts");
	TU_RC(spool_retry(tu_q, dead), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_task_int(dead, "state = 'ready' AND "
	    "dead_reason IS NULL AND finished_ms IS NULL AND "
	    "started_ms IS NULL"), 1);
	CU_ASSERT_EQUAL(tu_task_int(dead, "attempts"), a0);
	CU_ASSERT_EQUAL(tu_task_int(dead, "max_attempts"), a0 + m0);
	CU_ASSERT_EQUAL(tu_task_int(dead, "run_at_ms"), tu_now);
	TU_RC(spool_retry(tu_q, cancelled), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_task_int(cancelled, "state = 'ready' AND "
	    "attempts = 0 AND finished_ms IS NULL"), 1);

	TU_RC(spool_retry(tu_q, ready), SPOOL_ESTATE);
	TU_RC(spool_retry(tu_q, running), SPOOL_ESTATE);
	TU_RC(spool_retry(tu_q, ok), SPOOL_ESTATE);
	CU_ASSERT_EQUAL(tu_task_int(ok, "state = 'succeeded'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(running, "state = 'running'"), 1);
	TU_RC(spool_retry(tu_q, ready + 100), SPOOL_ENOENT);
	TU_RC(spool_retry(tu_q, -1), SPOOL_EINVAL);

	/* The retried task's next attempt follows its last one. */
	TU_RC(spool_claim_many(jobs, &n, tu_q, &q, 1, 4, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 3);
	for (i = 0; i < n; i++) {
		if (spool_job_id(jobs[i]) == dead) {
			CU_ASSERT_EQUAL(spool_job_attempt(jobs[i]), a0 + 1);
			found++;
		} else
			CU_ASSERT_EQUAL(spool_job_attempt(jobs[i]), 1);
		spool_job_free(jobs[i]);
	}
	CU_ASSERT_EQUAL(found, 1);
	spool_job_free(run);
}

/* Retrying a task that died "expired" drops its deadline, so it runs
 * instead of dying again at its next claim. */
static void
test_retry_expired(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_task_info		*t = NULL;
	spool_job		*job;
	int64_t			 id;

	o.deadline_ms = tu_now + 100;
	TU_RC(spool_enqueue(&id, tu_q, "x", "late", 4, &o), SPOOL_OK);
	tu_advance(200);
	TU_RC(spool_claim(&job, tu_q, "x", NULL), SPOOL_EEMPTY);
	CU_ASSERT_EQUAL(tu_task_int(id, "dead_reason = 'expired'"), 1);
	TU_RC(spool_task_get(&t, tu_q, id), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(t->state, SPOOL_DEAD);
	CU_ASSERT_EQUAL(t->dead_reason, SPOOL_DEAD_EXPIRED);
	spool_task_info_free(t, 1);
	TU_RC(spool_retry(tu_q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_task_int(id, "deadline_ms IS NULL"), 1);
	TU_RC(spool_claim(&job, tu_q, "x", NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(spool_job_id(job), id);
	spool_job_free(job);
}

/* A running task whose cancellation was asked for and whose attempt then
 * fails ends cancelled, and the history says the attempt was cancelled. */
static void
test_cancel_history(void)
{
	spool_attempt_info	*a = NULL;
	spool_job		*job;
	int64_t			 id;
	size_t			 n = 0;
	int			 running;

	id = tu_enqueue("c", "x");
	TU_RC(spool_claim(&job, tu_q, "c", NULL), SPOOL_OK);
	TU_RC(spool_cancel(&running, tu_q, id), SPOOL_OK);
	CU_ASSERT_EQUAL(running, 1);
	TU_RC(spool_job_fail(job, "stopped", 0), SPOOL_OK);
	spool_job_free(job);
	CU_ASSERT_EQUAL(tu_task_int(id, "state = 'cancelled'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts WHERE "
	    "outcome = 'cancelled' AND error = 'stopped'"), 1);
	TU_RC(spool_attempts(&a, &n, tu_q, id, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(a[0].outcome, SPOOL_ATTEMPT_CANCELLED);
	spool_attempt_info_free(a, n);
}

/* Every attempt outcome and dead reason has the name the database stores,
 * and a value that is none has none (since 0.8). */
static void
test_enum_names(void)
{
	static const struct {
		int		 v;
		const char	*name;
	} outcomes[] = {
		{ SPOOL_ATTEMPT_SUCCEEDED, "succeeded" },
		{ SPOOL_ATTEMPT_FAILED, "failed" },
		{ SPOOL_ATTEMPT_TIMED_OUT, "timed_out" },
		{ SPOOL_ATTEMPT_LEASE_LOST, "lease_lost" },
		{ SPOOL_ATTEMPT_CANCELLED, "cancelled" },
		{ SPOOL_ATTEMPT_RUNNING, "running" }
	}, reasons[] = {
		{ SPOOL_DEAD_FAILED, "failed" },
		{ SPOOL_DEAD_EXHAUSTED, "exhausted" },
		{ SPOOL_DEAD_EXPIRED, "expired" }
	};
	char		 sql[256];
	size_t		 i;

	for (i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++) {
		CU_ASSERT_EQUAL(outcomes[i].v, (int)i + 1);
		CU_ASSERT_PTR_NOT_NULL_FATAL(
		    spool_attempt_outcome_name(outcomes[i].v));
		CU_ASSERT_STRING_EQUAL(spool_attempt_outcome_name(outcomes[i].v),
		    outcomes[i].name);
		/* The five stored ones are what attempts.outcome accepts. */
		if (outcomes[i].v == SPOOL_ATTEMPT_RUNNING)
			continue;
		snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master "
		    "WHERE name = 'attempts' AND sql LIKE '%%''%s''%%'",
		    outcomes[i].name);
		CU_ASSERT_EQUAL(tu_sql_int(sql), 1);
	}
	CU_ASSERT_PTR_NULL(spool_attempt_outcome_name(0));
	CU_ASSERT_PTR_NULL(spool_attempt_outcome_name(-1));
	CU_ASSERT_PTR_NULL(spool_attempt_outcome_name(SPOOL_ATTEMPT_RUNNING + 1));
	CU_ASSERT_PTR_NULL(spool_attempt_outcome_name(SPOOL_OUTCOME_RELEASED + 10));
	for (i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
		CU_ASSERT_EQUAL(reasons[i].v, (int)i + 1);
		CU_ASSERT_PTR_NOT_NULL_FATAL(spool_dead_reason_name(reasons[i].v));
		CU_ASSERT_STRING_EQUAL(spool_dead_reason_name(reasons[i].v),
		    reasons[i].name);
		snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master "
		    "WHERE name = 'tasks' AND sql LIKE '%%dead_reason = ''%s''%%'",
		    reasons[i].name);
		CU_ASSERT_EQUAL(tu_sql_int(sql), 1);
	}
	CU_ASSERT_PTR_NULL(spool_dead_reason_name(0));
	CU_ASSERT_PTR_NULL(spool_dead_reason_name(-1));
	CU_ASSERT_PTR_NULL(spool_dead_reason_name(SPOOL_DEAD_EXPIRED + 1));
}

/* Each way to die reads back as its dead reason; a lost lease and a
 * timeout as theirs in the history. */
static void
test_dead_reasons(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	spool_attempt_info	*a = NULL;
	spool_task_info		*t = NULL;
	spool_job		*job;
	int64_t			 failed, exhausted, n64;
	size_t			 n = 0;

	failed = tu_enqueue("d", "f");
	TU_RC(spool_claim(&job, tu_q, "d", NULL), SPOOL_OK);
	TU_RC(spool_job_fail(job, "no", SPOOL_FAIL_PERMANENT), SPOOL_OK);
	spool_job_free(job);
	o.max_attempts = 1;
	TU_RC(spool_enqueue(&exhausted, tu_q, "d", "e", 1, &o), SPOOL_OK);
	TU_RC(spool_claim(&job, tu_q, "d", NULL), SPOOL_OK);
	tu_advance(31000);	/* past the queue's 30 s lease */
	TU_RC(spool_reap(&n64, tu_q), SPOOL_OK);
	CU_ASSERT_EQUAL(n64, 1);
	spool_job_free(job);

	TU_RC(spool_task_get(&t, tu_q, failed), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(t->dead_reason, SPOOL_DEAD_FAILED);
	spool_task_info_free(t, 1);
	TU_RC(spool_task_get(&t, tu_q, exhausted), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(t->dead_reason, SPOOL_DEAD_EXHAUSTED);
	spool_task_info_free(t, 1);
	TU_RC(spool_attempts(&a, &n, tu_q, failed, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(a[0].outcome, SPOOL_ATTEMPT_FAILED);
	spool_attempt_info_free(a, n);
	TU_RC(spool_attempts(&a, &n, tu_q, exhausted, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(a[0].outcome, SPOOL_ATTEMPT_LEASE_LOST);
	spool_attempt_info_free(a, n);
}

/* retry --queue on a queue that does not exist is SPOOL_ENOENT. */
static void
test_retry_all_unknown(void)
{
	int64_t	 n = 7;

	TU_RC(spool_retry_all(&n, tu_q, "nosuch", SPOOL_DEAD), SPOOL_ENOENT);
	CU_ASSERT_EQUAL(n, 0);
}

/* Retry refuses, with SPOOL_EEXISTS, a task whose key another unfinished
 * task now holds; once that one finishes the retry works. */
static void
test_retry_key(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	int64_t			 old = 0, new = 0;

	queue_now("q");
	o.key = "k";
	TU_RC(spool_enqueue(&old, tu_q, "q", "old", 3, &o), SPOOL_OK);
	CU_ASSERT_EQUAL(finish("q", 1, NULL), old);
	TU_RC(spool_enqueue(&new, tu_q, "q", "new", 3, &o), SPOOL_OK);
	CU_ASSERT(new != old);
	TU_RC(spool_retry(tu_q, old), SPOOL_EEXISTS);
	CU_ASSERT(tu_q->errmsg[0] != '\0');
	CU_ASSERT_EQUAL(tu_task_int(old, "state = 'dead'"), 1);
	CU_ASSERT_EQUAL(finish("q", 0, NULL), new);
	TU_RC(spool_retry(tu_q, old), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_task_int(old, "state = 'ready'"), 1);
}

/* retry_all retries every dead task of a queue across batches, skips
 * those whose key is taken, and leaves other queues and states alone. */
static void
test_retry_all(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	int64_t			 n = 0, blocked = 0, cancelled;
	size_t			 total = 2 * SPOOL_BATCH_ROWS + 50;

	queue_now("q");
	make_dead("q", total);
	make_dead("other", 5);
	o.key = "k";
	TU_RC(spool_enqueue(&blocked, tu_q, "q", "b", 1, &o), SPOOL_OK);
	CU_ASSERT_EQUAL(finish("q", 1, NULL), blocked);
	TU_RC(spool_enqueue(NULL, tu_q, "q", "holder", 6, &o), SPOOL_OK);
	cancelled = tu_enqueue("q", "c");
	TU_RC(spool_cancel(NULL, tu_q, cancelled), SPOOL_OK);

	TU_RC(spool_retry_all(&n, tu_q, "q", SPOOL_DEAD), SPOOL_OK);
	CU_ASSERT_EQUAL(n, (int64_t)total);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE "
	    "queue = 'q' AND state = 'dead'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(blocked, "state = 'dead'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE "
	    "queue = 'other' AND state = 'dead'"), 5);
	CU_ASSERT_EQUAL(tu_task_int(cancelled, "state = 'cancelled'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks WHERE "
	    "queue = 'q' AND state = 'ready' AND attempts = 0"),
	    (int64_t)total + 1);

	TU_RC(spool_retry_all(&n, tu_q, "q", SPOOL_CANCELLED), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(tu_task_int(cancelled, "state = 'ready'"), 1);
	TU_RC(spool_retry_all(&n, tu_q, "q", SPOOL_READY), SPOOL_EINVAL);
	TU_RC(spool_retry_all(&n, tu_q, "", SPOOL_DEAD), SPOOL_EINVAL);
}

/* Purge deletes only the ready tasks (due and scheduled) of one queue;
 * a dry run only counts; an unknown queue is SPOOL_ENOENT. */
static void
test_purge(void)
{
	spool_enqueue_opts	 later = SPOOL_ENQUEUE_OPTS_INIT;
	spool_job		*run = NULL;
	int64_t			 n = 0, running, ok, dead, other;

	queue_now("q");
	tu_enqueue("q", "r");
	tu_enqueue("q", "o");
	tu_enqueue("q", "d");
	running = finish("q", 3, &run);
	ok = finish("q", 0, NULL);
	dead = finish("q", 1, NULL);
	tu_enqueue("q", "due");
	later.delay_ms = 60000;
	TU_RC(spool_enqueue(NULL, tu_q, "q", "later", 5, &later), SPOOL_OK);
	other = tu_enqueue("other", "keep");

	TU_RC(spool_purge(&n, tu_q, "q", 1), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 6);
	TU_RC(spool_purge(&n, tu_q, "q", 0), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 4);
	CU_ASSERT_EQUAL(tu_task_int(running, "state = 'running'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(ok, "state = 'succeeded'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(dead, "state = 'dead'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(other, "state = 'ready'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM results"), 1);
	TU_RC(spool_purge(&n, tu_q, "q", 0), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 0);

	TU_RC(spool_purge(&n, tu_q, "nosuch", 0), SPOOL_ENOENT);
	TU_RC(spool_purge(&n, tu_q, "nosuch", 1), SPOOL_ENOENT);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM queues "
	    "WHERE name = 'nosuch'"), 0);
	spool_job_free(run);
}

/* Purge deletes more than a batch of ready tasks in one call. */
static void
test_purge_many(void)
{
	int64_t	 n = 0;

	enqueue_n("q", 2 * SPOOL_BATCH_ROWS + 7, NULL, NULL);
	tu_enqueue("other", "keep");
	TU_RC(spool_purge(&n, tu_q, "q", 1), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2 * SPOOL_BATCH_ROWS + 7);
	TU_RC(spool_purge(&n, tu_q, "q", 0), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2 * SPOOL_BATCH_ROWS + 7);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 1);
}

/* Prune removes finished tasks older than the cutoff with their results
 * and attempts; newer and unfinished tasks stay. */
static void
test_prune(void)
{
	spool_job	*run = NULL;
	int64_t		 n = 0, ok, dead, can, newer, running, ready;

	queue_now("q");
	tu_enqueue("q", "ok");
	tu_enqueue("q", "dead");
	ok = finish("q", 0, NULL);
	dead = finish("q", 1, NULL);
	can = tu_enqueue("q", "can");
	TU_RC(spool_cancel(NULL, tu_q, can), SPOOL_OK);
	tu_advance(5000);
	tu_enqueue("q", "newer");
	tu_enqueue("q", "running");
	newer = finish("q", 0, NULL);
	running = finish("q", 3, &run);
	ready = tu_enqueue("q", "ready");
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM results"), 2);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts"), 3);

	TU_RC(spool_prune(&n, tu_q, "q", 3000), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(tu_task_int(ok, "count(*)"), 0);
	CU_ASSERT_EQUAL(tu_task_int(dead, "count(*)"), 0);
	CU_ASSERT_EQUAL(tu_task_int(can, "count(*)"), 0);
	CU_ASSERT_EQUAL(tu_task_int(newer, "state = 'succeeded'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(running, "state = 'running'"), 1);
	CU_ASSERT_EQUAL(tu_task_int(ready, "state = 'ready'"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM results"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM results r WHERE "
	    "NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = r.task_id)"), 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM attempts a WHERE "
	    "NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = a.task_id)"), 0);
	/* Only tasks finished more than older_than_ms ago go. */
	TU_RC(spool_prune(&n, tu_q, "q", 0), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 0);
	tu_advance(1);
	TU_RC(spool_prune(&n, tu_q, "q", 0), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(tu_task_int(newer, "count(*)"), 0);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 2);
	TU_RC(spool_prune(&n, tu_q, "nosuch", 0), SPOOL_ENOENT);
	spool_job_free(run);
}

/* Prune by retention: each queue's own retention, and retention 0 keeps
 * finished tasks forever. */
static void
test_prune_retention(void)
{
	spool_queue_opts	 o = SPOOL_QUEUE_OPTS_INIT;
	int64_t			 n = 0;

	o.set = SPOOL_QUEUE_RETENTION;
	o.retention_ms = 0;
	TU_RC(spool_queue_create(tu_q, "forever", &o), SPOOL_OK);
	o.retention_ms = 1000;
	TU_RC(spool_queue_create(tu_q, "short", &o), SPOOL_OK);
	make_dead("forever", 3);
	make_dead("short", 4);
	make_dead("week", 5);
	tu_advance(2000);
	TU_RC(spool_prune(&n, tu_q, NULL, -1), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks "
	    "WHERE queue = 'short'"), 0);
	tu_advance(400LL * 24 * 3600 * 1000);
	TU_RC(spool_prune(&n, tu_q, "forever", -1), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 0);
	TU_RC(spool_prune(&n, tu_q, NULL, -1), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 3);
	/* An explicit age applies to every queue. */
	TU_RC(spool_prune(&n, tu_q, NULL, 0), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 3);
}

/* Prune deletes more than a batch of finished tasks in one call. */
static void
test_prune_many(void)
{
	int64_t	 n = 0;

	make_dead("q", 2 * SPOOL_BATCH_ROWS + 1);
	tu_advance(10);
	TU_RC(spool_prune(&n, tu_q, "q", 5), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 2 * SPOOL_BATCH_ROWS + 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM tasks"), 0);
}

/* Find the stats of queue in v[0..n). */
static const spool_queue_stats *
stats_of(const spool_queue_stats *v, size_t n, const char *queue)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].queue, queue) == 0)
			return (&v[i]);
	return (NULL);
}

/* The stats of queue say ready (due), scheduled and the oldest due
 * task's age. */
static void
expect_due(const char *queue, int64_t ready, int64_t scheduled, int64_t age)
{
	spool_queue_stats	*v = NULL;
	size_t			 n = 0;

	TU_RC(spool_stats(&v, &n, tu_q, queue), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(v->ready, ready);
	CU_ASSERT_EQUAL(v->scheduled, scheduled);
	CU_ASSERT_EQUAL(v->oldest_ready_age_ms, age);
	spool_queue_stats_free(v, n);
}

/* Stats count each state, split ready into due and scheduled, and give
 * the age of the longest-due task on the fake clock (-1 if none). */
static void
test_stats(void)
{
	spool_enqueue_opts	 later = SPOOL_ENQUEUE_OPTS_INIT;
	spool_queue_stats	*v = NULL;
	spool_job		*run = NULL;
	size_t			 n = 0;
	int64_t			 can;

	queue_now("q");
	tu_enqueue("q", "succeeded");
	tu_enqueue("q", "dead 1");
	tu_enqueue("q", "dead 2");
	tu_enqueue("q", "running");
	finish("q", 0, NULL);
	finish("q", 1, NULL);
	finish("q", 1, NULL);
	finish("q", 3, &run);
	can = tu_enqueue("q", "cancelled");
	TU_RC(spool_cancel(NULL, tu_q, can), SPOOL_OK);
	tu_enqueue("q", "ready 1");
	tu_advance(3000);
	tu_enqueue("q", "ready 2");
	later.delay_ms = 10000;
	TU_RC(spool_enqueue(NULL, tu_q, "q", "scheduled", 9, &later), SPOOL_OK);
	tu_advance(250);

	TU_RC(spool_stats(&v, &n, tu_q, "q"), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(v->queue, "q");
	CU_ASSERT_EQUAL(v->paused, 0);
	CU_ASSERT_EQUAL(v->ready, 2);
	CU_ASSERT_EQUAL(v->scheduled, 1);
	CU_ASSERT_EQUAL(v->running, 1);
	CU_ASSERT_EQUAL(v->succeeded, 1);
	CU_ASSERT_EQUAL(v->dead, 2);
	CU_ASSERT_EQUAL(v->cancelled, 1);
	CU_ASSERT_EQUAL(v->oldest_ready_age_ms, 3250);
	spool_queue_stats_free(v, n);

	/* Once the scheduled task is due it counts as ready. */
	tu_advance(10000);
	expect_due("q", 3, 0, 13250);
	spool_job_free(run);
}

/* Stats over ready tasks of several priorities: due ones counted across
 * every level (they are found level by level through tasks_ready), the
 * oldest due task found in the lowest level, scheduled ones of a higher
 * level not taken for due. */
static void
test_stats_levels(void)
{
	spool_enqueue_opts	 o = SPOOL_ENQUEUE_OPTS_INIT;
	int			 pr[] = { 7, 0, -4 }, i, k;

	TU_RC(spool_queue_create(tu_q, "lv", NULL), SPOOL_OK);
	/* The lowest level's task is the oldest: 5 s before the rest. */
	o.priority = -4;
	TU_RC(spool_enqueue(NULL, tu_q, "lv", "oldest", 6, &o), SPOOL_OK);
	tu_advance(5000);
	for (i = 0; i < 3; i++) {
		o.priority = pr[i];
		for (k = 0; k < 3; k++) {
			o.delay_ms = 0;
			TU_RC(spool_enqueue(NULL, tu_q, "lv", "due", 3, &o),
			    SPOOL_OK);
			o.delay_ms = 60000 * (k + 1);
			TU_RC(spool_enqueue(NULL, tu_q, "lv", "later", 5, &o),
			    SPOOL_OK);
		}
	}
	o.delay_ms = 0;
	tu_advance(100);
	expect_due("lv", 10, 9, 5100);
	/* A minute on, the first scheduled task of each level is due. */
	tu_advance(60000);
	expect_due("lv", 13, 6, 65100);
}

/* oldest_ready_age_ms is -1 with no due task (none at all, or only
 * scheduled ones) and 0 for a task due this instant. */
static void
test_stats_age(void)
{
	spool_enqueue_opts	 later = SPOOL_ENQUEUE_OPTS_INIT;
	spool_queue_stats	*v = NULL;
	size_t			 n = 0;

	TU_RC(spool_queue_create(tu_q, "empty", NULL), SPOOL_OK);
	TU_RC(spool_stats(&v, &n, tu_q, "empty"), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(v->oldest_ready_age_ms, -1);
	CU_ASSERT_EQUAL(v->ready + v->scheduled + v->running + v->succeeded +
	    v->dead + v->cancelled, 0);
	spool_queue_stats_free(v, n);

	later.delay_ms = 5000;
	TU_RC(spool_enqueue(NULL, tu_q, "later", "x", 1, &later), SPOOL_OK);
	TU_RC(spool_stats(&v, &n, tu_q, "later"), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(v->oldest_ready_age_ms, -1);
	CU_ASSERT_EQUAL(v->scheduled, 1);
	spool_queue_stats_free(v, n);

	tu_advance(5000);
	TU_RC(spool_stats(&v, &n, tu_q, "later"), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(v->oldest_ready_age_ms, 0);
	CU_ASSERT_EQUAL(v->ready, 1);
	spool_queue_stats_free(v, n);
}

/* Stats of all queues come by name, one entry each; an unknown queue is
 * SPOOL_ENOENT; paused queues say so. */
static void
test_stats_all(void)
{
	spool_queue_opts	 po = SPOOL_QUEUE_OPTS_INIT;
	spool_queue_stats	*v = NULL;
	const spool_queue_stats	*s;
	size_t			 n = 0;

	TU_RC(spool_stats(&v, &n, tu_q, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_PTR_NULL(v);
	tu_enqueue("c", "1");
	tu_enqueue("a", "1");
	tu_enqueue("a", "2");
	tu_enqueue("b", "1");
	tu_enqueue("b", "2");
	tu_enqueue("b", "3");
	po.set = SPOOL_QUEUE_PAUSED;
	po.paused = 1;
	TU_RC(spool_queue_set(tu_q, "b", &po), SPOOL_OK);

	TU_RC(spool_stats(&v, &n, tu_q, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_STRING_EQUAL(v[0].queue, "a");
	CU_ASSERT_STRING_EQUAL(v[1].queue, "b");
	CU_ASSERT_STRING_EQUAL(v[2].queue, "c");
	if ((s = stats_of(v, n, "a")) != NULL)
		CU_ASSERT(s->ready == 2 && s->paused == 0);
	if ((s = stats_of(v, n, "b")) != NULL)
		CU_ASSERT(s->ready == 3 && s->paused == 1);
	if ((s = stats_of(v, n, "c")) != NULL)
		CU_ASSERT_EQUAL(s->ready, 1);
	spool_queue_stats_free(v, n);

	TU_RC(spool_stats(&v, &n, tu_q, "b"), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT(strcmp(v->queue, "b") == 0 && v->ready == 3);
	spool_queue_stats_free(v, n);

	v = (spool_queue_stats *)1;
	TU_RC(spool_stats(&v, &n, tu_q, "nosuch"), SPOOL_ENOENT);
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT_EQUAL(n, 0);
}

/* Queues are created with the given fields and defaults elsewhere, once;
 * set changes only the selected fields of an existing queue; get and
 * list read them back. */
static void
test_queue_config(void)
{
	spool_queue_opts	 o = SPOOL_QUEUE_OPTS_INIT;
	spool_queue_info	*qi = NULL;
	size_t			 n = 0;

	o.set = SPOOL_QUEUE_PRIORITY | SPOOL_QUEUE_LEASE;
	o.priority = 4;
	o.lease_ms = 9000;
	o.max_attempts = 77;	/* not in set: ignored */
	tu_advance(42);
	TU_RC(spool_queue_create(tu_q, "q", &o), SPOOL_OK);
	TU_RC(spool_queue_create(tu_q, "q", NULL), SPOOL_EEXISTS);
	CU_ASSERT(tu_q->errmsg[0] != '\0');
	TU_RC(spool_queue_get(&qi, tu_q, "q"), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qi);
	CU_ASSERT_STRING_EQUAL(qi->name, "q");
	CU_ASSERT_EQUAL(qi->created_ms, tu_now);
	CU_ASSERT_EQUAL(qi->conf.version, SPOOL_QUEUE_OPTS_VERSION);
	CU_ASSERT_EQUAL(qi->conf.priority, 4);
	CU_ASSERT_EQUAL(qi->conf.lease_ms, 9000);
	CU_ASSERT_EQUAL(qi->conf.max_attempts, 5);
	CU_ASSERT_EQUAL(qi->conf.retention_ms, 604800000LL);
	CU_ASSERT_EQUAL(qi->conf.set & 0x7ff, 0x7ff);
	spool_queue_info_free(qi, 1);

	o = (spool_queue_opts)SPOOL_QUEUE_OPTS_INIT;
	o.set = SPOOL_QUEUE_MAX_ATTEMPTS | SPOOL_QUEUE_BACKOFF |
	    SPOOL_QUEUE_BACKOFF_BASE | SPOOL_QUEUE_BACKOFF_CAP |
	    SPOOL_QUEUE_BACKOFF_JITTER | SPOOL_QUEUE_TIMEOUT |
	    SPOOL_QUEUE_RETENTION | SPOOL_QUEUE_MAX_DEPTH | SPOOL_QUEUE_PAUSED;
	o.max_attempts = 12;
	o.backoff = SPOOL_BACKOFF_LINEAR;
	o.backoff_base_ms = 250;
	o.backoff_cap_ms = 5000;
	o.backoff_jitter = 0.5;
	o.timeout_ms = 60000;
	o.retention_ms = 0;
	o.max_depth = 100;
	o.paused = 1;
	TU_RC(spool_queue_set(tu_q, "q", &o), SPOOL_OK);
	TU_RC(spool_queue_get(&qi, tu_q, "q"), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qi);
	CU_ASSERT_EQUAL(qi->conf.priority, 4);
	CU_ASSERT_EQUAL(qi->conf.lease_ms, 9000);
	CU_ASSERT_EQUAL(qi->conf.max_attempts, 12);
	CU_ASSERT_EQUAL(qi->conf.backoff, SPOOL_BACKOFF_LINEAR);
	CU_ASSERT_EQUAL(qi->conf.backoff_base_ms, 250);
	CU_ASSERT_EQUAL(qi->conf.backoff_cap_ms, 5000);
	CU_ASSERT_DOUBLE_EQUAL(qi->conf.backoff_jitter, 0.5, 1e-12);
	CU_ASSERT_EQUAL(qi->conf.timeout_ms, 60000);
	CU_ASSERT_EQUAL(qi->conf.retention_ms, 0);
	CU_ASSERT_EQUAL(qi->conf.max_depth, 100);
	CU_ASSERT_EQUAL(qi->conf.paused, 1);
	spool_queue_info_free(qi, 1);

	TU_RC(spool_queue_set(tu_q, "nosuch", &o), SPOOL_ENOENT);
	TU_RC(spool_queue_get(&qi, tu_q, "nosuch"), SPOOL_ENOENT);
	CU_ASSERT_PTR_NULL(qi);
	TU_RC(spool_queue_set(tu_q, "q", NULL), SPOOL_EINVAL);

	TU_RC(spool_queue_create(tu_q, "a", NULL), SPOOL_OK);
	TU_RC(spool_queue_create(tu_q, "m", NULL), SPOOL_OK);
	TU_RC(spool_queue_list(&qi, &n, tu_q, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_STRING_EQUAL(qi[0].name, "a");
	CU_ASSERT_STRING_EQUAL(qi[1].name, "m");
	CU_ASSERT_STRING_EQUAL(qi[2].name, "q");
	CU_ASSERT_EQUAL(qi[2].conf.max_attempts, 12);
	CU_ASSERT_EQUAL(qi[0].conf.max_attempts, 5);
	spool_queue_info_free(qi, n);
}

/* Queue options the schema cannot hold are SPOOL_EINVAL, on create (no
 * queue made) and on set (nothing changed). */
static void
test_queue_bad(void)
{
	spool_queue_opts	 o;
	spool_queue_info	*qi = NULL;
	size_t			 n = 0;
	int			 i;

	TU_RC(spool_queue_create(tu_q, "q", NULL), SPOOL_OK);
	for (i = 0; i < 9; i++) {
		o = (spool_queue_opts)SPOOL_QUEUE_OPTS_INIT;
		switch (i) {
		case 0:
			o.set = SPOOL_QUEUE_BACKOFF_JITTER;
			o.backoff_jitter = 1.5;
			break;
		case 1:
			o.set = SPOOL_QUEUE_LEASE;
			o.lease_ms = 0;
			break;
		case 2:
			o.set = SPOOL_QUEUE_MAX_ATTEMPTS;
			o.max_attempts = 0;
			break;
		case 3:
			o.set = SPOOL_QUEUE_BACKOFF_BASE |
			    SPOOL_QUEUE_BACKOFF_CAP;
			o.backoff_base_ms = 5000;
			o.backoff_cap_ms = 1000;
			break;
		case 4:
			/* Above the stored cap (1 h). */
			o.set = SPOOL_QUEUE_BACKOFF_BASE;
			o.backoff_base_ms = 7200000;
			break;
		case 5:
			o.set = 0x800;
			break;
		case 6:
			o.set = SPOOL_QUEUE_BACKOFF_JITTER;
			o.backoff_jitter = -0.1;
			break;
		case 7:
			o.set = SPOOL_QUEUE_BACKOFF;
			o.backoff = 9;
			break;
		case 8:
			o.version = 0;
			break;
		}
		TU_RC(spool_queue_create(tu_q, "new", &o), SPOOL_EINVAL);
		CU_ASSERT(tu_q->errmsg[0] != '\0');
		TU_RC(spool_queue_set(tu_q, "q", &o), SPOOL_EINVAL);
	}
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM queues"), 1);
	TU_RC(spool_queue_get(&qi, tu_q, "q"), SPOOL_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qi);
	CU_ASSERT_DOUBLE_EQUAL(qi->conf.backoff_jitter, 0.2, 1e-12);
	CU_ASSERT_EQUAL(qi->conf.lease_ms, 30000);
	CU_ASSERT_EQUAL(qi->conf.max_attempts, 5);
	CU_ASSERT_EQUAL(qi->conf.backoff_base_ms, 1000);
	CU_ASSERT_EQUAL(qi->conf.backoff_cap_ms, 3600000);
	CU_ASSERT_EQUAL(qi->conf.backoff, SPOOL_BACKOFF_EXPONENTIAL);
	spool_queue_info_free(qi, 1);
	TU_RC(spool_queue_create(tu_q, "", NULL), SPOOL_EINVAL);
	TU_RC(spool_queue_list(&qi, &n, tu_q, NULL), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	spool_queue_info_free(qi, n);
}

/* Assert that the last call on tu_q left no failure behind. */
#define NO_ERROR() do {							\
	TU_RC(spool_errcode(tu_q), SPOOL_OK);				\
	CU_ASSERT_STRING_EQUAL(spool_errmsg(tu_q), "no error");		\
} while (0)

/* A call that succeeds leaves spool_errcode SPOOL_OK and spool_errmsg
 * "no error", even when a step inside it failed as expected (a queue
 * read that found none before creating it: issue 15) and even after a
 * failed call. */
static void
test_error_cleared(void)
{
	spool_queue_info	*qi = NULL;
	spool_job		*job = NULL;
	const char		*queues[] = { "nosuch", "made" };
	size_t			 n = 0;
	int64_t			 id;

	TU_RC(spool_queue_create(tu_q, "made", NULL), SPOOL_OK);
	NO_ERROR();
	TU_RC(spool_queue_get(&qi, tu_q, "nosuch"), SPOOL_ENOENT);
	TU_RC(spool_errcode(tu_q), SPOOL_ENOENT);
	TU_RC(spool_queue_create(tu_q, "other", NULL), SPOOL_OK);
	NO_ERROR();
	TU_RC(spool_queue_create(tu_q, "other", NULL), SPOOL_EEXISTS);
	TU_RC(spool_enqueue(&id, tu_q, "new", "x", 1, NULL), SPOOL_OK);
	NO_ERROR();
	TU_RC(spool_enqueue(&id, tu_q, "made", "x", 1, NULL), SPOOL_OK);
	TU_RC(spool_claim_many(&job, &n, tu_q, queues, 2, 1, NULL), SPOOL_OK);
	NO_ERROR();
	CU_ASSERT_EQUAL(n, 1);
	TU_RC(spool_job_complete(job, NULL, 0), SPOOL_OK);
	NO_ERROR();
	spool_job_free(job);
	TU_RC(spool_retry(tu_q, id), SPOOL_ESTATE);
	TU_RC(spool_retry_all(&id, tu_q, "made", SPOOL_DEAD), SPOOL_OK);
	NO_ERROR();
}

/* Options of a version newer than the library knows are refused with
 * SPOOL_EINVAL, a message naming the struct and the version, and nothing
 * changed: queue create and set, list (issue 15). */
static void
test_opts_version_unknown(void)
{
	spool_queue_opts	 o = SPOOL_QUEUE_OPTS_INIT;
	spool_list_opts		 lo = SPOOL_LIST_OPTS_INIT;
	spool_task_info		*ti = NULL;
	size_t			 n = 7;

	TU_RC(spool_queue_create(tu_q, "q", NULL), SPOOL_OK);
	o.version = 99;
	o.set = SPOOL_QUEUE_PAUSED;
	o.paused = 1;
	TU_RC(spool_queue_create(tu_q, "new", &o), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_queue_opts");
	TU_RC(spool_queue_set(tu_q, "q", &o), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_queue_opts");
	CU_ASSERT_EQUAL(tu_sql_int("SELECT count(*) FROM queues"), 1);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT paused FROM queues"), 0);
	/* The versions it knows still work. */
	o.version = SPOOL_QUEUE_OPTS_VERSION;
	TU_RC(spool_queue_set(tu_q, "q", &o), SPOOL_OK);
	CU_ASSERT_EQUAL(tu_sql_int("SELECT paused FROM queues"), 1);

	tu_enqueue("q", "x");
	lo.version = 99;
	TU_RC(spool_list(&ti, &n, tu_q, &lo), SPOOL_EINVAL);
	TU_VERSION_REFUSED(spool_errmsg(tu_q), "spool_list_opts");
	CU_ASSERT_PTR_NULL(ti);
	CU_ASSERT_EQUAL(n, 0);
	lo.version = SPOOL_LIST_OPTS_VERSION;
	TU_RC(spool_list(&ti, &n, tu_q, &lo), SPOOL_OK);
	CU_ASSERT_EQUAL(n, 1);
	spool_task_info_free(ti, n);
}

static CU_TestInfo admin_tests[] = {
	{ "retry of an expired task drops its deadline", test_retry_expired },
	{ "cancelled attempt in the history", test_cancel_history },
	{ "attempt outcome and dead reason names", test_enum_names },
	{ "dead reasons and outcomes read back", test_dead_reasons },
	{ "retry all on an unknown queue", test_retry_all_unknown },
	{ "get", test_get },
	{ "list filters", test_list_filters },
	{ "list keyset pages both ways", test_list_pages },
	{ "list running tasks", test_list_running },
	{ "attempt history", test_attempts },
	{ "list of one batch", test_list_batch },
	{ "attempt history in pages", test_attempts_pages },
	{ "queue list in pages", test_queue_list_pages },
	{ "cancel ready", test_cancel_ready },
	{ "cancel running", test_cancel_running },
	{ "cancel finished or missing", test_cancel_finished },
	{ "retry", test_retry },
	{ "retry: key taken", test_retry_key },
	{ "retry_all over batches", test_retry_all },
	{ "purge", test_purge },
	{ "purge over batches", test_purge_many },
	{ "prune by age, with cascade", test_prune },
	{ "prune by retention", test_prune_retention },
	{ "prune over batches", test_prune_many },
	{ "stats counts", test_stats },
	{ "stats over priority levels", test_stats_levels },
	{ "stats oldest age", test_stats_age },
	{ "stats of all queues", test_stats_all },
	{ "queue create/set/get/list", test_queue_config },
	{ "queue bad values", test_queue_bad },
	{ "a call that succeeds leaves no error", test_error_cleared },
	{ "options of an unknown version", test_opts_version_unknown },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("admin", admin_tests));
}
