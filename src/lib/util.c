/*
 * util.c -- small helpers shared by the library: copies, UTF-8 checks,
 * the validation of names and keys, and clock readings.  Nothing here
 * touches the database.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spool-int.h"

/* A malloc'd copy of len bytes of p (one extra NUL byte is added, so text
 * copies are strings); NULL on failure. */
void *
spool__memdup(const void *p, size_t len)
{
	char	*c;

	if ((c = malloc(len + 1)) == NULL)
		return (NULL);
	if (len > 0)
		memcpy(c, p, len);
	c[len] = '\0';
	return (c);
}

/* Make room for one more element at v[len] of an array of cap elements
 * of size bytes, doubling its capacity when it is full.  Returns the
 * array (maybe moved), or NULL when memory runs out (v is then still
 * valid and unchanged). */
void *
spool__grow(void *v, size_t *cap, size_t len, size_t size)
{
	size_t	 ncap;
	void	*nv;

	if (len < *cap)
		return (v);
	ncap = *cap ? *cap * 2 : 8;
	if (ncap > SIZE_MAX / size || (nv = realloc(v, ncap * size)) == NULL)
		return (NULL);
	*cap = ncap;
	return (nv);
}

/* A copy of s into *out, unless s is NULL (*out is then left as it is,
 * NULL in a zeroed element): for a column that may be NULL.  0 when
 * memory runs out. */
int
spool__strdup_opt(char **out, const char *s)
{
	return (s == NULL || (*out = spool__strdup(s)) != NULL);
}

/* The row-collecting step of every list read: array v of *len elements
 * of size, grown (through *cap) by one zeroed element at its end.
 * Returns the array (maybe moved; the new element is the (*len)-th), or
 * NULL when memory runs out (v is then unchanged and still valid). */
void *
spool__push(void *v, size_t *len, size_t *cap, size_t size)
{
	char	*nv;

	if ((nv = spool__grow(v, cap, *len, size)) == NULL)
		return (NULL);
	memset(nv + *len * size, 0, size);
	(*len)++;
	return (nv);
}

/* A malloc'd copy of s, or NULL when s is NULL or memory runs out. */
char *
spool__strdup(const char *s)
{
	if (s == NULL)
		return (NULL);
	return (spool__memdup(s, strlen(s)));
}

/* Refuse an options struct of type (its C name) whose version is newer
 * than the known one: it comes from a program built against a newer
 * spool.h, whose fields this library would silently ignore.  Version 0
 * (never set) is each caller's own check. */
int
spool__check_version(spool *q, const char *type, unsigned version,
    unsigned known)
{
	if (version <= known)
		return (SPOOL_OK);
	return (spool__error(q, SPOOL_EINVAL, SPOOL__VERSION_UNKNOWN, type,
	    version, known));
}

/*
 * The entry of every list call (spool_list, spool_batch_list, ...), so
 * that they cannot drift apart.  out_null (the caller's out is NULL) or
 * a NULL n is a misuse, and an unusable handle gives its code; else *n is
 * 0, q's last error is cleared, and the options struct of type (its C
 * name: its initializer's is the same in capitals, with _INIT) must have
 * a version set and known, and a page limit (0: SPOOL__LIST_DEFAULT) of
 * at most SPOOL__LIST_MAX rows, which goes into *limit_out.
 */
int
spool__list_begin(spool *q, int out_null, size_t *n, const char *type,
    unsigned version, unsigned known, size_t limit, size_t *limit_out)
{
	char	 init[64];
	size_t	 i;
	int	 rc;

	if (n != NULL)
		*n = 0;
	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	if (out_null || n == NULL)
		return (spool__error(q, SPOOL_EINVAL, "%s: out or n is NULL",
		    type));
	spool__clear_error(q);
	if (version < 1) {
		for (i = 0; type[i] != '\0' && i < sizeof init - 6; i++)
			init[i] = (char)toupper((unsigned char)type[i]);
		memcpy(init + i, "_INIT", 6);
		return (spool__error(q, SPOOL_EINVAL,
		    "%s: version not set (use %s)", type, init));
	}
	if ((rc = spool__check_version(q, type, version, known)) != SPOOL_OK)
		return (rc);
	if (limit > SPOOL__LIST_MAX)
		return (spool__error(q, SPOOL_EINVAL,
		    "%s: limit too large (at most %d)", type, SPOOL__LIST_MAX));
	*limit_out = limit == 0 ? SPOOL__LIST_DEFAULT : limit;
	return (SPOOL_OK);
}

/* Check a name or key: 1..max bytes of UTF-8 with no control characters.
 * Returns 0, or SPOOL_EINVAL recorded on q naming "what". */
int
spool__check_name(spool *q, const char *what, const char *name, size_t max)
{
	size_t			 len, i;
	const unsigned char	*s = (const unsigned char *)name;

	if (name == NULL)
		return (spool__error(q, SPOOL_EINVAL, "%s is missing", what));
	len = strlen(name);
	if (len == 0)
		return (spool__error(q, SPOOL_EINVAL, "%s is empty", what));
	if (len > max)
		return (spool__error(q, SPOOL_EINVAL,
		    "%s is too long (%zu bytes, at most %zu)", what, len, max));
	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return (spool__error(q, SPOOL_EINVAL,
			    "%s has a control character at byte %zu", what, i + 1));
	if (!utf8_valid(name, len))
		return (spool__error(q, SPOOL_EINVAL,
		    "%s is not valid UTF-8", what));
	return (SPOOL_OK);
}

/*
 * Split a command into words the way a POSIX shell would, without any
 * expansion: blanks separate words; '...' keeps everything literally;
 * "..." keeps everything but \", \\, \$ and \` (which lose their
 * backslash); outside quotes, a backslash keeps the next character.
 * *argv_out is NULL-terminated (free with spool__words_free).
 */
int
spool__split_words(spool *q, const char *s, char ***argv_out, size_t *argc_out)
{
	char	**argv = NULL, **nv, *w = NULL;
	size_t	  argc = 0, cap = 0, wlen, len = strlen(s);
	int	  inword = 0;
	char	  quote = 0;

	*argv_out = NULL;
	*argc_out = 0;
	if ((w = malloc(len + 1)) == NULL)
		goto nomem;
	wlen = 0;
	for (;; s++) {
		char	 c = *s;

		if (quote == '\'') {
			if (c == '\0')
				goto unterminated;
			if (c == '\'')
				quote = 0;
			else
				w[wlen++] = c;
			continue;
		}
		if (quote == '"') {
			if (c == '\0')
				goto unterminated;
			if (c == '"')
				quote = 0;
			else if (c == '\\' && (s[1] == '"' || s[1] == '\\' ||
			    s[1] == '$' || s[1] == '`'))
				w[wlen++] = *++s;
			else
				w[wlen++] = c;
			continue;
		}
		if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
			if (inword) {
				if ((nv = spool__grow(argv, &cap, argc + 1,
				    sizeof *argv)) == NULL)
					goto nomem;
				argv = nv;
				w[wlen] = '\0';
				argv[argc + 1] = NULL;
				if ((argv[argc] = spool__strdup(w)) == NULL)
					goto nomem;
				argc++;
				wlen = 0;
				inword = 0;
			}
			if (c == '\0')
				break;
			continue;
		}
		inword = 1;
		if (c == '\'' || c == '"')
			quote = c;
		else if (c == '\\') {
			if (s[1] == '\0') {
				spool__words_free(argv);
				free(w);
				return (spool__error(q, SPOOL_EINVAL,
				    "command ends with a backslash"));
			}
			w[wlen++] = *++s;
		} else
			w[wlen++] = c;
	}
	free(w);
	if (argv == NULL && (argv = calloc(1, sizeof *argv)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	*argv_out = argv;
	*argc_out = argc;
	return (SPOOL_OK);
unterminated:
	spool__words_free(argv);
	free(w);
	return (spool__error(q, SPOOL_EINVAL, "command has an unterminated %s "
	    "quote", quote == '\'' ? "single" : "double"));
nomem:
	spool__words_free(argv);
	free(w);
	return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
}

/* Free what spool__split_words made. */
void
spool__words_free(char **argv)
{
	size_t	 i;

	if (argv == NULL)
		return;
	for (i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

/* Nanoseconds of clock: CLOCK_REALTIME for Unix times (what the database
 * stores), CLOCK_MONOTONIC for timeouts and durations; the _us and _ms
 * calls are the same clock read coarser. */
int64_t
spool__clock_ns(clockid_t clock)
{
	struct timespec	 ts;

	clock_gettime(clock, &ts);
	return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

int64_t
spool__clock_us(clockid_t clock)
{
	return (spool__clock_ns(clock) / 1000);
}

int64_t
spool__clock_ms(clockid_t clock)
{
	return (spool__clock_ns(clock) / 1000000);
}

/* A deadline s seconds and ns nanoseconds from now on clock, as
 * pthread_cond_timedwait wants it.  Negative is now; a wait beyond about
 * 35,000 years (INT64_MAX ms, say, for "never") is cut to that, so no
 * sum overflows into the past. */
#define CLOCK_AFTER_MAX_S	((int64_t)1 << 40)

static struct timespec
clock_after(clockid_t clock, int64_t s, long ns)
{
	struct timespec	 ts;

	clock_gettime(clock, &ts);
	if (s < 0 || ns < 0)
		return (ts);
	ts.tv_sec += (time_t)(s < CLOCK_AFTER_MAX_S ? s : CLOCK_AFTER_MAX_S);
	if ((ts.tv_nsec += ns) >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return (ts);
}

struct timespec
spool__clock_after_ms(clockid_t clock, int64_t ms)
{
	return (clock_after(clock, ms / 1000, (long)(ms % 1000) * 1000000));
}

struct timespec
spool__clock_after_us(clockid_t clock, int64_t us)
{
	return (clock_after(clock, us / 1000000, (long)(us % 1000000) * 1000));
}

/* Sleep us microseconds (<= 0: not at all), through signals. */
void
spool__sleep_us(int64_t us)
{
	struct timespec	 ts;

	if (us <= 0)
		return;
	ts.tv_sec = (time_t)(us / 1000000);
	ts.tv_nsec = (long)(us % 1000000) * 1000;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
