/*
 * canary.c -- the command the CLI tests run under "spool work --exec".
 * It reports what it was given and does what its mode says:
 *
 *   canary report [ARG...]    print (one line each) its argv, SPOOL_*
 *                             and FOO from the environment, its open fds,
 *                             whether it leads its process group, and stdin
 *   canary exit N             say "bye" on stderr, exit N
 *   canary kill SIG           kill itself with signal SIG (9: nothing, not
 *                             even a sanitizer, can turn it into an exit)
 *   canary sleep MS           sleep MS ms, print "slept"
 *   canary family MS PIDFILE  fork a child into its group that writes its
 *                             pid to PIDFILE and sleeps MS; sleep MS too
 *   canary stubborn MS        ignore SIGTERM, sleep MS
 *   canary daemon PIDFILE MS [stubborn]
 *                             daemonize a sleep as daemon(3) does (fork,
 *                             setsid, fork, the middle one exits, fds
 *                             0-2 on /dev/null), which forks a sleep of
 *                             its own in a session of its own too; write
 *                             "DAEMON ITSCHILD" to PIDFILE (at once, by a
 *                             rename); wait for the file, sleep MS, print
 *                             "slept".  With stubborn both sleeps ignore
 *                             SIGTERM.
 *   canary spam BYTES         write BYTES bytes of 'x' to stdout
 *   canary log FILE MAXMS     append "start ID ATTEMPT PID" to FILE, sleep
 *                             up to MAXMS ms (from the task id), append
 *                             "effect ID ATTEMPT PID", print the id
 *
 * Lines go to FILE with one write() each, O_APPEND, so several canaries
 * can share it.
 */
#include <sys/wait.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
sleep_ms(long ms)
{
	struct timespec	 ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1)
		continue;
}

/* The daemon of "canary daemon": in a session of its own, not a session
 * leader, with a child in another session; both run sleep 1000. */
static void
daemon_start(const char *pidfile, int stubborn)
{
	char	 tmp[4096], line[64];
	pid_t	 child;
	int	 fd, n;

	if (fork() != 0)
		_exit(0);	/* the middle process: the daemon is orphaned */
	if (stubborn)
		signal(SIGTERM, SIG_IGN);	/* kept across exec */
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (chdir("/") == -1)
		_exit(70);
	if ((child = fork()) == 0) {
		setsid();
		execlp("sleep", "sleep", "1000", (char *)NULL);
		_exit(127);
	}
	n = snprintf(line, sizeof line, "%ld %ld\n", (long)getpid(),
	    (long)child);
	snprintf(tmp, sizeof tmp, "%s.tmp", pidfile);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1 ||
	    write(fd, line, (size_t)n) != n || close(fd) == -1 ||
	    rename(tmp, pidfile) == -1)
		_exit(70);
	execlp("sleep", "sleep", "1000", (char *)NULL);
	_exit(127);
}

static void
log_line(const char *file, const char *what)
{
	char	 line[256];
	int	 fd, n;

	n = snprintf(line, sizeof line, "%s %s %s %ld\n", what,
	    getenv("SPOOL_TASK_ID") ? getenv("SPOOL_TASK_ID") : "?",
	    getenv("SPOOL_ATTEMPT") ? getenv("SPOOL_ATTEMPT") : "?",
	    (long)getpid());
	if ((fd = open(file, O_WRONLY | O_APPEND | O_CREAT, 0644)) == -1)
		exit(70);
	if (write(fd, line, (size_t)n) != n)
		exit(70);
	close(fd);
}

int
main(int argc, char **argv)
{
	struct dirent	*d;
	DIR		*dir;
	char		 buf[4096];
	ssize_t		 n;
	long		 i;
	pid_t		 pid;
	FILE		*f;

	if (argc < 2)
		return (64);
	if (strcmp(argv[1], "report") == 0) {
		printf("argc=%d\n", argc - 2);
		for (i = 2; i < argc; i++)
			printf("arg=%s\n", argv[i]);
		printf("id=%s\nqueue=%s\nattempt=%s\nfoo=%s\npath=%s\n",
		    getenv("SPOOL_TASK_ID") ? getenv("SPOOL_TASK_ID") : "",
		    getenv("SPOOL_QUEUE") ? getenv("SPOOL_QUEUE") : "",
		    getenv("SPOOL_ATTEMPT") ? getenv("SPOOL_ATTEMPT") : "",
		    getenv("FOO") ? getenv("FOO") : "",
		    getenv("PATH") ? "set" : "");
		printf("fds=");
		if ((dir = opendir("/proc/self/fd")) != NULL) {
			int	 self = dirfd(dir);

			while ((d = readdir(dir)) != NULL)
				if (d->d_name[0] != '.' && atoi(d->d_name) != self)
					printf("%s ", d->d_name);
			closedir(dir);
		}
		printf("\nleader=%d\nstdin=", getpgrp() == getpid());
		while ((n = read(0, buf, sizeof buf)) > 0)
			fwrite(buf, 1, (size_t)n, stdout);
		printf("\n");
		return (0);
	}
	if (strcmp(argv[1], "exit") == 0 && argc == 3) {
		fprintf(stderr, "bye\n");
		return (atoi(argv[2]));
	}
	if (strcmp(argv[1], "kill") == 0 && argc == 3) {
		kill(getpid(), atoi(argv[2]));
		sleep_ms(1000);
		return (0);
	}
	if (strcmp(argv[1], "sleep") == 0 && argc == 3) {
		sleep_ms(atol(argv[2]));
		printf("slept\n");
		return (0);
	}
	if (strcmp(argv[1], "family") == 0 && argc == 4) {
		if ((pid = fork()) == 0) {
			if ((f = fopen(argv[3], "w")) != NULL) {
				fprintf(f, "%ld\n", (long)getpid());
				fclose(f);
			}
			sleep_ms(atol(argv[2]));
			_exit(0);
		}
		sleep_ms(atol(argv[2]));
		return (0);
	}
	if (strcmp(argv[1], "daemon") == 0 && (argc == 4 || (argc == 5 &&
	    strcmp(argv[4], "stubborn") == 0))) {
		if ((pid = fork()) == -1)
			return (71);
		if (pid == 0) {
			if (setsid() == -1)
				_exit(71);
			daemon_start(argv[2], argc == 5);
		}
		waitpid(pid, NULL, 0);
		for (i = 0; access(argv[2], F_OK) == -1; i++) {
			if (i == 1000)
				return (70);	/* no daemon within 10 s */
			sleep_ms(10);
		}
		sleep_ms(atol(argv[3]));
		printf("slept\n");
		return (0);
	}
	if (strcmp(argv[1], "stubborn") == 0 && argc == 3) {
		signal(SIGTERM, SIG_IGN);
		sleep_ms(atol(argv[2]));
		return (0);
	}
	if (strcmp(argv[1], "spam") == 0 && argc == 3) {
		memset(buf, 'x', sizeof buf);
		for (i = atol(argv[2]); i > 0; i -= (long)sizeof buf)
			if (fwrite(buf, 1, i < (long)sizeof buf ? (size_t)i :
			    sizeof buf, stdout) == 0)
				return (74);
		return (0);
	}
	if (strcmp(argv[1], "log") == 0 && argc == 4) {
		long	 id = getenv("SPOOL_TASK_ID") ?
		    atol(getenv("SPOOL_TASK_ID")) : 0;

		log_line(argv[2], "start");
		sleep_ms(atol(argv[3]) > 0 ? (id * 7919) % atol(argv[3]) : 0);
		log_line(argv[2], "effect");
		printf("%ld\n", id);
		return (0);
	}
	return (64);
}
