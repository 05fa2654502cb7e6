/*
 * error.c -- result codes, their messages, and the per-handle record of
 * the last failure.  Every failure path of the library ends in
 * spool__error (directly, or through spool__store_error in store.c), so
 * spool_errmsg always explains the last negative return.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "spool-int.h"

static const char *const state_names[] = {
	NULL, "ready", "running", "succeeded", "dead", "cancelled", "claimed",
	"expired"
};

/* attempts.outcome and tasks.dead_reason, by enum value. */
static const char *const outcome_names[] = {
	NULL, "succeeded", "failed", "timed_out", "lease_lost", "cancelled",
	"running"
};
static const char *const dead_reason_names[] = {
	NULL, "failed", "exhausted", "expired"
};

/* A static English description of a result code. */
const char *
spool_strerror(int rc)
{
	switch (rc) {
	case SPOOL_OK:		return ("success");
	case SPOOL_ERROR:	return ("internal error");
	case SPOOL_ENOMEM:	return ("out of memory");
	case SPOOL_EINVAL:	return ("invalid argument");
	case SPOOL_EEMPTY:	return ("nothing to claim");
	case SPOOL_EBUSY:	return ("database is locked");
	case SPOOL_ELEASE:	return ("lease lost");
	case SPOOL_EEXISTS:	return ("already exists");
	case SPOOL_ESCHEMA:	return ("database schema is newer than this library");
	case SPOOL_ENOTDB:	return ("not a spool database");
	case SPOOL_ENOENT:	return ("not found");
	case SPOOL_EIO:		return ("I/O error");
	case SPOOL_EPERM:	return ("permission denied");
	case SPOOL_ESTATE:	return ("task or batch is in the wrong state");
	case SPOOL_EFULL:	return ("queue is full");
	case SPOOL_ETIMEDOUT:	return ("timed out");
	}
	return ("unknown error code");
}

/* The name of a state, or NULL if state is not one. */
const char *
spool_state_name(int state)
{
	if (state < SPOOL_READY || state > SPOOL_EXPIRED)
		return (NULL);
	return (state_names[state]);
}

/* The stored state called name (ready to cancelled), or 0 if none. */
int
spool__state_parse(const char *name)
{
	int	 i;

	if (name == NULL)
		return (0);
	for (i = SPOOL_READY; i <= SPOOL_CANCELLED; i++)
		if (strcmp(state_names[i], name) == 0)
			return (i);
	return (0);
}

/* The name of an attempt outcome, or NULL if outcome is not one. */
const char *
spool_attempt_outcome_name(int outcome)
{
	if (outcome < SPOOL_ATTEMPT_SUCCEEDED || outcome > SPOOL_ATTEMPT_RUNNING)
		return (NULL);
	return (outcome_names[outcome]);
}

/* The attempt outcome called name, or 0 if none. */
int
spool__attempt_outcome_parse(const char *name)
{
	int	 i;

	for (i = SPOOL_ATTEMPT_SUCCEEDED; name != NULL &&
	    i <= SPOOL_ATTEMPT_RUNNING; i++)
		if (strcmp(outcome_names[i], name) == 0)
			return (i);
	return (0);
}

/* The name of a dead reason, or NULL if reason is not one. */
const char *
spool_dead_reason_name(int reason)
{
	if (reason < SPOOL_DEAD_FAILED || reason > SPOOL_DEAD_EXPIRED)
		return (NULL);
	return (dead_reason_names[reason]);
}

/* The dead reason called name, or 0 if none (NULL: not dead). */
int
spool__dead_reason_parse(const char *name)
{
	int	 i;

	for (i = SPOOL_DEAD_FAILED; name != NULL && i <= SPOOL_DEAD_EXPIRED;
	    i++)
		if (strcmp(dead_reason_names[i], name) == 0)
			return (i);
	return (0);
}

/*
 * The result of this thread's last spool_enqueue on a handle other threads
 * may be enqueueing on too.  Such a call is run by whichever thread leads
 * the group commit, so its message cannot stay in the handle: it is copied
 * here, and spool_errmsg and spool_errcode read it while mine == q.  Any
 * other call this thread makes on q (they all clear or set q's error)
 * hands the handle's own slot back.
 */
static __thread struct {
	const spool	*q;
	int		 code;
	char		 msg[512];
} mine;

/* Set this thread's result for q; msg NULL forgets it. */
void
spool__error_mine(const spool *q, int code, const char *msg)
{
	if (msg == NULL) {
		if (mine.q == q)
			mine.q = NULL;
		return;
	}
	mine.q = q;
	mine.code = code;
	if (*msg == '\0')
		mine.msg[0] = '\0';	/* each enqueue that succeeds */
	else
		snprintf(mine.msg, sizeof mine.msg, "%s", msg);
}

/* Record a failure on q and return its code, so callers can
 * "return (spool__error(...))".  q may be NULL. */
int
spool__error(spool *q, int code, const char *fmt, ...)
{
	va_list	 ap;

	if (q == NULL)
		return (code);
	if (mine.q == q)
		mine.q = NULL;
	q->errcode = code;
	va_start(ap, fmt);
	vsnprintf(q->errmsg, sizeof q->errmsg, fmt, ap);
	va_end(ap);
	return (code);
}

/* Put prefix in front of the message already recorded on q and return
 * code: "task 3: " + "queue name is empty". */
int
spool__error_prefix(spool *q, int code, const char *prefix)
{
	char	 msg[sizeof q->errmsg];

	if (q == NULL || prefix == NULL || *prefix == '\0')
		return (code);
	snprintf(msg, sizeof msg, "%s", q->errmsg);
	return (spool__error(q, code, "%s%s", prefix, msg));
}

/* Forget the last failure: called on entry to every public call. */
void
spool__clear_error(spool *q)
{
	if (mine.q == q)
		mine.q = NULL;
	q->errcode = SPOOL_OK;
	q->errmsg[0] = '\0';
}

/* A one-line description of the last failure on q. */
const char *
spool_errmsg(const spool *q)
{
	if (q == NULL)
		return ("out of memory (no handle)");
	if (mine.q == q) {
		if (mine.code == SPOOL_OK)
			return ("no error");
		return (mine.msg[0] != '\0' ? mine.msg :
		    spool_strerror(mine.code));
	}
	if (q->errcode == SPOOL_OK)
		return ("no error");
	if (q->errmsg[0] == '\0')
		return (spool_strerror(q->errcode));
	return (q->errmsg);
}

/* The code of the last failure on q. */
int
spool_errcode(const spool *q)
{
	if (q == NULL)
		return (SPOOL_ENOMEM);
	return (mine.q == q ? mine.code : q->errcode);
}

/* What a call on q returns when q or its connection is missing: the code
 * of the open that failed, else SPOOL_EINVAL. */
int
spool__unusable(const spool *q)
{
	if (q != NULL && q->db == NULL && q->open_rc != SPOOL_OK)
		return (q->open_rc);
	return (SPOOL_EINVAL);
}
