/*
 * parse.c -- the CLI's parsers for numbers, durations, times and
 * fractions.  Pure functions: they read a string and write one value, or
 * say why they cannot (-1 bad syntax, -2 out of range).  Nothing is
 * guessed: no leading or trailing spaces, no "+", no hex, no exponents.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "cmd.h"

#define DURATION_MAX_MS	(100LL * 365 * 24 * 3600 * 1000)	/* 100 years */

/* A decimal integer in [min, max]. */
int
parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	uint64_t	 v = 0, limit;
	int		 neg = 0, digit;

	if (s == NULL || *s == '\0')
		return (-1);
	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (*s == '\0')
		return (-1);
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return (-1);
		digit = *s - '0';
		if (v > (limit - (uint64_t)digit) / 10) {
			/* Keep scanning: "99999999999999999999x" is syntax. */
			while (*++s != '\0')
				if (*s < '0' || *s > '9')
					return (-1);
			return (-2);
		}
		v = v * 10 + (uint64_t)digit;
	}
	if (neg) {
		if (v == (uint64_t)INT64_MAX + 1) {
			if (min > INT64_MIN)
				return (-2);
			*out = INT64_MIN;
			return (0);
		}
		*out = -(int64_t)v;
	} else
		*out = (int64_t)v;
	if (*out < min || *out > max)
		return (-2);
	return (0);
}

/*
 * A duration: one or more NUMBER UNIT groups with unit ms, s, m, h or d
 * ("1h30m", "250ms"), or a bare number of seconds ("30").  At most 100
 * years; never negative.
 */
int
parse_duration_ms(const char *s, int64_t *out)
{
	int64_t		 total = 0, n, unit;
	const char	*p = s;
	int		 groups = 0;

	if (s == NULL || *s == '\0')
		return (-1);
	while (*p != '\0') {
		if (!isdigit((unsigned char)*p))
			return (-1);
		n = 0;
		for (; isdigit((unsigned char)*p); p++) {
			if (n > DURATION_MAX_MS)	/* keep n bounded */
				n = DURATION_MAX_MS + 1;
			else
				n = n * 10 + (*p - '0');
		}
		if (*p == '\0') {
			if (groups > 0)
				return (-1);	/* "1h30": unit missing */
			unit = 1000;
		} else if (strncmp(p, "ms", 2) == 0) {
			unit = 1;
			p += 2;
		} else if (*p == 's') {
			unit = 1000;
			p++;
		} else if (*p == 'm') {
			unit = 60 * 1000;
			p++;
		} else if (*p == 'h') {
			unit = 3600 * 1000;
			p++;
		} else if (*p == 'd') {
			unit = 24 * 3600 * 1000;
			p++;
		} else
			return (-1);
		if (n > DURATION_MAX_MS / unit)
			return (-2);
		total += n * unit;
		if (total > DURATION_MAX_MS)
			return (-2);
		groups++;
	}
	*out = total;
	return (0);
}

/* Read exactly n digits at *p into *v. */
static int
digits(const char **p, int n, int *v)
{
	*v = 0;
	while (n-- > 0) {
		if (!isdigit((unsigned char)**p))
			return (-1);
		*v = *v * 10 + (*(*p)++ - '0');
	}
	return (0);
}

/*
 * A point in time: "@SECONDS" since the Unix epoch, or UTC as
 * "YYYY-MM-DD", "YYYY-MM-DDTHH:MM", "YYYY-MM-DDTHH:MM:SS", with a space
 * allowed for the T and an optional final Z.  Years 1970 to 9999.
 */
int
parse_time_ms(const char *s, int64_t *out)
{
	struct tm	 tm;
	const char	*p = s;
	int		 y, mo, d, h = 0, mi = 0, se = 0, mdays;
	int64_t		 secs;
	time_t		 t;

	if (s == NULL || *s == '\0')
		return (-1);
	if (*s == '@') {
		int	 rc;

		if ((rc = parse_int64(s + 1, 0, 253402300799LL, &secs)) != 0)
			return (rc);
		*out = secs * 1000;
		return (0);
	}
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) ||
	    *p++ != '-' || digits(&p, 2, &d))
		return (-1);
	if (*p == 'T' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
			return (-1);
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &se))
				return (-1);
		}
	}
	if (*p == 'Z')
		p++;
	if (*p != '\0')
		return (-1);
	if (y < 1970 || mo < 1 || mo > 12 || h > 23 || mi > 59 || se > 59)
		return (-2);
	mdays = (mo == 2) ? (((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ?
	    29 : 28) : (mo == 4 || mo == 6 || mo == 9 || mo == 11) ? 30 : 31;
	if (d < 1 || d > mdays)
		return (-2);
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	if ((t = timegm(&tm)) == (time_t)-1)
		return (-2);
	*out = (int64_t)t * 1000;
	return (0);
}

/* A fraction between 0 and 1 written as "0", "1", "0.25" or ".5". */
int
parse_fraction(const char *s, double *out)
{
	const char	*p = s;
	double		 v = 0, scale = 1;
	int		 any = 0;

	if (s == NULL || *s == '\0')
		return (-1);
	for (; isdigit((unsigned char)*p); p++, any = 1) {
		v = v * 10 + (*p - '0');
		if (v > 1) {
			while (isdigit((unsigned char)*p))
				p++;
			if (*p == '.')
				for (p++; isdigit((unsigned char)*p); p++)
					continue;
			return (*p == '\0' ? -2 : -1);
		}
	}
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++, any = 1) {
			scale /= 10;
			v += (*p - '0') * scale;
		}
	}
	if (!any || *p != '\0')
		return (-1);
	if (v > 1)
		return (-2);
	*out = v;
	return (0);
}

/*
 * A pipeline stage: NAME:CONCURRENCY[:OPTION,...]=COMMAND, where an
 * OPTION is retry=N, delay=DURATION, timeout=DURATION, skip or fail_fast.
 * spec is cut in place; the stage's strings point into it.  Without skip
 * or fail_fast the strategy is retry, by default 3 retries 1 s apart.
 * Returns 0, or -1 with why in err.
 */
/* Cut the blanks around s (in place). */
static char *
trim(char *s)
{
	size_t	 n;

	s += strspn(s, " \t");
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return (s);
}

int
parse_stage(char *spec, spool_stage *st, char *err, size_t errlen)
{
	char		*p = spec, *key, *val, *name;
	int64_t		 n;
	int		 retries = -1, delay = 0, strategy = 0;

	memset(st, 0, sizeof *st);
	st->version = SPOOL_STAGE_VERSION;
	st->on_error = SPOOL_ON_ERROR_RETRY;
	name = p;
	p += strcspn(p, ":=");
	if (*p != ':') {
		snprintf(err, errlen, "'%.80s': expected NAME:CONCURRENCY=COMMAND",
		    spec);
		return (-1);
	}
	*p++ = '\0';
	st->name = name = trim(name);
	if (*name == '\0') {
		snprintf(err, errlen, "'%.80s': the stage has no name", spec);
		return (-1);
	}
	val = p;
	p += strcspn(p, ":=");
	if (*p == '\0') {
		snprintf(err, errlen, "stage %.64s: no '=COMMAND'", name);
		return (-1);
	}
	key = p;	/* the separator after the concurrency */
	if (*key == ':' || *key == '=') {
		char	 sep = *key;

		*key = '\0';
		val = trim(val);
		if (parse_int64(val, 1, SPOOL_CONCURRENCY_MAX, &n) != 0) {
			snprintf(err, errlen, "stage %.64s: concurrency must be "
			    "1 to %d, not '%.20s'", name, SPOOL_CONCURRENCY_MAX,
			    val);
			return (-1);
		}
		st->concurrency = (int)n;
		p = key + 1;
		/* Options, up to the '=' that starts the command. */
		while (sep != '=') {
			key = p;
			p += strcspn(p, ",=");
			if (*p == '\0') {
				snprintf(err, errlen, "stage %.64s: no '=COMMAND' "
				    "after the options", name);
				return (-1);
			}
			val = NULL;
			sep = *p;
			*p++ = '\0';
			key = trim(key);
			if (sep == '=' && (strcmp(key, "retry") == 0 ||
			    strcmp(key, "delay") == 0 ||
			    strcmp(key, "timeout") == 0)) {
				val = p;
				p += strcspn(p, ",=");
				if (*p == '\0') {
					snprintf(err, errlen, "stage %.64s: no "
					    "'=COMMAND' after the options", name);
					return (-1);
				}
				sep = *p;
				*p++ = '\0';
				val = trim(val);
			}
			if (strcmp(key, "skip") == 0 && val == NULL)
				strategy = SPOOL_ON_ERROR_SKIP;
			else if (strcmp(key, "fail_fast") == 0 && val == NULL)
				strategy = SPOOL_ON_ERROR_FAIL_FAST;
			else if (strcmp(key, "retry") == 0 && val != NULL &&
			    parse_int64(val, 0, 1000, &n) == 0)
				retries = (int)n;
			else if (strcmp(key, "delay") == 0 && val != NULL &&
			    parse_duration_ms(val, &st->retry_delay_ms) == 0)
				delay = 1;
			else if (strcmp(key, "timeout") == 0 && val != NULL &&
			    parse_duration_ms(val, &st->timeout_ms) == 0)
				;
			else {
				snprintf(err, errlen, "stage %.64s: bad option "
				    "'%.40s%s%.40s' (retry=N, delay=DURATION, "
				    "timeout=DURATION, skip, fail_fast)", name,
				    key, val != NULL ? "=" : "",
				    val != NULL ? val : "");
				return (-1);
			}
			if (sep == '=')
				break;
		}
	}
	if (strategy != 0 && (retries >= 0 || delay)) {
		snprintf(err, errlen, "stage %.64s: retry= and delay= go with "
		    "the retry strategy, not %s", name,
		    strategy == SPOOL_ON_ERROR_SKIP ? "skip" : "fail_fast");
		return (-1);
	}
	if (strategy != 0)
		st->on_error = strategy;
	else {
		st->retries = retries >= 0 ? retries : 3;
		if (!delay)
			st->retry_delay_ms = 1000;
	}
	st->command = p = trim(p);
	if (*p == '\0') {
		snprintf(err, errlen, "stage %.64s: the command is empty", name);
		return (-1);
	}
	return (0);
}
