/*
 * engine-int.h -- the private map of the engine's files, included by them
 * alone (engine.c, engine-claim.c, engine-flush.c, engine-probe.c and
 * loop.c): the engine's state, and the functions its files share.  It
 * includes libevent, which no other file of the library may; what the
 * rest of the library calls (spool__engine_new and the rest, and the
 * spool__loop_* of the producer) is declared in spool-int.h.
 *
 * Everything here runs in the engine's thread unless said otherwise;
 * fields shared with the pool's threads are the pool's (spool_pool, under
 * p->mu), not the engine's.
 */
#ifndef SPOOL_ENGINE_INT_H
#define SPOOL_ENGINE_INT_H

#include <event2/event.h>

#include <pthread.h>
#include <stdint.h>

#include "spool-int.h"

#define ENGINE_BUCKETS		4096	/* registry hash buckets */
#define CLAIM_POLL_MIN_MS	1	/* idle polling backoff ... */
#define CLAIM_POLL_MAX_MS	16	/* ... doubling to this */
#define AHEAD_MAX		1024	/* claimed ahead of threads, at most */

struct spool__engine {
	struct event_base	*base;
	struct event		*ev_wake;
	struct event		*ev_claim;
	struct event		*ev_flush;
	struct event		*ev_start;
	struct event		*ev_cancel;
	struct event		*ev_notify;	/* inotify: the WAL was written */
	int			 notify_fd;	/* -1: none, poll */
	int64_t			 poll_max_ms;
	struct event		*ev_renew;
	struct event		*ev_reap;
	struct event		*ev_tick;
	struct event		*ev_shutdown;
	struct event		*ev_maxtime;
	struct event		*ev_sig[2];

	spool_job		*bucket[ENGINE_BUCKETS];
	size_t			 held;
	unsigned		 epoch;

	spool_job		**claimed;	/* scratch for one claim */
	size_t			 nclaimed_max;
	spool_queue_opts	*conf;		/* per queue, refreshed each tick */
	int64_t			 min_lease_ms;
	int64_t			 armed_lease_ms;	/* the renew and reap
						 * timers' pace is from it */
	int			 synced;	/* synchronous=FULL now */

	int			 empty;		/* the last claim found nothing */
	int			 poke;		/* claim now, whatever the poll says */
	int64_t			 poll_ms;	/* idle polling backoff */
	int64_t			 next_due_ms;	/* earliest scheduled task, or 0 */
	int64_t			 data_version;
	int64_t			 cancel_version;	/* data_version, last cancel poll */
	int64_t			 claimed_total;
	int64_t			*credit;	/* per queue: weighted shares owed */
	int64_t			 flush_retry_ms;
	int64_t			 hold_since_ms;	/* when commits began to fail */
	int			 ahead;		/* claim this many ahead of threads */
	double			 run_ns;	/* handler time, moving average */
	double			 claim_ns;	/* a claim's time, the same */
	double			 flush_ns;	/* a flush's time, the same */
	struct engine_start	*starts;	/* the starts written last */
	size_t			 nstarts;
	int			 flush_noclaim;	/* the last flush's claim failed */
	int			 nsig;		/* SIGINT/SIGTERM received */
	int			 claim_failed;	/* last claim error, to log once */

	unsigned long long	 cpu_busy, cpu_total;
	int64_t			 last_prune_ms;
	int64_t			 last_log_ms;	/* the summary line */
	int64_t			 proc_ms;	/* the last process sample */
	double			 proc_cpu_s;
	int			 draining;
	int			 stop_req;	/* from spool_pool_stop: 1, 2 */
	pthread_t		 thread;	/* the one running the loop (under p->mu) */
	int			 running;	/* (under p->mu) */
	int			 rc;
};

/* A handler's start, to be written. */
struct engine_start {
	int64_t			 id;
	int64_t			 token;
	int64_t			 ms;
};

/* engine.c: the engine's life, its wiring, the registry of held jobs */
int		 spool__engine_threads(void);
int64_t		 spool__engine_now(spool_pool *p);
void		 spool__engine_avg(double *avg, double sample);
void		 spool__engine_arm(struct event *ev, int64_t ms);
void		 spool__engine_error(spool_pool *p, int rc);
void		 spool__engine_sync(spool_pool *p, int full);
void		 spool__engine_reg_add(struct spool__engine *e, spool_job *job);
void		 spool__engine_reg_del(struct spool__engine *e, spool_job *job);
spool_job	*spool__engine_reg_find(struct spool__engine *e, int64_t id);
void		 spool__engine_read_conf(spool_pool *p);
void		 spool__engine_drain(spool_pool *p);
void		 spool__engine_check_finished(spool_pool *p);

/* engine-claim.c: claiming, and noticing other processes' commits */
int		 spool__engine_claim_strategy(spool_pool *p, size_t want,
		     size_t *got, int locked);
int64_t		 spool__engine_data_version(spool_pool *p);
int64_t		 spool__engine_claim_want(spool_pool *p);
void		 spool__engine_claim_take(spool_pool *p, size_t got);
void		 spool__engine_claim_drop(spool_pool *p, size_t got);
void		 spool__engine_claim(spool_pool *p);
void		 spool__engine_watch(spool_pool *p);
void		 spool__engine_claim_cb(evutil_socket_t fd, short what,
		     void *arg);

/* engine-flush.c: outcomes, starts, leases, cancels, reaping, timeouts */
void		 spool__engine_flush(spool_pool *p);
void		 spool__engine_flush_cb(evutil_socket_t fd, short what,
		     void *arg);
void		 spool__engine_start_cb(evutil_socket_t fd, short what,
		     void *arg);
void		 spool__engine_renew_cb(evutil_socket_t fd, short what,
		     void *arg);
void		 spool__engine_cancel_cb(evutil_socket_t fd, short what,
		     void *arg);
void		 spool__engine_reap_cb(evutil_socket_t fd, short what,
		     void *arg);
void		 spool__engine_abandon(spool_pool *p, spool_job *job,
		     int verdict, const char *why);
void		 spool__engine_timeouts(spool_pool *p, int64_t now);

/* engine-probe.c: the tick, autoscaling, CPU and process probes */
double		 spool__engine_cpu(struct spool__engine *e);
void		 spool__engine_proc(spool_pool *p, struct spool__engine *e,
		     int64_t now);
void		 spool__engine_worker_row(spool_pool *p, int64_t now);
void		 spool__engine_tick_cb(evutil_socket_t fd, short what,
		     void *arg);

#endif /* SPOOL_ENGINE_INT_H */
