/*
 * t-parse.c -- the CLI's parsers (parse.c): integers, durations, times
 * and fractions, including every malformed form the bad-input table of
 * the CLI tests relies on being refused.
 */
#include "config.h"

#include <stdint.h>

#include "testutil.h"
#include "cmd.h"

/* Integers: exact decimal only, ranges enforced, overflow detected. */
static void
test_int(void)
{
	int64_t	 v;

	CU_ASSERT_EQUAL(parse_int64("0", 0, 10, &v), 0);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(parse_int64("-17", -100, 100, &v), 0);
	CU_ASSERT_EQUAL(v, -17);
	CU_ASSERT_EQUAL(parse_int64("9223372036854775807", 0, INT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, INT64_MAX);
	CU_ASSERT_EQUAL(parse_int64("-9223372036854775808", INT64_MIN, 0, &v), 0);
	CU_ASSERT_EQUAL(v, INT64_MIN);
	CU_ASSERT_EQUAL(parse_int64("9223372036854775808", 0, INT64_MAX, &v), -2);
	CU_ASSERT_EQUAL(parse_int64("99999999999999999999", 0, INT64_MAX, &v), -2);
	CU_ASSERT_EQUAL(parse_int64("99999999999999999999x", 0, INT64_MAX, &v), -1);
	CU_ASSERT_EQUAL(parse_int64("11", 0, 10, &v), -2);
	CU_ASSERT_EQUAL(parse_int64("-1", 0, 10, &v), -2);
	CU_ASSERT_EQUAL(parse_int64("", 0, 10, &v), -1);
	CU_ASSERT_EQUAL(parse_int64("-", 0, 10, &v), -1);
	CU_ASSERT_EQUAL(parse_int64("+1", 0, 10, &v), -1);
	CU_ASSERT_EQUAL(parse_int64(" 1", 0, 10, &v), -1);
	CU_ASSERT_EQUAL(parse_int64("1 ", 0, 10, &v), -1);
	CU_ASSERT_EQUAL(parse_int64("0x10", 0, 100, &v), -1);
	CU_ASSERT_EQUAL(parse_int64("1e3", 0, 10000, &v), -1);
	CU_ASSERT_EQUAL(parse_int64("10x", 0, 100, &v), -1);
	CU_ASSERT_EQUAL(parse_int64(NULL, 0, 100, &v), -1);
}

/* Durations: units, mixes, bare seconds; no negatives or overflow. */
static void
test_duration(void)
{
	int64_t	 v;

	CU_ASSERT_EQUAL(parse_duration_ms("30", &v), 0);
	CU_ASSERT_EQUAL(v, 30000);
	CU_ASSERT_EQUAL(parse_duration_ms("250ms", &v), 0);
	CU_ASSERT_EQUAL(v, 250);
	CU_ASSERT_EQUAL(parse_duration_ms("5m", &v), 0);
	CU_ASSERT_EQUAL(v, 300000);
	CU_ASSERT_EQUAL(parse_duration_ms("1h30m", &v), 0);
	CU_ASSERT_EQUAL(v, 5400000);
	CU_ASSERT_EQUAL(parse_duration_ms("2d", &v), 0);
	CU_ASSERT_EQUAL(v, 172800000);
	CU_ASSERT_EQUAL(parse_duration_ms("1m30s500ms", &v), 0);
	CU_ASSERT_EQUAL(v, 90500);
	CU_ASSERT_EQUAL(parse_duration_ms("0", &v), 0);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(parse_duration_ms("36500d", &v), 0);
	CU_ASSERT_EQUAL(parse_duration_ms("36501d", &v), -2);
	CU_ASSERT_EQUAL(parse_duration_ms("9999999999999h", &v), -2);
	CU_ASSERT_EQUAL(parse_duration_ms("9223372036854775808", &v), -2);
	CU_ASSERT_EQUAL(parse_duration_ms("99999999999999999999999999ms", &v), -2);
	CU_ASSERT_EQUAL(parse_duration_ms("-1", &v), -1);
	CU_ASSERT_EQUAL(parse_duration_ms("-5m", &v), -1);
	CU_ASSERT_EQUAL(parse_duration_ms("10x", &v), -1);
	CU_ASSERT_EQUAL(parse_duration_ms("1h30", &v), -1);
	CU_ASSERT_EQUAL(parse_duration_ms("1.5s", &v), -1);
	CU_ASSERT_EQUAL(parse_duration_ms("1e400", &v), -1);
	CU_ASSERT_EQUAL(parse_duration_ms("2^63", &v), -1);
	CU_ASSERT_EQUAL(parse_duration_ms("", &v), -1);
	CU_ASSERT_EQUAL(parse_duration_ms("s", &v), -1);
	CU_ASSERT_EQUAL(parse_duration_ms("5 m", &v), -1);
}

/* Times: @seconds and UTC dates, calendar checked. */
static void
test_time(void)
{
	int64_t	 v;

	CU_ASSERT_EQUAL(parse_time_ms("@0", &v), 0);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(parse_time_ms("@1795811371", &v), 0);
	CU_ASSERT_EQUAL(v, 1795811371000LL);
	CU_ASSERT_EQUAL(parse_time_ms("2027-01-15T08:00:00Z", &v), 0);
	CU_ASSERT_EQUAL(v, TU_EPOCH_MS);
	CU_ASSERT_EQUAL(parse_time_ms("2027-01-15 08:00", &v), 0);
	CU_ASSERT_EQUAL(v, TU_EPOCH_MS);
	CU_ASSERT_EQUAL(parse_time_ms("2027-01-15", &v), 0);
	CU_ASSERT_EQUAL(v, TU_EPOCH_MS - 8 * 3600 * 1000LL);
	CU_ASSERT_EQUAL(parse_time_ms("2024-02-29", &v), 0);
	CU_ASSERT_EQUAL(parse_time_ms("2023-02-29", &v), -2);
	CU_ASSERT_EQUAL(parse_time_ms("2026-13-01", &v), -2);
	CU_ASSERT_EQUAL(parse_time_ms("2026-11-27T24:00", &v), -2);
	CU_ASSERT_EQUAL(parse_time_ms("1969-12-31", &v), -2);
	CU_ASSERT_EQUAL(parse_time_ms("@-1", &v), -2);
	CU_ASSERT_EQUAL(parse_time_ms("@99999999999999999999", &v), -2);
	CU_ASSERT_EQUAL(parse_time_ms("@x", &v), -1);
	CU_ASSERT_EQUAL(parse_time_ms("tomorrow", &v), -1);
	CU_ASSERT_EQUAL(parse_time_ms("2026-11-27T10:00:00+01:00", &v), -1);
	CU_ASSERT_EQUAL(parse_time_ms("2026-1-27", &v), -1);
	CU_ASSERT_EQUAL(parse_time_ms("", &v), -1);
}

/* Fractions from 0 to 1. */
static void
test_fraction(void)
{
	double	 v;

	CU_ASSERT_EQUAL(parse_fraction("0", &v), 0);
	CU_ASSERT_DOUBLE_EQUAL(v, 0, 1e-12);
	CU_ASSERT_EQUAL(parse_fraction("1", &v), 0);
	CU_ASSERT_DOUBLE_EQUAL(v, 1, 1e-12);
	CU_ASSERT_EQUAL(parse_fraction("0.25", &v), 0);
	CU_ASSERT_DOUBLE_EQUAL(v, 0.25, 1e-12);
	CU_ASSERT_EQUAL(parse_fraction(".5", &v), 0);
	CU_ASSERT_DOUBLE_EQUAL(v, 0.5, 1e-12);
	CU_ASSERT_EQUAL(parse_fraction("1.5", &v), -2);
	CU_ASSERT_EQUAL(parse_fraction("12", &v), -2);
	CU_ASSERT_EQUAL(parse_fraction("-0.1", &v), -1);
	CU_ASSERT_EQUAL(parse_fraction(".", &v), -1);
	CU_ASSERT_EQUAL(parse_fraction("nan", &v), -1);
	CU_ASSERT_EQUAL(parse_fraction("0.5x", &v), -1);
	CU_ASSERT_EQUAL(parse_fraction("", &v), -1);
}

/* The one UTF-8 decoder: what is text, what is not. */
static void
test_utf8(void)
{
	static const struct { const char *s; size_t n; int ok; } c[] = {
		{ "plain", 5, 1 },
		{ "caf\xc3\xa9", 5, 1 },			/* U+00E9 */
		{ "\xe2\x82\xac", 3, 1 },		/* U+20AC */
		{ "\xf0\x9f\x98\x80", 4, 1 },		/* U+1F600 */
		{ "\xf4\x8f\xbf\xbf", 4, 1 },		/* U+10FFFF */
		{ "a\0b", 3, 0 },			/* NUL */
		{ "\xc0\xaf", 2, 0 },			/* overlong '/' */
		{ "\xe0\x80\xaf", 3, 0 },		/* overlong, 3 bytes */
		{ "\xf0\x80\x80\xaf", 4, 0 },		/* overlong, 4 bytes */
		{ "\xed\xa0\x80", 3, 0 },		/* surrogate U+D800 */
		{ "\xf4\x90\x80\x80", 4, 0 },		/* above U+10FFFF */
		{ "\xc3", 1, 0 },			/* cut short */
		{ "\xe2\x28\xa1", 3, 0 },		/* bad continuation */
		{ "\xff", 1, 0 },
	};
	size_t	 i;

	for (i = 0; i < sizeof c / sizeof c[0]; i++) {
		if (utf8_valid(c[i].s, c[i].n) != c[i].ok)
			fprintf(stderr, "\nutf8 case %zu\n", i);
		CU_ASSERT_EQUAL(utf8_valid(c[i].s, c[i].n), c[i].ok);
	}
	CU_ASSERT_EQUAL(utf8_seq((const unsigned char *)"\xe2\x82\xac",
	    3), 3);
	CU_ASSERT_EQUAL(utf8_seq((const unsigned char *)"\xe2\x82", 2), 0);
}

/* Pipeline stages: NAME:CONCURRENCY[:OPTION,...]=COMMAND. */
static int
stage_ok(const char *spec, spool_stage *st, char *buf, size_t len)
{
	char	 err[256];
	int	 rc;

	snprintf(buf, len, "%s", spec);
	rc = parse_stage(buf, st, err, sizeof err);
	if (rc != 0)
		fprintf(stderr, "\n%s: %s\n", spec, err);
	return (rc);
}

static void
test_stage(void)
{
	spool_stage	 st;
	char		 buf[256], err[256];
	static const char *const bad[] = {
		"", "a", "a:1", "a=cat", ":1=cat", "a:=cat", "a:0=cat",
		"a:1025=cat", "a:x=cat", "a:1:=cat", "a:1:skip", "a:1:retry=2",
		"a:1:retry=x=cat", "a:1:retry=1001=cat", "a:1:delay=1y=cat",
		"a:1:timeout==cat", "a:1:nope=cat", " :1=cat",
		"a:1:skip,retry=1=cat", "a:1:fail_fast,delay=1s=cat", "a:1=",
		"a:1=  \t", NULL
	};
	int		 i;

	CU_ASSERT_EQUAL(stage_ok("fetch:4=./fetch --x 'a b'", &st, buf,
	    sizeof buf), 0);
	CU_ASSERT_STRING_EQUAL(st.name, "fetch");
	CU_ASSERT_EQUAL(st.concurrency, 4);
	CU_ASSERT_EQUAL(st.on_error, SPOOL_ON_ERROR_RETRY);
	CU_ASSERT_EQUAL(st.retries, 3);
	CU_ASSERT_EQUAL(st.retry_delay_ms, 1000);
	CU_ASSERT_EQUAL(st.timeout_ms, 0);
	CU_ASSERT_STRING_EQUAL(st.command, "./fetch --x 'a b'");
	CU_ASSERT_EQUAL(stage_ok("a:2:retry=0,delay=250ms,timeout=1m=x=y:z",
	    &st, buf, sizeof buf), 0);
	CU_ASSERT_EQUAL(st.retries, 0);
	CU_ASSERT_EQUAL(st.retry_delay_ms, 250);
	CU_ASSERT_EQUAL(st.timeout_ms, 60000);
	CU_ASSERT_STRING_EQUAL(st.command, "x=y:z");
	CU_ASSERT_EQUAL(stage_ok(" b : 1 : skip , timeout = 2s = sed 's/a/b/' ",
	    &st, buf, sizeof buf), 0);
	CU_ASSERT_STRING_EQUAL(st.name, "b");
	CU_ASSERT_EQUAL(st.on_error, SPOOL_ON_ERROR_SKIP);
	CU_ASSERT_EQUAL(st.retries, 0);
	CU_ASSERT_EQUAL(st.retry_delay_ms, 0);
	CU_ASSERT_EQUAL(st.timeout_ms, 2000);
	CU_ASSERT_STRING_EQUAL(st.command, "sed 's/a/b/'");
	CU_ASSERT_EQUAL(stage_ok("c:1:fail_fast=cat", &st, buf, sizeof buf), 0);
	CU_ASSERT_EQUAL(st.on_error, SPOOL_ON_ERROR_FAIL_FAST);
	for (i = 0; bad[i] != NULL; i++) {
		snprintf(buf, sizeof buf, "%s", bad[i]);
		err[0] = '\0';
		if (parse_stage(buf, &st, err, sizeof err) != -1)
			fprintf(stderr, "\naccepted: '%s'\n", bad[i]);
		CU_ASSERT(err[0] != '\0');
	}
}

static CU_TestInfo parse_tests[] = {
	{ "UTF-8", test_utf8 },
	{ "integers", test_int },
	{ "durations", test_duration },
	{ "times", test_time },
	{ "fractions", test_fraction },
	{ "stages", test_stage },
	CU_TEST_INFO_NULL
};

int
main(void)
{
	return (tu_run("parse", parse_tests));
}
