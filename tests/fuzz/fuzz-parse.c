/*
 * fuzz-parse.c -- libFuzzer harness for the CLI's parsers of outside
 * input (parse.c): integers, durations ("1d", "250ms"), times ("--at":
 * spool's own output, RFC 3339 with offsets) and fractions ("--jitter"),
 * and pipeline stage specs ("name:4=command --flag, retry=3").  Each
 * input is given to every parser, NUL-terminated; a parser must not read
 * past it, write out of bounds or crash, and what it accepts must be in
 * range.  Built by "make fuzz" with clang (see Makefile.am).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	spool_stage	 st;
	char		*s, err[256];
	int64_t		 v;
	double		 f;

	if ((s = malloc(size + 1)) == NULL)
		return (0);
	memcpy(s, data, size);
	s[size] = '\0';
	if (parse_int64(s, -1000, 1000, &v) == 0 && (v < -1000 || v > 1000))
		abort();
	if (parse_duration_ms(s, &v) == 0 && v < 0)
		abort();
	(void)parse_time_ms(s, &v);
	if (parse_fraction(s, &f) == 0 && !(f >= 0 && f <= 1))
		abort();
	/* parse_stage writes into its input: it runs last. */
	if (parse_stage(s, &st, err, sizeof err) != 0 &&
	    memchr(err, '\0', sizeof err) == NULL)
		abort();
	free(s);
	return (0);
}
