/*
 * hist.c -- latency histograms with fixed buckets (spool_histogram) and
 * their quantiles: a data structure, with no pool, lock or database in
 * it.  A pool's metrics built from them are pool-metrics.c's.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "spool.h"
#include "spool-int.h"

static const int64_t hist_bounds[SPOOL_HIST_BUCKETS] = SPOOL_HIST_BOUNDS_MS;

/* An empty histogram with the standard bounds. */
void
spool__hist_init(spool_histogram *h)
{
	memset(h, 0, sizeof *h);
	memcpy(h->le_ms, hist_bounds, sizeof h->le_ms);
}

/* Count one observation of ms milliseconds. */
void
spool__hist_add(spool_histogram *h, int64_t ms)
{
	int	 i;

	if (ms < 0)
		ms = 0;
	for (i = 0; i < SPOOL_HIST_BUCKETS; i++)
		if (ms <= h->le_ms[i])
			h->count[i]++;
	h->n++;
	h->sum_ms += ms;
}

double
spool_histogram_quantile(const spool_histogram *h, double q)
{
	double	 rank, lo, hi, below, in;
	int	 i;

	if (h == NULL || h->n <= 0)
		return (0);
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	rank = q * (double)h->n;
	for (i = 0; i < SPOOL_HIST_BUCKETS; i++)
		if ((double)h->count[i] >= rank && h->count[i] > 0)
			break;
	if (i == SPOOL_HIST_BUCKETS)
		i = SPOOL_HIST_BUCKETS - 1;
	if (i == SPOOL_HIST_BUCKETS - 1 && h->le_ms[i] == INT64_MAX)
		return ((double)h->le_ms[i - 1]);
	lo = i == 0 ? 0 : (double)h->le_ms[i - 1];
	hi = (double)h->le_ms[i];
	below = i == 0 ? 0 : (double)h->count[i - 1];
	in = (double)h->count[i] - below;
	if (in <= 0)
		return (hi);
	return (lo + (hi - lo) * (rank - below) / in);
}

