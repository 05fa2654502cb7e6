/*
 * store-rows.c -- the multi-row task inserts, task_insert_rows and
 * task_insert_same (sql/queries/enqueue.sql).  Their number of parameters
 * is the number of rows the statement was written with, so they cannot
 * declare a fixed shape for the typed face (query-gen.c): they are bound
 * by position here, the one place outside the generated code that does,
 * and enqueue.c hands them rows by name.
 */
#include "config.h"

#include "store-int.h"

/* Parameters shared by every row, then those of each row. */
static const struct {
	enum spool_sql	 sql;
	int		 shared;
	int		 per_row;
} kinds[2] = {
	{ SPOOL_SQL_TASK_INSERT_ROWS, 3, 5 },	/* each row its options */
	{ SPOOL_SQL_TASK_INSERT_SAME, 7, 1 },	/* shared, but the payload */
};

/* How many rows one statement inserts (same: task_insert_same), from its
 * parameters; 0 if it is not so made or cannot be prepared (then the
 * caller inserts tasks one by one). */
size_t
spool__rows_max(spool *q, int same)
{
	enum spool_sql	 which = kinds[same != 0].sql;
	sqlite3_stmt	*st = q->stmt[which];
	int		 n, shared = kinds[same != 0].shared;
	int		 per_row = kinds[same != 0].per_row;
	size_t		 rows;

	if (st == NULL && (st = spool__stmt_lazy(q, which)) == NULL) {
		spool__clear_error(q);
		return (0);
	}
	n = sqlite3_bind_parameter_count(st);
	if (n <= shared || (n - shared) % per_row != 0)
		return (0);
	rows = (size_t)(n - shared) / (size_t)per_row;
	return (rows >= 2 && rows <= SPOOL__ROWS_MAX ? rows : 0);
}

/* Bind an int64, or NULL for 0. */
static int
bind_int0(sqlite3_stmt *st, int i, int64_t v)
{
	return (v != 0 ? sqlite3_bind_int64(st, i, v) : SQLITE_OK);
}

/*
 * Insert the n = spool__rows_max(q, same) rows r[0..n) with one
 * statement.  With same, every row takes the options of s (priority,
 * run_at_ms, deadline_ms, max_attempts) and only its payload from r[j].
 * The payloads are bound without a copy and let go of before returning.
 */
int
spool__rows_insert(spool *q, int same, const struct spool__rows_shared *s,
    const struct spool__rows_row *r, size_t n)
{
	sqlite3_stmt	*st = spool__stmt(q, kinds[same != 0].sql);
	size_t		 j;
	int		 rc, p;

	rc = sqlite3_bind_text(st, 1, s->queue, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, s->created_ms);
	if (rc == SQLITE_OK)
		rc = bind_int0(st, 3, s->batch_id);
	if (rc == SQLITE_OK && same) {
		rc = sqlite3_bind_int64(st, 4, s->priority);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(st, 5, s->run_at_ms);
		if (rc == SQLITE_OK)
			rc = bind_int0(st, 6, s->deadline_ms);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(st, 7, s->max_attempts);
	}
	for (j = 0; j < n && rc == SQLITE_OK; j++) {
		p = kinds[same != 0].shared + 1 +
		    kinds[same != 0].per_row * (int)j;
		if (!same) {	/* priority, payload, run_at, deadline, max */
			rc = sqlite3_bind_int64(st, p, r[j].priority);
			if (rc == SQLITE_OK)
				rc = sqlite3_bind_int64(st, p + 2, r[j].run_at_ms);
			if (rc == SQLITE_OK)
				rc = bind_int0(st, p + 3, r[j].deadline_ms);
			if (rc == SQLITE_OK)
				rc = sqlite3_bind_int64(st, p + 4,
				    r[j].max_attempts);
			p++;
		}
		if (rc == SQLITE_OK)
			rc = spool__bind_payload_ref(st, p, r[j].payload,
			    r[j].len);
	}
	if (rc != SQLITE_OK)
		rc = spool__store_error(q, rc, "enqueue");
	else
		rc = spool__step_done(q, st, "enqueue");
	sqlite3_clear_bindings(st);	/* the payloads were not copied */
	return (rc);
}
