/*
 * queue.c -- queue rows: create, configure, read.
 *
 * Invariants: every task's queue has a row in queues (a first enqueue
 * creates it with the defaults of sql/schema, through
 * spool__queue_ensure); all input is validated before the transaction
 * starts.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool-int.h"
#include "query-gen.h"

#define QUEUE_ALL_BITS	0x7ff

/* Check the fields of opts that opts->set selects. */
static int
queue_check_opts(spool *q, const spool_queue_opts *o)
{
	int	 rc;

	if (o->version < 1)
		return (spool__error(q, SPOOL_EINVAL,
		    "queue options: version not set (use SPOOL_QUEUE_OPTS_INIT)"));
	if ((rc = spool__check_version(q, "spool_queue_opts", o->version,
	    SPOOL_QUEUE_OPTS_VERSION)) != SPOOL_OK)
		return (rc);
	if (o->set & ~QUEUE_ALL_BITS)
		return (spool__error(q, SPOOL_EINVAL,
		    "queue options: unknown bits in set (0x%x)", o->set));
	if ((o->set & SPOOL_QUEUE_PAUSED) && o->paused != 0 && o->paused != 1)
		return (spool__error(q, SPOOL_EINVAL, "paused must be 0 or 1"));
	if ((o->set & SPOOL_QUEUE_MAX_DEPTH) &&
	    (o->max_depth < 0 || o->max_depth > INT32_MAX))
		return (spool__error(q, SPOOL_EINVAL,
		    "max depth out of range (0 to %d)", INT32_MAX));
	if ((o->set & SPOOL_QUEUE_PRIORITY) && o->priority == INT32_MIN)
		return (spool__error(q, SPOOL_EINVAL, "priority out of range"));
	if ((o->set & SPOOL_QUEUE_MAX_ATTEMPTS) &&
	    (o->max_attempts < 1 || o->max_attempts > SPOOL_ATTEMPTS_MAX))
		return (spool__error(q, SPOOL_EINVAL,
		    "max attempts out of range (1 to %d)", SPOOL_ATTEMPTS_MAX));
	if ((o->set & SPOOL_QUEUE_BACKOFF) &&
	    spool__backoff_name(o->backoff) == NULL)
		return (spool__error(q, SPOOL_EINVAL, "unknown backoff policy %d",
		    o->backoff));
	if ((o->set & SPOOL_QUEUE_BACKOFF_BASE) &&
	    (o->backoff_base_ms < 0 || o->backoff_base_ms > SPOOL_DURATION_MAX_MS))
		return (spool__error(q, SPOOL_EINVAL, "backoff base out of range"));
	if ((o->set & SPOOL_QUEUE_BACKOFF_CAP) &&
	    (o->backoff_cap_ms < 0 || o->backoff_cap_ms > SPOOL_DURATION_MAX_MS))
		return (spool__error(q, SPOOL_EINVAL, "backoff cap out of range"));
	if ((o->set & SPOOL_QUEUE_BACKOFF_JITTER) &&
	    !(o->backoff_jitter >= 0 && o->backoff_jitter <= 1))
		return (spool__error(q, SPOOL_EINVAL,
		    "backoff jitter must be between 0 and 1"));
	if ((o->set & SPOOL_QUEUE_LEASE) &&
	    (o->lease_ms < 1 || o->lease_ms > SPOOL_YEAR_MS))
		return (spool__error(q, SPOOL_EINVAL,
		    "lease out of range (1 ms to 365 days)"));
	if ((o->set & SPOOL_QUEUE_TIMEOUT) &&
	    (o->timeout_ms < 0 || o->timeout_ms > SPOOL_YEAR_MS))
		return (spool__error(q, SPOOL_EINVAL,
		    "timeout out of range (0 to 365 days)"));
	if ((o->set & SPOOL_QUEUE_RETENTION) &&
	    (o->retention_ms < 0 || o->retention_ms > SPOOL_DURATION_MAX_MS))
		return (spool__error(q, SPOOL_EINVAL, "retention out of range"));
	return (SPOOL_OK);
}

/* Copy the fields of src selected by src->set into dst. */
static void
queue_apply(spool_queue_opts *dst, const spool_queue_opts *src)
{
	unsigned	 s = src->set;

	if (s & SPOOL_QUEUE_PAUSED)		dst->paused = src->paused;
	if (s & SPOOL_QUEUE_MAX_DEPTH)		dst->max_depth = src->max_depth;
	if (s & SPOOL_QUEUE_PRIORITY)		dst->priority = src->priority;
	if (s & SPOOL_QUEUE_MAX_ATTEMPTS)	dst->max_attempts = src->max_attempts;
	if (s & SPOOL_QUEUE_BACKOFF)		dst->backoff = src->backoff;
	if (s & SPOOL_QUEUE_BACKOFF_BASE)	dst->backoff_base_ms = src->backoff_base_ms;
	if (s & SPOOL_QUEUE_BACKOFF_CAP)	dst->backoff_cap_ms = src->backoff_cap_ms;
	if (s & SPOOL_QUEUE_BACKOFF_JITTER)	dst->backoff_jitter = src->backoff_jitter;
	if (s & SPOOL_QUEUE_LEASE)		dst->lease_ms = src->lease_ms;
	if (s & SPOOL_QUEUE_TIMEOUT)		dst->timeout_ms = src->timeout_ms;
	if (s & SPOOL_QUEUE_RETENTION)		dst->retention_ms = src->retention_ms;
}

/* Decode a queue_get / queue_list row into conf. */
static void
queue_decode(spool_queue_opts *conf, const struct spool__q_queue_get_row *r)
{
	memset(conf, 0, sizeof *conf);
	conf->version = SPOOL_QUEUE_OPTS_VERSION;
	conf->set = QUEUE_ALL_BITS;
	conf->paused = (int)r->paused;
	conf->max_depth = r->max_depth;
	conf->priority = (int)r->priority;
	conf->max_attempts = (int)r->max_attempts;
	conf->backoff = spool__backoff_parse(r->backoff);
	if (conf->backoff == 0)		/* a hand edit the CHECK let by: be safe */
		conf->backoff = SPOOL_BACKOFF_EXPONENTIAL;
	conf->backoff_base_ms = r->backoff_base_ms;
	conf->backoff_cap_ms = r->backoff_cap_ms;
	conf->backoff_jitter = r->backoff_jitter;
	conf->lease_ms = r->lease_ms;
	conf->timeout_ms = r->timeout_ms;
	conf->retention_ms = r->retention_ms;
}

/* Read queue name's row into *r, valid until c is ended; SPOOL_ENOENT if
 * there is none. */
static int
queue_row(spool *q, struct spool__cur *c, struct spool__q_queue_get_row *r,
    const char *name)
{
	int	 rc;

	if ((rc = spool__q_queue_get(q, c, &(struct spool__q_queue_get_in){
	    .name = name })) != SPOOL_OK ||
	    (rc = spool__q_queue_get_next(c, r)) < 0)
		return (rc);
	if (rc == 0)
		return (spool__error(q, SPOOL_ENOENT, "no such queue: %s",
		    name));
	return (SPOOL_OK);
}

/* Read the configuration of queue name; SPOOL_ENOENT if there is none. */
int
spool__queue_read(spool_queue_opts *conf, spool *q, const char *name)
{
	struct spool__q_queue_get_row	 r;
	struct spool__cur		 c;
	int				 rc;

	if ((rc = queue_row(q, &c, &r, name)) == SPOOL_OK)
		queue_decode(conf, &r);
	spool__cur_end(&c);
	return (rc);
}

/* Write every field of conf to the row of queue name. */
static int
queue_write(spool *q, const char *name, const spool_queue_opts *c)
{
	return (spool__q_queue_update(q, &(struct spool__q_queue_update_in){
	    .name = name, .paused = c->paused, .max_depth = c->max_depth,
	    .priority = c->priority, .max_attempts = c->max_attempts,
	    .backoff = spool__backoff_name(c->backoff),
	    .backoff_base_ms = c->backoff_base_ms,
	    .backoff_cap_ms = c->backoff_cap_ms,
	    .backoff_jitter = c->backoff_jitter, .lease_ms = c->lease_ms,
	    .timeout_ms = c->timeout_ms, .retention_ms = c->retention_ms }));
}

/* Create the queue row with the schema's defaults if it is missing. */
int
spool__queue_ensure(spool *q, const char *name, int64_t now_ms)
{
	return (spool__q_queue_ensure(q, &(struct spool__q_queue_ensure_in){
	    .name = name, .now_ms = now_ms }));
}

/* Create or change a queue, in one transaction. */
static int
queue_change(spool *q, const char *name, const spool_queue_opts *opts,
    int create)
{
	spool_queue_opts	 conf, none = SPOOL_QUEUE_OPTS_INIT;
	int			 rc;

	if (q == NULL || q->db == NULL)
		return (spool__unusable(q));
	spool__clear_error(q);
	if (opts == NULL)
		opts = &none;
	if ((rc = spool__check_name(q, "queue name", name,
	    SPOOL_NAME_MAX)) != SPOOL_OK ||
	    (rc = queue_check_opts(q, opts)) != SPOOL_OK)
		return (rc);
	if ((rc = spool__begin(q)) != SPOOL_OK)
		return (rc);
	rc = spool__queue_read(&conf, q, name);
	if (create) {
		if (rc == SPOOL_OK) {
			rc = spool__error(q, SPOOL_EEXISTS,
			    "queue already exists: %s", name);
			goto out;
		}
		if (rc != SPOOL_ENOENT)
			goto out;
		/* The schema holds the defaults: insert them, then change. */
		if ((rc = spool__queue_ensure(q, name, spool__now_ms(q))) != 0 ||
		    (rc = spool__queue_read(&conf, q, name)) != 0)
			goto out;
	} else if (rc != SPOOL_OK)
		goto out;
	queue_apply(&conf, opts);
	if (conf.backoff_cap_ms < conf.backoff_base_ms &&
	    (opts->set & (SPOOL_QUEUE_BACKOFF_BASE | SPOOL_QUEUE_BACKOFF_CAP))) {
		rc = spool__error(q, SPOOL_EINVAL,
		    "backoff cap (%lld ms) is below its base (%lld ms)",
		    (long long)conf.backoff_cap_ms,
		    (long long)conf.backoff_base_ms);
		goto out;
	}
	if ((rc = queue_write(q, name, &conf)) != 0)
		goto out;
	return (spool__commit(q));
out:
	spool__rollback(q);
	return (rc);
}

/* Create queue name; SPOOL_EEXISTS if it exists. */
int
spool_queue_create(spool *q, const char *name, const spool_queue_opts *opts)
{
	return (queue_change(q, name, opts, 1));
}

/* Change the selected fields of an existing queue. */
int
spool_queue_set(spool *q, const char *name, const spool_queue_opts *opts)
{
	if (opts == NULL) {
		if (q != NULL)
			spool__clear_error(q);
		return (spool__error(q, SPOOL_EINVAL, "queue options missing"));
	}
	return (queue_change(q, name, opts, 0));
}

/* Fill one info element from a queue_get / queue_list row. */
static int
queue_info_from_row(spool *q, spool_queue_info *info,
    const struct spool__q_queue_get_row *r)
{
	queue_decode(&info->conf, r);
	info->created_ms = r->created_ms;
	if ((info->name = spool__strdup(r->name)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	return (SPOOL_OK);
}

/* Read one queue. */
int
spool_queue_get(spool_queue_info **out, spool *q, const char *name)
{
	struct spool__q_queue_get_row	 r;
	struct spool__cur		 c;
	int				 rc;

	if (out == NULL || q == NULL || q->db == NULL)
		return (spool__unusable(q));
	*out = NULL;
	spool__clear_error(q);
	if ((rc = spool__check_name(q, "queue name", name, SPOOL_NAME_MAX)) != 0)
		return (rc);
	if ((*out = calloc(1, sizeof **out)) == NULL)
		return (spool__error(q, SPOOL_ENOMEM, "out of memory"));
	if ((rc = queue_row(q, &c, &r, name)) == SPOOL_OK)
		rc = queue_info_from_row(q, *out, &r);
	spool__cur_end(&c);
	if (rc != SPOOL_OK) {
		spool_queue_info_free(*out, 1);
		*out = NULL;
	}
	return (rc);
}

/* Read queues into *out: every one (opts NULL: the library's own reads,
 * stats and prune, which need them all) or one page of them. */
static int
queue_list(spool_queue_info **out, size_t *n, spool *q,
    const spool_queue_list_opts *opts, size_t limit)
{
	struct spool__q_queue_get_row	 r;
	struct spool__cur		 c;
	spool_queue_info		*v = NULL, *nv;
	size_t				 len = 0, cap = 0;
	int				 rc;

	if (opts == NULL)
		rc = spool__q_queue_list(q, &c);
	else if (opts->descending)
		rc = spool__q_queue_list_page_desc(q, &c,
		    &(struct spool__q_queue_list_page_desc_in){
		    .before = opts->after, .max = (int64_t)limit });
	else
		rc = spool__q_queue_list_page(q, &c,
		    &(struct spool__q_queue_list_page_in){
		    .after = opts->after, .max = (int64_t)limit });
	if (rc != SPOOL_OK)
		return (rc);
	/* The three read queue_get's columns (-- out: like queue_get). */
	while ((rc = opts == NULL ? spool__q_queue_list_next(&c, &r) :
	    opts->descending ? spool__q_queue_list_page_desc_next(&c, &r) :
	    spool__q_queue_list_page_next(&c, &r)) == 1) {
		if ((nv = spool__push(v, &len, &cap, sizeof *v)) == NULL) {
			rc = spool__error(q, SPOOL_ENOMEM, "out of memory");
			goto fail;
		}
		v = nv;
		if ((rc = queue_info_from_row(q, &v[len - 1], &r)) != SPOOL_OK)
			goto fail;
	}
	if (rc < 0)
		goto fail;
	*out = v;
	*n = len;
	return (SPOOL_OK);
fail:
	spool__cur_end(&c);
	spool_queue_info_free(v, len);
	return (rc);
}

/* Every queue, by name, for the library's reads over all of them. */
int
spool__queue_list_all(spool_queue_info **out, size_t *n, spool *q)
{
	*out = NULL;
	*n = 0;
	return (queue_list(out, n, q, NULL, 0));
}

/* One keyset page of queues by name. */
int
spool_queue_list(spool_queue_info **out, size_t *n, spool *q,
    const spool_queue_list_opts *opts)
{
	spool_queue_list_opts	 none = SPOOL_QUEUE_LIST_OPTS_INIT;
	size_t			 limit;
	int			 rc;

	if (out != NULL)
		*out = NULL;
	if (opts == NULL)
		opts = &none;
	if ((rc = spool__list_begin(q, out == NULL, n, "spool_queue_list_opts",
	    opts->version, SPOOL_QUEUE_LIST_OPTS_VERSION, opts->limit, &limit)) != SPOOL_OK)
		return (rc);
	return (queue_list(out, n, q, opts, limit));
}

/* Free queue infos. */
void
spool_queue_info_free(spool_queue_info *info, size_t n)
{
	size_t	 i;

	if (info == NULL)
		return;
	for (i = 0; i < n; i++)
		free(info[i].name);
	free(info);
}
