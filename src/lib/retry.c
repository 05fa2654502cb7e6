/*
 * retry.c -- backoff delays and their names.  Pure functions with no I/O:
 * the caller supplies the random number, so the tests can check every
 * bound exactly.
 *
 * Policy for attempt n (1 = the first attempt just failed):
 *   fixed        base
 *   linear       base * n
 *   exponential  base * 2^(n-1)
 * then capped at cap, then shortened by jitter: delay * (1 - jitter * u)
 * with u uniform in [0, 1).  Jitter only shortens, so a delay never
 * exceeds the cap and never falls below delay * (1 - jitter).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "spool-int.h"

static const char *const backoff_names[] = {
	NULL, "fixed", "linear", "exponential"
};

/* The delay before the retry that follows failed attempt "attempt". */
int64_t
spool__backoff_ms(int policy, int64_t base_ms, int64_t cap_ms, double jitter,
    int attempt, double u)
{
	int64_t	 d;
	int	 shift;

	if (base_ms < 0)
		base_ms = 0;
	if (cap_ms < 0)
		cap_ms = 0;
	if (attempt < 1)
		attempt = 1;
	switch (policy) {
	case SPOOL_BACKOFF_FIXED:
		d = base_ms;
		break;
	case SPOOL_BACKOFF_LINEAR:
		d = (base_ms != 0 && attempt > INT64_MAX / base_ms) ?
		    INT64_MAX : base_ms * attempt;
		break;
	case SPOOL_BACKOFF_EXPONENTIAL:
	default:
		shift = attempt - 1;
		if (base_ms == 0)
			d = 0;
		else if (shift >= 62 || base_ms > (INT64_MAX >> shift))
			d = INT64_MAX;
		else
			d = base_ms << shift;
		break;
	}
	if (d > cap_ms)
		d = cap_ms;
	if (jitter > 0 && u > 0) {
		if (jitter > 1)
			jitter = 1;
		if (u >= 1)
			u = 0.999999999;
		d -= (int64_t)((double)d * jitter * u);
	}
	return (d);
}

/* The policy called name, or 0. */
int
spool__backoff_parse(const char *name)
{
	int	 i;

	if (name == NULL)
		return (0);
	for (i = SPOOL_BACKOFF_FIXED; i <= SPOOL_BACKOFF_EXPONENTIAL; i++)
		if (strcmp(backoff_names[i], name) == 0)
			return (i);
	return (0);
}

/* The name of a policy, or NULL. */
const char *
spool__backoff_name(int policy)
{
	if (policy < SPOOL_BACKOFF_FIXED || policy > SPOOL_BACKOFF_EXPONENTIAL)
		return (NULL);
	return (backoff_names[policy]);
}
