/*
 * example.c -- the README's "C API in ten lines", as a program built
 * against an installed libspool with pkg-config (see .ci/run):
 *   cc example.c $(pkg-config --cflags --libs spool)
 * It exits 0 when the task went through enqueue, claim and complete.
 */
#include <spool.h>

#include <stdio.h>
#include <string.h>

/* The "work": pretend to send the mail the payload describes. */
static int
send_mail(const void *body, size_t len)
{
	return (len > 0 && memchr(body, '@', len) != NULL);
}

int
main(int argc, char **argv)
{
	spool		*q;
	spool_job	*job;
	spool_task_info	*t;
	int64_t		 id;
	size_t		 len;
	const void	*body;
	int		 ok, rc;

	if (argc != 2) {
		fprintf(stderr, "usage: example DB\n");
		return (64);
	}
	if (spool_open(&q, argv[1], SPOOL_OPEN_CREATE) != SPOOL_OK) {
		fprintf(stderr, "example: %s\n", spool_errmsg(q));
		spool_close(q);
		return (1);
	}
	spool_enqueue(&id, q, "email", "{\"to\":\"a@b\"}", 12, NULL);
	if (spool_claim(&job, q, "email", NULL) == SPOOL_OK) {
		body = spool_job_payload(job, &len);
		ok = send_mail(body, len);
		rc = ok ? spool_job_complete(job, "sent", 4) :
		    spool_job_fail(job, "smtp down", 0);
		spool_job_free(job);
		if (rc != SPOOL_OK)
			fprintf(stderr, "example: %s\n", spool_errmsg(q));
	}
	rc = spool_task_get(&t, q, id);
	ok = rc == SPOOL_OK && t->state == SPOOL_SUCCEEDED &&
	    t->result_len == 4 && memcmp(t->result, "sent", 4) == 0;
	printf("task %lld: %s\n", (long long)id, rc == SPOOL_OK ?
	    spool_state_name(t->state) : spool_errmsg(q));
	spool_task_info_free(t, rc == SPOOL_OK ? 1 : 0);
	spool_close(q);
	return (ok ? 0 : 1);
}
