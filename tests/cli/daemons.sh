#!/bin/bash
# daemons.sh -- nothing a command started survives it, even a process
# that left its process group: "canary daemon" daemonizes a sleep as
# daemon(3) does (fork, setsid, fork), and that daemon has a sleep of its
# own in yet another session.  Both must end
#  (a) when the task's timeout fires (here, ignoring SIGTERM: SIGKILL
#      after the grace period),
#  (b) when the task is cancelled (and they are reaped: no zombies),
#  (c) when the command exits 0 and leaves them behind,
#  (d) at the worker's shutdown (SIGTERM, and a second SIGTERM),
# while (f) a daemon of a command still running is let be when another
# command of the same worker ends.  (e) A worker killed with SIGKILL
# takes its command with it, not the daemon: the documented limit
# (docs/reliability.md), which this asserts so that a change is seen.
. "$TESTS_SRCDIR/cli/lib.sh"
CANARY=${CANARY:-$(pwd)/tests/canary}
[ -x "$CANARY" ] || { echo "no canary at $CANARY" >&2; exit 99; }
# Whatever happens, the daemons this starts are stopped by their pids.
trap 'kill -9 $(cat "$T"/*.pids 2>/dev/null) 2>/dev/null; kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

# Both processes of the daemon in pid file $1 are gone.
gone() {
	local d e
	read -r d e < "$1" || return 1
	! alive "$d" && ! alive "$e"
}

# Neither is even a zombie: both were reaped.
reaped() {
	local d e
	read -r d e < "$1" || return 1
	! ps -p "$d" >/dev/null && ! ps -p "$e" >/dev/null
}

running() {
	local d e
	read -r d e < "$1" || return 1
	alive "$d" && alive "$e"
}

run init
run queue create w --backoff fixed --backoff-base 50ms --jitter 0 \
    --max-attempts 3 --lease 30s

# ---- (a) A timeout ----------------------------------------------------------
run enqueue w a
id=$out
start=$(date +%s%N)
run work w --until-empty --timeout 300ms --grace 300ms \
    --exec "$CANARY" daemon "$T/a.pids" 20000 stubborn
elapsed=$((($(date +%s%N) - start) / 1000000))
is "timeout: the attempt timed out" "$(sql "SELECT outcome FROM attempts WHERE task_id = $id")" timed_out
check "timeout: the daemon was started" test -s "$T/a.pids"
check "timeout: daemon and its child gone when the worker returns" gone "$T/a.pids"
# Each got SIGTERM, ignored it, and SIGKILL 300 ms later.
check "timeout: after the grace period ($elapsed ms)" \
    test "$elapsed" -ge 900 -a "$elapsed" -lt 10000
run cancel "$id"

# ---- (b) A cancel -----------------------------------------------------------
run enqueue w b
id=$out
"$SPOOL_BIN" work w --concurrency 1 --exec "$CANARY" daemon "$T/b.pids" 20000 \
    >/dev/null 2>"$T/b.err" &
wpid=$!
check "cancel: the daemon runs" wait_for "test -s '$T/b.pids' && running '$T/b.pids'"
run cancel "$id"
check "cancel: cancelled" wait_for "[ \"\$(sql \"SELECT state FROM tasks WHERE id = $id\")\" = cancelled ]"
check "cancel: daemon and its child gone" wait_for "gone '$T/b.pids'"
check "cancel: and reaped by the worker, which still runs" \
    wait_for "reaped '$T/b.pids' && alive $wpid"
kill -TERM "$wpid"
wait "$wpid"

# ---- (c) A command that exits 0 and leaves its daemon ------------------------
run enqueue w c
id=$out
run work w --until-empty --exec "$CANARY" daemon "$T/c.pids" 0
is "exit 0: succeeded" "$(sql "SELECT state FROM tasks WHERE id = $id")" succeeded
check "exit 0: the daemon was started" test -s "$T/c.pids"
check "exit 0: daemon and its child gone when the worker returns" gone "$T/c.pids"
# The same with a daemon that ignores SIGTERM: SIGKILL after the grace.
run enqueue w c2
id=$out
run work w --until-empty --grace 200ms --exec "$CANARY" daemon "$T/c2.pids" 0 stubborn
is "exit 0, stubborn daemon: succeeded" "$(sql "SELECT state FROM tasks WHERE id = $id")" succeeded
check "exit 0, stubborn daemon: gone when the worker returns" gone "$T/c2.pids"

# ---- (d) The worker's shutdown ---------------------------------------------
# The first SIGTERM: the shutdown timeout passes while the command runs.
run enqueue w d
id=$out
"$SPOOL_BIN" work w --concurrency 1 --shutdown-timeout 300ms \
    --exec "$CANARY" daemon "$T/d.pids" 20000 >/dev/null 2>"$T/d.err" &
wpid=$!
check "shutdown: the daemon runs" wait_for "test -s '$T/d.pids' && running '$T/d.pids'"
kill -TERM "$wpid"
wait "$wpid"
rc=$?
is "shutdown: exit 0" "$rc" 0
is "shutdown: the task handed back" "$(sql "SELECT state FROM tasks WHERE id = $id")" ready
check "shutdown: daemon and its child gone when the worker exits" gone "$T/d.pids"
# A second SIGTERM quits at once: the same.
"$SPOOL_BIN" work w --concurrency 1 \
    --exec "$CANARY" daemon "$T/d2.pids" 20000 >/dev/null 2>"$T/d2.err" &
wpid=$!
check "quit: the daemon runs" wait_for "test -s '$T/d2.pids' && running '$T/d2.pids'"
kill -TERM "$wpid"
check "quit: the first signal drains" wait_for "grep -q 'signal 15: stopping' '$T/d2.err'"
kill -TERM "$wpid"
wait "$wpid"
rc=$?
is "quit: exit 143" "$rc" 143
check "quit: daemon and its child gone when the worker exits" gone "$T/d2.pids"
sql "UPDATE tasks SET lease_until_ms = 0 WHERE state = 'running'"
run cancel "$id"

# ---- (f) Two commands in one worker -----------------------------------------
# Task f1's command runs on for 4 s after starting its daemon; f2's
# exits at once.  f2's daemon goes when f2 ends, f1's lives while f1
# runs, then goes with it.
run queue create f --lease 30s
f1=$("$SPOOL_BIN" enqueue f 4000)
f2=$("$SPOOL_BIN" enqueue f 0)
"$SPOOL_BIN" work f --until-empty --concurrency 2 --exec /bin/sh -c \
    "read ms; exec '$CANARY' daemon '$T/f'\$SPOOL_TASK_ID.pids \$ms" \
    >/dev/null 2>"$T/f.err" &
wpid=$!
check "two: both daemons started" wait_for "test -s '$T/f$f1.pids' -a -s '$T/f$f2.pids'"
check "two: the second task succeeded" wait_for "[ \"\$(sql \"SELECT state FROM tasks WHERE id = $f2\")\" = succeeded ]"
check "two: its daemon gone" wait_for "gone '$T/f$f2.pids'"
is "two: the first still runs" "$(sql "SELECT state FROM tasks WHERE id = $f1")" running
check "two: and its daemon too" running "$T/f$f1.pids"
wait "$wpid"
rc=$?
is "two: the worker ends, exit 0" "$rc" 0
is "two: the first succeeded" "$(sql "SELECT state FROM tasks WHERE id = $f1")" succeeded
check "two: its daemon gone when the worker returns" gone "$T/f$f1.pids"

# ---- (e) A worker killed with SIGKILL --------------------------------------
# Its command gets SIGKILL (PR_SET_PDEATHSIG); the daemon, which left the
# command's process group and session, does not: no code of the worker
# runs after SIGKILL.  The documented limit (a systemd unit's cgroup is
# the answer); asserted so that a change shows.
run queue create e --lease 30s
run enqueue e x
"$SPOOL_BIN" work e --concurrency 1 --exec "$CANARY" daemon "$T/e.pids" 20000 \
    >/dev/null 2>&1 &
wpid=$!
check "kill -9: the daemon runs" wait_for "test -s '$T/e.pids' && running '$T/e.pids'"
read -r d e < "$T/e.pids"
# The command, a child subreaper, adopts the daemon when its parent (the
# middle process of the double fork) exits; the command is the worker's
# child.
grandparent() {
	local p
	p=$(ps -o ppid= -p "$1" | tr -d ' ')
	[ -n "$p" ] && ps -o ppid= -p "$p" | tr -d ' '
}
check "kill -9: the daemon's parent is the command, a child of the worker" \
    wait_for "[ \"\$(grandparent $d)\" = $wpid ]"
leader=$(ps -o ppid= -p "$d" | tr -d ' ')
kill -9 "$wpid"
wait "$wpid" 2>/dev/null
check "kill -9: the command is gone within 2 s" wait_for "! alive ${leader:-1}" 40
check "kill -9: the daemon and its child are not (the documented limit)" \
    running "$T/e.pids"
kill -9 "$d" "$e" 2>/dev/null
finish
