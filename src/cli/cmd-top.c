/*
 * cmd-top.c -- "spool top [QUEUE...]": a live view of the queues, the
 * running tasks, the recent failures and the workers, refreshed every
 * --interval.  It reads only through the library: spool_metrics,
 * spool_list, spool_attempts and spool_workers.
 *
 * On a terminal it takes the alternate screen, hides the cursor and turns
 * off echo and canonical input, so 'q' quits at once (poll(2) on stdin,
 * the time left to the next frame as its timeout).  Whatever ends it (q,
 * SIGINT, SIGTERM, SIGHUP, an error) gives the terminal back as it found
 * it before the process exits; signals reach the loop through a pipe, so
 * the handlers do nothing but write one byte.  When stdout is not a
 * terminal, or with --once, frames are plain text without escapes.
 *
 * Invariants: every line fits the width and a frame fits the height: the
 * terminal's (TIOCGWINSZ, again on SIGWINCH), else $COLUMNS and $LINES,
 * else 80x24.  Text from the database is shown as ASCII, control and
 * other bytes as '?', so one byte is one column.
 */
#include "config.h"

#include <sys/ioctl.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

#define TOP_WIDTH_MAX	1024	/* columns drawn at most */
#define TOP_ROWS_MAX	500	/* rows drawn at most */
#define TOP_FAILURES	10	/* recent failures kept */
#define TOP_RETRY_SCAN	200	/* ready tasks looked at for a retry's error */
#define TOP_FAIL_MS	5000	/* failures read again at least this often */
#define TOP_QUEUE_W	15	/* the queue name's column */

/* One page of tasks from spool_list. */
struct top_list {
	spool_task_info	*v;
	size_t		 n;
};

/* A recent failure: a dead task, or a ready one waiting for its retry. */
struct top_fail {
	const spool_task_info	*t;
	int64_t			 when_ms;	/* when its last attempt ended */
};

/* The frame being drawn: rows lines of at most width bytes. */
struct top_frame {
	char		*buf;		/* rows * (width + 1) */
	char		*head;		/* rows flags: a section heading */
	int		 width;
	int		 rows;
	int		 n;
};

struct top {
	struct cmd_ctx		*c;
	char			**queues;	/* the operands, or none */
	int			 nqueues;
	int			 nlists;	/* max(nqueues, 1) */
	int64_t			 interval_ms;
	int			 tty;		/* drawing on a terminal */
	int			 width;
	int			 rows;

	/* The snapshot of one frame. */
	int64_t			 now_ms;
	spool_queue_metrics	*m;
	size_t			 nm;
	size_t			*shown;		/* indexes into m */
	size_t			 nshown;
	struct top_list		*run;		/* running tasks, per list */
	spool_worker_info	*w;
	size_t			 nw;

	/* The failures, read again when the failure counters or the dead
	 * count move, else every TOP_FAIL_MS: finding dead tasks among many
	 * finished ones is a scan. */
	struct top_list		*dead;
	struct top_list		*retry;
	struct top_fail		*fail;
	size_t			 nfail;
	int64_t			 fail_key;
	int64_t			 fail_ms;
	int			 fresh;		/* read, not drawn yet */
};

/* The write end of the signal pipe, for the handlers. */
static volatile sig_atomic_t	 top_sigfd = -1;

/* A signal: its number down the pipe, for the loop to act on. */
static void
top_onsignal(int sig)
{
	unsigned char	 b = (unsigned char)sig;
	int		 saved = errno;

	if (top_sigfd != -1)
		(void)write(top_sigfd, &b, 1);
	errno = saved;
}

/* The terminal's settings before spool top changed them. */
static struct termios	 top_saved;
static int		 top_saved_ok;
static int		 top_entered;

/* Take the terminal: no echo, no line editing, the alternate screen. */
static void
term_enter(void)
{
	struct termios	 raw;

	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &top_saved) == 0) {
		top_saved_ok = 1;
		raw = top_saved;
		raw.c_lflag &= ~(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	fputs("\033[?1049h\033[?25l", stdout);	/* the frame clears */
	fflush(stdout);
	top_entered = 1;
}

/* Give the terminal back as it was; harmless when not taken. */
static void
term_leave(void)
{
	if (!top_entered)
		return;
	top_entered = 0;
	fputs("\033[m\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	if (top_saved_ok)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &top_saved);
	top_saved_ok = 0;
}

/* A positive integer from the environment, or def. */
static int
env_int(const char *name, int def)
{
	const char	*v = getenv(name);
	int64_t		 n;

	if (v == NULL || parse_int64(v, 1, TOP_ROWS_MAX * 100, &n) != 0)
		return (def);
	return ((int)n);
}

/* The size to draw: the terminal's, else $COLUMNS x $LINES, else 80x24. */
static void
top_size(struct top *t)
{
	struct winsize	 ws;

	t->width = 0;
	t->rows = 0;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
	    ws.ws_col > 0 && ws.ws_row > 0) {
		t->width = ws.ws_col;
		t->rows = ws.ws_row;
	}
	if (t->width == 0)
		t->width = env_int("COLUMNS", 80);
	if (t->rows == 0)
		t->rows = env_int("LINES", 24);
	if (t->width > TOP_WIDTH_MAX)
		t->width = TOP_WIDTH_MAX;
	if (t->rows > TOP_ROWS_MAX)
		t->rows = TOP_ROWS_MAX;
}

/* Copy s into buf (size len) as printable ASCII, cut to max bytes with a
 * '~' at the end when longer; control and non-ASCII bytes become '?'. */
static const char *
clean(char *buf, size_t len, const char *s, size_t max)
{
	size_t	 i, n = s == NULL ? 0 : strlen(s);

	if (max > len - 1)
		max = len - 1;
	for (i = 0; i < n && i < max; i++) {
		unsigned char	 ch = (unsigned char)s[i];

		if (ch == '\n' || ch == '\t' || ch == '\r')
			buf[i] = ' ';
		else
			buf[i] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
	}
	if (n > max && max > 0)
		buf[max - 1] = '~';
	buf[i] = '\0';
	return (buf);
}

/* Add one line, cut to the width, its trailing blanks dropped; nothing
 * once the frame is full. */
static void
frame_add(struct top_frame *f, int head, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void
frame_add(struct top_frame *f, int head, const char *fmt, ...)
{
	char	*line;
	size_t	 len;
	va_list	 ap;

	if (f->n >= f->rows)
		return;
	line = f->buf + (size_t)f->n * (size_t)(f->width + 1);
	va_start(ap, fmt);
	vsnprintf(line, (size_t)f->width + 1, fmt, ap);
	va_end(ap);
	for (len = strlen(line); len > 0 && line[len - 1] == ' '; len--)
		line[len - 1] = '\0';
	f->head[f->n++] = (char)head;
}

/* Free the frame's snapshot (not the failures, which outlive frames). */
static void
snap_free(struct top *t)
{
	int	 i;

	spool_queue_metrics_free(t->m, t->nm);
	t->m = NULL;
	t->nm = 0;
	free(t->shown);
	t->shown = NULL;
	t->nshown = 0;
	for (i = 0; i < t->nlists; i++) {
		spool_task_info_free(t->run[i].v, t->run[i].n);
		t->run[i].v = NULL;
		t->run[i].n = 0;
	}
	spool_worker_info_free(t->w, t->nw);
	t->w = NULL;
	t->nw = 0;
}

/* Free the failures. */
static void
fail_free(struct top *t)
{
	int	 i;

	for (i = 0; i < t->nlists; i++) {
		spool_task_info_free(t->dead[i].v, t->dead[i].n);
		spool_task_info_free(t->retry[i].v, t->retry[i].n);
		t->dead[i].v = t->retry[i].v = NULL;
		t->dead[i].n = t->retry[i].n = 0;
	}
	free(t->fail);
	t->fail = NULL;
	t->nfail = 0;
}

/* Tasks in state, newest first, limit per list (each queue named, or
 * every queue). */
static int
read_lists(struct top *t, struct top_list *l, int state, size_t limit)
{
	spool_list_opts	 o = SPOOL_LIST_OPTS_INIT;
	int		 i, rc;

	for (i = 0; i < t->nlists; i++) {
		o.queue = t->nqueues > 0 ? t->queues[i] : NULL;
		o.state = state;
		o.descending = 1;
		o.limit = limit;
		if ((rc = spool_list(&l[i].v, &l[i].n, t->c->q, &o)) != SPOOL_OK)
			return (rc);
	}
	return (SPOOL_OK);
}

/* Failures newest first, then by id, newest first. */
static int
fail_cmp(const void *a, const void *b)
{
	const struct top_fail	*x = a, *y = b;

	if (x->when_ms != y->when_ms)
		return (x->when_ms < y->when_ms ? 1 : -1);
	return (x->t->id < y->t->id ? 1 : x->t->id > y->t->id ? -1 : 0);
}

/*
 * The recent failures: the newest dead tasks by id, and the ready tasks
 * that failed and wait for a retry (their error is the last attempt's,
 * its end read with spool_attempts), newest first.  The library has no
 * "failed attempts by time" call, so this is near, not exact: a task
 * that died long after it was made may be missed among newer ids.
 */
static int
read_failures(struct top *t)
{
	spool_attempt_info	*a;
	size_t			 na, cap = 0, i, nretry = 0;
	int			 l, rc;

	fail_free(t);
	if ((rc = read_lists(t, t->dead, SPOOL_DEAD, TOP_FAILURES)) != SPOOL_OK ||
	    (rc = read_lists(t, t->retry, SPOOL_READY, TOP_RETRY_SCAN)) !=
	    SPOOL_OK)
		return (rc);
	for (l = 0; l < t->nlists; l++)
		cap += t->dead[l].n + t->retry[l].n;
	if (cap == 0)
		return (SPOOL_OK);
	if ((t->fail = calloc(cap, sizeof *t->fail)) == NULL)
		return (SPOOL_ENOMEM);
	for (l = 0; l < t->nlists; l++) {
		for (i = 0; i < t->dead[l].n; i++) {
			t->fail[t->nfail].t = &t->dead[l].v[i];
			t->fail[t->nfail++].when_ms = t->dead[l].v[i].finished_ms;
		}
		/* Newest ids first, so the first few of each list. */
		for (i = 0, nretry = 0; i < t->retry[l].n &&
		    nretry < TOP_FAILURES; i++) {
			const spool_task_info	*r = &t->retry[l].v[i];

			if (r->last_error == NULL || r->attempts == 0)
				continue;
			nretry++;
			/* Its last attempt only: the latest, one row. */
			if ((rc = spool_attempts(&a, &na, t->c->q, r->id,
			    &(spool_attempt_list_opts){
			    .version = SPOOL_ATTEMPT_LIST_OPTS_VERSION,
			    .limit = 1, .descending = 1 })) == SPOOL_ENOENT) {
				/* Deleted since the list: as if it had
				 * no attempt, as before the call said so. */
				a = NULL;
				na = 0;
			} else if (rc != SPOOL_OK)
				return (rc);
			t->fail[t->nfail].t = r;
			t->fail[t->nfail++].when_ms = na > 0 ?
			    a[na - 1].finished_ms : r->created_ms;
			spool_attempt_info_free(a, na);
		}
	}
	qsort(t->fail, t->nfail, sizeof *t->fail, fail_cmp);
	if (t->nfail > TOP_FAILURES)
		t->nfail = TOP_FAILURES;
	return (SPOOL_OK);
}

/* Running tasks by start, longest running first, then by id. */
static int
run_cmp(const void *a, const void *b)
{
	const spool_task_info	*x = *(const spool_task_info *const *)a;
	const spool_task_info	*y = *(const spool_task_info *const *)b;

	if (x->started_ms != y->started_ms)
		return (x->started_ms < y->started_ms ? -1 : 1);
	return (x->id < y->id ? -1 : x->id > y->id);
}

/* Read one frame's snapshot.  A queue named that does not exist is
 * SPOOL_ENOENT, with its name in *missing. */
static int
snap_read(struct top *t, const char **missing)
{
	int64_t	 key = 0;
	size_t	 i;
	int	 k, rc;

	snap_free(t);
	t->now_ms = cmd_now_ms();
	if ((rc = spool_metrics(&t->m, &t->nm, t->c->q, NULL)) != SPOOL_OK)
		return (rc);
	if ((t->shown = calloc(t->nm + 1, sizeof *t->shown)) == NULL)
		return (SPOOL_ENOMEM);
	for (i = 0; i < t->nm; i++) {
		for (k = 0; k < t->nqueues; k++)
			if (strcmp(t->queues[k], t->m[i].stats.queue) == 0)
				break;
		if (t->nqueues == 0 || k < t->nqueues)
			t->shown[t->nshown++] = i;
	}
	for (k = 0; k < t->nqueues; k++) {
		for (i = 0; i < t->nshown; i++)
			if (strcmp(t->queues[k],
			    t->m[t->shown[i]].stats.queue) == 0)
				break;
		if (i == t->nshown) {
			*missing = t->queues[k];
			return (SPOOL_ENOENT);
		}
	}
	/* As many running tasks as could be shown. */
	if ((rc = read_lists(t, t->run, SPOOL_RUNNING, (size_t)t->rows + 1)) !=
	    SPOOL_OK)
		return (rc);
	if ((rc = cmd_workers_all(t->c->q, &t->w, &t->nw)) != SPOOL_OK)
		return (rc);
	for (i = 0; i < t->nshown; i++) {
		const spool_queue_metrics	*m = &t->m[t->shown[i]];

		key += m->total.failed + m->total.dead + m->total.lease_lost +
		    m->total.retried + m->stats.dead;
	}
	if (t->fail_ms == 0 || key != t->fail_key ||
	    t->now_ms - t->fail_ms >= TOP_FAIL_MS) {
		if ((rc = read_failures(t)) != SPOOL_OK)
			return (rc);
		t->fail_key = key;
		t->fail_ms = t->now_ms;
	}
	return (SPOOL_OK);
}

/*
 * Share avail rows among n sections that want want[i] each: everyone
 * gets what they want if it fits; otherwise the rows are split evenly,
 * and what a small section leaves goes to the others.
 */
static void
share_rows(int avail, const int64_t *want, int *got, int n)
{
	int	 done[8], left = n, i, share, changed;

	for (i = 0; i < n; i++) {
		got[i] = 0;
		done[i] = want[i] <= 0;
		if (done[i])
			left--;
	}
	while (left > 0 && avail > 0) {
		share = avail / left;
		changed = 0;
		for (i = 0; i < n; i++)
			if (!done[i] && want[i] <= share) {
				got[i] = (int)want[i];
				avail -= got[i];
				done[i] = 1;
				left--;
				changed = 1;
			}
		if (changed)
			continue;
		/* Everyone left wants more than a share: split what is left,
		 * the remainder to the first sections. */
		for (i = 0; i < n; i++)
			if (!done[i]) {
				got[i] = share + (avail % left > 0 ? 1 : 0);
				if (avail % left > 0)
					avail--;
			}
		break;
	}
}

/* The frame of the snapshot. */
static void
top_render(struct top *t, struct top_frame *f)
{
	const spool_task_info	**run = NULL;
	char			 name[TOP_QUEUE_W + 1], text[TOP_WIDTH_MAX + 1];
	char			 qs[4096];
	char			 a1[32], a2[32], a3[32], when[32], note[64];
	char			 pathbuf[TOP_WIDTH_MAX + 1];
	const char		*path;
	size_t			 len;
	int64_t			 want[4], ready = 0, running = 0, sched = 0;
	int64_t			 dead = 0, ok = 0, more;
	size_t			 nrun = 0, i, shown;
	time_t			 now = (time_t)(t->now_ms / 1000);
	struct tm		 tm;
	int			 got[4], live = 0, l;

	f->n = 0;
	for (i = 0; i < t->nshown; i++) {
		const spool_queue_metrics	*m = &t->m[t->shown[i]];

		ready += m->stats.ready;
		running += m->stats.running;
		sched += m->stats.scheduled;
		dead += m->stats.dead;
		ok += m->succeeded_1m;
	}
	for (i = 0; i < t->nw; i++)
		live += !t->w[i].stale;
	for (l = 0; l < t->nlists; l++)
		nrun += t->run[l].n;
	if (nrun > 0 && (run = calloc(nrun, sizeof *run)) != NULL) {
		nrun = 0;
		for (l = 0; l < t->nlists; l++)
			for (i = 0; i < t->run[l].n; i++)
				run[nrun++] = &t->run[l].v[i];
		qsort(run, nrun, sizeof *run, run_cmp);	/* longest first */
	} else
		nrun = 0;

	/* The totals, then the path: its end if the whole does not fit. */
	gmtime_r(&now, &tm);
	strftime(a1, sizeof a1, "%H:%M:%S", &tm);
	snprintf(text, sizeof text, "%s UTC  ready %lld  running %lld  sched "
	    "%lld  dead %lld  ok/1m %lld  workers %d  ", a1, (long long)ready,
	    (long long)running, (long long)sched, (long long)dead,
	    (long long)ok, live);
	path = clean(pathbuf, sizeof pathbuf, t->c->db_path, sizeof pathbuf);
	len = strlen(text) + strlen(path);
	if (len > (size_t)f->width && strlen(path) > len - f->width + 3) {
		path += len - f->width + 3;
		frame_add(f, 1, "%s...%s", text, path);
	} else
		frame_add(f, 1, "%s%s", text, path);

	want[0] = (int64_t)t->nshown;
	want[1] = running > (int64_t)nrun ? running : (int64_t)nrun;
	want[2] = (int64_t)t->nfail;
	want[3] = (int64_t)t->nw;
	share_rows(f->rows - 5, want, got, 4);

	/* Queues. */
	frame_add(f, 1, "%-*s %6s %7s %6s %6s %6s %6s %7s %6s", TOP_QUEUE_W,
	    "QUEUE", "READY", "RUNNING", "SCHED", "DEAD", "OLDEST", "OK/1M",
	    "DEAD/1M", "P95RUN");
	shown = (int64_t)t->nshown > got[0] ? (size_t)(got[0] > 0 ?
	    got[0] - 1 : 0) : t->nshown;
	for (i = 0; i < shown; i++) {
		const spool_queue_metrics	*m = &t->m[t->shown[i]];

		cmd_fmt_age(a1, sizeof a1, m->stats.oldest_ready_age_ms);
		cmd_fmt_age(a2, sizeof a2, m->run_ms[1]);
		/* Leased but not running: claimed ahead, or expired. */
		note[0] = '\0';
		if (m->stats.claimed > 0)
			snprintf(note, sizeof note, " %lld claimed",
			    (long long)m->stats.claimed);
		if (m->stats.expired > 0)
			snprintf(note + strlen(note), sizeof note - strlen(note),
			    " %lld expired", (long long)m->stats.expired);
		frame_add(f, 0, "%-*s %6lld %7lld %6lld %6lld %6s %6lld %7lld "
		    "%6s%s%s", TOP_QUEUE_W, clean(name, sizeof name,
		    m->stats.queue, TOP_QUEUE_W), (long long)m->stats.ready,
		    (long long)m->stats.running, (long long)m->stats.scheduled,
		    (long long)m->stats.dead, a1, (long long)m->succeeded_1m,
		    (long long)m->dead_1m, a2, m->stats.paused ? " paused" : "",
		    note);
	}
	if (shown < t->nshown && got[0] > 0)
		frame_add(f, 0, "... %zu more queues", t->nshown - shown);

	/* Running tasks, longest running first. */
	frame_add(f, 1, "%-9s %-*s %5s %8s  %s", "RUNNING", TOP_QUEUE_W,
	    "QUEUE", "ATT", "FOR", "WORKER");
	if ((int64_t)nrun >= want[1] && want[1] <= got[1])
		shown = nrun;		/* all of them */
	else if ((shown = (size_t)(got[1] > 0 ? got[1] - 1 : 0)) > nrun)
		shown = nrun;		/* and a line for the rest */
	for (i = 0; i < shown; i++) {
		snprintf(a1, sizeof a1, "%d/%d", run[i]->attempts,
		    run[i]->max_attempts);
		cmd_fmt_age(a2, sizeof a2, run[i]->started_ms > 0 ?
		    t->now_ms - run[i]->started_ms : -1);
		frame_add(f, 0, "%-9lld %-*s %5s %8s  %s%s", (long long)run[i]->id,
		    TOP_QUEUE_W, clean(name, sizeof name, run[i]->queue,
		    TOP_QUEUE_W), a1, a2, run[i]->cancel_requested ?
		    "(cancelling) " : "", clean(text, sizeof text,
		    run[i]->lease_owner, TOP_WIDTH_MAX));
	}
	more = want[1] - (int64_t)shown;
	if (more > 0 && got[1] > 0)
		frame_add(f, 0, "... %lld more running", (long long)more);

	/* Recent failures, newest first. */
	frame_add(f, 1, "%-9s %-*s %5s %7s %-5s  %s", "FAILED", TOP_QUEUE_W,
	    "QUEUE", "ATT", "AGO", "STATE", "ERROR");
	for (i = 0; i < t->nfail && (int64_t)i < got[2]; i++) {
		const spool_task_info	*ft = t->fail[i].t;

		snprintf(a1, sizeof a1, "%d/%d", ft->attempts, ft->max_attempts);
		cmd_fmt_age(when, sizeof when, t->fail[i].when_ms > 0 ?
		    t->now_ms - t->fail[i].when_ms : -1);
		frame_add(f, 0, "%-9lld %-*s %5s %7s %-5s  %s", (long long)ft->id,
		    TOP_QUEUE_W, clean(name, sizeof name, ft->queue,
		    TOP_QUEUE_W), a1, when, ft->state == SPOOL_DEAD ? "dead" :
		    "retry", clean(text, sizeof text, ft->last_error != NULL ?
		    ft->last_error : spool_dead_reason_name(ft->dead_reason),
		    TOP_WIDTH_MAX));
	}

	/* Workers. */
	frame_add(f, 1, "%-16s %7s %7s %9s %-5s  %s", "WORKER", "PID", "BUSY",
	    "HEARTBEAT", "", "QUEUES");
	shown = (int64_t)t->nw > got[3] ? (size_t)(got[3] > 0 ? got[3] - 1 :
	    0) : t->nw;
	for (i = 0; i < shown; i++) {
		snprintf(a1, sizeof a1, "%d/%d", t->w[i].busy,
		    t->w[i].concurrency);
		cmd_fmt_age(a3, sizeof a3, t->now_ms - t->w[i].heartbeat_ms);
		cmd_worker_queues(qs, sizeof qs, &t->w[i]);
		frame_add(f, 0, "%-16s %7ld %7s %9s %-5s  %s",
		    clean(a2, 17, t->w[i].host, 16), t->w[i].pid, a1, a3,
		    t->w[i].stale ? "STALE" : "", clean(text, sizeof text, qs,
		    TOP_WIDTH_MAX));
	}
	if (shown < t->nw && got[3] > 0)
		frame_add(f, 0, "... %zu more workers", t->nw - shown);
	free(run);
}

/* Print the frame: plain lines, or over the last one on the terminal:
 * home, each line then "clear to its end", then "clear below".  A line
 * as wide as the screen leaves the cursor on its last cell, which either
 * clear would blank, so it gets neither, and the last row no newline
 * (the screen never scrolls). */
static int
top_draw(struct top *t, struct top_frame *f, int clear)
{
	int	 i;

	if (t->tty)
		fputs(clear ? "\033[H\033[2J" : "\033[H", stdout);
	for (i = 0; i < f->n; i++) {
		const char	*line = f->buf + (size_t)i * (size_t)(f->width + 1);

		if (!t->tty) {
			printf("%s\n", line);
			continue;
		}
		if (f->head[i])
			printf("\033[7m%-*s\033[m", f->width, line);
		else
			printf("%s%s", line, (int)strlen(line) < f->width ?
			    "\033[K" : "");
		if (i < f->n - 1)
			fputs("\r\n", stdout);
	}
	if (t->tty && f->n < f->rows)
		fputs("\r\n\033[J", stdout);
	if (fflush(stdout) == EOF || ferror(stdout))
		return (-1);
	return (0);
}

/* Size the frame to the window. */
static int
frame_size(struct top *t, struct top_frame *f)
{
	top_size(t);
	free(f->buf);
	free(f->head);
	f->width = t->width;
	f->rows = t->rows;
	f->n = 0;
	f->buf = calloc((size_t)f->rows, (size_t)f->width + 1);
	f->head = calloc((size_t)f->rows, 1);
	return (f->buf == NULL || f->head == NULL ? -1 : 0);
}

/* Catch sig, writing its number to the signal pipe. */
static void
top_catch(int sig)
{
	struct sigaction	 sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = top_onsignal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: poll returns at once */
	(void)sigaction(sig, &sa, NULL);
}

/* Stop on ^Z with the terminal given back; take it again on SIGCONT. */
static void
top_suspend(void)
{
	term_leave();
	(void)signal(SIGTSTP, SIG_DFL);
	(void)raise(SIGTSTP);		/* stopped here until continued */
	top_catch(SIGTSTP);
	term_enter();
}

/* Read a frame (unless the last read is not drawn yet) and draw it; an
 * exit code. */
static int
top_tick(struct top *t, struct top_frame *f, int clear)
{
	const char	*missing = NULL;
	int		 rc;

	if (t->fresh)
		t->fresh = 0;
	else if ((rc = snap_read(t, &missing)) != SPOOL_OK) {
		term_leave();
		if (missing != NULL)
			return (cmd_error(t->c, EXIT_NO, "no such queue: %s",
			    missing));
		if (rc == SPOOL_ENOMEM)
			return (cmd_error(t->c, EXIT_TEMPFAIL, "out of memory"));
		return (cmd_fail(t->c, rc));
	}
	top_render(t, f);
	if (top_draw(t, f, clear) != 0) {
		term_leave();
		return (cmd_error(t->c, EXIT_IO, "writing the frame: %s",
		    strerror(errno)));
	}
	return (EXIT_OK);
}

/* The interactive loop: a frame per interval until q or a signal. */
static int
top_loop(struct top *t, struct top_frame *f, int64_t iterations, int *sig_out)
{
	struct pollfd	 pfd[2];
	unsigned char	 buf[64];
	int64_t		 frames = 0, next, wait_ms;
	int		 sigpipe[2], rc = EXIT_OK, stdin_ok, clear = 1, i, np;
	ssize_t		 n;

	*sig_out = 0;
	if (pipe(sigpipe) == -1)
		return (cmd_error(t->c, EXIT_SOFTWARE, "pipe: %s",
		    strerror(errno)));
	for (i = 0; i < 2; i++) {
		(void)fcntl(sigpipe[i], F_SETFL, O_NONBLOCK);
		(void)fcntl(sigpipe[i], F_SETFD, FD_CLOEXEC);
	}
	top_sigfd = sigpipe[1];
	top_catch(SIGINT);
	top_catch(SIGTERM);
	top_catch(SIGHUP);
	top_catch(SIGQUIT);
	top_catch(SIGWINCH);
	top_catch(SIGTSTP);
	stdin_ok = isatty(STDIN_FILENO);
	term_enter();
	next = cmd_now_ms();
	for (;;) {
		if (cmd_now_ms() >= next || clear) {
			if ((rc = top_tick(t, f, clear)) != EXIT_OK)
				break;
			clear = 0;
			next = cmd_now_ms() + t->interval_ms;
			if (iterations > 0 && ++frames >= iterations)
				break;
		}
		pfd[0].fd = sigpipe[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = STDIN_FILENO;
		pfd[1].events = POLLIN;
		np = stdin_ok ? 2 : 1;
		wait_ms = next - cmd_now_ms();
		if (wait_ms < 0)
			wait_ms = 0;
		if (poll(pfd, (nfds_t)np, (int)wait_ms) == -1) {
			if (errno == EINTR)
				continue;
			term_leave();
			rc = cmd_error(t->c, EXIT_SOFTWARE, "poll: %s",
			    strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			while ((n = read(sigpipe[0], buf, sizeof buf)) > 0)
				for (i = 0; i < n; i++) {
					if (buf[i] == SIGWINCH) {
						if (frame_size(t, f) != 0)
							goto nomem;
						clear = 1;
					} else if (buf[i] == SIGTSTP) {
						top_suspend();
						clear = 1;
					} else
						*sig_out = buf[i];
				}
			if (*sig_out != 0)
				break;
		}
		if (np > 1 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			if ((n = read(STDIN_FILENO, buf, sizeof buf)) <= 0) {
				if (n == 0 || (errno != EINTR && errno != EAGAIN))
					stdin_ok = 0;	/* no keys any more */
				continue;
			}
			for (i = 0; i < n; i++)
				if (buf[i] == 'q' || buf[i] == 'Q')
					break;
			if (i < n)
				break;
			clear = 1;	/* any other key: draw again now */
		}
	}
	if (0) {
nomem:
		term_leave();
		rc = cmd_error(t->c, EXIT_TEMPFAIL, "out of memory");
	}
	term_leave();
	top_sigfd = -1;
	close(sigpipe[0]);
	close(sigpipe[1]);
	return (rc);
}

static const struct cmd_opt top_opts[] = {
	{ "interval", "DURATION", "refresh every DURATION (default 1s)" },
	{ "iterations", "N", "stop after N frames" },
	{ "once", NULL, "print one frame as plain text and exit" },
	{ NULL, NULL, NULL }
};

/* Check the options, read a first snapshot, then draw until done. */
static int
top_exec(struct cmd_ctx *c, int argc, char **argv)
{
	struct top		 t;
	struct top_frame	 f;
	int64_t			 iterations = 0, frames = 0;
	int			 rc, sig = 0;

	memset(&t, 0, sizeof t);
	memset(&f, 0, sizeof f);
	t.c = c;
	t.queues = argv;
	t.nqueues = argc;
	t.nlists = argc > 0 ? argc : 1;
	t.interval_ms = 1000;
	if (c->json)
		return (cmd_usage_error(c, "top has no JSON output (see 'spool "
		    "stats --json')"));
	if ((rc = cmd_opt_duration(c, "interval", &t.interval_ms)) != EXIT_OK ||
	    (rc = cmd_opt_int(c, "iterations", 1, INT64_MAX, &iterations)) !=
	    EXIT_OK)
		return (rc);
	if (t.interval_ms < 100 || t.interval_ms > 3600000)
		return (cmd_usage_error(c, "--interval: between 100ms and 1h: "
		    "'%s'", cmd_opt(c, "interval")));
	if (cmd_opt(c, "once") != NULL && cmd_opt(c, "iterations") != NULL)
		return (cmd_usage_error(c, "give --once or --iterations, not "
		    "both"));
	if (cmd_opt(c, "once") != NULL)
		iterations = 1;
	t.tty = isatty(STDOUT_FILENO) && cmd_opt(c, "once") == NULL;
	if (!t.tty && iterations == 0)
		iterations = 1;		/* a pipe or a file: one frame */
	if ((rc = cmd_open(c)) != EXIT_OK)
		return (rc);
	t.run = calloc((size_t)t.nlists, sizeof *t.run);
	t.dead = calloc((size_t)t.nlists, sizeof *t.dead);
	t.retry = calloc((size_t)t.nlists, sizeof *t.retry);
	if (t.run == NULL || t.dead == NULL || t.retry == NULL ||
	    frame_size(&t, &f) != 0) {
		rc = cmd_error(c, EXIT_TEMPFAIL, "out of memory");
		goto out;
	}
	/* The first snapshot before the screen is taken, so a bad queue
	 * name or an unreadable file is reported on a normal terminal. */
	{
		const char	*missing = NULL;

		if ((rc = snap_read(&t, &missing)) != SPOOL_OK) {
			if (missing != NULL)
				rc = cmd_error(c, EXIT_NO, "no such queue: %s",
				    missing);
			else if (rc == SPOOL_ENOMEM)
				rc = cmd_error(c, EXIT_TEMPFAIL,
				    "out of memory");
			else
				rc = cmd_fail(c, rc);
			goto out;
		}
		t.fresh = 1;
	}
	if (t.tty)
		rc = top_loop(&t, &f, iterations, &sig);
	else {
		for (;;) {
			if ((rc = top_tick(&t, &f, 0)) != EXIT_OK ||
			    ++frames >= iterations)
				break;
			cmd_sleep_ms(t.interval_ms);
			putchar('\n');
		}
	}
out:
	snap_free(&t);
	fail_free(&t);
	free(t.run);
	free(t.dead);
	free(t.retry);
	free(f.buf);
	free(f.head);
	if (sig != 0) {
		/* Die of the signal, as the shell expects, with the terminal
		 * given back and the database closed. */
		spool_close(c->q);
		c->q = NULL;
		(void)signal(sig, SIG_DFL);
		(void)raise(sig);
	}
	return (rc);
}

const struct spool_cmd cmd_top = {
	.name = "top",
	.usage = "[QUEUE...]",
	.summary = "a live view: queues, running tasks, failures, workers",
	.help =
	    "Redraws every --interval: the totals; per queue READY, RUNNING, "
	    "SCHED(uled),\nDEAD, the OLDEST due task's wait, tasks that "
	    "succeeded (OK/1M) and died\n(DEAD/1M) in the last minute and the "
	    "P95 RUN time; the running tasks, longest\nfirst, with their "
	    "attempt and lease holder; the latest failures and their\nerrors; "
	    "the workers.  Each section gets a share of the rows; every line "
	    "is\ncut to the width.  Press q to quit (^C too), any other key "
	    "to redraw now.\nWhen stdout is not a terminal, or with --once, "
	    "it prints one frame as plain\n"
	    "text (--iterations N: N frames), sized $COLUMNS x $LINES, else "
	    "80x24.\n",
	.opts = top_opts,
	.max_args = -1,
	.exec = top_exec
};
