/*
 * fuzz-lines.c -- libFuzzer harness for "spool enqueue QUEUE --lines",
 * run through the CLI's own cmd_main on a database in a scratch
 * directory, with the input as its stdin.  Besides not crashing: it
 * exits 0 or 65 (a line too long for a payload); with 0, the tasks
 * added are the input's non-empty lines, in order, byte for byte; with
 * 65, none is added; and a line over SPOOL_PAYLOAD_MAX always gives 65.
 * Built by tests/cli/fuzz.sh with clang.
 */
#include "config.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	 scratch[256], db[300], input[300];
static sqlite3	*look;		/* a connection of the harness's own */

static void
setup(void)
{
	const char	*tmp = getenv("TMPDIR");
	char		*argv[] = { "spool", "--db", db, "init", NULL };

	snprintf(scratch, sizeof scratch, "%s/fuzz-lines-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(scratch) == NULL)
		abort();
	snprintf(db, sizeof db, "%s/f.db", scratch);
	snprintf(input, sizeof input, "%s/in", scratch);
	if (freopen("/dev/null", "w", stdout) == NULL)
		abort();
	if (cmd_main(4, argv) != EXIT_OK)
		abort();
	if (sqlite3_open(db, &look) != SQLITE_OK)
		abort();
}

static int64_t
top_id(void)
{
	sqlite3_stmt	*st;
	int64_t		 id = 0;

	if (sqlite3_prepare_v2(look, "SELECT coalesce(max(id), 0) FROM tasks",
	    -1, &st, NULL) != SQLITE_OK)
		abort();
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (id);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		*argv[] = { "spool", "--db", db, "enqueue", "f",
			    "--lines", NULL };
	sqlite3_stmt	*st;
	const uint8_t	*p, *end = data + size, *nl;
	FILE		*f;
	int64_t		 before;
	size_t		 len;
	int		 rc, toolong = 0;

	if (look == NULL)
		setup();
	if ((f = fopen(input, "wb")) == NULL ||
	    fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	if (freopen(input, "rb", stdin) == NULL)
		abort();
	for (p = data; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if ((size_t)(nl - p) > SPOOL_PAYLOAD_MAX)
			toolong = 1;
	}
	before = top_id();
	rc = cmd_main(6, argv);
	if (rc != EXIT_OK && rc != EXIT_DATA)
		abort();
	if (toolong && rc != EXIT_DATA)
		abort();
	if (sqlite3_prepare_v2(look, "SELECT payload FROM tasks WHERE id > ?1 "
	    "ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		abort();
	sqlite3_bind_int64(st, 1, before);
	/* Each new task, in order, is the next non-empty line. */
	for (p = data; p <= end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		len = (size_t)(nl - p);
		if (len == 0) {
			if (nl == end)
				break;
			continue;
		}
		if (rc != EXIT_OK)
			break;
		if (sqlite3_step(st) != SQLITE_ROW ||
		    (size_t)sqlite3_column_bytes(st, 0) != len ||
		    memcmp(sqlite3_column_blob(st, 0), p, len) != 0)
			abort();
		if (nl == end)
			break;
	}
	/* No task more than the lines (none at all after a refusal). */
	if (sqlite3_step(st) != SQLITE_DONE)
		abort();
	sqlite3_finalize(st);
	/* Keep the database small: the next input starts from empty. */
	if (sqlite3_exec(look, "DELETE FROM tasks", NULL, NULL, NULL) !=
	    SQLITE_OK)
		abort();
	return (0);
}
