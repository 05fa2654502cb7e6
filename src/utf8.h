/*
 * utf8.h -- UTF-8 checks that the library and the CLI both need (the
 * library stores valid UTF-8 as TEXT, the CLI escapes the rest in JSON).
 * Static inline so each side has its own copy of one definition: the CLI
 * uses the library through spool.h alone.
 */
#ifndef SPOOL_UTF8_H
#define SPOOL_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The length of the well-formed UTF-8 sequence at s[0..n) (n >= 1), or 0
 * if it is not one (overlong, a surrogate, beyond U+10FFFF, cut short). */
static inline size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t	 len, i;

	if (s[0] < 0x80)
		return (1);
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return (0);
	if (len > n)
		return (0);
	for (i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return (0);
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return (0);
	return (len);
}

/* 1 if p[0..len) is valid UTF-8 with no NUL byte (so SQLite may store it
 * as TEXT), else 0. */
static inline int
utf8_valid(const void *p, size_t len)
{
	const unsigned char	*s = p;
	const uint64_t		 ones = 0x0101010101010101ULL;
	const uint64_t		 highs = 0x8080808080808080ULL;
	uint64_t		 w;
	size_t			 i = 0, n;

	while (i < len) {
		/* ASCII, 8 bytes at a time: no byte with its high bit set,
		 * and none zero. */
		if (len - i >= 8) {
			memcpy(&w, s + i, 8);
			if (((w | ((w - ones) & ~w)) & highs) == 0) {
				i += 8;
				continue;
			}
		}
		if (s[i] == 0 || (n = utf8_seq(s + i, len - i)) == 0)
			return (0);
		i += n;
	}
	return (1);
}

#endif /* SPOOL_UTF8_H */
