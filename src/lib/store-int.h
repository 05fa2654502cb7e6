/*
 * store-int.h -- the store layer's own declarations, the ones that speak
 * SQLite: included by store.c, store-rows.c and the generated
 * query-gen.c only.  Every other file reaches the database through the
 * typed query face (query-gen.h) and the transaction calls in
 * spool-int.h, and includes no SQLite header (tools/layers.sh checks).
 */
#ifndef SPOOL_STORE_INT_H
#define SPOOL_STORE_INT_H

#include <sqlite3.h>

#include "spool-int.h"

sqlite3_stmt	*spool__stmt(spool *q, enum spool_sql which);
sqlite3_stmt	*spool__stmt_lazy(spool *q, enum spool_sql which);
int		 spool__step_done(spool *q, sqlite3_stmt *st, const char *what);
int		 spool__bind_payload_ref(sqlite3_stmt *st, int idx,
		    const void *p, size_t len);

#endif
