/*
 * main.c -- the spool CLI's main and its command table.  Each command
 * lives in its own cmd-*.c file (the "batch" subcommands share
 * cmd-batch.c); cmd.c does the shared work.
 */
#include "config.h"

#include <locale.h>
#include <signal.h>
#include <stddef.h>

#include "cmd.h"

extern const struct spool_cmd cmd_batch_add, cmd_batch_close,
    cmd_batch_create, cmd_batch_list, cmd_batch_status, cmd_batch_wait,
    cmd_cancel, cmd_demo, cmd_enqueue, cmd_init,
    cmd_list, cmd_pause, cmd_prune, cmd_purge, cmd_queue, cmd_resume,
    cmd_retry, cmd_serve, cmd_show, cmd_stats, cmd_wait, cmd_work, cmd_workers,
    cmd_top,
    cmd_pipeline_cancel, cmd_pipeline_create, cmd_pipeline_delete,
    cmd_pipeline_history, cmd_pipeline_items, cmd_pipeline_list,
    cmd_pipeline_run, cmd_pipeline_runs, cmd_pipeline_show,
    cmd_pipeline_status, cmd_pipeline_wait;

/* In the order "spool --help" lists them. */
const struct spool_cmd *const spool_cmds[] = {
	&cmd_init,
	&cmd_enqueue,
	&cmd_list,
	&cmd_show,
	&cmd_stats,
	&cmd_workers,
	&cmd_serve,
	&cmd_top,
	&cmd_wait,
	&cmd_work,
	&cmd_cancel,
	&cmd_retry,
	&cmd_pause,
	&cmd_resume,
	&cmd_purge,
	&cmd_prune,
	&cmd_queue,
	&cmd_batch_create,
	&cmd_batch_add,
	&cmd_batch_close,
	&cmd_batch_status,
	&cmd_batch_list,
	&cmd_batch_wait,
	&cmd_pipeline_create,
	&cmd_pipeline_list,
	&cmd_pipeline_show,
	&cmd_pipeline_delete,
	&cmd_pipeline_run,
	&cmd_pipeline_runs,
	&cmd_pipeline_status,
	&cmd_pipeline_items,
	&cmd_pipeline_history,
	&cmd_pipeline_wait,
	&cmd_pipeline_cancel,
	&cmd_demo,
	NULL
};

int
main(int argc, char **argv)
{
	/* A closed pipe (spool list | head) is an I/O error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	/* A write past the file-size limit (ulimit -f) then fails with EFBIG,
	 * which SQLite reports as an I/O error (exit 74), instead of killing
	 * the process between a commit and its report. */
	signal(SIGXFSZ, SIG_IGN);
	(void)setlocale(LC_CTYPE, "C");
	return (cmd_main(argc, argv));
}
