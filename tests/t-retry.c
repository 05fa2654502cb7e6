/*
 * t-retry.c -- backoff math (retry.c): each policy, the cap, jitter bounds
 * and overflow.  Pure functions: no database.
 */
#include "config.h"

#include <stdint.h>

#include "testutil.h"

#define S 1000LL
#define H (3600 * S)

/* Fixed: the base every time, whatever the attempt. */
static void
test_fixed(void)
{
	int	 n;

	for (n = 1; n <= 100; n++)
		CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_FIXED, 5 * S, H,
		    0, n, 0), 5 * S);
}

/* Linear: base * n, then the cap. */
static void
test_linear(void)
{
	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_LINEAR, S, H, 0, 1, 0), S);
	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_LINEAR, S, H, 0, 7, 0), 7 * S);
	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_LINEAR, S, 10 * S, 0, 11, 0),
	    10 * S);
}

/* Exponential: base, 2 base, 4 base, ... then the cap. */
static void
test_exponential(void)
{
	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_EXPONENTIAL, S, H, 0, 1, 0), S);
	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_EXPONENTIAL, S, H, 0, 2, 0), 2 * S);
	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_EXPONENTIAL, S, H, 0, 5, 0), 16 * S);
	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_EXPONENTIAL, S, H, 0, 13, 0), H);
}

/* Huge attempts and bases saturate at the cap instead of overflowing. */
static void
test_overflow(void)
{
	int64_t	 big = INT64_MAX / 2;

	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_EXPONENTIAL, S, H, 0,
	    1000000, 0), H);
	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_EXPONENTIAL, big, H, 0,
	    3, 0), H);
	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_LINEAR, big, H, 0,
	    1000, 0), H);
	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_EXPONENTIAL, 0, H, 0,
	    100, 0), 0);
	/* Nonsense inputs are clamped, not trusted. */
	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_FIXED, -5, H, 0, 1, 0), 0);
	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_EXPONENTIAL, S, H, 0, 0, 0), S);
}

/* Jitter only shortens: delay * (1 - jitter) < d <= delay, at the cap too. */
static void
test_jitter_bounds(void)
{
	int64_t	 d, lo, hi;
	double	 u;
	int	 i, n;

	for (n = 1; n <= 20; n++) {
		hi = spool__backoff_ms(SPOOL_BACKOFF_EXPONENTIAL, S, H, 0, n, 0);
		lo = (int64_t)(hi * (1 - 0.3));
		for (i = 0; i < 1000; i++) {
			u = spool__random_unit();
			CU_ASSERT(u >= 0 && u < 1);
			d = spool__backoff_ms(SPOOL_BACKOFF_EXPONENTIAL, S, H,
			    0.3, n, u);
			CU_ASSERT(d <= hi);
			CU_ASSERT(d >= lo);
		}
	}
	/* The extremes of u. */
	CU_ASSERT_EQUAL(spool__backoff_ms(SPOOL_BACKOFF_FIXED, 10 * S, H, 0.5,
	    1, 0), 10 * S);
	d = spool__backoff_ms(SPOOL_BACKOFF_FIXED, 10 * S, H, 0.5, 1, 0.999999);
	CU_ASSERT(d > 5 * S && d <= 5 * S + 1);
	/* Full jitter may reach (almost) zero but never below. */
	d = spool__backoff_ms(SPOOL_BACKOFF_FIXED, 10 * S, H, 1.0, 1, 0.9999999);
	CU_ASSERT(d >= 0 && d < 10);
}

/* Jitter spreads values: 1000 draws are not all the same. */
static void
test_jitter_spreads(void)
{
	int64_t	 first, d;
	int	 i, differ = 0;

	first = spool__backoff_ms(SPOOL_BACKOFF_FIXED, 60 * S, H, 0.5, 1,
	    spool__random_unit());
	for (i = 0; i < 1000; i++) {
		d = spool__backoff_ms(SPOOL_BACKOFF_FIXED, 60 * S, H, 0.5, 1,
		    spool__random_unit());
		differ += (d != first);
	}
	CU_ASSERT(differ > 900);
}

/* Names round-trip, unknown names are 0. */
static void
test_names(void)
{
	int	 p;

	for (p = SPOOL_BACKOFF_FIXED; p <= SPOOL_BACKOFF_EXPONENTIAL; p++)
		CU_ASSERT_EQUAL(spool__backoff_parse(spool__backoff_name(p)), p);
	CU_ASSERT_EQUAL(spool__backoff_parse("Fixed"), 0);
	CU_ASSERT_EQUAL(spool__backoff_parse(""), 0);
	CU_ASSERT_EQUAL(spool__backoff_parse(NULL), 0);
	CU_ASSERT_PTR_NULL(spool__backoff_name(0));
	CU_ASSERT_PTR_NULL(spool__backoff_name(4));
}

static CU_TestInfo retry_tests[] = {
	{ "fixed", test_fixed },
	{ "linear", test_linear },
	{ "exponential", test_exponential },
	{ "overflow saturates at the cap", test_overflow },
	{ "jitter bounds", test_jitter_bounds },
	{ "jitter spreads", test_jitter_spreads },
	{ "policy names", test_names },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("retry", retry_tests));
}
