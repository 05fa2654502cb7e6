#!/bin/bash
# faults.sh -- the faults a server meets, through the real CLI:
#  - a file-size limit (ulimit -f): enqueue and batch add end with exit
#    74 and one line naming the limit, never a signal (SIGXFSZ); every id
#    printed is in the file, nothing else is, the file checks whole, and
#    once the limit is gone a worker runs every task exactly once;
#  - a command run by the worker gets the default dispositions back for
#    the signals spool ignores (SIGPIPE, SIGXFSZ), so "head" and "ulimit
#    -f" behave in it as they do in a shell.
. "$TESTS_SRCDIR/cli/lib.sh"

payload=$(head -c 3000 /dev/zero | tr '\0' x)

# ---- A file-size limit ---------------------------------------------------
run init
check "init" [ "$rc" -eq 0 ]
: > "$T/ids"
(
	ulimit -f 300	# 300 KiB, for this subshell and its children
	for i in $(seq 1 400); do
		"$SPOOL_BIN" enqueue big "$payload" >>"$T/ids" 2>"$T/enq.err"
		rc=$?
		[ "$rc" -eq 0 ] || { echo "$rc $i" > "$T/enq.rc"; break; }
	done
)
read -r erc at < "$T/enq.rc" || erc=none
is "enqueue past the file-size limit: exit" "$erc" 74
check "it took more than one enqueue to reach the limit" [ "${at:-0}" -gt 1 ]
is "one line on stderr" "$(wc -l < "$T/enq.err")" 1
check "the line names the limit" grep -q "file too large" "$T/enq.err"
is "the file is whole" "$(sql 'PRAGMA integrity_check')" ok
is "every printed id is in the file, and only those" \
    "$(sql "SELECT group_concat(id, ' ') FROM (SELECT id FROM tasks WHERE queue = 'big' ORDER BY id)")" \
    "$(tr '\n' ' ' < "$T/ids" | sed 's/ $//')"

# A batch of lines is refused whole under the limit.
before=$(sql "SELECT count(*) FROM tasks")
seq 1 300 | sed "s/^/$payload/" > "$T/lines"
(
	ulimit -f 300
	"$SPOOL_BIN" enqueue big --lines <"$T/lines" >/dev/null 2>"$T/lines.err"
	echo $? > "$T/lines.rc"
)
is "enqueue --lines past the limit: exit" "$(cat "$T/lines.rc")" 74
is "... one line" "$(wc -l < "$T/lines.err")" 1
is "... nothing added" "$(sql "SELECT count(*) FROM tasks")" "$before"
is "... the file is whole" "$(sql 'PRAGMA integrity_check')" ok

# With the limit gone, a worker finishes what was committed, once each.
run work big --until-empty --exec /bin/true
check "worker after the limit" [ "$rc" -eq 0 ]
is "every task succeeded" \
    "$(sql "SELECT count(*) FROM tasks WHERE state = 'succeeded'")" "$before"
is "one attempt each" \
    "$(sql "SELECT count(*) FROM attempts")" "$before"

# ---- Signals a command gets back -------------------------------------------
# SigIgn in /proc/PID/status is the mask of ignored signals: bit 13 is
# SIGPIPE (0x1000), bit 25 SIGXFSZ (0x1000000).  The worker ignores both;
# its command must not.
run enqueue sig x
run work sig --until-empty --exec /bin/sh -c 'grep SigIgn /proc/$$/status'
check "worker runs the probe" [ "$rc" -eq 0 ]
mask=$(sql "SELECT output FROM results r JOIN tasks t ON t.id = r.task_id WHERE t.queue = 'sig'" | awk '{print $2}')
check "the command's SigIgn was read ($mask)" [ -n "$mask" ]
is "SIGPIPE and SIGXFSZ not ignored in the command" \
    "$(( 0x${mask:-0} & 0x1001000 ))" 0

finish
