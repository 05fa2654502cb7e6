/*
 * engine-probe.c -- the engine's tick and what it measures: the pool's
 * workers row, growing the pool with the backlog (autoscale), the
 * machine's CPU use from /proc/stat (and shedding load above cpu_max),
 * the process's CPU time and memory for the metrics, the exclusive
 * lock's renewal, retention pruning, the summary line and on_tick.
 *
 * Not here: the timeouts the tick checks (engine-flush.c), the metrics
 * themselves (hist.c, metrics.c), the workers table's SQL (workers.c).
 * Like every engine file (engine*.c, loop.c), and unlike the rest of the
 * library, it may use libevent (only for the tick's callback, through
 * engine-int.h).  It runs in the engine's thread.
 */
#include "config.h"

#include <sys/resource.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool-int.h"
#include "engine-int.h"
#include "query-gen.h"

#define LOCK_LEASE_MS		30000	/* the exclusive lock's lease */
#define PRUNE_EVERY_MS		60000

/* Grow the pool while the backlog exceeds twice the busy threads. */
static void
engine_autoscale(spool_pool *p, int64_t now)
{
	struct spool__q_backlog_row	 r;
	struct spool__cur		 c;
	int64_t				 backlog = 0;
	int				 busy, n, add;
	size_t				 i;

	pthread_mutex_lock(&p->mu);
	busy = p->busy - p->stuck;
	n = p->nworkers - p->stuck;
	pthread_mutex_unlock(&p->mu);
	if (n >= p->o.max_workers || busy < n)
		return;
	for (i = 0; i < p->o.nqueues; i++) {
		if (spool__q_backlog(p->q, &c, &(struct spool__q_backlog_in){
		    .queue = p->queues[i], .now_ms = now,
		    .max = 2 * p->o.max_workers + 1 }) == SPOOL_OK &&
		    spool__q_backlog_next(&c, &r) == 1)
			backlog += r.n;
		spool__cur_end(&c);
	}
	if (backlog <= 2 * busy)
		return;
	add = (int)((backlog - 2 * busy + 1) / 2);
	pthread_mutex_lock(&p->mu);
	while (add-- > 0 && p->nworkers - p->stuck < p->o.max_workers &&
	    spool__pool_spawn(p) == SPOOL_OK)
		continue;
	pthread_mutex_unlock(&p->mu);
}

/* The machine's CPU use since the last call, from /proc/stat; -1 if it
 * cannot be read. */
double
spool__engine_cpu(struct spool__engine *e)
{
	unsigned long long	 v[8] = { 0 }, busy, total;
	double			 use = -1;
	FILE			*f;
	int			 n;

	if ((f = fopen("/proc/stat", "re")) == NULL)
		return (-1);
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
	    &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 4)
		return (-1);
	total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
	busy = total - v[3] - v[4];	/* minus idle and iowait */
	if (e->cpu_total != 0 && total > e->cpu_total)
		use = (double)(busy - e->cpu_busy) /
		    (double)(total - e->cpu_total);
	e->cpu_busy = busy;
	e->cpu_total = total;
	return (use);
}

/* The process's CPU time and resident memory, for the metrics. */
void
spool__engine_proc(spool_pool *p, struct spool__engine *e, int64_t now)
{
	struct rusage	 ru;
	double		 user = 0, sys = 0, use = -1;
	long		 pages = 0, rss = 0;
	FILE		*f;

	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
		sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	}
	if (e->proc_ms != 0 && now > e->proc_ms)
		use = (user + sys - e->proc_cpu_s) / ((double)(now -
		    e->proc_ms) / 1000.0);
	e->proc_ms = now;
	e->proc_cpu_s = user + sys;
	if ((f = fopen("/proc/self/statm", "re")) != NULL) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	pthread_mutex_lock(&p->mu);
	p->pm.cpu_user_s = user;
	p->pm.cpu_system_s = sys;
	if (use >= 0)
		p->pm.cpu_process = use;
	p->pm.rss_bytes = (int64_t)rss * sysconf(_SC_PAGESIZE);
	pthread_mutex_unlock(&p->mu);
}

/* Write the pool's workers row.  Its queues column is a JSON array of
 * the queue names, escaped (a name holds no control character), made to
 * size: 64 names of 128 bytes overran a fixed buffer. */
void
spool__engine_worker_row(spool_pool *p, int64_t now)
{
	char		*json;
	const char	*s;
	size_t		 i, off = 0, size = 3;
	int		 busy, n;

	for (i = 0; i < p->o.nqueues; i++)
		size += 2 * strlen(p->queues[i]) + 3;
	if ((json = malloc(size)) == NULL) {
		spool__engine_error(p, SPOOL_ENOMEM);
		return;
	}
	json[off++] = '[';
	for (i = 0; i < p->o.nqueues; i++) {
		if (i > 0)
			json[off++] = ',';
		json[off++] = '"';
		for (s = p->queues[i]; *s != '\0'; s++) {
			if (*s == '"' || *s == '\\')
				json[off++] = '\\';
			json[off++] = *s;
		}
		json[off++] = '"';
	}
	json[off++] = ']';
	json[off] = '\0';
	pthread_mutex_lock(&p->mu);
	busy = p->busy;
	n = p->nworkers;
	pthread_mutex_unlock(&p->mu);
	spool__engine_sync(p, 0);
	if (spool__worker_upsert(p->q, p->owner, p->host, (long)getpid(), json,
	    n, busy, p->started_ms, now) != SPOOL_OK)
		spool__engine_error(p, spool_errcode(p->q));
	free(json);
}

/* Housekeeping, once a tick. */
void
spool__engine_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	spool_pool		*p = arg;
	struct spool__engine	*e = p->engine;
	spool_pool_stats	 st;
	int64_t			 now = spool__engine_now(p), pruned;
	double			 cpu;

	(void)fd;
	(void)what;
	spool__engine_read_conf(p);
	spool__engine_worker_row(p, now);
	spool__engine_timeouts(p, now);
	if (!e->draining)
		engine_autoscale(p, now);

	cpu = p->cpu_probe != NULL ? p->cpu_probe(p) : spool__engine_cpu(e);
	if (cpu >= 0) {
		pthread_mutex_lock(&p->mu);
		p->st.cpu = cpu;
		if (p->o.cpu_max > 0 && cpu > p->o.cpu_max)
			p->st.shedding = 1;
		else if (p->st.shedding && cpu < 0.8 * p->o.cpu_max)
			p->st.shedding = 0;
		pthread_mutex_unlock(&p->mu);
	}
	if (p->o.exclusive != NULL && !e->draining &&
	    spool__lock_renew(p->q, p->o.exclusive, p->owner,
	    now + LOCK_LEASE_MS) == SPOOL_ELEASE) {
		spool__engine_error(p, SPOOL_ELEASE);
		e->rc = SPOOL_ELEASE;
		spool__engine_drain(p);
	}
	if (now - e->last_prune_ms >= PRUNE_EVERY_MS) {
		e->last_prune_ms = now;
		if (spool_prune(&pruned, p->q, NULL, -1) != SPOOL_OK)
			spool__engine_error(p, spool_errcode(p->q));
	}
	spool__engine_proc(p, e, now);
	/* Half a tick early rather than a whole tick late. */
	if (p->o.log_interval_ms > 0 && now - e->last_log_ms >=
	    p->o.log_interval_ms - p->o.tick_ms / 2) {
		if (e->last_log_ms != 0)
			spool__pool_log(p);
		e->last_log_ms = now;
	}
	if (p->o.on_tick != NULL) {
		spool_pool_stats_get(&st, p);
		p->o.on_tick(&st, p->o.cb_arg);
	}
	spool__engine_claim(p);
	spool__engine_check_finished(p);
}
