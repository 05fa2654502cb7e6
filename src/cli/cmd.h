/*
 * cmd.h -- the spool CLI's private map: the command table, option parsing,
 * exit codes, output helpers, the parsers and the JSON writer.
 *
 * A command is a "const struct spool_cmd" in its own cmd-*.c file.  The
 * framework (cmd.c) parses the options of the command's table (plus the
 * common --db, --json, --help) anywhere on the line, rejects unknown,
 * duplicate or malformed ones, checks the operand count, and then calls
 * the command, which checks its operands and opens the database
 * (cmd_open, which creates it for a CMD_CREATE command).  A command
 * writes to stdout only once it has succeeded; every failure is one line
 * on stderr and an exit code from the table below.
 *
 * A command named with two words ("batch add") is a subcommand: the first
 * word names a group of commands, and "spool batch --help" lists them.
 */
#ifndef SPOOL_CMD_H
#define SPOOL_CMD_H

#include <stdint.h>
#include <stdio.h>

#include "spool.h"

/* Exit codes: sysexits(3) values, documented in README and --help. */
#define EXIT_OK		 0	/* success */
#define EXIT_NO		 1	/* a negative answer: not found, failed, wrong state */
#define EXIT_USAGE	64	/* bad command line */
#define EXIT_DATA	65	/* bad input data, or not a spool database */
#define EXIT_NOINPUT	66	/* no database at that path */
#define EXIT_SOFTWARE	70	/* internal error */
#define EXIT_IO		74	/* I/O error, disk full */
#define EXIT_TEMPFAIL	75	/* busy or temporary: try again later */
#define EXIT_NOPERM	77	/* permission denied */

#define CMD_OPTS_MAX	24

/* One option of a command: --name, or --name VALUE when arg is set. */
struct cmd_opt {
	const char	*name;
	const char	*arg;		/* the value's name in help, NULL for flags */
	const char	*help;
};

/* spool_cmd.flags */
#define CMD_CREATE	0x01	/* cmd_open creates the database if missing */
#define CMD_EXEC_TAIL	0x02	/* "--exec" takes the rest of the line */

struct cmd_ctx;
struct json;			/* json.c, below */

struct spool_cmd {
	const char		*name;
	const char		*usage;		/* operands, e.g. "QUEUE [PAYLOAD|-]" */
	const char		*summary;	/* one line */
	const char		*help;		/* more text for --help, or NULL */
	const struct cmd_opt	*opts;		/* NULL-terminated, or NULL */
	int			 min_args;
	int			 max_args;	/* -1: any number */
	int			 flags;
	int			(*exec)(struct cmd_ctx *, int, char **);
};

/* What a command runs with. */
struct cmd_ctx {
	const struct spool_cmd	*cmd;
	const char		*db_path;
	int			 db_given;	/* --db was on the command line */
	int			 json;
	int			 strict;	/* --strict */
	spool			*q;
	const char		*val[CMD_OPTS_MAX];	/* by index in cmd->opts */
	char			**tail;		/* after --exec (CMD_EXEC_TAIL) */
	int			 ntail;
	const char		*many[64];	/* every value of the repeatable
						 * option: the one whose value name
						 * ends in "..." ("SPEC...", not a
						 * list such as "NAME,...") */
	int			 nmany;
};

/* The command table (main.c). */
extern const struct spool_cmd *const spool_cmds[];

/* cmd.c */
int		 cmd_main(int argc, char **argv);
int		 cmd_error(struct cmd_ctx *, int, const char *, ...)
		     __attribute__((format(printf, 3, 4)));
int		 cmd_usage_error(struct cmd_ctx *, const char *, ...)
		     __attribute__((format(printf, 2, 3)));
int		 cmd_fail(struct cmd_ctx *, int);
int		 cmd_exit_code(int);
int		 cmd_open(struct cmd_ctx *);
const char	*cmd_opt(struct cmd_ctx *, const char *);
int		 cmd_opt_int(struct cmd_ctx *, const char *, int64_t, int64_t,
		     int64_t *);
int		 cmd_opt_duration(struct cmd_ctx *, const char *, int64_t *);
int		 cmd_arg_id(struct cmd_ctx *, const char *, const char *,
		     const char *, int64_t *);
int		 cmd_state(struct cmd_ctx *, const char *, int *);
void		 cmd_print_help(const struct spool_cmd *, FILE *);
void		 cmd_fmt_time(char *, size_t, int64_t);
void		 cmd_fmt_age(char *, size_t, int64_t);
const char	*cmd_attempt_outcome(int);
void		 cmd_print_text(FILE *, const void *, size_t, size_t);
void		 cmd_json_page(struct json *, int64_t);
int		 cmd_attempts_all(spool *, int64_t, spool_attempt_info **,
		     size_t *);
int		 cmd_queues_all(spool *, spool_queue_info **, size_t *);
int		 cmd_pipelines_all(spool *, spool_pipeline_info **, size_t *);
int		 cmd_workers_all(spool *, spool_worker_info **, size_t *);
int		 cmd_item_history_all(spool *, int64_t, spool_stage_attempt_info **,
		     size_t *);
int64_t		 cmd_now_ms(void);
void		 cmd_sleep_ms(int64_t);

/* log.c: the event log of spool work (levels as syslog's) */
#define LOG_ERROR	3
#define LOG_WARNING	4
#define LOG_NOTICE	5
#define LOG_INFO	6
#define LOG_DEBUG	7
int		 cmd_log_parse(const char *);
void		 cmd_log_init(int);
int		 cmd_log_enabled(int);
void		 cmd_log(const char *, int, const char *, ...)
		     __attribute__((format(printf, 3, 4)));

/* parse.c: pure parsers, 0 on success, -1 on bad syntax, -2 out of range */
int		 parse_int64(const char *, int64_t, int64_t, int64_t *);
int		 parse_duration_ms(const char *, int64_t *);
int		 parse_time_ms(const char *, int64_t *);
int		 parse_fraction(const char *, double *);
int		 parse_stage(char *, spool_stage *, char *, size_t);

/* json.c: a streaming writer that always emits valid JSON */
struct json {
	FILE		*f;
	int		 depth;
	int		 count[32];	/* items written at each depth */
	int		 after_key;
};
void		 json_init(struct json *, FILE *);
void		 json_open(struct json *, int);	/* '{' or '[' */
void		 json_close(struct json *, int);	/* '}' or ']' */
void		 json_key(struct json *, const char *);
void		 json_str(struct json *, const char *);
void		 json_bytes(struct json *, const void *, size_t);
void		 json_int(struct json *, int64_t);
void		 json_raw(struct json *, const char *);
void		 json_double(struct json *, double);
void		 json_bool(struct json *, int);
void		 json_null(struct json *);
void		 json_kv_str(struct json *, const char *, const char *);
void		 json_kv_int(struct json *, const char *, int64_t);
void		 json_kv_time(struct json *, const char *, int64_t);
void		 json_kv_payload(struct json *, const char *, const void *, size_t);
void		 json_end(struct json *);

/* cmd-stats.c: Prometheus's text format, for stats and the HTTP server */

/* Shared renderings of the library's records, for the commands and the
 * HTTP server. */
void		 cmd_json_task(struct json *, const spool_task_info *);
void		 cmd_json_queue_metrics(struct json *, const spool_queue_metrics *);
void		 cmd_json_worker(struct json *, const spool_worker_info *);
void		 cmd_worker_queues(char *, size_t, const spool_worker_info *);
void		 cmd_json_batch(struct json *, const spool_batch_info *);
void		 cmd_json_run_fields(struct json *, const spool_run_info *,
		     int64_t);

/* cmd-enqueue.c: reading tasks, shared with "spool batch add" */
struct cmd_tasks {
	spool_task	*v;
	char		**bufs;		/* payload copies (or NULL), one per task */
	size_t		 n;
	size_t		 cap;
};
int		 cmd_read_stdin(struct cmd_ctx *, char **, size_t *);
int		 cmd_enqueue_opts(struct cmd_ctx *, spool_enqueue_opts *);
int		 cmd_tasks_add(struct cmd_ctx *, struct cmd_tasks *,
		     const char *, const void *, size_t, char *,
		     const spool_enqueue_opts *);
int		 cmd_tasks_lines(struct cmd_ctx *, const char *,
		     const spool_enqueue_opts *, int64_t);
int		 cmd_tasks_commit(struct cmd_ctx *, struct cmd_tasks *, int64_t);
void		 cmd_tasks_free(struct cmd_tasks *);

/* cmd-batch.c: shared with "spool enqueue --batch" */
int		 cmd_batch_check_open(struct cmd_ctx *, int64_t);

#endif /* SPOOL_CMD_H */
