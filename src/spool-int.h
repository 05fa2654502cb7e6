/*
 * spool-int.h -- the private map of libspool, one section per file.
 *
 * Names: spool_mod_verb is public (spool.h), spool__mod_verb is internal
 * (shared between files, never exported), and "static mod_verb" is local
 * to a file.  Only store.c and the generated sql-gen.c hold SQL; only the
 * files listed under "CLI" print.
 */
#ifndef SPOOL_INT_H
#define SPOOL_INT_H

#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>

#include "spool.h"
#include "sql-gen.h"

/* PRAGMA application_id of every spool database: "SPOL". */
#define SPOOL_APPLICATION_ID	0x53504f4c

#define SPOOL_BUSY_TIMEOUT_MS	10000	/* default busy timeout */
#define SPOOL_REAP_INTERVAL_MS	1000	/* claims reap at most this often */
#define SPOOL_BATCH_ROWS	500	/* rows per transaction in bulk deletes */

#ifdef __GNUC__
#define SPOOL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SPOOL_PRINTF(f, a)
#endif

typedef int64_t (*spool__clock_fn)(void *arg);

/* An open database.  One thread at a time (see spool.h). */
struct spool {
	sqlite3		*db;
	char		*path;
	int		 flags;		/* SPOOL_OPEN_* */
	int		 errcode;	/* last failure, SPOOL_OK if none */
	char		 errmsg[512];
	sqlite3_stmt	*stmt[SPOOL_SQL__COUNT];	/* prepared at open */
	int64_t		 busy_timeout_ms;
	int64_t		 busy_start_us;	/* monotonic start of the current wait */
	int		 in_txn;	/* inside spool__begin .. commit/rollback */
	int64_t		 next_reap_ms;	/* claims reap when now passes this */
	spool__clock_fn	 clock;		/* test seam: NULL = the wall clock */
	void		*clock_arg;
	char		 owner[256];	/* default lease owner: "host:pid" */
};

/* A task held under a lease.  Valid while the token matches the row's. */
struct spool_job {
	spool		*q;
	int64_t		 id;
	int64_t		 token;		/* fencing token of this attempt */
	char		*queue;
	char		*owner;
	void		*payload;
	size_t		 len;
	int		 attempt;
	int		 max_attempts;
	int64_t		 started_ms;
	int64_t		 lease_ms;	/* length of the lease, for heartbeats */
	int64_t		 lease_until_ms;
	int		 cancel_requested;
	int		 done;		/* finished by a call: only free applies */
};

/* error.c */
int		 spool__error(spool *q, int code, const char *fmt, ...)
		     SPOOL_PRINTF(3, 4);
int		 spool__error_prefix(spool *q, int code, const char *prefix);
int		 spool__state_parse(const char *name);
void		 spool__clear_error(spool *q);

/* util.c */
void		*spool__memdup(const void *p, size_t len);
char		*spool__strdup(const char *s);
void		*spool__grow(void *v, size_t *cap, size_t len, size_t size);
int		 spool__utf8_valid(const void *p, size_t len);
int		 spool__check_name(spool *q, const char *what, const char *name,
		     size_t max);

/* store.c */
int64_t		 spool__now_ms(spool *q);
void		 spool__set_clock(spool *q, spool__clock_fn fn, void *arg);
sqlite3_stmt	*spool__stmt(spool *q, enum spool_sql which);
int		 spool__store_error(spool *q, int rc, const char *what);
int		 spool__step_done(spool *q, sqlite3_stmt *st, const char *what);
int		 spool__bind_payload(sqlite3_stmt *st, int idx, const void *p,
		     size_t len);
int		 spool__bind_text_or_null(sqlite3_stmt *st, int idx, const char *s);
int		 spool__begin(spool *q);
int		 spool__commit(spool *q);
int		 spool__begin_read(spool *q);
int		 spool__set_sync(spool *q, int full);
void		 spool__end_read(spool *q);
void		 spool__rollback(spool *q);
int64_t		 spool__col_int64_or0(sqlite3_stmt *st, int col);
char		*spool__col_strdup(sqlite3_stmt *st, int col);
void		*spool__col_blobdup(sqlite3_stmt *st, int col, size_t *len);

/* retry.c: pure functions, no I/O */
int64_t		 spool__backoff_ms(int policy, int64_t base_ms, int64_t cap_ms,
		     double jitter, int attempt, double u);
int		 spool__backoff_parse(const char *name);
const char	*spool__backoff_name(int policy);
double		 spool__random_unit(void);

/* queue.c */
int		 spool__queue_read(spool_queue_opts *conf, spool *q,
		     const char *name);

/* claim.c */
int		 spool__reap_locked(int64_t *n_out, spool *q, int64_t now_ms,
		     int *more);
int		 spool__complete_locked(spool_job *job, const void *result,
		     size_t len, int truncated, int64_t now_ms);
int		 spool__fail_locked(spool_job *job, const char *error, int flags,
		     const char *outcome, int64_t now_ms, int *state_out);
int		 spool__release_locked(spool_job *job, int64_t now_ms);

#endif /* SPOOL_INT_H */
