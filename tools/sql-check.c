/*
 * tools/sql-check.c -- run by the build: every named query of sql/ is
 * prepared against the schema the migrations build, and each query that
 * declares its shape (-- in:, -- out:; see tools/sql2c.sh) is compared
 * with what SQLite makes of its SQL: as many parameters, numbered ?1 to
 * ?N, and the result columns by number and by name.  Any difference, or
 * a query that does not prepare, fails the build with one line per
 * query, so the C face generated from the declarations (query-gen.c)
 * binds and reads what the SQL has.
 *
 *   sql-check STAMP   on success, writes the file STAMP
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql-gen.h"

static int
check_query(sqlite3 *db, int i)
{
	sqlite3_stmt	*st = NULL;
	const char	*want = spool__sql_out[i], *name, *p;
	char		 num[16];
	size_t		 len;
	int		 k, n, bad = 0;

	if (sqlite3_prepare_v2(db, spool__sql_text[i], -1, &st, NULL) !=
	    SQLITE_OK) {
		fprintf(stderr, "sql-check: query %s does not prepare: %s\n",
		    spool__sql_name[i], sqlite3_errmsg(db));
		return (1);
	}
	if (spool__sql_nin[i] < 0) {	/* no declared shape */
		sqlite3_finalize(st);
		return (0);
	}
	n = sqlite3_bind_parameter_count(st);
	if (n != spool__sql_nin[i]) {
		fprintf(stderr, "sql-check: query %s declares %d parameters, "
		    "its SQL has %d\n", spool__sql_name[i], spool__sql_nin[i],
		    n);
		bad = 1;
	}
	for (k = 1; k <= n; k++) {
		snprintf(num, sizeof num, "?%d", k);
		name = sqlite3_bind_parameter_name(st, k);
		if (name == NULL || strcmp(name, num) != 0) {
			fprintf(stderr, "sql-check: query %s: parameter %d is "
			    "%s, not %s\n", spool__sql_name[i], k,
			    name != NULL ? name : "a bare ?", num);
			bad = 1;
		}
	}
	n = sqlite3_column_count(st);
	for (k = 0, p = want; k < n; k++) {
		name = sqlite3_column_name(st, k);
		len = strcspn(p, ",");
		if (*p == '\0' || strlen(name) != len ||
		    strncmp(name, p, len) != 0) {
			fprintf(stderr, "sql-check: query %s: result column %d "
			    "is \"%s\", declared \"%.*s\"\n", spool__sql_name[i],
			    k + 1, name, (int)len, p);
			bad = 1;
			break;
		}
		p += len + (p[len] == ',');
	}
	if (!bad && *p != '\0') {
		fprintf(stderr, "sql-check: query %s declares result columns "
		    "its SQL does not have: %s\n", spool__sql_name[i], p);
		bad = 1;
	}
	sqlite3_finalize(st);
	return (bad);
}

int
main(int argc, char **argv)
{
	sqlite3	*db;
	FILE	*f;
	char	*err = NULL;
	int	 i, bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: sql-check STAMP\n");
		return (64);
	}
	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		return (70);
	for (i = 0; i < SPOOL_SCHEMA_VERSION; i++)
		if (sqlite3_exec(db, spool__migrations[i], NULL, NULL,
		    &err) != SQLITE_OK) {
			fprintf(stderr, "sql-check: migration %d: %s\n", i + 1,
			    err);
			return (65);
		}
	if (sqlite3_exec(db, spool__sql_views, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "sql-check: views: %s\n", err);
		return (65);
	}
	for (i = 0; i < SPOOL_SQL__COUNT; i++)
		bad |= check_query(db, i);
	sqlite3_close(db);
	if (bad)
		return (65);
	if ((f = fopen(argv[1], "w")) == NULL || fclose(f) != 0) {
		perror(argv[1]);
		return (73);
	}
	return (0);
}
