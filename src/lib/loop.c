/*
 * loop.c -- a small event loop for a buffered producer (producer.c),
 * behind the spool__loop_* calls of spool-int.h.
 *
 * One thread runs it.  Any thread may kick it; the loop's own callback
 * may arm a one-shot timer.  Both call fn(arg, SPOOL__LOOP_KICK or
 * SPOOL__LOOP_TIMER) in the loop's thread.
 *
 * Not here: the pool's engine (engine*.c), of which it borrows only the
 * once-per-process thread setup of libevent and the arming of a timer
 * (engine-int.h); what the producer does on a kick or a timer
 * (producer.c).  Like the engine's files, and unlike the rest of the
 * library, it may use libevent.
 */
#include "config.h"

#include <event2/event.h>

#include <stdlib.h>

#include "spool-int.h"
#include "engine-int.h"

struct spool__loop {
	struct event_base	*base;
	struct event		*ev_kick;
	struct event		*ev_timer;
	void			(*fn)(void *, int);
	void			*arg;
};

static void
loop_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spool__loop	*l = arg;

	(void)fd;
	(void)what;
	l->fn(l->arg, SPOOL__LOOP_KICK);
}

static void
loop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spool__loop	*l = arg;

	(void)fd;
	(void)what;
	l->fn(l->arg, SPOOL__LOOP_TIMER);
}

/* Make a loop that calls fn(arg, why); NULL if out of memory or if
 * libevent has no thread support. */
struct spool__loop *
spool__loop_new(void (*fn)(void *, int), void *arg)
{
	struct spool__loop	*l;
	struct event_config	*cfg;

	if (!spool__engine_threads() || (l = calloc(1, sizeof *l)) == NULL)
		return (NULL);
	l->fn = fn;
	l->arg = arg;
	if ((cfg = event_config_new()) != NULL) {
		event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
		l->base = event_base_new_with_config(cfg);
		event_config_free(cfg);
	}
	if (l->base == NULL ||
	    (l->ev_kick = event_new(l->base, -1, 0, loop_kick_cb, l)) == NULL ||
	    (l->ev_timer = evtimer_new(l->base, loop_timer_cb, l)) == NULL) {
		spool__loop_free(l);
		return (NULL);
	}
	return (l);
}

/* Run the loop in the calling thread until spool__loop_exit. */
void
spool__loop_run(struct spool__loop *l)
{
	event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
}

/* From any thread: call fn(arg, SPOOL__LOOP_KICK) soon, in the loop. */
void
spool__loop_kick(struct spool__loop *l)
{
	event_active(l->ev_kick, 0, 0);
}

/* In the loop: call fn(arg, SPOOL__LOOP_TIMER) ms from now, replacing a
 * timer already armed; ms < 0 disarms it. */
void
spool__loop_arm(struct spool__loop *l, int64_t ms)
{
	if (ms < 0)
		evtimer_del(l->ev_timer);
	else
		spool__engine_arm(l->ev_timer, ms);
}

/* From any thread: make spool__loop_run return. */
void
spool__loop_exit(struct spool__loop *l)
{
	event_base_loopbreak(l->base);
}

/* Free a loop that is not running. */
void
spool__loop_free(struct spool__loop *l)
{
	if (l == NULL)
		return;
	if (l->ev_kick != NULL)
		event_free(l->ev_kick);
	if (l->ev_timer != NULL)
		event_free(l->ev_timer);
	if (l->base != NULL)
		event_base_free(l->base);
	free(l);
}
