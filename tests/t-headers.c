/*
 * t-headers.c -- the public header stands alone: this file includes only
 * spool.h, is compiled as strict C99 with -pedantic -Werror, and links
 * the installed (shared) library, so every call used here must be an
 * exported symbol.  It returns 0 when the library answers as documented.
 */
#include "spool.h"

#include <string.h>

int
main(void)
{
	spool_enqueue_opts	 eo = SPOOL_ENQUEUE_OPTS_INIT;
	spool_queue_opts	 qo = SPOOL_QUEUE_OPTS_INIT;
	spool_claim_opts	 co = SPOOL_CLAIM_OPTS_INIT;
	spool_list_opts		 lo = SPOOL_LIST_OPTS_INIT;
	spool			*q = NULL;

	if (strcmp(spool_version(), SPOOL_VERSION) != 0)
		return (1);
	if (eo.version != SPOOL_ENQUEUE_OPTS_VERSION ||
	    eo.priority != SPOOL_PRIORITY_DEFAULT ||
	    qo.version != SPOOL_QUEUE_OPTS_VERSION ||
	    co.version != SPOOL_CLAIM_OPTS_VERSION ||
	    lo.version != SPOOL_LIST_OPTS_VERSION)
		return (2);
	/* A NULL path is misuse, answered with SPOOL_EINVAL, never a crash. */
	if (spool_open(&q, NULL, 0) != SPOOL_EINVAL || q == NULL ||
	    spool_errcode(q) != SPOOL_EINVAL)
		return (3);
	spool_close(q);
	spool_close(NULL);
	spool_job_free(NULL);
	if (strcmp(spool_state_name(SPOOL_READY), "ready") != 0)
		return (4);
	return (0);
}
