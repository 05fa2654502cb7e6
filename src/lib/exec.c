/*
 * exec.c -- a pool handler that runs a command per task: no shell, the
 * payload on stdin, SPOOL_TASK_ID, SPOOL_QUEUE and SPOOL_ATTEMPT in an
 * environment built from an allowlist, only fds 0-2 open, stdout (capped,
 * truncation recorded) as the result and the tail of stderr as the error.
 * Exit 0 is success, 75 "retry later", anything else a failure.
 *
 * Invariants: the child leads its own process group, and no process of
 * that group outlives the handler: on a timeout, cancellation or lost
 * lease the group gets SIGTERM and, after the grace period, SIGKILL; at a
 * forced shutdown SIGKILL at once; and when the leader exits, whatever it
 * left in its group is killed before the leader is reaped (so its pid,
 * and so the group id, cannot have been reused).
 *
 * With reap set (spool_exec_subreaper: spool work, not the library on
 * its own), no process of the command's tree outlives it either, even one
 * that left the group (setsid, a double fork).  The worker process and
 * each command's leader are child subreapers (the leader's set between
 * vfork and execve, which keeps it), so a process whose parent dies goes
 * to the nearest living subreaper above it: the leader while the command
 * runs, the worker once the leader has exited.  A child of the worker
 * that is not a command's leader was therefore left by a command that has
 * ended, whichever one it was: it is an orphan, and the handler that sees
 * it after its own command ends sends it SIGTERM, then SIGKILL after the
 * grace period (at once at a forced shutdown), and reaps it, pass after
 * pass until none is left.  Only that sweep reaps orphans, by pid: nothing
 * in the process may wait for any child (a waitpid(-1) could take a
 * leader's status from the thread waiting for it).  Every exec's commands are
 * registered as leaders, reaping or not, so one exec's sweep never takes
 * another's running command for an orphan; a child the host program
 * started itself is one, which is why spool_exec_subreaper is for a
 * process that is a worker and nothing else.
 */
#include "config.h"

#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool-int.h"

#define EXEC_POLL_MS	100	/* how often a running child's job is checked */
#define EXEC_SWEEP_MS	10	/* between passes over orphans still alive */
#define EXEC_GIVEUP_MS	2000	/* after its SIGKILL, an orphan not waited for */

/* Environment variables a command gets from the worker, unless the
 * configuration names more. */
static const char *const exec_env_default[] = {
	"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE",
	"LC_MESSAGES", "TZ", "TMPDIR"
};
#define EXEC_ENV_DEFAULTS (sizeof exec_env_default / sizeof exec_env_default[0])

/* Make an exec configuration; argv and the environment are copied. */
int
spool_exec_new(spool_exec **out, const char *const *argv, size_t argc,
    const spool_exec_opts *opts)
{
	static const spool_exec_opts	 dflt = SPOOL_EXEC_OPTS_INIT;
	struct spool_exec		*x;
	size_t				 i, n = 0;
	const char			*v;
	char				*kv;

	if (out == NULL)
		return (SPOOL_EINVAL);
	*out = NULL;
	if (opts == NULL)
		opts = &dflt;
	if (opts->version < 1 || opts->version > SPOOL_EXEC_OPTS_VERSION ||
	    opts->grace_ms < 0 || (opts->nenv > 0 && opts->env == NULL) ||
	    (argc > 0 && argv == NULL))
		return (SPOOL_EINVAL);
	for (i = 0; i < argc; i++)
		if (argv[i] == NULL || (i == 0 && argv[0][0] == '\0'))
			return (SPOOL_EINVAL);
	for (i = 0; i < opts->nenv; i++)
		if (opts->env[i] == NULL || opts->env[i][0] == '\0' ||
		    strchr(opts->env[i], '=') != NULL)
			return (SPOOL_EINVAL);
	if ((x = calloc(1, sizeof *x)) == NULL)
		return (SPOOL_ENOMEM);
	x->grace_ms = opts->grace_ms > 0 ? opts->grace_ms : 5000;
	x->out_max = SPOOL_PAYLOAD_MAX;
	x->err_max = 2048;
	if (argc > 0) {
		if ((x->argv = calloc(argc + 1, sizeof *x->argv)) == NULL)
			goto nomem;
		for (i = 0; i < argc; i++)
			if ((x->argv[i] = spool__strdup(argv[i])) == NULL)
				goto nomem;
	}
	/* The environment: the allowlist, as the process has it now. */
	if ((x->env = calloc(EXEC_ENV_DEFAULTS + opts->nenv + 1,
	    sizeof *x->env)) == NULL)
		goto nomem;
	for (i = 0; i < EXEC_ENV_DEFAULTS + opts->nenv; i++) {
		const char	*name = i < EXEC_ENV_DEFAULTS ?
		    exec_env_default[i] : opts->env[i - EXEC_ENV_DEFAULTS];

		if ((v = getenv(name)) == NULL)
			continue;
		if ((kv = malloc(strlen(name) + strlen(v) + 2)) == NULL)
			goto nomem;
		sprintf(kv, "%s=%s", name, v);
		x->env[n++] = kv;
	}
	x->nenv = n;
	*out = x;
	return (SPOOL_OK);
nomem:
	spool_exec_free(x);
	return (SPOOL_ENOMEM);
}

/* Free an exec configuration. */
void
spool_exec_free(struct spool_exec *x)
{
	size_t	 i;

	if (x == NULL)
		return;
	for (i = 0; x->argv != NULL && x->argv[i] != NULL; i++)
		free(x->argv[i]);
	free(x->argv);
	for (i = 0; x->env != NULL && x->env[i] != NULL; i++)
		free(x->env[i]);
	free(x->env);
	free(x);
}

/* One command being run: its process, pipes and buffers. */
struct child {
	pid_t		 pid;
	int		 in, out, err, pidfd;	/* -1 once closed */
	const char	*payload;
	size_t		 plen, poff;
	char		*obuf;
	size_t		 olen;
	int		 truncated;
	char		*ebuf;		/* the last err_max bytes of stderr */
	size_t		 elen;
	int		 term_sent;	/* 1 SIGTERM, 2 SIGKILL */
	int64_t		 term_at_ms;
	int		 exited;
	int		 why;		/* SPOOL_STOP_* that made us kill it */
	pid_t		 spawn_tid;	/* the thread starting it, until pid is set */
	struct child	*next;		/* in exec_children, while registered */
};

/*
 * The registry of orphans (see the top of the file), process-wide as
 * children are, under exec_mu: the children whose leader is not reaped yet,
 * and those being started (spawn_tid set: that thread may have a child
 * not registered yet); the orphans signalled and not reaped yet.
 */
struct orphan {
	pid_t		 pid;
	int		 sig;		/* the last signal sent it, or 0 */
	int64_t		 sig_ms;	/* when */
	int		 hopeless;	/* cannot be signalled (EPERM) */
	int		 seen;		/* listed in this pass */
};
static pthread_mutex_t	 exec_mu = PTHREAD_MUTEX_INITIALIZER;
static struct child	*exec_children;
static struct orphan	*exec_orphans;
static size_t		 exec_norphans, exec_orphans_cap;

static void
close_fd(int *fd)
{
	if (*fd != -1) {
		close(*fd);
		*fd = -1;
	}
}

/* Send sig to the child's whole process group. */
static void
child_kill(struct child *r, int sig)
{
	if (kill(-r->pid, sig) == -1 && errno == ESRCH)
		(void)kill(r->pid, sig);
}

/* Put r on the registry before its command starts (from the thread that
 * starts it, which may have an unregistered child until child_started). */
static void
child_register(struct child *r)
{
	pthread_mutex_lock(&exec_mu);
	r->pid = 0;
	r->spawn_tid = gettid();
	r->next = exec_children;
	exec_children = r;
	pthread_mutex_unlock(&exec_mu);
}

/* r's command runs as pid. */
static void
child_started(struct child *r, pid_t pid)
{
	pthread_mutex_lock(&exec_mu);
	r->pid = pid;
	r->spawn_tid = 0;
	pthread_mutex_unlock(&exec_mu);
}

/* Take r off the registry: its command did not start, or its leader has
 * been reaped. */
static void
child_unregister(struct child *r)
{
	struct child	**rp;

	pthread_mutex_lock(&exec_mu);
	for (rp = &exec_children; *rp != NULL; rp = &(*rp)->next)
		if (*rp == r) {
			*rp = r->next;
			break;
		}
	r->next = NULL;
	pthread_mutex_unlock(&exec_mu);
}

/* Under exec_mu: whether pid leads a registered child. */
static int
sweep_is_leader(pid_t pid)
{
	struct child	*r;

	for (r = exec_children; r != NULL; r = r->next)
		if (r->pid == pid)
			return (1);
	return (0);
}

/* Under exec_mu: whether thread tid is starting a command. */
static int
sweep_is_spawning(pid_t tid)
{
	struct child	*r;

	for (r = exec_children; r != NULL; r = r->next)
		if (r->pid == 0 && r->spawn_tid == tid)
			return (1);
	return (0);
}

/* Under exec_mu: a new entry for orphan pid (NULL if out of memory). */
static struct orphan *
sweep_orphan_add(pid_t pid)
{
	struct orphan	*o;

	if (exec_norphans == exec_orphans_cap) {
		size_t	 cap = exec_orphans_cap > 0 ? 2 * exec_orphans_cap : 16;

		if ((o = realloc(exec_orphans, cap * sizeof *o)) == NULL)
			return (NULL);
		exec_orphans = o;
		exec_orphans_cap = cap;
	}
	o = &exec_orphans[exec_norphans++];
	memset(o, 0, sizeof *o);
	o->pid = pid;
	return (o);
}

/* Under exec_mu: deal with pid, a child of a thread of the process
 * (spawning: that thread is starting a command).  Returns 1 if it is an
 * orphan to wait for. */
static int
sweep_child(pid_t pid, int spawning, int64_t grace_ms, int kill_now,
    int64_t now)
{
	struct orphan	*o;
	size_t		 i;
	int		 sig;

	if (sweep_is_leader(pid))
		return (0);
	for (i = 0; i < exec_norphans; i++)
		if (exec_orphans[i].pid == pid)
			break;
	/* An unknown child of a thread starting a command may be that
	 * command, not registered yet: it is let be, and not waited for
	 * (the next pass, after any command, looks again).  The kernel
	 * gives orphans to the process's first living thread, in spool work
	 * the main thread, which starts no command: so in practice only
	 * commands are let be.  A child known as an orphan is one:
	 * unreaped, its pid cannot have been reused. */
	if (i == exec_norphans && spawning)
		return (0);
	if (i < exec_norphans)
		o = &exec_orphans[i];
	else if ((o = sweep_orphan_add(pid)) == NULL) {
		/* No memory to keep its grace period: SIGKILL now. */
		(void)kill(pid, SIGKILL);
		return (waitpid(pid, NULL, WNOHANG) == pid ? 0 : 1);
	}
	o->seen = 1;
	if (waitpid(pid, NULL, WNOHANG) == pid) {
		o->pid = 0;	/* dropped at the end of the pass */
		return (0);
	}
	if (o->sig == 0 || (o->sig == SIGTERM && (kill_now ||
	    now - o->sig_ms >= grace_ms))) {
		sig = o->sig == 0 && !kill_now ? SIGTERM : SIGKILL;
		/* Its group too, if it leads one (a daemon after setsid):
		 * unreaped, it holds that id, so the group is its own or
		 * that of processes of the same command. */
		(void)kill(-pid, sig);
		if (kill(pid, sig) == -1 && errno == EPERM)
			o->hopeless = 1;	/* a set-user-ID program */
		o->sig = sig;
		o->sig_ms = now;
	}
	/* One we cannot signal, or that SIGKILL has not ended after
	 * EXEC_GIVEUP_MS (stuck in the kernel), is reaped by a later pass
	 * but not waited for. */
	if (o->hopeless || (o->sig == SIGKILL && now - o->sig_ms >=
	    EXEC_GIVEUP_MS))
		return (0);
	return (1);
}

/* One pass over the children of every thread of the process: signal the
 * orphans, reap those that have exited.  Returns how many are still to
 * wait for. */
static int
sweep_pass(int64_t grace_ms, int kill_now)
{
	struct dirent	*d;
	DIR		*dir;
	char		 path[64], buf[4096];
	int64_t		 now = spool__clock_ms(CLOCK_MONOTONIC);
	size_t		 i, k;
	ssize_t		 n;
	pid_t		 tid, pid;
	int		 fd, left = 0, spawning;

	pthread_mutex_lock(&exec_mu);
	for (i = 0; i < exec_norphans; i++)
		exec_orphans[i].seen = 0;
	if ((dir = opendir("/proc/self/task")) == NULL) {
		pthread_mutex_unlock(&exec_mu);
		return (0);
	}
	while ((d = readdir(dir)) != NULL) {
		if ((tid = (pid_t)atol(d->d_name)) <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%ld/children",
		    (long)tid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			continue;	/* the thread has exited */
		spawning = sweep_is_spawning(tid);
		pid = 0;
		/* Pids separated by spaces, a number possibly cut across
		 * two reads. */
		while ((n = read(fd, buf, sizeof buf)) > 0 ||
		    (n == -1 && errno == EINTR))
			for (k = 0; n > 0 && k < (size_t)n; k++) {
				if (buf[k] >= '0' && buf[k] <= '9')
					pid = pid * 10 + (buf[k] - '0');
				else if (pid > 0) {
					left += sweep_child(pid, spawning,
					    grace_ms, kill_now, now);
					pid = 0;
				}
			}
		if (pid > 0)
			left += sweep_child(pid, spawning, grace_ms, kill_now,
			    now);
		close(fd);
	}
	closedir(dir);
	/* Forget the reaped, and any no longer our child. */
	for (i = k = 0; i < exec_norphans; i++)
		if (exec_orphans[i].pid != 0 && exec_orphans[i].seen)
			exec_orphans[k++] = exec_orphans[i];
	exec_norphans = k;
	pthread_mutex_unlock(&exec_mu);
	return (left);
}

/* End what the commands that have ended left behind: pass after pass
 * until no orphan is left to wait for.  At a forced shutdown (job's, or
 * ordered while this waits), SIGKILL without a grace period. */
static void
exec_sweep(struct spool_exec *x, spool_job *job)
{
	while (sweep_pass(x->grace_ms,
	    spool_job_should_stop(job) == SPOOL_STOP_SHUTDOWN) > 0)
		spool__sleep_us(EXEC_SWEEP_MS * 1000);
}

/* Make the calling process a child subreaper and have x's handlers end
 * what commands leave behind (see the top of the file).  A change to the
 * whole process, made only when asked: spool work asks.  Returns
 * SPOOL_OK, or SPOOL_ERROR with errno set: ENOENT if the kernel does not
 * list a thread's children (/proc/PID/task/TID/children,
 * CONFIG_PROC_CHILDREN), without which no orphan can be found. */
int
spool_exec_subreaper(spool_exec *x)
{
	char	 path[64];

	if (x == NULL) {
		errno = EINVAL;
		return (SPOOL_EINVAL);
	}
	snprintf(path, sizeof path, "/proc/self/task/%ld/children",
	    (long)gettid());
	if (access(path, R_OK) == -1)
		return (SPOOL_ERROR);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		return (SPOOL_ERROR);
	x->reap = 1;
	return (SPOOL_OK);
}

/* The signals the worker may ignore or handle, given back to commands
 * at their default. */
static const int	 exec_default_sigs[] = { SIGPIPE, SIGINT, SIGTERM,
	SIGHUP, SIGQUIT, SIGCHLD, SIGXFSZ, SIGUSR1, SIGUSR2, SIGALRM };

static void
exec_paths_free(char **v)
{
	size_t	 i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* Where to look for the program cmd, as posix_spawnp would: cmd itself if
 * it names a path, else each directory of the worker's PATH (or
 * /bin:/usr/bin).  NULL-terminated; NULL if out of memory.  Built before
 * the fork, as the child may not allocate. */
static char **
exec_paths(const char *cmd)
{
	const char	*path = getenv("PATH"), *p, *e;
	char		**v;
	size_t		 n = 2, k = 0, dl;

	if (strchr(cmd, '/') != NULL || *cmd == '\0') {
		if ((v = calloc(2, sizeof *v)) == NULL ||
		    (v[0] = strdup(cmd)) == NULL) {
			free(v);
			return (NULL);
		}
		return (v);
	}
	if (path == NULL || *path == '\0')
		path = "/bin:/usr/bin";
	for (p = path; *p != '\0'; p++)
		n += *p == ':';
	if ((v = calloc(n, sizeof *v)) == NULL)
		return (NULL);
	for (p = path;; p = e + 1) {
		e = strchr(p, ':');
		dl = e != NULL ? (size_t)(e - p) : strlen(p);
		/* An empty entry is the current directory. */
		if ((v[k] = malloc(dl + strlen(cmd) + 3)) == NULL) {
			exec_paths_free(v);
			return (NULL);
		}
		if (dl == 0)
			sprintf(v[k], "./%s", cmd);
		else
			sprintf(v[k], "%.*s/%s", (int)dl, p, cmd);
		k++;
		if (e == NULL)
			break;
	}
	return (v);
}

/*
 * Start argv[0] (tried at each of paths) with envp and fds[0..2] as its
 * standard input, output and error, in a process group of its own, with
 * the signals of exec_default_sigs at their default and none blocked:
 * posix_spawnp's work, plus PR_SET_PDEATHSIG, which posix_spawn cannot
 * set, so that a worker killed with SIGKILL takes its commands with it
 * (the kernel sends it when the thread that started the command ends,
 * and a worker thread waits for its command), and, if subreaper, makes
 * it a child subreaper (see the top of the file).  vfork shares the parent's
 * memory until the exec: the child makes only system calls and writes
 * nothing of the parent's.  Returns 0, or the errno of the failed start.
 */
static int
exec_spawn(pid_t *pid_out, char *const *paths, char *const *argv,
    char *const *envp, const int fds[3], int subreaper)
{
	pid_t		 parent = getpid(), pid;
	sigset_t	 all, old;
	ssize_t		 n;
	int		 ep[2], err = 0;

	/* The child's errno comes back through a pipe that the exec closes
	 * (O_CLOEXEC): nothing read means it ran.  (Not a variable shared by
	 * vfork: a sanitizer may turn vfork into fork.) */
	if (pipe2(ep, O_CLOEXEC) == -1)
		return (errno);
	/* No signal handler may run in the child, on the parent's memory:
	 * block them all across the vfork (the child unblocks them once
	 * their dispositions are the defaults). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = vfork();
	if (pid == 0) {
		struct sigaction	 sa;
		sigset_t		 none;
		size_t			 i;
		int			 e = ENOENT;

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 ||
		    getppid() != parent) {
			e = errno != 0 ? errno : ESRCH;
			goto fail;
		}
		if (subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1) == -1) {
			e = errno;
			goto fail;
		}
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = SIG_DFL;
		for (i = 0; i < sizeof exec_default_sigs /
		    sizeof exec_default_sigs[0]; i++)
			(void)sigaction(exec_default_sigs[i], &sa, NULL);
		if (setpgid(0, 0) == -1 || dup2(fds[0], 0) == -1 ||
		    dup2(fds[1], 1) == -1 || dup2(fds[2], 2) == -1) {
			e = errno;
			goto fail;
		}
		/* Every other descriptor goes, but the error pipe, which
		 * the exec closes. */
		if (ep[1] > 3)
			(void)close_range(3, (unsigned)ep[1] - 1, 0);
		(void)close_range((unsigned)ep[1] + 1, ~0U, 0);
		sigemptyset(&none);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		for (i = 0; paths[i] != NULL; i++) {
			execve(paths[i], argv, envp);
			/* As execvp: a program found but not runnable says
			 * so, rather than a later "not found". */
			if (errno != ENOENT && errno != ENOTDIR)
				e = errno;
		}
fail:
		(void)write(ep[1], &e, sizeof e);
		_exit(127);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(ep[1]);
	if (pid == -1) {
		err = errno;
		close(ep[0]);
		return (err);
	}
	while ((n = read(ep[0], &err, sizeof err)) == -1 && errno == EINTR)
		continue;
	close(ep[0]);
	if (n == (ssize_t)sizeof err && err != 0) {
		while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
			continue;
		return (err);
	}
	*pid_out = pid;
	return (0);
}

/* Start the command with the job's payload on stdin. */
static int
child_spawn(struct child *r, struct spool_exec *x, spool_job *job,
    char *const *argv)
{
	char				 id[64], queue[SPOOL_NAME_MAX + 16];
	char				 attempt[48], item[64];
	char				 stage[SPOOL_PIPELINE_NAME_MAX + 16];
	char				**envp, **paths;
	int				 pin[2], pout[2], perr[2], fds[3], rc;
	size_t				 i;
	pid_t				 pid;

	pin[0] = pin[1] = pout[0] = pout[1] = perr[0] = perr[1] = -1;
	if (pipe2(pin, O_CLOEXEC) == -1 || pipe2(pout, O_CLOEXEC) == -1 ||
	    pipe2(perr, O_CLOEXEC) == -1) {
		rc = errno;
		goto fail;
	}
	if ((envp = calloc(x->nenv + 6, sizeof *envp)) == NULL) {
		rc = ENOMEM;
		goto fail;
	}
	for (i = 0; i < x->nenv; i++)
		envp[i] = x->env[i];
	snprintf(id, sizeof id, "SPOOL_TASK_ID=%lld",
	    (long long)spool_job_id(job));
	snprintf(queue, sizeof queue, "SPOOL_QUEUE=%s", spool_job_queue(job));
	snprintf(attempt, sizeof attempt, "SPOOL_ATTEMPT=%d",
	    spool_job_attempt(job));
	envp[i++] = id;
	envp[i++] = queue;
	envp[i++] = attempt;
	if (spool_job_item(job) != 0) {
		snprintf(item, sizeof item, "SPOOL_ITEM_ID=%lld",
		    (long long)spool_job_item(job));
		envp[i++] = item;
	}
	if (spool_job_stage(job) != NULL) {
		snprintf(stage, sizeof stage, "SPOOL_STAGE=%s",
		    spool_job_stage(job));
		envp[i++] = stage;
	}
	envp[i] = NULL;

	if ((paths = exec_paths(argv[0])) == NULL) {
		rc = ENOMEM;
		free(envp);
		goto fail;
	}
	fds[0] = pin[0];
	fds[1] = pout[1];
	fds[2] = perr[1];
	/* Every exec's commands are registered, not only a reaping one's:
	 * the sweep of a reaping exec must know another exec's commands
	 * (in the same process) for the commands they are. */
	child_register(r);
	rc = exec_spawn(&pid, paths, argv, envp, fds, x->reap);
	exec_paths_free(paths);
	free(envp);
	if (rc != 0) {
		child_unregister(r);
		goto fail;
	}
	child_started(r, pid);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	r->in = pin[1];
	r->out = pout[0];
	r->err = perr[0];
	fcntl(r->in, F_SETFL, O_NONBLOCK);
	fcntl(r->out, F_SETFL, O_NONBLOCK);
	fcntl(r->err, F_SETFL, O_NONBLOCK);
	r->pidfd = pidfd_open(r->pid, 0);	/* -1: fall back to polling */
	r->payload = spool_job_payload(job, &r->plen);
	if (r->plen == 0)
		close_fd(&r->in);
	return (0);
fail:
	for (i = 0; i < 2; i++) {
		close_fd(&pin[i]);
		close_fd(&pout[i]);
		close_fd(&perr[i]);
	}
	return (rc);
}

/* Read what the child wrote on fd: stdout into the result (up to the
 * cap, the rest counted as truncated and thrown away), stderr into a
 * tail buffer.  Returns 1 if a read got bytes (there may be more). */
static int
child_read(struct child *r, struct spool_exec *x, int *fd, int is_out)
{
	char	 buf[16384];
	ssize_t	 n;
	size_t	 keep, room;

	n = read(*fd, buf, sizeof buf);
	if (n == 0 || (n == -1 && errno != EINTR && errno != EAGAIN)) {
		close_fd(fd);
		return (0);
	}
	if (n <= 0)
		return (0);
	if (is_out) {
		room = x->out_max - r->olen;
		keep = (size_t)n < room ? (size_t)n : room;
		if (keep > 0) {
			memcpy(r->obuf + r->olen, buf, keep);
			r->olen += keep;
		}
		if (keep < (size_t)n)
			r->truncated = 1;
		return (1);
	}
	if ((size_t)n >= x->err_max) {
		memcpy(r->ebuf, buf + n - x->err_max, x->err_max);
		r->elen = x->err_max;
	} else {
		if (r->elen + (size_t)n > x->err_max) {
			keep = x->err_max - (size_t)n;
			memmove(r->ebuf, r->ebuf + r->elen - keep, keep);
			r->elen = keep;
		}
		memcpy(r->ebuf + r->elen, buf, (size_t)n);
		r->elen += (size_t)n;
	}
	return (1);
}

/* Read what is left in a pipe without waiting, then close it: a process
 * outside the group (one that called setsid) may hold it open forever. */
static void
child_drain(struct child *r, struct spool_exec *x, int *fd, int is_out)
{
	while (*fd != -1 && child_read(r, x, fd, is_out))
		continue;
	close_fd(fd);
}

/* Whether the child has exited (without reaping it). */
static int
child_exited(struct child *r)
{
	siginfo_t	 si;

	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)r->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid == r->pid)
		return (1);
	return (0);
}

/* Kill the group if the job must stop or its time is up; escalate to
 * SIGKILL after the grace period. */
static void
child_police(struct child *r, struct spool_exec *x, spool_job *job,
    int64_t deadline_ms)
{
	int64_t	 now = spool__clock_ms(CLOCK_MONOTONIC);
	int	 stop = spool_job_should_stop(job);

	if (stop == 0 && deadline_ms != 0 && now >= deadline_ms) {
		spool__job_stop_set(job, SPOOL_STOP_TIMEOUT);
		stop = spool_job_should_stop(job);
	}
	if (stop != 0 && r->term_sent == 0) {
		r->why = stop;
		r->term_at_ms = now;
		if (stop == SPOOL_STOP_SHUTDOWN) {
			child_kill(r, SIGKILL);
			r->term_sent = 2;
		} else {
			child_kill(r, SIGTERM);
			r->term_sent = 1;
		}
	} else if (r->term_sent == 1 && now - r->term_at_ms >= x->grace_ms) {
		child_kill(r, SIGKILL);
		r->term_sent = 2;
	}
}

/* Describe why the attempt failed, with the stderr tail. */
static void
child_error(struct child *r, spool_job *job, int status, int64_t timeout_ms)
{
	char	 head[160], *msg;
	size_t	 hl, i;

	if (r->why == SPOOL_STOP_TIMEOUT)
		snprintf(head, sizeof head, "timed out after %lld ms (%s)",
		    (long long)timeout_ms, r->term_sent == 2 ?
		    "SIGTERM, then SIGKILL" : "SIGTERM");
	else if (r->why == SPOOL_STOP_CANCELLED)
		snprintf(head, sizeof head, "cancelled while running");
	else if (r->why == SPOOL_STOP_LEASE_LOST)
		snprintf(head, sizeof head, "lease lost while running");
	else if (r->why == SPOOL_STOP_SHUTDOWN)
		snprintf(head, sizeof head, "killed at shutdown");
	else if (WIFSIGNALED(status))
		snprintf(head, sizeof head, "killed by signal %d (%s)",
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status) == 75)
		snprintf(head, sizeof head, "exit 75: retry later");
	else
		snprintf(head, sizeof head, "exit %d", WEXITSTATUS(status));
	hl = strlen(head);
	if ((msg = malloc(hl + r->elen + 3)) == NULL)
		return;
	memcpy(msg, head, hl);
	if (r->elen > 0) {
		memcpy(msg + hl, ": ", 2);
		hl += 2;
		/* One line of text: NULs would cut it. */
		for (i = 0; i < r->elen; i++)
			msg[hl++] = r->ebuf[i] == '\0' ? ' ' : r->ebuf[i];
		while (hl > 0 && (msg[hl - 1] == '\n' || msg[hl - 1] == ' '))
			hl--;
	}
	msg[hl] = '\0';
	free(job->error);
	job->error = msg;
}

/* Run argv for job. */
static int
exec_command(spool_job *job, struct spool_exec *x, char *const *argv)
{
	struct pollfd		 pfd[4];
	struct child		 r;
	int64_t			 deadline = 0, timeout_ms;
	int			 n, status = 0, rc, wait_ms;

	memset(&r, 0, sizeof r);
	r.in = r.out = r.err = r.pidfd = -1;
	if ((r.obuf = malloc(x->out_max)) == NULL ||
	    (r.ebuf = malloc(x->err_max)) == NULL) {
		free(r.obuf);
		spool_job_set_error(job, "out of memory");
		return (SPOOL_RETRY);
	}
	timeout_ms = job->timeout_ms;
	if (timeout_ms > 0)
		deadline = spool__clock_ms(CLOCK_MONOTONIC) + timeout_ms;
	if ((rc = child_spawn(&r, x, job, argv)) != 0) {
		char	 msg[300];

		snprintf(msg, sizeof msg, "cannot run %.200s: %s", argv[0],
		    strerror(rc));
		spool_job_set_error(job, msg);
		free(r.obuf);
		free(r.ebuf);
		return (SPOOL_RETRY);
	}

	/* Feed stdin, drain stdout and stderr, until the child is gone. */
	while (!r.exited) {
		n = 0;
		if (r.in != -1) {
			pfd[n].fd = r.in;
			pfd[n++].events = POLLOUT;
		}
		if (r.out != -1) {
			pfd[n].fd = r.out;
			pfd[n++].events = POLLIN;
		}
		if (r.err != -1) {
			pfd[n].fd = r.err;
			pfd[n++].events = POLLIN;
		}
		if (r.pidfd != -1) {
			pfd[n].fd = r.pidfd;
			pfd[n++].events = POLLIN;
		}
		wait_ms = EXEC_POLL_MS;
		if (r.pidfd == -1 && r.out == -1 && r.err == -1)
			wait_ms = 10;	/* no pidfd: poll for the exit */
		if (poll(pfd, (nfds_t)n, wait_ms) == -1 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (pfd[i].fd == r.in) {
				ssize_t	 w = write(r.in, r.payload + r.poff,
				    r.plen - r.poff);

				if (w > 0)
					r.poff += (size_t)w;
				if ((w == -1 && errno != EAGAIN &&
				    errno != EINTR) || r.poff == r.plen)
					close_fd(&r.in);	/* EOF, or EPIPE */
			} else if (pfd[i].fd == r.out)
				child_read(&r, x, &r.out, 1);
			else if (pfd[i].fd == r.err)
				child_read(&r, x, &r.err, 0);
		}
		child_police(&r, x, job, deadline);
		if (r.out == -1 && r.err == -1 ? child_exited(&r) :
		    (r.pidfd != -1 && child_exited(&r))) {
			r.exited = 1;
		}
	}
	/* The leader is a zombie: its group id cannot be reused yet. */
	child_kill(&r, SIGKILL);
	while (waitpid(r.pid, &status, 0) == -1 && errno == EINTR)
		continue;
	child_unregister(&r);
	spool__crash("exited");
	child_drain(&r, x, &r.out, 1);
	child_drain(&r, x, &r.err, 0);
	close_fd(&r.in);
	close_fd(&r.out);
	close_fd(&r.pidfd);
	/* What left the group is the worker's now (if the command started
	 * any such process, or another command that has ended did): end it
	 * before the outcome is given. */
	if (x->reap)
		exec_sweep(x, job);

	if (r.why == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		free(job->result);
		job->result = r.obuf;
		job->result_len = r.olen;
		job->truncated = r.truncated;
		free(r.ebuf);
		return (SPOOL_DONE);
	}
	child_error(&r, job, status, timeout_ms);
	free(r.obuf);
	free(r.ebuf);
	return (SPOOL_RETRY);
}

/* The handler: run the configured command for job. */
int
spool_exec_handler(spool_job *job, void *arg)
{
	struct spool_exec	*x = arg;

	if (x->argv == NULL) {
		/* Made for stages only: a failure of the task, said so. */
		spool_job_set_error(job, "this spool_exec has no command: it "
		    "runs pipeline stages (spool_exec_stage_handler)");
		return (SPOOL_FAIL);
	}
	return (exec_command(job, x, x->argv));
}

/* The handler for pipeline stages: run the command of the job's stage,
 * as its item's version defined it (x gives everything but argv). */
int
spool_exec_stage_handler(spool_job *job, void *arg)
{
	struct spool_exec	*x = arg;
	const char		*cmd = spool_job_stage_command(job);
	char			**argv = NULL, msg[200];
	size_t			 argc = 0;
	int			 rc;

	if (cmd == NULL || spool__split_words(NULL, cmd, &argv, &argc) !=
	    SPOOL_OK || argc == 0) {
		spool__words_free(argv);
		snprintf(msg, sizeof msg, "stage %.64s has no command to run",
		    spool_job_stage(job) != NULL ? spool_job_stage(job) : "?");
		spool_job_set_error(job, msg);
		return (SPOOL_RETRY);
	}
	rc = exec_command(job, x, argv);
	spool__words_free(argv);
	if (rc == SPOOL_DONE && job->truncated) {
		/* A cut output must not become the next stage's input. */
		snprintf(msg, sizeof msg, "output larger than %d bytes",
		    SPOOL_PAYLOAD_MAX);
		spool_job_set_error(job, msg);
		return (SPOOL_FAIL);
	}
	return (rc);
}
