/*
 * json.c -- a small streaming JSON writer for the CLI's --json output.
 *
 * It tracks nesting and commas itself, escapes every string, and turns
 * bytes that are not valid UTF-8 into U+FFFD, so whatever the database
 * holds, the output parses.  Binary payloads go out as base64 instead
 * (json_kv_payload).
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "utf8.h"

void
json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof *j);
	j->f = f;
}

/* Write the comma that separates this value from the previous one. */
static void
json_sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = 0;
		return;
	}
	if (j->count[j->depth]++ > 0)
		fputc(',', j->f);
}

void
json_open(struct json *j, int c)
{
	json_sep(j);
	fputc(c, j->f);
	if (j->depth < (int)(sizeof j->count / sizeof j->count[0]) - 1)
		j->depth++;
	j->count[j->depth] = 0;
}

void
json_close(struct json *j, int c)
{
	fputc(c, j->f);
	if (j->depth > 0)
		j->depth--;
}

/* Write bytes as a JSON string. */
void
json_bytes(struct json *j, const void *p, size_t n)
{
	const unsigned char	*s = p;
	size_t			 i = 0, len;

	json_sep(j);
	fputc('"', j->f);
	while (i < n) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			fputc('\\', j->f);
			fputc(c, j->f);
		} else if (c == '\n')
			fputs("\\n", j->f);
		else if (c == '\r')
			fputs("\\r", j->f);
		else if (c == '\t')
			fputs("\\t", j->f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(j->f, "\\u%04x", c);
		else if (c < 0x80)
			fputc(c, j->f);
		else if ((len = utf8_seq(s + i, n - i)) == 0)
			fputs("\\ufffd", j->f);
		else {
			fwrite(s + i, 1, len, j->f);
			i += len;
			continue;
		}
		i++;
	}
	fputc('"', j->f);
}

void
json_str(struct json *j, const char *s)
{
	if (s == NULL)
		json_null(j);
	else
		json_bytes(j, s, strlen(s));
}

void
json_key(struct json *j, const char *k)
{
	json_str(j, k);
	fputc(':', j->f);
	j->after_key = 1;
}

void
json_int(struct json *j, int64_t v)
{
	json_sep(j);
	fprintf(j->f, "%" PRId64, v);
}

/* A value that is JSON already (valid: the caller makes sure). */
void
json_raw(struct json *j, const char *json)
{
	json_sep(j);
	fputs(json, j->f);
}

void
json_double(struct json *j, double v)
{
	char	 buf[32];

	json_sep(j);
	if (isfinite(v)) {
		/* The shortest of %.15g and %.17g that reads back the same. */
		snprintf(buf, sizeof buf, "%.15g", v);
		if (strtod(buf, NULL) != v)
			snprintf(buf, sizeof buf, "%.17g", v);
		fputs(buf, j->f);
	} else
		fputs("null", j->f);
}

void
json_bool(struct json *j, int v)
{
	json_sep(j);
	fputs(v ? "true" : "false", j->f);
}

void
json_null(struct json *j)
{
	json_sep(j);
	fputs("null", j->f);
}

void
json_kv_str(struct json *j, const char *k, const char *v)
{
	json_key(j, k);
	json_str(j, v);
}

void
json_kv_int(struct json *j, const char *k, int64_t v)
{
	json_key(j, k);
	json_int(j, v);
}

/* A time in ms, or null when it is 0 (absent). */
void
json_kv_time(struct json *j, const char *k, int64_t ms)
{
	json_key(j, k);
	if (ms == 0)
		json_null(j);
	else
		json_int(j, ms);
}

/* Bytes as "k": "text" when they are UTF-8 text, else as "k_base64". */
void
json_kv_payload(struct json *j, const char *k, const void *p, size_t n)
{
	static const char	 b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char	*s = p;
	char			 key[64];
	size_t			 i;
	unsigned long		 v;

	if (p == NULL || utf8_valid(p, n)) {
		json_key(j, k);
		if (p == NULL)
			json_null(j);
		else
			json_bytes(j, p, n);
		return;
	}
	snprintf(key, sizeof key, "%s_base64", k);
	json_key(j, key);
	json_sep(j);
	fputc('"', j->f);
	for (i = 0; i < n; i += 3) {
		v = (unsigned long)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned long)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		fputc(b64[(v >> 18) & 63], j->f);
		fputc(b64[(v >> 12) & 63], j->f);
		fputc(i + 1 < n ? b64[(v >> 6) & 63] : '=', j->f);
		fputc(i + 2 < n ? b64[v & 63] : '=', j->f);
	}
	fputc('"', j->f);
}

/* Finish the document with a newline. */
void
json_end(struct json *j)
{
	fputc('\n', j->f);
}
